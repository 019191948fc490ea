#ifndef FG_BODY_CLOCK_H
#define FG_BODY_CLOCK_H

/* The minimum receive rate of request bodies (slowloris on the body).
 *
 * A body being received has a credit of time, client.body_timeout_ms at
 * the start and never more. Time spent waiting for the client uses it
 * up; every byte received earns 1/client.body_min_rate seconds back. When
 * it runs out the request ends: 408 if no response has started, else the
 * stream is reset or the connection closed. So a body must never stall
 * for body_timeout_ms, and on average must come at body_min_rate or more.
 *
 * Time the gateway itself is not reading (the backend is slower than the
 * client: back-pressure) is not counted: the fronts say when they pause
 * and resume. One timer per worker walks the bodies in progress; reading
 * a byte costs nothing here (the fronts count x->req_body_bytes anyway). */

struct fg_exchange;
struct fg_worker;

/* A body follows the request head just completed: start its clock. */
void fg_body_clock_start(struct fg_exchange *x);
/* The body is complete, or no longer read: forget it. Idempotent. */
void fg_body_clock_stop(struct fg_exchange *x);
/* The front stopped reading this body for the backend, or resumed. */
void fg_body_clock_pause(struct fg_exchange *x);
void fg_body_clock_resume(struct fg_exchange *x);

/* Called by the worker's set-up and tear-down. */
int fg_body_clock_worker_init(struct fg_worker *w);
void fg_body_clock_worker_fini(struct fg_worker *w);

#endif
