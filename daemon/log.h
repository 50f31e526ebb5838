/* Logging: one line per event on stderr, "TIME LEVEL message"; control
 * characters in a message are escaped (log_escape), so a message is always
 * one line. Never pass a secret to these functions. */
#ifndef PROMPTD_LOG_H
#define PROMPTD_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses debug|info|warn|error (also "warning"); returns -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

/* Copies s[0..len) into out (cap bytes, no terminator) with what must not
 * reach a log line raw made visible: \n \r \t as those two characters,
 * other C0 controls, DEL and bytes that are not UTF-8 as \xNN, C1
 * controls (U+0080-U+009F) as \u00NN. Stops before a piece that does not
 * fit. Returns the bytes written. log_msg applies it to every message. */
size_t log_escape(const char *s, size_t len, char *out, size_t cap);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
