/* Admission control: the requests of one upstream that wait, on one worker,
 * for a backend below its max_requests. A FIFO per worker and upstream;
 * the upstream's `queued` atomic counts every worker's waiters against
 * queue.max_length. A backend slot freed on any worker wakes the workers
 * that have waiters (an eventfd each), which hand their oldest waiters the
 * slots they can get; a waiter still there after queue.timeout_ms gets 503
 * with Retry-After. */
#ifndef FG_WAIT_QUEUE_H
#define FG_WAIT_QUEUE_H

#include <stdatomic.h>
#include <sys/queue.h>

#include "fg/config-t.h"

struct fg_exchange;
struct fg_worker;
struct event;

TAILQ_HEAD(fg_waiters, fg_exchange);

struct fg_lb_state;
struct fg_wgen;

/* One per upstream in each of a worker's generations (in its lb state). */
struct fg_wait_queue {
    struct fg_upstream *u;              /* whose */
    struct fg_lb_state *lb;             /* the balancer state it is part of */
    struct fg_worker *w;
    struct fg_wgen *gen;                /* the generation it is part of */
    struct fg_waiters waiters;          /* oldest first */
    _Atomic unsigned n;                 /* read by other workers: whom to wake */
    struct event *timer;                /* the oldest waiter's deadline; lazily made */
    int inited;
};

/* The workers of the process, so that a freed slot can wake them. */
void fg_wait_queue_register(struct fg_worker *workers, unsigned n);

/* Queues <x> for its upstream. Returns 0, or -1 when the queue is full
 * (nothing was queued; the caller answers). */
int fg_wait_queue_add(struct fg_exchange *x);
/* Takes <x> out (the client went away). */
void fg_wait_queue_remove(struct fg_exchange *x);
/* Hands free slots of upstream <ui> to this worker's oldest waiters. */
void fg_wait_queue_drain(struct fg_wait_queue *q);
/* A slot of <u> was freed: wake the workers that have waiters for it. */
void fg_wait_queue_kick(const struct fg_upstream *u);
void fg_wait_queue_fini(struct fg_wait_queue *q);

#endif
