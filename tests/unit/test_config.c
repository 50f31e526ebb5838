/* Config parsing: every error path names the key, the file and the line. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "unit.h"

static char dir[64];

static const char *write_conf(const char *text, mode_t mode) {
    static char path[128];
    snprintf(path, sizeof path, "%s/promptd.conf", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static int load(const char *text, mode_t mode, struct config **cfg, char *err, size_t errlen) {
    const char *path = write_conf(text, mode);
    return config_load(path, NULL, cfg, NULL, err, errlen);
}

static void test_defaults(void) {
    struct config *cfg = NULL;
    char err[256];
    CHECK_INT(config_load(NULL, NULL, &cfg, NULL, err, sizeof err), 0);
    CHECK_STR(cfg->llm_provider, "ollama");
    CHECK_INT(cfg->max_latency_ms, 30000);
    CHECK_INT(cfg->llm_first_byte_timeout_ms, 120000);
    CHECK_INT(cfg->max_request_bytes, 1048576);
    CHECK_INT(cfg->max_concurrent_requests, 8);
    CHECK_INT(cfg->max_queued_requests, 256);
    CHECK_INT(cfg->sqlite_retention_days, 30);
    CHECK(cfg->sqlite_enabled && cfg->sqlite_auto_cleanup && cfg->sqlite_wal_mode);
    CHECK(!cfg->fewshot_enabled);
    CHECK_INT(cfg->fewshot_k, 3);
    CHECK(cfg->min_confidence_threshold == 0.7);
    CHECK_INT(cfg->log_level, LOG_INFO);
    CHECK(cfg->llm_fallback_provider == NULL);
    config_free(cfg);
}

static void test_file_values_quotes_comments(void) {
    struct config *cfg = NULL;
    char err[256];
    CHECK_INT(load("# comment\n\n"
                   "LLM_PROVIDER=openai\n"
                   "export LLM_MODEL=\"gpt 4o \\\"mini\\\"\"\n"
                   "LLM_BASE_URL='http://127.0.0.1:9/x' # trailing comment\n"
                   "MAX_LATENCY_MS = 5000   # spaces around\n"
                   "SQLITE_WAL_MODE=off\n"
                   "DSPY_FEWSHOT_ENABLED=yes\n"
                   "LOG_LEVEL=warning\n"
                   "LLM_FALLBACK_PROVIDER=none\n",
                   0600, &cfg, err, sizeof err),
              0);
    CHECK_STR(cfg->llm_provider, "openai");
    CHECK_STR(cfg->llm_model, "gpt 4o \"mini\"");
    CHECK_STR(cfg->llm_base_url, "http://127.0.0.1:9/x");
    CHECK_INT(cfg->max_latency_ms, 5000);
    CHECK(!cfg->sqlite_wal_mode);
    CHECK(cfg->fewshot_enabled);
    CHECK_INT(cfg->log_level, LOG_WARN);
    CHECK(cfg->llm_fallback_provider == NULL);
    config_free(cfg);
}

static void expect_error(const char *text, mode_t mode, const char *needle1, const char *needle2) {
    struct config *cfg = NULL;
    char err[512] = "";
    int rc = load(text, mode, &cfg, err, sizeof err);
    if (rc == 0)
        config_free(cfg);
    if (rc != -1 || !strstr(err, needle1) || (needle2 && !strstr(err, needle2))) {
        printf("  config \"%s\" gave rc %d, err \"%s\"\n", text, rc, err);
        unit_failed_flag = 1;
    }
}

static void test_errors_name_key_file_and_line(void) {
    expect_error("LLM_PROVIDER=ollama\nMAX_LATENCY_MS=abc\n", 0600,
                 "promptd.conf:2:", "MAX_LATENCY_MS");
    expect_error("MAX_LATENCY_MS=0\n", 0600, ":1:", "from 100 to");
    expect_error("MAX_LATENCY_MS=99999999999999999999\n", 0600, ":1:", "MAX_LATENCY_MS");
    expect_error("SQLITE_ENABLED=maybe\n", 0600, ":1:", "true or false");
    expect_error("LLM_PROVIDER=skynet\n", 0600, ":1:", "not a provider");
    expect_error("LLM_FALLBACK_PROVIDER=skynet\n", 0600, ":1:", "or none");
    expect_error("LOG_LEVEL=loud\n", 0600, ":1:", "debug, info, warn, error");
    expect_error("LLM_BASE_URL=localhost:11434\n", 0600, ":1:", "http://");
    expect_error("MIN_CONFIDENCE_THRESHOLD=1.5\n", 0600, ":1:", "MIN_CONFIDENCE_THRESHOLD");
    expect_error("\n\njust words\n", 0600, ":3:", "KEY=VALUE");
    expect_error("LLM_MODEL=\"unterminated\n", 0600, ":1:", "unterminated quote");
    expect_error("LLM_MODEL=\"a\" junk\n", 0600, ":1:", "LLM_MODEL");
    expect_error("MAX_REQUEST_BYTES=10\n", 0600, ":1:", "MAX_REQUEST_BYTES");
}

static void test_secret_in_readable_file_refused(void) {
    expect_error("OPENAI_API_KEY=sk-secret\n", 0644, "chmod 600", "OPENAI_API_KEY");
    expect_error("LLM_API_KEY=k\n", 0640, "chmod 600", NULL);
    struct config *cfg = NULL;
    char err[256];
    CHECK_INT(load("OPENAI_API_KEY=sk-secret\n", 0600, &cfg, err, sizeof err), 0);
    CHECK_STR(config_api_key(cfg, "openai"), "sk-secret");
    json_t *j = config_to_json(cfg);
    CHECK_STR(json_string_value(json_object_get(j, "OPENAI_API_KEY")), "***");
    CHECK(json_is_null(json_object_get(j, "ANTHROPIC_API_KEY")));
    char *text = json_dumps(j, 0);
    CHECK(strstr(text, "sk-secret") == NULL);
    free(text);
    json_decref(j);
    config_free(cfg);
    /* A readable file without secrets is fine. */
    CHECK_INT(load("LLM_MODEL=x\n", 0644, &cfg, err, sizeof err), 0);
    config_free(cfg);
}

static void test_unknown_key_is_only_a_warning(void) {
    struct config *cfg = NULL;
    char err[256];
    CHECK_INT(load("SOMETHING_OLD=1\nLLM_MODEL=m\n", 0600, &cfg, err, sizeof err), 0);
    CHECK_STR(cfg->llm_model, "m");
    config_free(cfg);
}

static void test_precedence_flag_env_file(void) {
    struct config *cfg = NULL;
    char err[256];
    setenv("LLM_MODEL", "from-env", 1);
    setenv("LOG_LEVEL", "error", 1);
    struct config_flags flags = {.log_level = "debug"};
    const char *path = write_conf("LLM_MODEL=from-file\nLOG_LEVEL=warn\nFEWSHOT_K=5\n", 0600);
    int rc = config_load(path, &flags, &cfg, NULL, err, sizeof err);
    unsetenv("LLM_MODEL");
    unsetenv("LOG_LEVEL");
    CHECK_INT(rc, 0);
    CHECK_STR(cfg->llm_model, "from-env");
    CHECK_INT(cfg->log_level, LOG_DEBUG);
    CHECK_INT(cfg->fewshot_k, 5);
    config_free(cfg);
}

static void test_bad_env_and_flag_values(void) {
    struct config *cfg = NULL;
    char err[256] = "";
    setenv("MAX_QUEUED_REQUESTS", "-1", 1);
    int rc = config_load(NULL, NULL, &cfg, NULL, err, sizeof err);
    unsetenv("MAX_QUEUED_REQUESTS");
    CHECK_INT(rc, -1);
    CHECK(strstr(err, "environment") && strstr(err, "MAX_QUEUED_REQUESTS"));
    struct config_flags flags = {.log_level = "chatty"};
    CHECK_INT(config_load(NULL, &flags, &cfg, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "--log-level") != NULL);
}

static void test_nul_and_huge_files(void) {
    struct config *cfg = config_defaults();
    char err[256] = "";
    CHECK_INT(config_parse_text(cfg, "LLM_MODEL=a\0b\n", 13, "mem", true, err, sizeof err), -1);
    CHECK(strstr(err, "mem:1: a NUL byte") != NULL);
    CHECK_INT(
        config_parse_text(cfg, "LLM_MODEL=tail-without-newline", 30, "mem", true, err, sizeof err),
        0);
    CHECK_STR(cfg->llm_model, "tail-without-newline");
    config_free(cfg);
    static char big[1024 * 1024 + 10];
    memset(big, '#', sizeof big - 1);
    expect_error(big, 0600, "larger than", NULL);
}

static void test_missing_file(void) {
    struct config *cfg = NULL;
    char err[256] = "";
    CHECK_INT(config_load("/nonexistent/promptd.conf", NULL, &cfg, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent/promptd.conf") != NULL);
}

static void test_implicit_file_from_xdg(void) {
    char sub[128], path[160];
    snprintf(sub, sizeof sub, "%s/xdg/promptd", dir);
    char xdg[128];
    snprintf(xdg, sizeof xdg, "%s/xdg", dir);
    mkdir(xdg, 0700);
    mkdir(sub, 0700);
    snprintf(path, sizeof path, "%s/promptd.conf", sub);
    FILE *f = fopen(path, "w");
    fputs("LLM_MODEL=implicit\n", f);
    fclose(f);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    struct config *cfg = NULL;
    char err[256];
    char *used = NULL;
    int rc = config_load(NULL, NULL, &cfg, &used, err, sizeof err);
    unsetenv("XDG_CONFIG_HOME");
    CHECK_INT(rc, 0);
    CHECK_STR(cfg->llm_model, "implicit");
    CHECK_STR(used, path);
    free(used);
    config_free(cfg);
}

static void test_log_changes_does_not_crash(void) {
    struct config *a = NULL, *b = NULL;
    char err[256];
    CHECK_INT(load("LLM_MODEL=a\nLLM_API_KEY=one\n", 0600, &a, err, sizeof err), 0);
    CHECK_INT(
        load("LLM_MODEL=b\nLLM_API_KEY=two\nSQLITE_WAL_MODE=false\n", 0600, &b, err, sizeof err),
        0);
    config_log_changes(a, b);
    config_free(a);
    config_free(b);
}

static void test_writable_file_refused_without_secret(void) {
    expect_error("LLM_BASE_URL=http://127.0.0.1:9\n", 0620, "can be changed by other users",
                 "chmod go-w");
    expect_error("LLM_MODEL=m\n", 0602, "mode 0602", NULL);
    struct config *cfg = NULL;
    char err[512];
    CHECK_INT(load("LLM_MODEL=m\n", 0644, &cfg, err, sizeof err), 0); /* readable is fine */
    config_free(cfg);
}

static void test_fifo_refused_without_blocking(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/fifo.conf", dir);
    CHECK_INT(mkfifo(path, 0600), 0);
    struct config *cfg = NULL;
    char err[512] = "";
    CHECK_INT(config_load(path, NULL, &cfg, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "it is a FIFO, not a regular file") != NULL);
    unlink(path);
}

static void test_public_url_hides_credentials(void) {
    static const char *const cases[][2] = {
        {"https://user:pw@host:1/v1?key=secret", "https://host:1/v1"},
        {"http://localhost:11434", "http://localhost:11434"},
        {"http://u:p@ss@host/x", "http://host/x"},  /* a raw '@' in the password */
        {"http://host?api_key=k@x", "http://host"}, /* an '@' in the query is not userinfo */
        {"http://host/v1#token=t", "http://host/v1"},
        {"u:pw@box:7", "box:7"},                    /* OLLAMA_HOST without a scheme */
        {"http://host/a@b/c", "http://host/a@b/c"}, /* an '@' in the path stays */
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_public_url(cases[i][0], out, sizeof out);
        CHECK_STR(out, cases[i][1]);
    }
}

static void test_to_json_hides_url_credentials(void) {
    struct config *cfg = NULL;
    char err[512];
    CHECK_INT(load("LLM_BASE_URL=http://a:b@h:1/v1?token=t\nOLLAMA_HOST=http://c:d@o:2\n", 0600,
                   &cfg, err, sizeof err),
              0);
    json_t *j = config_to_json(cfg);
    CHECK_STR(json_string_value(json_object_get(j, "LLM_BASE_URL")), "http://h:1/v1");
    CHECK_STR(json_string_value(json_object_get(j, "OLLAMA_HOST")), "http://o:2");
    json_decref(j);
    CHECK_STR(cfg->llm_base_url, "http://a:b@h:1/v1?token=t"); /* used as given */
    config_free(cfg);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/promptd-unit-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", dir, 1);
    log_set_level(LOG_ERROR);
    RUN(test_defaults);
    RUN(test_file_values_quotes_comments);
    RUN(test_errors_name_key_file_and_line);
    RUN(test_secret_in_readable_file_refused);
    RUN(test_unknown_key_is_only_a_warning);
    RUN(test_precedence_flag_env_file);
    RUN(test_bad_env_and_flag_values);
    RUN(test_nul_and_huge_files);
    RUN(test_missing_file);
    RUN(test_implicit_file_from_xdg);
    RUN(test_log_changes_does_not_crash);
    RUN(test_writable_file_refused_without_secret);
    RUN(test_fifo_refused_without_blocking);
    RUN(test_public_url_hides_credentials);
    RUN(test_to_json_hides_url_credentials);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    UNIT_EXIT();
}
