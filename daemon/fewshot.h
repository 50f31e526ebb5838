/* Few-shot mode: the trainset of example improvements
 * (FEWSHOT_TRAINSET_PATH), the choice of the examples most similar to a
 * request's idea, and their text for the model's user message.
 * docs/fewshot.md describes the file format and the selection.
 *
 * A set is loaded whole at start-up and on SIGHUP, then read-only: each
 * example keeps only what requests need, its rendered text and its number
 * of distinct words, and an inverted index maps each word (a hash) to the
 * examples using it. A request reads the postings of its own words only,
 * then ranks the examples they reached: tens of microseconds for 10000
 * examples (tests/unit/test_fewshot.c prints the figure). Loading does
 * I/O; selection and rendering are pure and allocate only their scratch
 * and result. No globals, no loop. */
#ifndef PROMPTD_FEWSHOT_H
#define PROMPTD_FEWSHOT_H

#include <stddef.h>

struct config;
struct fewshot_set;

/* Parses a trainset's text: a JSON array of example objects, or JSON
 * Lines (one object per line; blank lines and lines starting with '#' or
 * "//" are skipped). name (the file's path) starts every error. On success
 * returns 0 and *out is a new set the caller releases with fewshot_free.
 * On failure returns -1 with a sentence in err naming the file, the line
 * (JSON Lines) or the array index (JSON array), and the field. */
int fewshot_parse(const char *text, size_t len, const char *name, struct fewshot_set **out,
                  char *err, size_t errlen);

/* Reads path (at most LIMIT_FEWSHOT_FILE_BYTES) and parses it. */
int fewshot_load_file(const char *path, struct fewshot_set **out, char *err, size_t errlen);

/* The trainset the configuration asks for: FEWSHOT_TRAINSET_PATH resolved
 * like SQLITE_DB_PATH (absolute; "~/" is $HOME; otherwise relative to the
 * directory of config_path, the file the configuration came from, or to
 * the working directory when there is none). *out is NULL when no path is
 * set. FEWSHOT_ENABLED=true without a path is an error saying to set it.
 * Returns 0, or -1 with a sentence in err (a configuration error). */
int fewshot_load_configured(const struct config *cfg, const char *config_path,
                            struct fewshot_set **out, char *err, size_t errlen);

/* Releases a set; NULL is fine. */
void fewshot_free(struct fewshot_set *s);

/* Examples in the set (0 for NULL). */
size_t fewshot_count(const struct fewshot_set *s);

/* The resolved path the set was read from ("" for a parsed text's name
 * when that was NULL). Borrowed from s. */
const char *fewshot_path(const struct fewshot_set *s);

/* Example i's text as the model sees it (an <example> block). Borrowed. */
const char *fewshot_example_text(const struct fewshot_set *s, size_t i);

/* Logs "few-shot: N examples from PATH" (nothing for NULL). */
void fewshot_log_loaded(const struct fewshot_set *s);

/* Picks the (at most) k examples most similar to idea + context (context
 * may be NULL), best first, into picked[0..k). Similarity is the cosine of
 * the two word sets: lowercased words, punctuation and very common words
 * ignored, scored as overlap / sqrt(example's words); examples sharing no
 * word come after all others; ties keep file order. Deterministic.
 * Returns how many were picked (min(k, count)). */
int fewshot_select(const struct fewshot_set *s, const char *idea, const char *context, size_t k,
                   size_t *picked);

/* The examples section of a few-shot user message for idea + context:
 * fewshot_select's k best, within LIMIT_FEWSHOT_PROMPT_BYTES (the best one
 * always), between a sentence saying they show the expected quality and
 * format and are not content to copy, and the end of the section. Returns
 * a malloc'd string owned by the caller, with *n_used (may be NULL) the
 * number of examples in it; NULL when s is empty or k is 0. */
char *fewshot_render(const struct fewshot_set *s, const char *idea, const char *context, size_t k,
                     size_t *n_used);

#endif
