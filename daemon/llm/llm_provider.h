/* The small interface every LLM provider module implements (llm_ollama.c,
 * llm_openai.c, llm_anthropic.c, llm_gemini.c): build the HTTP request,
 * feed the response bytes to a parser, finish. Providers know nothing of
 * the loop, curl, queues or JSON-RPC; llm.c drives them. Pure enough to be
 * unit-tested on every chunk split of a recorded response. */
#ifndef PROMPTD_LLM_PROVIDER_H
#define PROMPTD_LLM_PROVIDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Everything a provider needs to build one request; all borrowed. */
struct llm_chat {
    const char *base_url; /* no trailing slash */
    const char *model;
    const char *api_key; /* NULL when none */
    const char *system;  /* the system prompt */
    const char *user;    /* the user message */
    bool stream;
    bool no_think_param;    /* Ollama: this model rejects `think`; leave it out */
    const char *keep_alive; /* Ollama's keep_alive, NULL: its default */
    long num_ctx;           /* Ollama's options.num_ctx, 0: its default */
};

#define LLM_HTTP_MAX_HEADERS 6

/* A built request. Every string is owned (free with llm_http_clear). */
struct llm_http {
    char *url;
    char *body; /* NULL for GET */
    size_t body_len;
    char *headers[LLM_HTTP_MAX_HEADERS + 1]; /* NULL-terminated */
};

void llm_http_clear(struct llm_http *h);
/* Adds "Name: value" (printf-style). Returns 0 or -1. */
int llm_http_header(struct llm_http *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets body to the compact JSON of obj (borrowed) and adds its
 * Content-Type header. Returns 0 or -1. */
int llm_http_json_body(struct llm_http *h, const json_t *obj);
/* url = base + path (printf-style path). Returns 0 or -1. */
int llm_http_url(struct llm_http *h, const char *base, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What a response parser builds up. The engine owns it; a parser writes. */
struct llm_reply {
    char *text; /* owned; the model's output (the structured JSON) so far, NUL-terminated */
    size_t len, cap;
    size_t max_text;             /* bound on len; 0: none */
    bool done;                   /* the provider's final message was seen */
    bool truncated;              /* stopped at its output-token limit */
    char *error;                 /* owned; an error the backend reported (in a 200 body/stream) */
    long long tokens_prompt;     /* -1: unknown */
    long long tokens_completion; /* -1: unknown */
    /* Called with each new piece of text as it is appended (streaming
     * deltas); may be NULL. Return false to stop. */
    bool (*on_text)(void *arg, const char *s, size_t n);
    void *arg;
};

void llm_reply_init(struct llm_reply *r);
void llm_reply_clear(struct llm_reply *r);
/* Appends model text and passes it to on_text. Returns 0, or -1 (error set)
 * when it would pass max_text, memory ran out, or on_text stopped. */
int llm_reply_text(struct llm_reply *r, const char *s, size_t n);
/* Sets the error once (the first one wins); printf-style. */
void llm_reply_fail(struct llm_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a JSON document that may hold invalid UTF-8 (which jansson
 * refuses): invalid bytes become U+FFFD first. New reference or NULL. */
json_t *llm_json_loadb(const char *data, size_t len);

/* A growing byte buffer (a non-streamed body). data is owned, NUL-
 * terminated once anything was appended. */
struct llm_buf {
    char *data;
    size_t len, cap;
};
/* Appends; on failure fails reply (when not NULL) and returns -1. */
int llm_buf_append(struct llm_buf *b, struct llm_reply *reply, const char *s, size_t n);
void llm_buf_free(struct llm_buf *b);

struct sse;
/* sse_feed with the error mapped into reply; 0 or -1. */
int llm_sse_feed(struct sse *events, struct llm_reply *reply, const char *data, size_t len);
/* End of an SSE stream: -1 (reply->error set) on a parser error, an error
 * event, or when the final message (final_name, for the sentence) was not
 * seen (reply->done false); else 0. */
int llm_sse_finish(struct sse *events, struct llm_reply *reply, const char *final_name);

/* Ollama's keep_alive: a number when v is one ("-1", "300"), else the
 * duration string ("5m"). New reference. */
json_t *llm_keep_alive_json(const char *v);

struct llm_parser; /* a provider's response parser (opaque) */

struct llm_provider {
    const char *name;             /* "ollama" */
    const char *label;            /* "Ollama", for messages */
    const char *default_base_url; /* without trailing slash */
    const char *default_model;
    bool key_required;     /* a key is needed at the default base URL */
    const char *key_names; /* config keys that hold its key, for messages */
    /* Build the improve request / the model-list request. 0 or -1. */
    int (*build_chat)(const struct llm_chat *c, struct llm_http *out);
    int (*build_models)(const struct llm_chat *c, struct llm_http *out);
    /* Loads the model ahead of the first request (LLM_PREWARM); NULL when
     * the provider has nothing to load. */
    int (*build_prewarm)(const struct llm_chat *c, struct llm_http *out);
    /* A parser for one 2xx response body writing into reply (borrowed;
     * outlives the parser). NULL when out of memory. */
    struct llm_parser *(*parser_new)(bool stream, struct llm_reply *reply);
    /* Reads the next bytes; -1 on a fatal error (reply->error says why). */
    int (*parser_feed)(struct llm_parser *p, const char *data, size_t len);
    /* End of body: completes reply (done, tokens, text). -1 on error. */
    int (*parser_finish)(struct llm_parser *p);
    void (*parser_free)(struct llm_parser *p);
};

extern const struct llm_provider llm_provider_ollama;
extern const struct llm_provider llm_provider_openai;
extern const struct llm_provider llm_provider_anthropic;
extern const struct llm_provider llm_provider_gemini;

/* The provider called name, or NULL (builtin is not one of these). */
const struct llm_provider *llm_provider_find(const char *name);

/* The message of an HTTP error body: {"error": "..."}, {"error":
 * {"message": ...}}, {"message": ...}, else the body's first 200 bytes as
 * valid UTF-8. malloc'd, owned by the caller; NULL for an empty body. */
char *llm_error_detail(const char *body, size_t len);

/* Model names from a model-list body: Ollama {"models":[{"name"}]}, OpenAI
 * and Anthropic {"data":[{"id"}]}, Gemini {"models":[{"name":
 * "models/x"}]} (prefix dropped). New reference (array), NULL when the
 * body is none of these. */
json_t *llm_parse_models(const char *body, size_t len);

#endif
