/* sse: the event-stream format at every split point, line endings, fields,
 * limits one byte either side, sticky errors, stop and finish. */
#include <stdlib.h>

#include "llm_sse.h"
#include "unit.h"

/* Records events as "name|data" lines (data's newlines shown as '/'). */
struct rec {
    char log[4096];
    size_t len;
    int events;
    int stop_after; /* return non-zero at this event number (1-based); 0 = never */
    int bad_len;    /* data_len disagreed with the NUL terminator */
};

static int rec_cb(void *user, const char *event, const char *data, size_t data_len) {
    struct rec *r = user;
    r->events++;
    if (strlen(data) != data_len)
        r->bad_len = 1;
    int n = snprintf(r->log + r->len, sizeof r->log - r->len, "%s|", event);
    r->len += (size_t)n;
    for (size_t i = 0; i < data_len && r->len + 2 < sizeof r->log; i++)
        r->log[r->len++] = data[i] == '\n' ? '/' : data[i];
    r->log[r->len++] = '\n';
    r->log[r->len] = '\0';
    return r->stop_after && r->events == r->stop_after;
}

/* Parses text fed in pieces cut at `cuts` (sorted positions) and returns
 * the log; *rc gets the last feed's status and *fin sse_finish's. */
static int parse_cuts(const char *text, size_t len, const size_t *cuts, size_t ncuts, size_t max,
                      struct rec *r, int *fin) {
    memset(r, 0, sizeof *r);
    struct sse *p = sse_new(max, rec_cb, r);
    if (!p)
        return -100;
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = sse_feed(p, text + at, end - at);
        at = end;
    }
    *fin = sse_finish(p);
    sse_free(p);
    return rc;
}

static int parse_whole(const char *text, size_t max, struct rec *r, int *fin) {
    return parse_cuts(text, strlen(text), NULL, 0, max, r, fin);
}

/* The same result for the whole text, every 1-cut, every 2-cut and one
 * byte at a time. */
static int same_everywhere(const char *text, const char *want) {
    size_t len = strlen(text);
    struct rec r;
    int fin;
    if (parse_whole(text, 1 << 20, &r, &fin) != 0 || strcmp(r.log, want) != 0 || r.bad_len) {
        printf("  got: %s", r.log);
        return 0;
    }
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            size_t cuts[2] = {a, b};
            if (parse_cuts(text, len, cuts, 2, 1 << 20, &r, &fin) != 0 || strcmp(r.log, want))
                return 0;
        }
    size_t *all = malloc((len + 1) * sizeof *all);
    for (size_t i = 0; i < len; i++)
        all[i] = i + 1;
    int ok = parse_cuts(text, len, all, len, 1 << 20, &r, &fin) == 0 && !strcmp(r.log, want);
    free(all);
    return ok;
}

static void test_basic_event(void) {
    struct rec r;
    int fin;
    CHECK_INT(parse_whole("data: hello\n\n", 1024, &r, &fin), SSE_OK);
    CHECK_STR(r.log, "message|hello\n");
    CHECK_INT(fin, SSE_OK);
}

static void test_fields(void) {
    const char *s = ": comment line\n"
                    "id: 7\n"
                    "retry: 1000\n"
                    "event: content_block_delta\n"
                    "data: {\"a\":1}\n"
                    "data:second\n"
                    "data:  two spaces\n"
                    "unknown: x\n"
                    "\n"
                    "data\n" /* a field with no colon: empty value */
                    "\n"
                    "event: ping\n" /* no data: not dispatched */
                    "\n"
                    "data: after\n"
                    "\n";
    CHECK(same_everywhere(s, "content_block_delta|{\"a\":1}/second/ two spaces\n"
                             "message|\n"
                             "message|after\n"));
}

static void test_line_endings(void) {
    CHECK(same_everywhere("data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\ndata: e\r\n\r\n",
                          "message|a\nmessage|b\nmessage|c\nmessage|d/e\n"));
    /* CR then LF in the next chunk is one line end, not two */
    struct rec r;
    int fin;
    size_t cuts[] = {8};
    CHECK_INT(parse_cuts("data: a\r\n\r\n", 11, cuts, 1, 1024, &r, &fin), 0);
    CHECK_STR(r.log, "message|a\n");
    CHECK_INT(r.events, 1);
}

static void test_event_name_resets(void) {
    CHECK(same_everywhere("event: one\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n",
                          "one|1\nmessage|2\nmessage|3\n"));
}

static void test_bom(void) {
    CHECK(same_everywhere("\xEF\xBB\xBF"
                          "data: x\n\n",
                          "message|x\n"));
    /* only a whole BOM is skipped: a partial one stays part of the first
     * line (here making its field name unknown, so nothing is dispatched) */
    CHECK(same_everywhere("\xEF\xBB"
                          "data: x\n\ndata: y\n\n",
                          "message|y\n"));
    /* a BOM later in the stream is not skipped */
    CHECK(same_everywhere("data: x\n\n\xEF\xBB\xBF"
                          "data: y\n\n",
                          "message|x\n"));
}

static void test_realistic_streams(void) {
    const char *openai = "data: {\"choices\":[{\"delta\":{\"content\":\"{\\\"role\"}}]}\n\n"
                         ": keep-alive\n\n"
                         "data: {\"choices\":[{\"delta\":{\"content\":\"\\\":1}\"}}]}\n\n"
                         "data: [DONE]\n\n";
    CHECK(same_everywhere(openai,
                          "message|{\"choices\":[{\"delta\":{\"content\":\"{\\\"role\"}}]}\n"
                          "message|{\"choices\":[{\"delta\":{\"content\":\"\\\":1}\"}}]}\n"
                          "message|[DONE]\n"));
    const char *anthropic = "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n"
                            "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n"
                            "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";
    CHECK(same_everywhere(anthropic, "message_start|{\"type\":\"message_start\"}\n"
                                     "ping|{\"type\": \"ping\"}\n"
                                     "message_stop|{\"type\":\"message_stop\"}\n"));
}

static void test_limit_edges(void) {
    /* "data: " + 10 bytes = 16 raw bytes for the event */
    const char *s = "data: 0123456789\n\n";
    struct rec r;
    int fin;
    CHECK_INT(parse_whole(s, 16, &r, &fin), SSE_OK);
    CHECK_STR(r.log, "message|0123456789\n");
    CHECK_INT(parse_whole(s, 15, &r, &fin), SSE_TOO_LARGE);
    CHECK_INT(r.events, 0);
    CHECK_INT(fin, SSE_TOO_LARGE);
    /* the limit covers all lines of one event, comments included */
    const char *two = ": c\ndata: 12\ndata: 34\n\n"; /* 3 + 8 + 8 = 19 */
    CHECK_INT(parse_whole(two, 19, &r, &fin), SSE_OK);
    CHECK_STR(r.log, "message|12/34\n");
    CHECK_INT(parse_whole(two, 18, &r, &fin), SSE_TOO_LARGE);
    /* but resets at each blank line: many events each within the limit pass */
    CHECK_INT(parse_whole("data: 0123456789\n\ndata: 0123456789\n\n", 16, &r, &fin), SSE_OK);
    CHECK_INT(r.events, 2);
    /* a line that never ends is caught while it grows, byte by byte */
    struct sse *p = sse_new(16, rec_cb, &r);
    CHECK(p != NULL);
    memset(&r, 0, sizeof r);
    int rc = SSE_OK;
    for (int i = 0; i < 16 && rc == SSE_OK; i++)
        rc = sse_feed(p, "x", 1);
    CHECK_INT(rc, SSE_OK);
    CHECK_INT(sse_feed(p, "x", 1), SSE_TOO_LARGE);
    CHECK_INT(sse_feed(p, "\n\n", 2), SSE_TOO_LARGE); /* sticky */
    CHECK_INT(sse_finish(p), SSE_TOO_LARGE);
    sse_free(p);
}

static void test_stop(void) {
    struct rec r;
    memset(&r, 0, sizeof r);
    r.stop_after = 1;
    struct sse *p = sse_new(1024, rec_cb, &r);
    CHECK(p != NULL);
    CHECK_INT(sse_feed(p, "data: 1\n\ndata: 2\n\n", 18), SSE_STOPPED);
    CHECK_INT(r.events, 1);
    CHECK_INT(sse_feed(p, "data: 3\n\n", 9), SSE_STOPPED);
    CHECK_INT(r.events, 1);
    sse_free(p);
}

static void test_finish(void) {
    struct rec r;
    int fin;
    CHECK_INT(parse_whole("data: a\n\ndata: cut", 1024, &r, &fin), SSE_OK);
    CHECK_STR(r.log, "message|a\n");
    CHECK_INT(fin, SSE_PARTIAL);
    CHECK_INT(parse_whole("data: a\n\ndata: b\n", 1024, &r, &fin), SSE_OK);
    CHECK_INT(r.events, 1); /* no blank line: discarded, as the spec says */
    CHECK_INT(fin, SSE_PARTIAL);
    CHECK_INT(parse_whole("data: a\n\n: trailing comment\n", 1024, &r, &fin), SSE_OK);
    CHECK_INT(fin, SSE_OK);
    CHECK_INT(parse_whole("", 1024, &r, &fin), SSE_OK);
    CHECK_INT(fin, SSE_OK);
    CHECK_INT(r.events, 0);
    sse_free(NULL);
}

int main(void) {
    RUN(test_basic_event);
    RUN(test_fields);
    RUN(test_line_endings);
    RUN(test_event_name_resets);
    RUN(test_bom);
    RUN(test_realistic_streams);
    RUN(test_limit_edges);
    RUN(test_stop);
    RUN(test_finish);
    UNIT_EXIT();
}
