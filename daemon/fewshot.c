/* Few-shot trainset: parsing, word sets, selection and rendering; see
 * fewshot.h and docs/fewshot.md. */
#include "fewshot.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "promptd_limits.h"
#include "utf8.h"

/* The sentence before the examples: they teach the shape and the quality
 * of an answer; without the warning small models reuse their facts. */
#define FEWSHOT_HEADER                                                                             \
    "Examples of good improvements follow, chosen because their ideas are close to this one. "     \
    "They show the quality and the format expected of your answer; they are not content to "       \
    "copy: take no facts, names or wording from them, and write a new prompt for the idea "        \
    "that comes after them.\n\n<examples>\n"
#define FEWSHOT_FOOTER "</examples>\n\n"

/* Words shorter than this say nothing about a topic ("a", "I", "x"). */
#define FEWSHOT_MIN_WORD_BYTES 2
/* Stop words are short: longer words skip the lookup. */
#define FEWSHOT_STOP_WORD_MAX_BYTES 7

struct fewshot_example {
    char *text;      /* owned; the <example> block the model sees */
    size_t text_len; /* strlen(text) */
    uint64_t *words; /* owned while loading (distinct word hashes of idea + context); NULL once
                        they are in the set's index */
    size_t n_words;  /* distinct words, for the score's normalisation */
};

/* An open-addressing table keyed by word hash (0 marks a free slot). In
 * the set's index, start/count locate the word's postings; as a request's
 * set of words, count says the word was seen. */
struct word_slot {
    uint64_t word;
    uint32_t start, count;
};

struct word_table {
    struct word_slot *slot; /* owned; mask + 1 entries */
    size_t mask, used;
};

struct fewshot_set {
    char *path;                 /* owned */
    struct fewshot_example *ex; /* owned array of n (cap allocated) */
    size_t n, cap;
    /* The inverted index: for each word, the examples that use it, in file
     * order. A request then costs the postings of its own words instead of
     * a look at every word of every example. */
    struct word_table index;
    uint32_t *postings; /* owned */
};

/* ---- words ---- */

/* Too common to tell one idea from another. Sorted (strcmp) for bsearch. */
static const char *const stop_words[] = {
    "a",    "about", "after", "all",    "also", "am",   "an",    "and",   "any",  "are",  "as",
    "at",   "be",    "been",  "but",    "by",   "can",  "could", "do",    "does", "for",  "from",
    "get",  "had",   "has",   "have",   "he",   "her",  "him",   "his",   "how",  "i",    "if",
    "in",   "into",  "is",    "it",     "its",  "just", "me",    "my",    "no",   "not",  "of",
    "on",   "or",    "our",   "please", "she",  "so",   "some",  "than",  "that", "the",  "their",
    "them", "then",  "there", "these",  "they", "this", "to",    "up",    "us",   "was",  "we",
    "were", "what",  "when",  "which",  "who",  "will", "with",  "would", "you",  "your",
};

static int stop_word_cmp(const void *key, const void *elem) {
    return strcmp(key, *(const char *const *)elem);
}

static bool is_stop_word(const char *w, size_t len) {
    if (len > FEWSHOT_STOP_WORD_MAX_BYTES)
        return false;
    char buf[FEWSHOT_STOP_WORD_MAX_BYTES + 1];
    memcpy(buf, w, len);
    buf[len] = '\0';
    return bsearch(buf, stop_words, sizeof stop_words / sizeof stop_words[0], sizeof stop_words[0],
                   stop_word_cmp) != NULL;
}

/* Letters and digits of any script are word characters; ASCII and
 * Latin-1 punctuation, the general punctuation and symbol blocks, CJK
 * punctuation and emoji separate words. */
static bool is_word_char(uint32_t cp) {
    if (cp < 0x80)
        return isalnum((int)cp) != 0;
    if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7)
        return false;
    if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF0F) || cp == 0xFEFF ||
        cp >= 0x1F000)
        return false;
    return true;
}

struct word_list {
    uint64_t *v; /* owned */
    size_t n, cap;
};

static int word_list_push(struct word_list *l, uint64_t h) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        uint64_t *grown = realloc(l->v, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = h;
    return 0;
}

/* Words are kept as FNV-1a 64-bit hashes: collisions among a few million
 * words are negligible, and a word costs 8 bytes however long it is. A
 * hash of 0 becomes 1 (0 is the hash set's free slot). */
#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME  1099511628211ULL

/* Appends the hash of each word of s to l, lowercased (ASCII letters;
 * other scripts are compared as written). Returns 0 or -1 (memory). */
static int words_of(const char *s, struct word_list *l) {
    size_t len = s ? strlen(s) : 0;
    char word[FEWSHOT_STOP_WORD_MAX_BYTES + 1]; /* its start, for the stop-word check */
    uint64_t h = FNV_OFFSET;
    size_t wlen = 0;
    for (size_t i = 0; i <= len;) {
        uint32_t cp = 0;
        size_t n = i < len ? utf8_decode(s + i, len - i, &cp) : 0;
        bool in_word = n > 0 && is_word_char(cp);
        if (in_word) {
            for (size_t j = 0; j < n; j++) {
                unsigned char c = (unsigned char)s[i + j];
                if (c < 0x80)
                    c = (unsigned char)tolower(c);
                if (wlen < sizeof word)
                    word[wlen] = (char)c;
                wlen++;
                h = (h ^ c) * FNV_PRIME;
            }
        } else if (wlen > 0) {
            bool keep = wlen >= FEWSHOT_MIN_WORD_BYTES && !is_stop_word(word, wlen);
            if (keep && word_list_push(l, h ? h : 1) != 0)
                return -1;
            wlen = 0;
            h = FNV_OFFSET;
        }
        i += n ? n : 1;
    }
    return 0;
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts and drops duplicates: a word counts once however often it is said. */
static void word_list_dedup(struct word_list *l) {
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof *l->v, u64_cmp);
    size_t out = 1;
    for (size_t i = 1; i < l->n; i++)
        if (l->v[i] != l->v[out - 1])
            l->v[out++] = l->v[i];
    l->n = out;
}

static size_t word_table_home(const struct word_table *t, uint64_t w) {
    return (size_t)(w ^ (w >> 29)) & t->mask;
}

/* Room for n words at most half full, so probes stay short. */
static int word_table_init(struct word_table *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    t->slot = calloc(cap, sizeof *t->slot);
    t->mask = cap - 1;
    t->used = 0;
    return t->slot ? 0 : -1;
}

static const struct word_slot *word_table_find(const struct word_table *t, uint64_t w) {
    for (size_t j = word_table_home(t, w); t->slot[j].word; j = (j + 1) & t->mask)
        if (t->slot[j].word == w)
            return &t->slot[j];
    return NULL;
}

static struct word_slot *word_table_put_nogrow(struct word_table *t, uint64_t w) {
    size_t j = word_table_home(t, w);
    while (t->slot[j].word && t->slot[j].word != w)
        j = (j + 1) & t->mask;
    if (!t->slot[j].word) {
        t->slot[j].word = w;
        t->used++;
    }
    return &t->slot[j];
}

/* The slot of w, added (zeroed) when new; doubles the table past half
 * full. NULL when out of memory. The pointer is valid until the next put. */
static struct word_slot *word_table_put(struct word_table *t, uint64_t w) {
    if (2 * (t->used + 1) > t->mask + 1) {
        struct word_table bigger;
        if (word_table_init(&bigger, t->used + 1) != 0)
            return NULL;
        for (size_t j = 0; j <= t->mask; j++)
            if (t->slot[j].word)
                *word_table_put_nogrow(&bigger, t->slot[j].word) = t->slot[j];
        free(t->slot);
        *t = bigger;
    }
    return word_table_put_nogrow(t, w);
}

/* Builds the inverted index from the examples' words, then frees those:
 * count each word's examples, lay the postings out by prefix sums, fill
 * them in file order. Returns 0 or -1 (memory). */
static int set_build_index(struct fewshot_set *s) {
    size_t total = 0;
    if (word_table_init(&s->index, 1024) != 0)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        for (size_t j = 0; j < s->ex[i].n_words; j++) {
            struct word_slot *w = word_table_put(&s->index, s->ex[i].words[j]);
            if (!w)
                return -1;
            w->count++;
            total++;
        }
    s->postings = malloc((total ? total : 1) * sizeof *s->postings);
    if (!s->postings)
        return -1;
    uint32_t start = 0;
    for (size_t j = 0; j <= s->index.mask; j++) {
        struct word_slot *w = &s->index.slot[j];
        w->start = start;
        start += w->count;
        w->count = 0; /* counts again as the fill cursor */
    }
    for (size_t i = 0; i < s->n; i++) {
        struct fewshot_example *e = &s->ex[i];
        for (size_t j = 0; j < e->n_words; j++) {
            struct word_slot *w = word_table_put_nogrow(&s->index, e->words[j]);
            s->postings[w->start + w->count++] = (uint32_t)i;
        }
        free(e->words);
        e->words = NULL;
    }
    return 0;
}

/* ---- selection ---- */

struct candidate {
    size_t index;   /* in file order */
    size_t overlap; /* distinct words shared with the request */
    size_t n_words; /* distinct words of the example */
};

/* Cosine of binary word sets, overlap / sqrt(|E| |Q|); |Q| is the same for
 * every example, so a ranks before b when a.overlap^2 b.n > b.overlap^2 a.n
 * (exact integers: overlap <= n, both bounded by the field limits). An
 * example sharing nothing ranks after one sharing something; ties keep
 * file order so the choice is deterministic. */
static bool ranks_before(const struct candidate *a, const struct candidate *b) {
    if ((a->overlap == 0) != (b->overlap == 0))
        return a->overlap != 0;
    if (a->overlap) {
        uint64_t lhs = (uint64_t)a->overlap * a->overlap * b->n_words;
        uint64_t rhs = (uint64_t)b->overlap * b->overlap * a->n_words;
        if (lhs != rhs)
            return lhs > rhs;
    }
    return a->index < b->index;
}

/* Keeps best[0..*m) sorted best first, at most k long. */
static void keep_if_better(struct candidate *best, size_t *m, size_t k, const struct candidate *c) {
    size_t at = *m;
    if (at == k) {
        if (!ranks_before(c, &best[k - 1]))
            return;
        at = k - 1;
    } else {
        (*m)++;
    }
    while (at > 0 && ranks_before(c, &best[at - 1])) {
        best[at] = best[at - 1];
        at--;
    }
    best[at] = *c;
}

/* Scratch of one selection, owned by it. */
struct selection {
    struct word_list query; /* the request's words, repeats included */
    struct word_table seen; /* the request's distinct words */
    uint32_t *overlap;      /* per example: distinct words shared with the request */
    uint32_t *touched;      /* examples with overlap > 0, in the order first met */
    size_t n_touched;
};

static void selection_free(struct selection *sel) {
    free(sel->query.v);
    free(sel->seen.slot);
    free(sel->overlap);
    free(sel->touched);
}

/* Counts, through the index, the distinct request words each example
 * shares. Returns 0 or -1 (memory). */
static int count_shared_words(const struct fewshot_set *s, const char *idea, const char *context,
                              struct selection *sel) {
    sel->overlap = calloc(s->n, sizeof *sel->overlap);
    sel->touched = malloc(s->n * sizeof *sel->touched);
    if (!sel->overlap || !sel->touched || words_of(idea, &sel->query) != 0 ||
        words_of(context, &sel->query) != 0 || word_table_init(&sel->seen, sel->query.n) != 0)
        return -1;
    for (size_t q = 0; q < sel->query.n; q++) {
        struct word_slot *seen = word_table_put_nogrow(&sel->seen, sel->query.v[q]);
        if (seen->count++ > 0)
            continue; /* said twice, counted once */
        const struct word_slot *w = word_table_find(&s->index, sel->query.v[q]);
        for (uint32_t p = 0; w && p < w->count; p++) {
            uint32_t i = s->postings[w->start + p];
            if (sel->overlap[i]++ == 0)
                sel->touched[sel->n_touched++] = i;
        }
    }
    return 0;
}

/* The k best into best[], best first; returns how many. */
static size_t rank_examples(const struct fewshot_set *s, const struct selection *sel,
                            struct candidate *best, size_t k) {
    size_t m = 0;
    for (size_t t = 0; t < sel->n_touched; t++) {
        uint32_t i = sel->touched[t];
        struct candidate c = {i, sel->overlap[i], s->ex[i].n_words};
        keep_if_better(best, &m, k, &c);
    }
    /* Too few share a word: the rest in file order, as ranks_before says. */
    for (size_t i = 0; m < k && i < s->n; i++)
        if (sel->overlap[i] == 0)
            best[m++] = (struct candidate){i, 0, s->ex[i].n_words};
    return m;
}

int fewshot_select(const struct fewshot_set *s, const char *idea, const char *context, size_t k,
                   size_t *picked) {
    if (!s || s->n == 0 || k == 0)
        return 0;
    if (k > s->n)
        k = s->n;
    struct selection sel = {0};
    struct candidate *best = malloc(k * sizeof *best);
    int m = -1;
    if (best && count_shared_words(s, idea, context, &sel) == 0) {
        m = (int)rank_examples(s, &sel, best, k);
        for (int i = 0; i < m; i++)
            picked[i] = best[i].index;
    }
    free(best);
    selection_free(&sel);
    return m;
}

/* ---- rendering ---- */

char *fewshot_render(const struct fewshot_set *s, const char *idea, const char *context, size_t k,
                     size_t *n_used) {
    if (n_used)
        *n_used = 0;
    if (!s || s->n == 0 || k == 0)
        return NULL;
    size_t *picked = malloc((k < s->n ? k : s->n) * sizeof *picked);
    int m = picked ? fewshot_select(s, idea, context, k, picked) : -1;
    if (m <= 0) {
        free(picked);
        return NULL;
    }
    /* The best example always goes in; the others while they fit. */
    size_t used = 0, bytes = 0;
    for (int i = 0; i < m; i++) {
        size_t len = s->ex[picked[i]].text_len;
        if (used > 0 && bytes + len > LIMIT_FEWSHOT_PROMPT_BYTES)
            continue;
        picked[used++] = picked[i];
        bytes += len;
    }
    size_t hlen = strlen(FEWSHOT_HEADER), flen = strlen(FEWSHOT_FOOTER);
    char *out = malloc(hlen + bytes + flen + 1);
    if (out) {
        char *p = out;
        memcpy(p, FEWSHOT_HEADER, hlen);
        p += hlen;
        for (size_t i = 0; i < used; i++) {
            const struct fewshot_example *e = &s->ex[picked[i]];
            memcpy(p, e->text, e->text_len);
            p += e->text_len;
        }
        memcpy(p, FEWSHOT_FOOTER, flen + 1);
        if (n_used)
            *n_used = used;
    }
    free(picked);
    return out;
}

/* ---- one example ---- */

/* The fields of one example while it is checked; strings are owned,
 * trimmed copies, NULL when absent. */
struct example_fields {
    char *idea, *context, *improved_prompt, *role, *directive, *framework, *reasoning;
    json_t *guardrails; /* owned; an array of trimmed strings, NULL when absent */
};

static void example_fields_clear(struct example_fields *f) {
    free(f->idea);
    free(f->context);
    free(f->improved_prompt);
    free(f->role);
    free(f->directive);
    free(f->framework);
    free(f->reasoning);
    json_decref(f->guardrails);
    memset(f, 0, sizeof *f);
}

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A string value v (NULL when absent), trimmed and length-checked, into
 * *out (NULL when absent, null, or blank and optional); label names it in
 * why. Returns 0, or -1 with why. */
static int text_value(const json_t *v, const char *label, bool required, size_t min_chars,
                      size_t max_chars, char **out, char *why, size_t whylen) {
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            snprintf(why, whylen,
                     "\"%s\" is missing: every example needs \"idea\" and \"improved_prompt\"",
                     label);
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) {
        snprintf(why, whylen, "\"%s\" must be a string, not %s", label, json_type_name(v));
        return -1;
    }
    size_t len;
    const char *s = utf8_trim(json_string_value(v), json_string_length(v), &len);
    size_t chars = utf8_count(s, len);
    if (chars == 0 && !required)
        return 0;
    if (chars > max_chars && min_chars == 0) {
        snprintf(why, whylen, "\"%s\" must be at most %zu characters, not %zu", label, max_chars,
                 chars);
        return -1;
    }
    if (chars < min_chars || chars > max_chars) {
        snprintf(why, whylen, "\"%s\" must be %zu to %zu characters after trimming, not %zu", label,
                 min_chars, max_chars, chars);
        return -1;
    }
    if (!(*out = strndup(s, len))) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

static int text_field(const json_t *obj, const char *key, bool required, size_t min_chars,
                      size_t max_chars, char **out, char *why, size_t whylen) {
    return text_value(json_object_get(obj, key), key, required, min_chars, max_chars, out, why,
                      whylen);
}

/* guardrails: absent, null, or an array of strings (blank ones dropped). */
static int guardrails_field(const json_t *obj, json_t **out, char *why, size_t whylen) {
    const json_t *v = json_object_get(obj, "guardrails");
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v)) {
        snprintf(why, whylen, "\"guardrails\" must be an array of strings, not %s",
                 json_type_name(v));
        return -1;
    }
    if (json_array_size(v) > LIMIT_FEWSHOT_GUARDRAILS) {
        snprintf(why, whylen, "\"guardrails\" has %zu items; at most %d are allowed",
                 json_array_size(v), LIMIT_FEWSHOT_GUARDRAILS);
        return -1;
    }
    json_t *arr = json_array();
    if (!arr) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *item = json_array_get(v, i);
        char label[48], *text = NULL;
        snprintf(label, sizeof label, "guardrails[%zu]", i);
        if (!json_is_string(item)) {
            snprintf(why, whylen, "\"%s\" must be a string, not %s", label, json_type_name(item));
            json_decref(arr);
            return -1;
        }
        if (text_value(item, label, false, 0, LIMIT_FEWSHOT_SHORT_CHARS, &text, why, whylen) != 0) {
            json_decref(arr);
            return -1;
        }
        int rc = text ? json_array_append_new(arr, json_string(text)) : 0;
        free(text);
        if (rc != 0) {
            snprintf(why, whylen, "out of memory");
            json_decref(arr);
            return -1;
        }
    }
    *out = arr;
    return 0;
}

/* "idea", or the old backend's "original_idea" when "idea" is absent. */
static const char *idea_key(const json_t *obj) {
    const json_t *v = json_object_get(obj, "idea");
    if ((!v || json_is_null(v)) && json_object_get(obj, "original_idea"))
        return "original_idea";
    return "idea";
}

static int example_fields_read(const json_t *obj, struct example_fields *f, char *why,
                               size_t whylen) {
    if (!json_is_object(obj)) {
        snprintf(why, whylen, "an example must be a JSON object, not %s", json_type_name(obj));
        return -1;
    }
    if (text_field(obj, idea_key(obj), true, LIMIT_IDEA_MIN_CHARS, LIMIT_FEWSHOT_TEXT_CHARS,
                   &f->idea, why, whylen) != 0 ||
        text_field(obj, "improved_prompt", true, 1, LIMIT_FEWSHOT_TEXT_CHARS, &f->improved_prompt,
                   why, whylen) != 0 ||
        text_field(obj, "context", false, 0, LIMIT_FEWSHOT_TEXT_CHARS, &f->context, why, whylen) !=
            0 ||
        text_field(obj, "role", false, 0, LIMIT_FEWSHOT_SHORT_CHARS, &f->role, why, whylen) != 0 ||
        text_field(obj, "directive", false, 0, LIMIT_FEWSHOT_SHORT_CHARS, &f->directive, why,
                   whylen) != 0 ||
        text_field(obj, "framework", false, 0, LIMIT_FEWSHOT_SHORT_CHARS, &f->framework, why,
                   whylen) != 0 ||
        guardrails_field(obj, &f->guardrails, why, whylen) != 0 ||
        text_field(obj, "reasoning", false, 0, LIMIT_FEWSHOT_TEXT_CHARS, &f->reasoning, why,
                   whylen) != 0)
        return -1;
    return 0;
}

/* The answer part of an example: the fields it has, in the order the
 * schema asks the model to write them (plan first, then the prompt). */
static char *example_answer_json(const struct example_fields *f) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (f->role)
        json_object_set_new(o, "role", json_string(f->role));
    if (f->directive)
        json_object_set_new(o, "directive", json_string(f->directive));
    if (f->framework)
        json_object_set_new(o, "framework", json_string(f->framework));
    if (f->guardrails)
        json_object_set(o, "guardrails", f->guardrails);
    json_object_set_new(o, "improved_prompt", json_string(f->improved_prompt));
    if (f->reasoning)
        json_object_set_new(o, "reasoning", json_string(f->reasoning));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* The block the model sees, laid out like the system prompt's own
 * example (Input: the tags, Output: the JSON object). */
#define EXAMPLE_FORMAT "<example>\nInput:\n<idea>\n%s\n</idea>\n%s%s%s\nOutput:\n%s\n</example>\n"

static char *example_text(const struct example_fields *f) {
    char *answer = example_answer_json(f);
    if (!answer)
        return NULL;
    const char *ctx = f->context ? f->context : "";
    const char *open = f->context ? "<context>\n" : "", *close = f->context ? "\n</context>\n" : "";
    int n = snprintf(NULL, 0, EXAMPLE_FORMAT, f->idea, open, ctx, close, answer);
    char *text = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (text)
        snprintf(text, (size_t)n + 1, EXAMPLE_FORMAT, f->idea, open, ctx, close, answer);
    free(answer);
    return text;
}

static int example_words(const struct example_fields *f, struct fewshot_example *e) {
    struct word_list l = {0};
    if (words_of(f->idea, &l) != 0 || words_of(f->context, &l) != 0) {
        free(l.v);
        return -1;
    }
    word_list_dedup(&l);
    e->words = l.v;
    e->n_words = l.n;
    return 0;
}

/* Checks obj and appends it to s. Returns 0, or -1 with why. */
static int set_add_example(struct fewshot_set *s, const json_t *obj, char *why, size_t whylen) {
    if (s->n == LIMIT_FEWSHOT_EXAMPLES) {
        snprintf(why, whylen, "more than %d examples: keep the best ones (a few hundred is plenty)",
                 LIMIT_FEWSHOT_EXAMPLES);
        return -1;
    }
    struct example_fields f = {0};
    if (example_fields_read(obj, &f, why, whylen) != 0) {
        example_fields_clear(&f);
        return -1;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct fewshot_example *grown = realloc(s->ex, cap * sizeof *grown);
        if (!grown) {
            example_fields_clear(&f);
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        s->ex = grown;
        s->cap = cap;
    }
    struct fewshot_example *e = &s->ex[s->n];
    memset(e, 0, sizeof *e);
    e->text = example_text(&f);
    int rc = e->text && example_words(&f, e) == 0 ? 0 : -1;
    example_fields_clear(&f);
    if (rc != 0) {
        free(e->text);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    e->text_len = strlen(e->text);
    s->n++;
    return 0;
}

/* ---- the file ---- */

void fewshot_free(struct fewshot_set *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->ex[i].text);
        free(s->ex[i].words);
    }
    free(s->ex);
    free(s->index.slot);
    free(s->postings);
    free(s->path);
    free(s);
}

static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static int parse_array(struct fewshot_set *s, const char *text, size_t len, const char *name,
                       char *err, size_t errlen) {
    json_error_t jerr;
    json_t *arr = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!arr) {
        snprintf(err, errlen, "trainset %s:%d:%d: not valid JSON: %s", name, jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    int rc = 0;
    size_t i;
    json_t *item;
    char why[256];
    json_array_foreach(arr, i, item) {
        if (set_add_example(s, item, why, sizeof why) != 0) {
            snprintf(err, errlen, "trainset %s, example [%zu] (counting from 0): %s", name, i, why);
            rc = -1;
            break;
        }
    }
    json_decref(arr);
    return rc;
}

static bool is_comment_or_blank(const char *p, const char *end) {
    return p == end || *p == '#' || (end - p >= 2 && p[0] == '/' && p[1] == '/');
}

static int parse_line(struct fewshot_set *s, const char *p, const char *end, const char *name,
                      int lineno, char *err, size_t errlen) {
    json_error_t jerr;
    /* DECODE_ANY: a line holding a string or a number is "not an object",
     * which says more than jansson's "'[' or '{' expected". */
    json_t *obj = json_loadb(p, (size_t)(end - p), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!obj) {
        snprintf(err, errlen,
                 "trainset %s:%d: not a JSON object (column %d: %s): each line must hold one "
                 "example object",
                 name, lineno, jerr.column, jerr.text);
        return -1;
    }
    char why[256];
    int rc = set_add_example(s, obj, why, sizeof why);
    json_decref(obj);
    if (rc != 0)
        snprintf(err, errlen, "trainset %s:%d: %s", name, lineno, why);
    return rc;
}

static int parse_lines(struct fewshot_set *s, const char *text, size_t len, const char *name,
                       char *err, size_t errlen) {
    const char *p = text, *end = text + len;
    for (int lineno = 1; p <= end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *a = p, *b = line_end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        if (!is_comment_or_blank(a, b) && parse_line(s, a, b, name, lineno, err, errlen) != 0)
            return -1;
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

int fewshot_parse(const char *text, size_t len, const char *name, struct fewshot_set **out,
                  char *err, size_t errlen) {
    *out = NULL;
    struct fewshot_set *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(name ? name : ""))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { /* a BOM some editors write */
        text += 3;
        len -= 3;
    }
    const char *first = skip_space(text, text + len);
    int rc = first < text + len && *first == '[' ? parse_array(s, text, len, s->path, err, errlen)
                                                 : parse_lines(s, text, len, s->path, err, errlen);
    if (rc == 0 && s->n == 0) {
        snprintf(err, errlen,
                 "trainset %s holds no examples: write one JSON object per line, or a JSON array "
                 "of objects, each with \"idea\" and \"improved_prompt\"",
                 s->path);
        rc = -1;
    }
    if (rc == 0 && set_build_index(s) != 0) {
        snprintf(err, errlen, "out of memory indexing the trainset %s", s->path);
        rc = -1;
    }
    if (rc != 0) {
        fewshot_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int fewshot_load_file(const char *path, struct fewshot_set **out, char *err, size_t errlen) {
    char what[PATH_MAX + 48];
    snprintf(what, sizeof what, "the trainset %s (FEWSHOT_TRAINSET_PATH)", path);
    *out = NULL;
    struct stat st;
    FILE *f = config_open_regular(path, what, &st, err, errlen);
    if (!f)
        return -1;
    size_t len;
    char *text = config_read_bounded(f, LIMIT_FEWSHOT_FILE_BYTES, what,
                                     "keep fewer, shorter examples", &len, err, errlen);
    int rc = text ? fewshot_parse(text, len, path, out, err, errlen) : -1;
    free(text);
    fclose(f);
    return rc;
}

int fewshot_load_configured(const struct config *cfg, const char *config_path,
                            struct fewshot_set **out, char *err, size_t errlen) {
    *out = NULL;
    const char *configured = cfg->fewshot_trainset_path;
    if (!configured || !*configured) {
        if (!cfg->fewshot_enabled)
            return 0;
        snprintf(err, errlen,
                 "FEWSHOT_ENABLED is true but FEWSHOT_TRAINSET_PATH is not set: set it to a file "
                 "of example improvements (docs/fewshot.md), or set FEWSHOT_ENABLED=false");
        return -1;
    }
    char path[PATH_MAX];
    if (config_resolve_path("FEWSHOT_TRAINSET_PATH", configured, config_path, path, sizeof path,
                            err, errlen) != 0)
        return -1;
    return fewshot_load_file(path, out, err, errlen);
}

size_t fewshot_count(const struct fewshot_set *s) {
    return s ? s->n : 0;
}

const char *fewshot_path(const struct fewshot_set *s) {
    return s ? s->path : "";
}

const char *fewshot_example_text(const struct fewshot_set *s, size_t i) {
    return s && i < s->n ? s->ex[i].text : NULL;
}

void fewshot_log_loaded(const struct fewshot_set *s) {
    if (s)
        log_info("few-shot: %zu examples from %s", s->n, s->path);
}
