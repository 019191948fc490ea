/* Client connection limits (fg/conn_limit.h). */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fg/conn_limit.h"

#define STRIPES 64                      /* per-address counts: one lock per stripe */

struct addr_count {
    struct fg_ip ip;
    unsigned n;
};

static struct stripe {
    pthread_mutex_t lock;
    struct addr_count *a;
    unsigned n, cap;
} stripes[STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static _Atomic uint64_t open_conns;
static _Atomic uint64_t refused[3];
static _Atomic uint64_t pauses;

static void stripes_init(void)
{
    for (unsigned i = 0; i < STRIPES; i++)
        pthread_mutex_init(&stripes[i].lock, NULL);
}

static struct stripe *stripe_of(const struct fg_ip *ip)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a over the address */

    for (unsigned i = 0; i < 16; i++)
        h = (h ^ ip->addr[i]) * 1099511628211ull;
    return &stripes[h % STRIPES];
}

static int same_ip(const struct fg_ip *a, const struct fg_ip *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

unsigned long fg_conn_limit_max(const struct fg_client_cfg *cc)
{
    static unsigned long automatic;

    if (cc->max_connections)
        return cc->max_connections;
    if (!automatic) {
        /* half the descriptors left once the gateway's own are set aside:
         * each client connection may need one to a backend */
        struct rlimit rl;
        unsigned long n = 1024;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            n = (unsigned long)rl.rlim_cur;
        else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
            n = 1u << 20;
        automatic = n > 192 ? (n - 64) / 2 : 64;
    }
    return automatic;
}

int fg_conn_limit_full(const struct fg_client_cfg *cc)
{
    return atomic_load_explicit(&open_conns, memory_order_relaxed) >= fg_conn_limit_max(cc);
}

enum fg_conn_refusal fg_conn_limit_take(const struct fg_client_cfg *cc, struct fg_client_info *ci,
                                        int per_address)
{
    unsigned long max = fg_conn_limit_max(cc);

    if (atomic_fetch_add(&open_conns, 1) >= max) {
        atomic_fetch_sub(&open_conns, 1);
        atomic_fetch_add_explicit(&refused[FG_CONN_OVER_GLOBAL], 1, memory_order_relaxed);
        return FG_CONN_OVER_GLOBAL;
    }
    ci->counted = 1;
    ci->counted_ip = ci->ip;
    if (!per_address || !cc->max_connections_per_address || !ci->ip.family)
        return FG_CONN_OK;
    pthread_once(&stripes_once, stripes_init);
    struct stripe *s = stripe_of(&ci->ip);
    struct addr_count *e = NULL;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->n && !e; i++)
        if (same_ip(&s->a[i].ip, &ci->ip))
            e = &s->a[i];
    if (!e) {
        if (s->n == s->cap) {
            unsigned cap = s->cap ? s->cap * 2 : 16;
            struct addr_count *a = realloc(s->a, cap * sizeof(*a));
            if (!a) {                   /* out of memory: not counted by address */
                pthread_mutex_unlock(&s->lock);
                return FG_CONN_OK;
            }
            s->a = a;
            s->cap = cap;
        }
        e = &s->a[s->n++];
        e->ip = ci->ip;
        e->n = 0;
    }
    if (e->n >= cc->max_connections_per_address) {
        pthread_mutex_unlock(&s->lock);
        fg_conn_limit_give(ci);
        ci->counted = 0;
        atomic_fetch_add_explicit(&refused[FG_CONN_OVER_ADDRESS], 1, memory_order_relaxed);
        return FG_CONN_OVER_ADDRESS;
    }
    e->n++;
    ci->counted_addr = 1;
    pthread_mutex_unlock(&s->lock);
    return FG_CONN_OK;
}

void fg_conn_limit_give(const struct fg_client_info *ci)
{
    if (!ci->counted)
        return;
    atomic_fetch_sub(&open_conns, 1);
    if (!ci->counted_addr)
        return;
    struct stripe *s = stripe_of(&ci->counted_ip);
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->n; i++) {
        if (!same_ip(&s->a[i].ip, &ci->counted_ip))
            continue;
        if (--s->a[i].n == 0)
            s->a[i] = s->a[--s->n];     /* no entry for an address without connections */
        break;
    }
    pthread_mutex_unlock(&s->lock);
}

uint64_t fg_conn_limit_open(void)
{
    return atomic_load(&open_conns);
}

uint64_t fg_conn_limit_refused(enum fg_conn_refusal why)
{
    return atomic_load(&refused[why]);
}

void fg_conn_limit_note_pause(void)
{
    atomic_fetch_add_explicit(&pauses, 1, memory_order_relaxed);
}

uint64_t fg_conn_limit_pauses(void)
{
    return atomic_load(&pauses);
}
