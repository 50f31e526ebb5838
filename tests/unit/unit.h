/* A tiny unit-test harness. Each test file is one program with a main that
 * calls RUN(test_fn) for each test; each test prints one line
 * "PASS name" or "FAIL name: file:line: what", which tests/run.py counts.
 * Keep tests independent: a failed CHECK returns from that test only. */
#ifndef PROMPTD_UNIT_H
#define PROMPTD_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed_flag;
static int unit_total_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                      \
            unit_failed_flag = 1;                                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *unit_a_ = (a), *unit_b_ = (b);                                                 \
        if (!unit_a_ || !unit_b_ || strcmp(unit_a_, unit_b_) != 0) {                               \
            printf("  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,             \
                   unit_a_ ? unit_a_ : "(null)", unit_b_ ? unit_b_ : "(null)");                    \
            unit_failed_flag = 1;                                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);                              \
        if (unit_a_ != unit_b_) {                                                                  \
            printf("  %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, unit_a_,        \
                   unit_b_);                                                                       \
            unit_failed_flag = 1;                                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        unit_failed_flag = 0;                                                                      \
        fn();                                                                                      \
        printf("%s %s\n", unit_failed_flag ? "FAIL" : "PASS", #fn);                                \
        fflush(stdout);                                                                            \
        unit_total_failed += unit_failed_flag;                                                     \
    } while (0)

#define UNIT_EXIT() return unit_total_failed ? 1 : 0

#endif
