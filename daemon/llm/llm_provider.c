/* The table of providers, the response parser's lifecycle every provider
 * shares, and the helpers they use: building requests, collecting the
 * model's text, reading error bodies and model lists. */
#include "llm_provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_ndjson.h"
#include "llm_result.h"
#include "llm_sse.h"
#include "promptd_limits.h"
#include "utf8.h"
#include "xalloc.h"

/* Every provider of LLM_PROVIDER_TABLE (llm_provider.h): config.c,
 * llm_target.c and llm.c read the rest from its struct llm_provider. */
#define LLM_PROVIDER_ENTRY(name) &llm_provider_##name,
const struct llm_provider *const llm_providers[] = {LLM_PROVIDER_TABLE(LLM_PROVIDER_ENTRY) NULL};

void llm_http_clear(struct llm_http *h) {
    free(h->url);
    free(h->body);
    for (int i = 0; h->headers[i]; i++)
        free(h->headers[i]);
    memset(h, 0, sizeof *h);
}

static char *llm_vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *llm_vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0; /* an encoding error: an empty string rather than none */
    char *s = xmalloc((size_t)n + 1);
    s[0] = '\0';
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

int llm_http_header(struct llm_http *h, const char *fmt, ...) {
    int i = 0;
    while (h->headers[i])
        i++;
    if (i >= LLM_HTTP_MAX_HEADERS)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    h->headers[i] = llm_vformat(fmt, ap);
    va_end(ap);
    return 0;
}

int llm_http_json_body(struct llm_http *h, const json_t *obj) {
    free(h->body);
    h->body = json_dumps(obj, JSON_COMPACT);
    if (!h->body)
        return -1;
    h->body_len = strlen(h->body);
    return llm_http_header(h, "Content-Type: application/json");
}

int llm_http_url(struct llm_http *h, const char *base, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *path = llm_vformat(fmt, ap);
    va_end(ap);
    free(h->url);
    h->url = xasprintf("%s%s", base, path);
    free(path);
    return 0;
}

void llm_reply_init(struct llm_reply *r) {
    memset(r, 0, sizeof *r);
    r->tokens_prompt = -1;
    r->tokens_completion = -1;
}

void llm_reply_clear(struct llm_reply *r) {
    free(r->text);
    free(r->error);
    bool (*on_text)(void *, const char *, size_t) = r->on_text;
    void *arg = r->arg;
    size_t max = r->max_text;
    llm_reply_init(r);
    r->on_text = on_text;
    r->arg = arg;
    r->max_text = max;
}

void llm_reply_fail(struct llm_reply *r, const char *fmt, ...) {
    if (r->error)
        return;
    va_list ap;
    va_start(ap, fmt);
    r->error = llm_vformat(fmt, ap);
    va_end(ap);
}

static void llm_grow(char **data, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n + 1)
            c *= 2;
        *data = xrealloc(*data, c);
        *cap = c;
    }
    memcpy(*data + *len, s, n);
    *len += n;
    (*data)[*len] = '\0';
}

void llm_buf_append(struct llm_buf *b, const char *s, size_t n) {
    llm_grow(&b->data, &b->len, &b->cap, s, n);
}

void llm_buf_free(struct llm_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

int llm_reply_text(struct llm_reply *r, const char *s, size_t n) {
    if (n == 0)
        return 0;
    if (r->max_text && r->len + n > r->max_text) {
        llm_reply_fail(r, "the model's output exceeded %zu bytes", r->max_text);
        return -1;
    }
    llm_grow(&r->text, &r->len, &r->cap, s, n);
    if (r->on_text && !r->on_text(r->arg, s, n)) {
        llm_reply_fail(r, "stopped");
        return -1;
    }
    return 0;
}

json_t *llm_json_loadb(const char *data, size_t len) {
    if (utf8_valid(data, len))
        return json_loadb(data, len, JSON_ALLOW_NUL, NULL);
    char *clean = utf8_sanitize(data, len, len * 3);
    if (!clean)
        return NULL;
    json_t *v = json_loads(clean, 0, NULL);
    free(clean);
    return v;
}

const struct llm_provider *llm_provider_find(const char *name) {
    for (int i = 0; name && llm_providers[i]; i++)
        if (strcmp(llm_providers[i]->name, name) == 0)
            return llm_providers[i];
    return NULL;
}

void llm_provider_names(char *out, size_t outlen, const char *last_sep) {
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; llm_providers[i] && at < outlen; i++) {
        const char *sep = i == 0 ? "" : llm_providers[i + 1] ? ", " : last_sep;
        int n = snprintf(out + at, outlen - at, "%s%s", sep, llm_providers[i]->name);
        if (n < 0)
            break;
        at += (size_t)n;
    }
}

/* ---- the response parser ---- */

struct llm_parser {
    const struct llm_provider *prov; /* borrowed */
    struct llm_reply *reply;         /* borrowed */
    struct sse *events;              /* owned; SSE framing, streamed */
    struct ndjson *lines;            /* owned; NDJSON framing, streamed (or at finish) */
    struct llm_buf body;             /* owned; the whole body when not streamed */
    bool stream;
    bool finishing; /* reading the end: a bad NDJSON line is the cut last one */
};

static const char *llm_parser_sender(const struct llm_parser *p) {
    return p->prov->sender ? p->prov->sender : p->prov->label;
}

static int llm_parser_event(void *user, const char *event, const char *data, size_t len) {
    struct llm_parser *p = user;
    const struct llm_provider *prov = p->prov;
    if (prov->skip_after_done && p->reply->done)
        return 0;
    if (prov->done_data && len == strlen(prov->done_data) &&
        memcmp(data, prov->done_data, len) == 0) {
        p->reply->done = true;
        return 0;
    }
    json_t *obj = llm_json_loadb(data, len);
    if (!json_is_object(obj)) {
        json_decref(obj);
        llm_reply_fail(p->reply, "%s sent an event that is not a JSON object",
                       llm_parser_sender(p));
        return 1;
    }
    int rc = prov->read_event(p->reply, event, obj);
    json_decref(obj);
    return rc == 0 ? 0 : 1;
}

static int llm_parser_line(void *user, const char *line, size_t len) {
    struct llm_parser *p = user;
    json_t *obj = llm_json_loadb(line, len);
    if (!json_is_object(obj)) {
        json_decref(obj);
        if (p->finishing)
            llm_reply_fail(p->reply,
                           "%s's response ended in the middle of a line, before its final "
                           "message (\"%s\")",
                           p->prov->label, p->prov->final_message);
        else
            llm_reply_fail(p->reply, "%s sent a line that is not a JSON object", p->prov->label);
        return 1;
    }
    int rc = p->prov->read_event(p->reply, NULL, obj);
    json_decref(obj);
    return rc == 0 ? 0 : 1;
}

struct llm_parser *llm_parser_new(const struct llm_provider *prov, bool stream,
                                  struct llm_reply *reply) {
    struct llm_parser *p = xcalloc(1, sizeof *p);
    p->prov = prov;
    p->reply = reply;
    p->stream = stream;
    if (stream && prov->framing == LLM_FRAMING_SSE)
        p->events = sse_new(LIMIT_UPSTREAM_RESPONSE_BYTES, llm_parser_event, p);
    else if (stream)
        p->lines = ndjson_new(LIMIT_UPSTREAM_RESPONSE_BYTES, llm_parser_line, p);
    return p;
}

int llm_parser_feed(struct llm_parser *p, const char *data, size_t len) {
    if (p->events) {
        int rc = sse_feed(p->events, data, len);
        if (rc == SSE_TOO_LARGE)
            llm_reply_fail(p->reply, "the server sent an event larger than the limit");
        else if (rc < 0)
            llm_reply_fail(p->reply, "could not read the event stream");
        return rc < 0 ? -1 : 0;
    }
    if (p->lines) {
        int rc = ndjson_feed(p->lines, data, len);
        if (rc < 0 && rc != NDJSON_STOPPED)
            llm_reply_fail(p->reply, "%s sent a line longer than the limit", p->prov->label);
        return rc < 0 ? -1 : 0;
    }
    llm_buf_append(&p->body, data, len);
    return 0;
}

/* End of an SSE stream: a parser error, an error event, or no final
 * message is a failure. */
static int llm_parser_finish_events(struct llm_parser *p) {
    struct llm_reply *r = p->reply;
    if (sse_finish(p->events) < 0 || r->error) {
        llm_reply_fail(r, "could not read the event stream");
        return -1;
    }
    if (!r->done) {
        llm_reply_fail(r, "the stream ended before its final message (\"%s\")",
                       p->prov->final_message);
        return -1;
    }
    return 0;
}

/* End of NDJSON, streamed or whole: a whole body (a server may ignore
 * stream:false and answer NDJSON anyway) is read line by line too. */
static int llm_parser_finish_lines(struct llm_parser *p) {
    struct llm_reply *r = p->reply;
    p->finishing = true;
    int rc;
    if (p->lines) {
        rc = ndjson_finish(p->lines);
    } else {
        p->lines = ndjson_new(LIMIT_UPSTREAM_RESPONSE_BYTES, llm_parser_line, p);
        rc = ndjson_feed(p->lines, p->body.data ? p->body.data : "", p->body.len);
        if (rc >= 0)
            rc = ndjson_finish(p->lines);
    }
    if (rc < 0 || r->error)
        return -1;
    if (!r->done) {
        llm_reply_fail(r, "%s's response ended before its final message (\"%s\")", p->prov->label,
                       p->prov->final_message);
        return -1;
    }
    return 0;
}

static int llm_parser_finish_body(struct llm_parser *p) {
    json_t *obj = llm_json_loadb(p->body.data ? p->body.data : "", p->body.len);
    if (!json_is_object(obj)) {
        json_decref(obj);
        llm_reply_fail(p->reply, "the response is not a complete JSON object");
        return -1;
    }
    int rc = p->prov->read_body(p->reply, obj);
    json_decref(obj);
    return rc == 0 ? 0 : -1;
}

int llm_parser_finish(struct llm_parser *p) {
    if (p->prov->framing == LLM_FRAMING_NDJSON)
        return llm_parser_finish_lines(p);
    return p->events ? llm_parser_finish_events(p) : llm_parser_finish_body(p);
}

void llm_parser_free(struct llm_parser *p) {
    if (!p)
        return;
    sse_free(p->events);
    ndjson_free(p->lines);
    llm_buf_free(&p->body);
    free(p);
}

static char *llm_error_message_of(const json_t *root) {
    const json_t *err = json_object_get(root, "error");
    if (json_is_string(err))
        return xstrdup(json_string_value(err));
    const json_t *msg = json_object_get(json_is_object(err) ? err : root, "message");
    if (json_is_string(msg))
        return xstrdup(json_string_value(msg));
    /* Gemini wraps errors in an array when streaming without alt=sse. */
    if (json_is_array(root) && json_array_size(root) > 0)
        return llm_error_message_of(json_array_get(root, 0));
    return NULL;
}

char *llm_error_detail(const char *body, size_t len) {
    if (!body || len == 0)
        return NULL;
    json_t *root = llm_json_loadb(body, len);
    char *msg = root ? llm_error_message_of(root) : NULL;
    json_decref(root);
    if (msg && *msg) {
        char *clean = utf8_sanitize(msg, strlen(msg), 1000);
        free(msg);
        return clean;
    }
    free(msg);
    size_t tlen;
    const char *t = utf8_trim(body, len, &tlen);
    return tlen ? utf8_sanitize(t, tlen, RESULT_DETAIL_BYTES) : NULL;
}

static int llm_models_add(json_t *out, const json_t *item, const char *key) {
    const char *name = json_string_value(json_object_get(item, key));
    if (!name)
        return 0;
    if (strncmp(name, "models/", 7) == 0)
        name += 7;
    return json_array_append_new(out, json_string(name));
}

json_t *llm_parse_models(const char *body, size_t len) {
    json_t *root = llm_json_loadb(body, len);
    if (!root)
        return NULL;
    const json_t *list = json_object_get(root, "models");
    const char *key = "name";
    if (!json_is_array(list)) {
        list = json_object_get(root, "data");
        key = "id";
    }
    json_t *out = json_is_array(list) ? json_array() : NULL;
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item) {
        if (out && llm_models_add(out, item, key) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    json_decref(root);
    return out;
}

json_t *llm_keep_alive_json(const char *v) {
    const char *p = v;
    if (*p == '-')
        p++;
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
        return json_string(v);
    return json_integer(strtoll(v, NULL, 10));
}
