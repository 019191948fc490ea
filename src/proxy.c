/* The upstream half of an exchange: HTTP/1.1 to the backend.
 *
 * Ownership rules that keep this re-entrancy safe:
 * - front->send_head() and send_body() only queue bytes; they never finish
 *   or free the exchange, so the proxy may go on using it afterwards;
 * - front->send_end() and abort() may free the exchange: they are always
 *   the last thing the proxy does with it, after detaching the backend. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fg/access.h"
#include "fg/backend_state.h"
#include "fg/balancer.h"
#include "fg/exchange.h"
#include "fg/headers.h"
#include "fg/log.h"
#include "fg/handler.h"
#include "fg/json_model.h"
#include "fg/mirror.h"
#include "fg/outlier.h"
#include "fg/proxy.h"
#include "fg/proxy_access.h"
#include "fg/put.h"
#include "fg/usage_scan.h"
#include "fg/route.h"
#include "fg/stream.h"
#include "fg/uconn.h"
#include "fg/wait_queue.h"
#include "fg/worker.h"

#define SKIP_UPSTREAM (FG_HDR_HOP | FG_HDR_FRAMING | FG_HDR_HOST | FG_HDR_XFF | FG_HDR_XFP | \
                       FG_HDR_REQID | FG_HDR_DROP)

static llhttp_settings_t response_settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;
static void init_settings(void);

uint64_t fg_proxy_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- writing the request ------------------------------------------------ */

/* Serialises the request head for the backend straight into the
 * connection's output buffer: sized first, written once, no temporary. */
static int write_head(struct fg_exchange *x, struct fg_uconn *c)
{
    struct evbuffer *out = fg_stream_output(c->bev);
    const struct fg_client_info *ci = x->client;
    const char *host = x->authority ? x->authority : c->backend->addr.text;
    size_t host_len = x->authority ? x->authority_len : strlen(c->backend->addr.text);
    size_t addr_len = strlen(ci->addr), size, n = 0;
    struct evbuffer_iovec iov;
    char *p;

    size = x->method_len + 1 + x->path_len + 11;
    size += 6 + host_len + 2;
    for (unsigned i = 0; i < x->req_headers.n; i++) {
        const struct fg_header *h = &x->req_headers.v[i];
        if (h->flags & FG_HDR_XFF)
            size += h->vlen + 2;
        else if (!(h->flags & SKIP_UPSTREAM))
            size += h->nlen + 2 + h->vlen + 2;
    }
    size += 17 + addr_len + 2;                          /* x-forwarded-for */
    size += 19 + 5 + 2;                                 /* x-forwarded-proto */
    size += 14 + x->request_id_len + 2;                 /* x-request-id */
    size += fg_proxy_access_headers(x, NULL);           /* the route's, geography */
    size += 28 + 22;                                    /* framing */
    size += 2;

    if (evbuffer_reserve_space(out, (ev_ssize_t)size, &iov, 1) < 1)
        return -1;
    p = iov.iov_base;
    n += fg_put(p + n, x->method, x->method_len);
    p[n++] = ' ';
    n += fg_put(p + n, x->path, x->path_len);
    n += FG_PUT_LIT(p + n, " HTTP/1.1\r\nhost: ");
    n += fg_put(p + n, host, host_len);
    n += FG_PUT_LIT(p + n, "\r\n");
    for (unsigned i = 0; i < x->req_headers.n; i++) {
        const struct fg_header *h = &x->req_headers.v[i];
        if (h->flags & SKIP_UPSTREAM)
            continue;
        n += fg_put(p + n, h->name, h->nlen);
        n += FG_PUT_LIT(p + n, ": ");
        n += fg_put(p + n, h->value, h->vlen);
        n += FG_PUT_LIT(p + n, "\r\n");
    }
    n += fg_proxy_access_headers(x, p + n);
    /* nginx's $proxy_add_x_forwarded_for: earlier hops first, then us */
    n += FG_PUT_LIT(p + n, "x-forwarded-for: ");
    for (unsigned i = 0; i < x->req_headers.n; i++) {
        const struct fg_header *h = &x->req_headers.v[i];
        if (!(h->flags & FG_HDR_XFF) || h->vlen == 0)
            continue;
        n += fg_put(p + n, h->value, h->vlen);
        n += FG_PUT_LIT(p + n, ", ");
    }
    n += fg_put(p + n, ci->addr, addr_len);
    n += FG_PUT_LIT(p + n, "\r\n");
    if (ci->tls)
        n += FG_PUT_LIT(p + n, "x-forwarded-proto: https\r\n");
    else
        n += FG_PUT_LIT(p + n, "x-forwarded-proto: http\r\n");
    n += FG_PUT_LIT(p + n, "x-request-id: ");
    n += fg_put(p + n, x->request_id, x->request_id_len);
    n += FG_PUT_LIT(p + n, "\r\n");
    c->chunked_req = 0;
    if (x->req_content_length >= 0) {
        if (x->req_content_length > 0 || x->req_has_body) {
            n += FG_PUT_LIT(p + n, "content-length: ");
            n += fg_put_u64(p + n, (uint64_t)x->req_content_length);
            n += FG_PUT_LIT(p + n, "\r\n");
        }
    } else if (x->req_has_body) {
        n += FG_PUT_LIT(p + n, "transfer-encoding: chunked\r\n");
        c->chunked_req = 1;
    }
    n += FG_PUT_LIT(p + n, "\r\n");
    iov.iov_len = n;
    return evbuffer_commit_space(out, &iov, 1);
}

/* ---- backend choice, connect and retry ------------------------------------ */

void fg_proxy_detach(struct fg_exchange *x, int reusable)
{
    if (x->uconn) {
        struct fg_uconn *c = x->uconn;
        x->uconn = NULL;
        fg_uconn_release(c, reusable);
    }
    if (x->backend) {
        fg_balancer_release(x->backend);
        x->backend = NULL;
    }
}

static void apply_phase_timeouts(struct fg_exchange *x, struct fg_uconn *c)
{
    struct fg_upstream *u = c->backend->upstream;

    if (c->state == FG_UC_CONNECTING)
        fg_uconn_set_timeouts(c, 0, u->connect_timeout_ms);
    else if (c->head_done)
        fg_uconn_set_timeouts(c, u->idle_timeout_ms, u->idle_timeout_ms);
    else
        /* the response-head clock starts once the whole request is out */
        fg_uconn_set_timeouts(c, c->req_sent ? u->header_timeout_ms : 0, u->idle_timeout_ms);
}

/* Records that <b> failed <x>, so that a retry avoids it. */
static void note_tried(struct fg_exchange *x, const struct fg_backend *b)
{
    if (!b)
        return;
    if (!x->tried) {
        if (!(x->tried = fg_arena_alloc_object(&x->arena, sizeof(*x->tried))))
            return;             /* out of memory: a retry may land on it again */
        memset(x->tried, 0, sizeof(*x->tried));
    }
    fg_tried_add(x->tried, b);
}

/* Binds a backend connection to <x>: on <b> when given (picked already,
 * its count taken), else on a backend the balancer picks. <pending> (may be
 * NULL) holds request bytes carried over from a failed connection and is
 * emptied into the new one; without it the head is written afresh. Returns
 * 0, or -1 when no backend could be had (x->backend is then NULL). */
static int bind_backend(struct fg_exchange *x, struct evbuffer *pending, int req_sent,
                        int chunked_req, struct fg_backend *b)
{
    struct fg_worker *w = x->worker;
    struct fg_upstream *u = x->upstream;
    struct fg_uconn *c;
    int socket_failures = 0;

    for (;;) {
        if (!b && !(b = fg_balancer_pick(u, &x->gen->lb[u->index], x->tried)))
            return -1;
        c = fg_uconn_acquire(w, b, x, 1);
        if (c)
            break;
        /* the socket could not even be created: treat as refused, and try
         * one other backend */
        fg_log_warn("backend %s: %s", b->addr.text, strerror(errno));
        fg_balancer_release(b);
        note_tried(x, b);
        if (socket_failures++ || u->nbackends < 2)
            return -1;
        b = NULL;
    }
    x->backend = b;
    x->last_backend = b;
    x->uconn = c;
    x->t_bind_ns = fg_proxy_now_ns();
    if (pending) {
        evbuffer_add_buffer(fg_stream_output(c->bev), pending);
        c->req_sent = req_sent;
        c->chunked_req = chunked_req;
    } else {
        if (write_head(x, c) < 0) {
            fg_proxy_detach(x, 0);
            return -1;
        }
        c->req_sent = !x->req_has_body || x->req_body_done;
    }
    llhttp_init(&c->parser, HTTP_RESPONSE, &response_settings);
    c->parser.data = c;
    if (x->req_head_only)
        c->parser.method = HTTP_HEAD;
    apply_phase_timeouts(x, c);
    if (c->state == FG_UC_ACTIVE)
        fg_stream_enable(c->bev, EV_READ | EV_WRITE);
    return 0;
}

static void fail(struct fg_exchange *x, int status, const char *code, const char *message)
{
    if (x->backend)
        fg_outlier_failure(x->backend, message);    /* every caller blames the backend */
    fg_proxy_detach(x, 0);
    if (x->state == FG_X_RESPONDING) {
        x->state = FG_X_DONE;
        x->front->abort(x);                 /* last use of x */
    } else {
        fg_exchange_reply_error(x, status, code, message);
    }
}

/* ---- replays: retries and fallback ---------------------------------------------- */

/* The request can be sent again whole: no body, or a body fully received
 * and kept, at most <limit> bytes. */
static int can_replay(const struct fg_exchange *x, uint64_t limit)
{
    size_t kept = x->kept_body ? evbuffer_get_length(x->kept_body) : 0;

    return !x->req_has_body || (x->req_body_done && !x->body_not_kept && kept <= limit);
}

/* RFC 9110 9.2.2 */
static int idempotent(const struct fg_exchange *x)
{
    static const char *const methods[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", NULL};

    for (unsigned i = 0; methods[i]; i++)
        if (strlen(methods[i]) == x->method_len && !memcmp(methods[i], x->method, x->method_len))
            return 1;
    return 0;
}

/* A request may go to its route's fallback upstream once, before any byte of
 * a response reached the client, and only if it can be replayed whole: no
 * body, or a body fully received and kept (at most fallback.max_body_bytes). */
static int can_fall_back(const struct fg_exchange *x)
{
    const struct fg_route *r = x->route;

    return r && r->fallback && !x->fell_back && x->state == FG_X_UPSTREAM &&
           can_replay(x, r->fallback_body_bytes);
}

/* How much of the request body to keep for a replay: what the route's
 * fallback or the upstream's retries may send again. */
static uint64_t keep_limit(const struct fg_exchange *x)
{
    const struct fg_retry_cfg *rc = &x->upstream->retry;
    uint64_t limit = x->route && x->route->fallback ? x->route->fallback_body_bytes : 0;

    if (rc->enabled && (rc->non_idempotent || idempotent(x)) && rc->max_body_bytes > limit)
        limit = rc->max_body_bytes;
    return limit;
}

static void keep_body(struct fg_exchange *x, const char *data, size_t len)
{
    size_t have = x->kept_body ? evbuffer_get_length(x->kept_body) : 0;

    if (have + len > x->keep_limit ||
        (!x->kept_body && !(x->kept_body = evbuffer_new())) ||
        evbuffer_add(x->kept_body, data, len) < 0) {
        x->body_not_kept = 1;       /* too large to replay: no retry or fallback with it */
        if (x->kept_body)
            evbuffer_free(x->kept_body);
        x->kept_body = NULL;
    }
}

static void replay_body(struct fg_exchange *x)
{
    struct fg_uconn *c = x->uconn;
    size_t len = x->kept_body ? evbuffer_get_length(x->kept_body) : 0;

    if (!x->req_has_body)
        return;
    c->req_sent = 0;
    x->replaying = 1;
    if (len)
        fg_proxy_request_body(x, (const char *)evbuffer_pullup(x->kept_body, -1), len);
    x->replaying = 0;
    fg_proxy_request_end(x);
}

/* Forgets the response of the backend given up on. */
static void forget_response(struct fg_exchange *x)
{
    x->status = 0;
    fg_headers_reset(&x->resp_headers);
    fg_headers_reset(&x->resp_trailers);
}

/* Another backend for <x> when its upstream's "retry" allows one now:
 * retries left, a backend not tried yet, and unless <nothing_sent> (the
 * connection failed: no backend did any work for it) the request replayable,
 * of a method that may be repeated, and within the retry budget, which is
 * there against repeating work on a failing fleet. The backend returned
 * holds a count; NULL: no retry. */
static struct fg_backend *retry_target(struct fg_exchange *x, int nothing_sent)
{
    struct fg_upstream *u = x->upstream;
    const struct fg_retry_cfg *rc = &u->retry;
    struct fg_lb_state *st = &x->gen->lb[u->index];
    struct fg_backend *b;

    if (!rc->enabled || x->state != FG_X_UPSTREAM || x->attempts >= rc->max_retries)
        return NULL;
    if (!nothing_sent &&
        (!can_replay(x, rc->max_body_bytes) || (!rc->non_idempotent && !idempotent(x))))
        return NULL;
    note_tried(x, x->backend);
    if (!(b = fg_balancer_pick(u, st, x->tried)))
        return NULL;
    if (!nothing_sent && !fg_retry_budget_take(&st->budget, rc, fg_outlier_now_ms())) {
        fg_balancer_release(b);
        atomic_fetch_add_explicit(&u->st->retries_refused, 1, memory_order_relaxed);
        fg_log_debug("upstream %s: retry budget spent (%u%% of requests): no retry",
                     u->name, rc->budget_percent);
        return NULL;
    }
    return b;
}

/* Sends <x> again, whole, to <to> (from retry_target()), after <why> on
 * its backend. */
static void retry_on(struct fg_exchange *x, struct fg_backend *to, const char *why)
{
    fg_log_info("backend %s: %s; retrying on %s", x->backend ? x->backend->addr.text : "?", why,
                to->addr.text);
    x->attempts++;
    atomic_fetch_add_explicit(&x->upstream->st->retries, 1, memory_order_relaxed);
    fg_proxy_detach(x, 0);
    forget_response(x);
    if (bind_backend(x, NULL, 0, 0, to) < 0) {
        fg_exchange_reply_error(x, 502, "backend_unavailable", "no backend could be reached");
        return;
    }
    replay_body(x);
}

/* Sends <x> to its route's fallback upstream, after <why> on the first one;
 * <replay>: the request went out before and its kept body is sent again
 * (can_fall_back() holds), else nothing of it was sent yet. Returns 0, or -1
 * when the fallback has no backend either (nothing answered yet: the caller
 * answers). */
static int fall_back(struct fg_exchange *x, const char *why, int replay)
{
    const struct fg_route *r = x->route;

    fg_log_info("upstream %s: %s; sending the request to fallback %s", x->upstream->name, why,
                r->fallback->name);
    fg_proxy_detach(x, 0);
    x->fell_back = 1;
    x->upstream = r->fallback;
    x->tried = NULL;
    x->attempts = 0;
    forget_response(x);
    if (bind_backend(x, NULL, 0, 0, NULL) < 0)
        return -1;
    if (replay)
        replay_body(x);
    return 0;
}

/* The connection failed before any byte of the request went out: another
 * backend may take it, as queued so far, its body (if any) still flowing in
 * behind. Without "retry" once; with it, as "connect-failure" and the
 * budget allow. */
static void retry_or_fail(struct fg_exchange *x, int status, const char *code,
                          const char *message)
{
    struct fg_uconn *c = x->uconn;
    struct fg_upstream *u = x->upstream;
    const struct fg_route *r = x->route;
    struct evbuffer *pending = evbuffer_new();
    int req_sent = c->req_sent, chunked_req = c->chunked_req;
    struct fg_backend *to = NULL;

    fg_outlier_failure(x->backend, message);
    if (!pending) {
        fg_proxy_detach(x, 0);          /* counted above */
        fail(x, status, code, message);
        return;
    }
    evbuffer_add_buffer(pending, fg_stream_output(c->bev));
    if (u->retry.enabled) {
        if (u->retry.on & FG_RETRY_CONNECT)
            to = retry_target(x, 1);
    } else if (x->attempts < 1) {
        note_tried(x, x->backend);
        to = fg_balancer_pick(u, &x->gen->lb[u->index], x->tried);
    }
    if (to) {
        x->attempts++;
        atomic_fetch_add_explicit(&u->st->retries, 1, memory_order_relaxed);
        fg_log_warn("backend %s: %s; retrying on %s", x->backend->addr.text, message, to->addr.text);
        fg_proxy_detach(x, 0);
        if (bind_backend(x, pending, req_sent, chunked_req, to) == 0) {
            evbuffer_free(pending);
            return;
        }
    }
    fg_proxy_detach(x, 0);
    if (r && r->fallback && !x->fell_back && x->state == FG_X_UPSTREAM) {
        fg_log_info("upstream %s: %s; sending the request to fallback %s", u->name, message,
                    r->fallback->name);
        x->fell_back = 1;
        x->upstream = r->fallback;
        x->tried = NULL;
        x->attempts = 0;
        if (bind_backend(x, pending, req_sent, chunked_req, NULL) == 0) {
            evbuffer_free(pending);
            return;
        }
    }
    evbuffer_free(pending);
    fg_exchange_reply_error(x, status, code, message);   /* counted above */
}

int fg_proxy_bind(struct fg_exchange *x)
{
    return bind_backend(x, NULL, 0, 0, NULL);
}

/* ---- routing and rewrites ---------------------------------------------------- */

/* The path the upstream gets: match.path_prefix replaced by
 * rewrite.path_prefix, then NAME of /v2/models/NAME by rewrite.model. The
 * new path lives in the exchange's arena. */
static int rewrite_path(struct fg_exchange *x, const struct fg_route *r)
{
    const char *path = x->path;
    size_t len = x->path_len;
    char *np;

    if (r->rewrite_prefix || r->rewrite_model) {     /* the log shows the client's */
        x->path_orig = x->path;
        x->path_orig_len = x->path_len;
    }
    if (r->rewrite_prefix) {
        size_t rest = len - r->path_prefix_len;
        if (!(np = fg_arena_alloc(&x->arena, r->rewrite_prefix_len + rest)))
            return -1;
        memcpy(np, r->rewrite_prefix, r->rewrite_prefix_len);
        memcpy(np + r->rewrite_prefix_len, path + r->path_prefix_len, rest);
        path = np;
        len = r->rewrite_prefix_len + rest;
    }
    if (r->rewrite_model) {
        const char *q = memchr(path, '?', len);
        size_t plen = q ? (size_t)(q - path) : len, name_end = 11;
        if (fg_route_path_has_model(path, plen)) {
            while (name_end < plen && path[name_end] != '/')
                name_end++;
            if (!(np = fg_arena_alloc(&x->arena, len - (name_end - 11) + r->rewrite_model_len)))
                return -1;
            memcpy(np, path, 11);
            memcpy(np + 11, r->rewrite_model, r->rewrite_model_len);
            memcpy(np + 11 + r->rewrite_model_len, path + name_end, len - name_end);
            len = len - (name_end - 11) + r->rewrite_model_len;
            path = np;
        }
    }
    x->path = (char *)path;
    x->path_len = (uint32_t)len;
    return 0;
}

/* The body read for routing, with its "model" replaced by rewrite.model
 * when the route asks for it: the rest stays byte for byte. */
static int rewrite_body(struct fg_exchange *x, const struct fg_route *r)
{
    struct evbuffer *b = x->inspect_body, *nb;
    size_t len = b ? evbuffer_get_length(b) : 0, start, end;
    const char *text;

    if (!r->rewrite_model || !len)
        return 0;
    text = (const char *)evbuffer_pullup(b, -1);
    if (fg_json_find_model(text, len, &start, &end) != 1)
        return 0;
    if (!(nb = evbuffer_new()))
        return -1;
    if (evbuffer_add(nb, text, start) < 0 || evbuffer_add(nb, "\"", 1) < 0 ||
        evbuffer_add(nb, r->rewrite_model, r->rewrite_model_len) < 0 ||
        evbuffer_add(nb, "\"", 1) < 0 || evbuffer_add(nb, text + end, len - end) < 0) {
        evbuffer_free(nb);
        return -1;
    }
    evbuffer_free(b);
    x->inspect_body = nb;
    if (x->req_content_length >= 0)
        x->req_content_length = (int64_t)evbuffer_get_length(nb);
    return 0;
}

/* Seconds until the first backend of <u> that is up but held by a
 * Retry-After takes requests again, rounded up; 0 when none is held (the
 * others are down or ejected, and there is no time to promise). */
static unsigned held_retry_after_s(const struct fg_upstream *u)
{
    uint64_t least = 0;

    for (unsigned i = 0; i < u->nbackends; i++) {
        const struct fg_backend *b = &u->backends[i];
        uint64_t ms = fg_backend_held_ms(b);
        if (!ms || atomic_load(&b->st->down) || fg_outlier_ejected(b))
            continue;
        if (!least || ms < least)
            least = ms;
    }
    return (unsigned)((least + 999) / 1000);
}

static void reply_503_retry_after(struct fg_exchange *x, const char *code, const char *message,
                                  unsigned seconds)
{
    char ra[16];

    snprintf(ra, sizeof(ra), "%u", seconds);
    fg_exchange_reply_error_ex(x, 503, code, message, seconds ? "retry-after" : NULL, ra);
}

/* A backend is bound (or the fallback's): start the mirror and send what
 * was held of the body while the route was chosen or the request waited. */
static void after_bind(struct fg_exchange *x)
{
    struct evbuffer *b = x->inspect_body;
    int was_paused = x->req_paused;

    fg_mirror_maybe_start(x);
    if (!b && !x->held_end)
        return;
    x->uconn->req_sent = 0;
    x->req_paused = 0;
    x->inspect_body = NULL;
    if (b && evbuffer_get_length(b))
        fg_proxy_request_body(x, (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
    if (b)
        evbuffer_free(b);
    if (x->held_end) {
        x->held_end = 0;
        fg_proxy_request_end(x);
    } else if (was_paused && !x->req_paused) {
        x->front->resume_request(x);    /* the client may send the rest */
    }
}

/* Waits for a backend below its max_requests, or answers 503 at once when
 * the queue is full. */
static void enqueue(struct fg_exchange *x)
{
    struct fg_upstream *u = x->upstream;

    if (fg_wait_queue_add(x) < 0) {
        fg_log_debug("upstream %s: queue full (%u)", u->name, u->queue.max_length);
        reply_503_retry_after(x, "queue_full",
                              "every backend is at max_requests and the queue is full",
                              u->queue.retry_after_s);
    }
}

/* No backend can take a request not sent yet, and waiting would not help:
 * the route's fallback, else 502 when backends were tried and failed, else
 * 503 (with Retry-After when every usable backend asked for a pause). */
static void answer_no_backend(struct fg_exchange *x)
{
    /* nothing was sent yet: any request may go to the fallback, its body
     * will stream there */
    if (x->route->fallback && !x->fell_back && fall_back(x, "no usable backend", 0) == 0) {
        after_bind(x);
        return;
    }
    if (x->tried && x->tried->n)
        fg_exchange_reply_error(x, 502, "backend_unavailable", "no backend could be reached");
    else
        reply_503_retry_after(x, "no_backend", "the upstream has no usable backend",
                              held_retry_after_s(x->upstream));
}

/* No backend of the upstream could be bound for a request not sent yet:
 * wait when every backend is merely at max_requests. */
static void no_backend(struct fg_exchange *x)
{
    struct fg_upstream *u = x->upstream;

    if (u->limited && !x->fell_back && fg_balancer_all_full(u, x->tried)) {
        enqueue(x);
        return;
    }
    answer_no_backend(x);
}

void fg_proxy_dequeued(struct fg_exchange *x, struct fg_backend *b)
{
    if (!b) {
        answer_no_backend(x);
        return;
    }
    /* a failure here is a socket that could not be made, not a full pool:
     * answer rather than queue again */
    if (bind_backend(x, NULL, 0, 0, b) < 0) {
        fg_exchange_reply_error(x, 502, "backend_unavailable", "no backend could be reached");
        return;
    }
    after_bind(x);
}

void fg_proxy_queue_expired(struct fg_exchange *x)
{
    reply_503_retry_after(x, "queue_timeout",
                          "every backend stayed at max_requests for the queue's timeout_ms",
                          x->upstream->queue.retry_after_s);
}

/* The route is known: rewrite, pick the upstream and a backend (or queue,
 * or the fallback), and send what was read of the body already. */
static void dispatch(struct fg_exchange *x, const struct fg_route *route)
{
    struct fg_upstream *u;

    if (!route) {
        fg_exchange_reply_error(x, 404, "no_route", "no route matches this request");
        return;
    }
    x->route = route;
    /* keys are checked against what the backend will be asked for: after
     * the route's rewrite of the path */
    if (rewrite_path(x, route) < 0 || (x->awaiting_body && rewrite_body(x, route) < 0)) {
        fg_exchange_reply_error(x, 503, "out_of_memory", "out of memory");
        return;
    }
    if (fg_proxy_access_check(x, route) < 0)
        return;                         /* 401, 403 or 429 */
    fg_proxy_access_mark(x);
    if (x->awaiting_body) {
        x->awaiting_body = 0;
        x->held_end = 1;                /* the body was read whole */
    }
    x->upstream = u = fg_route_upstream(route, x, &x->worker->rng);
    x->keep_limit = keep_limit(x);
    atomic_fetch_add_explicit(&u->st->requests, 1, memory_order_relaxed);
    if (u->retry.enabled)
        fg_retry_budget_request(&x->gen->lb[u->index].budget, fg_outlier_now_ms());
    /* requests waiting already go first */
    if (u->limited && atomic_load(&u->st->queued)) {
        enqueue(x);
        return;
    }
    if (bind_backend(x, NULL, 0, 0, NULL) < 0) {
        no_backend(x);
        return;
    }
    after_bind(x);
}

void fg_proxy_start(struct fg_exchange *x)
{
    const struct fg_config *cfg = x->gen->cfg;
    const struct fg_route *route;
    int need_body = 0;

    pthread_once(&settings_once, init_settings);
    x->state = FG_X_UPSTREAM;
    x->t_start_ns = fg_proxy_now_ns();
    fg_proxy_access_start(x);
    if (cfg->client.max_body_bytes && x->req_content_length >= 0 &&
        (uint64_t)x->req_content_length > cfg->client.max_body_bytes) {
        fg_exchange_reply_error(x, 413, "body_too_large", "request body exceeds max_body_bytes");
        return;
    }
    route = fg_route_match(cfg, x, &need_body);
    /* a key limited to some models: the body says which */
    if (route && fg_proxy_access_needs_body(x, route))
        need_body = 1;
    /* a JSON body's "model" decides the route, or is rewritten: read the
     * body whole first (at most client.model_body_bytes) */
    if (need_body || (route && route->rewrite_model && x->req_has_body &&
                      !fg_route_path_has_model(x->path, x->path_len))) {
        if (x->req_content_length >= 0 &&
            (uint64_t)x->req_content_length > cfg->client.model_body_bytes) {
            fg_exchange_reply_error(x, 413, "body_too_large",
                                    "the body is read to find its model, and it exceeds model_body_bytes");
            return;
        }
        x->awaiting_body = 1;
        return;
    }
    dispatch(x, route);
}

/* The body of a request that waits for its route is complete. */
static void body_read(struct fg_exchange *x)
{
    const struct fg_config *cfg = x->gen->cfg;
    struct evbuffer *b = x->inspect_body;
    size_t len = b ? evbuffer_get_length(b) : 0, start, end;
    const char *text = len ? (const char *)evbuffer_pullup(b, -1) : "";

    x->body_model_known = 1;
    x->body_model_ambiguous = len && !fg_json_model_unambiguous(text, len);
    if (len && fg_json_find_model(text, len, &start, &end) == 1 &&
        (x->body_model = fg_arena_dup(&x->arena, text + start + 1, end - start - 2)))
        x->body_model_len = (uint32_t)(end - start - 2);
    dispatch(x, fg_route_match(cfg, x, NULL));
}

/* ---- request body ----------------------------------------------------------- */

int fg_proxy_request_body(struct fg_exchange *x, const char *data, size_t len)
{
    struct fg_uconn *c = x->uconn;
    struct evbuffer *out;

    if (x->awaiting_body) {
        uint64_t max = x->gen->cfg->client.model_body_bytes;
        if ((!x->inspect_body && !(x->inspect_body = evbuffer_new())) ||
            evbuffer_get_length(x->inspect_body) + len > max ||
            evbuffer_add(x->inspect_body, data, len) < 0) {
            fg_exchange_reply_error(x, 413, "body_too_large",
                                    "the body is read to find its model, and it exceeds model_body_bytes");
            return 0;
        }
        return 0;
    }
    if (x->queued) {
        /* held until a backend is free; the client waits beyond a little */
        if ((!x->inspect_body && !(x->inspect_body = evbuffer_new())) ||
            evbuffer_add(x->inspect_body, data, len) < 0) {
            fg_exchange_reply_error(x, 503, "out_of_memory", "out of memory");
            return 0;
        }
        if (evbuffer_get_length(x->inspect_body) > FG_HIGH_WATERMARK) {
            x->req_paused = 1;
            return 1;
        }
        return 0;
    }
    if (x->mirror && !x->replaying)
        fg_mirror_body(x, data, len);
    if (!x->replaying && !x->body_not_kept && len)
        keep_body(x, data, len);
    if (!c || len == 0)
        return 0;
    out = fg_stream_output(c->bev);
    if (c->chunked_req) {
        char size[FG_PUT_HEX_MAX + 2];
        size_t n = fg_put_hex(size, len);
        n += FG_PUT_LIT(size + n, "\r\n");
        evbuffer_add(out, size, n);
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, len);
    }
    if (evbuffer_get_length(out) > FG_HIGH_WATERMARK) {
        x->req_paused = 1;
        return 1;
    }
    return 0;
}

void fg_proxy_request_end(struct fg_exchange *x)
{
    struct fg_uconn *c = x->uconn;
    struct evbuffer *out;

    if (x->awaiting_body) {
        body_read(x);
        return;
    }
    if (x->queued) {
        x->held_end = 1;
        return;
    }
    if (x->mirror)
        fg_mirror_end(x);

    if (!c || c->req_sent)
        return;
    out = fg_stream_output(c->bev);
    if (c->chunked_req) {
        evbuffer_add(out, "0\r\n", 3);
        for (unsigned i = 0; i < x->req_trailers.n; i++) {
            const struct fg_header *h = &x->req_trailers.v[i];
            if (fg_proxy_access_dropped(x, h->name, h->nlen))
                continue;               /* a credential, or what the gateway says */
            if (h->flags & (FG_HDR_HOP | FG_HDR_FRAMING))
                continue;
            evbuffer_add(out, h->name, h->nlen);
            evbuffer_add(out, ": ", 2);
            evbuffer_add(out, h->value, h->vlen);
            evbuffer_add(out, "\r\n", 2);
        }
        evbuffer_add(out, "\r\n", 2);
    }
    c->req_sent = 1;
    if (c->state == FG_UC_ACTIVE)
        apply_phase_timeouts(x, c);
}

/* ---- response ------------------------------------------------------------------ */

static inline struct fg_uconn *parser_conn(llhttp_t *p) { return p->data; }

static int on_message_begin(llhttp_t *p)
{
    struct fg_uconn *c = parser_conn(p);
    c->hname = c->hvalue = NULL;
    c->hname_len = c->hvalue_len = 0;
    return 0;
}

static int head_limit(struct fg_uconn *c, size_t len)
{
    c->head_bytes += len;
    return c->head_bytes > c->backend->upstream->max_response_header_bytes ? -1 : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct fg_uconn *c = parser_conn(p);

    if (head_limit(c, len) < 0)
        return -1;
    c->field_end = (uintptr_t)(at + len);
    c->lf_after_field = 0;
    return fg_arena_append(&c->x->arena, &c->hname, &c->hname_len, at, len, 1);
}

/* Where the bytes after the current header's name start in this chunk. */
static const char *after_field(const struct fg_uconn *c)
{
    uintptr_t s = (uintptr_t)c->chunk_start, e = (uintptr_t)c->chunk_end;

    return c->field_end >= s && c->field_end <= e ? (const char *)c->field_end : c->chunk_start;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct fg_uconn *c = parser_conn(p);

    if (head_limit(c, len) < 0)
        return -1;
    /* obs-fold (a value continued on the next line): the backend's framing
     * is not guessed at, the response is refused (502) */
    if (c->hvalue && at != (c->value_next ? c->value_next : c->chunk_start))
        return -1;
    if (!c->hvalue) {
        const char *from = after_field(c);
        if (c->lf_after_field || (at > from && memchr(from, '\n', (size_t)(at - from))))
            return -1;
    }
    c->value_next = at + len == c->chunk_end ? NULL : at + len;
    if (!c->hvalue) {
        /* an empty value still needs a non-NULL, arena-owned pointer */
        c->hvalue = fg_arena_alloc(&c->x->arena, 0);
        if (!c->hvalue)
            return -1;
    }
    return fg_arena_append(&c->x->arena, &c->hvalue, &c->hvalue_len, at, len, 0);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct fg_uconn *c = parser_conn(p);
    struct fg_exchange *x = c->x;
    struct fg_headers *h = c->head_done ? &x->resp_trailers : &x->resp_headers;
    char *v = c->hvalue ? c->hvalue : (char *)"";
    size_t vlen = c->hvalue_len;

    /* trim optional whitespace at the end (llhttp strips the start) */
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    if (fg_headers_add(h, c->hname, c->hname_len, v, vlen) < 0)
        return -1;
    c->hname = c->hvalue = NULL;
    c->hname_len = c->hvalue_len = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct fg_uconn *c = parser_conn(p);
    struct fg_exchange *x = c->x;
    int status = p->status_code;

    if (status < 100 || status > 599)
        return -1;              /* "HTTP/1.1 20 OK": never passed on (502) */
    if (status >= 100 && status < 200) {
        /* interim response: the gateway answered Expect itself, so drop it */
        if (status == 101)
            return -1;          /* no upgrades through the proxy */
        fg_headers_reset(&x->resp_headers);
        c->head_bytes = 0;
        /* an interim response ends with its head (RFC 9110 15.2): llhttp
         * would read a body framed by its Content-Length or chunked, and
         * on_body() would pass that to the client before any head */
        return 1;
    }
    if (status >= 500) {
        char why[24];
        snprintf(why, sizeof(why), "status %d", status);
        fg_outlier_failure(c->backend, why);
    } else {
        fg_outlier_success(c->backend);
    }
    /* a 503's Retry-After speaks for the server; a 429's only when 429 is
     * retried (otherwise it is the client's own limit, passed on to it) */
    if ((status == 503 || (status == 429 && x->upstream->retry.on_status[429 - 400])) &&
        x->upstream->retry.enabled) {
        const struct fg_header *ra = fg_headers_find(&x->resp_headers, "retry-after", 11);
        if (ra)
            fg_backend_retry_after(c->backend, status, ra->value, ra->vlen);
    }
    if (status >= 400 && status < 600 && x->upstream->retry.on_status[status - 400] &&
        (x->retry_to = retry_target(x, 0))) {
        /* as for the fallback below: once llhttp_execute() has returned */
        return HPE_PAUSED;
    }
    if ((status >= 500 || status == 429) && can_fall_back(x)) {
        /* the parser and this connection are on the stack: fall back once
         * llhttp_execute() has returned (fg_proxy_on_backend_read) */
        x->fallback_pending = 1;
        return HPE_PAUSED;
    }
    x->status = status;
    fg_headers_classify(&x->resp_headers);
    fg_proxy_access_response(x);    /* x-ratelimit-* */
    x->t_head_ns = fg_proxy_now_ns();
    if (x->route && x->route->upstream_header)     /* names the arm taken (debugging) */
        fg_headers_add(&x->resp_headers, x->route->upstream_header,
                       x->route->upstream_header_len, x->upstream->name,
                       strlen(x->upstream->name));
    x->resp_content_length =
        (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED) ? (int64_t)p->content_length : -1;
    x->resp_no_body = x->req_head_only || status == 204 || status == 304;
    if (status == 204)
        x->resp_content_length = -1;
    c->head_done = 1;
    x->state = FG_X_RESPONDING;
    apply_phase_timeouts(x, c);
    x->front->send_head(x);
    /* a response to HEAD, a 204 and a 304 end with their head, whatever
     * their Content-Length or Transfer-Encoding say (RFC 9112 6.3). llhttp
     * (8.x) would read a body after a 204 or 304: a 304's Content-Length
     * (the size a 200 would have had) then waited for bytes that never
     * come, until idle_timeout_ms cut the response */
    return x->resp_no_body ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct fg_uconn *c = parser_conn(p);
    struct fg_exchange *x = c->x;

    if (x->usage_on)                    /* tokens per minute: usage.total_tokens */
        fg_usage_scan_feed(x->usage, at, len);
    x->resp_body_bytes += len;
    if (x->front->send_body(x, at, len) > FG_HIGH_WATERMARK)
        x->resp_paused = 1;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct fg_uconn *c = parser_conn(p);

    if (!c->head_done)
        return 0;               /* end of an interim (1xx) response */
    c->msg_done = 1;
    return HPE_PAUSED;          /* stop here: nothing may follow a response */
}

static void init_settings(void)
{
    llhttp_settings_init(&response_settings);
    response_settings.on_message_begin = on_message_begin;
    response_settings.on_header_field = on_header_field;
    response_settings.on_header_value = on_header_value;
    response_settings.on_header_value_complete = on_header_value_complete;
    response_settings.on_headers_complete = on_headers_complete;
    response_settings.on_body = on_body;
    response_settings.on_message_complete = on_message_complete;
}

static void complete_response(struct fg_exchange *x)
{
    struct fg_uconn *c = x->uconn;
    int reusable = c->req_sent && llhttp_should_keep_alive(&c->parser);

    fg_proxy_detach(x, reusable);
    x->state = FG_X_DONE;
    x->front->send_end(x);              /* last use of x */
}

static void bad_response(struct fg_exchange *x, const char *why)
{
    fg_log_warn("backend %s: invalid response: %s", x->backend ? x->backend->addr.text : "?", why);
    fail(x, 502, "backend_unavailable", "the backend sent an invalid response");
}

void fg_proxy_on_backend_read(struct fg_uconn *c)
{
    struct fg_exchange *x = c->x;
    const char *data;
    size_t n;

    while ((data = fg_stream_input_data(c->bev, &n))) {
        llhttp_errno_t err;

        c->got_bytes = 1;
        c->chunk_start = data;
        c->chunk_end = data + n;
        err = llhttp_execute(&c->parser, data, n);
        /* (only while the head is being read: a complete response pauses,
         * and an error may have ended the connection) */
        if (err == HPE_OK && c->hname && !c->hvalue && !c->lf_after_field) {
            const char *from = after_field(c);
            c->lf_after_field = memchr(from, '\n', (size_t)(c->chunk_end - from)) != NULL;
        }
        if (err == HPE_OK) {
            fg_stream_input_drain(c->bev, n);
            continue;
        }
        if (err == HPE_PAUSED && x->retry_to) {
            struct fg_backend *to = x->retry_to;
            char why[32];
            x->retry_to = NULL;
            snprintf(why, sizeof(why), "status %d", c->parser.status_code);
            retry_on(x, to, why);
            return;
        }
        if (err == HPE_PAUSED && x->fallback_pending) {
            char why[112];
            x->fallback_pending = 0;
            snprintf(why, sizeof(why), "status %d from %s", c->parser.status_code,
                     c->backend->addr.text);
            if (fall_back(x, why, 1) < 0)
                fail(x, 502, "backend_unavailable", "the fallback upstream has no usable backend");
            return;
        }
        if (err == HPE_PAUSED && c->msg_done) {
            fg_stream_input_drain(c->bev, (size_t)(llhttp_get_error_pos(&c->parser) - data));
            complete_response(x);
            return;
        }
        bad_response(x, c->head_bytes > c->backend->upstream->max_response_header_bytes
                            ? "head larger than max_response_header_bytes"
                            : llhttp_get_error_reason(&c->parser));
        return;
    }
    if (x->resp_paused)
        fg_stream_disable(c->bev, EV_READ);
}

void fg_proxy_on_backend_write(struct fg_uconn *c)
{
    struct fg_exchange *x = c->x;

    if (x && x->req_paused) {
        x->req_paused = 0;
        x->front->resume_request(x);
    }
}

void fg_proxy_on_backend_event(struct fg_uconn *c, short what)
{
    struct fg_exchange *x = c->x;

    if (what & BEV_EVENT_CONNECTED) {
        x->connect_ns = fg_proxy_now_ns() - x->t_bind_ns;
        apply_phase_timeouts(x, c);
        return;
    }
    if (c->state == FG_UC_CONNECTING) {
        if (what & BEV_EVENT_TIMEOUT)
            retry_or_fail(x, 504, "backend_timeout", "connecting to the backend timed out");
        else
            retry_or_fail(x, 502, "backend_unavailable", "the backend refused the connection");
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        struct fg_backend *to;
        if (!c->head_done && (x->upstream->retry.on & FG_RETRY_TIMEOUT) &&
            (to = retry_target(x, 0))) {
            fg_outlier_failure(x->backend, "timeout");
            retry_on(x, to, "no answer in time");
            return;
        }
        if (!c->head_done)
            fail(x, 504, "backend_timeout", "the backend did not answer in time");
        else
            fail(x, 504, "backend_timeout", "the backend stalled mid-response");
        return;
    }
    /* EOF or error */
    if (c->head_done && (what & BEV_EVENT_EOF) && !c->msg_done) {
        /* a close-delimited body ends here; any other framing was cut.
         * llhttp_finish() runs on_message_complete(), which pauses the
         * parser once a final head was seen: HPE_PAUSED with msg_done is
         * the body's end, not an error (taking only HPE_OK cut every
         * close-delimited response) */
        llhttp_errno_t end = llhttp_message_needs_eof(&c->parser) ? llhttp_finish(&c->parser)
                                                                  : HPE_INVALID_EOF_STATE;
        if (end == HPE_OK || (end == HPE_PAUSED && c->msg_done)) {
            fg_proxy_detach(x, 0);
            x->state = FG_X_DONE;
            x->front->send_end(x);
            return;
        }
    }
    if (!c->got_bytes && c->reused && !x->req_has_body) {
        /* the backend closed a pooled connection as we reused it: the
         * request can safely go again on a fresh connection */
        struct fg_backend *b = x->backend;
        x->backend = NULL;              /* keep its count for the new connection */
        fg_proxy_detach(x, 0);
        x->backend = b;
        x->last_backend = b;
        x->t_bind_ns = fg_proxy_now_ns();
        c = fg_uconn_acquire(x->worker, b, x, 0);
        if (c) {
            x->uconn = c;
            llhttp_init(&c->parser, HTTP_RESPONSE, &response_settings);
            c->parser.data = c;
            if (x->req_head_only)
                c->parser.method = HTTP_HEAD;
            if (write_head(x, c) == 0) {
                c->req_sent = 1;
                apply_phase_timeouts(x, c);
                return;
            }
        }
        fail(x, 502, "backend_unavailable", "the backend closed the connection");
        return;
    }
    if (!c->got_bytes && (x->upstream->retry.on & FG_RETRY_RESET)) {
        struct fg_backend *to = retry_target(x, 0);
        if (to) {
            fg_outlier_failure(x->backend, "reset");
            retry_on(x, to, "closed without answering");
            return;
        }
    }
    fail(x, 502, "backend_unavailable",
         c->got_bytes ? "the backend closed the connection mid-response"
                      : "the backend closed the connection without answering");
}

/* ---- client-side events ------------------------------------------------------------ */

void fg_proxy_resume(struct fg_exchange *x)
{
    struct fg_uconn *c = x->uconn;

    if (!x->resp_paused)
        return;
    x->resp_paused = 0;
    if (!c)
        return;
    fg_stream_enable(c->bev, EV_READ);
    /* bytes already read stay in the input buffer and would not wake the
     * read callback again: run it, deferred, from the loop */
    if (fg_stream_input_length(c->bev))
        fg_stream_trigger(c->bev, EV_READ);
}



static void proxy_release(struct fg_exchange *x)
{
    fg_access_release(x);
    if (x->queued)
        fg_wait_queue_remove(x);
    if (x->retry_to) {
        fg_balancer_release(x->retry_to);
        x->retry_to = NULL;
    }
    fg_mirror_unlink(x);
    fg_proxy_detach(x, 0);
    if (x->kept_body) {
        evbuffer_free(x->kept_body);
        x->kept_body = NULL;
    }
    if (x->inspect_body) {
        evbuffer_free(x->inspect_body);
        x->inspect_body = NULL;
    }
    x->awaiting_body = 0;
}

const struct fg_handler_ops fg_proxy_handler = {
    .start = fg_proxy_start,
    .request_body = fg_proxy_request_body,
    .request_end = fg_proxy_request_end,
    .resume = fg_proxy_resume,
    .release = proxy_release,
};
