/* See llm_target.h. */
#include "llm_target.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "xalloc.h"

static void llm_strip_slashes(char *url) {
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
}

static const char *llm_set(const char *v) {
    return v && *v ? v : NULL;
}

/* LLM_BASE_URL for LLM_PROVIDER, else the provider's own variable (read
 * its own way when it has one: OLLAMA_HOST), else its default. */
static void llm_base_url_for(const struct config *cfg, struct llm_target *t, bool configured) {
    const struct llm_provider *p = t->prov;
    const char *own = p->base_url_var ? llm_set(config_value(cfg, p->base_url_var)) : NULL;
    if (configured && llm_set(cfg->llm_base_url)) {
        t->base_url = xstrdup(cfg->llm_base_url);
        t->base_url_var = "LLM_BASE_URL";
    } else if (own) {
        t->base_url = p->base_url_of ? p->base_url_of(own) : xstrdup(own);
        t->base_url_var = p->base_url_var;
    } else {
        t->base_url = xstrdup(p->default_base_url);
        t->base_url_var = "LLM_BASE_URL";
    }
    llm_strip_slashes(t->base_url);
}

/* A key made for this base URL (DeepSeek's through the OpenAI protocol),
 * else the provider's own, else LLM_API_KEY when it is LLM_PROVIDER: one
 * vendor's key never goes to another. */
static const char *llm_api_key_for(const struct config *cfg, const struct llm_provider *p,
                                   bool configured, const char *base_url) {
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < LLM_KEY_VARS_MAX && p->key_vars[i].name; i++) {
            const struct llm_key_var *kv = &p->key_vars[i];
            bool serves =
                pass == 0 ? kv->url_part && strstr(base_url, kv->url_part) : kv->url_part == NULL;
            const char *key = serves ? llm_set(config_value(cfg, kv->name)) : NULL;
            if (key)
                return key;
        }
    return configured ? llm_set(cfg->llm_api_key) : NULL;
}

void llm_target_clear(struct llm_target *t) {
    free(t->name);
    free(t->model);
    free(t->base_url);
    free(t->api_key);
    memset(t, 0, sizeof *t);
}

int llm_target_resolve(const struct config *cfg, const char *name, const char *model,
                       struct llm_target *t) {
    if (!name)
        name = cfg->llm_provider ? cfg->llm_provider : llm_providers[0]->name;
    t->prov = llm_provider_find(name);
    if (!t->prov)
        return -1;
    bool configured = cfg->llm_provider && strcmp(cfg->llm_provider, name) == 0;
    t->name = xstrdup(t->prov->name);
    if (!model)
        model = configured && llm_set(cfg->llm_model) ? cfg->llm_model : t->prov->default_model;
    t->model = xstrdup(model);
    if (!t->prov->default_base_url)
        return 0; /* local: no URL, no key */
    llm_base_url_for(cfg, t, configured);
    const char *key = llm_api_key_for(cfg, t->prov, configured, t->base_url);
    if (key)
        t->api_key = xstrdup(key);
    return 0;
}

bool llm_target_configured(const struct config *cfg, const struct llm_provider *p) {
    const char *name = p->name;
    if ((cfg->llm_provider && strcmp(cfg->llm_provider, name) == 0) ||
        (cfg->llm_fallback_provider && strcmp(cfg->llm_fallback_provider, name) == 0))
        return true;
    if (p->base_url_var && llm_set(config_value(cfg, p->base_url_var)))
        return true;
    for (size_t i = 0; i < LLM_KEY_VARS_MAX && p->key_vars[i].name; i++)
        if (llm_set(config_value(cfg, p->key_vars[i].name)))
            return true;
    return false;
}
