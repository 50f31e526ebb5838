/* A cache of serialized chat requests. Everything in an improve request
 * but the user message is the same from one request to the next (the
 * 5 KB system prompt, the result's schema, the model, the options), and
 * building and escaping it is most of the daemon's CPU per request. So the
 * provider builds the request once with a marker for the user message; the
 * cache keeps the text around the marker, and each request only escapes
 * its own message between the two halves. */
#ifndef PROMPTD_LLM_TEMPLATE_H
#define PROMPTD_LLM_TEMPLATE_H

#include "llm_provider.h"

struct llm_template_cache;

/* Returns a cache owned by the caller (llm_template_free). */
struct llm_template_cache *llm_template_new(void);
void llm_template_free(struct llm_template_cache *tc);

/* Fills out (cleared by the caller with llm_http_clear) with p's chat
 * request for c, as p->build_chat would. All borrowed. Returns 0 or -1. */
int llm_template_build(struct llm_template_cache *tc, const struct llm_provider *p,
                       const struct llm_chat *c, struct llm_http *out);

#endif
