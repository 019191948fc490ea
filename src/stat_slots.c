/* Stat slots (fg/stats.h): which slot of every worker's counts a route,
 * upstream or backend counts in. Handing out and releasing a slot is rare
 * (a configuration is loaded or freed), so both take a lock. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fg/stats.h"
#include "fg/worker-t.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fg_worker *all_workers;   /* whose counts a released slot is zeroed in */
static unsigned nworkers;
static unsigned next_slot = 1;          /* 0: the route "(none)" */
static unsigned *free_slots, nfree_slots, free_cap;

void fg_stat_slots_workers(struct fg_worker *workers, unsigned n)
{
    pthread_mutex_lock(&lock);
    all_workers = workers;
    nworkers = n;
    pthread_mutex_unlock(&lock);
}

unsigned fg_stat_slot_new(void)
{
    unsigned slot = FG_STAT_NO_SLOT;

    pthread_mutex_lock(&lock);
    if (nfree_slots)
        slot = free_slots[--nfree_slots];
    else if (next_slot < FG_STAT_SLOTS)
        slot = next_slot++;
    pthread_mutex_unlock(&lock);
    return slot;
}

void fg_stat_slot_release(unsigned slot)
{
    if (slot == FG_STAT_NO_SLOT || slot == 0)
        return;
    pthread_mutex_lock(&lock);
    /* nothing counts in it any more: zero it for whoever gets it next */
    for (unsigned w = 0; w < nworkers; w++) {
        struct fg_worker_stats *s = all_workers[w].stats;
        struct fg_stat_slot *c =
            s ? atomic_load_explicit(&s->chunk[slot / FG_STAT_CHUNK], memory_order_acquire) : NULL;
        if (c)
            memset(&c[slot % FG_STAT_CHUNK], 0, sizeof(*c));
    }
    if (nfree_slots == free_cap) {
        unsigned cap = free_cap ? free_cap * 2 : 64;
        unsigned *n = realloc(free_slots, cap * sizeof(*n));
        if (!n) {                       /* the slot is lost: harmless */
            pthread_mutex_unlock(&lock);
            return;
        }
        free_slots = n;
        free_cap = cap;
    }
    free_slots[nfree_slots++] = slot;
    pthread_mutex_unlock(&lock);
}
