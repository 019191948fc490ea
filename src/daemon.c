/* The process: TLS contexts, worker threads, signals. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "fg/access.h"
#include "fg/access_log.h"
#include "fg/client_geo.h"
#include "fg/config.h"
#include "fg/daemon.h"
#include "fg/handler.h"
#include "fg/health.h"
#include "fg/log.h"
#include "fg/reload.h"
#include "fg/sd_notify.h"
#include "fg/stats.h"
#include "fg/tls.h"
#include "fg/wait_queue.h"
#include "fg/worker.h"

static const struct fg_app gateway_app = {
    .name = "fleetgate",
    .handler = &fg_proxy_handler,
};

static int all_exited(struct fg_worker *workers, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (!atomic_load(&workers[i].exited))
            return 0;
    return 1;
}

/* SIGTERM: the workers stop accepting and finish what is in progress, for
 * at most <timeout_ms>; SIGINT meanwhile, or the timeout, cuts it short
 * (the caller then stops them at once). */
static void drain(struct fg_worker *workers, unsigned n, const sigset_t *set, unsigned timeout_ms)
{
    struct timespec start, now, tick = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
    int sig;

    fg_log_info("SIGTERM: draining (no new connections; at most %u ms for those open)",
                timeout_ms);
    for (unsigned i = 0; i < n; i++)
        fg_worker_drain(&workers[i]);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (all_exited(workers, n)) {
            fg_log_info("drained: stopping");
            return;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((uint64_t)(now.tv_sec - start.tv_sec) * 1000 +
                (uint64_t)((now.tv_nsec - start.tv_nsec) / 1000000) >= timeout_ms) {
            fg_log_warn("drain_timeout_ms (%u) passed: closing what is still open", timeout_ms);
            return;
        }
        sig = sigtimedwait(set, NULL, &tick);
        if (sig == SIGINT) {
            fg_log_info("SIGINT while draining: stopping now");
            return;
        }
        if (sig == SIGUSR1)
            fg_access_log_reopen();
    }
}

int fg_daemon_run(struct fg_config *cfg, const struct fg_app *app)
{
    struct fg_worker *workers = calloc(cfg->workers, sizeof(*workers));
    unsigned ninit = 0, nstarted = 0, nworkers = cfg->workers;
    struct fg_config *now;
    sigset_t set;
    int sig = 0, status = 1, runtime = 0;
    char *err = NULL;

    if (!app)
        app = &gateway_app;
    if (!workers) {
        fg_log_error("out of memory");
        goto out;
    }

    /* Every thread inherits this mask: signals are taken by sigwait() here,
     * never by a worker in the middle of a callback. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (fg_access_log_open(cfg, &err) < 0) {
        fg_log_error("%s", err ? err : "out of memory");
        goto out;
    }

    runtime = 1;
    if (fg_runtime_start(cfg, app, workers, nworkers, &ninit, &err) < 0) {
        fg_log_error("%s", err ? err : "worker set-up failed");
        goto out;
    }
    fg_wait_queue_register(workers, ninit);
    fg_workers_register(workers, ninit);
    fg_stats_register(workers, ninit);
    if (fg_access_start(cfg, workers, ninit, &err) < 0) {
        fg_log_error("%s", err ? err : "out of memory");
        goto out;
    }
    fg_geo_start(cfg, workers, ninit);
    /* after the signal mask: the checker thread inherits it */
    if (fg_runtime_start_health(&err) < 0) {
        fg_log_error("%s", err);
        goto out;
    }
    for (; nstarted < nworkers; nstarted++) {
        if (fg_worker_start(&workers[nstarted]) != 0) {
            fg_log_error("cannot start worker thread: %s", strerror(errno));
            goto out;
        }
    }
    for (unsigned i = 0; i < cfg->nlisteners; i++)
        fg_log_info("listening on %s%s", cfg->listeners[i].addr.text,
                    cfg->listeners[i].tls ? " (TLS)" : "");
    if (cfg->admin_enabled)
        fg_log_info("admin listener on %s (GET /status)", cfg->admin.addr.text);
    fg_log_info("%s %s started with %u worker%s", app->name, PACKAGE_VERSION, nworkers,
                nworkers == 1 ? "" : "s");
    fg_sd_notify("READY=1");

    for (;;) {
        /* the key file is looked at every key_file_check_ms between signals */
        unsigned ms;
        now = fg_runtime_config();
        ms = now->access && now->access->key_file ? now->access->key_file_check_ms : 0;
        fg_config_unref(now);
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        if (ms)
            sig = sigtimedwait(&set, NULL, &ts);
        else if (sigwait(&set, &sig) != 0)
            sig = -1;
        if (sig < 0) {
            if (ms)
                fg_access_reload(0);
            continue;
        }
        if (sig == SIGHUP) {
            char *msg = NULL;
            fg_log_info("SIGHUP: reloading the configuration");
            fg_reload(NULL, &msg);      /* logs what happened */
            free(msg);
            continue;
        }
        if (sig == SIGUSR1) {
            fg_access_log_reopen();     /* logrotate moved it */
            continue;
        }
        break;
    }
    fg_reload_refuse();
    fg_sd_notify("STOPPING=1");
    if (sig == SIGTERM) {
        now = fg_runtime_config();
        drain(workers, nstarted, &set, now->drain_timeout_ms);
        fg_config_unref(now);
    } else {
        fg_log_info("SIGINT: stopping now");
    }
    status = 0;
out:
    fg_reload_refuse();
    for (unsigned i = 0; i < nstarted; i++)
        fg_worker_stop(&workers[i]);
    for (unsigned i = 0; i < nstarted; i++)
        fg_worker_join(&workers[i]);
    /* the checker thread may kick the workers' queues: stop it first; the
     * access module and the GeoIP handle go before the configurations */
    if (runtime)
        fg_runtime_stop_health();
    fg_wait_queue_register(NULL, 0);
    fg_workers_register(NULL, 0);
    /* freeing a worker ends its exchanges, which give their limits back */
    for (unsigned i = 0; i < ninit; i++)
        fg_worker_free(&workers[i]);
    fg_stats_register(NULL, 0);
    fg_access_stop();
    fg_geo_stop();
    if (runtime)
        fg_runtime_stop();
    fg_access_log_close();
    free(workers);
    free(err);
    return status;
}
