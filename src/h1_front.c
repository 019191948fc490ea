/* HTTP/1.1 front end: one client connection, requests parsed by llhttp.
 *
 * Requests on a connection are handled one at a time: after a request is
 * complete the parser pauses until its response is complete, so pipelined
 * requests are answered in order (as HAProxy does). The connection object
 * is freed only from top-level event callbacks or from a deferred write
 * callback, never from inside the proxy's calls into this file. */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <llhttp.h>

#include "fg/body_clock.h"
#include "fg/conn_limit.h"
#include "fg/exchange.h"
#include "fg/front.h"
#include "fg/headers.h"
#include "fg/log.h"
#include "fg/handler.h"
#include "fg/outlier.h"
#include "fg/proxy.h"
#include "fg/put.h"
#include "fg/stats.h"
#include "fg/stream.h"
#include "fg/worker.h"

enum h1_state {
    H1_IDLE = 0,            /* waiting for the first byte of a request */
    H1_HEAD,                /* reading a request head */
    H1_BODY,                /* head done, reading its body */
    H1_WAIT_RESPONSE,       /* request complete, response still going */
    H1_CLOSING,             /* flushing the output, then closing */
};

struct h1conn {
    struct fg_client_conn base;         /* first: the worker's registry */
    enum h1_state state;
    struct fg_worker *w;
    struct fg_stream *bev;
    /* The idle and request-head deadlines share one lazy timer: arming
     * records <deadline_ms>, and libevent's timer is moved only when it
     * would fire later than that; firing early, it re-arms for the rest.
     * Each request used to cost three timer changes (head armed, head
     * disarmed, idle armed); in steady state it now costs none. */
    struct event *timer;
    uint64_t deadline_ms;           /* 0: no deadline */
    uint64_t timer_at_ms;           /* when the libevent timer fires; 0: not pending */
    llhttp_t parser;
    struct fg_client_info client;
    struct fg_exchange *x;              /* current request; NULL while idle */

    char *hname, *hvalue;
    size_t hname_len, hvalue_len;
    size_t head_bytes;
    /* obs-fold detection: where the next span of a header value must start
     * if nothing was skipped between (NULL: at the start of the next chunk) */
    const char *chunk_start, *chunk_end, *value_next;
    /* obs-fold after an empty value ("Name:" CRLF SP "value"): where the
     * current header's name ended (an address, maybe in a chunk already
     * drained) and whether a line break followed it in an earlier chunk */
    uintptr_t field_end;
    int lf_after_field;

    int err_status;                 /* set by a callback that rejects the request */
    const char *err_code, *err_msg;

    unsigned keepalive:1;           /* this request allows another after it */
    unsigned resp_chunked:1;        /* response body framed as chunked by us */
    unsigned resp_done:1;
    unsigned req_done:1;
    unsigned paused_body:1;         /* parser paused: backend is full */
    unsigned client_eof:1;
    unsigned http10:1;
};

static const struct fg_front_ops h1_ops;
static llhttp_settings_t request_settings;

static void finish_exchange(struct h1conn *h);

static struct h1conn *conn_of(struct fg_exchange *x) { return x->front_data; }

static void set_event_timer(struct h1conn *h, uint64_t now, uint64_t at)
{
    uint64_t ms = at > now ? at - now : 1;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

    evtimer_add(h->timer, &tv);
    h->timer_at_ms = at;
}

/* Sets the deadline <ms> from now (0: none, lazily: a pending timer that
 * finds no deadline does nothing). */
static void arm_timer(struct h1conn *h, unsigned ms)
{
    uint64_t now, at;

    if (!ms) {
        h->deadline_ms = 0;
        return;
    }
    now = fg_outlier_now_ms();
    at = now + ms;
    h->deadline_ms = at;
    if (!h->timer_at_ms || h->timer_at_ms > at)
        set_event_timer(h, now, at);
}

static void stop_timer(struct h1conn *h)
{
    evtimer_del(h->timer);
    h->deadline_ms = h->timer_at_ms = 0;
}

static void set_read_timeout(struct h1conn *h, unsigned ms)
{
    fg_stream_set_timeouts(h->bev, ms, h->w->cfg->client.send_timeout_ms);
}

static void conn_free(struct h1conn *h)
{
    if (h->x)
        fg_exchange_put(h->x);          /* releases its backend, if any */
    event_free(h->timer);
    fg_stream_free(h->bev);
    fg_conn_unregister(h->w, &h->base);
    fg_stat_conn(h->w->stats, 0, h->client.tls, -1);
    free(h);
}

static void close_now(struct fg_client_conn *c)
{
    conn_free((struct h1conn *)c);
}

/* Graceful close: stop reading, let the output drain, then free from the
 * write callback (deferred, so no caller up the stack sees it vanish). */
static void conn_close_soon(struct h1conn *h)
{
    h->state = H1_CLOSING;
    stop_timer(h);
    fg_stream_disable(h->bev, EV_READ);
    fg_stream_set_write_low(h->bev, 0);
    fg_stream_enable(h->bev, EV_WRITE);
    fg_stream_trigger(h->bev, EV_WRITE);
}

/* Graceful shutdown: an idle connection closes now; one with a request in
 * progress answers it with "connection: close" (or closes after the
 * response already on its way). */
static void drain(struct fg_client_conn *c)
{
    struct h1conn *h = (struct h1conn *)c;

    if (h->state == H1_CLOSING)
        return;
    h->keepalive = 0;
    if (h->state == H1_IDLE && !fg_stream_input_length(h->bev))
        conn_close_soon(h);
}

static void begin_idle(struct h1conn *h)
{
    h->state = H1_IDLE;
    /* an idle connection holds no exchange: its arena and header arrays
     * stay warm in the worker's free list for whichever request is next */
    if (h->x) {
        fg_exchange_put(h->x);
        h->x = NULL;
    }
    h->resp_done = h->req_done = h->resp_chunked = h->paused_body = 0;
    h->err_status = 0;
    set_read_timeout(h, 0);
    arm_timer(h, h->w->cfg->client.idle_timeout_ms);
}

/* ---- request parsing --------------------------------------------------- */

static int reject(struct h1conn *h, int status, const char *code, const char *msg)
{
    h->err_status = status;
    h->err_code = code;
    h->err_msg = msg;
    return -1;
}

/* Takes an exchange for the request starting now; NULL when out of memory. */
static struct fg_exchange *take_exchange(struct h1conn *h)
{
    struct fg_exchange *x = h->x;

    if (!x && !(x = h->x = fg_exchange_get(h->w)))
        return NULL;
    x->front = &h1_ops;
    x->front_data = h;
    x->client = &h->client;
    x->handler = h->client.handler;
    return x;
}

static int on_message_begin(llhttp_t *p)
{
    struct h1conn *h = p->data;
    struct fg_exchange *x = take_exchange(h);

    if (!x)
        return -1;

    h->state = H1_HEAD;
    x->state = FG_X_REQUEST_HEAD;
    h->hname = h->hvalue = NULL;
    h->hname_len = h->hvalue_len = h->head_bytes = 0;
    arm_timer(h, h->w->cfg->client.header_timeout_ms);
    return 0;
}

static int count_head(struct h1conn *h, size_t len)
{
    h->head_bytes += len;
    if (h->head_bytes > h->w->cfg->client.max_header_bytes)
        return reject(h, 431, "headers_too_large", "request head exceeds max_header_bytes");
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct h1conn *h = p->data;
    size_t plen = h->x->path_len;

    if (count_head(h, len) < 0)
        return -1;
    if (fg_arena_append(&h->x->arena, &h->x->path, &plen, at, len, 0) < 0)
        return -1;
    h->x->path_len = (uint32_t)plen;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct h1conn *h = p->data;

    if (count_head(h, len) < 0)
        return -1;
    h->field_end = (uintptr_t)(at + len);
    h->lf_after_field = 0;
    return fg_arena_append(&h->x->arena, &h->hname, &h->hname_len, at, len, 1);
}

/* Where the bytes after the current header's name start in this chunk. */
static const char *after_field(const struct h1conn *h)
{
    uintptr_t s = (uintptr_t)h->chunk_start, e = (uintptr_t)h->chunk_end;

    return h->field_end >= s && h->field_end <= e ? (const char *)h->field_end : h->chunk_start;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct h1conn *h = p->data;

    if (count_head(h, len) < 0)
        return -1;
    if (h->hvalue && at != (h->value_next ? h->value_next : h->chunk_start))
        /* llhttp skipped CRLF + whitespace inside one value: a folded line,
         * which RFC 9112 5.2 lets a server reject; ambiguity is worse */
        return reject(h, 400, "bad_request", "obsolete line folding in a header");
    if (!h->hvalue) {
        /* the value's first bytes: only ":" and blanks may precede them,
         * a line break means the value was folded onto the next line */
        const char *from = after_field(h);
        if (h->lf_after_field || (at > from && memchr(from, '\n', (size_t)(at - from))))
            return reject(h, 400, "bad_request", "obsolete line folding in a header");
    }
    h->value_next = at + len == h->chunk_end ? NULL : at + len;
    if (!h->hvalue && !(h->hvalue = fg_arena_alloc(&h->x->arena, 0)))
        return -1;
    return fg_arena_append(&h->x->arena, &h->hvalue, &h->hvalue_len, at, len, 0);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct h1conn *h = p->data;
    struct fg_exchange *x = h->x;
    int trailer = h->state == H1_BODY;
    struct fg_headers *list = trailer ? &x->req_trailers : &x->req_headers;
    char *v = h->hvalue ? h->hvalue : (char *)"";
    size_t vlen = h->hvalue_len;

    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    if (!fg_is_token(h->hname, h->hname_len))
        return reject(h, 400, "bad_request", "invalid header name");
    if (!fg_is_field_value(v, vlen))
        return reject(h, 400, "bad_request", "invalid character in a header value");
    if (list->n >= h->w->cfg->client.max_headers)
        return reject(h, 431, "headers_too_large", "too many request headers");
    if (fg_headers_add(list, h->hname, h->hname_len, v, vlen) < 0)
        return -1;
    h->hname = h->hvalue = NULL;
    h->hname_len = h->hvalue_len = 0;
    return 0;
}

/* Splits an absolute-form target (http://host/path) into authority and path. */
static int absolute_form(struct fg_exchange *x)
{
    const char *s = x->path, *end = x->path + x->path_len, *host, *slash;
    size_t skip;

    if (x->path_len > 7 && strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (x->path_len > 8 && strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return -1;
    host = s + skip;
    slash = memchr(host, '/', (size_t)(end - host));
    if (!slash)
        slash = memchr(host, '?', (size_t)(end - host));
    if (slash == host)
        return -1;
    x->authority = (char *)host;
    x->authority_len = (uint32_t)((slash ? slash : end) - host);
    if (slash && *slash == '/') {
        x->path = (char *)slash;
        x->path_len = (uint32_t)(end - slash);
    } else {
        /* "http://host" or "http://host?q": the path is "/" */
        char *np = fg_arena_alloc(&x->arena, 1 + (size_t)(end - (slash ? slash : end)));
        if (!np)
            return -1;
        np[0] = '/';
        if (slash)
            memcpy(np + 1, slash, (size_t)(end - slash));
        x->path_len = (uint32_t)(1 + (slash ? end - slash : 0));
        x->path = np;
    }
    return 0;
}

/* The last coding of a Transfer-Encoding value is "chunked" (any case). */
static int final_chunked(const char *v, size_t len)
{
    size_t end = len, start;

    while (end && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    start = end;
    while (start && v[start - 1] != ',' && v[start - 1] != ' ' && v[start - 1] != '\t')
        start--;
    return end - start == 7 && strncasecmp(v + start, "chunked", 7) == 0 &&
           (start == 0 || v[start - 1] == ',' || v[start - 1] == ' ' || v[start - 1] == '\t');
}

static int on_headers_complete(llhttp_t *p)
{
    struct h1conn *h = p->data;
    struct fg_exchange *x = h->x;
    const struct fg_client_cfg *cc = &h->w->cfg->client;
    struct fg_header *host = NULL, *expect = NULL;
    const char *m = llhttp_method_name((llhttp_method_t)p->method);

    arm_timer(h, 0);
    x->method = (char *)m;
    x->method_len = (uint32_t)strlen(m);
    x->req_head_only = p->method == HTTP_HEAD;
    h->http10 = p->http_major == 1 && p->http_minor == 0;
    h->keepalive = llhttp_should_keep_alive(p) != 0 && !h->w->draining;
    fg_headers_classify(&x->req_headers);

    if (p->http_major != 1 || p->http_minor > 1)
        return reject(h, 505, "bad_request", "only HTTP/1.0 and HTTP/1.1 are supported");
    if (p->method == HTTP_CONNECT)
        return reject(h, 405, "method_not_allowed", "CONNECT is not supported");
    for (unsigned i = 0; i < x->req_headers.n; i++) {
        struct fg_header *e = &x->req_headers.v[i];
        if (e->flags & FG_HDR_HOST) {
            if (host)
                return reject(h, 400, "bad_request", "more than one Host header");
            host = e;
        } else if (e->nlen == 6 && memcmp(e->name, "expect", 6) == 0) {
            expect = e;
        } else if (e->nlen == 17 && memcmp(e->name, "transfer-encoding", 17) == 0) {
            /* RFC 9112 6.1: chunked is the only coding we frame; an empty
             * value, or a coding we would have to undo, is never guessed */
            if (h->http10)
                return reject(h, 400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request");
            if (!final_chunked(e->value, e->vlen))
                return reject(h, 400, "bad_request",
                              "Transfer-Encoding whose final coding is not chunked");
            if (!(e->vlen == 7 && strncasecmp(e->value, "chunked", 7) == 0))
                return reject(h, 501, "not_implemented",
                              "only the chunked transfer coding is supported");
        }
    }
    if (!host && !h->http10)
        return reject(h, 400, "bad_request", "HTTP/1.1 request without Host");
    if (host && !fg_host_valid(host->value, host->vlen))
        return reject(h, 400, "bad_request", "invalid Host header");
    if (!x->path_len)
        return reject(h, 400, "bad_request", "empty request target");
    if (x->path[0] != '/') {
        if (!(x->path_len == 1 && x->path[0] == '*' && p->method == HTTP_OPTIONS) &&
            absolute_form(x) < 0)
            return reject(h, 400, "bad_request", "invalid request target");
    }
    if (!x->authority && host) {
        x->authority = host->value;
        x->authority_len = host->vlen;
    }
    if (expect) {
        expect->flags |= FG_HDR_HOP;    /* answered here, not forwarded */
        if (h->http10) {
            /* HTTP/1.0 clients cannot expect 100 (RFC 9110 10.1.1) */
        } else if (expect->vlen == 12 && strncasecmp(expect->value, "100-continue", 12) == 0) {
            x->req_expect_continue = 1;
        } else {
            return reject(h, 417, "expectation_failed", "unsupported Expect value");
        }
    }
    if (p->flags & F_CHUNKED) {
        x->req_content_length = -1;
        x->req_has_body = 1;
    } else if (p->flags & F_CONTENT_LENGTH) {
        x->req_content_length = (int64_t)p->content_length;
        x->req_has_body = p->content_length > 0;
    } else {
        x->req_content_length = -1;
        x->req_has_body = 0;
    }
    if (cc->max_body_bytes && x->req_content_length >= 0 &&
        (uint64_t)x->req_content_length > cc->max_body_bytes)
        return reject(h, 413, "body_too_large", "request body exceeds max_body_bytes");

    fg_exchange_set_request_id(x);
    h->state = H1_BODY;
    x->handler->start(x);
    if (x->req_expect_continue && x->state == FG_X_UPSTREAM && x->req_has_body)
        evbuffer_add(fg_stream_output(h->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (x->req_has_body)
        fg_body_clock_start(x);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct h1conn *h = p->data;
    struct fg_exchange *x = h->x;
    uint64_t max = h->w->cfg->client.max_body_bytes;

    x->req_body_bytes += len;
    if (max && x->req_body_bytes > max)
        return reject(h, 413, "body_too_large", "request body exceeds max_body_bytes");
    if (x->handler->request_body(x, at, len)) {
        h->paused_body = 1;
        return HPE_PAUSED;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct h1conn *h = p->data;
    struct fg_exchange *x = h->x;

    h->req_done = 1;
    x->req_body_done = 1;
    fg_body_clock_stop(x);
    x->handler->request_end(x);
    if (h->state == H1_BODY)
        h->state = H1_WAIT_RESPONSE;
    if (h->resp_done && h->state == H1_WAIT_RESPONSE)
        finish_exchange(h);     /* answered already: on to the next request */
    /* one request at a time: parse the next only after this response */
    return HPE_PAUSED;
}

/* ---- driving the parser ---------------------------------------------- */

static void parse_error(struct h1conn *h, llhttp_errno_t err)
{
    struct fg_exchange *x = take_exchange(h);
    int status = h->err_status ? h->err_status : 400;
    const char *code = h->err_status ? h->err_code : "bad_request";
    const char *msg = h->err_status ? h->err_msg : "malformed request";

    if (!h->err_status)
        fg_log_debug("client %s: bad request: %s", h->client.addr, llhttp_errno_name(err));
    h->keepalive = 0;
    h->req_done = 1;
    if (!x) {
        conn_close_soon(h);             /* out of memory: nothing to answer with */
        return;
    }
    if (x->state == FG_X_FREE)
        x->state = FG_X_REQUEST_HEAD;
    h->state = H1_WAIT_RESPONSE;
    if (x->state == FG_X_DONE) {
        finish_exchange(h);
        return;
    }
    fg_exchange_reply_error(x, status, code, msg);
}

/* Feeds buffered input to the parser while the connection may parse. */
static void process(struct h1conn *h)
{
    const char *data;
    size_t n;

    while ((h->state == H1_IDLE || h->state == H1_HEAD || h->state == H1_BODY) &&
           !h->paused_body && (data = fg_stream_input_data(h->bev, &n))) {
        llhttp_errno_t err;

        h->chunk_start = data;
        h->chunk_end = data + n;
        err = llhttp_execute(&h->parser, data, n);
        /* a header name with no value yet: did a line break follow it? */
        if (h->hname && !h->hvalue && !h->lf_after_field) {
            const char *from = after_field(h);
            h->lf_after_field = memchr(from, '\n', (size_t)(h->chunk_end - from)) != NULL;
        }

        if (err == HPE_OK) {
            fg_stream_input_drain(h->bev, n);
            continue;
        }
        if (err == HPE_PAUSED) {
            fg_stream_input_drain(h->bev, (size_t)(llhttp_get_error_pos(&h->parser) - data));
            llhttp_resume(&h->parser);
            continue;       /* the loop condition decides whether to go on */
        }
        fg_stream_input_drain(h->bev, n);
        parse_error(h, err);
        return;
    }
    if (h->paused_body) {
        fg_stream_disable(h->bev, EV_READ);
        fg_body_clock_pause(h->x);
    }
    if (h->client_eof && (h->state == H1_IDLE || h->state == H1_HEAD || h->state == H1_BODY)) {
        if (h->state == H1_IDLE && fg_stream_input_length(h->bev) == 0) {
            conn_close_soon(h);
        } else if (h->state == H1_HEAD || h->state == H1_BODY) {
            if (h->x && (h->x->state == FG_X_RESPONDING || h->x->state == FG_X_UPSTREAM))
                fg_exchange_abort(h->x);
            conn_close_soon(h);
        }
    }
}

/* Both halves of the exchange are done: next request, or close. */
static void finish_exchange(struct h1conn *h)
{
    if (!h->keepalive || h->client_eof) {
        conn_close_soon(h);
        return;
    }
    begin_idle(h);
    /* pipelined bytes may already be waiting: parse them from the loop */
    fg_stream_enable(h->bev, EV_READ);
    if (fg_stream_input_length(h->bev))
        fg_stream_trigger(h->bev, EV_READ);
}

/* ---- response (fg_front_ops) ---------------------------------------------- */

static void h1_send_head(struct fg_exchange *x)
{
    struct h1conn *h = conn_of(x);
    struct evbuffer *out = fg_stream_output(h->bev);
    struct evbuffer_iovec iov;
    const char *reason = fg_http_reason(x->status);
    size_t size, n = 0, rlen = strlen(reason);
    char *p;

    if (h->state == H1_CLOSING)
        return;
    h->resp_chunked = 0;
    if (!x->resp_no_body && x->resp_content_length < 0) {
        if (h->http10)
            h->keepalive = 0;           /* close-delimited for HTTP/1.0 */
        else
            h->resp_chunked = 1;
    }
    if (!h->req_done && x->resp_from_gateway && x->req_has_body)
        h->keepalive = 0;       /* do not read a body nobody will use */

    size = 9 + 4 + rlen + 2;
    for (unsigned i = 0; i < x->resp_headers.n; i++) {
        const struct fg_header *e = &x->resp_headers.v[i];
        if (!(e->flags & (FG_HDR_HOP | FG_HDR_FRAMING | FG_HDR_REQID)))
            size += e->nlen + 2 + e->vlen + 2;
    }
    size += 14 + x->request_id_len + 2 + 40 + 30 + 2;
    if (evbuffer_reserve_space(out, (ev_ssize_t)size, &iov, 1) < 1)
        return;
    p = iov.iov_base;
    n += FG_PUT_LIT(p, "HTTP/1.1 ");
    n += fg_put_status(p + n, (unsigned)x->status % 1000);
    n += FG_PUT_LIT(p + n, " ");
    n += fg_put(p + n, reason, rlen);
    n += FG_PUT_LIT(p + n, "\r\n");
    for (unsigned i = 0; i < x->resp_headers.n; i++) {
        const struct fg_header *e = &x->resp_headers.v[i];
        if (e->flags & (FG_HDR_HOP | FG_HDR_FRAMING | FG_HDR_REQID))
            continue;
        n += fg_put(p + n, e->name, e->nlen);
        n += FG_PUT_LIT(p + n, ": ");
        n += fg_put(p + n, e->value, e->vlen);
        n += FG_PUT_LIT(p + n, "\r\n");
    }
    n += FG_PUT_LIT(p + n, "x-request-id: ");
    n += fg_put(p + n, x->request_id, x->request_id_len);
    n += FG_PUT_LIT(p + n, "\r\n");
    if (x->resp_content_length >= 0 && x->status != 204 && x->status != 304) {
        n += FG_PUT_LIT(p + n, "content-length: ");
        n += fg_put_u64(p + n, (uint64_t)x->resp_content_length);
        n += FG_PUT_LIT(p + n, "\r\n");
    } else if (h->resp_chunked)
        n += FG_PUT_LIT(p + n, "transfer-encoding: chunked\r\n");
    if (!h->keepalive)
        n += FG_PUT_LIT(p + n, "connection: close\r\n");
    else if (h->http10)
        n += FG_PUT_LIT(p + n, "connection: keep-alive\r\n");
    n += FG_PUT_LIT(p + n, "\r\n");
    iov.iov_len = n;
    evbuffer_commit_space(out, &iov, 1);
}

static size_t h1_send_body(struct fg_exchange *x, const char *data, size_t len)
{
    struct h1conn *h = conn_of(x);
    struct evbuffer *out = fg_stream_output(h->bev);

    if (h->state == H1_CLOSING || len == 0 || x->resp_no_body)
        return evbuffer_get_length(out);
    if (h->resp_chunked) {
        char size[FG_PUT_HEX_MAX + 2];
        size_t n = fg_put_hex(size, len);
        n += FG_PUT_LIT(size + n, "\r\n");
        evbuffer_add(out, size, n);
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, len);
    }
    return evbuffer_get_length(out);
}

static void h1_send_end(struct fg_exchange *x)
{
    struct h1conn *h = conn_of(x);
    struct evbuffer *out = fg_stream_output(h->bev);

    if (h->resp_chunked && h->state != H1_CLOSING) {
        evbuffer_add(out, "0\r\n", 3);
        for (unsigned i = 0; i < x->resp_trailers.n; i++) {
            const struct fg_header *e = &x->resp_trailers.v[i];
            if (e->flags & (FG_HDR_HOP | FG_HDR_FRAMING))
                continue;
            evbuffer_add(out, e->name, e->nlen);
            evbuffer_add(out, ": ", 2);
            evbuffer_add(out, e->value, e->vlen);
            evbuffer_add(out, "\r\n", 2);
        }
        evbuffer_add(out, "\r\n", 2);
    }
    h->resp_done = 1;
    if (h->state == H1_CLOSING)
        return;
    if (!h->req_done) {
        /* answered before the request ended (an error found in the head,
         * or a backend that replied early): with keep-alive the rest of
         * the request is read and dropped, and on_message_complete()
         * moves on; otherwise the connection ends after this response */
        if (!h->keepalive) {
            conn_close_soon(h);
        } else if (h->paused_body) {
            /* paused for a backend that is gone now: read the rest */
            h->paused_body = 0;
            fg_body_clock_resume(x);
            fg_stream_enable(h->bev, EV_READ);
            fg_stream_trigger(h->bev, EV_READ);
        }
        return;
    }
    finish_exchange(h);
}

static void h1_abort(struct fg_exchange *x)
{
    struct h1conn *h = conn_of(x);

    /* the client must not take a cut response for a whole one: close
     * without the final chunk, discarding what is queued */
    h->keepalive = 0;
    h->resp_done = 1;
    evbuffer_drain(fg_stream_output(h->bev), evbuffer_get_length(fg_stream_output(h->bev)));
    conn_close_soon(h);
}

static void h1_resume_request(struct fg_exchange *x)
{
    struct h1conn *h = conn_of(x);

    if (!h->paused_body || h->state == H1_CLOSING)
        return;
    h->paused_body = 0;
    fg_body_clock_resume(x);
    fg_stream_enable(h->bev, EV_READ);
    fg_stream_trigger(h->bev, EV_READ);
}

/* The body came too slowly (body_clock.c). */
static void h1_body_timeout(struct fg_exchange *x)
{
    struct h1conn *h = conn_of(x);

    if (h->state == H1_CLOSING)
        return;
    fg_log_debug("client %s: request body too slow", h->client.addr);
    h->keepalive = 0;
    h->req_done = 1;
    if (x->state == FG_X_UPSTREAM) {
        fg_exchange_reply_error(x, 408, "request_timeout",
                                "the request body came too slowly (client.body_timeout_ms, "
                                "client.body_min_rate)");
    } else if (x->state == FG_X_RESPONDING) {
        fg_exchange_abort(x);           /* the backend is released */
        h1_abort(x);
    } else {
        conn_close_soon(h);             /* answered: the rest of the body is not waited for */
    }
}

static const struct fg_front_ops h1_ops = {
    .send_head = h1_send_head,
    .send_body = h1_send_body,
    .send_end = h1_send_end,
    .abort = h1_abort,
    .resume_request = h1_resume_request,
    .body_timeout = h1_body_timeout,
};

/* ---- events --------------------------------------------------------------- */

static void on_read(struct fg_stream *bev, void *arg)
{
    process(arg);
}

static void on_write(struct fg_stream *bev, void *arg)
{
    struct h1conn *h = arg;

    if (h->state == H1_CLOSING) {
        if (evbuffer_get_length(fg_stream_output(bev)) == 0)
            conn_free(h);
        return;
    }
    if (h->x && h->x->resp_paused && h->x->state == FG_X_RESPONDING)
        h->x->handler->resume(h->x);
}

static void on_event(struct fg_stream *bev, short what, void *arg)
{
    struct h1conn *h = arg;

    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && h->state != H1_CLOSING) {
        /* a half-close: answer what was asked, then close */
        h->client_eof = 1;
        process(h);
        return;
    }
    /* an error or the send timeout */
    conn_free(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct h1conn *h = arg;
    uint64_t now;

    h->timer_at_ms = 0;
    if (!h->deadline_ms)
        return;                         /* disarmed since it was set */
    now = fg_outlier_now_ms();
    if (now < h->deadline_ms) {
        set_event_timer(h, now, h->deadline_ms);      /* moved later since */
        return;
    }
    h->deadline_ms = 0;
    if (h->state == H1_IDLE) {
        conn_free(h);                   /* idle keep-alive connection */
        return;
    }
    if (h->state == H1_HEAD) {
        h->err_status = 408;
        h->err_code = "request_timeout";
        h->err_msg = "request head not received within header_timeout_ms";
        parse_error(h, HPE_USER);
    }
}

static void init_settings(void)
{
        llhttp_settings_init(&request_settings);
        request_settings.on_message_begin = on_message_begin;
        request_settings.on_url = on_url;
        request_settings.on_header_field = on_header_field;
        request_settings.on_header_value = on_header_value;
        request_settings.on_header_value_complete = on_header_value_complete;
        request_settings.on_headers_complete = on_headers_complete;
        request_settings.on_body = on_body;
        request_settings.on_message_complete = on_message_complete;
}

void fg_h1_start(struct fg_worker *w, struct fg_stream *bev, const struct fg_client_info *ci)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct h1conn *h;

    pthread_once(&once, init_settings);
    h = calloc(1, sizeof(*h));
    if (!h || !(h->timer = evtimer_new(w->base, on_timer, h))) {
        free(h);
        fg_conn_limit_give(ci);
        fg_stream_free(bev);
        return;
    }
    fg_conn_register(w, &h->base, close_now);
    h->base.drain = drain;
    h->w = w;
    h->bev = bev;
    h->client = *ci;
    h->base.client = &h->client;        /* its place in the limits, from here on */
    fg_stat_conn(w->stats, 0, ci->tls, +1);
    llhttp_init(&h->parser, HTTP_REQUEST, &request_settings);
    h->parser.data = h;
    fg_stream_setcb(bev, on_read, on_write, on_event, h);
    /* bound what a client can queue in the input while a response runs */
    fg_stream_set_read_high(bev, w->cfg->client.max_header_bytes + 16384);
    fg_stream_set_write_low(bev, FG_LOW_WATERMARK);
    fg_stream_enable(bev, EV_READ | EV_WRITE);
    begin_idle(h);
    if (fg_stream_input_length(bev))
        process(h);
}
