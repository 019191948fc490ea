/* HTTP/2 front end (h2c with prior knowledge, or h2 over TLS), on nghttp2.
 *
 * Each stream carries one exchange. Output is produced by one flush()
 * that runs from the loop (scheduled, never from inside the proxy's calls),
 * so nghttp2 never closes a stream while the proxy holds it; the socket is
 * written once per batch of events (fg_stream_set_coalesce), so the answers
 * of many streams go out together. Request bodies use manual window updates:
 * bytes are returned to the client's window only once the backend took
 * them, which is the back-pressure towards the client. */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <nghttp2/nghttp2.h>

#include "fg/body_clock.h"
#include "fg/conn_limit.h"
#include "fg/exchange.h"
#include "fg/front.h"
#include "fg/headers.h"
#include "fg/log.h"
#include "fg/handler.h"
#include "fg/proxy.h"
#include "fg/put.h"
#include "fg/send_clock.h"
#include "fg/stats.h"
#include "fg/outlier.h"
#include "fg/stream.h"
#include "fg/worker.h"

/* Stream and connection receive windows we advertise. */
#define STREAM_WINDOW (256 * 1024)
#define CONN_WINDOW (1024 * 1024)

struct h2conn {
    struct fg_client_conn base;         /* first: the worker's registry */
    struct fg_worker *w;
    struct fg_stream *bev;
    nghttp2_session *session;
    struct fg_client_info client;
    struct fg_exchange_list streams;    /* exchanges of open streams */
    unsigned nstreams;
    uint32_t busy_since_ms;             /* when nstreams last went from 0 to 1 */
    unsigned flush_scheduled:1;
    unsigned closing:1;
    unsigned out_blocked:1;             /* some stream waits for the socket */
    unsigned in_recv:1;                 /* inside nghttp2_session_mem_recv() */
    unsigned fatal:1;                   /* a connection error: closed once the GOAWAY is out */
    unsigned read_paused:1;             /* output above the high mark: frames not read */
    unsigned data_sent:1;               /* DATA went out since the last WINDOW_UPDATE */
    unsigned calm:1;                    /* a callback failed on abuse: GOAWAY ENHANCE_YOUR_CALM */
    /* requests complete in this read, started once the read is parsed: a
     * stream reset in the same read costs no backend work */
    struct fg_exchange_list pending;
    /* frames that cost work and carry nothing (PRIORITY, empty DATA,
     * WINDOW_UPDATE with no DATA of ours to explain it): a token bucket */
    uint32_t glitch_tokens;
    uint64_t glitch_ms;
};

#define GLITCH_BURST 1000               /* such frames at once */
#define GLITCH_RATE 100                 /* and per second, on average */

static const struct fg_front_ops h2_ops;
static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;

static struct h2conn *conn_of(struct fg_exchange *x) { return x->front_data; }

static void schedule_flush(struct h2conn *h)
{
    if (h->flush_scheduled || h->closing)
        return;
    h->flush_scheduled = 1;
    fg_stream_trigger(h->bev, EV_WRITE);
}

/* The idle timeout is the socket's read timeout: no timer of our own, 128
 * bytes less per connection (bench/idle). It stays armed while streams are
 * open (a client waiting for answers may be silent: on_event() then only
 * resumes reading) and restarts when the last stream closes, a timer change
 * without a syscall. Clearing it on the first stream and setting it again
 * after the last cost an epoll_ctl per burst of streams (bench: 0.1 per
 * request at h2c -c 16 -m 10).
 * The restart is lazy, as nginx's timers are: streams open from frames just
 * read, when the socket's read event restarted the clock, so a connection
 * busy for less than IDLE_SLACK_MS needs no new timer (one a request at
 * h2c -m 1); its idle timeout then ends at most that much early. */
#define IDLE_SLACK_MS 250u

static void stream_opened(struct h2conn *h)
{
    if (++h->nstreams == 1)
        h->busy_since_ms = (uint32_t)fg_outlier_now_ms();
}

/* After stream_release() of a stream nghttp2 closed. */
static void stream_closed(struct h2conn *h)
{
    const struct fg_client_cfg *cc = &h->w->cfg->client;
    uint32_t slack = cc->idle_timeout_ms / 64 < IDLE_SLACK_MS ? cc->idle_timeout_ms / 64
                                                               : IDLE_SLACK_MS;

    if (h->nstreams == 0 && (uint32_t)fg_outlier_now_ms() - h->busy_since_ms > slack)
        fg_stream_set_timeouts(h->bev, cc->idle_timeout_ms, cc->send_timeout_ms);
}

static void stream_release(struct h2conn *h, struct fg_exchange *x)
{
    if (x->h2_pending) {                /* reset before it started: nothing to undo */
        TAILQ_REMOVE(&h->pending, x, h2_plink);
        x->h2_pending = 0;
    }
    TAILQ_REMOVE(&h->streams, x, link);
    h->nstreams--;
    /* body bytes held back while the request was paused still count
     * against the connection's window */
    if (x->h2_unconsumed) {
        nghttp2_session_consume_connection(h->session, (size_t)x->h2_unconsumed);
        x->h2_unconsumed = 0;
    }
    if (x->state != FG_X_DONE && x->state != FG_X_FREE)
        fg_exchange_abort(x);
    fg_exchange_put(x);
}

static void conn_free(struct h2conn *h)
{
    /* nghttp2_session_del() does not report the streams it drops */
    while (!TAILQ_EMPTY(&h->streams))
        stream_release(h, TAILQ_FIRST(&h->streams));
    nghttp2_session_del(h->session);
    fg_stream_free(h->bev);
    fg_conn_unregister(h->w, &h->base);
    fg_stat_conn(h->w->stats, 1, h->client.tls, -1);
    free(h);
}

static void close_now(struct fg_client_conn *c)
{
    conn_free((struct h2conn *)c);
}

static int flush(struct h2conn *h);

/* Graceful shutdown: GOAWAY naming the last stream taken; the streams
 * under way finish, then the connection closes (flush(), when nghttp2
 * wants neither to read nor to write). */
static void drain(struct fg_client_conn *c)
{
    struct h2conn *h = (struct h2conn *)c;

    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    flush(h);                           /* called from the worker's event: may free h */
}

/* Sends what nghttp2 has queued; frees the connection when it is over.
 * Only called from top-level event callbacks. Returns 0 if still open. */
static int flush(struct h2conn *h)
{
    struct evbuffer *out = fg_stream_output(h->bev);

    h->flush_scheduled = 0;
    if (h->out_blocked && evbuffer_get_length(out) < FG_HIGH_WATERMARK) {
        struct fg_exchange *x;
        h->out_blocked = 0;
        TAILQ_FOREACH(x, &h->streams, link) {
            if (x->h2_out_blocked) {
                x->h2_out_blocked = 0;
                nghttp2_session_resume_data(h->session, x->h2_stream_id);
            }
        }
    }
    if (nghttp2_session_send(h->session) != 0) {
        conn_free(h);
        return -1;
    }
    if ((h->fatal ||
         (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session))) &&
        evbuffer_get_length(out) == 0) {
        conn_free(h);
        return -1;
    }
    return 0;
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

/* Neither send callback ever returns WOULDBLOCK or takes less than all it
 * is given: every frame nghttp2 serialises is fully handed over within the
 * same nghttp2_session_send() call, which is what lets the sessions of a
 * worker share one frame buffer (see the allocator below). Output is bounded
 * where the bulk comes from instead: data_read_cb() defers DATA while the
 * socket's output is above the high watermark. */
static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct h2conn *h = ud;
    struct evbuffer *out = fg_stream_output(h->bev);

    if (evbuffer_add(out, data, len) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

/* DATA payloads move from the stream's buffer to the socket's without a
 * copy into nghttp2 (NGHTTP2_DATA_FLAG_NO_COPY). */
static int send_data_cb(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *ud)
{
    struct h2conn *h = ud;
    struct fg_exchange *x = source->ptr;
    struct evbuffer *out = fg_stream_output(h->bev);

    evbuffer_add(out, framehd, 9);
    h->data_sent = 1;
    fg_send_clock_progress(x);
    if (length)
        evbuffer_remove_buffer(x->h2_out, out, length);
    /* nothing left to send: a backend slow to send more (SSE) is not the
     * client's doing */
    if (!evbuffer_get_length(x->h2_out))
        fg_send_clock_stop(x);
    if (x->resp_paused && evbuffer_get_length(x->h2_out) < FG_LOW_WATERMARK)
        x->handler->resume(x);
    return 0;
}

static size_t add_trailers(struct h2conn *h, struct fg_exchange *x);

/* A stream answered while its request body is still due, and that body
 * too slow (body_clock.c): once our END_STREAM is out, RST_STREAM NO_ERROR
 * tells the client to stop sending (RFC 9113 8.1) and the stream closes
 * instead of lingering half-open. Only then, and never before the response
 * (nghttp2 would drop its queued DATA): curl 7.88 reports an error for such
 * a reset while it uploads, so an early answer to a client that sends its
 * body at a fair pace gets none. */
static void reset_after_end(nghttp2_session *s, struct fg_exchange *x)
{
    if (!x->req_body_done)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, x->h2_stream_id, NGHTTP2_NO_ERROR);
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct fg_exchange *x;

    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS))
        return 0;
    x = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!x)
        return 0;
    x->h2_end_sent = 1;
    fg_send_clock_stop(x);
    if (x->h2_reset_after_end)
        reset_after_end(s, x);
    (void)ud;
    return 0;
}

static ssize_t data_read_cb(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    struct h2conn *h = ud;
    struct fg_exchange *x = source->ptr;
    size_t avail = evbuffer_get_length(x->h2_out);
    size_t n = avail < length ? avail : length;

    if (n == 0 && !x->h2_out_eof) {
        x->h2_deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n && evbuffer_get_length(fg_stream_output(h->bev)) >= FG_HIGH_WATERMARK) {
        /* the client is slow: resumed by flush() once the socket drained */
        x->h2_out_blocked = 1;
        h->out_blocked = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (x->h2_out_eof && n == avail) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (add_trailers(h, x))
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

static int reject(struct fg_exchange *x, int status, const char *code, const char *msg)
{
    if (!x->reject_status) {
        x->reject_status = status;
        x->reject_code = code;
        x->reject_message = msg;
    }
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2conn *h = ud;
    struct fg_exchange *x;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    x = fg_exchange_get(h->w);
    if (!x)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!x->h2_out && !(x->h2_out = evbuffer_new())) {
        fg_exchange_put(x);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    x->state = FG_X_REQUEST_HEAD;
    x->front = &h2_ops;
    x->front_data = h;
    x->client = &h->client;
    x->handler = h->client.handler;
    x->h2_stream_id = frame->hd.stream_id;
    x->h2_head_since_ms = 0;
    TAILQ_INSERT_TAIL(&h->streams, x, link);
    stream_opened(h);
    nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, x);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    struct h2conn *h = ud;
    struct fg_exchange *x = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    const struct fg_client_cfg *cc = &h->w->cfg->client;
    int trailer;
    char *n, *v;

    if (!x || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    /* An HPACK bomb: a few bytes that reference a large table entry again
     * and again. Each field decoded costs nghttp2 a scan of its value,
     * refused or not, so a header list far beyond the size we announced
     * (SETTINGS_MAX_HEADER_LIST_SIZE, which a client must respect) ends
     * the connection at once, not after the whole block: the CPU a block
     * costs stays bounded by the limit, whatever the block expands to. */
    x->h2_head_bytes += namelen + valuelen + 32;    /* RFC 9113 6.5.2's measure */
    if (x->h2_head_bytes > 2 * (uint64_t)cc->max_header_bytes + 16384) {
        fg_log_info("client %s: HTTP/2: header list of stream %d far beyond "
                    "SETTINGS_MAX_HEADER_LIST_SIZE (%u): GOAWAY", h->client.addr,
                    frame->hd.stream_id, cc->max_header_bytes);
        h->calm = 1;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    /* a head held back (h2_pending) is complete: what follows is trailers */
    trailer = x->state != FG_X_REQUEST_HEAD || x->h2_pending;
    if (x->arena.used + namelen + valuelen > cc->max_header_bytes)
        return reject(x, 431, "headers_too_large", "request head exceeds max_header_bytes");
    if (namelen && name[0] == ':' && !trailer) {
        v = fg_arena_dup(&x->arena, (const char *)value, valuelen);
        if (!v)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
            x->method = v;
            x->method_len = (uint32_t)valuelen;
        } else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
            x->path = v;
            x->path_len = (uint32_t)valuelen;
        } else if (namelen == 10 && memcmp(name, ":authority", 10) == 0) {
            x->authority = v;
            x->authority_len = (uint32_t)valuelen;
        }
        return 0;                       /* :scheme: we know how we were reached */
    }
    if ((trailer ? x->req_trailers.n : x->req_headers.n) >= cc->max_headers)
        return reject(x, 431, "headers_too_large", "too many request headers");
    n = fg_arena_dup(&x->arena, (const char *)name, namelen);
    v = fg_arena_dup(&x->arena, (const char *)value, valuelen);
    if (!n || !v || fg_headers_add(trailer ? &x->req_trailers : &x->req_headers, n, namelen, v,
                                   valuelen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int parse_length(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;

    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static void start_request(struct h2conn *h, struct fg_exchange *x, int end_stream)
{
    const struct fg_client_cfg *cc = &h->w->cfg->client;
    struct fg_header *cl;

    fg_headers_classify(&x->req_headers);
    if (!end_stream)
        fg_body_clock_start(x);         /* answered or not, the stream waits for its body */
    x->req_has_body = !end_stream;
    x->req_body_done = end_stream;
    x->req_head_only = x->method_len == 4 && memcmp(x->method, "HEAD", 4) == 0;
    cl = fg_headers_find(&x->req_headers, "content-length", 14);
    if (cl && parse_length(cl->value, cl->vlen, &x->req_content_length) < 0)
        reject(x, 400, "bad_request", "invalid content-length");
    if (!x->authority) {
        struct fg_header *host = fg_headers_find(&x->req_headers, "host", 4);
        if (host) {
            x->authority = host->value;
            x->authority_len = host->vlen;
        }
    }
    fg_exchange_set_request_id(x);
    if (x->reject_status) {
        fg_exchange_reply_error(x, x->reject_status, x->reject_code, x->reject_message);
        return;
    }
    if (!x->method || !x->path || x->path_len == 0 || x->path[0] != '/') {
        fg_exchange_reply_error(x, 400, "bad_request", "invalid :path or :method");
        return;
    }
    if (cc->max_body_bytes && x->req_content_length >= 0 &&
        (uint64_t)x->req_content_length > cc->max_body_bytes) {
        fg_exchange_reply_error(x, 413, "body_too_large", "request body exceeds max_body_bytes");
        return;
    }
    x->handler->start(x);
    if (end_stream)
        x->handler->request_end(x);
}

/* A request complete but held back (see h2conn.pending): started now. */
static void start_pending(struct h2conn *h, struct fg_exchange *x)
{
    TAILQ_REMOVE(&h->pending, x, h2_plink);
    x->h2_pending = 0;
    start_request(h, x, x->h2_pending_end);
}

/* 1 when a frame that costs and carries nothing overdraws the bucket. */
static int glitch(struct h2conn *h, const nghttp2_frame *frame)
{
    uint64_t now;

    switch (frame->hd.type) {
    case NGHTTP2_PRIORITY:
        break;
    case NGHTTP2_DATA:
        if (frame->hd.length || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            return 0;
        break;
    case NGHTTP2_WINDOW_UPDATE:
        if (h->data_sent) {             /* the answer to DATA we sent */
            h->data_sent = 0;
            return 0;
        }
        break;
    default:
        return 0;
    }
    now = fg_outlier_now_ms();
    if (now > h->glitch_ms) {
        uint64_t add = (now - h->glitch_ms) * GLITCH_RATE / 1000;
        if (add) {
            h->glitch_tokens = add + h->glitch_tokens > GLITCH_BURST ? GLITCH_BURST
                                                                     : (uint32_t)(add + h->glitch_tokens);
            h->glitch_ms = now;
        }
    }
    if (!h->glitch_tokens)
        return 1;
    h->glitch_tokens--;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2conn *h = ud;
    struct fg_exchange *x;
    int end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    if (glitch(h, frame)) {
        fg_log_info("client %s: HTTP/2: too many PRIORITY, empty DATA or WINDOW_UPDATE "
                    "frames: GOAWAY", h->client.addr);
        nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    x = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!x)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && x->state == FG_X_REQUEST_HEAD && !x->h2_pending) {
        if (h->in_recv) {
            /* started after this read: a reset in the same read cancels it
             * before any backend work (CVE-2023-44487) */
            x->h2_pending = 1;
            x->h2_pending_end = end_stream;
            TAILQ_INSERT_TAIL(&h->pending, x, h2_plink);
        } else {
            start_request(h, x, end_stream);
        }
        return 0;
    }
    if (x->h2_pending)
        start_pending(h, x);            /* its body's end came in the same read */
    if (end_stream && !x->req_body_done) {
        x->req_body_done = 1;
        fg_body_clock_stop(x);
        fg_headers_classify(&x->req_trailers);
        x->handler->request_end(x);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    struct h2conn *h = ud;
    struct fg_exchange *x = nghttp2_session_get_stream_user_data(s, stream_id);
    uint64_t max = h->w->cfg->client.max_body_bytes;

    if (x && x->h2_pending)
        start_pending(h, x);            /* its body is coming: the request starts */
    if (!x || x->state == FG_X_DONE || x->state == FG_X_REQUEST_HEAD) {
        if (x)
            x->req_body_bytes += len;   /* discarded, but it came (body_clock.c) */
        nghttp2_session_consume(s, stream_id, len);
        return 0;
    }
    x->req_body_bytes += len;
    if (max && x->req_body_bytes > max) {
        nghttp2_session_consume(s, stream_id, len);
        fg_exchange_reply_error(x, 413, "body_too_large", "request body exceeds max_body_bytes");
        return 0;
    }
    if (x->handler->request_body(x, (const char *)data, len)) {
        x->h2_unconsumed += len;        /* returned by resume_request */
        fg_body_clock_pause(x);
    } else
        nghttp2_session_consume(s, stream_id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    struct h2conn *h = ud;
    struct fg_exchange *x = nghttp2_session_get_stream_user_data(s, stream_id);

    if (x) {
        nghttp2_session_set_stream_user_data(s, stream_id, NULL);
        stream_release(h, x);
        stream_closed(h);
    }
    return 0;
}

/* ---- response (fg_front_ops) ------------------------------------------ */

/* Scratch for the name/value array of a head being submitted: one per
 * worker, not per connection (nghttp2 copies the array when the head is
 * submitted), so an idle connection keeps none. */
static nghttp2_nv *nv_room(struct h2conn *h, size_t n)
{
    struct fg_worker *w = h->w;

    if (n > w->h2_nv_cap) {
        nghttp2_nv *nv = realloc(w->h2_nv, n * sizeof(*nv));
        if (!nv)
            return NULL;
        w->h2_nv = nv;
        w->h2_nv_cap = n;
    }
    return (nghttp2_nv *)w->h2_nv;
}

#define NV_FLAGS (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)

static void nv_set(nghttp2_nv *nv, const char *name, size_t nlen, const char *value, size_t vlen)
{
    nv->name = (uint8_t *)name;
    nv->namelen = nlen;
    nv->value = (uint8_t *)value;
    nv->valuelen = vlen;
    nv->flags = NV_FLAGS;
}

static size_t add_trailers(struct h2conn *h, struct fg_exchange *x)
{
    nghttp2_nv *nv = nv_room(h, x->resp_trailers.n + 1);
    size_t n = 0;

    if (!nv)
        return 0;
    for (unsigned i = 0; i < x->resp_trailers.n; i++) {
        const struct fg_header *e = &x->resp_trailers.v[i];
        if (!(e->flags & (FG_HDR_HOP | FG_HDR_FRAMING)))
            nv_set(&nv[n++], e->name, e->nlen, e->value, e->vlen);
    }
    if (n && nghttp2_submit_trailer(h->session, x->h2_stream_id, nv, n) != 0)
        return 0;
    return n;
}

static void h2_send_head(struct fg_exchange *x)
{
    struct h2conn *h = conn_of(x);
    nghttp2_nv *nv = nv_room(h, x->resp_headers.n + 3);
    nghttp2_data_provider prd = { .source.ptr = x, .read_callback = data_read_cb };
    char *status = fg_arena_alloc(&x->arena, 3), *cl = NULL;
    size_t n = 0;
    size_t cllen = 0;

    if (!nv || !status) {
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->h2_stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
        schedule_flush(h);
        return;
    }
    fg_put_status(status, (unsigned)x->status % 1000);
    nv_set(&nv[n++], ":status", 7, status, 3);
    for (unsigned i = 0; i < x->resp_headers.n; i++) {
        const struct fg_header *e = &x->resp_headers.v[i];
        if (!(e->flags & (FG_HDR_HOP | FG_HDR_FRAMING | FG_HDR_REQID)) && e->nlen)
            nv_set(&nv[n++], e->name, e->nlen, e->value, e->vlen);
    }
    nv_set(&nv[n++], "x-request-id", 12, x->request_id, x->request_id_len);
    if (x->resp_content_length >= 0 && x->status != 204 && x->status != 304 &&
        (cl = fg_arena_alloc(&x->arena, FG_PUT_U64_MAX))) {
        cllen = fg_put_u64(cl, (uint64_t)x->resp_content_length);
        nv_set(&nv[n++], "content-length", 14, cl, cllen);
    }
    nghttp2_submit_response(h->session, x->h2_stream_id, nv, n, x->resp_no_body ? NULL : &prd);
    schedule_flush(h);
}

static void wake_provider(struct h2conn *h, struct fg_exchange *x)
{
    if (x->h2_deferred) {
        x->h2_deferred = 0;
        nghttp2_session_resume_data(h->session, x->h2_stream_id);
    }
    schedule_flush(h);
}

static size_t h2_send_body(struct fg_exchange *x, const char *data, size_t len)
{
    struct h2conn *h = conn_of(x);

    if (x->resp_no_body)
        return 0;
    evbuffer_add(x->h2_out, data, len);
    fg_send_clock_start(x);
    wake_provider(h, x);
    return evbuffer_get_length(x->h2_out);
}

static void h2_resume_request(struct fg_exchange *x);

static void h2_send_end(struct fg_exchange *x)
{
    struct h2conn *h = conn_of(x);

    /* the exchange lives on until nghttp2 closes the stream; the rest of
     * a paused request body is no longer wanted: let the client send it
     * (it is discarded) rather than stall on a window never returned */
    x->h2_out_eof = 1;
    if (x->h2_unconsumed)
        h2_resume_request(x);
    if (!x->resp_no_body)
        wake_provider(h, x);
    else
        schedule_flush(h);
}

static void h2_abort(struct fg_exchange *x)
{
    struct h2conn *h = conn_of(x);

    nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->h2_stream_id,
                              NGHTTP2_INTERNAL_ERROR);
    schedule_flush(h);
}

static void h2_resume_request(struct fg_exchange *x)
{
    struct h2conn *h = conn_of(x);

    fg_body_clock_resume(x);
    if (x->h2_unconsumed) {
        nghttp2_session_consume(h->session, x->h2_stream_id, (size_t)x->h2_unconsumed);
        x->h2_unconsumed = 0;
        schedule_flush(h);
    }
}

/* The body came too slowly (body_clock.c). */
static void h2_body_timeout(struct fg_exchange *x)
{
    struct h2conn *h = conn_of(x);

    fg_log_debug("client %s: stream %d: request body too slow", h->client.addr, x->h2_stream_id);
    if (x->state == FG_X_UPSTREAM) {
        x->h2_reset_after_end = 1;
        fg_exchange_reply_error(x, 408, "request_timeout",
                                "the request body came too slowly (client.body_timeout_ms, "
                                "client.body_min_rate)");
    } else if (x->state == FG_X_RESPONDING) {
        /* the backend is released when nghttp2 closes the stream */
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->h2_stream_id, NGHTTP2_CANCEL);
        schedule_flush(h);
    } else {
        /* answered already (an early error, a backend that did not wait):
         * the slow rest of the body holds no backend, only the stream */
        x->h2_reset_after_end = 1;
        if (x->h2_end_sent) {
            reset_after_end(h->session, x);
            schedule_flush(h);
        }
    }
}

/* None of the response went out for send_timeout_ms (send_clock.c): the
 * client keeps its window shut. The stream ends; the backend, if the
 * response is unfinished, is released when nghttp2 closes it. */
static void h2_send_timeout(struct fg_exchange *x)
{
    struct h2conn *h = conn_of(x);

    fg_log_debug("client %s: stream %d: response not read within send_timeout_ms",
                 h->client.addr, x->h2_stream_id);
    nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->h2_stream_id, NGHTTP2_CANCEL);
    schedule_flush(h);
}

/* The connection's receive window is spent (on streams whose backends are
 * slow): the client cannot send. Not "its frames are not read because it
 * does not read ours": that is the client's own doing. The client could
 * spend the window itself, so body_clock.c excuses this for at most
 * body_timeout_ms per body. */
static int h2_body_blocked(struct fg_exchange *x)
{
    struct h2conn *h = conn_of(x);

    return nghttp2_session_get_local_window_size(h->session) < 16384;
}

static const struct fg_front_ops h2_ops = {
    .send_head = h2_send_head,
    .send_body = h2_send_body,
    .send_end = h2_send_end,
    .abort = h2_abort,
    .resume_request = h2_resume_request,
    .body_timeout = h2_body_timeout,
    .body_blocked = h2_body_blocked,
    .send_timeout = h2_send_timeout,
};

/* ---- events -------------------------------------------------------------- */

/* Whether a request head has been coming for client.header_timeout_ms: a
 * HEADERS frame sent a byte at a time (slowloris). Every byte that comes
 * restarts the idle timeout, so only a deadline stops it; and a header
 * block in progress blocks the whole connection (no other frame may come
 * between its pieces), so it is the connection that ends. The clock is
 * read only when a read ends inside a head, which complete heads never
 * do. */
static int head_overdue(struct h2conn *h)
{
    struct fg_exchange *x;
    uint64_t now = 0;

    TAILQ_FOREACH(x, &h->streams, link) {
        if (x->state != FG_X_REQUEST_HEAD || x->h2_pending)
            continue;
        if (!now)
            now = fg_outlier_now_ms();
        if (!x->h2_head_since_ms)
            x->h2_head_since_ms = now;
        else if (now - x->h2_head_since_ms >= h->w->cfg->client.header_timeout_ms)
            return 1;
    }
    return 0;
}

/* Ends the connection after a GOAWAY with <code>: nothing more is read. */
static void fail_connection(struct h2conn *h, uint32_t code)
{
    nghttp2_session_terminate_session(h->session, code);
    fg_stream_disable(h->bev, EV_READ);
    fg_stream_input_drain(h->bev, fg_stream_input_length(h->bev));
    h->fatal = 1;
}

static void on_read(struct fg_stream *bev, void *arg)
{
    struct h2conn *h = arg;
    const uint8_t *data;
    size_t n;

    while ((data = (const uint8_t *)fg_stream_input_data(bev, &n)) &&
           nghttp2_session_want_read(h->session)) {
        ssize_t rv;
        if (evbuffer_get_length(fg_stream_output(bev)) >= FG_HIGH_WATERMARK) {
            /* a client that sends and does not read (PING or SETTINGS
             * floods, paced to dodge nghttp2's count of queued ACKs): no
             * more of its frames until it reads what we owe it */
            h->read_paused = 1;
            fg_stream_disable(bev, EV_READ);
            break;
        }
        h->in_recv = 1;
        rv = nghttp2_session_mem_recv(h->session, data, n);
        h->in_recv = 0;
        if (rv < 0) {
            fg_log_debug("client %s: HTTP/2: %s", h->client.addr, nghttp2_strerror((int)rv));
            /* say why (flood, CONTINUATION, protocol error), then close once
             * it is written; read nothing more */
            fail_connection(h, h->calm || rv == NGHTTP2_ERR_FLOODED ||
                                       rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                                   ? NGHTTP2_ENHANCE_YOUR_CALM
                                   : NGHTTP2_PROTOCOL_ERROR);
            break;
        }
        fg_stream_input_drain(bev, (size_t)rv);
    }
    if (!h->fatal && head_overdue(h)) {
        fg_log_info("client %s: HTTP/2: a request head not received within header_timeout_ms "
                    "(%u): GOAWAY", h->client.addr, h->w->cfg->client.header_timeout_ms);
        fail_connection(h, NGHTTP2_NO_ERROR);
    }
    /* the requests complete in what was read, whose streams are still open */
    while (!TAILQ_EMPTY(&h->pending)) {
        struct fg_exchange *x = TAILQ_FIRST(&h->pending);
        if (!nghttp2_session_want_read(h->session)) {
            /* going away (GOAWAY sent): not started; closed with the rest */
            TAILQ_REMOVE(&h->pending, x, h2_plink);
            x->h2_pending = 0;
            continue;
        }
        start_pending(h, x);
    }
    flush(h);
}

static void on_write(struct fg_stream *bev, void *arg)
{
    struct h2conn *h = arg;

    if (h->read_paused &&
        evbuffer_get_length(fg_stream_output(bev)) < FG_LOW_WATERMARK) {
        h->read_paused = 0;
        fg_stream_enable(bev, EV_READ);
        on_read(bev, h);                /* what waited in the input (flushes) */
        return;
    }
    flush(h);
}

/* Whether a stream waits for its answer: its head came whole. A stream
 * whose head never ended (HEADERS without END_HEADERS, then silence) does
 * not keep the connection from its idle timeout. */
static int awaits_answer(const struct h2conn *h)
{
    const struct fg_exchange *x;

    TAILQ_FOREACH(x, &h->streams, link)
        if (x->state != FG_X_REQUEST_HEAD || x->h2_pending)
            return 1;
    return 0;
}

static void on_event(struct fg_stream *bev, short what, void *arg)
{
    struct h2conn *h = arg;

    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && awaits_answer(h)) {
        /* silent, but waiting for answers: not idle (see stream_closed) */
        fg_stream_enable(bev, EV_READ);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && !h->closing) {
        /* idle: say goodbye (GOAWAY) and close once it is written */
        nghttp2_session_terminate_session(h->session, NGHTTP2_NO_ERROR);
        flush(h);
        return;
    }
    conn_free(h);                       /* EOF, error or send timeout */
}

/* nghttp2 allocator. A session's outbound frame buffer (16 KiB, allocated
 * once at creation) only holds a frame between its serialisation and its
 * hand-over to send_cb()/send_data_cb(), which take everything at once
 * (above); sessions of one worker run one at a time, so they can all use
 * the worker's single buffer. That saves a resident page or more per
 * connection, most of what an idle HTTP/2 connection costs beyond nghttp2's
 * fixed tables. Only the first frame-buffer allocation made while a session
 * is being created is shared; a session that needs a bigger buffer (a huge
 * header block) gets a private copy through realloc. */
#define NGHTTP2_FRAMEBUF_SIZE 16394     /* NGHTTP2_FRAMEBUF_CHUNKLEN in 1.4x-1.5x */

static void *mem_malloc(size_t n, void *ud) { return malloc(n); }
static void *mem_calloc(size_t n, size_t m, void *ud) { return calloc(n, m); }

static void mem_free(void *p, void *ud)
{
    struct fg_worker *w = ud;

    if (p != w->h2_framebuf)
        free(p);
}

static void *mem_realloc(void *p, size_t n, void *ud)
{
    struct fg_worker *w = ud;

    if (!p && w->h2_creating && n == NGHTTP2_FRAMEBUF_SIZE) {
        w->h2_creating = 0;
        if (!w->h2_framebuf)
            w->h2_framebuf = malloc(NGHTTP2_FRAMEBUF_SIZE);
        return w->h2_framebuf;
    }
    if (p && p == w->h2_framebuf) {
        void *q = malloc(n);
        if (q)
            memcpy(q, p, n < NGHTTP2_FRAMEBUF_SIZE ? n : NGHTTP2_FRAMEBUF_SIZE);
        return q;
    }
    return realloc(p, n);
}

static void init_callbacks(void)
{
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_send_callback(callbacks, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(callbacks, send_data_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
    nghttp2_option_new(&options);
    nghttp2_option_set_no_auto_window_update(options, 1);
    /* Response headers are encoded from the static table and literals only,
     * as HAProxy does: with a dynamic table every x-request-id (unique per
     * response) was indexed, and nghttp2's encoder compared each new header
     * against all same-named entries, which under 256 connections (tables
     * out of cache) cost more than the rest of the request together. */
    nghttp2_option_set_max_deflate_dynamic_table_size(options, 0);
    /* no priority tree to keep closed streams for: an idle connection then
     * holds no stream objects at all */
    nghttp2_option_set_no_closed_streams(options, 1);
    /* floods (docs/security.md), set explicitly rather than left to the
     * library's defaults: queued ACKs, SETTINGS entries, CONTINUATION frames
     * after a HEADERS, and stream resets (burst, then per second) */
    nghttp2_option_set_max_outbound_ack(options, 1000);
    nghttp2_option_set_max_settings(options, 32);
    nghttp2_option_set_max_continuations(options, 8);
    nghttp2_option_set_stream_reset_rate_limit(options, 200, 33);
}

void fg_h2_start(struct fg_worker *w, struct fg_stream *bev, const struct fg_client_info *ci)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    const struct fg_client_cfg *cc = &w->cfg->client;
    struct h2conn *h;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cc->h2_max_concurrent_streams },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cc->max_header_bytes },
    };

    nghttp2_mem mem = { w, mem_malloc, mem_free, mem_calloc, mem_realloc };
    int rv = -1;

    pthread_once(&once, init_callbacks);
    h = calloc(1, sizeof(*h));
    if (h) {
        w->h2_creating = 1;
        rv = nghttp2_session_server_new3(&h->session, callbacks, h, options, &mem);
        w->h2_creating = 0;
    }
    if (rv != 0) {
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
    h->client.h2 = 1;
    h->base.client = &h->client;        /* its place in the limits, from here on */
    fg_stat_conn(w->stats, 1, ci->tls, +1);
    TAILQ_INIT(&h->streams);
    TAILQ_INIT(&h->pending);
    h->glitch_tokens = GLITCH_BURST;
    h->glitch_ms = fg_outlier_now_ms();
    nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    fg_stream_setcb(bev, on_read, on_write, on_event, h);
    fg_stream_set_write_low(bev, FG_LOW_WATERMARK);
    /* the answers of its streams come from many backend events: one write
     * per batch of events instead of one per answer (bench: h2c -c 16 -m 10,
     * 2.0 -> ~1.2 writes per request, as HAProxy's) */
    fg_stream_set_coalesce(bev, 1);
    fg_stream_enable(bev, EV_READ | EV_WRITE);
    fg_stream_set_timeouts(bev, cc->idle_timeout_ms, cc->send_timeout_ms);
    if (fg_stream_input_length(bev))
        on_read(bev, h);
    else
        flush(h);
}
