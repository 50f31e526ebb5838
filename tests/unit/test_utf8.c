/* utf8: validation edges (RFC 3629), counting, trimming, truncation,
 * streaming prefixes and sanitising. */
#include <stdlib.h>

#include "unit.h"
#include "utf8.h"

#define V(s) utf8_valid(s, sizeof(s) - 1)

static void test_valid_accepts_well_formed(void) {
    CHECK(V(""));
    CHECK(V("plain ascii"));
    CHECK(V("caf\xC3\xA9"));
    CHECK(V("\xE2\x82\xAC"));     /* U+20AC */
    CHECK(V("\xF0\x9F\x98\x80")); /* U+1F600 */
    CHECK(V("\xC2\x80"));         /* U+0080, smallest 2-byte */
    CHECK(V("\xDF\xBF"));         /* U+07FF */
    CHECK(V("\xE0\xA0\x80"));     /* U+0800, smallest 3-byte */
    CHECK(V("\xED\x9F\xBF"));     /* U+D7FF, just below surrogates */
    CHECK(V("\xEE\x80\x80"));     /* U+E000, just above */
    CHECK(V("\xEF\xBF\xBF"));     /* U+FFFF */
    CHECK(V("\xF0\x90\x80\x80")); /* U+10000 */
    CHECK(V("\xF4\x8F\xBF\xBF")); /* U+10FFFF, the last */
    CHECK(utf8_valid("a\0b", 3)); /* NUL is a code point */
}

static void test_valid_rejects_malformed(void) {
    CHECK(!V("\x80"));             /* lone continuation */
    CHECK(!V("\xC3"));             /* cut short */
    CHECK(!V("\xE2\x82"));         /* cut short */
    CHECK(!V("\xF0\x9F\x98"));     /* cut short */
    CHECK(!V("\xC0\xAF"));         /* overlong '/' */
    CHECK(!V("\xC1\xBF"));         /* overlong */
    CHECK(!V("\xE0\x80\xAF"));     /* overlong 3-byte */
    CHECK(!V("\xE0\x9F\xBF"));     /* overlong U+07FF */
    CHECK(!V("\xF0\x80\x80\xAF")); /* overlong 4-byte */
    CHECK(!V("\xF0\x8F\xBF\xBF")); /* overlong U+FFFF */
    CHECK(!V("\xED\xA0\x80"));     /* U+D800 surrogate */
    CHECK(!V("\xED\xBF\xBF"));     /* U+DFFF surrogate */
    CHECK(!V("\xF4\x90\x80\x80")); /* U+110000 */
    CHECK(!V("\xF5\x80\x80\x80")); /* lead F5 */
    CHECK(!V("\xFF"));
    CHECK(!V("\xFE"));
    CHECK(!V("\xC3\x28")); /* bad continuation */
    CHECK(!V("\xE2\x28\xA1"));
    CHECK(!V("ok\xC3\xA9\x80")); /* stray continuation after a good one */
}

static void test_decode_encode_roundtrip(void) {
    static const uint32_t cps[] = {0,      0x41,   0x7F,   0x80,    0x7FF,   0x800,   0xD7FF,
                                   0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        char buf[4];
        size_t n = utf8_encode(cps[i], buf);
        CHECK(n >= 1 && n <= 4);
        uint32_t back = 0xFFFFFFFF;
        CHECK_INT(utf8_decode(buf, n, &back), n);
        CHECK_INT(back, cps[i]);
        CHECK(utf8_valid(buf, n));
    }
    char buf[4];
    CHECK_INT(utf8_encode(0xD800, buf), 0);
    CHECK_INT(utf8_encode(0xDFFF, buf), 0);
    CHECK_INT(utf8_encode(0x110000, buf), 0);
    uint32_t cp;
    CHECK_INT(utf8_decode("\xE2\x82", 2, &cp), 0);
    CHECK_INT(utf8_decode("", 0, &cp), 0);
}

static void test_count(void) {
    CHECK_INT(utf8_count("", 0), 0);
    CHECK_INT(utf8_count("abc", 3), 3);
    CHECK_INT(utf8_count("caf\xC3\xA9", 5), 4);
    CHECK_INT(utf8_count("\xF0\x9F\x98\x80!", 5), 2);
    CHECK_INT(utf8_count("\x80\x80", 2), 2); /* invalid bytes count one each */
    CHECK_INT(utf8_count("\xE2\x82", 2), 2);
}

static void test_truncate(void) {
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"; /* a é € 😀 : 1+2+3+4 */
    size_t len = strlen(s);
    CHECK_INT(utf8_truncate(s, len, 100), len);
    CHECK_INT(utf8_truncate(s, len, len), len);
    CHECK_INT(utf8_truncate(s, len, 0), 0);
    CHECK_INT(utf8_truncate(s, len, 1), 1);
    CHECK_INT(utf8_truncate(s, len, 2), 1); /* inside é */
    CHECK_INT(utf8_truncate(s, len, 3), 3);
    CHECK_INT(utf8_truncate(s, len, 4), 3);
    CHECK_INT(utf8_truncate(s, len, 5), 3);
    CHECK_INT(utf8_truncate(s, len, 6), 6);
    CHECK_INT(utf8_truncate(s, len, 7), 6);
    CHECK_INT(utf8_truncate(s, len, 8), 6);
    CHECK_INT(utf8_truncate(s, len, 9), 6);
    /* every cut is valid */
    for (size_t m = 0; m <= len; m++)
        CHECK(utf8_valid(s, utf8_truncate(s, len, m)));
    /* invalid input: stray continuations are cut at the limit */
    CHECK_INT(utf8_truncate("ab\x80\x80\x80\x80\x80", 7, 6), 6);
    /* a lead whose sequence ends before the cut is kept */
    CHECK_INT(utf8_truncate("\xC3\xA9\x80x", 4, 2), 2);
}

static void test_complete_prefix(void) {
    CHECK_INT(utf8_complete_prefix("abc", 3), 3);
    CHECK_INT(utf8_complete_prefix("ab\xC3", 3), 2);
    CHECK_INT(utf8_complete_prefix("ab\xC3\xA9", 4), 4);
    CHECK_INT(utf8_complete_prefix("\xE2\x82", 2), 0);
    CHECK_INT(utf8_complete_prefix("x\xF0\x9F\x98", 4), 1);
    CHECK_INT(utf8_complete_prefix("\xF0\x9F\x98\x80", 4), 4);
    CHECK_INT(utf8_complete_prefix("a\x80", 2), 2);     /* invalid: nothing to wait for */
    CHECK_INT(utf8_complete_prefix("a\xC3\x28", 3), 3); /* invalid */
    CHECK_INT(utf8_complete_prefix("a\xED\xA0", 3), 3); /* a surrogate never completes */
    CHECK_INT(utf8_complete_prefix("", 0), 0);
}

static void test_trim(void) {
    size_t n;
    const char *s = "  \t\nhello world\r\n ";
    const char *t = utf8_trim(s, strlen(s), &n);
    CHECK_INT(n, 11);
    CHECK(memcmp(t, "hello world", 11) == 0);
    s = "\xC2\xA0\xE3\x80\x80x y\xEF\xBB\xBF\xE2\x80\x89"; /* NBSP, ideographic sp, BOM, thin sp */
    t = utf8_trim(s, strlen(s), &n);
    CHECK_INT(n, 3);
    CHECK(memcmp(t, "x y", 3) == 0);
    t = utf8_trim(" \n\t ", 4, &n);
    CHECK_INT(n, 0);
    t = utf8_trim("", 0, &n);
    CHECK_INT(n, 0);
    s = "caf\xC3\xA9"; /* é is not a space, even though it ends in a continuation byte */
    t = utf8_trim(s, 5, &n);
    CHECK_INT(n, 5);
    s = "\xE2\x80\x8B"; /* zero-width space is not trimmed (not a space character) */
    t = utf8_trim(s, 3, &n);
    CHECK_INT(n, 3);
}

static void test_sanitize(void) {
    char *s = utf8_sanitize("ok", 2, 200);
    CHECK_STR(s, "ok");
    free(s);
    s = utf8_sanitize("a\xFF"
                      "b",
                      3, 200);
    CHECK_STR(s, "a" UTF8_REPLACEMENT "b");
    free(s);
    s = utf8_sanitize("a\0b", 3, 200);
    CHECK_STR(s, "a" UTF8_REPLACEMENT "b");
    free(s);
    /* never ends inside a code point */
    s = utf8_sanitize("ab\xE2\x82\xAC", 5, 4);
    CHECK_STR(s, "ab");
    free(s);
    s = utf8_sanitize("ab\xE2\x82\xAC", 5, 5);
    CHECK_STR(s, "ab\xE2\x82\xAC");
    free(s);
    /* a replacement that would not fit is left out too */
    s = utf8_sanitize("ab\xFF", 3, 4);
    CHECK_STR(s, "ab");
    free(s);
    s = utf8_sanitize("", 0, 0);
    CHECK_STR(s, "");
    free(s);
    /* cut sequence at the very end becomes a replacement */
    s = utf8_sanitize("x\xE2\x82", 3, 200);
    CHECK(utf8_valid(s, strlen(s)));
    CHECK(strncmp(s, "x" UTF8_REPLACEMENT, 4) == 0);
    free(s);
}

int main(void) {
    RUN(test_valid_accepts_well_formed);
    RUN(test_valid_rejects_malformed);
    RUN(test_decode_encode_roundtrip);
    RUN(test_count);
    RUN(test_truncate);
    RUN(test_complete_prefix);
    RUN(test_trim);
    RUN(test_sanitize);
    UNIT_EXIT();
}
