#ifndef FG_SEND_CLOCK_H
#define FG_SEND_CLOCK_H

/* Slow readers of HTTP/2 responses (client.send_timeout_ms).
 *
 * On HTTP/1.1 the socket's write timeout bounds a client that reads
 * nothing. On HTTP/2 a client can stall one stream with flow control (a
 * window it never gives back) while its connection stays busy and its
 * socket writable: the stream would hold its buffered response, and its
 * backend connection while the response is unfinished, for as long as
 * the client likes. So a response whose body bytes wait to be sent is
 * watched: if none of it went out for send_timeout_ms, the front's
 * send_timeout() ends the stream, as a socket write timeout ends an
 * HTTP/1.1 connection. Time with nothing to send (a backend slow to send
 * more, SSE) is not counted: the front stops the clock when its buffer
 * empties and starts it again when bytes come.
 *
 * Sending a frame costs a bit set (fg_send_clock_progress); one timer per
 * worker walks the watched responses, running only while there are any. */

#include "fg/exchange.h"

struct fg_worker;

/* Response body bytes wait to be sent: watch them (if not already). */
void fg_send_clock_start(struct fg_exchange *x);
/* Nothing waits any more, or the stream is gone: forget it. Idempotent. */
void fg_send_clock_stop(struct fg_exchange *x);
/* Some of the response went out. */
static inline void fg_send_clock_progress(struct fg_exchange *x) { x->send_progress = 1; }

/* Called by the worker's set-up and tear-down. */
int fg_send_clock_worker_init(struct fg_worker *w);
void fg_send_clock_worker_fini(struct fg_worker *w);

#endif
