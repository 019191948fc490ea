/* Worker threads: one event loop each, with its own SO_REUSEPORT listening
 * sockets so the kernel spreads connections and no lock is taken to
 * accept. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "fg/admin.h"
#include "fg/conn.h"
#include "fg/exchange.h"
#include "fg/front.h"
#include "fg/handler.h"
#include "fg/log.h"
#include "fg/mirror.h"
#include "fg/stream.h"
#include "fg/uconn.h"
#include "fg/wait_queue.h"
#include "fg/access_log.h"
#include "fg/stats.h"
#include "fg/worker.h"

static char *errorf(const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(fmt) + strlen(a) + strlen(b) + 1;
    char *m = malloc(len);

    if (m)
        snprintf(m, len, fmt, a, b);
    return m;
}

static void begin_drain(struct fg_worker *w)
{
    struct fg_client_conn *c, *next;

    if (w->draining)
        return;
    w->draining = 1;
    for (unsigned i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i].evl)
            evconnlistener_free(w->listeners[i].evl);   /* new connections are refused */
        w->listeners[i].evl = NULL;
    }
    for (c = TAILQ_FIRST(&w->conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->drain)
            c->drain(c);                /* may unregister (and free) c */
        else
            c->close_now(c);
    }
    fg_worker_conn_gone(w);
}

void fg_worker_conn_gone(struct fg_worker *w)
{
    if (w->draining && w->nconns == 0)
        event_base_loopbreak(w->base);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct fg_worker *w = arg;
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0) {
        /* nothing to do: we act on stop_mode either way */
    }
    if (atomic_load(&w->stop_mode) == 1)
        begin_drain(w);
    else
        event_base_loopbreak(w->base);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct fg_worker *w = arg;
    uint64_t v;

    (void)what;
    atomic_store(&w->kick_pending, 0);
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: a kick we already took */
    }
    for (unsigned u = 0; u < w->cfg->nupstreams; u++)
        if (atomic_load_explicit(&w->lb[u].queue.n, memory_order_relaxed))
            fg_wait_queue_drain(w, u);
}

void fg_worker_kick(struct fg_worker *w)
{
    uint64_t one = 1;

    if (!atomic_exchange(&w->kick_pending, 1) && write(w->kick_fd, &one, sizeof(one)) < 0)
        fg_log_warn("worker %u: cannot wake: %s", w->id, strerror(errno));
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    struct fg_worker_listener *l = arg;
    int e = EVUTIL_SOCKET_ERROR();

    /* EMFILE and friends: the listener keeps going; log and carry on */
    fg_log_warn("worker %u: accept on %s: %s", l->worker->id, l->cfg->addr.text,
                evutil_socket_error_to_string(e));
}

static int add_listener(struct fg_worker *w, const struct fg_listener_cfg *lc, SSL_CTX *ssl_ctx,
                        const struct fg_handler_ops *handler, char **err)
{
    struct fg_worker_listener *l = &w->listeners[w->nlisteners];
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE |
                     LEV_OPT_REUSEABLE_PORT;

    if (lc->addr.ss.ss_family == AF_INET6)
        flags |= LEV_OPT_BIND_IPV6ONLY;
    l->worker = w;
    l->cfg = lc;
    l->ssl_ctx = ssl_ctx;
    l->handler = handler;
    l->evl = evconnlistener_new_bind(w->base, fg_conn_accept, l, flags, lc->backlog,
                                     (const struct sockaddr *)&lc->addr.ss, (int)lc->addr.len);
    if (!l->evl) {
        *err = errorf("cannot listen on %s: %s", lc->addr.text, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    w->nlisteners++;
    return 0;
}

int fg_worker_init(struct fg_worker *w, unsigned id, const struct fg_config *cfg,
                   const struct fg_app *app, SSL_CTX **ssl_ctxs, char **err)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->cfg = cfg;
    w->app = app;
    w->stop_fd = -1;
    w->kick_fd = -1;
    if (!(w->stats = calloc(1, sizeof(*w->stats))) || fg_stats_init(w->stats) < 0) {
        free(w->stats);
        w->stats = NULL;
        *err = errorf("worker: out of memory%s%s", "", "");
        return -1;
    }
    TAILQ_INIT(&w->free_exchanges);
    TAILQ_INIT(&w->conns);
    TAILQ_INIT(&w->mirrors);
    fg_rng_seed(&w->rng);
    {
        /* one loop per thread, never touched by another thread: no locks;
         * the epoll changelist folds an add and a delete of the same event
         * within one loop turn into no syscall at all */
        struct event_config *ec = event_config_new();
        if (ec) {
            event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
            w->base = event_base_new_with_config(ec);
            event_config_free(ec);
        }
    }
    if (!w->base || !(w->loop = fg_loop_new(w->base))) {
        *err = errorf("worker: cannot create an event loop%s%s", "", "");
        return -1;
    }
    if (fg_access_log_worker_init(w) < 0) {
        *err = errorf("worker: out of memory%s%s", "", "");
        return -1;
    }
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->stop_fd < 0 ||
        !(w->stop_ev = event_new(w->base, w->stop_fd, EV_READ | EV_PERSIST, on_stop, w)) ||
        event_add(w->stop_ev, NULL) < 0) {
        *err = errorf("worker: eventfd: %s%s", strerror(errno), "");
        return -1;
    }
    w->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->kick_fd < 0 ||
        !(w->kick_ev = event_new(w->base, w->kick_fd, EV_READ | EV_PERSIST, on_kick, w)) ||
        event_add(w->kick_ev, NULL) < 0) {
        *err = errorf("worker: eventfd: %s%s", strerror(errno), "");
        return -1;
    }

    /* at least one slot: a configuration without upstreams (fleetgate-model)
     * must not read as out of memory */
    w->pools = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*w->pools));
    w->lb = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*w->lb));
    if (!w->pools || !w->lb) {
        *err = errorf("worker: out of memory%s%s", "", "");
        return -1;
    }
    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        const struct fg_upstream *up = &cfg->upstreams[u];
        w->pools[u] = calloc(up->nbackends, sizeof(**w->pools));
        if (!w->pools[u] || fg_lb_state_init(&w->lb[u], up) < 0) {
            *err = errorf("worker: out of memory%s%s", "", "");
            return -1;
        }
        for (unsigned b = 0; b < up->nbackends; b++)
            TAILQ_INIT(&w->pools[u][b].idle);
    }

    w->listeners = calloc(cfg->nlisteners + 1, sizeof(*w->listeners));
    if (!w->listeners) {
        *err = errorf("worker: out of memory%s%s", "", "");
        return -1;
    }
    for (unsigned i = 0; i < cfg->nlisteners; i++)
        if (add_listener(w, &cfg->listeners[i], ssl_ctxs[i],
                         app->handler ? app->handler : &fg_proxy_handler, err) < 0)
            return -1;
    if (cfg->admin_enabled && add_listener(w, &cfg->admin, NULL, &fg_admin_handler, err) < 0)
        return -1;
    if (app->worker_init) {
        if (app->worker_init(w, app->ctx, err) < 0)
            return -1;
        w->app_inited = 1;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct fg_worker *w = arg;

    event_base_dispatch(w->base);
    atomic_store(&w->exited, 1);
    return NULL;
}

int fg_worker_start(struct fg_worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w);
}

void fg_worker_drain(struct fg_worker *w)
{
    uint64_t one = 1;
    int none = 0;

    if (atomic_compare_exchange_strong(&w->stop_mode, &none, 1) && w->stop_fd >= 0 &&
        write(w->stop_fd, &one, sizeof(one)) < 0)
        fg_log_warn("worker %u: cannot signal drain: %s", w->id, strerror(errno));
}

void fg_worker_stop(struct fg_worker *w)
{
    uint64_t one = 1;

    atomic_store(&w->stop_mode, 2);
    if (w->stop_fd >= 0 && write(w->stop_fd, &one, sizeof(one)) < 0)
        fg_log_warn("worker %u: cannot signal stop: %s", w->id, strerror(errno));
}

void fg_worker_join(struct fg_worker *w)
{
    pthread_join(w->thread, NULL);
}

void fg_worker_free(struct fg_worker *w)
{
    const struct fg_config *cfg = w->cfg;

    for (unsigned i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].evl)
            evconnlistener_free(w->listeners[i].evl);
    /* the loop has stopped: close what is still open, so nothing leaks */
    while (!TAILQ_EMPTY(&w->conns))
        TAILQ_FIRST(&w->conns)->close_now(TAILQ_FIRST(&w->conns));
    free(w->listeners);
    fg_mirror_stop_all(w);             /* copies no client connection owns */
    if (w->app_inited && w->app->worker_fini)
        w->app->worker_fini(w, w->app->ctx);
    if (w->pools) {
        fg_uconn_pool_drain(w);
        for (unsigned u = 0; u < cfg->nupstreams; u++)
            free(w->pools[u]);
        free(w->pools);
    }
    if (w->lb) {
        for (unsigned u = 0; u < cfg->nupstreams; u++)
            fg_lb_state_free(&w->lb[u]);
        free(w->lb);
    }
    while (!TAILQ_EMPTY(&w->free_exchanges)) {
        struct fg_exchange *x = TAILQ_FIRST(&w->free_exchanges);
        TAILQ_REMOVE(&w->free_exchanges, x, link);
        fg_exchange_destroy(x);
        free(x);
    }
    free(w->h2_framebuf);
    free(w->h2_nv);
    fg_access_log_worker_fini(w);
    if (w->stats) {
        fg_stats_free(w->stats);
        free(w->stats);
        w->stats = NULL;
    }
    fg_loop_free(w->loop);              /* after the last stream */
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    if (w->kick_ev)
        event_free(w->kick_ev);
    if (w->kick_fd >= 0)
        close(w->kick_fd);
    if (w->base)
        event_base_free(w->base);
    memset(w, 0, sizeof(*w));
}

struct fg_pool *fg_worker_pool(struct fg_worker *w, const struct fg_backend *b)
{
    return &w->pools[b->upstream->index][b->index];
}
