/* promptctl's one rendering of untrusted text; see ctl_text.h. */
#include "ctl_text.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "xalloc.h"

/* Writes s[0..len) with every character text_escape_char would escape
 * replaced by its escape, or left out when drop. */
static void ctl_text_write_mode(FILE *f, const char *s, size_t len, enum text_escape_mode mode,
                                bool drop) {
    size_t i = 0, plain = 0; /* s[plain..i) prints as it is, written in one go */
    while (i < len) {
        char esc[TEXT_ESC_MAX];
        size_t used, n = text_escape_char(s + i, len - i, mode, esc, &used);
        if (n) {
            fwrite(s + plain, 1, i - plain, f);
            if (!drop)
                fwrite(esc, 1, n, f);
            plain = i + used;
        }
        i += used;
    }
    fwrite(s + plain, 1, len - plain, f);
}

void ctl_text_write(FILE *f, const char *s, size_t len) {
    ctl_text_write_mode(f, s, len, TEXT_KEEP_LINES, false);
}

void ctl_text_write_clean(FILE *f, const char *s, size_t len) {
    ctl_text_write_mode(f, s, len, TEXT_KEEP_LINES, true);
}

/* Formats into a new string (xalloc's policy: never NULL). */
static char *ctl_text_vformat(const char *fmt, va_list ap, size_t *len)
    __attribute__((format(printf, 1, 0)));
static char *ctl_text_vformat(const char *fmt, va_list ap, size_t *len) {
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, again);
    va_end(again);
    char *text = xmalloc(n > 0 ? (size_t)n + 1 : 1);
    *len = n > 0 ? (size_t)vsnprintf(text, (size_t)n + 1, fmt, ap) : 0;
    text[*len] = '\0';
    return text;
}

void ctl_text_printf(FILE *f, const char *fmt, ...) {
    size_t len;
    va_list ap;
    va_start(ap, fmt);
    char *text = ctl_text_vformat(fmt, ap, &len);
    va_end(ap);
    ctl_text_write(f, text, len);
    free(text);
}

void ctl_text_error(const char *fmt, ...) {
    size_t len;
    va_list ap;
    va_start(ap, fmt);
    char *text = ctl_text_vformat(fmt, ap, &len);
    va_end(ap);
    fputs("promptctl: ", stderr);
    ctl_text_write_mode(stderr, text, len, TEXT_ONE_LINE, false);
    fputc('\n', stderr);
    free(text);
}

void ctl_text_write_json(FILE *f, const char *json) {
    /* Outside strings JSON text is ASCII, so any of these characters is
     * inside a string, where \uNNNN means the same character. */
    size_t len = strlen(json);
    for (size_t i = 0; i < len;) {
        uint32_t cp = (unsigned char)json[i];
        size_t n = cp < 0x80 ? 1 : utf8_decode(json + i, len - i, &cp);
        if (n == 0)
            n = 1; /* jansson writes valid UTF-8; pass anything else through */
        else if (cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || text_is_deceptive(cp)) {
            fprintf(f, "\\u%04x", (unsigned)cp);
            i += n;
            continue;
        }
        fwrite(json + i, 1, n, f);
        i += n;
    }
}
