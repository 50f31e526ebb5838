/* See llm_target.h. */
#include "llm_target.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "config.h"

char *llm_ollama_host_url(const char *host) {
    char buf[512];
    const char *sep = strstr(host, "://");
    const char *after = sep ? sep + 3 : host;
    const char *bracket = strchr(after, ']'); /* an IPv6 literal: [::1]:11434 */
    bool has_port = bracket ? bracket[1] == ':' : strchr(after, ':') != NULL;
    /* Ollama's own rule: a bare host gets port 11434; with a scheme, the
     * scheme's port (80/443) applies, so nothing is added. */
    const char *port = sep || has_port ? "" : ":11434";
    int scheme_len = sep ? (int)(after - host) : 7;
    const char *scheme = sep ? host : "http://";
    if (strncmp(after, "0.0.0.0", 7) == 0) /* a listen address: this machine */
        snprintf(buf, sizeof buf, "%.*s127.0.0.1%s%s", scheme_len, scheme, after + 7, port);
    else
        snprintf(buf, sizeof buf, "%.*s%s%s", scheme_len, scheme, after, port);
    return strdup(buf);
}

static void llm_strip_slashes(char *url) {
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
}

static char *llm_base_url_for(const struct config *cfg, const struct llm_provider *p,
                              bool configured) {
    char *url;
    if (configured && cfg->llm_base_url && *cfg->llm_base_url)
        url = strdup(cfg->llm_base_url);
    else if (strcmp(p->name, "ollama") == 0 && cfg->ollama_host && *cfg->ollama_host)
        url = llm_ollama_host_url(cfg->ollama_host);
    else
        url = strdup(p->default_base_url);
    if (url)
        llm_strip_slashes(url);
    return url;
}

/* LLM_API_KEY belongs to LLM_PROVIDER: another provider asked for by a
 * request gets only its own key, so one vendor's key never goes to
 * another. */
static const char *llm_api_key_for(const struct config *cfg, const char *name, bool configured,
                                   const char *base_url) {
    if (strcmp(name, "openai") == 0 && strstr(base_url, "deepseek") && cfg->deepseek_api_key)
        return cfg->deepseek_api_key;
    const char *key = config_api_key(cfg, name);
    if (key == cfg->llm_api_key && !configured)
        return NULL;
    return key;
}

void llm_target_clear(struct llm_target *t) {
    free(t->name);
    free(t->model);
    free(t->base_url);
    free(t->api_key);
    memset(t, 0, sizeof *t);
}

/* Fills t for provider name (NULL: the configured one) and model (NULL:
 * the configured or default one). Returns 0 or -1 (out of memory). */
int llm_target_resolve(const struct config *cfg, const char *name, const char *model,
                       struct llm_target *t) {
    if (!name)
        name = cfg->llm_provider ? cfg->llm_provider : "ollama";
    bool configured = cfg->llm_provider && strcmp(cfg->llm_provider, name) == 0;
    t->prov = llm_provider_find(name);
    t->name = strdup(name);
    if (!t->prov) {
        t->model = strdup(BUILTIN_NAME);
        return t->name && t->model ? 0 : -1;
    }
    if (!model)
        model = configured && cfg->llm_model && *cfg->llm_model ? cfg->llm_model
                                                                : t->prov->default_model;
    t->model = strdup(model);
    t->base_url = llm_base_url_for(cfg, t->prov, configured);
    if (!t->name || !t->model || !t->base_url)
        return -1;
    const char *key = llm_api_key_for(cfg, name, configured, t->base_url);
    if (key && *key && !(t->api_key = strdup(key)))
        return -1;
    return 0;
}
