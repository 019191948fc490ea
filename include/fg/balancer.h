/* Choosing a backend in an upstream.
 *
 * Each algorithm is one file (lb_*.c) exporting a pick function; the state a
 * worker keeps per upstream is struct fg_lb_state. The shared per-backend
 * active counts (atomics in struct fg_backend) are what make least_conn
 * accurate across worker threads. */
#ifndef FG_BALANCER_H
#define FG_BALANCER_H

#include "fg/config-t.h"

/* Per worker, per upstream: no sharing, no locks. */
struct fg_lb_state {
    unsigned cursor;            /* round-robin start for tie breaks */
    int *current;               /* smooth weighted round-robin: one per backend */
};

int fg_lb_state_init(struct fg_lb_state *st, const struct fg_upstream *u);
void fg_lb_state_free(struct fg_lb_state *st);

/* Picks a backend of <u> other than <avoid> (may be NULL), counts one
 * active request on it and returns it; NULL when none is usable. Every
 * successful pick is paired with fg_balancer_release(). */
struct fg_backend *fg_balancer_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                    const struct fg_backend *avoid);
void fg_balancer_release(struct fg_backend *b);

/* The algorithms, called by fg_balancer_pick(); they do not count. */
struct fg_backend *fg_lb_leastconn_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                        const struct fg_backend *avoid);
struct fg_backend *fg_lb_roundrobin_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                         const struct fg_backend *avoid);

#endif
