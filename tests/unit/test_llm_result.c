/* result: parsing model output (clean, repaired, refused), validation and
 * coercion rules, error details, quality score, protocol JSON, schemas,
 * system prompt and user message. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm_result.h"
#include "promptd_limits.h"
#include "unit.h"
#include "utf8.h"

#define GOOD                                                                                       \
    "{\"role\":\"Database performance engineer\",\"directive\":\"Diagnose the slow query.\","      \
    "\"framework\":\"Chain of Thought\",\"guardrails\":[\"Ask for the query\",\"No guessing\"],"   \
    "\"improved_prompt\":\"You are a database performance engineer.\",\"reasoning\":\"Asked "      \
    "for inputs.\",\"confidence\":0.55}"

static int parse(const char *text, struct improve_result *r, char **detail) {
    return result_parse_model_output(text, strlen(text), r, detail);
}

static int near(double a, double b) {
    return fabs(a - b) < 1e-9;
}

static void test_clean_json(void) {
    struct improve_result r;
    result_init(&r);
    char *detail = (char *)"untouched";
    CHECK_INT(parse(GOOD, &r, &detail), RESULT_OK);
    CHECK(detail == NULL);
    CHECK_STR(r.role, "Database performance engineer");
    CHECK_STR(r.directive, "Diagnose the slow query.");
    CHECK_STR(r.framework, "Chain of Thought");
    CHECK_STR(r.improved_prompt, "You are a database performance engineer.");
    CHECK_STR(r.reasoning, "Asked for inputs.");
    CHECK(r.has_confidence && near(r.confidence, 0.55));
    CHECK_INT(json_array_size(r.guardrails), 2);
    CHECK_STR(json_string_value(json_array_get(r.guardrails, 1)), "No guessing");
    CHECK_INT(r.tokens_prompt, -1);
    CHECK_INT(r.tokens_completion, -1);
    CHECK(!r.truncated);
    result_clear(&r);
    result_clear(&r); /* idempotent */
}

/* Each wrapper around GOOD parses to the same result. */
static void test_repairs(void) {
    static const char *const wrappers[][2] = {
        {"```json\n", "\n```"},
        {"```JSON\n", "\n```\n"},
        {"```\n", "\n```"},
        {"Here is the improved prompt:\n\n", "\n\nLet me know if you need changes!"},
        {"Sure {not json} ok: ", " }"},
        {"<think>Plan: use {braces} and \"quotes\" freely.</think>\n", ""},
        {"<think>a</think><think>{b}</think>```json\n", "\n```"},
        {"The user wants an email. {x}</think>\n", ""}, /* orphan close tag */
        {"[", "]"},
        {"  \n\t", " \n "},
        {"{\"wrapper\": ", "}"}, /* an outer object that is not the result: its fields miss */
    };
    for (size_t i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++) {
        char text[2048];
        snprintf(text, sizeof text, "%s%s%s", wrappers[i][0], GOOD, wrappers[i][1]);
        struct improve_result r;
        result_init(&r);
        char *detail = NULL;
        int rc = parse(text, &r, &detail);
        if (i == sizeof wrappers / sizeof wrappers[0] - 1) {
            CHECK_INT(rc, RESULT_ERR_MISSING); /* repair is for syntax, not for shape */
            free(detail);
            continue;
        }
        if (rc != RESULT_OK)
            printf("  wrapper %zu failed: %d\n", i, rc);
        CHECK_INT(rc, RESULT_OK);
        CHECK_STR(r.role, "Database performance engineer");
        CHECK(detail == NULL);
        result_clear(&r);
    }
}

static void test_think_inside_string_is_kept(void) {
    const char *t = "{\"role\":\"r\",\"directive\":\"d\",\"framework\":\"RTF\",\"guardrails\":[],"
                    "\"improved_prompt\":\"Think in <think></think> tags, then answer.\","
                    "\"reasoning\":null,\"confidence\":null}";
    struct improve_result r;
    result_init(&r);
    CHECK_INT(parse(t, &r, NULL), RESULT_OK);
    CHECK_STR(r.improved_prompt, "Think in <think></think> tags, then answer.");
    CHECK(r.reasoning == NULL);
    CHECK(!r.has_confidence);
    CHECK_INT(json_array_size(r.guardrails), 0);
    result_clear(&r);
}

static void test_double_encoded(void) {
    json_t *s = json_string(GOOD);
    char *text = json_dumps(s, JSON_ENCODE_ANY);
    struct improve_result r;
    result_init(&r);
    CHECK_INT(parse(text, &r, NULL), RESULT_OK);
    CHECK_STR(r.framework, "Chain of Thought");
    result_clear(&r);
    free(text);
    json_decref(s);
}

static void test_failures_and_detail(void) {
    struct improve_result r;
    result_init(&r);
    char *detail = NULL;
    CHECK_INT(parse("I'm sorry, I can't help with that.", &r, &detail), RESULT_ERR_NOT_JSON);
    CHECK_STR(detail, "I'm sorry, I can't help with that.");
    free(detail);
    CHECK_INT(parse("", &r, &detail), RESULT_ERR_EMPTY);
    CHECK_STR(detail, "");
    free(detail);
    CHECK_INT(parse(" \n\t ", &r, &detail), RESULT_ERR_EMPTY);
    free(detail);
    CHECK_INT(parse("<think>only thoughts</think>\n", &r, &detail), RESULT_ERR_EMPTY);
    free(detail);
    CHECK_INT(parse("<think>cut off while thinking {\"role\":", &r, &detail), RESULT_ERR_EMPTY);
    free(detail);
    CHECK_INT(parse("{\"role\":\"r\",\"directive\":", &r, &detail), RESULT_ERR_NOT_JSON);
    free(detail);
    CHECK_INT(parse("[1,2,3]", &r, &detail), RESULT_ERR_NOT_JSON);
    free(detail);
    CHECK_INT(parse("\"just a string\"", &r, &detail), RESULT_ERR_NOT_JSON);
    free(detail);
    CHECK_INT(result_parse_model_output(NULL, 0, &r, &detail), RESULT_ERR_EMPTY);
    free(detail);
    /* a null detail pointer is allowed */
    CHECK_INT(parse("nope", &r, NULL), RESULT_ERR_NOT_JSON);
    CHECK(r.role == NULL && r.guardrails == NULL);
}

static void test_detail_is_bounded_and_valid(void) {
    char text[600];
    /* 199 ASCII bytes then a 3-byte character straddling byte 200 */
    memset(text, 'x', 199);
    strcpy(text + 199, "\xE2\x82\xAC and more text that the detail leaves out");
    struct improve_result r;
    result_init(&r);
    char *detail = NULL;
    CHECK_INT(parse(text, &r, &detail), RESULT_ERR_NOT_JSON);
    CHECK(detail != NULL);
    CHECK_INT(strlen(detail), 199);
    free(detail);
    /* invalid UTF-8 from the model comes back valid */
    CHECK_INT(parse("bad \xFF\xFE bytes", &r, &detail), RESULT_ERR_NOT_JSON);
    CHECK(utf8_valid(detail, strlen(detail)));
    CHECK(strlen(detail) <= RESULT_DETAIL_BYTES);
    free(detail);
    /* exactly 200 bytes are kept whole; 201 are cut to 200 */
    memset(text, 'y', 201);
    text[201] = '\0';
    CHECK_INT(parse(text, &r, &detail), RESULT_ERR_NOT_JSON);
    CHECK_INT(strlen(detail), RESULT_DETAIL_BYTES);
    free(detail);
    text[200] = '\0';
    CHECK_INT(parse(text, &r, &detail), RESULT_ERR_NOT_JSON);
    CHECK_INT(strlen(detail), 200);
    free(detail);
    /* the detail skips leading whitespace, which says nothing */
    CHECK_INT(parse("\n\n   oops", &r, &detail), RESULT_ERR_NOT_JSON);
    CHECK_STR(detail, "oops");
    free(detail);
}

/* Parses GOOD with one field replaced (value NULL = removed). */
static int with_field(const char *name, const char *value_json, struct improve_result *r) {
    json_t *o = json_loads(GOOD, 0, NULL);
    if (!o)
        return -100;
    if (value_json)
        json_object_set_new(o, name, json_loads(value_json, JSON_DECODE_ANY, NULL));
    else
        json_object_del(o, name);
    int rc = result_from_json(o, r);
    json_decref(o);
    return rc;
}

static void test_required_strings(void) {
    static const char *const names[] = {"role", "directive", "framework", "improved_prompt"};
    struct improve_result r;
    result_init(&r);
    for (size_t i = 0; i < 4; i++) {
        CHECK_INT(with_field(names[i], NULL, &r), RESULT_ERR_MISSING);
        CHECK_INT(with_field(names[i], "\"\"", &r), RESULT_ERR_TYPE);
        CHECK_INT(with_field(names[i], "\" \\n\\t \"", &r), RESULT_ERR_TYPE);
        CHECK_INT(with_field(names[i], "null", &r), RESULT_ERR_TYPE);
        CHECK_INT(with_field(names[i], "42", &r), RESULT_ERR_TYPE);
        CHECK_INT(with_field(names[i], "[\"a\"]", &r), RESULT_ERR_TYPE);
        CHECK(r.role == NULL && r.improved_prompt == NULL); /* cleared on failure */
    }
    CHECK_INT(with_field("role", "\"  Senior editor \\n\"", &r), RESULT_OK);
    CHECK_STR(r.role, "Senior editor"); /* stored trimmed */
    /* extra fields are ignored */
    CHECK_INT(with_field("extra", "{\"a\":1}", &r), RESULT_OK);
    result_clear(&r);
    CHECK_INT(result_from_json(NULL, &r), RESULT_ERR_NOT_JSON);
    json_t *arr = json_array();
    CHECK_INT(result_from_json(arr, &r), RESULT_ERR_NOT_JSON);
    json_decref(arr);
}

static void test_guardrails_coercion(void) {
    struct improve_result r;
    result_init(&r);
    CHECK_INT(with_field("guardrails", "\"Keep it short\"", &r), RESULT_OK);
    CHECK_INT(json_array_size(r.guardrails), 1);
    CHECK_STR(json_string_value(json_array_get(r.guardrails, 0)), "Keep it short");
    CHECK_INT(with_field("guardrails", "[\" a \", 3, null, \"\", \"  \", {\"x\":1}, \"b\"]", &r),
              RESULT_OK);
    CHECK_INT(json_array_size(r.guardrails), 2);
    CHECK_STR(json_string_value(json_array_get(r.guardrails, 0)), "a");
    CHECK_STR(json_string_value(json_array_get(r.guardrails, 1)), "b");
    CHECK_INT(with_field("guardrails", "[]", &r), RESULT_OK);
    CHECK_INT(json_array_size(r.guardrails), 0);
    CHECK_INT(with_field("guardrails", "\"\"", &r), RESULT_OK);
    CHECK_INT(json_array_size(r.guardrails), 0);
    CHECK_INT(with_field("guardrails", NULL, &r), RESULT_ERR_MISSING);
    CHECK_INT(with_field("guardrails", "null", &r), RESULT_ERR_TYPE);
    CHECK_INT(with_field("guardrails", "7", &r), RESULT_ERR_TYPE);
    CHECK_INT(with_field("guardrails", "{\"a\":\"b\"}", &r), RESULT_ERR_TYPE);
    result_clear(&r);
}

/* A JSON string of n copies of c, with surrounding spaces the trim
 * removes (the bound is on the trimmed text). Caller frees. */
static char *long_json_string(size_t n, char c) {
    char *s = malloc(n + 5);
    if (!s)
        return NULL;
    memcpy(s, "\" ", 2);
    memset(s + 2, c, n);
    memcpy(s + 2 + n, " \"", 3);
    return s;
}

static void test_fields_are_bounded(void) {
    static const char *const names[] = {"improved_prompt", "role", "directive", "framework",
                                        "reasoning"};
    struct improve_result r;
    result_init(&r);
    char *at = long_json_string(LIMIT_RESULT_FIELD_BYTES, 'x');
    char *past = long_json_string(LIMIT_RESULT_FIELD_BYTES + 1, 'x');
    CHECK(at && past);
    for (size_t i = 0; at && past && i < sizeof names / sizeof *names; i++) {
        CHECK_INT(with_field(names[i], at, &r), RESULT_OK);
        CHECK(r.too_long_field == NULL);
        CHECK_INT(with_field(names[i], past, &r), RESULT_ERR_TOO_LONG);
        CHECK_STR(r.too_long_field, names[i]);
        CHECK(r.improved_prompt == NULL); /* cleared: nothing to store */
    }
    free(at);
    free(past);
    /* Guardrails: one long item, or many short ones together. */
    json_t *many = json_array();
    for (size_t i = 0; i <= LIMIT_RESULT_FIELD_BYTES / 4; i++) /* 4 bytes each */
        json_array_append_new(many, json_string("a"));
    char *text = json_dumps(many, 0);
    CHECK(text != NULL);
    if (text)
        CHECK_INT(with_field("guardrails", text, &r), RESULT_ERR_TOO_LONG);
    CHECK_STR(r.too_long_field, "guardrails");
    free(text);
    json_decref(many);
    CHECK_INT(with_field("guardrails", "[\"a\", \"b\"]", &r), RESULT_OK);
    result_clear(&r);
}

static void test_reasoning_rules(void) {
    struct improve_result r;
    result_init(&r);
    CHECK_INT(with_field("reasoning", NULL, &r), RESULT_OK);
    CHECK(r.reasoning == NULL);
    CHECK_INT(with_field("reasoning", "null", &r), RESULT_OK);
    CHECK(r.reasoning == NULL);
    CHECK_INT(with_field("reasoning", "\"   \"", &r), RESULT_OK);
    CHECK(r.reasoning == NULL);
    CHECK_INT(with_field("reasoning", "12", &r), RESULT_OK);
    CHECK(r.reasoning == NULL);
    CHECK_INT(with_field("reasoning", "\" why \"", &r), RESULT_OK);
    CHECK_STR(r.reasoning, "why");
    result_clear(&r);
}

static void test_confidence_rules(void) {
    static const struct {
        const char *json;
        int has;
        double value;
    } cases[] = {
        {"0.8", 1, 0.8},    {"1", 1, 1.0},       {"0", 1, 0.0},           {"0.0", 1, 0.0},
        {"1.0", 1, 1.0},    {"7", 0, 0},         {"-0.1", 0, 0},          {"1.0000001", 0, 0},
        {"85", 0, 0},       {"\"0.8\"", 1, 0.8}, {"\" 0.25 \"", 1, 0.25}, {"\"high\"", 0, 0},
        {"\"0.8x\"", 0, 0}, {"\"\"", 0, 0},      {"\"7\"", 0, 0},         {"true", 0, 0},
        {"null", 0, 0},     {"[0.5]", 0, 0},     {"\"nan\"", 0, 0},       {"\"80%\"", 0, 0},
        {NULL, 0, 0},
    };
    struct improve_result r;
    result_init(&r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_INT(with_field("confidence", cases[i].json, &r), RESULT_OK);
        if (r.has_confidence != cases[i].has)
            printf("  confidence %s\n", cases[i].json ? cases[i].json : "(absent)");
        CHECK_INT(r.has_confidence, cases[i].has);
        if (cases[i].has)
            CHECK(near(r.confidence, cases[i].value));
    }
    result_clear(&r);
}

static void test_copy(void) {
    struct improve_result a, b;
    result_init(&a);
    result_init(&b);
    CHECK_INT(parse(GOOD, &a, NULL), RESULT_OK);
    a.tokens_prompt = 10;
    a.tokens_completion = 20;
    a.truncated = true;
    CHECK_INT(result_copy(&b, &a), RESULT_OK);
    result_clear(&a);
    CHECK_STR(b.role, "Database performance engineer");
    CHECK_STR(b.reasoning, "Asked for inputs.");
    CHECK_INT(json_array_size(b.guardrails), 2);
    CHECK_INT(b.tokens_prompt, 10);
    CHECK(b.truncated);
    result_clear(&b);
    /* copying an empty result works too */
    CHECK_INT(result_copy(&b, &a), RESULT_OK);
    CHECK(b.role == NULL && b.guardrails == NULL);
    result_clear(&b);
}

static void test_quality_score(void) {
    CHECK(near(result_quality_score(false, 0, 0), 0.5));
    CHECK(near(result_quality_score(false, 0.9, 1000), 0.4)); /* null: 0.5 - 0.1 */
    CHECK(near(result_quality_score(true, 0.9, 1000), 0.8));
    CHECK(near(result_quality_score(true, 0.9, 2999), 0.6001));
    CHECK(near(result_quality_score(true, 0.9, 3000), 0.6));
    CHECK(near(result_quality_score(true, 0.9, 3001), 0.6)); /* penalty capped at 0.3 */
    CHECK(near(result_quality_score(true, 0.9, 1e9), 0.6));
    CHECK(near(result_quality_score(true, 0.2, 5000), 0.0)); /* clamped */
    CHECK(near(result_quality_score(true, 1.0, 0), 1.0));
    CHECK(near(result_quality_score(true, 0.0, 0), 0.0)); /* 0 is a value, not null */
    CHECK(near(result_quality_score(true, 0.7, -50), 0.7));
    CHECK(near(result_quality_score(true, NAN, 0), 0.5));
    CHECK(near(result_quality_score(true, 0.5, NAN), 0.5));
}

static void test_to_json(void) {
    struct improve_result r;
    result_init(&r);
    CHECK_INT(parse(GOOD, &r, NULL), RESULT_OK);
    struct result_meta meta = {42, "zero-shot", "ollama", "llama3.2:3b", 1000, -1};
    json_t *o = result_to_json(&r, &meta);
    CHECK(o != NULL);
    static const char *const order[] = {
        "id",         "improved_prompt", "role",       "directive",     "framework",
        "guardrails", "reasoning",       "confidence", "quality_score", "backend",
        "provider",   "model",           "latency_ms", "tokens",        "parent_id"};
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        CHECK(i < sizeof order / sizeof order[0]);
        CHECK_STR(key, order[i]);
        i++;
    }
    CHECK_INT(i, sizeof order / sizeof order[0]);
    CHECK_INT(json_integer_value(json_object_get(o, "id")), 42);
    CHECK(near(json_real_value(json_object_get(o, "quality_score")), 0.45));
    CHECK(json_is_null(json_object_get(o, "tokens")));
    CHECK(json_is_null(json_object_get(o, "parent_id")));
    CHECK_STR(json_string_value(json_object_get(o, "model")), "llama3.2:3b");
    CHECK_INT(json_integer_value(json_object_get(o, "latency_ms")), 1000);
    json_decref(o);

    r.tokens_prompt = 123;
    r.tokens_completion = 456;
    r.has_confidence = false;
    free(r.reasoning);
    r.reasoning = NULL;
    meta.id = -1;
    meta.parent_id = 7;
    meta.model = NULL;
    o = result_to_json(&r, &meta);
    CHECK(o != NULL);
    CHECK(json_is_null(json_object_get(o, "id")));
    CHECK(json_is_null(json_object_get(o, "confidence")));
    CHECK(json_is_null(json_object_get(o, "reasoning")));
    CHECK(json_is_null(json_object_get(o, "model")));
    CHECK_INT(json_integer_value(json_object_get(o, "parent_id")), 7);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(o, "tokens"), "completion")), 456);
    json_decref(o);

    r.tokens_completion = -1; /* one side unknown: null */
    o = result_to_json(&r, NULL);
    CHECK(o != NULL);
    CHECK_INT(json_object_size(o), 8);
    CHECK(json_object_get(o, "quality_score") == NULL);
    CHECK(json_is_null(json_object_get(o, "tokens")));
    json_decref(o);
    result_clear(&r);
}

static void test_schema(void) {
    json_t *s = result_schema_json();
    CHECK(s != NULL);
    CHECK_STR(json_string_value(json_object_get(s, "type")), "object");
    CHECK(json_is_false(json_object_get(s, "additionalProperties")));
    json_t *req = json_object_get(s, "required");
    json_t *props = json_object_get(s, "properties");
    CHECK_INT(json_array_size(req), 7);
    CHECK_INT(json_object_size(props), 7);
    size_t i;
    json_t *name;
    json_array_foreach(req, i, name) {
        CHECK(json_object_get(props, json_string_value(name)) != NULL);
    }
    CHECK_STR(json_string_value(json_array_get(req, 4)), "improved_prompt");
    json_t *g = json_object_get(props, "guardrails");
    CHECK_STR(json_string_value(json_object_get(g, "type")), "array");
    CHECK_STR(json_string_value(json_object_get(json_object_get(g, "items"), "type")), "string");
    CHECK_STR(json_string_value(json_object_get(json_object_get(props, "confidence"), "type")),
              "number");
    CHECK_STR(json_string_value(json_object_get(json_object_get(props, "reasoning"), "type")),
              "string");
    json_decref(s);

    s = result_schema_gemini_json();
    CHECK(s != NULL);
    CHECK_STR(json_string_value(json_object_get(s, "type")), "OBJECT");
    CHECK(json_object_get(s, "additionalProperties") == NULL);
    json_t *ord = json_object_get(s, "propertyOrdering");
    CHECK(json_equal(ord, json_object_get(s, "required")));
    props = json_object_get(s, "properties");
    g = json_object_get(props, "guardrails");
    CHECK_STR(json_string_value(json_object_get(g, "type")), "ARRAY");
    CHECK_STR(json_string_value(json_object_get(json_object_get(g, "items"), "type")), "STRING");
    CHECK_STR(json_string_value(json_object_get(json_object_get(props, "confidence"), "type")),
              "NUMBER");
    json_decref(s);
}

static void test_system_prompt(void) {
    size_t len = 0;
    const char *p = result_system_prompt(&len);
    CHECK(p != NULL);
    CHECK_INT(strlen(p), len);
    CHECK(utf8_valid(p, len));
    static const char *const must[] = {
        "improved_prompt", "role", "directive",        "framework", "guardrails",       "reasoning",
        "confidence",      "RTF",  "CO-STAR",          "RISEN",     "Chain of Thought", "Few-shot",
        "same language",   "ask",  "JSON object only", "<idea>",    "60 to 250 words"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        if (!strstr(p, must[i]))
            printf("  missing: %s\n", must[i]);
        CHECK(strstr(p, must[i]) != NULL);
    }
    CHECK(result_system_prompt(NULL) == p);
}

/* The worked example in the system prompt is itself a valid result. */
static void test_system_prompt_example_parses(void) {
    const char *p = result_system_prompt(NULL);
    CHECK(p != NULL);
    const char *ex = strstr(p, "Output:\n");
    CHECK(ex != NULL);
    const char *end = strchr(ex + 8, '\n');
    CHECK(end != NULL);
    struct improve_result r;
    result_init(&r);
    CHECK_INT(result_parse_model_output(ex + 8, (size_t)(end - ex - 8), &r, NULL), RESULT_OK);
    CHECK_STR(r.framework, "CO-STAR");
    CHECK(r.has_confidence && near(r.confidence, 0.86));
    result_clear(&r);
}

static void test_user_message(void) {
    char *m = result_user_message("email my landlord", "third time", NULL);
    CHECK(m != NULL);
    CHECK(strstr(m, "<idea>\nemail my landlord\n</idea>") != NULL);
    CHECK(strstr(m, "<context>\nthird time\n</context>") != NULL);
    CHECK(strstr(m, "earlier_prompt") == NULL);
    free(m);
    m = result_user_message("make it shorter", "", "You are a tenant...");
    CHECK(m != NULL);
    CHECK(strstr(m, "<earlier_prompt>\nYou are a tenant...\n</earlier_prompt>") != NULL);
    CHECK(strstr(m, "<idea>\nmake it shorter\n</idea>") != NULL);
    CHECK(strstr(m, "<context>") == NULL);
    free(m);
    m = result_user_message("idea", NULL, NULL);
    CHECK(m != NULL);
    CHECK(strstr(m, "no context") != NULL);
    free(m);
}

/* A hostile "{{{{..." must not cost quadratic time: the repair tries a
 * bounded number of candidates. (Runs in milliseconds when bounded.) */
static void test_repair_is_bounded(void) {
    size_t n = 4 * 1024 * 1024;
    char *t = malloc(n);
    CHECK(t != NULL);
    memset(t, '{', n);
    struct improve_result r;
    result_init(&r);
    char *detail = NULL;
    CHECK_INT(result_parse_model_output(t, n, &r, &detail), RESULT_ERR_NOT_JSON);
    CHECK_INT(strlen(detail), RESULT_DETAIL_BYTES);
    free(detail);
    free(t);
}

static void test_strerror(void) {
    for (int c = RESULT_ERR_NOMEM; c <= RESULT_OK; c++)
        CHECK(strlen(result_strerror(c)) > 0);
    CHECK(strlen(result_strerror(99)) > 0);
}

/* \u0000 in the model's fields: the answer is accepted (the stream showed
 * it), every string field carries U+FFFD instead, other controls stay. */
static void test_nul_becomes_replacement_in_every_field(void) {
    static const char text[] =
        "{\"role\":\"r\\u0000\",\"directive\":\"d\\u0000\",\"framework\":\"f\\u0000\","
        "\"guardrails\":[\"g\\u0000\\u001b[2J\"],\"improved_prompt\":\"a\\u0000b\\u009b\","
        "\"reasoning\":\"\\u0000\",\"confidence\":0.5}";
    struct improve_result r;
    result_init(&r);
    CHECK_INT(parse(text, &r, NULL), RESULT_OK);
    CHECK_STR(r.improved_prompt, "a" UTF8_REPLACEMENT "b\xC2\x9B");
    CHECK_STR(r.role, "r" UTF8_REPLACEMENT);
    CHECK_STR(r.directive, "d" UTF8_REPLACEMENT);
    CHECK_STR(r.framework, "f" UTF8_REPLACEMENT);
    CHECK_STR(r.reasoning, UTF8_REPLACEMENT);
    CHECK_STR(json_string_value(json_array_get(r.guardrails, 0)), "g" UTF8_REPLACEMENT "\x1b[2J");
    result_clear(&r);
}

int main(void) {
    RUN(test_clean_json);
    RUN(test_repairs);
    RUN(test_think_inside_string_is_kept);
    RUN(test_double_encoded);
    RUN(test_failures_and_detail);
    RUN(test_detail_is_bounded_and_valid);
    RUN(test_required_strings);
    RUN(test_guardrails_coercion);
    RUN(test_fields_are_bounded);
    RUN(test_reasoning_rules);
    RUN(test_confidence_rules);
    RUN(test_copy);
    RUN(test_quality_score);
    RUN(test_to_json);
    RUN(test_schema);
    RUN(test_system_prompt);
    RUN(test_system_prompt_example_parses);
    RUN(test_user_message);
    RUN(test_repair_is_bounded);
    RUN(test_strerror);
    RUN(test_nul_becomes_replacement_in_every_field);
    UNIT_EXIT();
}
