#include "methods_core.h"

#include <curl/curl.h>
#include <sqlite3.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "protocol.h"

static void method_ping(struct rpc_call *call, json_t *params) {
    rpc_reply(call, json_string("pong"));
}

static void method_version(struct rpc_call *call, json_t *params) {
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    rpc_reply(call,
              json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "version", PROMPTD_VERSION, "protocol",
                        PROMPTD_PROTOCOL, "sqlite", sqlite3_libversion(), "libuv",
                        uv_version_string(), "libcurl", curl->version, "jansson", JANSSON_VERSION));
}

static json_t *health_database_disabled(void) {
    return json_pack("{s:s, s:n, s:n, s:n, s:n, s:i, s:i, s:i}", "status", "disabled", "path",
                     "total_records", "average_confidence", "average_latency_ms", "pending_writes",
                     0, "dropped_writes", 0, "failures", 0);
}

static json_t *health_llm_configured(const struct config *cfg) {
    char url[512] = "";
    if (cfg->llm_base_url)
        config_public_url(cfg->llm_base_url, url, sizeof url);
    return json_pack("{s:s?, s:s?, s:s?}", "provider", cfg->llm_provider, "model", cfg->llm_model,
                     "base_url", cfg->llm_base_url ? url : NULL);
}

/* Everything here comes from memory: health must answer even when the
 * database or the LLM is slow. */
static void method_health(struct rpc_call *call, json_t *params) {
    struct daemon *d = rpc_call_daemon(call);
    json_t *db = d->health_database ? d->health_database(d) : health_database_disabled();
    json_t *llm = d->health_llm ? d->health_llm(d) : health_llm_configured(d->cfg);
    const char *db_status = json_string_value(json_object_get(db, "status"));
    bool degraded = db_status &&
                    (strcmp(db_status, "circuit_open") == 0 || strcmp(db_status, "unhealthy") == 0);
    /* The health call itself is in flight; do not count it. */
    json_t *requests = json_pack(
        "{s:I, s:I, s:I, s:I}", "in_flight", (json_int_t)(d->requests.in_flight - 1), "served",
        (json_int_t)d->requests.served, "failed", (json_int_t)d->requests.failed,
        "output_limit_disconnections", (json_int_t)d->requests.output_limit_disconnections);
    rpc_reply(call, json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:o}", "status",
                              degraded ? "degraded" : "ok", "version", PROMPTD_VERSION, "uptime_s",
                              (json_int_t)((daemon_now_ms() - d->started_ms) / 1000), "socket",
                              d->socket_path ? d->socket_path : "", "database", db, "llm", llm,
                              "requests", requests));
}

static void method_config_get(struct rpc_call *call, json_t *params) {
    rpc_reply(call, config_to_json(rpc_call_daemon(call)->cfg));
}

static void method_cancel(struct rpc_call *call, json_t *params) {
    json_t *target = json_object_get(params, "request_id");
    if (!target || !(json_is_string(target) || json_is_integer(target))) {
        rpc_reply_invalid_param(call, "request_id",
                                "\"request_id\" must be the id (number or string) of a request "
                                "in flight on this connection");
        return;
    }
    bool cancelled = rpc_cancel_by_id(rpc_call_conn(call), target);
    rpc_reply(call, json_pack("{s:b}", "cancelled", cancelled));
}

const struct rpc_method methods_core[] = {
    {"ping", method_ping},     {"version", method_version},
    {"health", method_health}, {"config.get", method_config_get},
    {"cancel", method_cancel}, {NULL, NULL},
};
