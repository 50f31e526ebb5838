/* `improve` and `models`: validate the params, hand the work to the
 * engine, turn its outcome into the protocol's result or error, record the
 * improvement in the history, stream improve.delta notifications.
 *
 * One struct improve_call per call, alive until the call is answered and
 * nothing else can reach it: the engine request (cancelled or done) and a
 * pending history read for parent_id (whose callback always comes). */
#include "methods_improve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "fewshot.h"
#include "llm.h"
#include "llm_builtin.h"
#include "llm_provider.h"
#include "llm_result.h"
#include "log.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "store.h"
#include "utf8.h"
#include "xalloc.h"

#define IMPROVE_BACKEND_ZERO_SHOT "zero-shot"
#define IMPROVE_BACKEND_FEW_SHOT  "few-shot"
/* A model name goes into URLs (Gemini) and logs: short, printable, no
 * spaces, nothing that could change the URL's meaning. */
#define IMPROVE_MODEL_MAX_BYTES  200
#define IMPROVE_CLIENT_MAX_CHARS 64

struct improve_call {
    struct rpc_call *call;                            /* borrowed; NULL once answered */
    struct daemon *d;                                 /* borrowed */
    struct llm_request *req;                          /* borrowed while the engine works on it */
    json_t *request_id;                               /* owned reference, for improve.delta */
    char *idea, *context, *provider, *model, *client; /* owned; provider/model/client may be NULL */
    long long parent_id;                              /* -1: none */
    bool stream, record;
    bool reading_parent; /* a store_get_async callback is still to come */
    bool few_shot;       /* the mode asked for (or FEWSHOT_ENABLED's default) */
    size_t n_examples;   /* examples put into the user message */
};

/* "few-shot" only when examples reached the model that answered: builtin,
 * asked for or as the fallback, answers from its template and saw none. */
static const char *improve_backend(const struct improve_call *ic, const struct llm_outcome *out) {
    bool examples_seen =
        ic->n_examples > 0 && out->provider && strcmp(out->provider, BUILTIN_NAME) != 0;
    return examples_seen ? IMPROVE_BACKEND_FEW_SHOT : IMPROVE_BACKEND_ZERO_SHOT;
}

static void improve_free(struct improve_call *ic) {
    json_decref(ic->request_id);
    free(ic->idea);
    free(ic->context);
    free(ic->provider);
    free(ic->model);
    free(ic->client);
    free(ic);
}

/* The cancel hook: `cancel`, a client gone, or the daemon stopping. */
static void improve_cancel(void *arg) {
    struct improve_call *ic = arg;
    if (ic->req) {
        llm_cancel(ic->req);
        ic->req = NULL;
    }
    struct rpc_call *call = ic->call;
    ic->call = NULL;
    if (call)
        rpc_reply_cancelled(call);
    if (!ic->reading_parent)
        improve_free(ic);
}

static void improve_on_delta(void *arg, const char *text, size_t len) {
    struct improve_call *ic = arg;
    if (!ic->call || !rpc_call_client_alive(ic->call))
        return;
    json_t *params = json_pack("{s:O, s:s%}", "request_id", ic->request_id, "text", text, len);
    if (params)
        rpc_notify(ic->call, "improve.delta", params);
}

static int64_t improve_record(struct improve_call *ic, const struct llm_outcome *out,
                              long long latency_ms) {
    struct store *s = ic->d->store;
    const struct improve_result *r = out->result;
    if (!ic->record || !s)
        return 0;
    struct history_row row = {
        .original_idea = ic->idea,
        .context = ic->context,
        .improved_prompt = r->improved_prompt,
        .role = r->role,
        .directive = r->directive,
        .framework = r->framework,
        .guardrails = r->guardrails,
        .reasoning = r->reasoning,
        .has_confidence = r->has_confidence,
        .confidence = r->confidence,
        .latency_ms = latency_ms,
        .backend = improve_backend(ic, out),
        .provider = out->provider,
        .model = out->model,
        .client = ic->client,
        .parent_id = ic->parent_id,
        .prompt_tokens = r->tokens_prompt,
        .completion_tokens = r->tokens_completion,
    };
    return store_record(s, &row);
}

static void improve_reply_result(struct improve_call *ic, const struct llm_outcome *out) {
    long long latency = (long long)(daemon_now_ms() - rpc_call_received_ms(ic->call));
    int64_t id = improve_record(ic, out, latency);
    struct result_meta meta = {
        .id = id > 0 ? id : -1,
        .backend = improve_backend(ic, out),
        .provider = out->provider,
        .model = out->model,
        .latency_ms = latency,
        .parent_id = ic->parent_id > 0 ? ic->parent_id : -1,
    };
    json_t *res = result_to_json(out->result, &meta);
    if (res && out->fallback_from) {
        json_object_set_new(res, "fallback_from", json_string(out->fallback_from));
        if (out->fallback_reason)
            json_object_set_new(res, "fallback_reason", json_string(out->fallback_reason));
    }
    if (res && out->result->truncated)
        json_object_set_new(res, "truncated", json_true());
    rpc_reply(ic->call, res);
}

/* data for an engine error: http_status and detail when known. */
static json_t *improve_error_data(const struct llm_outcome *out) {
    json_t *data = json_object();
    if (out->provider)
        json_object_set_new(data, "provider", json_string(out->provider));
    if (out->http_status)
        json_object_set_new(data, "http_status", json_integer(out->http_status));
    if (out->waited_ms)
        json_object_set_new(data, "waited_ms", json_integer(out->waited_ms));
    if (out->fd_limit > 0)
        json_object_set_new(data, "open_files_limit", json_integer(out->fd_limit));
    if (out->detail)
        json_object_set_new(data, "detail", json_string(out->detail));
    if (out->truncated)
        json_object_set_new(data, "truncated", json_true());
    return data;
}

static void improve_on_done(void *arg, const struct llm_outcome *out) {
    struct improve_call *ic = arg;
    ic->req = NULL;
    struct rpc_call *call = ic->call;
    if (!call) {
        improve_free(ic);
        return;
    }
    rpc_call_set_cancel(call, NULL, NULL);
    if (out->code == 0) {
        improve_reply_result(ic, out);
    } else if (out->code == RPC_CANCELLED) {
        rpc_reply_cancelled(call);
    } else {
        rpc_reply_error(call, out->code, improve_error_data(out), "%s", out->message);
    }
    ic->call = NULL;
    improve_free(ic);
}

/* The examples section of a few-shot call (owned by the caller), chosen
 * from the trainset loaded now; NULL in zero-shot mode. A SIGHUP that
 * removed the trainset while a parent_id was being read answers
 * zero-shot, and the backend then says so. */
static char *improve_examples(struct improve_call *ic) {
    if (!ic->few_shot)
        return NULL;
    struct daemon *d = ic->d;
    return fewshot_render(d->fewshot, ic->idea, ic->context, (size_t)d->cfg->fewshot_k,
                          &ic->n_examples);
}

static void improve_run(struct improve_call *ic, const char *parent_prompt) {
    char *examples = improve_examples(ic);
    struct llm_params p = {
        .provider = ic->provider,
        .model = ic->model,
        .idea = ic->idea,
        .context = ic->context,
        .parent_prompt = parent_prompt,
        .examples = examples,
        .stream = ic->stream,
        .received_ms = rpc_call_received_ms(ic->call),
    };
    ic->req = llm_improve(ic->d->llm, &p, improve_on_delta, improve_on_done, ic);
    free(examples); /* the engine copied it into its user message */
    if (!ic->req) {
        struct rpc_call *call = ic->call;
        ic->call = NULL;
        rpc_call_set_cancel(call, NULL, NULL);
        rpc_reply_error(call, RPC_INTERNAL, NULL, "out of memory starting the improvement");
        improve_free(ic);
    }
}

static void improve_on_parent(void *arg, json_t *row, int code, const char *message) {
    struct improve_call *ic = arg;
    ic->reading_parent = false;
    if (!ic->call) { /* cancelled while reading */
        json_decref(row);
        improve_free(ic);
        return;
    }
    if (code != 0) {
        struct rpc_call *call = ic->call;
        ic->call = NULL;
        rpc_call_set_cancel(call, NULL, NULL);
        if (code == RPC_NOT_FOUND)
            rpc_reply_error(call, RPC_NOT_FOUND, json_pack("{s:s}", "field", "parent_id"),
                            "parent_id %lld is not in the history", ic->parent_id);
        else
            rpc_reply_error(call, code, NULL, "%s",
                            message ? message : "the history could not be read");
        json_decref(row);
        improve_free(ic);
        return;
    }
    const char *prompt = json_string_value(json_object_get(row, "improved_prompt"));
    improve_run(ic, prompt);
    json_decref(row);
}

/* ---- params ---- */

/* A text param: trimmed copy in *out (owned), length in code points
 * checked. Returns false after answering -32602. */
static bool improve_text_param(struct rpc_call *call, json_t *params, const char *name,
                               bool required, size_t min_chars, size_t max_chars, char **out) {
    json_t *v = json_object_get(params, name);
    if (!v || json_is_null(v)) {
        if (required) {
            rpc_reply_invalid_param(call, name, "missing required parameter \"%s\"", name);
            return false;
        }
        *out = xstrdup("");
        return true;
    }
    if (!json_is_string(v)) {
        rpc_reply_invalid_param(call, name, "\"%s\" must be a string", name);
        return false;
    }
    size_t len;
    const char *s = utf8_trim(json_string_value(v), json_string_length(v), &len);
    if (memchr(s, '\0', len)) {
        rpc_reply_invalid_param(call, name, "\"%s\" must not contain NUL characters", name);
        return false;
    }
    size_t chars = utf8_count(s, len);
    if (chars < min_chars || chars > max_chars) {
        rpc_reply_invalid_param(call, name,
                                "\"%s\" must be %zu to %zu characters after trimming, not %zu",
                                name, min_chars, max_chars, chars);
        return false;
    }
    *out = xstrndup(s, len);
    return true;
}

static bool improve_model_ok(const char *m) {
    size_t n = strlen(m);
    if (n == 0 || n > IMPROVE_MODEL_MAX_BYTES || strstr(m, ".."))
        return false;
    return strspn(m, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@+-") == n;
}

/* provider and model, shared with `models`. */
static bool improve_target_params(struct rpc_call *call, json_t *params, char **provider,
                                  char **model) {
    const char *p = NULL, *m = NULL;
    if (!rpc_param_str(call, params, "provider", false, &p))
        return false;
    if (p && !llm_provider_known(p)) {
        char names[256];
        llm_provider_names(names, sizeof names, " or ");
        rpc_reply_invalid_param(call, "provider", "unknown provider \"%s\": use %s", p, names);
        return false;
    }
    if (model && !rpc_param_str(call, params, "model", false, &m))
        return false;
    if (m && !improve_model_ok(m)) {
        rpc_reply_invalid_param(call, "model",
                                "\"model\" must be a model name (letters, digits and ._:/@+-, at "
                                "most %d bytes)",
                                IMPROVE_MODEL_MAX_BYTES);
        return false;
    }
    *provider = p ? xstrdup(p) : NULL;
    if (model)
        *model = m ? xstrdup(m) : NULL;
    return true;
}

/* mode into *few_shot; absent, FEWSHOT_ENABLED decides. Few-shot needs
 * a loaded trainset (start-up refuses FEWSHOT_ENABLED without one, but
 * mode "few-shot" can be asked of any daemon). */
static bool improve_mode_param(struct rpc_call *call, json_t *params, const struct daemon *d,
                               bool *few_shot) {
    const char *mode = NULL;
    if (!rpc_param_str(call, params, "mode", false, &mode))
        return false;
    if (!mode) {
        *few_shot = d->cfg->fewshot_enabled;
    } else if (strcmp(mode, IMPROVE_BACKEND_ZERO_SHOT) == 0 ||
               strcmp(mode, IMPROVE_BACKEND_FEW_SHOT) == 0) {
        *few_shot = strcmp(mode, IMPROVE_BACKEND_FEW_SHOT) == 0;
    } else {
        rpc_reply_invalid_param(call, "mode", "\"mode\" must be \"zero-shot\" or \"few-shot\"");
        return false;
    }
    if (*few_shot && fewshot_count(d->fewshot) == 0) {
        rpc_reply_invalid_param(call, "mode",
                                "few-shot needs a trainset of example improvements: set "
                                "FEWSHOT_TRAINSET_PATH in promptd's config file (see "
                                "docs/fewshot.md) and reload it, or use mode \"zero-shot\"");
        return false;
    }
    return true;
}

static bool improve_read_params(struct improve_call *ic, json_t *params) {
    struct rpc_call *call = ic->call;
    json_int_t parent = -1;
    const char *client = NULL;
    ic->stream = false;
    ic->record = true;
    if (!improve_text_param(call, params, "idea", true, LIMIT_IDEA_MIN_CHARS, LIMIT_IDEA_MAX_CHARS,
                            &ic->idea) ||
        !improve_text_param(call, params, "context", false, 0, LIMIT_CONTEXT_MAX_CHARS,
                            &ic->context) ||
        !improve_mode_param(call, params, ic->d, &ic->few_shot) ||
        !improve_target_params(call, params, &ic->provider, &ic->model) ||
        !rpc_param_bool(call, params, "stream", &ic->stream) ||
        !rpc_param_bool(call, params, "record", &ic->record) ||
        !rpc_param_int(call, params, "parent_id", false, 1, INT64_MAX, &parent) ||
        !rpc_param_str(call, params, "client", false, &client))
        return false;
    if (client && utf8_count(client, strlen(client)) > IMPROVE_CLIENT_MAX_CHARS) {
        rpc_reply_invalid_param(call, "client", "\"client\" must be at most %d characters",
                                IMPROVE_CLIENT_MAX_CHARS);
        return false;
    }
    if (client)
        ic->client = xstrdup(client);
    ic->parent_id = parent;
    return true;
}

static void method_improve(struct rpc_call *call, json_t *params) {
    struct daemon *d = rpc_call_daemon(call);
    struct improve_call *ic = xcalloc(1, sizeof *ic);
    ic->call = call;
    ic->d = d;
    ic->parent_id = -1;
    ic->request_id = json_incref(rpc_call_id(call));
    if (!improve_read_params(ic, params)) {
        improve_free(ic);
        return;
    }
    if (!d->llm) {
        rpc_reply_error(call, RPC_INTERNAL, NULL, "the LLM engine is not running");
        improve_free(ic);
        return;
    }
    rpc_call_set_cancel(call, improve_cancel, ic);
    if (ic->parent_id <= 0) {
        improve_run(ic, NULL);
        return;
    }
    if (!d->store) {
        rpc_call_set_cancel(call, NULL, NULL);
        rpc_reply_error(call, STORE_RPC_DISABLED, json_pack("{s:s}", "field", "parent_id"),
                        "parent_id needs the history, and persistence is disabled "
                        "(SQLITE_ENABLED=false)");
        improve_free(ic);
        return;
    }
    ic->reading_parent = true;
    store_get_async(d->store, ic->parent_id, improve_on_parent, ic);
}

/* ---- models ---- */

/* At most this many providers are asked by one `models` call (more than
 * the table holds today). */
#define MODELS_MAX_PROVIDERS 16

struct models_call;

/* One provider's part of a `models` call. */
struct models_part {
    struct models_call *mc;  /* borrowed: the call it belongs to */
    struct llm_request *req; /* borrowed while the engine works on it */
    json_t *entry;           /* owned; its `providers` entry once answered */
};

/* A `models` call: the named provider, or, without a name, every
 * configured one (LLM_PROVIDER first). The reply waits for all of them;
 * LLM_PROVIDER's answer is the result's provider/models (or its error),
 * and with more than one provider `providers` lists each one's. */
struct models_call {
    struct rpc_call *call; /* borrowed */
    size_t n, pending;
    struct models_part part[MODELS_MAX_PROVIDERS];
    json_t *primary;    /* owned; the first part's result, NULL when it failed */
    int primary_code;   /* its error, when it failed */
    char *primary_msg;  /* owned */
    json_t *error_data; /* owned */
};

static void models_free(struct models_call *mc) {
    for (size_t i = 0; i < mc->n; i++)
        json_decref(mc->part[i].entry);
    json_decref(mc->primary);
    json_decref(mc->error_data);
    free(mc->primary_msg);
    free(mc);
}

static void models_cancel(void *arg) {
    struct models_call *mc = arg;
    for (size_t i = 0; i < mc->n; i++)
        if (mc->part[i].req)
            llm_cancel(mc->part[i].req);
    rpc_reply_cancelled(mc->call);
    models_free(mc);
}

static json_t *models_entry(const struct llm_outcome *out) {
    json_t *e = json_pack("{s:s, s:s?}", "provider", out->provider, "base_url", out->base_url);
    if (e && out->code == 0)
        json_object_set(e, "models", out->models);
    else if (e)
        json_object_set_new(e, "error",
                            json_pack("{s:i, s:s}", "code", out->code, "message",
                                      out->message ? out->message : ""));
    return e;
}

static void models_reply(struct models_call *mc) {
    rpc_call_set_cancel(mc->call, NULL, NULL);
    if (!mc->primary) {
        if (mc->primary_code == RPC_CANCELLED)
            rpc_reply_cancelled(mc->call);
        else
            rpc_reply_error(mc->call, mc->primary_code, json_incref(mc->error_data), "%s",
                            mc->primary_msg ? mc->primary_msg : "");
        return;
    }
    json_t *res = json_incref(mc->primary);
    if (mc->n > 1) {
        json_t *list = json_array();
        for (size_t i = 0; i < mc->n; i++)
            json_array_append(list, mc->part[i].entry);
        json_object_set_new(res, "providers", list);
    }
    rpc_reply(mc->call, res);
}

static void models_on_done(void *arg, const struct llm_outcome *out) {
    struct models_part *part = arg;
    struct models_call *mc = part->mc;
    part->req = NULL;
    part->entry = models_entry(out);
    if (part == &mc->part[0]) {
        if (out->code == 0) {
            mc->primary = json_pack("{s:s, s:O}", "provider", out->provider, "models", out->models);
        } else {
            mc->primary_code = out->code;
            mc->primary_msg = xstrdup(out->message ? out->message : "");
            mc->error_data = improve_error_data(out);
        }
    }
    if (--mc->pending > 0)
        return;
    models_reply(mc);
    models_free(mc);
}

static void method_models(struct rpc_call *call, json_t *params) {
    struct daemon *d = rpc_call_daemon(call);
    char *provider = NULL;
    if (!improve_target_params(call, params, &provider, NULL))
        return;
    if (!d->llm) {
        free(provider);
        rpc_reply_error(call, RPC_INTERNAL, NULL, "could not start listing the models");
        return;
    }
    const char *names[MODELS_MAX_PROVIDERS];
    size_t n = provider ? 1 : llm_configured_providers(d->llm, names, MODELS_MAX_PROVIDERS);
    if (provider)
        names[0] = provider;
    struct models_call *mc = xcalloc(1, sizeof *mc);
    mc->call = call;
    /* Counted before the first start: an answer always comes from the
     * loop, never inside llm_models, but a failed start ends the part. */
    mc->n = mc->pending = n;
    for (size_t i = 0; i < n; i++) {
        struct models_part *part = &mc->part[i];
        part->mc = mc;
        part->req = llm_models(d->llm, names[i], models_on_done, part);
    }
    free(provider);
    if (n == 0 || !mc->part[0].req) {
        for (size_t i = 0; i < n; i++)
            if (mc->part[i].req)
                llm_cancel(mc->part[i].req);
        models_free(mc);
        rpc_reply_error(call, RPC_INTERNAL, NULL, "could not start listing the models");
        return;
    }
    for (size_t i = 1; i < n; i++)
        if (!mc->part[i].req) /* left out: its engine request could not start */
            mc->pending--;
    rpc_call_set_cancel(call, models_cancel, mc);
}

const struct rpc_method methods_improve[] = {
    {"improve", method_improve},
    {"models", method_models},
    {NULL, NULL},
};

/* ---- wiring ---- */

int methods_improve_start(struct daemon *d) {
    d->llm = llm_new(d);
    if (!d->llm) {
        log_error("the LLM engine could not start");
        return -1;
    }
    d->health_llm = llm_health_hook;
    rpc_register(d, methods_improve);
    llm_prewarm(d->llm);
    return 0;
}

void methods_improve_stop(struct daemon *d) {
    if (!d->llm)
        return;
    llm_close(d->llm);
    d->llm = NULL;
    d->health_llm = NULL;
}
