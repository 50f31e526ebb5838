/* llm_delta: whatever the pieces, the emitted text is the input trimmed
 * the way llm_result.c trims improved_prompt (utf8_trim), and no emission is
 * empty. Inputs are cut at every code-point boundary pair. */
#include <stdlib.h>

#include "llm_delta.h"
#include "unit.h"
#include "utf8.h"

struct sink {
    char out[512];
    size_t len;
    int calls;
    bool empty_call;
};

static void sink_emit(void *arg, const char *text, size_t len) {
    struct sink *k = arg;
    k->calls++;
    if (len == 0)
        k->empty_call = true;
    if (k->len + len < sizeof k->out) {
        memcpy(k->out + k->len, text, len);
        k->len += len;
    }
    k->out[k->len] = '\0';
}

/* Feeds s cut at a and b (code-point boundaries); returns the output. */
static void feed_cut(const char *s, size_t a, size_t b, struct sink *k) {
    struct llm_delta_trim t = {0};
    size_t n = strlen(s);
    memset(k, 0, sizeof *k);
    llm_delta_trim_feed(&t, s, a, sink_emit, k);
    llm_delta_trim_feed(&t, s + a, b - a, sink_emit, k);
    llm_delta_trim_feed(&t, s + b, n - b, sink_emit, k);
    llm_delta_trim_clear(&t);
}

static bool is_boundary(const char *s, size_t i) {
    return ((unsigned char)s[i] & 0xC0) != 0x80;
}

static const char *const inputs[] = {
    " poem ",
    "poem",
    "",
    "     ",
    "  \n\t Write a poem.\xC2\xA0\xE3\x80\x80 \n",
    "a   b    c",
    "\xE2\x80\x83\xE2\x80\x83x\xE2\x80\x89 y \xF0\x9F\x9A\x80  ",
    "\xC2\xA0\xC2\xA0",
};

static void test_every_cut_gives_the_trimmed_text(void) {
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        const char *s = inputs[i];
        size_t n = strlen(s), want_len;
        const char *want = utf8_trim(s, n, &want_len);
        for (size_t a = 0; a <= n; a++) {
            if (a < n && !is_boundary(s, a))
                continue;
            for (size_t b = a; b <= n; b++) {
                if (b < n && !is_boundary(s, b))
                    continue;
                struct sink k;
                feed_cut(s, a, b, &k);
                CHECK(!k.empty_call);
                CHECK_INT(k.len, want_len);
                CHECK(memcmp(k.out, want, want_len) == 0);
            }
        }
    }
}

static void test_inner_spaces_wait_for_the_next_text(void) {
    struct llm_delta_trim t = {0};
    struct sink k = {0};
    llm_delta_trim_feed(&t, "  Hello", 7, sink_emit, &k);
    CHECK_STR(k.out, "Hello");
    llm_delta_trim_feed(&t, "   ", 3, sink_emit, &k);
    CHECK_STR(k.out, "Hello"); /* held: the field may end here */
    CHECK_INT(k.calls, 1);
    llm_delta_trim_feed(&t, " world  ", 8, sink_emit, &k);
    CHECK_STR(k.out, "Hello    world");
    CHECK_INT(k.calls, 2);
    llm_delta_trim_clear(&t);
    CHECK(t.held == NULL);
}

static void test_clear_starts_over(void) {
    struct llm_delta_trim t = {0};
    struct sink k = {0};
    llm_delta_trim_feed(&t, "a  ", 3, sink_emit, &k);
    llm_delta_trim_clear(&t);
    llm_delta_trim_feed(&t, "  b", 3, sink_emit, &k);
    CHECK_STR(k.out, "ab"); /* a new attempt's leading spaces are leading again */
    llm_delta_trim_clear(&t);
}

int main(void) {
    RUN(test_every_cut_gives_the_trimmed_text);
    RUN(test_inner_spaces_wait_for_the_next_text);
    RUN(test_clear_starts_over);
    UNIT_EXIT();
}
