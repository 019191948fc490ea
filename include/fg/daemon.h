#ifndef FG_DAEMON_H
#define FG_DAEMON_H

#include "fg/config-t.h"

struct fg_app;

/* Serves <cfg> with <app> (NULL: the gateway, every listener proxying)
 * until SIGTERM or SIGINT: creates the TLS contexts and the workers, runs
 * them, then tears everything down. Returns the process exit status (0, or
 * 1 when start-up failed, with the reason logged). */
int fg_daemon_run(struct fg_config *cfg, const struct fg_app *app);

#endif
