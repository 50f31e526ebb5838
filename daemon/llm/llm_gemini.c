/* Google's Gemini API: POST /v1beta/models/{model}:generateContent (or
 * :streamGenerateContent?alt=sse), key in x-goog-api-key (never in the
 * URL, which ends up in logs), generationConfig.responseMimeType
 * application/json with responseSchema. Every streamed event is a whole
 * GenerateContentResponse holding the next text piece; the one with a
 * finishReason ends the answer (there is no [DONE]). Parts marked
 * "thought" are the model's thinking, not its answer. Model list:
 * GET /v1beta/models. */
#include <string.h>

#include "llm_provider.h"
#include "llm_result.h"

#define GEMINI_TEMPERATURE 0.3

/* Gemini 2.5 Flash models think unless told not to (budget 0); other
 * models either cannot think or cannot turn it off, and refuse the field. */
static bool gemini_can_disable_thinking(const char *model) {
    return strstr(model, "2.5-flash") != NULL;
}

static int gemini_build_chat(const struct llm_chat *c, struct llm_http *out) {
    json_t *body =
        json_pack("{s:{s:[{s:s}]}, s:[{s:s, s:[{s:s}]}], s:{s:s, s:o, s:f}}", "systemInstruction",
                  "parts", "text", c->system, "contents", "role", "user", "parts", "text", c->user,
                  "generationConfig", "responseMimeType", "application/json", "responseSchema",
                  result_schema_gemini_json(), "temperature", GEMINI_TEMPERATURE);
    if (!body)
        return -1;
    if (gemini_can_disable_thinking(c->model))
        json_object_set_new(json_object_get(body, "generationConfig"), "thinkingConfig",
                            json_pack("{s:i}", "thinkingBudget", 0));
    const char *model = strncmp(c->model, "models/", 7) == 0 ? c->model + 7 : c->model;
    int rc = llm_http_url(out, c->base_url, "/v1beta/models/%s:%s", model,
                          c->stream ? "streamGenerateContent?alt=sse" : "generateContent");
    if (rc == 0)
        rc = llm_http_json_body(out, body);
    if (rc == 0 && c->api_key)
        rc = llm_http_header(out, "x-goog-api-key: %s", c->api_key);
    json_decref(body);
    return rc;
}

static int gemini_build_models(const struct llm_chat *c, struct llm_http *out) {
    int rc = llm_http_url(out, c->base_url, "/v1beta/models");
    if (rc == 0 && c->api_key)
        rc = llm_http_header(out, "x-goog-api-key: %s", c->api_key);
    return rc;
}

static int gemini_parts(struct llm_reply *r, const json_t *parts) {
    size_t i;
    const json_t *part;
    json_array_foreach(parts, i, part) {
        if (json_is_true(json_object_get(part, "thought")))
            continue;
        const char *text = json_string_value(json_object_get(part, "text"));
        if (text && llm_reply_text(r, text, strlen(text)) != 0)
            return -1;
    }
    return 0;
}

static int gemini_finish_reason(struct llm_reply *r, const char *reason) {
    if (!reason || strcmp(reason, "FINISH_REASON_UNSPECIFIED") == 0)
        return 0;
    r->done = true;
    if (strcmp(reason, "STOP") == 0)
        return 0;
    if (strcmp(reason, "MAX_TOKENS") == 0) {
        r->truncated = true;
        return 0;
    }
    llm_reply_fail(r, "Gemini stopped the answer (finishReason %s)", reason);
    return -1;
}

static void gemini_usage(struct llm_reply *r, const json_t *usage) {
    const json_t *pt = json_object_get(usage, "promptTokenCount");
    const json_t *ct = json_object_get(usage, "candidatesTokenCount");
    if (json_is_integer(pt))
        r->tokens_prompt = json_integer_value(pt);
    if (json_is_integer(ct))
        r->tokens_completion = json_integer_value(ct);
}

/* One GenerateContentResponse (a streamed event or the whole body). */
static int gemini_object(struct llm_reply *r, const json_t *obj) {
    const json_t *err = json_object_get(obj, "error");
    if (err) {
        const char *msg = json_string_value(json_object_get(err, "message"));
        llm_reply_fail(r, "%s", msg ? msg : "error");
        return -1;
    }
    const char *blocked =
        json_string_value(json_object_get(json_object_get(obj, "promptFeedback"), "blockReason"));
    if (blocked) {
        llm_reply_fail(r, "Gemini blocked the prompt (%s)", blocked);
        return -1;
    }
    const json_t *cand = json_array_get(json_object_get(obj, "candidates"), 0);
    if (cand) {
        if (gemini_parts(r, json_object_get(json_object_get(cand, "content"), "parts")) != 0)
            return -1;
        if (gemini_finish_reason(r, json_string_value(json_object_get(cand, "finishReason"))) != 0)
            return -1;
    }
    const json_t *usage = json_object_get(obj, "usageMetadata");
    if (json_is_object(usage))
        gemini_usage(r, usage);
    return 0;
}

static int gemini_event(struct llm_reply *r, const char *event, const json_t *obj) {
    return gemini_object(r, obj);
}

/* The whole body: one response, which must hold a finished candidate. */
static int gemini_body(struct llm_reply *r, const json_t *obj) {
    if (gemini_object(r, obj) != 0)
        return -1;
    if (!r->done) {
        llm_reply_fail(r, "the response holds no finished candidate");
        return -1;
    }
    return 0;
}

const struct llm_provider llm_provider_gemini = {
    .name = "gemini",
    .label = "Gemini",
    .default_base_url = "https://generativelanguage.googleapis.com",
    .default_model = "gemini-2.0-flash",
    .base_url_var = "GEMINI_BASE_URL",
    .key_vars = {{"GEMINI_API_KEY", NULL}},
    .key_required = true,
    .build_chat = gemini_build_chat,
    .build_models = gemini_build_models,
    .framing = LLM_FRAMING_SSE,
    .final_message = "finishReason",
    .read_event = gemini_event,
    .read_body = gemini_body,
};
