/* Rate limits: burst then refusal, refill, the header values on known inputs,
 * Retry-After and reset always long enough (and never longer than needed),
 * charge into debt and its cap, large numbers, and exactness under several
 * threads taking from one bucket at once. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>

#include "fg/rate_limit.h"
#include "unit.h"

#define S 1000000000ULL
#define MS 1000000ULL
/* well past boot, and not a whole number of seconds */
#define T0 (1000 * S + 123456789ULL)

static void test_burst_then_refusal(void)
{
    struct fg_rate_cfg c;
    struct fg_rate r = { 0 };
    struct fg_rate_verdict v;

    fg_rate_cfg_init(&c, 10, S, 5);
    for (uint64_t i = 0; i < 5; i++) {
        CHECK(fg_rate_take(&r, &c, T0, 1, &v));
        CHECK(v.allowed);
        CHECK_UINT(v.limit, 10);
        CHECK_UINT(v.remaining, 4 - i);
        CHECK_UINT(v.reset_s, 1);   /* (i + 1) * 100 ms */
        CHECK_UINT(v.retry_after_s, 0);
    }
    CHECK(!fg_rate_take(&r, &c, T0, 1, &v));
    CHECK(!v.allowed);
    CHECK_UINT(v.remaining, 0);
    CHECK_UINT(v.reset_s, 1);
    CHECK_UINT(v.retry_after_s, 1);
    /* a refusal takes nothing: the next unit comes back 100 ms on, not later */
    CHECK(!fg_rate_take(&r, &c, T0, 1, &v));
    CHECK(!fg_rate_take(&r, &c, T0 + 100 * MS - 1, 1, NULL));
    CHECK(fg_rate_take(&r, &c, T0 + 100 * MS, 1, &v));
    CHECK_UINT(v.remaining, 0);
    CHECK(!fg_rate_take(&r, &c, T0 + 100 * MS, 1, NULL));
    CHECK(!fg_rate_take(&r, &c, T0 + 200 * MS - 1, 1, NULL));
    CHECK(fg_rate_take(&r, &c, T0 + 200 * MS, 1, NULL));
}

static void test_refill(void)
{
    struct fg_rate_cfg c;
    struct fg_rate r = { 0 };
    struct fg_rate_verdict v;
    unsigned allowed = 0;

    fg_rate_cfg_init(&c, 10, S, 5);
    for (int i = 0; i < 5; i++)
        CHECK(fg_rate_take(&r, &c, T0, 1, NULL));
    /* 250 ms give back two units, not three */
    CHECK(fg_rate_take(&r, &c, T0 + 250 * MS, 1, &v));
    CHECK_UINT(v.remaining, 1);
    CHECK(fg_rate_take(&r, &c, T0 + 250 * MS, 1, NULL));
    CHECK(!fg_rate_take(&r, &c, T0 + 250 * MS, 1, NULL));
    /* an idle hour banks a full bucket, no more */
    CHECK(fg_rate_check(&r, &c, T0 + 3600 * S, &v));
    CHECK_UINT(v.remaining, 5);
    CHECK_UINT(v.reset_s, 0);
    while (fg_rate_take(&r, &c, T0 + 3600 * S, 1, NULL))
        allowed++;
    CHECK_UINT(allowed, 5);
    /* steady state: one per 100 ms over a simulated minute */
    allowed = 0;
    for (uint64_t t = T0 + 3600 * S; t < T0 + 3660 * S; t += MS)
        allowed += fg_rate_take(&r, &c, t, 1, NULL);
    CHECK_UINT(allowed, 599);  /* the last one is due at exactly +60 s */

    fg_rate_reset(&r);
    CHECK(fg_rate_check(&r, &c, T0 + 3660 * S, &v));
    CHECK_UINT(v.remaining, 5);
}

static void test_known_values(void)
{
    struct fg_rate_cfg c;
    struct fg_rate r = { 0 };
    struct fg_rate_verdict v;

    /* 1 per second, burst 10 */
    fg_rate_cfg_init(&c, 1, S, 10);
    CHECK(fg_rate_take(&r, &c, T0, 1, &v));
    CHECK_UINT(v.remaining, 9);
    CHECK_UINT(v.reset_s, 1);
    CHECK(fg_rate_take(&r, &c, T0, 9, &v));
    CHECK_UINT(v.remaining, 0);
    CHECK_UINT(v.reset_s, 10);
    CHECK(!fg_rate_take(&r, &c, T0, 1, &v));
    CHECK_UINT(v.retry_after_s, 1);
    CHECK(!fg_rate_take(&r, &c, T0 + 500 * MS, 1, &v));
    CHECK_UINT(v.retry_after_s, 1);     /* 500 ms, rounded up */
    CHECK_UINT(v.reset_s, 10);          /* 9.5 s, rounded up */
    CHECK(fg_rate_take(&r, &c, T0 + S, 1, &v));
    CHECK_UINT(v.reset_s, 10);

    /* several units at once: all or nothing */
    fg_rate_cfg_init(&c, 100, S, 50);
    fg_rate_reset(&r);
    CHECK(fg_rate_take(&r, &c, T0, 30, &v));
    CHECK_UINT(v.remaining, 20);
    CHECK_UINT(v.reset_s, 1);           /* 300 ms */
    CHECK(!fg_rate_take(&r, &c, T0, 30, &v));
    CHECK_UINT(v.remaining, 20);
    CHECK_UINT(v.retry_after_s, 1);     /* 10 more units: 100 ms */
    CHECK(!fg_rate_take(&r, &c, T0 + 100 * MS - 1, 30, NULL));
    CHECK(fg_rate_take(&r, &c, T0 + 100 * MS, 30, &v));
    CHECK_UINT(v.remaining, 0);
    CHECK(!fg_rate_take(&r, &c, T0 + 100 * MS, 51, &v));
    CHECK_UINT(v.retry_after_s, FG_RATE_NEVER);
    fg_rate_reset(&r);
    CHECK(!fg_rate_take(&r, &c, T0, 51, &v));   /* even from full */
    CHECK_UINT(v.remaining, 50);
    CHECK(fg_rate_take(&r, &c, T0, 50, NULL));

    /* 1 per minute: Retry-After counts the whole minute */
    fg_rate_cfg_init(&c, 1, 60 * S, 1);
    fg_rate_reset(&r);
    CHECK(fg_rate_take(&r, &c, T0, 1, &v));
    CHECK_UINT(v.limit, 1);
    CHECK_UINT(v.reset_s, 60);
    CHECK(!fg_rate_take(&r, &c, T0 + 1, 1, &v));
    CHECK_UINT(v.retry_after_s, 60);
    CHECK(!fg_rate_take(&r, &c, T0 + 60 * S - 1, 1, NULL));
    CHECK(fg_rate_take(&r, &c, T0 + 60 * S, 1, NULL));
}

/* For rates whose unit is not a whole number of ns, and odd clocks: a fresh
 * bucket allows exactly burst; waiting Retry-After seconds is enough and one
 * second less is not; after reset seconds the bucket is full and one second
 * before it is not. */
static void test_promises_hold(void)
{
    static const struct {
        uint64_t rate, period_ns, burst;
    } cases[] = {
        { 1, 60 * S, 1 },   { 3, S, 3 },         { 7, S, 2 },        { 1000, S, 10 },
        { 5, 3600 * S, 5 }, { 60000, 60 * S, 100 }, { 999999937, S, 1000 },
        { 1000000000000ULL, 60 * S, 1000 }, { 13, 7 * S, 4 },
    };
    static const uint64_t starts[] = { 0, 1, T0, 987654321987654321ULL % (40ULL * 86400 * S) };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t j = 0; j < sizeof(starts) / sizeof(starts[0]); j++) {
            struct fg_rate_cfg c;
            struct fg_rate r = { 0 }, copy;
            struct fg_rate_verdict v;
            uint64_t now = starts[j], taken = 0, wait, reset;

            fg_rate_cfg_init(&c, cases[i].rate, cases[i].period_ns, cases[i].burst);
            while (fg_rate_take(&r, &c, now, 1, &v) && taken <= cases[i].burst)
                taken++;
            CHECK_MSG(taken == cases[i].burst, "case %zu/%zu: took %llu of burst %llu", i, j,
                      (unsigned long long)taken, (unsigned long long)cases[i].burst);
            CHECK_MSG(v.retry_after_s >= 1, "case %zu/%zu: retry_after_s 0", i, j);
            wait = v.retry_after_s * S;
            reset = v.reset_s * S;
            copy = r;
            CHECK_MSG(!fg_rate_take(&copy, &c, now + wait - S, 1, NULL),
                      "case %zu/%zu: allowed a second before Retry-After", i, j);
            CHECK_MSG(fg_rate_take(&copy, &c, now + wait, 1, NULL),
                      "case %zu/%zu: refused after Retry-After %llu", i, j,
                      (unsigned long long)v.retry_after_s);
            copy = r;
            fg_rate_check(&copy, &c, now + reset, &v);
            CHECK_MSG(v.remaining == cases[i].burst && v.reset_s == 0,
                      "case %zu/%zu: not full at reset", i, j);
            fg_rate_check(&copy, &c, now + reset - S, &v);
            CHECK_MSG(v.remaining < cases[i].burst, "case %zu/%zu: full before reset", i, j);
        }
    }
}

static void test_charge_debt(void)
{
    struct fg_rate_cfg c;
    struct fg_rate r = { 0 };
    struct fg_rate_verdict v;

    /* 60000 tokens per minute: one a millisecond */
    fg_rate_cfg_init(&c, 60000, 60 * S, 60000);
    CHECK(fg_rate_check(&r, &c, T0, &v));
    CHECK_UINT(v.limit, 60000);
    CHECK_UINT(v.remaining, 60000);
    CHECK_UINT(v.reset_s, 0);
    CHECK_UINT(v.retry_after_s, 0);

    fg_rate_charge(&r, &c, T0, 0);
    CHECK(fg_rate_check(&r, &c, T0, &v));
    CHECK_UINT(v.remaining, 60000);
    fg_rate_charge(&r, &c, T0, 1000);
    CHECK(fg_rate_check(&r, &c, T0, &v));
    CHECK_UINT(v.remaining, 59000);
    CHECK_UINT(v.reset_s, 1);

    fg_rate_charge(&r, &c, T0, 89000);  /* 90000 in all: 30000 in debt */
    CHECK(!fg_rate_check(&r, &c, T0, &v));
    CHECK_UINT(v.remaining, 0);
    CHECK_UINT(v.reset_s, 90);
    CHECK_UINT(v.retry_after_s, 31);    /* back to one token: 30001 ms */
    CHECK(!fg_rate_take(&r, &c, T0, 1, NULL));
    CHECK(!fg_rate_check(&r, &c, T0 + 30 * S, &v));   /* empty, debt paid */
    CHECK_UINT(v.retry_after_s, 1);
    CHECK(fg_rate_check(&r, &c, T0 + 30 * S + MS, &v));
    CHECK_UINT(v.remaining, 1);
    CHECK_UINT(v.reset_s, 60);          /* 59.999 s */
    /* check takes nothing */
    CHECK(fg_rate_check(&r, &c, T0 + 30 * S + MS, &v));
    CHECK(fg_rate_take(&r, &c, T0 + 30 * S + MS, 1, NULL));
    CHECK(!fg_rate_check(&r, &c, T0 + 30 * S + MS, NULL));
}

static void test_debt_cap(void)
{
    struct fg_rate_cfg c;
    struct fg_rate r = { 0 };
    struct fg_rate_verdict v;

    fg_rate_cfg_init(&c, 60000, 60 * S, 60000);
    fg_rate_charge(&r, &c, T0, UINT64_MAX);
    CHECK(!fg_rate_check(&r, &c, T0, &v));
    CHECK_UINT(v.reset_s, 3660);        /* a minute's bucket plus an hour of debt */
    CHECK_UINT(v.retry_after_s, 3601);  /* an hour and one token */
    fg_rate_charge(&r, &c, T0, 1000000);   /* at the cap: no further */
    CHECK(!fg_rate_check(&r, &c, T0, &v));
    CHECK_UINT(v.reset_s, 3660);
    fg_rate_charge(&r, &c, T0 + 10 * S, 1000000);  /* paid 10 s, charged back to the cap */
    CHECK(!fg_rate_check(&r, &c, T0 + 10 * S, &v));
    CHECK_UINT(v.reset_s, 3660);
    CHECK(!fg_rate_check(&r, &c, T0 + 10 * S + 3600 * S, NULL));
    CHECK(fg_rate_check(&r, &c, T0 + 10 * S + 3600 * S + MS, &v));
    CHECK_UINT(v.remaining, 1);

    /* one a day: the cap is an hour of time (1/24 of a unit), then the unit */
    fg_rate_cfg_init(&c, 1, 86400 * S, 1);
    fg_rate_reset(&r);
    fg_rate_charge(&r, &c, T0, 100);
    CHECK(!fg_rate_check(&r, &c, T0, &v));
    CHECK_UINT(v.retry_after_s, 90000);
    CHECK(!fg_rate_check(&r, &c, T0 + 90000 * S - 1, NULL));
    CHECK(fg_rate_check(&r, &c, T0 + 90000 * S, NULL));
}

static void test_large_numbers(void)
{
    struct fg_rate_cfg c;
    struct fg_rate r = { 0 };
    struct fg_rate_verdict v;
    /* 25 years of uptime */
    const uint64_t late = 25ULL * 365 * 86400 * S;

    /* 1e9 per second, burst 1e9 */
    fg_rate_cfg_init(&c, 1000000000ULL, S, 1000000000ULL);
    CHECK(fg_rate_take(&r, &c, late, 1000000000ULL, &v));
    CHECK_UINT(v.remaining, 0);
    CHECK_UINT(v.reset_s, 1);
    CHECK(!fg_rate_take(&r, &c, late, 1, &v));
    CHECK_UINT(v.retry_after_s, 1);
    CHECK(fg_rate_take(&r, &c, late + 1, 1, NULL));
    CHECK(!fg_rate_take(&r, &c, late + 1, 1, NULL));
    CHECK(fg_rate_check(&r, &c, late + S + 1, &v));
    CHECK_UINT(v.remaining, 1000000000ULL);

    /* 1e9 per second, burst 1: 1e6 takes over 1 ms of steps of 1 ns */
    fg_rate_cfg_init(&c, 1000000000ULL, S, 1);
    fg_rate_reset(&r);
    {
        uint64_t allowed = 0;
        for (uint64_t t = late; t < late + MS; t++)
            allowed += fg_rate_take(&r, &c, t, 1, NULL);
        CHECK_UINT(allowed, 1000000);
    }

    /* 1e12 tokens per minute, 0.06 ns a token */
    fg_rate_cfg_init(&c, 1000000000000ULL, 60 * S, 1000000000000ULL);
    fg_rate_reset(&r);
    CHECK(fg_rate_check(&r, &c, late, &v));
    CHECK_UINT(v.limit, 1000000000000ULL);
    CHECK_UINT(v.remaining, 1000000000000ULL);
    CHECK(fg_rate_take(&r, &c, late, 999999999999ULL, &v));
    CHECK_UINT(v.remaining, 1);
    CHECK_UINT(v.reset_s, 60);
    CHECK(fg_rate_take(&r, &c, late, 1, &v));
    CHECK_UINT(v.remaining, 0);
    CHECK(!fg_rate_take(&r, &c, late, 1, &v));
    CHECK_UINT(v.retry_after_s, 1);
    CHECK(!fg_rate_check(&r, &c, late, NULL));
    /* 3 ns give back 50 tokens */
    CHECK(fg_rate_check(&r, &c, late + 3, &v));
    CHECK_UINT(v.remaining, 50);
    CHECK(fg_rate_take(&r, &c, late + 3, 50, NULL));
    CHECK(!fg_rate_take(&r, &c, late + 3, 1, NULL));
    /* 30 s of debt: 5e11 tokens */
    fg_rate_charge(&r, &c, late + 3, 500000000000ULL);
    CHECK(!fg_rate_check(&r, &c, late + 3, &v));
    CHECK_UINT(v.reset_s, 90);
    CHECK_UINT(v.retry_after_s, 31);    /* 30 s and a fraction of a ns */
    CHECK(!fg_rate_check(&r, &c, late + 3 + 30 * S, NULL));
    CHECK(fg_rate_check(&r, &c, late + 3 + 30 * S + 1, NULL));
    /* the cap: a minute's bucket and an hour */
    fg_rate_charge(&r, &c, late, UINT64_MAX);
    CHECK(!fg_rate_check(&r, &c, late, &v));
    CHECK_UINT(v.reset_s, 3660);
    CHECK_UINT(v.retry_after_s, 3601);
}

#define THREADS 4
#define TRIES 200000

struct hammer {
    struct fg_rate *r;
    const struct fg_rate_cfg *c;
    uint64_t now_ns;
    int charge;             /* charge 1 each try instead of taking */
    uint64_t allowed;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;

    for (unsigned i = 0; i < TRIES; i++) {
        if (h->charge)
            fg_rate_charge(h->r, h->c, h->now_ns, 1);
        else
            h->allowed += fg_rate_take(h->r, h->c, h->now_ns, 1, NULL);
    }
    return NULL;
}

static uint64_t hammer(struct fg_rate *r, const struct fg_rate_cfg *c, int charge)
{
    pthread_t tid[THREADS];
    struct hammer h[THREADS];
    uint64_t allowed = 0;

    for (int i = 0; i < THREADS; i++) {
        h[i] = (struct hammer){ .r = r, .c = c, .now_ns = T0, .charge = charge };
        CHECK(pthread_create(&tid[i], NULL, hammer_run, &h[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(tid[i], NULL);
        allowed += h[i].allowed;
    }
    return allowed;
}

static void test_threads_exact(void)
{
    struct fg_rate_cfg c;
    struct fg_rate r = { 0 };
    struct fg_rate_verdict v;
    uint64_t allowed;

    /* burst below what the threads try: exactly burst get through
     * (CHECK_UINT evaluates its arguments more than once) */
    fg_rate_cfg_init(&c, 1, S, 300007);
    allowed = hammer(&r, &c, 0);
    CHECK_UINT(allowed, 300007);
    CHECK(!fg_rate_take(&r, &c, T0, 1, NULL));
    /* 3 per second: a unit is not a whole number of ns */
    fg_rate_cfg_init(&c, 3, S, 123457);
    fg_rate_reset(&r);
    allowed = hammer(&r, &c, 0);
    CHECK_UINT(allowed, 123457);

    /* charges all count: none is lost to a race */
    fg_rate_cfg_init(&c, 1, S, 1000000);
    fg_rate_reset(&r);
    hammer(&r, &c, 1);
    fg_rate_check(&r, &c, T0, &v);
    CHECK_UINT(v.remaining, 1000000 - THREADS * TRIES);
}

int main(void)
{
    UNIT_RUN(test_burst_then_refusal);
    UNIT_RUN(test_refill);
    UNIT_RUN(test_known_values);
    UNIT_RUN(test_promises_hold);
    UNIT_RUN(test_charge_debt);
    UNIT_RUN(test_debt_cap);
    UNIT_RUN(test_large_numbers);
    UNIT_RUN(test_threads_exact);
    return unit_summary();
}
