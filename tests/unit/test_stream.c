/* fg_stream over socketpairs: speculative writes, reads, the read limit,
 * triggers, timeouts, EOF, and freeing a stream from its own callback. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fg/stream.h"
#include "unit.h"

struct probe {
    struct event_base *base;
    struct fg_stream *s;
    size_t got;                 /* bytes drained by the read callback */
    int reads, writes, events;
    short last_event;
    int drain;                  /* read callback drains the input */
    int free_on_read;           /* read callback frees the stream */
    int stop_at;                /* loopbreak once got >= stop_at */
};

static void on_read(struct fg_stream *s, void *arg)
{
    struct probe *p = arg;
    p->reads++;
    if (p->drain) {
        p->got += fg_stream_input_length(s);
        fg_stream_input_drain(s, fg_stream_input_length(s));
    }
    if (p->free_on_read) {
        fg_stream_free(s);
        p->s = NULL;
        event_base_loopbreak(p->base);
        return;
    }
    if (p->stop_at && p->got >= (size_t)p->stop_at)
        event_base_loopbreak(p->base);
}

static void on_write(struct fg_stream *s, void *arg)
{
    ((struct probe *)arg)->writes++;
}

static void on_event(struct fg_stream *s, short what, void *arg)
{
    struct probe *p = arg;

    p->events++;
    p->last_event = what;
    event_base_loopbreak(p->base);
}

static void run_for(struct event_base *base, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void pair(int fds[2])
{
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
}

static void test_write_then_read(void)
{
    struct event_base *base = event_base_new();
    struct fg_loop *loop = fg_loop_new(base);
    int fds[2];
    struct probe a = { .base = base }, b = { .base = base, .drain = 1, .stop_at = 100000 };
    char *data = malloc(100000);

    pair(fds);
    memset(data, 'x', 100000);
    a.s = fg_stream_new(loop, fds[0], NULL);
    b.s = fg_stream_new(loop, fds[1], NULL);
    fg_stream_setcb(a.s, NULL, on_write, on_event, &a);
    fg_stream_setcb(b.s, on_read, NULL, on_event, &b);
    fg_stream_enable(b.s, EV_READ);
    /* queued outside any callback: flushed from the loop, then the write
     * callback reports the output drained */
    evbuffer_add(fg_stream_output(a.s), data, 100000);
    run_for(base, 2000);
    CHECK_UINT(b.got, 100000);
    CHECK(a.writes >= 1);
    CHECK_UINT(evbuffer_get_length(fg_stream_output(a.s)), 0);
    CHECK_INT(a.events + b.events, 0);
    fg_stream_free(a.s);
    fg_stream_free(b.s);
    fg_loop_free(loop);
    event_base_free(base);
    free(data);
}

/* The input is one flat buffer kept across reads: a reader that consumes
 * a little at a time (bytes kept move to the front) or nothing at all for
 * a while (the buffer grows past one block) sees every byte, in order. */
struct order_probe {
    struct event_base *base;
    size_t checked, total;
    size_t hold_until;          /* consume nothing until this much is in */
    int bad, max_seen_over_block;
};

static unsigned char pattern(size_t i) { return (unsigned char)(i % 251); }

static void on_read_order(struct fg_stream *s, void *arg)
{
    struct order_probe *o = arg;
    size_t n, take;
    const unsigned char *d = (const unsigned char *)fg_stream_input_data(s, &n);

    if (n > 64 * 1024)
        o->max_seen_over_block = 1;
    if (o->checked + n < o->hold_until && o->checked + n < o->total)
        return;                 /* keep all of it for now */
    take = n > 7 ? n / 2 + 3 : n;               /* leave some behind */
    for (size_t i = 0; i < take; i++)
        if (d[i] != pattern(o->checked + i) && o->bad++ < 3)
            CHECK_MSG(0, "byte %zu: 0x%02x, want 0x%02x", o->checked + i, d[i],
                      pattern(o->checked + i));
    o->checked += take;
    fg_stream_input_drain(s, take);
    if (o->checked >= o->total)
        event_base_loopbreak(o->base);
    else if (fg_stream_input_length(s))
        fg_stream_trigger(s, EV_READ);          /* what is left, from the loop */
}

static void test_input_order_across_reads(void)
{
    struct event_base *base = event_base_new();
    struct fg_loop *loop = fg_loop_new(base);
    int fds[2];
    const size_t total = 300000;
    struct probe a = { .base = base };
    struct order_probe o = { .base = base, .total = total, .hold_until = 150000 };
    unsigned char *data = malloc(total);

    pair(fds);
    for (size_t i = 0; i < total; i++)
        data[i] = pattern(i);
    a.s = fg_stream_new(loop, fds[0], NULL);
    struct fg_stream *b = fg_stream_new(loop, fds[1], NULL);
    fg_stream_setcb(a.s, NULL, on_write, on_event, &a);
    fg_stream_setcb(b, on_read_order, NULL, NULL, &o);
    fg_stream_enable(b, EV_READ);
    evbuffer_add(fg_stream_output(a.s), data, total);
    run_for(base, 5000);
    CHECK_UINT(o.checked, total);
    CHECK_INT(o.bad, 0);
    CHECK(o.max_seen_over_block);       /* held 150 kB: it grew past a block */
    CHECK_UINT(fg_stream_input_length(b), 0);
    fg_stream_free(a.s);
    fg_stream_free(b);
    fg_loop_free(loop);
    event_base_free(base);
    free(data);
}

static void test_read_high_pauses_and_resumes(void)
{
    struct event_base *base = event_base_new();
    struct fg_loop *loop = fg_loop_new(base);
    int fds[2];
    struct probe b = { .base = base };
    char buf[8192];

    pair(fds);
    memset(buf, 'y', sizeof(buf));
    b.s = fg_stream_new(loop, fds[1], NULL);
    fg_stream_setcb(b.s, on_read, NULL, on_event, &b);
    fg_stream_set_read_high(b.s, 1000);
    fg_stream_enable(b.s, EV_READ);
    CHECK(write(fds[0], buf, sizeof(buf)) == (ssize_t)sizeof(buf));
    run_for(base, 100);
    /* the callback does not drain: reading stops at the limit */
    CHECK_UINT(fg_stream_input_length(b.s), 1000);
    CHECK_INT(b.reads, 1);
    /* draining below the limit resumes reading */
    b.drain = 1;
    fg_stream_input_drain(b.s, 1000);
    b.got = 1000;
    b.stop_at = (int)sizeof(buf);
    run_for(base, 1000);
    CHECK_UINT(b.got, sizeof(buf));
    fg_stream_free(b.s);
    close(fds[0]);
    fg_loop_free(loop);
    event_base_free(base);
}

static void test_trigger_and_eof(void)
{
    struct event_base *base = event_base_new();
    struct fg_loop *loop = fg_loop_new(base);
    int fds[2];
    struct probe b = { .base = base };

    pair(fds);
    b.s = fg_stream_new(loop, fds[1], NULL);
    fg_stream_setcb(b.s, on_read, on_write, on_event, &b);
    fg_stream_enable(b.s, EV_READ);
    fg_stream_trigger(b.s, EV_READ | EV_WRITE);
    CHECK_INT(b.reads, 0);              /* never from inside the call */
    run_for(base, 50);
    CHECK_INT(b.reads, 1);
    CHECK_INT(b.writes, 1);
    close(fds[0]);
    run_for(base, 1000);
    CHECK_INT(b.events, 1);
    CHECK(b.last_event & BEV_EVENT_EOF);
    CHECK(b.last_event & BEV_EVENT_READING);
    fg_stream_free(b.s);
    fg_loop_free(loop);
    event_base_free(base);
}

static void test_read_timeout(void)
{
    struct event_base *base = event_base_new();
    struct fg_loop *loop = fg_loop_new(base);
    int fds[2];
    struct probe b = { .base = base };

    pair(fds);
    b.s = fg_stream_new(loop, fds[1], NULL);
    fg_stream_setcb(b.s, on_read, NULL, on_event, &b);
    fg_stream_enable(b.s, EV_READ);
    fg_stream_set_timeouts(b.s, 50, 0);
    run_for(base, 2000);
    CHECK_INT(b.events, 1);
    CHECK_INT(b.last_event, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
    /* clearing the timeout removes the one scheduled */
    b.events = 0;
    fg_stream_enable(b.s, EV_READ);
    fg_stream_set_timeouts(b.s, 50, 0);
    fg_stream_set_timeouts(b.s, 0, 0);
    run_for(base, 200);
    CHECK_INT(b.events, 0);
    fg_stream_free(b.s);
    close(fds[0]);
    fg_loop_free(loop);
    event_base_free(base);
}

/* Clearing a read timeout from inside the read callback (as HTTP/2 does
 * when a stream opens) must stay cleared when more data comes later:
 * libevent re-arms a persistent event's last timeout each time it fires
 * unless the event is re-assigned. */
struct clear_probe {
    struct probe p;
    int cleared;
};

static void on_read_clear(struct fg_stream *s, void *arg)
{
    struct clear_probe *c = arg;
    c->p.reads++;
    fg_stream_input_drain(s, fg_stream_input_length(s));
    if (!c->cleared) {
        fg_stream_set_timeouts(s, 0, 0);
        c->cleared = 1;
    }
}

static void on_event_clear(struct fg_stream *s, short what, void *arg)
{
    struct clear_probe *c = arg;

    c->p.events++;
    c->p.last_event = what;
}

static void send_later(evutil_socket_t unused, short what, void *arg)
{
    CHECK(write(*(int *)arg, "y", 1) == 1);
}

static void test_timeout_cleared_in_callback(void)
{
    struct event_base *base = event_base_new();
    struct fg_loop *loop = fg_loop_new(base);
    int fds[2];
    struct clear_probe c = { .p = { .base = base } };
    struct timeval later = { 0, 20 * 1000 };

    pair(fds);
    c.p.s = fg_stream_new(loop, fds[1], NULL);
    fg_stream_setcb(c.p.s, on_read_clear, NULL, on_event_clear, &c);
    fg_stream_enable(c.p.s, EV_READ);
    fg_stream_set_timeouts(c.p.s, 60, 0);
    CHECK(write(fds[0], "x", 1) == 1);             /* read 1: clears the timeout */
    event_base_once(base, -1, EV_TIMEOUT, send_later, &fds[0], &later); /* read 2 */
    run_for(base, 300);
    CHECK_INT(c.p.reads, 2);
    CHECK_INT(c.p.events, 0);                       /* no stale 60 ms timeout */
    fg_stream_free(c.p.s);
    close(fds[0]);
    fg_loop_free(loop);
    event_base_free(base);
}

static void test_free_inside_callback(void)
{
    struct event_base *base = event_base_new();
    struct fg_loop *loop = fg_loop_new(base);
    int fds[2];
    struct probe b = { .base = base, .free_on_read = 1 };

    pair(fds);
    b.s = fg_stream_new(loop, fds[1], NULL);
    fg_stream_setcb(b.s, on_read, NULL, on_event, &b);
    fg_stream_enable(b.s, EV_READ);
    CHECK(write(fds[0], "hello", 5) == 5);
    run_for(base, 1000);
    CHECK(b.s == NULL);                 /* freed from its own callback: no crash, no leak */
    CHECK_INT(b.reads, 1);
    close(fds[0]);
    fg_loop_free(loop);
    event_base_free(base);
}

static void test_connect_refused(void)
{
    struct event_base *base = event_base_new();
    struct fg_loop *loop = fg_loop_new(base);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof(sin);
    struct probe p = { .base = base };

    /* a port that was just free: bound, never listened on, then closed */
    sin.sin_addr.s_addr = htonl(0x7f000001);
    CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    close(fd);
    p.s = fg_stream_connect(loop, (struct sockaddr *)&sin, sizeof(sin));
    if (CHECK(p.s != NULL)) {
        fg_stream_setcb(p.s, NULL, NULL, on_event, &p);
        CHECK_INT(p.events, 0);         /* reported from the loop only */
        run_for(base, 2000);
        CHECK_INT(p.events, 1);
        CHECK(p.last_event & BEV_EVENT_ERROR);
        fg_stream_free(p.s);
    }
    fg_loop_free(loop);
    event_base_free(base);
}

int main(void)
{
    UNIT_RUN(test_write_then_read);
    UNIT_RUN(test_input_order_across_reads);
    UNIT_RUN(test_read_high_pauses_and_resumes);
    UNIT_RUN(test_trigger_and_eof);
    UNIT_RUN(test_read_timeout);
    UNIT_RUN(test_timeout_cleared_in_callback);
    UNIT_RUN(test_free_inside_callback);
    UNIT_RUN(test_connect_refused);
    return unit_summary();
}
