/* Buffered sockets with speculative writes; see include/fg/stream.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <openssl/err.h>

#include "fg/log.h"
#include "fg/stream.h"

/* Input buffers are blocks of IN_BLOCK bytes from the loop's pool (at most
 * POOL_MAX kept there); one read takes at most READ_MAX, and a read with
 * less than IN_ROOM_MIN free first moves the bytes kept to the front, or
 * grows the buffer. One TLS write takes at most one record. */
#define IN_BLOCK (32 * 1024)
#define POOL_MAX 64
#define READ_MAX IN_BLOCK
#define IN_ROOM_MIN 4096
#define TLS_RECORD 16384

/* work left for the deferred handler */
#define DO_EVENT    0x01        /* report s->pending_event */
#define DO_READ_IO  0x02        /* read from the socket (TLS data may be buffered) */
#define DO_FLUSH    0x04        /* write the output */
#define DO_READ_CB  0x08        /* fg_stream_trigger(EV_READ) */
#define DO_WRITE_CB 0x10        /* fg_stream_trigger(EV_WRITE) */

TAILQ_HEAD(stream_list, fg_stream);

/* What the streams of one thread share: its event base, the streams whose
 * output grew during the I/O callback now running (written as soon as that
 * callback returns, so a response goes out right after the event that
 * produced it, not after the whole batch epoll returned, and several
 * additions still make one writev), and the streams with deferred work
 * (triggers, connect results, output queued from timers), run from one
 * event. Streams that coalesce (fg_stream_set_coalesce: an HTTP/2 client
 * connection, whose streams' answers come from many backend events) are
 * written once per batch instead, by fg_loop_batch_end(). */
struct fg_loop {
    struct event_base *base;
    struct event defer_ev;
    struct stream_list dirty, deferred, batch;
    unsigned ndeferred;
    int io_depth;                       /* our I/O callbacks on the stack */
    int defer_active;
    unsigned batching:1;                /* the owner calls fg_loop_batch_end() */
    unsigned in_batch_end:1;
    /* input blocks not in use: a read takes one, a drained input gives it
     * back, so requests in steady state allocate no read buffer */
    unsigned npool;
    char *pool[POOL_MAX];
};

struct fg_stream {
    struct fg_loop *loop;
    evutil_socket_t fd;
    SSL *ssl;
    /* The input is one flat buffer, bytes [in_start, in_end) of in_data:
     * taken from the loop's pool by the read that needs it, given back when
     * drained empty (an idle connection holds none). Parsers read it in
     * place; it needs no evbuffer bookkeeping per read and per drain. */
    char *in_data;
    uint32_t in_start, in_end, in_cap;
    struct evbuffer *out;
    struct event rev;
    /* Allocated the first time the kernel pushes back (or for a connect):
     * most connections never need it, and an idle one then costs 128
     * bytes less (bench/idle). */
    struct event *wev;

    fg_stream_data_cb readcb, writecb;
    fg_stream_event_cb eventcb;
    void *arg;

    unsigned read_ms, write_ms;
    size_t read_high, write_low;

    short enabled;              /* EV_READ | EV_WRITE wanted by the owner */
    short pending_event;        /* for DO_EVENT */
    unsigned todo;              /* DO_* */
    int depth;                  /* callbacks of ours on the stack */
    unsigned rev_added:1, wev_added:1, deferred:1, dirty:1;
    unsigned coalesce:1;        /* written at the end of the loop's batch */
    unsigned batched:1;         /* dirty_link is in loop->batch, not loop->dirty */
    TAILQ_ENTRY(fg_stream) dirty_link;
    TAILQ_ENTRY(fg_stream) defer_link;
    unsigned connecting:1, handshaking:1, hs_wants_write:1;
    unsigned eof:1, failed:1, dead:1;
    /* inside the read event's callback, whose timeout libevent restarted
     * on firing (from the loop's cached time: re-adding the same timeout
     * now would change nothing) */
    unsigned in_read_event:1;
};

static void dirty_remove(struct fg_stream *s)
{
    if (s->dirty) {
        TAILQ_REMOVE(s->batched ? &s->loop->batch : &s->loop->dirty, s, dirty_link);
        s->dirty = 0;
        s->batched = 0;
    }
}

static void defer_remove(struct fg_stream *s)
{
    if (s->deferred) {
        TAILQ_REMOVE(&s->loop->deferred, s, defer_link);
        s->loop->ndeferred--;
        s->deferred = 0;
    }
}

static size_t in_length(const struct fg_stream *s) { return s->in_end - s->in_start; }

/* Gives the input buffer back (to the pool when it is a plain block). */
static void in_release(struct fg_stream *s)
{
    struct fg_loop *loop = s->loop;

    if (!s->in_data)
        return;
    if (s->in_cap == IN_BLOCK && loop->npool < POOL_MAX)
        loop->pool[loop->npool++] = s->in_data;
    else
        free(s->in_data);
    s->in_data = NULL;
    s->in_start = s->in_end = s->in_cap = 0;
}

/* Makes room at the end of the input for a read of up to <want> bytes
 * (> 0); returns how much the read may take, 0 when out of memory. */
static size_t in_room(struct fg_stream *s, size_t want)
{
    size_t len = in_length(s), least = want < IN_ROOM_MIN ? want : IN_ROOM_MIN, room;
    char *grown;
    size_t cap;

    if (!s->in_data) {
        struct fg_loop *loop = s->loop;
        s->in_data = loop->npool ? loop->pool[--loop->npool] : malloc(IN_BLOCK);
        if (!s->in_data)
            return 0;
        s->in_cap = IN_BLOCK;
        s->in_start = s->in_end = 0;
    }
    room = s->in_cap - s->in_end;
    if (room < least && s->in_start) {
        /* bytes kept from earlier reads (a partial head, a paused body):
         * to the front, only when the end has too little room left */
        memmove(s->in_data, s->in_data + s->in_start, len);
        s->in_start = 0;
        s->in_end = (uint32_t)len;
        room = s->in_cap - len;
    }
    if (room < least) {
        for (cap = s->in_cap; cap - len < least; cap *= 2)
            ;
        if (cap > UINT32_MAX || !(grown = malloc(cap)))
            return 0;
        memcpy(grown, s->in_data + s->in_start, len);
        in_release(s);
        s->in_data = grown;
        s->in_cap = (uint32_t)cap;
        s->in_start = 0;
        s->in_end = (uint32_t)len;
        room = cap - len;
    }
    return room < want ? room : want;
}

static void really_free(struct fg_stream *s)
{
    dirty_remove(s);
    defer_remove(s);
    event_del(&s->rev);
    if (s->wev)
        event_free(s->wev);
    if (s->ssl) {
        if (!s->failed && !s->handshaking)
            SSL_shutdown(s->ssl);           /* best effort close_notify */
        SSL_free(s->ssl);
        ERR_clear_error();
    }
    if (s->fd >= 0)
        close(s->fd);
    in_release(s);
    evbuffer_free(s->out);
    free(s);
}

/* Callbacks run between enter() and leave(); leave() returns 1 when the
 * stream was freed meanwhile, and the caller must return at once. */
static inline void enter(struct fg_stream *s) { s->depth++; }

static inline int leave(struct fg_stream *s)
{
    if (--s->depth == 0 && s->dead) {
        really_free(s);
        return 1;
    }
    return s->dead;
}

static void schedule(struct fg_stream *s, unsigned what)
{
    struct fg_loop *loop = s->loop;

    s->todo |= what;
    if (!s->deferred) {
        TAILQ_INSERT_TAIL(&loop->deferred, s, defer_link);
        loop->ndeferred++;
        s->deferred = 1;
    }
    /* inside an I/O callback the work runs as soon as it returns (io_leave);
     * otherwise (timers, set-up) from the loop's deferred event */
    if (!loop->defer_active && loop->io_depth == 0) {
        loop->defer_active = 1;
        event_active(&loop->defer_ev, EV_WRITE, 1);
    }
}

static void report(struct fg_stream *s, short what)
{
    if (s->eventcb) {
        enter(s);
        s->eventcb(s, what, s->arg);
        leave(s);
    }
}

/* The timeouts as timevals, made when needed: not stored, an idle
 * connection is 32 bytes lighter. */
static const struct timeval *ms_tv(struct timeval *tv, unsigned ms)
{
    if (!ms)
        return NULL;
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
    return tv;
}

/* Arms or disarms the read event to match what is wanted now. */
static void update_read(struct fg_stream *s)
{
    int want;

    if (s->dead || s->fd < 0)
        return;
    if (s->handshaking)
        want = !s->hs_wants_write;
    else
        want = (s->enabled & EV_READ) && !s->connecting && !s->eof && !s->failed &&
               (!s->read_high || in_length(s) < s->read_high);
    if (want && !s->rev_added) {
        struct timeval tv;
        event_add(&s->rev, ms_tv(&tv, s->read_ms));
        s->rev_added = 1;
    } else if (!want && s->rev_added) {
        event_del(&s->rev);
        s->rev_added = 0;
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg);
static void on_readable(evutil_socket_t fd, short what, void *arg);

static void arm_write(struct fg_stream *s)
{
    if (!s->wev) {
        s->wev = event_new(s->loop->base, s->fd, EV_WRITE | EV_PERSIST, on_writable, s);
        if (!s->wev) {
            /* no memory for the event: the stream cannot make progress */
            s->failed = 1;
            s->pending_event = BEV_EVENT_ERROR | BEV_EVENT_WRITING;
            schedule(s, DO_EVENT);
            return;
        }
    }
    /* re-adding restarts the timeout: progress was made */
    {
        struct timeval tv;
        event_add(s->wev, ms_tv(&tv, s->write_ms));
    }
    s->wev_added = 1;
}

static void disarm_write(struct fg_stream *s)
{
    if (s->wev_added) {
        event_del(s->wev);
        s->wev_added = 0;
    }
}

/* ---- handshake (server-side TLS) --------------------------------------- */

static void do_handshake(struct fg_stream *s)
{
    int r = SSL_do_handshake(s->ssl);

    if (r == 1) {
        s->handshaking = 0;
        s->hs_wants_write = 0;
        disarm_write(s);
        update_read(s);
        /* the client's first request may already sit decrypted in SSL */
        schedule(s, DO_READ_IO);
        report(s, BEV_EVENT_CONNECTED);
        return;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->hs_wants_write = 0;
        disarm_write(s);
        update_read(s);
        break;
    case SSL_ERROR_WANT_WRITE:
        s->hs_wants_write = 1;
        update_read(s);
        arm_write(s);
        break;
    default:
        s->failed = 1;
        ERR_clear_error();
        update_read(s);
        disarm_write(s);
        report(s, BEV_EVENT_ERROR);
    }
}

/* ---- reading -------------------------------------------------------------- */

/* Reads what the socket has (one read; for TLS, until SSL wants more).
 * Returns bytes read, 0 at EOF, -1 on error, -2 when nothing was there. */
static ssize_t read_some(struct fg_stream *s)
{
    size_t want = READ_MAX, room, got = 0;
    char *p;

    if (s->read_high) {
        size_t have = in_length(s);
        want = have < s->read_high ? s->read_high - have : 0;
        if (want > READ_MAX)
            want = READ_MAX;
        if (want == 0)
            return -2;
    }
    if (!(room = in_room(s, want)))
        return -1;
    p = s->in_data + s->in_end;
    if (!s->ssl) {
        ssize_t r = recv(s->fd, p, room, 0);
        if (r <= 0) {
            if (in_length(s) == 0)
                in_release(s);  /* nothing came: hold no buffer */
            if (r == 0)
                return 0;
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
        }
        s->in_end += (uint32_t)r;
        return r;
    }
    while (got < room) {
        int r = SSL_read(s->ssl, p + got, (int)(room - got));
        int err;

        if (r > 0) {
            got += (size_t)r;
            /* with read-ahead, nothing buffered means the socket was
             * drained: asking again would only cost an EAGAIN read */
            if (!SSL_has_pending(s->ssl))
                break;
            continue;
        }
        err = SSL_get_error(s->ssl, r);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            break;
        ERR_clear_error();
        if (got)
            break;              /* report the data now, the end next time */
        if (in_length(s) == 0)
            in_release(s);
        if (err == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (err == SSL_ERROR_SYSCALL)
            return r == 0 ? 0 : -1;     /* dirty EOF counts as EOF */
        return -1;
    }
    if (got == 0) {
        if (in_length(s) == 0)
            in_release(s);
        return -2;
    }
    s->in_end += (uint32_t)got;
    return (ssize_t)got;
}

static void do_read(struct fg_stream *s)
{
    ssize_t r;

    if (!(s->enabled & EV_READ) || s->eof || s->failed || s->connecting || s->handshaking)
        return;
    r = read_some(s);
    if (r == -2) {
        update_read(s);
        return;
    }
    if (r == 0 || r == -1) {
        if (r == 0)
            s->eof = 1;
        else
            s->failed = 1;
        update_read(s);
        report(s, (short)(BEV_EVENT_READING | (r == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR)));
        return;
    }
    /* inside the read event libevent restarted the clock already */
    if (s->read_ms && s->rev_added && !s->in_read_event) {
        struct timeval tv;
        event_add(&s->rev, ms_tv(&tv, s->read_ms));  /* data came: restart the clock */
    }
    if (s->readcb) {
        enter(s);
        s->readcb(s, s->arg);
        if (leave(s))
            return;
    }
    update_read(s);
    if (s->ssl && SSL_has_pending(s->ssl) && s->rev_added)
        schedule(s, DO_READ_IO);        /* bytes in SSL's buffers epoll cannot see */
}

/* ---- writing ---------------------------------------------------------------- */

/* Output this short or shorter that sits in several chunks (HTTP/2 frame
 * headers next to DATA payloads moved in without a copy, a chunk-size line
 * before its chunk) is copied together and sent with one send(): copying a
 * few KiB costs less than the kernel's vectored path, which copies the
 * iovec in and goes through the VFS write path (file lookup, rw checks,
 * fsnotify) where send() goes straight to the socket. */
#define GATHER_MAX 8192

/* One send when the output is one contiguous chunk (a response head and its
 * small body usually are) or short enough to gather, else libevent's writev
 * over the chunks. */
static ssize_t write_plain(struct fg_stream *s)
{
    static __thread char gather[GATHER_MAX];
    struct evbuffer_iovec one;
    size_t len = evbuffer_get_length(s->out);
    ssize_t r;

    /* with a length, evbuffer_peek counts every chunk it needs (with -1 it
     * would stop at the one it can fill) */
    if (evbuffer_peek(s->out, (ev_ssize_t)len, NULL, &one, 1) == 1)
        r = send(s->fd, one.iov_base, one.iov_len, MSG_NOSIGNAL);
    else if (len <= GATHER_MAX && evbuffer_copyout(s->out, gather, len) == (ev_ssize_t)len)
        r = send(s->fd, gather, len, MSG_NOSIGNAL);
    else
        return evbuffer_write_atmost(s->out, s->fd, -1);
    if (r > 0)
        evbuffer_drain(s->out, (size_t)r);
    return r;
}

static void do_write(struct fg_stream *s)
{
    size_t len = evbuffer_get_length(s->out);
    int progressed = 0;

    if (s->connecting || s->handshaking || s->failed || s->fd < 0 || !(s->enabled & EV_WRITE))
        return;
    while (len) {
        ssize_t r;

        if (!s->ssl) {
            r = write_plain(s);
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    break;
                s->failed = 1;
                disarm_write(s);
                update_read(s);
                report(s, BEV_EVENT_WRITING | BEV_EVENT_ERROR);
                return;
            }
        } else {
            size_t chunk = len < TLS_RECORD ? len : TLS_RECORD;
            unsigned char *p = evbuffer_pullup(s->out, (ev_ssize_t)chunk);
            int w = SSL_write(s->ssl, p, (int)chunk);
            if (w <= 0) {
                int e = SSL_get_error(s->ssl, w);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                    break;
                ERR_clear_error();
                s->failed = 1;
                disarm_write(s);
                update_read(s);
                report(s, BEV_EVENT_WRITING | BEV_EVENT_ERROR);
                return;
            }
            evbuffer_drain(s->out, (size_t)w);
            r = w;
        }
        progressed = 1;
        len = evbuffer_get_length(s->out);
        if (!s->ssl && len)
            break;              /* a short writev: the socket buffer is full */
    }
    if (len)
        arm_write(s);
    else
        disarm_write(s);
    if (progressed && len <= s->write_low && s->writecb) {
        enter(s);
        s->writecb(s, s->arg);
        leave(s);
    }
}

/* ---- events -------------------------------------------------------------------- */

static void do_write(struct fg_stream *s);

static void run_deferred(struct fg_stream *s);

static inline void io_enter(struct fg_loop *loop) { loop->io_depth++; }

/* The outermost I/O callback returned: run the deferred work it queued (one
 * pass over what is queued now; work queued meanwhile gets the next pass,
 * from the loop's event), then write every stream whose output grew. */
static void io_leave(struct fg_loop *loop)
{
    unsigned n;

    if (loop->io_depth > 1) {
        loop->io_depth--;
        return;
    }
    /* still counted as inside: what runs below may queue more */
    n = loop->ndeferred;
    while (n-- && !TAILQ_EMPTY(&loop->deferred)) {
        struct fg_stream *s = TAILQ_FIRST(&loop->deferred);
        defer_remove(s);
        run_deferred(s);
    }
    while (!TAILQ_EMPTY(&loop->dirty)) {
        struct fg_stream *s = TAILQ_FIRST(&loop->dirty);
        dirty_remove(s);
        if (s->coalesce && loop->batching && !loop->in_batch_end) {
            /* more of its answers may come in this batch: one write */
            TAILQ_INSERT_TAIL(&loop->batch, s, dirty_link);
            s->dirty = 1;
            s->batched = 1;
            continue;
        }
        enter(s);
        do_write(s);
        leave(s);
    }
    loop->io_depth--;
    if (!TAILQ_EMPTY(&loop->deferred) && !loop->defer_active) {
        loop->defer_active = 1;
        event_active(&loop->defer_ev, EV_WRITE, 1);
    }
}

static void on_readable_body(struct fg_stream *s, short what);

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct fg_loop *loop = ((struct fg_stream *)arg)->loop;

    io_enter(loop);
    on_readable_body(arg, what);
    io_leave(loop);
}

static void on_readable_body(struct fg_stream *s, short what)
{
    if (what & EV_TIMEOUT) {
        /* a persistent event would re-arm its timeout: stop reading, as a
         * bufferevent does, until the owner enables it again */
        event_del(&s->rev);
        s->rev_added = 0;
        s->enabled &= ~EV_READ;
        report(s, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
        return;
    }
    enter(s);
    if (s->handshaking)
        do_handshake(s);
    else {
        s->in_read_event = 1;
        do_read(s);
        s->in_read_event = 0;
    }
    leave(s);
}

static void finish_connect(struct fg_stream *s)
{
    int err = 0;
    socklen_t len = sizeof(err);

    s->connecting = 0;
    disarm_write(s);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        s->failed = 1;
        errno = err;
        report(s, BEV_EVENT_ERROR);
        return;
    }
    enter(s);
    report(s, BEV_EVENT_CONNECTED);
    if (!s->dead) {
        update_read(s);
        do_write(s);
    }
    leave(s);
}

static void on_writable_body(struct fg_stream *s, short what);

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct fg_loop *loop = ((struct fg_stream *)arg)->loop;

    io_enter(loop);
    on_writable_body(arg, what);
    io_leave(loop);
}

static void on_writable_body(struct fg_stream *s, short what)
{
    if (what & EV_TIMEOUT) {
        disarm_write(s);
        report(s, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT);
        return;
    }
    enter(s);
    if (s->connecting)
        finish_connect(s);
    else if (s->handshaking)
        do_handshake(s);
    else
        do_write(s);
    leave(s);
}

/* Deferred work queued outside I/O callbacks (timers, set-up), or left
 * over from a pass: io_leave() runs it. */
static void on_loop_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct fg_loop *loop = arg;

    loop->defer_active = 0;
    io_enter(loop);
    io_leave(loop);
}

static void run_deferred(struct fg_stream *s)
{
    /* one pass over what was asked: work asked for meanwhile has queued the
     * stream again, for the next pass */
    unsigned todo = s->todo;

    s->todo = 0;
    enter(s);
    {
        if (todo & DO_EVENT) {
            short ev = s->pending_event;
            report(s, ev);
            if (!s->dead && (ev & BEV_EVENT_CONNECTED))
                update_read(s);
        }
        if ((todo & DO_READ_IO) && !s->dead)
            do_read(s);
        if ((todo & DO_FLUSH) && !s->dead)
            do_write(s);
        if ((todo & DO_READ_CB) && !s->dead && s->readcb) {
            s->readcb(s, s->arg);
            if (!s->dead)
                update_read(s);
        }
        if ((todo & DO_WRITE_CB) && !s->dead && s->writecb)
            s->writecb(s, s->arg);
    }
    leave(s);
}

/* The owner took the output buffer and may add to it: write whatever it
 * holds then at the end of this callback (or, outside callbacks, from the
 * loop), in one go. Done here rather than from an evbuffer callback, which
 * ran on every change, our own drains included. */
static void output_may_grow(struct fg_stream *s)
{
    if (s->wev_added || s->connecting || s->handshaking || s->dead || s->dirty)
        return;
    if (s->loop->io_depth > 0) {
        TAILQ_INSERT_TAIL(&s->loop->dirty, s, dirty_link);
        s->dirty = 1;
    } else {
        schedule(s, DO_FLUSH);
    }
}

struct fg_loop *fg_loop_new(struct event_base *base)
{
    struct fg_loop *loop = calloc(1, sizeof(*loop));

    if (!loop)
        return NULL;
    loop->base = base;
    TAILQ_INIT(&loop->dirty);
    TAILQ_INIT(&loop->deferred);
    TAILQ_INIT(&loop->batch);
    event_assign(&loop->defer_ev, base, -1, 0, on_loop_deferred, loop);
    return loop;
}

void fg_loop_set_batching(struct fg_loop *loop, int on)
{
    loop->batching = !!on;
}

void fg_loop_batch_end(struct fg_loop *loop)
{
    if (TAILQ_EMPTY(&loop->batch))
        return;
    /* as one more I/O callback: the writes, and what their callbacks
     * queue, happen in io_leave(), coalescing streams included */
    io_enter(loop);
    loop->in_batch_end = 1;
    while (!TAILQ_EMPTY(&loop->batch)) {
        struct fg_stream *s = TAILQ_FIRST(&loop->batch);
        dirty_remove(s);
        TAILQ_INSERT_TAIL(&loop->dirty, s, dirty_link);
        s->dirty = 1;
    }
    io_leave(loop);
    loop->in_batch_end = 0;
}

void fg_loop_free(struct fg_loop *loop)
{
    if (!loop)
        return;
    event_del(&loop->defer_ev);
    while (loop->npool)
        free(loop->pool[--loop->npool]);
    free(loop);
}

static struct fg_stream *stream_alloc(struct fg_loop *loop, evutil_socket_t fd)
{
    struct event_base *base = loop->base;

    struct fg_stream *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->out = evbuffer_new();
    if (!s->out) {
        free(s);
        return NULL;
    }
    s->loop = loop;
    s->fd = fd;
    s->enabled = EV_WRITE;
    event_assign(&s->rev, base, fd, EV_READ | EV_PERSIST, on_readable, s);
    return s;
}

struct fg_stream *fg_stream_new(struct fg_loop *loop, evutil_socket_t fd, SSL *ssl)
{
    struct fg_stream *s;

    evutil_make_socket_nonblocking(fd);
    s = stream_alloc(loop, fd);
    if (!s)
        return NULL;
    if (ssl) {
        s->ssl = ssl;
        SSL_set_fd(ssl, fd);
        SSL_set_accept_state(ssl);
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        s->handshaking = 1;
        update_read(s);
    }
    return s;
}

struct fg_stream *fg_stream_connect(struct fg_loop *loop, const struct sockaddr *sa,
                                    socklen_t len)
{
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct fg_stream *s;
    int one = 1;

    if (fd < 0)
        return NULL;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s = stream_alloc(loop, fd);
    if (!s) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    s->connecting = 1;
    if (connect(fd, sa, len) == 0) {
        /* loopback may connect at once: still report it from the loop */
        s->connecting = 0;
        s->pending_event = BEV_EVENT_CONNECTED;
        schedule(s, DO_EVENT | DO_FLUSH);
    } else if (errno == EINPROGRESS) {
        arm_write(s);           /* the write timeout bounds the connect */
    } else {
        s->connecting = 0;
        s->failed = 1;
        s->pending_event = BEV_EVENT_ERROR;
        schedule(s, DO_EVENT);
    }
    return s;
}

void fg_stream_free(struct fg_stream *s)
{
    if (s->dead)
        return;
    s->dead = 1;
    if (s->depth > 0) {
        /* inside one of our callbacks: stop everything now, free on return */
        event_del(&s->rev);
        if (s->wev)
            event_del(s->wev);
        s->rev_added = s->wev_added = 0;
        return;
    }
    really_free(s);
}

void fg_stream_setcb(struct fg_stream *s, fg_stream_data_cb readcb, fg_stream_data_cb writecb,
                     fg_stream_event_cb eventcb, void *arg)
{
    s->readcb = readcb;
    s->writecb = writecb;
    s->eventcb = eventcb;
    s->arg = arg;
}

const char *fg_stream_input_data(const struct fg_stream *s, size_t *len)
{
    *len = in_length(s);
    return *len ? s->in_data + s->in_start : NULL;
}

size_t fg_stream_input_length(const struct fg_stream *s) { return in_length(s); }

void fg_stream_input_drain(struct fg_stream *s, size_t n)
{
    size_t len = in_length(s);

    if (n >= len) {
        in_release(s);
        n = len;
    } else {
        s->in_start += (uint32_t)n;
    }
    /* below the read limit again: reading may resume */
    if (s->read_high && len >= s->read_high && len - n < s->read_high)
        update_read(s);
}

struct evbuffer *fg_stream_output(struct fg_stream *s)
{
    output_may_grow(s);
    return s->out;
}
SSL *fg_stream_ssl(const struct fg_stream *s) { return s->ssl; }

void fg_stream_enable(struct fg_stream *s, short what)
{
    short was = s->enabled;

    s->enabled |= what & (EV_READ | EV_WRITE);
    if ((what & EV_READ) && !(was & EV_READ)) {
        update_read(s);
        if (s->ssl && !s->handshaking && SSL_has_pending(s->ssl))
            schedule(s, DO_READ_IO);
    }
    if ((what & EV_WRITE) && !(was & EV_WRITE) && evbuffer_get_length(s->out))
        schedule(s, DO_FLUSH);
}

void fg_stream_disable(struct fg_stream *s, short what)
{
    s->enabled &= ~(what & (EV_READ | EV_WRITE));
    if (what & EV_READ)
        update_read(s);
    if ((what & EV_WRITE) && !s->connecting && !s->handshaking)
        disarm_write(s);
}

void fg_stream_set_timeouts(struct fg_stream *s, unsigned read_ms, unsigned write_ms)
{
    unsigned old_read = s->read_ms, old_write = s->write_ms;
    struct timeval tv;

    s->read_ms = read_ms;
    s->write_ms = write_ms;
    /* A new timeout is a timer change only. Clearing one is not: libevent
     * keeps a persistent event's last timeout (ev_io_timeout) through
     * event_del() and event_add(NULL), and re-arms it the next time the
     * event fires. Only event_assign() forgets it, so a cleared timeout
     * re-assigns the event (not pending: deleted first). */
    if (!read_ms && old_read) {
        if (s->rev_added)
            event_del(&s->rev);
        event_assign(&s->rev, s->loop->base, s->fd, EV_READ | EV_PERSIST, on_readable, s);
        if (s->rev_added)
            event_add(&s->rev, NULL);
    } else if (read_ms && s->rev_added && !(read_ms == old_read && s->in_read_event)) {
        event_add(&s->rev, ms_tv(&tv, read_ms));
    }
    if (s->wev && !write_ms && old_write) {
        if (s->wev_added)
            event_del(s->wev);
        event_assign(s->wev, s->loop->base, s->fd, EV_WRITE | EV_PERSIST, on_writable, s);
        if (s->wev_added)
            event_add(s->wev, NULL);
    } else if (write_ms && s->wev_added) {
        event_add(s->wev, ms_tv(&tv, write_ms));
    }
}

void fg_stream_set_read_high(struct fg_stream *s, size_t high)
{
    s->read_high = high;
    update_read(s);
}

void fg_stream_set_write_low(struct fg_stream *s, size_t low)
{
    s->write_low = low;
}

void fg_stream_set_coalesce(struct fg_stream *s, int on)
{
    s->coalesce = !!on;
}

void fg_stream_trigger(struct fg_stream *s, short what)
{
    if (s->dead)
        return;
    schedule(s, (what & EV_READ ? DO_READ_CB : 0) | (what & EV_WRITE ? DO_WRITE_CB : 0));
}
