/* libFuzzer harness: the client side of a real worker fed raw bytes.
 *
 * Once, a worker is set up as the daemon sets one up (fg_worker_init() on a
 * configuration parsed by fg_config_parse(), one cleartext listener) but
 * with a handler of this file's own that answers every complete request
 * with 200 "ok", so that nothing leaves the process; its event loop is run
 * here, on this thread. Each input is one client connection: a socketpair
 * handed to fg_conn_accept() as if accepted, the input written to it, then
 * the client's end shut for writing and the loop run until the connection
 * is gone (what the gateway writes back is read and dropped). A connection
 * still open after that is closed by the harness. FG_FUZZ_ECHO=1 in the
 * environment copies the gateway's replies to stderr (replaying an input).
 *
 * Without FUZZ_FRONT_RAW the input is prefixed with the HTTP/2 client
 * preface, so that every input reaches the HTTP/2 front (src/h2_front.c,
 * nghttp2 with the front's callbacks and flood limits) as frames; with it
 * (fuzz_h1_front.c) the input is sent as it is, and the front is chosen the
 * way the gateway chooses it (mostly HTTP/1.1, src/h1_front.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "fg/config.h"
#include "fg/conn.h"
#include "fg/exchange.h"
#include "fg/handler.h"
#include "fg/worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_text[] =
    "{ \"workers\": 1,"
    "  \"listeners\": [ { \"address\": \"127.0.0.1:18080\" } ],"
    "  \"upstreams\": { \"u\": { \"backends\": [ { \"address\": \"127.0.0.1:9\" } ] } },"
    "  \"routes\": [ { \"match\": { \"path_prefix\": \"/\" }, \"upstream\": \"u\" } ] }";

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void h_start(struct fg_exchange *x) {}
static int h_body(struct fg_exchange *x, const char *data, size_t len) { return 0; }
static void h_end(struct fg_exchange *x) { fg_exchange_reply(x, 200, "text/plain", "ok", 2); }
static void h_resume(struct fg_exchange *x) {}
static void h_release(struct fg_exchange *x) {}

static const struct fg_handler_ops handler = {
    .start = h_start, .request_body = h_body, .request_end = h_end,
    .resume = h_resume, .release = h_release,
};
static const struct fg_app app = {.name = "fuzz", .handler = &handler};

static struct fg_worker worker;
static int echo;                        /* FG_FUZZ_ECHO set: the replies go to stderr */
static struct fg_worker_listener *listener;

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, err ? err : "failed");
    abort();
}

static void setup(void)
{
    char *err = NULL;
    struct fg_config *cfg;
    struct fg_worker_update *up;
    struct sockaddr_in sin;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    echo = getenv("FG_FUZZ_ECHO") != NULL;
    if (!(cfg = fg_config_parse(config_text, strlen(config_text), "fuzz", &err)))
        die("config", err);
    if (!(up = calloc(1, sizeof(*up) + sizeof(up->l[0]))))
        die("update", NULL);
    up->cfg = cfg;                      /* the reference fg_config_parse() gave */
    up->n = 1;
    up->l[0].lc = &cfg->listeners[0];
    up->l[0].handler = &handler;
    /* a socket of its own, on a free port: nothing connects to it */
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0)
        die("listen", strerror(errno));
    up->l[0].fd = fd;
    if (fg_worker_init(&worker, 0, up, &app, &err) < 0)
        die("worker", err);
    fg_worker_update_free(up);
    if (!(listener = TAILQ_FIRST(&worker.listeners)))
        die("worker", "no listener");
}

/* Reads and drops what the gateway wrote; 0 at EOF or an error. */
static int drain(int fd)
{
    char buf[16384];
    ssize_t n;

    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (echo)
            fwrite(buf, 1, (size_t)n, stderr);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct sockaddr_in peer;
    int sv[2], open_ = 1;
    size_t off = 0, total;
    unsigned char *msg;

    if (!ready) {
        setup();
        ready = 1;
    }
#ifdef FUZZ_FRONT_RAW
    total = size;
    if (!(msg = malloc(total ? total : 1)))
        return 0;
    memcpy(msg, data, size);
#else
    total = sizeof preface - 1 + size;
    if (!(msg = malloc(total)))
        return 0;
    memcpy(msg, preface, sizeof preface - 1);
    memcpy(msg + sizeof preface - 1, data, size);
#endif
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", strerror(errno));
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_addr.s_addr = htonl(0xc0000201);   /* 192.0.2.1 */
    peer.sin_port = htons(40000);
    fg_conn_accept(NULL, sv[0], (struct sockaddr *)&peer, sizeof peer, listener);

    for (int turns = 0; turns < 4000; turns++) {
        if (off < total) {
            ssize_t n = write(sv[1], msg + off, total - off);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                off = total;            /* the gateway closed */
            if (off == total)
                shutdown(sv[1], SHUT_WR);
        }
        event_base_loop(worker.base, EVLOOP_NONBLOCK);
        if (open_ && !drain(sv[1]))
            open_ = 0;
        if (!worker.nconns && off == total)
            break;
    }
    /* still open (waiting on a timer): closed as a worker shutting down would */
    while (!TAILQ_EMPTY(&worker.conns))
        TAILQ_FIRST(&worker.conns)->close_now(TAILQ_FIRST(&worker.conns));
    event_base_loop(worker.base, EVLOOP_NONBLOCK);
    close(sv[1]);
    free(msg);
    return 0;
}
