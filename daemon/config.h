/* Configuration: defaults < config file < environment < command-line flags.
 * Keys and defaults are listed in docs/configuration.md and README.md. */
#ifndef PROMPTD_CONFIG_H
#define PROMPTD_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

/* Every string is owned by the struct (NULL when unset). */
struct config {
    /* LLM */
    char *llm_provider;              /* LLM_PROVIDER: ollama|openai|anthropic|gemini|builtin */
    char *llm_model;                 /* LLM_MODEL; NULL: the provider's default */
    char *llm_base_url;              /* LLM_BASE_URL; NULL: the provider's default */
    char *llm_api_key;               /* LLM_API_KEY (secret) */
    char *openai_api_key;            /* OPENAI_API_KEY (secret) */
    char *anthropic_api_key;         /* ANTHROPIC_API_KEY (secret) */
    char *gemini_api_key;            /* GEMINI_API_KEY (secret) */
    char *deepseek_api_key;          /* DEEPSEEK_API_KEY (secret) */
    char *llm_fallback_provider;     /* LLM_FALLBACK_PROVIDER; NULL: none */
    bool fewshot_enabled;            /* FEWSHOT_ENABLED (alias DSPY_FEWSHOT_ENABLED) */
    char *fewshot_trainset_path;     /* FEWSHOT_TRAINSET_PATH */
    long fewshot_k;                  /* FEWSHOT_K */
    double min_confidence_threshold; /* MIN_CONFIDENCE_THRESHOLD */
    long max_latency_ms;             /* MAX_LATENCY_MS */
    long llm_first_byte_timeout_ms;  /* LLM_FIRST_BYTE_TIMEOUT_MS */
    bool llm_prewarm;                /* LLM_PREWARM */
    char *llm_keep_alive;            /* LLM_KEEP_ALIVE, passed to Ollama as is */
    long llm_num_ctx;                /* LLM_NUM_CTX; 0: Ollama's default */
    char *ollama_host;               /* OLLAMA_HOST */
    /* History */
    bool sqlite_enabled;        /* SQLITE_ENABLED */
    char *sqlite_db_path;       /* SQLITE_DB_PATH; resolved to the default when unset */
    long sqlite_retention_days; /* SQLITE_RETENTION_DAYS; 0 keeps all */
    bool sqlite_auto_cleanup;   /* SQLITE_AUTO_CLEANUP */
    bool sqlite_wal_mode;       /* SQLITE_WAL_MODE */
    /* Server */
    char *socket_path;            /* PROMPTD_SOCKET; resolved by sockpath when unset */
    long max_request_bytes;       /* MAX_REQUEST_BYTES */
    long max_concurrent_requests; /* MAX_CONCURRENT_REQUESTS (upstream) */
    long max_queued_requests;     /* MAX_QUEUED_REQUESTS */
    long max_queue_wait_ms;       /* MAX_QUEUE_WAIT_MS: longest wait for a slot */
    int log_level;                /* LOG_LEVEL, an enum log_level */
    /* Test-only knobs (documented as such; not for production use). */
    long test_circuit_pause_ms; /* PROMPTD_TEST_CIRCUIT_PAUSE_MS; 0: 5 minutes */
    long test_max_page_count;   /* PROMPTD_TEST_MAX_PAGE_COUNT; 0: unlimited */
};

/* Command-line values; NULL when not given. They win over everything. */
struct config_flags {
    const char *socket_path;
    const char *db_path;
    const char *log_level;
};

/* Loads the configuration. config_path is the --config value or NULL (then
 * $XDG_CONFIG_HOME/promptd/promptd.conf is read when it exists). On error
 * returns -1 with a sentence naming the key, the file and the line in err.
 * Warnings (unknown keys) are logged. On success *out is a new config the
 * caller frees with config_free; *used_path (may be NULL) receives the file
 * actually read (owned by the caller) or NULL. */
int config_load(const char *config_path, const struct config_flags *flags, struct config **out,
                char **used_path, char *err, size_t errlen);
void config_free(struct config *cfg);

/* A configuration holding only the defaults (caller frees), or NULL. */
struct config *config_defaults(void);

/* Applies KEY=VALUE text (a file's contents) to cfg; name and line numbers
 * appear in errors. private_file: only the owner can read it (secrets
 * allowed). Returns 0 or -1 with the sentence in err. */
int config_parse_text(struct config *cfg, const char *text, size_t len, const char *name,
                      bool private_file, char *err, size_t errlen);

/* The effective configuration as a JSON object keyed by the config names,
 * secrets shown as "***" (unset secrets as null). New reference. */
json_t *config_to_json(const struct config *cfg);

/* Logs each key whose value differs, saying which ones only take effect
 * after a restart. Secrets are never printed. */
void config_log_changes(const struct config *old_cfg, const struct config *new_cfg);

/* The API key to use for a provider (provider-specific key, else
 * LLM_API_KEY), or NULL. Borrowed from cfg. */
const char *config_api_key(const struct config *cfg, const char *provider);

/* Opens path for config_read_bounded, refusing anything but a regular file
 * (a FIFO would block start-up or the loop forever, a device may never
 * end): stat, then open O_NONBLOCK, then fstat. Symbolic links are
 * followed (dotfile managers link config files). what names the file in
 * the sentence ("the config file PATH"). Returns the stream (owned by the
 * caller, fclose) with *st, or NULL with a sentence in err. */
FILE *config_open_regular(const char *path, const char *what, struct stat *st, char *err,
                          size_t errlen);

/* Reads all of f, at most max bytes. Returns the text (malloc'd, owned by
 * the caller, not NUL-terminated) with *len, or NULL with a sentence in
 * err naming what ("the config file PATH") and, when f holds more than
 * max bytes, ending with hint. */
char *config_read_bounded(FILE *f, size_t max, const char *what, const char *hint, size_t *len,
                          char *err, size_t errlen);

/* url without user:password@, query string or fragment: what health,
 * config.get, --check-config and the log may show of LLM_BASE_URL and
 * OLLAMA_HOST (credentials live there). Writes into out (truncated to
 * outlen). */
void config_public_url(const char *url, char *out, size_t outlen);

/* The user's home directory ($HOME when absolute, else the password
 * database), or NULL. */
const char *config_home_dir(void);

/* The directory part of path (a config file's, a database's) into out:
 * "." when it has none, "/" for the root. */
void config_dir_of(const char *path, char *out, size_t outlen);

/* Resolves a path the configuration gave for key (SQLITE_DB_PATH,
 * FEWSHOT_TRAINSET_PATH): absolute as it is; "~/" is the home directory;
 * otherwise relative to the directory of config_path, the file that said
 * it (the old backend's .env says "./data/..."), or to the working
 * directory when there is none. Returns 0, or -1 with a sentence naming
 * key in err. */
int config_resolve_path(const char *key, const char *value, const char *config_path, char *out,
                        size_t outlen, char *err, size_t errlen);

#endif
