/* libFuzzer target: the streaming parsers (SSE, NDJSON and the incremental
 * improved_prompt extractor) fed the same bytes in fuzzer-chosen chunks.
 * The extractor's output must always be valid UTF-8. */
#include <stdint.h>
#include <stdlib.h>

#include "llm_field_stream.h"
#include "llm_ndjson.h"
#include "llm_sse.h"
#include "utf8.h"

#define LIMIT 4096

static int on_event(void *user, const char *event, const char *data, size_t len) {
    if (!event || (len && !data))
        abort();
    return 0;
}

static int on_line(void *user, const char *line, size_t len) {
    if (len == 0 || line[len] != '\0')
        abort(); /* blank lines are skipped; lines are NUL-terminated */
    return 0;
}

static int on_text(void *user, const char *text, size_t len) {
    if (!utf8_valid(text, len))
        abort();
    *(size_t *)user += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    /* The first byte picks the chunk size, so splits land everywhere. */
    size_t chunk = (size_t)data[0] % 17 + 1;
    const char *buf = (const char *)data + 1;
    size = size - 1;
    size_t emitted = 0;
    struct sse *sse = sse_new(LIMIT, on_event, NULL);
    struct ndjson *nd = ndjson_new(LIMIT, on_line, NULL);
    struct json_field_stream *jfs = json_field_stream_new("improved_prompt", on_text, &emitted);
    if (!sse || !nd || !jfs)
        abort();
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        sse_feed(sse, buf + off, n);
        ndjson_feed(nd, buf + off, n);
        json_field_stream_feed(jfs, buf + off, n);
    }
    sse_finish(sse);
    ndjson_finish(nd);
    if (json_field_stream_emitted(jfs) != emitted)
        abort();
    sse_free(sse);
    ndjson_free(nd);
    json_field_stream_free(jfs);
    return 0;
}
