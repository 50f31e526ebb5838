/* Incremental extractor of one top-level JSON string field; see
 * llm_field_stream.h. Three layers, each a small state machine fed one
 * byte at a time:
 *   - the scanner finds the first '{' outside <think>...</think>;
 *   - the object walker follows the top-level object's keys and values,
 *     skipping nested values by depth counting;
 *   - the string decoder turns escapes and raw UTF-8 of a key or of the
 *     wanted value into code points, holding back incomplete sequences.
 * Decoded value bytes collect in `out` during one feed and go to the
 * callback in one call at its end, so pieces are as large as chunks. */
#include "llm_field_stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "xalloc.h"

#define JFS_KEY_MAX 256

enum jfs_mode {
    MODE_SCAN,  /* before an object: looking for '{' or "<think>" */
    MODE_THINK, /* inside <think>: looking for "</think>" */
    MODE_OBJECT,
    MODE_DONE, /* the wanted value has been read */
};

/* Where the walker is inside the top-level object. */
enum jfs_top {
    TOP_KEY,    /* expecting a key or the end of the object */
    TOP_IN_KEY, /* decoding a key */
    TOP_COLON,
    TOP_VALUE,       /* expecting a value */
    TOP_IN_TARGET,   /* decoding the wanted value */
    TOP_SKIP_STRING, /* inside another top-level string value */
    TOP_SCALAR,      /* inside a number, true, false or null */
    TOP_NESTED,      /* inside a nested object or array */
    TOP_AFTER,       /* after a value: ',' or '}' */
};

enum jfs_str {
    STR_NORMAL,
    STR_ESCAPE,  /* after a backslash */
    STR_HEX,     /* inside \uXXXX */
    STR_WANT_BS, /* after a high surrogate: expecting '\' of its low half */
    STR_WANT_U,  /* expecting 'u' of the low half */
    STR_HEX_LOW, /* inside the low half's \uXXXX */
};

struct json_field_stream {
    char field[JFS_KEY_MAX];
    size_t field_len;
    json_field_stream_cb cb;
    void *user; /* borrowed */
    int err;
    enum jfs_mode mode;
    unsigned tag_match; /* bytes of "<think>" or "</think>" matched */

    enum jfs_top top;
    int depth;         /* nesting below the top-level object, TOP_NESTED only */
    bool nest_string;  /* TOP_NESTED: inside a string */
    bool skip_escape;  /* inside a skipped string: after a backslash */
    bool key_is_field; /* the last key read equals field */

    enum jfs_str str;
    uint32_t hex;         /* \uXXXX digits so far */
    unsigned hex_n;       /* how many digits */
    uint32_t high;        /* pending high surrogate */
    unsigned char raw[4]; /* an incomplete raw UTF-8 sequence */
    unsigned raw_len;

    char key[JFS_KEY_MAX]; /* the key being decoded */
    size_t key_len;
    bool key_overflow; /* longer than JFS_KEY_MAX: cannot match */

    char *out; /* owned; decoded value bytes of the current feed */
    size_t out_len, out_cap;
    size_t emitted;
};

static const char think_open[] = "<think>";
static const char think_close[] = "</think>";

struct json_field_stream *json_field_stream_new(const char *field, json_field_stream_cb cb,
                                                void *user) {
    struct json_field_stream *s = xcalloc(1, sizeof *s);
    size_t n = strlen(field);
    if (n >= JFS_KEY_MAX)
        n = JFS_KEY_MAX; /* marks a field that never matches, see key_done */
    else
        memcpy(s->field, field, n);
    s->field_len = n;
    s->cb = cb;
    s->user = user;
    return s;
}

void json_field_stream_free(struct json_field_stream *s) {
    if (!s)
        return;
    free(s->out);
    free(s);
}

bool json_field_stream_done(const struct json_field_stream *s) {
    return s->mode == MODE_DONE;
}

size_t json_field_stream_emitted(const struct json_field_stream *s) {
    return s->emitted;
}

/* ---- decoded output ---- */

static int out_put(struct json_field_stream *s, const char *p, size_t n) {
    if (s->out_len + n + 1 > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 256;
        while (cap < s->out_len + n + 1)
            cap *= 2;
        s->out = xrealloc(s->out, cap);
        s->out_cap = cap;
    }
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
    return JFS_OK;
}

/* Decoded bytes go to the key being read or to the output. A NUL (from
 * \u0000 or a raw byte; it always comes alone) goes out as U+FFFD, as
 * llm_result.c stores it: no client gets a NUL, and the deltas still
 * concatenate to the final prompt. */
static int put(struct json_field_stream *s, const char *p, size_t n) {
    if (s->top == TOP_IN_TARGET && n == 1 && *p == '\0')
        return out_put(s, UTF8_REPLACEMENT, sizeof UTF8_REPLACEMENT - 1);
    if (s->top == TOP_IN_TARGET)
        return out_put(s, p, n);
    if (s->key_len + n > JFS_KEY_MAX) {
        s->key_overflow = true;
        return JFS_OK;
    }
    memcpy(s->key + s->key_len, p, n);
    s->key_len += n;
    return JFS_OK;
}

static int put_replacement(struct json_field_stream *s) {
    return put(s, UTF8_REPLACEMENT, sizeof UTF8_REPLACEMENT - 1);
}

static int put_code_point(struct json_field_stream *s, uint32_t cp) {
    char buf[4];
    size_t n = utf8_encode(cp, buf);
    return n ? put(s, buf, n) : put_replacement(s);
}

/* ---- string decoder ---- */

enum { STR_MORE = 0, STR_END = 1 };

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A complete \uXXXX: pairs surrogates, replaces lone halves. `low` says
 * it was the second half of a pair whose high half is in s->high. */
static int hex_done(struct json_field_stream *s, bool low) {
    uint32_t cp = s->hex;
    s->str = STR_NORMAL;
    if (low) {
        uint32_t high = s->high;
        s->high = 0;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return put_code_point(s, 0x10000 + ((high - 0xD800) << 10) + (cp - 0xDC00));
        int rc = put_replacement(s); /* the high half had no low half */
        if (rc != JFS_OK)
            return rc;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        s->high = cp;
        s->str = STR_WANT_BS;
        return JFS_OK;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return put_replacement(s);
    return put_code_point(s, cp);
}

static int simple_escape(struct json_field_stream *s, unsigned char c) {
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    const char *hit = memchr(from, c, sizeof from - 1);
    s->str = STR_NORMAL;
    if (c == 'u') {
        s->str = STR_HEX;
        s->hex = 0;
        s->hex_n = 0;
        return JFS_OK;
    }
    return hit ? put(s, &to[hit - from], 1) : put_replacement(s);
}

/* Adds a byte to a pending raw sequence. Returns 1 when c was used, 0 when
 * the pending bytes were invalid (replaced) and c must be read afresh. */
static int raw_byte(struct json_field_stream *s, unsigned char c, int *rc) {
    s->raw[s->raw_len++] = c;
    size_t k = s->raw_len;
    uint32_t cp;
    *rc = JFS_OK;
    if (utf8_complete_prefix((const char *)s->raw, k) == 0)
        return 1; /* valid so far, wait for the rest */
    s->raw_len = 0;
    if (utf8_decode((const char *)s->raw, k, &cp) == k) {
        *rc = put(s, (const char *)s->raw, k);
        return 1;
    }
    *rc = put_replacement(s);
    return k == 1;
}

/* One byte of a string's contents. Returns STR_END at the closing quote,
 * STR_MORE otherwise, or a negative JFS status. */
static int string_byte(struct json_field_stream *s, unsigned char c) {
    int rc;
    for (;;) {
        switch (s->str) {
        case STR_NORMAL:
            if (s->raw_len > 0) {
                int used = raw_byte(s, c, &rc);
                if (rc != JFS_OK || used)
                    return rc;
                /* the pending bytes were replaced; read c afresh */
            }
            if (c == '"')
                return STR_END;
            if (c == '\\') {
                s->str = STR_ESCAPE;
                return STR_MORE;
            }
            if (c < 0x80)
                return put(s, (const char *)&c, 1);
            raw_byte(s, c, &rc); /* a first byte is always used */
            return rc;
        case STR_ESCAPE:
            return simple_escape(s, c);
        case STR_HEX:
        case STR_HEX_LOW: {
            int v = hex_value(c);
            if (v >= 0) {
                s->hex = s->hex << 4 | (uint32_t)v;
                if (++s->hex_n < 4)
                    return STR_MORE;
                return hex_done(s, s->str == STR_HEX_LOW);
            }
            /* A short \u escape: replace it (and a pending high half). */
            if (s->high && (rc = put_replacement(s)) != JFS_OK)
                return rc;
            s->high = 0;
            if ((rc = put_replacement(s)) != JFS_OK)
                return rc;
            s->str = STR_NORMAL;
            continue;
        }
        case STR_WANT_BS:
        case STR_WANT_U:
            if (s->str == STR_WANT_BS && c == '\\') {
                s->str = STR_WANT_U;
                return STR_MORE;
            }
            if (s->str == STR_WANT_U && c == 'u') {
                s->str = STR_HEX_LOW;
                s->hex = 0;
                s->hex_n = 0;
                return STR_MORE;
            }
            /* The high half stands alone. */
            s->high = 0;
            if ((rc = put_replacement(s)) != JFS_OK)
                return rc;
            s->str = s->str == STR_WANT_U ? STR_ESCAPE : STR_NORMAL;
            continue;
        }
    }
}

/* ---- object walker ---- */

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void begin_string(struct json_field_stream *s) {
    s->str = STR_NORMAL;
    s->raw_len = 0;
    s->high = 0;
}

/* Back to scanning: the object ended, or was not JSON after all. */
static void to_scan(struct json_field_stream *s) {
    s->mode = MODE_SCAN;
    s->tag_match = 0;
}

static void key_done(struct json_field_stream *s) {
    s->key_is_field = !s->key_overflow && s->field_len < JFS_KEY_MAX &&
                      s->key_len == s->field_len && memcmp(s->key, s->field, s->key_len) == 0;
    s->top = TOP_COLON;
}

/* The first byte of a top-level value. */
static void value_start(struct json_field_stream *s, unsigned char c) {
    if (c == '"') {
        s->skip_escape = false;
        s->top = TOP_SKIP_STRING;
        if (s->key_is_field) {
            begin_string(s);
            s->top = TOP_IN_TARGET;
        }
    } else if (c == '{' || c == '[') {
        s->depth = 1;
        s->nest_string = false;
        s->skip_escape = false;
        s->top = TOP_NESTED;
    } else {
        s->top = TOP_SCALAR;
    }
}

/* Skips a nested object or array by counting brackets outside strings. */
static void nested_byte(struct json_field_stream *s, unsigned char c) {
    if (s->nest_string) {
        if (s->skip_escape)
            s->skip_escape = false;
        else if (c == '\\')
            s->skip_escape = true;
        else if (c == '"')
            s->nest_string = false;
    } else if (c == '"') {
        s->nest_string = true;
    } else if (c == '{' || c == '[') {
        s->depth++;
    } else if ((c == '}' || c == ']') && --s->depth == 0) {
        s->top = TOP_AFTER;
    }
}

/* Handles ',' or '}' after a value; anything else that is not space means
 * this was not the JSON we hoped for. Returns false in that case. */
static bool after_value(struct json_field_stream *s, unsigned char c) {
    if (c == ',')
        s->top = TOP_KEY;
    else if (c == '}')
        to_scan(s);
    else if (!is_space(c))
        return false;
    return true;
}

/* One byte inside the top-level object. Returns a JFS status; a byte that
 * breaks the JSON sends the stream back to scanning (after which that
 * byte is scanned, as it may be the '{' of the real object). */
static int object_byte(struct json_field_stream *s, unsigned char c, bool *rescan) {
    int rc;
    bool ok = true;
    switch (s->top) {
    case TOP_KEY:
        if (c == '"') {
            begin_string(s);
            s->key_len = 0;
            s->key_overflow = false;
            s->top = TOP_IN_KEY;
        } else if (c == '}') {
            to_scan(s);
        } else {
            ok = is_space(c) || c == ',';
        }
        break;
    case TOP_IN_KEY:
        rc = string_byte(s, c);
        if (rc == STR_END)
            key_done(s);
        else if (rc != JFS_OK)
            return rc;
        break;
    case TOP_COLON:
        if (c == ':')
            s->top = TOP_VALUE;
        else
            ok = is_space(c);
        break;
    case TOP_VALUE:
        if (!is_space(c))
            value_start(s, c);
        ok = c != '}' && c != ']' && c != ',' && c != ':';
        break;
    case TOP_IN_TARGET:
        rc = string_byte(s, c);
        if (rc == STR_END)
            s->mode = MODE_DONE;
        else if (rc != JFS_OK)
            return rc;
        break;
    case TOP_SKIP_STRING:
        if (s->skip_escape)
            s->skip_escape = false;
        else if (c == '\\')
            s->skip_escape = true;
        else if (c == '"')
            s->top = TOP_AFTER;
        break;
    case TOP_SCALAR:
        if (c == ',' || c == '}' || is_space(c))
            ok = after_value(s, c);
        else
            ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '+' ||
                 c == '.' || c == 'E';
        if (ok && is_space(c))
            s->top = TOP_AFTER;
        break;
    case TOP_NESTED:
        nested_byte(s, c);
        break;
    case TOP_AFTER:
        ok = after_value(s, c);
        break;
    }
    if (!ok) {
        to_scan(s);
        *rescan = true;
    }
    return JFS_OK;
}

/* ---- scanner ---- */

/* Advances a match of `tag` by one byte; true when it completes. */
static bool tag_byte(struct json_field_stream *s, const char *tag, size_t tag_len,
                     unsigned char c) {
    if (c == (unsigned char)tag[s->tag_match]) {
        if (++s->tag_match == tag_len) {
            s->tag_match = 0;
            return true;
        }
        return false;
    }
    /* Both tags start with '<' and repeat no prefix, so a mismatch can only
     * restart at this byte if it is '<'. */
    s->tag_match = c == '<' ? 1 : 0;
    return false;
}

static void scan_byte(struct json_field_stream *s, unsigned char c) {
    if (s->mode == MODE_THINK) {
        if (tag_byte(s, think_close, sizeof think_close - 1, c))
            s->mode = MODE_SCAN;
        return;
    }
    if (tag_byte(s, think_open, sizeof think_open - 1, c)) {
        s->mode = MODE_THINK;
        return;
    }
    if (c == '{') {
        s->mode = MODE_OBJECT;
        s->top = TOP_KEY;
        s->key_is_field = false;
    }
}

static int consume(struct json_field_stream *s, const char *buf, size_t len) {
    for (size_t i = 0; i < len && s->mode != MODE_DONE; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (s->mode != MODE_OBJECT) {
            scan_byte(s, c);
            continue;
        }
        bool rescan = false;
        int rc = object_byte(s, c, &rescan);
        if (rc != JFS_OK)
            return rc;
        if (rescan)
            scan_byte(s, c);
    }
    return JFS_OK;
}

int json_field_stream_feed(struct json_field_stream *s, const char *buf, size_t len) {
    if (s->err != JFS_OK)
        return s->err;
    s->out_len = 0;
    int rc = consume(s, buf, len);
    if (rc == JFS_OK && s->out_len > 0) {
        s->out[s->out_len] = '\0';
        s->emitted += s->out_len;
        if (s->cb(s->user, s->out, s->out_len) != 0)
            rc = JFS_STOPPED;
    }
    s->out_len = 0;
    s->err = rc;
    return rc;
}
