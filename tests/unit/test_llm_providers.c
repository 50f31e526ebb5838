/* The provider modules: each response parser on recorded bodies cut at
 * every split point (two chunks) and fed one byte at a time, streamed and
 * whole, with in-stream errors, missing final messages, truncation and
 * token counts; the request builders; the shared helpers. */
#include <stdlib.h>

#include "config.h"
#include "llm_provider.h"
#include "llm_target.h"
#include "unit.h"

/* What one parse produced. */
struct parsed {
    char text[4096];
    char deltas[4096]; /* on_text pieces, concatenated */
    int feed_rc, finish_rc;
    bool done, truncated, has_error;
    char error[512];
    long long tp, tc;
};

static bool collect_text(void *arg, const char *s, size_t n) {
    char *buf = arg;
    size_t len = strlen(buf);
    if (len + n < 4096) {
        memcpy(buf + len, s, n);
        buf[len + n] = '\0';
    }
    return true;
}

/* Parses body cut at the given points (sorted, each <= len). */
static void parse_cuts(const struct llm_provider *prov, bool stream, const char *body,
                       const size_t *cuts, size_t ncuts, struct parsed *out) {
    memset(out, 0, sizeof *out);
    struct llm_reply reply;
    llm_reply_init(&reply);
    reply.on_text = collect_text;
    reply.arg = out->deltas;
    struct llm_parser *p = prov->parser_new(stream, &reply);
    size_t len = strlen(body), at = 0;
    out->feed_rc = 0;
    for (size_t i = 0; i <= ncuts && out->feed_rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        out->feed_rc = prov->parser_feed(p, body + at, end - at);
        at = end;
    }
    out->finish_rc = out->feed_rc == 0 ? prov->parser_finish(p) : -1;
    prov->parser_free(p);
    if (reply.text)
        snprintf(out->text, sizeof out->text, "%s", reply.text);
    out->done = reply.done;
    out->truncated = reply.truncated;
    out->has_error = reply.error != NULL;
    if (reply.error)
        snprintf(out->error, sizeof out->error, "%s", reply.error);
    out->tp = reply.tokens_prompt;
    out->tc = reply.tokens_completion;
    llm_reply_clear(&reply);
}

static void parse_whole(const struct llm_provider *prov, bool stream, const char *body,
                        struct parsed *out) {
    parse_cuts(prov, stream, body, NULL, 0, out);
}

static bool same(const struct parsed *a, const struct parsed *b) {
    return strcmp(a->text, b->text) == 0 && strcmp(a->deltas, b->deltas) == 0 &&
           a->done == b->done && a->truncated == b->truncated && a->has_error == b->has_error &&
           a->tp == b->tp && a->tc == b->tc && (a->finish_rc == 0) == (b->finish_rc == 0);
}

/* Every two-chunk split and the byte-by-byte feed give the whole-body
 * result. Returns the first split that differs, or -1. */
static long every_split_agrees(const struct llm_provider *prov, bool stream, const char *body) {
    struct parsed whole, cut;
    parse_whole(prov, stream, body, &whole);
    size_t len = strlen(body);
    for (size_t k = 0; k <= len; k++) {
        parse_cuts(prov, stream, body, &k, 1, &cut);
        if (!same(&whole, &cut))
            return (long)k;
    }
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    parse_cuts(prov, stream, body, cuts, len ? len - 1 : 0, &cut);
    free(cuts);
    return same(&whole, &cut) ? -1 : (long)len + 1;
}

/* The model's text all samples carry: escapes, é, a surrogate pair (🚀). */
#define MODEL_TEXT "{\"improved_prompt\":\"Caf\xc3\xa9 \xf0\x9f\x9a\x80 \\\"x\\\"\\nend\"}"

/* ---- Ollama ---- */

static const char ollama_stream[] =
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"{\\\"improved_\"},"
    "\"done\":false}\n"
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"prompt\\\":\\\"Caf\\u00e9 "
    "\\ud83d\\ude80 \\\\\\\"x\\\\\\\"\"},\"done\":false}\n"
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\\\\nend\\\"}\"},"
    "\"done\":false}\n"
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
    "\"done_reason\":\"stop\",\"prompt_eval_count\":12,\"eval_count\":34}\n";

static void test_ollama_stream_every_split(void) {
    struct parsed p;
    parse_whole(&llm_provider_ollama, true, ollama_stream, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK_STR(p.text, MODEL_TEXT);
    CHECK_STR(p.deltas, MODEL_TEXT);
    CHECK(p.done && !p.truncated && !p.has_error);
    CHECK_INT(p.tp, 12);
    CHECK_INT(p.tc, 34);
    CHECK_INT(every_split_agrees(&llm_provider_ollama, true, ollama_stream), -1);
}

static void test_ollama_whole_body(void) {
    const char *body = "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":"
                       "\"{\\\"a\\\":1}\"},\"done\":true,\"done_reason\":\"stop\","
                       "\"prompt_eval_count\":5,\"eval_count\":6}";
    struct parsed p;
    parse_whole(&llm_provider_ollama, false, body, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK_STR(p.text, "{\"a\":1}");
    CHECK_INT(p.tp, 5);
    CHECK_INT(every_split_agrees(&llm_provider_ollama, false, body), -1);
}

static void test_ollama_error_line_after_200(void) {
    const char *body = "{\"message\":{\"content\":\"{\\\"a\"},\"done\":false}\n"
                       "{\"error\":\"an error was encountered while running the model\"}\n";
    struct parsed p;
    parse_whole(&llm_provider_ollama, true, body, &p);
    CHECK(p.finish_rc != 0 || p.feed_rc != 0);
    CHECK_STR(p.error, "an error was encountered while running the model");
    CHECK_INT(every_split_agrees(&llm_provider_ollama, true, body), -1);
}

static void test_ollama_stream_without_done_is_an_error(void) {
    const char *body = "{\"message\":{\"content\":\"{\\\"a\\\":\"},\"done\":false}\n"
                       "{\"message\":{\"content\":\"1}\"},\"do";
    struct parsed p;
    parse_whole(&llm_provider_ollama, true, body, &p);
    CHECK(p.finish_rc != 0);
    CHECK(!p.done);
    CHECK(strstr(p.error, "done") != NULL);
    CHECK_INT(every_split_agrees(&llm_provider_ollama, true, body), -1);
}

static void test_ollama_length_is_truncated(void) {
    const char *body =
        "{\"message\":{\"content\":\"{\\\"a\"},\"done\":false}\n"
        "{\"message\":{\"content\":\"\"},\"done\":true,\"done_reason\":\"length\"}\n";
    struct parsed p;
    parse_whole(&llm_provider_ollama, true, body, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK(p.truncated);
    CHECK_INT(p.tp, -1);
}

static void test_ollama_invalid_utf8_is_replaced(void) {
    const char *body = "{\"message\":{\"content\":\"a\xc3(\xff\"},\"done\":true}\n";
    struct parsed p;
    parse_whole(&llm_provider_ollama, true, body, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK_STR(p.text, "a\xef\xbf\xbd(\xef\xbf\xbd");
}

/* ---- OpenAI ---- */

static const char openai_stream[] =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
    ": keep-alive comment\r\n\r\n"
    "data: "
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"{\\\"improved_prompt\\\":\\\"Caf\\u00e9 "
    "\"}}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\ud83d\\ude80 "
    "\\\\\\\"x\\\\\\\"\\\\nend\\\"}\"},"
    "\"finish_reason\":\"stop\"}]}\r\n\r\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":8}}\r\n\r\n"
    "data: [DONE]\r\n\r\n";

static void test_openai_stream_every_split(void) {
    struct parsed p;
    parse_whole(&llm_provider_openai, true, openai_stream, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK_STR(p.text, MODEL_TEXT);
    CHECK(p.done && !p.truncated);
    CHECK_INT(p.tp, 7);
    CHECK_INT(p.tc, 8);
    CHECK_INT(every_split_agrees(&llm_provider_openai, true, openai_stream), -1);
}

static void test_openai_whole_body(void) {
    const char *body = "{\n  \"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", "
                       "\"content\": \"{\\\"a\\\":1}\"}, \"finish_reason\": \"length\"}],\n"
                       "  \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 4}\n}\n";
    struct parsed p;
    parse_whole(&llm_provider_openai, false, body, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK_STR(p.text, "{\"a\":1}");
    CHECK(p.truncated);
    CHECK_INT(p.tc, 4);
    CHECK_INT(every_split_agrees(&llm_provider_openai, false, body), -1);
}

static void test_openai_error_event_and_missing_done(void) {
    const char *err = "data: {\"choices\":[{\"delta\":{\"content\":\"{\"}}]}\n\n"
                      "data: {\"error\":{\"message\":\"The server had an error\",\"type\":"
                      "\"server_error\"}}\n\n";
    struct parsed p;
    parse_whole(&llm_provider_openai, true, err, &p);
    CHECK(p.has_error);
    CHECK_STR(p.error, "The server had an error");
    CHECK_INT(every_split_agrees(&llm_provider_openai, true, err), -1);
    const char *cut = "data: {\"choices\":[{\"delta\":{\"content\":\"{\"}}]}\n\n";
    parse_whole(&llm_provider_openai, true, cut, &p);
    CHECK(p.finish_rc != 0);
    CHECK(strstr(p.error, "[DONE]") != NULL);
}

static void test_openai_refusal_is_an_error(void) {
    const char *body = "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I can't\"},"
                       "\"finish_reason\":\"stop\"}]}";
    struct parsed p;
    parse_whole(&llm_provider_openai, false, body, &p);
    CHECK(p.finish_rc != 0);
    CHECK(strstr(p.error, "refused") != NULL);
}

/* ---- Anthropic ---- */

static const char anthropic_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":"
    "21,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"t1\",\"name\":\"submit_improved_prompt\",\"input\":{}}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"improved_prompt\\\":\\\"Caf\\u00e9 \\ud83d\\ude80 \"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"\\\\\\\"x\\\\\\\"\\\\nend\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":"
    "{\"output_tokens\":55}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static void test_anthropic_stream_every_split(void) {
    struct parsed p;
    parse_whole(&llm_provider_anthropic, true, anthropic_stream, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK_STR(p.text, MODEL_TEXT);
    CHECK(p.done && !p.truncated);
    CHECK_INT(p.tp, 21);
    CHECK_INT(p.tc, 55);
    CHECK_INT(every_split_agrees(&llm_provider_anthropic, true, anthropic_stream), -1);
}

static void test_anthropic_tool_use_message(void) {
    const char *body =
        "{\"id\":\"msg\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
        "\"tool_use\",\"id\":\"t\",\"name\":\"submit_improved_prompt\",\"input\":{\"role\":\"R\","
        "\"confidence\":0.5}}],\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":9,"
        "\"output_tokens\":10}}";
    struct parsed p;
    parse_whole(&llm_provider_anthropic, false, body, &p);
    CHECK_INT(p.finish_rc, 0);
    json_t *obj = json_loads(p.text, 0, NULL);
    CHECK(obj != NULL);
    CHECK_STR(json_string_value(json_object_get(obj, "role")), "R");
    json_decref(obj);
    CHECK(p.truncated);
    CHECK_INT(p.tp, 9);
    CHECK_INT(every_split_agrees(&llm_provider_anthropic, false, body), -1);
}

static void test_anthropic_error_event(void) {
    const char *body = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"
                       "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                       "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    struct parsed p;
    parse_whole(&llm_provider_anthropic, true, body, &p);
    CHECK(p.has_error);
    CHECK_STR(p.error, "overloaded_error: Overloaded");
    CHECK_INT(every_split_agrees(&llm_provider_anthropic, true, body), -1);
}

/* ---- Gemini ---- */

static const char gemini_stream[] =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"thinking...\", \"thought\": "
    "true}, {\"text\": \"{\\\"improved_prompt\\\":\\\"Caf\\u00e9 \"}],\"role\": \"model\"}}],"
    "\"usageMetadata\": {\"promptTokenCount\": 11}}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\\ud83d\\ude80 "
    "\\\\\\\"x\\\\\\\"\\\\nend\\\"}\"}],\"role\": \"model\"},\"finishReason\": \"STOP\"}],"
    "\"usageMetadata\": {\"promptTokenCount\": 11,\"candidatesTokenCount\": 22}}\r\n\r\n";

static void test_gemini_stream_every_split(void) {
    struct parsed p;
    parse_whole(&llm_provider_gemini, true, gemini_stream, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK_STR(p.text, MODEL_TEXT);
    CHECK(p.done);
    CHECK_INT(p.tp, 11);
    CHECK_INT(p.tc, 22);
    CHECK_INT(every_split_agrees(&llm_provider_gemini, true, gemini_stream), -1);
}

static void test_gemini_finish_reasons(void) {
    const char *max = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"{\"}]},"
                      "\"finishReason\":\"MAX_TOKENS\"}]}";
    struct parsed p;
    parse_whole(&llm_provider_gemini, false, max, &p);
    CHECK_INT(p.finish_rc, 0);
    CHECK(p.truncated);
    CHECK_INT(every_split_agrees(&llm_provider_gemini, false, max), -1);
    const char *safety = "{\"candidates\":[{\"finishReason\":\"SAFETY\"}]}";
    parse_whole(&llm_provider_gemini, false, safety, &p);
    CHECK(p.finish_rc != 0);
    CHECK(strstr(p.error, "SAFETY") != NULL);
    const char *none = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"{\"}]}}]}\n\n";
    parse_whole(&llm_provider_gemini, true, none, &p);
    CHECK(p.finish_rc != 0);
}

/* ---- request builders ---- */

static const struct llm_chat chat_base = {
    .base_url = "http://h:1",
    .model = "m1",
    .api_key = "KEY",
    .system = "SYS",
    .user = "USER",
    .stream = true,
    .keep_alive = "5m",
    .num_ctx = 4096,
};

static bool has_header(const struct llm_http *h, const char *want) {
    for (int i = 0; h->headers[i]; i++)
        if (strcmp(h->headers[i], want) == 0)
            return true;
    return false;
}

static void test_build_ollama(void) {
    struct llm_http h = {0};
    CHECK_INT(llm_provider_ollama.build_chat(&chat_base, &h), 0);
    CHECK_STR(h.url, "http://h:1/api/chat");
    json_t *b = json_loads(h.body, 0, NULL);
    CHECK(b != NULL);
    CHECK_STR(json_string_value(json_object_get(b, "model")), "m1");
    CHECK(json_is_false(json_object_get(b, "think")));
    CHECK(json_is_true(json_object_get(b, "stream")));
    CHECK_STR(json_string_value(json_object_get(b, "keep_alive")), "5m");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(b, "options"), "num_ctx")), 4096);
    CHECK(json_is_object(json_object_get(b, "format")));
    json_decref(b);
    CHECK(has_header(&h, "Authorization: Bearer KEY"));
    llm_http_clear(&h);
    struct llm_chat c = chat_base;
    c.no_think_param = true;
    c.api_key = NULL;
    CHECK_INT(llm_provider_ollama.build_chat(&c, &h), 0);
    CHECK(strstr(h.body, "\"think\"") == NULL);
    CHECK(!has_header(&h, "Authorization: Bearer KEY"));
    llm_http_clear(&h);
}

static void test_build_openai_base_with_and_without_v1(void) {
    struct llm_http h = {0};
    CHECK_INT(llm_provider_openai.build_chat(&chat_base, &h), 0);
    CHECK_STR(h.url, "http://h:1/v1/chat/completions");
    CHECK(has_header(&h, "Authorization: Bearer KEY"));
    CHECK(strstr(h.body, "\"include_usage\":true") != NULL);
    CHECK(strstr(h.body, "\"strict\":true") != NULL);
    CHECK(strstr(h.body, "\"temperature\"") != NULL);
    llm_http_clear(&h);
    struct llm_chat c = chat_base;
    c.base_url = "http://localhost:11434/v1";
    CHECK_INT(llm_provider_openai.build_chat(&c, &h), 0);
    CHECK_STR(h.url, "http://localhost:11434/v1/chat/completions");
    llm_http_clear(&h);
    CHECK_INT(llm_provider_openai.build_models(&c, &h), 0);
    CHECK_STR(h.url, "http://localhost:11434/v1/models");
    llm_http_clear(&h);
    c.model = "o3-mini"; /* a reasoning model: no temperature, short reasoning */
    CHECK_INT(llm_provider_openai.build_chat(&c, &h), 0);
    CHECK(strstr(h.body, "\"temperature\"") == NULL);
    CHECK(strstr(h.body, "\"reasoning_effort\":\"low\"") != NULL);
    c.model = "gpt-4o-mini";
    llm_http_clear(&h);
    c.base_url = "https://api.deepseek.com";
    CHECK_INT(llm_provider_openai.build_chat(&c, &h), 0);
    CHECK(strstr(h.body, "\"json_object\"") != NULL);
    llm_http_clear(&h);
}

static void test_build_anthropic_and_gemini(void) {
    struct llm_http h = {0};
    CHECK_INT(llm_provider_anthropic.build_chat(&chat_base, &h), 0);
    CHECK_STR(h.url, "http://h:1/v1/messages");
    CHECK(has_header(&h, "x-api-key: KEY"));
    CHECK(has_header(&h, "anthropic-version: 2023-06-01"));
    json_t *b = json_loads(h.body, 0, NULL);
    CHECK(b != NULL);
    const char *tool =
        json_string_value(json_object_get(json_array_get(json_object_get(b, "tools"), 0), "name"));
    CHECK_STR(json_string_value(json_object_get(json_object_get(b, "tool_choice"), "name")), tool);
    CHECK_STR(json_string_value(json_object_get(b, "system")), "SYS");
    json_decref(b);
    llm_http_clear(&h);

    struct llm_chat c = chat_base;
    c.model = "models/gemini-2.5-flash";
    CHECK_INT(llm_provider_gemini.build_chat(&c, &h), 0);
    CHECK_STR(h.url, "http://h:1/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    CHECK(has_header(&h, "x-goog-api-key: KEY"));
    CHECK(strstr(h.body, "\"thinkingBudget\":0") != NULL);
    llm_http_clear(&h);
    c.model = "gemini-2.0-flash";
    c.stream = false;
    CHECK_INT(llm_provider_gemini.build_chat(&c, &h), 0);
    CHECK_STR(h.url, "http://h:1/v1beta/models/gemini-2.0-flash:generateContent");
    CHECK(strstr(h.body, "thinkingConfig") == NULL);
    CHECK(strstr(h.body, "KEY") == NULL);
    llm_http_clear(&h);
}

/* ---- helpers ---- */

static void test_error_detail_shapes(void) {
    const char *ol = "{\"error\":\"model \\\"x\\\" not found\"}";
    char *d = llm_error_detail(ol, strlen(ol));
    CHECK_STR(d, "model \"x\" not found");
    free(d);
    const char *oa = "{\"error\":{\"message\":\"Incorrect API key\",\"type\":\"auth\"}}";
    d = llm_error_detail(oa, strlen(oa));
    CHECK_STR(d, "Incorrect API key");
    free(d);
    const char *gm = "[{\"error\":{\"code\":429,\"message\":\"quota\"}}]";
    d = llm_error_detail(gm, strlen(gm));
    CHECK_STR(d, "quota");
    free(d);
    d = llm_error_detail("  Bad Gateway\n", 14);
    CHECK_STR(d, "Bad Gateway");
    free(d);
    CHECK(llm_error_detail("", 0) == NULL);
}

static void test_parse_models_shapes(void) {
    const char *ol = "{\"models\":[{\"name\":\"llama3.2:3b\"},{\"name\":\"qwen\"}]}";
    json_t *m = llm_parse_models(ol, strlen(ol));
    CHECK(m != NULL && json_array_size(m) == 2);
    CHECK_STR(json_string_value(json_array_get(m, 0)), "llama3.2:3b");
    json_decref(m);
    const char *oa = "{\"object\":\"list\",\"data\":[{\"id\":\"gpt-4o\"}]}";
    m = llm_parse_models(oa, strlen(oa));
    CHECK_STR(json_string_value(json_array_get(m, 0)), "gpt-4o");
    json_decref(m);
    const char *gm = "{\"models\":[{\"name\":\"models/gemini-2.0-flash\"}]}";
    m = llm_parse_models(gm, strlen(gm));
    CHECK_STR(json_string_value(json_array_get(m, 0)), "gemini-2.0-flash");
    json_decref(m);
    CHECK(llm_parse_models("[]", 2) == NULL);
    CHECK(llm_parse_models("nope", 4) == NULL);
}

static void test_keep_alive_forms(void) {
    json_t *v = llm_keep_alive_json("-1");
    CHECK(json_is_integer(v) && json_integer_value(v) == -1);
    json_decref(v);
    v = llm_keep_alive_json("300");
    CHECK(json_is_integer(v) && json_integer_value(v) == 300);
    json_decref(v);
    v = llm_keep_alive_json("5m");
    CHECK_STR(json_string_value(v), "5m");
    json_decref(v);
    v = llm_keep_alive_json("-");
    CHECK_STR(json_string_value(v), "-");
    json_decref(v);
}

static void test_reply_text_limit(void) {
    struct llm_reply r;
    llm_reply_init(&r);
    r.max_text = 4;
    CHECK_INT(llm_reply_text(&r, "abcd", 4), 0);
    CHECK_INT(llm_reply_text(&r, "e", 1), -1);
    CHECK(r.error != NULL);
    CHECK_STR(r.text, "abcd");
    llm_reply_clear(&r);
    CHECK(r.text == NULL && r.max_text == 4);
}

/* ---- targets ---- */

static void test_ollama_host_forms(void) {
    static const char *const cases[][2] = {
        {"127.0.0.1", "http://127.0.0.1:11434"},
        {"gpu-box:8080", "http://gpu-box:8080"},
        {"0.0.0.0", "http://127.0.0.1:11434"},
        {"0.0.0.0:9999", "http://127.0.0.1:9999"},
        {"https://ollama.example.com", "https://ollama.example.com"},
        {"http://0.0.0.0:1234", "http://127.0.0.1:1234"},
        {"http://h:1", "http://h:1"},
        {"[::1]", "http://[::1]:11434"},
        {"[::1]:5000", "http://[::1]:5000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *u = llm_ollama_host_url(cases[i][0]);
        CHECK_STR(u, cases[i][1]);
        free(u);
    }
}

static void test_public_url_hides_credentials(void) {
    char out[256];
    config_public_url("https://user:pw@host:1/v1?key=secret", out, sizeof out);
    CHECK_STR(out, "https://host:1/v1");
    config_public_url("http://localhost:11434", out, sizeof out);
    CHECK_STR(out, "http://localhost:11434");
}

static void test_target_resolution(void) {
    struct config cfg = {0};
    cfg.llm_provider = "openai";
    cfg.llm_model = "gpt-x";
    cfg.llm_base_url = "http://proxy:1/v1/";
    cfg.llm_api_key = "generic";
    cfg.anthropic_api_key = "ant";
    struct llm_target t = {0};
    CHECK_INT(llm_target_resolve(&cfg, NULL, NULL, &t), 0);
    CHECK_STR(t.name, "openai");
    CHECK_STR(t.model, "gpt-x");
    CHECK_STR(t.base_url, "http://proxy:1/v1");
    CHECK_STR(t.api_key, "generic");
    llm_target_clear(&t);
    /* Another provider: its defaults and only its own key. */
    CHECK_INT(llm_target_resolve(&cfg, "gemini", NULL, &t), 0);
    CHECK_STR(t.model, "gemini-2.0-flash");
    CHECK_STR(t.base_url, "https://generativelanguage.googleapis.com");
    CHECK(t.api_key == NULL);
    llm_target_clear(&t);
    CHECK_INT(llm_target_resolve(&cfg, "anthropic", "claude-x", &t), 0);
    CHECK_STR(t.model, "claude-x");
    CHECK_STR(t.api_key, "ant");
    llm_target_clear(&t);
    CHECK_INT(llm_target_resolve(&cfg, "builtin", NULL, &t), 0);
    CHECK(t.prov == NULL && t.base_url == NULL);
    CHECK_STR(t.model, "builtin");
    llm_target_clear(&t);
    cfg.ollama_host = "box:7";
    CHECK_INT(llm_target_resolve(&cfg, "ollama", NULL, &t), 0);
    CHECK_STR(t.base_url, "http://box:7");
    CHECK_STR(t.model, "llama3.2:3b");
    llm_target_clear(&t);
}

int main(void) {
    RUN(test_ollama_stream_every_split);
    RUN(test_ollama_whole_body);
    RUN(test_ollama_error_line_after_200);
    RUN(test_ollama_stream_without_done_is_an_error);
    RUN(test_ollama_length_is_truncated);
    RUN(test_ollama_invalid_utf8_is_replaced);
    RUN(test_openai_stream_every_split);
    RUN(test_openai_whole_body);
    RUN(test_openai_error_event_and_missing_done);
    RUN(test_openai_refusal_is_an_error);
    RUN(test_anthropic_stream_every_split);
    RUN(test_anthropic_tool_use_message);
    RUN(test_anthropic_error_event);
    RUN(test_gemini_stream_every_split);
    RUN(test_gemini_finish_reasons);
    RUN(test_build_ollama);
    RUN(test_build_openai_base_with_and_without_v1);
    RUN(test_build_anthropic_and_gemini);
    RUN(test_error_detail_shapes);
    RUN(test_parse_models_shapes);
    RUN(test_keep_alive_forms);
    RUN(test_reply_text_limit);
    RUN(test_ollama_host_forms);
    RUN(test_public_url_hides_credentials);
    RUN(test_target_resolution);
    UNIT_EXIT();
}
