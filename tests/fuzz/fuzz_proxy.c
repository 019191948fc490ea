/* libFuzzer harness: a backend's response bytes through the proxy
 * (src/proxy.c) of a real worker.
 *
 * Once, a worker is set up as the daemon sets one up: fg_worker_init() on a
 * configuration parsed by fg_config_parse(), one cleartext listener whose
 * handler is the gateway's own (fg_proxy_handler, as gateway_app in
 * src/daemon.c), and the worker entered where fg_daemon_run() enters it
 * (fg_workers_register, fg_wait_queue_register, fg_stats_register). The
 * configuration has no access, geoip, health_check, outlier_detection or
 * retry section, so nothing else the daemon starts (the key set, GeoIP, the
 * health-check and DNS threads) plays a part, and each request goes to one
 * backend once. That backend is this harness: a listening socket on
 * 127.0.0.1, on a port the kernel chose, written into the configuration.
 * The upstream's "keepalive" is 0, so no backend connection outlives its
 * input. The worker's loop runs here, on this thread, one batch at a time
 * with fg_loop_batch_end() after each, as worker_main() runs it.
 *
 * An input is one client connection and one backend connection:
 *   byte 0     the request (its low 2 bits): HTTP/1.1 GET, POST with a
 *              5-byte body, HEAD (each with "connection: close"), or an
 *              HTTP/2 GET with prior knowledge (preface, SETTINGS and
 *              WINDOW_UPDATE opening the windows, HEADERS, then GOAWAY so
 *              that the connection closes once the stream is answered)
 *   bytes 1, 2 the lengths of the response's first two pieces (0: no cut)
 *   the rest   the backend's response
 * The request is written into a socketpair handed to fg_conn_accept(). When
 * the proxy connects, the harness accepts, reads the request it forwards,
 * writes the response in up to three pieces with loop turns between them,
 * then shuts its side for writing (a body read until EOF ends there). The
 * loop runs until the client connection is gone, for a bounded number of
 * turns; what is still open then is closed as fuzz_h2_frames.c closes it.
 *
 * Beyond "no crash, no leak", every input checks:
 *  - no hang: once the backend has closed, the client connection ends by
 *    itself (no timer is needed for that);
 *  - HTTP/1.1: what the client received parses (llhttp, strict) as at most
 *    one response, status 100..599, with nothing after it;
 *  - a cut response never looks complete: a response the client received
 *    whole (HTTP/1.1 complete, HTTP/2 END_STREAM) that the gateway did not
 *    make itself (its gateway_status counts) was whole in the backend's
 *    bytes (llhttp with the proxy's framing rules);
 *  - a whole response arrives whole: one whole in the backend's bytes (no
 *    trailers, which the proxy may refuse after the head) reaches the
 *    client whole, unless the gateway answered itself;
 *  - HTTP/2: the stream ends (END_STREAM or RST_STREAM) before the
 *    connection does;
 *  - afterwards the backend has no active request left in the balancer, no
 *    pooled connection, and no socket of the input is still open.
 * FG_FUZZ_ECHO=1 in the environment copies what the client received to
 * stderr, and leaves the gateway's warnings on (replaying an input). */
#include "config.h"                     /* _GNU_SOURCE: accept4() */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <llhttp.h>

#include "fg/config.h"
#include "fg/conn.h"
#include "fg/handler.h"
#include "fg/log.h"
#include "fg/stats.h"
#include "fg/stream.h"
#include "fg/wait_queue.h"
#include "fg/wgen.h"
#include "fg/worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TURNS 4000                  /* loop turns per input, at most */
#define HANG_TURNS 1000                 /* after the backend closed */
#define PIECE_TURNS 2                   /* loop turns between two pieces */
#define REQUEST_TURNS 200               /* waiting for the forwarded request */
#define SOCKET_SCAN 64                  /* descriptors looked at for leaks */

static const char config_fmt[] =
    "{ \"workers\": 1,"
    "  \"listeners\": [ { \"address\": \"127.0.0.1:18080\" } ],"
    "  \"upstreams\": { \"u\": { \"keepalive\": 0,"
    "      \"backends\": [ { \"address\": \"127.0.0.1:%u\" } ] } },"
    "  \"routes\": [ { \"match\": { \"path_prefix\": \"/\" }, \"upstream\": \"u\" } ] }";

/* ---- the requests ---------------------------------------------------------- */

enum shape { SHAPE_GET, SHAPE_POST, SHAPE_HEAD, SHAPE_H2_GET };

static const char get_request[] =
    "GET /fuzz HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n\r\n";
static const char post_request[] =
    "POST /fuzz HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n"
    "content-type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
static const char head_request[] =
    "HEAD /fuzz HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n\r\n";
static const unsigned char h2_request[] = {
    'P', 'R', 'I', ' ', '*', ' ', 'H', 'T', 'T', 'P', '/', '2', '.', '0', '\r', '\n',
    '\r', '\n', 'S', 'M', '\r', '\n', '\r', '\n',
    /* SETTINGS: INITIAL_WINDOW_SIZE 2^31-1 (a large response never waits) */
    0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x4, 0x7f, 0xff, 0xff, 0xff,
    /* WINDOW_UPDATE of the connection up to 2^31-1 */
    0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0x00, 0x00,
    /* HEADERS, stream 1, END_STREAM | END_HEADERS: :method GET, :scheme
     * http, :path /fuzz, :authority fuzz (HPACK static table names) */
    0, 0, 15, 0x1, 0x5, 0, 0, 0, 1,
    0x82, 0x86, 0x04, 5, '/', 'f', 'u', 'z', 'z', 0x01, 4, 'f', 'u', 'z', 'z',
    /* GOAWAY (last stream 0, NO_ERROR): nothing more from this client */
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

struct request {
    const void *bytes;
    size_t len;
    size_t body_len;                    /* of the request the backend gets */
};

static struct request request_of(enum shape s)
{
    switch (s) {
    case SHAPE_POST:
        return (struct request){post_request, sizeof post_request - 1, 5};
    case SHAPE_HEAD:
        return (struct request){head_request, sizeof head_request - 1, 0};
    case SHAPE_H2_GET:
        return (struct request){h2_request, sizeof h2_request, 0};
    default:
        return (struct request){get_request, sizeof get_request - 1, 0};
    }
}

/* ---- set-up ------------------------------------------------------------------ */

static const struct fg_app app = {.name = "fleetgate", .handler = &fg_proxy_handler};

static struct fg_worker worker;
static struct fg_worker_listener *listener;
static int echo;                        /* FG_FUZZ_ECHO set */
static int backend_listen_fd;           /* the backend, this harness */
static int first_free_fd;               /* the lowest descriptor free between inputs */

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, err ? err : "failed");
    abort();
}

static int loopback_listen(unsigned *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
        die("listen", strerror(errno));
    if (port)
        *port = ntohs(sin.sin_port);
    return fd;
}

static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        die("open /dev/null", strerror(errno));
    close(fd);
    return fd;
}

static void setup(void)
{
    char text[sizeof config_fmt + 16], *err = NULL;
    struct fg_config *cfg;
    struct fg_worker_update *up;
    unsigned port;

    signal(SIGPIPE, SIG_IGN);
    echo = getenv("FG_FUZZ_ECHO") != NULL;
    if (!echo)
        fg_log_set_level(FG_LOG_ERROR); /* a warning per refused response otherwise */
    backend_listen_fd = loopback_listen(&port);
    snprintf(text, sizeof text, config_fmt, port);
    if (!(cfg = fg_config_parse(text, strlen(text), "fuzz", &err)))
        die("config", err);
    if (!(up = calloc(1, sizeof(*up) + sizeof(up->l[0]))))
        die("update", NULL);
    up->cfg = cfg;                      /* the reference fg_config_parse() gave */
    up->n = 1;
    up->l[0].lc = &cfg->listeners[0];
    up->l[0].handler = &fg_proxy_handler;
    up->l[0].fd = loopback_listen(NULL);    /* nothing connects to it */
    if (fg_worker_init(&worker, 0, up, &app, &err) < 0)
        die("worker", err);
    fg_worker_update_free(up);
    if (!(listener = TAILQ_FIRST(&worker.listeners)))
        die("worker", "no listener");
    fg_wait_queue_register(&worker, 1);
    fg_workers_register(&worker, 1);
    fg_stats_register(&worker, 1);
    fg_loop_set_batching(worker.loop, 1);
    first_free_fd = lowest_free_fd();
}

/* ---- the backend's side ------------------------------------------------------ */

struct backend {
    int fd;                             /* the proxy's connection, accepted; -1 before */
    const uint8_t *resp;                /* what it answers */
    size_t len, sent;
    size_t cut[2];                      /* where a piece ends */
    size_t want_body;                   /* request body bytes to read after the head */
    size_t got, head_end;               /* request bytes read; where its head ends (0: not yet) */
    char seen[4];                       /* the last bytes read, to find "\r\n\r\n" */
    unsigned turns;                     /* since accepted */
    unsigned pause;                     /* turns to let pass before the next piece */
    int request_read, closed;
};

/* Looks for the end of the request head in what was just read. */
static void scan_request(struct backend *b, const char *buf, size_t n)
{
    for (size_t i = 0; i < n && !b->head_end; i++) {
        memmove(b->seen, b->seen + 1, 3);
        b->seen[3] = buf[i];
        if (b->got + i + 1 >= 4 && memcmp(b->seen, "\r\n\r\n", 4) == 0)
            b->head_end = b->got + i + 1;
    }
    b->got += n;
    if (b->head_end && b->got >= b->head_end + b->want_body)
        b->request_read = 1;
}

/* Reads what the proxy sent (the request, then nothing) and drops it. */
static void backend_read(struct backend *b)
{
    char buf[4096];
    ssize_t n;

    while ((n = read(b->fd, buf, sizeof buf)) > 0)
        scan_request(b, buf, (size_t)n);
    if (n == 0 || b->turns > REQUEST_TURNS)
        b->request_read = 1;            /* the proxy gave up, or never will send it all */
}

static size_t next_cut(const struct backend *b)
{
    for (int i = 0; i < 2; i++)
        if (b->cut[i] > b->sent)
            return b->cut[i];
    return b->len;
}

/* Writes the next piece of the response, or ends it. */
static void backend_write(struct backend *b)
{
    size_t end = next_cut(b);
    ssize_t n;

    if (b->pause) {
        b->pause--;
        return;
    }
    if (b->sent < end) {
        n = write(b->fd, b->resp + b->sent, end - b->sent);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            b->sent = b->len;           /* the proxy closed: nothing more to say */
        else if (n > 0)
            b->sent += (size_t)n;
        if (b->sent == end)
            b->pause = PIECE_TURNS;
        return;
    }
    shutdown(b->fd, SHUT_WR);
    b->closed = 1;
}

/* One turn of the backend: accept the proxy, read, answer. */
static void backend_step(struct backend *b)
{
    if (b->fd < 0) {
        b->fd = accept4(backend_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (b->fd < 0)
            return;
    }
    b->turns++;
    backend_read(b);
    if (b->request_read && !b->closed)
        backend_write(b);
}

/* Connections the proxy made that the harness has not taken (none
 * expected: one backend attempt per request), then its own. */
static void backend_close(struct backend *b)
{
    int fd;

    while ((fd = accept4(backend_listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close(fd);
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
}

/* ---- the client's side ------------------------------------------------------- */

struct client {
    int fd;
    uint8_t *got;                       /* everything the gateway wrote */
    size_t len, cap;
    int eof;
};

static void client_keep(struct client *c, const char *buf, size_t n)
{
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        uint8_t *p;
        while (cap < c->len + n)
            cap *= 2;
        if (!(p = realloc(c->got, cap)))
            die("client", "out of memory");
        c->got = p;
        c->cap = cap;
    }
    memcpy(c->got + c->len, buf, n);
    c->len += n;
}

static void client_drain(struct client *c)
{
    char buf[16384];
    ssize_t n;

    while (!c->eof && (n = read(c->fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->eof = 1;
            return;
        }
        if (echo)
            fwrite(buf, 1, (size_t)n, stderr);
        client_keep(c, buf, (size_t)n);
    }
    c->eof = 1;
}

/* ---- what a response looked like ------------------------------------------- */

/* One response read with llhttp: the proxy's framing rules (src/proxy.c:
 * 1xx skipped but 101 refused; a status outside 100..599 refused; a 1xx,
 * a 204, a 304 and a response to HEAD end with their head whatever their
 * framing headers say, RFC 9112 6.3), stopping after the first final
 * response. */
struct reading {
    int head_only;
    int status;                         /* of the final response; 0 before */
    int complete, trailers, bad_status;
};

static int r_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct reading *r = p->data;

    (void)at;
    (void)len;
    if (r->status)
        r->trailers = 1;
    return 0;
}

static int r_headers_complete(llhttp_t *p)
{
    struct reading *r = p->data;
    int status = p->status_code;

    if (status < 100 || status > 599 || status == 101) {
        r->bad_status = 1;
        return -1;
    }
    if (status < 200)
        return 1;                       /* an interim response has no body */
    r->status = status;
    return r->head_only || status == 204 || status == 304 ? 1 : 0;
}

static int r_message_complete(llhttp_t *p)
{
    struct reading *r = p->data;

    if (!r->status)
        return 0;
    r->complete = 1;
    return HPE_PAUSED;
}

static llhttp_settings_t reading_settings;

/* Reads <len> bytes that ended with the connection (<eof>); returns the
 * bytes after the response's end (0 when it did not end), or -1 when they
 * are not HTTP/1.1 at all. */
static long read_response(struct reading *r, const uint8_t *bytes, size_t len, int eof)
{
    llhttp_t p;
    llhttp_errno_t err;

    if (!reading_settings.on_headers_complete) {
        llhttp_settings_init(&reading_settings);
        reading_settings.on_header_field = r_header_field;
        reading_settings.on_headers_complete = r_headers_complete;
        reading_settings.on_message_complete = r_message_complete;
    }
    llhttp_init(&p, HTTP_RESPONSE, &reading_settings);
    p.data = r;
    if (r->head_only)
        p.method = HTTP_HEAD;
    /* (nothing received: no pointer to parse from) */
    err = len ? llhttp_execute(&p, (const char *)bytes, len) : HPE_OK;
    if (err == HPE_PAUSED && r->complete)
        return (long)(len - (size_t)((const uint8_t *)llhttp_get_error_pos(&p) - bytes));
    if (err != HPE_OK)
        return -1;
    if (eof && r->status && llhttp_finish(&p) == HPE_PAUSED && r->complete)
        return 0;                       /* a body read until the connection closed */
    return 0;
}

/* HTTP/2: how stream 1 ended in what the gateway wrote: 1 END_STREAM, 2
 * RST_STREAM, 0 not. */
static int h2_stream_end(const uint8_t *b, size_t len)
{
    for (size_t off = 0; off + 9 <= len;) {
        size_t flen = (size_t)b[off] << 16 | (size_t)b[off + 1] << 8 | b[off + 2];
        unsigned type = b[off + 3], flags = b[off + 4];
        uint32_t sid = ((uint32_t)b[off + 5] << 24 | (uint32_t)b[off + 6] << 16 |
                        (uint32_t)b[off + 7] << 8 | b[off + 8]) & 0x7fffffffu;
        if (sid == 1 && (type == 0 || type == 1) && (flags & 0x1))
            return 1;
        if (sid == 1 && type == 3)
            return 2;
        off += 9 + flen;
    }
    return 0;
}

static uint64_t gateway_answers(void)
{
    uint64_t n = 0;

    for (unsigned s = 0; s < 600; s++)
        n += atomic_load_explicit(&worker.stats->gateway_status[s], memory_order_relaxed);
    return n;
}

/* ---- the checks ---------------------------------------------------------------- */

static void violated(const char *what, const struct client *c)
{
    fprintf(stderr, "fuzz_proxy: %s\n", what);
    if (c && !echo)                     /* (echo showed it already) */
        fwrite(c->got, 1, c->len, stderr);
    abort();
}

/* Whether the client received a whole response (HTTP/1.1 checked as it goes). */
static int client_got_whole(enum shape shape, const struct client *c, int ended)
{
    struct reading r = {.head_only = shape == SHAPE_HEAD};
    long after;

    if (shape == SHAPE_H2_GET) {
        int end = h2_stream_end(c->got, c->len);
        if (ended && !end)
            violated("HTTP/2: the connection ended before its stream", c);
        return end == 1;
    }
    after = read_response(&r, c->got, c->len, ended);
    if (after < 0 || r.bad_status)
        violated("the client received something that is not one HTTP/1.1 response", c);
    if (after > 0)
        violated("the client received bytes after the response", c);
    return r.complete;
}

static int backend_sent_whole(enum shape shape, const struct backend *b, int *trailers)
{
    struct reading r = {.head_only = shape == SHAPE_HEAD};

    if (b->fd < 0)
        return 0;                       /* never asked */
    read_response(&r, b->resp, b->len, 1);
    *trailers = r.trailers;
    return r.complete;
}

static void check_responses(enum shape shape, const struct backend *b, const struct client *c,
                            int ended, int gateway_answered)
{
    int trailers = 0;
    int client_whole = client_got_whole(shape, c, ended);
    int backend_whole = backend_sent_whole(shape, b, &trailers);

    if (!ended || gateway_answered)
        return;
    if (client_whole && !backend_whole)
        violated("a response cut or refused at the backend reached the client whole", c);
    if (backend_whole && !trailers && !client_whole)
        violated("a whole response from the backend reached the client cut", c);
}

/* Nothing of this input stays: no request counted on the backend, no
 * pooled connection, no socket open. */
static void check_nothing_left(void)
{
    const struct fg_backend *be = &worker.cfg->upstreams[0].backends[0];
    struct stat st;

    if (atomic_load(&be->st->active))
        violated("the backend still counts an active request", NULL);
    if (worker.gen->pools[0][0]->nidle)
        violated("a backend connection stayed in the pool (keepalive is 0)", NULL);
    for (int fd = first_free_fd; fd < first_free_fd + SOCKET_SCAN; fd++)
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
            violated("a socket of the input is still open", NULL);
}

/* ---- one input ----------------------------------------------------------------- */

static void connect_client(struct client *c, const struct request *rq)
{
    struct sockaddr_in peer;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", strerror(errno));
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_addr.s_addr = htonl(0xc0000201);   /* 192.0.2.1 */
    peer.sin_port = htons(40000);
    fg_conn_accept(NULL, sv[0], (struct sockaddr *)&peer, sizeof peer, listener);
    /* a few hundred bytes: the socket's buffer takes them at once */
    if (write(sv[1], rq->bytes, rq->len) != (ssize_t)rq->len)
        die("client write", strerror(errno));
    c->fd = sv[1];
}

/* Runs the loop until the client connection is gone; 0 if it still is
 * after the backend had closed for HANG_TURNS turns, or after MAX_TURNS. */
static int run(struct backend *b, struct client *c)
{
    unsigned since_close = 0;

    for (int turns = 0; turns < MAX_TURNS; turns++) {
        backend_step(b);
        event_base_loop(worker.base, EVLOOP_NONBLOCK);
        fg_loop_batch_end(worker.loop);
        client_drain(c);
        if (!worker.nconns)
            return 1;
        if (b->closed && ++since_close > HANG_TURNS)
            violated("the client connection did not end after the backend closed", c);
    }
    return 0;
}

static void close_what_is_left(void)
{
    /* still open: closed as a worker shutting down would */
    while (!TAILQ_EMPTY(&worker.conns))
        TAILQ_FIRST(&worker.conns)->close_now(TAILQ_FIRST(&worker.conns));
    event_base_loop(worker.base, EVLOOP_NONBLOCK);
    fg_loop_batch_end(worker.loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    enum shape shape;
    struct request rq;
    struct backend b = {.fd = -1};
    struct client c = {.fd = -1};
    uint64_t answered;
    int ended;

    if (size < 3)
        return 0;
    if (!ready) {
        setup();
        ready = 1;
    }
    shape = (enum shape)(data[0] & 3);
    rq = request_of(shape);
    b.resp = data + 3;
    b.len = size - 3;
    b.cut[0] = data[1] < b.len ? data[1] : b.len;
    b.cut[1] = b.cut[0] + data[2] < b.len ? b.cut[0] + data[2] : b.len;
    b.want_body = rq.body_len;
    answered = gateway_answers();

    connect_client(&c, &rq);
    ended = run(&b, &c);
    close_what_is_left();
    client_drain(&c);
    check_responses(shape, &b, &c, ended, gateway_answers() != answered);
    backend_close(&b);
    close(c.fd);
    check_nothing_left();
    free(c.got);
    return 0;
}
