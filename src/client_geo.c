/* The client's address as routing sees it, and its geography
 * (fg/client_geo.h). */
#include "config.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "fg/client_geo.h"
#include "fg/exchange.h"
#include "fg/log.h"
#include "fg/worker.h"

/* The database in use: the current configuration's, replaced by a reload.
 * Workers look up without a lock: each publishes the handle it is about to
 * use in its own hazard slot and checks it is still current; the reloader
 * waits until no slot names the old handle (a lookup takes microseconds).
 * A configuration closes its own handle when it is freed, which is after
 * that. */
static struct {
    const struct fg_config *cfg;
    struct fg_worker *workers;
    unsigned nworkers;
    _Atomic(struct fg_geoip *) current;
} G;

void fg_geo_start(const struct fg_config *cfg, struct fg_worker *workers, unsigned n)
{
    G.cfg = cfg;
    G.workers = workers;
    G.nworkers = n;
    atomic_store(&G.current, cfg->geoip_db);
}

void fg_geo_switch(const struct fg_config *cfg)
{
    const struct fg_config *prev = G.cfg;
    struct fg_geoip *old = atomic_exchange(&G.current, cfg->geoip_db);

    G.cfg = cfg;
    if (!old)
        return;
    for (unsigned i = 0; i < G.nworkers; i++)
        while (atomic_load(&G.workers[i].geo_hazard) == old)
            sched_yield();
    /* the previous configuration closes its own when it goes */
    if (!prev || old != prev->geoip_db)
        fg_geoip_close(old);
}

void fg_geo_stop(void)
{
    struct fg_geoip *cur = atomic_exchange(&G.current, NULL);

    if (cur && G.cfg && cur != G.cfg->geoip_db)
        fg_geoip_close(cur);
    G.cfg = NULL;
    G.workers = NULL;
    G.nworkers = 0;
}

/* The exchange's configuration: its generation's (an exchange made by hand,
 * in unit tests, has none: its worker's). */
static const struct fg_config *exchange_cfg(const struct fg_exchange *x)
{
    return x->gen ? x->gen->cfg : x->worker->cfg;
}

const struct fg_ip *fg_exchange_client_ip(struct fg_exchange *x)
{
    const struct fg_client_cfg *cc = &exchange_cfg(x)->client;
    const char *values[16];
    size_t lens[16];
    unsigned n = 0;

    if (x->client_known)
        return &x->client_ip;
    x->client_known = 1;
    if (!x->client)                     /* no connection: a test, a mirror copy */
        return &x->client_ip;
    x->client_ip = x->client->ip;
    if (!cc->ntrusted_proxies || x->client->no_xff ||
        !fg_ip_in(&x->client->ip, cc->trusted_proxies, cc->ntrusted_proxies))
        return &x->client_ip;
    /* the walk starts from the right: keep the last 16 lines, those the
     * trusted proxies appended (a client may send as many as it likes) */
    for (unsigned i = 0; i < x->req_headers.n; i++) {
        const struct fg_header *h = &x->req_headers.v[i];
        if (h->nlen == 15 && memcmp(h->name, "x-forwarded-for", 15) == 0) {
            if (n == 16) {
                memmove(values, values + 1, 15 * sizeof(values[0]));
                memmove(lens, lens + 1, 15 * sizeof(lens[0]));
                n--;
            }
            values[n] = h->value;
            lens[n++] = h->vlen;
        }
    }
    if (n)
        fg_xff_client(&x->client->ip, cc->trusted_proxies, cc->ntrusted_proxies, values, lens, n,
                      &x->client_ip);
    return &x->client_ip;
}

const struct fg_geo *fg_exchange_geo(struct fg_exchange *x)
{
    _Atomic(struct fg_geoip *) *hazard = &x->worker->geo_hazard;
    const struct fg_ip *ip;
    struct fg_geoip *db;

    if (x->geo_known)
        return &x->geo;
    x->geo_known = 1;
    memset(&x->geo, 0, sizeof(x->geo));
    ip = fg_exchange_client_ip(x);
    if (!ip->family)
        return &x->geo;
    if (!G.cfg) {                       /* no daemon (unit tests): the config's */
        if (exchange_cfg(x)->geoip_db)
            fg_geoip_lookup(exchange_cfg(x)->geoip_db, ip->family, ip->addr, &x->geo);
        return &x->geo;
    }
    do {
        db = atomic_load(&G.current);
        atomic_store(hazard, db);
    } while (db != atomic_load(&G.current));
    if (db)
        fg_geoip_lookup(db, ip->family, ip->addr, &x->geo);
    atomic_store(hazard, NULL);
    return &x->geo;
}
