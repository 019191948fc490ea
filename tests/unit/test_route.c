/* Route matching on a request head and split arms: sticky, proportional,
 * and minimal movement when weights change. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "fg/access.h"
#include "fg/client_addr.h"
#include "fg/config.h"
#include "fg/exchange.h"
#include "fg/headers.h"
#include "fg/json_model.h"
#include "fg/request_id.h"
#include "fg/route.h"
#include "fg/worker.h"
#include "unit.h"

static struct fg_config *load(const char *text)
{
    char *err = NULL;
    struct fg_config *cfg = fg_config_parse(text, strlen(text), "t.json", &err);
    if (!cfg)
        fprintf(stderr, "config: %s\n", err ? err : "?");
    free(err);
    return cfg;
}

/* A request head in <x>: method, target, authority, then name/value pairs. */
static void head(struct fg_exchange *x, const char *method, const char *path, const char *host,
                 const char *const *hdrs)
{
    fg_exchange_reset(x);
    x->method = (char *)method;
    x->method_len = (uint32_t)strlen(method);
    x->path = (char *)path;
    x->path_len = (uint32_t)strlen(path);
    x->authority = (char *)host;
    x->authority_len = host ? (uint32_t)strlen(host) : 0;
    for (; hdrs && hdrs[0]; hdrs += 2)
        fg_headers_add(&x->req_headers, (char *)hdrs[0], strlen(hdrs[0]), (char *)hdrs[1],
                       strlen(hdrs[1]));
}

static const char *routed(const struct fg_config *cfg, struct fg_exchange *x)
{
    const struct fg_route *r = fg_route_match(cfg, x, NULL);
    return r ? r->upstream->name : "none";
}

static void test_matching(void)
{
    struct fg_config *cfg = load(
        "{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}],"
        " \"upstreams\": {\"exact\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
        "  \"host\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
        "  \"post\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
        "  \"hdr\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
        "  \"query\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
        "  \"model\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
        "  \"rest\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]}},"
        " \"routes\": ["
        "  {\"match\": {\"path\": \"/exact\"}, \"upstream\": \"exact\"},"
        "  {\"match\": {\"host\": \"*.example.com\"}, \"upstream\": \"host\"},"
        "  {\"match\": {\"path_prefix\": \"/api/\", \"methods\": [\"POST\"]}, \"upstream\": \"post\"},"
        "  {\"match\": {\"headers\": {\"x-tenant\": \"t1\"}}, \"upstream\": \"hdr\"},"
        "  {\"match\": {\"query\": {\"arm\": \"b c\"}}, \"upstream\": \"query\"},"
        "  {\"match\": {\"model\": \"digits\"}, \"upstream\": \"model\"},"
        "  {\"match\": {\"path_prefix\": \"/pre/fix\"}, \"upstream\": \"exact\"},"
        "  {\"match\": {}, \"upstream\": \"rest\"}]}");
    struct fg_exchange x;
    static const char *const tenant[] = {"x-tenant", "t1", NULL};
    static const char *const other[] = {"x-tenant", "t2", "x-other", "t1", NULL};

    if (!CHECK(cfg != NULL))
        return;
    fg_exchange_init(&x, NULL);
    head(&x, "GET", "/exact", "a", NULL);
    CHECK_STR(routed(cfg, &x), "exact");
    head(&x, "GET", "/exact?q=1", "a", NULL);
    CHECK_STR(routed(cfg, &x), "exact");
    head(&x, "GET", "/exact/more", "a", NULL);
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "GET", "/", "api.Example.COM:8080", NULL);
    CHECK_STR(routed(cfg, &x), "host");
    head(&x, "GET", "/", "example.com", NULL);           /* the bare suffix is not a subdomain */
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "GET", "/", "badexample.com", NULL);
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "POST", "/api/x", "a", NULL);
    CHECK_STR(routed(cfg, &x), "post");
    head(&x, "GET", "/api/x", "a", NULL);
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "GET", "/", "a", tenant);
    CHECK_STR(routed(cfg, &x), "hdr");
    head(&x, "GET", "/", "a", other);
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "GET", "/?x=1&arm=b%20c", "a", NULL);
    CHECK_STR(routed(cfg, &x), "query");
    head(&x, "GET", "/?arm=b+c", "a", NULL);
    CHECK_STR(routed(cfg, &x), "query");
    head(&x, "GET", "/?arm=b", "a", NULL);
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "POST", "/v2/models/digits/infer", "a", NULL);
    CHECK_STR(routed(cfg, &x), "model");
    head(&x, "GET", "/v2/models/digits", "a", NULL);
    CHECK_STR(routed(cfg, &x), "model");
    head(&x, "GET", "/v2/models/digits2/infer", "a", NULL);
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "GET", "/pre/fix/more", "a", NULL);
    CHECK_STR(routed(cfg, &x), "exact");
    head(&x, "GET", "/pre/fi", "a", NULL);
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "GET", "/pre?/fix", "a", NULL);             /* the query is not part of the path */
    CHECK_STR(routed(cfg, &x), "rest");
    head(&x, "GET", "/", NULL, NULL);                    /* no host: host routes skip */
    CHECK_STR(routed(cfg, &x), "rest");
    fg_exchange_destroy(&x);
    fg_config_free(cfg);
}

static void test_split_arms(void)
{
    struct fg_upstream a = {.name = (char *)"a"}, b = {.name = (char *)"b"};
    struct fg_split_arm arms90[] = {{&a, 90}, {&b, 10}}, arms80[] = {{&a, 80}, {&b, 20}};
    struct fg_split s90 = {.arms = arms90, .narms = 2, .total = 100};
    struct fg_split s80 = {.arms = arms80, .narms = 2, .total = 100};
    unsigned n = 100000, in_b90 = 0, in_b80 = 0, moved = 0, moved_back = 0;
    char id[32];

    for (unsigned i = 0; i < n; i++) {
        int len = snprintf(id, sizeof(id), "user-%u", i);
        uint64_t h = fg_split_hash(id, (size_t)len);
        unsigned a90 = fg_split_arm_of(&s90, h), a80 = fg_split_arm_of(&s80, h);
        in_b90 += a90;
        in_b80 += a80;
        moved += a90 == 0 && a80 == 1;
        moved_back += a90 == 1 && a80 == 0;
        if (i < 1000)       /* sticky: the same identity, the same arm */
            CHECK_UINT(fg_split_arm_of(&s90, fg_split_hash(id, (size_t)len)), a90);
    }
    printf("90/10: %u of %u in b; 80/20: %u; moved a->b %u, b->a %u\n", in_b90, n, in_b80, moved,
           moved_back);
    CHECK(in_b90 > n * 9 / 100 && in_b90 < n * 11 / 100);
    CHECK(in_b80 > n * 19 / 100 && in_b80 < n * 21 / 100);
    CHECK(moved > n * 9 / 100 && moved < n * 11 / 100);
    CHECK_UINT(moved_back, 0);
    CHECK_UINT(fg_split_arm_of(&s90, 0), 0);
    CHECK_UINT(fg_split_arm_of(&s90, UINT64_MAX), 1);
    /* a weight of 0 takes nothing */
    {
        struct fg_split_arm z[] = {{&a, 0}, {&b, 5}};
        struct fg_split sz = {.arms = z, .narms = 2, .total = 5};
        unsigned got = 0;
        for (unsigned i = 0; i < 1000; i++)
            got += fg_split_arm_of(&sz, fg_split_hash((const char *)&i, sizeof(i)));
        CHECK_UINT(got, 1000);
    }
}

static void test_sticky_identity(void)
{
    struct fg_config *cfg = load(
        "{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}],"
        " \"upstreams\": {\"a\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
        "  \"b\": {\"backends\": [{\"address\": \"127.0.0.1:9002\"}]}},"
        " \"routes\": ["
        "  {\"match\": {\"path_prefix\": \"/h\"}, \"split\": {\"sticky\": {\"header\": \"x-user\"},"
        "   \"arms\": [{\"upstream\": \"a\", \"weight\": 1}, {\"upstream\": \"b\", \"weight\": 1}]}},"
        "  {\"match\": {}, \"split\": {\"sticky\": {\"cookie\": \"uid\"},"
        "   \"arms\": [{\"upstream\": \"a\", \"weight\": 1}, {\"upstream\": \"b\", \"weight\": 1}]}}]}");
    struct fg_exchange x;
    struct fg_rng rng;
    unsigned diff = 0;

    if (!CHECK(cfg != NULL))
        return;
    fg_rng_seed(&rng);
    fg_exchange_init(&x, NULL);
    for (unsigned i = 0; i < 200; i++) {
        char v[32], cookie[64];
        const char *hdr[] = {"x-user", v, NULL};
        const char *ck[] = {"cookie", cookie, NULL};
        const char *ck2[] = {"cookie", "a=1", "cookie", cookie, NULL};
        struct fg_upstream *u1, *u2, *u3;

        snprintf(v, sizeof(v), "u%u", i);
        head(&x, "GET", "/h", "a", hdr);
        u1 = fg_route_upstream(fg_route_match(cfg, &x, NULL), &x, &rng);
        /* the cookie route, same identity: same hash, same arm (same weights) */
        snprintf(cookie, sizeof(cookie), "x=1; uid=%s; y=2", v);
        head(&x, "GET", "/", "a", ck);
        u2 = fg_route_upstream(fg_route_match(cfg, &x, NULL), &x, &rng);
        snprintf(cookie, sizeof(cookie), "uid=\"%s\"", v);
        head(&x, "GET", "/", "a", ck2);
        u3 = fg_route_upstream(fg_route_match(cfg, &x, NULL), &x, &rng);
        CHECK(u1 == u2 && u2 == u3);
        diff += u1 == fg_config_upstream(cfg, "b");
    }
    CHECK(diff > 60 && diff < 140);     /* both arms used */
    fg_exchange_destroy(&x);
    fg_config_free(cfg);
}

/* The connection's peer, as conn.c records it: text and binary. */
static void set_client(struct fg_client_info *ci, const char *addr)
{
    snprintf(ci->addr, sizeof(ci->addr), "%s", addr);
    CHECK(fg_ip_parse(addr, strlen(addr), &ci->ip) == 0);
}

static void test_rules(void)
{
    struct fg_config *cfg = load(
        "{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}],"
        " \"upstreams\": {\"stable\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
        "  \"canary\": {\"backends\": [{\"address\": \"127.0.0.1:9002\"}]},"
        "  \"office\": {\"backends\": [{\"address\": \"127.0.0.1:9003\"}]}},"
        " \"routes\": [{\"match\": {},"
        "  \"rules\": [{\"header\": {\"x-canary\": \"1\"}, \"upstream\": \"canary\"},"
        "            {\"cookie\": {\"canary\": \"yes\"}, \"upstream\": \"canary\"},"
        "            {\"query\": {\"canary\": \"1\"}, \"header\": {\"x-team\": \"ml\"}, \"upstream\": \"canary\"},"
        "            {\"client\": [\"10.1.0.0/16\", \"2001:db8::/32\"], \"upstream\": \"office\"}],"
        "  \"split\": {\"arms\": [{\"upstream\": \"stable\", \"weight\": 1}]}}]}");
    struct fg_exchange x;
    struct fg_client_info ci = {0};
    struct fg_worker w = {0};
    struct fg_rng rng;
    static const char *const canary_h[] = {"x-canary", "1", NULL};
    static const char *const canary_c[] = {"cookie", "a=b; canary=yes", NULL};
    static const char *const team[] = {"x-team", "ml", NULL};
    const struct fg_route *r;

    if (!CHECK(cfg != NULL))
        return;
    fg_rng_seed(&rng);
    w.cfg = cfg;
    fg_exchange_init(&x, &w);
#define ARM(m, p, h) (head(&x, m, p, "a", h), x.client = &ci, \
                      r = fg_route_match(cfg, &x, NULL), fg_route_upstream(r, &x, &rng)->name)
    set_client(&ci, "192.168.1.1");
    CHECK_STR(ARM("GET", "/", NULL), "stable");
    CHECK_STR(ARM("GET", "/", canary_h), "canary");
    CHECK_STR(ARM("GET", "/", canary_c), "canary");
    CHECK_STR(ARM("GET", "/?canary=1", NULL), "stable");      /* the rule wants x-team too */
    CHECK_STR(ARM("GET", "/?canary=1", team), "canary");
    set_client(&ci, "10.1.200.3");
    CHECK_STR(ARM("GET", "/", NULL), "office");
    set_client(&ci, "10.2.0.1");
    CHECK_STR(ARM("GET", "/", NULL), "stable");
    set_client(&ci, "::ffff:10.1.0.9");       /* IPv4-mapped */
    CHECK_STR(ARM("GET", "/", NULL), "office");
    set_client(&ci, "2001:db8:1::5");
    CHECK_STR(ARM("GET", "/", NULL), "office");
    set_client(&ci, "2001:db9::5");
    CHECK_STR(ARM("GET", "/", NULL), "stable");
    set_client(&ci, "10.1.0.1");
    CHECK_STR(ARM("GET", "/", canary_h), "canary");             /* rules in order */
#undef ARM
    fg_exchange_destroy(&x);
    fg_config_free(cfg);
}

/* Rules on geography (loopback-test.mmdb maps 127.0.0.2 to DE/EU/64513,
 * .3 to US/NA/64514, .4 to JP/AS/64515, the rest of 127/8 to ZZ; MaxMind's
 * GeoIP2-Country-Test has 81.2.69.142 in GB), through a trusted proxy's
 * X-Forwarded-For, and on API key names. */
static void test_geo_rules(void)
{
    const char *td = getenv("FG_TESTDATA");
    char text[2048], db[512];
    struct stat st;

    if (!td || !*td || snprintf(db, sizeof(db), "%s/geoip/loopback-test.mmdb", td) <= 0 ||
        stat(db, &st) != 0) {
        printf("# no GeoIP test data (FG_TESTDATA): geography rules not checked\n");
        return;
    }
    snprintf(text, sizeof(text),
             "{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}],"
             " \"client\": {\"trusted_proxies\": [\"127.0.0.9\", \"10.9.0.0/16\"]},"
             " \"geoip\": {\"database\": \"%s\"},"
             " \"upstreams\": {\"stable\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
             "  \"de\": {\"backends\": [{\"address\": \"127.0.0.1:9002\"}]},"
             "  \"na\": {\"backends\": [{\"address\": \"127.0.0.1:9003\"}]},"
             "  \"jp\": {\"backends\": [{\"address\": \"127.0.0.1:9004\"}]},"
             "  \"unk\": {\"backends\": [{\"address\": \"127.0.0.1:9005\"}]},"
             "  \"team\": {\"backends\": [{\"address\": \"127.0.0.1:9006\"}]}},"
             " \"routes\": [{\"match\": {},"
             "  \"rules\": [{\"key\": [\"team-a\"], \"upstream\": \"team\"},"
             "            {\"country\": [\"DE\", \"FR\"], \"upstream\": \"de\"},"
             "            {\"continent\": [\"NA\"], \"upstream\": \"na\"},"
             "            {\"asn\": [64515], \"upstream\": \"jp\"},"
             "            {\"country\": [\"unknown\"], \"upstream\": \"unk\"}],"
             "  \"upstream\": \"stable\"}],"
             " \"access\": {\"keys\": [{\"name\": \"team-a\", \"sha256\": \"%s\"}]}}", db,
             "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    struct fg_config *cfg = load(text);
    struct fg_exchange x;
    struct fg_client_info ci = {0};
    struct fg_worker w = {0};
    struct fg_rng rng;
    struct fg_api_key key = {.name = (char *)"team-a"};
    static const char *const xff_de[] = {"x-forwarded-for", "127.0.0.2", NULL};
    static const char *const xff_chain[] = {"x-forwarded-for", "127.0.0.4, 10.9.1.1", NULL};
    const struct fg_route *r;

    if (!CHECK(cfg != NULL))
        return;
    fg_rng_seed(&rng);
    w.cfg = cfg;
    fg_exchange_init(&x, &w);
#define ARM(h) (head(&x, "GET", "/", "a", h), x.client = &ci, \
                r = fg_route_match(cfg, &x, NULL), fg_route_upstream(r, &x, &rng)->name)
    set_client(&ci, "127.0.0.2");
    CHECK_STR(ARM(NULL), "de");
    set_client(&ci, "127.0.0.3");
    CHECK_STR(ARM(NULL), "na");
    set_client(&ci, "127.0.0.4");
    CHECK_STR(ARM(NULL), "jp");
    set_client(&ci, "127.0.0.1");                   /* ZZ: a country, not unknown */
    CHECK_STR(ARM(NULL), "stable");
    set_client(&ci, "192.0.2.1");                   /* not in the database */
    CHECK_STR(ARM(NULL), "unk");
    set_client(&ci, "::1");
    CHECK_STR(ARM(NULL), "stable");
    /* X-Forwarded-For counts from a trusted peer only */
    set_client(&ci, "127.0.0.9");
    CHECK_STR(ARM(xff_de), "de");
    set_client(&ci, "127.0.0.1");
    CHECK_STR(ARM(xff_de), "stable");
    set_client(&ci, "127.0.0.9");
    CHECK_STR(ARM(xff_chain), "jp");                /* 10.9.1.1 is a trusted hop too */
    /* a key name rule, first in order */
    set_client(&ci, "127.0.0.2");
    head(&x, "GET", "/", "a", NULL);
    x.client = &ci;
    x.api_key = &key;
    x.auth_result = FG_AUTH_OK;
    r = fg_route_match(cfg, &x, NULL);
    CHECK_STR(fg_route_upstream(r, &x, &rng)->name, "team");
    x.auth_result = FG_AUTH_EXPIRED;                /* an expired key names nobody */
    CHECK_STR(fg_route_upstream(r, &x, &rng)->name, "de");
    x.api_key = NULL;
#undef ARM
    fg_exchange_destroy(&x);
    fg_config_free(cfg);

    /* MaxMind's own test database, through a trusted proxy */
    snprintf(db, sizeof(db), "%s/geoip/GeoIP2-Country-Test.mmdb", td);
    snprintf(text, sizeof(text),
             "{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}],"
             " \"client\": {\"trusted_proxies\": [\"127.0.0.0/8\"]},"
             " \"geoip\": {\"database\": \"%s\"},"
             " \"upstreams\": {\"stable\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},"
             "  \"gb\": {\"backends\": [{\"address\": \"127.0.0.1:9002\"}]},"
             "  \"as\": {\"backends\": [{\"address\": \"127.0.0.1:9003\"}]}},"
             " \"routes\": [{\"match\": {},"
             "  \"rules\": [{\"country\": [\"GB\"], \"upstream\": \"gb\"},"
             "            {\"continent\": [\"AS\"], \"upstream\": \"as\"}],"
             "  \"upstream\": \"stable\"}]}", db);
    if (!CHECK((cfg = load(text)) != NULL))
        return;
    w.cfg = cfg;
    fg_exchange_init(&x, &w);
    static const char *const gb[] = {"x-forwarded-for", "81.2.69.142", NULL};
    static const char *const jp[] = {"x-forwarded-for", "2001:218::1", NULL};
    static const char *const se[] = {"x-forwarded-for", "89.160.20.112", NULL};
    set_client(&ci, "127.0.0.1");
    head(&x, "GET", "/", "a", gb);
    x.client = &ci;
    CHECK_STR(fg_route_upstream(fg_route_match(cfg, &x, NULL), &x, &rng)->name, "gb");
    head(&x, "GET", "/", "a", jp);
    x.client = &ci;
    CHECK_STR(fg_route_upstream(fg_route_match(cfg, &x, NULL), &x, &rng)->name, "as");
    head(&x, "GET", "/", "a", se);
    x.client = &ci;
    CHECK_STR(fg_route_upstream(fg_route_match(cfg, &x, NULL), &x, &rng)->name, "stable");
    fg_exchange_destroy(&x);
    fg_config_free(cfg);
}

static void check_model(const char *text, int want_rc, const char *want)
{
    size_t a = 0, b = 0;
    int rc = fg_json_find_model(text, strlen(text), &a, &b);

    CHECK_MSG(rc == want_rc, "%s: rc %d, want %d", text, rc, want_rc);
    if (rc == 1 && want) {
        char got[64];
        snprintf(got, sizeof(got), "%.*s", (int)(b - a), text + a);
        CHECK_MSG(!strcmp(got, want), "%s: found %s, want %s", text, got, want);
    }
}

static void test_json_model(void)
{
    check_model("{\"model\":\"gpt-4\"}", 1, "\"gpt-4\"");
    check_model(" {\n \"a\" : {\"model\": \"inner\"}, \"b\": [1, {\"model\": 2}, \"x]\"],\n"
                " \"s\": \"he said \\\"model\\\": \\\"no\\\"\", \"n\": -1.5e3, \"t\": true,"
                " \"model\" : \"m\\\"x\" }", 1, "\"m\\\"x\"");
    check_model("{\"messages\": [], \"temperature\": 0.1}", 0, NULL);
    check_model("{}", 0, NULL);
    check_model("{\"model\": 5}", 0, NULL);
    check_model("{\"model\": null, \"x\": 1}", 0, NULL);
    check_model("[{\"model\": \"a\"}]", -1, NULL);
    check_model("not json", -1, NULL);
    check_model("", -1, NULL);
    check_model("{\"a\": \"unterminated", -1, NULL);
    check_model("{\"a\": {\"b\": 1}", -1, NULL);
    check_model("{\"a\" 1}", -1, NULL);
}

int main(void)
{
    UNIT_RUN(test_json_model);
    UNIT_RUN(test_rules);
    UNIT_RUN(test_geo_rules);
    UNIT_RUN(test_matching);
    UNIT_RUN(test_split_arms);
    UNIT_RUN(test_sticky_identity);
    return unit_summary();
}
