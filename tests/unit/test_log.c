/* log: every message is one line, with control characters and bytes that
 * are not UTF-8 made visible (issue 11 item 4: an upstream error body
 * must not forge a log line or reach a terminal raw), and the level shared
 * between threads (SIGHUP's reload sets it on the loop thread while the
 * writer and reader threads log; make test-tsan reports a race there if it
 * is not atomic). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

/* log_escape of a C string literal (sizeof keeps embedded NULs). */
#define ESC(lit, out) out[log_escape(lit, sizeof(lit) - 1, out, sizeof out - 1)] = '\0'

static void test_escape_keeps_plain_text_and_utf8(void) {
    char out[128];
    ESC("plain caf\xC3\xA9 \xF0\x9F\x9A\x80 C:\\path \"q\"", out);
    CHECK_STR(out, "plain caf\xC3\xA9 \xF0\x9F\x9A\x80 C:\\path \"q\"");
}

static void test_escape_makes_line_breaks_visible(void) {
    char out[128];
    ESC("bad gateway\nERROR forged line\r\tx", out);
    CHECK_STR(out, "bad gateway\\nERROR forged line\\r\\tx");
}

static void test_escape_makes_controls_visible(void) {
    char out[128];
    ESC("\x1b]0;t\x07\x1b[2J\x7f|\0|", out);
    CHECK_STR(out, "\\x1b]0;t\\x07\\x1b[2J\\x7f|\\x00|");
    ESC("a\xC2\x9B"
        "31m\xC2\x80\xC2\x9F\xC2\xA0",
        out); /* C1 CSI, U+0080, U+009F, U+00A0 */
    CHECK_STR(out, "a\\u009b31m\\u0080\\u009f\xC2\xA0");
}

static void test_escape_shows_invalid_bytes_in_hex(void) {
    char out[128];
    ESC("\x9B"
        "2J \xC3( \xFF",
        out); /* a raw 8-bit CSI, a cut sequence, 0xFF */
    CHECK_STR(out, "\\x9b2J \\xc3( \\xff");
}

static void test_escape_never_cuts_an_escape_or_a_character(void) {
    char out[16];
    size_t n = log_escape("ab\x1b", 3, out, 5); /* "ab" fits, "\x1b" (4) does not */
    CHECK_INT(n, 2);
    n = log_escape("a\xC3\xA9", 3, out, 2); /* é (2 bytes) does not fit after "a" */
    CHECK_INT(n, 1);
    n = log_escape("abc", 3, out, 0);
    CHECK_INT(n, 0);
}

/* log_msg itself: what reaches stderr is one line, escaped. */
static void test_log_msg_writes_one_escaped_line(void) {
    char path[] = "/tmp/test_log_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    CHECK(saved >= 0);
    CHECK(dup2(fd, STDERR_FILENO) >= 0);
    log_warn("llm: ollama: %s", "HTTP 500: oops\nERROR forged line \x1b[31mred");
    fflush(stderr);
    CHECK(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    char buf[4096];
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    CHECK(got > 0);
    buf[got] = '\0';
    CHECK(strchr(buf, '\n') == buf + got - 1); /* exactly one line */
    CHECK(strchr(buf, '\x1b') == NULL);
    CHECK(strstr(buf, " warn  llm: ollama: HTTP 500: oops\\nERROR forged line \\x1b[31mred\n"));
}

/* A message longer than a line is cut, still one line. */
static void test_log_msg_bounds_a_long_escaped_message(void) {
    char path[] = "/tmp/test_log_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    char *big = malloc(3001);
    CHECK(big != NULL);
    memset(big, '\n', 3000);
    big[3000] = '\0';
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    CHECK(saved >= 0);
    CHECK(dup2(fd, STDERR_FILENO) >= 0);
    log_error("%s", big);
    fflush(stderr);
    CHECK(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    free(big);
    char buf[8192];
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    CHECK(got > 0 && got <= 2048);
    buf[got] = '\0';
    CHECK(strchr(buf, '\n') == buf + got - 1);
    CHECK(buf[got - 2] == 'n' && buf[got - 3] == '\\'); /* ends on a whole escape */
}

static void test_level_names_and_parsing(void) {
    CHECK_INT(log_level_parse("debug"), LOG_DEBUG);
    CHECK_INT(log_level_parse("info"), LOG_INFO);
    CHECK_INT(log_level_parse("warn"), LOG_WARN);
    CHECK_INT(log_level_parse("warning"), LOG_WARN);
    CHECK_INT(log_level_parse("error"), LOG_ERROR);
    CHECK_INT(log_level_parse("loud"), -1);
    CHECK_STR(log_level_name(LOG_WARN), "warn");
    log_set_level(LOG_ERROR);
    CHECK_INT(log_get_level(), LOG_ERROR);
    log_set_level(LOG_INFO);
    CHECK_INT(log_get_level(), LOG_INFO);
}

/* Debug lines are below the level: nothing is printed, the level is read. */
static void *log_below_the_level(void *arg) {
    for (int i = 0; i < 1000; i++)
        log_debug("not printed %d", i);
    return arg;
}

static void test_level_set_while_another_thread_logs(void) {
    log_set_level(LOG_INFO);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, log_below_the_level, NULL), 0);
    for (int i = 0; i < 1000; i++)
        log_set_level(i % 2 ? LOG_INFO : LOG_WARN);
    CHECK_INT(pthread_join(t, NULL), 0);
    log_set_level(LOG_INFO);
    CHECK_INT(log_get_level(), LOG_INFO);
}

int main(void) {
    RUN(test_level_names_and_parsing);
    RUN(test_level_set_while_another_thread_logs);
    RUN(test_escape_keeps_plain_text_and_utf8);
    RUN(test_escape_makes_line_breaks_visible);
    RUN(test_escape_makes_controls_visible);
    RUN(test_escape_shows_invalid_bytes_in_hex);
    RUN(test_escape_never_cuts_an_escape_or_a_character);
    RUN(test_log_msg_writes_one_escaped_line);
    RUN(test_log_msg_bounds_a_long_escaped_message);
    UNIT_EXIT();
}
