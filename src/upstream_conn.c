/* Backend connections and the per-worker keep-alive pools. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fg/log.h"
#include "fg/proxy.h"
#include "fg/stream.h"
#include "fg/uconn.h"
#include "fg/wgen.h"
#include "fg/worker.h"

static void set_state(struct fg_uconn *c, enum fg_uconn_state to)
{
    static const unsigned allowed[] = {
        /* from CLOSED: nothing; closing is done by fg_uconn_close() */
        [FG_UC_CLOSED] = 0,
        [FG_UC_CONNECTING] = 1u << FG_UC_ACTIVE | 1u << FG_UC_CLOSED,
        [FG_UC_ACTIVE] = 1u << FG_UC_IDLE | 1u << FG_UC_CLOSED,
        [FG_UC_IDLE] = 1u << FG_UC_ACTIVE | 1u << FG_UC_CLOSED,
    };
    if (!(allowed[c->state] & (1u << to))) {
        fg_log_error("backend connection: impossible state change %d -> %d", c->state, to);
        abort();
    }
    c->state = to;
}

void fg_uconn_set_timeouts(struct fg_uconn *c, unsigned read_ms, unsigned write_ms)
{
    fg_stream_set_timeouts(c->bev, read_ms, write_ms);
}

static void on_read(struct fg_stream *bev, void *arg)
{
    struct fg_uconn *c = arg;

    if (c->state == FG_UC_IDLE) {
        /* an idle backend has nothing to say: data here means the stream is
         * out of sync, so the connection cannot be reused */
        fg_uconn_close(c);
        return;
    }
    fg_proxy_on_backend_read(c);
}

static void on_write(struct fg_stream *bev, void *arg)
{
    struct fg_uconn *c = arg;

    if (c->state != FG_UC_IDLE)
        fg_proxy_on_backend_write(c);
}

static void on_event(struct fg_stream *bev, short what, void *arg)
{
    struct fg_uconn *c = arg;

    if (c->state == FG_UC_IDLE) {
        /* closed by the backend, or kept past keepalive_timeout_ms */
        fg_uconn_close(c);
        return;
    }
    if ((what & BEV_EVENT_CONNECTED) && c->state == FG_UC_CONNECTING)
        set_state(c, FG_UC_ACTIVE);
    fg_proxy_on_backend_event(c, what);
}

static struct fg_uconn *uconn_connect(struct fg_worker *w, struct fg_backend *b)
{
    struct fg_uconn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->worker = w;
    c->backend = b;
    c->bev = fg_stream_connect(w->loop, (struct sockaddr *)&b->addr.ss, b->addr.len);
    if (!c->bev) {
        int e = errno;
        free(c);
        errno = e;
        return NULL;
    }
    c->state = FG_UC_CONNECTING;
    fg_stream_setcb(c->bev, on_read, on_write, on_event, c);
    fg_stream_set_read_high(c->bev, FG_HIGH_WATERMARK);
    fg_stream_set_write_low(c->bev, FG_LOW_WATERMARK);
    /* the write timeout bounds the connect */
    fg_uconn_set_timeouts(c, 0, b->upstream->connect_timeout_ms);
    fg_stream_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

struct fg_uconn *fg_uconn_acquire(struct fg_worker *w, struct fg_backend *b,
                                  struct fg_exchange *x, int allow_pooled)
{
    struct fg_pool *pool = x->gen->pools[b->upstream->index][b->index];
    struct fg_uconn *c = allow_pooled ? TAILQ_FIRST(&pool->idle) : NULL;

    if (c) {
        TAILQ_REMOVE(&pool->idle, c, link);
        pool->nidle--;
        set_state(c, FG_UC_ACTIVE);
        c->reused = 1;
    } else {
        c = uconn_connect(w, b);
        if (!c)
            return NULL;
        c->pool = pool;
    }
    c->backend = b;                     /* pooled by an older generation, maybe */
    c->x = x;
    return c;
}

void fg_uconn_release(struct fg_uconn *c, int reusable)
{
    struct fg_pool *pool = c->pool;
    struct fg_upstream *u = c->backend->upstream;

    c->x = NULL;
    if (!reusable || c->state != FG_UC_ACTIVE || pool->nidle >= u->keepalive ||
        evbuffer_get_length(fg_stream_output(c->bev)) ||
        fg_stream_input_length(c->bev)) {
        fg_uconn_close(c);
        return;
    }
    set_state(c, FG_UC_IDLE);
    c->head_done = c->in_trailers = c->msg_done = c->got_bytes = 0;
    c->chunked_req = c->req_sent = 0;
    c->hname = c->hvalue = NULL;
    c->hname_len = c->hvalue_len = c->head_bytes = 0;
    fg_uconn_set_timeouts(c, u->keepalive_timeout_ms, 0);
    c->backend = NULL;                  /* its configuration may go before it */
    fg_stream_enable(c->bev, EV_READ);
    /* most recently used first: it is the least likely to have been closed
     * by the backend's own keep-alive timer */
    TAILQ_INSERT_HEAD(&pool->idle, c, link);
    pool->nidle++;
}

void fg_uconn_close(struct fg_uconn *c)
{
    if (c->state == FG_UC_IDLE) {
        struct fg_pool *pool = c->pool;
        TAILQ_REMOVE(&pool->idle, c, link);
        pool->nidle--;
    }
    c->state = FG_UC_CLOSED;
    fg_stream_free(c->bev);
    free(c);
}
