/* Weighted least-connections: the backend with the fewest active requests
 * per unit of weight (counting the one being placed), counted across every
 * worker. Ties are broken round-robin from a per-worker cursor, so equal
 * backends share evenly. */
#include "config.h"

#include "fg/balancer.h"
#include "fg/outlier.h"

struct fg_backend *fg_lb_leastconn_pick(struct fg_upstream *u, struct fg_lb_state *st,
                                        const struct fg_tried *tried)
{
    struct fg_backend *best = NULL;
    unsigned best_active = 0, best_w = 1, n = u->nbackends, start;

    if (n == 0)
        return NULL;
    start = st->cursor++ % n;
    for (unsigned k = 0; k < n; k++) {
        struct fg_backend *b = &u->backends[(start + k) % n];
        unsigned active, w;

        if (fg_lb_skip(b, tried))
            continue;
        active = atomic_load_explicit(&b->st->active, memory_order_relaxed);
        w = fg_backend_weight_now(b);   /* slow start lowers it for a while */
        /* (active+1)/w < (best_active+1)/best_w, without division: the
         * load each would have with this request, so that a backend of
         * small weight (slow start) is not taken merely for being idle */
        if (!best || (uint64_t)(active + 1) * best_w < (uint64_t)(best_active + 1) * w) {
            best = b;
            best_active = active;
            best_w = w;
        }
    }
    return best;
}
