/* promptctl's connection to the daemon: one socket, newline-delimited
 * JSON-RPC, blocking I/O (a client has nothing else to do meanwhile). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_text.h"
#include "promptctl.h"
#include "sockpath.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: promptctl ignores SIGPIPE instead */
#endif

/* A response line larger than this is refused: a misbehaving peer must not
 * make the client allocate without bound. */
#define CTL_MAX_LINE (64 * 1024 * 1024)

void ctl_print_not_running(const struct ctl *c) {
    ctl_service_print_advice(c->socket_path);
}

/* Whoever listens on the socket will read the ideas we send: it must be a
 * process of our own user, checked before the first byte (another user
 * could have put their socket where ours should be). */
static int ctl_check_server(const struct ctl *c, int fd) {
    uid_t uid;
    if (sockpath_peer_uid(fd, &uid) != 0) {
        fprintf(stderr,
                "promptctl: cannot tell who serves %s (%s): nothing was sent; run promptctl "
                "where the daemon runs\n",
                c->socket_path, strerror(errno));
        return -1;
    }
    if (uid != getuid()) {
        fprintf(stderr,
                "promptctl: the daemon on %s belongs to another user (uid %u, you are %u): "
                "nothing was sent; run promptctl as the daemon's user, or start your own "
                "promptd on a socket of your own\n",
                c->socket_path, (unsigned)uid, (unsigned)getuid());
        return -1;
    }
    return 0;
}

int ctl_connect(struct ctl *c) {
    if (c->fd >= 0)
        return CTL_OK;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(c->socket_path) >= sizeof addr.sun_path) {
        fprintf(stderr, "promptctl: the socket path %s is too long\n", c->socket_path);
        return CTL_ERR_USAGE;
    }
    strcpy(addr.sun_path, c->socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        fprintf(stderr, "promptctl: cannot create a socket: %s\n", strerror(errno));
        return CTL_ERR_NOT_RUNNING;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        if (e == EACCES || e == EPERM)
            fprintf(stderr, "promptctl: permission denied on %s: it belongs to another user\n",
                    c->socket_path);
        else
            ctl_print_not_running(c);
        return CTL_ERR_NOT_RUNNING;
    }
    if (ctl_check_server(c, fd) != 0) {
        close(fd);
        return CTL_ERR_NOT_RUNNING;
    }
    c->fd = fd;
    return CTL_OK;
}

static int ctl_write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int ctl_send(struct ctl *c, const char *method, json_t *params) {
    json_t *msg = json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", (json_int_t)++c->next_id,
                            "method", method);
    if (params)
        json_object_set_new(msg, "params", params);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text)
        return -1;
    size_t len = strlen(text);
    int rc = ctl_write_all(c->fd, text, len);
    if (rc == 0)
        rc = ctl_write_all(c->fd, "\n", 1);
    free(text);
    return rc;
}

long ctl_last_id(const struct ctl *c) {
    return c->next_id;
}

/* Reads one line into a new string; NULL at EOF or on error. */
static char *ctl_read_line(struct ctl *c) {
    for (;;) {
        char *nl = c->buf ? memchr(c->buf, '\n', c->buf_len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            char *line = malloc(n + 1);
            if (!line)
                return NULL;
            memcpy(line, c->buf, n);
            line[n] = '\0';
            memmove(c->buf, nl + 1, c->buf_len - n - 1);
            c->buf_len -= n + 1;
            return line;
        }
        if (c->buf_len >= CTL_MAX_LINE)
            return NULL;
        if (c->buf_cap - c->buf_len < 65536) {
            size_t cap = c->buf_cap ? c->buf_cap * 2 : 65536;
            char *p = realloc(c->buf, cap);
            if (!p)
                return NULL;
            c->buf = p;
            c->buf_cap = cap;
        }
        ssize_t n = recv(c->fd, c->buf + c->buf_len, c->buf_cap - c->buf_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        c->buf_len += (size_t)n;
    }
}

static void ctl_print_error(json_t *error) {
    const char *message = json_string_value(json_object_get(error, "message"));
    ctl_text_printf(stderr, "promptctl: %s\n", message ? message : "the daemon answered an error");
}

int ctl_call(struct ctl *c, const char *method, json_t *params, json_t **result, json_t **error,
             ctl_notify_fn on_notify, void *arg) {
    int rc = ctl_connect(c);
    if (rc != CTL_OK) {
        json_decref(params);
        return rc;
    }
    if (ctl_send(c, method, params) != 0) {
        fprintf(stderr, "promptctl: cannot send the request: %s\n", strerror(errno));
        return CTL_ERR_NOT_RUNNING;
    }
    long id = c->next_id;
    if (c->on_sent)
        c->on_sent(c, id);
    for (;;) {
        char *line = ctl_read_line(c);
        if (!line) {
            fprintf(stderr, "promptctl: the daemon closed the connection before answering\n");
            return CTL_ERR_DAEMON;
        }
        json_t *msg = json_loads(line, 0, NULL);
        free(line);
        if (!msg)
            continue; /* not ours to judge; the daemon only sends JSON */
        json_t *msg_id = json_object_get(msg, "id");
        if (!msg_id) {
            if (on_notify)
                on_notify(msg, arg);
            json_decref(msg);
            continue;
        }
        if (!json_is_integer(msg_id) || json_integer_value(msg_id) != id) {
            json_decref(msg);
            continue; /* an answer to an earlier request, e.g. cancel */
        }
        json_t *err = json_object_get(msg, "error");
        if (err) {
            ctl_print_error(err);
            if (error)
                *error = json_incref(err);
            json_decref(msg);
            return CTL_ERR_DAEMON;
        }
        if (result)
            *result = json_incref(json_object_get(msg, "result"));
        json_decref(msg);
        return CTL_OK;
    }
}

void ctl_print_json(const struct ctl *c, json_t *value) {
    char *text = json_dumps(value, JSON_ENCODE_ANY | (c->json ? JSON_COMPACT : JSON_INDENT(2)));
    if (text) {
        ctl_text_write_json(stdout, text);
        putchar('\n');
        free(text);
    }
}

void ctl_getopt_reset(void) {
#if defined(__APPLE__) || defined(__FreeBSD__)
    optreset = 1;
    optind = 1;
#else
    optind = 0; /* 0, not 1: glibc re-reads optstring and permutes again */
#endif
}

bool ctl_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}
