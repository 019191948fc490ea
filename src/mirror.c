/* Shadow traffic (fg/mirror.h). A copy is an exchange of its own, with the
 * primary's request head copied into its arena, a front that discards
 * whatever comes back, and the proxy's usual machinery to its upstream. */
#include "config.h"

#include <string.h>

#include "fg/exchange.h"
#include "fg/headers.h"
#include "fg/log.h"
#include "fg/handler.h"
#include "fg/mirror.h"
#include "fg/proxy.h"
#include "fg/request_id.h"
#include "fg/wgen.h"
#include "fg/worker.h"

/* ---- the discarding front ------------------------------------------------ */

static void finish(struct fg_exchange *m, int ok)
{
    const struct fg_route *r = m->front_data;

    atomic_fetch_add_explicit(ok ? &r->st->mirror_ok
                                 : &r->st->mirror_failed, 1,
                              memory_order_relaxed);
    if (m->mirror_of) {
        m->mirror_of->mirror = NULL;
        m->mirror_of = NULL;
    }
    m->worker->mirrors_in_flight--;
    TAILQ_REMOVE(&m->worker->mirrors, m, link);
    fg_exchange_put(m);
}

static void m_send_head(struct fg_exchange *m) { (void)m; }
static size_t m_send_body(struct fg_exchange *m, const char *d, size_t n) { return 0; }
static void m_resume_request(struct fg_exchange *m) { (void)m; }

static void m_send_end(struct fg_exchange *m)
{
    /* a gateway-made answer (502, 504) is a failure of the mirror */
    finish(m, !m->resp_from_gateway && m->status < 500);
}

static void m_abort(struct fg_exchange *m)
{
    finish(m, 0);
}

static const struct fg_front_ops mirror_ops = {
    .send_head = m_send_head,
    .send_body = m_send_body,
    .send_end = m_send_end,
    .abort = m_abort,
    .resume_request = m_resume_request,
};

/* ---- copies --------------------------------------------------------------- */

static void drop(struct fg_exchange *m, const char *why)
{
    const struct fg_route *r = m->front_data;

    fg_log_debug("mirror to %s dropped: %s", m->upstream->name, why);
    atomic_fetch_add_explicit(&r->st->mirror_dropped, 1, memory_order_relaxed);
    if (m->mirror_of) {
        m->mirror_of->mirror = NULL;
        m->mirror_of = NULL;
    }
    m->worker->mirrors_in_flight--;
    TAILQ_REMOVE(&m->worker->mirrors, m, link);
    fg_exchange_abort(m);           /* releases the backend side */
    fg_exchange_put(m);
}

static char *dup(struct fg_exchange *m, const char *s, size_t len)
{
    return s ? fg_arena_dup(&m->arena, s, len) : NULL;
}

/* The primary's head, as sent to its upstream, into <m>'s arena. */
static int copy_head(struct fg_exchange *m, const struct fg_exchange *x)
{
    struct fg_client_info *ci = fg_arena_alloc_object(&m->arena, sizeof(*ci));

    if (!ci)
        return -1;
    *ci = *x->client;
    m->client = ci;
    m->mirror_copy = 1;
    if (!(m->method = dup(m, x->method, x->method_len)) ||
        !(m->path = dup(m, x->path, x->path_len)) ||
        (x->authority && !(m->authority = dup(m, x->authority, x->authority_len))))
        return -1;
    m->method_len = x->method_len;
    m->path_len = x->path_len;
    m->authority_len = x->authority_len;
    for (unsigned i = 0; i < x->req_headers.n; i++) {
        const struct fg_header *h = &x->req_headers.v[i];
        char *n = dup(m, h->name, h->nlen), *v = dup(m, h->value, h->vlen);
        if (!n || !v || fg_headers_add(&m->req_headers, n, h->nlen, v, h->vlen) < 0)
            return -1;
        m->req_headers.v[m->req_headers.n - 1].flags = h->flags;
    }
    m->req_content_length = x->req_content_length;
    m->req_has_body = x->req_has_body;
    m->req_head_only = x->req_head_only;
    memcpy(m->request_id, x->request_id, sizeof(m->request_id));
    m->request_id_len = x->request_id_len;
    return 0;
}

void fg_mirror_maybe_start(struct fg_exchange *x)
{
    const struct fg_route *r = x->route;
    struct fg_worker *w = x->worker;
    struct fg_exchange *m;

    if (!r || !r->mirror || x->mirror || x->mirror_of ||
        fg_rng_next(&w->rng) >= r->mirror_threshold)
        return;
    if (w->mirrors_in_flight >= r->mirror_max_in_flight ||
        (x->req_content_length >= 0 && (uint64_t)x->req_content_length > r->mirror_body_bytes)) {
        atomic_fetch_add_explicit(&r->st->mirror_dropped, 1, memory_order_relaxed);
        return;
    }
    if (!(m = fg_exchange_get(w)))
        return;
    /* the copy goes where the original's configuration says: its route and
     * upstream are of the original's generation, whatever reload came since */
    fg_wgen_ref(x->gen);
    fg_wgen_unref(m->gen);
    m->gen = x->gen;
    m->front = &mirror_ops;
    m->front_data = (void *)r;
    m->handler = &fg_proxy_handler;
    m->upstream = r->mirror;
    m->state = FG_X_UPSTREAM;
    w->mirrors_in_flight++;
    TAILQ_INSERT_TAIL(&w->mirrors, m, link);
    atomic_fetch_add_explicit(&r->st->mirror_sent, 1, memory_order_relaxed);
    if (copy_head(m, x) < 0 || fg_proxy_bind(m) < 0) {
        drop(m, "no backend or no memory");
        return;
    }
    if (!m->req_has_body) {
        fg_proxy_request_end(m);        /* bodyless: the copy is complete */
        return;
    }
    m->mirror_of = x;
    x->mirror = m;
}

void fg_mirror_body(struct fg_exchange *x, const char *data, size_t len)
{
    struct fg_exchange *m = x->mirror;

    if (!m)
        return;
    m->mirror_body += len;
    if (m->mirror_body > ((const struct fg_route *)m->front_data)->mirror_body_bytes) {
        drop(m, "body larger than the mirror's max_body_bytes");
        return;
    }
    /* a mirror that cannot keep up is dropped, never waited for */
    if (fg_proxy_request_body(m, data, len))
        drop(m, "the mirror is slower than the client");
}

void fg_mirror_end(struct fg_exchange *x)
{
    struct fg_exchange *m = x->mirror;

    if (!m)
        return;
    m->req_body_done = 1;
    m->mirror_of = NULL;
    x->mirror = NULL;
    fg_proxy_request_end(m);            /* the copy goes on alone */
}

void fg_mirror_unlink(struct fg_exchange *x)
{
    if (x->mirror)
        drop(x->mirror, "the request it copies went away before its body was complete");
}

void fg_mirror_stop_all(struct fg_worker *w)
{
    while (!TAILQ_EMPTY(&w->mirrors))
        drop(TAILQ_FIRST(&w->mirrors), "the worker stops");
}
