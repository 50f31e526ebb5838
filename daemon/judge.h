/* The judge's deterministic layer: what can be told about an improved
 * prompt without asking a model, in well under a millisecond. Each check
 * is one property of a good prompt (docs/judge.md has the rubric they
 * approximate); together they rank a structured prompt above a vague one
 * for the same idea. Pure functions over borrowed text, no allocation but
 * the JSON they return. */
#ifndef PROMPTD_JUDGE_H
#define PROMPTD_JUDGE_H

#include <jansson.h>
#include <stdbool.h>

/* The checks, in the order they are reported. */
enum judge_check {
    JUDGE_ROLE,          /* a role is set ("You are a ...") */
    JUDGE_INSTRUCTION,   /* the task is stated as an instruction */
    JUDGE_FORMAT,        /* an output format or length is given */
    JUDGE_GUARDRAILS,    /* constraints exist ("do not", "only", "avoid") */
    JUDGE_INPUTS,        /* missing inputs are asked for or [bracketed] */
    JUDGE_PROPORTIONATE, /* the length fits the idea */
    JUDGE_FAITHFUL,      /* the idea's key words are kept */
    JUDGE_NOT_AN_ANSWER, /* it is a prompt, not an answer to itself */
    JUDGE_SAME_LANGUAGE, /* written in the idea's language */
    JUDGE_CHECK_COUNT
};

/* The five rubric criteria, 0..1 each. */
struct judge_criteria {
    double faithful, specific, actionable, bounded, proportionate;
};

struct judge_result {
    bool passed[JUDGE_CHECK_COUNT];
    struct judge_criteria criteria; /* derived from the checks */
    double score;                   /* 0..1: the share of checks passed */
    int prompt_words;
    double kept_words; /* share of the idea's key words found in the prompt */
};

/* Runs every check on prompt for idea and context (either may be NULL or
 * empty: the checks that need them then pass). */
void judge_run(const char *prompt, const char *idea, const char *context, struct judge_result *out);

/* "role", "instruction", ... (the keys of `checks` in the protocol). */
const char *judge_check_name(enum judge_check c);

/* {"role": true, ...}. New reference. */
json_t *judge_checks_json(const struct judge_result *r);
/* {"faithful": 0.5, ...}. New reference. */
json_t *judge_criteria_json(const struct judge_criteria *c);
/* One or two sentences naming what to fix, written as an instruction for
 * a refinement ("Add a role ...; state the output format ..."), or a
 * sentence saying nothing is missing. New reference (string). */
json_t *judge_feedback_json(const struct judge_result *r);

#endif
