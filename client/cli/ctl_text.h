/* How promptctl shows text it did not write: a model's answer, a stored
 * idea, an upstream's error message, a model name. Such text may carry
 * control characters that a terminal obeys (ESC ] 0 ; title BEL sets the
 * window title, ESC [ 2 J clears the screen, OSC 8 makes links, C1 U+009B
 * is CSI); every human-readable printer sends it through ctl_text_write,
 * which shows them as visible escapes instead: newline and tab stay, other
 * C0 controls, DEL and bytes that are not UTF-8 become \xNN (\x1b, \x0d),
 * C1 controls U+0080-U+009F become \u00NN (\u009b). --json prints the same
 * JSON with C1 and DEL as \u escapes, which parse back to the exact text. */
#ifndef PROMPTCTL_TEXT_H
#define PROMPTCTL_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* Room for the longest escape ctl_text_escape_char writes ("\u009f"). */
#define CTL_TEXT_ESC_MAX 8

/* The visible form of the character at s (len > 0 bytes available): writes
 * an escape to esc (CTL_TEXT_ESC_MAX bytes, not terminated) and returns its
 * length, or returns 0 when the character prints as itself. *used gets the
 * bytes the character takes in s (at least 1). */
size_t ctl_text_escape_char(const char *s, size_t len, char *esc, size_t *used);

/* Writes s[0..len) to f with every control character escaped. */
void ctl_text_write(FILE *f, const char *s, size_t len);

/* printf to f, the formatted text written through ctl_text_write: for
 * lines that quote what the daemon sent. The format itself must not need
 * control characters (bold and the like go out with fputs). */
void ctl_text_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes JSON text (json_dumps' output) to f with C1 controls and DEL as
 * \u00NN escapes: the same JSON value, harmless on a terminal (jansson
 * already escapes C0). */
void ctl_text_write_json(FILE *f, const char *json);

#endif
