/* Shadow traffic: a copy of a share of a route's requests, body included,
 * sent to the route's mirror upstream. The copy's answer is read and
 * dropped; it never delays, alters or fails the request it copies: when the
 * mirror is slow (its queue passes the high watermark), the body too large,
 * or too many copies are in flight on this worker, the copy is dropped.
 * Outcomes are counted in the route's mirror_* atomics. Worker thread only. */
#ifndef FG_MIRROR_H
#define FG_MIRROR_H

#include <stddef.h>

struct fg_exchange;

/* After the primary request <x> was routed and bound: maybe start a copy
 * (the route's share, within its in-flight bound). */
void fg_mirror_maybe_start(struct fg_exchange *x);
/* Body bytes and the end of the primary's body, copied to its mirror. */
void fg_mirror_body(struct fg_exchange *x, const char *data, size_t len);
void fg_mirror_end(struct fg_exchange *x);
/* The primary is going away: a copy whose body is incomplete is dropped,
 * a complete one goes on alone. */
void fg_mirror_unlink(struct fg_exchange *x);
/* The worker stops: every copy still in flight is dropped. */
struct fg_worker;
void fg_mirror_stop_all(struct fg_worker *w);

#endif
