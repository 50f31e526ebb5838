/* Google's Gemini API: POST /v1beta/models/{model}:generateContent (or
 * :streamGenerateContent?alt=sse), key in x-goog-api-key (never in the
 * URL, which ends up in logs), generationConfig.responseMimeType
 * application/json with responseSchema. Every streamed event is a whole
 * GenerateContentResponse holding the next text piece; the one with a
 * finishReason ends the answer (there is no [DONE]). Parts marked
 * "thought" are the model's thinking, not its answer. Model list:
 * GET /v1beta/models. */
#include <stdlib.h>
#include <string.h>

#include "llm_provider.h"
#include "llm_result.h"
#include "llm_sse.h"
#include "promptd_limits.h"

#define GEMINI_TEMPERATURE 0.3

struct llm_parser {
    struct llm_reply *reply; /* borrowed */
    struct sse *events;      /* owned; NULL when not streaming */
    struct llm_buf body;     /* owned; the whole body when not streaming */
};

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

static int gemini_event(void *user, const char *event, const char *data, size_t len) {
    struct llm_parser *p = user;
    json_t *obj = llm_json_loadb(data, len);
    if (!json_is_object(obj)) {
        json_decref(obj);
        llm_reply_fail(p->reply, "Gemini sent an event that is not a JSON object");
        return 1;
    }
    int rc = gemini_object(p->reply, obj);
    json_decref(obj);
    return rc == 0 ? 0 : 1;
}

static struct llm_parser *gemini_parser_new(bool stream, struct llm_reply *reply) {
    struct llm_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->reply = reply;
    if (stream) {
        p->events = sse_new(LIMIT_UPSTREAM_RESPONSE_BYTES, gemini_event, p);
        if (!p->events) {
            free(p);
            return NULL;
        }
    }
    return p;
}

static int gemini_parser_feed(struct llm_parser *p, const char *data, size_t len) {
    if (p->events)
        return llm_sse_feed(p->events, p->reply, data, len);
    return llm_buf_append(&p->body, p->reply, data, len);
}

static int gemini_parser_finish(struct llm_parser *p) {
    struct llm_reply *r = p->reply;
    if (p->events)
        return llm_sse_finish(p->events, r, "finishReason");
    json_t *obj = llm_json_loadb(p->body.data ? p->body.data : "", p->body.len);
    if (!json_is_object(obj)) {
        json_decref(obj);
        llm_reply_fail(r, "the response is not a complete JSON object");
        return -1;
    }
    int rc = gemini_object(r, obj);
    json_decref(obj);
    if (rc == 0 && !r->done) {
        llm_reply_fail(r, "the response holds no finished candidate");
        return -1;
    }
    return rc;
}

static void gemini_parser_free(struct llm_parser *p) {
    if (!p)
        return;
    sse_free(p->events);
    llm_buf_free(&p->body);
    free(p);
}

const struct llm_provider llm_provider_gemini = {
    .name = "gemini",
    .label = "Gemini",
    .default_base_url = "https://generativelanguage.googleapis.com",
    .default_model = "gemini-2.0-flash",
    .key_required = true,
    .key_names = "GEMINI_API_KEY or LLM_API_KEY",
    .build_chat = gemini_build_chat,
    .build_models = gemini_build_models,
    .parser_new = gemini_parser_new,
    .parser_feed = gemini_parser_feed,
    .parser_finish = gemini_parser_finish,
    .parser_free = gemini_parser_free,
};
