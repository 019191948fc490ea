/* The minimum receive rate of request bodies: see fg/body_clock.h. */
#include "config.h"

#include <event2/event.h>

#include "fg/body_clock.h"
#include "fg/exchange.h"
#include "fg/outlier.h"
#include "fg/worker.h"

/* How often the bodies in progress are looked at: expiry comes at most
 * this late. */
#define TICK_MS 250

static void arm_tick(struct fg_worker *w)
{
    struct timeval tv = { 0, TICK_MS * 1000 };

    if (!evtimer_pending(w->body_tick, NULL))
        evtimer_add(w->body_tick, &tv);
}

/* Brings the credit up to <now>: the time waited is charged unless the
 * gateway was not reading (<idle>), the bytes that came are paid for. */
static void settle(struct fg_exchange *x, uint64_t now, int idle)
{
    const struct fg_client_cfg *cc = &x->gen->cfg->client;
    int64_t cap = cc->body_timeout_ms;
    uint64_t got = x->req_body_bytes - x->body_mark_bytes;

    if (!idle && now > x->body_mark_ms)
        x->body_credit_ms -= (int64_t)(now - x->body_mark_ms);
    if (got) {
        if (cc->body_min_rate == 0 || got >= (uint64_t)cap * cc->body_min_rate / 1000 + 1)
            x->body_credit_ms = cap;    /* no rate asked, or a lot came: full credit */
        else
            x->body_credit_ms += (int64_t)(got * 1000 / cc->body_min_rate);
        if (x->body_credit_ms > cap)
            x->body_credit_ms = cap;
    }
    x->body_mark_ms = now;
    x->body_mark_bytes = x->req_body_bytes;
}

void fg_body_clock_start(struct fg_exchange *x)
{
    struct fg_worker *w = x->worker;

    if (x->body_watched || !x->gen || !w->body_tick)
        return;
    x->body_watched = 1;
    x->body_paused = 0;
    x->body_credit_ms = x->gen->cfg->client.body_timeout_ms;
    x->body_excused_ms = 0;
    x->body_mark_ms = fg_outlier_now_ms();
    x->body_mark_bytes = x->req_body_bytes;
    TAILQ_INSERT_TAIL(&w->body_watch, x, body_link);
    arm_tick(w);
}

void fg_body_clock_stop(struct fg_exchange *x)
{
    if (!x->body_watched)
        return;
    x->body_watched = 0;
    TAILQ_REMOVE(&x->worker->body_watch, x, body_link);
}

void fg_body_clock_pause(struct fg_exchange *x)
{
    if (!x->body_watched || x->body_paused)
        return;
    settle(x, fg_outlier_now_ms(), 0);
    x->body_paused = 1;
}

void fg_body_clock_resume(struct fg_exchange *x)
{
    if (!x->body_watched || !x->body_paused)
        return;
    settle(x, fg_outlier_now_ms(), 1);
    x->body_paused = 0;
}

/* The front says the client cannot send for reasons of the connection:
 * not charged, up to body_timeout_ms in all (the client may be the one
 * that blocked the connection). */
static int excused(struct fg_exchange *x, uint64_t now)
{
    uint64_t cap = x->gen->cfg->client.body_timeout_ms;

    if (!x->front->body_blocked || x->body_excused_ms >= cap || !x->front->body_blocked(x))
        return 0;
    x->body_excused_ms += now - x->body_mark_ms;
    return 1;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct fg_worker *w = arg;
    uint64_t now = fg_outlier_now_ms();
    struct fg_exchange *x, *next;

    (void)fd;
    (void)what;
    for (x = TAILQ_FIRST(&w->body_watch); x; x = next) {
        /* expiring <x> may free it (and its connection), never another */
        next = TAILQ_NEXT(x, body_link);
        settle(x, now, x->body_paused || excused(x, now));
        if (x->body_credit_ms > 0)
            continue;
        fg_body_clock_stop(x);
        x->front->body_timeout(x);
    }
    if (!TAILQ_EMPTY(&w->body_watch))
        arm_tick(w);
}

int fg_body_clock_worker_init(struct fg_worker *w)
{
    TAILQ_INIT(&w->body_watch);
    w->body_tick = evtimer_new(w->base, on_tick, w);
    return w->body_tick ? 0 : -1;
}

void fg_body_clock_worker_fini(struct fg_worker *w)
{
    while (!TAILQ_EMPTY(&w->body_watch))
        fg_body_clock_stop(TAILQ_FIRST(&w->body_watch));
    if (w->body_tick)
        event_free(w->body_tick);
    w->body_tick = NULL;
}
