/* The admin listener's handler (fg/admin.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <stdio.h>

#include <event2/buffer.h>

#include "fg/admin.h"
#include "fg/config.h"
#include "fg/reload.h"
#include "fg/admin_api.h"
#include "fg/log.h"
#include "fg/backend_state.h"
#include "fg/exchange.h"
#include "fg/keygen.h"
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
    if (atomic_load(&m->st->down)) {
        snprintf(why, size, "health checks failed: %s", info->down_why);
        return "down";
    }
    if (fg_outlier_ejected(b)) {
        /* loaded once: another thread may end or extend the ejection */
        uint64_t until = atomic_load(&m->st->ejected_until_ms);
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
    if (atomic_load(&m->st->draining)) {
        snprintf(why, size, "drained through the admin API");
        return "draining";
    }
    unsigned full = atomic_load(&m->st->weight_rt) ? atomic_load(&m->st->weight_rt) : b->weight;
    if ((w = fg_backend_weight_now(b)) < full * 100) {
        snprintf(why, size, "slow start: %u%% of its weight", w / full);
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

    pthread_mutex_lock(&m->st->info_lock);
    info = b->st->info;
    pthread_mutex_unlock(&m->st->info_lock);
    state = backend_state(b, &info, why, sizeof(why));
    json_object_set_new(o, "address", json_string(b->addr.text));
    if (b->dns_name)
        json_object_set_new(o, "dns_name", json_string(b->dns_name));
    json_object_set_new(o, "state", json_string(state));
    if (why[0])
        json_object_set_new(o, "why", json_string(why));
    json_object_set_new(o, "weight", json_integer(atomic_load(&m->st->weight_rt) ? atomic_load(&m->st->weight_rt)
                                                                         : b->weight));
    json_object_set_new(o, "configured_weight", json_integer(b->weight));
    json_object_set_new(o, "draining", json_boolean(atomic_load(&m->st->draining)));
    json_object_set_new(o, "effective_weight", json_real(fg_backend_weight_now(b) / 100.0));
    json_object_set_new(o, "active", json_integer(atomic_load(&m->st->active)));
    json_object_set_new(o, "max_requests", json_integer(b->max_requests));
    json_object_set_new(o, "requests", json_integer((json_int_t)atomic_load(&m->st->total)));
    if (u->health.enabled) {
        json_t *h = json_object();
        json_object_set_new(h, "up", json_boolean(!atomic_load(&m->st->down)));
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
        json_object_set_new(e, "ejections", json_integer(atomic_load(&m->st->ejections)));
        json_object_set_new(e, "consecutive_failures",
                            json_integer(atomic_load(&m->st->consecutive_failures)));
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
    json_object_set_new(o, "requests", json_integer((json_int_t)atomic_load(&u->st->requests)));
    q = json_object();
    json_object_set_new(q, "length", json_integer(atomic_load(&u->st->queued)));
    json_object_set_new(q, "max_length", json_integer(u->limited ? u->queue.max_length : 0));
    json_object_set_new(q, "timeouts", json_integer((json_int_t)atomic_load(&u->st->queue_timeouts)));
    json_object_set_new(q, "rejected_full", json_integer((json_int_t)atomic_load(&u->st->queue_full)));
    json_object_set_new(o, "queue", q);
    r = json_object();
    json_object_set_new(r, "enabled", json_boolean(u->retry.enabled));
    json_object_set_new(r, "retries", json_integer((json_int_t)atomic_load(&u->st->retries)));
    json_object_set_new(r, "refused_by_budget",
                        json_integer((json_int_t)atomic_load(&u->st->retries_refused)));
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
    const struct fg_config *cfg = x->gen->cfg;
    json_t *doc = json_object(), *ups = json_object();

    for (unsigned i = 0; i < cfg->nupstreams; i++)
        json_object_set_new(ups, cfg->upstreams[i].name, upstream_json(&cfg->upstreams[i]));
    json_object_set_new(doc, "upstreams", ups);
    /* routes with a split: the weights in use (the admin API may have set them) */
    json_t *routes = json_object();
    for (unsigned i = 0; i < cfg->nroutes; i++) {
        const struct fg_route *r = &cfg->routes[i];
        const struct fg_split_weights *rt;
        json_t *arms;
        if (!r->split || !r->name)
            continue;
        rt = atomic_load(&r->split->st->split_rt);
        if (rt && rt->narms != r->split->narms)
            rt = NULL;
        arms = json_object();
        for (unsigned a = 0; a < r->split->narms; a++)
            json_object_set_new(arms, r->split->arms[a].upstream->name,
                                json_integer(rt ? rt->weight[a] : r->split->arms[a].weight));
        json_object_set_new(routes, r->name, json_pack("{s:o, s:b}", "split_weights", arms,
                                                       "set_at_run_time", rt != NULL));
    }
    json_object_set_new(doc, "routes", routes);
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

/* Prometheus text format 0.0.4. */
static void metrics(struct fg_exchange *x)
{
    char *text = NULL;
    size_t len = 0;

    if (fg_metrics_render(x->gen->cfg, &text, &len) < 0) {
        free(text);
        fg_exchange_reply_error(x, 500, "out_of_memory", "out of memory");
        return;
    }
    fg_exchange_reply(x, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

#define ADMIN_BODY_MAX 65536

static int admin_body(struct fg_exchange *x, const char *data, size_t len)
{
    struct evbuffer *b = x->handler_data;

    if (x->state != FG_X_UPSTREAM)
        return 0;
    if (!b && !(b = x->handler_data = evbuffer_new()))
        return 0;
    if (evbuffer_get_length(b) + len > ADMIN_BODY_MAX) {
        fg_exchange_reply_error(x, 413, "body_too_large", "admin requests take at most 64 KiB");
        return 0;
    }
    evbuffer_add(b, data, len);
    return 0;
}

/* The next segment of <path> at *pos, percent-decoded into <out> (names may
 * hold anything, "/" written %2F). 0, or -1 when there is none or it is
 * malformed. */
static int segment(const char *path, size_t len, size_t *pos, char *out, size_t size)
{
    size_t i = *pos, n = 0;

    if (i >= len || path[i] != '/')
        return -1;
    for (i++; i < len && path[i] != '/' && path[i] != '?'; i++) {
        char ch = path[i];
        if (ch == '%') {
            int hi = i + 2 < len ? fg_hex_digit(path[i + 1]) : -1;
            int lo = i + 2 < len ? fg_hex_digit(path[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n + 1 >= size || ch == '\0')
            return -1;
        out[n++] = ch;
    }
    out[n] = '\0';
    *pos = i;
    return n ? 0 : -1;
}

static int is_method(const struct fg_exchange *x, const char *m)
{
    return x->method_len == strlen(m) && !memcmp(x->method, m, x->method_len);
}

static void not_allowed(struct fg_exchange *x, const char *allow)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "this admin endpoint answers %s", allow);
    fg_exchange_reply_error_ex(x, 405, "method_not_allowed", msg, "allow", allow);
}

static const char *body_of(struct fg_exchange *x, size_t *len)
{
    struct evbuffer *b = x->handler_data;

    *len = b ? evbuffer_get_length(b) : 0;
    return *len ? (const char *)evbuffer_pullup(b, -1) : "";
}

/* POST /upstreams/NAME/backends/ADDRESS and POST /routes/NAME/split */
static void change(struct fg_exchange *x)
{
    const struct fg_config *cfg = x->gen->cfg;
    size_t pos = 0, len, plen = x->path_len;
    char a[256], b[256], c[256], d[256], err[256];
    const char *body;

    if (segment(x->path, plen, &pos, a, sizeof a) < 0 || segment(x->path, plen, &pos, b, sizeof b) < 0 ||
        segment(x->path, plen, &pos, c, sizeof c) < 0) {
        fg_exchange_reply_error(x, 404, "not_found", "no such admin endpoint");
        return;
    }
    if (!strcmp(a, "routes") && !strcmp(c, "split") && pos == plen) {
        unsigned i = 0;
        while (i < cfg->nroutes && !(cfg->routes[i].name && !strcmp(cfg->routes[i].name, b)))
            i++;
        if (i == cfg->nroutes || !cfg->routes[i].split) {
            fg_exchange_reply_error(x, 404, "not_found", i == cfg->nroutes ? "no route has that name"
                                                                         : "that route has no split");
            return;
        }
        if (!is_method(x, "POST")) {
            not_allowed(x, "POST");
            return;
        }
        body = body_of(x, &len);
        if (fg_admin_set_split(cfg->routes[i].split, body, len, err, sizeof err) < 0) {
            fg_exchange_reply_error(x, 400, "bad_request", err);
            return;
        }
        fg_log_info("admin: route %s: split weights changed", b);
        status(x);
        return;
    }
    if (!strcmp(a, "upstreams") && !strcmp(c, "backends") &&
        segment(x->path, plen, &pos, d, sizeof d) == 0 && pos == plen) {
        struct fg_upstream *u = fg_config_upstream(cfg, b);
        struct fg_backend *be = NULL;
        for (unsigned i = 0; u && i < u->nbackends; i++)
            if (!strcmp(u->backends[i].addr.text, d))
                be = &u->backends[i];
        if (!be) {
            fg_exchange_reply_error(x, 404, "not_found", u ? "the upstream has no such backend"
                                                           : "no such upstream");
            return;
        }
        if (!is_method(x, "POST")) {
            not_allowed(x, "POST");
            return;
        }
        body = body_of(x, &len);
        if (fg_admin_set_backend(be, body, len, err, sizeof err) < 0) {
            fg_exchange_reply_error(x, 400, "bad_request", err);
            return;
        }
        fg_log_info("admin: upstream %s: backend %s: weight %u%s", b, d,
                    atomic_load(&be->st->weight_rt) ? atomic_load(&be->st->weight_rt) : be->weight,
                    atomic_load(&be->st->draining) ? ", draining" : "");
        status(x);
        return;
    }
    fg_exchange_reply_error(x, 404, "not_found", "no such admin endpoint");
}

/* POST /reload (or /admin/reload): the configuration file, loaded again;
 * answered once every worker has it (reload.c). */
static void reload(struct fg_exchange *x)
{
    char *msg = NULL;
    int rc;

    if (!is_method(x, "POST")) {
        not_allowed(x, "POST");
        return;
    }
    fg_log_info("admin: reload asked by %s", x->client ? x->client->addr : "?");
    rc = fg_reload(x->worker, &msg);
    if (rc == 0) {
        /* this worker took the new configuration already (and must not wait
         * for the reload lock: another reload may be waiting for it) */
        reply_json(x, 200, json_pack("{s:s, s:s}", "result", "reloaded", "config",
                                     x->worker->cfg->path));
    } else if (rc == -1) {
        fg_exchange_reply_error(x, 422, "invalid_config", msg ? msg : "out of memory");
    } else {
        fg_exchange_reply_error_ex(x, 503, "reload_unavailable", msg ? msg : "not now",
                                   "retry-after", "1");
    }
    free(msg);
}

static void admin_end(struct fg_exchange *x)
{
    int is_status = path_is(x, "/status"), is_metrics = path_is(x, "/metrics");
    int is_config = path_is(x, "/config");

    if (x->state != FG_X_UPSTREAM)
        return;                         /* answered already (413) */
    if (!fg_admin_authorized(x)) {
        fg_exchange_reply_error_ex(x, 401, "unauthorized", "the admin API needs its bearer token",
                                   "www-authenticate", "Bearer realm=\"fleetgate-admin\"");
        return;
    }
    if (path_is(x, "/reload") || path_is(x, "/admin/reload")) {
        reload(x);
        return;
    }
    if (!is_status && !is_metrics && !is_config) {
        change(x);
        return;
    }
    if (!is_method(x, "GET") && !is_method(x, "HEAD")) {
        not_allowed(x, "GET, HEAD");
        return;
    }
    if (is_status) {
        status(x);
    } else if (is_metrics) {
        metrics(x);
    } else {
        char *text = fg_admin_config_json(x->gen->cfg);
        if (!text) {
            fg_exchange_reply_error(x, 500, "out_of_memory", "out of memory");
            return;
        }
        fg_exchange_reply(x, 200, "application/json", text, strlen(text));
        free(text);
    }
}

static void admin_nothing(struct fg_exchange *x)
{
    (void)x;
}

static void admin_release(struct fg_exchange *x)
{
    if (x->handler_data) {
        evbuffer_free(x->handler_data);
        x->handler_data = NULL;
    }
}

const struct fg_handler_ops fg_admin_handler = {
    .start = admin_start,
    .request_body = admin_body,
    .request_end = admin_end,
    .resume = admin_nothing,
    .release = admin_release,
};
