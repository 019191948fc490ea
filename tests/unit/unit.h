/* A tiny unit-test harness shared by the tests under tests/unit.
 *
 * Each test program is one translation unit that includes this header, runs
 * its checks and ends main() with "return unit_summary();":
 *
 *     static void test_parse(void) { CHECK_INT(parse("1"), 1); }
 *     int main(void) { UNIT_RUN(test_parse); return unit_summary(); }
 *
 * A failed check prints "FILE:LINE: [test] what went wrong" to stderr and the
 * run goes on, so one run lists every failure. Every check returns non-zero
 * when it passed, so a test can skip checks that depend on it:
 *     if (CHECK(cfg != NULL)) { ... }
 * unit_summary() prints "N passed, M failed" and returns the exit status
 * (1 on any failure) for automake's test driver.
 *
 * State is file-static: the harness is not meant for checks made from
 * several threads at once; threads should report back to the main thread. */
#ifndef FG_UNIT_H
#define FG_UNIT_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int unit_passed_ __attribute__((unused));
static int unit_failed_ __attribute__((unused));
static const char *unit_test_ __attribute__((unused)) = "main";

static inline __attribute__((format(printf, 4, 5)))
int unit_report_(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (ok) {
        unit_passed_++;
        return 1;
    }
    unit_failed_++;
    fprintf(stderr, "%s:%d: [%s] ", file, line, unit_test_);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 0;
}

static inline int unit_str_(const char *a, const char *b, const char *ea, const char *eb,
                            const char *file, int line)
{
    int ok = (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
    return unit_report_(ok, file, line, "CHECK_STR(%s, %s)\n    got:      %s%s%s\n    expected: %s%s%s",
                        ea, eb, a ? "\"" : "", a ? a : "NULL", a ? "\"" : "",
                        b ? "\"" : "", b ? b : "NULL", b ? "\"" : "");
}

/* <cond> holds. */
#define CHECK(cond) unit_report_((cond) != 0, __FILE__, __LINE__, "CHECK(%s)", #cond)

/* Signed and unsigned integers, compared and printed as 64-bit values. Each
 * argument is evaluated once (a call with side effects is fine). */
#define CHECK_INT(a, b)                                                                     \
    ({                                                                                      \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);                       \
        unit_report_(unit_a_ == unit_b_, __FILE__, __LINE__,                                \
                     "CHECK_INT(%s, %s): got %lld, expected %lld", #a, #b, unit_a_, unit_b_);  \
    })
#define CHECK_UINT(a, b)                                                                    \
    ({                                                                                      \
        unsigned long long unit_a_ = (unsigned long long)(a), unit_b_ = (unsigned long long)(b); \
        unit_report_(unit_a_ == unit_b_, __FILE__, __LINE__,                                \
                     "CHECK_UINT(%s, %s): got %llu, expected %llu", #a, #b, unit_a_, unit_b_); \
    })

/* NUL-terminated strings; NULL equals only NULL. */
#define CHECK_STR(a, b) unit_str_((a), (b), #a, #b, __FILE__, __LINE__)

/* A check with a message of one's own, for loops over tables of cases. */
#define CHECK_MSG(cond, ...) unit_report_((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)

/* Runs test function <fn>, naming it in the failures it reports. */
#define UNIT_RUN(fn)                                                                        \
    do {                                                                                    \
        unit_test_ = #fn;                                                                   \
        fn();                                                                               \
        unit_test_ = "main";                                                                \
    } while (0)

static inline int unit_summary(void)
{
    printf("%d passed, %d failed\n", unit_passed_, unit_failed_);
    fflush(stdout);
    return unit_failed_ ? 1 : 0;
}

#endif
