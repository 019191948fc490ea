/* Active health checks: one thread with its own event loop checks every
 * backend of every upstream that has "health_check", once per backend
 * whatever the number of workers, and publishes the verdict in the
 * backend's shared `down` atomic, which the balancers of every worker read.
 * Backends start up; `fall` consecutive failures take one down, `rise`
 * consecutive passes bring it back. */
#ifndef FG_HEALTH_H
#define FG_HEALTH_H

#include "fg/config-t.h"

struct fg_health;

/* Starts the checker thread; NULL with *err NULL when no upstream asks for
 * checks, NULL with *err (malloc'd) on failure. */
struct fg_health *fg_health_start(const struct fg_config *cfg, char **err);
void fg_health_stop(struct fg_health *h);

#endif
