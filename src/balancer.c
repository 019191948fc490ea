#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fg/backend_state.h"
#include "fg/balancer.h"

int fg_lb_state_init(struct fg_lb_state *st, const struct fg_upstream *u)
{
    st->cursor = 0;
    fg_retry_budget_init(&st->budget);
    memset(&st->queue, 0, sizeof(st->queue));
    st->queue.u = (struct fg_upstream *)u;
    st->queue.lb = st;
    st->current = calloc(u->nbackends ? u->nbackends : 1, sizeof(*st->current));
    return st->current ? 0 : -1;
}

void fg_lb_state_free(struct fg_lb_state *st)
{
    fg_wait_queue_fini(&st->queue);
    free(st->current);
    st->current = NULL;
}

int fg_lb_skip(const struct fg_backend *b, const struct fg_tried *tried)
{
    return fg_tried_has(tried, b) || !fg_backend_available(b) || fg_backend_full(b);
}

typedef struct fg_backend *(*pick_fn)(struct fg_upstream *, struct fg_lb_state *,
                                      const struct fg_tried *);

static const pick_fn pickers[] = {
    [FG_BALANCE_LEAST_CONN] = fg_lb_leastconn_pick,
    [FG_BALANCE_ROUND_ROBIN] = fg_lb_roundrobin_pick,
};

/* One more active request on <b> unless that passes its max_requests:
 * another worker may have taken the last slot since the pick looked. */
static int take_slot(struct fg_backend *b)
{
    unsigned cur;

    if (!b->max_requests) {
        atomic_fetch_add_explicit(&b->st->active, 1, memory_order_relaxed);
        return 1;
    }
    cur = atomic_load_explicit(&b->st->active, memory_order_relaxed);
    do {
        if (cur >= b->max_requests)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&b->st->active, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return 1;
}

struct fg_backend *fg_balancer_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                    const struct fg_tried *tried)
{
    /* a lost race for a slot is rare: a few more looks, then "full" */
    for (int round = 0; round < 4; round++) {
        struct fg_backend *b = pickers[u->balance](u, st, tried);
        if (!b)
            return NULL;
        if (take_slot(b)) {
            atomic_fetch_add_explicit(&b->st->total, 1, memory_order_relaxed);
            return b;
        }
    }
    return NULL;
}

void fg_balancer_release(struct fg_backend *b)
{
    /* (whether this configuration limits the backend does not matter: a
     * reload may have added max_requests, and requests of the new
     * configuration wait for the slots this one frees) */
    /* a slot is free: requests queued for this upstream, on any worker,
     * may take it. Sequentially consistent, as is the waiter's side
     * (count itself in `queued`, then look at `active`): one of the two
     * sees the other, so no slot is freed unseen. */
    atomic_fetch_sub(&b->st->active, 1);
    if (atomic_load(&b->upstream->st->queued))
        fg_wait_queue_kick(b->upstream);
}

int fg_balancer_all_full(const struct fg_upstream *u, const struct fg_tried *tried)
{
    for (unsigned i = 0; i < u->nbackends; i++) {
        const struct fg_backend *b = &u->backends[i];
        if (!fg_tried_has(tried, b) && fg_backend_available(b))
            return 1;       /* available, so its pick failed on max_requests */
    }
    return 0;
}
