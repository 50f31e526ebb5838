/* OpenAI-compatible chat completions: POST {base}/v1/chat/completions with
 * response_format json_schema (strict), Bearer key, SSE streaming ended by
 * `data: [DONE]`, usage in the last chunk (stream_options.include_usage).
 * The same code serves OpenAI, DeepSeek, OpenRouter, LM Studio, llama.cpp's
 * server, vLLM and Ollama's /v1: only the base URL differs. A base URL that
 * already ends in /v1 is used as is. Model list: GET {base}/v1/models. */
#include <string.h>

#include "llm_provider.h"
#include "llm_result.h"

#define OPENAI_TEMPERATURE 0.3

static bool openai_base_has_v1(const char *base) {
    size_t n = strlen(base);
    return n >= 3 && strcmp(base + n - 3, "/v1") == 0;
}

/* DeepSeek has JSON mode but no json_schema; strict schema elsewhere. */
static json_t *openai_response_format(const struct llm_chat *c) {
    if (strstr(c->base_url, "deepseek"))
        return json_pack("{s:s}", "type", "json_object");
    return json_pack("{s:s, s:{s:s, s:b, s:o}}", "type", "json_schema", "json_schema", "name",
                     "improved_prompt", "strict", 1, "schema", result_schema_json());
}

/* OpenAI's reasoning models (o1, o3, o4-mini, gpt-5...) refuse any
 * temperature but the default, and think unless told to keep it short. */
static bool openai_is_reasoning_model(const char *model) {
    return (model[0] == 'o' && model[1] >= '1' && model[1] <= '9') ||
           strncmp(model, "gpt-5", 5) == 0;
}

static int openai_build_chat(const struct llm_chat *c, struct llm_http *out) {
    json_t *body =
        json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:b, s:o}", "model", c->model, "messages",
                  "role", "system", "content", c->system, "role", "user", "content", c->user,
                  "stream", c->stream, "response_format", openai_response_format(c));
    if (!body)
        return -1;
    if (!openai_is_reasoning_model(c->model))
        json_object_set_new(body, "temperature", json_real(OPENAI_TEMPERATURE));
    else if (strncmp(c->model, "o1", 2) != 0)
        json_object_set_new(body, "reasoning_effort", json_string("low"));
    if (c->stream)
        json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    int rc = llm_http_url(out, c->base_url, "%s/chat/completions",
                          openai_base_has_v1(c->base_url) ? "" : "/v1");
    if (rc == 0)
        rc = llm_http_json_body(out, body);
    if (rc == 0 && c->api_key)
        rc = llm_http_header(out, "Authorization: Bearer %s", c->api_key);
    json_decref(body);
    return rc;
}

static int openai_build_models(const struct llm_chat *c, struct llm_http *out) {
    int rc =
        llm_http_url(out, c->base_url, "%s/models", openai_base_has_v1(c->base_url) ? "" : "/v1");
    if (rc == 0 && c->api_key)
        rc = llm_http_header(out, "Authorization: Bearer %s", c->api_key);
    return rc;
}

static void openai_usage(struct llm_reply *r, const json_t *usage) {
    const json_t *pt = json_object_get(usage, "prompt_tokens");
    const json_t *ct = json_object_get(usage, "completion_tokens");
    if (json_is_integer(pt))
        r->tokens_prompt = json_integer_value(pt);
    if (json_is_integer(ct))
        r->tokens_completion = json_integer_value(ct);
}

static int openai_finish_reason(struct llm_reply *r, const json_t *choice) {
    const char *reason = json_string_value(json_object_get(choice, "finish_reason"));
    if (!reason)
        return 0;
    if (strcmp(reason, "length") == 0)
        r->truncated = true;
    if (strcmp(reason, "content_filter") == 0) {
        llm_reply_fail(r, "the provider's content filter stopped the answer");
        return -1;
    }
    return 0;
}

/* The model's text of one choice: message (whole) or delta (streamed). A
 * refusal is an error, never a result. */
static int openai_choice_text(struct llm_reply *r, const json_t *part) {
    const char *refusal = json_string_value(json_object_get(part, "refusal"));
    if (refusal && *refusal) {
        llm_reply_fail(r, "the model refused: %s", refusal);
        return -1;
    }
    const char *content = json_string_value(json_object_get(part, "content"));
    return content ? llm_reply_text(r, content, strlen(content)) : 0;
}

static int openai_object(struct llm_reply *r, const json_t *obj, const char *part_key) {
    const json_t *err = json_object_get(obj, "error");
    if (err) {
        const json_t *msg = json_object_get(err, "message");
        llm_reply_fail(r, "%s",
                       json_is_string(msg)   ? json_string_value(msg)
                       : json_is_string(err) ? json_string_value(err)
                                             : "error");
        return -1;
    }
    const json_t *choice = json_array_get(json_object_get(obj, "choices"), 0);
    if (choice) {
        if (openai_choice_text(r, json_object_get(choice, part_key)) != 0)
            return -1;
        if (openai_finish_reason(r, choice) != 0)
            return -1;
    }
    const json_t *usage = json_object_get(obj, "usage");
    if (json_is_object(usage))
        openai_usage(r, usage);
    return 0;
}

/* One streamed chunk; `data: [DONE]` (done_data) ends the stream. */
static int openai_event(struct llm_reply *r, const char *event, const json_t *obj) {
    return openai_object(r, obj, "delta");
}

/* The whole completion: a choice with a finish_reason, or some text. */
static int openai_body(struct llm_reply *r, const json_t *obj) {
    if (openai_object(r, obj, "message") != 0)
        return -1;
    const json_t *choice = json_array_get(json_object_get(obj, "choices"), 0);
    bool finished = json_string_value(json_object_get(choice, "finish_reason")) != NULL;
    if (!finished && r->len == 0) {
        llm_reply_fail(r, "the response holds no choice");
        return -1;
    }
    r->done = true;
    return 0;
}

const struct llm_provider llm_provider_openai = {
    .name = "openai",
    .label = "OpenAI",
    .default_base_url = "https://api.openai.com",
    .default_model = "gpt-4o-mini",
    .base_url_var = "OPENAI_BASE_URL",
    .key_vars = {{"OPENAI_API_KEY", NULL}, {"DEEPSEEK_API_KEY", "deepseek"}},
    .key_required = true,
    .build_chat = openai_build_chat,
    .build_models = openai_build_models,
    .framing = LLM_FRAMING_SSE,
    .final_message = "[DONE]",
    .done_data = "[DONE]",
    .skip_after_done = true,
    .sender = "the server", /* any OpenAI-compatible server */
    .read_event = openai_event,
    .read_body = openai_body,
};
