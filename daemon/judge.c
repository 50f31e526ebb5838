#include "judge.h"

#include <stdio.h>
#include <string.h>

#include "lang.h"

/* Phrases are matched case-insensitively (ASCII) anywhere in the prompt.
 * Each list holds the commonest ways to say the thing in the six
 * languages lang.c knows; a prompt that says it otherwise fails the check,
 * which costs a point, not a refusal. */
static const char *const judge_role_phrases[] = {"you are ",
                                                 "you're ",
                                                 "act as ",
                                                 "acting as ",
                                                 "as a ",
                                                 "as an ",
                                                 "role:",
                                                 "your role",
                                                 "tu es ",
                                                 "vous \xc3\xaates ",
                                                 "en tant que ",
                                                 "du bist ",
                                                 "sie sind ",
                                                 "agiere als ",
                                                 "eres ",
                                                 "usted es ",
                                                 "act\xc3\xba"
                                                 "a como ",
                                                 "voc\xc3\xaa \xc3\xa9 ",
                                                 "atue como ",
                                                 "sei un",
                                                 "agisci come ",
                                                 NULL};

/* Verbs that open an instruction, and phrases that announce one. */
static const char *const judge_instruction_verbs[] = {"write",
                                                      "draft",
                                                      "create",
                                                      "explain",
                                                      "diagnose",
                                                      "summarize",
                                                      "summarise",
                                                      "list",
                                                      "review",
                                                      "analyze",
                                                      "analyse",
                                                      "propose",
                                                      "give",
                                                      "generate",
                                                      "help",
                                                      "plan",
                                                      "translate",
                                                      "rewrite",
                                                      "compose",
                                                      "describe",
                                                      "compare",
                                                      "identify",
                                                      "suggest",
                                                      "provide",
                                                      "produce",
                                                      "design",
                                                      "build",
                                                      "outline",
                                                      "prepare",
                                                      "find",
                                                      "ask",
                                                      "read",
                                                      "reason",
                                                      "evaluate",
                                                      "check",
                                                      "answer",
                                                      "recommend",
                                                      "edit",
                                                      "improve",
                                                      "convert",
                                                      "return",
                                                      "classify",
                                                      "extract",
                                                      "tell",
                                                      "teach",
                                                      "make",
                                                      "then",
                                                      "start",
                                                      "begin",
                                                      "use",
                                                      "include",
                                                      "state",
                                                      "rank",
                                                      "close",
                                                      "end",
                                                      "keep",
                                                      "\xc3\xa9"
                                                      "cris",
                                                      "\xc3\xa9"
                                                      "crivez",
                                                      "r\xc3\xa9"
                                                      "dige",
                                                      "r\xc3\xa9"
                                                      "digez",
                                                      "explique",
                                                      "expliquez",
                                                      "donne",
                                                      "donnez",
                                                      "propose",
                                                      "proposez",
                                                      "schreibe",
                                                      "schreiben",
                                                      "erkl\xc3\xa4re",
                                                      "erstelle",
                                                      "gib",
                                                      "nenne",
                                                      "escribe",
                                                      "redacta",
                                                      "explica",
                                                      "crea",
                                                      "escreva",
                                                      "escreve",
                                                      "crie",
                                                      "scrivi",
                                                      "spiega",
                                                      "fornisci",
                                                      "analizza",
                                                      "analiza",
                                                      "analise",
                                                      "analysiere",
                                                      "analyse",
                                                      NULL};
static const char *const judge_instruction_phrases[] = {"your task",
                                                        "task:",
                                                        "objective:",
                                                        "i want you to",
                                                        "please ",
                                                        "you will ",
                                                        "you must ",
                                                        "ta t\xc3\xa2"
                                                        "che",
                                                        "objectif",
                                                        "deine aufgabe",
                                                        "ihre aufgabe",
                                                        "tu tarea",
                                                        "sua tarefa",
                                                        "il tuo compito",
                                                        NULL};

static const char *const judge_format_phrases[] = {
    "format",       "words",        "bullet",        "list",     "table",     "json",
    "paragraph",    "sentence",     "subject line",  "markdown", "response:", "output:",
    "at most",      "no more than", "section",       "steps",    "heading",   "lines",
    "characters",   "mots",         "w\xc3\xb6rter", "palabras", "palavras",  "parole",
    "liste",        "tabelle",      "tabla",         "tabela",   "tabella",   "phrases",
    "s\xc3\xa4tze", "frases",       "frasi",         NULL};

static const char *const judge_guardrail_phrases[] = {"do not",
                                                      "don't",
                                                      "never",
                                                      "avoid",
                                                      "must not",
                                                      "should not",
                                                      "refrain",
                                                      "only ",
                                                      "without inventing",
                                                      "ne pas",
                                                      "n'invente",
                                                      "jamais",
                                                      "nicht ",
                                                      "keine ",
                                                      "niemals",
                                                      "no inventes",
                                                      "nunca",
                                                      "evita",
                                                      "n\xc3\xa3o ",
                                                      "non inventare",
                                                      "mai ",
                                                      "sans ",
                                                      NULL};

static const char *const judge_input_phrases[] = {
    "ask me",      "ask for",        "ask the user", "if i have not", "if i haven't",  "missing",
    "placeholder", "if any",         "demande",      "frage ",        "pregunta",      "pergunte",
    "chiedi",      "si je n'ai pas", "falls ",       "si no ",        "se n\xc3\xa3o", "se non ",
    NULL};

/* How an answer (not a prompt) usually opens. */
static const char *const judge_answer_openings[] = {
    "dear ",     "subject:",  "hi ",          "hello",    "here is",  "here's",        "sure",
    "certainly", "of course", "i'd be happy", "as an ai", "cher ",    "ch\xc3\xa8re ", "bonjour",
    "liebe ",    "lieber ",   "sehr geehrte", "hallo",    "estimado", "estimada",      "hola",
    "prezado",   "prezada",   "ol\xc3\xa1",   "caro ",    "cara ",    "gentile",       "ciao",
    NULL};
/* A prompt addresses the model. */
static const char *const judge_address_words[] = {
    "you", "your", "vous",  "tu",        "ton", "ta",          "du",  "dein", "deine", "sie",
    "ihr", "ihre", "usted", "t\xc3\xba", "tu",  "voc\xc3\xaa", "voi", "ti",   "te",    NULL};

/* Idea words too common to say whether the prompt kept the idea. */
static const char *const judge_common_words[] = {
    "about", "with",  "that",   "this",  "from",  "have", "what", "when", "where", "which",
    "would", "could", "should", "your",  "mine",  "make", "need", "want", "into",  "very",
    "some",  "help",  "please", "there", "their", "they", "will", "just", "like",  NULL};

static bool judge_contains_any(const char *text, const char *const *phrases) {
    for (const char *const *p = phrases; *p; p++)
        if (strcasestr(text, *p))
            return true;
    return false;
}

static bool judge_word_in(const char *word, size_t n, const char *const *list) {
    for (const char *const *w = list; *w; w++)
        if (strlen(*w) == n && memcmp(*w, word, n) == 0)
            return true;
    return false;
}

/* ---- Word-level checks ------------------------------------------------ */

struct judge_words {
    int count;
    bool addressed; /* a second-person word was seen */
};

static int judge_count_word(void *arg, const char *word, size_t n) {
    struct judge_words *w = arg;
    w->count++;
    if (!w->addressed && judge_word_in(word, n, judge_address_words))
        w->addressed = true;
    return 0;
}

static struct judge_words judge_words_of(const char *text) {
    struct judge_words w = {0, false};
    if (text)
        lang_words(text, strlen(text), judge_count_word, &w);
    return w;
}

/* The first word of each sentence, line or list item is an imperative. */
static bool judge_has_instruction_verb(const char *prompt) {
    const char *p = prompt;
    bool at_start = true;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.' || c == '\n' || c == ':' || c == ';' || c == '!' || c == '?' || c == '-' ||
            c == '*') {
            at_start = true;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '"' || (c >= '0' && c <= '9') || c == ')')
            continue;
        if (at_start) {
            size_t n = 0;
            char word[LANG_WORD_MAX];
            while (p[n] && n < sizeof word &&
                   ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
                    (unsigned char)p[n] >= 0x80)) {
                word[n] = (char)(p[n] >= 'A' && p[n] <= 'Z' ? p[n] + 32 : p[n]);
                n++;
            }
            if (n > 0 && judge_word_in(word, n, judge_instruction_verbs))
                return true;
        }
        at_start = false;
    }
    return false;
}

/* Whether s[0..n) holds a letter: "[date]" is a placeholder, "a[0]" not. */
static bool judge_has_letter(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
            (unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* A [bracketed], {braced} or <angled> stretch of words, at most 60 bytes. */
static bool judge_has_placeholder(const char *prompt) {
    static const char pairs[][2] = {{'[', ']'}, {'{', '}'}, {'<', '>'}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        for (const char *open = strchr(prompt, pairs[k][0]); open;
             open = strchr(open + 1, pairs[k][0])) {
            const char *close = strchr(open + 1, pairs[k][1]);
            if (close && close - open <= 60 &&
                judge_has_letter(open + 1, (size_t)(close - open - 1)))
                return true;
        }
    }
    return false;
}

struct judge_kept {
    const char *prompt;
    int total, found;
};

/* An idea word counts as kept when the prompt holds its first five bytes
 * ("heater" -> "heate" also finds "heating"): a stem, not a spelling. */
static int judge_keep_word(void *arg, const char *word, size_t n) {
    struct judge_kept *k = arg;
    if (n < 4 || judge_word_in(word, n, judge_common_words))
        return 0;
    char stem[8];
    size_t m = n < 5 ? n : 5;
    memcpy(stem, word, m);
    stem[m] = '\0';
    k->total++;
    if (strcasestr(k->prompt, stem))
        k->found++;
    return 0;
}

static bool judge_opens_like_an_answer(const char *prompt) {
    while (*prompt == ' ' || *prompt == '\n' || *prompt == '\t' || *prompt == '"')
        prompt++;
    for (const char *const *o = judge_answer_openings; *o; o++)
        if (strncasecmp(prompt, *o, strlen(*o)) == 0)
            return true;
    return false;
}

/* Room for a role, a task, a format and a few constraints, and not the
 * two pages a one-line idea must not become (the rubric's 60-250 words,
 * widened for ideas that bring their own material). */
static bool judge_is_proportionate(int prompt_words, int idea_words) {
    return prompt_words >= 25 && prompt_words <= 350 + 2 * idea_words;
}

void judge_run(const char *prompt, const char *idea, const char *context,
               struct judge_result *out) {
    memset(out, 0, sizeof *out);
    if (!prompt)
        prompt = "";
    struct judge_words pw = judge_words_of(prompt);
    struct judge_words iw = judge_words_of(idea);
    struct judge_words cw = judge_words_of(context);
    out->prompt_words = pw.count;

    struct judge_kept kept = {prompt, 0, 0};
    if (idea)
        lang_words(idea, strlen(idea), judge_keep_word, &kept);
    out->kept_words = kept.total ? (double)kept.found / kept.total : 1.0;

    enum lang idea_lang = idea ? lang_detect(idea, strlen(idea)) : LANG_UNKNOWN;
    enum lang prompt_lang = lang_detect(prompt, strlen(prompt));

    bool *ok = out->passed;
    ok[JUDGE_ROLE] = judge_contains_any(prompt, judge_role_phrases);
    ok[JUDGE_INSTRUCTION] =
        judge_has_instruction_verb(prompt) || judge_contains_any(prompt, judge_instruction_phrases);
    ok[JUDGE_FORMAT] = judge_contains_any(prompt, judge_format_phrases);
    ok[JUDGE_GUARDRAILS] = judge_contains_any(prompt, judge_guardrail_phrases);
    ok[JUDGE_INPUTS] =
        judge_has_placeholder(prompt) || judge_contains_any(prompt, judge_input_phrases);
    ok[JUDGE_PROPORTIONATE] = judge_is_proportionate(pw.count, iw.count + cw.count);
    ok[JUDGE_FAITHFUL] = out->kept_words >= 0.6;
    /* An instruction addresses the model too, without a "you". */
    ok[JUDGE_NOT_AN_ANSWER] =
        (pw.addressed || ok[JUDGE_INSTRUCTION]) && !judge_opens_like_an_answer(prompt);
    ok[JUDGE_SAME_LANGUAGE] = idea_lang == LANG_UNKNOWN || prompt_lang == idea_lang;

    int passed = 0;
    for (int c = 0; c < JUDGE_CHECK_COUNT; c++)
        passed += ok[c];
    out->score = (double)passed / JUDGE_CHECK_COUNT;
    struct judge_criteria *cr = &out->criteria;
    cr->faithful = (out->kept_words + ok[JUDGE_NOT_AN_ANSWER] + ok[JUDGE_SAME_LANGUAGE]) / 3.0;
    cr->specific = (ok[JUDGE_ROLE] + ok[JUDGE_FORMAT]) / 2.0;
    cr->actionable = (ok[JUDGE_INSTRUCTION] + ok[JUDGE_INPUTS]) / 2.0;
    cr->bounded = ok[JUDGE_GUARDRAILS];
    cr->proportionate = ok[JUDGE_PROPORTIONATE];
}

static const char *const judge_names[JUDGE_CHECK_COUNT] = {
    [JUDGE_ROLE] = "role",
    [JUDGE_INSTRUCTION] = "instruction",
    [JUDGE_FORMAT] = "format",
    [JUDGE_GUARDRAILS] = "guardrails",
    [JUDGE_INPUTS] = "inputs",
    [JUDGE_PROPORTIONATE] = "proportionate",
    [JUDGE_FAITHFUL] = "faithful",
    [JUDGE_NOT_AN_ANSWER] = "not_an_answer",
    [JUDGE_SAME_LANGUAGE] = "same_language",
};

/* What to do about each failed check, as a refinement instruction. */
static const char *const judge_fixes[JUDGE_CHECK_COUNT] = {
    [JUDGE_ROLE] = "set a specific role for the model (\"You are a ...\")",
    [JUDGE_INSTRUCTION] = "state the task as one direct instruction",
    [JUDGE_FORMAT] = "say what the answer must look like: its format and length",
    [JUDGE_GUARDRAILS] = "add constraints against the task's likely failures (no invented "
                         "facts, the right audience and length)",
    [JUDGE_INPUTS] = "ask for the inputs the idea leaves out, or mark them as [placeholders]",
    [JUDGE_PROPORTIONATE] = NULL, /* worded from the length (judge_feedback_json) */
    [JUDGE_FAITHFUL] = "keep the idea's own facts and words",
    [JUDGE_NOT_AN_ANSWER] = "write a prompt that instructs a model, not the answer itself",
    [JUDGE_SAME_LANGUAGE] = "write it in the idea's language",
};

const char *judge_check_name(enum judge_check c) {
    return (unsigned)c < JUDGE_CHECK_COUNT ? judge_names[c] : "unknown";
}

json_t *judge_checks_json(const struct judge_result *r) {
    json_t *o = json_object();
    for (int c = 0; c < JUDGE_CHECK_COUNT; c++)
        json_object_set_new(o, judge_names[c], json_boolean(r->passed[c]));
    return o;
}

json_t *judge_criteria_json(const struct judge_criteria *c) {
    return json_pack("{s:f, s:f, s:f, s:f, s:f}", "faithful", c->faithful, "specific", c->specific,
                     "actionable", c->actionable, "bounded", c->bounded, "proportionate",
                     c->proportionate);
}

json_t *judge_feedback_json(const struct judge_result *r) {
    char text[1024];
    size_t n = 0;
    for (int c = 0; c < JUDGE_CHECK_COUNT && n < sizeof text; c++) {
        if (r->passed[c])
            continue;
        char length_fix[96];
        const char *fix = judge_fixes[c];
        if (c == JUDGE_PROPORTIONATE) {
            snprintf(length_fix, sizeof length_fix, "%s (it has %d words)",
                     r->prompt_words < 25 ? "develop it into a complete prompt"
                                          : "shorten it to what the idea needs",
                     r->prompt_words);
            fix = length_fix;
        }
        int w = snprintf(text + n, sizeof text - n, "%s%s", n ? "; " : "", fix);
        if (w > 0)
            n += (size_t)w;
    }
    if (n == 0)
        return json_string("Every check passes: keep the prompt's structure.");
    if (n >= sizeof text)
        n = sizeof text - 1;
    text[n] = '\0';
    text[0] = (char)(text[0] >= 'a' && text[0] <= 'z' ? text[0] - 32 : text[0]);
    char sentence[1040];
    snprintf(sentence, sizeof sentence, "%s.", text);
    return json_string(sentence);
}
