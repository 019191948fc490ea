/* The client's address as routing sees it, and its geography
 * (fg/client_geo.h). */
#include "config.h"

#include <string.h>

#include "fg/client_geo.h"
#include "fg/exchange.h"
#include "fg/worker.h"

const struct fg_ip *fg_exchange_client_ip(struct fg_exchange *x)
{
    const struct fg_client_cfg *cc = &x->worker->cfg->client;
    const char *values[16];
    size_t lens[16];
    unsigned n = 0;

    if (x->client_known)
        return &x->client_ip;
    x->client_known = 1;
    if (!x->client)                     /* no connection: a test, a mirror copy */
        return &x->client_ip;
    x->client_ip = x->client->ip;
    if (!cc->ntrusted_proxies || !fg_ip_in(&x->client->ip, cc->trusted_proxies, cc->ntrusted_proxies))
        return &x->client_ip;
    for (unsigned i = 0; i < x->req_headers.n && n < 16; i++) {
        const struct fg_header *h = &x->req_headers.v[i];
        if (h->nlen == 15 && memcmp(h->name, "x-forwarded-for", 15) == 0) {
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
    const struct fg_geoip *db = x->worker->cfg->geoip_db;

    if (x->geo_known)
        return &x->geo;
    x->geo_known = 1;
    memset(&x->geo, 0, sizeof(x->geo));
    if (db) {
        const struct fg_ip *ip = fg_exchange_client_ip(x);
        if (ip->family)
            fg_geoip_lookup(db, ip->family, ip->addr, &x->geo);
    }
    return &x->geo;
}
