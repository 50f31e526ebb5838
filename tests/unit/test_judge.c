/* The judge's deterministic checks and the language detector they use:
 * each check with a prompt that has the property and one that lacks it,
 * and the score ranking a structured prompt above a vague one. */
#include "judge.h"
#include "lang.h"
#include "unit.h"

#define LANDLORD_IDEA "email my landlord about the broken heater"

/* PROMPT-QUALITY.md's worked example, in our own words. */
static const char *const good_prompt =
    "You are a tenant writing a firm but polite email to your landlord. Context: the heater "
    "has broken for the third time this winter and a toddler lives in the flat. Write an email "
    "that asks for the heater to be repaired within 48 hours. Format: a subject line and a body "
    "under 200 words. List the earlier reports as [date] placeholders. Do not threaten the "
    "landlord; keep the tone calm and factual, and end with a clear request and a deadline.";

static const char *const vague_prompt = "Write an email to my landlord about the heater.";

static bool check(const char *prompt, const char *idea, enum judge_check c) {
    struct judge_result r;
    judge_run(prompt, idea, "", &r);
    return r.passed[c];
}

static void test_a_structured_prompt_passes_every_check(void) {
    struct judge_result r;
    judge_run(good_prompt, LANDLORD_IDEA, "third time this winter, I have a toddler", &r);
    for (int c = 0; c < JUDGE_CHECK_COUNT; c++) {
        if (!r.passed[c])
            printf("  check %s failed\n", judge_check_name((enum judge_check)c));
        CHECK(r.passed[c]);
    }
    CHECK(r.score == 1.0);
}

static void test_structured_ranks_above_vague(void) {
    struct judge_result good, vague;
    judge_run(good_prompt, LANDLORD_IDEA, "", &good);
    judge_run(vague_prompt, LANDLORD_IDEA, "", &vague);
    CHECK(good.score > vague.score);
    CHECK(good.criteria.specific > vague.criteria.specific);
    CHECK(good.criteria.bounded > vague.criteria.bounded);
}

static void test_role(void) {
    CHECK(check(good_prompt, LANDLORD_IDEA, JUDGE_ROLE));
    CHECK(check("Act as a database engineer and explain the plan.", "", JUDGE_ROLE));
    CHECK(!check(vague_prompt, LANDLORD_IDEA, JUDGE_ROLE));
}

static void test_instruction(void) {
    CHECK(check("Context: a slow query. Diagnose why it is slow.", "", JUDGE_INSTRUCTION));
    CHECK(check("Your task is a summary of the thread.", "", JUDGE_INSTRUCTION));
    CHECK(!check("A poem. Rain. Autumn in the city, grey light.", "", JUDGE_INSTRUCTION));
}

static void test_format(void) {
    CHECK(check("Answer in three bullet points.", "", JUDGE_FORMAT));
    CHECK(check("Keep it under 100 words.", "", JUDGE_FORMAT));
    CHECK(!check(vague_prompt, LANDLORD_IDEA, JUDGE_FORMAT));
}

static void test_guardrails(void) {
    CHECK(check("Never invent figures.", "", JUDGE_GUARDRAILS));
    CHECK(check("Avoid jargon.", "", JUDGE_GUARDRAILS));
    CHECK(!check(vague_prompt, LANDLORD_IDEA, JUDGE_GUARDRAILS));
}

static void test_inputs(void) {
    CHECK(check("Sign it as [your name].", "", JUDGE_INPUTS));
    CHECK(check("If I have not given you the schema, ask me for it.", "", JUDGE_INPUTS));
    CHECK(!check(vague_prompt, LANDLORD_IDEA, JUDGE_INPUTS));
    CHECK(!check("Compare a[0] and b.", "", JUDGE_INPUTS)); /* no stretch inside */
}

static void test_proportionate(void) {
    CHECK(check(good_prompt, LANDLORD_IDEA, JUDGE_PROPORTIONATE));
    CHECK(!check(vague_prompt, LANDLORD_IDEA, JUDGE_PROPORTIONATE)); /* too short */
    char long_prompt[8000] = "";
    for (int i = 0; i < 400; i++)
        strcat(long_prompt, "write more ");
    CHECK(!check(long_prompt, LANDLORD_IDEA, JUDGE_PROPORTIONATE)); /* 800 words */
}

static void test_faithful(void) {
    CHECK(check(good_prompt, LANDLORD_IDEA, JUDGE_FAITHFUL));
    /* "heater" kept as "heating": a stem, not a spelling */
    CHECK(check("Write to the landlord about the broken heating by email.", LANDLORD_IDEA,
                JUDGE_FAITHFUL));
    CHECK(!check("You are a poet. Write a haiku about the sea in spring.", LANDLORD_IDEA,
                 JUDGE_FAITHFUL));
}

static void test_not_an_answer(void) {
    CHECK(check(good_prompt, LANDLORD_IDEA, JUDGE_NOT_AN_ANSWER));
    CHECK(!check("Dear landlord, the heater is broken again. Please repair it.", LANDLORD_IDEA,
                 JUDGE_NOT_AN_ANSWER));
    CHECK(!check("Sure! Here is an email you can send.", LANDLORD_IDEA, JUDGE_NOT_AN_ANSWER));
}

static void test_same_language(void) {
    const char *idea = "\xc3\xa9"
                       "crire un courriel \xc3\xa0 mon propri\xc3\xa9taire au sujet du "
                       "chauffage en panne";
    CHECK(!check(good_prompt, idea, JUDGE_SAME_LANGUAGE));
    CHECK(check("Vous \xc3\xaates un locataire. \xc3\x89"
                "crivez un courriel \xc3\xa0 votre "
                "propri\xc3\xa9taire pour le chauffage en panne, en moins de 150 mots.",
                idea, JUDGE_SAME_LANGUAGE));
    CHECK(check(good_prompt, "asdf qwer", JUDGE_SAME_LANGUAGE)); /* unknown: passes */
}

static void test_feedback_names_what_to_fix(void) {
    struct judge_result r;
    judge_run(vague_prompt, LANDLORD_IDEA, "", &r);
    json_t *f = judge_feedback_json(&r);
    const char *text = json_string_value(f);
    CHECK(text && strstr(text, "role") && strstr(text, "format") && strstr(text, "9 words"));
    json_decref(f);
    judge_run(good_prompt, LANDLORD_IDEA, "", &r);
    f = judge_feedback_json(&r);
    CHECK_STR(json_string_value(f), "Every check passes: keep the prompt's structure.");
    json_decref(f);
}

static void test_json_names_every_check_and_criterion(void) {
    struct judge_result r;
    judge_run(good_prompt, LANDLORD_IDEA, "", &r);
    json_t *checks = judge_checks_json(&r), *criteria = judge_criteria_json(&r.criteria);
    CHECK_INT(json_object_size(checks), JUDGE_CHECK_COUNT);
    CHECK(json_is_true(json_object_get(checks, "not_an_answer")));
    CHECK_INT(json_object_size(criteria), 5);
    CHECK(json_real_value(json_object_get(criteria, "bounded")) == 1.0);
    json_decref(checks);
    json_decref(criteria);
}

static void test_empty_and_missing_text(void) {
    struct judge_result r;
    judge_run(NULL, NULL, NULL, &r);
    CHECK(r.score < 0.5);
    judge_run("", "", "", &r);
    CHECK(!r.passed[JUDGE_ROLE] && r.passed[JUDGE_FAITHFUL] && r.passed[JUDGE_SAME_LANGUAGE]);
}

static void test_languages(void) {
    struct {
        const char *text;
        enum lang lang;
    } cases[] = {
        {"why is my sql slow", LANG_EN},
        {"email my landlord about the broken heater", LANG_EN},
        {"\xc3\xa9"
         "crire un courriel \xc3\xa0 mon propri\xc3\xa9taire au sujet du chauffage en "
         "panne",
         LANG_FR},
        {"wie kann ich meine SQL-Abfrage beschleunigen", LANG_DE},
        {"escribir un correo a mi jefe para pedir vacaciones", LANG_ES},
        {"como posso escrever uma carta para o meu senhorio", LANG_PT},
        {"come posso scrivere una lettera per il mio padrone di casa", LANG_IT},
        {"asdf qwer zxcv", LANG_UNKNOWN},
        {"", LANG_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum lang got = lang_detect(cases[i].text, strlen(cases[i].text));
        if (got != cases[i].lang)
            printf("  \"%s\": %s, expected %s\n", cases[i].text, lang_code(got),
                   lang_code(cases[i].lang));
        CHECK_INT(got, cases[i].lang);
    }
    CHECK_STR(lang_code(LANG_DE), "de");
    CHECK_STR(lang_name(LANG_PT), "Portuguese");
}

int main(void) {
    RUN(test_a_structured_prompt_passes_every_check);
    RUN(test_structured_ranks_above_vague);
    RUN(test_role);
    RUN(test_instruction);
    RUN(test_format);
    RUN(test_guardrails);
    RUN(test_inputs);
    RUN(test_proportionate);
    RUN(test_faithful);
    RUN(test_not_an_answer);
    RUN(test_same_language);
    RUN(test_feedback_names_what_to_fix);
    RUN(test_json_names_every_check_and_criterion);
    RUN(test_empty_and_missing_text);
    RUN(test_languages);
    UNIT_EXIT();
}
