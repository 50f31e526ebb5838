#include "text_escape.h"

#include <stdio.h>

#include "utf8.h"

bool text_is_deceptive(uint32_t cp) {
    return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200B ||
           cp == 0x2060 || cp == 0xFEFF || cp == 0x2028 || cp == 0x2029;
}

size_t text_escape_char(const char *s, size_t len, enum text_escape_mode mode,
                        char esc[TEXT_ESC_MAX], size_t *used) {
    unsigned char c = (unsigned char)s[0];
    uint32_t cp = c;
    size_t n = c < 0x80 ? 1 : utf8_decode(s, len, &cp);
    *used = n ? n : 1;
    if (n == 0) /* not UTF-8: a raw 0x9B is CSI to an 8-bit terminal */
        return (size_t)snprintf(esc, TEXT_ESC_MAX, "\\x%02x", c);
    if (cp == '\n' || cp == '\t' || (cp == '\r' && mode == TEXT_ONE_LINE)) {
        if (mode == TEXT_KEEP_LINES)
            return 0;
        esc[0] = '\\';
        esc[1] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
        return 2;
    }
    if (cp < 0x20 || cp == 0x7F)
        return (size_t)snprintf(esc, TEXT_ESC_MAX, "\\x%02x", (unsigned)cp);
    if ((cp >= 0x80 && cp <= 0x9F) || text_is_deceptive(cp))
        return (size_t)snprintf(esc, TEXT_ESC_MAX, "\\u%04x", (unsigned)cp);
    return 0;
}
