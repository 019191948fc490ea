/* A worker's generations (fg/wgen.h). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "fg/config.h"
#include "fg/uconn.h"
#include "fg/wgen.h"
#include "fg/worker.h"

static void pool_unref(struct fg_pool *p)
{
    if (!p || --p->refs)
        return;
    while (!TAILQ_EMPTY(&p->idle))
        fg_uconn_close(TAILQ_FIRST(&p->idle));
    free(p);
}

/* The pools of <prev> by backend state, to find one in O(1): an
 * open-addressing table of twice their number. */
struct pool_index {
    struct fg_pool **slot;
    size_t mask;
};

static size_t hash_ptr(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17);
}

static int index_build(struct pool_index *ix, const struct fg_wgen *prev)
{
    size_t n = 0, cap = 8;

    ix->slot = NULL;
    ix->mask = 0;
    if (!prev)
        return 0;
    for (unsigned u = 0; u < prev->cfg->nupstreams; u++)
        n += prev->cfg->upstreams[u].nbackends;
    while (cap < 2 * n)
        cap *= 2;
    if (!(ix->slot = calloc(cap, sizeof(*ix->slot))))
        return -1;
    ix->mask = cap - 1;
    for (unsigned u = 0; u < prev->cfg->nupstreams; u++)
        for (unsigned b = 0; b < prev->cfg->upstreams[u].nbackends; b++) {
            struct fg_pool *p = prev->pools[u][b];
            size_t i = hash_ptr(p->st) & ix->mask;
            while (ix->slot[i] && ix->slot[i] != p)
                i = (i + 1) & ix->mask;
            ix->slot[i] = p;
        }
    return 0;
}

static struct fg_pool *index_find(const struct pool_index *ix, const struct fg_backend_state *st)
{
    if (!ix->slot)
        return NULL;
    for (size_t i = hash_ptr(st) & ix->mask; ix->slot[i]; i = (i + 1) & ix->mask)
        if (ix->slot[i]->st == st)
            return ix->slot[i];
    return NULL;
}

static void gen_free(struct fg_wgen *g)
{
    const struct fg_config *cfg = g->cfg;

    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        if (g->pools && g->pools[u]) {
            for (unsigned b = 0; b < cfg->upstreams[u].nbackends; b++)
                pool_unref(g->pools[u][b]);
            free(g->pools[u]);
        }
        if (g->lb)
            fg_lb_state_free(&g->lb[u]);
    }
    free(g->pools);
    free(g->lb);
    fg_config_unref((struct fg_config *)cfg);
    free(g);
}

struct fg_wgen *fg_wgen_new(struct fg_worker *w, const struct fg_config *cfg,
                            const struct fg_wgen *prev)
{
    struct fg_wgen *g = calloc(1, sizeof(*g));
    struct pool_index ix;
    unsigned n = cfg->nupstreams ? cfg->nupstreams : 1;

    if (!g)
        return NULL;
    if (index_build(&ix, prev) < 0) {
        free(g);
        return NULL;
    }
    g->worker = w;
    g->cfg = fg_config_ref((struct fg_config *)cfg);
    g->refs = 1;
    /* every slot zeroed: gen_free() copes with a half-built one */
    if (!(g->pools = calloc(n, sizeof(*g->pools))) || !(g->lb = calloc(n, sizeof(*g->lb))))
        goto fail;
    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        const struct fg_upstream *up = &cfg->upstreams[u];
        if (fg_lb_state_init(&g->lb[u], up) < 0 ||
            !(g->pools[u] = calloc(up->nbackends, sizeof(**g->pools))))
            goto fail;
        for (unsigned b = 0; b < up->nbackends; b++) {
            struct fg_pool *p = index_find(&ix, up->backends[b].st);
            if (!p) {
                if (!(p = calloc(1, sizeof(*p))))
                    goto fail;
                TAILQ_INIT(&p->idle);
                p->st = up->backends[b].st;
            }
            p->refs++;
            g->pools[u][b] = p;
        }
    }
    free(ix.slot);
    return g;
fail:
    free(ix.slot);
    gen_free(g);
    return NULL;
}

void fg_wgen_unref(struct fg_wgen *g)
{
    if (!g || --g->refs)
        return;
    TAILQ_REMOVE(&g->worker->gens, g, link);
    gen_free(g);
}
