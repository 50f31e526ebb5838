#include "methods_history.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "store.h"
#include "xalloc.h"

/* One history call waiting for the store. The store always calls back
 * exactly once. A cancel (client gone, `cancel`, shutdown) answers the
 * call at once when the store agrees that nothing will change (always for
 * reads), and leaves the request to be freed by that callback; past an
 * operation's point of no return it leaves the call to the callback,
 * which answers what was done: "cancelled" never hides a change. */
struct hreq {
    struct rpc_call *call;      /* NULL once answered by the cancel hook */
    const char *field;          /* the param an RPC_INVALID_PARAMS from the store names */
    struct store_cancel cancel; /* lent to the store until hreq_done */
};

static void hreq_cancel(void *arg) {
    struct hreq *r = arg;
    if (r->call && store_cancel_request(&r->cancel)) {
        rpc_reply_cancelled(r->call);
        r->call = NULL;
    }
}

static void reply_store_error(struct rpc_call *call, int code, const char *message,
                              const char *field) {
    switch (code) {
    case RPC_INVALID_PARAMS:
        rpc_reply_invalid_param(call, field ? field : "params", "%s", message);
        break;
    case RPC_NOT_FOUND:
    case RPC_CANCELLED:
    case STORE_RPC_STORAGE:
        rpc_reply_error(call, code, NULL, "%s", message);
        break;
    default: /* any other code from the store is a bug */
        rpc_reply_error(call, RPC_INTERNAL, NULL, "%s", message);
    }
}

static void hreq_done(void *arg, json_t *result, int code, const char *message) {
    struct hreq *r = arg;
    if (!r->call) {
        json_decref(result);
    } else {
        rpc_call_set_cancel(r->call, NULL, NULL);
        if (code == 0)
            rpc_reply(r->call, result);
        else
            reply_store_error(r->call, code, message, r->field);
    }
    free(r);
}

/* The store, or NULL after answering persistence_disabled. */
static struct store *need_store(struct rpc_call *call) {
    struct store *s = rpc_call_daemon(call)->store;
    if (!s)
        rpc_reply_error(call, STORE_RPC_DISABLED, NULL,
                        "History is disabled (SQLITE_ENABLED=false): set SQLITE_ENABLED=true and "
                        "restart promptd to record and browse improvements.");
    return s;
}

/* The request state for a call that goes to the store: owned by the
 * store's callback (hreq_done frees it). */
static struct hreq *hreq_new(struct rpc_call *call, const char *field) {
    struct hreq *r = xmalloc(sizeof *r);
    r->call = call;
    r->field = field;
    atomic_init(&r->cancel.state, STORE_CANCEL_PENDING);
    rpc_call_set_cancel(call, hreq_cancel, r);
    return r;
}

/* An optional ISO-8601 date/date-time param into the stored form. */
static bool param_time(struct rpc_call *call, json_t *params, const char *name, bool upper,
                       char out[STORE_TS_LEN]) {
    const char *text = NULL;
    out[0] = '\0';
    if (!rpc_param_str(call, params, name, false, &text))
        return false;
    if (text && store_time_parse(text, upper, out) != 0) {
        rpc_reply_invalid_param(call, name,
                                "\"%s\" must be an ISO-8601 date or date-time, e.g. 2026-11-23 "
                                "or 2026-11-23T19:20:58Z",
                                name);
        return false;
    }
    return true;
}

/* An absolute file path param. */
static bool param_path(struct rpc_call *call, json_t *params, const char **out) {
    if (!rpc_param_str(call, params, "path", true, out))
        return false;
    if ((*out)[0] != '/') {
        rpc_reply_invalid_param(call, "path",
                                "\"path\" must be an absolute path (the daemon's working "
                                "directory is not yours)");
        return false;
    }
    return true;
}

static void method_history_list(struct rpc_call *call, json_t *params) {
    struct history_filter f = {.limit = LIMIT_HISTORY_PAGE_DEFAULT};
    json_int_t limit = f.limit, offset = 0;
    struct store *s = need_store(call);
    if (!s || !rpc_param_int(call, params, "limit", false, 1, LIMIT_HISTORY_PAGE_MAX, &limit) ||
        !rpc_param_int(call, params, "offset", false, 0, INT64_MAX, &offset) ||
        !rpc_param_str(call, params, "backend", false, &f.backend) ||
        !rpc_param_str(call, params, "provider", false, &f.provider) ||
        !param_time(call, params, "since", false, f.since) ||
        !param_time(call, params, "until", true, f.until))
        return;
    f.min_quality = -1;
    if (!rpc_param_num(call, params, "min_quality", false, 0, 1, &f.min_quality))
        return;
    f.has_min_quality = f.min_quality >= 0;
    f.limit = (long)limit;
    f.offset = (long)offset;
    struct hreq *r = hreq_new(call, NULL);
    store_list(s, &f, &r->cancel, hreq_done, r);
}

static void method_history_get(struct rpc_call *call, json_t *params) {
    json_int_t id = 0;
    struct store *s = need_store(call);
    if (!s || !rpc_param_int(call, params, "id", true, 1, INT64_MAX, &id))
        return;
    struct hreq *r = hreq_new(call, "id");
    store_get_async(s, (int64_t)id, hreq_done, r);
}

/* The query within LIMIT_SEARCH_QUERY_BYTES and _TERMS, or false after
 * answering -32602. */
static bool search_query_ok(struct rpc_call *call, const char *query) {
    size_t bytes = strlen(query), terms;
    if (bytes > LIMIT_SEARCH_QUERY_BYTES) {
        rpc_reply_invalid_param(call, "query",
                                "\"query\" is %zu bytes, but at most %d bytes are searched: "
                                "search for a few words of the prompt.",
                                bytes, LIMIT_SEARCH_QUERY_BYTES);
        return false;
    }
    if ((terms = store_search_terms(query)) > LIMIT_SEARCH_QUERY_TERMS) {
        rpc_reply_invalid_param(call, "query",
                                "\"query\" has %zu different words, but at most %d different "
                                "words are searched (every one must match): leave some out.",
                                terms, LIMIT_SEARCH_QUERY_TERMS);
        return false;
    }
    return true;
}

static void method_history_search(struct rpc_call *call, json_t *params) {
    const char *query = NULL;
    json_int_t limit = LIMIT_HISTORY_PAGE_DEFAULT;
    struct store *s = need_store(call);
    if (!s || !rpc_param_str(call, params, "query", true, &query) ||
        !rpc_param_int(call, params, "limit", false, 1, LIMIT_HISTORY_PAGE_MAX, &limit) ||
        !search_query_ok(call, query))
        return;
    struct hreq *r = hreq_new(call, "query");
    store_search(s, query, (long)limit, &r->cancel, hreq_done, r);
}

/* Exactly one of id, before, all: true. */
static void method_history_delete(struct rpc_call *call, json_t *params) {
    json_int_t id = 0;
    char before[STORE_TS_LEN];
    bool all = false;
    struct store *s = need_store(call);
    if (!s || !rpc_param_int(call, params, "id", false, 1, INT64_MAX, &id) ||
        !param_time(call, params, "before", false, before) ||
        !rpc_param_bool(call, params, "all", &all))
        return;
    int given = (id > 0) + (before[0] != '\0') + all;
    if (given != 1) {
        rpc_reply_invalid_param(call,
                                id > 0      ? "id"
                                : before[0] ? "before"
                                            : "all",
                                "give exactly one of \"id\", \"before\" or \"all\": true");
        return;
    }
    struct hreq *r = hreq_new(call, "id");
    if (id > 0)
        store_delete_id(s, (int64_t)id, &r->cancel, hreq_done, r);
    else if (before[0])
        store_delete_before(s, before, &r->cancel, hreq_done, r);
    else
        store_delete_all(s, &r->cancel, hreq_done, r);
}

static void method_stats(struct rpc_call *call, json_t *params) {
    char since[STORE_TS_LEN];
    struct store *s = need_store(call);
    if (!s || !param_time(call, params, "since", false, since))
        return;
    struct hreq *r = hreq_new(call, "since");
    store_stats(s, since[0] ? since : NULL, &r->cancel, hreq_done, r);
}

static void method_cleanup(struct rpc_call *call, json_t *params) {
    json_int_t days = 0;
    struct store *s = need_store(call);
    if (!s || !rpc_param_int(call, params, "days", true, 0, 36500, &days))
        return;
    struct hreq *r = hreq_new(call, "days");
    store_cleanup(s, (long)days, &r->cancel, hreq_done, r);
}

/* db.backup: path, and overwrite (replace an older backup there). */
static void method_db_backup(struct rpc_call *call, json_t *params) {
    const char *path = NULL;
    bool overwrite = false;
    struct store *s = need_store(call);
    if (!s || !param_path(call, params, &path) ||
        !rpc_param_bool(call, params, "overwrite", &overwrite))
        return;
    struct hreq *r = hreq_new(call, "path");
    store_backup(s, path, overwrite, &r->cancel, hreq_done, r);
}

static void method_db_restore(struct rpc_call *call, json_t *params) {
    const char *path = NULL;
    struct store *s = need_store(call);
    if (!s || !param_path(call, params, &path))
        return;
    struct hreq *r = hreq_new(call, "path");
    store_restore(s, path, &r->cancel, hreq_done, r);
}

static void method_db_check(struct rpc_call *call, json_t *params) {
    struct store *s = need_store(call);
    if (!s)
        return;
    struct hreq *r = hreq_new(call, NULL);
    store_check(s, hreq_done, r);
}

json_t *methods_history_health(struct daemon *d) {
    if (!d->store)
        return json_pack("{s:s,s:n,s:n,s:n,s:n,s:i,s:i,s:i}", "status", "disabled", "path",
                         "total_records", "average_confidence", "average_latency_ms",
                         "pending_writes", 0, "dropped_writes", 0, "failures", 0);
    return store_health(d->store);
}

const struct rpc_method methods_history[] = {
    {"history.list", method_history_list},
    {"history.get", method_history_get},
    {"history.search", method_history_search},
    {"history.delete", method_history_delete},
    {"stats", method_stats},
    {"cleanup", method_cleanup},
    {"db.backup", method_db_backup},
    {"db.restore", method_db_restore},
    {"db.check", method_db_check},
    {NULL, NULL},
};
