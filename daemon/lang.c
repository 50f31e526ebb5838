#include "lang.h"

#include <stdbool.h>
#include <string.h>

#define LANG_COUNT 7

/* Each language's commonest short words, as they appear in ideas
 * ("email my landlord", "écrire un courriel à mon propriétaire"). A word
 * several languages share ("de", "la", "que") counts for each of them;
 * the words only one language uses decide. */
static const char *const lang_stopwords[LANG_COUNT][40] = {
    [LANG_EN] = {"the",  "and",    "to",   "of",   "my",   "is",   "for",  "with", "about",
                 "how",  "why",    "what", "i",    "you",  "it",   "this", "that", "on",
                 "me",   "can",    "an",   "your", "are",  "be",   "from", "into", "write",
                 "make", "should", "do",   "does", "want", "need", NULL},
    [LANG_FR] = {"le",
                 "la",
                 "les",
                 "un",
                 "une",
                 "des",
                 "et",
                 "\xc3\xa0",
                 "de",
                 "du",
                 "mon",
                 "ma",
                 "mes",
                 "pour",
                 "avec",
                 "sur",
                 "est",
                 "je",
                 "comment",
                 "au",
                 "pourquoi",
                 "aux",
                 "que",
                 "qui",
                 "ne",
                 "pas",
                 "vous",
                 "tu",
                 "\xc3\xa9"
                 "crire",
                 "mon",
                 "ce",
                 "cette",
                 "dans",
                 "faire",
                 "mes",
                 NULL},
    [LANG_DE] = {"der",
                 "die",
                 "das",
                 "und",
                 "ich",
                 "ist",
                 "ein",
                 "eine",
                 "mein",
                 "meine",
                 "meinen",
                 "f\xc3\xbcr",
                 "mit",
                 "zu",
                 "wie",
                 "warum",
                 "nicht",
                 "auf",
                 "den",
                 "dem",
                 "kann",
                 "sie",
                 "du",
                 "\xc3\xbc"
                 "ber",
                 "einen",
                 "einem",
                 "schreiben",
                 "meiner",
                 "wird",
                 "werden",
                 "soll",
                 NULL},
    [LANG_ES] = {"el",   "los",   "las",    "una",   "y",          "mi",
                 "mis",  "para",  "con",    "por",   "que",        "c\xc3\xb3mo",
                 "como", "es",    "en",     "sobre", "qu\xc3\xa9", "escribir",
                 "del",  "al",    "puedo",  "mi",    "un",         "la",
                 "de",   "hacer", "correo", "sobre", "porque",     "est\xc3\xa1",
                 NULL},
    [LANG_PT] = {"o",    "os",         "as",       "um",          "uma",         "e",
                 "de",   "meu",        "minha",    "para",        "com",         "por",
                 "que",  "como",       "\xc3\xa9", "em",          "sobre",       "do",
                 "da",   "n\xc3\xa3o", "posso",    "escrever",    "no",          "na",
                 "meus", "minhas",     "fazer",    "est\xc3\xa1", "voc\xc3\xaa", NULL},
    [LANG_IT] = {"il",    "lo",       "gli",    "le",     "un",
                 "una",   "e",        "di",     "mio",    "mia",
                 "per",   "con",      "che",    "come",   "\xc3\xa8",
                 "in",    "su",       "del",    "della",  "non",
                 "posso", "scrivere", "miei",   "mie",    "perch\xc3\xa9",
                 "fare",  "sono",     "questo", "questa", NULL},
};

/* Letters that are a strong sign of one language (UTF-8), worth two
 * words each. */
static const struct {
    const char *letter;
    enum lang lang;
} lang_letters[] = {
    {"\xc3\x9f", LANG_DE},         /* ß */
    {"\xc3\xa4", LANG_DE},         /* ä */
    {"\xc3\xb6", LANG_DE},         /* ö */
    {"\xc3\xbc", LANG_DE},         /* ü */
    {"\xc3\xb1", LANG_ES},         /* ñ */
    {"\xc2\xbf", LANG_ES},         /* ¿ */
    {"\xc3\xa3", LANG_PT},         /* ã */
    {"\xc3\xb5", LANG_PT},         /* õ */
    {"\xc3\xa7\xc3\xa3", LANG_PT}, /* çã */
    {"\xc3\xaa", LANG_FR},         /* ê */
    {"\xc3\xa8", LANG_FR},         /* è (Italian writes it as a word, counted above) */
    {"\xc3\xa0", LANG_FR},         /* à */
};

static bool lang_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

void lang_words(const char *text, size_t len, int (*fn)(void *arg, const char *word, size_t n),
                void *arg) {
    size_t i = 0;
    while (i < len) {
        while (i < len && !lang_word_byte((unsigned char)text[i]))
            i++;
        char word[LANG_WORD_MAX];
        size_t n = 0;
        while (i < len) {
            unsigned char c = (unsigned char)text[i];
            /* an apostrophe inside a word ("don't", "l'eau") keeps it whole */
            bool inner_quote =
                c == '\'' && n > 0 && i + 1 < len && lang_word_byte((unsigned char)text[i + 1]);
            if (!lang_word_byte(c) && !inner_quote)
                break;
            if (n < sizeof word)
                word[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
        }
        if (n > 0 && fn(arg, word, n))
            return;
    }
}

struct lang_tally {
    int score[LANG_COUNT];
    int words;
};

static bool lang_is_stopword(enum lang l, const char *word, size_t n) {
    for (const char *const *w = lang_stopwords[l]; *w; w++)
        if (strlen(*w) == n && memcmp(*w, word, n) == 0)
            return true;
    return false;
}

static int lang_count_word(void *arg, const char *word, size_t n) {
    struct lang_tally *t = arg;
    t->words++;
    for (int l = LANG_EN; l < LANG_COUNT; l++)
        if (lang_is_stopword((enum lang)l, word, n))
            t->score[l] += 2;
    return 0;
}

static void lang_count_letters(const char *text, size_t len, struct lang_tally *t) {
    for (size_t k = 0; k < sizeof lang_letters / sizeof lang_letters[0]; k++) {
        size_t n = strlen(lang_letters[k].letter);
        for (size_t i = 0; i + n <= len; i++)
            if (memcmp(text + i, lang_letters[k].letter, n) == 0)
                t->score[lang_letters[k].lang] += 2;
    }
}

enum lang lang_detect(const char *text, size_t len) {
    struct lang_tally t = {{0}, 0};
    lang_words(text, len, lang_count_word, &t);
    lang_count_letters(text, len, &t);
    int best = LANG_UNKNOWN, best_score = 0, second = 0;
    for (int l = LANG_EN; l < LANG_COUNT; l++) {
        if (t.score[l] > best_score) {
            second = best_score;
            best_score = t.score[l];
            best = l;
        } else if (t.score[l] > second) {
            second = t.score[l];
        }
    }
    /* Two known words at least, and a clear lead over the runner-up. */
    if (best_score < 4 || best_score <= second)
        return LANG_UNKNOWN;
    return (enum lang)best;
}

const char *lang_code(enum lang l) {
    static const char *const codes[LANG_COUNT] = {"unknown", "en", "fr", "de", "es", "pt", "it"};
    return (unsigned)l < LANG_COUNT ? codes[l] : codes[0];
}

const char *lang_name(enum lang l) {
    static const char *const names[LANG_COUNT] = {
        "an unknown language", "English", "French", "German", "Spanish", "Portuguese", "Italian"};
    return (unsigned)l < LANG_COUNT ? names[l] : names[0];
}
