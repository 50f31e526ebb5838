/* Benchmark of the history store (DESIGN.md, "Where it must be fast"):
 *   1. writer rows/s, sustained while a database grows to N rows (default
 *      1M), per segment of 100k rows, median;
 *   2. start-up with that database: store_open alone, and promptd from
 *      exec to a socket that answers, medians of 7 runs;
 *   3. history.search and stats p50/p99, directly on a read connection and
 *      through the daemon's socket.
 * Each figure is printed with its target and the ratio to it, after a
 * description of the machine. Before the writer, its ceilings: the same
 * rows in :memory: databases (FTS5 alone; the table, indexes and rollup
 * without FTS; both), so that the writer's figure is also a ratio to what
 * this machine can do at all with no disk (--writer-only runs them too).
 * Rows are synthetic (a Zipf vocabulary, one year of timestamps) in one of
 * two shapes (--shape):
 *   wide (default, the original figures): ideas of 6-16 words, prompts of
 *        150-260 words (~1.5 KB; the top end of real prompts);
 *   real: ideas of 60-300 characters and prompts of 400-1500 characters,
 *        uniformly, the range real improvements fall in.
 * Usage: bench_store [--rows N] [--dir DIR] [--promptd PATH] [--keep]
 *                    [--shape wide|real] [--writer-only] */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "promptd_limits.h"
#include "store.h"
#include "store_migrate.h"
#include "store_query.h"
#include "store_writer.h"

#define VOCAB      6000
#define POOL       4096 /* distinct texts of each kind, combined at random */
#define SEGMENT    100000
#define RUNS       7
#define QUERIES    400
#define STATS_RUNS 60

/* ---- Deterministic synthetic text -------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rndf(void) {
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static const char *const common_words[] = {
    "the",          "a",
    "to",           "and",
    "of",           "for",
    "in",           "my",
    "with",         "about",
    "write",        "email",
    "plan",         "list",
    "explain",      "summarize",
    "draft",        "create",
    "help",         "review",
    "code",         "team",
    "meeting",      "report",
    "customer",     "project",
    "budget",       "landlord",
    "heater",       "broken",
    "letter",       "python",
    "function",     "bug",
    "database",     "query",
    "slow",         "marketing",
    "campaign",     "product",
    "launch",       "birthday",
    "party",        "recipe",
    "dinner",       "travel",
    "itinerary",    "resume",
    "interview",    "cover",
    "essay",        "research",
    "paper",        "climate",
    "policy",       "contract",
    "negotiation",  "salary",
    "feedback",     "manager",
    "onboarding",   "documentation",
    "tutorial",     "lesson",
    "student",      "teacher",
    "workout",      "diet",
    "sleep",        "habit",
    "garden",       "budgeting",
    "invoice",      "refund",
    "complaint",    "apology",
    "thank",        "invitation",
    "wedding",      "speech",
    "presentation", "slides",
    "roadmap",      "strategy",
    "analysis",     "data",
    "chart",        "spreadsheet",
    "formula",      "security",
    "password",     "privacy",
    "backup",       "server",
    "deploy",       "kubernetes",
    "docker",       "api",
    "design",       "logo",
    "brand",        "story",
    "poem",         "haiku",
    "song",
};
#define N_COMMON (sizeof common_words / sizeof *common_words)

static char vocab[VOCAB][24];
static double zipf_cdf[VOCAB];

static void vocab_init(void) {
    static const char *const syl[] = {"ka",  "lo",  "mi",  "ren", "tas", "vo",  "pel", "dri", "sun",
                                      "bar", "quo", "zen", "fi",  "gra", "hul", "nox", "tri", "ec"};
    const size_t ns = sizeof syl / sizeof *syl;
    for (size_t i = 0; i < VOCAB; i++) {
        if (i < N_COMMON) {
            snprintf(vocab[i], sizeof vocab[i], "%s", common_words[i]);
            continue;
        }
        size_t k = i;
        char w[24] = "";
        for (int s = 0; s < 3 || k; s++, k /= ns)
            strncat(w, syl[k % ns], sizeof w - strlen(w) - 1);
        snprintf(vocab[i], sizeof vocab[i], "%s", w);
    }
    double sum = 0;
    for (size_t i = 0; i < VOCAB; i++)
        sum += 1.0 / (double)(i + 1);
    double acc = 0;
    for (size_t i = 0; i < VOCAB; i++) {
        acc += 1.0 / (double)(i + 1) / sum;
        zipf_cdf[i] = acc;
    }
}

static const char *zipf_word(void) {
    double u = rndf();
    size_t lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return vocab[lo];
}

static char *make_text(int min_words, int max_words) {
    int n = min_words + (int)(rnd() % (uint64_t)(max_words - min_words + 1));
    size_t cap = (size_t)n * 25 + 2, len = 0;
    char *s = malloc(cap);
    if (!s)
        exit(1);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? " " : "", zipf_word());
    return s;
}

/* Words until the text is at least a length drawn uniformly from
 * [min_chars, max_chars] (the last word may overshoot it slightly). */
static char *make_text_chars(size_t min_chars, size_t max_chars) {
    size_t want = min_chars + (size_t)(rnd() % (uint64_t)(max_chars - min_chars + 1));
    size_t cap = want + 32, len = 0;
    char *s = malloc(cap);
    if (!s)
        exit(1);
    s[0] = '\0';
    while (len < want)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", len ? " " : "", zipf_word());
    return s;
}

static char *ideas[POOL], *contexts[POOL], *prompts[POOL], *reasons[POOL];
static json_t *guardrails[POOL];
static bool real_shape; /* --shape real */

static void pools_init(void) {
    for (int i = 0; i < POOL; i++) {
        ideas[i] = real_shape ? make_text_chars(60, 300) : make_text(6, 16);
        contexts[i] = i % 3 ? make_text(0, 30) : strdup("");
        prompts[i] = real_shape ? make_text_chars(400, 1500) : make_text(150, 260);
        reasons[i] = make_text(10, 30);
        guardrails[i] = json_array();
        for (int g = 0; g < 3; g++)
            json_array_append_new(guardrails[i], json_string_nocheck(make_text(4, 9)));
    }
}

static void fill_row(struct history_row *row, int64_t ts) {
    static const char *const providers[] = {"ollama", "ollama",    "ollama",
                                            "openai", "anthropic", "builtin"};
    static const char *const models[] = {"llama3.2:3b", "qwen2.5:7b",       "llama3.1:8b",
                                         "gpt-4o-mini", "claude-3-5-haiku", "builtin"};
    int p = (int)(rnd() % 6);
    *row = (struct history_row){
        .original_idea = ideas[rnd() % POOL],
        .context = contexts[rnd() % POOL],
        .improved_prompt = prompts[rnd() % POOL],
        .role = "Senior technical writer",
        .directive = "Write the requested document clearly and completely.",
        .framework = rnd() % 2 ? "CO-STAR" : "RISEN",
        .guardrails = guardrails[rnd() % POOL],
        .reasoning = reasons[rnd() % POOL],
        .has_confidence = rnd() % 10 != 0,
        .confidence = 0.4 + 0.6 * rndf(),
        .latency_ms = (long long)(200 + 30000 * pow(rndf(), 3)),
        .backend = rnd() % 5 ? "zero-shot" : "few-shot",
        .provider = providers[p],
        .model = models[p],
        .client = rnd() % 2 ? "raycast" : "promptctl",
        .parent_id = -1,
        .prompt_tokens = 300 + (long long)(rnd() % 400),
        .completion_tokens = 200 + (long long)(rnd() % 600),
        .timestamp = ts,
    };
}

/* ---- Statistics ---------------------------------------------------------- */

static double now_ms(void) {
    return (double)uv_hrtime() / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v and returns its p-quantile (nearest rank). */
static double quantile(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = (int)ceil(p * n) - 1;
    return v[k < 0 ? 0 : k];
}

static void report(const char *what, double value, const char *unit, double target,
                   bool higher_is_better) {
    double ratio = higher_is_better ? value / target : target / value;
    printf("  %-44s %12.2f %-6s target %s %-10.0f %5.2fx %s\n", what, value, unit,
           higher_is_better ? ">=" : "<", target, ratio, ratio >= 1.0 ? "ok" : "MISSED");
}

/* ---- Machine ----------------------------------------------------------- */

static void describe_machine(const char *dir) {
    struct utsname u;
    char line[512], cpu[256] = "?";
    long mem_kb = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            snprintf(cpu, sizeof cpu, "%.200s", c ? c + 2 : line);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
    f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %ld kB", &mem_kb) == 1)
            break;
    if (f)
        fclose(f);
    uname(&u);
    printf("machine: %s %s %s; cpu: %s x %ld; memory: %.1f GiB\n", u.sysname, u.release, u.machine,
           cpu, sysconf(_SC_NPROCESSORS_ONLN), (double)mem_kb / 1048576.0);
    printf("sqlite %s, libuv %s, database directory %s\n", sqlite3_libversion(),
           uv_version_string(), dir);
}

/* ---- The store in this process ------------------------------------------ */

struct bench {
    uv_loop_t loop;
    struct daemon d;
    struct config cfg;
    struct store *s;
    char dir[256], db[320], sock[320];
    const char *promptd;
    long rows;
};

static int bench_open(struct bench *b, double *ms) {
    char err[512];
    double t0 = now_ms();
    if (uv_loop_init(&b->loop) != 0)
        return -1;
    b->d.loop = &b->loop;
    b->d.cfg = &b->cfg;
    int rc = store_open(&b->d, &b->cfg, &b->s, err, sizeof err);
    if (ms)
        *ms = now_ms() - t0;
    if (rc != 0)
        fprintf(stderr, "store_open: %s\n", err);
    return rc;
}

static void bench_close(struct bench *b) {
    store_close(b->s);
    b->s = NULL;
    while (uv_loop_alive(&b->loop))
        uv_run(&b->loop, UV_RUN_ONCE);
    uv_loop_close(&b->loop);
}

static void pump(struct bench *b) {
    uv_run(&b->loop, UV_RUN_NOWAIT);
}

/* Records b->rows rows as fast as the queue takes them; returns the median
 * of the per-segment rates (rows/s). */
static double fill(struct bench *b) {
    double rates[64];
    int n_rates = 0;
    int64_t now = (int64_t)time(NULL), span = 365 * 86400;
    double seg_start = now_ms();
    uint64_t seg_committed = 0;
    struct store_counters c;
    for (long i = 0; i < b->rows; i++) {
        struct history_row row;
        fill_row(&row, now - span + (int64_t)((double)span * (double)i / (double)b->rows));
        /* Keep the queue below its bound: a full queue would drop rows.
         * The writer is the bottleneck here, as intended. */
        while (i % 256 == 0) {
            store_get_counters(b->s, &c);
            if (c.pending + 512 < LIMIT_STORE_QUEUE_ROWS)
                break;
            pump(b);
            usleep(500);
        }
        if (store_record(b->s, &row) == 0) {
            fprintf(stderr, "a row was dropped\n");
            exit(1);
        }
        if (i % 1000 == 0) {
            store_get_counters(b->s, &c);
            if (c.committed - seg_committed >= SEGMENT && n_rates < 64) {
                double t = now_ms();
                rates[n_rates++] = (double)(c.committed - seg_committed) / ((t - seg_start) / 1e3);
                seg_start = t;
                seg_committed = c.committed;
            }
        }
    }
    do {
        pump(b);
        usleep(1000);
        store_get_counters(b->s, &c);
    } while (c.pending > 0);
    if (c.committed > seg_committed && n_rates < 64 && c.committed - seg_committed > SEGMENT / 2)
        rates[n_rates++] = (double)(c.committed - seg_committed) / ((now_ms() - seg_start) / 1e3);
    if (c.dropped)
        printf("  (dropped %llu rows)\n", (unsigned long long)c.dropped);
    printf("  per-%dk-row segment rates (rows/s):", SEGMENT / 1000);
    for (int i = 0; i < n_rates; i++)
        printf(" %.0f", rates[i]);
    printf("\n");
    return n_rates ? quantile(rates, n_rates, 0.5) : 0;
}

/* ---- Ceilings: the same rows in :memory: --------------------------------- */

/* Why: the writer's figure alone cannot say whether a target is out of
 * reach of any writer on this machine or only of this one. These are the
 * costs no writer can avoid, measured in the same run on the same rows
 * with no disk at all: the writer's figure is read as a ratio to them. */

#define WRITER_TARGET_ROWS_S 50000 /* DESIGN.md */
/* ~49 transactions: a stable median, and a few seconds per ceiling. */
#define CEILING_MAX_ROWS 200000

/* One row as the writer binds it (item_from_row in daemon/store/store_writer.c): the
 * guardrails as compact JSON, the timestamp as text, confidence clamped. */
struct ceiling_row {
    struct history_row row;
    char *guardrails;
    char ts[STORE_TS_LEN];
};

struct ceiling_rows {
    struct ceiling_row *v;
    long n;
};

/* A database under measurement. Rows go in through `insert` (bound by
 * `bind`), then, when `move` is set, the batch is moved with it and the
 * staging table emptied, exactly like the writer's insert_txn. */
struct ceiling_db {
    sqlite3 *db;
    sqlite3_stmt *insert;
    sqlite3_stmt *move;
    void (*bind)(sqlite3_stmt *st, int64_t id, const struct ceiling_row *r);
};

enum { CEILING_FTS5, CEILING_TABLE, CEILING_BOTH, N_CEILINGS };

static const char *const ceiling_labels[N_CEILINGS] = {
    "fts5 alone, in memory",
    "table, indexes and rollup, no FTS, in memory",
    "both in memory (the full schema)",
};

struct ceilings {
    double rate[N_CEILINGS]; /* rows/s, median over the transactions */
    long rows;
    int batches;
};

static void die_sqlite(sqlite3 *db, const char *what) {
    fprintf(stderr, "ceilings: %s: %s\n", what, db ? sqlite3_errmsg(db) : "out of memory");
    exit(1);
}

static void exec_or_die(sqlite3 *db, const char *sql) {
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die_sqlite(db, sql);
}

/* The rows the writer will record first: the generator's state is saved
 * and restored around them, so the writer then draws these same rows
 * (same pools, same shape, same timestamps over a year of `total`). */
static struct ceiling_rows ceiling_rows_make(long n, long total) {
    struct ceiling_rows rows = {.v = calloc((size_t)n, sizeof *rows.v), .n = n};
    uint64_t saved = rng_state;
    int64_t now = (int64_t)time(NULL), span = 365 * 86400;
    if (!rows.v)
        exit(1);
    for (long i = 0; i < n; i++) {
        struct ceiling_row *r = &rows.v[i];
        fill_row(&r->row, now - span + (int64_t)((double)span * (double)i / (double)total));
        r->guardrails = json_dumps(r->row.guardrails, JSON_COMPACT);
        store_time_format(r->row.timestamp, r->ts);
        r->row.confidence = fmin(1.0, fmax(0.0, r->row.confidence));
    }
    rng_state = saved;
    return rows;
}

static void ceiling_rows_free(struct ceiling_rows *rows) {
    for (long i = 0; i < rows->n; i++)
        free(rows->v[i].guardrails);
    free(rows->v);
}

/* The writer's pragmas that still mean something without a file
 * (writer_pragmas and STORE_NEW_PAGE_SIZE in daemon/store/store_writer.h). */
static sqlite3 *memory_db_open(void) {
    sqlite3 *db = NULL;
    char sql[64];
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        die_sqlite(db, "open :memory:");
    snprintf(sql, sizeof sql, "PRAGMA page_size = %d", STORE_NEW_PAGE_SIZE);
    exec_or_die(db, sql);
    exec_or_die(db, "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; "
                    "PRAGMA temp_store = MEMORY");
    return db;
}

static sqlite3_stmt *prepare_or_die(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        die_sqlite(db, sql);
    return st;
}

static void bind_fts5(sqlite3_stmt *st, int64_t id, const struct ceiling_row *r) {
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, r->row.original_idea, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->row.context, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->row.improved_prompt, -1, SQLITE_STATIC);
}

/* The FTS5 table of schema/004_fts.sql and 006_fts_hashsize.sql: the same
 * columns, tokenizer and hashsize, but contentless (content = '') instead
 * of external content: like the project's table it stores only the index
 * (the text lives elsewhere), and it needs no prompt_history to read from.
 * Rows go in one INSERT each: without triggers no statement savepoint is
 * opened, so FTS5 still writes one segment per transaction. */
static struct ceiling_db fts5_alone_db(void) {
    sqlite3 *db = memory_db_open();
    exec_or_die(db, "CREATE VIRTUAL TABLE prompt_history_fts USING fts5("
                    "original_idea, context, improved_prompt, content = '', "
                    "tokenize = 'porter unicode61 remove_diacritics 2')");
    exec_or_die(db, "INSERT INTO prompt_history_fts(prompt_history_fts, rank) "
                    "VALUES ('hashsize', 67108864)");
    return (struct ceiling_db){
        .db = db,
        .insert = prepare_or_die(db, "INSERT INTO prompt_history_fts(rowid, original_idea, "
                                     "context, improved_prompt) VALUES (?1, ?2, ?3, ?4)"),
        .bind = bind_fts5,
    };
}

/* insert_one in daemon/store/store_writer.c, from a row shaped as item_from_row shapes
 * it: the same values, the same NULLs. */
static void bind_history_row(sqlite3_stmt *st, int64_t id, const struct ceiling_row *r) {
    const struct history_row *h = &r->row;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, r->ts, -1, SQLITE_STATIC);
    const char *text[] = {h->original_idea, h->context,   h->improved_prompt, h->role,
                          h->directive,     h->framework, r->guardrails,      h->backend};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_text(st, 3 + i, text[i], -1, SQLITE_STATIC);
    if (h->has_confidence)
        sqlite3_bind_double(st, 11, h->confidence);
    else
        sqlite3_bind_null(st, 11);
    sqlite3_bind_text(st, 12, h->reasoning, -1, SQLITE_STATIC);
    if (h->latency_ms >= 0)
        sqlite3_bind_int64(st, 13, h->latency_ms);
    else
        sqlite3_bind_null(st, 13);
    sqlite3_bind_text(st, 14, h->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, h->provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 16, h->client, -1, SQLITE_STATIC);
    sqlite3_bind_null(st, 17); /* fill_row makes no refinements */
    sqlite3_bind_int64(st, 18, h->prompt_tokens);
    sqlite3_bind_int64(st, 19, h->completion_tokens);
}

/* The project's schema, made by the daemon's own migrations, optionally
 * without the FTS table and its triggers. Rows go in the writer's way:
 * staged in a TEMP table, moved with one INSERT ... SELECT per batch
 * (one statement per row would make FTS5 write one segment per row). */
static struct ceiling_db schema_db(bool with_fts) {
    sqlite3 *db = memory_db_open();
    char err[512];
    if (store_migrate_run(db, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "ceilings: %s\n", err);
        exit(1);
    }
    if (!with_fts)
        exec_or_die(db, "DROP TRIGGER prompt_history_fts_ai; DROP TRIGGER prompt_history_fts_ad; "
                        "DROP TRIGGER prompt_history_fts_au; DROP TABLE prompt_history_fts;");
    exec_or_die(db, STORE_STAGE_TABLE_SQL);
    return (struct ceiling_db){
        .db = db,
        .insert = prepare_or_die(db, STORE_STAGE_SQL),
        .move = prepare_or_die(db, STORE_MOVE_SQL),
        .bind = bind_history_row,
    };
}

static void step_or_die(sqlite3 *db, sqlite3_stmt *st) {
    if (sqlite3_step(st) != SQLITE_DONE)
        die_sqlite(db, sqlite3_sql(st));
    sqlite3_reset(st);
}

/* One transaction of rows [first, first + n): insert_txn's steps. */
static void ceiling_insert_batch(struct ceiling_db *c, const struct ceiling_rows *rows, long first,
                                 long n) {
    exec_or_die(c->db, "BEGIN IMMEDIATE");
    for (long i = first; i < first + n; i++) {
        c->bind(c->insert, i + 1, &rows->v[i]);
        step_or_die(c->db, c->insert);
    }
    if (c->move) {
        step_or_die(c->db, c->move);
        exec_or_die(c->db, "DELETE FROM temp.promptd_batch");
    }
    exec_or_die(c->db, "COMMIT");
}

/* Inserts every row, one batch per transaction; returns the median of the
 * per-transaction rates (rows/s) and closes the database. */
static double ceiling_measure(struct ceiling_db c, const struct ceiling_rows *rows) {
    int n_batches = (int)((rows->n + STORE_BATCH_ROWS - 1) / STORE_BATCH_ROWS);
    double *rates = malloc((size_t)n_batches * sizeof *rates);
    if (!rates)
        exit(1);
    for (int k = 0; k < n_batches; k++) {
        long first = (long)k * STORE_BATCH_ROWS;
        long n = rows->n - first < STORE_BATCH_ROWS ? rows->n - first : STORE_BATCH_ROWS;
        double t0 = now_ms();
        ceiling_insert_batch(&c, rows, first, n);
        rates[k] = (double)n / ((now_ms() - t0) / 1e3);
    }
    double median = quantile(rates, n_batches, 0.5);
    free(rates);
    sqlite3_finalize(c.insert);
    sqlite3_finalize(c.move);
    sqlite3_close(c.db);
    return median;
}

/* Measures and prints the three ceilings on the writer's first rows. */
static struct ceilings ceilings_measure(long total_rows) {
    struct ceilings c = {.rows = total_rows < CEILING_MAX_ROWS ? total_rows : CEILING_MAX_ROWS};
    struct ceiling_rows rows = ceiling_rows_make(c.rows, total_rows);
    c.batches = (int)((c.rows + STORE_BATCH_ROWS - 1) / STORE_BATCH_ROWS);
    printf("ceilings (the writer's first %ld rows in :memory:, no disk; median of %d "
           "transactions of %d rows):\n",
           c.rows, c.batches, STORE_BATCH_ROWS);
    c.rate[CEILING_FTS5] = ceiling_measure(fts5_alone_db(), &rows);
    report(ceiling_labels[CEILING_FTS5], c.rate[CEILING_FTS5], "rows/s", WRITER_TARGET_ROWS_S,
           true);
    c.rate[CEILING_TABLE] = ceiling_measure(schema_db(false), &rows);
    report(ceiling_labels[CEILING_TABLE], c.rate[CEILING_TABLE], "rows/s", WRITER_TARGET_ROWS_S,
           true);
    c.rate[CEILING_BOTH] = ceiling_measure(schema_db(true), &rows);
    report(ceiling_labels[CEILING_BOTH], c.rate[CEILING_BOTH], "rows/s", WRITER_TARGET_ROWS_S,
           true);
    ceiling_rows_free(&rows);
    return c;
}

/* The writer's figure as a fraction of each ceiling. */
static void ceilings_compare(const struct ceilings *c, double writer_rate) {
    for (int k = 0; k < N_CEILINGS; k++)
        printf("  writer / %-44s %5.2fx\n", ceiling_labels[k], writer_rate / c->rate[k]);
}

/* Says, from the numbers, whether FTS5 alone already rules the target out. */
static void ceilings_conclude(const struct ceilings *c) {
    double fts5 = c->rate[CEILING_FTS5];
    if (fts5 < WRITER_TARGET_ROWS_S)
        printf("ceiling: fts5 alone indexes %.0f rows/s here, below the %d target: no writer "
               "that keeps FTS5 in step can reach it on this machine\n",
               fts5, WRITER_TARGET_ROWS_S);
    else
        printf("ceiling: fts5 alone indexes %.0f rows/s here, above the %d target (the full "
               "schema in memory: %.0f rows/s): FTS5 alone does not rule the target out on "
               "this machine\n",
               fts5, WRITER_TARGET_ROWS_S, c->rate[CEILING_BOTH]);
}

/* ---- Queries ----------------------------------------------------------- */

/* A query mix: 40% one mid-frequency word, 30% two words, 20% a rare
 * word, 10% a very common word. */
static void make_query(char *out, size_t outlen, int i) {
    int k = i % 10;
    size_t r1, r2;
    if (k < 4) {
        r1 = 30 + rnd() % 470;
        snprintf(out, outlen, "%s", vocab[r1]);
    } else if (k < 7) {
        r1 = 10 + rnd() % 1990;
        r2 = 10 + rnd() % 1990;
        snprintf(out, outlen, "%s %s", vocab[r1], vocab[r2]);
    } else if (k < 9) {
        r1 = 2000 + rnd() % (VOCAB - 2000);
        snprintf(out, outlen, "%s", vocab[r1]);
    } else {
        r1 = rnd() % 10;
        snprintf(out, outlen, "%s", vocab[r1]);
    }
}

static void bench_direct_queries(struct bench *b) {
    sqlite3 *db = NULL;
    char msg[512], q[128];
    static double t[QUERIES], cls[4][QUERIES];
    int n_cls[4] = {0};
    static const char *const cls_names[4] = {"one mid-frequency word", "two words", "one rare word",
                                             "one very common word"};
    if (sqlite3_open_v2(b->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        store_q_prepare_db(db) != SQLITE_OK)
        return;
    for (int i = 0; i < QUERIES; i++) {
        json_t *r = NULL;
        make_query(q, sizeof q, i);
        double t0 = now_ms();
        if (store_q_search(db, q, 20, &r, msg, sizeof msg) != 0)
            fprintf(stderr, "search %s: %s\n", q, msg);
        t[i] = now_ms() - t0;
        int k = i % 10 < 4 ? 0 : i % 10 < 7 ? 1 : i % 10 < 9 ? 2 : 3;
        cls[k][n_cls[k]++] = t[i];
        json_decref(r);
    }
    printf("history.search, direct (store_q_search, limit 20, %d queries):\n", QUERIES);
    report("p50", quantile(t, QUERIES, 0.5), "ms", 20, false);
    report("p99", quantile(t, QUERIES, 0.99), "ms", 20, false);
    for (int k = 0; k < 4; k++)
        printf("  (%s: p50 %.2f ms, max %.2f ms)\n", cls_names[k], quantile(cls[k], n_cls[k], 0.5),
               quantile(cls[k], n_cls[k], 1.0));

    static const char *const labels[] = {"stats (all time)", "stats since 7 days ago",
                                         "stats since 180 days ago, mid-day"};
    for (int k = 0; k < 3; k++) {
        char since[STORE_TS_LEN];
        int64_t now = (int64_t)time(NULL);
        if (k == 1)
            store_time_format((now - 7 * 86400) / 86400 * 86400, since);
        if (k == 2)
            store_time_format(now - 180 * 86400 + 43210, since);
        for (int i = 0; i < STATS_RUNS; i++) {
            json_t *r = NULL;
            double t0 = now_ms();
            if (store_q_stats(db, k ? since : NULL, now, &r, msg, sizeof msg) != 0)
                fprintf(stderr, "stats: %s\n", msg);
            t[i] = now_ms() - t0;
            json_decref(r);
        }
        printf("%s, direct (%d runs):\n", labels[k], STATS_RUNS);
        report("p50", quantile(t, STATS_RUNS, 0.5), "ms", 100, false);
        report("p99", quantile(t, STATS_RUNS, 0.99), "ms", 100, false);
    }
    sqlite3_close(db);
}

/* ---- promptd as a process -------------------------------------------------- */

static int connect_to(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static pid_t spawn_promptd(struct bench *b) {
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        dup2(devnull, 1);
        setenv("LLM_PROVIDER", "builtin", 1);
        setenv("SQLITE_AUTO_CLEANUP", "false", 1); /* keep the year of rows */
        setenv("XDG_CONFIG_HOME", b->dir, 1);
        execl(b->promptd, b->promptd, "--socket", b->sock, "--db", b->db, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_promptd(pid_t pid) {
    int status;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
}

/* Sends one request line and reads one response line. */
static int rpc(int fd, const char *line, char **buf, size_t *cap) {
    size_t len = strlen(line), got = 0;
    if (write(fd, line, len) != (ssize_t)len)
        return -1;
    for (;;) {
        if (got + 65536 > *cap) {
            *cap = (got + 65536) * 2;
            *buf = realloc(*buf, *cap);
            if (!*buf)
                return -1;
        }
        ssize_t n = read(fd, *buf + got, *cap - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        if ((*buf)[got - 1] == '\n')
            return 0;
    }
}

static void bench_daemon(struct bench *b) {
    double t[RUNS];
    if (!b->promptd)
        return;
    for (int i = 0; i < RUNS; i++) {
        double t0 = now_ms();
        pid_t pid = spawn_promptd(b);
        int fd = -1;
        while ((fd = connect_to(b->sock)) < 0 && now_ms() - t0 < 10000)
            usleep(100);
        t[i] = now_ms() - t0;
        if (fd >= 0)
            close(fd);
        stop_promptd(pid);
    }
    printf("promptd start-up, exec to a connectable socket (%d runs):\n", RUNS);
    report("median", quantile(t, RUNS, 0.5), "ms", 50, false);
    report("max", quantile(t, RUNS, 1.0), "ms", 50, false);

    pid_t pid = spawn_promptd(b);
    int fd = -1;
    double t0 = now_ms();
    while ((fd = connect_to(b->sock)) < 0 && now_ms() - t0 < 10000)
        usleep(1000);
    if (fd < 0) {
        stop_promptd(pid);
        return;
    }
    char *buf = NULL, q[128], line[512];
    size_t cap = 0;
    static double s[QUERIES];
    for (int i = 0; i < QUERIES; i++) {
        make_query(q, sizeof q, i);
        snprintf(line, sizeof line,
                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"history.search\",\"params\":"
                 "{\"query\":\"%s\"}}\n",
                 i, q);
        double t1 = now_ms();
        if (rpc(fd, line, &buf, &cap) != 0)
            break;
        s[i] = now_ms() - t1;
    }
    printf("history.search through promptd's socket (%d queries, 20 rows each):\n", QUERIES);
    report("p50", quantile(s, QUERIES, 0.5), "ms", 20, false);
    report("p99", quantile(s, QUERIES, 0.99), "ms", 20, false);
    for (int i = 0; i < STATS_RUNS; i++) {
        double t1 = now_ms();
        if (rpc(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"stats\"}\n", &buf, &cap) != 0)
            break;
        s[i] = now_ms() - t1;
    }
    printf("stats through promptd's socket (%d runs):\n", STATS_RUNS);
    report("p50", quantile(s, STATS_RUNS, 0.5), "ms", 100, false);
    report("p99", quantile(s, STATS_RUNS, 0.99), "ms", 100, false);
    free(buf);
    close(fd);
    stop_promptd(pid);
}

/* ---- Main ---------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr, "usage: bench_store [--rows N] [--dir DIR] [--promptd PATH] [--keep] "
                    "[--shape wide|real] [--writer-only]\n");
    exit(2);
}

int main(int argc, char **argv) {
    static struct bench b;
    bool keep = false, writer_only = false;
    b.rows = 1000000;
    snprintf(b.dir, sizeof b.dir, "/tmp/promptd-bench-store-XXXXXX");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            b.rows = atol(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            snprintf(b.dir, sizeof b.dir, "%s", argv[++i]);
        else if (strcmp(argv[i], "--promptd") == 0 && i + 1 < argc)
            b.promptd = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else if (strcmp(argv[i], "--writer-only") == 0)
            writer_only = true;
        else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc &&
                 (strcmp(argv[i + 1], "wide") == 0 || strcmp(argv[i + 1], "real") == 0))
            real_shape = strcmp(argv[++i], "real") == 0;
        else
            usage();
    }
    if (b.rows < SEGMENT)
        usage();
    if (strstr(b.dir, "XXXXXX") ? !mkdtemp(b.dir) : mkdir(b.dir, 0700) != 0 && errno != EEXIST) {
        perror(b.dir);
        return 1;
    }
    snprintf(b.db, sizeof b.db, "%s/history.db", b.dir);
    snprintf(b.sock, sizeof b.sock, "%s/s.sock", b.dir);
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows when redirected too */
    log_set_level(LOG_WARN);
    describe_machine(b.dir);
    vocab_init();
    pools_init();
    printf("rows: %s shape\n", real_shape ? "real (ideas 60-300 chars, prompts 400-1500 chars)"
                                          : "wide (ideas 6-16 words, prompts 150-260 words)");
    {
        double li = 0, lp = 0;
        for (int i = 0; i < POOL; i++) {
            li += (double)strlen(ideas[i]);
            lp += (double)strlen(prompts[i]);
        }
        printf("  mean idea %.0f chars, mean prompt %.0f chars\n", li / POOL, lp / POOL);
    }
    b.cfg = (struct config){.sqlite_enabled = true,
                            .sqlite_db_path = b.db,
                            .sqlite_wal_mode = true,
                            .sqlite_retention_days = 0};

    /* Before the writer, so they print first and are freed before it runs. */
    struct ceilings ceil = ceilings_measure(b.rows);

    struct stat st;
    bool reuse = stat(b.db, &st) == 0 && st.st_size > 0;
    if (bench_open(&b, NULL) != 0)
        return 1;
    if (!reuse) {
        printf("writer: %ld rows into a fresh database (one year of timestamps):\n", b.rows);
        double rate = fill(&b);
        report("rows/s, median of segments", rate, "rows/s", WRITER_TARGET_ROWS_S, true);
        ceilings_compare(&ceil, rate);
    } else {
        printf("writer: reusing %s (delete it to measure the writer)\n", b.db);
    }
    ceilings_conclude(&ceil);
    bench_close(&b);
    stat(b.db, &st);
    printf("database: %.1f MiB\n", (double)st.st_size / 1048576.0);
    if (writer_only)
        goto done;

    double t[RUNS];
    for (int i = 0; i < RUNS; i++) {
        if (bench_open(&b, &t[i]) != 0)
            return 1;
        bench_close(&b);
    }
    printf("store_open on %ld rows (%d runs):\n", b.rows, RUNS);
    report("median", quantile(t, RUNS, 0.5), "ms", 50, false);
    report("max", quantile(t, RUNS, 1.0), "ms", 50, false);

    bench_direct_queries(&b);
    bench_daemon(&b);
done:
    if (!keep) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", b.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", b.dir);
    } else {
        printf("kept %s\n", b.dir);
    }
    return 0;
}
