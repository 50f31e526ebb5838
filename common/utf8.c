/* UTF-8 helpers; see utf8.h. The decoder is the one place that decides
 * what well-formed means (RFC 3629 table 3-7); everything else uses it. */
#include "utf8.h"

#include <string.h>

#include "xalloc.h"

/* Expected sequence length from the lead byte, 0 for bytes that cannot
 * start a sequence (continuations, C0/C1 overlong leads, F5..FF). */
static size_t lead_length(unsigned char c) {
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* The allowed range of the second byte depends on the lead: that is how
 * overlongs (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points
 * above U+10FFFF (F4 90..BF) are rejected without decoding first. */
static int second_byte_ok(unsigned char lead, unsigned char b) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead == 0xE0)
        lo = 0xA0;
    else if (lead == 0xED)
        hi = 0x9F;
    else if (lead == 0xF0)
        lo = 0x90;
    else if (lead == 0xF4)
        hi = 0x8F;
    return b >= lo && b <= hi;
}

static int is_cont(unsigned char b) {
    return (b & 0xC0) == 0x80;
}

/* How many bytes of s[0..len) are a valid (possibly incomplete) start of a
 * sequence: returns the full sequence length when s begins one, with
 * *avail set to how many of its bytes are present and valid. Returns 0 when
 * the first byte(s) are invalid. */
static size_t sequence_prefix(const unsigned char *s, size_t len, size_t *avail) {
    size_t need = lead_length(s[0]);
    *avail = 1;
    if (need <= 1)
        return need;
    for (size_t i = 1; i < need && i < len; i++) {
        int ok = i == 1 ? second_byte_ok(s[0], s[1]) : is_cont(s[i]);
        if (!ok)
            return 0;
        *avail = i + 1;
    }
    return need;
}

size_t utf8_decode(const char *s, size_t len, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0)
        return 0;
    size_t avail;
    size_t need = sequence_prefix(u, len, &avail);
    if (need == 0 || avail < need)
        return 0;
    uint32_t v;
    switch (need) {
    case 1:
        v = u[0];
        break;
    case 2:
        v = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
        break;
    case 3:
        v = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
        break;
    default:
        v = (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 |
            (uint32_t)(u[2] & 0x3F) << 6 | (u[3] & 0x3F);
        break;
    }
    *cp = v;
    return need;
}

size_t utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF)
        return 0;
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

bool utf8_valid(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path: most text the daemon frames is ASCII. */
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t utf8_count(const char *s, size_t len) {
    size_t i = 0, count = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        i += n ? n : 1;
        count++;
    }
    return count;
}

size_t utf8_truncate(const char *s, size_t len, size_t max_bytes) {
    const unsigned char *u = (const unsigned char *)s;
    if (len <= max_bytes)
        return len;
    /* u[max_bytes] is the first byte cut off. If it continues a sequence,
     * find that sequence's lead (at most 3 bytes back). */
    size_t n = max_bytes;
    for (int back = 0; back < 3 && n > 0 && is_cont(u[n]); back++)
        n--;
    if (n == max_bytes || is_cont(u[n]))
        return max_bytes; /* a boundary, or a stray continuation: nothing valid is split */
    size_t need = lead_length(u[n]);
    if (need == 0 || n + need <= max_bytes)
        return max_bytes; /* invalid lead, or its sequence ends before the cut */
    return n;
}

size_t utf8_complete_prefix(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    /* A pending sequence starts within the last 3 bytes. */
    size_t start = len > 3 ? len - 3 : 0;
    for (size_t i = len; i > start; i--) {
        unsigned char c = u[i - 1];
        if (is_cont(c))
            continue;
        size_t avail;
        size_t need = sequence_prefix(u + i - 1, len - (i - 1), &avail);
        if (need > 1 && avail == len - (i - 1) && avail < need)
            return i - 1;
        return len;
    }
    return len;
}

/* Code points treated as space by utf8_trim (beyond ASCII). */
static int is_unicode_space(uint32_t cp) {
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

static int is_ascii_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Bytes of the space character at s, or 0 when s does not start with one. */
static size_t space_at(const char *s, size_t len) {
    if (is_ascii_space((unsigned char)s[0]))
        return 1;
    uint32_t cp;
    size_t n = utf8_decode(s, len, &cp);
    return n > 1 && is_unicode_space(cp) ? n : 0;
}

/* Bytes of the space character ending at s[len-1], or 0. */
static size_t space_before(const char *s, size_t len) {
    if (is_ascii_space((unsigned char)s[len - 1]))
        return 1;
    for (size_t n = 2; n <= 3 && n <= len; n++) {
        size_t got = space_at(s + len - n, n);
        if (got == n)
            return n;
    }
    return 0;
}

const char *utf8_trim(const char *s, size_t len, size_t *out_len) {
    size_t n;
    while (len > 0 && (n = space_at(s, len)) > 0) {
        s += n;
        len -= n;
    }
    while (len > 0 && (n = space_before(s, len)) > 0)
        len -= n;
    *out_len = len;
    return s;
}

char *utf8_sanitize(const char *s, size_t len, size_t max_bytes) {
    char *out = xmalloc(max_bytes + 1);
    size_t o = 0, i = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_decode(s + i, len - i, &cp);
        const char *piece = s + i;
        size_t piece_len = n;
        if (n == 0 || cp == 0) {
            piece = UTF8_REPLACEMENT;
            piece_len = sizeof UTF8_REPLACEMENT - 1;
            n = 1;
        }
        if (o + piece_len > max_bytes)
            break;
        memcpy(out + o, piece, piece_len);
        o += piece_len;
        i += n;
    }
    out[o] = '\0';
    return out;
}
