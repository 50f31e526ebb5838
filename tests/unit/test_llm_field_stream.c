/* json_field_stream: for each sample model output, the concatenation of
 * the emitted pieces equals the decoded field, whatever the chunking:
 * whole, every single cut, every pair of cuts, one byte at a time. Every
 * piece is valid UTF-8 (never half a code point). */
#include <jansson.h>
#include <stdlib.h>

#include "llm_field_stream.h"
#include "unit.h"
#include "utf8.h"

struct sample {
    const char *name;
    const char *text;
    const char *want; /* decoded improved_prompt; "" when nothing is emitted */
    bool done;        /* the value's closing quote is in the text */
};

static const struct sample samples[] = {
    {"plain", "{\"improved_prompt\":\"Hello, world\"}", "Hello, world", true},
    /* NUL never goes out (U+FFFD instead, as llm_result.c stores it); other
     * controls are passed on exactly, for clients to render harmless. */
    {"nul and controls", "{\"improved_prompt\":\"a\\u0000b\\u001b]0;t\\u0007\\u009b\\u0000\"}",
     "a\xEF\xBF\xBD"
     "b\x1b]0;t\x07\xC2\x9B\xEF\xBF\xBD",
     true},
    {"escapes",
     "{\"role\":\"x\",\"improved_prompt\":\"L1\\nL2 \\\"q\\\" b\\\\s \\/ \\b\\f\\r\\t|\","
     "\"confidence\":0.5}",
     "L1\nL2 \"q\" b\\s / \b\f\r\t|", true},
    {"unicode escapes", "{\"improved_prompt\":\"\\u00e9\\u20AC\\ud83d\\ude00\\u0041\\uFFFD!\"}",
     "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"
     "A\xEF\xBF\xBD!",
     true},
    {"raw utf8",
     "{\"improved_prompt\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC\"}",
     "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC", true},
    {"nested before",
     "{\"meta\":{\"improved_prompt\":\"WRONG\",\"a\":[1,{\"b\":\"}{\\\"]\"}],"
     "\"s\":\"{\\\"improved_prompt\\\":\\\"no\\\"}\"},\"list\":[[],{},\"]\"],"
     "\"n\":-1.5e3,\"t\":true,\"z\":null,\"q\":\"\\\\\",\"improved_prompt\":\"RIGHT {b} [k]\","
     "\"after\":\"x\"}",
     "RIGHT {b} [k]", true},
    {"fenced", "```json\n{\n  \"role\": \"Editor\",\n  \"improved_prompt\": \"Fenced\"\n}\n```\n",
     "Fenced", true},
    {"think",
     "<think>The user wants {\"improved_prompt\":\"NOPE\"} so {</think>\n"
     "{\"improved_prompt\":\"yes\"}",
     "yes", true},
    {"prose brace",
     "Sure! Use {name} as a placeholder. {\"improved_prompt\":\"ok\"} Hope it helps {", "ok", true},
    {"escaped key", "{\"improved\\u005fprompt\":\"escaped key\"}", "escaped key", true},
    {"empty value", "{\"improved_prompt\":\"\",\"role\":\"r\"}", "", true},
    {"null value", "{\"improved_prompt\":null,\"role\":\"r\"}", "", false},
    {"key prefix", "{\"improved_prompt_x\":\"no\",\"improved\":\"no\",\"improved_prompt\":\"yes\"}",
     "yes", true},
    {"spaces", " \n{ \"improved_prompt\" \t:\r\n \"spaced\" }", "spaced", true},
    {"second object", "{\"a\":1} then {\"improved_prompt\":\"second\"}", "second", true},
    {"cut off", "{\"role\":\"r\",\"improved_prompt\":\"partial \\u00e9 te", "partial \xC3\xA9 te",
     false},
    {"lone surrogates", "{\"improved_prompt\":\"a\\ud800b\\udc00c\\ud800\\u0041d\\ud83d\\\"e\"}",
     "a\xEF\xBF\xBD"
     "b\xEF\xBF\xBD"
     "c\xEF\xBF\xBD"
     "Ad\xEF\xBF\xBD\"e",
     true},
    {"bad escapes", "{\"improved_prompt\":\"x\\u12G4\\qy\"}",
     "x\xEF\xBF\xBD"
     "G4\xEF\xBF\xBDy",
     true},
    {"invalid raw bytes",
     "{\"improved_prompt\":\"a\xFF"
     "b\xC3(\xE2\x82\"}",
     /* one U+FFFD per maximal invalid subpart: E2 82 cut by the quote is one */
     "a\xEF\xBF\xBD"
     "b\xEF\xBF\xBD(\xEF\xBF\xBD",
     true},
    {"duplicate key", "{\"improved_prompt\":\"first\",\"improved_prompt\":\"second\"}", "first",
     true},
    {"no object", "I cannot help with that.", "", false},
    {"unclosed think", "<think>{\"improved_prompt\":\"no\"}", "", false},
    {"realistic",
     "{\"role\":\"Tenant writing a firm, polite formal complaint\",\"directive\":\"Write an "
     "email.\",\"framework\":\"CO-STAR\",\"guardrails\":[\"Keep it under 200 words\",\"No "
     "threats\"],\"improved_prompt\":\"You are a tenant writing a firm but polite email to your "
     "landlord.\\nContext: the heater has broken for the third time \xE2\x80\x94 a toddler lives "
     "here.\\nResponse: a subject line and a body under 200 words.\",\"reasoning\":\"Added "
     "deadline.\",\"confidence\":0.86}",
     "You are a tenant writing a firm but polite email to your landlord.\nContext: the heater "
     "has broken for the third time \xE2\x80\x94 a toddler lives here.\nResponse: a subject line "
     "and a body under 200 words.",
     true},
};

struct collect {
    char *buf;
    size_t len, cap;
    int calls;
    int bad_utf8;
    int stop_at; /* stop on this call (1-based); 0 never */
};

static int collect_cb(void *user, const char *text, size_t len) {
    struct collect *c = user;
    c->calls++;
    if (len == 0 || !utf8_valid(text, len) || text[len] != '\0')
        c->bad_utf8 = 1;
    if (c->len + len + 1 > c->cap) {
        c->cap = (c->len + len + 1) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    memcpy(c->buf + c->len, text, len);
    c->len += len;
    c->buf[c->len] = '\0';
    return c->stop_at && c->calls == c->stop_at;
}

/* Runs one chunking; returns 1 when the output and done state match. */
static long runs;

static int run(const struct sample *s, const size_t *cuts, size_t ncuts) {
    struct collect c = {0};
    runs++;
    struct json_field_stream *st = json_field_stream_new("improved_prompt", collect_cb, &c);
    if (!st)
        return 0;
    size_t len = strlen(s->text), at = 0;
    int ok = 1, feeds = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (json_field_stream_feed(st, s->text + at, end - at) != JFS_OK)
            ok = 0;
        feeds++;
        at = end;
    }
    const char *got = c.buf ? c.buf : "";
    if (strcmp(got, s->want) != 0 || c.bad_utf8 || c.calls > feeds ||
        json_field_stream_done(st) != s->done || json_field_stream_emitted(st) != c.len)
        ok = 0;
    if (!ok)
        printf("  %s: got \"%s\" (calls %d, done %d)\n", s->name, got, c.calls,
               json_field_stream_done(st));
    json_field_stream_free(st);
    free(c.buf);
    return ok;
}

static int run_all_chunkings(const struct sample *s) {
    size_t len = strlen(s->text);
    if (!run(s, NULL, 0))
        return 0;
    for (size_t a = 0; a <= len; a++) {
        size_t one[1] = {a};
        if (!run(s, one, 1))
            return 0;
        for (size_t b = a; b <= len; b++) {
            size_t two[2] = {a, b};
            if (!run(s, two, 2))
                return 0;
        }
    }
    size_t *all = malloc(len * sizeof *all + 1);
    for (size_t i = 0; i < len; i++)
        all[i] = i + 1;
    int ok = run(s, all, len ? len - 1 : 0);
    free(all);
    return ok;
}

static void test_every_sample_every_split(void) {
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        CHECK(run_all_chunkings(&samples[i]));
    CHECK(runs > 100000); /* the loops really ran */
}

/* The expected values of the valid-JSON samples agree with jansson. */
static void test_expectations_match_jansson(void) {
    static const char *const valid[] = {"plain",    "escapes",       "unicode escapes",
                                        "raw utf8", "nested before", "escaped key",
                                        "spaces",   "realistic"};
    for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
        const struct sample *s = NULL;
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
            if (strcmp(samples[i].name, valid[v]) == 0)
                s = &samples[i];
        CHECK(s != NULL);
        json_error_t err;
        json_t *o = json_loads(s->text, 0, &err);
        CHECK(o != NULL);
        const char *val = json_string_value(json_object_get(o, "improved_prompt"));
        int same = val && strcmp(val, s->want) == 0;
        json_decref(o);
        CHECK(same);
    }
}

static void test_stop_is_sticky(void) {
    struct collect c = {0};
    c.stop_at = 1;
    struct json_field_stream *st = json_field_stream_new("improved_prompt", collect_cb, &c);
    CHECK(st != NULL);
    CHECK_INT(json_field_stream_feed(st, "{\"improved_prompt\":\"ab", 22), JFS_STOPPED);
    CHECK_INT(json_field_stream_feed(st, "cd\"}", 4), JFS_STOPPED);
    CHECK_INT(c.calls, 1);
    json_field_stream_free(st);
    free(c.buf);
    json_field_stream_free(NULL);
}

static void test_other_field_and_long_key(void) {
    struct collect c = {0};
    struct json_field_stream *st = json_field_stream_new("role", collect_cb, &c);
    CHECK(st != NULL);
    const char *t = "{\"improved_prompt\":\"x\",\"role\":\"Editor\"}";
    CHECK_INT(json_field_stream_feed(st, t, strlen(t)), JFS_OK);
    CHECK(json_field_stream_done(st));
    CHECK_STR(c.buf, "Editor");
    json_field_stream_free(st);
    free(c.buf);
    /* keys longer than the supported 255 bytes never match and do not overflow */
    char key[400], text[1000];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    snprintf(text, sizeof text, "{\"%s\":\"v\",\"improved_prompt\":\"ok\"}", key);
    memset(&c, 0, sizeof c);
    st = json_field_stream_new(key, collect_cb, &c);
    CHECK(st != NULL);
    CHECK_INT(json_field_stream_feed(st, text, strlen(text)), JFS_OK);
    CHECK(!json_field_stream_done(st));
    CHECK_INT(c.calls, 0);
    json_field_stream_free(st);
    st = json_field_stream_new("improved_prompt", collect_cb, &c);
    CHECK(st != NULL);
    CHECK_INT(json_field_stream_feed(st, text, strlen(text)), JFS_OK);
    CHECK_STR(c.buf, "ok");
    json_field_stream_free(st);
    free(c.buf);
}

/* A long value arrives in one callback per feed, not one per byte. */
static void test_one_call_per_feed(void) {
    size_t n = 20000;
    char *t = malloc(n + 64);
    CHECK(t != NULL);
    int len = sprintf(t, "{\"improved_prompt\":\"");
    for (size_t i = 0; i < n; i++)
        t[len++] = (char)('a' + i % 26);
    len += sprintf(t + len, "\"}");
    struct collect c = {0};
    struct json_field_stream *st = json_field_stream_new("improved_prompt", collect_cb, &c);
    CHECK(st != NULL);
    for (int at = 0; at < len; at += 4096) {
        int chunk = len - at < 4096 ? len - at : 4096;
        CHECK_INT(json_field_stream_feed(st, t + at, (size_t)chunk), JFS_OK);
    }
    CHECK_INT(c.len, n);
    CHECK(c.calls <= (len + 4095) / 4096);
    CHECK(json_field_stream_done(st));
    json_field_stream_free(st);
    free(c.buf);
    free(t);
}

/* A raw NUL byte inside the value (a model's text decoded from an
 * envelope's \u0000) goes out as U+FFFD too. */
static void test_raw_nul_goes_out_as_replacement(void) {
    static const char text[] = "{\"improved_prompt\":\"a\0b\"}";
    struct collect c = {0};
    struct json_field_stream *st = json_field_stream_new("improved_prompt", collect_cb, &c);
    CHECK(st != NULL);
    CHECK_INT(json_field_stream_feed(st, text, sizeof text - 1), JFS_OK);
    CHECK_STR(c.buf, "a\xEF\xBF\xBD"
                     "b");
    CHECK_INT(c.len, 5);
    json_field_stream_free(st);
    free(c.buf);
}

int main(void) {
    RUN(test_every_sample_every_split);
    RUN(test_raw_nul_goes_out_as_replacement);
    RUN(test_expectations_match_jansson);
    RUN(test_stop_is_sticky);
    RUN(test_other_field_and_long_key);
    RUN(test_one_call_per_feed);
    UNIT_EXIT();
}
