/* The admin listener's handler (fg/admin.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fg/admin.h"
#include "fg/backend_state.h"
#include "fg/exchange.h"
#include "fg/outlier.h"
#include "fg/stats.h"
#include "fg/worker.h"

static const char *const balance_names[] = {"least_conn", "round_robin"};

/* "up", "down", "ejected", "held", "full" or "warming", and why. */
static const char *backend_state(const struct fg_backend *b, const struct fg_backend_info *info,
                                 char *why, size_t size)
{
    struct fg_backend *m = (struct fg_backend *)b;
    uint64_t now = fg_outlier_now_ms(), held;
    unsigned w;

    why[0] = '\0';
    if (atomic_load(&m->down)) {
        snprintf(why, size, "health checks failed: %s", info->down_why);
        return "down";
    }
    if (fg_outlier_ejected(b)) {
        /* loaded once: another thread may end or extend the ejection */
        uint64_t until = atomic_load(&m->ejected_until_ms);
        snprintf(why, size, "ejected for %llu ms more after: %s",
                 (unsigned long long)(until > now ? until - now : 0), info->ejected_why);
        return "ejected";
    }
    if ((held = fg_backend_held_ms(b))) {
        snprintf(why, size, "it asked for %llu ms more without requests (Retry-After)",
                 (unsigned long long)held);
        return "held";
    }
    if (fg_backend_full(b)) {
        snprintf(why, size, "at max_requests (%u)", b->max_requests);
        return "full";
    }
    if ((w = fg_backend_weight_now(b)) < b->weight * 100) {
        snprintf(why, size, "slow start: %u%% of its weight", w / b->weight);
        return "warming";
    }
    return "up";
}

static json_t *backend_json(const struct fg_backend *b)
{
    struct fg_backend *m = (struct fg_backend *)b;
    const struct fg_upstream *u = b->upstream;
    struct fg_backend_info info;
    char why[256];
    const char *state;
    json_t *o = json_object();

    pthread_mutex_lock(&m->info_lock);
    info = b->info;
    pthread_mutex_unlock(&m->info_lock);
    state = backend_state(b, &info, why, sizeof(why));
    json_object_set_new(o, "address", json_string(b->addr.text));
    json_object_set_new(o, "state", json_string(state));
    if (why[0])
        json_object_set_new(o, "why", json_string(why));
    json_object_set_new(o, "weight", json_integer(b->weight));
    json_object_set_new(o, "effective_weight", json_real(fg_backend_weight_now(b) / 100.0));
    json_object_set_new(o, "active", json_integer(atomic_load(&m->active)));
    json_object_set_new(o, "max_requests", json_integer(b->max_requests));
    json_object_set_new(o, "requests", json_integer((json_int_t)atomic_load(&m->total)));
    if (u->health.enabled) {
        json_t *h = json_object();
        json_object_set_new(h, "up", json_boolean(!atomic_load(&m->down)));
        if (info.check_ms) {
            json_object_set_new(h, "last_check", json_string(info.check));
            json_object_set_new(h, "last_check_ms_ago",
                                json_integer((json_int_t)(fg_outlier_now_ms() - info.check_ms)));
        } else {
            json_object_set_new(h, "last_check", json_null());
        }
        json_object_set_new(o, "health_check", h);
    }
    if (u->outlier.enabled) {
        json_t *e = json_object();
        json_object_set_new(e, "ejected", json_boolean(fg_outlier_ejected(b)));
        json_object_set_new(e, "ejections", json_integer(atomic_load(&m->ejections)));
        json_object_set_new(e, "consecutive_failures",
                            json_integer(atomic_load(&m->consecutive_failures)));
        if (info.ejected_why[0])
            json_object_set_new(e, "last_ejection", json_string(info.ejected_why));
        json_object_set_new(o, "outlier_detection", e);
    }
    return o;
}

static json_t *upstream_json(struct fg_upstream *u)
{
    json_t *o = json_object(), *bs = json_array(), *q, *r;

    json_object_set_new(o, "balance", json_string(balance_names[u->balance]));
    json_object_set_new(o, "requests", json_integer((json_int_t)atomic_load(&u->requests)));
    q = json_object();
    json_object_set_new(q, "length", json_integer(atomic_load(&u->queued)));
    json_object_set_new(q, "max_length", json_integer(u->limited ? u->queue.max_length : 0));
    json_object_set_new(q, "timeouts", json_integer((json_int_t)atomic_load(&u->queue_timeouts)));
    json_object_set_new(q, "rejected_full", json_integer((json_int_t)atomic_load(&u->queue_full)));
    json_object_set_new(o, "queue", q);
    r = json_object();
    json_object_set_new(r, "enabled", json_boolean(u->retry.enabled));
    json_object_set_new(r, "retries", json_integer((json_int_t)atomic_load(&u->retries)));
    json_object_set_new(r, "refused_by_budget",
                        json_integer((json_int_t)atomic_load(&u->retries_refused)));
    json_object_set_new(o, "retry", r);
    for (unsigned i = 0; i < u->nbackends; i++)
        json_array_append_new(bs, backend_json(&u->backends[i]));
    json_object_set_new(o, "backends", bs);
    return o;
}

static void reply_json(struct fg_exchange *x, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    json_decref(doc);
    if (!text) {
        fg_exchange_reply_error(x, 500, "out_of_memory", "out of memory");
        return;
    }
    fg_exchange_reply(x, status, "application/json", text, strlen(text));
    free(text);
}

static void status(struct fg_exchange *x)
{
    const struct fg_config *cfg = x->worker->cfg;
    json_t *doc = json_object(), *ups = json_object();

    for (unsigned i = 0; i < cfg->nupstreams; i++)
        json_object_set_new(ups, cfg->upstreams[i].name, upstream_json(&cfg->upstreams[i]));
    json_object_set_new(doc, "upstreams", ups);
    reply_json(x, 200, doc);
}

static int path_is(const struct fg_exchange *x, const char *p)
{
    size_t len = strlen(p);

    return x->path_len >= len && !memcmp(x->path, p, len) &&
           (x->path_len == len || x->path[len] == '?');
}

static void admin_start(struct fg_exchange *x)
{
    x->state = FG_X_UPSTREAM;
}

static int admin_body(struct fg_exchange *x, const char *data, size_t len)
{
    (void)x, (void)data, (void)len;
    return 0;                   /* no endpoint takes a body: dropped */
}

/* Prometheus text format 0.0.4. */
static void metrics(struct fg_exchange *x)
{
    char *text = NULL;
    size_t len = 0;

    if (fg_metrics_render(x->worker->cfg, &text, &len) < 0) {
        free(text);
        fg_exchange_reply_error(x, 500, "out_of_memory", "out of memory");
        return;
    }
    fg_exchange_reply(x, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void admin_end(struct fg_exchange *x)
{
    int is_status = path_is(x, "/status"), is_metrics = path_is(x, "/metrics");

    if (!is_status && !is_metrics) {
        fg_exchange_reply_error(x, 404, "not_found",
                                "no such admin endpoint (try GET /status or GET /metrics)");
        return;
    }
    if (!(x->method_len == 3 && !memcmp(x->method, "GET", 3)) &&
        !(x->method_len == 4 && !memcmp(x->method, "HEAD", 4))) {
        fg_exchange_reply_error_ex(x, 405, "method_not_allowed",
                                   is_status ? "/status answers GET" : "/metrics answers GET",
                                   "allow", "GET, HEAD");
        return;
    }
    if (is_status)
        status(x);
    else
        metrics(x);
}

static void admin_nothing(struct fg_exchange *x)
{
    (void)x;
}

const struct fg_handler_ops fg_admin_handler = {
    .start = admin_start,
    .request_body = admin_body,
    .request_end = admin_end,
    .resume = admin_nothing,
    .release = admin_nothing,
};
