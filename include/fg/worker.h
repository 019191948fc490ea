#ifndef FG_WORKER_H
#define FG_WORKER_H

#include "fg/worker-t.h"

/* Creates the worker's event base, pools and listening sockets (bound here,
 * in the calling thread, so a bind error stops start-up). <ssl_ctxs> has one
 * entry per listener (NULL for cleartext). Returns 0, or -1 with *err set to
 * a malloc'd message. Calls app->worker_init last. */
int fg_worker_init(struct fg_worker *w, unsigned id, const struct fg_config *cfg,
                   const struct fg_app *app, SSL_CTX **ssl_ctxs, char **err);
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

/* The idle pool for backend <b>. */
/* Any thread: the worker looks at its wait queues (wait_queue.c). */
void fg_worker_kick(struct fg_worker *w);

struct fg_pool *fg_worker_pool(struct fg_worker *w, const struct fg_backend *b);

#endif
