/* Which backend a request talks to: provider, model, base URL and API key
 * resolved from the configuration (LLM_PROVIDER, LLM_MODEL, LLM_BASE_URL,
 * OLLAMA_HOST, the *_API_KEY keys) and the request's own provider/model.
 * Pure: no I/O, no loop. */
#ifndef PROMPTD_LLM_TARGET_H
#define PROMPTD_LLM_TARGET_H

#include <stddef.h>

#include "llm_provider.h"

struct config;

/* All strings owned (llm_target_clear). */
struct llm_target {
    const struct llm_provider *prov; /* NULL: builtin */
    char *name;                      /* "ollama" ... "builtin" */
    char *model;
    char *base_url; /* no trailing slash; NULL for builtin */
    char *api_key;  /* secret: never logged or shown; NULL when none */
};

/* Fills t (zeroed) for provider name (NULL: LLM_PROVIDER) and model (NULL:
 * LLM_MODEL when name is the configured provider, else its default).
 * LLM_MODEL, LLM_BASE_URL and LLM_API_KEY belong to LLM_PROVIDER: another
 * provider asked for by a request gets its defaults and only its own key.
 * Returns 0, or -1 when out of memory (t must still be cleared). */
int llm_target_resolve(const struct config *cfg, const char *name, const char *model,
                       struct llm_target *t);
void llm_target_clear(struct llm_target *t);

/* OLLAMA_HOST ("host", "host:port", "0.0.0.0", or a URL, as Ollama reads
 * it) as a base URL. malloc'd, owned by the caller; NULL when out of
 * memory. */
char *llm_ollama_host_url(const char *host);

#endif
