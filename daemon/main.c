/* promptd: wiring. Parses the command line, loads the configuration, opens
 * the modules, serves until SIGTERM/SIGINT, and reloads on SIGHUP. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "fewshot.h"
#include "log.h"
#include "methods_core.h"
#include "methods_history.h"
#include "methods_improve.h"
#include "promptd_limits.h"
#include "protocol.h"
#include "sdnotify.h"
#include "server.h"
#include "sockpath.h"
#include "store.h"

/* Exit codes (promptd(8)). */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_CONFIG = 2 };

struct options {
    struct config_flags flags;
    const char *config_path;
    bool check_config;
};

struct main_state {
    struct daemon d;
    struct options opt;
    uv_signal_t sig_term, sig_int, sig_hup;
    bool socket_from_systemd;
};

static void usage(FILE *out) {
    fprintf(out,
            "usage: promptd [options]\n"
            "\n"
            "Serves prompt improvement over a Unix socket (JSON-RPC 2.0, one object per line).\n"
            "\n"
            "  --socket PATH       socket to listen on (PROMPTD_SOCKET; default\n"
            "                      $XDG_RUNTIME_DIR/promptd/promptd.sock, else\n"
            "                      /tmp/promptd-$UID/promptd.sock)\n"
            "  --db PATH           history database (SQLITE_DB_PATH)\n"
            "  --config FILE       configuration file (KEY=VALUE lines; an old .env works);\n"
            "                      default $XDG_CONFIG_HOME/promptd/promptd.conf if present\n"
            "  --log-level LEVEL   debug, info, warn or error (LOG_LEVEL)\n"
            "  --check-config      print the effective configuration and exit (2 on error)\n"
            "  --version           print the version and exit\n"
            "  --help              print this help and exit\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration file.\n"
            "Exit codes: 0 stopped cleanly, 1 runtime error (e.g. already running),\n"
            "2 configuration or usage error. See promptd(8) and docs/protocol.md.\n");
}

/* Returns -1 to continue, else an exit code. */
static int parse_args(int argc, char **argv, struct options *opt) {
    enum { O_SOCKET = 1, O_DB, O_CONFIG, O_LOG, O_CHECK, O_VERSION, O_HELP };
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, O_SOCKET},
        {"db", required_argument, NULL, O_DB},
        {"config", required_argument, NULL, O_CONFIG},
        {"log-level", required_argument, NULL, O_LOG},
        {"check-config", no_argument, NULL, O_CHECK},
        {"version", no_argument, NULL, O_VERSION},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_SOCKET:
            opt->flags.socket_path = optarg;
            break;
        case O_DB:
            opt->flags.db_path = optarg;
            break;
        case O_CONFIG:
            opt->config_path = optarg;
            break;
        case O_LOG:
            opt->flags.log_level = optarg;
            break;
        case O_CHECK:
            opt->check_config = true;
            break;
        case O_VERSION:
            printf("promptd %s (protocol %d)\n", PROMPTD_VERSION, PROMPTD_PROTOCOL);
            return EXIT_OK;
        case O_HELP:
            usage(stdout);
            return EXIT_OK;
        default:
            fprintf(stderr, "promptd: unknown or incomplete option %s\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "promptd: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return EXIT_CONFIG;
    }
    return -1;
}

/* A launcher may open many connections; the default soft limit (1024 on
 * most systems) is lower than the hard one for no good reason. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
#ifdef __APPLE__
    if (rl.rlim_cur > 10240)
        rl.rlim_cur = 10240; /* OPEN_MAX: macOS refuses more */
#endif
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_debug("cannot raise the open-files limit");
}

static void reload_config(struct main_state *m) {
    struct daemon *d = &m->d;
    struct config *cfg = NULL;
    char err[512];
    if (config_load(d->config_path ? d->config_path : m->opt.config_path, &m->opt.flags, &cfg, NULL,
                    err, sizeof err) != 0) {
        log_error("SIGHUP: configuration not reloaded: %s", err);
        return;
    }
    /* The trainset is re-read even when its path did not change: SIGHUP is
     * how a user says "I edited it". A bad one keeps the old state whole. */
    struct fewshot_set *fewshot = NULL;
    if (fewshot_load_configured(cfg, d->config_path, &fewshot, err, sizeof err) != 0) {
        log_error("SIGHUP: configuration not reloaded, the old one and its trainset stay: %s", err);
        config_free(cfg);
        return;
    }
    config_log_changes(d->cfg, cfg);
    /* Freed at once: every reader takes what it needs from d->cfg when it
     * runs (requests copy their provider, model, URL and key), so nothing
     * points into the old one (daemon.h). */
    config_free(d->cfg);
    d->cfg = cfg;
    log_set_level((enum log_level)cfg->log_level);
    fewshot_free(d->fewshot); /* nothing borrows it: requests copy their examples */
    d->fewshot = fewshot;
    fewshot_log_loaded(fewshot);
}

static void close_any_handle(uv_handle_t *h, void *arg) {
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_server_stopped(struct daemon *d) {
    struct main_state *m = (struct main_state *)d;
    /* History first, while the signal handlers are still installed: the
     * flush may take a moment and a second SIGTERM must not kill it. */
    store_close(d->store); /* writes every queued row, checkpoints, joins the writer */
    d->store = NULL;
    uv_close((uv_handle_t *)&m->sig_term, NULL);
    uv_close((uv_handle_t *)&m->sig_int, NULL);
    uv_close((uv_handle_t *)&m->sig_hup, NULL);
    methods_improve_stop(d); /* aborts upstream transfers, closes curl's handles */
    uv_walk(d->loop, close_any_handle, NULL);
}

/* systemd's reload protocol (sd_notify(3)): RELOADING=1 with the
 * monotonic time, then READY=1 once the new configuration is in force. */
static void notify_reloading(void) {
    char msg[64];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)(uv_hrtime() / 1000));
    sdnotify_send(msg);
}

static void notify_ready(const struct daemon *d) {
    char msg[LIMIT_SOCKET_PATH_BYTES + 64];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=serving on %s", d->socket_path);
    sdnotify_send(msg);
}

static void on_signal(uv_signal_t *h, int signum) {
    struct main_state *m = h->data;
    if (signum == SIGHUP) {
        log_info("SIGHUP: reloading the configuration");
        notify_reloading();
        reload_config(m);
        notify_ready(&m->d);
        return;
    }
    if (m->d.stopping)
        return;
    log_info("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    sdnotify_send("STOPPING=1\nSTATUS=stopping");
    server_shutdown(&m->d, on_server_stopped);
}

static int watch_signals(struct main_state *m, char *err, size_t errlen) {
    uv_signal_t *hs[] = {&m->sig_term, &m->sig_int, &m->sig_hup};
    int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        hs[i]->data = m;
        if (uv_signal_init(m->d.loop, hs[i]) != 0 || uv_signal_start(hs[i], on_signal, sigs[i])) {
            snprintf(err, errlen, "cannot watch signal %d", sigs[i]);
            return -1;
        }
    }
    return 0;
}

static int check_config(const struct config *cfg) {
    char path[LIMIT_SOCKET_PATH_BYTES + 64], err[256];
    if (sockpath_resolve(cfg->socket_path, NULL, path, sizeof path, err, sizeof err) != 0) {
        fprintf(stderr, "promptd: %s\n", err);
        return EXIT_CONFIG;
    }
    json_t *j = config_to_json(cfg);
    json_object_set_new(j, "socket (resolved)", json_string(path));
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (!text)
        return EXIT_RUNTIME;
    printf("%s\n", text);
    free(text);
    return EXIT_OK;
}

/* Under socket activation the socket is wherever the unit put it: health
 * and the log name that path, not the one promptd would have chosen. */
static int adopt_socket_name(struct daemon *d, int fd, char *err, size_t errlen) {
    char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    if (sdnotify_socket_path(fd, name, sizeof name, err, errlen) != 0)
        return -1;
    char *copy = strdup(name);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(d->socket_path);
    d->socket_path = copy;
    return 0;
}

/* Takes the socket (the lock, then the path; or systemd's fd) without
 * accepting yet: a second daemon stops here, before touching the
 * database. */
static int claim_socket(struct main_state *m, char *err, size_t errlen) {
    struct daemon *d = &m->d;
    int fd = sdnotify_listen_fd();
    m->socket_from_systemd = fd >= 0;
    if (fd >= 0) {
        if (adopt_socket_name(d, fd, err, errlen) != 0)
            return -1;
        return server_adopt_fd(d, fd, err, errlen);
    }
    if (sockpath_prepare_dir(d->socket_path, err, errlen) != 0)
        return -1;
    return server_bind(d, d->socket_path, err, errlen);
}

static int start_listening(struct main_state *m, char *err, size_t errlen) {
    struct daemon *d = &m->d;
    if (server_listen(d, err, errlen) != 0)
        return -1;
    log_info("promptd %s listening on %s%s", PROMPTD_VERSION, d->socket_path,
             m->socket_from_systemd ? " (socket from systemd)" : "");
    return 0;
}

static void free_state(struct main_state *m);

/* Start-up failed after the loop was made: closes what was opened (the
 * claimed socket is unlinked as its handle closes), says why when err is
 * set, and returns the exit code. */
static int stop_early(struct main_state *m, const char *err) {
    struct daemon *d = &m->d;
    if (err) {
        fprintf(stderr, "promptd: %s\n", err);
        log_error("%s", err);
    }
    store_close(d->store);
    d->store = NULL;
    uv_walk(d->loop, close_any_handle, NULL);
    uv_run(d->loop, UV_RUN_DEFAULT);
    free_state(m);
    return EXIT_RUNTIME;
}

static void free_state(struct main_state *m) {
    struct daemon *d = &m->d;
    server_free(d);
    config_free(d->cfg);
    fewshot_free(d->fewshot);
    free(d->config_path);
    free(d->socket_path);
}

int main(int argc, char **argv) {
    static struct main_state state; /* static: large, and lives as long as the process */
    struct main_state *m = &state;
    struct daemon *d = &m->d;
    int rc = parse_args(argc, argv, &m->opt);
    if (rc >= 0)
        return rc;

    char err[512];
    if (config_load(m->opt.config_path, &m->opt.flags, &d->cfg, &d->config_path, err, sizeof err) !=
            0 ||
        fewshot_load_configured(d->cfg, d->config_path, &d->fewshot, err, sizeof err) != 0) {
        fprintf(stderr, "promptd: %s\n", err);
        return EXIT_CONFIG;
    }
    if (m->opt.check_config) {
        rc = check_config(d->cfg);
        free_state(m);
        return rc;
    }
    log_set_level((enum log_level)d->cfg->log_level);
    fewshot_log_loaded(d->fewshot);

    char path[LIMIT_SOCKET_PATH_BYTES + 64];
    if (sockpath_resolve(d->cfg->socket_path, NULL, path, sizeof path, err, sizeof err) != 0) {
        fprintf(stderr, "promptd: %s\n", err);
        free_state(m);
        return EXIT_CONFIG;
    }
    d->socket_path = strdup(path);

    signal(SIGPIPE, SIG_IGN); /* a vanished client is an error code, not a death */
    raise_fd_limit();
    d->loop = uv_default_loop();
    d->started_ms = daemon_now_ms();
    rpc_register(d, methods_core);
    /* History: the store opens (and migrates) before listening; without
     * SQLITE_ENABLED the methods answer persistence_disabled. */
    rpc_register(d, methods_history);
    d->health_database = methods_history_health;
    if (!d->socket_path)
        return stop_early(m, "out of memory");
    if (claim_socket(m, err, sizeof err) != 0)
        return stop_early(m, err);
    if (d->cfg->sqlite_enabled && store_open(d, d->cfg, &d->store, err, sizeof err) != 0)
        return stop_early(m, err);
    /* improve/models and the LLM engine (methods_improve.c). */
    if (methods_improve_start(d) != 0)
        return stop_early(m, NULL);
    if (watch_signals(m, err, sizeof err) != 0 || start_listening(m, err, sizeof err) != 0) {
        methods_improve_stop(d);
        return stop_early(m, err);
    }
    notify_ready(d);
    store_start_maintenance(d->store); /* quick_check, retention: after listening */

    uv_run(d->loop, UV_RUN_DEFAULT);

    log_info("stopped");
    uv_loop_close(d->loop);
    free_state(m);
    return EXIT_OK;
}
