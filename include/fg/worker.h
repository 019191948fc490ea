#ifndef FG_WORKER_H
#define FG_WORKER_H

#include "fg/worker-t.h"

/* Creates the worker's event base and its first generation, listening on
 * the sockets of <first> (bound by the caller, so a bind error stops
 * start-up; the worker takes what <first> holds, the caller still frees
 * it). Returns 0, or -1 with *err set to a malloc'd message. Calls
 * app->worker_init last. */
int fg_worker_init(struct fg_worker *w, unsigned id, struct fg_worker_update *first,
                   const struct fg_app *app, char **err);
/* A listening socket for <lc> (SO_REUSEPORT: one per worker), or -1 with
 * *err set. */
int fg_listen_socket(const struct fg_listener_cfg *lc, char **err);
/* Frees an update and what it still holds. */
void fg_worker_update_free(struct fg_worker_update *up);
/* Worker thread: takes a pending update now (the admin API's reload does,
 * on its own worker, rather than wait for the kick). */
void fg_worker_apply_now(struct fg_worker *w);
/* A connection being set up no longer needs its listener. */
void fg_worker_listener_unref(struct fg_worker_listener *l);
int fg_worker_start(struct fg_worker *w);       /* spawns the thread */
void fg_worker_stop(struct fg_worker *w);       /* any thread: asks it to stop */
/* Any thread: asks it to close its listeners, let its connections finish
 * what they are doing (HTTP/2: GOAWAY; HTTP/1.1: close after the response),
 * and stop when none is left. */
void fg_worker_drain(struct fg_worker *w);
/* Worker thread: a client connection was unregistered; stops a draining
 * worker when it was the last. */
void fg_worker_conn_gone(struct fg_worker *w);
void fg_worker_join(struct fg_worker *w);
void fg_worker_free(struct fg_worker *w);

/* Any thread: the worker takes a pending update and looks at its wait
 * queues (wait_queue.c). */
void fg_worker_kick(struct fg_worker *w);

/* Accepting paused (fg/conn_limit.h). Worker thread: this worker's
 * listeners off until the global count is below its limit and <for_ms> have
 * passed. Any thread: every worker pauses (the last place was taken). */
void fg_worker_accept_pause(struct fg_worker *w, unsigned for_ms);
void fg_worker_accept_pause_all(void);
/* The workers fg_worker_accept_pause_all() reaches (daemon.c). */
void fg_workers_register(struct fg_worker *workers, unsigned n);


#endif
