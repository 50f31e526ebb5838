/* The structured result of one improvement and everything around it that
 * is pure: parsing and validating what a model wrote (with one repair
 * pass), the JSON Schemas providers send to hold the model to that shape,
 * the system prompt and user message, the quality score, and the protocol's
 * `improve` result object. No I/O, no loop, no globals.
 *
 * The model's object has exactly seven fields:
 *   role, directive, framework, improved_prompt  non-empty strings
 *   guardrails   array of strings (see result_parse_model_output for coercion)
 *   reasoning    string or null
 *   confidence   number in 0..1 or null
 */
#ifndef PROMPTD_LLM_RESULT_H
#define PROMPTD_LLM_RESULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Bytes of the model's output quoted back in an error's detail. */
#define RESULT_DETAIL_BYTES 200

/* Field name whose value streams to clients as improve.delta. */
#define RESULT_STREAM_FIELD "improved_prompt"

struct improve_result {
    char *improved_prompt;       /* owned, NUL-terminated, non-empty once parsed */
    char *role;                  /* owned */
    char *directive;             /* owned */
    char *framework;             /* owned */
    json_t *guardrails;          /* owned reference; a JSON array of strings */
    char *reasoning;             /* owned; NULL when the model gave none (JSON null) */
    double confidence;           /* 0..1; meaningful only when has_confidence */
    bool has_confidence;         /* false: confidence is JSON null */
    long long tokens_prompt;     /* -1 when the provider did not say */
    long long tokens_completion; /* -1 when the provider did not say */
    bool truncated;              /* the provider stopped at its token limit (set by the provider) */
    /* After RESULT_ERR_TOO_LONG: the field past LIMIT_RESULT_FIELD_BYTES
     * (static storage); NULL otherwise. */
    const char *too_long_field;
};

/* Error codes of result_parse_model_output / result_from_json. All mean
 * -32003 bad_model_output except RESULT_ERR_NOMEM (-32603 internal). */
enum result_error {
    RESULT_OK = 0,
    RESULT_ERR_EMPTY = -1,    /* nothing but whitespace / <think> blocks */
    RESULT_ERR_NOT_JSON = -2, /* no JSON object even after the repair */
    RESULT_ERR_MISSING = -3,  /* a required field is absent */
    RESULT_ERR_TYPE = -4,     /* a field has the wrong type or is empty */
    RESULT_ERR_NOMEM = -5,
    RESULT_ERR_TOO_LONG = -6, /* a field past LIMIT_RESULT_FIELD_BYTES (too_long_field) */
};

/* A sentence naming the problem, for messages and logs; static storage. */
const char *result_strerror(int code);

/* Sets every pointer to NULL, confidence to null, tokens to unknown. */
void result_init(struct improve_result *r);

/* Frees what r owns and re-initialises it; safe on an initialised r. */
void result_clear(struct improve_result *r);

/* Deep copy into dst (which is overwritten, not freed: init or clear it
 * first). Returns 0, or RESULT_ERR_NOMEM leaving dst cleared. */
int result_copy(struct improve_result *dst, const struct improve_result *src);

/* Parses the model's text output into *out (which must be initialised;
 * its previous contents are cleared). Steps:
 *  1. parse the whole text (trimmed) as one JSON object; if that works,
 *     go to 4 (so a "<think>" inside a JSON string is left alone);
 *  2. otherwise repair once: drop everything up to an orphan "</think>"
 *     (a template that opened the tag in the prompt), then scan for '{'
 *     outside <think>...</think> blocks (an unclosed <think> hides the
 *     rest), take the balanced {...} starting there (strings and escapes
 *     honoured) and parse it; if it is not a JSON object, try the next
 *     '{'. This skips ``` fences with or without a language tag and prose
 *     before or after. A text that is a JSON string holding the object
 *     (double-encoded) is decoded once too;
 *  3. no object found: RESULT_ERR_NOT_JSON (RESULT_ERR_EMPTY when nothing
 *     but whitespace and think blocks was said);
 *  4. validate with result_from_json (no repair of a valid object with
 *     wrong fields: that is RESULT_ERR_MISSING / RESULT_ERR_TYPE).
 * Tokens and truncated in *out are left as the caller set them after
 * result_init, i.e. unknown/false; the provider fills them afterwards.
 * On success returns RESULT_OK and sets *detail (if detail is non-NULL) to
 * NULL. On failure returns a negative enum result_error, leaves *out
 * cleared, and sets *detail to a malloc'd, valid UTF-8, NUL-terminated copy
 * of the first RESULT_DETAIL_BYTES bytes of `text` (never cutting a code
 * point; invalid bytes shown as U+FFFD) that the caller owns and frees;
 * *detail may be NULL if that copy could not be allocated. */
int result_parse_model_output(const char *text, size_t len, struct improve_result *out,
                              char **detail);

/* Validates an already-parsed object (Anthropic's tool_use `input`) into
 * *out (initialised; cleared first). Rules:
 *  - role, directive, framework, improved_prompt: required strings, not
 *    empty after trimming whitespace (stored trimmed);
 *  - guardrails: required; an array whose string items are kept trimmed
 *    (non-string and blank items dropped); a single string is wrapped as a
 *    one-item array (small models do this; the meaning is clear); any
 *    other type, null included, is RESULT_ERR_TYPE. An empty array is
 *    accepted (guardrails are advice, the prompt is the product);
 *  - reasoning: absent, null or non-string -> NULL; a blank string ->
 *    NULL; otherwise stored trimmed (it is optional, so never an error);
 *  - confidence: a number in [0, 1] is kept; a string holding such a number
 *    ("0.8") is parsed; anything else (7, -1, NaN, "high", absent) -> null;
 *  - unknown extra fields are ignored;
 *  - in every string kept, a NUL (\u0000) becomes U+FFFD, as
 *    json_field_stream streams it (a C string cannot carry NUL).
 * `obj` is borrowed. Returns RESULT_OK or a negative enum result_error. */
int result_from_json(const json_t *obj, struct improve_result *out);

/* The quality score of the old backend, kept exactly so history rows
 * compare: clamp01(c - min(latency_ms / 10000, 0.3)) where c is the
 * confidence, or 0.5 when it is null. A confidence of 0.0 is a value, not
 * null (the store's SQL uses COALESCE(confidence, 0.5) to match). Negative
 * and NaN latencies count as 0, a NaN confidence as null. */
double result_quality_score(bool has_confidence, double confidence, double latency_ms);

/* What the engine knows about the call, for result_to_json. */
struct result_meta {
    long long id;         /* history row id, or -1 for null (not recorded) */
    const char *backend;  /* "zero-shot" | "few-shot"; borrowed */
    const char *provider; /* borrowed */
    const char *model;    /* borrowed; NULL -> JSON null */
    long long latency_ms;
    long long parent_id; /* -1 for null */
};

/* The protocol's `improve` result object, fields in the documented order:
 * id, improved_prompt, role, directive, framework, guardrails, reasoning,
 * confidence, quality_score, backend, provider, model, latency_ms, tokens,
 * parent_id. tokens is {"prompt","completion"} when both are known, else
 * null. With meta NULL only the model's seven fields and tokens are set
 * (no quality_score). Returns a new reference, or NULL when out of memory. */
json_t *result_to_json(const struct improve_result *r, const struct result_meta *meta);

/* JSON Schema (draft 2020-12 subset accepted by Ollama `format`, OpenAI
 * `response_format.json_schema.schema` with strict: true, and Anthropic
 * tool `input_schema`): an object, all seven fields required,
 * additionalProperties false; guardrails an array of strings, reasoning a
 * string, confidence a number (its 0..1 range is in the description, as
 * OpenAI strict mode rejects minimum/maximum on some deployments; the
 * parser enforces it). No type unions, so every backend's grammar
 * converter accepts it; the parser still accepts null for both. Properties
 * are listed plan-first (role, directive, framework, guardrails, then
 * improved_prompt, reasoning, confidence) because constrained decoders
 * generate keys in schema order and the prompt is better written after its
 * parts are chosen. Returns a new reference, or NULL when out of memory. */
json_t *result_schema_json(void);

/* The same shape as Gemini's `generationConfig.responseSchema` (an OpenAPI
 * 3.0 subset): upper-case types ("OBJECT", "STRING", ...),
 * `propertyOrdering` for the order above (Gemini otherwise orders keys
 * alphabetically), no additionalProperties. Returns a new reference, or NULL when out of
 * memory. */
json_t *result_schema_gemini_json(void);

/* The system prompt (daemon/prompts/system.txt embedded in the binary).
 * Static storage, NUL-terminated; *len (if non-NULL) gets its length.
 * Returns NULL only if the build did not embed it. */
const char *result_system_prompt(size_t *len);

/* The user message for one request: the idea, the context when non-empty
 * (NULL is the same as ""), and, when parent_prompt is non-NULL, that
 * earlier improved prompt as the starting point to refine. All borrowed.
 * Returns a NUL-terminated string owned by the caller. */
char *result_user_message(const char *idea, const char *context, const char *parent_prompt);

/* The same, preceded by examples (fewshot_render's section; NULL or ""
 * for none) in few-shot mode. Borrowed; the result is owned as above. */
char *result_user_message_with_examples(const char *idea, const char *context,
                                        const char *parent_prompt, const char *examples);

#endif
