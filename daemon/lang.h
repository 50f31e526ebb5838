/* Which language a short text is written in, by the share of each
 * language's most frequent words and letters. Good enough for what it
 * serves (the judge's same-language check, the offline improver's choice
 * of words): ideas are a sentence or two, and the six languages it knows
 * are told apart by their function words. Pure functions, no allocation. */
#ifndef PROMPTD_LANG_H
#define PROMPTD_LANG_H

#include <stddef.h>

enum lang { LANG_UNKNOWN, LANG_EN, LANG_FR, LANG_DE, LANG_ES, LANG_PT, LANG_IT };

/* The language of text[0..len), or LANG_UNKNOWN when no language has
 * enough evidence (too few known words, or a tie). */
enum lang lang_detect(const char *text, size_t len);

/* "en", "fr", ...; "unknown" for LANG_UNKNOWN. Static. */
const char *lang_code(enum lang l);
/* "English", "French", ...; "an unknown language". Static. */
const char *lang_name(enum lang l);

/* Calls fn with each word of text[0..len) (a run of letters, digits,
 * apostrophes inside a word, and any non-ASCII UTF-8), lowercased in
 * ASCII, at most LANG_WORD_MAX bytes (longer words are cut). fn returns
 * non-zero to stop. */
#define LANG_WORD_MAX 48
void lang_words(const char *text, size_t len, int (*fn)(void *arg, const char *word, size_t n),
                void *arg);

#endif
