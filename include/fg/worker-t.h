/* A worker thread: its own event loop, listening sockets (SO_REUSEPORT),
 * backend connection pools and balancer state. Nothing here is shared with
 * other workers except through the config snapshot's atomics. */
#ifndef FG_WORKER_T_H
#define FG_WORKER_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/queue.h>
#include <openssl/ssl.h>

#include "fg/access_log.h"
#include "fg/balancer.h"
#include "fg/config-t.h"
#include "fg/exchange-t.h"
#include "fg/request_id.h"
#include "fg/wgen.h"

struct event_base;
struct event;
struct evconnlistener;
struct fg_uconn;
struct fg_loop;
struct fg_app;
struct fg_handler_ops;

/* Every client connection a worker holds, whatever its protocol phase, so
 * that stopping the worker can close each one and leak nothing. */
struct fg_client_info;
struct fg_client_conn {
    TAILQ_ENTRY(fg_client_conn) link;
    /* its place in the connection limits, given back when it is
     * unregistered (NULL or not counted: nothing to give) */
    const struct fg_client_info *client;
    void (*close_now)(struct fg_client_conn *c);
    /* graceful shutdown: finish what is in progress, take nothing new, then
     * close (NULL: close now) */
    void (*drain)(struct fg_client_conn *c);
};
TAILQ_HEAD(fg_client_conn_list, fg_client_conn);
TAILQ_HEAD(fg_exchange_list, fg_exchange);

/* A listening socket of the worker. What a connection needs of it is
 * copied here, not pointed to in a configuration, so a reload can change or
 * remove it while a connection accepted from it is still being set up (a
 * PROXY header or a TLS handshake): it is freed with its last reference. */
struct fg_worker_listener {
    TAILQ_ENTRY(fg_worker_listener) link;
    struct fg_worker *worker;
    struct fg_addr addr;
    int proxy_protocol;
    SSL_CTX *ssl_ctx;                   /* one reference; NULL: cleartext */
    const struct fg_handler_ops *handler;
    struct evconnlistener *evl;         /* NULL once closed */
    unsigned refs;                      /* 1 while listening, + connections being set up */
};
TAILQ_HEAD(fg_listener_list, fg_worker_listener);

/* What a reload hands a worker (reload.c): the configuration to take, and
 * for each of its listeners (the admin listener last), a socket bound for
 * it or -1 (keep the one listening on that address), with a reference to
 * its TLS context. */
struct fg_worker_update {
    uint64_t seq;                       /* the reload's number */
    const struct fg_config *cfg;        /* one reference, for the worker */
    unsigned n;
    struct fg_worker_update_listener {
        const struct fg_listener_cfg *lc;
        const struct fg_handler_ops *handler;
        int fd;
        SSL_CTX *ssl_ctx;
    } l[];
};

struct fg_keyset;
struct fg_worker_stats;
struct fg_geoip;

struct fg_worker {
    unsigned id;
    /* the key set this worker is about to look a key up in (access.c) */
    _Atomic(struct fg_keyset *) keyset_hazard;
    /* the GeoIP handle it is about to look an address up in (client_geo.c) */
    _Atomic(struct fg_geoip *) geo_hazard;
    struct fg_worker_stats *stats;      /* counts for /metrics (stats.c) */
    struct fg_access_log_buf access_log;    /* lines not written yet */
    pthread_t thread;
    struct event_base *base;
    struct fg_loop *loop;               /* what this thread's fg_streams share */
    const struct fg_config *cfg;        /* the current generation's */
    struct fg_wgen *gen;                /* the current generation: new exchanges */
    struct fg_wgen_list gens;           /* every generation still in use */
    /* a reload's update, taken on the next kick (reload.c), and the
     * sequence number of the last one taken */
    _Atomic(struct fg_worker_update *) update;
    _Atomic uint64_t applied_seq;
    _Atomic unsigned waiting;           /* exchanges in this worker's wait queues */
    const struct fg_app *app;           /* what the listeners serve */
    void *app_worker;                   /* the application's per-worker state */
    int app_inited;                     /* app->worker_init succeeded */
    struct fg_listener_list listeners;  /* open ones */
    int stop_fd;                        /* eventfd: the main thread asks us to stop */
    struct event *stop_ev;
    int kick_fd;                        /* eventfd: a backend slot freed; drain wait queues */
    struct event *kick_ev;
    _Atomic int kick_pending;           /* a kick is on its way: no second write */
    _Atomic int stop_mode;              /* what stop_fd asks: 1 drain, 2 stop now */
    _Atomic int exited;                 /* the thread's loop has returned */
    int draining;                       /* worker thread: no listeners, closing as conns finish */
    /* accepting paused (conn_limit.c: the global limit reached, or out of
     * descriptors): listeners disabled until the timer finds room */
    int accept_paused;
    uint64_t accept_resume_ms;          /* not before (descriptors) */
    struct event *accept_timer;
    _Atomic int pause_asked;            /* another worker filled the last place */

    struct fg_rng rng;
    struct fg_exchange_list free_exchanges;
    unsigned nfree_exchanges;

    unsigned mirrors_in_flight;         /* copies of requests sent by this worker, unfinished */
    struct fg_exchange_list mirrors;    /* those copies (closed when the worker stops) */
    struct fg_client_conn_list conns;   /* client connections open */
    /* request bodies being received, and the timer that checks their rate
     * (body_clock.c); the timer runs only while the list is not empty */
    struct fg_exchange_list body_watch;
    struct event *body_tick;
    /* HTTP/2 responses being sent, and the timer that finds stalled ones
     * (send_clock.c); it runs only while the list is not empty */
    struct fg_exchange_list send_watch;
    struct event *send_tick;
    unsigned nconns;

    /* HTTP/2: the frame buffer every nghttp2 session of this worker shares
     * (see h2_front.c), and whether a session is being created right now */
    void *h2_framebuf;
    void *h2_nv;                        /* nghttp2_nv scratch (h2_front.c nv_room()) */
    size_t h2_nv_cap;
    int h2_creating;
};

#endif
