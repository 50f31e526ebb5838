/* promptctl's one rendering of untrusted text; see ctl_text.h. */
#include "ctl_text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Bytes of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * surrogates or code points past U+10FFFF), its code point in *cp; 0 when
 * s does not start one. promptctl links nothing of the daemon's utf8.c. */
static size_t ctl_text_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    size_t need = s[0] < 0x80   ? 1
                  : s[0] < 0xC2 ? 0
                  : s[0] < 0xE0 ? 2
                  : s[0] < 0xF0 ? 3
                  : s[0] < 0xF5 ? 4
                                : 0;
    if (need == 0 || need > len)
        return 0;
    uint32_t v = need == 1 ? s[0] : s[0] & (0x7F >> need);
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[need] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return need;
}

size_t ctl_text_escape_char(const char *s, size_t len, char *esc, size_t *used) {
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp = u[0];
    size_t n = ctl_text_decode(u, len, &cp);
    *used = n ? n : 1;
    if (n == 0) /* not UTF-8: a raw 0x9B is CSI to an 8-bit terminal */
        return (size_t)snprintf(esc, CTL_TEXT_ESC_MAX, "\\x%02x", u[0]);
    if (cp == '\n' || cp == '\t')
        return 0;
    if (cp < 0x20 || cp == 0x7F)
        return (size_t)snprintf(esc, CTL_TEXT_ESC_MAX, "\\x%02x", (unsigned)cp);
    if (cp >= 0x80 && cp <= 0x9F)
        return (size_t)snprintf(esc, CTL_TEXT_ESC_MAX, "\\u%04x", (unsigned)cp);
    return 0;
}

void ctl_text_write(FILE *f, const char *s, size_t len) {
    size_t i = 0, plain = 0; /* s[plain..i) prints as it is, written in one go */
    while (i < len) {
        char esc[CTL_TEXT_ESC_MAX];
        size_t used, n = ctl_text_escape_char(s + i, len - i, esc, &used);
        if (n) {
            fwrite(s + plain, 1, i - plain, f);
            fwrite(esc, 1, n, f);
            plain = i + used;
        }
        i += used;
    }
    fwrite(s + plain, 1, len - plain, f);
}

void ctl_text_printf(FILE *f, const char *fmt, ...) {
    char small[1024], *text = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof small) {
        text = xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    ctl_text_write(f, text, (size_t)n);
    if (text != small)
        free(text);
}

void ctl_text_write_json(FILE *f, const char *json) {
    /* Outside strings JSON text is ASCII, so a C1 sequence or DEL is always
     * inside a string, where \u00NN means the same character. */
    for (const char *p = json; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == 0x7F)
            fputs("\\u007f", f);
        else if (c == 0xC2 && (unsigned char)p[1] >= 0x80 && (unsigned char)p[1] <= 0x9F)
            fprintf(f, "\\u%04x", (unsigned char)*++p);
        else
            fputc(c, f);
    }
}
