/* log: level names and parsing, and the level shared between threads
 * (SIGHUP's reload sets it on the loop thread while the writer and reader
 * threads log; make test-tsan reports a race there if it is not atomic). */
#include <pthread.h>

#include "log.h"
#include "unit.h"

static void test_level_names_and_parsing(void) {
    CHECK_INT(log_level_parse("debug"), LOG_DEBUG);
    CHECK_INT(log_level_parse("info"), LOG_INFO);
    CHECK_INT(log_level_parse("warn"), LOG_WARN);
    CHECK_INT(log_level_parse("warning"), LOG_WARN);
    CHECK_INT(log_level_parse("error"), LOG_ERROR);
    CHECK_INT(log_level_parse("loud"), -1);
    CHECK_STR(log_level_name(LOG_WARN), "warn");
    log_set_level(LOG_ERROR);
    CHECK_INT(log_get_level(), LOG_ERROR);
    log_set_level(LOG_INFO);
    CHECK_INT(log_get_level(), LOG_INFO);
}

/* Debug lines are below the level: nothing is printed, the level is read. */
static void *log_below_the_level(void *arg) {
    for (int i = 0; i < 1000; i++)
        log_debug("not printed %d", i);
    return arg;
}

static void test_level_set_while_another_thread_logs(void) {
    log_set_level(LOG_INFO);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, log_below_the_level, NULL), 0);
    for (int i = 0; i < 1000; i++)
        log_set_level(i % 2 ? LOG_INFO : LOG_WARN);
    CHECK_INT(pthread_join(t, NULL), 0);
    log_set_level(LOG_INFO);
    CHECK_INT(log_get_level(), LOG_INFO);
}

int main(void) {
    RUN(test_level_names_and_parsing);
    RUN(test_level_set_while_another_thread_logs);
    UNIT_EXIT();
}
