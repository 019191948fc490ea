/* Exchange objects: set-up, recycling and request ids. */
#include "config.h"

#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include <event2/buffer.h>

#include "fg/body_clock.h"
#include "fg/send_clock.h"
#include "fg/exchange.h"
#include "fg/stats.h"
#include "fg/headers.h"
#include "fg/handler.h"
#include "fg/request_id.h"
#include "fg/worker.h"

/* Warm exchanges kept per worker; beyond this they are freed. */
#define MAX_FREE_EXCHANGES 1024

void fg_exchange_init(struct fg_exchange *x, struct fg_worker *w)
{
    memset(x, 0, sizeof(*x));
    x->worker = w;
    fg_arena_init(&x->arena);
    x->req_content_length = -1;
    x->resp_content_length = -1;
}

void fg_exchange_reset(struct fg_exchange *x)
{
    struct fg_worker *w = x->worker;
    struct fg_arena arena = x->arena;
    struct fg_headers rq = x->req_headers, rt = x->req_trailers;
    struct fg_headers sh = x->resp_headers, st = x->resp_trailers;
    struct evbuffer *h2_out = x->h2_out;

    /* everything back to zero, keeping the warm arena and header arrays */
    fg_arena_reset(&arena);
    fg_headers_reset(&rq);
    fg_headers_reset(&rt);
    fg_headers_reset(&sh);
    fg_headers_reset(&st);
    memset(x, 0, offsetof(struct fg_exchange, link));
    x->worker = w;
    x->arena = arena;
    x->req_headers = rq;
    x->req_trailers = rt;
    x->resp_headers = sh;
    x->resp_trailers = st;
    x->h2_out = h2_out;
    if (h2_out)
        evbuffer_drain(h2_out, evbuffer_get_length(h2_out));
    x->req_content_length = -1;
    x->resp_content_length = -1;
}

/* The exchange is done with its generation (it may be freed, and its
 * configuration with it). */
static void leave_gen(struct fg_exchange *x)
{
    struct fg_wgen *g = x->gen;

    x->gen = NULL;
    fg_wgen_unref(g);
}

void fg_exchange_destroy(struct fg_exchange *x)
{
    if (x->handler)
        x->handler->release(x);
    x->handler = NULL;
    if (x->gen)
        leave_gen(x);
    fg_arena_free(&x->arena);
    fg_headers_free(&x->req_headers);
    fg_headers_free(&x->req_trailers);
    fg_headers_free(&x->resp_headers);
    fg_headers_free(&x->resp_trailers);
    if (x->h2_out)
        evbuffer_free(x->h2_out);
    x->h2_out = NULL;
}

struct fg_exchange *fg_exchange_get(struct fg_worker *w)
{
    struct fg_exchange *x = TAILQ_FIRST(&w->free_exchanges);

    if (x) {
        TAILQ_REMOVE(&w->free_exchanges, x, link);
        w->nfree_exchanges--;
    } else {
        if (!(x = malloc(sizeof(*x))))
            return NULL;
        fg_exchange_init(x, w);
    }
    x->gen = w->gen;
    fg_wgen_ref(x->gen);
    return x;
}

void fg_exchange_put(struct fg_exchange *x)
{
    struct fg_worker *w = x->worker;

    fg_stats_exchange_end(w, x);
    fg_body_clock_stop(x);
    fg_send_clock_stop(x);
    if (x->handler)
        x->handler->release(x);
    x->handler = NULL;
    leave_gen(x);
    if (w->nfree_exchanges >= MAX_FREE_EXCHANGES) {
        fg_exchange_destroy(x);
        free(x);
        return;
    }
    fg_exchange_reset(x);
    TAILQ_INSERT_HEAD(&w->free_exchanges, x, link);
    w->nfree_exchanges++;
}

void fg_exchange_abort(struct fg_exchange *x)
{
    if (x->handler)
        x->handler->release(x);
    x->state = FG_X_DONE;
}

static int sane_request_id(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void fg_exchange_set_request_id(struct fg_exchange *x)
{
    for (unsigned i = 0; i < x->req_headers.n; i++) {
        const struct fg_header *h = &x->req_headers.v[i];
        if ((h->flags & FG_HDR_REQID) && sane_request_id(h->value, h->vlen)) {
            memcpy(x->request_id, h->value, h->vlen);
            x->request_id_len = h->vlen;
            x->request_id[h->vlen] = '\0';
            return;
        }
    }
    fg_request_id_make(&x->worker->rng, x->request_id);
    x->request_id_len = 32;
    x->request_id[32] = '\0';
}
