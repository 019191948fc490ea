/* Rate limits (fg/rate_limit.h): GCRA on one atomic word per limit.
 *
 * All arithmetic is unsigned; products that can pass 64 bits are done in 128
 * and saturated back. "ahead" is how far tat is past now, in ticks: 0 for a
 * full bucket, tolerance for an empty one, more in debt. */
#include "config.h"

#include <assert.h>

#include "fg/rate_limit.h"

#define NS_PER_S 1000000000ULL

static uint64_t sat64(unsigned __int128 x)
{
    return x > UINT64_MAX ? UINT64_MAX : (uint64_t)x;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void fg_rate_cfg_init(struct fg_rate_cfg *c, uint64_t rate, uint64_t period_ns, uint64_t burst)
{
    unsigned __int128 num, tolerance, debt, span;
    uint64_t g;

    assert(rate > 0 && period_ns > 0 && burst > 0);
    /* one unit is emission ticks, at least one tick a nanosecond: emission =
     * ceil(period / rate) ticks per period / rate ns */
    c->emission = period_ns / rate + (period_ns % rate != 0);
    num = (unsigned __int128)rate * c->emission;
    assert(num <= UINT64_MAX);
    g = gcd64((uint64_t)num, period_ns);
    c->num = (uint64_t)num / g;
    c->den = period_ns / g;

    tolerance = (unsigned __int128)burst * c->emission;
    debt = (unsigned __int128)FG_RATE_MAX_DEBT_NS * c->num / c->den;
    span = (unsigned __int128)FG_RATE_CLOCK_SPAN_NS * c->num / c->den;
    /* so that now + ahead never wraps, within the span */
    assert(span + tolerance + debt <= UINT64_MAX);
    c->limit = rate;
    c->burst = burst;
    c->tolerance = (uint64_t)tolerance;
    c->max_ahead = (uint64_t)(tolerance + debt);
}

void fg_rate_reset(struct fg_rate *r)
{
    atomic_store_explicit(&r->tat, 0, memory_order_relaxed);
}

/* The limit's clock at <now_ns>. */
static uint64_t ticks_at(const struct fg_rate_cfg *c, uint64_t now_ns)
{
    if (c->num == c->den)   /* 1 tick = 1 ns: the common case, no division */
        return now_ns;
    return sat64((unsigned __int128)now_ns * c->num / c->den);
}

/* The first nanosecond at which the clock reads <t>. */
static uint64_t ns_at(const struct fg_rate_cfg *c, uint64_t t)
{
    if (c->num == c->den)
        return t;
    return sat64(((unsigned __int128)t * c->den + c->num - 1) / c->num);
}

/* Whole seconds, rounded up, from <now_ns> until the clock reads <t>. */
static uint64_t secs_until(const struct fg_rate_cfg *c, uint64_t now_ns, uint64_t t)
{
    uint64_t at = ns_at(c, t), ns;

    if (at <= now_ns)
        return 0;
    ns = at - now_ns;
    return ns / NS_PER_S + (ns % NS_PER_S != 0);
}

static uint64_t ahead_of(uint64_t tat, uint64_t now_t)
{
    return tat > now_t ? tat - now_t : 0;
}

/* Fills <v> for a bucket whose tat is now <tat>; <retry_t> is the tick at
 * which a refused call would be allowed. Returns <allowed>. */
static int verdict(struct fg_rate_verdict *v, const struct fg_rate_cfg *c, uint64_t now_ns,
                   uint64_t now_t, uint64_t tat, int allowed, uint64_t retry_t)
{
    uint64_t ahead = ahead_of(tat, now_t);

    if (!v)
        return allowed;
    v->allowed = allowed;
    v->limit = c->limit;
    v->remaining = ahead < c->tolerance ? (c->tolerance - ahead) / c->emission : 0;
    v->reset_s = secs_until(c, now_ns, tat);
    v->retry_after_s = 0;
    if (!allowed) {
        v->retry_after_s = secs_until(c, now_ns, retry_t);
        /* cannot be 0 (retry_t is past now) but a client must never be told 0 */
        if (!v->retry_after_s)
            v->retry_after_s = 1;
    }
    return allowed;
}

/* The word publishes no other data, so relaxed ordering is enough: the CAS
 * alone makes each update see the one before it. */
int fg_rate_take(struct fg_rate *r, const struct fg_rate_cfg *c, uint64_t now_ns, uint64_t n,
                 struct fg_rate_verdict *v)
{
    uint64_t now_t = ticks_at(c, now_ns), cost, ahead;
    uint64_t tat = atomic_load_explicit(&r->tat, memory_order_relaxed);

    if (n > c->burst) {
        verdict(v, c, now_ns, now_t, tat, 0, 0);
        if (v)
            v->retry_after_s = FG_RATE_NEVER;
        return 0;
    }
    cost = n * c->emission;     /* <= tolerance, which fits */
    for (;;) {
        ahead = ahead_of(tat, now_t);
        if (ahead > c->tolerance - cost)
            return verdict(v, c, now_ns, now_t, tat, 0, tat - (c->tolerance - cost));
        /* from max(tat, now): an idle bucket banks no more than burst */
        if (atomic_compare_exchange_weak_explicit(&r->tat, &tat, now_t + ahead + cost,
                                                  memory_order_relaxed, memory_order_relaxed))
            return verdict(v, c, now_ns, now_t, now_t + ahead + cost, 1, 0);
    }
}

int fg_rate_check(struct fg_rate *r, const struct fg_rate_cfg *c, uint64_t now_ns,
                  struct fg_rate_verdict *v)
{
    uint64_t now_t = ticks_at(c, now_ns);
    uint64_t tat = atomic_load_explicit(&r->tat, memory_order_relaxed);
    /* at least one unit left: ahead <= tolerance - emission */
    uint64_t last = c->tolerance - c->emission;

    if (ahead_of(tat, now_t) > last)
        return verdict(v, c, now_ns, now_t, tat, 0, tat - last);
    return verdict(v, c, now_ns, now_t, tat, 1, 0);
}

void fg_rate_charge(struct fg_rate *r, const struct fg_rate_cfg *c, uint64_t now_ns, uint64_t n)
{
    uint64_t now_t = ticks_at(c, now_ns), ahead, room;
    uint64_t tat = atomic_load_explicit(&r->tat, memory_order_relaxed);
    uint64_t cost = sat64((unsigned __int128)n * c->emission);

    if (!n)
        return;
    do {
        ahead = ahead_of(tat, now_t);
        /* at the cap already (or past it, by a thread with a newer clock) */
        if (ahead >= c->max_ahead)
            return;
        room = c->max_ahead - ahead;
    } while (!atomic_compare_exchange_weak_explicit(&r->tat, &tat,
                                                    now_t + ahead + (cost < room ? cost : room),
                                                    memory_order_relaxed, memory_order_relaxed));
}

void fg_rate_refund(struct fg_rate *r, const struct fg_rate_cfg *c, uint64_t n)
{
    uint64_t back = sat64((unsigned __int128)n * c->emission), old, tat;

    old = atomic_load_explicit(&r->tat, memory_order_relaxed);
    do {
        /* below now reads as a full bucket: nothing is lost by clamping */
        tat = old > back ? old - back : 0;
    } while (!atomic_compare_exchange_weak_explicit(&r->tat, &old, tat, memory_order_relaxed,
                                                    memory_order_relaxed));
}
