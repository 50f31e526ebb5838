/* How promptctl shows text it did not write: a model's answer, a stored
 * idea, an upstream's error message, a model name. Such text may carry
 * control characters that a terminal obeys (ESC ] 0 ; title BEL sets the
 * window title, ESC [ 2 J clears the screen, OSC 8 makes links, C1 U+009B
 * is CSI); every human-readable printer sends it through ctl_text_write,
 * which shows them as visible escapes instead (common/text_escape.h:
 * newline and tab stay, other C0 controls, DEL and bytes that are not
 * UTF-8 become \xNN, C1 controls and the bidirectional overrides \uNNNN).
 * --json prints the same JSON with those as \u escapes, which parse back
 * to the exact text. */
#ifndef PROMPTCTL_TEXT_H
#define PROMPTCTL_TEXT_H

#include <stddef.h>
#include <stdio.h>

#include "text_escape.h"

/* Writes s[0..len) to f with every control character escaped. */
void ctl_text_write(FILE *f, const char *s, size_t len);

/* Writes s[0..len) to f without the characters ctl_text_write escapes
 * (newline and tab stay): for the clipboard, where a pasted escape
 * sequence would reach whatever program is in front, and an escape
 * written out would change the prompt. */
void ctl_text_write_clean(FILE *f, const char *s, size_t len);

/* printf to f, the formatted text written through ctl_text_write: for
 * lines that quote what the daemon sent. The format itself must not need
 * control characters (bold and the like go out with fputs). */
void ctl_text_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "promptctl: MESSAGE" on stderr, the formatted message on one line
 * (its newlines shown as \n): a backend's error body cannot print a line
 * that looks like promptctl's own advice. */
void ctl_text_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes JSON text (json_dumps' output) to f with C1 controls, DEL and the
 * deceptive invisible characters as \uNNNN escapes: the same JSON value,
 * harmless on a terminal (jansson already escapes C0). */
void ctl_text_write_json(FILE *f, const char *json);

#endif
