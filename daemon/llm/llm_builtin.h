/* The builtin provider: an offline, deterministic template improver, used
 * when no LLM is configured or reachable (LLM_FALLBACK_PROVIDER=builtin or
 * provider "builtin"). It guesses the task's domain from keywords, picks a
 * role, framework and guardrails for it, and assembles a prompt that keeps
 * the idea word for word. It is honest about what it is: low confidence
 * and a reasoning that says it is the offline template. docs/builtin.md
 * describes the template. Pure: same input, same output; no I/O. */
#ifndef PROMPTD_LLM_BUILTIN_H
#define PROMPTD_LLM_BUILTIN_H

#include "llm_result.h"

/* Name used as the provider and model of builtin results. */
#define BUILTIN_NAME "builtin"

/* Fills *out (initialised; cleared first) from the idea (required, any
 * length; the caller has already trimmed and length-checked it) and the
 * context (NULL or "" for none). Both borrowed. Tokens stay unknown.
 * Returns RESULT_OK (RESULT_ERR_TYPE, *out cleared, only when jansson
 * cannot build the guardrails). It is also llm_provider_builtin's
 * improve_local. */
int builtin_improve(const char *idea, const char *context, struct improve_result *out);

#endif
