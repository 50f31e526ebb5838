/* promptctl's basic commands: ping, version, health, config, call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_text.h"
#include "promptctl.h"

static int ctl_simple(struct ctl *c, const char *method, json_t **result) {
    return ctl_call(c, method, NULL, result, NULL, NULL, NULL);
}

static int cmd_ping(struct ctl *c, int argc, char **argv) {
    json_t *result = NULL;
    int rc = ctl_simple(c, "ping", &result);
    if (rc == CTL_OK) {
        if (c->json)
            ctl_print_json(c, result);
        else
            ctl_text_printf(stdout, "%s\n",
                            json_string_value(result) ? json_string_value(result) : "?");
    }
    json_decref(result);
    return rc;
}

static int cmd_version(struct ctl *c, int argc, char **argv) {
    json_t *r = NULL;
    int rc = ctl_simple(c, "version", &r);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(c, r);
    else
        ctl_text_printf(stdout, "promptd %s (protocol %lld)\nsqlite %s, libuv %s, libcurl %s\n",
                        json_string_value(json_object_get(r, "version")),
                        json_integer_value(json_object_get(r, "protocol")),
                        json_string_value(json_object_get(r, "sqlite")),
                        json_string_value(json_object_get(r, "libuv")),
                        json_string_value(json_object_get(r, "libcurl")));
    json_decref(r);
    return CTL_OK;
}

/* "text", a number, or "-" for null: health values are mixed types. */
static void ctl_format_value(json_t *v, char *out, size_t len) {
    if (json_is_string(v))
        snprintf(out, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, len, "%.2f", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, len, "%s", json_is_true(v) ? "yes" : "no");
    else
        snprintf(out, len, "-");
}

static void ctl_print_section(const char *title, json_t *obj) {
    printf("%s:\n", title);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char text[512];
        ctl_format_value(v, text, sizeof text);
        ctl_text_printf(stdout, "  %-20s %s\n", key, text);
    }
}

static int cmd_health(struct ctl *c, int argc, char **argv) {
    json_t *r = NULL;
    int rc = ctl_simple(c, "health", &r);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(c, r);
    } else {
        ctl_text_printf(stdout, "status    %s\nversion   %s\nuptime    %llds\nsocket    %s\n",
                        json_string_value(json_object_get(r, "status")),
                        json_string_value(json_object_get(r, "version")),
                        (long long)json_integer_value(json_object_get(r, "uptime_s")),
                        json_string_value(json_object_get(r, "socket")));
        ctl_print_section("database", json_object_get(r, "database"));
        ctl_print_section("llm", json_object_get(r, "llm"));
        ctl_print_section("requests", json_object_get(r, "requests"));
    }
    json_decref(r);
    return CTL_OK;
}

static int cmd_config(struct ctl *c, int argc, char **argv) {
    json_t *r = NULL;
    int rc = ctl_simple(c, "config.get", &r);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(c, r);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(r, key, v) {
            char text[512];
            ctl_format_value(v, text, sizeof text);
            ctl_text_printf(stdout, "%-30s %s\n", key, text);
        }
    }
    json_decref(r);
    return CTL_OK;
}

static int cmd_call(struct ctl *c, int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: promptctl call METHOD [PARAMS_JSON]\n");
        return CTL_ERR_USAGE;
    }
    json_t *params = NULL;
    if (argc == 3) {
        json_error_t e;
        params = json_loads(argv[2], 0, &e);
        if (!params) {
            fprintf(stderr, "promptctl: PARAMS_JSON is not valid JSON: %s\n", e.text);
            return CTL_ERR_USAGE;
        }
    }
    json_t *r = NULL;
    int rc = ctl_call(c, argv[1], params, &r, NULL, NULL, NULL);
    if (rc == CTL_OK)
        ctl_print_json(c, r);
    json_decref(r);
    return rc;
}

const struct ctl_command ctl_core_commands[] = {
    {"ping", "promptctl ping", "check that the daemon answers", cmd_ping},
    {"version", "promptctl version", "show the daemon's version and libraries", cmd_version},
    {"health", "promptctl health", "show the daemon's health: database, LLM, requests", cmd_health},
    {"config", "promptctl config", "show the daemon's effective configuration (secrets hidden)",
     cmd_config},
    {"call",
     "promptctl call METHOD [PARAMS_JSON]\n\n"
     "Sends one raw JSON-RPC request and prints the raw result, e.g.\n"
     "  promptctl call history.list '{\"limit\": 5}'",
     "send a raw request and print its result", cmd_call},
    {NULL, NULL, NULL, NULL},
};
