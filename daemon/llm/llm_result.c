/* The improve result: parsing and validating model output, schemas,
 * prompts, score and protocol JSON; see llm_result.h. */
#include "llm_result.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "promptd_limits.h"
#include "utf8.h"
#include "xalloc.h"

static const char *const result_fields[] = {
    "role", "directive", "framework", "guardrails", "improved_prompt", "reasoning", "confidence"};
#define RESULT_N_FIELDS (sizeof result_fields / sizeof result_fields[0])

const char *result_strerror(int code) {
    switch (code) {
    case RESULT_OK:
        return "ok";
    case RESULT_ERR_EMPTY:
        return "the model returned no answer";
    case RESULT_ERR_NOT_JSON:
        return "the model did not answer with a JSON object";
    case RESULT_ERR_MISSING:
        return "the model's answer lacks a required field";
    case RESULT_ERR_TYPE:
        return "the model's answer has a field of the wrong type or empty";
    case RESULT_ERR_NOMEM:
        return "out of memory";
    case RESULT_ERR_TOO_LONG:
        return "a field of the model's answer is longer than promptd keeps";
    default:
        return "unknown error";
    }
}

void result_init(struct improve_result *r) {
    memset(r, 0, sizeof *r);
    r->tokens_prompt = -1;
    r->tokens_completion = -1;
}

void result_clear(struct improve_result *r) {
    free(r->improved_prompt);
    free(r->role);
    free(r->directive);
    free(r->framework);
    free(r->reasoning);
    json_decref(r->guardrails);
    result_init(r);
}

static char *dup_or_null(const char *src) {
    return src ? xstrdup(src) : NULL;
}

int result_copy(struct improve_result *dst, const struct improve_result *src) {
    *dst = *src;
    dst->improved_prompt = dup_or_null(src->improved_prompt);
    dst->role = dup_or_null(src->role);
    dst->directive = dup_or_null(src->directive);
    dst->framework = dup_or_null(src->framework);
    dst->reasoning = dup_or_null(src->reasoning);
    dst->guardrails = NULL;
    if (src->guardrails && !(dst->guardrails = json_deep_copy(src->guardrails))) {
        result_clear(dst);
        return RESULT_ERR_NOMEM;
    }
    return RESULT_OK;
}

/* ---- validation ---- */

/* A NUL-terminated copy of s[0..n) with each NUL (a model's \u0000) as
 * U+FFFD, as json_field_stream streams it: a C string cannot carry NUL,
 * and the deltas must concatenate to the stored prompt. Caller owns it. */
static char *nul_free_dup(const char *s, size_t n) {
    size_t nuls = 0;
    for (size_t i = 0; i < n; i++)
        nuls += s[i] == '\0';
    char *copy = xmalloc(n + nuls * (sizeof UTF8_REPLACEMENT - 2) + 1), *o = copy;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\0') {
            *o++ = s[i];
            continue;
        }
        memcpy(o, UTF8_REPLACEMENT, sizeof UTF8_REPLACEMENT - 1);
        o += sizeof UTF8_REPLACEMENT - 1;
    }
    *o = '\0';
    return copy;
}

/* A trimmed copy of s (caller owns it), or NULL when s is blank. */
static char *trimmed_dup(const char *s, size_t len) {
    size_t n;
    const char *t = utf8_trim(s, len, &n);
    return n ? nul_free_dup(t, n) : NULL;
}

static int required_string(const json_t *obj, const char *name, char **dst) {
    const json_t *v = json_object_get(obj, name);
    if (!v)
        return RESULT_ERR_MISSING;
    if (!json_is_string(v))
        return RESULT_ERR_TYPE;
    *dst = trimmed_dup(json_string_value(v), json_string_length(v));
    return *dst ? RESULT_OK : RESULT_ERR_TYPE;
}

/* Appends s trimmed to arr unless it is blank. */
static int add_guardrail(json_t *arr, const json_t *s) {
    size_t n;
    const char *t = utf8_trim(json_string_value(s), json_string_length(s), &n);
    if (n == 0)
        return RESULT_OK;
    char *copy = nul_free_dup(t, n);
    int rc = json_array_append_new(arr, json_string(copy)) == 0 ? RESULT_OK : RESULT_ERR_NOMEM;
    free(copy);
    return rc;
}

static int parse_guardrails(const json_t *obj, json_t **dst) {
    const json_t *v = json_object_get(obj, "guardrails");
    if (!v)
        return RESULT_ERR_MISSING;
    if (!json_is_array(v) && !json_is_string(v))
        return RESULT_ERR_TYPE;
    json_t *arr = json_array();
    if (!arr)
        return RESULT_ERR_NOMEM;
    int rc = RESULT_OK;
    if (json_is_string(v)) {
        rc = add_guardrail(arr, v);
    } else {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) {
            if (json_is_string(item) && (rc = add_guardrail(arr, item)) != RESULT_OK)
                break;
        }
    }
    if (rc != RESULT_OK) {
        json_decref(arr);
        return rc;
    }
    *dst = arr;
    return RESULT_OK;
}

static int parse_reasoning(const json_t *obj, char **dst) {
    const json_t *v = json_object_get(obj, "reasoning");
    *dst = json_is_string(v) ? trimmed_dup(json_string_value(v), json_string_length(v)) : NULL;
    return RESULT_OK;
}

/* A number in [0, 1] from a JSON number or a string holding one. */
static bool confidence_value(const json_t *v, double *out) {
    double d;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        size_t n;
        const char *t = utf8_trim(json_string_value(v), json_string_length(v), &n);
        char buf[64];
        if (n == 0 || n >= sizeof buf)
            return false;
        memcpy(buf, t, n);
        buf[n] = '\0';
        char *end;
        d = strtod(buf, &end);
        if (*end != '\0')
            return false;
    } else {
        return false;
    }
    if (!(d >= 0.0 && d <= 1.0)) /* also false for NaN */
        return false;
    *out = d;
    return true;
}

/* The first model-written field past LIMIT_RESULT_FIELD_BYTES, or NULL.
 * The guardrails count each item and all of them together, with their
 * quotes and commas, so thousands of short ones are bounded too. */
static const char *result_too_long(const struct improve_result *r) {
    const struct {
        const char *name, *value;
    } fields[] = {{"improved_prompt", r->improved_prompt},
                  {"role", r->role},
                  {"directive", r->directive},
                  {"framework", r->framework},
                  {"reasoning", r->reasoning}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].value && strlen(fields[i].value) > LIMIT_RESULT_FIELD_BYTES)
            return fields[i].name;
    size_t i, total = 0;
    const json_t *g;
    json_array_foreach(r->guardrails, i, g) {
        total += json_string_length(g) + 3;
        if (json_string_length(g) > LIMIT_RESULT_FIELD_BYTES || total > LIMIT_RESULT_FIELD_BYTES)
            return "guardrails";
    }
    return NULL;
}

int result_from_json(const json_t *obj, struct improve_result *out) {
    result_clear(out);
    if (!json_is_object(obj))
        return RESULT_ERR_NOT_JSON;
    int rc = required_string(obj, "improved_prompt", &out->improved_prompt);
    if (rc == RESULT_OK)
        rc = required_string(obj, "role", &out->role);
    if (rc == RESULT_OK)
        rc = required_string(obj, "directive", &out->directive);
    if (rc == RESULT_OK)
        rc = required_string(obj, "framework", &out->framework);
    if (rc == RESULT_OK)
        rc = parse_guardrails(obj, &out->guardrails);
    if (rc == RESULT_OK)
        rc = parse_reasoning(obj, &out->reasoning);
    const char *too_long = rc == RESULT_OK ? result_too_long(out) : NULL;
    if (too_long)
        rc = RESULT_ERR_TOO_LONG;
    if (rc != RESULT_OK) {
        result_clear(out);
        out->too_long_field = too_long;
        return rc;
    }
    out->has_confidence = confidence_value(json_object_get(obj, "confidence"), &out->confidence);
    return RESULT_OK;
}

/* ---- parsing with one repair ---- */

static const char tag_open[] = "<think>";
static const char tag_close[] = "</think>";

/* memmem for the tags, bounded by end. */
static const char *find(const char *from, const char *end, const char *needle) {
    size_t n = strlen(needle);
    if ((size_t)(end - from) < n)
        return NULL;
    return memmem(from, (size_t)(end - from), needle, n);
}

/* Parses s[0..n) as one JSON value; NULL when it is not JSON. \u0000 is
 * accepted (and made U+FFFD when copied out): json_field_stream streams it
 * too, so refusing it here would fail an answer whose deltas were shown. */
static json_t *load(const char *s, size_t n) {
    json_error_t err;
    return json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
}

/* End of the balanced {...} starting at p (one past its '}'), or NULL when
 * the text ends first. Braces inside strings do not count. */
static const char *balanced_end(const char *p, const char *end) {
    int depth = 0;
    bool in_string = false, escape = false;
    for (; p < end; p++) {
        char c = *p;
        if (in_string) {
            if (escape)
                escape = false;
            else if (c == '\\')
                escape = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' && --depth == 0) {
            return p + 1;
        }
    }
    return NULL;
}

/* Where the model's answer starts: after an orphan "</think>" (one whose
 * "<think>" was part of the prompt template), else at the start. */
static const char *after_orphan_close(const char *s, const char *end) {
    const char *close = find(s, end, tag_close);
    if (!close)
        return s;
    const char *open = find(s, close, tag_open);
    return open ? s : close + sizeof tag_close - 1;
}

/* Candidate '{' the repair tries at most. Each try may scan to the end of
 * the text, so without a bound a hostile "{{{{..." of n bytes would cost
 * n^2; real outputs need one or two. */
#define RESULT_REPAIR_TRIES 8

/* The repair: the first balanced {...} outside think blocks that parses
 * as a JSON object. Returns a new reference or NULL. *saw_text is set
 * when anything but whitespace lies outside think blocks. */
static json_t *repair(const char *s, const char *end, bool *saw_text) {
    const char *p = after_orphan_close(s, end);
    int tries = 0;
    *saw_text = false;
    while (p < end && tries < RESULT_REPAIR_TRIES) {
        if (*p == '<' && (size_t)(end - p) >= sizeof tag_open - 1 &&
            memcmp(p, tag_open, sizeof tag_open - 1) == 0) {
            const char *close = find(p, end, tag_close);
            if (!close)
                return NULL; /* an unclosed think block hides the rest */
            p = close + sizeof tag_close - 1;
            continue;
        }
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            *saw_text = true;
        if (*p == '{') {
            tries++;
            const char *stop = balanced_end(p, end);
            json_t *v = stop ? load(p, (size_t)(stop - p)) : NULL;
            if (json_is_object(v))
                return v;
            json_decref(v);
        }
        p++;
    }
    return NULL;
}

/* The object the model meant, or NULL; a new reference. */
static json_t *find_object(const char *s, size_t len, int *why) {
    json_t *v = load(s, len);
    if (json_is_string(v)) {
        /* Double-encoded: the object was written as a JSON string. */
        json_t *inner = load(json_string_value(v), json_string_length(v));
        json_decref(v);
        v = inner;
    }
    if (json_is_object(v))
        return v;
    json_decref(v);
    bool saw_text;
    v = repair(s, s + len, &saw_text);
    if (!v)
        *why = saw_text ? RESULT_ERR_NOT_JSON : RESULT_ERR_EMPTY;
    return v;
}

int result_parse_model_output(const char *text, size_t len, struct improve_result *out,
                              char **detail) {
    size_t n;
    const char *s = utf8_trim(text ? text : "", text ? len : 0, &n);
    int rc = RESULT_ERR_EMPTY;
    result_clear(out);
    if (detail)
        *detail = NULL;
    if (n > 0) {
        json_t *obj = find_object(s, n, &rc);
        if (obj) {
            rc = result_from_json(obj, out);
            json_decref(obj);
        }
    }
    if (rc != RESULT_OK && detail)
        *detail = utf8_sanitize(s, n, RESULT_DETAIL_BYTES);
    return rc;
}

/* ---- score ---- */

double result_quality_score(bool has_confidence, double confidence, double latency_ms) {
    double c = has_confidence && !isnan(confidence) ? confidence : 0.5;
    double penalty = latency_ms > 0 ? latency_ms / 10000.0 : 0.0; /* NaN too: no penalty */
    if (penalty > 0.3)
        penalty = 0.3;
    double q = c - penalty;
    if (q < 0.0)
        return 0.0;
    return q > 1.0 ? 1.0 : q;
}

/* ---- protocol JSON ---- */

/* json_object_set_new that tolerates a NULL value (out of memory) by
 * failing, so one check at the end covers every field. */
static int set(json_t *obj, const char *key, json_t *value) {
    return value ? json_object_set_new(obj, key, value) : -1;
}

static json_t *string_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

static json_t *id_or_null(long long id) {
    return id >= 0 ? json_integer(id) : json_null();
}

static json_t *tokens_json(const struct improve_result *r) {
    if (r->tokens_prompt < 0 || r->tokens_completion < 0)
        return json_null();
    return json_pack("{s:I,s:I}", "prompt", (json_int_t)r->tokens_prompt, "completion",
                     (json_int_t)r->tokens_completion);
}

static int set_model_fields(json_t *o, const struct improve_result *r) {
    int rc = 0;
    rc |= set(o, "improved_prompt", string_or_null(r->improved_prompt));
    rc |= set(o, "role", string_or_null(r->role));
    rc |= set(o, "directive", string_or_null(r->directive));
    rc |= set(o, "framework", string_or_null(r->framework));
    rc |= set(o, "guardrails", r->guardrails ? json_deep_copy(r->guardrails) : json_array());
    rc |= set(o, "reasoning", string_or_null(r->reasoning));
    rc |= set(o, "confidence", r->has_confidence ? json_real(r->confidence) : json_null());
    return rc;
}

json_t *result_to_json(const struct improve_result *r, const struct result_meta *meta) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = 0;
    if (meta)
        rc |= set(o, "id", id_or_null(meta->id));
    rc |= set_model_fields(o, r);
    if (meta) {
        double q = result_quality_score(r->has_confidence, r->confidence, (double)meta->latency_ms);
        rc |= set(o, "quality_score", json_real(q));
        rc |= set(o, "backend", string_or_null(meta->backend));
        rc |= set(o, "provider", string_or_null(meta->provider));
        rc |= set(o, "model", string_or_null(meta->model));
        rc |= set(o, "latency_ms", json_integer(meta->latency_ms));
    }
    rc |= set(o, "tokens", tokens_json(r));
    if (meta)
        rc |= set(o, "parent_id", id_or_null(meta->parent_id));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- schemas ---- */

/* One description per field, shared by both schema dialects so the model
 * reads the same guidance whichever provider asks. */
static const char *field_description(const char *name) {
    if (strcmp(name, "role") == 0)
        return "Who the target model should be: a specific expert or persona.";
    if (strcmp(name, "directive") == 0)
        return "The one core instruction, imperative, one sentence.";
    if (strcmp(name, "framework") == 0)
        return "The prompt framework used: RTF, CO-STAR, RISEN, Chain of Thought or Few-shot.";
    if (strcmp(name, "guardrails") == 0)
        return "2 to 6 constraints that prevent this task's likely failures.";
    if (strcmp(name, "improved_prompt") == 0)
        return "The complete prompt, ready to paste, in the language of the idea.";
    if (strcmp(name, "reasoning") == 0)
        return "One to three sentences on what was added or clarified and why.";
    return "0 to 1: how sure you are the prompt captures what the person meant.";
}

/* The type of a field in JSON Schema spelling (lower case). */
static const char *field_type(const char *name) {
    if (strcmp(name, "guardrails") == 0)
        return "array";
    return strcmp(name, "confidence") == 0 ? "number" : "string";
}

static char *upper_dup(const char *s) {
    char *u = xstrdup(s);
    for (char *p = u; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    return u;
}

/* {"type": T, "description": D[, "items": {"type": string}]}, types upper
 * case for Gemini. */
static json_t *field_schema(const char *name, bool gemini) {
    char *type = gemini ? upper_dup(field_type(name)) : xstrdup(field_type(name));
    char *item = gemini ? upper_dup("string") : xstrdup("string");
    json_t *f = json_pack("{s:s,s:s}", "type", type, "description", field_description(name));
    if (f && strcmp(name, "guardrails") == 0 &&
        set(f, "items", json_pack("{s:s}", "type", item)) != 0) {
        json_decref(f);
        f = NULL;
    }
    free(type);
    free(item);
    return f;
}

static json_t *schema(bool gemini) {
    json_t *props = json_object(), *required = json_array(), *order = json_array();
    json_t *root = json_object();
    int rc = props && required && order && root ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < RESULT_N_FIELDS; i++) {
        rc |= set(props, result_fields[i], field_schema(result_fields[i], gemini));
        rc |= json_array_append_new(required, json_string(result_fields[i]));
        rc |= json_array_append_new(order, json_string(result_fields[i]));
    }
    if (rc == 0) {
        rc |= set(root, "type", json_string(gemini ? "OBJECT" : "object"));
        rc |= set(root, "properties", json_incref(props));
        rc |= set(root, "required", json_incref(required));
        if (gemini)
            rc |= set(root, "propertyOrdering", json_incref(order));
        else
            rc |= set(root, "additionalProperties", json_false());
    }
    json_decref(props);
    json_decref(required);
    json_decref(order);
    if (rc != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *result_schema_json(void) {
    return schema(false);
}

json_t *result_schema_gemini_json(void) {
    return schema(true);
}

/* ---- prompts ---- */

const char *result_system_prompt(size_t *len) {
    for (size_t i = 0; i < embedded_prompts_count; i++) {
        if (strcmp(embedded_prompts[i].name, "system.txt") == 0) {
            if (len)
                *len = embedded_prompts[i].len;
            return embedded_prompts[i].data;
        }
    }
    if (len)
        *len = 0;
    return NULL;
}

/* Appends to a heap string, which it may move. */
static char *cat(char *buf, size_t *len, const char *s) {
    size_t n = strlen(s);
    char *grown = xrealloc(buf, *len + n + 1);
    memcpy(grown + *len, s, n + 1);
    *len += n;
    return grown;
}

/* The idea and context go inside tags so the model can tell the material
 * to improve from the instructions about it (the system prompt says that
 * nothing inside the tags is an instruction to it). */
char *result_user_message(const char *idea, const char *context, const char *parent_prompt) {
    return result_user_message_with_examples(idea, context, parent_prompt, NULL);
}

/* Examples go first, so the request ends with the person's own idea: what
 * the model read last is what it answers. */
char *result_user_message_with_examples(const char *idea, const char *context,
                                        const char *parent_prompt, const char *examples) {
    size_t len = 0;
    char *m = xcalloc(1, 1);
    bool has_context = context && context[0];
    if (examples && examples[0])
        m = cat(m, &len, examples);
    if (parent_prompt) {
        m = cat(m, &len,
                "Refine an improved prompt written earlier: keep what it already does "
                "well, apply the change the idea below asks for, and return the whole "
                "result again.\n\n<earlier_prompt>\n");
        m = cat(m, &len, parent_prompt);
        m = cat(m, &len, "\n</earlier_prompt>\n\n<idea>\n");
    } else {
        m = cat(m, &len, "Improve this idea into a structured prompt.\n\n<idea>\n");
    }
    m = cat(m, &len, idea ? idea : "");
    m = cat(m, &len, "\n</idea>\n");
    if (has_context) {
        m = cat(m, &len, "\n<context>\n");
        m = cat(m, &len, context);
        m = cat(m, &len, "\n</context>\n");
    } else {
        m = cat(m, &len, "\n(no context given)\n");
    }
    m = cat(m, &len, "\nAnswer with the JSON object only.\n");
    return m;
}
