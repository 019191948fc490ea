#ifndef FG_SEND_CLOCK_H
#define FG_SEND_CLOCK_H

/* Slow readers of HTTP/2 responses (client.send_timeout_ms).
 *
 * On HTTP/1.1 the socket's write timeout bounds a client that reads
 * nothing. On HTTP/2 a client can stall one stream with flow control (a
 * window it never gives back) while its connection stays busy and its
 * socket writable: the stream would hold its buffered response, and its
 * backend connection while the response is unfinished, for as long as
 * the client likes. So a response body being sent is watched: if no DATA
 * of it went out for send_timeout_ms, the front's send_timeout() ends the
 * stream, as a socket write timeout ends an HTTP/1.1 connection.
 *
 * Sending a frame costs a bit set (fg_send_clock_progress); one timer per
 * worker walks the watched responses, running only while there are any. */

#include "fg/exchange.h"

struct fg_worker;

/* A response body starts on its way to the client: watch it. */
void fg_send_clock_start(struct fg_exchange *x);
/* The response is out, or the stream is gone: forget it. Idempotent. */
void fg_send_clock_stop(struct fg_exchange *x);
/* Some of the response went out. */
static inline void fg_send_clock_progress(struct fg_exchange *x) { x->send_progress = 1; }

/* Called by the worker's set-up and tear-down. */
int fg_send_clock_worker_init(struct fg_worker *w);
void fg_send_clock_worker_fini(struct fg_worker *w);

#endif
