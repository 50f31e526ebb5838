/* The daemon's one context: everything a callback may need is reached from
 * here through handle->data (no other mutable globals). Wired in main.c. */
#ifndef PROMPTD_DAEMON_H
#define PROMPTD_DAEMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "rpc.h"

struct config;
struct server;
struct store;
struct llm;
struct fewshot_set;

#define DAEMON_MAX_METHOD_TABLES 8

struct daemon_counters {
    uint64_t in_flight; /* calls dispatched and not yet answered */
    uint64_t served;    /* answered with a result */
    uint64_t failed;    /* answered with an error */
    /* clients closed for letting answers pile up past
     * LIMIT_CONN_OUTPUT_HARD_BYTES unread */
    uint64_t output_limit_disconnections;
};

struct daemon {
    uv_loop_t *loop; /* borrowed; the default loop */
    /* owned; replaced and freed on SIGHUP: read it when needed, never keep
     * a pointer into it across callbacks (copy what a request uses). */
    struct config *cfg;
    char *config_path;     /* owned; NULL when no config file is used */
    char *socket_path;     /* owned; resolved path shown in health */
    struct server *server; /* owned */
    struct store *store;   /* owned; NULL when persistence is disabled */
    struct llm *llm;       /* owned; the improve engine, NULL until set up */
    /* owned; FEWSHOT_TRAINSET_PATH's examples, NULL when none. Replaced on
     * SIGHUP: requests copy what they use, so nothing borrows it. */
    struct fewshot_set *fewshot;
    uint64_t started_ms; /* uv_hrtime()/1e6 at start */
    struct daemon_counters requests;
    const struct rpc_method *method_tables[DAEMON_MAX_METHOD_TABLES];
    size_t n_method_tables;
    bool stopping; /* SIGTERM seen: refuse new work */

    /* Sections of `health`, filled by the modules that own them; NULL means
     * the module is not there and health shows it as disabled. Each returns
     * a new reference and must answer from memory, never blocking. */
    json_t *(*health_database)(struct daemon *d);
    json_t *(*health_llm)(struct daemon *d);
};

uint64_t daemon_now_ms(void);

#endif
