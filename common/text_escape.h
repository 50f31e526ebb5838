/* The visible form of text promptd did not write (a model's answer, an
 * upstream's error body, a stored row), for a terminal or a log line.
 * A terminal obeys control characters (ESC ] 0 ; title BEL sets the window
 * title, ESC [ 2 J clears the screen, C1 U+009B is CSI) and shows some
 * invisible ones in a misleading order (the bidirectional overrides of
 * "Trojan Source" reorder what is read); each of these is written as a
 * visible escape instead: other C0 controls, DEL and bytes that are not
 * UTF-8 as \xNN, C1 controls and the invisible format characters as
 * \uNNNN. promptctl's printers and the daemon's log share this one
 * definition. */
#ifndef PROMPTD_TEXT_ESCAPE_H
#define PROMPTD_TEXT_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the longest escape ("\u202e") and its NUL. */
#define TEXT_ESC_MAX 8

/* Newlines and tabs: kept in text for a person to read (a carriage return
 * is \x0d there, since it rewrites the line), escaped as \n, \r, \t where
 * one event must stay on one line (a log line, an error message). */
enum text_escape_mode { TEXT_KEEP_LINES, TEXT_ONE_LINE };

/* The visible form of the character at s (len > 0 bytes available):
 * writes an escape to esc and returns its length (not terminated), or
 * returns 0 when the character prints as itself. *used gets the bytes
 * the character takes in s (at least 1). */
size_t text_escape_char(const char *s, size_t len, enum text_escape_mode mode,
                        char esc[TEXT_ESC_MAX], size_t *used);

/* Invisible characters that change how text around them reads: the
 * bidirectional embeddings, overrides and isolates, zero-width space,
 * word joiner, byte-order mark, line and paragraph separators. ZWJ and
 * ZWNJ are not among them: emoji and Persian need them. */
bool text_is_deceptive(uint32_t cp);

#endif
