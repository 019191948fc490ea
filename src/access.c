/* API keys and limits at run time (fg/access.h).
 *
 * The key set (the config file's keys and the key file's) is immutable and
 * replaced whole when the key file changes. Workers look keys up without a
 * lock: each publishes the set it is about to use in its own hazard slot
 * and checks it is still current; an exchange that found a key then holds a
 * reference on the set until it ends. The main thread, after swapping in a
 * new set, waits until no hazard slot names the old one and drops the
 * set's own reference; whoever drops the last frees it.
 *
 * Keys are stored as SHA-256 digests only. A presented key is hashed, and
 * its digest found through an open-addressing table on its first 8 bytes;
 * the match is confirmed with CRYPTO_memcmp() over all 32. The time taken
 * depends only on the digest of what the client sent, never on how much of
 * a stored key it got right. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "fg/access.h"
#include "fg/config.h"
#include "fg/exchange.h"
#include "fg/log.h"
#include "fg/usage_scan.h"
#include "fg/worker.h"

struct fg_keyset {
    _Atomic unsigned refs;              /* the current pointer's, and one per exchange */
    const struct fg_config *cfg;        /* whose keys it points to: one reference */
    const struct fg_api_key **keys;     /* config keys and file keys */
    unsigned n;
    struct fg_api_key *file_keys;       /* owned: freed with the set */
    unsigned nfile_keys;
    unsigned *slots;                    /* index + 1; 0: empty */
    unsigned mask;
};

/* Limit states by key name: they outlive key sets. Never freed before
 * fg_access_stop(): there are as many as distinct key names ever loaded. */
struct named_state {
    struct named_state *next;
    char *name;
    struct fg_limit_state state;
    struct fg_rate_cfg rps, tpm;        /* what the buckets count in (their ticks) */
};

static struct {
    /* taken by whoever reloads (main thread: the key file; a reload: the
     * whole configuration, from the main thread or the admin API) */
    pthread_mutex_t lock;
    const struct fg_config *cfg;
    struct fg_worker *workers;
    unsigned nworkers;
    _Atomic(struct fg_keyset *) current;
    /* written by the main thread only, new ones in front; read by /metrics
     * on a worker: published with release, never freed before stop */
    _Atomic(struct named_state *) states;
    struct stat file_seen;              /* the key file as last loaded */
    int have_file_seen;
} A = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- key sets ------------------------------------------------------------ */

static uint64_t digest_prefix(const unsigned char *d)
{
    uint64_t v;
    memcpy(&v, d, sizeof(v));
    return v;
}

/* The state of key <k>'s limits, kept from the sets before. A bucket whose
 * rate changed starts full again: its time is counted in the old rate's
 * ticks. */
/* The limit state of key name <k->name>, made on first use. Its buckets are
 * not touched here: apply_rates() does, once the key set is certain to be
 * used (a rejected file or reload must not refill anyone's bucket). */
static struct fg_limit_state *state_for(const struct fg_api_key *k)
{
    struct named_state *s;

    for (s = atomic_load(&A.states); s; s = s->next)
        if (strcmp(s->name, k->name) == 0)
            break;
    if (!s) {
        if (!(s = calloc(1, sizeof(*s))) || !(s->name = strdup(k->name))) {
            free(s);
            return NULL;
        }
        s->rps = k->limits.rps_rate;
        s->tpm = k->limits.tpm_rate;
        s->next = atomic_load(&A.states);
        atomic_store_explicit(&A.states, s, memory_order_release);
    }
    return &s->state;
}

/* A key whose rate changed starts its buckets afresh (their ticks are the
 * old rate's). Called just before <ks> is published. */
static void apply_rates(const struct fg_keyset *ks)
{
    for (unsigned i = 0; ks && i < ks->n; i++) {
        const struct fg_api_key *k = ks->keys[i];
        struct named_state *s =
            (struct named_state *)((char *)k->state - offsetof(struct named_state, state));
        if (memcmp(&s->rps, &k->limits.rps_rate, sizeof(s->rps)) != 0) {
            fg_rate_reset(&s->state.rps);
            s->rps = k->limits.rps_rate;
        }
        if (memcmp(&s->tpm, &k->limits.tpm_rate, sizeof(s->tpm)) != 0) {
            fg_rate_reset(&s->state.tpm);
            s->tpm = k->limits.tpm_rate;
        }
    }
}

static void keyset_free(struct fg_keyset *ks)
{
    if (!ks)
        return;
    fg_api_keys_free(ks->file_keys, ks->nfile_keys);
    free(ks->keys);
    free(ks->slots);
    fg_config_unref((struct fg_config *)ks->cfg);
    free(ks);
}

static void keyset_unref(struct fg_keyset *ks)
{
    if (ks && atomic_fetch_sub(&ks->refs, 1) == 1)
        keyset_free(ks);
}

/* A set of the config's keys and <file_keys> (taken over, also on error).
 * Names are unique across both: the key file may not redefine a config
 * key. */
static struct fg_keyset *keyset_build(const struct fg_config *cfg, struct fg_api_key *file_keys,
                                      unsigned nfile, char **err)
{
    const struct fg_access_cfg *ac = cfg->access;
    struct fg_keyset *ks = calloc(1, sizeof(*ks));
    unsigned n = ac->nkeys + nfile, size = 8;

    if (!ks) {
        fg_api_keys_free(file_keys, nfile);
        goto oom;
    }
    ks->cfg = fg_config_ref((struct fg_config *)cfg);
    ks->file_keys = file_keys;
    ks->nfile_keys = nfile;
    atomic_init(&ks->refs, 1);
    while (size < 2 * n)
        size *= 2;
    ks->mask = size - 1;
    if (!(ks->keys = calloc(n ? n : 1, sizeof(*ks->keys))) ||
        !(ks->slots = calloc(size, sizeof(*ks->slots))))
        goto oom;
    for (unsigned i = 0; i < n; i++) {
        struct fg_api_key *k = i < ac->nkeys ? &ac->keys[i] : &file_keys[i - ac->nkeys];
        unsigned slot = (unsigned)digest_prefix(k->sha256) & ks->mask;
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(ks->keys[j]->name, k->name) == 0) {
                *err = fg_strdupf("key \"%s\" is defined twice (in %s)", k->name,
                                 j < ac->nkeys ? "the configuration and the key file" : "the key file");
                goto fail;
            }
            if (memcmp(ks->keys[j]->sha256, k->sha256, 32) == 0) {
                *err = fg_strdupf("keys \"%s\" and \"%s\" have the same sha256", ks->keys[j]->name,
                                 k->name);
                goto fail;
            }
        }
        ks->keys[i] = k;
        while (ks->slots[slot])
            slot = (slot + 1) & ks->mask;
        ks->slots[slot] = i + 1;
    }
    /* only a valid set touches the limit states (a rejected file must not
     * refill anyone's bucket) */
    for (unsigned i = 0; i < n; i++) {
        struct fg_api_key *k = (struct fg_api_key *)ks->keys[i];
        struct fg_limit_state *st = state_for(k);
        if (!st)
            goto oom;
        if (k->state != st)     /* a config key keeps its state: no write */
            k->state = st;
    }
    ks->n = n;
    return ks;
oom:
    *err = fg_strdupf("out of memory building the key set");
fail:
    keyset_free(ks);
    return NULL;
}

static const struct fg_api_key *keyset_find(const struct fg_keyset *ks, const unsigned char *d)
{
    unsigned slot = (unsigned)digest_prefix(d) & ks->mask, i;

    while ((i = ks->slots[slot])) {
        const struct fg_api_key *k = ks->keys[i - 1];
        if (CRYPTO_memcmp(k->sha256, d, 32) == 0)
            return k;
        slot = (slot + 1) & ks->mask;
    }
    return NULL;
}

/* Swaps in <ks> and retires the old set once no worker is looking at it. */
static void publish(struct fg_keyset *ks)
{
    struct fg_keyset *old = atomic_exchange(&A.current, ks);

    if (!old)
        return;
    for (unsigned i = 0; i < A.nworkers; i++)
        while (atomic_load(&A.workers[i].keyset_hazard) == old)
            sched_yield();          /* a lookup takes microseconds */
    keyset_unref(old);
}

/* ---- loading ------------------------------------------------------------- */

/* The key set of <cfg>: its own keys and its key file's; *seen says what
 * file was read. */
static int load_file(const struct fg_config *cfg, struct fg_keyset **out, struct stat *seen,
                     char **err)
{
    const char *path = cfg->access->key_file;
    struct fg_api_key *keys = NULL;
    unsigned n = 0;

    if (path) {
        if (stat(path, seen) < 0) {
            *err = fg_strdupf("%s: %s", path, strerror(errno));
            return -1;
        }
        if (fg_key_file_load(cfg, path, &keys, &n, err) < 0)
            return -1;
    }
    return (*out = keyset_build(cfg, keys, n, err)) ? 0 : -1;
}

struct fg_access_next {
    const struct fg_config *cfg;
    struct fg_keyset *ks;
    struct stat seen;
};

struct fg_access_next *fg_access_prepare(const struct fg_config *cfg, char **err)
{
    struct fg_access_next *nx = calloc(1, sizeof(*nx));

    *err = NULL;
    if (!nx) {
        *err = fg_strdupf("out of memory");
        return NULL;
    }
    nx->cfg = cfg;
    pthread_mutex_lock(&A.lock);        /* the limit states by name */
    if (cfg->access && load_file(cfg, &nx->ks, &nx->seen, err) < 0) {
        pthread_mutex_unlock(&A.lock);
        free(nx);
        return NULL;
    }
    pthread_mutex_unlock(&A.lock);
    return nx;
}

void fg_access_commit(struct fg_access_next *nx)
{
    const struct fg_config *cfg = nx->cfg;

    pthread_mutex_lock(&A.lock);
    A.cfg = cfg;
    A.have_file_seen = cfg->access && cfg->access->key_file;
    A.file_seen = nx->seen;
    apply_rates(nx->ks);
    publish(nx->ks);                    /* NULL: no access section any more */
    if (nx->ks && cfg->access->key_file)
        fg_log_info("%u API keys (%u from %s)", nx->ks->n, nx->ks->nfile_keys,
                    cfg->access->key_file);
    else if (nx->ks)
        fg_log_info("%u API keys", nx->ks->n);
    pthread_mutex_unlock(&A.lock);
    free(nx);
}

void fg_access_abandon(struct fg_access_next *nx)
{
    if (!nx)
        return;
    keyset_unref(nx->ks);
    free(nx);
}

int fg_access_start(const struct fg_config *cfg, struct fg_worker *workers, unsigned n, char **err)
{
    struct fg_access_next *nx;

    A.workers = workers;
    A.nworkers = n;
    if (!(nx = fg_access_prepare(cfg, err)))
        return -1;
    fg_access_commit(nx);
    return 0;
}

static int changed(const struct stat *a, const struct stat *b)
{
    return a->st_ino != b->st_ino || a->st_dev != b->st_dev || a->st_size != b->st_size ||
           a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

int fg_access_reload(int force)
{
    const char *path;
    struct fg_keyset *ks;
    struct stat st, seen;
    char *err = NULL;
    int rc = 0;

    pthread_mutex_lock(&A.lock);
    if (!A.cfg || !A.cfg->access || !(path = A.cfg->access->key_file))
        goto out;
    if (stat(path, &st) < 0) {
        /* a rename-over in progress, or a mistake: keep serving the old keys */
        if (force)
            fg_log_error("key file %s: %s; the keys loaded before stay in use", path,
                         strerror(errno));
        rc = -1;
        goto out;
    }
    if (!force && A.have_file_seen && !changed(&st, &A.file_seen))
        goto out;
    if (load_file(A.cfg, &ks, &seen, &err) < 0) {
        fg_log_error("key file not reloaded, the keys loaded before stay in use: %s",
                     err ? err : "out of memory");
        free(err);
        A.file_seen = st;           /* report a bad file once, not every second */
        A.have_file_seen = 1;
        rc = -1;
        goto out;
    }
    A.file_seen = seen;
    A.have_file_seen = 1;
    apply_rates(ks);
    publish(ks);
    fg_log_info("key file %s reloaded: %u API keys", path, ks->n);
    rc = 1;
out:
    pthread_mutex_unlock(&A.lock);
    return rc;
}

void fg_access_stop(void)
{
    struct fg_keyset *ks = atomic_exchange(&A.current, NULL);
    struct named_state *s, *next;

    keyset_unref(ks);
    for (s = atomic_exchange(&A.states, NULL); s; s = next) {
        next = s->next;
        free(s->name);
        free(s);
    }
    A.have_file_seen = 0;
    A.cfg = NULL;
    A.workers = NULL;
    A.nworkers = 0;
}

void fg_access_foreach_state(void (*fn)(const char *name, const struct fg_limit_state *s,
                                         void *arg),
                             void *arg)
{
    for (struct named_state *s = atomic_load_explicit(&A.states, memory_order_acquire); s;
         s = s->next)
        fn(s->name, &s->state, arg);
}

/* ---- requests ------------------------------------------------------------ */

/* The credential of <x>: "Authorization: Bearer KEY", else "x-api-key:
 * KEY". Every header that could carry one is marked never to be sent
 * upstream, whichever was used. */
static const char *credential(struct fg_exchange *x, size_t *len)
{
    struct fg_headers *h = &x->req_headers;
    const char *bearer = NULL, *apikey = NULL;
    size_t blen = 0, alen = 0;

    for (unsigned i = 0; i < h->n; i++) {
        struct fg_header *e = &h->v[i];
        if (e->nlen == 13 && memcmp(e->name, "authorization", 13) == 0 && e->vlen >= 6 &&
            strncasecmp(e->value, "bearer", 6) == 0 && (e->vlen == 6 || e->value[6] == ' ')) {
            const char *v = e->value + 6;
            size_t n = e->vlen - 6;
            while (n && *v == ' ')
                v++, n--;
            while (n && v[n - 1] == ' ')
                n--;
            e->flags |= FG_HDR_DROP;
            if (!bearer)
                bearer = v, blen = n;
        } else if (e->nlen == 9 && memcmp(e->name, "x-api-key", 9) == 0) {
            e->flags |= FG_HDR_DROP;
            if (!apikey)
                apikey = e->value, alen = e->vlen;
        }
    }
    if (bearer) {
        *len = blen;
        return blen ? bearer : NULL;
    }
    *len = alen;
    return alen ? apikey : NULL;
}

enum fg_auth_result fg_access_authenticate(struct fg_exchange *x)
{
    _Atomic(struct fg_keyset *) *hazard = &x->worker->keyset_hazard;
    unsigned char d[SHA256_DIGEST_LENGTH];
    const struct fg_api_key *k;
    struct fg_keyset *ks;
    const char *key;
    size_t len;

    if (!(key = credential(x, &len)))
        return FG_AUTH_NONE;
    SHA256((const unsigned char *)key, len, d);
    do {
        ks = atomic_load(&A.current);
        atomic_store(hazard, ks);
    } while (ks != atomic_load(&A.current));
    if (!ks) {
        atomic_store(hazard, NULL);
        return FG_AUTH_UNKNOWN;
    }
    k = keyset_find(ks, d);
    if (k)
        atomic_fetch_add(&ks->refs, 1);
    atomic_store(hazard, NULL);
    if (!k)
        return FG_AUTH_UNKNOWN;
    x->keyset = ks;
    x->api_key = k;
    if ((x->key_name = fg_arena_dup(&x->arena, k->name, strlen(k->name))))
        x->key_name_len = (uint32_t)strlen(k->name);
    if (k->expires && (int64_t)time(NULL) >= k->expires)
        return FG_AUTH_EXPIRED;
    return FG_AUTH_OK;
}

int fg_access_key_allows_route(const struct fg_api_key *k, const struct fg_route *r)
{
    if (!k->nroutes)
        return 1;
    for (unsigned i = 0; i < k->nroutes; i++)
        if (r->name && strcmp(k->routes[i], r->name) == 0)
            return 1;
    return 0;
}

int fg_access_key_allows_model(const struct fg_api_key *k, const char *model, size_t len)
{
    if (!k->nmodels)
        return 1;
    for (unsigned i = 0; i < k->nmodels; i++)
        if (strlen(k->models[i]) == len && memcmp(k->models[i], model, len) == 0)
            return 1;
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Admission under every limit a request counts in (its key's, its route's,
 * the global one). First what can be undone: concurrency counts are taken
 * and tokens per minute looked at, limit by limit; then the requests per
 * second are taken, limit by limit, and given back if a later one refuses.
 * So a refusal anywhere costs the request no token anywhere. */
struct scope {
    const struct fg_limit_cfg *c;
    struct fg_limit_state *s;
    const char *name;
};

static void refuse(struct fg_limit_refusal *why, const struct scope *sc, const char *what,
                   uint64_t limit, const struct fg_rate_verdict *v)
{
    why->scope = sc->name;
    why->what = what;
    why->limit = limit;
    why->remaining = v ? v->remaining : 0;
    why->reset_s = v ? v->reset_s : 1;
    why->retry_after_s = v ? v->retry_after_s : 1;
    atomic_fetch_add_explicit(&sc->s->refused, 1, memory_order_relaxed);
}

int fg_access_admit(struct fg_exchange *x, struct fg_limit_refusal *why)
{
    const struct fg_access_cfg *ac = x->gen->cfg->access;
    const struct fg_route *r = x->route;
    uint64_t now = now_ns();
    struct fg_rate_verdict v;
    struct scope sc[3];
    unsigned n = 0, counted = 0, taken = 0;

    if (x->api_key)
        sc[n++] = (struct scope){&x->api_key->limits, x->api_key->state, "key"};
    if (r->limits)
        sc[n++] = (struct scope){r->limits, r->limit_state, "route"};
    if (ac && x->api_key)
        sc[n++] = (struct scope){&ac->limits, ac->global, "global"};

    for (; counted < n; counted++) {
        const struct fg_limit_cfg *c = sc[counted].c;
        struct fg_limit_state *st = sc[counted].s;
        if (c->concurrency && atomic_fetch_add(&st->active, 1) >= c->concurrency) {
            atomic_fetch_sub(&st->active, 1);
            refuse(why, &sc[counted], "concurrent requests", c->concurrency, NULL);
            goto undo;
        }
        if (c->tokens_per_minute && !fg_rate_check(&st->tpm, &c->tpm_rate, now, &v)) {
            if (c->concurrency)
                atomic_fetch_sub(&st->active, 1);
            refuse(why, &sc[counted], "tokens per minute", c->tokens_per_minute, &v);
            goto undo;
        }
    }
    for (; taken < n; taken++) {
        const struct fg_limit_cfg *c = sc[taken].c;
        if (!c->rps)
            continue;
        if (!fg_rate_take(&sc[taken].s->rps, &c->rps_rate, now, 1, &v)) {
            /* what "remaining" counts down from: the burst */
            refuse(why, &sc[taken], "requests per second", c->rps_rate.burst, &v);
            goto undo;
        }
        /* the tightest limit's figures go on the response */
        if (!x->rate_shown || v.remaining < x->rate_remaining) {
            x->rate_shown = 1;
            x->rate_limit = c->rps_rate.burst;
            x->rate_remaining = v.remaining;
            x->rate_reset_s = v.reset_s;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        const struct fg_limit_cfg *c = sc[i].c;
        if (!c->rps && !c->concurrency && !c->tokens_per_minute)
            continue;
        if (c->tokens_per_minute && !x->usage_on) {
            if (!(x->usage = fg_arena_alloc_object(&x->arena, sizeof(*x->usage))))
                continue;               /* out of memory: the tokens go uncounted */
            fg_usage_scan_init(x->usage);
            x->usage_on = 1;
        }
        x->held[x->nheld].cfg = c;
        x->held[x->nheld].state = sc[i].s;
        x->nheld++;
    }
    return 0;
undo:
    while (taken-- > 0)
        if (sc[taken].c->rps)
            fg_rate_refund(&sc[taken].s->rps, &sc[taken].c->rps_rate, 1);
    while (counted-- > 0)
        if (sc[counted].c->concurrency)
            atomic_fetch_sub(&sc[counted].s->active, 1);
    x->rate_shown = 0;
    fg_access_release(x);
    return -1;
}

void fg_access_release(struct fg_exchange *x)
{
    uint64_t tokens = 0, now = 0;

    if (x->usage_on && fg_usage_scan_result(x->usage, &tokens) && tokens)
        now = now_ns();
    for (unsigned i = 0; i < x->nheld; i++) {
        const struct fg_limit_cfg *c = x->held[i].cfg;
        struct fg_limit_state *s = x->held[i].state;
        if (c->concurrency)
            atomic_fetch_sub(&s->active, 1);
        if (c->tokens_per_minute && tokens)
            fg_rate_charge(&s->tpm, &c->tpm_rate, now, tokens);
    }
    x->nheld = 0;
    x->usage_on = 0;
    x->api_key = NULL;
    if (x->keyset) {
        keyset_unref(x->keyset);
        x->keyset = NULL;
    }
}
