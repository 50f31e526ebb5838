/* UTF-8 helpers: strict validation (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), code-point counting, trimming and
 * truncation that never cuts a code point. Pure functions, no allocation
 * except utf8_sanitize. The framer, the params checks and the parsers that
 * hand text to clients all use these, so one definition of "valid" holds. */
#ifndef PROMPTD_UTF8_H
#define PROMPTD_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* U+FFFD, the replacement character, as UTF-8. */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* True when s[0..len) is well-formed UTF-8. NUL bytes are valid (U+0000). */
bool utf8_valid(const char *s, size_t len);

/* Decodes one code point at s (len bytes available). Returns the bytes it
 * takes (1-4) and stores it in *cp; returns 0 when the bytes there are not
 * a complete well-formed sequence (invalid, or cut short by len). */
size_t utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Encodes cp into out (at least 4 bytes); returns the bytes written, or 0
 * when cp is a surrogate or above U+10FFFF. */
size_t utf8_encode(uint32_t cp, char *out);

/* Code points in s[0..len); each byte of an invalid sequence counts as one,
 * so the result is defined for any input. */
size_t utf8_count(const char *s, size_t len);

/* Largest n <= max_bytes such that s[0..n) does not end inside a code
 * point (len is the full length). On invalid input it backs up at most 3
 * continuation bytes, so the result is always >= max_bytes - 3 when
 * max_bytes < len. Returns len when len <= max_bytes. */
size_t utf8_truncate(const char *s, size_t len, size_t max_bytes);

/* Length of the longest prefix of s[0..len) that does not end with an
 * incomplete (but so far valid) multi-byte sequence: what a streaming
 * reader may pass on now, keeping the rest for the next chunk. */
size_t utf8_complete_prefix(const char *s, size_t len);

/* Whitespace trimming: ASCII space, \t \n \v \f \r and the Unicode spaces
 * a pasted idea may carry (U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000, U+FEFF). Returns a pointer into s at the first
 * non-space byte and stores the trimmed length in *out_len. Borrowed. */
const char *utf8_trim(const char *s, size_t len, size_t *out_len);

/* A NUL-terminated copy of at most max_bytes bytes (terminator excluded)
 * of s, made valid: each invalid byte and each NUL becomes U+FFFD, and the
 * copy never ends inside a code point. For echoing untrusted text (model
 * output in error details, log lines). Returns memory owned by the caller
 * (free), never NULL. */
char *utf8_sanitize(const char *s, size_t len, size_t max_bytes);

#endif
