/* Retry budget (fg/retry_budget.h): a sliding window of one-second slots. */
#include "config.h"

#include <string.h>

#include "fg/retry_budget.h"

void fg_retry_budget_init(struct fg_retry_budget *b)
{
    memset(b, 0, sizeof(*b));
}

/* Clears the slots of the seconds that passed since the newest one. */
static void advance(struct fg_retry_budget *b, uint64_t now_ms)
{
    uint64_t sec = now_ms / 1000;

    if (sec <= b->second)
        return;
    if (sec - b->second >= FG_BUDGET_SECONDS) {
        memset(b->requests, 0, sizeof(b->requests));
        memset(b->retries, 0, sizeof(b->retries));
    } else {
        for (uint64_t s = b->second + 1; s <= sec; s++) {
            b->requests[s % FG_BUDGET_SECONDS] = 0;
            b->retries[s % FG_BUDGET_SECONDS] = 0;
        }
    }
    b->second = sec;
}

void fg_retry_budget_request(struct fg_retry_budget *b, uint64_t now_ms)
{
    advance(b, now_ms);
    b->requests[b->second % FG_BUDGET_SECONDS]++;
}

int fg_retry_budget_take(struct fg_retry_budget *b, const struct fg_retry_cfg *rc, uint64_t now_ms)
{
    uint64_t requests = 0, retries = 0;

    advance(b, now_ms);
    for (unsigned i = 0; i < FG_BUDGET_SECONDS; i++) {
        requests += b->requests[i];
        retries += b->retries[i];
    }
    /* (retries + 1) <= requests * pct / 100 + min per second * window */
    if ((retries + 1) * 100 >
        requests * rc->budget_percent + (uint64_t)rc->min_retries_per_second * FG_BUDGET_SECONDS * 100)
        return 0;
    b->retries[b->second % FG_BUDGET_SECONDS]++;
    return 1;
}
