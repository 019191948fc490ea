/* The retry budget of one upstream in one worker: retries may be at most
 * retry.budget_percent of the requests of the last ten seconds, plus
 * retry.min_retries_per_second (so a quiet upstream still retries). Counted
 * per worker thread without sharing: every worker keeps its own share
 * within the budget, so the whole gateway does. */
#ifndef FG_RETRY_BUDGET_H
#define FG_RETRY_BUDGET_H

#include <stdint.h>

#include "fg/config-t.h"

#define FG_BUDGET_SECONDS 10

struct fg_retry_budget {
    uint64_t second;                        /* of the newest slot */
    uint32_t requests[FG_BUDGET_SECONDS];   /* one slot per second */
    uint32_t retries[FG_BUDGET_SECONDS];
};

void fg_retry_budget_init(struct fg_retry_budget *b);
/* A request went to the upstream (first tries only). */
void fg_retry_budget_request(struct fg_retry_budget *b, uint64_t now_ms);
/* May one more retry go? When yes it is counted. */
int fg_retry_budget_take(struct fg_retry_budget *b, const struct fg_retry_cfg *rc, uint64_t now_ms);

#endif
