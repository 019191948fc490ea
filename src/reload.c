/* The running configuration and reloads (fg/reload.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "fg/access.h"
#include "fg/admin.h"
#include "fg/client_geo.h"
#include "fg/config.h"
#include "fg/config_state.h"
#include "fg/daemon.h"
#include "fg/dns_discovery.h"
#include "fg/handler.h"
#include "fg/health.h"
#include "fg/log.h"
#include "fg/proxy.h"
#include "fg/reload.h"
#include "fg/sd_notify.h"
#include "fg/tls.h"
#include "fg/worker.h"

#define APPLY_WAIT_MS 2000              /* how long a reload waits for the workers */

static struct {
    pthread_mutex_t lock;               /* one reload at a time */
    struct fg_config *current;          /* one reference */
    const struct fg_app *app;
    struct fg_worker *workers;
    unsigned n;
    struct fg_health *health;
    struct fg_dns *dns;                 /* the resolver thread (dns_discovery.c) */
    uint64_t seq;                       /* reloads so far */
    int refused;                        /* stopping */
} R = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- what each worker is handed ------------------------------------------- */

/* Listeners of <cfg> in update order: its own, then the admin listener. */
static unsigned nlisteners(const struct fg_config *cfg)
{
    return cfg->nlisteners + (cfg->admin_enabled ? 1 : 0);
}

static const struct fg_listener_cfg *listener_at(const struct fg_config *cfg, unsigned i)
{
    return i < cfg->nlisteners ? &cfg->listeners[i] : &cfg->admin;
}

static int listened_before(const struct fg_config *prev, const struct fg_listener_cfg *lc)
{
    for (unsigned i = 0; prev && i < nlisteners(prev); i++) {
        const struct fg_listener_cfg *o = listener_at(prev, i);
        if (o->addr.len == lc->addr.len && memcmp(&o->addr.ss, &lc->addr.ss, lc->addr.len) == 0)
            return 1;
    }
    return 0;
}

/* One TLS context per TLS listener of <cfg>, shared by the workers. */
static SSL_CTX **tls_contexts(const struct fg_config *cfg, char **err)
{
    SSL_CTX **ctxs = calloc(nlisteners(cfg) + 1, sizeof(*ctxs));

    if (!ctxs) {
        *err = fg_strdupf("out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        if (cfg->listeners[i].tls && !(ctxs[i] = fg_tls_server_ctx(cfg->listeners[i].tls, err))) {
            for (unsigned j = 0; j < i; j++)
                if (ctxs[j])
                    SSL_CTX_free(ctxs[j]);
            free(ctxs);
            return NULL;
        }
    }
    return ctxs;
}

static void tls_contexts_free(SSL_CTX **ctxs, unsigned n)
{
    for (unsigned i = 0; ctxs && i < n; i++)
        if (ctxs[i])
            SSL_CTX_free(ctxs[i]);
    free(ctxs);
}

/* A worker's update to <cfg>: a socket bound for every listener <prev> did
 * not have (all of them at start-up). NULL with *err set. */
static struct fg_worker_update *build_update(const struct fg_config *cfg,
                                             const struct fg_config *prev, SSL_CTX **ctxs,
                                             char **err)
{
    unsigned n = nlisteners(cfg);
    struct fg_worker_update *up = calloc(1, sizeof(*up) + n * sizeof(up->l[0]));
    const struct fg_handler_ops *h = R.app->handler ? R.app->handler : &fg_proxy_handler;

    if (!up) {
        *err = fg_strdupf("out of memory");
        return NULL;
    }
    up->cfg = fg_config_ref((struct fg_config *)cfg);
    for (unsigned i = 0; i < n; i++)
        up->l[i].fd = -1;
    up->n = n;
    for (unsigned i = 0; i < n; i++) {
        const struct fg_listener_cfg *lc = listener_at(cfg, i);
        up->l[i].lc = lc;
        up->l[i].handler = i < cfg->nlisteners ? h : &fg_admin_handler;
        if (ctxs[i] && SSL_CTX_up_ref(ctxs[i]))
            up->l[i].ssl_ctx = ctxs[i];
        if (!listened_before(prev, lc) && (up->l[i].fd = fg_listen_socket(lc, err)) < 0) {
            fg_worker_update_free(up);
            return NULL;
        }
    }
    return up;
}

/* Sockets <late> bound that <up> expects to find open (fd -1 for an address
 * listened on before): the worker never took <late>, so it never opened
 * them. */
static void take_sockets(struct fg_worker_update *up, struct fg_worker_update *late)
{
    for (unsigned i = 0; i < up->n; i++) {
        const struct fg_listener_cfg *lc = up->l[i].lc;
        if (up->l[i].fd >= 0)
            continue;
        for (unsigned j = 0; j < late->n; j++) {
            const struct fg_listener_cfg *o = late->l[j].lc;
            if (late->l[j].fd >= 0 && o->addr.len == lc->addr.len &&
                memcmp(&o->addr.ss, &lc->addr.ss, lc->addr.len) == 0) {
                up->l[i].fd = late->l[j].fd;
                late->l[j].fd = -1;
                break;
            }
        }
    }
}

/* ---- start and stop ------------------------------------------------------- */

int fg_runtime_start(struct fg_config *cfg, const struct fg_app *app, struct fg_worker *workers,
                     unsigned n, unsigned *ninit, char **err)
{
    SSL_CTX **ctxs;
    int rc = 0;

    *ninit = 0;
    if (cfg->dns_answers.n) {
        /* backends found by name: their addresses before the first request */
        struct fg_dns_answers dns;
        struct fg_config *resolved;
        fg_dns_resolve_now(cfg, &dns);
        resolved = fg_config_parse_dns(cfg->source, strlen(cfg->source), cfg->path, &dns, err);
        fg_dns_answers_free(&dns);
        if (!resolved)
            return -1;
        resolved->workers = cfg->workers;
        for (unsigned i = 0; i < resolved->dns_answers.n; i++)
            fg_log_info("dns: %s: %u address%s", resolved->dns_answers.a[i].name,
                        resolved->dns_answers.a[i].naddrs,
                        resolved->dns_answers.a[i].naddrs == 1 ? "" : "es");
        R.current = resolved;           /* the parse's reference */
        cfg = resolved;
    } else {
        R.current = fg_config_ref(cfg);
    }
    R.app = app;
    R.workers = workers;
    R.n = n;
    R.refused = 0;
    if (!(ctxs = tls_contexts(cfg, err)))
        return -1;
    for (*ninit = 0; *ninit < n; (*ninit)++) {
        struct fg_worker_update *up = build_update(cfg, NULL, ctxs, err);
        if (!up) {
            rc = -1;
            break;
        }
        rc = fg_worker_init(&workers[*ninit], *ninit, up, app, err);
        fg_worker_update_free(up);
        if (rc < 0) {
            fg_worker_free(&workers[*ninit]);
            break;
        }
    }
    tls_contexts_free(ctxs, nlisteners(cfg));
    return rc;
}

int fg_runtime_start_health(char **err)
{
    *err = NULL;
    R.health = fg_health_start(R.current, err);
    if (!R.health && *err)
        return -1;
    if (!(R.dns = fg_dns_start(err)))
        return -1;
    return 0;
}

void fg_runtime_stop_health(void)
{
    /* the resolver may be reloading: it stops first, without the lock */
    fg_dns_stop(R.dns);
    R.dns = NULL;
    pthread_mutex_lock(&R.lock);
    fg_health_stop(R.health);
    R.health = NULL;
    pthread_mutex_unlock(&R.lock);
}

void fg_runtime_stop(void)
{
    fg_config_unref(R.current);
    R.current = NULL;
    R.workers = NULL;
    R.n = 0;
}

struct fg_config *fg_runtime_config(void)
{
    struct fg_config *cfg;

    pthread_mutex_lock(&R.lock);
    cfg = R.current ? fg_config_ref(R.current) : NULL;
    pthread_mutex_unlock(&R.lock);
    return cfg;
}

void fg_reload_refuse(void)
{
    pthread_mutex_lock(&R.lock);
    R.refused = 1;
    pthread_mutex_unlock(&R.lock);
}

/* ---- a reload ------------------------------------------------------------- */

static void wait_applied(struct fg_worker *self, uint64_t seq)
{
    struct timespec start, now, pause = {.tv_sec = 0, .tv_nsec = 1000000};

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned i = 0; i < R.n; i++) {
        struct fg_worker *w = &R.workers[i];
        while (w != self && atomic_load(&w->applied_seq) < seq) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
                APPLY_WAIT_MS) {
                fg_log_warn("reload: worker %u has not taken the new configuration yet", w->id);
                break;
            }
            nanosleep(&pause, NULL);
        }
    }
}

/* What a reload cannot change: said once, and kept as it was. */
static void keep_fixed(struct fg_config *next, const struct fg_config *prev)
{
    if (next->workers != prev->workers)
        fg_log_warn("reload: \"workers\" changes only with a restart: keeping %u", prev->workers);
    next->workers = prev->workers;
    if ((next->log.access == NULL) != (prev->log.access == NULL) ||
        (next->log.access && strcmp(next->log.access, prev->log.access) != 0))
        fg_log_warn("reload: \"log.access\" changes only with a restart: still writing to %s",
                    prev->log.access ? prev->log.access : "nowhere");
}

/* <dns>: a configuration built again from the running one's text with these
 * answers; NULL: the file loaded again (its names keep their answers). */
static int reload_locked(struct fg_worker *self, const struct fg_dns_answers *dns, char **msg)
{
    struct fg_config *prev = R.current, *next;
    struct fg_worker_update **ups = NULL;
    struct fg_access_next *acc = NULL;
    struct fg_health *health = NULL;
    SSL_CTX **ctxs = NULL;
    char *err = NULL;
    uint64_t seq;

    next = dns ? fg_config_parse_dns(prev->source, strlen(prev->source), prev->path, dns, &err)
               : fg_config_load_dns(prev->path, &prev->dns_answers, &err);
    if (!next) {
        *msg = err ? err : fg_strdupf("out of memory");
        return -1;
    }
    keep_fixed(next, prev);
    fg_config_inherit(next, prev);
    if (!(acc = fg_access_prepare(next, &err)) || !(ctxs = tls_contexts(next, &err)) ||
        !(ups = calloc(R.n, sizeof(*ups))))
        goto fail;
    for (unsigned i = 0; i < R.n; i++)
        if (!(ups[i] = build_update(next, prev, ctxs, &err)))
            goto fail;
    /* the checker of the old upstreams stops before they may go, and before
     * the next starts: the backends' check counters have one writer */
    fg_health_stop(R.health);
    R.health = NULL;
    health = fg_health_start(next, &err);
    if (!health && err) {
        char *again = NULL;
        R.health = fg_health_start(prev, &again);   /* as it was, if it can */
        free(again);
        goto fail;
    }
    R.health = health;

    /* nothing can fail from here: hand it over */
    fg_access_commit(acc);
    fg_geo_switch(next);
    if (fg_log_get_level() != FG_LOG_DEBUG || prev->log.level == FG_LOG_DEBUG)
        fg_log_set_level((enum fg_log_level)next->log.level);   /* unless -d asked */
    seq = ++R.seq;
    for (unsigned i = 0; i < R.n; i++) {
        struct fg_worker *w = &R.workers[i];
        /* an update the worker has not taken yet is superseded; the sockets
         * it bound for new listeners the worker has never opened: this one,
         * which counts on them (fd -1), takes them over */
        struct fg_worker_update *late = atomic_exchange(&w->update, NULL);
        ups[i]->seq = seq;
        if (late)
            take_sockets(ups[i], late);
        fg_worker_update_free(late);
        atomic_store(&w->update, ups[i]);
        fg_worker_kick(w);
    }
    free(ups);
    tls_contexts_free(ctxs, nlisteners(next));
    R.current = next;
    fg_config_unref(prev);
    if (self)
        fg_worker_apply_now(self);
    wait_applied(self, seq);
    if (!dns)
        fg_dns_wake(R.dns);             /* names the file added: resolved now */
    return 0;
fail:
    *msg = err ? err : fg_strdupf("out of memory");
    fg_access_abandon(acc);
    for (unsigned i = 0; ups && i < R.n; i++)
        fg_worker_update_free(ups[i]);
    free(ups);
    tls_contexts_free(ctxs, nlisteners(next));
    fg_config_unref(next);
    return -1;
}

static int reload(struct fg_worker *self, const struct fg_dns_answers *dns, char **msg)
{
    int rc;

    *msg = NULL;
    /* a worker must not wait here: another reload may be waiting for it */
    if (self ? pthread_mutex_trylock(&R.lock) != 0 : pthread_mutex_lock(&R.lock) != 0) {
        *msg = fg_strdupf("another reload is in progress");
        return -2;
    }
    if (R.refused || !R.current) {
        pthread_mutex_unlock(&R.lock);
        *msg = fg_strdupf("the gateway is stopping");
        return -2;
    }
    fg_sd_notify("RELOADING=1");
    if (!dns)
        fg_log_info("reloading %s", R.current->path);
    rc = reload_locked(self, dns, msg);
    if (rc == 0)
        fg_log_info("configuration %s %s (reload %llu)", R.current->path,
                    dns ? "built again with new DNS answers" : "reloaded", (unsigned long long)R.seq);
    else
        fg_log_error("configuration not reloaded, the one loaded before stays in use: %s",
                     *msg ? *msg : "out of memory");
    fg_sd_notify("READY=1");
    pthread_mutex_unlock(&R.lock);
    return rc;
}

int fg_reload(struct fg_worker *self, char **msg)
{
    return reload(self, NULL, msg);
}

int fg_reload_dns(const struct fg_dns_answers *dns, char **msg)
{
    return reload(NULL, dns, msg);
}
