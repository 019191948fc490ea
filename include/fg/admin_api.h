/* Run-time controls of the admin listener: the bearer token, the running
 * configuration with its secrets redacted, a backend's weight and draining,
 * a split's weights. Changes live in the shared configuration snapshot's
 * atomics until the process stops (there is no configuration reload yet to
 * replace them). */
#ifndef FG_ADMIN_API_H
#define FG_ADMIN_API_H

#include <stddef.h>

#include "fg/config-t.h"

struct fg_exchange;

/* 1 when no token is configured, or the request carries it as
 * "Authorization: Bearer TOKEN" (compared by SHA-256, in constant time). */
int fg_admin_authorized(const struct fg_exchange *x);

/* The configuration as loaded, with key hashes, the admin token's hash and
 * routes' upstream_headers values replaced by "(redacted)"; malloc'd. */
char *fg_admin_config_json(const struct fg_config *cfg);

/* {"weight": 1..1000 | null, "drain": true | false} for backend <b>. -1
 * with <err> saying why. */
int fg_admin_set_backend(struct fg_backend *b, const char *body, size_t len, char *err,
                         size_t size);

/* {"weights": {UPSTREAM: 0..1000000, ...}} for split <sp>; arms not named
 * keep their weight. -1 with <err> saying why. */
int fg_admin_set_split(struct fg_split *sp, const char *body, size_t len, char *err, size_t size);

#endif
