/* promptctl service: installs, starts, stops and reports promptd as the
 * user's background service (systemd user units on Linux, a launchd agent
 * on macOS), printing every file it writes and every command it runs. The
 * unit files are systemd/ and launchd/ of the source tree, embedded at
 * build time, so a user without make gets exactly what `make install`
 * installs. Also the advice promptctl prints when no daemon answers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include "client/embedded.h"
#include "promptctl.h"
#include "promptd_limits.h"
#include "sockpath.h"
#include "xalloc.h"

/* launchd label; the template is launchd/SVC_LABEL.plist.in. */
#define SVC_LABEL "io.github.promptd.promptd"
/* The daemon's path as systemd/promptd.service names it; replaced on
 * install by the real one (the Makefile does the same). */
#define SVC_UNIT_EXEC "/usr/local/bin/promptd"
/* How long start and install wait for the daemon to answer. */
#define SVC_START_WAIT_MS    10000
#define SVC_PROBE_TIMEOUT_MS 2000

/* macOS has neither MSG_NOSIGNAL everywhere nor SOCK_CLOEXEC. */
#ifdef MSG_NOSIGNAL
#define SVC_SEND_FLAGS MSG_NOSIGNAL
#else
#define SVC_SEND_FLAGS 0
#endif

enum svc_manager { SVC_NONE, SVC_SYSTEMD, SVC_LAUNCHD };

static const char *const svc_manager_names[] = {"none", "systemd", "launchd"};

/* One `promptctl service` invocation: what it acts on and how. */
struct svc {
    enum svc_manager manager;
    bool dry_run;                         /* --dry-run: print, change nothing */
    bool no_start;                        /* --no-start: install without starting */
    const char *promptd_flag;             /* --promptd PATH, borrowed from argv; NULL: search */
    char home[PATH_MAX];                  /* $HOME */
    char unit_dir[PATH_MAX];              /* systemd: $XDG_CONFIG_HOME/systemd/user */
    char agents_dir[PATH_MAX];            /* launchd: ~/Library/LaunchAgents */
    char plist[PATH_MAX];                 /* launchd: agents_dir/SVC_LABEL.plist */
    char log_dir[PATH_MAX];               /* launchd: ~/Library/Logs/promptd */
    char domain[64];                      /* launchd: gui/UID */
    char target[128];                     /* launchd: gui/UID/SVC_LABEL */
    char socket[LIMIT_SOCKET_PATH_BYTES]; /* where the service listens */
    bool hinted;                          /* the systemctl hint was printed */
};

/* ---- small helpers ---------------------------------------------------- */

/* snprintf that reports truncation: false when out was too small. */
static bool svc_fmt(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool svc_fmt(char *out, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < len;
}

static bool svc_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Returns a new string (owned by the caller): text with every `from`
 * replaced by `to`. */
static char *svc_replace(const char *text, const char *from, const char *to) {
    size_t nfrom = strlen(from), nto = strlen(to), count = 0;
    for (const char *p = strstr(text, from); p; p = strstr(p + nfrom, from))
        count++;
    char *out = xmalloc(strlen(text) + count * nto + 1);
    char *w = out;
    for (const char *p = text;;) {
        const char *hit = strstr(p, from);
        size_t n = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(w, p, n);
        w += n;
        if (!hit)
            break;
        memcpy(w, to, nto);
        w += nto;
        p = hit + nfrom;
    }
    *w = '\0';
    return out;
}

/* Escapes s for where it goes: a systemd command line (quoted when it
 * holds anything but plain path characters; % and $ doubled) or XML text. */
static bool svc_escape(const char *s, bool xml, char *out, size_t len) {
    bool plain = true;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-@", *p))
            plain = false;
    size_t w = 0;
    if (!xml && !plain)
        out[w++] = '"';
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        char one[2] = {*p, '\0'};
        if (xml)
            rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : one;
        else
            rep = *p == '%'    ? "%%"
                  : *p == '$'  ? "$$"
                  : *p == '"'  ? "\\\""
                  : *p == '\\' ? "\\\\"
                               : one;
        size_t n = strlen(rep);
        if (w + n + 2 > len)
            return false;
        memcpy(out + w, rep, n);
        w += n;
    }
    if (!xml && !plain)
        out[w++] = '"';
    out[w] = '\0';
    return true;
}

/* Prints a command line the way a shell would take it back. */
static void svc_print_argv(FILE *out, const char *const argv[]) {
    for (size_t i = 0; argv[i]; i++) {
        const char *a = argv[i];
        bool plain = *a != '\0';
        for (const char *p = a; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-=@:,",
                        *p))
                plain = false;
        if (plain) {
            fprintf(out, "%s%s", i ? " " : "", a);
            continue;
        }
        fprintf(out, "%s'", i ? " " : "");
        for (const char *p = a; *p; p++)
            if (*p == '\'')
                fputs("'\\''", out);
            else
                fputc(*p, out);
        fputc('\'', out);
    }
}

static const struct embedded_file *svc_template(const char *name) {
    for (const struct embedded_file *f = embedded_service_files; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* ---- where things are ------------------------------------------------- */

/* PROMPTCTL_SERVICE_MANAGER (systemd, launchd or none) overrides what the
 * platform suggests; tests use it, and so can a user whose systemd is not
 * PID 1 but who runs a user manager anyway. */
static enum svc_manager svc_detect(void) {
    const char *forced = getenv("PROMPTCTL_SERVICE_MANAGER");
    for (int m = SVC_NONE; forced && m <= SVC_LAUNCHD; m++)
        if (strcmp(forced, svc_manager_names[m]) == 0)
            return (enum svc_manager)m;
#ifdef __APPLE__
    return SVC_LAUNCHD;
#else
    /* sd_booted(3): systemd is the init system. */
    struct stat st;
    return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode) ? SVC_SYSTEMD : SVC_NONE;
#endif
}

static int svc_init(struct svc *s) {
    memset(s, 0, sizeof *s);
    s->manager = svc_detect();
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || !svc_fmt(s->home, sizeof s->home, "%s", home)) {
        fprintf(stderr, "promptctl: cannot tell your home directory: set HOME\n");
        return -1;
    }
    const char *xdg = getenv("XDG_CONFIG_HOME");
    bool ok = xdg && *xdg
                  ? svc_fmt(s->unit_dir, sizeof s->unit_dir, "%s/systemd/user", xdg)
                  : svc_fmt(s->unit_dir, sizeof s->unit_dir, "%s/.config/systemd/user", s->home);
    ok = ok && svc_fmt(s->agents_dir, sizeof s->agents_dir, "%s/Library/LaunchAgents", s->home) &&
         svc_fmt(s->plist, sizeof s->plist, "%s/%s.plist", s->agents_dir, SVC_LABEL) &&
         svc_fmt(s->log_dir, sizeof s->log_dir, "%s/Library/Logs/promptd", s->home);
    svc_fmt(s->domain, sizeof s->domain, "gui/%u", (unsigned)getuid());
    svc_fmt(s->target, sizeof s->target, "%s/%s", s->domain, SVC_LABEL);
    if (!ok) {
        fprintf(stderr, "promptctl: the home directory path is too long\n");
        return -1;
    }
    char err[256];
    if (sockpath_default(s->socket, sizeof s->socket, err, sizeof err) != 0) {
        fprintf(stderr, "promptctl: %s\n", err);
        return -1;
    }
    return 0;
}

/* The directories systemd searches for user units (systemd.unit(5)),
 * most specific first; out receives the first that holds name. */
static bool svc_unit_installed(const struct svc *s, const char *name, char *out, size_t len) {
    const char *data = getenv("XDG_DATA_HOME");
    char local[PATH_MAX];
    if (data && *data)
        svc_fmt(local, sizeof local, "%s/systemd/user", data);
    else
        svc_fmt(local, sizeof local, "%s/.local/share/systemd/user", s->home);
    const char *dirs[] = {s->unit_dir,
                          "/etc/systemd/user",
                          local,
                          "/usr/local/share/systemd/user",
                          "/usr/local/lib/systemd/user",
                          "/usr/share/systemd/user",
                          "/usr/lib/systemd/user",
                          "/lib/systemd/user"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (svc_fmt(out, len, "%s/%s", dirs[i], name) && svc_exists(out))
            return true;
    return false;
}

/* promptctl's own path, to find the promptd installed beside it. */
static int svc_self_path(char *out, size_t len) {
#if defined(__linux__)
    ssize_t n = readlink("/proc/self/exe", out, len - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    return 0;
#elif defined(__APPLE__)
    char raw[PATH_MAX];
    uint32_t size = sizeof raw;
    if (_NSGetExecutablePath(raw, &size) != 0 || len < PATH_MAX || !realpath(raw, out))
        return -1;
    return 0;
#else
    return -1;
#endif
}

static bool svc_executable(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The promptd beside promptctl (a build tree's build/promptd before `make
 * install`, or the one installed with it), as an absolute path. */
static bool svc_promptd_beside(char *out, size_t len) {
    char buf[PATH_MAX];
    if (svc_self_path(buf, sizeof buf) != 0)
        return false;
    char *slash = strrchr(buf, '/');
    return slash && svc_fmt(slash + 1, sizeof buf - (size_t)(slash + 1 - buf), "promptd") &&
           svc_executable(buf) && svc_fmt(out, len, "%s", buf);
}

/* The first promptd on PATH, resolved to an absolute path. */
static bool svc_promptd_on_path(char *out, size_t len) {
    char buf[PATH_MAX];
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        char cand[PATH_MAX];
        if (n > 0 && svc_fmt(cand, sizeof cand, "%.*s/promptd", (int)n, p) &&
            svc_executable(cand) && realpath(cand, buf) && svc_fmt(out, len, "%s", buf))
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* The promptd the service will run: --promptd, else the one beside
 * promptctl, else the first on PATH. Always an absolute path. */
static int svc_find_promptd(const struct svc *s, char *out, size_t len) {
    char buf[PATH_MAX];
    if (s->promptd_flag) {
        if (!svc_executable(s->promptd_flag) || !realpath(s->promptd_flag, buf) ||
            !svc_fmt(out, len, "%s", buf)) {
            fprintf(stderr, "promptctl: --promptd %s is not an executable file\n", s->promptd_flag);
            return -1;
        }
        return 0;
    }
    if (svc_promptd_beside(out, len) || svc_promptd_on_path(out, len))
        return 0;
    fprintf(stderr, "promptctl: cannot find promptd beside promptctl or on PATH: name it with "
                    "--promptd PATH\n");
    return -1;
}

/* How to type promptd here, for the start hints: "promptd" when PATH finds
 * the one beside promptctl (or there is none beside), else the one beside
 * promptctl, relative to the working directory when it lies under it (a
 * new user in the source tree has build/promptd and nothing on PATH).
 * False when there is no promptd at all. */
static bool svc_promptd_command(char *out, size_t len) {
    char beside[PATH_MAX], on_path[PATH_MAX], real[PATH_MAX], cwd[PATH_MAX];
    bool has_beside = svc_promptd_beside(beside, sizeof beside);
    bool has_path = svc_promptd_on_path(on_path, sizeof on_path);
    if (!has_beside)
        return has_path && svc_fmt(out, len, "promptd");
    if (has_path && realpath(beside, real) && strcmp(real, on_path) == 0)
        return svc_fmt(out, len, "promptd");
    size_t n = getcwd(cwd, sizeof cwd) ? strlen(cwd) : 0;
    if (n > 1 && strncmp(beside, cwd, n) == 0 && beside[n] == '/') {
        const char *rel = beside + n + 1;
        /* A name without a slash would be looked up on PATH. */
        return svc_fmt(out, len, "%s%s", strchr(rel, '/') ? "" : "./", rel);
    }
    return svc_fmt(out, len, "%s", beside);
}

/* promptd as the user would type it, then the rest of the line. */
static void svc_print_promptd_line(FILE *out, const char *promptd, const char *rest) {
    const char *argv[] = {promptd, NULL};
    svc_print_argv(out, argv);
    fputs(rest, out);
}

/* When promptd cannot be found, the hints say how to get one. */
static void svc_print_how_to_build(FILE *out) {
    fprintf(out, "promptd itself is not installed (not beside promptctl, not on PATH): build it\n"
                 "with `make` in promptd's source tree and run build/promptd, or install both\n"
                 "with `make install`.\n");
}

/* ---- doing things, and saying so -------------------------------------- */

/* Creates dir and its missing parents (the last one with mode). */
static int svc_mkdirs(const struct svc *s, const char *dir, mode_t mode) {
    if (svc_exists(dir))
        return 0;
    if (s->dry_run) {
        printf("would create %s\n", dir);
        return 0;
    }
    char buf[PATH_MAX];
    svc_fmt(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "promptctl: cannot create %s: %s\n", buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST) {
        fprintf(stderr, "promptctl: cannot create %s: %s\n", buf, strerror(errno));
        return -1;
    }
    printf("created %s\n", dir);
    return 0;
}

/* Writes text to path through a temporary file, so a unit is never seen
 * half written. */
static int svc_write(const struct svc *s, const char *path, const char *text) {
    if (s->dry_run) {
        printf("would write %s\n", path);
        return 0;
    }
    char tmp[PATH_MAX];
    if (!svc_fmt(tmp, sizeof tmp, "%s.tmp", path)) {
        fprintf(stderr, "promptctl: %s: path too long\n", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text), done = 0;
    while (fd >= 0 && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    int saved = errno;
    bool ok = fd >= 0 && done == len && fchmod(fd, 0644) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "promptctl: cannot write %s: %s\n", path, strerror(ok ? errno : saved));
        unlink(tmp);
        return -1;
    }
    printf("wrote %s\n", path);
    return 0;
}

static int svc_remove(const struct svc *s, const char *path) {
    if (!svc_exists(path)) {
        printf("%s is not there (nothing to remove)\n", path);
        return 0;
    }
    if (s->dry_run) {
        printf("would remove %s\n", path);
        return 0;
    }
    if (unlink(path) != 0) {
        fprintf(stderr, "promptctl: cannot remove %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("removed %s\n", path);
    return 0;
}

/* Runs argv (argv[0] looked up on PATH) and returns its exit status, 127
 * when it cannot be run. A command that changes something is printed
 * first, and only printed in a dry run; a query runs quietly (its standard
 * error discarded) with its standard output captured into out. */
static int svc_run(const struct svc *s, const char *const argv[], bool changes, char *out,
                   size_t outlen) {
    if (changes) {
        printf(s->dry_run ? "would run: " : "running: ");
        svc_print_argv(stdout, argv);
        putchar('\n');
        if (s->dry_run)
            return 0;
    }
    fflush(stdout);
    fflush(stderr);
    int pipefd[2] = {-1, -1};
    if (out && pipe(pipefd) != 0)
        return 127;
    pid_t pid = fork();
    if (pid < 0) {
        if (out) {
            close(pipefd[0]);
            close(pipefd[1]);
        }
        return 127;
    }
    if (pid == 0) {
        if (out) {
            dup2(pipefd[1], STDOUT_FILENO);
            close(pipefd[0]);
            close(pipefd[1]);
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, STDERR_FILENO);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    size_t got = 0;
    if (out) {
        close(pipefd[1]);
        for (;;) {
            char sink[512];
            char *dst = got + 1 < outlen ? out + got : sink;
            size_t room = got + 1 < outlen ? outlen - got - 1 : sizeof sink;
            ssize_t n = read(pipefd[0], dst, room);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (dst != sink)
                got += (size_t)n;
        }
        close(pipefd[0]);
        out[got] = '\0';
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Whether `systemctl --user` has a manager to talk to: its private socket
 * or the user bus in $XDG_RUNTIME_DIR. */
static bool systemd_user_bus(void) {
    const char *run = getenv("XDG_RUNTIME_DIR");
    char path[PATH_MAX];
    if (!run || !*run)
        return false;
    return (svc_fmt(path, sizeof path, "%s/systemd/private", run) && svc_exists(path)) ||
           (svc_fmt(path, sizeof path, "%s/bus", run) && svc_exists(path));
}

/* Runs a command that changes something; says so when it fails. */
static int svc_do(struct svc *s, const char *const argv[]) {
    int rc = svc_run(s, argv, true, NULL, 0);
    if (rc == 0)
        return 0;
    if (rc == 127)
        fprintf(stderr, "promptctl: cannot run %s (is it installed and on PATH?)\n", argv[0]);
    else
        fprintf(stderr, "promptctl: %s exited with status %d\n", argv[0], rc);
    if (s->manager == SVC_SYSTEMD && !s->hinted && !systemd_user_bus()) {
        s->hinted = true;
        fprintf(stderr, "promptctl: `systemctl --user` needs your user's systemd instance: log "
                        "in normally (not with su), or from a root shell use\n"
                        "    machinectl shell USER@\n");
    }
    return -1;
}

/* ---- talking to the daemon -------------------------------------------- */

/* Asks the daemon at path for its version. True when it answers; version
 * (may be NULL) receives it. Never prints: this is a probe. */
static bool svc_probe(const char *path, char *version, size_t vlen) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return false;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"version\"}\n";
    char buf[4096];
    size_t got = 0;
    uid_t uid;
    /* Not even a version request to another user's socket. */
    bool ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
              sockpath_peer_uid(fd, &uid) == 0 && uid == getuid() &&
              send(fd, req, sizeof req - 1, SVC_SEND_FLAGS) == (ssize_t)(sizeof req - 1);
    while (ok && got < sizeof buf - 1 && !memchr(buf, '\n', got)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n = poll(&p, 1, SVC_PROBE_TIMEOUT_MS) == 1
                        ? recv(fd, buf + got, sizeof buf - 1 - got, 0)
                        : -1;
        if (n <= 0)
            ok = false;
        else
            got += (size_t)n;
    }
    close(fd);
    if (!ok)
        return false;
    buf[got] = '\0';
    json_t *msg = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    const char *v = json_string_value(json_object_get(json_object_get(msg, "result"), "version"));
    if (version)
        snprintf(version, vlen, "%s", v ? v : "?");
    json_decref(msg);
    return msg != NULL;
}

/* After a start: waits for the daemon to answer, and says how it went. */
static int svc_wait_ready(const struct svc *s) {
    if (s->dry_run)
        return 0;
    char version[64];
    struct timespec pause = {0, 100 * 1000 * 1000};
    for (int waited = 0; waited < SVC_START_WAIT_MS; waited += 100) {
        if (svc_probe(s->socket, version, sizeof version)) {
            printf("promptd %s answers on %s\n", version, s->socket);
            return 0;
        }
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "promptctl: promptd does not answer on %s after %d s; its log says why:\n",
            s->socket, SVC_START_WAIT_MS / 1000);
    if (s->manager == SVC_LAUNCHD)
        fprintf(stderr, "    tail %s/promptd.log\n", s->log_dir);
    else
        fprintf(stderr, "    journalctl --user -u promptd\n");
    return -1;
}

/* ---- systemd ---------------------------------------------------------- */

static int systemd_install(struct svc *s, const char *promptd) {
    const struct embedded_file *service = svc_template("promptd.service");
    const struct embedded_file *sock = svc_template("promptd.socket");
    char exec[PATH_MAX * 2], path[PATH_MAX];
    if (!service || !sock || !svc_escape(promptd, false, exec, sizeof exec))
        return -1;
    char *text = svc_replace(service->data, SVC_UNIT_EXEC, exec);
    int rc = svc_mkdirs(s, s->unit_dir, 0755);
    if (rc == 0)
        rc = svc_fmt(path, sizeof path, "%s/promptd.service", s->unit_dir)
                 ? svc_write(s, path, text)
                 : -1;
    if (rc == 0)
        rc = svc_fmt(path, sizeof path, "%s/promptd.socket", s->unit_dir)
                 ? svc_write(s, path, sock->data)
                 : -1;
    free(text);
    if (rc != 0)
        return -1;
    const char *reload[] = {"systemctl", "--user", "daemon-reload", NULL};
    const char *enable[] = {"systemctl", "--user", "enable", "promptd.socket", NULL};
    const char *enable_now[] = {"systemctl", "--user", "enable", "--now", "promptd.socket", NULL};
    if (svc_do(s, reload) != 0 || svc_do(s, s->no_start ? enable : enable_now) != 0)
        return -1;
    if (s->no_start) {
        printf("promptd starts at your next login; now: promptctl service start\n");
        return 0;
    }
    return svc_wait_ready(s);
}

static int systemd_uninstall(struct svc *s) {
    const char *disable[] = {"systemctl",      "--user",          "disable", "--now",
                             "promptd.socket", "promptd.service", NULL};
    const char *reload[] = {"systemctl", "--user", "daemon-reload", NULL};
    int rc = svc_do(s, disable);
    char path[PATH_MAX];
    const char *names[] = {"promptd.service", "promptd.socket"};
    for (size_t i = 0; i < 2; i++)
        if (!svc_fmt(path, sizeof path, "%s/%s", s->unit_dir, names[i]) || svc_remove(s, path))
            rc = -1;
    if (svc_do(s, reload) != 0)
        rc = -1;
    if (svc_unit_installed(s, "promptd.socket", path, sizeof path))
        printf("note: %s is still installed (by make install?): `make uninstall` removes it\n",
               path);
    return rc;
}

static int systemd_start(struct svc *s) {
    char path[PATH_MAX];
    if (!svc_unit_installed(s, "promptd.socket", path, sizeof path)) {
        fprintf(stderr, "promptctl: promptd's systemd units are not installed: run\n"
                        "    promptctl service install\n");
        return -1;
    }
    const char *start[] = {"systemctl",      "--user",          "start",
                           "promptd.socket", "promptd.service", NULL};
    return svc_do(s, start) == 0 ? svc_wait_ready(s) : -1;
}

static int systemd_stop(struct svc *s) {
    const char *stop[] = {"systemctl", "--user", "stop", "promptd.socket", "promptd.service", NULL};
    return svc_do(s, stop);
}

/* One word from `systemctl --user is-active|is-enabled UNIT`. */
static void systemd_query(const struct svc *s, const char *verb, const char *unit, char *out,
                          size_t len) {
    const char *argv[] = {"systemctl", "--user", verb, unit, NULL};
    int rc = svc_run(s, argv, false, out, len);
    out[strcspn(out, "\n")] = '\0';
    if (rc == 127 || !*out)
        snprintf(out, len, "unknown");
}

/* ---- launchd ---------------------------------------------------------- */

/* `launchctl print gui/UID/LABEL`: loaded or not, running with which pid. */
static bool launchd_loaded(const struct svc *s, long *pid) {
    char out[16384];
    const char *argv[] = {"launchctl", "print", s->target, NULL};
    if (svc_run(s, argv, false, out, sizeof out) != 0)
        return false;
    const char *p = strstr(out, "\tpid = ");
    if (!p)
        p = strstr(out, " pid = ");
    *pid = p ? strtol(p + 7, NULL, 10) : 0;
    return true;
}

/* Boots the agent out and waits (up to 5 s) until launchd has let go of
 * it: a bootstrap right after a bootout can fail while it is unloading. */
static int launchd_bootout(struct svc *s) {
    const char *bootout[] = {"launchctl", "bootout", s->target, NULL};
    if (svc_do(s, bootout) != 0)
        return -1;
    struct timespec pause = {0, 100 * 1000 * 1000};
    long pid;
    for (int i = 0; i < 50 && !s->dry_run && launchd_loaded(s, &pid); i++)
        nanosleep(&pause, NULL);
    return 0;
}

static char *launchd_render(const struct svc *s, const char *promptd) {
    const struct embedded_file *tpl = svc_template(SVC_LABEL ".plist.in");
    char bindir[PATH_MAX], esc_promptd[PATH_MAX * 5], esc_bindir[PATH_MAX * 5],
        esc_logs[PATH_MAX * 5];
    svc_fmt(bindir, sizeof bindir, "%s", promptd);
    *strrchr(bindir, '/') = '\0';
    if (!tpl || !svc_escape(promptd, true, esc_promptd, sizeof esc_promptd) ||
        !svc_escape(bindir, true, esc_bindir, sizeof esc_bindir) ||
        !svc_escape(s->log_dir, true, esc_logs, sizeof esc_logs))
        return NULL;
    char *a = svc_replace(tpl->data, "@PROMPTD@", esc_promptd);
    char *b = svc_replace(a, "@BINDIR@", esc_bindir);
    char *c = svc_replace(b, "@LOGDIR@", esc_logs);
    free(a);
    free(b);
    return c;
}

static int launchd_install(struct svc *s, const char *promptd) {
    char *text = launchd_render(s, promptd);
    int rc = text ? 0 : -1;
    if (rc == 0)
        rc = svc_mkdirs(s, s->agents_dir, 0755);
    if (rc == 0)
        rc = svc_mkdirs(s, s->log_dir, 0700);
    if (rc == 0)
        rc = svc_write(s, s->plist, text);
    free(text);
    if (rc != 0)
        return -1;
    long pid;
    const char *enable[] = {"launchctl", "enable", s->target, NULL};
    const char *bootstrap[] = {"launchctl", "bootstrap", s->domain, s->plist, NULL};
    /* A loaded agent keeps its old definition until it is booted out. */
    if (launchd_loaded(s, &pid) && launchd_bootout(s) != 0)
        return -1;
    if (svc_do(s, enable) != 0)
        return -1;
    if (s->no_start) {
        printf("promptd starts at your next login; now: promptctl service start\n");
        return 0;
    }
    if (svc_do(s, bootstrap) != 0)
        return -1;
    return svc_wait_ready(s);
}

static int launchd_uninstall(struct svc *s) {
    long pid;
    int rc = 0;
    if (launchd_loaded(s, &pid))
        rc = launchd_bootout(s);
    if (svc_remove(s, s->plist) != 0)
        rc = -1;
    printf("kept the logs in %s\n", s->log_dir);
    return rc;
}

static int launchd_start(struct svc *s) {
    if (!svc_exists(s->plist)) {
        fprintf(stderr, "promptctl: promptd's launchd agent is not installed: run\n"
                        "    promptctl service install\n");
        return -1;
    }
    long pid;
    const char *kickstart[] = {"launchctl", "kickstart", s->target, NULL};
    const char *enable[] = {"launchctl", "enable", s->target, NULL};
    const char *bootstrap[] = {"launchctl", "bootstrap", s->domain, s->plist, NULL};
    int rc;
    if (launchd_loaded(s, &pid))
        rc = svc_do(s, kickstart);
    else
        rc = svc_do(s, enable) == 0 ? svc_do(s, bootstrap) : -1;
    return rc == 0 ? svc_wait_ready(s) : -1;
}

static int launchd_stop(struct svc *s) {
    long pid;
    if (!launchd_loaded(s, &pid)) {
        printf("the launchd agent %s is not loaded\n", s->target);
        return 0;
    }
    return launchd_bootout(s);
}

/* ---- the subcommands -------------------------------------------------- */

static int svc_no_manager(void) {
    char promptd[PATH_MAX];
    fprintf(stderr, "promptctl: no service manager to install promptd into: systemd is not "
                    "running here.\n");
    if (!svc_promptd_command(promptd, sizeof promptd)) {
        svc_print_how_to_build(stderr);
        return -1;
    }
    fprintf(stderr, "Run promptd from your session's start-up instead, e.g.\n    ");
    svc_print_promptd_line(stderr, promptd, " >>\"$HOME/.promptd.log\" 2>&1 &\n");
    return -1;
}

static int svc_install(struct svc *s) {
    char promptd[PATH_MAX];
    if (s->manager == SVC_NONE)
        return svc_no_manager();
    if (svc_find_promptd(s, promptd, sizeof promptd) != 0)
        return -1;
    printf("installing %s as a %s service\n", promptd,
           s->manager == SVC_SYSTEMD ? "systemd user" : "launchd user");
    return s->manager == SVC_SYSTEMD ? systemd_install(s, promptd) : launchd_install(s, promptd);
}

static int svc_uninstall(struct svc *s) {
    if (s->manager == SVC_NONE)
        return svc_no_manager();
    return s->manager == SVC_SYSTEMD ? systemd_uninstall(s) : launchd_uninstall(s);
}

static int svc_start(struct svc *s) {
    char version[64];
    if (s->manager == SVC_NONE)
        return svc_no_manager();
    if (!s->dry_run && svc_probe(s->socket, version, sizeof version)) {
        printf("promptd %s already answers on %s\n", version, s->socket);
        return 0;
    }
    return s->manager == SVC_SYSTEMD ? systemd_start(s) : launchd_start(s);
}

static int svc_stop(struct svc *s) {
    if (s->manager == SVC_NONE)
        return svc_no_manager();
    int rc = s->manager == SVC_SYSTEMD ? systemd_stop(s) : launchd_stop(s);
    if (rc == 0 && !s->dry_run && svc_probe(s->socket, NULL, 0))
        printf("note: a promptd the service manager did not start still answers on %s\n",
               s->socket);
    return rc;
}

/* Gathers the state as JSON: printed as is with --json, else as lines. */
static json_t *svc_status_json(const struct svc *s, const struct ctl *c) {
    char path[PATH_MAX], version[64];
    json_t *j =
        json_pack("{s:s, s:s}", "manager", svc_manager_names[s->manager], "socket", s->socket);
    bool activatable = false;
    if (s->manager == SVC_SYSTEMD) {
        char enabled[64], sock_state[64], service_state[64];
        bool installed = svc_unit_installed(s, "promptd.socket", path, sizeof path);
        systemd_query(s, "is-enabled", "promptd.socket", enabled, sizeof enabled);
        systemd_query(s, "is-active", "promptd.socket", sock_state, sizeof sock_state);
        systemd_query(s, "is-active", "promptd.service", service_state, sizeof service_state);
        json_object_set_new(j, "installed", json_boolean(installed));
        json_object_set_new(j, "unit", installed ? json_string(path) : json_null());
        json_object_set_new(j, "socket_unit",
                            json_pack("{s:s, s:s}", "enabled", enabled, "active", sock_state));
        json_object_set_new(j, "service_unit", json_pack("{s:s}", "active", service_state));
        /* Connecting would start it: say so instead of probing. */
        activatable = strcmp(sock_state, "active") == 0 && strcmp(service_state, "inactive") == 0;
    } else if (s->manager == SVC_LAUNCHD) {
        long pid = 0;
        bool loaded = launchd_loaded(s, &pid);
        json_object_set_new(j, "installed", json_boolean(svc_exists(s->plist)));
        json_object_set_new(j, "agent", json_string(s->plist));
        json_object_set_new(j, "loaded", json_boolean(loaded));
        json_object_set_new(j, "pid", pid > 0 ? json_integer(pid) : json_null());
        json_object_set_new(j, "log", json_sprintf("%s/promptd.log", s->log_dir));
    }
    bool running = !activatable && svc_probe(s->socket, version, sizeof version);
    json_object_set_new(j, "running", json_boolean(running));
    json_object_set_new(j, "starts_on_demand", json_boolean(activatable));
    json_object_set_new(j, "version", running ? json_string(version) : json_null());
    if (strcmp(c->socket_path, s->socket) != 0)
        json_object_set_new(j, "promptctl_socket", json_string(c->socket_path));
    return j;
}

static void svc_status_print(json_t *j) {
    const char *manager = json_string_value(json_object_get(j, "manager"));
    const char *sock = json_string_value(json_object_get(j, "socket"));
    printf("manager   %s\n", manager);
    if (strcmp(manager, "systemd") == 0) {
        json_t *unit = json_object_get(j, "unit");
        printf("units     %s\n", json_is_string(unit) ? json_string_value(unit) : "not installed");
        printf("socket    promptd.socket %s, %s\n",
               json_string_value(json_object_get(json_object_get(j, "socket_unit"), "enabled")),
               json_string_value(json_object_get(json_object_get(j, "socket_unit"), "active")));
        printf("service   promptd.service %s\n",
               json_string_value(json_object_get(json_object_get(j, "service_unit"), "active")));
    } else if (strcmp(manager, "launchd") == 0) {
        printf("agent     %s (%s)\n", json_string_value(json_object_get(j, "agent")),
               json_is_true(json_object_get(j, "installed")) ? "installed" : "not installed");
        if (json_is_integer(json_object_get(j, "pid")))
            printf("launchd   loaded, running as pid %lld\n",
                   (long long)json_integer_value(json_object_get(j, "pid")));
        else
            printf("launchd   %s\n", json_is_true(json_object_get(j, "loaded"))
                                         ? "loaded, not running"
                                         : "not loaded");
        printf("log       %s\n", json_string_value(json_object_get(j, "log")));
    }
    if (json_is_true(json_object_get(j, "running")))
        printf("daemon    promptd %s answers on %s\n",
               json_string_value(json_object_get(j, "version")), sock);
    else if (json_is_true(json_object_get(j, "starts_on_demand")))
        printf("daemon    not running; systemd starts it on the first request to %s\n", sock);
    else
        printf("daemon    not running (nothing answers on %s)\n", sock);
    const char *service =
        json_string_value(json_object_get(json_object_get(j, "service_unit"), "active"));
    if (service && strcmp(service, "failed") == 0)
        printf("note      promptd.service failed; why: journalctl --user -u promptd\n");
    json_t *other = json_object_get(j, "promptctl_socket");
    if (other)
        printf("note      promptctl itself uses %s (--socket or PROMPTD_SOCKET)\n",
               json_string_value(other));
}

static int svc_status(const struct svc *s, struct ctl *c) {
    json_t *j = svc_status_json(s, c);
    if (!j)
        return CTL_ERR_DAEMON;
    if (c->json)
        ctl_print_json(c, j);
    else
        svc_status_print(j);
    bool up = json_is_true(json_object_get(j, "running")) ||
              json_is_true(json_object_get(j, "starts_on_demand"));
    json_decref(j);
    return up ? CTL_OK : CTL_ERR_NOT_RUNNING;
}

static int svc_usage(void) {
    fprintf(stderr, "usage: promptctl service install|uninstall|start|stop|status [--dry-run] "
                    "[--no-start] [--promptd PATH]\n");
    return CTL_ERR_USAGE;
}

static int cmd_service(struct ctl *c, int argc, char **argv) {
    struct svc s;
    const char *action = NULL;
    if (svc_init(&s) != 0)
        return CTL_ERR_DAEMON;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            s.dry_run = true;
        else if (strcmp(argv[i], "--no-start") == 0)
            s.no_start = true;
        else if (strcmp(argv[i], "--promptd") == 0 && i + 1 < argc)
            s.promptd_flag = argv[++i];
        else if (strncmp(argv[i], "--promptd=", 10) == 0)
            s.promptd_flag = argv[i] + 10;
        else if (argv[i][0] != '-' && !action)
            action = argv[i];
        else
            return svc_usage();
    }
    if (!action)
        return svc_usage();
    int rc;
    if (strcmp(action, "install") == 0)
        rc = svc_install(&s);
    else if (strcmp(action, "uninstall") == 0)
        rc = svc_uninstall(&s);
    else if (strcmp(action, "start") == 0)
        rc = svc_start(&s);
    else if (strcmp(action, "stop") == 0)
        rc = svc_stop(&s);
    else if (strcmp(action, "status") == 0)
        return svc_status(&s, c);
    else
        return svc_usage();
    return rc == 0 ? CTL_OK : CTL_ERR_DAEMON;
}

/* ---- advice when nothing answers -------------------------------------- */

/* Nothing is installed yet: the service, or promptd in this terminal. */
static void svc_print_install_or_run(const char *as, const char *promptd) {
    fprintf(stderr,
            "Install and start it as %s with:\n    promptctl service install\n"
            "or run it in this terminal: ",
            as);
    svc_print_promptd_line(stderr, promptd, "\n");
}

void ctl_service_print_advice(const char *socket_path) {
    struct svc s;
    char path[PATH_MAX], promptd[PATH_MAX];
    long pid;
    fprintf(stderr, "promptctl: promptd is not running (nothing answers on %s).\n", socket_path);
    if (svc_init(&s) != 0)
        return;
    bool found = svc_promptd_command(promptd, sizeof promptd);
    if (strcmp(socket_path, s.socket) != 0) {
        /* A service listens on the default path only. */
        const char *argv[] = {promptd, "--socket", socket_path, NULL};
        fprintf(stderr, "It is not the default socket (%s), where the service listens.\n",
                s.socket);
        if (!found) {
            svc_print_how_to_build(stderr);
            return;
        }
        fprintf(stderr, "Start it there yourself with:\n    ");
        svc_print_argv(stderr, argv);
        fprintf(stderr, " &\n");
        return;
    }
    switch (s.manager) {
    case SVC_SYSTEMD:
        if (svc_unit_installed(&s, "promptd.socket", path, sizeof path)) {
            fprintf(stderr,
                    "Start it with:\n    systemctl --user start promptd.socket\n"
                    "Start it at every login: systemctl --user enable promptd.socket\n"
                    "If it fails to start, its log says why: journalctl --user -u promptd\n");
            return;
        }
        if (!found)
            break;
        svc_print_install_or_run("a systemd user service", promptd);
        return;
    case SVC_LAUNCHD:
        if (svc_exists(s.plist)) {
            if (launchd_loaded(&s, &pid))
                fprintf(stderr, "Start it with:\n    launchctl kickstart %s\n", s.target);
            else
                fprintf(stderr, "Start it with:\n    launchctl bootstrap %s %s\n", s.domain,
                        s.plist);
            fprintf(stderr, "If it fails to start, its log says why: %s/promptd.log\n", s.log_dir);
            return;
        }
        if (!found)
            break;
        svc_print_install_or_run("a launchd agent", promptd);
        return;
    case SVC_NONE:
        if (!found)
            break;
        fprintf(stderr, "Start it in the background with:\n    ");
        svc_print_promptd_line(stderr, promptd,
                               " >>\"$HOME/.promptd.log\" 2>&1 &\n"
                               "(systemd is not running here, so `promptctl service install` "
                               "cannot help)\n");
        return;
    }
    svc_print_how_to_build(stderr);
}

const struct ctl_command ctl_service_commands[] = {
    {"service",
     "promptctl service install|uninstall|start|stop|status [--dry-run] [--no-start]\n"
     "                         [--promptd PATH]\n\n"
     "Runs promptd as your background service: systemd user units on Linux\n"
     "(promptd.socket and promptd.service in ~/.config/systemd/user), a launchd\n"
     "agent on macOS (~/Library/LaunchAgents/" SVC_LABEL ".plist).\n"
     "Every file written and command run is printed.\n\n"
     "  install     write the units (or the agent), enable them and start promptd\n"
     "  uninstall   stop promptd, disable and remove what install wrote\n"
     "  start       start promptd through the service manager\n"
     "  stop        stop it (an enabled service starts again at the next login)\n"
     "  status      installed? running? (exit 0 running or started on demand, 3 not)\n\n"
     "  --dry-run         print what would be done, change nothing\n"
     "  --no-start        install: enable for the next login, do not start now\n"
     "  --promptd PATH    install: the daemon to run (default: the promptd beside\n"
     "                    promptctl, else the first on PATH)\n"
     "  --json            status: print the state as JSON",
     "install, start, stop or inspect promptd as a background service", cmd_service},
    {NULL, NULL, NULL, NULL},
};
