/* The upstream half of an exchange: picks a backend, writes the request to
 * it over HTTP/1.1, parses the response and streams it back through the
 * front's ops, with back-pressure both ways. Worker thread only. */
#ifndef FG_PROXY_H
#define FG_PROXY_H

#include <stddef.h>

#include "fg/exchange-t.h"

/* Upper bound on bytes queued in one direction before the other side is
 * paused, and the level at which it resumes. */
#define FG_HIGH_WATERMARK (256 * 1024)

/* CLOCK_MONOTONIC in nanoseconds (request timings). */
uint64_t fg_proxy_now_ns(void);
#define FG_LOW_WATERMARK (64 * 1024)

/* The request head is complete (x->state FG_X_REQUEST_HEAD): route it and
 * start sending it. May answer at once with an error (404, 503, ...). */
void fg_proxy_start(struct fg_exchange *x);

/* Request body bytes from the client. Returns 1 when the client should be
 * paused until front->resume_request(), else 0. Dropped silently when the
 * exchange has no backend any more (already answered). */
int fg_proxy_request_body(struct fg_exchange *x, const char *data, size_t len);

/* The request body is complete; trailers, if any, are in x->req_trailers. */
void fg_proxy_request_end(struct fg_exchange *x);

/* The client drained its queue below FG_LOW_WATERMARK: resume the backend. */
void fg_proxy_resume(struct fg_exchange *x);

/* Binds a backend of x->upstream to <x> and queues the request head (for
 * exchanges the proxy did not route: mirror copies). Returns 0 or -1. */
int fg_proxy_bind(struct fg_exchange *x);

/* A queued request (wait_queue.c) got backend <b> (its count taken), or
 * NULL: no backend is available any more. */
void fg_proxy_dequeued(struct fg_exchange *x, struct fg_backend *b);
/* A queued request waited its upstream's queue.timeout_ms: 503. */
void fg_proxy_queue_expired(struct fg_exchange *x);

/* Releases the backend connection and count of <x> without calling any
 * front op (used when the gateway answers by itself). */
void fg_proxy_detach(struct fg_exchange *x, int reusable);

#endif
