/* A worker's view of one configuration: a "generation".
 *
 * A reload does not stop anything: each worker takes the new configuration
 * between two events and makes it its current generation, which new
 * exchanges use. An exchange holds the generation it started in until it
 * ends, so its route, upstream and backend stay valid and it finishes as it
 * began, while the connection it arrived on (an HTTP/2 connection with many
 * streams, a keep-alive HTTP/1.1 connection) goes on into the new one. A
 * generation is freed by the worker when it is no longer current and its
 * last exchange has ended; the configuration is freed when the last
 * worker's generation of it goes (fg_config_unref()).
 *
 * Everything in a generation belongs to its worker: no locks. Its keep-alive
 * pools are handed on to the next generation for every backend the new
 * configuration still has (the same shared state, config_state.c), so a
 * reload neither closes nor reopens backend connections that stay useful. */
#ifndef FG_WGEN_H
#define FG_WGEN_H

#include <sys/queue.h>

#include "fg/balancer.h"
#include "fg/config-t.h"

struct fg_worker;
struct fg_uconn;

TAILQ_HEAD(fg_uconn_list, fg_uconn);

/* Idle keep-alive connections from one worker to one backend, shared by
 * the worker's generations that have that backend. */
struct fg_pool {
    struct fg_uconn_list idle;
    unsigned nidle;
    unsigned refs;                      /* generations holding it */
    const struct fg_backend_state *st;  /* which backend */
};

struct fg_wgen {
    TAILQ_ENTRY(fg_wgen) link;
    struct fg_worker *worker;
    const struct fg_config *cfg;        /* one reference, the worker's */
    unsigned refs;                      /* exchanges in it, +1 while current */
    struct fg_pool ***pools;            /* [upstream][backend] */
    struct fg_lb_state *lb;             /* [upstream]: balancer, retry budget, queue */
};
TAILQ_HEAD(fg_wgen_list, fg_wgen);

/* Worker thread: a generation of <cfg> (taking a reference to it), reusing
 * the pools of <prev> (may be NULL) for the backends it still has; refs 1.
 * NULL out of memory. */
struct fg_wgen *fg_wgen_new(struct fg_worker *w, const struct fg_config *cfg,
                            const struct fg_wgen *prev);
static inline void fg_wgen_ref(struct fg_wgen *g) { g->refs++; }
/* Worker thread: frees it with its last reference (closing idle backend
 * connections of pools no other generation holds). */
void fg_wgen_unref(struct fg_wgen *g);

#endif
