/* The interface every LLM provider implements (llm_ollama.c, llm_openai.c,
 * llm_anthropic.c, llm_gemini.c, llm_builtin.c): its data and hooks in one
 * struct llm_provider, and the helpers they share to build requests and
 * read answers. Providers know nothing of the loop, curl, queues or
 * JSON-RPC; llm.c drives them. Pure enough to be unit-tested on every
 * chunk split of a recorded response. */
#ifndef PROMPTD_LLM_PROVIDER_H
#define PROMPTD_LLM_PROVIDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "llm_result.h"

/* Everything a provider needs to build one request; all borrowed. */
struct llm_chat {
    const char *base_url; /* no trailing slash */
    const char *model;
    const char *api_key; /* NULL when none */
    const char *system;  /* the system prompt */
    const char *user;    /* the user message */
    bool stream;
    bool without_extras; /* the model refused an optional switch (refuses_extras): leave it out */
    /* Settings from the configuration, for the providers that have such a
     * knob (Ollama); the others ignore them. */
    const char *keep_alive; /* LLM_KEEP_ALIVE; NULL: the backend's default */
    long num_ctx;           /* LLM_NUM_CTX; 0: the backend's default */
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
 * when it would pass max_text or on_text stopped. */
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
void llm_buf_append(struct llm_buf *b, const char *s, size_t n);
void llm_buf_free(struct llm_buf *b);

/* Ollama's keep_alive: a number when v is one ("-1", "300"), else the
 * duration string ("5m"). New reference. */
json_t *llm_keep_alive_json(const char *v);

/* How a provider frames a streamed answer. A non-streamed answer is one
 * JSON object (read_body), except with NDJSON, whose whole body is read
 * line by line like a stream. */
enum llm_framing {
    LLM_FRAMING_SSE,    /* Server-Sent Events, each event's data one JSON object */
    LLM_FRAMING_NDJSON, /* one JSON object a line */
};

/* A config key that holds a provider's API key (a secret). */
struct llm_key_var {
    const char *name;     /* "OPENAI_API_KEY" */
    const char *url_part; /* serves only a base URL containing this ("deepseek"); NULL: any */
};

#define LLM_KEY_VARS_MAX 2

/* One LLM backend, everything promptd knows about it: defined in its own
 * file (llm_ollama.c ...) and listed once in llm_providers[]
 * (llm_provider.c). config.c derives the provider's config keys from it
 * (key_vars, base_url_var), llm_target.c its base URL and key, llm.c its
 * messages; nothing else names a provider. Every hook runs on the loop
 * thread, inside one request, and does no I/O. */
struct llm_provider {
    const char *name;  /* "ollama": LLM_PROVIDER's value, the protocol's `provider` */
    const char *label; /* "Ollama", for messages */

    /* Where it is. The base URL is LLM_BASE_URL for LLM_PROVIDER, else
     * base_url_var's value, else default_base_url (no trailing slash).
     * default_base_url NULL: a local provider (improve_local), no network. */
    const char *default_base_url;
    const char *default_model;
    const char *base_url_var; /* its own config key for the base URL; NULL: none */
    /* Turns base_url_var's value into a URL when it is not one (OLLAMA_HOST
     * is "host:port"); NULL: the value is an http(s):// URL. Returns an
     * owned string. */
    char *(*base_url_of)(const char *value);

    /* Its API key: a key_vars entry that is set and made for this base URL
     * (url_part), else one that is set and serves any, else LLM_API_KEY
     * when it is LLM_PROVIDER. */
    struct llm_key_var key_vars[LLM_KEY_VARS_MAX];
    bool key_required; /* a key is needed at default_base_url */

    /* Messages. start_hint: how a user starts this server when nothing
     * listens ("start it with `ollama serve`"); NULL for a service run by
     * someone else. explain_http_error: writes into err what an error
     * answer means when the provider knows better than the engine's
     * generic sentence (Ollama's missing model) and returns true; NULL:
     * never. refuses_extras: the error says this model rejects an optional
     * switch that build_chat adds unless c->without_extras (Ollama's
     * `think`); the engine then asks again without it and remembers the
     * model. NULL: none. */
    const char *start_hint;
    bool (*explain_http_error)(const char *model, long status, const char *detail, char *err,
                               size_t errlen);
    bool (*refuses_extras)(long status, const char *detail);

    /* Requests: the improve request, the model list, and a preload of the
     * model ahead of the first request (LLM_PREWARM; NULL: nothing to
     * load). 0 or -1. */
    int (*build_chat)(const struct llm_chat *c, struct llm_http *out);
    int (*build_models)(const struct llm_chat *c, struct llm_http *out);
    int (*build_prewarm)(const struct llm_chat *c, struct llm_http *out);

    /* Responses. The parser's lifecycle (llm_parser_*, below) is written
     * once; a provider reads one JSON object at a time. final_message
     * names what completes an answer, for messages ("[DONE]"); done_data
     * is the SSE data that ends a stream without being JSON (NULL: none);
     * skip_after_done: events after the final one are not read at all;
     * sender names who sent a malformed event (NULL: label). */
    enum llm_framing framing;
    const char *final_message;
    const char *done_data;
    bool skip_after_done;
    const char *sender;
    /* One streamed event (SSE: its name; NDJSON: NULL), or one line of a
     * whole NDJSON body. 0, or -1 with r->error set. */
    int (*read_event)(struct llm_reply *r, const char *event, const json_t *obj);
    /* The whole non-streamed body (SSE framing); sets r->done when the
     * answer is complete. 0, or -1 with r->error set. */
    int (*read_body)(struct llm_reply *r, const json_t *obj);

    /* A local provider answers in-process instead (builtin): no request,
     * no parser. Fills out (initialised) from the idea and context, both
     * borrowed. RESULT_OK or an enum result_error. */
    int (*improve_local)(const char *idea, const char *context, struct improve_result *out);
};

/* The table of providers: a new provider is its file (llm_<name>.c,
 * defining llm_provider_<name>) plus its name here. The order is the order
 * messages and config.get list them in. */
#define LLM_PROVIDER_TABLE(X) X(ollama) X(openai) X(anthropic) X(gemini) X(builtin)

#define LLM_PROVIDER_EXTERN(name) extern const struct llm_provider llm_provider_##name;
LLM_PROVIDER_TABLE(LLM_PROVIDER_EXTERN)

/* Every provider of the table, NULL-terminated. */
extern const struct llm_provider *const llm_providers[];

/* The provider called name, or NULL. */
const struct llm_provider *llm_provider_find(const char *name);

/* The providers' names joined by ", ", the last one by last_sep (" or "
 * or ", "), into out: "ollama, openai, anthropic, gemini or builtin". */
void llm_provider_names(char *out, size_t outlen, const char *last_sep);

/* A response parser: the SSE or NDJSON framing, or the whole body, handed
 * to the provider's read_event / read_body. */
struct llm_parser;

/* A parser for one 2xx response body of p writing into reply (borrowed;
 * outlives the parser). Owned by the caller (llm_parser_free). */
struct llm_parser *llm_parser_new(const struct llm_provider *p, bool stream,
                                  struct llm_reply *reply);
/* Reads the next bytes; -1 on a fatal error (reply->error says why). */
int llm_parser_feed(struct llm_parser *p, const char *data, size_t len);
/* End of body: completes reply (done, tokens, text). -1 on error. */
int llm_parser_finish(struct llm_parser *p);
/* NULL is fine. */
void llm_parser_free(struct llm_parser *p);

/* The message of an HTTP error body: {"error": "..."}, {"error":
 * {"message": ...}}, {"message": ...}, else the body's first 200 bytes as
 * valid UTF-8. Owned by the caller; NULL for an empty body. */
char *llm_error_detail(const char *body, size_t len);

/* Model names from a model-list body: Ollama {"models":[{"name"}]}, OpenAI
 * and Anthropic {"data":[{"id"}]}, Gemini {"models":[{"name":
 * "models/x"}]} (prefix dropped). New reference (array), NULL when the
 * body is none of these. */
json_t *llm_parse_models(const char *body, size_t len);

#endif
