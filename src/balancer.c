#include "config.h"

#include <stdlib.h>

#include "fg/balancer.h"

int fg_lb_state_init(struct fg_lb_state *st, const struct fg_upstream *u)
{
    st->cursor = 0;
    st->current = calloc(u->nbackends ? u->nbackends : 1, sizeof(*st->current));
    return st->current ? 0 : -1;
}

void fg_lb_state_free(struct fg_lb_state *st)
{
    free(st->current);
    st->current = NULL;
}

typedef struct fg_backend *(*pick_fn)(struct fg_upstream *, struct fg_lb_state *,
                                      const struct fg_backend *);

static const pick_fn pickers[] = {
    [FG_BALANCE_LEAST_CONN] = fg_lb_leastconn_pick,
    [FG_BALANCE_ROUND_ROBIN] = fg_lb_roundrobin_pick,
};

struct fg_backend *fg_balancer_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                    const struct fg_backend *avoid)
{
    struct fg_backend *b = pickers[u->balance](u, st, avoid);

    if (b) {
        atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->total, 1, memory_order_relaxed);
    }
    return b;
}

void fg_balancer_release(struct fg_backend *b)
{
    atomic_fetch_sub_explicit(&b->active, 1, memory_order_relaxed);
}
