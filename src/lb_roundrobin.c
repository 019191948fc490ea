/* Smooth weighted round-robin (as nginx does it): every pick adds each
 * backend's weight to its current value, takes the largest, and subtracts
 * the total from it. Weights 5,1,1 give a,a,b,a,c,a,a rather than bursts.
 * The state is per worker, so the sequence is smooth within each worker. */
#include "config.h"

#include "fg/balancer.h"
#include "fg/outlier.h"

struct fg_backend *fg_lb_roundrobin_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                         const struct fg_tried *tried)
{
    struct fg_backend *best = NULL;
    int total = 0, best_i = -1;

    for (unsigned i = 0; i < u->nbackends; i++) {
        struct fg_backend *b = &u->backends[i];
        if (fg_lb_skip(b, tried))
            continue;
        int w = (int)fg_backend_weight_now(b);    /* x100; lower during slow start */
        st->current[i] += w;
        total += w;
        if (best_i < 0 || st->current[i] > st->current[best_i]) {
            best_i = (int)i;
            best = b;
        }
    }
    if (best)
        st->current[best_i] -= total;
    return best;
}
