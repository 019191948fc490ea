/* Passive health checks (outlier ejection) on real traffic: a backend that
 * fails `consecutive_failures` requests in a row (refused or timed-out
 * connections, resets, invalid answers, timeouts, 5xx) is ejected for
 * base_ejection_ms x the number of its ejections (at most max_ejection_ms),
 * unless that would take more than max_ejected_percent of its upstream out.
 * Shared atomics in struct fg_backend; any worker thread. */
#ifndef FG_OUTLIER_H
#define FG_OUTLIER_H

#include <stdint.h>

#include "fg/config-t.h"

void fg_outlier_failure(struct fg_backend *b, const char *why);
void fg_outlier_success(struct fg_backend *b);
/* The backend is ejected now (always 0 without outlier_detection). */
int fg_outlier_ejected(const struct fg_backend *b);
uint64_t fg_outlier_now_ms(void);

/* The backend's weight for balancing now, x100 (so that a ramp has steps
 * even for weight 1): its full weight, or during slow_start_ms after it came
 * back (health checks up, or its ejection ended) a share growing linearly
 * from 1. Balancers compare these, never the raw weights. */
unsigned fg_backend_weight_now(const struct fg_backend *b);

#endif
