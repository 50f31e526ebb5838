/* Ollama's native API: POST /api/chat with `format` set to the result's
 * JSON Schema (Ollama constrains the model's decoding to it), streaming as
 * NDJSON: one object per line, {"message":{"content":"..."}, "done":false}
 * then a last {"done":true,"done_reason":..., "prompt_eval_count",
 * "eval_count"}. An error after the 200 arrives as a line {"error":"..."}.
 * Model list: GET /api/tags. It runs on the user's machine, so it has a
 * start hint, a host variable of its own (OLLAMA_HOST, read as Ollama
 * reads it), a preload (LLM_PREWARM) and `ollama pull` for a missing
 * model. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "llm_provider.h"
#include "llm_result.h"
#include "xalloc.h"

/* Ollama's sampling for a structured rewrite: low temperature keeps the
 * JSON well-formed and the prompt faithful to the idea. */
#define OLLAMA_TEMPERATURE 0.3

static json_t *ollama_messages(const struct llm_chat *c) {
    return json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", c->system, "role",
                     "user", "content", c->user);
}

/* A POST of body (taken: released here) to path, with keep_alive and the
 * key when configured. */
static int ollama_post(const struct llm_chat *c, const char *path, json_t *body,
                       struct llm_http *out) {
    if (c->keep_alive && *c->keep_alive)
        json_object_set_new(body, "keep_alive", llm_keep_alive_json(c->keep_alive));
    int rc = llm_http_url(out, c->base_url, "%s", path);
    if (rc == 0)
        rc = llm_http_json_body(out, body);
    if (rc == 0 && c->api_key)
        rc = llm_http_header(out, "Authorization: Bearer %s", c->api_key);
    json_decref(body);
    return rc;
}

static int ollama_build_chat(const struct llm_chat *c, struct llm_http *out) {
    json_t *body = json_pack("{s:s, s:o, s:b, s:o, s:{s:f}}", "model", c->model, "messages",
                             ollama_messages(c), "stream", c->stream, "format",
                             result_schema_json(), "options", "temperature", OLLAMA_TEMPERATURE);
    if (!body)
        return -1;
    /* Reasoning models would spend the deadline thinking; the answer is a
     * rewrite, not a puzzle. Models without the switch refuse it (400,
     * ollama_refuses_extras), and the engine then retries without it. */
    if (!c->without_extras)
        json_object_set_new(body, "think", json_false());
    if (c->num_ctx > 0)
        json_object_set_new(json_object_get(body, "options"), "num_ctx", json_integer(c->num_ctx));
    return ollama_post(c, "/api/chat", body, out);
}

static int ollama_build_models(const struct llm_chat *c, struct llm_http *out) {
    int rc = llm_http_url(out, c->base_url, "/api/tags");
    if (rc == 0 && c->api_key)
        rc = llm_http_header(out, "Authorization: Bearer %s", c->api_key);
    return rc;
}

/* A generate call without a prompt loads the model and answers as soon as
 * it is in memory (Ollama's documented preload). */
static int ollama_build_prewarm(const struct llm_chat *c, struct llm_http *out) {
    json_t *body = json_pack("{s:s, s:b}", "model", c->model, "stream", 0);
    return body ? ollama_post(c, "/api/generate", body, out) : -1;
}

/* One response object: a streamed line or a line of the whole body. */
static int ollama_object(struct llm_reply *r, const char *event, const json_t *obj) {
    const json_t *err = json_object_get(obj, "error");
    if (err) {
        llm_reply_fail(r, "%s", json_is_string(err) ? json_string_value(err) : "error");
        return -1;
    }
    if (r->done)
        return 0; /* nothing counts after the final object */
    const char *content =
        json_string_value(json_object_get(json_object_get(obj, "message"), "content"));
    if (content && llm_reply_text(r, content, strlen(content)) != 0)
        return -1;
    if (json_is_true(json_object_get(obj, "done"))) {
        r->done = true;
        const char *reason = json_string_value(json_object_get(obj, "done_reason"));
        r->truncated = reason && strcmp(reason, "length") == 0;
        const json_t *pe = json_object_get(obj, "prompt_eval_count");
        const json_t *ev = json_object_get(obj, "eval_count");
        if (json_is_integer(pe))
            r->tokens_prompt = json_integer_value(pe);
        if (json_is_integer(ev))
            r->tokens_completion = json_integer_value(ev);
    }
    return 0;
}

/* OLLAMA_HOST ("host", "host:port", "0.0.0.0", or a URL) as Ollama reads
 * it, as a base URL. */
static char *ollama_host_url(const char *host) {
    char buf[512];
    const char *sep = strstr(host, "://");
    const char *after = sep ? sep + 3 : host;
    const char *bracket = strchr(after, ']'); /* an IPv6 literal: [::1]:11434 */
    bool has_port = bracket ? bracket[1] == ':' : strchr(after, ':') != NULL;
    /* Ollama's own rule: a bare host gets port 11434; with a scheme, the
     * scheme's port (80/443) applies, so nothing is added. */
    const char *port = sep || has_port ? "" : ":11434";
    int scheme_len = sep ? (int)(after - host) : 7;
    const char *scheme = sep ? host : "http://";
    if (strncmp(after, "0.0.0.0", 7) == 0) /* a listen address: this machine */
        snprintf(buf, sizeof buf, "%.*s127.0.0.1%s%s", scheme_len, scheme, after + 7, port);
    else
        snprintf(buf, sizeof buf, "%.*s%s%s", scheme_len, scheme, after, port);
    return xstrdup(buf);
}

/* A 404 saying "not found" is a model this Ollama has not pulled. */
static bool ollama_explain_http_error(const char *model, long status, const char *detail, char *err,
                                      size_t errlen) {
    if (status != 404 || !detail || !strstr(detail, "not found"))
        return false;
    snprintf(err, errlen,
             "Ollama has no model \"%s\": pull it with `ollama pull %s`, or set LLM_MODEL to one "
             "that `promptctl models` lists",
             model, model);
    return true;
}

static bool ollama_refuses_extras(long status, const char *detail) {
    return status == 400 && detail && strstr(detail, "does not support thinking");
}

const struct llm_provider llm_provider_ollama = {
    .name = "ollama",
    .label = "Ollama",
    .default_base_url = "http://localhost:11434",
    .default_model = "llama3.2:3b",
    .base_url_var = "OLLAMA_HOST",
    .base_url_of = ollama_host_url,
    .key_required = false,
    .start_hint = "start it with `ollama serve`",
    .explain_http_error = ollama_explain_http_error,
    .refuses_extras = ollama_refuses_extras,
    .build_chat = ollama_build_chat,
    .build_models = ollama_build_models,
    .build_prewarm = ollama_build_prewarm,
    .framing = LLM_FRAMING_NDJSON,
    .final_message = "done",
    .read_event = ollama_object,
};
