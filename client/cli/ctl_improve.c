/* promptctl improve and promptctl models.
 *
 * improve waits for its answer in its own poll loop instead of ctl_call,
 * because Ctrl-C must be able to send `cancel` while the answer is still
 * coming: SIGINT writes a byte to a self-pipe, the loop sees it and sends
 * the cancel request on the same connection (a request may only be
 * cancelled by the connection that made it). A second Ctrl-C exits at once. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_text.h"
#include "promptctl.h"
#include "xalloc.h"

/* Exit status after Ctrl-C, as shells report a SIGINT death. */
#define CTL_EXIT_INTERRUPTED 130
/* An idea read from stdin is at most this long (the daemon's own limit is
 * 20000 characters; this only stops a runaway pipe). */
#define CTL_STDIN_MAX (1024 * 1024)
#define CTL_LINE_MAX  (64 * 1024 * 1024)

/* The signal handler's only way to reach the loop. A handler cannot take
 * an argument, so this is the one mutable global of this file. */
static int ctl_sigint_pipe[2] = {-1, -1};

static void ctl_on_sigint(int sig) {
    int saved = errno;
    char b = 1;
    if (write(ctl_sigint_pipe[1], &b, 1) < 0) {
        /* Nothing to do: the pipe is full, a cancel is already pending. */
    }
    signal(sig, SIG_DFL); /* a second Ctrl-C ends promptctl at once */
    errno = saved;
}

struct improve_opts {
    char *idea; /* owned */
    const char *context, *provider, *model, *mode;
    bool no_stream, copy;
};

struct improve_wait {
    struct ctl *c;
    long id;
    bool stream_out; /* print deltas as they come */
    bool printed;    /* some delta was printed */
    bool cancel_sent;
    json_t *response; /* owned; the final message */
};

/* ---- reading the idea ---- */

static char *ctl_read_stdin(void) {
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= CTL_STDIN_MAX) {
                fprintf(stderr, "promptctl: the idea on standard input is too long\n");
                free(buf);
                return NULL;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(STDIN_FILENO, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            buf[len] = '\0';
            return buf;
        }
        len += (size_t)n;
    }
}

/* The words after the flags, joined by spaces; NULL for none or "-". */
static char *ctl_join_args(int argc, char **argv) {
    size_t n = 0;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = xmalloc(n + 1);
    s[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

static const char improve_usage[] =
    "promptctl improve [IDEA|-] [-c CONTEXT] [--provider P] [--model M] [--mode M]\n"
    "                         [--json] [--no-stream] [--copy]\n"
    "  IDEA            the rough idea (several words are joined); '-' or none: stdin\n"
    "  -c, --context   extra context for the model\n"
    "  --provider P    ollama, openai, anthropic, gemini or builtin\n"
    "  --model M       the model to ask (default: the daemon's LLM_MODEL)\n"
    "  --mode M        zero-shot or few-shot (examples from FEWSHOT_TRAINSET_PATH;\n"
    "                  default: the daemon's FEWSHOT_ENABLED)\n"
    "  --json          print the whole result as JSON\n"
    "  --no-stream     print the prompt when it is complete, not as it is written\n"
    "  --copy          also put the improved prompt on the clipboard\n"
    "Ctrl-C cancels the request";

static int ctl_improve_args(int argc, char **argv, struct improve_opts *o) {
    enum { O_PROVIDER = 1, O_MODEL, O_MODE, O_NO_STREAM, O_COPY };
    static const struct option longopts[] = {
        {"context", required_argument, NULL, 'c'},
        {"provider", required_argument, NULL, O_PROVIDER},
        {"model", required_argument, NULL, O_MODEL},
        {"mode", required_argument, NULL, O_MODE},
        {"no-stream", no_argument, NULL, O_NO_STREAM},
        {"copy", no_argument, NULL, O_COPY},
        {NULL, 0, NULL, 0},
    };
    int opt;
    ctl_getopt_reset();
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            o->context = optarg;
            break;
        case O_PROVIDER:
            o->provider = optarg;
            break;
        case O_MODEL:
            o->model = optarg;
            break;
        case O_MODE:
            o->mode = optarg;
            break;
        case O_NO_STREAM:
            o->no_stream = true;
            break;
        case O_COPY:
            o->copy = true;
            break;
        default:
            fprintf(stderr, "promptctl: unknown or incomplete option %s\nusage: %s\n",
                    argv[optind - 1], improve_usage);
            return CTL_ERR_USAGE;
        }
    }
    bool from_stdin = optind >= argc || (argc - optind == 1 && strcmp(argv[optind], "-") == 0);
    if (from_stdin && isatty(STDIN_FILENO))
        fprintf(stderr, "promptctl: type the idea, then press Ctrl-D\n");
    o->idea = from_stdin ? ctl_read_stdin() : ctl_join_args(argc - optind, argv + optind);
    return o->idea ? CTL_OK : CTL_ERR_USAGE;
}

/* ---- the clipboard ---- */

static bool ctl_on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char buf[4096];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
        if (n > 0 && access(buf, X_OK) == 0)
            return true;
        p += n;
        if (*p == ':')
            p++;
    }
    return false;
}

/* The first clipboard tool that can work here, as a shell command. */
static const char *ctl_clipboard_command(void) {
    if (ctl_on_path("pbcopy"))
        return "pbcopy";
    if (getenv("WAYLAND_DISPLAY") && ctl_on_path("wl-copy"))
        return "wl-copy";
    if (getenv("DISPLAY") && ctl_on_path("xclip"))
        return "xclip -selection clipboard";
    if (getenv("DISPLAY") && ctl_on_path("xsel"))
        return "xsel --clipboard --input";
    return NULL;
}

static int ctl_copy(const char *text) {
    const char *cmd = ctl_clipboard_command();
    if (!cmd) {
        fprintf(stderr, "promptctl: --copy needs pbcopy (macOS), wl-copy (Wayland), or xclip "
                        "or xsel (X11) on PATH with a display; none was found\n");
        return CTL_ERR_DAEMON;
    }
    FILE *p = popen(cmd, "w");
    if (!p) {
        fprintf(stderr, "promptctl: cannot run %s: %s\n", cmd, strerror(errno));
        return CTL_ERR_DAEMON;
    }
    ctl_text_write_clean(p, text, strlen(text));
    int status = pclose(p);
    if (status != 0) {
        fprintf(stderr, "promptctl: %s failed (status %d)\n", cmd, status);
        return CTL_ERR_DAEMON;
    }
    fprintf(stderr, "promptctl: copied to the clipboard\n");
    return CTL_OK;
}

/* ---- waiting for the answer ---- */

static void ctl_on_delta(struct improve_wait *w, json_t *msg) {
    json_t *params = json_object_get(msg, "params");
    const char *method = json_string_value(json_object_get(msg, "method"));
    if (!w->stream_out || !method || strcmp(method, "improve.delta") != 0)
        return;
    json_t *rid = json_object_get(params, "request_id");
    if (!json_is_integer(rid) || json_integer_value(rid) != w->id)
        return;
    json_t *text = json_object_get(params, "text");
    if (json_is_string(text)) {
        ctl_text_write(stdout, json_string_value(text), json_string_length(text));
        fflush(stdout);
        w->printed = true;
    }
}

/* Handles one line; true once the response to our request has come. */
static bool ctl_improve_line(struct improve_wait *w, const char *line) {
    json_t *msg = json_loads(line, 0, NULL);
    if (!msg)
        return false;
    json_t *id = json_object_get(msg, "id");
    if (!id) {
        ctl_on_delta(w, msg);
        json_decref(msg);
        return false;
    }
    if (json_is_integer(id) && json_integer_value(id) == w->id) {
        w->response = msg;
        return true;
    }
    json_decref(msg); /* the answer to our cancel */
    return false;
}

/* Frames complete lines out of c->buf; true once the response came. */
static bool ctl_improve_drain(struct improve_wait *w) {
    struct ctl *c = w->c;
    char *nl;
    while (!w->response && c->buf && (nl = memchr(c->buf, '\n', c->buf_len))) {
        *nl = '\0';
        ctl_improve_line(w, c->buf);
        size_t used = (size_t)(nl - c->buf) + 1;
        memmove(c->buf, nl + 1, c->buf_len - used);
        c->buf_len -= used;
    }
    return w->response != NULL;
}

static int ctl_improve_read(struct improve_wait *w) {
    struct ctl *c = w->c;
    if (c->buf_cap - c->buf_len < 65536) {
        size_t cap = c->buf_cap ? c->buf_cap * 2 : 131072;
        if (cap > CTL_LINE_MAX)
            return -1;
        c->buf = xrealloc(c->buf, cap);
        c->buf_cap = cap;
    }
    ssize_t n = recv(c->fd, c->buf + c->buf_len, c->buf_cap - c->buf_len, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    c->buf_len += (size_t)n;
    return 0;
}

static void ctl_send_cancel(struct improve_wait *w) {
    if (w->cancel_sent)
        return;
    w->cancel_sent = true;
    if (w->printed)
        fputc('\n', stdout);
    fprintf(stderr, "promptctl: cancelling...\n");
    ctl_send(w->c, "cancel", json_pack("{s:I}", "request_id", (json_int_t)w->id));
}

static int ctl_improve_wait(struct improve_wait *w) {
    struct pollfd fds[2] = {{.fd = w->c->fd, .events = POLLIN},
                            {.fd = ctl_sigint_pipe[0], .events = POLLIN}};
    while (!ctl_improve_drain(w)) {
        int n = poll(fds, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (fds[1].revents & POLLIN) {
            char b;
            if (read(ctl_sigint_pipe[0], &b, 1) > 0)
                ctl_send_cancel(w);
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && ctl_improve_read(w) != 0) {
            fprintf(stderr, "promptctl: the daemon closed the connection before answering\n");
            return -1;
        }
    }
    return 0;
}

static int ctl_sigint_setup(void) {
    if (pipe(ctl_sigint_pipe) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        fcntl(ctl_sigint_pipe[i], F_SETFL, fcntl(ctl_sigint_pipe[i], F_GETFL) | O_NONBLOCK);
    struct sigaction sa = {.sa_handler = ctl_on_sigint};
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGINT, &sa, NULL);
}

/* ---- printing the result ---- */

static void ctl_print_field(const char *label, json_t *v) {
    if (json_is_string(v))
        ctl_text_printf(stdout, "%-11s %s\n", label, json_string_value(v));
}

static void ctl_print_details(json_t *r) {
    printf("\n");
    ctl_print_field("role:", json_object_get(r, "role"));
    ctl_print_field("directive:", json_object_get(r, "directive"));
    ctl_print_field("framework:", json_object_get(r, "framework"));
    json_t *g = json_object_get(r, "guardrails");
    size_t i;
    json_t *item;
    if (json_array_size(g) > 0)
        printf("guardrails:\n");
    json_array_foreach(g, i, item) {
        ctl_text_printf(stdout, "  - %s\n", json_string_value(item) ? json_string_value(item) : "");
    }
    json_t *conf = json_object_get(r, "confidence");
    if (json_is_number(conf))
        printf("confidence: %.2f\n", json_number_value(conf));
    else
        printf("confidence: -\n");
    ctl_text_printf(stdout, "latency:    %lld ms (%s, %s)\n",
                    (long long)json_integer_value(json_object_get(r, "latency_ms")),
                    json_string_value(json_object_get(r, "provider")),
                    json_string_value(json_object_get(r, "model")));
}

static void ctl_print_fallback(json_t *r) {
    const char *from = json_string_value(json_object_get(r, "fallback_from"));
    if (!from)
        return;
    const char *why = json_string_value(json_object_get(r, "fallback_reason"));
    ctl_text_error("%s was not available%s%s; this is the offline builtin template", from,
                   why ? ": " : "", why ? why : "");
}

static int ctl_improve_result(struct ctl *c, struct improve_wait *w, json_t *r, bool copy) {
    json_t *prompt_json = json_object_get(r, "improved_prompt");
    const char *prompt = json_string_value(prompt_json);
    if (c->json) {
        ctl_print_json(c, r);
    } else {
        if (!w->printed && prompt)
            ctl_text_write(stdout, prompt, json_string_length(prompt_json));
        fputc('\n', stdout);
        ctl_print_fallback(r);
        if (c->tty)
            ctl_print_details(r);
    }
    fflush(stdout);
    return copy && prompt ? ctl_copy(prompt) : CTL_OK;
}

static int ctl_improve_answer(struct ctl *c, struct improve_wait *w, bool copy) {
    json_t *err = json_object_get(w->response, "error");
    if (!err)
        return ctl_improve_result(c, w, json_object_get(w->response, "result"), copy);
    if (w->printed)
        fputc('\n', stdout);
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (c->json)
        ctl_print_json(c, err);
    ctl_text_error("%s", msg ? msg : "the daemon answered an error");
    if (json_integer_value(json_object_get(err, "code")) == -32800 && w->cancel_sent)
        return CTL_EXIT_INTERRUPTED;
    return CTL_ERR_DAEMON;
}

static json_t *ctl_improve_params(const struct improve_opts *o, bool stream) {
    json_t *p =
        json_pack("{s:s, s:b, s:s}", "idea", o->idea, "stream", stream, "client", "promptctl");
    if (p && o->context)
        json_object_set_new(p, "context", json_string(o->context));
    if (p && o->provider)
        json_object_set_new(p, "provider", json_string(o->provider));
    if (p && o->model)
        json_object_set_new(p, "model", json_string(o->model));
    if (p && o->mode)
        json_object_set_new(p, "mode", json_string(o->mode));
    return p;
}

static int cmd_improve(struct ctl *c, int argc, char **argv) {
    struct improve_opts o = {0};
    int rc = ctl_improve_args(argc, argv, &o);
    if (rc != CTL_OK)
        return rc;
    rc = ctl_connect(c);
    if (rc != CTL_OK) {
        free(o.idea);
        return rc;
    }
    /* Stream only to a person watching; a pipe gets the finished prompt. */
    bool stream = c->tty && !c->json && !o.no_stream;
    struct improve_wait w = {.c = c, .stream_out = stream};
    if (ctl_sigint_setup() != 0 || ctl_send(c, "improve", ctl_improve_params(&o, stream)) != 0) {
        fprintf(stderr, "promptctl: cannot send the request: %s\n", strerror(errno));
        free(o.idea);
        return CTL_ERR_NOT_RUNNING;
    }
    w.id = ctl_last_id(c);
    rc = ctl_improve_wait(&w) == 0 ? ctl_improve_answer(c, &w, o.copy) : CTL_ERR_DAEMON;
    json_decref(w.response);
    free(o.idea);
    return rc;
}

/* ---- models ---- */

static int cmd_models(struct ctl *c, int argc, char **argv) {
    json_t *params = json_object();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--provider") == 0 && i + 1 < argc) {
            json_object_set_new(params, "provider", json_string(argv[++i]));
        } else {
            fprintf(stderr,
                    "promptctl: unexpected argument %s\nusage: promptctl models "
                    "[--provider P]\n",
                    argv[i]);
            json_decref(params);
            return CTL_ERR_USAGE;
        }
    }
    json_t *r = NULL;
    int rc = ctl_call(c, "models", params, &r, NULL, NULL, NULL);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(c, r);
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(r, "models"), i, m) {
            ctl_text_printf(stdout, "%s\n", json_string_value(m) ? json_string_value(m) : "");
        }
    }
    json_decref(r);
    return CTL_OK;
}

const struct ctl_command ctl_improve_commands[] = {
    {"improve", improve_usage, "improve a rough idea into a structured prompt", cmd_improve},
    {"models", "promptctl models [--provider P]", "list the LLM backend's models", cmd_models},
    {NULL, NULL, NULL, NULL},
};
