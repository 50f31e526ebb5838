/* Every limit that protects promptd, in one place, each with its reason.
 * Limits that users may tune are config keys (daemon/config.c); the value
 * here is then only the default. docs/limits.md lists them all. */
#ifndef PROMPTD_LIMITS_H
#define PROMPTD_LIMITS_H

/* One request line, newline excluded (config MAX_REQUEST_BYTES). A line past
 * it is answered -32600 too_large and the connection is closed, because the
 * rest of the line cannot be framed without buffering it. */
#define LIMIT_REQUEST_BYTES_DEFAULT (1024 * 1024)
#define LIMIT_REQUEST_BYTES_MIN     1024
#define LIMIT_REQUEST_BYTES_MAX     (64 * 1024 * 1024)

/* Bytes of responses queued to one client that does not read them. Past it
 * the daemon stops reading that client's requests until half has drained,
 * so a client that never reads cannot grow the daemon's memory. Reading
 * also stops while the queue plus what the calls in flight are expected to
 * answer would pass it (conn.c, answer_guess): an answer once computed is
 * never dropped for a client that is still there, so fewer are started. */
#define LIMIT_CONN_OUTPUT_BYTES (4 * 1024 * 1024)

/* What the queue may still grow to while reading is stopped: answers of
 * calls already in flight, and improve.delta notifications, keep coming.
 * A message that would take a queue already past LIMIT_CONN_OUTPUT_BYTES
 * beyond this closes the connection (counted in health as
 * requests.output_limit_disconnections): a client that never reads must
 * not hold the daemon's memory. Far above what a client that reads at all
 * reaches (16 calls' answers of a few MiB each, conn.c). */
#define LIMIT_CONN_OUTPUT_HARD_BYTES (64 * 1024 * 1024)

/* A string request id, in bytes. Every answer and every improve.delta
 * repeats it, so a megabyte id would multiply the output; clients use
 * numbers or short strings. Longer is -32600 invalid_request, id null. */
#define LIMIT_REQUEST_ID_BYTES 256

/* Requests in flight on one connection: pipelining is fine, an unbounded
 * number of pending calls per client is not. Past it reading pauses. */
#define LIMIT_CONN_IN_FLIGHT 1024

/* improve: the idea, after trimming, in characters (code points). */
#define LIMIT_IDEA_MIN_CHARS 5
#define LIMIT_IDEA_MAX_CHARS 20000
/* improve: the context, in characters; a prompt's context, not a document. */
#define LIMIT_CONTEXT_MAX_CHARS 100000

/* Few-shot trainset (FEWSHOT_TRAINSET_PATH, docs/fewshot.md). The whole
 * file is read into memory at start-up and on SIGHUP, so it is bounded;
 * a few hundred good examples is already plenty. */
#define LIMIT_FEWSHOT_FILE_BYTES (8 * 1024 * 1024)
#define LIMIT_FEWSHOT_EXAMPLES   10000
/* An example's idea, context, improved_prompt and reasoning, in characters
 * after trimming: an idea's own maximum. The context is held tighter than
 * improve's (LIMIT_CONTEXT_MAX_CHARS) because examples are repeated in
 * every few-shot request; the idea's minimum is improve's. */
#define LIMIT_FEWSHOT_TEXT_CHARS LIMIT_IDEA_MAX_CHARS
/* role, directive, framework and each guardrail: a line, not a document. */
#define LIMIT_FEWSHOT_SHORT_CHARS 1000
#define LIMIT_FEWSHOT_GUARDRAILS  20
/* Bytes of examples in one request's user message: the most similar
 * example always goes in; the next ones only while the total stays under
 * this, so FEWSHOT_K=20 long examples cannot blow a model's context. */
#define LIMIT_FEWSHOT_PROMPT_BYTES (64 * 1024)

/* One upstream HTTP response body. A model that never stops, or a hostile
 * server, must not fill the daemon's memory. */
#define LIMIT_UPSTREAM_RESPONSE_BYTES (8 * 1024 * 1024)

/* history.list limit and history.search limit. */
#define LIMIT_HISTORY_PAGE_MAX     500
#define LIMIT_HISTORY_PAGE_DEFAULT 20
/* Serialized rows in one history.list or history.search answer. A page
 * stops early (always with at least one row) and says `truncated`, so
 * 500 rows of a megabyte each never become one 500 MB line that the
 * loop must serialise while every other client waits, nor pass a
 * client's line cap (promptctl's is 64 MiB). */
#define LIMIT_HISTORY_PAGE_BYTES (4 * 1024 * 1024)

/* history.search query, in bytes as sent, and its different words (a
 * repeated word counts once, and is searched once). FTS5's snippet costs
 * about the square of the matched words in a row, so a query of
 * thousands of words took minutes of a pool thread; a search box needs a
 * few words. */
#define LIMIT_SEARCH_QUERY_BYTES 1024
#define LIMIT_SEARCH_QUERY_TERMS 16

/* Each model-written field of an improve result (improved_prompt, role,
 * directive, framework, reasoning, each guardrail, and the guardrails
 * together), in bytes after trimming. A model output is bounded only by
 * LIMIT_UPSTREAM_RESPONSE_BYTES; every stored row is read back, listed
 * and exported, so each field gets a bound far above a real prompt. A
 * larger field is bad model output (-32003): nothing is stored. */
#define LIMIT_RESULT_FIELD_BYTES (256 * 1024)

/* Rows waiting for the writer thread. Past it a row is dropped and counted
 * (dropped_writes): the caller never waits for the disk. */
#define LIMIT_STORE_QUEUE_ROWS 65536

/* SIGTERM: how long in-flight requests may take to finish before the
 * daemon answers them -32800 and exits. */
#define LIMIT_SHUTDOWN_GRACE_MS 5000

/* Unix socket path: sun_path is 108 bytes on Linux, 104 on macOS; the
 * smaller bound keeps one rule everywhere. Includes the NUL. */
#define LIMIT_SOCKET_PATH_BYTES 104

#endif
