/* See llm_delta.h. */
#include "llm_delta.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "xalloc.h"

/* Appends s to the held text. */
static void llm_delta_hold(struct llm_delta_trim *t, const char *s, size_t len) {
    if (t->held_len + len > t->held_cap) {
        size_t cap = t->held_cap ? t->held_cap : 64;
        while (cap < t->held_len + len)
            cap *= 2;
        t->held = xrealloc(t->held, cap);
        t->held_cap = cap;
    }
    memcpy(t->held + t->held_len, s, len);
    t->held_len += len;
}

/* Takes the held text out, with more appended: the caller frees it. */
static char *llm_delta_take(struct llm_delta_trim *t, const char *s, size_t len, size_t *out_len) {
    llm_delta_hold(t, s, len);
    char *out = t->held;
    *out_len = t->held_len;
    t->held = NULL;
    t->held_len = t->held_cap = 0;
    return out;
}

void llm_delta_trim_feed(struct llm_delta_trim *t, const char *s, size_t len,
                         llm_delta_emit_fn emit, void *arg) {
    if (len == 0)
        return;
    size_t core_len;
    const char *core = utf8_trim(s, len, &core_len);
    if (core_len == 0) { /* spaces only: before the text they go, after it they wait */
        if (t->started)
            llm_delta_hold(t, s, len);
        return;
    }
    /* From the piece's first character once text went out (its leading
     * spaces are inner ones then), else from its first non-space. */
    const char *from = t->started ? s : core;
    size_t out_len = (size_t)(core + core_len - from);
    const char *tail = core + core_len;
    size_t tail_len = len - (size_t)(tail - s);
    char *joined = NULL;
    if (t->held_len > 0)
        joined = llm_delta_take(t, from, out_len, &out_len);
    t->started = true;
    if (tail_len > 0)
        llm_delta_hold(t, tail, tail_len);
    /* Last: emit may end the request, and with it this filter. */
    emit(arg, joined ? joined : from, out_len);
    free(joined);
}

void llm_delta_trim_clear(struct llm_delta_trim *t) {
    free(t->held);
    memset(t, 0, sizeof *t);
}
