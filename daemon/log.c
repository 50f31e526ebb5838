#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "text_escape.h"

/* One log line at most, newline included: long enough for any message the
 * daemon writes, and one buffer means one write (see log_msg). */
#define LOG_LINE_BYTES 2048

/* The one piece of process-wide state besides the daemon context: the
 * level must be readable from anywhere a message is logged. Atomic: SIGHUP's
 * reload sets it on the loop thread while the writer and reader threads log
 * (relaxed: it orders nothing else). */
static _Atomic int current_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level) {
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void) {
    return (enum log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

int log_level_parse(const char *name) {
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return LOG_WARN;
    return -1;
}

const char *log_level_name(enum log_level level) {
    return level_names[level];
}

size_t log_escape(const char *s, size_t len, char *out, size_t cap) {
    size_t o = 0, i = 0;
    while (i < len) {
        char esc[TEXT_ESC_MAX];
        size_t used, n = text_escape_char(s + i, len - i, TEXT_ONE_LINE, esc, &used);
        const char *piece = n ? esc : s + i;
        size_t piece_len = n ? n : used;
        if (piece_len > cap - o)
            break; /* never half an escape or half a character */
        memcpy(out + o, piece, piece_len);
        o += piece_len;
        i += used;
    }
    return o;
}

void log_msg(enum log_level level, const char *fmt, ...) {
    if (level < log_get_level())
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

    /* Messages quote what others wrote (an upstream's error body, a
     * path, a model name): formatted first, then escaped here, in one
     * place, so no caller can forge a second line or send a terminal
     * escape to whoever reads the log. */
    char msg[LOG_LINE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t msg_len = m < 0 ? 0 : (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;

    /* One buffer, one write: lines from the writer thread and the loop
     * never interleave mid-line. */
    char line[LOG_LINE_BYTES];
    int n = snprintf(line, sizeof line, "%s.%03dZ %-5s ", stamp, (int)(tv.tv_usec / 1000),
                     level_names[level]);
    size_t len = n < 0 ? 0 : (size_t)n;
    len += log_escape(msg, msg_len, line + len, sizeof line - len - 1);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
