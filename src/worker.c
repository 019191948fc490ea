/* Worker threads: one event loop each, with its own SO_REUSEPORT listening
 * sockets so the kernel spreads connections and no lock is taken to
 * accept. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "fg/body_clock.h"
#include "fg/send_clock.h"
#include "fg/admin.h"
#include "fg/config.h"
#include "fg/conn.h"
#include "fg/conn_limit.h"
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

static void listener_close(struct fg_worker_listener *l)
{
    if (l->evl)
        evconnlistener_free(l->evl);    /* new connections are refused */
    l->evl = NULL;
    TAILQ_REMOVE(&l->worker->listeners, l, link);
    fg_worker_listener_unref(l);
}

void fg_worker_listener_unref(struct fg_worker_listener *l)
{
    if (--l->refs)
        return;
    if (l->ssl_ctx)
        SSL_CTX_free(l->ssl_ctx);
    free(l);
}

static void begin_drain(struct fg_worker *w)
{
    struct fg_client_conn *c, *next;

    if (w->draining)
        return;
    w->draining = 1;
    while (!TAILQ_EMPTY(&w->listeners))
        listener_close(TAILQ_FIRST(&w->listeners));
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

static void apply_update(struct fg_worker *w);

/* ---- pausing accept (fg/conn_limit.h) --------------------------------------- */

#define ACCEPT_RETRY_MS 100             /* how often a paused worker looks again */

static struct fg_worker *all_workers;
static unsigned nall_workers;

void fg_workers_register(struct fg_worker *workers, unsigned n)
{
    all_workers = workers;
    nall_workers = n;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The admin listener is paused only when descriptors run out (then it
 * would spin on EMFILE too), never for the connection limit. */
static void set_accepting(struct fg_worker *w, int on, int admin_too)
{
    struct fg_worker_listener *l;

    TAILQ_FOREACH(l, &w->listeners, link)
        if (l->evl && (admin_too || l->handler != &fg_admin_handler)) {
            if (on)
                evconnlistener_enable(l->evl);
            else
                evconnlistener_disable(l->evl);
        }
}

static void arm_accept_timer(struct fg_worker *w)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = ACCEPT_RETRY_MS * 1000};
    evtimer_add(w->accept_timer, &tv);
}

static void on_accept_timer(evutil_socket_t fd, short what, void *arg)
{
    struct fg_worker *w = arg;

    (void)fd;
    (void)what;
    if (!w->accept_paused)
        return;
    if (mono_ms() < w->accept_resume_ms || fg_conn_limit_full(&w->cfg->client)) {
        arm_accept_timer(w);
        return;
    }
    w->accept_paused = 0;
    set_accepting(w, 1, 1);
    fg_log_info("worker %u: accepting connections again (%llu open)", w->id,
                (unsigned long long)fg_conn_limit_open());
}

void fg_worker_accept_pause(struct fg_worker *w, unsigned for_ms)
{
    uint64_t until = mono_ms() + for_ms;

    if (until > w->accept_resume_ms)
        w->accept_resume_ms = until;
    if (!w->accept_timer)
        return;
    set_accepting(w, 0, for_ms > 0);    /* again: descriptors may run out while paused */
    if (w->accept_paused)
        return;
    w->accept_paused = 1;
    fg_conn_limit_note_pause();
    if (!for_ms)
        fg_log_warn("worker %u: client.max_connections (%lu) reached: accepting paused",
                    w->id, fg_conn_limit_max(&w->cfg->client));
    arm_accept_timer(w);
}

void fg_worker_accept_pause_all(void)
{
    for (unsigned i = 0; i < nall_workers; i++) {
        atomic_store(&all_workers[i].pause_asked, 1);
        fg_worker_kick(&all_workers[i]);
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct fg_worker *w = arg;
    struct fg_wgen *g, *next;
    uint64_t v;

    (void)what;
    /* Empty the eventfd first, then clear the flag: a kick that finds the
     * flag still set writes nothing, and is served by the work below. The
     * other order let a kick write between the clear and the read: its
     * write was read here, its flag stayed set, and every later kick found
     * it set and wrote nothing: the worker never woke again (queued
     * requests then waited for their deadline). */
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: a kick we already took */
    }
    atomic_store(&w->kick_pending, 0);
    apply_update(w);
    if (atomic_exchange(&w->pause_asked, 0) && fg_conn_limit_full(&w->cfg->client))
        fg_worker_accept_pause(w, 0);
    if (!atomic_load_explicit(&w->waiting, memory_order_relaxed))
        return;
    /* a drained queue may end its generation's last exchange */
    for (g = TAILQ_FIRST(&w->gens); g; g = next) {
        fg_wgen_ref(g);
        for (unsigned u = 0; u < g->cfg->nupstreams; u++)
            if (atomic_load_explicit(&g->lb[u].queue.n, memory_order_relaxed))
                fg_wait_queue_drain(&g->lb[u].queue);
        next = TAILQ_NEXT(g, link);
        fg_wgen_unref(g);
    }
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
    struct fg_worker *w = l->worker;
    int e = EVUTIL_SOCKET_ERROR();

    (void)evl;
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        /* the connection stays in the accept queue and the socket readable:
         * without a pause, the loop would spin on it */
        if (!w->accept_paused)
            fg_log_warn("worker %u: accept on %s: %s: accepting paused", w->id, l->addr.text,
                        evutil_socket_error_to_string(e));
        fg_worker_accept_pause(w, ACCEPT_RETRY_MS);
        return;
    }
    fg_log_warn("worker %u: accept on %s: %s", w->id, l->addr.text,
                evutil_socket_error_to_string(e));
}

int fg_listen_socket(const struct fg_listener_cfg *lc, char **err)
{
    int one = 1, fd = socket(lc->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        (lc->addr.ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (const struct sockaddr *)&lc->addr.ss, lc->addr.len) < 0 ||
        listen(fd, lc->backlog) < 0)
        goto fail;
    return fd;
fail:
    *err = errorf("cannot listen on %s: %s", lc->addr.text, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Worker thread (or before it starts): listens on <fd>, which it owns. */
static int add_listener(struct fg_worker *w, const struct fg_worker_update_listener *ul, char **err)
{
    struct fg_worker_listener *l = calloc(1, sizeof(*l));
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

    if (!l) {
        close(ul->fd);
        *err = errorf("worker: out of memory%s%s", "", "");
        return -1;
    }
    l->worker = w;
    l->addr = ul->lc->addr;
    l->proxy_protocol = ul->lc->proxy_protocol;
    l->ssl_ctx = ul->ssl_ctx;
    l->handler = ul->handler;
    l->refs = 1;
    l->evl = evconnlistener_new(w->base, fg_conn_accept, l, flags, -1, ul->fd);
    if (!l->evl) {
        *err = errorf("cannot listen on %s: %s", l->addr.text, strerror(errno));
        close(ul->fd);
        l->ssl_ctx = NULL;              /* the caller's reference */
        free(l);
        return -1;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    if (w->accept_paused && l->handler != &fg_admin_handler)
        evconnlistener_disable(l->evl);
    TAILQ_INSERT_TAIL(&w->listeners, l, link);
    return 0;
}

static int same_listener(const struct fg_worker_listener *l, const struct fg_listener_cfg *lc)
{
    return l->addr.len == lc->addr.len && memcmp(&l->addr.ss, &lc->addr.ss, lc->addr.len) == 0;
}

/* The listeners of an update: sockets kept (their TLS context, handler and
 * PROXY flag updated), opened and closed. */
static int update_listeners(struct fg_worker *w, struct fg_worker_update *up, char **first_err)
{
    struct fg_worker_listener *l, *next;
    char *err = NULL;
    int rc = 0;

    for (l = TAILQ_FIRST(&w->listeners); l; l = next) {
        unsigned i = 0;
        next = TAILQ_NEXT(l, link);
        while (i < up->n && !(up->l[i].fd < 0 && same_listener(l, up->l[i].lc)))
            i++;
        if (i == up->n) {
            listener_close(l);
            continue;
        }
        if (l->ssl_ctx)
            SSL_CTX_free(l->ssl_ctx);
        l->ssl_ctx = up->l[i].ssl_ctx;
        up->l[i].ssl_ctx = NULL;
        l->handler = up->l[i].handler;
        l->proxy_protocol = up->l[i].lc->proxy_protocol;
        l->addr = up->l[i].lc->addr;
    }
    for (unsigned i = 0; i < up->n; i++) {
        if (up->l[i].fd < 0)
            continue;
        if (add_listener(w, &up->l[i], &err) < 0) {
            if (first_err && !*first_err) {
                *first_err = err;
            } else {
                fg_log_error("worker %u: %s", w->id, err ? err : "out of memory");
                free(err);
            }
            err = NULL;
            rc = -1;
        } else {
            up->l[i].ssl_ctx = NULL;    /* the listener's now */
        }
        up->l[i].fd = -1;
    }
    return rc;
}

void fg_worker_update_free(struct fg_worker_update *up)
{
    if (!up)
        return;
    for (unsigned i = 0; i < up->n; i++) {
        if (up->l[i].fd >= 0)
            close(up->l[i].fd);
        if (up->l[i].ssl_ctx)
            SSL_CTX_free(up->l[i].ssl_ctx);
    }
    fg_config_unref((struct fg_config *)up->cfg);
    free(up);
}

static int take_update(struct fg_worker *w, struct fg_worker_update *up, char **err)
{
    struct fg_wgen *g = fg_wgen_new(w, up->cfg, w->gen);

    if (!g) {
        *err = errorf("worker: out of memory%s%s", "", "");
        return -1;
    }
    TAILQ_INSERT_TAIL(&w->gens, g, link);
    if (!w->draining && update_listeners(w, up, w->gen ? NULL : err) < 0 && !w->gen) {
        w->gen = g;                     /* freed with the worker */
        w->cfg = g->cfg;
        return -1;
    }
    if (w->gen)
        fg_wgen_unref(w->gen);          /* no longer current */
    w->gen = g;
    w->cfg = g->cfg;
    return 0;
}

/* Worker thread: takes the update a reload left, if any. */
static void apply_update(struct fg_worker *w)
{
    struct fg_worker_update *up = atomic_exchange(&w->update, NULL);
    uint64_t seq;
    char *err = NULL;

    if (!up)
        return;
    seq = up->seq;
    if (take_update(w, up, &err) < 0) {
        fg_log_error("worker %u: the new configuration is not taken: %s", w->id,
                     err ? err : "out of memory");
        free(err);
    }
    fg_worker_update_free(up);
    atomic_store(&w->applied_seq, seq);
}

void fg_worker_apply_now(struct fg_worker *w)
{
    apply_update(w);
}

int fg_worker_init(struct fg_worker *w, unsigned id, struct fg_worker_update *first,
                   const struct fg_app *app, char **err)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
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
    if (!(w->accept_timer = evtimer_new(w->base, on_accept_timer, w)) ||
        fg_body_clock_worker_init(w) < 0 || fg_send_clock_worker_init(w) < 0) {
        *err = errorf("worker: out of memory%s%s", "", "");
        return -1;
    }
    w->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->kick_fd < 0 ||
        !(w->kick_ev = event_new(w->base, w->kick_fd, EV_READ | EV_PERSIST, on_kick, w)) ||
        event_add(w->kick_ev, NULL) < 0) {
        *err = errorf("worker: eventfd: %s%s", strerror(errno), "");
        return -1;
    }

    TAILQ_INIT(&w->gens);
    TAILQ_INIT(&w->listeners);
    if (take_update(w, first, err) < 0)
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

    /* one batch of events at a time (what one epoll_wait returned, and what
     * its callbacks made active), then the coalesced writes: event_base_loop
     * returns 1 when nothing is left to wait for, -1 on error */
    fg_loop_set_batching(w->loop, 1);
    while (event_base_loop(w->base, EVLOOP_ONCE) == 0) {
        fg_loop_batch_end(w->loop);
        if (event_base_got_break(w->base) || event_base_got_exit(w->base))
            break;
    }
    fg_loop_batch_end(w->loop);
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
    while (!TAILQ_EMPTY(&w->listeners))
        listener_close(TAILQ_FIRST(&w->listeners));
    /* the loop has stopped: close what is still open, so nothing leaks */
    while (!TAILQ_EMPTY(&w->conns))
        TAILQ_FIRST(&w->conns)->close_now(TAILQ_FIRST(&w->conns));
    fg_mirror_stop_all(w);             /* copies no client connection owns */
    if (w->app_inited && w->app->worker_fini)
        w->app->worker_fini(w, w->app->ctx);
    fg_worker_update_free(atomic_exchange(&w->update, NULL));
    if (w->gen)
        fg_wgen_unref(w->gen);          /* the last, with no exchange left */
    w->gen = NULL;
    while (!TAILQ_EMPTY(&w->gens)) {    /* cannot be: an exchange leaked */
        struct fg_wgen *g = TAILQ_FIRST(&w->gens);
        fg_log_error("worker %u: a configuration generation still has %u references", w->id,
                     g->refs);
        g->refs = 1;
        fg_wgen_unref(g);
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
    fg_body_clock_worker_fini(w);
    fg_send_clock_worker_fini(w);
    fg_loop_free(w->loop);              /* after the last stream */
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    if (w->kick_ev)
        event_free(w->kick_ev);
    if (w->accept_timer)
        event_free(w->accept_timer);
    if (w->kick_fd >= 0)
        close(w->kick_fd);
    if (w->base)
        event_base_free(w->base);
    memset(w, 0, sizeof(*w));
}
