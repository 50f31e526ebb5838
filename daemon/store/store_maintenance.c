/* store_start_maintenance (store.h): the start-up quick_check, a job on
 * the thread pool whose verdict goes to the writer, then the retention,
 * which the writer runs. The only code that needs both the jobs and the
 * writer's maintenance. */
#include <jansson.h>
#include <stdio.h>

#include "log.h"
#include "store.h"
#include "store_jobs.h"
#include "store_query.h"
#include "store_writer.h"

/* The start-up quick_check's verdict. */
static void on_quick_check(void *arg, json_t *result, int code, const char *message) {
    struct store *s = arg;
    char why[512];
    if (code != 0) {
        log_warn("history: the start-up check could not run: %s", message);
    } else if (!json_is_true(json_object_get(result, "ok"))) {
        const char *detail = json_string_value(json_object_get(result, "detail"));
        log_error("history: quick_check failed: %s", detail ? detail : "?");
        snprintf(why, sizeof why, "quick_check: %s", detail ? detail : "?");
        store_writer_replace_corrupt(s, why);
    } else {
        log_debug("history: quick_check ok");
    }
    json_decref(result);
    store_unref(s);
}

static int quick_check_job(sqlite3 *db, void *ctx, json_t **result, char *err, size_t errlen) {
    return store_q_check(db, result, err, errlen);
}

void store_start_maintenance(struct store *s) {
    if (!store_writer_claim_maintenance(s))
        return;
    /* Runs on the thread pool: on a large file the check takes seconds,
     * and start-up must take milliseconds (docs/schema.md). */
    if (store_writer_db_opened(s) && store_ref(s))
        store_job_submit(s, quick_check_job, NULL, NULL, true, on_quick_check, s);
    store_writer_start_retention(s);
}
