/* promptctl: the command-line client of promptd. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "promptctl.h"
#include "protocol.h"
#include "sockpath.h"
#include "xalloc.h"

/* Every command table; later ones add their own. */
static const struct ctl_command *const command_tables[] = {
    ctl_core_commands,
    ctl_improve_commands,
    ctl_history_commands,
    ctl_service_commands,
};
#define N_TABLES (sizeof command_tables / sizeof command_tables[0])

static void usage(FILE *out) {
    fprintf(out, "usage: promptctl [--socket PATH] [--json] COMMAND [ARGS...]\n\n"
                 "Talks to promptd over its Unix socket.\n\nCommands:\n");
    for (size_t t = 0; t < N_TABLES; t++)
        for (const struct ctl_command *cmd = command_tables[t]; cmd->name; cmd++)
            fprintf(out, "  %-10s %s\n", cmd->name, cmd->summary);
    fprintf(out, "\nOptions:\n"
                 "  --socket PATH  the daemon's socket (default: PROMPTD_SOCKET, else\n"
                 "                 $XDG_RUNTIME_DIR/promptd/promptd.sock, else\n"
                 "                 /tmp/promptd-$UID/promptd.sock)\n"
                 "  --json         print results as JSON, for scripts\n"
                 "  --help         this help; `promptctl COMMAND --help` for a command's\n"
                 "  --version      promptctl's own version\n\n"
                 "Exit codes: 0 ok, 1 the daemon answered an error (or a service step\n"
                 "failed), 2 usage, 3 the daemon is not running.\n");
}

static const struct ctl_command *find_command(const char *name) {
    for (size_t t = 0; t < N_TABLES; t++)
        for (const struct ctl_command *cmd = command_tables[t]; cmd->name; cmd++)
            if (strcmp(cmd->name, name) == 0)
                return cmd;
    return NULL;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    xalloc_install_jansson(); /* before any json_*: every command builds JSON */
    signal(SIGPIPE, SIG_IGN); /* a daemon that goes away is an error message, not a death */
    struct ctl c = {.fd = -1};
    const char *socket_flag = NULL;
    int opt;
    /* '+': stop at the command name; its flags are its own. */
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            socket_flag = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 'h':
            usage(stdout);
            return CTL_OK;
        case 'V':
            printf("promptctl %s (protocol %d)\n", PROMPTD_VERSION, PROMPTD_PROTOCOL);
            return CTL_OK;
        default:
            usage(stderr);
            return CTL_ERR_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CTL_ERR_USAGE;
    }
    const struct ctl_command *cmd = find_command(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "promptctl: unknown command \"%s\"; `promptctl --help` lists them\n",
                argv[optind]);
        return CTL_ERR_USAGE;
    }
    int cargc = argc - optind;
    char **cargv = argv + optind;
    if (ctl_wants_help(cargc, cargv)) {
        printf("%s: %s.\n\nusage: %s\n", cmd->name, cmd->summary, cmd->usage);
        return CTL_OK;
    }
    /* Command-level --json, e.g. `promptctl health --json`. */
    int kept = 1;
    for (int i = 1; i < cargc; i++) {
        if (strcmp(cargv[i], "--json") == 0)
            c.json = true;
        else
            cargv[kept++] = cargv[i];
    }
    cargc = kept;
    char path[256], err[256];
    if (sockpath_resolve(socket_flag, NULL, path, sizeof path, err, sizeof err) != 0) {
        fprintf(stderr, "promptctl: %s\n", err);
        return CTL_ERR_USAGE;
    }
    c.socket_path = path;
    c.tty = isatty(STDOUT_FILENO);
    int rc = cmd->run(&c, cargc, cargv);
    if (c.fd >= 0)
        close(c.fd);
    free(c.buf);
    return rc;
}
