/* Routing: which route a request takes, and for a split route, which arm.
 * Worker thread only; reads the configuration snapshot and the exchange. */
#ifndef FG_ROUTE_H
#define FG_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "fg/config-t.h"

struct fg_exchange;
struct fg_rng;

/* The first route of <cfg> whose every match condition holds for the
 * request in <x> (path, host, method, headers, query, model), or NULL. The
 * model of a path other than /v2/models/NAME is the JSON body's "model": when
 * a route needs it and x->body_model_known is not set yet, returns NULL with
 * *need_body = 1 (<need_body> may be NULL); read the body, set
 * x->body_model*, and ask again. */
const struct fg_route *fg_route_match(const struct fg_config *cfg, const struct fg_exchange *x,
                                      int *need_body);

/* The path (query excluded, <len> bytes) is /v2/models/... */
int fg_route_path_has_model(const char *path, size_t len);

/* The model the request names: NAME of /v2/models/NAME[/...], else the
 * JSON body's "model" once the body was read; NULL when neither. */
const char *fg_request_model(const struct fg_exchange *x, size_t *len);

/* The upstream <r> sends <x> to: the first of its gray-release rules that
 * holds, else its own upstream or a split arm. A sticky split
 * hashes the identity (header or cookie value) onto the weights; without one
 * (no sticky key configured, or the request does not carry it) the arm is
 * drawn at random with the weights. */
struct fg_upstream *fg_route_upstream(const struct fg_route *r, const struct fg_exchange *x,
                                      struct fg_rng *rng);

/* Exposed for tests: the arm index a 64-bit identity hash falls in, and the
 * hash of an identity. */
unsigned fg_split_arm_of(const struct fg_split *sp, uint64_t hash);
uint64_t fg_split_hash(const char *s, size_t len);

#endif
