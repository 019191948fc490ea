/* Counters for the metrics (GET /metrics on the admin listener).
 *
 * Each worker counts in its own block (struct fg_worker_stats): one writer,
 * so a count is a relaxed load and store, no locked instruction; the admin
 * handler, on any worker, sums the blocks of all workers with relaxed loads
 * when it is scraped. Counts shared by nature (backend health, retries,
 * queues, limits, mirrors) are read from where they already live. */
#ifndef FG_STATS_H
#define FG_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct fg_config;
struct fg_exchange;
struct fg_worker;

/* Latency histogram buckets, in seconds (upper bounds; +Inf beyond). */
#define FG_HIST_BUCKETS 14
extern const double fg_hist_bounds[FG_HIST_BUCKETS];

struct fg_hist {
    _Atomic uint64_t bucket[FG_HIST_BUCKETS + 1];   /* not cumulative; last: +Inf */
    _Atomic uint64_t sum_us;
};

/* The counts of one route, upstream or backend in one worker. Which slot a
 * thing counts in is its shared state's stat_slot (config_state.c), so its
 * counts go on across reloads while it stays in the configuration; slot 0 is
 * the route "(none)" (refused before routing). */
struct fg_stat_slot {
    _Atomic uint64_t requests[6];       /* by status class 1xx..5xx (and 0: no response) */
    _Atomic uint64_t bytes_in, bytes_out;   /* routes: request and response body bytes */
    struct fg_hist total;               /* upstreams: request start to response end */
    struct fg_hist ttfb;                /* upstreams: request start to the backend's head */
};

#define FG_STAT_NO_SLOT 0xffffffffu     /* more things than FG_STAT_SLOTS: not counted */
#define FG_STAT_CHUNK 64                /* slots per chunk */
#define FG_STAT_CHUNKS 1024
#define FG_STAT_SLOTS (FG_STAT_CHUNK * FG_STAT_CHUNKS)

struct fg_worker_stats {
    /* allocated by the owning worker when it first counts in one of them,
     * read by the scraper (NULL: nothing counted there yet) */
    _Atomic(struct fg_stat_slot *) chunk[FG_STAT_CHUNKS];
    _Atomic uint64_t gateway_status[600];   /* responses the gateway made itself */
    _Atomic int64_t conns[2][2];        /* open client connections [h2][tls] */
};

/* Any thread: a slot for a new route, upstream or backend, and its end
 * (its counts are zeroed in every worker for the next one); nothing may
 * count in a slot released. */
unsigned fg_stat_slot_new(void);
void fg_stat_slot_release(unsigned slot);
/* The workers whose counts a released slot is zeroed in (fg_stats_register
 * tells it). */
void fg_stat_slots_workers(struct fg_worker *workers, unsigned n);

/* The workers whose counts /metrics sums (daemon.c; NULL, 0 when they go). */
void fg_stats_register(struct fg_worker *workers, unsigned n);

int fg_stats_init(struct fg_worker_stats *s);
void fg_stats_free(struct fg_worker_stats *s);

/* One count, from the worker that owns <c>. */
static inline void fg_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void fg_stat_conn(struct fg_worker_stats *s, int h2, int tls, int delta)
{
    if (s)
        atomic_store_explicit(&s->conns[h2][tls],
                              atomic_load_explicit(&s->conns[h2][tls], memory_order_relaxed) + delta,
                              memory_order_relaxed);
}

/* An exchange of the gateway ends: counts its route, upstream, backend,
 * status, bytes and times. */
void fg_stats_exchange_end(struct fg_worker *w, struct fg_exchange *x);

/* The Prometheus text exposition of every worker's counts and the shared
 * state, malloc'd into *out. 0, or -1 out of memory. */
int fg_metrics_render(const struct fg_config *cfg, char **out, size_t *len);

#endif
