/* promptctl's shared pieces: the connection to the daemon, output helpers,
 * and the command table that each client/cli/ctl_*.c file contributes to. */
#ifndef PROMPTCTL_H
#define PROMPTCTL_H

#include <jansson.h>
#include <stdbool.h>

/* Exit codes (docs/protocol.md and promptctl(1)). */
enum ctl_exit {
    CTL_OK = 0,
    CTL_ERR_DAEMON = 1,      /* the daemon answered an error (message printed) */
    CTL_ERR_USAGE = 2,       /* bad command line */
    CTL_ERR_NOT_RUNNING = 3, /* nothing listens on the socket */
};

struct ctl {
    const char *socket_path; /* resolved; borrowed from argv or owned by main */
    bool json;               /* --json: print raw JSON results */
    bool tty;                /* stdout is a terminal */
    int fd;                  /* connected socket, -1 until ctl_connect */
    char *buf;               /* owned; bytes read but not yet framed */
    size_t buf_len, buf_cap;
    long next_id;
    /* Called by ctl_call right after its request is on the wire, before it
     * waits (NULL: nothing): a command arms its Ctrl-C handling there, so
     * a cancel can never be written into the middle of the request. */
    void (*on_sent)(struct ctl *c, long id);
};

/* Called for each notification received while waiting for a response;
 * msg is borrowed. */
typedef void (*ctl_notify_fn)(json_t *msg, void *arg);

/* Connects once (later calls reuse the connection). On failure prints the
 * "not running" advice and returns CTL_ERR_NOT_RUNNING. */
int ctl_connect(struct ctl *c);

/* Sends one request and waits for its response. On success returns CTL_OK
 * and *result (new reference) holds the result. On an error response it
 * prints "promptctl: MESSAGE" to stderr and returns CTL_ERR_DAEMON; *error
 * (when non-NULL) receives the error object (new reference). params is
 * stolen (may be NULL). Notifications go to on_notify (may be NULL). */
int ctl_call(struct ctl *c, const char *method, json_t *params, json_t **result, json_t **error,
             ctl_notify_fn on_notify, void *arg);

/* The id the last ctl_call sent (for `cancel`). */
long ctl_last_id(const struct ctl *c);
/* Sends a request without waiting (e.g. cancel from a signal-driven path);
 * params stolen. Returns 0 or -1. */
int ctl_send(struct ctl *c, const char *method, json_t *params);

/* Prints a JSON value compactly (--json) or indented on a terminal. */
void ctl_print_json(const struct ctl *c, json_t *value);

/* Prints the advice for a daemon that is not running, naming the socket. */
void ctl_print_not_running(const struct ctl *c);

struct ctl_command {
    const char *name;
    const char *usage;   /* "promptctl NAME ..." synopsis and flags, for --help */
    const char *summary; /* one line for the command list */
    int (*run)(struct ctl *c, int argc, char **argv); /* argv[0] is the command */
};

/* Command tables, each ending in {NULL}; promptctl.c lists them all. */
extern const struct ctl_command ctl_core_commands[];    /* ctl_core.c */
extern const struct ctl_command ctl_history_commands[]; /* ctl_history.c */
extern const struct ctl_command ctl_improve_commands[]; /* ctl_improve.c */
extern const struct ctl_command ctl_service_commands[]; /* ctl_service.c */

/* Prints that no daemon answers on socket_path and exactly how to start
 * one on this system: the systemd or launchd command when promptd's
 * service is installed, how to install it when not (ctl_service.c). */
void ctl_service_print_advice(const char *socket_path);

/* Makes getopt_long parse a command's own argv from the start, with
 * options allowed after operands (`improve IDEA -c CONTEXT`). */
void ctl_getopt_reset(void);

/* True when argv holds -h or --help; commands print their usage then. */
bool ctl_wants_help(int argc, char **argv);

#endif
