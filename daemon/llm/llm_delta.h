/* The streamed improve.delta text must concatenate to the final
 * improved_prompt (docs/protocol.md), and llm_result.c trims that field
 * (utf8_trim): models served by llama.cpp, for one, write " poem ". This
 * filter sits between the field extractor and the deltas and trims the
 * same way, as the text arrives: spaces before the first other character
 * are dropped, and a run of spaces is held back until more text follows it
 * (it then goes out in front of that text) or dropped when the field ends.
 *
 * Pieces must be whole code points (json_field_stream's are), so the
 * question "is this a space" is asked of whole characters, as utf8_trim
 * asks it. Held spaces are bounded by the upstream response cap, which
 * bounds the whole text. No I/O, no loop. */
#ifndef PROMPTD_LLM_DELTA_H
#define PROMPTD_LLM_DELTA_H

#include <stdbool.h>
#include <stddef.h>

/* Called with text to pass on: len > 0, borrowed for the call. */
typedef void (*llm_delta_emit_fn)(void *arg, const char *text, size_t len);

/* Zero-initialise; release with llm_delta_trim_clear. Owns held. */
struct llm_delta_trim {
    char *held; /* spaces seen after the last other character; owned */
    size_t held_len, held_cap;
    bool started; /* a non-space character went out */
};

/* Reads the next piece of the field's text and emits what the trimmed
 * field will certainly hold: at most one call to emit per piece. */
void llm_delta_trim_feed(struct llm_delta_trim *t, const char *s, size_t len,
                         llm_delta_emit_fn emit, void *arg);

/* Frees the held text and starts over (a new attempt's field). */
void llm_delta_trim_clear(struct llm_delta_trim *t);

#endif
