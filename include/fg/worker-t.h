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

struct event_base;
struct event;
struct evconnlistener;
struct fg_uconn;
struct fg_loop;
struct fg_app;
struct fg_handler_ops;

TAILQ_HEAD(fg_uconn_list, fg_uconn);

/* Every client connection a worker holds, whatever its protocol phase, so
 * that stopping the worker can close each one and leak nothing. */
struct fg_client_conn {
    TAILQ_ENTRY(fg_client_conn) link;
    void (*close_now)(struct fg_client_conn *c);
    /* graceful shutdown: finish what is in progress, take nothing new, then
     * close (NULL: close now) */
    void (*drain)(struct fg_client_conn *c);
};
TAILQ_HEAD(fg_client_conn_list, fg_client_conn);
TAILQ_HEAD(fg_exchange_list, fg_exchange);

/* Idle keep-alive connections to one backend. */
struct fg_pool {
    struct fg_uconn_list idle;
    unsigned nidle;
};

struct fg_worker_listener {
    struct fg_worker *worker;
    const struct fg_listener_cfg *cfg;
    SSL_CTX *ssl_ctx;                   /* shared by all workers; NULL: cleartext */
    const struct fg_handler_ops *handler;
    struct evconnlistener *evl;
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
    const struct fg_config *cfg;
    const struct fg_app *app;           /* what the listeners serve */
    void *app_worker;                   /* the application's per-worker state */
    int app_inited;                     /* app->worker_init succeeded */
    struct fg_worker_listener *listeners;
    unsigned nlisteners;
    int stop_fd;                        /* eventfd: the main thread asks us to stop */
    struct event *stop_ev;
    int kick_fd;                        /* eventfd: a backend slot freed; drain wait queues */
    struct event *kick_ev;
    _Atomic int kick_pending;           /* a kick is on its way: no second write */
    _Atomic int stop_mode;              /* what stop_fd asks: 1 drain, 2 stop now */
    _Atomic int exited;                 /* the thread's loop has returned */
    int draining;                       /* worker thread: no listeners, closing as conns finish */

    struct fg_rng rng;
    struct fg_exchange_list free_exchanges;
    unsigned nfree_exchanges;

    struct fg_pool **pools;             /* [upstream index][backend index] */
    struct fg_lb_state *lb;             /* [upstream index] */

    unsigned mirrors_in_flight;         /* copies of requests sent by this worker, unfinished */
    struct fg_exchange_list mirrors;    /* those copies (closed when the worker stops) */
    struct fg_client_conn_list conns;   /* client connections open */
    unsigned nconns;

    /* HTTP/2: the frame buffer every nghttp2 session of this worker shares
     * (see h2_front.c), and whether a session is being created right now */
    void *h2_framebuf;
    void *h2_nv;                        /* nghttp2_nv scratch (h2_front.c nv_room()) */
    size_t h2_nv_cap;
    int h2_creating;
};

#endif
