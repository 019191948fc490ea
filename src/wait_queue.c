/* Admission control queue (fg/wait_queue.h). */
#include "config.h"

#include <event2/event.h>

#include "fg/balancer.h"
#include "fg/exchange.h"
#include "fg/log.h"
#include "fg/outlier.h"
#include "fg/proxy.h"
#include "fg/wgen.h"
#include "fg/worker.h"

static struct fg_worker *all_workers;
static unsigned nworkers;

void fg_wait_queue_register(struct fg_worker *workers, unsigned n)
{
    all_workers = workers;
    nworkers = n;
}

static struct fg_wait_queue *queue_of(struct fg_exchange *x)
{
    return &x->gen->lb[x->upstream->index].queue;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg);

/* The soonest moment after <now> at which a backend of <u> that is held by
 * a Retry-After or ejected takes requests again (0: none will). Such a
 * return frees capacity without any slot being released, so nothing else
 * would wake the waiters. */
static uint64_t next_return_ms(const struct fg_upstream *u, uint64_t now)
{
    uint64_t soonest = 0;

    for (unsigned i = 0; i < u->nbackends; i++) {
        struct fg_backend *b = &u->backends[i];
        uint64_t t[2] = {atomic_load_explicit(&b->st->busy_until_ms, memory_order_relaxed),
                         atomic_load_explicit(&b->st->ejected_until_ms, memory_order_relaxed)};
        for (int k = 0; k < 2; k++)
            if (t[k] > now && (!soonest || t[k] < soonest))
                soonest = t[k];
    }
    return soonest;
}

/* Arms the timer for the oldest waiter's deadline, or sooner when a held
 * or ejected backend returns first (or leaves it off: no waiter). */
static void arm(struct fg_wait_queue *q, const struct fg_upstream *u)
{
    struct fg_exchange *head = TAILQ_FIRST(&q->waiters);
    uint64_t now, when, back, ms;
    struct timeval tv;

    if (!head) {
        evtimer_del(q->timer);
        return;
    }
    now = fg_outlier_now_ms();
    when = head->queue_deadline_ms;
    if ((back = next_return_ms(u, now)) && back < when)
        when = back;
    ms = when > now ? when - now : 0;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    evtimer_add(q->timer, &tv);
}

static void unlink_waiter(struct fg_wait_queue *q, struct fg_exchange *x)
{
    TAILQ_REMOVE(&q->waiters, x, qlink);
    x->queued = 0;
    atomic_fetch_sub(&q->n, 1);
    atomic_fetch_sub(&q->w->waiting, 1);
    atomic_fetch_sub(&x->upstream->st->queued, 1);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct fg_wait_queue *q = arg;
    struct fg_wgen *g = q->gen;
    uint64_t now = fg_outlier_now_ms();
    struct fg_exchange *x;

    (void)fd;
    (void)what;
    /* answering the last waiter may end its generation's last exchange:
     * hold the generation (and this queue) until done */
    fg_wgen_ref(g);
    while ((x = TAILQ_FIRST(&q->waiters)) && x->queue_deadline_ms <= now + 1) {
        unlink_waiter(q, x);
        atomic_fetch_add_explicit(&x->upstream->st->queue_timeouts, 1, memory_order_relaxed);
        fg_proxy_queue_expired(x);
    }
    /* or a held or ejected backend is back */
    fg_wait_queue_drain(q);
    arm(q, q->u);
    fg_wgen_unref(g);
}

int fg_wait_queue_add(struct fg_exchange *x)
{
    struct fg_upstream *u = x->upstream;
    struct fg_wait_queue *q = queue_of(x);

    if (atomic_fetch_add(&u->st->queued, 1) >= u->queue.max_length) {
        atomic_fetch_sub(&u->st->queued, 1);
        atomic_fetch_add_explicit(&u->st->queue_full, 1, memory_order_relaxed);
        return -1;
    }
    if (!q->inited) {
        TAILQ_INIT(&q->waiters);
        q->w = x->worker;
        q->gen = x->gen;
        if (!(q->timer = evtimer_new(x->worker->base, on_deadline, q))) {
            atomic_fetch_sub(&u->st->queued, 1);
            return -1;
        }
        q->inited = 1;
    }
    atomic_fetch_add_explicit(&u->st->queue_waits, 1, memory_order_relaxed);
    x->queued = 1;
    x->queue_deadline_ms = fg_outlier_now_ms() + u->queue.timeout_ms;
    TAILQ_INSERT_TAIL(&q->waiters, x, qlink);
    atomic_fetch_add(&q->n, 1);
    atomic_fetch_add(&q->w->waiting, 1);
    if (TAILQ_FIRST(&q->waiters) == x)
        arm(q, u);
    /* a slot freed between the failed pick and the count above woke no
     * one: look again now that the count is visible */
    fg_wait_queue_drain(q);
    return 0;
}

void fg_wait_queue_remove(struct fg_exchange *x)
{
    struct fg_wait_queue *q = queue_of(x);
    int was_head = TAILQ_FIRST(&q->waiters) == x;

    unlink_waiter(q, x);
    if (was_head)
        arm(q, x->upstream);
}

void fg_wait_queue_drain(struct fg_wait_queue *q)
{
    struct fg_upstream *u = q->u;
    struct fg_exchange *x;
    struct fg_wgen *g;
    int moved = 0;

    if (!q->inited)
        return;
    fg_wgen_ref(g = q->gen);            /* see on_deadline() */
    while ((x = TAILQ_FIRST(&q->waiters))) {
        struct fg_backend *b = fg_balancer_pick(u, q->lb, x->tried);
        if (!b) {
            if (fg_balancer_all_full(u, x->tried))
                break;          /* wait for the next free slot */
            /* no backend is available any more: nothing to wait for */
            unlink_waiter(q, x);
            fg_proxy_dequeued(x, NULL);
            continue;
        }
        unlink_waiter(q, x);
        moved = 1;
        fg_proxy_dequeued(x, b);
    }
    if (moved || !TAILQ_FIRST(&q->waiters))
        arm(q, u);
    fg_wgen_unref(g);
}

void fg_wait_queue_kick(const struct fg_upstream *u)
{
    /* any worker with waiters looks (<u> is not enough: its waiters may be
     * in another generation's queue of the same upstream) */
    (void)u;
    for (unsigned i = 0; i < nworkers; i++) {
        struct fg_worker *w = &all_workers[i];
        if (atomic_load(&w->waiting))
            fg_worker_kick(w);
    }
}

void fg_wait_queue_fini(struct fg_wait_queue *q)
{
    if (q->timer)
        event_free(q->timer);
    q->timer = NULL;
    q->inited = 0;
}
