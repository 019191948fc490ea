/* Outlier ejection (fg/outlier.h). */
#include "config.h"

#include <time.h>

#include "fg/backend_state.h"
#include "fg/log.h"
#include "fg/outlier.h"

uint64_t fg_outlier_now_ms(void)
{
    struct timespec ts;

    /* coarse: a few ms of precision, no vDSO fallback to a syscall */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int fg_outlier_ejected(const struct fg_backend *b)
{
    uint64_t until;

    if (!b->upstream->outlier.enabled)
        return 0;
    until = atomic_load_explicit(&b->st->ejected_until_ms, memory_order_relaxed);
    return until && fg_outlier_now_ms() < until;
}

static unsigned ejected_now(const struct fg_upstream *u)
{
    unsigned n = 0;

    for (unsigned i = 0; i < u->nbackends; i++)
        n += fg_outlier_ejected(&u->backends[i]);
    return n;
}

void fg_outlier_failure(struct fg_backend *b, const char *why)
{
    struct fg_upstream *u = b->upstream;
    const struct fg_outlier_cfg *oc = &u->outlier;
    uint64_t now, until, old;
    unsigned n, k, ms;

    if (!oc->enabled)
        return;
    n = atomic_fetch_add(&b->st->consecutive_failures, 1) + 1;
    if (n < oc->consecutive_failures || fg_outlier_ejected(b))
        return;
    /* never more than max_ejected_percent of the pool out at once */
    if ((uint64_t)(ejected_now(u) + 1) * 100 > (uint64_t)oc->max_ejected_percent * u->nbackends) {
        fg_log_debug("upstream %s: backend %s not ejected: %u%% of the pool is the limit",
                     u->name, b->addr.text, oc->max_ejected_percent);
        return;
    }
    now = fg_outlier_now_ms();
    old = atomic_load(&b->st->ejected_until_ms);
    k = atomic_load(&b->st->ejections) + 1;
    ms = (uint64_t)oc->base_ejection_ms * k > oc->max_ejection_ms ? oc->max_ejection_ms
                                                                  : oc->base_ejection_ms * k;
    until = now + ms;
    /* one worker ejects; another that saw the same failures does not again */
    if (!atomic_compare_exchange_strong(&b->st->ejected_until_ms, &old, until))
        return;
    atomic_store(&b->st->ejections, k);
    atomic_store(&b->st->consecutive_failures, 0);
    fg_backend_note(b, b->st->info.ejected_why, sizeof(b->st->info.ejected_why),
                    "%u failures in a row, last: %s", n, why);
    fg_log_warn("upstream %s: backend %s ejected for %u ms after %u failures in a row (last: %s; "
                "ejection %u)", u->name, b->addr.text, ms, n, why, k);
}

void fg_outlier_success(struct fg_backend *b)
{
    if (b->upstream->outlier.enabled &&
        atomic_load_explicit(&b->st->consecutive_failures, memory_order_relaxed))
        atomic_store_explicit(&b->st->consecutive_failures, 0, memory_order_relaxed);
}

unsigned fg_backend_weight_now(const struct fg_backend *b)
{
    unsigned rt = atomic_load_explicit(&b->st->weight_rt, memory_order_relaxed);
    unsigned full = (rt ? rt : b->weight) * 100, ss = b->upstream->slow_start_ms;
    uint64_t since, ej, now, w;

    if (!ss)
        return full;
    since = atomic_load_explicit(&b->st->up_since_ms, memory_order_relaxed);
    ej = atomic_load_explicit(&b->st->ejected_until_ms, memory_order_relaxed);
    if (ej > since)
        since = ej;
    if (!since)
        return full;                    /* never went away */
    now = fg_outlier_now_ms();
    if (now >= since + ss)
        return full;
    w = now > since ? (uint64_t)full * (now - since) / ss : 0;
    return w ? (unsigned)w : 1;
}
