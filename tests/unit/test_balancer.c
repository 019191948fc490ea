/* Balancer: least_conn by active/weight across "workers", tie rotation,
 * avoidance, and smooth weighted round-robin sequences. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fg/backend_state.h"
#include "fg/balancer.h"
#include "unit.h"

/* In place: the backends point back at their upstream. */
static void make_upstream(struct fg_upstream *u, enum fg_balance bal, const unsigned *weights,
                          unsigned n)
{
    memset(u, 0, sizeof(*u));
    u->balance = bal;
    u->nbackends = n;
    u->backends = calloc(n, sizeof(*u->backends));
    u->st = aligned_alloc(_Alignof(struct fg_upstream_state), sizeof(*u->st));
    memset(u->st, 0, sizeof(*u->st));
    for (unsigned i = 0; i < n; i++) {
        u->backends[i].st = calloc(1, sizeof(*u->backends[i].st));
        u->backends[i].weight = weights[i];
        u->backends[i].index = i;
        u->backends[i].upstream = u;
    }
}

static void free_upstream(struct fg_upstream *u)
{
    for (unsigned i = 0; i < u->nbackends; i++)
        free(u->backends[i].st);
    free(u->backends);
    free(u->st);
}

static const struct fg_tried *avoiding(struct fg_tried *t, const struct fg_backend *b)
{
    memset(t, 0, sizeof(*t));
    fg_tried_add(t, b);
    return t;
}

static void test_leastconn_prefers_fewest_active(void)
{
    unsigned w[] = { 1, 1, 1 };
    struct fg_upstream u;
    make_upstream(&u, FG_BALANCE_LEAST_CONN, w, 3);
    struct fg_lb_state st;
    struct fg_backend *b;

    fg_lb_state_init(&st, &u);
    u.backends[0].st->active = 5;
    u.backends[1].st->active = 2;
    u.backends[2].st->active = 7;
    b = fg_balancer_pick(&u, &st, NULL);
    CHECK(b == &u.backends[1]);
    CHECK_UINT(u.backends[1].st->active, 3);
    fg_balancer_release(b);
    CHECK_UINT(u.backends[1].st->active, 2);
    CHECK_UINT(u.backends[1].st->total, 1);
    fg_lb_state_free(&st);
    free_upstream(&u);
}

static void test_leastconn_weights(void)
{
    /* 4 active on weight 4 (1 per unit) beats 2 active on weight 1 */
    unsigned w[] = { 1, 4 };
    struct fg_upstream u;
    make_upstream(&u, FG_BALANCE_LEAST_CONN, w, 2);
    struct fg_lb_state st;

    fg_lb_state_init(&st, &u);
    u.backends[0].st->active = 2;
    u.backends[1].st->active = 4;
    CHECK(fg_lb_leastconn_pick(&u, &st, NULL) == &u.backends[1]);
    /* over many picks with none released, counts follow the weights */
    u.backends[0].st->active = u.backends[1].st->active = 0;
    for (int i = 0; i < 500; i++)
        fg_balancer_pick(&u, &st, NULL);
    CHECK_UINT(u.backends[0].st->active, 100);
    CHECK_UINT(u.backends[1].st->active, 400);
    fg_lb_state_free(&st);
    free_upstream(&u);
}

static void test_leastconn_ties_rotate(void)
{
    unsigned w[] = { 1, 1, 1, 1 };
    struct fg_upstream u;
    make_upstream(&u, FG_BALANCE_LEAST_CONN, w, 4);
    struct fg_lb_state st;
    unsigned seen[4] = { 0 };

    fg_lb_state_init(&st, &u);
    /* all idle, released at once: a pure tie every time */
    for (int i = 0; i < 400; i++) {
        struct fg_backend *b = fg_balancer_pick(&u, &st, NULL);
        seen[b->index]++;
        fg_balancer_release(b);
    }
    for (int i = 0; i < 4; i++)
        CHECK_UINT(seen[i], 100);
    fg_lb_state_free(&st);
    free_upstream(&u);
}

static void test_avoid(void)
{
    unsigned w[] = { 1, 1 };
    struct fg_upstream u;
    make_upstream(&u, FG_BALANCE_LEAST_CONN, w, 2);
    struct fg_upstream r;
    make_upstream(&r, FG_BALANCE_ROUND_ROBIN, w, 2);
    struct fg_lb_state st, rst;
    struct fg_tried t;

    fg_lb_state_init(&st, &u);
    fg_lb_state_init(&rst, &r);
    u.backends[1].st->active = 10;
    CHECK(fg_lb_leastconn_pick(&u, &st, avoiding(&t, &u.backends[0])) == &u.backends[1]);
    for (int i = 0; i < 5; i++)
        CHECK(fg_lb_roundrobin_pick(&r, &rst, avoiding(&t, &r.backends[1])) == &r.backends[0]);
    fg_lb_state_free(&st);
    fg_lb_state_free(&rst);
    free_upstream(&u);
    free_upstream(&r);
    /* an upstream with a single, avoided backend has nothing to offer */
    {
        unsigned one[] = { 1 };
        struct fg_upstream s;
        make_upstream(&s, FG_BALANCE_LEAST_CONN, one, 1);
        struct fg_lb_state sst;
        fg_lb_state_init(&sst, &s);
        CHECK(fg_balancer_pick(&s, &sst, avoiding(&t, &s.backends[0])) == NULL);
        CHECK_UINT(s.backends[0].st->active, 0);
        fg_lb_state_free(&sst);
        free_upstream(&s);
    }
}

static void test_smooth_round_robin(void)
{
    /* nginx's example: weights 5,1,1 -> a a b a c a a, repeating */
    unsigned w[] = { 5, 1, 1 };
    struct fg_upstream u;
    make_upstream(&u, FG_BALANCE_ROUND_ROBIN, w, 3);
    struct fg_lb_state st;
    const char *expect = "aabacaa" "aabacaa";
    char got[15] = { 0 };

    fg_lb_state_init(&st, &u);
    for (int i = 0; i < 14; i++) {
        struct fg_backend *b = fg_balancer_pick(&u, &st, NULL);
        got[i] = (char)('a' + b->index);
        fg_balancer_release(b);
    }
    CHECK_STR(got, expect);
    fg_lb_state_free(&st);
    free_upstream(&u);
}

static void test_round_robin_shares(void)
{
    unsigned w[] = { 3, 1 };
    struct fg_upstream u;
    make_upstream(&u, FG_BALANCE_ROUND_ROBIN, w, 2);
    struct fg_lb_state st;
    unsigned seen[2] = { 0 };

    fg_lb_state_init(&st, &u);
    for (int i = 0; i < 400; i++) {
        struct fg_backend *b = fg_balancer_pick(&u, &st, NULL);
        seen[b->index]++;
        fg_balancer_release(b);
    }
    CHECK_UINT(seen[0], 300);
    CHECK_UINT(seen[1], 100);
    fg_lb_state_free(&st);
    free_upstream(&u);
}

/* max_requests: a full backend is skipped; when all are full the pick
 * fails and says so (a request may wait), unlike when none is available. */
static void test_max_requests(void)
{
    unsigned w[] = { 1, 1 };
    struct fg_upstream u;
    struct fg_lb_state st;
    struct fg_backend *got[4];

    make_upstream(&u, FG_BALANCE_LEAST_CONN, w, 2);
    u.backends[0].max_requests = 1;
    u.backends[1].max_requests = 2;
    u.limited = 1;
    fg_lb_state_init(&st, &u);
    for (int i = 0; i < 3; i++)
        CHECK((got[i] = fg_balancer_pick(&u, &st, NULL)) != NULL);
    CHECK_UINT(u.backends[0].st->active, 1);
    CHECK_UINT(u.backends[1].st->active, 2);
    CHECK(fg_balancer_pick(&u, &st, NULL) == NULL);
    CHECK(fg_balancer_all_full(&u, NULL) == 1);
    fg_balancer_release(got[0]);
    CHECK(fg_balancer_pick(&u, &st, NULL) == &u.backends[0]);
    atomic_store(&u.backends[0].st->down, 1);
    atomic_store(&u.backends[1].st->down, 1);
    CHECK(fg_balancer_all_full(&u, NULL) == 0);
    fg_lb_state_free(&st);
    free_upstream(&u);
}

/* Retries: at most budget_percent of the last ten seconds' requests plus
 * min_retries_per_second x 10; old seconds leave the window. */
static void test_retry_budget(void)
{
    struct fg_retry_cfg rc = {.enabled = 1, .budget_percent = 20, .min_retries_per_second = 0};
    struct fg_retry_budget b;
    uint64_t t = 1000000;
    unsigned ok = 0;

    fg_retry_budget_init(&b);
    for (int i = 0; i < 100; i++)
        fg_retry_budget_request(&b, t);
    for (int i = 0; i < 50; i++)
        ok += (unsigned)fg_retry_budget_take(&b, &rc, t);
    CHECK_UINT(ok, 20);
    /* 9 s later the same second's requests still count: no more */
    CHECK(!fg_retry_budget_take(&b, &rc, t + 9000));
    /* 10 s later they left the window */
    for (int i = 0; i < 10; i++)
        fg_retry_budget_request(&b, t + 10500);
    ok = 0;
    for (int i = 0; i < 10; i++)
        ok += (unsigned)fg_retry_budget_take(&b, &rc, t + 10500);
    CHECK_UINT(ok, 2);
    /* the floor: 3 per second allows 30 in a window with no requests */
    rc.min_retries_per_second = 3;
    fg_retry_budget_init(&b);
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += (unsigned)fg_retry_budget_take(&b, &rc, t);
    CHECK_UINT(ok, 30);
}

static void test_retry_after_parse(void)
{
    time_t now = 784111777;             /* Sun, 06 Nov 1994 08:49:37 GMT */

    CHECK(fg_retry_after_parse("120", 3, now) == 120000);
    CHECK(fg_retry_after_parse(" 0", 2, now) == 0);
    CHECK(fg_retry_after_parse("Sun, 06 Nov 1994 08:50:07 GMT", 29, now) == 30000);
    CHECK(fg_retry_after_parse("Sun, 06 Nov 1994 08:49:00 GMT", 29, now) == 0);
    CHECK(fg_retry_after_parse("12s", 3, now) == -1);
    CHECK(fg_retry_after_parse("-5", 2, now) == -1);
    CHECK(fg_retry_after_parse("soon", 4, now) == -1);
    CHECK(fg_retry_after_parse("", 0, now) == -1);
    CHECK(fg_retry_after_parse("99999999999999999999", 20, now) == 86400000LL * 365);
}

int main(void)
{
    UNIT_RUN(test_leastconn_prefers_fewest_active);
    UNIT_RUN(test_leastconn_weights);
    UNIT_RUN(test_leastconn_ties_rotate);
    UNIT_RUN(test_avoid);
    UNIT_RUN(test_smooth_round_robin);
    UNIT_RUN(test_round_robin_shares);
    UNIT_RUN(test_max_requests);
    UNIT_RUN(test_retry_budget);
    UNIT_RUN(test_retry_after_parse);
    return unit_summary();
}
