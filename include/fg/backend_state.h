/* Whether a backend may take a request now, from the shared state every
 * worker reads: the health checker's verdict (health.c), passive ejection
 * (outlier.c), a Retry-After it sent (held until then), and its
 * max_requests. Any thread. */
#ifndef FG_BACKEND_STATE_H
#define FG_BACKEND_STATE_H

#include <stdint.h>
#include <time.h>

#include "fg/config-t.h"

/* Up, not ejected, not held by a Retry-After: it could take requests. */
int fg_backend_available(const struct fg_backend *b);

/* At its max_requests now (never without one). */
static inline int fg_backend_full(const struct fg_backend *b)
{
    /* seq_cst: see fg_balancer_release() */
    return b->max_requests && atomic_load(&((struct fg_backend *)b)->st->active) >= b->max_requests;
}

/* The backend answered <status> with Retry-After <value> (delta-seconds or
 * an HTTP-date): keep requests away from it until then, at most the
 * upstream's retry.max_retry_after_ms. Only for upstreams with "retry". */
void fg_backend_retry_after(struct fg_backend *b, int status, const char *value, size_t len);

/* A Retry-After value: delta-seconds, or an IMF-fixdate ("Sun, 06 Nov 1994
 * 08:49:37 GMT") taken against <now>. Milliseconds from now (0 for a date
 * past), or -1 when it is neither. */
int64_t fg_retry_after_parse(const char *value, size_t len, time_t now);

/* Milliseconds until the Retry-After hold of <b> ends (0: none). */
uint64_t fg_backend_held_ms(const struct fg_backend *b);

/* Records a line for /status under the backend's lock. */
void fg_backend_note(struct fg_backend *b, char *field, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
