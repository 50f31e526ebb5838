/* builtin: domain, framework and role per kind of idea; invariants that
 * make it honest (idea kept verbatim, context included, 3-5 guardrails,
 * 60-250 words, low confidence, labelled reasoning); determinism; and
 * the result is valid by the same rules as a model's. */
#include <jansson.h>
#include <stdlib.h>

#include "llm_builtin.h"
#include "unit.h"
#include "utf8.h"

struct expect {
    const char *idea;
    const char *context;
    const char *framework;
    const char *role_starts; /* a prefix of the role */
    bool asks;               /* has the "ask for missing inputs" guardrail */
};

static const struct expect cases[] = {
    {"email my landlord about the broken heater", "third time this winter, I have a toddler",
     "CO-STAR", "Experienced writer", true},
    {"why is my sql slow", NULL, "Chain of Thought", "Senior data analyst", true},
    {"fix the segfault in my C parser when the input file is empty", NULL, "Chain of Thought",
     "Senior software engineer", false},
    {"write a python function that reverses a linked list in place", NULL, "RTF",
     "Senior software engineer", false},
    {"plan a two week trip to Japan in April for a family of four on a budget", NULL, "RISEN",
     "Experienced planner", false},
    {"explain how vaccines train the immune system to a curious ten year old", NULL, "RTF",
     "Patient expert teacher", false},
    {"write a short poem about autumn rain for my mother's birthday card", NULL, "CO-STAR",
     "Imaginative writer", false},
    {"create a slogan and ad copy for the launch of our new vegan protein bar", "brand: Leafy",
     "CO-STAR", "Senior marketing copywriter", false},
    {"something about my garden", NULL, "RTF", "Careful expert", true},
    {"analyze last quarter's churn data in this csv and tell me which customer segments are "
     "leaving",
     "columns: customer_id, plan, signup_date, cancel_date", "Chain of Thought",
     "Senior data analyst", false},
};

static size_t words(const char *s) {
    size_t n = 0;
    bool in = false;
    for (; *s; s++) {
        bool space = *s == ' ' || *s == '\n' || *s == '\t';
        if (!space && !in)
            n++;
        in = !space;
    }
    return n;
}

static bool has_guardrail(const json_t *g, const char *needle) {
    size_t i;
    const json_t *v;
    json_array_foreach(g, i, v) {
        if (strstr(json_string_value(v), needle))
            return true;
    }
    return false;
}

/* The checks every builtin result must pass. */
static int invariants(const char *idea, const char *context, const struct improve_result *r) {
    size_t n;
    const char *t = utf8_trim(idea, strlen(idea), &n);
    char *trimmed = strndup(t, n);
    int ok = strstr(r->improved_prompt, trimmed) != NULL; /* the idea, verbatim */
    free(trimmed);
    if (context && *context)
        ok = ok && strstr(r->improved_prompt, context) != NULL;
    ok = ok && json_array_size(r->guardrails) >= 3 && json_array_size(r->guardrails) <= 5;
    ok = ok && r->has_confidence && r->confidence > 0 && r->confidence <= 0.3;
    ok = ok && r->reasoning && strstr(r->reasoning, "Offline template");
    ok = ok && utf8_valid(r->improved_prompt, strlen(r->improved_prompt));
    ok = ok && r->tokens_prompt == -1 && r->tokens_completion == -1;
    size_t dl = strlen(r->directive);
    ok = ok && dl > 0 && strchr(".?!", r->directive[dl - 1]);
    /* Valid by the rules a model's output is held to. */
    json_t *j = result_to_json(r, NULL);
    struct improve_result again;
    result_init(&again);
    ok = ok && j && result_from_json(j, &again) == RESULT_OK;
    result_clear(&again);
    json_decref(j);
    return ok;
}

static void test_domains_and_frameworks(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct expect *e = &cases[i];
        struct improve_result r;
        result_init(&r);
        CHECK_INT(builtin_improve(e->idea, e->context, &r), RESULT_OK);
        if (strcmp(r.framework, e->framework) != 0 ||
            strncmp(r.role, e->role_starts, strlen(e->role_starts)) != 0)
            printf("  case %zu: %s / %s\n", i, r.framework, r.role);
        CHECK_STR(r.framework, e->framework);
        CHECK(strncmp(r.role, e->role_starts, strlen(e->role_starts)) == 0);
        CHECK_INT(has_guardrail(r.guardrails, "missing inputs"), e->asks);
        CHECK(invariants(e->idea, e->context, &r));
        size_t w = words(r.improved_prompt);
        if (w < 60 || w > 250)
            printf("  case %zu: %zu words\n", i, w);
        CHECK(w >= 60 && w <= 250);
        result_clear(&r);
    }
}

static void test_deterministic(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct improve_result a, b;
        result_init(&a);
        result_init(&b);
        CHECK_INT(builtin_improve(cases[i].idea, cases[i].context, &a), RESULT_OK);
        CHECK_INT(builtin_improve(cases[i].idea, cases[i].context, &b), RESULT_OK);
        json_t *ja = result_to_json(&a, NULL), *jb = result_to_json(&b, NULL);
        CHECK(json_equal(ja, jb));
        json_decref(ja);
        json_decref(jb);
        result_clear(&a);
        result_clear(&b);
    }
}

static void test_confidence_follows_detail(void) {
    struct improve_result r;
    result_init(&r);
    CHECK_INT(builtin_improve("fix it", NULL, &r), RESULT_OK);
    double tiny = r.confidence;
    CHECK_INT(builtin_improve("fix the crash in my python script", NULL, &r), RESULT_OK);
    double shortish = r.confidence;
    CHECK_INT(builtin_improve("fix the crash in my python script when the config file is missing",
                              NULL, &r),
              RESULT_OK);
    double full = r.confidence;
    CHECK(tiny < shortish && shortish < full);
    CHECK(full <= 0.3);
    result_clear(&r);
}

static void test_context_and_trimming(void) {
    struct improve_result a, b, c;
    result_init(&a);
    result_init(&b);
    result_init(&c);
    CHECK_INT(builtin_improve("write a thank you note to my team", NULL, &a), RESULT_OK);
    CHECK_INT(builtin_improve("  write a thank you note to my team\n", "  ", &b), RESULT_OK);
    CHECK_STR(a.improved_prompt, b.improved_prompt);
    CHECK_INT(builtin_improve("write a thank you note to my team", "we shipped v2 on Friday", &c),
              RESULT_OK);
    CHECK(strstr(c.improved_prompt, "we shipped v2 on Friday") != NULL);
    CHECK(strstr(a.improved_prompt, "[placeholders]") != NULL); /* no context: no invention */
    result_clear(&a);
    result_clear(&b);
    result_clear(&c);
}

static void test_directive(void) {
    struct improve_result r;
    result_init(&r);
    CHECK_INT(builtin_improve("email my landlord about the broken heater!", NULL, &r), RESULT_OK);
    CHECK_STR(r.directive, "Email my landlord about the broken heater.");
    CHECK_INT(builtin_improve("what is a monad?", NULL, &r), RESULT_OK);
    CHECK_STR(r.directive, "Explain clearly what my request asks about: what is a monad?");
    CHECK_INT(builtin_improve("I need to migrate our app to Postgres. It has 40 tables.", NULL, &r),
              RESULT_OK);
    CHECK(strchr(r.directive, ':') == NULL); /* several sentences: points at the request */
    CHECK(r.directive[strlen(r.directive) - 1] == '.');
    CHECK_INT(builtin_improve("....", NULL, &r), RESULT_OK);
    CHECK(invariants("....", NULL, &r));
    result_clear(&r);
}

static void test_other_languages_and_long_ideas(void) {
    struct improve_result r;
    result_init(&r);
    const char *fr = "\xC3\xA9"
                     "cris un courriel \xC3\xA0 mon propri\xC3\xA9taire";
    CHECK_INT(builtin_improve(fr, NULL, &r), RESULT_OK);
    CHECK(invariants(fr, NULL, &r));
    size_t n = 3000;
    char *longidea = malloc(n * 6 + 1);
    CHECK(longidea != NULL);
    longidea[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(longidea, i % 7 ? "data " : "query ");
    CHECK_INT(builtin_improve(longidea, NULL, &r), RESULT_OK);
    CHECK(invariants(longidea, NULL, &r));
    CHECK(strlen(r.directive) < 200);
    free(longidea);
    CHECK_INT(builtin_improve("", NULL, &r), RESULT_OK); /* total, even if callers never do this */
    CHECK(r.improved_prompt != NULL);
    CHECK_INT(builtin_improve(NULL, NULL, &r), RESULT_OK);
    result_clear(&r);
}

int main(void) {
    RUN(test_domains_and_frameworks);
    RUN(test_deterministic);
    RUN(test_confidence_follows_detail);
    RUN(test_context_and_trimming);
    RUN(test_directive);
    RUN(test_other_languages_and_long_ideas);
    UNIT_EXIT();
}
