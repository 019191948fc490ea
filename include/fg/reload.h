/* The running configuration and its replacement (SIGHUP, POST /reload).
 *
 * A reload loads and checks the file the gateway started with, exactly as
 * `fleetgate -t` does; a bad file is rejected with its error, and nothing
 * changes. A good one is prepared whole before anything changes: the key
 * file read, TLS certificates loaded, sockets bound for new listeners (each
 * worker gets its own, SO_REUSEPORT). Only then is it handed to every
 * worker (fg/wgen.h): new exchanges use it, exchanges in flight finish
 * with the configuration they began with, connections stay open, listeners
 * whose address is in both stay open (no connection in their accept queue
 * is lost) and the others are opened or closed. What the old configuration
 * learnt at run time goes on where the new one has the same thing
 * (fg/config_state.h). The health checker starts again with the new
 * upstreams; the GeoIP databases are the new configuration's (opened again
 * by the load).
 *
 * Not changed by a reload (logged when the file asks): the number of
 * workers and the access log's destination. */
#ifndef FG_RELOAD_H
#define FG_RELOAD_H

#include "fg/config-t.h"

struct fg_app;
struct fg_worker;
struct fg_health;

/* Start-up: creates and initialises the workers of <cfg> (one reference is
 * taken: the running configuration), binding their listeners, and starts
 * the health checker. -1 with *err set. */
int fg_runtime_start(struct fg_config *cfg, const struct fg_app *app, struct fg_worker *workers,
                     unsigned n, unsigned *ninit, char **err);
/* Starts the health checker (after the workers' signal mask is set). */
int fg_runtime_start_health(char **err);
/* The end, after the workers stopped: the health checker, then (after the
 * workers are freed) the reference. */
void fg_runtime_stop_health(void);
void fg_runtime_stop(void);

/* The configuration running now, one reference taken (release with
 * fg_config_unref()). */
struct fg_config *fg_runtime_config(void);

/* Reloads. <self>: the worker calling (the admin API), which takes the new
 * configuration at once; NULL from the main thread. Waits (at most 2 s) for
 * every worker to take it. Returns 0 applied; -1 rejected, with *msg (malloc'd)
 * saying why; -2 not now (another reload in progress, or stopping). */
int fg_reload(struct fg_worker *self, char **msg);
/* DNS discovery: the running configuration built again from its own text,
 * with these answers for its backend names (the resolver thread). Same
 * results as fg_reload(). */
int fg_reload_dns(const struct fg_dns_answers *dns, char **msg);
/* From now on reloads are refused (the gateway is stopping). */
void fg_reload_refuse(void);

#endif
