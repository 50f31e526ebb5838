/* fewshot: both trainset formats, every error naming the file, the line or
 * index and the field, the limits one step either side, path resolution,
 * selection order and determinism, rendering, and the selection's cost
 * over LIMIT_FEWSHOT_EXAMPLES examples (printed, never asserted). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fewshot.h"
#include "llm_result.h"
#include "promptd_limits.h"
#include "unit.h"

/* A growable string for building trainsets. */
struct buf {
    char *s;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s)
            abort();
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) {
    buf_add(b, s, strlen(s));
}

static void buf_repeat(struct buf *b, char c, size_t n) {
    for (size_t i = 0; i < n; i++)
        buf_add(b, &c, 1);
}

static int parse(const char *text, struct fewshot_set **s, char *err, size_t errlen) {
    err[0] = '\0';
    return fewshot_parse(text, strlen(text), "t.jsonl", s, err, errlen);
}

/* Parses text that must fail; the error must hold every needle. */
static int fails_with(const char *text, const char *name, const char *const *needles) {
    struct fewshot_set *s = NULL;
    char err[512];
    if (fewshot_parse(text, strlen(text), name, &s, err, sizeof err) == 0 || s) {
        printf("  parsed, expected an error: %s\n", text);
        fewshot_free(s);
        return 0;
    }
    for (; *needles; needles++)
        if (!strstr(err, *needles)) {
            printf("  error \"%s\" lacks \"%s\"\n", err, *needles);
            return 0;
        }
    return 1;
}

#define FAILS_WITH(text, name, ...)                                                                \
    CHECK(fails_with((text), (name), (const char *const[]){__VA_ARGS__, NULL}))

static void test_json_lines_with_comments_aliases_and_extra_keys(void) {
    const char *text = "\xEF\xBB\xBF# examples for promptd\r\n"
                       "\r\n"
                       "  // the old backend called it original_idea\n"
                       "{\"original_idea\": \"write a sql query for monthly sales\", "
                       "\"improved_prompt\": \"You are a SQL expert.\", \"score\": 0.9}\r\n"
                       "{\"idea\": \"  email my landlord about the heater \", \"improved_prompt\": "
                       "\"You are a tenant.\", \"context\": \"third time\", \"role\": \"Tenant\", "
                       "\"directive\": \"Write the email.\", \"framework\": \"CO-STAR\", "
                       "\"guardrails\": [\"Be polite\", \"  \"], \"reasoning\": null, "
                       "\"original_idea\": \"ignored when idea is there\"}";
    struct fewshot_set *s = NULL;
    char err[512];
    CHECK_INT(parse(text, &s, err, sizeof err), 0);
    CHECK_INT(fewshot_count(s), 2);
    CHECK_STR(fewshot_path(s), "t.jsonl");
    const char *a = fewshot_example_text(s, 0), *b = fewshot_example_text(s, 1);
    CHECK(strstr(a, "<idea>\nwrite a sql query for monthly sales\n</idea>") != NULL);
    CHECK(strstr(a, "<context>") == NULL);
    CHECK(strstr(a, "{\"improved_prompt\":\"You are a SQL expert.\"}") != NULL);
    CHECK(strstr(a, "score") == NULL);
    CHECK(strstr(b, "<idea>\nemail my landlord about the heater\n</idea>") != NULL);
    CHECK(strstr(b, "<context>\nthird time\n</context>") != NULL);
    CHECK(strstr(b, "{\"role\":\"Tenant\",\"directive\":\"Write the email.\",\"framework\":"
                    "\"CO-STAR\",\"guardrails\":[\"Be polite\"],\"improved_prompt\":\"You are a "
                    "tenant.\"}") != NULL);
    CHECK(strstr(b, "ignored") == NULL);
    CHECK(strncmp(b, "<example>\nInput:\n", 17) == 0);
    CHECK(strstr(b, "\nOutput:\n{") != NULL);
    CHECK(fewshot_example_text(s, 2) == NULL);
    fewshot_free(s);
}

static void test_json_array(void) {
    const char *text = "\n [ {\"idea\": \"plan a team offsite\", \"improved_prompt\": \"You are "
                       "a planner.\", \"guardrails\": [], \"reasoning\": \"Added a budget.\"},\n"
                       "   {\"idea\": \"a haiku about rain\", \"improved_prompt\": \"Write a "
                       "haiku \\u00e9 \\\"rain\\\".\"} ]\n";
    struct fewshot_set *s = NULL;
    char err[512];
    CHECK_INT(fewshot_parse(text, strlen(text), "t.json", &s, err, sizeof err), 0);
    CHECK_INT(fewshot_count(s), 2);
    CHECK(strstr(fewshot_example_text(s, 0),
                 "{\"guardrails\":[],\"improved_prompt\":\"You are a planner.\",\"reasoning\":"
                 "\"Added a budget.\"}") != NULL);
    /* Strings are re-encoded as JSON: quotes escaped, UTF-8 kept. */
    CHECK(strstr(fewshot_example_text(s, 1), "Write a haiku \xC3\xA9 \\\"rain\\\".") != NULL);
    fewshot_free(s);
}

static void test_every_error_names_the_file_the_place_and_the_field(void) {
    const char *ok = "{\"idea\": \"a good idea\", \"improved_prompt\": \"p\"}\n";
    char text[1024];
    snprintf(text, sizeof text, "%s# c\n{\"idea\": \"another idea\"}\n", ok);
    FAILS_WITH(text, "t.jsonl", "trainset t.jsonl:3:", "\"improved_prompt\" is missing");
    snprintf(text, sizeof text, "%s{\"improved_prompt\": \"p\"}\n", ok);
    FAILS_WITH(text, "t.jsonl", "t.jsonl:2:", "\"idea\" is missing");
    snprintf(text, sizeof text, "%s%s{\"idea\": \"a good idea\", \"improved_prompt\": \"p\"\n", ok,
             ok);
    FAILS_WITH(text, "t.jsonl", "t.jsonl:3:", "not a JSON object", "column");
    FAILS_WITH("[1, 2]\n", "t.json", "trainset t.json, example [0]", "must be a JSON object");
    snprintf(text, sizeof text, "%s\"just a string\"\n", ok);
    FAILS_WITH(text, "t.jsonl", "t.jsonl:2:", "must be a JSON object, not a string");
    FAILS_WITH("{\"idea\": 5, \"improved_prompt\": \"p\"}", "t.jsonl",
               "t.jsonl:1:", "\"idea\" must be a string, not a number");
    FAILS_WITH("{\"original_idea\": \"abc\", \"improved_prompt\": \"p\"}", "t.jsonl",
               "t.jsonl:1:", "\"original_idea\" must be 5 to 20000 characters", "not 3");
    FAILS_WITH("{\"idea\": \"a good idea\", \"improved_prompt\": \"  \"}", "t.jsonl",
               "t.jsonl:1:", "\"improved_prompt\" must be 1 to 20000 characters");
    FAILS_WITH("{\"idea\": \"a good idea\", \"improved_prompt\": \"p\", \"role\": [\"x\"]}",
               "t.jsonl", "t.jsonl:1:", "\"role\" must be a string, not an array");
    FAILS_WITH("{\"idea\": \"a good idea\", \"improved_prompt\": \"p\", \"guardrails\": \"x\"}",
               "t.jsonl", "t.jsonl:1:", "\"guardrails\" must be an array of strings");
    FAILS_WITH("{\"idea\": \"a good idea\", \"improved_prompt\": \"p\", \"guardrails\": "
               "[\"a\", null]}",
               "t.jsonl", "t.jsonl:1:", "\"guardrails[1]\" must be a string, not null");
    FAILS_WITH("{\"idea\": \"a good idea\", \"idea\": \"twice\", \"improved_prompt\": \"p\"}",
               "t.jsonl", "t.jsonl:1:", "duplicate");
    FAILS_WITH("[{\"idea\": \"a good idea\", \"improved_prompt\": \"p\"},\n"
               " {\"idea\": \"a good idea\", \"improved_prompt\": \"p\"},\n"
               " {\"idea\": \"a good idea\", \"context\": 7, \"improved_prompt\": \"p\"}]",
               "/x/t.json", "trainset /x/t.json, example [2]", "\"context\" must be a string");
    FAILS_WITH("[{\"idea\": \"a good idea\",\n \"improved_prompt\": }]", "t.json",
               "t.json:2:", "not valid JSON");
    FAILS_WITH("", "t.jsonl", "trainset t.jsonl holds no examples");
    FAILS_WITH("# only a comment\n\n", "t.jsonl", "holds no examples");
    FAILS_WITH("[]", "t.json", "holds no examples");
}

/* An example whose field `field` has n characters (others minimal). */
static char *example_with(const char *field, size_t n, char fill) {
    struct buf b = {0};
    buf_str(&b, "{\"idea\": \"");
    if (strcmp(field, "idea") == 0)
        buf_repeat(&b, fill, n);
    else
        buf_str(&b, "a good idea");
    buf_str(&b, "\", \"improved_prompt\": \"p\", \"");
    buf_str(&b, strcmp(field, "idea") == 0 ? "context" : field);
    buf_str(&b, "\": \"");
    buf_repeat(&b, fill, strcmp(field, "idea") == 0 ? 1 : n);
    buf_str(&b, "\"}");
    return b.s;
}

static int parses(const char *text) {
    struct fewshot_set *s = NULL;
    char err[512];
    int rc = fewshot_parse(text, strlen(text), "t.jsonl", &s, err, sizeof err);
    fewshot_free(s);
    return rc == 0;
}

static void test_field_limits_one_step_either_side(void) {
    static const struct {
        const char *field;
        size_t max;
    } limits[] = {
        {"idea", LIMIT_FEWSHOT_TEXT_CHARS},       {"context", LIMIT_FEWSHOT_TEXT_CHARS},
        {"reasoning", LIMIT_FEWSHOT_TEXT_CHARS},  {"role", LIMIT_FEWSHOT_SHORT_CHARS},
        {"directive", LIMIT_FEWSHOT_SHORT_CHARS}, {"framework", LIMIT_FEWSHOT_SHORT_CHARS},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        char *at = example_with(limits[i].field, limits[i].max, 'x');
        char *over = example_with(limits[i].field, limits[i].max + 1, 'x');
        int ok_at = parses(at), ok_over = parses(over);
        free(at);
        free(over);
        CHECK(ok_at);
        CHECK(!ok_over);
    }
    /* Characters, not bytes: the maximum of 2-byte characters is fine. */
    struct buf b = {0};
    buf_str(&b, "{\"idea\": \"a good idea\", \"improved_prompt\": \"");
    for (int i = 0; i < LIMIT_FEWSHOT_TEXT_CHARS; i++)
        buf_str(&b, "\xC3\xA9");
    buf_str(&b, "\"}");
    CHECK(parses(b.s));
    free(b.s);
    /* The idea's minimum is improve's. */
    CHECK(!parses("{\"idea\": \" abcd \", \"improved_prompt\": \"p\"}"));
    CHECK(parses("{\"idea\": \" abcde \", \"improved_prompt\": \"p\"}"));
    /* Guardrails: at most LIMIT_FEWSHOT_GUARDRAILS items. */
    b = (struct buf){0};
    buf_str(&b, "{\"idea\": \"a good idea\", \"improved_prompt\": \"p\", \"guardrails\": [\"g\"");
    for (int i = 1; i < LIMIT_FEWSHOT_GUARDRAILS; i++)
        buf_str(&b, ", \"g\"");
    size_t before_close = b.len;
    buf_str(&b, "]}");
    CHECK(parses(b.s));
    b.len = before_close;
    buf_str(&b, ", \"g\"]}");
    FAILS_WITH(b.s, "t.jsonl", "t.jsonl:1:", "\"guardrails\" has 21 items");
    free(b.s);
}

/* n examples, one a line; example i's idea is "topic<i> ..." */
static char *trainset_of(size_t n) {
    struct buf b = {0};
    char line[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(line, sizeof line,
                 "{\"idea\": \"topic%zu write something useful\", \"improved_prompt\": \"p%zu\"}\n",
                 i, i);
        buf_str(&b, line);
    }
    return b.s;
}

static void test_example_count_limit(void) {
    char *at = trainset_of(LIMIT_FEWSHOT_EXAMPLES);
    char *over = trainset_of(LIMIT_FEWSHOT_EXAMPLES + 1);
    int ok_at = parses(at);
    int over_named = fails_with(over, "t.jsonl",
                                (const char *const[]){"t.jsonl:10001:", "more than 10000", NULL});
    free(at);
    free(over);
    CHECK(ok_at);
    CHECK(over_named);
}

static const char *tmp_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/promptd-test-fewshot-XXXXXX");
        if (!mkdtemp(dir))
            return NULL;
    }
    return dir;
}

static int write_file(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(text, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

static void test_file_size_limit(void) {
    const char *dir = tmp_dir();
    CHECK(dir != NULL);
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/big.jsonl", dir);
    const char *one = "{\"idea\": \"a good idea\", \"improved_prompt\": \"p\"}\n";
    size_t n = LIMIT_FEWSHOT_FILE_BYTES;
    char *text = malloc(n + 1);
    CHECK(text != NULL);
    memset(text, '\n', n + 1);
    memcpy(text, one, strlen(one));
    struct fewshot_set *s = NULL;
    int rc_at = write_file(path, text, n) == 0 ? fewshot_load_file(path, &s, err, sizeof err) : -9;
    size_t count = fewshot_count(s);
    fewshot_free(s);
    s = NULL;
    int rc_over =
        write_file(path, text, n + 1) == 0 ? fewshot_load_file(path, &s, err, sizeof err) : -9;
    free(text);
    unlink(path);
    CHECK_INT(rc_at, 0);
    CHECK_INT(count, 1);
    CHECK_INT(rc_over, -1);
    CHECK(s == NULL);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "larger than 8388608 bytes") != NULL);
    CHECK_INT(fewshot_load_file("/nonexistent/t.jsonl", &s, err, sizeof err), -1);
    CHECK(strstr(err, "cannot read the trainset /nonexistent/t.jsonl (FEWSHOT_TRAINSET_PATH)"));
}

static void test_configured_path_resolution_and_enabled_without_path(void) {
    const char *dir = tmp_dir();
    CHECK(dir != NULL);
    char path[160], conf[160], sub[160], err[512];
    snprintf(sub, sizeof sub, "%s/examples", dir);
    mkdir(sub, 0700);
    snprintf(path, sizeof path, "%s/examples/t.jsonl", dir);
    const char *one = "{\"idea\": \"a good idea\", \"improved_prompt\": \"p\"}\n";
    CHECK_INT(write_file(path, one, strlen(one)), 0);
    snprintf(conf, sizeof conf, "%s/promptd.conf", dir);
    struct config *cfg = config_defaults();
    CHECK(cfg != NULL);
    struct fewshot_set *s = (struct fewshot_set *)1;
    /* No path, not enabled: nothing to load. */
    int rc_none = fewshot_load_configured(cfg, conf, &s, err, sizeof err);
    int none_null = s == NULL;
    /* Enabled without a path: a configuration error saying what to set. */
    cfg->fewshot_enabled = true;
    int rc_enabled = fewshot_load_configured(cfg, conf, &s, err, sizeof err);
    int says_set = strstr(err, "set it") && strstr(err, "FEWSHOT_TRAINSET_PATH");
    /* Relative: to the config file's directory, not the working one. */
    cfg->fewshot_trainset_path = strdup("examples/t.jsonl");
    int rc_rel = fewshot_load_configured(cfg, conf, &s, err, sizeof err);
    char rel_path[256];
    snprintf(rel_path, sizeof rel_path, "%s", fewshot_path(s));
    fewshot_free(s);
    /* "~/" is $HOME. */
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", sub, 1);
    free(cfg->fewshot_trainset_path);
    cfg->fewshot_trainset_path = strdup("~/t.jsonl");
    int rc_home = fewshot_load_configured(cfg, NULL, &s, err, sizeof err);
    char home_path[256];
    snprintf(home_path, sizeof home_path, "%s", fewshot_path(s));
    fewshot_free(s);
    if (old_home)
        setenv("HOME", old_home, 1);
    free(old_home);
    config_free(cfg);
    unlink(path);
    rmdir(sub);
    CHECK_INT(rc_none, 0);
    CHECK(none_null);
    CHECK_INT(rc_enabled, -1);
    CHECK(says_set);
    CHECK_INT(rc_rel, 0);
    CHECK_STR(rel_path, path);
    CHECK_INT(rc_home, 0);
    CHECK_STR(home_path, path);
}

#define SEL_TRAINSET                                                                               \
    "{\"idea\": \"write a poem about the sea\", \"improved_prompt\": \"p0\"}\n"                    \
    "{\"idea\": \"email my landlord about the broken heater\", \"improved_prompt\": \"p1\"}\n"     \
    "{\"idea\": \"debug my python script that crashes\", \"improved_prompt\": \"p2\"}\n"           \
    "{\"idea\": \"Email the LANDLORD: the heater, again!\", \"improved_prompt\": \"p3\"}\n"        \
    "{\"idea\": \"email my boss about a raise\", \"improved_prompt\": \"p4\"}\n"                   \
    "{\"idea\": \"email my boss about a raise\", \"improved_prompt\": \"p5\"}\n"                   \
    "{\"idea\": \"a long rambling idea about a heater and many other unrelated words here and "    \
    "there\", \"improved_prompt\": \"p6\"}\n"

static void test_selection_order_ties_and_stop_words(void) {
    struct fewshot_set *s = NULL;
    char err[512];
    CHECK_INT(parse(SEL_TRAINSET, &s, err, sizeof err), 0);
    size_t picked[10];
    /* email, landlord, broken, heater: 3 and 1 share the most for their
     * size (3: email landlord heater again -> 3/sqrt(4); 1: all 4 of its 4
     * words), then 4 and 5 (email, 1 of 3 words, tied: file order), then
     * the long one (heater, 1 of many), then those sharing nothing. */
    CHECK_INT(fewshot_select(s, "Email my landlord about the broken heater.", NULL, 7, picked), 7);
    CHECK_INT(picked[0], 1);
    CHECK_INT(picked[1], 3);
    CHECK_INT(picked[2], 4);
    CHECK_INT(picked[3], 5);
    CHECK_INT(picked[4], 6);
    CHECK_INT(picked[5], 0);
    CHECK_INT(picked[6], 2);
    /* k smaller than the set; the context counts as much as the idea. */
    CHECK_INT(fewshot_select(s, "write something", "my python script crashes", 2, picked), 2);
    CHECK_INT(picked[0], 2);
    CHECK_INT(picked[1], 0);
    /* Only stop words and punctuation: nothing shared, file order. */
    CHECK_INT(fewshot_select(s, "the and of -- ?!", NULL, 3, picked), 3);
    CHECK_INT(picked[0], 0);
    CHECK_INT(picked[1], 1);
    CHECK_INT(picked[2], 2);
    /* k larger than the set. */
    CHECK_INT(fewshot_select(s, "sea poem", NULL, 20, picked), 7);
    CHECK_INT(picked[0], 0);
    CHECK_INT(fewshot_select(NULL, "sea poem", NULL, 3, picked), 0);
    fewshot_free(s);
}

static void test_selection_is_deterministic(void) {
    char *text = trainset_of(500);
    struct fewshot_set *s = NULL;
    char err[512];
    int rc = fewshot_parse(text, strlen(text), "t.jsonl", &s, err, sizeof err);
    free(text);
    CHECK_INT(rc, 0);
    size_t a[5], b[5];
    CHECK_INT(fewshot_select(s, "topic42 topic7 useful", NULL, 5, a), 5);
    for (int i = 0; i < 100; i++) {
        CHECK_INT(fewshot_select(s, "topic42 topic7 useful", NULL, 5, b), 5);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
    CHECK_INT(a[0], 7); /* 2 shared words of 4: tie with 42, file order */
    CHECK_INT(a[1], 42);
    CHECK_INT(a[2], 0); /* "useful" only: file order */
    fewshot_free(s);
}

static void test_render_order_sentence_and_byte_cap(void) {
    struct fewshot_set *s = NULL;
    char err[512];
    CHECK_INT(parse(SEL_TRAINSET, &s, err, sizeof err), 0);
    size_t used = 99;
    char *m = fewshot_render(s, "email my landlord about the broken heater", "", 3, &used);
    CHECK(m != NULL);
    CHECK_INT(used, 3);
    CHECK(strstr(m, "not content to copy") != NULL);
    CHECK(strstr(m, "quality and the format") != NULL);
    char *p1 = strstr(m, "\"p1\""), *p3 = strstr(m, "\"p3\""), *p4 = strstr(m, "\"p4\"");
    CHECK(p1 && p3 && p4 && p1 < p3 && p3 < p4);
    CHECK(strstr(m, "\"p5\"") == NULL);
    CHECK(strstr(m, "<examples>\n<example>") != NULL);
    CHECK(strstr(m, "</example>\n</examples>\n") != NULL);
    /* The user message: examples first, the person's idea last. */
    char *u = result_user_message_with_examples("email my landlord", "", NULL, m);
    CHECK(u != NULL);
    const char *idea = strstr(u, "<idea>\nemail my landlord\n</idea>");
    const char *end = strstr(u, "</examples>");
    size_t idea_at = idea ? (size_t)(idea - u) : 0, end_at = end ? (size_t)(end - u) : SIZE_MAX;
    bool starts_with_examples = strncmp(u, "Examples of good improvements", 29) == 0;
    free(u);
    free(m);
    CHECK(starts_with_examples);
    CHECK(idea_at > end_at);
    fewshot_free(s);
    CHECK(fewshot_render(NULL, "email", NULL, 3, &used) == NULL);
    CHECK_INT(used, 0);

    /* Three examples of 30000 bytes: the best always goes in, the second
     * fits under LIMIT_FEWSHOT_PROMPT_BYTES (64 KiB), the third does not. */
    struct buf b = {0};
    for (int i = 0; i < 3; i++) {
        buf_str(&b, "{\"idea\": \"heater repair email\", \"improved_prompt\": \"");
        buf_repeat(&b, (char)('a' + i), 15000);
        buf_str(&b, "\", \"reasoning\": \"");
        buf_repeat(&b, (char)('a' + i), 15000);
        buf_str(&b, "\"}\n");
    }
    CHECK_INT(parse(b.s, &s, err, sizeof err), 0);
    free(b.s);
    m = fewshot_render(s, "heater", NULL, 3, &used);
    CHECK(m != NULL);
    CHECK_INT(used, 2);
    free(m);
    fewshot_free(s);
}

/* Selection over the largest trainset allowed, with short ideas like a
 * launcher's: prints the cost per request (no assertion on time). */
static void test_selection_cost_at_the_example_limit(void) {
    static const char *const vocab[] = {
        "email",   "landlord", "heater", "python", "script", "crash",  "sql",     "query",
        "sales",   "report",   "poem",   "sea",    "plan",   "team",   "offsite", "budget",
        "summary", "thread",   "boss",   "raise",  "cover",  "letter", "barista", "resume",
        "bug",     "memory",   "leak",   "recipe", "dinner", "guests", "travel",  "japan"};
    size_t nv = sizeof vocab / sizeof vocab[0];
    struct buf b = {0};
    uint32_t x = 12345;
    for (int i = 0; i < LIMIT_FEWSHOT_EXAMPLES; i++) {
        buf_str(&b, "{\"idea\": \"");
        for (int w = 0; w < 12; w++) {
            x = x * 1103515245u + 12345u;
            buf_str(&b, vocab[(x >> 16) % nv]);
            buf_str(&b, w % 3 == 2 ? " the " : " ");
        }
        buf_str(&b, "\", \"improved_prompt\": \"You are an expert.\"}\n");
    }
    struct fewshot_set *s = NULL;
    char err[512];
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = fewshot_parse(b.s, b.len, "big.jsonl", &s, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(b.s);
    CHECK_INT(rc, 0);
    /* The minimum of many runs: the machine may be busy with other work. */
    enum { RUNS = 300 };
    double best_us = 1e18;
    size_t picked[20], used = 0;
    for (int i = 0; i < RUNS; i++) {
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        char *m = fewshot_render(s, "email my landlord about the broken heater, third time",
                                 "I have a toddler and it is winter", 3, &used);
        clock_gettime(CLOCK_MONOTONIC, &z);
        CHECK(m != NULL);
        free(m);
        double us = (double)(z.tv_sec - a.tv_sec) * 1e6 + (double)(z.tv_nsec - a.tv_nsec) / 1e3;
        best_us = us < best_us ? us : best_us;
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    CHECK_INT(used, 3);
    CHECK_INT(fewshot_select(s, "python script crash", NULL, 20, picked), 20);
    double load_ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    double mean_us =
        ((double)(t2.tv_sec - t1.tv_sec) * 1e6 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e3) / RUNS;
    printf("  %d examples: loaded in %.1f ms; select + render k=3 per request: %.0f us best, "
           "%.0f us mean\n",
           LIMIT_FEWSHOT_EXAMPLES, load_ms, best_us, mean_us);
    /* The worst case: a request using every word, so every posting of
     * every example is read and every example is ranked. */
    struct buf all = {0};
    for (size_t i = 0; i < nv; i++) {
        buf_str(&all, vocab[i]);
        buf_str(&all, " ");
    }
    double worst_us = 1e18;
    for (int i = 0; i < RUNS / 10; i++) {
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int n = fewshot_select(s, all.s, NULL, 20, picked);
        clock_gettime(CLOCK_MONOTONIC, &z);
        CHECK_INT(n, 20);
        double us = (double)(z.tv_sec - a.tv_sec) * 1e6 + (double)(z.tv_nsec - a.tv_nsec) / 1e3;
        worst_us = us < worst_us ? us : worst_us;
    }
    free(all.s);
    printf("  every word of every example shared, k=20: %.0f us\n", worst_us);
    fewshot_free(s);
}

int main(void) {
    RUN(test_json_lines_with_comments_aliases_and_extra_keys);
    RUN(test_json_array);
    RUN(test_every_error_names_the_file_the_place_and_the_field);
    RUN(test_field_limits_one_step_either_side);
    RUN(test_example_count_limit);
    RUN(test_file_size_limit);
    RUN(test_configured_path_resolution_and_enabled_without_path);
    RUN(test_selection_order_ties_and_stop_words);
    RUN(test_selection_is_deterministic);
    RUN(test_render_order_sentence_and_byte_cap);
    RUN(test_selection_cost_at_the_example_limit);
    if (tmp_dir())
        rmdir(tmp_dir()); /* empty unless a test failed midway */
    UNIT_EXIT();
}
