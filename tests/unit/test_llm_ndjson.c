/* ndjson: lines at every split point, CRLF, blank lines, the line limit
 * one byte either side (in one chunk and across chunks), finish, stop. */
#include <stdlib.h>

#include "llm_ndjson.h"
#include "unit.h"

struct rec {
    char log[4096];
    size_t len;
    int lines;
    int stop_after;
    int bad; /* a line was not NUL-terminated at len */
};

static int rec_cb(void *user, const char *line, size_t len) {
    struct rec *r = user;
    r->lines++;
    if (line[len] != '\0')
        r->bad = 1;
    if (r->len + len + 2 < sizeof r->log) {
        memcpy(r->log + r->len, line, len);
        r->len += len;
        r->log[r->len++] = '|';
        r->log[r->len] = '\0';
    }
    return r->stop_after && r->lines == r->stop_after;
}

/* Feeds text cut at cuts[], then finishes; returns the first non-OK
 * feed status (or OK) and stores the finish status. */
static int run(const char *text, size_t len, const size_t *cuts, size_t ncuts, size_t max,
               struct rec *r, int *fin) {
    memset(r, 0, sizeof *r);
    struct ndjson *p = ndjson_new(max, rec_cb, r);
    if (!p)
        return -100;
    size_t at = 0;
    int rc = NDJSON_OK;
    for (size_t i = 0; i <= ncuts && rc == NDJSON_OK; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = ndjson_feed(p, text + at, end - at);
        at = end;
    }
    *fin = ndjson_finish(p);
    ndjson_free(p);
    return rc;
}

static int same_everywhere(const char *text, size_t max, const char *want, int want_fin) {
    size_t len = strlen(text);
    struct rec r;
    int fin;
    if (run(text, len, NULL, 0, max, &r, &fin) != 0 || strcmp(r.log, want) || fin != want_fin) {
        printf("  got \"%s\" fin %d\n", r.log, fin);
        return 0;
    }
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            size_t cuts[2] = {a, b};
            if (run(text, len, cuts, 2, max, &r, &fin) != 0 || strcmp(r.log, want) ||
                fin != want_fin || r.bad) {
                printf("  cuts %zu %zu: got \"%s\"\n", a, b, r.log);
                return 0;
            }
        }
    size_t *all = malloc((len + 1) * sizeof *all);
    for (size_t i = 0; i < len; i++)
        all[i] = i + 1;
    int ok =
        run(text, len, all, len, max, &r, &fin) == 0 && !strcmp(r.log, want) && fin == want_fin;
    free(all);
    return ok;
}

static void test_lines(void) {
    CHECK(same_everywhere("{\"a\":1}\n{\"b\":2}\n", 1024, "{\"a\":1}|{\"b\":2}|", NDJSON_OK));
}

static void test_crlf_and_blank_lines(void) {
    CHECK(same_everywhere("\n{\"a\":1}\r\n\r\n  \t\n{\"b\":2}\n\n", 1024, "{\"a\":1}|{\"b\":2}|",
                          NDJSON_OK));
}

static void test_trailing_partial(void) {
    CHECK(same_everywhere("{\"a\":1}\n{\"done\":true}", 1024, "{\"a\":1}|{\"done\":true}|",
                          NDJSON_PARTIAL));
    CHECK(same_everywhere("{\"a\":1}\n   ", 1024, "{\"a\":1}|", NDJSON_OK));
    CHECK(same_everywhere("{\"a\":1}\n{\"cut\r", 1024, "{\"a\":1}|{\"cut|", NDJSON_PARTIAL));
}

static void test_ollama_stream(void) {
    const char *s =
        "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"{\\\"\"},"
        "\"done\":false}\n"
        "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"role\"},"
        "\"done\":false}\n"
        "{\"model\":\"llama3.2\",\"done\":true,\"prompt_eval_count\":12,\"eval_count\":34}\n";
    struct rec r;
    int fin;
    CHECK_INT(run(s, strlen(s), NULL, 0, 1024, &r, &fin), NDJSON_OK);
    CHECK_INT(r.lines, 3);
    CHECK_INT(fin, NDJSON_OK);
}

static void test_limit_edges(void) {
    struct rec r;
    int fin;
    /* a line of exactly max bytes passes, one more fails; CR not counted */
    CHECK_INT(run("0123456789\n", 11, NULL, 0, 10, &r, &fin), NDJSON_OK);
    CHECK_STR(r.log, "0123456789|");
    CHECK_INT(run("0123456789\r\n", 12, NULL, 0, 10, &r, &fin), NDJSON_OK);
    CHECK_STR(r.log, "0123456789|");
    CHECK_INT(run("0123456789A\n", 12, NULL, 0, 10, &r, &fin), NDJSON_TOO_LARGE);
    CHECK_INT(r.lines, 0);
    CHECK_INT(fin, NDJSON_TOO_LARGE);
    CHECK_INT(run("0123456789AB\r\n", 14, NULL, 0, 10, &r, &fin), NDJSON_TOO_LARGE);
    /* the same across chunks, at every cut */
    for (size_t c = 0; c <= 12; c++) {
        size_t cuts[1] = {c};
        CHECK_INT(run("0123456789\r\n", 12, cuts, 1, 10, &r, &fin), NDJSON_OK);
        CHECK_STR(r.log, "0123456789|");
        CHECK_INT(run("0123456789A\n", 12, cuts, 1, 10, &r, &fin), NDJSON_TOO_LARGE);
        CHECK_INT(run("0123456789A\r\n", 13, cuts, 1, 10, &r, &fin), NDJSON_TOO_LARGE);
    }
    /* an endless line is caught while it grows (memory stays bounded) */
    struct ndjson *p = ndjson_new(10, rec_cb, &r);
    CHECK(p != NULL);
    memset(&r, 0, sizeof r);
    int rc = NDJSON_OK;
    for (int i = 0; i < 10 && rc == NDJSON_OK; i++)
        rc = ndjson_feed(p, "x", 1);
    CHECK_INT(rc, NDJSON_OK);
    CHECK_INT(ndjson_feed(p, "\r", 1), NDJSON_OK); /* could still be a CRLF */
    CHECK_INT(ndjson_feed(p, "y", 1), NDJSON_TOO_LARGE);
    CHECK_INT(ndjson_feed(p, "\n", 1), NDJSON_TOO_LARGE); /* sticky */
    CHECK_INT(ndjson_finish(p), NDJSON_TOO_LARGE);
    ndjson_free(p);
    /* trailing partial line: exactly max passes, max + 1 fails */
    CHECK_INT(run("ok\n0123456789", 13, NULL, 0, 10, &r, &fin), NDJSON_OK);
    CHECK_INT(fin, NDJSON_PARTIAL);
    CHECK_INT(run("ok\n0123456789\r", 14, NULL, 0, 10, &r, &fin), NDJSON_OK);
    CHECK_INT(fin, NDJSON_PARTIAL);
    CHECK_STR(r.log, "ok|0123456789|");
}

static void test_stop(void) {
    struct rec r;
    memset(&r, 0, sizeof r);
    r.stop_after = 2;
    struct ndjson *p = ndjson_new(100, rec_cb, &r);
    CHECK(p != NULL);
    CHECK_INT(ndjson_feed(p, "a\nb\nc\n", 6), NDJSON_STOPPED);
    CHECK_INT(r.lines, 2);
    CHECK_INT(ndjson_feed(p, "d\n", 2), NDJSON_STOPPED);
    CHECK_INT(ndjson_finish(p), NDJSON_STOPPED);
    CHECK_INT(r.lines, 2);
    ndjson_free(p);
    /* a stop from the callback at finish */
    memset(&r, 0, sizeof r);
    r.stop_after = 1;
    p = ndjson_new(100, rec_cb, &r);
    CHECK(p != NULL);
    CHECK_INT(ndjson_feed(p, "tail", 4), NDJSON_OK);
    CHECK_INT(ndjson_finish(p), NDJSON_STOPPED);
    ndjson_free(p);
    ndjson_free(NULL);
}

int main(void) {
    RUN(test_lines);
    RUN(test_crlf_and_blank_lines);
    RUN(test_trailing_partial);
    RUN(test_ollama_stream);
    RUN(test_limit_edges);
    RUN(test_stop);
    UNIT_EXIT();
}
