/* The builtin offline improver; see llm_builtin.h and docs/builtin.md.
 * It never rewrites the idea: it quotes it whole and builds the structure
 * around it from a table of domains, so it cannot distort what the person
 * said. Everything is a pure function of (idea, context). */
#include "llm_builtin.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "llm_provider.h"
#include "utf8.h"
#include "xalloc.h"

/* Ideas with fewer words than this are "short": the prompt asks for the
 * missing inputs and the confidence drops. */
#define BUILTIN_SHORT_WORDS 8
/* Ideas longer than this (or of several sentences) get a directive that
 * points at the quoted request instead of repeating it. */
#define BUILTIN_DIRECTIVE_MAX_WORDS 30
#define BUILTIN_GUARDRAILS_MAX      5

enum domain {
    DOMAIN_CODE,
    DOMAIN_DATA,
    DOMAIN_WRITING,
    DOMAIN_MARKETING,
    DOMAIN_PLANNING,
    DOMAIN_CREATIVE,
    DOMAIN_LEARNING,
    DOMAIN_GENERAL,
    DOMAIN_COUNT
};

/* A keyword ending in '*' matches any word it starts; weight 2 for words
 * that name the domain, 1 for words that merely lean towards it. */
struct keyword {
    const char *word;
    int weight;
};

struct domain_spec {
    const char *name;
    const char *role;
    const char *framework; /* default; code switches to Chain of Thought when debugging */
    const char *lead;      /* directive for ideas that are not an imperative sentence */
    const char *style, *tone, *audience;
    const char *format;   /* what the response should look like */
    const char *steps[4]; /* RISEN steps / Chain of Thought reasoning steps */
    const char *goal;     /* RISEN end goal */
    const char *missing;  /* the inputs this kind of task usually lacks */
    bool always_ask;      /* the task cannot be done without those inputs */
    const char *guardrails[4];
    const struct keyword *keywords;
};

static const struct keyword kw_code[] = {
    {"code", 2},       {"coding", 2},    {"bug*", 2},       {"debug*", 2},     {"function*", 2},
    {"script*", 2},    {"python", 2},    {"javascript", 2}, {"typescript", 2}, {"java", 2},
    {"rust", 2},       {"golang", 2},    {"c++", 2},        {"api", 2},        {"compil*", 2},
    {"exception*", 2}, {"refactor*", 2}, {"program*", 2},   {"regex", 2},      {"git", 2},
    {"docker*", 2},    {"deploy*", 2},   {"crash*", 2},     {"segfault", 2},   {"stacktrace", 2},
    {"library", 1},    {"npm", 2},       {"html", 2},       {"css", 2},        {"react", 2},
    {"bash", 2},       {"shell", 1},     {"linux", 1},      {"endpoint*", 2},  {"error*", 1},
    {"fix", 1},        {"test*", 1},     {"app", 1},        {"server", 1},     {NULL, 0}};
static const struct keyword kw_data[] = {
    {"sql", 3},        {"query", 2},  {"queries", 2}, {"database*", 2},    {"data", 2},
    {"dataset*", 2},   {"csv", 2},    {"excel", 2},   {"spreadsheet*", 2}, {"analy*", 2},
    {"statistic*", 2}, {"chart*", 2}, {"metric*", 2}, {"dashboard*", 2},   {"pandas", 2},
    {"postgres*", 2},  {"mysql", 2},  {"sqlite", 2},  {"table*", 1},       {"regression", 2},
    {"forecast*", 2},  {"kpi*", 2},   {"survey*", 1}, {"numbers", 1},      {NULL, 0}};
static const struct keyword kw_writing[] = {
    {"email*", 2},      {"e-mail*", 2},    {"mail", 2},      {"letter*", 2},    {"write", 1},
    {"writing", 1},     {"draft*", 1},     {"reply", 2},     {"respond", 1},    {"message*", 2},
    {"blog*", 2},       {"article*", 2},   {"essay*", 2},    {"complaint*", 2}, {"complain*", 2},
    {"invitation*", 2}, {"invite*", 1},    {"apolog*", 2},   {"thank*", 2},     {"linkedin", 2},
    {"speech*", 2},     {"memo*", 2},      {"resume", 2},    {"cv", 2},         {"cover", 1},
    {"proposal*", 1},   {"report*", 1},    {"landlord*", 1}, {"boss", 1},       {"colleague*", 1},
    {"rewrite", 2},     {"proofread*", 2}, {"edit", 1},      {NULL, 0}};
static const struct keyword kw_marketing[] = {
    {"marketing", 3}, {"market", 1},  {"ad", 2},          {"ads", 2},         {"advert*", 2},
    {"campaign*", 2}, {"slogan*", 2}, {"brand*", 2},      {"seo", 2},         {"landing", 2},
    {"product*", 1},  {"launch*", 1}, {"sales", 2},       {"sell*", 2},       {"pitch*", 2},
    {"customer*", 1}, {"promo*", 2},  {"tagline*", 2},    {"newsletter*", 2}, {"conversion*", 2},
    {"instagram", 2}, {"tiktok", 2},  {"copywriting", 3}, {"copy", 1},        {"audience", 1},
    {NULL, 0}};
static const struct keyword kw_planning[] = {
    {"plan", 2},       {"plans", 2},    {"planning", 2}, {"schedul*", 2},  {"roadmap*", 2},
    {"project*", 1},   {"trip", 2},     {"travel*", 2},  {"itinerar*", 2}, {"organi*", 2},
    {"checklist*", 2}, {"strategy", 1}, {"goal*", 1},    {"budget*", 1},   {"timeline*", 2},
    {"week", 1},       {"weekly", 1},   {"routine*", 2}, {"habit*", 1},    {"migrat*", 1},
    {"prepar*", 1},    {"wedding", 2},  {"event", 1},    {"moving", 1},    {"steps", 1},
    {NULL, 0}};
static const struct keyword kw_creative[] = {
    {"story", 2},    {"stories", 2}, {"poem*", 3},      {"poetry", 3},  {"song*", 2},
    {"lyrics", 2},   {"fiction", 2}, {"character*", 1}, {"novel*", 2},  {"joke*", 2},
    {"creative", 2}, {"fantasy", 2}, {"plot", 1},       {"haiku*", 3},  {"screenplay*", 2},
    {"tale*", 2},    {"rap", 2},     {"limerick*", 3},  {"imagine", 1}, {"bedtime", 2},
    {NULL, 0}};
static const struct keyword kw_learning[] = {
    {"explain*", 2}, {"learn*", 2},   {"understand*", 2}, {"teach*", 2},     {"tutorial*", 2},
    {"study", 2},    {"studying", 2}, {"lesson*", 2},     {"concept*", 2},   {"eli5", 3},
    {"quiz*", 2},    {"course*", 1},  {"beginner*", 1},   {"difference", 1}, {"what", 1},
    {"how", 1},      {"why", 1},      {NULL, 0}};
static const struct keyword kw_none[] = {{NULL, 0}};

static const char ask_guardrail[] = "Ask for any missing inputs before you start";

/* Domains in tie-break order: the more specific first. */
static const struct domain_spec domains[DOMAIN_COUNT] = {
    [DOMAIN_CODE] = {"code",
                     "senior software engineer",
                     "RTF",
                     "Help me with the programming task in my request",
                     NULL,
                     NULL,
                     NULL,
                     "the cause or approach in two or three sentences, then complete code "
                     "changes in fenced code blocks, then how to test them",
                     {"Restate what the code should do and what it does instead",
                      "List the likely causes and rule them out one by one using the evidence",
                      "Name the cause you are confident of",
                      "Propose the smallest fix and explain why it works"},
                     NULL,
                     "the code, the exact error message, the language and library versions",
                     true,
                     {"Do not invent APIs, functions or library behaviour",
                      "Explain the cause before giving the fix",
                      "Give complete code changes, not fragments that leave gaps",
                      "Say how to test that the change works"},
                     kw_code},
    [DOMAIN_DATA] = {"data",
                     "senior data analyst and SQL expert",
                     "Chain of Thought",
                     "Help me with the data task in my request",
                     NULL,
                     NULL,
                     NULL,
                     "a short summary of the finding first, then the reasoning, then the "
                     "queries or steps to run, each with how to verify it",
                     {"State what the data or query must answer",
                      "Examine the evidence (schema, plan, sample rows) step by step",
                      "Identify the cause or the pattern and how sure you are",
                      "Recommend changes ranked by expected impact"},
                     NULL,
                     "the query or data, the table definitions, approximate row counts and the "
                     "database or tool used",
                     true,
                     {"Do not guess a cause or a number without evidence",
                      "State every assumption about the schema and the data",
                      "Rank recommendations by expected impact", "Say how to verify each result"},
                     kw_data},
    [DOMAIN_WRITING] = {"writing",
                        "experienced writer of clear, courteous correspondence",
                        "CO-STAR",
                        "Write the text my request asks for",
                        "clear, direct and well organised",
                        "polite and confident",
                        "the person the text is for, as my request describes",
                        "the finished text, ready to send, under 200 words; for an email or "
                        "letter, a subject line first",
                        {NULL, NULL, NULL, NULL},
                        NULL,
                        "who the reader is, the key facts, and the outcome I want",
                        false,
                        {"Do not invent facts, names, dates or numbers; use [placeholders]",
                         "Keep it under 200 words",
                         "Match the tone to the reader; no threats or flattery",
                         "End with one clear request or next step"},
                        kw_writing},
    [DOMAIN_MARKETING] = {"marketing",
                          "senior marketing copywriter",
                          "CO-STAR",
                          "Write the marketing copy my request asks for",
                          "vivid, concrete and benefit-led",
                          "confident and friendly",
                          "the customers my request describes; ask me if unclear",
                          "three short alternatives, each with a headline, body copy and a "
                          "call to action",
                          {NULL, NULL, NULL, NULL},
                          NULL,
                          "the product, the target audience, the channel and the key benefit",
                          false,
                          {"Make no claims the product cannot back up",
                           "Write for one clearly defined audience",
                           "Include exactly one clear call to action",
                           "Fit the length limits of the channel"},
                          kw_marketing},
    [DOMAIN_PLANNING] = {"planning",
                         "experienced planner and project organiser",
                         "RISEN",
                         "Make a step-by-step plan for my request",
                         NULL,
                         NULL,
                         NULL,
                         "a numbered plan of at most 10 steps, each with what to do, when, and "
                         "what it needs",
                         {"Clarify the goal, the deadline and the constraints",
                          "Break the work into concrete steps in order",
                          "Give each step a time frame and what it depends on",
                          "Flag the main risks and a fallback for each"},
                         "a realistic plan I can start on today",
                         "the goal, the deadline, the budget and the people or resources available",
                         false,
                         {"Make every step concrete and doable",
                          "Do not assume dates, budget or resources I did not give",
                          "Flag risks and dependencies", "Keep the plan to at most 10 steps"},
                         kw_planning},
    [DOMAIN_CREATIVE] =
        {"creative",
         "imaginative writer with a strong sense of voice",
         "CO-STAR",
         "Write the creative piece my request asks for",
         "original and vivid, with concrete images",
         "matching the mood of my request",
         "general readers, unless my request names someone else",
         "the finished piece only, at a length that reads in under three minutes",
         {NULL, NULL, NULL, NULL},
         NULL,
         "the form, the length, the mood and any names or details to include",
         false,
         {"Keep every element my request names", "Avoid cliches and stock phrases",
          "Keep the content suitable for a general audience unless asked otherwise"},
         kw_creative},
    [DOMAIN_LEARNING] = {"learning",
                         "patient expert teacher",
                         "RTF",
                         "Explain clearly what my request asks about",
                         NULL,
                         NULL,
                         NULL,
                         "a plain-language explanation under 300 words: a one-sentence answer, "
                         "then the key ideas, one concrete example, and a short recap",
                         {NULL, NULL, NULL, NULL},
                         NULL,
                         "my current level and what I need the explanation for",
                         false,
                         {"Define every technical term when first used",
                          "Use one concrete, everyday example",
                          "Say when something is uncertain or debated"},
                         kw_learning},
    [DOMAIN_GENERAL] = {"general",
                        "careful expert in the subject of my request",
                        "RTF",
                        "Help me with my request",
                        NULL,
                        NULL,
                        NULL,
                        "a clear, well-structured answer with headings or bullets where they help",
                        {NULL, NULL, NULL, NULL},
                        NULL,
                        "the purpose, the audience and any constraints",
                        false,
                        {"Do not invent facts; say when you are unsure",
                         "Stay focused on my request",
                         "Keep the answer as short as the task allows"},
                        kw_none},
};

/* Words that start an imperative idea ("email my landlord ..."). */
static const char *const imperative_verbs[] = {
    "write",     "draft",     "email",     "compose",    "create",    "make",      "build",
    "explain",   "summarize", "summarise", "plan",       "fix",       "debug",     "design",
    "generate",  "help",      "give",      "list",       "translate", "rewrite",   "improve",
    "analyze",   "analyse",   "compare",   "find",       "tell",      "teach",     "prepare",
    "organize",  "organise",  "review",    "edit",       "convert",   "optimize",  "optimise",
    "suggest",   "outline",   "describe",  "calculate",  "code",      "implement", "refactor",
    "send",      "reply",     "respond",   "brainstorm", "come",      "show",      "research",
    "check",     "turn",      "set",       "schedule",   "update",    "add",       "remove",
    "clean",     "sort",      "draw",      "announce",   "thank",     "invite",    "apologize",
    "apologise", "pitch",     "sell",      "launch",     "promote",   "proofread", "shorten",
    "expand",    "recommend", "propose",   "document",   "test",      "deploy",    "migrate",
    "convince",  "ask",       "answer",    "solve",      "predict",   "estimate",  "identify",
    "name",      "define",    "learn",     "study",      "cook",      "book",      "get",
    "put",       "keep",      "start",     "stop",       "take",      "buy",       "choose",
    "decide",    "rank",      "rate",      "evaluate",   "assess",    "audit",     NULL};

/* ---- a small string builder ---- */

struct sb {
    char *s; /* owned until handed over */
    size_t len, cap;
};

static void sb_add(struct sb *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_put(struct sb *b, const char *s) {
    sb_add(b, s, strlen(s));
}

/* Hands the string over (caller owns it). */
static char *sb_take(struct sb *b) {
    if (!b->s)
        sb_add(b, "", 0);
    char *s = b->s;
    b->s = NULL;
    return s;
}

/* ---- reading the idea ---- */

#define WORD_MAX 32

/* The next word of s from *pos: ASCII letters, digits and '+#-' lower-cased
 * into w (truncated at WORD_MAX - 1); other bytes separate words. Returns
 * false at the end. Non-ASCII bytes count as letters so that words in
 * other languages stay whole (and simply match no keyword). */
static bool next_word(const char *s, size_t *pos, char *w) {
    size_t i = *pos, n = 0;
    while (s[i] && !(isalnum((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80))
        i++;
    if (!s[i])
        return false;
    while (s[i] && (isalnum((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80 || s[i] == '+' ||
                    s[i] == '#' || s[i] == '-')) {
        if (n < WORD_MAX - 1)
            w[n++] = (char)tolower((unsigned char)s[i]);
        i++;
    }
    w[n] = '\0';
    *pos = i;
    return true;
}

static bool keyword_matches(const char *kw, const char *w) {
    size_t n = strlen(kw);
    if (n > 0 && kw[n - 1] == '*')
        return strncmp(kw, w, n - 1) == 0;
    return strcmp(kw, w) == 0;
}

static int word_weight(const struct keyword *kws, const char *w) {
    for (const struct keyword *k = kws; k->word; k++)
        if (keyword_matches(k->word, w))
            return k->weight;
    return 0;
}

/* The domain whose keywords weigh most in the idea; ties go to the
 * earlier (more specific) domain; no keyword at all is general. */
static enum domain guess_domain(const char *idea) {
    int score[DOMAIN_COUNT] = {0};
    char w[WORD_MAX];
    size_t pos = 0;
    while (next_word(idea, &pos, w))
        for (int d = 0; d < DOMAIN_COUNT; d++)
            score[d] += word_weight(domains[d].keywords, w);
    enum domain best = DOMAIN_GENERAL;
    for (int d = DOMAIN_COUNT - 1; d >= 0; d--)
        if (score[d] > 0 && score[d] >= score[best])
            best = (enum domain)d;
    return best;
}

static size_t count_words(const char *s) {
    char w[WORD_MAX];
    size_t pos = 0, n = 0;
    while (next_word(s, &pos, w))
        n++;
    return n;
}

static bool has_word(const char *s, const char *const *list) {
    char w[WORD_MAX];
    size_t pos = 0;
    while (next_word(s, &pos, w))
        for (const char *const *k = list; *k; k++)
            if (keyword_matches(*k, w))
                return true;
    return false;
}

static bool is_debugging(const char *idea) {
    static const char *const words[] = {"bug*",  "debug*", "error*", "crash*", "fix*",
                                        "fail*", "slow*",  "broken", "why",    "exception*",
                                        "wrong", "leak*",  NULL};
    return has_word(idea, words);
}

static bool starts_imperative(const char *idea) {
    char w[WORD_MAX];
    size_t pos = 0;
    if (!next_word(idea, &pos, w))
        return false;
    for (const char *const *v = imperative_verbs; *v; v++)
        if (strcmp(*v, w) == 0)
            return true;
    return false;
}

/* Several sentences: a full stop, '!' or '?' followed by more text. */
static bool several_sentences(const char *s, size_t len) {
    for (size_t i = 0; i + 1 < len; i++)
        if ((s[i] == '.' || s[i] == '!' || s[i] == '?') && (s[i + 1] == ' ' || s[i + 1] == '\n'))
            return true;
    return false;
}

/* ---- building the fields ---- */

/* The directive: the idea itself when it is one short imperative sentence
 * (first letter capitalised, one full stop), otherwise the domain's lead
 * pointing at the quoted request. */
static char *make_directive(const struct domain_spec *d, const char *idea, size_t len) {
    struct sb b = {0};
    bool short_one = count_words(idea) <= BUILTIN_DIRECTIVE_MAX_WORDS &&
                     !several_sentences(idea, len) && !memchr(idea, '\n', len);
    if (short_one && starts_imperative(idea)) {
        while (len > 0 && strchr(".!?;:, ", idea[len - 1]))
            len--;
        char first = (char)toupper((unsigned char)idea[0]);
        sb_add(&b, &first, 1);
        if (len > 1)
            sb_add(&b, idea + 1, len - 1);
    } else {
        sb_put(&b, d->lead);
        if (short_one) {
            sb_put(&b, ": ");
            while (len > 0 && strchr(".;:, ", idea[len - 1]))
                len--;
            sb_add(&b, idea, len);
            if (len > 0 && (idea[len - 1] == '?' || idea[len - 1] == '!'))
                return sb_take(&b); /* its own end mark closes the sentence */
        }
    }
    sb_put(&b, ".");
    return sb_take(&b);
}

static json_t *make_guardrails(const struct domain_spec *d, bool ask) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < 4 && d->guardrails[i]; i++)
        if (json_array_append_new(arr, json_string(d->guardrails[i])) != 0)
            goto fail;
    if (arr && ask && json_array_size(arr) < BUILTIN_GUARDRAILS_MAX &&
        json_array_append_new(arr, json_string(ask_guardrail)) != 0)
        goto fail;
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

static const char *article(const char *word) {
    return strchr("aeiouAEIOU", word[0]) ? "an" : "a";
}

/* "You are a <role>." */
static void put_role(struct sb *b, const struct domain_spec *d) {
    sb_put(b, "You are ");
    sb_put(b, article(d->role));
    sb_put(b, " ");
    sb_put(b, d->role);
    sb_put(b, ".\n\n");
}

static void put_request(struct sb *b, const char *idea) {
    sb_put(b, "My request, in my own words: \"");
    sb_put(b, idea);
    sb_put(b, "\"\n");
}

static void put_context(struct sb *b, const char *label, const char *context) {
    sb_put(b, label);
    if (context) {
        sb_put(b, context);
        sb_put(b, "\n");
    } else {
        sb_put(b, "only what my request says; use [placeholders] for details it does not give.\n");
    }
}

static void put_ask(struct sb *b, const struct domain_spec *d) {
    sb_put(b, "Before you start, if I have not given you ");
    sb_put(b, d->missing);
    sb_put(b, ", ask me for them and wait for my answer.\n");
}

static void put_guardrails(struct sb *b, const char *label, const json_t *guardrails) {
    size_t i;
    const json_t *g;
    sb_put(b, "\n");
    sb_put(b, label);
    sb_put(b, ":\n");
    json_array_foreach(guardrails, i, g) {
        sb_put(b, "- ");
        sb_put(b, json_string_value(g));
        sb_put(b, "\n");
    }
}

struct draft {
    const struct domain_spec *d;
    const char *framework;
    const char *idea;    /* trimmed, NUL-terminated */
    const char *context; /* trimmed, NUL-terminated, NULL when none */
    const char *directive;
    const json_t *guardrails;
    bool ask;
};

static void prompt_co_star(struct sb *b, const struct draft *t) {
    put_role(b, t->d);
    put_context(b, "Context: ", t->context);
    sb_put(b, "Objective: ");
    sb_put(b, t->directive);
    sb_put(b, "\n");
    put_request(b, t->idea);
    sb_put(b, "Style: ");
    sb_put(b, t->d->style);
    sb_put(b, ".\nTone: ");
    sb_put(b, t->d->tone);
    sb_put(b, ".\nAudience: ");
    sb_put(b, t->d->audience);
    sb_put(b, ".\nResponse: ");
    sb_put(b, t->d->format);
    sb_put(b, ".\n");
    if (t->ask)
        put_ask(b, t->d);
    put_guardrails(b, "Constraints", t->guardrails);
}

/* The domain's steps as a numbered list. */
static void put_steps(struct sb *b, const struct domain_spec *d) {
    for (int i = 0; i < 4 && d->steps[i]; i++) {
        char num[8] = {(char)('1' + i), '.', ' ', 0};
        sb_put(b, num);
        sb_put(b, d->steps[i]);
        sb_put(b, ".\n");
    }
}

/* Role, the directive under its framework's label, the request in the
 * person's words, the context, and the ask-for-inputs line when vague. */
static void put_opening(struct sb *b, const struct draft *t, const char *label) {
    put_role(b, t->d);
    sb_put(b, label);
    sb_put(b, t->directive);
    sb_put(b, "\n");
    put_request(b, t->idea);
    if (t->context)
        put_context(b, "Context: ", t->context);
    if (t->ask)
        put_ask(b, t->d);
}

static void prompt_risen(struct sb *b, const struct draft *t) {
    put_opening(b, t, "Instructions: ");
    sb_put(b, "\nSteps:\n");
    put_steps(b, t->d);
    sb_put(b, "\nEnd goal: ");
    sb_put(b, t->d->goal);
    sb_put(b, ", given as ");
    sb_put(b, t->d->format);
    sb_put(b, ".\n");
    put_guardrails(b, "Narrowing", t->guardrails);
}

static void prompt_chain_of_thought(struct sb *b, const struct draft *t) {
    put_opening(b, t, "Task: ");
    sb_put(b, "\nThen reason step by step before you conclude:\n");
    put_steps(b, t->d);
    sb_put(b, "\nFormat: ");
    sb_put(b, t->d->format);
    sb_put(b, ".\n");
    put_guardrails(b, "Constraints", t->guardrails);
}

static void prompt_rtf(struct sb *b, const struct draft *t) {
    put_opening(b, t, "Task: ");
    sb_put(b, "Format: ");
    sb_put(b, t->d->format);
    sb_put(b, ".\n");
    put_guardrails(b, "Constraints", t->guardrails);
}

static char *make_prompt(const struct draft *t) {
    struct sb b = {0};
    if (strcmp(t->framework, "CO-STAR") == 0)
        prompt_co_star(&b, t);
    else if (strcmp(t->framework, "RISEN") == 0)
        prompt_risen(&b, t);
    else if (strcmp(t->framework, "Chain of Thought") == 0)
        prompt_chain_of_thought(&b, t);
    else
        prompt_rtf(&b, t);
    /* Drop the final newline: the prompt is pasted as it is. */
    if (b.len > 0 && b.s[b.len - 1] == '\n')
        b.s[--b.len] = '\0';
    return sb_take(&b);
}

static char *make_reasoning(const struct domain_spec *d, const char *framework, bool ask) {
    struct sb b = {0};
    sb_put(&b, "Offline template (builtin provider, no language model): keywords suggest a ");
    sb_put(&b, d->name);
    sb_put(&b, " task, so it uses ");
    sb_put(&b, framework);
    sb_put(&b, " and quotes the idea unchanged");
    sb_put(&b, ask ? "; the idea is short, so the prompt asks for missing inputs." : ".");
    sb_put(&b, " Review it, or use an LLM provider for a tailored result.");
    return sb_take(&b);
}

/* Lower for ideas that give the template less to go on. */
static double make_confidence(enum domain dom, size_t words) {
    double c = 0.3;
    if (words < BUILTIN_SHORT_WORDS)
        c = 0.2;
    if (words < 4)
        c = 0.1;
    if (dom == DOMAIN_GENERAL && c > 0.2)
        c = 0.2;
    return c;
}

/* A trimmed NUL-terminated copy, NULL when blank. */
static char *trimmed(const char *s) {
    size_t n;
    const char *t = utf8_trim(s ? s : "", s ? strlen(s) : 0, &n);
    return n ? xstrndup(t, n) : NULL;
}

int builtin_improve(const char *idea_in, const char *context_in, struct improve_result *out) {
    result_clear(out);
    char *idea = trimmed(idea_in);
    char *context = trimmed(context_in);
    if (!idea)
        idea = xstrdup("(no idea given)"); /* the caller validates; stay total anyway */
    enum domain dom = guess_domain(idea);
    const struct domain_spec *d = &domains[dom];
    size_t words = count_words(idea);
    bool vague = words < BUILTIN_SHORT_WORDS || dom == DOMAIN_GENERAL;
    struct draft t = {d, d->framework, idea, context, NULL, NULL, vague || d->always_ask};
    if (dom == DOMAIN_CODE && is_debugging(idea))
        t.framework = "Chain of Thought";

    out->role = xstrdup(d->role);
    out->framework = xstrdup(t.framework);
    out->directive = make_directive(d, idea, strlen(idea));
    out->guardrails = make_guardrails(d, vague);
    t.directive = out->directive;
    t.guardrails = out->guardrails;
    if (out->directive && out->guardrails)
        out->improved_prompt = make_prompt(&t);
    out->reasoning = make_reasoning(d, t.framework, vague);
    out->has_confidence = true;
    out->confidence = make_confidence(dom, words);
    free(idea);
    free(context);
    if (!out->guardrails || !out->improved_prompt) { /* jansson refused to build them */
        result_clear(out);
        return RESULT_ERR_TYPE;
    }
    /* The role reads as a title in the result; the prompt uses it inline. */
    out->role[0] = (char)toupper((unsigned char)out->role[0]);
    return RESULT_OK;
}

/* A local provider: no URL, no key, no parser; the engine calls
 * improve_local from the loop instead of sending a request. */
const struct llm_provider llm_provider_builtin = {
    .name = BUILTIN_NAME,
    .label = "the builtin improver",
    .default_model = BUILTIN_NAME,
    .improve_local = builtin_improve,
};
