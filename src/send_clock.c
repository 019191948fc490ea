/* Slow readers of HTTP/2 responses: see fg/send_clock.h. */
#include "config.h"

#include <event2/event.h>

#include "fg/exchange.h"
#include "fg/outlier.h"
#include "fg/send_clock.h"
#include "fg/worker.h"

/* How often the responses in progress are looked at: a stalled one ends
 * between send_timeout_ms and send_timeout_ms + TICK_MS after its last
 * frame. */
#define TICK_MS 250

static void arm_tick(struct fg_worker *w)
{
    struct timeval tv = { 0, TICK_MS * 1000 };

    if (!evtimer_pending(w->send_tick, NULL))
        evtimer_add(w->send_tick, &tv);
}

void fg_send_clock_start(struct fg_exchange *x)
{
    struct fg_worker *w = x->worker;

    if (x->send_watched || !x->gen || !w->send_tick)
        return;
    x->send_watched = 1;
    x->send_progress = 0;
    x->send_mark_ms = fg_outlier_now_ms();
    TAILQ_INSERT_TAIL(&w->send_watch, x, send_link);
    arm_tick(w);
}

void fg_send_clock_stop(struct fg_exchange *x)
{
    if (!x->send_watched)
        return;
    x->send_watched = 0;
    TAILQ_REMOVE(&x->worker->send_watch, x, send_link);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct fg_worker *w = arg;
    uint64_t now = fg_outlier_now_ms();
    struct fg_exchange *x, *next;

    (void)fd;
    (void)what;
    for (x = TAILQ_FIRST(&w->send_watch); x; x = next) {
        /* ending <x> may free it, never another */
        next = TAILQ_NEXT(x, send_link);
        if (x->send_progress) {
            x->send_progress = 0;
            x->send_mark_ms = now;
            continue;
        }
        if (now - x->send_mark_ms < x->gen->cfg->client.send_timeout_ms)
            continue;
        fg_send_clock_stop(x);
        x->front->send_timeout(x);
    }
    if (!TAILQ_EMPTY(&w->send_watch))
        arm_tick(w);
}

int fg_send_clock_worker_init(struct fg_worker *w)
{
    TAILQ_INIT(&w->send_watch);
    w->send_tick = evtimer_new(w->base, on_tick, w);
    return w->send_tick ? 0 : -1;
}

void fg_send_clock_worker_fini(struct fg_worker *w)
{
    while (!TAILQ_EMPTY(&w->send_watch))
        fg_send_clock_stop(TAILQ_FIRST(&w->send_watch));
    if (w->send_tick)
        event_free(w->send_tick);
    w->send_tick = NULL;
}
