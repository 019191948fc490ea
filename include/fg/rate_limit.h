/* Rate limits shared by all worker threads: a token bucket in the GCRA form,
 * one atomic 64-bit word per limit, updated with a compare-and-swap loop, so
 * no thread ever waits on a lock for it.
 *
 * The word holds the theoretical arrival time (tat): the moment the bucket
 * will be full again. Taking n units moves it to max(tat, now) + n emission
 * intervals; the take is allowed when that is no more than the tolerance (a
 * full bucket's worth of time) ahead of now.
 *
 * Time is counted in ticks of the limit's own clock, ticks = now_ns * num /
 * den. A tick is exactly 1 ns whenever the rate divides period_ns (10 per
 * second, 1000 per minute...); otherwise it is a little shorter, chosen so
 * that one unit is a whole number of ticks. That keeps the bucket exact where
 * a unit is a fraction of a nanosecond (1e12 tokens per minute is 0.06 ns) or
 * not a whole one (3 per second): a fresh bucket allows exactly <burst> units,
 * then one more each period_ns / rate.
 *
 * Callers pass a monotonic now_ns (CLOCK_MONOTONIC); threads may pass slightly
 * different ones: one with an older clock only sees the bucket a little
 * emptier than it is. A bucket belongs to one configuration (tat is in its
 * ticks): reset it when the configuration changes.
 *
 * Times told to clients (reset, Retry-After) are whole seconds rounded up, so
 * a client that waits that long finds the bucket as promised, unless others
 * took from it meanwhile. */
#ifndef FG_RATE_LIMIT_H
#define FG_RATE_LIMIT_H

#include <stdatomic.h>
#include <stdint.h>

/* A charge takes a bucket at most this much of its rate beyond empty (the
 * rest of a larger charge is forgiven), so one huge charge locks a key out
 * for about an hour, not for ever. */
#define FG_RATE_MAX_DEBT_NS (3600ULL * 1000000000ULL)

/* now_ns must stay below this (uptime, for CLOCK_MONOTONIC) for the tick
 * arithmetic to fit 64 bits; fg_rate_cfg_init() checks that it does. */
#define FG_RATE_CLOCK_SPAN_NS (30ULL * 365 * 86400 * 1000000000ULL)

/* retry_after_s of a take that can never succeed (n > burst). */
#define FG_RATE_NEVER UINT64_MAX

struct fg_rate_cfg {            /* immutable once initialised */
    uint64_t limit;             /* the advertised limit (= rate), for x-ratelimit-limit */
    uint64_t burst;             /* bucket size in units, >= 1 */
    uint64_t emission;          /* ticks one unit takes to come back */
    uint64_t tolerance;         /* burst * emission: a full bucket, in ticks */
    uint64_t max_ahead;         /* tolerance + the debt cap, in ticks */
    uint64_t num, den;          /* ticks = ns * num / den, in lowest terms */
};

/* <rate> units per <period_ns> (1e9 for per second, 60e9 for per minute),
 * with a bucket of <burst> units. All three must be > 0, and the ticks of
 * FG_RATE_CLOCK_SPAN_NS plus a full bucket plus the debt cap must fit 64
 * bits: this holds up to 1e12 units per minute, and up to buckets that take
 * centuries to fill. Config validates; this asserts. */
void fg_rate_cfg_init(struct fg_rate_cfg *c, uint64_t rate, uint64_t period_ns, uint64_t burst);

/* One limit, shared by any number of threads. Zero-initialised is a full
 * bucket; fg_rate_reset() makes it one again. */
struct fg_rate {
    _Atomic uint64_t tat;       /* in ticks */
};

void fg_rate_reset(struct fg_rate *r);

/* What one decision tells the client. */
struct fg_rate_verdict {
    int allowed;
    uint64_t limit;             /* c->limit, for x-ratelimit-limit */
    uint64_t remaining;         /* whole units left after this decision, for
                                   x-ratelimit-remaining; 0 in debt */
    uint64_t reset_s;           /* seconds (rounded up) until the bucket is full again,
                                   for x-ratelimit-reset; 0 when full */
    uint64_t retry_after_s;     /* when refused: seconds (rounded up, >= 1) until the same
                                   call would be allowed, or FG_RATE_NEVER; 0 when allowed */
};

/* Takes <n> units if the bucket holds them, all or nothing (request
 * admission: n = 1). More than burst units are always refused. Fills <v>
 * unless it is NULL; returns whether allowed. Any thread. */
int fg_rate_take(struct fg_rate *r, const struct fg_rate_cfg *c, uint64_t now_ns, uint64_t n,
                 struct fg_rate_verdict *v);

/* Admission for a limit charged after the fact (LLM tokens per minute: the
 * cost is known only when the response ends): allowed while the bucket holds
 * at least one unit; takes nothing, so v->remaining is what it holds now.
 * Fills <v> unless it is NULL; returns whether allowed. Any thread. */
int fg_rate_check(struct fg_rate *r, const struct fg_rate_cfg *c, uint64_t now_ns,
                  struct fg_rate_verdict *v);

/* Charges <n> units now, unconditionally: the bucket may go into debt, and
 * fg_rate_check() refuses until the debt is paid back. Debt stops at
 * FG_RATE_MAX_DEBT_NS of the rate beyond empty, so after any charge check
 * allows again within an hour and one unit's time. Any thread. */
void fg_rate_charge(struct fg_rate *r, const struct fg_rate_cfg *c, uint64_t now_ns, uint64_t n);

/* Gives back <n> units taken by fg_rate_take() (a request refused by
 * another limit after this one admitted it). Any thread. */
void fg_rate_refund(struct fg_rate *r, const struct fg_rate_cfg *c, uint64_t n);

#endif
