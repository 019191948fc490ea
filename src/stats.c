/* Metrics: per-worker counts and their Prometheus text (fg/stats.h). */
#include "config.h"

#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg/access.h"
#include "fg/access_log.h"
#include "fg/backend_state.h"
#include "fg/conn_limit.h"
#include "fg/exchange.h"
#include "fg/handler.h"
#include "fg/outlier.h"
#include "fg/proxy.h"
#include "fg/stats.h"
#include "fg/worker.h"

const double fg_hist_bounds[FG_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                0.25,  0.5,    1,     2.5,  5,     10,  30};

static struct fg_worker *all_workers;
static unsigned nworkers;

void fg_stats_register(struct fg_worker *workers, unsigned n)
{
    fg_stat_slots_workers(workers, n);
    all_workers = workers;
    nworkers = n;
}

int fg_stats_init(struct fg_worker_stats *s)
{
    memset(s, 0, sizeof(*s));
    return 0;
}

void fg_stats_free(struct fg_worker_stats *s)
{
    for (unsigned i = 0; i < FG_STAT_CHUNKS; i++)
        free(atomic_load(&s->chunk[i]));
    memset(s, 0, sizeof(*s));
}

/* The worker's own slot, its chunk allocated on first use. */
static struct fg_stat_slot *own_slot(struct fg_worker_stats *s, unsigned slot)
{
    struct fg_stat_slot *c;

    if (slot == FG_STAT_NO_SLOT)
        return NULL;
    c = atomic_load_explicit(&s->chunk[slot / FG_STAT_CHUNK], memory_order_relaxed);
    if (!c) {
        if (!(c = calloc(FG_STAT_CHUNK, sizeof(*c))))
            return NULL;
        atomic_store_explicit(&s->chunk[slot / FG_STAT_CHUNK], c, memory_order_release);
    }
    return &c[slot % FG_STAT_CHUNK];
}

/* Another worker's slot, for reading; NULL: nothing counted there. */
static const struct fg_stat_slot *seen_slot(struct fg_worker_stats *s, unsigned slot)
{
    const struct fg_stat_slot *c;

    if (!s || slot == FG_STAT_NO_SLOT)
        return NULL;
    c = atomic_load_explicit(&s->chunk[slot / FG_STAT_CHUNK], memory_order_acquire);
    return c ? &c[slot % FG_STAT_CHUNK] : NULL;
}

static void hist_add(struct fg_hist *h, uint64_t us)
{
    double sec = (double)us / 1e6;
    unsigned i = 0;

    while (i < FG_HIST_BUCKETS && sec > fg_hist_bounds[i])
        i++;
    fg_stat_add(&h->bucket[i], 1);
    fg_stat_add(&h->sum_us, us);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void fg_stats_exchange_end(struct fg_worker *w, struct fg_exchange *x)
{
    struct fg_worker_stats *s = w->stats;
    unsigned cls = x->status >= 100 && x->status < 600 ? (unsigned)x->status / 100 : 0;
    struct fg_stat_slot *rs, *us, *bs;

    if (!s || x->mirror_copy)
        return;
    if (!x->t_start_ns) {
        /* refused while its head was read (400, 408, 413, 431, 505...):
         * no route; counted, not logged (it may have no method or path) */
        if (x->client && x->client->handler == &fg_proxy_handler && x->resp_from_gateway &&
            cls && (rs = own_slot(s, 0))) {
            fg_stat_add(&rs->requests[cls], 1);
            fg_stat_add(&s->gateway_status[x->status], 1);
        }
        return;
    }
    if ((rs = own_slot(s, x->route ? x->route->st->stat_slot : 0))) {
        fg_stat_add(&rs->requests[cls], 1);
        fg_stat_add(&rs->bytes_in, x->req_body_bytes);
        fg_stat_add(&rs->bytes_out, x->resp_body_bytes);
    }
    if (x->resp_from_gateway && cls)
        fg_stat_add(&s->gateway_status[x->status], 1);
    if (x->upstream && (us = own_slot(s, x->upstream->st->stat_slot))) {
        uint64_t end = now_ns();
        fg_stat_add(&us->requests[cls], 1);
        hist_add(&us->total, (end - x->t_start_ns) / 1000);
        if (x->t_head_ns)
            hist_add(&us->ttfb, (x->t_head_ns - x->t_start_ns) / 1000);
        /* the last backend bound may be the first upstream's, when a
         * fallback then found none */
        if (x->last_backend && x->last_backend->upstream == x->upstream &&
            (bs = own_slot(s, x->last_backend->st->stat_slot)))
            fg_stat_add(&bs->requests[cls], 1);
    }
    fg_access_log_exchange(w, x);
}

/* ---- the text ------------------------------------------------------------ */

static uint64_t ld(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* A label value: \, " and newlines escaped. */
static void label(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void route_label(FILE *f, const struct fg_config *cfg, unsigned ri)
{
    char buf[32];

    fputs("route=", f);
    if (ri == cfg->nroutes) {
        label(f, "(none)");
    } else if (cfg->routes[ri].name) {
        label(f, cfg->routes[ri].name);
    } else {
        snprintf(buf, sizeof(buf), "routes[%u]", ri);
        label(f, buf);
    }
}

static const char *const class_names[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

static void by_class(FILE *f, const char *name, const struct fg_config *cfg, unsigned kind)
{
    /* kind 0: route, 1: upstream, 2: backend */
    unsigned n = kind == 0 ? cfg->nroutes + 1 : cfg->nupstreams;

    for (unsigned i = 0; i < n; i++) {
        unsigned nb = kind == 2 ? cfg->upstreams[i].nbackends : 1;
        for (unsigned b = 0; b < nb; b++) {
            for (unsigned c = 0; c < 6; c++) {
                unsigned slot = kind == 0 ? (i == cfg->nroutes ? 0 : cfg->routes[i].st->stat_slot)
                                : kind == 1 ? cfg->upstreams[i].st->stat_slot
                                            : cfg->upstreams[i].backends[b].st->stat_slot;
                uint64_t sum = 0;
                for (unsigned w = 0; w < nworkers; w++) {
                    const struct fg_stat_slot *sl = seen_slot(all_workers[w].stats, slot);
                    if (sl)
                        sum += ld((_Atomic uint64_t *)&sl->requests[c]);
                }
                if (!sum && c != 2)
                    continue;           /* 2xx always, the rest once seen */
                fprintf(f, "%s{", name);
                if (kind == 0) {
                    route_label(f, cfg, i);
                } else {
                    fputs("upstream=", f);
                    label(f, cfg->upstreams[i].name);
                    if (kind == 2) {
                        fputs(",backend=", f);
                        label(f, cfg->upstreams[i].backends[b].addr.text);
                    }
                }
                fprintf(f, ",code=\"%s\"} %llu\n", class_names[c], (unsigned long long)sum);
            }
        }
    }
}

static void histogram(FILE *f, const char *name, const struct fg_config *cfg, int ttfb)
{
    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        uint64_t b[FG_HIST_BUCKETS + 1] = {0}, sum_us = 0, cum = 0;
        for (unsigned w = 0; w < nworkers; w++) {
            const struct fg_stat_slot *sl =
                seen_slot(all_workers[w].stats, cfg->upstreams[u].st->stat_slot);
            struct fg_hist *h;
            if (!sl)
                continue;
            h = (struct fg_hist *)(ttfb ? &sl->ttfb : &sl->total);
            for (unsigned i = 0; i <= FG_HIST_BUCKETS; i++)
                b[i] += ld(&h->bucket[i]);
            sum_us += ld(&h->sum_us);
        }
        for (unsigned i = 0; i <= FG_HIST_BUCKETS; i++) {
            cum += b[i];
            fprintf(f, "%s_bucket{upstream=", name);
            label(f, cfg->upstreams[u].name);
            if (i < FG_HIST_BUCKETS)
                fprintf(f, ",le=\"%g\"} %llu\n", fg_hist_bounds[i], (unsigned long long)cum);
            else
                fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        fprintf(f, "%s_sum{upstream=", name);
        label(f, cfg->upstreams[u].name);
        fprintf(f, "} %.6f\n%s_count{upstream=", (double)sum_us / 1e6, name);
        label(f, cfg->upstreams[u].name);
        fprintf(f, "} %llu\n", (unsigned long long)cum);
    }
}

static void per_upstream(FILE *f, const char *name, const char *type, const char *help,
                         const struct fg_config *cfg, size_t off)
{
    head(f, name, type, help);
    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        const struct fg_upstream *up = &cfg->upstreams[u];
        fprintf(f, "%s{upstream=", name);
        label(f, up->name);
        fprintf(f, "} %llu\n",
                (unsigned long long)ld((_Atomic uint64_t *)((char *)up->st + off)));
    }
}

static void backend_line(FILE *f, const char *name, const struct fg_upstream *u,
                         const struct fg_backend *b, unsigned long long v)
{
    fprintf(f, "%s{upstream=", name);
    label(f, u->name);
    fputs(",backend=", f);
    label(f, b->addr.text);
    fprintf(f, "} %llu\n", v);
}

static unsigned long long be_healthy(struct fg_backend *b) { return !atomic_load(&b->st->down); }
static unsigned long long be_ejected(struct fg_backend *b) { return (unsigned long long)fg_outlier_ejected(b); }
static unsigned long long be_ejections(struct fg_backend *b) { return atomic_load(&b->st->ejections); }
static unsigned long long be_active(struct fg_backend *b) { return atomic_load(&b->st->active); }

static const struct backend_series {
    const char *name, *type, *help;
    unsigned long long (*value)(struct fg_backend *b);
} backend_series[] = {
    {"fleetgate_backend_healthy", "gauge", "1 when the backend passes its health checks.", be_healthy},
    {"fleetgate_backend_ejected", "gauge", "1 while passive checks eject the backend.", be_ejected},
    {"fleetgate_backend_ejections_total", "counter", "Times passive checks ejected the backend.",
     be_ejections},
    {"fleetgate_backend_active_requests", "gauge", "Requests in progress on the backend.", be_active},
};

struct limits_ctx {
    FILE *f;
};

static void key_refusals(const char *name, const struct fg_limit_state *st, void *arg)
{
    struct limits_ctx *lc = arg;

    fputs("fleetgate_rate_limited_total{scope=\"key\",name=", lc->f);
    label(lc->f, name);
    fprintf(lc->f, "} %llu\n",
            (unsigned long long)ld((_Atomic uint64_t *)&st->refused));
}

int fg_metrics_render(const struct fg_config *cfg, char **out, size_t *len)
{
    FILE *f = open_memstream(out, len);

    if (!f)
        return -1;
    head(f, "fleetgate_build_info", "gauge", "The gateway's version.");
    fprintf(f, "fleetgate_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);

    head(f, "fleetgate_route_requests_total", "counter",
         "Requests by route and status class (none: no response reached the client).");
    by_class(f, "fleetgate_route_requests_total", cfg, 0);
    head(f, "fleetgate_upstream_requests_total", "counter", "Requests by upstream and status class.");
    by_class(f, "fleetgate_upstream_requests_total", cfg, 1);
    head(f, "fleetgate_backend_requests_total", "counter",
         "Requests by the backend that served them last, and status class.");
    by_class(f, "fleetgate_backend_requests_total", cfg, 2);

    const char *bytes_names[2] = {"fleetgate_route_received_bytes_total",
                                  "fleetgate_route_sent_bytes_total"};
    const char *bytes_help[2] = {"Request body bytes received from clients, by route.",
                                 "Response body bytes sent to clients, by route."};
    for (int k = 0; k < 2; k++) {
        head(f, bytes_names[k], "counter", bytes_help[k]);
        for (unsigned r = 0; r <= cfg->nroutes; r++) {
            unsigned slot = r == cfg->nroutes ? 0 : cfg->routes[r].st->stat_slot;
            uint64_t sum = 0;
            for (unsigned w = 0; w < nworkers; w++) {
                const struct fg_stat_slot *sl = seen_slot(all_workers[w].stats, slot);
                if (sl)
                    sum += ld((_Atomic uint64_t *)(k ? &sl->bytes_out : &sl->bytes_in));
            }
            fprintf(f, "%s{", bytes_names[k]);
            route_label(f, cfg, r);
            fprintf(f, "} %llu\n", (unsigned long long)sum);
        }
    }

    head(f, "fleetgate_upstream_request_duration_seconds", "histogram",
         "Time from the request head to the end of the response, by upstream.");
    histogram(f, "fleetgate_upstream_request_duration_seconds", cfg, 0);
    head(f, "fleetgate_upstream_response_header_duration_seconds", "histogram",
         "Time from the request head to the backend's response head (time to first byte).");
    histogram(f, "fleetgate_upstream_response_header_duration_seconds", cfg, 1);

    head(f, "fleetgate_client_connections", "gauge", "Client connections open, by protocol.");
    for (int h2 = 0; h2 < 2; h2++) {
        for (int tls = 0; tls < 2; tls++) {
            int64_t sum = 0;
            for (unsigned w = 0; w < nworkers; w++)
                if (all_workers[w].stats)
                    sum += atomic_load_explicit(&all_workers[w].stats->conns[h2][tls],
                                                memory_order_relaxed);
            fprintf(f, "fleetgate_client_connections{protocol=\"%s\",tls=\"%s\"} %lld\n",
                    h2 ? "h2" : "http/1.1", tls ? "true" : "false", (long long)sum);
        }
    }

    head(f, "fleetgate_client_connections_refused_total", "counter",
         "Client connections closed at once: over client.max_connections (a worker was "
         "still accepting) or client.max_connections_per_address.");
    fprintf(f, "fleetgate_client_connections_refused_total{reason=\"max_connections\"} %llu\n",
            (unsigned long long)fg_conn_limit_refused(FG_CONN_OVER_GLOBAL));
    fprintf(f, "fleetgate_client_connections_refused_total{reason=\"max_connections_per_address\"} "
               "%llu\n",
            (unsigned long long)fg_conn_limit_refused(FG_CONN_OVER_ADDRESS));
    head(f, "fleetgate_accept_pauses_total", "counter",
         "Times a worker stopped accepting: the connection limit reached, or no descriptors.");
    fprintf(f, "fleetgate_accept_pauses_total %llu\n", (unsigned long long)fg_conn_limit_pauses());

    head(f, "fleetgate_gateway_responses_total", "counter",
         "Responses the gateway made itself (refusals and errors), by status.");
    for (unsigned st = 100; st < 600; st++) {
        uint64_t sum = 0;
        for (unsigned w = 0; w < nworkers; w++)
            if (all_workers[w].stats)
                sum += ld(&all_workers[w].stats->gateway_status[st]);
        if (sum)
            fprintf(f, "fleetgate_gateway_responses_total{code=\"%u\"} %llu\n", st,
                    (unsigned long long)sum);
    }

    for (size_t k = 0; k < sizeof(backend_series) / sizeof(backend_series[0]); k++) {
        const struct backend_series *bs = &backend_series[k];
        head(f, bs->name, bs->type, bs->help);
        for (unsigned u = 0; u < cfg->nupstreams; u++)
            for (unsigned b = 0; b < cfg->upstreams[u].nbackends; b++)
                backend_line(f, bs->name, &cfg->upstreams[u], &cfg->upstreams[u].backends[b],
                             bs->value(&cfg->upstreams[u].backends[b]));
    }

    per_upstream(f, "fleetgate_upstream_retries_total", "counter",
                 "Requests sent again to another backend.", cfg,
                 offsetof(struct fg_upstream_state, retries));
    per_upstream(f, "fleetgate_upstream_retries_refused_total", "counter",
                 "Retries the retry budget refused.", cfg,
                 offsetof(struct fg_upstream_state, retries_refused));
    per_upstream(f, "fleetgate_upstream_queued_total", "counter",
                 "Requests that waited in the admission queue.", cfg,
                 offsetof(struct fg_upstream_state, queue_waits));
    per_upstream(f, "fleetgate_upstream_queue_timeouts_total", "counter",
                 "Requests answered 503 after waiting timeout_ms in the queue.", cfg,
                 offsetof(struct fg_upstream_state, queue_timeouts));
    per_upstream(f, "fleetgate_upstream_queue_rejected_total", "counter",
                 "Requests answered 503 because the queue was full.", cfg,
                 offsetof(struct fg_upstream_state, queue_full));
    head(f, "fleetgate_upstream_queue_length", "gauge", "Requests waiting in the admission queue.");
    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        fputs("fleetgate_upstream_queue_length{upstream=", f);
        label(f, cfg->upstreams[u].name);
        fprintf(f, "} %u\n", atomic_load(&cfg->upstreams[u].st->queued));
    }

    head(f, "fleetgate_rate_limited_total", "counter",
         "Requests answered 429, by the limit that refused them (key, route or global).");
    if (cfg->access) {
        struct limits_ctx lc = {f};
        fg_access_foreach_state(key_refusals, &lc);
        fprintf(f, "fleetgate_rate_limited_total{scope=\"global\",name=\"\"} %llu\n",
                (unsigned long long)ld((_Atomic uint64_t *)&cfg->access->global->refused));
    }
    for (unsigned r = 0; r < cfg->nroutes; r++) {
        if (!cfg->routes[r].limit_state)
            continue;
        fputs("fleetgate_rate_limited_total{scope=\"route\",", f);
        route_label(f, cfg, r);
        fprintf(f, "} %llu\n", (unsigned long long)ld(&cfg->routes[r].limit_state->refused));
    }

    head(f, "fleetgate_mirror_requests_total", "counter",
         "Copies of requests for routes' mirrors, by what became of them.");
    for (unsigned r = 0; r < cfg->nroutes; r++) {
        struct fg_route *rt = &cfg->routes[r];
        const char *res[4] = {"sent", "ok", "failed", "dropped"};
        _Atomic uint64_t *v[4] = {&rt->st->mirror_sent, &rt->st->mirror_ok,
                                  &rt->st->mirror_failed, &rt->st->mirror_dropped};
        if (!rt->mirror)
            continue;
        for (int k = 0; k < 4; k++) {
            fputs("fleetgate_mirror_requests_total{", f);
            route_label(f, cfg, r);
            fprintf(f, ",result=\"%s\"} %llu\n", res[k], (unsigned long long)ld(v[k]));
        }
    }
    if (fclose(f) != 0)
        return -1;
    return 0;
}
