/* The improve engine (see llm.h). One struct llm per daemon; one struct
 * llm_request per improve/models call, alive from llm_improve until its
 * on_done returns or it is cancelled.
 *
 * A request's life: QUEUED (waiting for an upstream slot, at most
 * MAX_QUEUE_WAIT_MS on its timer) -> RUNNING (an
 * HTTP exchange in flight) -> possibly WAITING (backoff before its one
 * retry) -> RUNNING -> FINISHING (outcome ready, delivered from a 0 ms
 * timer when it was decided inside llm_improve) -> freed. Each request owns
 * one uv_timer_t used for the queue wait, the backoff and the deferred
 * delivery (never two at once); the
 * request's memory is freed in that timer's close callback, so a callback
 * that is already queued can never reach freed memory.
 *
 * Ownership: the engine owns the http engine and every request (linked in
 * e->all); a request owns its copies of the configuration it uses, its
 * parser, its reply buffers and its outcome.
 *
 * Nothing here names a provider: what differs between them (URLs, keys,
 * framing, hints, Ollama's preload and `think` switch) is data and hooks
 * of their struct llm_provider. A local provider (builtin) is answered by
 * its improve_local hook from the loop, without HTTP. */
#include "llm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "llm_delta.h"
#include "llm_field_stream.h"
#include "llm_provider.h"
#include "llm_result.h"
#include "llm_target.h"
#include "llm_template.h"
#include "log.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "utf8.h"
#include "xalloc.h"

/* Bytes of a non-2xx response body kept for its error message. */
#define LLM_ERROR_BODY_BYTES (64 * 1024)
/* Backoff before the one retry when the server gave no Retry-After. */
#define LLM_RETRY_BACKOFF_MS 500
/* Idle upstream connections kept beyond MAX_CONCURRENT_REQUESTS (models
 * calls, a second provider). */
#define LLM_SPARE_CONNECTIONS 4
/* Providers shown in health (more than the table holds today). */
#define LLM_HEALTH_PROVIDERS_MAX 16
/* Models and prewarm are short control calls, not generations. */
#define LLM_CONTROL_TIMEOUT_MS 10000
/* Models that refused an optional switch (a provider's refuses_extras:
 * Ollama's `think`); small, rarely more than a handful of models are
 * used. */
#define LLM_PLAIN_MODELS_MAX 16

enum llm_kind { LLM_IMPROVE, LLM_MODELS, LLM_PREWARM };
enum llm_state { LR_NEW, LR_QUEUED, LR_RUNNING, LR_WAITING, LR_FINISHING, LR_DONE };

struct llm_request {
    struct llm *e; /* borrowed */
    enum llm_kind kind;
    enum llm_state state;
    struct llm_target t;
    char *fallback_from;                             /* owned; the provider that failed before t */
    char *fallback_reason;                           /* owned */
    char *idea, *context, *parent_prompt, *user_msg; /* owned */
    char *keep_alive;                                /* owned; LLM_KEEP_ALIVE when it began */
    long num_ctx, first_byte_timeout_ms, max_latency_ms;
    bool stream;
    uint64_t received_ms;
    uint64_t queued_ms;        /* when it last joined the queue */
    struct http_req *hreq;     /* borrowed while RUNNING */
    struct llm_parser *parser; /* owned, per attempt */
    struct llm_reply reply;    /* owned buffers */
    struct llm_buf body;       /* owned; a model list, or a non-2xx body (bounded) */
    long http_status;
    struct json_field_stream *jfs; /* owned when streaming */
    struct llm_delta_trim trim;    /* owns what it holds back; between jfs and on_delta */
    size_t deltas;                 /* delta bytes passed on */
    struct llm_buf streamed;       /* owned; the delta text passed on */
    int retries;
    bool resent;         /* sent once more after the connection broke before any answer */
    bool without_extras; /* asked again without the provider's optional switch */
    bool holds_slot;
    uv_timer_t timer; /* queue wait, backoff, deferred delivery; its close frees the request */
    /* The outcome, filled by llm_fail / llm_succeed. */
    struct llm_outcome out;
    char message[768];
    char *detail; /* owned */
    struct improve_result result;
    json_t *models; /* owned */
    llm_delta_fn on_delta;
    llm_done_fn on_done;
    void *arg;
    char public_url[512];                 /* t.base_url without credentials, for the outcome */
    TAILQ_ENTRY(llm_request) all_entry;   /* e->all */
    TAILQ_ENTRY(llm_request) queue_entry; /* e->queue while QUEUED */
};

TAILQ_HEAD(llm_request_list, llm_request);

struct llm {
    struct daemon *d;                     /* borrowed */
    struct http *http;                    /* owned */
    struct llm_template_cache *templates; /* owned */
    struct llm_request_list all;          /* every request not yet freed */
    struct llm_request_list queue;        /* QUEUED, oldest first */
    size_t n_queued, n_running;
    uv_timer_t pump;  /* starts queued requests outside curl callbacks */
    char *last_error; /* owned */
    time_t last_error_at;
    char *plain_models[LLM_PLAIN_MODELS_MAX]; /* owned model names (refused the extras) */
    size_t n_plain_models;
    bool closing;
};

static void llm_attempt(struct llm_request *r);
static void llm_finish(struct llm_request *r);
static void llm_pump(struct llm *e);
static void llm_pump_cb(uv_timer_t *t);
static int llm_on_jfs(void *user, const char *text, size_t len);

/* ---- configuration ---- */

static const struct config *llm_cfg(const struct llm *e) {
    return e->d->cfg;
}

/* ---- outcomes ---- */

static void llm_record_error(struct llm *e, const char *provider, const char *msg) {
    free(e->last_error);
    e->last_error = xstrdup(msg);
    e->last_error_at = time(NULL);
    log_warn("llm: %s: %s", provider, msg);
}

static void llm_fail(struct llm_request *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void llm_fail(struct llm_request *r, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    r->out.code = code;
    r->out.message = r->message;
    if (code != RPC_CANCELLED && code != RPC_OVERLOADED)
        llm_record_error(r->e, r->t.name ? r->t.name : "llm", r->message);
}

static void llm_set_detail(struct llm_request *r, char *detail) {
    free(r->detail);
    r->detail = detail;
    r->out.detail = detail;
}

/* ---- delivery ---- */

static void llm_request_close_cb(uv_handle_t *h) {
    struct llm_request *r = h->data;
    free(r);
}

static void llm_drop_parser(struct llm_request *r);

/* Frees everything the request owns and unlinks it; the struct goes in
 * the timer's close callback. */
static void llm_request_free(struct llm_request *r) {
    llm_drop_parser(r);
    TAILQ_REMOVE(&r->e->all, r, all_entry);
    llm_target_clear(&r->t);
    free(r->fallback_from);
    free(r->fallback_reason);
    free(r->idea);
    free(r->context);
    free(r->parent_prompt);
    free(r->user_msg);
    free(r->keep_alive);
    llm_reply_clear(&r->reply);
    llm_buf_free(&r->body);
    json_field_stream_free(r->jfs);
    llm_delta_trim_clear(&r->trim);
    llm_buf_free(&r->streamed);
    free(r->detail);
    result_clear(&r->result);
    json_decref(r->models);
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, llm_request_close_cb);
}

static void llm_release_slot(struct llm_request *r) {
    if (!r->holds_slot)
        return;
    r->holds_slot = false;
    r->e->n_running--;
}

static void llm_queue_remove(struct llm_request *r) {
    TAILQ_REMOVE(&r->e->queue, r, queue_entry);
    r->e->n_queued--;
}

/* The protocol promises that a stream's deltas add up to improved_prompt.
 * When they do not yet (builtin and fallback answers stream nothing, an
 * extractor that lost its way stops early), the missing tail goes out as
 * one last delta before the result. */
static void llm_stream_rest(struct llm_request *r) {
    if (!r->stream || r->out.code != 0 || !r->out.result || !r->on_delta)
        return;
    const char *p = r->out.result->improved_prompt;
    size_t n = p ? strlen(p) : 0, done = r->streamed.len;
    if (done >= n || (done > 0 && memcmp(r->streamed.data, p, done) != 0))
        return;
    r->on_delta(r->arg, p + done, n - done);
}

static void llm_deliver(struct llm_request *r) {
    r->state = LR_DONE;
    llm_stream_rest(r);
    r->out.provider = r->t.name;
    r->out.model = r->t.model;
    if (r->t.base_url) {
        config_public_url(r->t.base_url, r->public_url, sizeof r->public_url);
        r->out.base_url = r->public_url;
    }
    r->out.fallback_from = r->fallback_from;
    r->out.fallback_reason = r->fallback_reason;
    if (r->on_done)
        r->on_done(r->arg, &r->out);
    llm_request_free(r);
}

static void llm_deferred_cb(uv_timer_t *t) {
    llm_deliver(t->data);
}

static void llm_drop_parser(struct llm_request *r) {
    llm_parser_free(r->parser);
    r->parser = NULL;
}

/* ---- fallback and local providers ---- */

/* A local provider (builtin) answers here, in-process. */
static void llm_run_local(struct llm_request *r) {
    int rc = r->t.prov->improve_local(r->idea, r->context, &r->result);
    if (rc != RESULT_OK) {
        llm_fail(r, RPC_INTERNAL, "%s could not improve the idea: %s", r->t.prov->label,
                 result_strerror(rc));
        return;
    }
    r->out.code = 0;
    r->out.result = &r->result;
}

/* The primary is unavailable (not a bad request or bad output): the kind
 * of failure LLM_FALLBACK_PROVIDER exists for. Never after deltas went out:
 * the streamed text must be the result's prompt. */
static bool llm_fallback_eligible(const struct llm_request *r) {
    if (r->kind != LLM_IMPROVE || r->fallback_from || r->deltas > 0)
        return false;
    switch (r->out.code) {
    case RPC_UPSTREAM_UNAVAILABLE:
    case RPC_UPSTREAM_TIMEOUT:
        return true;
    case RPC_UPSTREAM_ERROR:
        return r->out.http_status == 0 || r->out.http_status == 429 || r->out.http_status >= 500;
    default:
        return false;
    }
}

/* Forgets what one exchange left behind, before the next one. */
static void llm_reset_attempt(struct llm_request *r) {
    llm_drop_parser(r);
    llm_reply_clear(&r->reply);
    llm_buf_free(&r->body);
    r->http_status = 0;
    memset(&r->out, 0, sizeof r->out);
    free(r->detail);
    r->detail = NULL;
    if (r->jfs) {
        /* It may have read part of the failed answer's text. */
        json_field_stream_free(r->jfs);
        llm_delta_trim_clear(&r->trim);
        r->jfs = json_field_stream_new(RESULT_STREAM_FIELD, llm_on_jfs, r);
    }
}

static void llm_admit(struct llm_request *r);

/* Switches the request to the fallback provider. Returns true when it
 * did (the request goes on), false to deliver what r->out holds: the
 * failure as it is, or builtin's result. */
static bool llm_try_fallback(struct llm_request *r) {
    const struct config *cfg = llm_cfg(r->e);
    const char *fb = cfg->llm_fallback_provider;
    if (!fb || !llm_fallback_eligible(r) || strcmp(fb, r->t.name) == 0)
        return false;
    log_warn("llm: %s failed, answering with %s instead", r->t.name, fb);
    r->fallback_from = r->t.name;
    r->t.name = NULL;
    r->fallback_reason = xstrdup(r->message);
    llm_target_clear(&r->t);
    r->retries = 0;
    llm_reset_attempt(r);
    if (llm_target_resolve(cfg, fb, NULL, &r->t) != 0) {
        llm_fail(r, RPC_INTERNAL, "LLM_FALLBACK_PROVIDER names no provider (%s)", fb);
        return false;
    }
    if (r->t.prov->improve_local) {
        llm_run_local(r);
        return false; /* the caller delivers the local provider's result */
    }
    if (r->holds_slot)
        llm_attempt(r);
    else
        llm_admit(r);
    return true;
}

/* The request has its outcome: release the slot, fall back if that is the
 * configuration, else deliver. Called from loop callbacks only. */
static void llm_finish(struct llm_request *r) {
    llm_drop_parser(r);
    r->hreq = NULL;
    if (r->out.code != 0 && llm_try_fallback(r))
        return;
    llm_release_slot(r);
    llm_pump(r->e);
    llm_deliver(r);
}

/* Delivers from the loop, never inside the caller's llm_improve. */
static void llm_finish_soon(struct llm_request *r) {
    bool had_slot = r->holds_slot;
    llm_release_slot(r);
    r->state = LR_FINISHING;
    uv_timer_start(&r->timer, llm_deferred_cb, 0, 0);
    if (had_slot && !TAILQ_EMPTY(&r->e->queue))
        uv_timer_start(&r->e->pump, llm_pump_cb, 0, 0);
}

/* ---- one HTTP exchange ---- */

static void llm_emit_delta(void *arg, const char *text, size_t len) {
    struct llm_request *r = arg;
    r->deltas += len;
    llm_buf_append(&r->streamed, text, len);
    if (r->on_delta)
        r->on_delta(r->arg, text, len);
}

/* The field's text as it is decoded, trimmed as llm_result.c trims the final
 * improved_prompt, so the deltas add up to it. */
static int llm_on_jfs(void *user, const char *text, size_t len) {
    struct llm_request *r = user;
    llm_delta_trim_feed(&r->trim, text, len, llm_emit_delta, r);
    return 0;
}

static bool llm_on_text(void *arg, const char *s, size_t n) {
    struct llm_request *r = arg;
    /* The delta stream is a preview; a confused extractor stops the
     * previews, never the request. */
    if (r->jfs)
        json_field_stream_feed(r->jfs, s, n);
    return true;
}

static bool llm_on_data(void *arg, long status, const char *data, size_t len) {
    struct llm_request *r = arg;
    r->http_status = status;
    if (status < 200 || status >= 300) {
        size_t room = LLM_ERROR_BODY_BYTES - r->body.len;
        if (len > room)
            len = room;
        llm_buf_append(&r->body, data, len);
        return true;
    }
    if (r->kind == LLM_MODELS) {
        llm_buf_append(&r->body, data, len);
        return true;
    }
    if (!r->parser)
        return true; /* prewarm: the body does not matter */
    return llm_parser_feed(r->parser, data, len) == 0;
}

static bool llm_model_is_plain(const struct llm *e, const char *model) {
    for (size_t i = 0; i < e->n_plain_models; i++)
        if (strcmp(e->plain_models[i], model) == 0)
            return true;
    return false;
}

static void llm_remember_plain_model(struct llm *e, const char *model) {
    if (llm_model_is_plain(e, model) || e->n_plain_models >= LLM_PLAIN_MODELS_MAX)
        return;
    e->plain_models[e->n_plain_models++] = xstrdup(model);
}

static void llm_backoff_cb(uv_timer_t *t) {
    struct llm_request *r = t->data;
    llm_attempt(r);
}

/* One retry for 429/502/503 (and Anthropic's 529 "overloaded"), after
 * Retry-After when the server sent one, never past MAX_LATENCY_MS from the
 * request's arrival. Returns true when the retry is scheduled. */
static bool llm_maybe_retry(struct llm_request *r, const struct http_result *res) {
    long s = res->status;
    if (r->retries > 0 || (s != 429 && s != 502 && s != 503 && s != 529))
        return false;
    uint64_t delay =
        res->retry_after_s >= 0 ? (uint64_t)res->retry_after_s * 1000 : LLM_RETRY_BACKOFF_MS;
    uint64_t now = daemon_now_ms();
    if (now + delay >= r->received_ms + (uint64_t)r->max_latency_ms)
        return false;
    r->retries++;
    log_info("llm: %s answered HTTP %ld, retrying in %llu ms", r->t.name, s,
             (unsigned long long)delay);
    llm_reset_attempt(r);
    r->state = LR_WAITING;
    uv_timer_start(&r->timer, llm_backoff_cb, delay, 0);
    return true;
}

/* A connection that breaks before a byte of the answer arrived (a
 * backend restarting between accepting it and reading the request, or a
 * cached connection it closed) says nothing about the request itself:
 * send it once more, at once, on a new connection. curl does this only
 * for reused connections and only for some errors. Returns true when
 * the request was sent again. */
static bool llm_maybe_resend(struct llm_request *r, const struct http_result *res) {
    if (r->resent || res->outcome != HTTP_BROKEN || res->status != 0 || res->body_bytes != 0 ||
        res->first_byte_ms >= 0)
        return false;
    r->resent = true;
    log_info("llm: the connection to %s broke before any answer (%s), sending again",
             r->t.prov->label, res->error ? res->error : "no detail");
    llm_reset_attempt(r);
    llm_attempt(r);
    return true;
}

/* The error says the model refuses the provider's optional switch, and
 * it was still sent. */
static bool llm_refuses_extras(const struct llm_request *r, const char *detail) {
    return r->t.prov->refuses_extras && !r->without_extras &&
           r->t.prov->refuses_extras(r->http_status, detail);
}

/* The config keys that hold the provider's key, for messages:
 * "OPENAI_API_KEY or LLM_API_KEY". */
static void llm_key_names(const struct llm_provider *p, char *out, size_t outlen) {
    const char *own = p->key_vars[0].name;
    snprintf(out, outlen, "%s%sLLM_API_KEY", own ? own : "", own ? " or " : "");
}

static void llm_http_error(struct llm_request *r, const struct http_result *res) {
    char *detail = llm_error_detail(r->body.data, r->body.len);
    const struct llm_provider *prov = r->t.prov;
    const char *label = prov->label;
    char explained[sizeof r->message], keys[128];
    r->out.http_status = res->status;
    if (prov->explain_http_error &&
        prov->explain_http_error(r->t.model, res->status, detail, explained, sizeof explained)) {
        llm_fail(r, RPC_UPSTREAM_ERROR, "%s", explained);
    } else if (res->status == 401 || res->status == 403) {
        llm_key_names(prov, keys, sizeof keys);
        llm_fail(r, RPC_UPSTREAM_ERROR,
                 "%s refused the request (HTTP %ld): check the API key (%s)%s%s", label,
                 res->status, keys, detail ? ": " : "", detail ? detail : "");
    } else if (res->status == 404) {
        llm_fail(r, RPC_UPSTREAM_ERROR,
                 "%s answered HTTP 404 for model \"%s\": check LLM_MODEL and %s%s%s", label,
                 r->t.model, r->t.base_url_var, detail ? ": " : "", detail ? detail : "");
    } else {
        llm_fail(r, RPC_UPSTREAM_ERROR, "%s answered HTTP %ld%s%s", label, res->status,
                 detail ? ": " : "", detail ? detail : "");
    }
    llm_set_detail(r, detail);
}

/* For a new user whose local server is not running: the providers that
 * answer without it, from the table ("; or use another provider: ..."),
 * unless a fallback is configured already. */
static void llm_alternatives(const struct llm_request *r, char *out, size_t outlen) {
    out[0] = '\0';
    if (llm_cfg(r->e)->llm_fallback_provider)
        return;
    const char *local = NULL;
    const char *cloud[8];
    size_t n = 0;
    for (size_t i = 0; llm_providers[i]; i++) {
        const struct llm_provider *p = llm_providers[i];
        if (p->improve_local && !local)
            local = p->name;
        else if (p->key_required && n < sizeof cloud / sizeof cloud[0])
            cloud[n++] = p->name;
    }
    if (!local)
        return;
    char names[96] = "";
    size_t at = 0;
    for (size_t i = 0; i < n && at < sizeof names; i++) {
        int w = snprintf(names + at, sizeof names - at, "%s%s",
                         i == 0       ? ""
                         : i + 1 == n ? " or "
                                      : ", ",
                         cloud[i]);
        at += w > 0 ? (size_t)w : 0;
    }
    snprintf(out, outlen,
             "; or use another provider: `--provider %s` (offline)%s%s%s, or set "
             "LLM_FALLBACK_PROVIDER=%s to answer offline whenever %s is down",
             local, n ? ", " : "", names, n ? " with an API key" : "", local, r->t.prov->label);
}

static void llm_unreachable(struct llm_request *r, const struct http_result *res) {
    const struct llm_provider *prov = r->t.prov;
    char url[512];
    config_public_url(r->t.base_url, url, sizeof url);
    const char *var = r->t.base_url_var;
    if (res->refused && prov->start_hint) {
        /* A server the user runs: say how to start it, where it was
         * looked for, and what answers without it. */
        const char *own = prov->base_url_var;
        char others[448];
        llm_alternatives(r, others, sizeof others);
        llm_fail(r, RPC_UPSTREAM_UNAVAILABLE,
                 "%s is not running at %s: %s (or set %s%sLLM_BASE_URL to where it runs)%s",
                 prov->label, url, prov->start_hint, own ? own : "", own ? " / " : "", others);
    } else if (res->refused) {
        llm_fail(r, RPC_UPSTREAM_UNAVAILABLE,
                 "Nothing is listening at %s for %s: start the server or fix %s", url, prov->label,
                 var);
    } else {
        llm_fail(r, RPC_UPSTREAM_UNAVAILABLE,
                 "Cannot reach %s at %s (%s): check %s and the network", prov->label, url,
                 res->error, var);
    }
}

/* The process's open-files limit (soft RLIMIT_NOFILE); -1 when unknown
 * or unlimited. */
static long llm_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return -1;
    return (long)rl.rlim_cur;
}

/* promptd could not open a socket: its own shortage, not the backend's
 * absence, so -32005 (try again once connections close), never the
 * "start the backend" advice. Logged, since only the operator can raise
 * the limit. */
static void llm_out_of_fds(struct llm_request *r, int fd_errno) {
    const char *label = r->t.prov->label;
    long limit = llm_fd_limit();
    r->out.fd_limit = limit;
    if (fd_errno == ENFILE)
        llm_fail(r, RPC_OVERLOADED,
                 "The system has too many open files (ENFILE), so promptd could not connect to "
                 "%s: close some programs or raise the system's limit (fs.file-max)",
                 label);
    else if (limit > 0)
        llm_fail(r, RPC_OVERLOADED,
                 "promptd has too many open files (its limit is %ld, RLIMIT_NOFILE), so it could "
                 "not connect to %s: close idle connections to promptd or raise the limit "
                 "(ulimit -n, or LimitNOFILE= in the systemd unit)",
                 limit, label);
    else
        llm_fail(r, RPC_OVERLOADED,
                 "promptd has too many open files, so it could not connect to %s: close idle "
                 "connections to promptd or raise its open-files limit",
                 label);
    llm_record_error(r->e, r->t.name, r->message);
}

static void llm_transport_error(struct llm_request *r, const struct http_result *res) {
    const char *label = r->t.prov->label;
    if (res->fd_errno) {
        llm_out_of_fds(r, res->fd_errno);
        return;
    }
    switch (res->outcome) {
    case HTTP_UNREACHABLE:
        llm_unreachable(r, res);
        break;
    case HTTP_FIRST_BYTE_TIMEOUT:
        llm_fail(r, RPC_UPSTREAM_TIMEOUT,
                 "%s sent nothing within %ld ms (LLM_FIRST_BYTE_TIMEOUT_MS): the model may still "
                 "be loading; raise the timeout or set LLM_PREWARM=true",
                 label, r->first_byte_timeout_ms);
        break;
    case HTTP_DEADLINE:
        llm_fail(r, RPC_UPSTREAM_TIMEOUT,
                 "%s did not finish its answer within %ld ms (MAX_LATENCY_MS): use a faster model "
                 "or raise MAX_LATENCY_MS",
                 label, r->max_latency_ms);
        break;
    case HTTP_TOO_LARGE:
        llm_fail(r, RPC_BAD_MODEL_OUTPUT, "%s's answer exceeded %d bytes: the model did not stop",
                 label, LIMIT_UPSTREAM_RESPONSE_BYTES);
        break;
    default:
        llm_fail(r, RPC_UPSTREAM_ERROR,
                 "the connection to %s broke before the answer was complete (%s)", label,
                 res->error);
        break;
    }
}

/* A 2xx body: the provider's parser says whether the stream was whole,
 * then the model's text must be the structured result. */
static void llm_improve_body(struct llm_request *r) {
    const char *label = r->t.prov->label;
    int rc = llm_parser_finish(r->parser);
    r->out.truncated = r->reply.truncated;
    if (rc != 0 || r->reply.error) {
        r->out.http_status = r->http_status;
        llm_set_detail(r, utf8_sanitize(r->reply.error ? r->reply.error : "",
                                        r->reply.error ? strlen(r->reply.error) : 0, 1000));
        llm_fail(r, RPC_UPSTREAM_ERROR, "%s failed mid-answer: %s", label,
                 r->reply.error ? r->reply.error : "unknown error");
        return;
    }
    char *detail = NULL;
    rc = result_parse_model_output(r->reply.text ? r->reply.text : "", r->reply.len, &r->result,
                                   &detail);
    if (rc == RESULT_ERR_TOO_LONG) {
        llm_set_detail(r, detail);
        llm_fail(r, RPC_BAD_MODEL_OUTPUT,
                 "the %s that %s's model wrote is longer than the %d KiB promptd keeps, so "
                 "nothing was stored: try again, or another model.",
                 r->result.too_long_field ? r->result.too_long_field : "field", label,
                 LIMIT_RESULT_FIELD_BYTES / 1024);
        return;
    }
    if (rc != RESULT_OK) {
        llm_set_detail(r, detail);
        if (r->reply.truncated)
            llm_fail(r, RPC_BAD_MODEL_OUTPUT,
                     "%s's model stopped at its output limit before finishing the result "
                     "(truncated): use a larger model or raise LLM_NUM_CTX",
                     label);
        else
            llm_fail(r, RPC_BAD_MODEL_OUTPUT,
                     "%s's model did not answer with the structured result (%s), even after "
                     "repair: try another model",
                     label, result_strerror(rc));
        return;
    }
    r->result.tokens_prompt = r->reply.tokens_prompt;
    r->result.tokens_completion = r->reply.tokens_completion;
    r->result.truncated = r->reply.truncated;
    r->out.code = 0;
    r->out.result = &r->result;
}

static void llm_models_body(struct llm_request *r) {
    r->models = llm_parse_models(r->body.data ? r->body.data : "", r->body.len);
    if (!r->models) {
        llm_fail(r, RPC_UPSTREAM_ERROR, "%s's model list is not in the expected form",
                 r->t.prov->label);
        return;
    }
    r->out.code = 0;
    r->out.models = r->models;
}

static void llm_on_http_done(void *arg, const struct http_result *res) {
    struct llm_request *r = arg;
    r->hreq = NULL;
    r->http_status = res->status;
    bool ok_status = res->status >= 200 && res->status < 300;
    if (res->outcome == HTTP_STOPPED && ok_status && r->kind == LLM_IMPROVE) {
        llm_improve_body(r); /* the parser stopped the transfer: it says why */
    } else if (res->outcome != HTTP_DONE) {
        if (llm_maybe_resend(r, res))
            return;
        llm_transport_error(r, res);
    } else if (!ok_status) {
        if (llm_maybe_retry(r, res))
            return;
        char *peek = llm_error_detail(r->body.data, r->body.len);
        bool refused = llm_refuses_extras(r, peek);
        free(peek);
        if (refused) {
            /* This model has no such switch: ask again without it. */
            llm_remember_plain_model(r->e, r->t.model);
            r->without_extras = true;
            llm_reset_attempt(r);
            llm_attempt(r);
            return;
        }
        llm_http_error(r, res);
    } else if (r->kind == LLM_MODELS) {
        llm_models_body(r);
    } else if (r->kind == LLM_PREWARM) {
        log_info("llm: %s model %s is loaded", r->t.name, r->t.model);
        r->out.code = 0;
    } else {
        llm_improve_body(r);
    }
    llm_finish(r);
}

static int llm_build(struct llm_request *r, struct llm_http *req) {
    struct llm_chat chat = {
        .base_url = r->t.base_url,
        .model = r->t.model,
        .api_key = r->t.api_key,
        .system = result_system_prompt(NULL),
        .user = r->user_msg,
        .stream = r->stream,
        .without_extras = r->without_extras || llm_model_is_plain(r->e, r->t.model),
        .keep_alive = r->keep_alive,
        .num_ctx = r->num_ctx,
    };
    r->without_extras = chat.without_extras;
    if (r->kind == LLM_MODELS)
        return r->t.prov->build_models(&chat, req);
    if (r->kind == LLM_PREWARM)
        return r->t.prov->build_prewarm ? r->t.prov->build_prewarm(&chat, req) : -1;
    if (!chat.system) {
        log_error("llm: the system prompt was not embedded in this build");
        return -1;
    }
    return llm_template_build(r->e->templates, r->t.prov, &chat, req);
}

static long llm_first_byte_ms(const struct llm_request *r) {
    return r->kind == LLM_IMPROVE || r->kind == LLM_PREWARM ? r->first_byte_timeout_ms
                                                            : LLM_CONTROL_TIMEOUT_MS;
}

/* Sends the request upstream (first try, retry or fallback). */
static void llm_attempt(struct llm_request *r) {
    struct llm_http req = {0};
    r->state = LR_RUNNING;
    if (llm_build(r, &req) != 0) {
        llm_http_clear(&req);
        llm_fail(r, RPC_INTERNAL, "could not build the request to %s", r->t.prov->label);
        llm_finish_soon(r);
        return;
    }
    if (r->kind == LLM_IMPROVE)
        r->parser = llm_parser_new(r->t.prov, r->stream, &r->reply);
    struct http_request hr = {
        .method = req.body ? "POST" : "GET",
        .url = req.url,
        .headers = (const char *const *)req.headers,
        .body = req.body,
        .body_len = req.body_len,
        .first_byte_timeout_ms = llm_first_byte_ms(r),
        .deadline_ms = r->kind == LLM_IMPROVE ? r->max_latency_ms : LLM_CONTROL_TIMEOUT_MS,
        .max_response_bytes = LIMIT_UPSTREAM_RESPONSE_BYTES,
        .fresh_connection = r->resent,
        .on_data = llm_on_data,
        .on_done = llm_on_http_done,
        .arg = r,
    };
    char err[256];
    r->hreq = http_start(r->e->http, &hr, err, sizeof err);
    llm_http_clear(&req);
    if (!r->hreq) {
        llm_drop_parser(r);
        llm_fail(r, RPC_INTERNAL, "could not start the request to %s: %s", r->t.prov->label, err);
        llm_finish_soon(r);
    }
}

/* ---- queue ---- */

static size_t llm_max_running(const struct llm *e) {
    long n = llm_cfg(e)->max_concurrent_requests;
    return n > 0 ? (size_t)n : 1;
}

static void llm_pump(struct llm *e) {
    while (!TAILQ_EMPTY(&e->queue) && e->n_running < llm_max_running(e) && !e->closing) {
        struct llm_request *r = TAILQ_FIRST(&e->queue);
        llm_queue_remove(r);
        uv_timer_stop(&r->timer); /* its queue wait is over */
        r->holds_slot = true;
        e->n_running++;
        llm_attempt(r);
    }
}

static void llm_pump_cb(uv_timer_t *t) {
    llm_pump(t->data);
}

/* MAX_QUEUE_WAIT_MS passed with no slot free: the backend was never asked,
 * so this is promptd's overload (-32005), not a backend timeout. */
static void llm_queue_wait_cb(uv_timer_t *t) {
    struct llm_request *r = t->data;
    if (r->state != LR_QUEUED)
        return;
    llm_queue_remove(r);
    /* The timer runs on the loop's cached clock, which may lag the one
     * queued_ms was read from by a millisecond: it fired, so the whole
     * bound has passed. */
    long waited = (long)(daemon_now_ms() - r->queued_ms);
    long bound = llm_cfg(r->e)->max_queue_wait_ms;
    r->out.waited_ms = waited > bound ? waited : bound;
    llm_fail(r, RPC_OVERLOADED,
             "promptd is overloaded: this request waited %ld ms for a free upstream slot "
             "(MAX_CONCURRENT_REQUESTS=%zu, all busy; MAX_QUEUE_WAIT_MS=%ld), so %s was never "
             "asked; try again shortly or raise MAX_CONCURRENT_REQUESTS",
             r->out.waited_ms, llm_max_running(r->e), llm_cfg(r->e)->max_queue_wait_ms,
             r->t.prov->label);
    llm_finish(r);
}

/* Takes a slot now, or waits in line, or refuses (-32005). */
static void llm_admit(struct llm_request *r) {
    struct llm *e = r->e;
    if (e->n_running < llm_max_running(e) && TAILQ_EMPTY(&e->queue)) {
        r->holds_slot = true;
        e->n_running++;
        llm_attempt(r);
        return;
    }
    long max_q = llm_cfg(e)->max_queued_requests;
    if ((long)e->n_queued >= max_q) {
        llm_fail(r, RPC_OVERLOADED,
                 "promptd is overloaded: %zu requests are waiting for the LLM "
                 "(MAX_QUEUED_REQUESTS); try again shortly",
                 e->n_queued);
        llm_finish_soon(r);
        return;
    }
    r->state = LR_QUEUED;
    r->queued_ms = daemon_now_ms();
    uv_timer_start(&r->timer, llm_queue_wait_cb, (uint64_t)llm_cfg(e)->max_queue_wait_ms, 0);
    TAILQ_INSERT_TAIL(&e->queue, r, queue_entry);
    e->n_queued++;
}

/* ---- public API ---- */

static struct llm_request *llm_request_new(struct llm *e, enum llm_kind kind, llm_done_fn on_done,
                                           void *arg) {
    struct llm_request *r = xcalloc(1, sizeof *r);
    if (uv_timer_init(e->d->loop, &r->timer) != 0) {
        free(r);
        return NULL;
    }
    r->timer.data = r;
    r->e = e;
    r->kind = kind;
    r->on_done = on_done;
    r->arg = arg;
    result_init(&r->result);
    llm_reply_init(&r->reply);
    r->reply.max_text = LIMIT_UPSTREAM_RESPONSE_BYTES;
    r->reply.on_text = llm_on_text;
    r->reply.arg = r;
    const struct config *cfg = llm_cfg(e);
    r->first_byte_timeout_ms = cfg->llm_first_byte_timeout_ms;
    r->max_latency_ms = cfg->max_latency_ms;
    r->num_ctx = cfg->llm_num_ctx;
    r->received_ms = daemon_now_ms();
    TAILQ_INSERT_HEAD(&e->all, r, all_entry);
    return r;
}

static char *llm_strdup0(const char *s) {
    return s ? xstrdup(s) : NULL;
}

/* Missing API key for a vendor's own endpoint: nothing to ask. Any other
 * base URL (a local server, a proxy) may need none. */
static bool llm_key_missing(const struct llm_request *r) {
    return r->t.prov->key_required && !r->t.api_key &&
           strcmp(r->t.base_url, r->t.prov->default_base_url) == 0;
}

static void llm_fail_key_missing(struct llm_request *r) {
    char keys[128];
    llm_key_names(r->t.prov, keys, sizeof keys);
    llm_fail(r, RPC_UPSTREAM_UNAVAILABLE, "%s needs an API key: set %s in promptd's config file",
             r->t.prov->label, keys);
}

static void llm_start(struct llm_request *r) {
    if (r->t.prov->improve_local) {
        llm_run_local(r);
        llm_finish_soon(r);
        return;
    }
    if (llm_key_missing(r)) {
        llm_fail_key_missing(r);
        if (!llm_try_fallback(r))
            llm_finish_soon(r);
        return;
    }
    llm_admit(r);
}

struct llm_request *llm_improve(struct llm *e, const struct llm_params *p, llm_delta_fn on_delta,
                                llm_done_fn on_done, void *arg) {
    struct llm_request *r = llm_request_new(e, LLM_IMPROVE, on_done, arg);
    if (!r)
        return NULL;
    const struct config *cfg = llm_cfg(e);
    r->on_delta = on_delta;
    r->stream = p->stream;
    if (p->received_ms)
        r->received_ms = p->received_ms;
    r->idea = xstrdup(p->idea);
    r->context = xstrdup(p->context ? p->context : "");
    r->parent_prompt = llm_strdup0(p->parent_prompt);
    r->keep_alive = llm_strdup0(cfg->llm_keep_alive);
    r->user_msg =
        result_user_message_with_examples(p->idea, p->context, p->parent_prompt, p->examples);
    if (p->stream)
        r->jfs = json_field_stream_new(RESULT_STREAM_FIELD, llm_on_jfs, r);
    if (!r->user_msg || llm_target_resolve(cfg, p->provider, p->model, &r->t) != 0) {
        r->on_done = NULL;
        llm_request_free(r);
        return NULL;
    }
    llm_start(r);
    return r;
}

struct llm_request *llm_models(struct llm *e, const char *provider, llm_done_fn on_done,
                               void *arg) {
    struct llm_request *r = llm_request_new(e, LLM_MODELS, on_done, arg);
    if (!r)
        return NULL;
    if (llm_target_resolve(llm_cfg(e), provider, NULL, &r->t) != 0) {
        r->on_done = NULL;
        llm_request_free(r);
        return NULL;
    }
    if (r->t.prov->improve_local) {
        r->models = json_pack("[s]", r->t.prov->default_model);
        r->out.models = r->models;
        llm_finish_soon(r);
    } else if (llm_key_missing(r)) {
        llm_fail_key_missing(r);
        llm_finish_soon(r);
    } else {
        /* A model list is a quick control call: it does not wait in line
         * behind generations. */
        llm_attempt(r);
    }
    return r;
}

/* The providers that have a model to preload ("ollama"), for the log. */
static void llm_prewarm_names(char *out, size_t outlen) {
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; llm_providers[i] && at < outlen; i++)
        if (llm_providers[i]->build_prewarm) {
            int n = snprintf(out + at, outlen - at, "%s%s", at ? ", " : "", llm_providers[i]->name);
            at += n > 0 ? (size_t)n : 0;
        }
}

void llm_prewarm(struct llm *e) {
    const struct config *cfg = llm_cfg(e);
    if (!cfg->llm_prewarm)
        return;
    const struct llm_provider *prov = llm_provider_find(cfg->llm_provider);
    if (!prov || !prov->build_prewarm) {
        char names[128];
        llm_prewarm_names(names, sizeof names);
        log_info("llm: LLM_PREWARM only applies to %s; nothing to load for %s", names,
                 cfg->llm_provider ? cfg->llm_provider : "(none)");
        return;
    }
    struct llm_request *r = llm_request_new(e, LLM_PREWARM, NULL, NULL);
    if (!r || llm_target_resolve(cfg, NULL, NULL, &r->t) != 0) {
        if (r)
            llm_request_free(r);
        log_warn("llm: prewarm: the request could not be made");
        return;
    }
    r->keep_alive = llm_strdup0(cfg->llm_keep_alive);
    log_info("llm: loading %s model %s (LLM_PREWARM)", r->t.name, r->t.model);
    llm_attempt(r);
}

void llm_cancel(struct llm_request *r) {
    if (!r || r->state == LR_DONE)
        return;
    struct llm *e = r->e;
    switch (r->state) {
    case LR_QUEUED:
        llm_queue_remove(r);
        break;
    case LR_RUNNING:
        if (r->hreq)
            http_req_cancel(r->hreq);
        r->hreq = NULL;
        break;
    default:
        break;
    }
    llm_drop_parser(r);
    bool had_slot = r->holds_slot;
    llm_release_slot(r);
    r->state = LR_DONE;
    r->on_done = NULL;
    llm_request_free(r);
    /* A freed slot starts the next in line, but not from here: we may be
     * inside a curl callback, where no transfer may be added. */
    if (had_slot && !TAILQ_EMPTY(&e->queue) && !e->closing)
        uv_timer_start(&e->pump, llm_pump_cb, 0, 0);
}

bool llm_provider_known(const char *name) {
    return llm_provider_find(name) != NULL;
}

size_t llm_configured_providers(struct llm *e, const char **names, size_t max) {
    const struct config *cfg = llm_cfg(e);
    size_t n = 0;
    const struct llm_provider *primary = llm_provider_find(cfg->llm_provider);
    if (primary && n < max)
        names[n++] = primary->name;
    for (size_t i = 0; llm_providers[i] && n < max; i++)
        if (llm_providers[i] != primary && llm_target_configured(cfg, llm_providers[i]))
            names[n++] = llm_providers[i]->name;
    return n;
}

/* One entry of health's `providers`: name, model, base URL (public). */
static json_t *llm_health_provider(const struct config *cfg, const char *name) {
    struct llm_target t = {0};
    json_t *h = NULL;
    if (llm_target_resolve(cfg, name, NULL, &t) == 0) {
        char url[512] = "";
        if (t.base_url)
            config_public_url(t.base_url, url, sizeof url);
        h = json_pack("{s:s, s:s, s:s?}", "provider", t.name, "model", t.model, "base_url",
                      t.base_url ? url : NULL);
    }
    llm_target_clear(&t);
    return h;
}

static json_t *llm_health_providers(struct llm *e) {
    const char *names[LLM_HEALTH_PROVIDERS_MAX];
    size_t n = llm_configured_providers(e, names, LLM_HEALTH_PROVIDERS_MAX);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *one = llm_health_provider(llm_cfg(e), names[i]);
        if (one)
            json_array_append_new(list, one);
    }
    return list;
}

json_t *llm_health(struct llm *e) {
    const struct config *cfg = llm_cfg(e);
    struct llm_target t = {0};
    if (llm_target_resolve(cfg, NULL, NULL, &t) != 0) {
        llm_target_clear(&t);
        return json_object();
    }
    char url[512] = "";
    if (t.base_url)
        config_public_url(t.base_url, url, sizeof url);
    char when[32] = "";
    if (e->last_error) {
        struct tm tm;
        gmtime_r(&e->last_error_at, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    json_t *h =
        json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:I, s:s?, s:s?, s:o}", "provider", t.name, "model",
                  t.model, "base_url", t.base_url ? url : NULL, "fallback_provider",
                  cfg->llm_fallback_provider, "in_flight", (json_int_t)e->n_running, "queued",
                  (json_int_t)e->n_queued, "last_error", e->last_error, "last_error_at",
                  e->last_error ? when : NULL, "providers", llm_health_providers(e));
    llm_target_clear(&t);
    return h ? h : json_object();
}

json_t *llm_health_hook(struct daemon *d) {
    return d->llm ? llm_health(d->llm) : json_object();
}

struct llm *llm_new(struct daemon *d) {
    struct llm *e = xcalloc(1, sizeof *e);
    e->d = d;
    TAILQ_INIT(&e->all);
    TAILQ_INIT(&e->queue);
    /* Idle connections kept for reuse: one per request that may be
     * upstream at once, and a few for the other providers. */
    e->http = http_new(d->loop, d->cfg->max_concurrent_requests + LLM_SPARE_CONNECTIONS);
    if (!e->http) {
        free(e);
        return NULL;
    }
    if (uv_timer_init(d->loop, &e->pump) != 0) {
        http_close(e->http);
        free(e);
        return NULL;
    }
    e->pump.data = e;
    e->templates = llm_template_new();
    return e;
}

static void llm_close_cb(uv_handle_t *h) {
    free(h->data);
}

void llm_close(struct llm *e) {
    if (!e)
        return;
    e->closing = true;
    /* Normally every call was cancelled by the RPC layer already; anything
     * left (prewarm, a call whose hook did not run) is answered cancelled
     * so its caller can finish it. */
    struct llm_request *r, *next;
    for (r = TAILQ_FIRST(&e->all); r; r = next) {
        next = TAILQ_NEXT(r, all_entry);
        if (r->state == LR_DONE)
            continue;
        llm_done_fn done = r->on_done;
        void *arg = r->arg;
        llm_cancel(r);
        if (done) {
            struct llm_outcome out = {.code = RPC_CANCELLED, .message = "the daemon is stopping"};
            done(arg, &out);
        }
    }
    http_close(e->http);
    e->http = NULL;
    free(e->last_error);
    llm_template_free(e->templates);
    e->templates = NULL;
    for (size_t i = 0; i < e->n_plain_models; i++)
        free(e->plain_models[i]);
    uv_timer_stop(&e->pump);
    uv_close((uv_handle_t *)&e->pump, llm_close_cb);
}
