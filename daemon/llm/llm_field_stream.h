/* Incremental extractor of one top-level string field of a JSON object
 * that arrives in arbitrary chunks (the model's structured output as it
 * streams): it passes on the decoded UTF-8 text of that field's value as it
 * arrives, so `improve.delta` can show the improved prompt being written.
 *
 * What it handles: escapes (\" \\ \/ \b \f \n \r \t), \uXXXX including
 * surrogate pairs, any of which may be split across chunks; raw multi-byte
 * UTF-8 split across chunks (it never emits half a code point); other
 * fields before the wanted one, with nested objects, arrays and strings
 * holding braces or escaped quotes (skipped); a key of the same name in a
 * nested object (not matched: only depth 1 keys count; keys are compared
 * after unescaping); text before the first '{' such as ```json fences or
 * prose (skipped), and <think>...</think> blocks there (skipped, even when
 * they contain '{'). If the first top-level object ends without the field,
 * it scans for the next '{'. Once the wanted value's closing quote is seen
 * it is done and ignores the rest.
 *
 * What it does not do: validate the JSON fully. It is a preview; the
 * authoritative result is result_parse_model_output on the whole text.
 * Malformed escapes and invalid UTF-8 in the value come out as U+FFFD, and
 * so does NUL (\u0000 or a raw byte), as llm_result.c stores it. A
 * '{' that turns out not to open a JSON object (prose such as "use {x}")
 * is abandoned and scanning resumes at the next '{', as the final parse's
 * repair does. The emitted text is always valid UTF-8. No I/O, no loop. */
#ifndef PROMPTD_LLM_FIELD_STREAM_H
#define PROMPTD_LLM_FIELD_STREAM_H

#include <stdbool.h>
#include <stddef.h>

enum json_field_stream_status {
    JFS_OK = 0,
    JFS_SYNTAX = -1,  /* reserved: not returned by this version (it resynchronises) */
    JFS_STOPPED = -2, /* the callback returned non-zero; sticky */
};

/* Called with the next piece of the field's decoded value: valid UTF-8,
 * len > 0, borrowed for the call only (NUL-terminated for convenience).
 * At most one call per json_field_stream_feed. Return 0 to continue,
 * non-zero to stop. */
typedef int (*json_field_stream_cb)(void *user, const char *text, size_t len);

struct json_field_stream;

/* `field` is copied (keys longer than 255 bytes are not supported and
 * never match). Returns an extractor owned by the caller
 * (json_field_stream_free). `user` borrowed. */
struct json_field_stream *json_field_stream_new(const char *field, json_field_stream_cb cb,
                                                void *user);

/* Reads len more bytes of the model's output. Returns JFS_OK or a
 * negative status (sticky). */
int json_field_stream_feed(struct json_field_stream *s, const char *buf, size_t len);

/* True once the value's closing quote has been read. */
bool json_field_stream_done(const struct json_field_stream *s);

/* Bytes of decoded text emitted so far. */
size_t json_field_stream_emitted(const struct json_field_stream *s);

/* Frees it; NULL is fine. */
void json_field_stream_free(struct json_field_stream *s);

#endif
