/* Who the client of an exchange is: its address (the socket's peer, or
 * what a trusted proxy says in X-Forwarded-For) and where that address is
 * (the "geoip" database). Both are worked out on first use and kept in the
 * exchange. Worker thread only. */
#ifndef FG_CLIENT_GEO_H
#define FG_CLIENT_GEO_H

#include "fg/client_addr.h"
#include "fg/geoip.h"

struct fg_config;
struct fg_exchange;
struct fg_worker;

/* The daemon's database handle, the current configuration's (a reload,
 * reload.c, opens the files again): fg_geo_start() before the workers run,
 * fg_geo_stop() after they stopped. */
void fg_geo_start(const struct fg_config *cfg, struct fg_worker *workers, unsigned n);
/* A reload: <cfg>'s database (opened by its loader) is the one in use. */
void fg_geo_switch(const struct fg_config *cfg);
void fg_geo_stop(void);

/* The peer, unless the peer is in client.trusted_proxies: then the first
 * address of X-Forwarded-For, from the right, that is not a trusted proxy. */
const struct fg_ip *fg_exchange_client_ip(struct fg_exchange *x);

/* Country, continent and ASN of fg_exchange_client_ip(); all unknown ("",
 * 0) without a database or for an address it does not hold. */
const struct fg_geo *fg_exchange_geo(struct fg_exchange *x);

#endif
