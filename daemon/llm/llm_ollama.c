/* Ollama's native API: POST /api/chat with `format` set to the result's
 * JSON Schema (Ollama constrains the model's decoding to it), streaming as
 * NDJSON: one object per line, {"message":{"content":"..."}, "done":false}
 * then a last {"done":true,"done_reason":..., "prompt_eval_count",
 * "eval_count"}. An error after the 200 arrives as a line {"error":"..."}.
 * Model list: GET /api/tags. */
#include <stdlib.h>
#include <string.h>

#include "llm_ndjson.h"
#include "llm_provider.h"
#include "llm_result.h"
#include "promptd_limits.h"

/* Ollama's sampling for a structured rewrite: low temperature keeps the
 * JSON well-formed and the prompt faithful to the idea. */
#define OLLAMA_TEMPERATURE 0.3

struct llm_parser {
    struct llm_reply *reply; /* borrowed */
    struct ndjson *lines;    /* owned; NULL when not streaming */
    bool stream;
    bool finishing;      /* in ndjson_finish: a bad line is the cut last one */
    struct llm_buf body; /* owned; the whole body when not streaming */
};

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
     * rewrite, not a puzzle. Models without the switch refuse it (400), and
     * the engine then retries without it. */
    if (!c->no_think_param)
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

/* One response object, streamed line or whole body. */
static int ollama_object(struct llm_parser *p, const json_t *obj) {
    struct llm_reply *r = p->reply;
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

static int ollama_line(void *user, const char *line, size_t len) {
    struct llm_parser *p = user;
    json_t *obj = llm_json_loadb(line, len);
    if (!json_is_object(obj)) {
        json_decref(obj);
        if (p->finishing)
            llm_reply_fail(p->reply, "Ollama's response ended in the middle of a line, before its "
                                     "final message (\"done\")");
        else
            llm_reply_fail(p->reply, "Ollama sent a line that is not a JSON object");
        return 1;
    }
    int rc = ollama_object(p, obj);
    json_decref(obj);
    return rc == 0 ? 0 : 1;
}

static struct llm_parser *ollama_parser_new(bool stream, struct llm_reply *reply) {
    struct llm_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->reply = reply;
    p->stream = stream;
    if (stream) {
        p->lines = ndjson_new(LIMIT_UPSTREAM_RESPONSE_BYTES, ollama_line, p);
        if (!p->lines) {
            free(p);
            return NULL;
        }
    }
    return p;
}

static int ollama_parser_feed(struct llm_parser *p, const char *data, size_t len) {
    if (!p->stream)
        return llm_buf_append(&p->body, p->reply, data, len);
    int rc = ndjson_feed(p->lines, data, len);
    if (rc < 0 && rc != NDJSON_STOPPED)
        llm_reply_fail(p->reply, "Ollama sent a line longer than the limit");
    return rc < 0 ? -1 : 0;
}

static int ollama_parser_finish(struct llm_parser *p) {
    p->finishing = true;
    if (p->stream) {
        int rc = ndjson_finish(p->lines);
        if (rc < 0)
            return -1;
    } else {
        /* Ollama may answer a whole body as NDJSON when stream was ignored:
         * parse line by line either way. */
        struct ndjson *lines = ndjson_new(LIMIT_UPSTREAM_RESPONSE_BYTES, ollama_line, p);
        if (!lines) {
            llm_reply_fail(p->reply, "out of memory");
            return -1;
        }
        int rc = ndjson_feed(lines, p->body.data ? p->body.data : "", p->body.len);
        if (rc >= 0)
            rc = ndjson_finish(lines);
        ndjson_free(lines);
        if (rc < 0)
            return -1;
    }
    if (p->reply->error)
        return -1;
    if (!p->reply->done) {
        llm_reply_fail(p->reply, "Ollama's response ended before its final message (\"done\")");
        return -1;
    }
    return 0;
}

static void ollama_parser_free(struct llm_parser *p) {
    if (!p)
        return;
    ndjson_free(p->lines);
    llm_buf_free(&p->body);
    free(p);
}

const struct llm_provider llm_provider_ollama = {
    .name = "ollama",
    .label = "Ollama",
    .default_base_url = "http://localhost:11434",
    .default_model = "llama3.2:3b",
    .key_required = false,
    .key_names = "LLM_API_KEY",
    .build_chat = ollama_build_chat,
    .build_models = ollama_build_models,
    .build_prewarm = ollama_build_prewarm,
    .parser_new = ollama_parser_new,
    .parser_feed = ollama_parser_feed,
    .parser_finish = ollama_parser_finish,
    .parser_free = ollama_parser_free,
};
