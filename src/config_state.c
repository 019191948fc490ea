/* The shared state of a configuration's backends, upstreams, routes and
 * limits: created with a freshly loaded configuration, and handed on by a
 * reload to the next configuration wherever it has the same thing
 * (fg/config_state.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fg/config_state.h"
#include "fg/log.h"
#include "fg/stats.h"

/* ---- reference counts ---------------------------------------------------- */

static void backend_state_unref(struct fg_backend_state *st)
{
    if (!st || atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) != 1)
        return;
    fg_stat_slot_release(st->stat_slot);
    pthread_mutex_destroy(&st->info_lock);
    free(st);
}

static void upstream_state_unref(struct fg_upstream_state *st)
{
    if (!st || atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) != 1)
        return;
    fg_stat_slot_release(st->stat_slot);
    free(st);
}

static void route_state_unref(struct fg_route_state *st)
{
    if (!st || atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) != 1)
        return;
    fg_stat_slot_release(st->stat_slot);
    free(atomic_load(&st->split_rt));
    for (struct fg_split_weights *o = st->retired, *n; o; o = n) {
        n = o->next_retired;
        free(o);
    }
    free(st);
}

static void limit_unref(struct fg_limit_shared *l)
{
    if (l && atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
        free(l);
}

struct fg_limit_shared *fg_limit_shared_new(void)
{
    struct fg_limit_shared *l = calloc(1, sizeof(*l));

    if (l)
        atomic_init(&l->refs, 1);
    return l;
}

/* ---- a fresh configuration ------------------------------------------------- */

int fg_config_states_new(struct fg_config *cfg)
{
    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        struct fg_upstream *up = &cfg->upstreams[u];
        /* aligned as its type asks (its hot fields on lines of their own) */
        if (!(up->st = aligned_alloc(_Alignof(struct fg_upstream_state), sizeof(*up->st))))
            return -1;
        memset(up->st, 0, sizeof(*up->st));
        atomic_init(&up->st->refs, 1);
        up->st->stat_slot = fg_stat_slot_new();
        for (unsigned b = 0; b < up->nbackends; b++) {
            struct fg_backend_state *st = calloc(1, sizeof(*st));
            if (!(up->backends[b].st = st))
                return -1;
            atomic_init(&st->refs, 1);
            st->stat_slot = fg_stat_slot_new();
            pthread_mutex_init(&st->info_lock, NULL);
        }
    }
    for (unsigned i = 0; i < cfg->nroutes; i++) {
        struct fg_route *r = &cfg->routes[i];
        if (!(r->st = calloc(1, sizeof(*r->st))))
            return -1;
        atomic_init(&r->st->refs, 1);
        r->st->stat_slot = fg_stat_slot_new();
        if (r->split)
            r->split->st = r->st;
    }
    return 0;
}

void fg_config_states_free(struct fg_config *cfg)
{
    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        struct fg_upstream *up = &cfg->upstreams[u];
        for (unsigned b = 0; up->backends && b < up->nbackends; b++)
            backend_state_unref(up->backends[b].st);
        upstream_state_unref(up->st);
    }
    for (unsigned i = 0; i < cfg->nroutes; i++) {
        route_state_unref(cfg->routes[i].st);
        limit_unref(cfg->routes[i].limit_shared);
    }
    if (cfg->access)
        limit_unref(cfg->access->global_shared);
}

/* ---- a reload -------------------------------------------------------------- */

static int limits_equal(const struct fg_limit_cfg *a, const struct fg_limit_cfg *b)
{
    return a && b && a->rps == b->rps && a->burst == b->burst &&
           a->concurrency == b->concurrency && a->tokens_per_minute == b->tokens_per_minute;
}

/* <next> takes <prev>'s limit state when the limit is the same. */
static void inherit_limit(struct fg_limit_shared **next, struct fg_limit_state **next_state,
                          const struct fg_limit_cfg *next_cfg, struct fg_limit_shared *prev,
                          const struct fg_limit_cfg *prev_cfg)
{
    if (!*next || !prev || !limits_equal(next_cfg, prev_cfg))
        return;
    atomic_fetch_add(&prev->refs, 1);
    limit_unref(*next);
    *next = prev;
    *next_state = &prev->s;
}

static int same_arms(const struct fg_split *a, const struct fg_split *b)
{
    if (!a || !b || a->narms != b->narms)
        return 0;
    for (unsigned i = 0; i < a->narms; i++)
        if (strcmp(a->arms[i].upstream->name, b->arms[i].upstream->name) != 0)
            return 0;
    return 1;
}

static const struct fg_route *matching_route(const struct fg_config *prev,
                                             const struct fg_config *next, unsigned i)
{
    const struct fg_route *r = &next->routes[i];

    if (r->name) {
        for (unsigned j = 0; j < prev->nroutes; j++)
            if (prev->routes[j].name && strcmp(prev->routes[j].name, r->name) == 0)
                return &prev->routes[j];
        return NULL;
    }
    /* unnamed: known by its position, as its metrics label says */
    return i < prev->nroutes && !prev->routes[i].name ? &prev->routes[i] : NULL;
}

static void inherit_route(struct fg_route *r, const struct fg_route *old)
{
    inherit_limit(&r->limit_shared, &r->limit_state, r->limits, old->limit_shared, old->limits);
    if ((r->split || old->split) && !same_arms(r->split, old->split)) {
        /* run-time weights for other arms mean nothing here (and an
         * old-generation admin request may still set some): this route
         * starts afresh, its counters too */
        if (atomic_load(&old->st->split_rt))
            fg_log_info("reload: route %s: its split's arms changed, so the weights set "
                        "through the admin API are dropped",
                        r->name ? r->name : "(unnamed)");
        return;
    }
    atomic_fetch_add(&old->st->refs, 1);
    route_state_unref(r->st);
    r->st = old->st;
    if (r->split)
        r->split->st = r->st;
}

void fg_config_inherit(struct fg_config *next, const struct fg_config *prev)
{
    for (unsigned u = 0; u < next->nupstreams; u++) {
        struct fg_upstream *up = &next->upstreams[u];
        const struct fg_upstream *old = fg_config_upstream(prev, up->name);
        if (!old)
            continue;
        atomic_fetch_add(&old->st->refs, 1);
        upstream_state_unref(up->st);
        up->st = old->st;
        for (unsigned b = 0; b < up->nbackends; b++) {
            struct fg_backend *be = &up->backends[b];
            for (unsigned k = 0; k < old->nbackends; k++) {
                if (strcmp(old->backends[k].addr.text, be->addr.text) != 0)
                    continue;
                atomic_fetch_add(&old->backends[k].st->refs, 1);
                backend_state_unref(be->st);
                be->st = old->backends[k].st;
                break;
            }
        }
    }
    for (unsigned i = 0; i < next->nroutes; i++) {
        const struct fg_route *old = matching_route(prev, next, i);
        if (old)
            inherit_route(&next->routes[i], old);
    }
    if (next->access && prev->access)
        inherit_limit(&next->access->global_shared, &next->access->global,
                      &next->access->limits, prev->access->global_shared, &prev->access->limits);
}
