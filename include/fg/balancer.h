/* Choosing a backend in an upstream.
 *
 * Each algorithm is one file (lb_*.c) exporting a pick function; the state a
 * worker keeps per upstream is struct fg_lb_state. The shared per-backend
 * active counts (atomics in struct fg_backend) are what make least_conn
 * accurate across worker threads. */
#ifndef FG_BALANCER_H
#define FG_BALANCER_H

#include "fg/config-t.h"

#include "fg/retry_budget.h"
#include "fg/wait_queue.h"

/* The backends a request already tried: a retry avoids them. */
#define FG_MAX_TRIED 12
struct fg_tried {
    const struct fg_backend *b[FG_MAX_TRIED];
    unsigned n;
};

static inline int fg_tried_has(const struct fg_tried *t, const struct fg_backend *b)
{
    for (unsigned i = 0; t && i < t->n; i++)
        if (t->b[i] == b)
            return 1;
    return 0;
}

static inline void fg_tried_add(struct fg_tried *t, const struct fg_backend *b)
{
    if (t->n < FG_MAX_TRIED && !fg_tried_has(t, b))
        t->b[t->n++] = b;
}

/* Per worker, per upstream: no sharing, no locks (but the queue's waiting
 * count, which other workers read to know whom to wake). */
struct fg_lb_state {
    unsigned cursor;            /* round-robin start for tie breaks */
    int *current;               /* smooth weighted round-robin: one per backend */
    struct fg_retry_budget budget;
    struct fg_wait_queue queue;
};

int fg_lb_state_init(struct fg_lb_state *st, const struct fg_upstream *u);
void fg_lb_state_free(struct fg_lb_state *st);

/* Picks a backend of <u> not in <tried> (may be NULL) that is available
 * and below its max_requests, counts one active request on it and returns
 * it; NULL when none is. Every successful pick is paired with
 * fg_balancer_release(). */
struct fg_backend *fg_balancer_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                    const struct fg_tried *tried);
void fg_balancer_release(struct fg_backend *b);

/* Why a pick failed: 1 when some backend is available but at its
 * max_requests (a request may wait for it), 0 when none is available. */
int fg_balancer_all_full(const struct fg_upstream *u, const struct fg_tried *tried);

/* The algorithms, called by fg_balancer_pick(); they skip what
 * fg_lb_skip() says and do not count. */
struct fg_backend *fg_lb_leastconn_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                        const struct fg_tried *tried);
struct fg_backend *fg_lb_roundrobin_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                         const struct fg_tried *tried);
int fg_lb_skip(const struct fg_backend *b, const struct fg_tried *tried);

#endif
