/* promptctl's history commands: history, show, search, rm, stats, cleanup,
 * export and db (backup, restore, check). On a terminal they print tables
 * and summaries; piped, history and search print tab-separated lines; with
 * --json they print the daemon's result as it is. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_text.h"
#include "promptctl.h"
#include "xalloc.h"

/* history.list's page size limit: export pages through with it. */
#define CTL_PAGE_MAX 500
/* Table width when stdout is not a terminal we can ask. */
#define CTL_DEFAULT_WIDTH 100
/* The daemon's snippet marks («, ») and what a terminal shows instead. */
#define CTL_MARK_OPEN  "\xC2\xAB"
#define CTL_MARK_CLOSE "\xC2\xBB"
#define CTL_BOLD       "\x1b[1m"
#define CTL_PLAIN      "\x1b[0m"

/* ---- Small helpers ------------------------------------------------------ */

static const char *jstr(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int term_width(const struct ctl *c) {
    struct winsize ws;
    if (c->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    return CTL_DEFAULT_WIDTH;
}

/* Prints s in exactly `width` columns: newlines and tabs become spaces,
 * other control characters their visible escapes (ctl_text.h), a longer
 * text is cut (at a character) and ends with "~". Counts code points,
 * which is right for the text people type into a launcher. */
static void print_cell(const char *s, int width, bool pad) {
    int col = 0;
    size_t len = strlen(s);
    for (size_t i = 0; i < len && col < width;) {
        char esc[TEXT_ESC_MAX];
        size_t used, n = text_escape_char(s + i, len - i, TEXT_KEEP_LINES, esc, &used);
        bool space = s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
        int w = n && !space ? (int)n : 1;
        if (col + w > width || (col + w == width && i + used < len)) {
            putchar('~');
            col++;
            break;
        }
        if (space)
            putchar(' ');
        else
            fwrite(n ? esc : s + i, 1, n ? n : used, stdout);
        i += used;
        col += w;
    }
    for (; pad && col < width; col++)
        putchar(' ');
}

/* "2026-11-23T19:20:58Z" -> "2026-11-23 19:20". */
static void short_time(const char *iso, char *out, size_t outlen) {
    snprintf(out, outlen, "%.10s %.5s", iso, strlen(iso) >= 16 ? iso + 11 : "");
}

static void fmt_latency(json_t *v, char *out, size_t outlen) {
    if (!json_is_integer(v))
        snprintf(out, outlen, "-");
    else if (json_integer_value(v) < 10000)
        snprintf(out, outlen, "%lldms", (long long)json_integer_value(v));
    else
        snprintf(out, outlen, "%.1fs", (double)json_integer_value(v) / 1000.0);
}

static void fmt_real(json_t *v, char *out, size_t outlen) {
    if (json_is_number(v))
        snprintf(out, outlen, "%.2f", json_number_value(v));
    else
        snprintf(out, outlen, "-");
}

static bool parse_long(const char *text, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const char *usage, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "promptctl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    va_end(ap);
    return CTL_ERR_USAGE;
}

/* A path as the daemon needs it: absolute (its working directory is not
 * ours). */
static bool absolute_path(const char *in, char *out, size_t outlen) {
    char cwd[PATH_MAX];
    if (in[0] == '/')
        return (size_t)snprintf(out, outlen, "%s", in) < outlen;
    if (!getcwd(cwd, sizeof cwd))
        return false;
    return (size_t)snprintf(out, outlen, "%s/%s", cwd, in) < outlen;
}

static int call(struct ctl *c, const char *method, json_t *params, json_t **result) {
    return ctl_call(c, method, params, result, NULL, NULL, NULL);
}

/* ---- Ctrl-C on a command that changes the history ---------------------- */

/* Exit status after a cancel, as shells report a SIGINT death. */
#define CTL_EXIT_INTERRUPTED 130

/* Killing promptctl would cancel the request without telling what the
 * daemon did (past its point of no return a restore or delete completes).
 * So the first Ctrl-C sends `cancel` and promptctl waits for the answer,
 * which says what really happened; a second Ctrl-C ends it at once. A
 * signal handler takes no argument: these are the only mutable globals of
 * this file, set before the handler is installed. */
static volatile sig_atomic_t ctl_interrupted;
static int ctl_cancel_fd = -1;
static char ctl_cancel_line[128];
static size_t ctl_cancel_len;

static void ctl_on_sigint(int sig) {
    static const char note[] = "promptctl: cancelling; waiting for the daemon to say whether "
                               "anything changed (Ctrl-C again stops waiting)\n";
    int saved = errno;
    if (!ctl_interrupted) {
        ctl_interrupted = 1;
        /* Only async-signal-safe calls; a failure leaves the request to
         * finish, and its answer is reported as usual. */
        if (write(STDERR_FILENO, note, sizeof note - 1) < 0 ||
            send(ctl_cancel_fd, ctl_cancel_line, ctl_cancel_len, MSG_NOSIGNAL) < 0)
            ctl_cancel_len = 0;
    }
    signal(sig, SIG_DFL);
    errno = saved;
}

/* ctl_call's on_sent: the request is on the wire; arm Ctrl-C for it. */
static void ctl_arm_cancel(struct ctl *c, long id) {
    int n = snprintf(ctl_cancel_line, sizeof ctl_cancel_line,
                     "{\"jsonrpc\":\"2.0\",\"id\":\"promptctl-cancel\",\"method\":\"cancel\","
                     "\"params\":{\"request_id\":%ld}}\n",
                     id);
    ctl_cancel_len = n > 0 && (size_t)n < sizeof ctl_cancel_line ? (size_t)n : 0;
    ctl_cancel_fd = c->fd;
    ctl_interrupted = 0;
    struct sigaction sa = {.sa_handler = ctl_on_sigint};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (ctl_cancel_len == 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return; /* Ctrl-C keeps its default: promptctl ends */
}

/* call() for a request that changes the history, with Ctrl-C cancelling
 * it as described above. what names it for the messages ("restore"). */
static int call_cancellable(struct ctl *c, const char *method, json_t *params, json_t **result,
                            const char *what) {
    json_t *err = NULL;
    c->on_sent = ctl_arm_cancel;
    int rc = ctl_call(c, method, params, result, &err, NULL, NULL);
    c->on_sent = NULL;
    signal(SIGINT, SIG_DFL);
    if (ctl_interrupted && rc == CTL_OK)
        fprintf(stderr,
                "promptctl: Ctrl-C came too late to cancel: the %s was already under way and "
                "has completed\n",
                what);
    if (ctl_interrupted && err && json_integer_value(json_object_get(err, "code")) == -32800) {
        fprintf(stderr, "promptctl: %s cancelled: the history is unchanged\n", what);
        rc = CTL_EXIT_INTERRUPTED;
    }
    json_decref(err);
    return rc;
}

/* ---- history ------------------------------------------------------------ */

static const char history_usage[] =
    "promptctl history [-n N] [--offset N] [--backend B] [--provider P] [--since DATE]\n"
    "                         [--until DATE] [--min-quality Q] [--json]\n"
    "  -n, --limit N     rows to show, 1 to 500 (default 20), newest first\n"
    "  --offset N        skip the N newest matching rows\n"
    "  --backend B       zero-shot or few-shot\n"
    "  --provider P      ollama, openai, anthropic, gemini or builtin\n"
    "  --since DATE      from this ISO-8601 date or date-time (UTC) on\n"
    "  --until DATE      up to this date (a date includes the whole day)\n"
    "  --min-quality Q   only rows whose quality score is at least Q (0 to 1)";

/* One row of the history or search table. */
static void print_row_line(const struct ctl *c, json_t *row, const char *last, int width) {
    char when[32], lat[16], q[16];
    short_time(jstr(row, "timestamp"), when, sizeof when);
    fmt_latency(json_object_get(row, "latency_ms"), lat, sizeof lat);
    fmt_real(json_object_get(row, "quality_score"), q, sizeof q);
    const char *provider =
        json_is_string(json_object_get(row, "provider")) ? jstr(row, "provider") : "-";
    if (!c->tty) {
        ctl_text_printf(stdout, "%lld\t%s\t%s\t%s\t%s\t%s\t",
                        (long long)json_integer_value(json_object_get(row, "id")),
                        jstr(row, "timestamp"), jstr(row, "backend"), provider, q, lat);
        print_cell(last, INT_MAX, false);
        putchar('\n');
        return;
    }
    ctl_text_printf(stdout, "%6lld  %-16s  %-9s  %-4s  %6s  ",
                    (long long)json_integer_value(json_object_get(row, "id")), when, provider, q,
                    lat);
    print_cell(last, width - 50 > 10 ? width - 50 : 10, false);
    putchar('\n');
}

static int history_args(int argc, char **argv, json_t *params) {
    enum { O_OFFSET = 1, O_BACKEND, O_PROVIDER, O_SINCE, O_UNTIL, O_MINQ };
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, 'n'},
        {"offset", required_argument, NULL, O_OFFSET},
        {"backend", required_argument, NULL, O_BACKEND},
        {"provider", required_argument, NULL, O_PROVIDER},
        {"since", required_argument, NULL, O_SINCE},
        {"until", required_argument, NULL, O_UNTIL},
        {"min-quality", required_argument, NULL, O_MINQ},
        {NULL, 0, NULL, 0},
    };
    static const char *const keys[] = {NULL, "offset", "backend", "provider", "since", "until"};
    int opt;
    long n;
    ctl_getopt_reset();
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
        if (opt == 'n' || opt == O_OFFSET) {
            if (!parse_long(optarg, opt == 'n' ? 1 : 0, opt == 'n' ? CTL_PAGE_MAX : LONG_MAX, &n))
                return usage_error(history_usage, "bad number \"%s\"", optarg);
            json_object_set_new(params, opt == 'n' ? "limit" : "offset", json_integer(n));
        } else if (opt == O_MINQ) {
            char *end = NULL;
            double q = strtod(optarg, &end);
            if (end == optarg || *end || q < 0 || q > 1)
                return usage_error(history_usage, "--min-quality must be 0 to 1, not \"%s\"",
                                   optarg);
            json_object_set_new(params, "min_quality", json_real(q));
        } else if (opt >= O_BACKEND && opt <= O_UNTIL) {
            json_object_set_new(params, keys[opt], json_string(optarg));
        } else {
            return usage_error(history_usage, "unknown or incomplete option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error(history_usage, "unexpected argument \"%s\"", argv[optind]);
    return CTL_OK;
}

/* Why a page of the history is empty, in a sentence. */
static void history_why_empty(json_t *params, json_t *r, char *out, size_t len) {
    static const char *const filters[] = {"backend", "provider", "since", "until", "min_quality"};
    long long total = (long long)json_integer_value(json_object_get(r, "total"));
    bool filtered = false;
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        filtered |= json_object_get(params, filters[i]) != NULL;
    if (total > 0)
        snprintf(out, len, "no entries past --offset %lld (%lld %s)",
                 (long long)json_integer_value(json_object_get(params, "offset")), total,
                 filtered ? "match" : "in all");
    else if (filtered)
        snprintf(out, len, "no entries match these filters");
    else
        snprintf(out, len, "no history yet: improve something with `promptctl improve IDEA`");
}

/* An empty page says so on a terminal instead of an empty table. Piped,
 * the rows are data: stdout stays empty (a script counts zero lines), and
 * the sentence goes to stderr only when a person watches it. --json
 * prints the result as it is. */
static void history_say_empty(const struct ctl *c, json_t *params, json_t *r) {
    char why[160];
    history_why_empty(params, r, why, sizeof why);
    if (c->tty)
        printf("%s\n", why);
    else if (isatty(STDERR_FILENO))
        fprintf(stderr, "promptctl: %s\n", why);
}

static int cmd_history(struct ctl *c, int argc, char **argv) {
    json_t *params = json_object(), *r = NULL;
    int rc = history_args(argc, argv, params);
    if (rc != CTL_OK) {
        json_decref(params);
        return rc;
    }
    json_int_t offset = json_integer_value(json_object_get(params, "offset"));
    json_incref(params); /* call() takes one reference; the empty-page sentence reads it */
    if ((rc = call(c, "history.list", params, &r)) != CTL_OK) {
        json_decref(params);
        return rc;
    }
    if (c->json) {
        ctl_print_json(c, r);
    } else if (json_array_size(json_object_get(r, "items")) == 0) {
        history_say_empty(c, params, r);
    } else {
        json_t *items = json_object_get(r, "items"), *row;
        size_t i;
        int width = term_width(c);
        if (c->tty)
            printf("%6s  %-16s  %-9s  %-4s  %6s  %s\n", "ID", "WHEN (UTC)", "PROVIDER", "Q",
                   "LATENCY", "IDEA");
        json_array_foreach(items, i, row) print_row_line(c, row, jstr(row, "original_idea"), width);
        if (c->tty && json_is_true(json_object_get(r, "truncated")))
            printf("(%zu of %lld: the page stopped at the daemon's size bound; --offset %lld "
                   "shows the next)\n",
                   json_array_size(items),
                   (long long)json_integer_value(json_object_get(r, "total")),
                   (long long)(offset + (json_int_t)json_array_size(items)));
        else if (c->tty)
            printf("(%zu of %lld)\n", json_array_size(items),
                   (long long)json_integer_value(json_object_get(r, "total")));
    }
    json_decref(params);
    json_decref(r);
    return CTL_OK;
}

/* ---- show ---------------------------------------------------------------- */

static void print_field(const char *label, const char *value) {
    if (value && *value)
        ctl_text_printf(stdout, "%-11s %s\n", label, value);
}

static void print_entry(json_t *r) {
    char lat[16], q[16], conf[16];
    fmt_latency(json_object_get(r, "latency_ms"), lat, sizeof lat);
    fmt_real(json_object_get(r, "quality_score"), q, sizeof q);
    fmt_real(json_object_get(r, "confidence"), conf, sizeof conf);
    ctl_text_printf(stdout, "#%lld  %s\n", (long long)json_integer_value(json_object_get(r, "id")),
                    jstr(r, "timestamp"));
    ctl_text_printf(stdout, "%-11s %s, %s, %s, %s\n", "backend", jstr(r, "backend"),
                    json_is_string(json_object_get(r, "provider")) ? jstr(r, "provider") : "-",
                    json_is_string(json_object_get(r, "model")) ? jstr(r, "model") : "-", lat);
    printf("%-11s %s (confidence %s)\n", "quality", q, conf);
    if (json_is_integer(json_object_get(r, "parent_id")))
        printf("%-11s #%lld\n", "refines",
               (long long)json_integer_value(json_object_get(r, "parent_id")));
    print_field("client", jstr(r, "client"));
    print_field("idea", jstr(r, "original_idea"));
    print_field("context", jstr(r, "context"));
    print_field("role", jstr(r, "role"));
    print_field("directive", jstr(r, "directive"));
    print_field("framework", jstr(r, "framework"));
    json_t *g, *guardrails = json_object_get(r, "guardrails");
    size_t i;
    json_array_foreach(guardrails, i, g) {
        ctl_text_printf(stdout, "%-11s - %s\n", i ? "" : "guardrails",
                        json_string_value(g) ? json_string_value(g) : "");
    }
    print_field("reasoning", jstr(r, "reasoning"));
    ctl_text_printf(stdout, "\n%s\n", jstr(r, "improved_prompt"));
}

static const char show_usage[] = "promptctl show ID [--json]\n"
                                 "  ID   a history entry's id (see `promptctl history`)";

static int cmd_show(struct ctl *c, int argc, char **argv) {
    long id;
    json_t *r = NULL;
    if (argc != 2 || !parse_long(argv[1], 1, LONG_MAX, &id))
        return usage_error(show_usage, "%s",
                           argc == 2 ? "the id must be a positive number" : "give one id");
    int rc = call(c, "history.get", json_pack("{s:I}", "id", (json_int_t)id), &r);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(c, r);
    else
        print_entry(r);
    json_decref(r);
    return CTL_OK;
}

/* ---- search -------------------------------------------------------------- */

static const char search_usage[] =
    "promptctl search QUERY... [-n N] [--json]\n"
    "  QUERY      words to find in ideas, contexts and prompts (any text: quotes,\n"
    "             hyphens and AND are plain words; put -- before a word that\n"
    "             starts with -); best matches first\n"
    "  -n N       results to show, 1 to 500 (default 20)";

/* The snippet with its marks made bold on a terminal (the daemon's marks
 * when piped; they take no column), cut to width on a terminal. Newlines
 * and tabs become spaces, other control characters their visible escapes
 * (ctl_text.h): the marks are promptd's, the rest is stored text. */
static void print_snippet(const struct ctl *c, const char *snippet, int width) {
    size_t len = strlen(snippet);
    int col = 0;
    for (size_t i = 0; i < len;) {
        bool open = strncmp(snippet + i, CTL_MARK_OPEN, 2) == 0;
        if (open || strncmp(snippet + i, CTL_MARK_CLOSE, 2) == 0) {
            fputs(c->tty ? (open ? CTL_BOLD : CTL_PLAIN) : (open ? CTL_MARK_OPEN : CTL_MARK_CLOSE),
                  stdout);
            i += 2;
            continue;
        }
        char esc[TEXT_ESC_MAX];
        size_t used, n = text_escape_char(snippet + i, len - i, TEXT_KEEP_LINES, esc, &used);
        bool space = snippet[i] == '\n' || snippet[i] == '\t';
        if (c->tty && (col += n && !space ? (int)n : 1) > width)
            break;
        if (space)
            putchar(' ');
        else
            fwrite(n ? esc : snippet + i, 1, n ? n : used, stdout);
        i += used;
    }
    if (c->tty)
        fputs(CTL_PLAIN, stdout);
}

static int cmd_search(struct ctl *c, int argc, char **argv) {
    long limit = 20;
    int opt;
    ctl_getopt_reset();
    opterr = 0;
    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt != 'n' || !parse_long(optarg, 1, CTL_PAGE_MAX, &limit))
            return usage_error(search_usage, "bad option or number near \"%s\"", argv[optind - 1]);
    }
    if (optind >= argc)
        return usage_error(search_usage, "%s", "give the words to search for");
    size_t n = 0;
    for (int i = optind; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *query = xcalloc(1, n + 1);
    for (int i = optind; i < argc; i++) {
        if (i > optind)
            strcat(query, " ");
        strcat(query, argv[i]);
    }
    json_t *r = NULL;
    int rc = call(c, "history.search",
                  json_pack("{s:s,s:I}", "query", query, "limit", (json_int_t)limit), &r);
    free(query);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(c, r);
    } else {
        json_t *items = json_object_get(r, "items"), *row;
        size_t i;
        int width = term_width(c);
        if (c->tty && json_array_size(items) == 0)
            printf("no match\n");
        json_array_foreach(items, i, row) {
            char when[32];
            short_time(jstr(row, "timestamp"), when, sizeof when);
            if (c->tty)
                ctl_text_printf(stdout, "%6lld  %-16s  ",
                                (long long)json_integer_value(json_object_get(row, "id")), when);
            else
                ctl_text_printf(stdout, "%lld\t%s\t",
                                (long long)json_integer_value(json_object_get(row, "id")),
                                jstr(row, "timestamp"));
            print_snippet(c, jstr(row, "snippet"), width - 26);
            putchar('\n');
        }
    }
    json_decref(r);
    return CTL_OK;
}

/* ---- rm, cleanup ------------------------------------------------------------ */

/* The answer of history.delete and cleanup: {"deleted": N}. Takes r. */
static int print_deleted(struct ctl *c, int rc, json_t *r) {
    if (rc == CTL_OK) {
        if (c->json)
            ctl_print_json(c, r);
        else
            printf("deleted %lld\n", (long long)json_integer_value(json_object_get(r, "deleted")));
    }
    json_decref(r);
    return rc;
}

static const char rm_usage[] =
    "promptctl rm ID | --before DATE | --all --yes\n"
    "  ID             delete one entry\n"
    "  --before DATE  delete every entry older than this ISO-8601 date or date-time\n"
    "  --all --yes    delete the whole history (--yes confirms)";

static int cmd_rm(struct ctl *c, int argc, char **argv) {
    json_t *params = NULL, *r = NULL;
    long id;
    if (argc == 2 && parse_long(argv[1], 1, LONG_MAX, &id))
        params = json_pack("{s:I}", "id", (json_int_t)id);
    else if (argc == 3 && strcmp(argv[1], "--before") == 0)
        params = json_pack("{s:s}", "before", argv[2]);
    else if (argc == 3 && ((strcmp(argv[1], "--all") == 0 && strcmp(argv[2], "--yes") == 0) ||
                           (strcmp(argv[1], "--yes") == 0 && strcmp(argv[2], "--all") == 0)))
        params = json_pack("{s:b}", "all", 1);
    else if (argc == 2 && strcmp(argv[1], "--all") == 0)
        return usage_error(rm_usage, "%s", "--all deletes the whole history: add --yes to confirm");
    else
        return usage_error(rm_usage, "%s", "give an id, --before DATE, or --all --yes");
    int rc = call_cancellable(c, "history.delete", params, &r, "delete");
    return print_deleted(c, rc, r);
}

static const char cleanup_usage[] = "promptctl cleanup --days N [--json]\n"
                                    "  --days N   delete the entries older than N days (0: all)";

static int cmd_cleanup(struct ctl *c, int argc, char **argv) {
    long days;
    json_t *r = NULL;
    if (argc != 3 || strcmp(argv[1], "--days") != 0 || !parse_long(argv[2], 0, 36500, &days))
        return usage_error(cleanup_usage, "%s", "give --days N (0 to 36500)");
    int rc =
        call_cancellable(c, "cleanup", json_pack("{s:I}", "days", (json_int_t)days), &r, "cleanup");
    return print_deleted(c, rc, r);
}

/* ---- stats ------------------------------------------------------------------ */

static const char stats_usage[] = "promptctl stats [--since DATE] [--json]\n"
                                  "  --since DATE   only entries from this ISO-8601 date on";

static void print_groups(const char *title, json_t *groups) {
    const char *name;
    json_t *g;
    if (json_object_size(groups) == 0)
        return;
    printf("\n%-22s %8s %8s %10s\n", title, "COUNT", "QUALITY", "LATENCY");
    json_object_foreach(groups, name, g) {
        char q[16], lat[16];
        fmt_real(json_object_get(g, "average_quality"), q, sizeof q);
        fmt_latency(json_object_get(g, "average_latency_ms"), lat, sizeof lat);
        ctl_text_printf(stdout, "%-22.22s %8lld %8s %10s\n", name,
                        (long long)json_integer_value(json_object_get(g, "count")), q, lat);
    }
}

static int cmd_stats(struct ctl *c, int argc, char **argv) {
    json_t *params = json_object(), *r = NULL;
    if (argc == 3 && strcmp(argv[1], "--since") == 0) {
        json_object_set_new(params, "since", json_string(argv[2]));
    } else if (argc != 1) {
        json_decref(params);
        return usage_error(stats_usage, "%s", "the only option is --since DATE");
    }
    int rc = call(c, "stats", params, &r);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(c, r);
    } else {
        char conf[16], q[16], avg[16], p50[16], p95[16];
        fmt_real(json_object_get(r, "average_confidence"), conf, sizeof conf);
        fmt_real(json_object_get(r, "average_quality"), q, sizeof q);
        fmt_latency(json_object_get(r, "average_latency_ms"), avg, sizeof avg);
        fmt_latency(json_object_get(r, "p50_latency_ms"), p50, sizeof p50);
        fmt_latency(json_object_get(r, "p95_latency_ms"), p95, sizeof p95);
        ctl_text_printf(stdout, "entries       %lld%s%s\n",
                        (long long)json_integer_value(json_object_get(r, "total_count")),
                        json_is_string(json_object_get(r, "since")) ? " since " : "",
                        jstr(r, "since"));
        printf("last 24 h     %lld\n",
               (long long)json_integer_value(json_object_get(r, "last_24h")));
        printf("quality       %s average\nconfidence    %s average\n", q, conf);
        printf("latency       %s average, %s median, %s p95\n", avg, p50, p95);
        print_groups("BACKEND", json_object_get(r, "by_backend"));
        print_groups("PROVIDER", json_object_get(r, "by_provider"));
        print_groups("MODEL", json_object_get(r, "by_model"));
    }
    json_decref(r);
    return CTL_OK;
}

/* ---- export ------------------------------------------------------------------ */

static const char export_usage[] =
    "promptctl export [--format jsonl|csv] [--output FILE]\n"
    "  --format F     jsonl (default: one JSON object per line, as history.get shows\n"
    "                 it) or csv (a header line, guardrails and tokens as JSON text;\n"
    "                 a cell starting with = + - @ tab or CR gets a leading ')\n"
    "  --output FILE  write to FILE (0600: the history is private), which appears\n"
    "                 only once the export is complete; default standard output";

static const char *const csv_columns[] = {
    "id",         "timestamp",     "original_idea", "context",    "improved_prompt",
    "role",       "directive",     "framework",     "guardrails", "reasoning",
    "confidence", "quality_score", "backend",       "provider",   "model",
    "latency_ms", "tokens",        "parent_id",     "client",
};
#define N_CSV_COLUMNS (sizeof csv_columns / sizeof *csv_columns)

/* A cell a spreadsheet would take for a formula (OWASP's list for CSV
 * injection): =, +, - and @ start one, a leading tab or CR is one too,
 * and some spreadsheets skip leading white space and read the full-width
 * forms (U+FF1D =, U+FF0B +, U+FF0D -, U+FF20 @) as the ASCII ones before
 * they look. */
static bool csv_formula_like(const char *s) {
    if (!s || !s[0])
        return false;
    if (strchr("=+-@\t\r", s[0]))
        return true;
    s += strspn(s, " \t\r\n");
    static const char *const full_width[] = {"\xef\xbc\x9d", "\xef\xbc\x8b", "\xef\xbc\x8d",
                                             "\xef\xbc\xa0"};
    for (size_t i = 0; i < sizeof full_width / sizeof full_width[0]; i++)
        if (strncmp(s, full_width[i], 3) == 0)
            return true;
    return s[0] && strchr("=+-@", s[0]) != NULL;
}

/* RFC 4180: every field quoted, quotes doubled; a formula-like cell gets
 * a leading single quote (OWASP), so it opens as the text it is. */
static void csv_field(FILE *out, json_t *v) {
    char *text = NULL;
    const char *s = "";
    if (json_is_string(v))
        s = json_string_value(v);
    else if (v && !json_is_null(v))
        s = text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    fputc('"', out);
    if (csv_formula_like(s))
        fputc('\'', out);
    for (; s && *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
    free(text);
}

static void export_csv_cells(FILE *out, json_t *row) {
    for (size_t k = 0; k < N_CSV_COLUMNS; k++) {
        if (k)
            fputc(',', out);
        csv_field(out, json_object_get(row, csv_columns[k]));
    }
}

/* One row as a JSON line or a CSV record. On a terminal (an export read
 * by a person) the stored text's control characters are shown as visible
 * escapes, as everywhere promptctl prints; into a file or a pipe it is
 * exact. */
static int export_row(FILE *out, json_t *row, bool csv) {
    bool tty = isatty(fileno(out));
    if (!csv) {
        char *line = json_dumps(row, JSON_COMPACT);
        if (!line)
            return -1;
        if (tty)
            ctl_text_write_json(out, line);
        else
            fputs(line, out);
        fputc('\n', out);
        free(line);
        return 0;
    }
    if (!tty) {
        export_csv_cells(out, row);
        fputs("\r\n", out);
        return 0;
    }
    char *record = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&record, &len);
    if (!mem)
        return -1;
    export_csv_cells(mem, row);
    fclose(mem);
    ctl_text_write(out, record, len);
    fputc('\n', out);
    free(record);
    return 0;
}

/* An export to a file is written to a temporary file next to it (same
 * directory, so the rename is atomic) and renamed over it only once
 * complete: a failed or interrupted export leaves no truncated file and
 * an earlier export as it was. The handler's copy of the name lets
 * Ctrl-C remove the temporary file too. */
static char export_temp[PATH_MAX];
static volatile sig_atomic_t export_temp_armed;
static const int export_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void export_on_signal(int sig) {
    if (export_temp_armed)
        unlink(export_temp); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig); /* delivered on return: promptctl ends as the signal says */
}

static void export_arm(bool on) {
    export_temp_armed = on;
    for (size_t i = 0; i < sizeof export_signals / sizeof *export_signals; i++)
        signal(export_signals[i], on ? export_on_signal : SIG_DFL);
}

/* The file an export replaces: path itself, or what its symbolic link
 * names (the link stays). Refuses what is not a regular file (a device,
 * a FIFO, a directory), which a rename would replace instead of writing
 * into. */
static bool export_target(const char *path, char *out, size_t outlen) {
    struct stat st;
    char resolved[PATH_MAX];
    const char *target = path;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        if (!realpath(path, resolved)) {
            fprintf(stderr, "promptctl: cannot follow the link %s: %s\n", path, strerror(errno));
            return false;
        }
        target = resolved;
    }
    if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr,
                "promptctl: %s is not a regular file; export writes a whole file or nothing: "
                "give a file path, or leave out --output to write to standard output.\n",
                path);
        return false;
    }
    if ((size_t)snprintf(out, outlen, "%s", target) >= outlen) {
        fprintf(stderr, "promptctl: the path %s is too long.\n", path);
        return false;
    }
    return true;
}

/* Opens the temporary file for target (0600, as mkstemp makes it), or
 * NULL after saying why. */
static FILE *export_open_temp(const char *target) {
    char dir_buf[PATH_MAX], base_buf[PATH_MAX];
    snprintf(dir_buf, sizeof dir_buf, "%s", target);
    snprintf(base_buf, sizeof base_buf, "%s", target);
    const char *dir = dirname(dir_buf), *base = basename(base_buf);
    if ((size_t)snprintf(export_temp, sizeof export_temp, "%s/.%s.partial-XXXXXX", dir, base) >=
        sizeof export_temp) {
        fprintf(stderr, "promptctl: the path %s is too long.\n", target);
        return NULL;
    }
    int fd = mkostemp(export_temp, O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "promptctl: cannot write in %s: %s\n", dir, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(export_temp);
        }
        return NULL;
    }
    export_arm(true);
    return f;
}

/* Ends an export to a file: renames the temporary file over target when
 * ok and every byte reached the disk, else removes it. Returns ok. */
static bool export_finish(FILE *f, const char *target, bool ok) {
    if (ok && (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)) {
        fprintf(stderr, "promptctl: writing the export failed: %s\n", strerror(errno));
        ok = false;
    }
    if (fclose(f) != 0 && ok) {
        fprintf(stderr, "promptctl: writing the export failed: %s\n", strerror(errno));
        ok = false;
    }
    if (ok && rename(export_temp, target) != 0) {
        fprintf(stderr, "promptctl: cannot replace %s: %s\n", target, strerror(errno));
        ok = false;
    }
    if (!ok)
        unlink(export_temp);
    export_arm(false);
    return ok;
}

/* Pages through history.list newest first, up to the moment the export
 * began: rows recorded meanwhile do not shift the pages. A page may stop
 * early at the daemon's size bound ("truncated"): the next one starts
 * after the rows received. */
static int export_pages(struct ctl *c, FILE *out, bool csv, long *rows) {
    char until[32];
    time_t now = time(NULL) + 1;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (long offset = 0;;) {
        json_t *r = NULL, *row;
        int rc = call(c, "history.list",
                      json_pack("{s:i,s:I,s:s}", "limit", CTL_PAGE_MAX, "offset",
                                (json_int_t)offset, "until", until),
                      &r);
        if (rc != CTL_OK)
            return rc;
        json_t *items = json_object_get(r, "items");
        size_t i, n = json_array_size(items);
        json_array_foreach(items, i, row) {
            if (export_row(out, row, csv) != 0) {
                json_decref(r);
                return CTL_ERR_DAEMON;
            }
        }
        *rows += (long)n;
        offset += (long)n;
        bool more = n == CTL_PAGE_MAX || json_is_true(json_object_get(r, "truncated"));
        json_decref(r);
        if (!more || n == 0)
            return CTL_OK;
    }
}

static int cmd_export(struct ctl *c, int argc, char **argv) {
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    const char *format = "jsonl", *output = NULL;
    int opt;
    ctl_getopt_reset();
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "f:o:", longopts, NULL)) != -1) {
        if (opt == 'f')
            format = optarg;
        else if (opt == 'o')
            output = optarg;
        else
            return usage_error(export_usage, "unknown or incomplete option %s", argv[optind - 1]);
    }
    bool csv = strcmp(format, "csv") == 0;
    if (!csv && strcmp(format, "jsonl") != 0)
        return usage_error(export_usage, "unknown format \"%s\"", format);
    if (optind < argc)
        return usage_error(export_usage, "unexpected argument \"%s\"", argv[optind]);
    char target[PATH_MAX];
    if (output && !export_target(output, target, sizeof target))
        return CTL_ERR_USAGE;
    int rc = ctl_connect(c);
    if (rc != CTL_OK)
        return rc;
    FILE *out = output ? export_open_temp(target) : stdout;
    if (!out)
        return CTL_ERR_DAEMON;
    if (csv) {
        for (size_t k = 0; k < N_CSV_COLUMNS; k++)
            fprintf(out, "%s%s", k ? "," : "", csv_columns[k]);
        fputs(isatty(fileno(out)) ? "\n" : "\r\n", out); /* RFC 4180; a terminal's own */
    }
    long rows = 0;
    rc = export_pages(c, out, csv, &rows);
    if (output && !export_finish(out, target, rc == CTL_OK)) {
        rc = rc == CTL_OK ? CTL_ERR_DAEMON : rc;
    } else if (!output && fflush(out) != 0) {
        fprintf(stderr, "promptctl: writing the export failed: %s\n", strerror(errno));
        rc = CTL_ERR_DAEMON;
    }
    if (rc == CTL_OK && output)
        fprintf(stderr, "exported %ld entries to %s\n", rows, output);
    return rc;
}

/* ---- db ------------------------------------------------------------------------ */

static const char db_usage[] =
    "promptctl db backup [--force] FILE | db restore FILE | db check [--json]\n"
    "  backup FILE    a consistent copy of the history, taken while it is in use\n"
    "                 (created 0600); FILE must not exist yet\n"
    "  --force        replace FILE when it is an older backup (a SQLite database)\n"
    "  restore FILE   replace the whole history with FILE (a backup, or an older\n"
    "                 promptd's or the Python backend's database), after checking it;\n"
    "                 only its rows are taken, never its triggers, views or tables\n"
    "  check          SQLite's quick_check of the live database\n"
    "Ctrl-C during backup or restore cancels it if it has not yet begun to change\n"
    "anything, and says which happened";

/* db backup|restore [--force] FILE: the params, or NULL after a usage error
 * (rc set). */
static json_t *db_file_params(int argc, char **argv, bool backup, int *rc) {
    char path[PATH_MAX];
    /* --force goes before or after FILE. */
    bool force =
        backup && argc == 4 && (strcmp(argv[2], "--force") == 0 || strcmp(argv[3], "--force") == 0);
    const char *file = argc == 3                         ? argv[2]
                       : !force                          ? NULL
                       : strcmp(argv[2], "--force") == 0 ? argv[3]
                                                         : argv[2];
    if (!file || file[0] == '-') {
        *rc = usage_error(db_usage, "%s", "give backup [--force] FILE, restore FILE or check");
        return NULL;
    }
    if (!absolute_path(file, path, sizeof path)) {
        *rc = usage_error(db_usage, "cannot make \"%s\" an absolute path", file);
        return NULL;
    }
    json_t *p = json_pack("{s:s}", "path", path);
    if (p && force)
        json_object_set_new(p, "overwrite", json_true());
    return p;
}

static int cmd_db(struct ctl *c, int argc, char **argv) {
    json_t *r = NULL;
    const char *sub = argc >= 2 ? argv[1] : "";
    bool backup = strcmp(sub, "backup") == 0, restore = strcmp(sub, "restore") == 0;
    int rc = CTL_OK;
    if (!backup && !restore && (argc != 2 || strcmp(sub, "check") != 0))
        return usage_error(db_usage, "%s", "give backup [--force] FILE, restore FILE or check");
    json_t *params = backup || restore ? db_file_params(argc, argv, backup, &rc) : NULL;
    if ((backup || restore) && !params)
        return rc;
    rc = backup    ? call_cancellable(c, "db.backup", params, &r, "backup")
         : restore ? call_cancellable(c, "db.restore", params, &r, "restore")
                   : call(c, "db.check", NULL, &r);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(c, r);
    } else if (backup) {
        ctl_text_printf(stdout, "backed up %lld entries to %s (%lld bytes)\n",
                        (long long)json_integer_value(json_object_get(r, "rows")), jstr(r, "path"),
                        (long long)json_integer_value(json_object_get(r, "bytes")));
    } else if (restore) {
        printf("restored %lld entries\n",
               (long long)json_integer_value(json_object_get(r, "rows")));
    } else {
        ctl_text_printf(stdout, "%s: %s\n",
                        json_is_true(json_object_get(r, "ok")) ? "ok" : "PROBLEM",
                        jstr(r, "detail"));
        rc = json_is_true(json_object_get(r, "ok")) ? CTL_OK : CTL_ERR_DAEMON;
    }
    json_decref(r);
    return rc;
}

const struct ctl_command ctl_history_commands[] = {
    {"history", history_usage, "list recent improvements (newest first)", cmd_history},
    {"show", show_usage, "show one history entry in full", cmd_show},
    {"search", search_usage, "full-text search of the history", cmd_search},
    {"rm", rm_usage, "delete history entries", cmd_rm},
    {"stats", stats_usage, "quality, latency and counts over the history", cmd_stats},
    {"cleanup", cleanup_usage, "delete entries older than N days", cmd_cleanup},
    {"export", export_usage, "write the whole history as JSON lines or CSV", cmd_export},
    {"db", db_usage, "back up, restore or check the history database", cmd_db},
    {NULL, NULL, NULL, NULL},
};
