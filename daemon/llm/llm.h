/* The improve engine: picks the provider, queues requests so at most
 * MAX_CONCURRENT_REQUESTS go upstream at once (FIFO, at most
 * MAX_QUEUED_REQUESTS waiting, then -32005), runs one HTTP exchange per
 * request through http.c, retries once on 429/502/503 within the deadline,
 * refuses (-32005) a request that waited MAX_QUEUE_WAIT_MS for a slot,
 * maps every failure to a protocol error with a sentence a person can act
 * on, and falls back to the builtin provider when LLM_FALLBACK_PROVIDER
 * says so. It knows nothing of connections or JSON-RPC: methods_improve.c
 * turns its outcomes into replies.
 *
 * Callbacks never run inside the call that starts a request: even an
 * immediate answer (builtin, overloaded, a missing API key) is delivered
 * from the loop, so the caller can finish its setup first. */
#ifndef PROMPTD_LLM_H
#define PROMPTD_LLM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_result.h"

struct daemon;
struct llm;
struct llm_request;

/* What to improve. Every pointer is borrowed for the llm_improve call only
 * (the engine copies what it keeps). */
struct llm_params {
    const char *provider;      /* NULL: LLM_PROVIDER */
    const char *model;         /* NULL: LLM_MODEL for the configured provider, else its default */
    const char *idea;          /* trimmed, length-checked */
    const char *context;       /* NULL or "" for none */
    const char *parent_prompt; /* refine this earlier improved prompt; NULL for none */
    const char *examples;      /* few-shot: fewshot_render's section; NULL for none */
    bool stream;               /* call on_delta with improved_prompt text as it is written */
    uint64_t received_ms;      /* when the request arrived (retry deadlines count from it) */
};

/* How a request ended. Everything is borrowed for the on_done call. */
struct llm_outcome {
    int code;            /* 0: success; else an enum rpc_code */
    const char *message; /* a sentence a person can act on, for an error */
    long http_status;    /* data.http_status for -32002; 0 when none */
    long waited_ms;      /* data.waited_ms for -32005 after MAX_QUEUE_WAIT_MS; 0 when none */
    long fd_limit;       /* data.open_files_limit for -32005 out of fds; 0 when none */
    const char *detail;  /* data.detail (backend message / model output); may be NULL */
    bool truncated;      /* the model hit its output limit */
    const struct improve_result *result; /* improve success */
    json_t *models;                      /* models success: array of names (borrowed) */
    const char *provider;                /* who answered (or was asked) */
    const char *model;
    const char *base_url;        /* where, without credentials; NULL for a local one */
    const char *fallback_from;   /* set when builtin answered instead of this provider */
    const char *fallback_reason; /* the primary's error message then */
};

/* text: the next piece of improved_prompt, valid UTF-8, borrowed. */
typedef void (*llm_delta_fn)(void *arg, const char *text, size_t len);
/* Called exactly once per request unless it was cancelled; the request
 * is gone after it returns. */
typedef void (*llm_done_fn)(void *arg, const struct llm_outcome *out);

/* Creates the engine on d's loop, reading d->cfg at each request (so a
 * SIGHUP reload applies to the next one). Returns NULL on failure (logged).
 * Owned by the caller; release with llm_close. */
struct llm *llm_new(struct daemon *d);

/* Aborts every request (no callbacks), and closes the HTTP engine; memory
 * goes in close callbacks, so run the loop once more. NULL is fine. */
void llm_close(struct llm *e);

/* LLM_PREWARM: asks LLM_PROVIDER to load the model now (Ollama: its
 * build_prewarm), so the first request does not wait for it. Other
 * providers need nothing. Logs the result. */
void llm_prewarm(struct llm *e);

/* Starts an improvement. Returns the request (borrowed: valid until on_done
 * runs or llm_cancel), or NULL when it cannot start (a timer, the system
 * prompt missing from the build). */
struct llm_request *llm_improve(struct llm *e, const struct llm_params *p, llm_delta_fn on_delta,
                                llm_done_fn on_done, void *arg);

/* Lists the provider's models (provider NULL: the configured one). */
struct llm_request *llm_models(struct llm *e, const char *provider, llm_done_fn on_done, void *arg);

/* Aborts the request at once, including its upstream transfer; on_done
 * will not run. Safe from inside on_delta. */
void llm_cancel(struct llm_request *r);

/* True when name is a provider the engine knows ("builtin" included). */
bool llm_provider_known(const char *name);

/* The providers the configuration names, LLM_PROVIDER first, then every
 * other one that is the fallback or has a key or base URL of its own set
 * (llm_target_configured), at most max; names borrowed (static). Returns
 * how many. */
size_t llm_configured_providers(struct llm *e, const char **names, size_t max);

/* The `llm` section of `health`: provider, model, base_url (never a key or
 * URL credentials), fallback, queue figures, last_error, last_error_at, and
 * `providers`: {provider, model, base_url} for each configured provider.
 * New reference. Answers from memory. */
json_t *llm_health(struct llm *e);

/* The daemon's health_llm hook: llm_health(d->llm). */
json_t *llm_health_hook(struct daemon *d);

#endif
