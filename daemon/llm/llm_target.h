/* Which backend a request talks to: provider, model, base URL and API key
 * resolved from the configuration (LLM_PROVIDER, LLM_MODEL, LLM_BASE_URL,
 * each provider's own base URL variable and keys, LLM_API_KEY) and the
 * request's own provider/model. Pure: no I/O, no loop. */
#ifndef PROMPTD_LLM_TARGET_H
#define PROMPTD_LLM_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include "llm_provider.h"

struct config;

/* All strings owned (llm_target_clear). */
struct llm_target {
    const struct llm_provider *prov; /* never NULL once resolved */
    char *name;                      /* prov->name */
    char *model;
    char *base_url;           /* no trailing slash; NULL for a local provider (builtin) */
    const char *base_url_var; /* the config key it came from, for messages: "LLM_BASE_URL" */
    char *api_key;            /* secret: never logged or shown; NULL when none */
};

/* Fills t (zeroed) for provider name (NULL: LLM_PROVIDER) and model (NULL:
 * LLM_MODEL when name is the configured provider, else its default).
 * LLM_MODEL, LLM_BASE_URL and LLM_API_KEY belong to LLM_PROVIDER: another
 * provider asked for by a request gets its own base URL variable
 * (OPENAI_BASE_URL...) or its default, and only its own key. Returns 0, or
 * -1 for an unknown provider (t must still be cleared). */
int llm_target_resolve(const struct config *cfg, const char *name, const char *model,
                       struct llm_target *t);
void llm_target_clear(struct llm_target *t);

/* True when the configuration names provider p: LLM_PROVIDER,
 * LLM_FALLBACK_PROVIDER, or one of its own keys (base URL, API key) set. */
bool llm_target_configured(const struct config *cfg, const struct llm_provider *p);

#endif
