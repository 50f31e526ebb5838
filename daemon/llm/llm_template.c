/* See llm_template.h. A few entries, least recently used replaced: one
 * daemon talks to one or two backends with one or two models. */
#include "llm_template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define LLM_TEMPLATE_SLOTS 8
/* The user message's stand-in: control characters no real message holds
 * in this order, so its JSON form appears exactly once in the body. */
#define LLM_TEMPLATE_MARK "\x01promptd-user-message\x02"

struct llm_template {
    const struct llm_provider *prov;               /* NULL: slot unused */
    char *model, *base_url, *api_key, *keep_alive; /* owned; the key (secret) stays in memory */
    long num_ctx;
    bool stream, without_extras;
    struct llm_http http; /* owned; body holds the marker's JSON text */
    size_t mark_at, mark_len;
    uint64_t used;
};

struct llm_template_cache {
    struct llm_template slot[LLM_TEMPLATE_SLOTS];
    uint64_t clock;
};

struct llm_template_cache *llm_template_new(void) {
    return xcalloc(1, sizeof(struct llm_template_cache));
}

static void llm_template_clear(struct llm_template *t) {
    free(t->model);
    free(t->base_url);
    free(t->api_key);
    free(t->keep_alive);
    llm_http_clear(&t->http);
    memset(t, 0, sizeof *t);
}

void llm_template_free(struct llm_template_cache *tc) {
    if (!tc)
        return;
    for (int i = 0; i < LLM_TEMPLATE_SLOTS; i++)
        llm_template_clear(&tc->slot[i]);
    free(tc);
}

static bool llm_same(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool llm_template_matches(const struct llm_template *t, const struct llm_provider *p,
                                 const struct llm_chat *c) {
    return t->prov == p && t->stream == c->stream && t->without_extras == c->without_extras &&
           t->num_ctx == c->num_ctx && llm_same(t->model, c->model) &&
           llm_same(t->base_url, c->base_url) && llm_same(t->api_key, c->api_key) &&
           llm_same(t->keep_alive, c->keep_alive);
}

static char *llm_dup(const char *s) {
    return s ? xstrdup(s) : NULL;
}

/* Builds the request around the marker into t. 0 or -1. */
static int llm_template_fill(struct llm_template *t, const struct llm_provider *p,
                             const struct llm_chat *c) {
    struct llm_chat marked = *c;
    marked.user = LLM_TEMPLATE_MARK;
    if (p->build_chat(&marked, &t->http) != 0 || !t->http.body)
        return -1;
    json_t *mark = json_string(LLM_TEMPLATE_MARK);
    char *mark_json = mark ? json_dumps(mark, JSON_ENCODE_ANY) : NULL;
    json_decref(mark);
    char *at = mark_json ? strstr(t->http.body, mark_json) : NULL;
    if (at) {
        t->mark_at = (size_t)(at - t->http.body);
        t->mark_len = strlen(mark_json);
        if (strstr(at + t->mark_len, mark_json))
            at = NULL; /* twice: the provider used the message twice; no cache */
    }
    free(mark_json);
    if (!at)
        return -1;
    t->prov = p;
    t->model = llm_dup(c->model);
    t->base_url = llm_dup(c->base_url);
    t->api_key = llm_dup(c->api_key);
    t->keep_alive = llm_dup(c->keep_alive);
    t->num_ctx = c->num_ctx;
    t->stream = c->stream;
    t->without_extras = c->without_extras;
    return 0;
}

static struct llm_template *llm_template_get(struct llm_template_cache *tc,
                                             const struct llm_provider *p,
                                             const struct llm_chat *c) {
    struct llm_template *victim = &tc->slot[0];
    for (int i = 0; i < LLM_TEMPLATE_SLOTS; i++) {
        struct llm_template *t = &tc->slot[i];
        if (t->prov && llm_template_matches(t, p, c)) {
            t->used = ++tc->clock;
            return t;
        }
        if (t->used < victim->used)
            victim = t;
    }
    llm_template_clear(victim);
    if (llm_template_fill(victim, p, c) != 0) {
        llm_template_clear(victim);
        return NULL;
    }
    victim->used = ++tc->clock;
    return victim;
}

/* out = t's request with the user message's JSON text in the marker's
 * place. */
static int llm_template_apply(const struct llm_template *t, const char *user,
                              struct llm_http *out) {
    json_t *u = json_string(user);
    char *uj = u ? json_dumps(u, JSON_ENCODE_ANY) : NULL;
    json_decref(u);
    if (!uj)
        return -1;
    size_t ulen = strlen(uj), tail = t->http.body_len - t->mark_at - t->mark_len;
    out->body_len = t->mark_at + ulen + tail;
    out->body = xmalloc(out->body_len + 1);
    out->url = xstrdup(t->http.url);
    memcpy(out->body, t->http.body, t->mark_at);
    memcpy(out->body + t->mark_at, uj, ulen);
    memcpy(out->body + t->mark_at + ulen, t->http.body + t->mark_at + t->mark_len, tail);
    out->body[out->body_len] = '\0';
    for (int i = 0; t->http.headers[i]; i++)
        out->headers[i] = xstrdup(t->http.headers[i]);
    free(uj);
    return 0;
}

int llm_template_build(struct llm_template_cache *tc, const struct llm_provider *p,
                       const struct llm_chat *c, struct llm_http *out) {
    struct llm_template *t = tc ? llm_template_get(tc, p, c) : NULL;
    if (!t)
        return p->build_chat(c, out); /* uncached, still correct */
    return llm_template_apply(t, c->user, out);
}
