#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "promptd_limits.h"

enum key_type { T_STR, T_BOOL, T_LONG, T_DOUBLE, T_LOGLEVEL, T_PROVIDER, T_FALLBACK, T_URL };

enum key_flags {
    F_SECRET = 1,  /* never printed or logged; file must be private */
    F_RESTART = 2, /* read at start-up only; SIGHUP says so */
    F_CREDS = 4,   /* a URL that may carry credentials: shown and logged without them */
};

struct key {
    const char *name;
    enum key_type type;
    size_t offset;
    const char *def; /* default as text; NULL: unset */
    double min, max; /* numeric range, inclusive */
    int flags;
};

#define OFF(field) offsetof(struct config, field)

/* The one list of configuration keys. Order is the order of config.get. */
static const struct key keys[] = {
    {"LLM_PROVIDER", T_PROVIDER, OFF(llm_provider), "ollama", 0, 0, 0},
    {"LLM_MODEL", T_STR, OFF(llm_model), NULL, 0, 0, 0},
    {"LLM_BASE_URL", T_URL, OFF(llm_base_url), NULL, 0, 0, F_CREDS},
    {"LLM_API_KEY", T_STR, OFF(llm_api_key), NULL, 0, 0, F_SECRET},
    {"OPENAI_API_KEY", T_STR, OFF(openai_api_key), NULL, 0, 0, F_SECRET},
    {"ANTHROPIC_API_KEY", T_STR, OFF(anthropic_api_key), NULL, 0, 0, F_SECRET},
    {"GEMINI_API_KEY", T_STR, OFF(gemini_api_key), NULL, 0, 0, F_SECRET},
    {"DEEPSEEK_API_KEY", T_STR, OFF(deepseek_api_key), NULL, 0, 0, F_SECRET},
    {"LLM_FALLBACK_PROVIDER", T_FALLBACK, OFF(llm_fallback_provider), NULL, 0, 0, 0},
    {"FEWSHOT_ENABLED", T_BOOL, OFF(fewshot_enabled), "false", 0, 0, 0},
    {"FEWSHOT_TRAINSET_PATH", T_STR, OFF(fewshot_trainset_path), NULL, 0, 0, 0},
    {"FEWSHOT_K", T_LONG, OFF(fewshot_k), "3", 1, 20, 0},
    {"MIN_CONFIDENCE_THRESHOLD", T_DOUBLE, OFF(min_confidence_threshold), "0.7", 0, 1, 0},
    {"MAX_LATENCY_MS", T_LONG, OFF(max_latency_ms), "30000", 100, 3600000, 0},
    {"LLM_FIRST_BYTE_TIMEOUT_MS", T_LONG, OFF(llm_first_byte_timeout_ms), "120000", 100, 3600000,
     0},
    {"LLM_PREWARM", T_BOOL, OFF(llm_prewarm), "false", 0, 0, 0},
    {"LLM_KEEP_ALIVE", T_STR, OFF(llm_keep_alive), NULL, 0, 0, 0},
    {"LLM_NUM_CTX", T_LONG, OFF(llm_num_ctx), "0", 0, 1048576, 0},
    {"OLLAMA_HOST", T_STR, OFF(ollama_host), NULL, 0, 0, F_CREDS},
    {"SQLITE_ENABLED", T_BOOL, OFF(sqlite_enabled), "true", 0, 0, F_RESTART},
    {"SQLITE_DB_PATH", T_STR, OFF(sqlite_db_path), NULL, 0, 0, F_RESTART},
    {"SQLITE_RETENTION_DAYS", T_LONG, OFF(sqlite_retention_days), "30", 0, 36500, 0},
    {"SQLITE_AUTO_CLEANUP", T_BOOL, OFF(sqlite_auto_cleanup), "true", 0, 0, 0},
    {"SQLITE_WAL_MODE", T_BOOL, OFF(sqlite_wal_mode), "true", 0, 0, F_RESTART},
    {"PROMPTD_SOCKET", T_STR, OFF(socket_path), NULL, 0, 0, F_RESTART},
    {"MAX_REQUEST_BYTES", T_LONG, OFF(max_request_bytes), "1048576", LIMIT_REQUEST_BYTES_MIN,
     LIMIT_REQUEST_BYTES_MAX, 0},
    {"MAX_CONCURRENT_REQUESTS", T_LONG, OFF(max_concurrent_requests), "8", 1, 1024, 0},
    {"MAX_QUEUED_REQUESTS", T_LONG, OFF(max_queued_requests), "256", 0, 100000, 0},
    {"MAX_QUEUE_WAIT_MS", T_LONG, OFF(max_queue_wait_ms), "60000", 100, 3600000, 0},
    {"LOG_LEVEL", T_LOGLEVEL, OFF(log_level), "info", 0, 0, 0},
    {"PROMPTD_TEST_CIRCUIT_PAUSE_MS", T_LONG, OFF(test_circuit_pause_ms), "0", 0, 86400000, 0},
    {"PROMPTD_TEST_MAX_PAGE_COUNT", T_LONG, OFF(test_max_page_count), "0", 0, 2147483647,
     F_RESTART},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* Names the old Python backend's .env used for the same settings. */
static const struct {
    const char *old_name, *name;
} aliases[] = {{"DSPY_FEWSHOT_ENABLED", "FEWSHOT_ENABLED"}};

static const char *const providers[] = {"ollama", "openai", "anthropic", "gemini", "builtin"};

static const struct key *key_find(const char *name) {
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].old_name) == 0)
            name = aliases[i].name;
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static void *field(struct config *cfg, const struct key *k) {
    return (char *)cfg + k->offset;
}

static const void *cfield(const struct config *cfg, const struct key *k) {
    return (const char *)cfg + k->offset;
}

static int parse_bool(const char *v, bool *out) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

static bool is_provider(const char *v) {
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
        if (strcmp(v, providers[i]) == 0)
            return true;
    return false;
}

/* Validates value for key k and stores it. On error writes why into err
 * (without the location, which the caller adds). */
static int key_set(struct config *cfg, const struct key *k, const char *v, char *err,
                   size_t errlen) {
    char *end = NULL;
    switch (k->type) {
    case T_BOOL:
        if (parse_bool(v, field(cfg, k)) != 0) {
            snprintf(err, errlen, "\"%s\" is not true or false", v);
            return -1;
        }
        return 0;
    case T_LONG: {
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < k->min || n > k->max) {
            snprintf(err, errlen, "\"%s\" is not a whole number from %.0f to %.0f", v, k->min,
                     k->max);
            return -1;
        }
        *(long *)field(cfg, k) = n;
        return 0;
    }
    case T_DOUBLE: {
        errno = 0;
        double n = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(n) || n < k->min || n > k->max) {
            snprintf(err, errlen, "\"%s\" is not a number from %g to %g", v, k->min, k->max);
            return -1;
        }
        *(double *)field(cfg, k) = n;
        return 0;
    }
    case T_LOGLEVEL: {
        int level = log_level_parse(v);
        if (level < 0) {
            snprintf(err, errlen, "\"%s\" is not one of debug, info, warn, error", v);
            return -1;
        }
        *(int *)field(cfg, k) = level;
        return 0;
    }
    case T_PROVIDER:
    case T_FALLBACK:
        if (k->type == T_FALLBACK && (*v == '\0' || strcmp(v, "none") == 0)) {
            v = NULL;
        } else if (!is_provider(v)) {
            snprintf(err, errlen,
                     "\"%s\" is not a provider (ollama, openai, anthropic, gemini, builtin%s)", v,
                     k->type == T_FALLBACK ? " or none" : "");
            return -1;
        }
        break;
    case T_URL:
        if (*v && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
            snprintf(err, errlen, "\"%s\" is not an http:// or https:// URL", v);
            return -1;
        }
        break;
    case T_STR:
        break;
    }
    char **slot = field(cfg, k);
    free(*slot);
    *slot = NULL;
    if (v && *v && !(*slot = strdup(v))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

struct config *config_defaults(void) {
    struct config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    char err[256];
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].def && key_set(cfg, &keys[i], keys[i].def, err, sizeof err) != 0) {
            config_free(cfg);
            return NULL;
        }
    return cfg;
}

void config_free(struct config *cfg) {
    if (!cfg)
        return;
    for (size_t i = 0; i < N_KEYS; i++) {
        enum key_type t = keys[i].type;
        if (t == T_STR || t == T_PROVIDER || t == T_FALLBACK || t == T_URL)
            free(*(char **)field(cfg, &keys[i]));
    }
    free(cfg);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Unquotes a value in place: "..." with \n \t \" \\ escapes, '...' taken
 * literally, or a bare value where " #" starts a comment. Returns NULL for
 * an unterminated quote. */
static char *unquote(char *v) {
    if (*v == '"' || *v == '\'') {
        char q = *v;
        char *out = v, *in = v + 1;
        for (; *in && *in != q; in++) {
            if (q == '"' && *in == '\\' && in[1]) {
                in++;
                *out++ = *in == 'n' ? '\n' : *in == 't' ? '\t' : *in;
            } else {
                *out++ = *in;
            }
        }
        if (*in != q)
            return NULL;
        char *rest = trim(in + 1);
        if (*rest && *rest != '#')
            return NULL;
        *out = '\0';
        return v;
    }
    for (char *p = v; *p; p++)
        if (*p == '#' && p > v && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    return trim(v);
}

static bool file_is_private(const struct stat *st) {
    return (st->st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)) == 0;
}

/* Another user who can change the file, or the directory it is listed in,
 * can point LLM_BASE_URL at their own server and receive every prompt (and
 * the key from the environment): such a file is refused whether or not it
 * holds a secret. root owning it is fine: root can do this anyway. */
static bool owner_is_trusted(uid_t uid) {
    return uid == getuid() || uid == 0;
}

static int config_check_file(const char *path, const struct stat *st, char *err, size_t errlen) {
    if (!owner_is_trusted(st->st_uid)) {
        snprintf(err, errlen,
                 "the config file %s belongs to another user (uid %u), who could change it: use a "
                 "copy of your own (cp it, then chmod 600 the copy)",
                 path, (unsigned)st->st_uid);
        return -1;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(
            err, errlen,
            "the config file %s can be changed by other users (mode %04o), who could send your "
            "prompts to a server of theirs: run chmod go-w %s (or chmod 600 %s)",
            path, (unsigned)(st->st_mode & 07777), path, path);
        return -1;
    }
    return 0;
}

/* A directory others may write to (without the sticky bit, which keeps
 * them from renaming or removing our files) lets them swap the file. */
static int config_check_dir(const char *path, const char *dir, char *err, size_t errlen) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return 0; /* the file was opened: its directory exists; nothing to judge */
    if (!owner_is_trusted(st.st_uid)) {
        snprintf(err, errlen,
                 "the config file %s is in %s, which belongs to another user (uid %u), who could "
                 "replace it: move the file to a directory of your own",
                 path, dir, (unsigned)st.st_uid);
        return -1;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        snprintf(err, errlen,
                 "the config file %s is in %s, which other users can write to (mode %04o), so they "
                 "could replace it: run chmod go-w %s, or move the file",
                 path, dir, (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    return 0;
}

/* The file's own directory, and the one its target lives in when path is
 * a symbolic link (dotfile managers link the config): both can swap it. */
static int config_check_dirs(const char *path, char *err, size_t errlen) {
    char dir[PATH_MAX], real[PATH_MAX];
    config_dir_of(path, dir, sizeof dir);
    if (config_check_dir(path, dir, err, errlen) != 0)
        return -1;
    if (!realpath(path, real))
        return 0;
    char real_dir[PATH_MAX];
    config_dir_of(real, real_dir, sizeof real_dir);
    return strcmp(real_dir, dir) == 0 ? 0 : config_check_dir(path, real_dir, err, errlen);
}

static const char *file_kind(mode_t mode) {
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

static FILE *config_refuse_kind(const char *what, mode_t mode, char *err, size_t errlen) {
    snprintf(err, errlen,
             "cannot read %s: it is %s, not a regular file (reading it could block promptd "
             "forever): give the path of a regular file",
             what, file_kind(mode));
    return NULL;
}

FILE *config_open_regular(const char *path, const char *what, struct stat *st, char *err,
                          size_t errlen) {
    /* stat first so that a device or FIFO is not even opened; the fstat
     * below settles the race with a file swapped in meanwhile. */
    if (stat(path, st) == 0 && !S_ISREG(st->st_mode))
        return config_refuse_kind(what, st->st_mode, err, errlen);
    /* O_NONBLOCK: opening a FIFO with no writer would wait forever. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", what, strerror(errno));
        return NULL;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int e = errno;
        close(fd);
        if (S_ISREG(st->st_mode) || e == 0)
            snprintf(err, errlen, "cannot read %s: %s", what, strerror(e ? e : EIO));
        else
            config_refuse_kind(what, st->st_mode, err, errlen);
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = NULL;
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 || !(f = fdopen(fd, "rb"))) {
        snprintf(err, errlen, "cannot read %s: %s", what, strerror(errno));
        close(fd);
    }
    return f;
}

/* A configuration file is a few dozen lines; anything this large is a
 * mistake (a log file, /dev/zero) and is refused rather than read. */
#define CONFIG_MAX_FILE_BYTES (1024 * 1024)

/* Applies one KEY=VALUE line (modified in place). */
static int config_parse_line(struct config *cfg, char *line, const char *name, int lineno,
                             bool private_file, char *err, size_t errlen) {
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    if (strncmp(s, "export ", 7) == 0)
        s = trim(s + 7);
    char *eq = strchr(s, '=');
    if (!eq) {
        snprintf(err, errlen, "%s:%d: expected KEY=VALUE, found \"%.60s\"", name, lineno, s);
        return -1;
    }
    *eq = '\0';
    char *key = trim(s), *value = unquote(trim(eq + 1));
    const struct key *k = key_find(key);
    if (!k) {
        log_warn("%s:%d: unknown key %.80s ignored", name, lineno, key);
        return 0;
    }
    if (!value) {
        snprintf(err, errlen, "%s:%d: %s: unterminated quote", name, lineno, k->name);
        return -1;
    }
    if ((k->flags & F_SECRET) && *value && !private_file) {
        snprintf(err, errlen,
                 "%s:%d: the file holds the secret %s but other users can read it: run "
                 "chmod 600 %s",
                 name, lineno, k->name, name);
        return -1;
    }
    char why[256];
    if (key_set(cfg, k, value, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s:%d: invalid value for %s: %s", name, lineno, k->name, why);
        return -1;
    }
    return 0;
}

int config_parse_text(struct config *cfg, const char *text, size_t len, const char *name,
                      bool private_file, char *err, size_t errlen) {
    char *copy = malloc(len + 1);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    int rc = 0, lineno = 1;
    for (char *line = copy; rc == 0 && line <= copy + len; lineno++) {
        char *nl = memchr(line, '\n', (size_t)(copy + len - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(copy + len - line);
        line[n] = '\0';
        if (strlen(line) != n) {
            snprintf(err, errlen, "%s:%d: a NUL byte: this is not a text file", name, lineno);
            rc = -1;
        } else {
            rc = config_parse_line(cfg, line, name, lineno, private_file, err, errlen);
        }
        line += n + 1;
    }
    free(copy);
    return rc;
}

char *config_read_bounded(FILE *f, size_t max, const char *what, const char *hint, size_t *len,
                          char *err, size_t errlen) {
    char *text = malloc(max + 1);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *len = fread(text, 1, max + 1, f);
    if (ferror(f))
        snprintf(err, errlen, "cannot read %s: %s", what, strerror(errno));
    else if (*len > max)
        snprintf(err, errlen, "%s is larger than %zu bytes: %s", what, max, hint);
    else
        return text;
    free(text);
    return NULL;
}

/* Reads the whole file (bounded) and applies it to cfg. */
static int config_read_file(struct config *cfg, const char *path, char *err, size_t errlen) {
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "the config file %s", path);
    struct stat st;
    FILE *f = config_open_regular(path, what, &st, err, errlen);
    if (!f)
        return -1;
    if (config_check_file(path, &st, err, errlen) != 0 ||
        config_check_dirs(path, err, errlen) != 0) {
        fclose(f);
        return -1;
    }
    size_t len;
    char *text = config_read_bounded(f, CONFIG_MAX_FILE_BYTES, what, "is it the right file?", &len,
                                     err, errlen);
    int rc = text ? config_parse_text(cfg, text, len, path, file_is_private(&st), err, errlen) : -1;
    free(text);
    fclose(f);
    return rc;
}

static int config_read_env(struct config *cfg, char *err, size_t errlen) {
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        const char *v = getenv(aliases[i].old_name);
        char why[256];
        if (v && !getenv(aliases[i].name) &&
            key_set(cfg, key_find(aliases[i].name), v, why, sizeof why) != 0) {
            snprintf(err, errlen, "environment: invalid value for %s: %s", aliases[i].old_name,
                     why);
            return -1;
        }
    }
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *v = getenv(keys[i].name);
        char why[256];
        if (v && key_set(cfg, &keys[i], v, why, sizeof why) != 0) {
            snprintf(err, errlen, "environment: invalid value for %s: %s", keys[i].name, why);
            return -1;
        }
    }
    return 0;
}

static int config_apply_flag(struct config *cfg, const char *name, const char *flag,
                             const char *value, char *err, size_t errlen) {
    char why[256];
    if (value && key_set(cfg, key_find(name), value, why, sizeof why) != 0) {
        snprintf(err, errlen, "invalid value for %s: %s", flag, why);
        return -1;
    }
    return 0;
}

/* The implicit config file, when it exists: $XDG_CONFIG_HOME/promptd/
 * promptd.conf (~/.config when XDG_CONFIG_HOME is unset). Never ./.env: a
 * daemon's working directory is not the user's choice. */
static char *config_default_path(void) {
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char buf[4096];
    if (xdg && *xdg)
        snprintf(buf, sizeof buf, "%s/promptd/promptd.conf", xdg);
    else if (home && *home)
        snprintf(buf, sizeof buf, "%s/.config/promptd/promptd.conf", home);
    else
        return NULL;
    struct stat st;
    return stat(buf, &st) == 0 ? strdup(buf) : NULL;
}

int config_load(const char *config_path, const struct config_flags *flags, struct config **out,
                char **used_path, char *err, size_t errlen) {
    struct config *cfg = config_defaults();
    char *path = config_path ? strdup(config_path) : config_default_path();
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (path && config_read_file(cfg, path, err, errlen) != 0)
        goto fail;
    if (config_read_env(cfg, err, errlen) != 0)
        goto fail;
    if (flags &&
        (config_apply_flag(cfg, "PROMPTD_SOCKET", "--socket", flags->socket_path, err, errlen) !=
             0 ||
         config_apply_flag(cfg, "SQLITE_DB_PATH", "--db", flags->db_path, err, errlen) != 0 ||
         config_apply_flag(cfg, "LOG_LEVEL", "--log-level", flags->log_level, err, errlen) != 0))
        goto fail;
    *out = cfg;
    if (used_path)
        *used_path = path;
    else
        free(path);
    return 0;
fail:
    config_free(cfg);
    free(path);
    return -1;
}

static json_t *key_json(const struct config *cfg, const struct key *k) {
    const void *p = cfield(cfg, k);
    switch (k->type) {
    case T_BOOL:
        return json_boolean(*(const bool *)p);
    case T_LONG:
        return json_integer(*(const long *)p);
    case T_DOUBLE:
        return json_real(*(const double *)p);
    case T_LOGLEVEL:
        return json_string(log_level_name(*(const int *)p));
    default: {
        const char *s = *(char *const *)p;
        if (!s)
            return json_null();
        if (k->flags & F_CREDS) {
            size_t n = strlen(s) + 1; /* never longer than the URL itself */
            char *url = malloc(n);
            if (!url)
                return json_null();
            config_public_url(s, url, n);
            json_t *j = json_string(url);
            free(url);
            return j;
        }
        return json_string((k->flags & F_SECRET) ? "***" : s);
    }
    }
}

json_t *config_to_json(const struct config *cfg) {
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < N_KEYS; i++)
        json_object_set_new(obj, keys[i].name, key_json(cfg, &keys[i]));
    return obj;
}

/* Whether k's raw values differ: what the log shows of a secret or of
 * a URL's credentials may be equal while the values are not. */
static bool key_raw_differs(const struct config *a, const struct config *b, const struct key *k) {
    const char *sa = *(char *const *)cfield(a, k);
    const char *sb = *(char *const *)cfield(b, k);
    return (sa == NULL) != (sb == NULL) || (sa && sb && strcmp(sa, sb) != 0);
}

static void config_log_change(const struct key *k, json_t *a, json_t *b) {
    char *va = json_dumps(a, JSON_ENCODE_ANY), *vb = json_dumps(b, JSON_ENCODE_ANY);
    if (k->flags & F_SECRET)
        log_info("config: %s changed", k->name);
    else if (k->flags & F_RESTART)
        log_warn("config: %s changed from %s to %s but takes effect only after a restart", k->name,
                 va ? va : "?", vb ? vb : "?");
    else if (json_equal(a, b))
        log_info("config: %s changed (in the credentials it holds, not shown)", k->name);
    else
        log_info("config: %s changed from %s to %s", k->name, va ? va : "?", vb ? vb : "?");
    free(va);
    free(vb);
}

void config_log_changes(const struct config *old_cfg, const struct config *new_cfg) {
    int changed = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        json_t *a = key_json(old_cfg, k), *b = key_json(new_cfg, k);
        bool same = json_equal(a, b);
        if ((k->flags & (F_SECRET | F_CREDS)) && same)
            same = !key_raw_differs(old_cfg, new_cfg, k);
        if (!same) {
            changed++;
            config_log_change(k, a, b);
        }
        json_decref(a);
        json_decref(b);
    }
    if (!changed)
        log_info("config: reloaded, nothing changed");
}

const char *config_api_key(const struct config *cfg, const char *provider) {
    const char *specific = NULL;
    if (strcmp(provider, "openai") == 0)
        specific = cfg->openai_api_key;
    else if (strcmp(provider, "anthropic") == 0)
        specific = cfg->anthropic_api_key;
    else if (strcmp(provider, "gemini") == 0)
        specific = cfg->gemini_api_key;
    else if (strcmp(provider, "deepseek") == 0)
        specific = cfg->deepseek_api_key;
    return specific ? specific : cfg->llm_api_key;
}

const char *config_home_dir(void) {
    const char *home = getenv("HOME");
    if (home && home[0] == '/')
        return home;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

void config_dir_of(const char *path, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, outlen, ".");
    else
        *(slash == out ? slash + 1 : slash) = '\0';
}

int config_resolve_path(const char *key, const char *value, const char *config_path, char *out,
                        size_t outlen, char *err, size_t errlen) {
    char base[PATH_MAX];
    int n;
    if (value[0] == '/') {
        n = snprintf(out, outlen, "%s", value);
    } else if (value[0] == '~' && value[1] == '/') {
        const char *home = config_home_dir();
        if (!home) {
            snprintf(err, errlen, "%s %s: cannot find the home directory", key, value);
            return -1;
        }
        n = snprintf(out, outlen, "%s/%s", home, value + 2);
    } else if (config_path) {
        config_dir_of(config_path, base, sizeof base);
        n = snprintf(out, outlen, "%s/%s", base, value);
    } else if (getcwd(base, sizeof base)) {
        n = snprintf(out, outlen, "%s/%s", base, value);
    } else {
        snprintf(err, errlen, "%s %s: cannot resolve a relative path", key, value);
        return -1;
    }
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "%s is too long", key);
        return -1;
    }
    return 0;
}

void config_public_url(const char *url, char *out, size_t outlen) {
    const char *p = strstr(url, "://");
    const char *host = p ? p + 3 : url;
    /* The authority ends at the path, the query or the fragment; its
     * user:password@ ends at its last '@' (a raw '@' in a password). */
    const char *end = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *c = host; c < end; c++)
        if (*c == '@')
            at = c;
    if (at)
        snprintf(out, outlen, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, outlen, "%s", url);
    /* A query (?api_key=, ?key=, ?token=) or a fragment may hold a key. */
    out[strcspn(out, "?#")] = '\0';
}
