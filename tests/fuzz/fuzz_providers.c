/* libFuzzer target: the four providers' response parsers (streamed and
 * whole) fed fuzzer bytes in fuzzer-chosen chunks, then finished. Whatever
 * a backend sends, the model text they collect is valid UTF-8, the error
 * they report is a string, and nothing leaks or overflows. */
#include <stdint.h>
#include <stdlib.h>

#include "llm_provider.h"
#include "utf8.h"

static bool on_text(void *arg, const char *s, size_t n) {
    if (!utf8_valid(s, n))
        abort();
    *(size_t *)arg += n;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const struct llm_provider *const provs[] = {
        &llm_provider_ollama, &llm_provider_openai, &llm_provider_anthropic, &llm_provider_gemini};
    if (size < 1)
        return 0;
    /* The first byte picks the provider, the mode and the chunk size. */
    const struct llm_provider *prov = provs[data[0] & 3];
    bool stream = (data[0] >> 2) & 1;
    size_t chunk = (size_t)(data[0] >> 3) + 1;
    const char *buf = (const char *)data + 1;
    size--;
    size_t seen = 0;
    struct llm_reply reply;
    llm_reply_init(&reply);
    reply.on_text = on_text;
    reply.arg = &seen;
    reply.max_text = 1 << 16;
    struct llm_parser *p = llm_parser_new(prov, stream, &reply);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        rc = llm_parser_feed(p, buf + off, n);
    }
    if (rc == 0)
        rc = llm_parser_finish(p);
    llm_parser_free(p);
    if (seen != reply.len || (reply.text && !utf8_valid(reply.text, reply.len)))
        abort();
    if (rc != 0 && !reply.error)
        abort(); /* a failure always says why */
    llm_reply_clear(&reply);
    return 0;
}
