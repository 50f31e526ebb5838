/* Helpers shared by the provider modules: building requests, collecting
 * the model's text, reading error bodies and model lists. */
#include "llm_provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_result.h"
#include "llm_sse.h"
#include "utf8.h"

void llm_http_clear(struct llm_http *h) {
    free(h->url);
    free(h->body);
    for (int i = 0; h->headers[i]; i++)
        free(h->headers[i]);
    memset(h, 0, sizeof *h);
}

static char *llm_vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
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
    return h->headers[i] ? 0 : -1;
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
    if (!path)
        return -1;
    size_t n = strlen(base) + strlen(path) + 1;
    free(h->url);
    h->url = malloc(n);
    if (h->url)
        snprintf(h->url, n, "%s%s", base, path);
    free(path);
    return h->url ? 0 : -1;
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
    if (!r->error)
        r->error = strdup("out of memory");
}

static int llm_grow(char **data, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n + 1)
            c *= 2;
        char *p = realloc(*data, c);
        if (!p)
            return -1;
        *data = p;
        *cap = c;
    }
    memcpy(*data + *len, s, n);
    *len += n;
    (*data)[*len] = '\0';
    return 0;
}

int llm_buf_append(struct llm_buf *b, struct llm_reply *reply, const char *s, size_t n) {
    if (llm_grow(&b->data, &b->len, &b->cap, s, n) == 0)
        return 0;
    if (reply)
        llm_reply_fail(reply, "out of memory");
    return -1;
}

void llm_buf_free(struct llm_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

int llm_sse_feed(struct sse *events, struct llm_reply *reply, const char *data, size_t len) {
    int rc = sse_feed(events, data, len);
    if (rc == SSE_TOO_LARGE)
        llm_reply_fail(reply, "the server sent an event larger than the limit");
    else if (rc < 0)
        llm_reply_fail(reply, "could not read the event stream");
    return rc < 0 ? -1 : 0;
}

int llm_sse_finish(struct sse *events, struct llm_reply *reply, const char *final_name) {
    if (sse_finish(events) < 0 || reply->error) {
        llm_reply_fail(reply, "could not read the event stream");
        return -1;
    }
    if (!reply->done) {
        llm_reply_fail(reply, "the stream ended before its final message (\"%s\")", final_name);
        return -1;
    }
    return 0;
}

int llm_reply_text(struct llm_reply *r, const char *s, size_t n) {
    if (n == 0)
        return 0;
    if (r->max_text && r->len + n > r->max_text) {
        llm_reply_fail(r, "the model's output exceeded %zu bytes", r->max_text);
        return -1;
    }
    if (llm_grow(&r->text, &r->len, &r->cap, s, n) != 0) {
        llm_reply_fail(r, "out of memory");
        return -1;
    }
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

static const struct llm_provider *const llm_providers[] = {
    &llm_provider_ollama, &llm_provider_openai, &llm_provider_anthropic, &llm_provider_gemini,
    NULL};

const struct llm_provider *llm_provider_find(const char *name) {
    for (int i = 0; name && llm_providers[i]; i++)
        if (strcmp(llm_providers[i]->name, name) == 0)
            return llm_providers[i];
    return NULL;
}

static char *llm_error_message_of(const json_t *root) {
    const json_t *err = json_object_get(root, "error");
    if (json_is_string(err))
        return strdup(json_string_value(err));
    const json_t *msg = json_object_get(json_is_object(err) ? err : root, "message");
    if (json_is_string(msg))
        return strdup(json_string_value(msg));
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
