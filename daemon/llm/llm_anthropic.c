/* Anthropic's Messages API: POST /v1/messages with x-api-key and
 * anthropic-version. The structured result is a forced tool call: one tool
 * whose input_schema is the result's schema and tool_choice naming it, so
 * the model's answer is the tool's input object. Streaming is SSE with
 * named events: message_start (input tokens), content_block_delta carrying
 * input_json_delta.partial_json (the object's text as it is written) or
 * text_delta, message_delta (stop_reason, output tokens), message_stop (the
 * end), ping, and error. Model list: GET /v1/models. */
#include <stdlib.h>
#include <string.h>

#include "llm_provider.h"
#include "llm_result.h"

#define ANTHROPIC_VERSION     "2023-06-01"
#define ANTHROPIC_TOOL        "submit_improved_prompt"
#define ANTHROPIC_MAX_TOKENS  4096
#define ANTHROPIC_TEMPERATURE 0.3

static json_t *anthropic_tools(void) {
    return json_pack("[{s:s, s:s, s:o}]", "name", ANTHROPIC_TOOL, "description",
                     "Submit the structured improvement of the user's prompt idea.", "input_schema",
                     result_schema_json());
}

static int anthropic_headers(const struct llm_chat *c, struct llm_http *out) {
    int rc = llm_http_header(out, "anthropic-version: %s", ANTHROPIC_VERSION);
    if (rc == 0 && c->api_key)
        rc = llm_http_header(out, "x-api-key: %s", c->api_key);
    return rc;
}

static int anthropic_build_chat(const struct llm_chat *c, struct llm_http *out) {
    json_t *body = json_pack(
        "{s:s, s:i, s:s, s:[{s:s, s:s}], s:o, s:{s:s, s:s}, s:b, s:f}", "model", c->model,
        "max_tokens", ANTHROPIC_MAX_TOKENS, "system", c->system, "messages", "role", "user",
        "content", c->user, "tools", anthropic_tools(), "tool_choice", "type", "tool", "name",
        ANTHROPIC_TOOL, "stream", c->stream, "temperature", ANTHROPIC_TEMPERATURE);
    if (!body)
        return -1;
    int rc = llm_http_url(out, c->base_url, "/v1/messages");
    if (rc == 0)
        rc = llm_http_json_body(out, body);
    if (rc == 0)
        rc = anthropic_headers(c, out);
    json_decref(body);
    return rc;
}

static int anthropic_build_models(const struct llm_chat *c, struct llm_http *out) {
    int rc = llm_http_url(out, c->base_url, "/v1/models");
    if (rc == 0)
        rc = anthropic_headers(c, out);
    return rc;
}

static void anthropic_usage(struct llm_reply *r, const json_t *usage) {
    const json_t *in = json_object_get(usage, "input_tokens");
    const json_t *out = json_object_get(usage, "output_tokens");
    if (json_is_integer(in))
        r->tokens_prompt = json_integer_value(in);
    if (json_is_integer(out))
        r->tokens_completion = json_integer_value(out);
}

static void anthropic_stop_reason(struct llm_reply *r, const char *reason) {
    if (reason && strcmp(reason, "max_tokens") == 0)
        r->truncated = true;
}

static int anthropic_error(struct llm_reply *r, const json_t *obj) {
    const json_t *err = json_object_get(obj, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *type = json_string_value(json_object_get(err, "type"));
    llm_reply_fail(r, "%s%s%s", type ? type : "", type && msg ? ": " : "", msg ? msg : "");
    return -1;
}

static int anthropic_delta(struct llm_reply *r, const json_t *delta) {
    const char *type = json_string_value(json_object_get(delta, "type"));
    const char *text = NULL;
    if (type && strcmp(type, "input_json_delta") == 0)
        text = json_string_value(json_object_get(delta, "partial_json"));
    else if (type && strcmp(type, "text_delta") == 0)
        text = json_string_value(json_object_get(delta, "text"));
    /* thinking_delta and signature_delta are not the answer. */
    return text ? llm_reply_text(r, text, strlen(text)) : 0;
}

/* One streamed event; the type is in the data as well as the event name. */
static int anthropic_stream_object(struct llm_reply *r, const char *type, const json_t *obj) {
    if (strcmp(type, "error") == 0)
        return anthropic_error(r, obj);
    if (strcmp(type, "message_start") == 0) {
        anthropic_usage(r, json_object_get(json_object_get(obj, "message"), "usage"));
    } else if (strcmp(type, "content_block_delta") == 0) {
        return anthropic_delta(r, json_object_get(obj, "delta"));
    } else if (strcmp(type, "message_delta") == 0) {
        anthropic_stop_reason(
            r, json_string_value(json_object_get(json_object_get(obj, "delta"), "stop_reason")));
        const json_t *usage = json_object_get(obj, "usage");
        const json_t *out = json_object_get(usage, "output_tokens");
        if (json_is_integer(out))
            r->tokens_completion = json_integer_value(out);
    } else if (strcmp(type, "message_stop") == 0) {
        r->done = true;
    }
    return 0;
}

static int anthropic_event(struct llm_reply *r, const char *event, const json_t *obj) {
    const char *type = json_string_value(json_object_get(obj, "type"));
    return anthropic_stream_object(r, type ? type : event, obj);
}

static int anthropic_tool_input(struct llm_reply *r, const json_t *input) {
    if (!json_is_object(input)) {
        llm_reply_fail(r, "Anthropic's tool_use block has no input object");
        return -1;
    }
    char *text = json_dumps(input, JSON_COMPACT);
    if (!text) {
        llm_reply_fail(r, "Anthropic's tool_use input cannot be serialized");
        return -1;
    }
    int rc = llm_reply_text(r, text, strlen(text));
    free(text);
    return rc;
}

/* A whole message: the tool_use block's input is the result object; its
 * text form goes through the same parser as every other provider's. */
static int anthropic_message(struct llm_reply *r, const json_t *msg) {
    if (json_object_get(msg, "error"))
        return anthropic_error(r, msg);
    size_t i;
    const json_t *block;
    json_array_foreach(json_object_get(msg, "content"), i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type && strcmp(type, "tool_use") == 0) {
            if (anthropic_tool_input(r, json_object_get(block, "input")) != 0)
                return -1;
        } else if (type && strcmp(type, "text") == 0 && r->len == 0) {
            const char *text = json_string_value(json_object_get(block, "text"));
            if (text && llm_reply_text(r, text, strlen(text)) != 0)
                return -1;
        }
    }
    anthropic_stop_reason(r, json_string_value(json_object_get(msg, "stop_reason")));
    anthropic_usage(r, json_object_get(msg, "usage"));
    r->done = true;
    return 0;
}

const struct llm_provider llm_provider_anthropic = {
    .name = "anthropic",
    .label = "Anthropic",
    .default_base_url = "https://api.anthropic.com",
    .default_model = "claude-3-5-haiku-latest",
    .base_url_var = "ANTHROPIC_BASE_URL",
    .key_vars = {{"ANTHROPIC_API_KEY", NULL}},
    .key_required = true,
    .build_chat = anthropic_build_chat,
    .build_models = anthropic_build_models,
    .framing = LLM_FRAMING_SSE,
    .final_message = "message_stop",
    .skip_after_done = true,
    .read_event = anthropic_event,
    .read_body = anthropic_message,
};
