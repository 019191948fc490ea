/* The shared state of a configuration's backends, upstreams, routes and
 * limits (struct fg_backend_state, fg_upstream_state, fg_route_state,
 * fg_limit_shared in config-t.h).
 *
 * Each is reference-counted by the configurations that hold it: a reload
 * hands it to the new configuration wherever that has the same thing, so
 * what the gateway learnt at run time survives the reload while requests of
 * the old configuration still count in the same place:
 *   - a backend: the same upstream name and address (health, ejections,
 *     in-flight requests, admin weight and drain, counters);
 *   - an upstream: the same name (queue length, retry and queue counters);
 *   - a route: the same name, or for an unnamed route the same position
 *     among the routes (counters; split weights set through the admin API,
 *     while the split has the same arms);
 *   - a route's or the global limit: the same route and the same limit
 *     (so a reload never hands out a fresh burst). */
#ifndef FG_CONFIG_STATE_H
#define FG_CONFIG_STATE_H

#include "fg/config.h"

/* Fresh state for every backend, upstream and route of a configuration just
 * parsed (fg_config_parse() calls it). 0, or -1 out of memory. */
int fg_config_states_new(struct fg_config *cfg);
/* Drops the configuration's references (fg_config_free() calls it). */
void fg_config_states_free(struct fg_config *cfg);

/* A limit's counts, one reference. */
struct fg_limit_shared *fg_limit_shared_new(void);

/* A reload: <next> takes <prev>'s state wherever it has the same thing. */
void fg_config_inherit(struct fg_config *next, const struct fg_config *prev);

#endif
