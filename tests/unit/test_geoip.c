/* GeoIP lookups against the MaxMind test databases and the synthetic
 * loopback database in shared/testdata/geoip (its README.md lists the facts
 * asserted here). The data lies beside the source tree: $FG_SRCDIR/../shared,
 * else found from this file's compile-time path. Without it (a tree unpacked
 * from the dist tarball) the test is skipped. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "fg/geoip.h"
#include "unit.h"

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        perror("vasprintf");
        exit(99);
    }
    va_end(ap);
    return s;
}

static char *data_dir;

/* The source tree: $FG_SRCDIR, else what this file's compile-time path says
 * (relative to the build directory, where the tests run). */
static char *src_path(const char *rel)
{
    const char *env = getenv("FG_SRCDIR");
    if (env && *env)
        return xasprintf("%s/%s", env, rel);
    const char *me = __FILE__, *tail = strstr(me, "tests/unit/test_geoip.c");
    if (tail)
        return xasprintf("%.*s%s", (int)(tail - me), me, rel);
    return xasprintf("%s", rel);
}

static char *db_path(const char *name)
{
    return xasprintf("%s/%s", data_dir, name);
}

static struct fg_geoip *open_dbs(const char *country, const char *asn)
{
    char *c = db_path(country), *a = asn ? db_path(asn) : NULL, *err = NULL;
    struct fg_geoip *g = fg_geoip_open(c, a, &err);

    CHECK_MSG(g != NULL, "fg_geoip_open(%s, %s): %s", c, a ? a : "NULL", err ? err : "?");
    CHECK(g == NULL || err == NULL);
    free(c);
    free(a);
    free(err);
    return g;
}

/* Looks up <ip> (text, parsed here with inet_pton) in <g>. */
static struct fg_geo look(const struct fg_geoip *g, const char *ip)
{
    unsigned char a[16];
    struct fg_geo geo;
    int family = strchr(ip, ':') ? AF_INET6 : AF_INET;

    if (inet_pton(family, ip, a) != 1) {
        fprintf(stderr, "bad test address %s\n", ip);
        exit(99);
    }
    memset(&geo, 0x55, sizeof(geo));    /* every field must be written */
    fg_geoip_lookup(g, family, a, &geo);
    return geo;
}

struct fact {
    const char *ip;
    const char *country, *continent;
    uint32_t asn;
    int found;
};

static void check_facts_at(int line, const struct fg_geoip *g, const char *what,
                           const struct fact *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct fg_geo geo = look(g, f[i].ip);
        unit_report_(strcmp(geo.country, f[i].country) == 0 &&
                         strcmp(geo.continent, f[i].continent) == 0 && geo.asn == f[i].asn &&
                         (int)geo.found == f[i].found,
                     __FILE__, line,
                     "%s %s\n    got:      country \"%.3s\" continent \"%.3s\" asn %u found %d\n"
                     "    expected: country \"%s\" continent \"%s\" asn %u found %d",
                     what, f[i].ip, geo.country, geo.continent, (unsigned)geo.asn, (int)geo.found,
                     f[i].country, f[i].continent, (unsigned)f[i].asn, f[i].found);
    }
}

#define CHECK_FACTS(g, what, table) \
    check_facts_at(__LINE__, (g), (what), (table), sizeof(table) / sizeof((table)[0]))

/* README: the facts that hold in both Country files and both City files. */
static const struct fact common_facts[] = {
    {"81.2.69.142", "GB", "EU", 0, 1},      /* registered_country is US: must not be used */
    {"89.160.20.112", "SE", "EU", 0, 1},
    {"216.160.83.56", "US", "NA", 0, 1},
    {"67.43.156.1", "BT", "AS", 0, 1},
    {"202.196.224.1", "PH", "AS", 0, 1},    /* represented_country US: not used either */
    {"2001:480:10::1", "US", "NA", 0, 1},
    {"::ffff:81.2.69.142", "GB", "EU", 0, 1},
    {"::ffff:67.43.156.1", "BT", "AS", 0, 1},
    {"1.1.1.1", "", "", 0, 0},
    {"127.0.0.1", "", "", 0, 0},
    {"10.0.0.1", "", "", 0, 0},
    {"::1", "", "", 0, 0},
    {"::ffff:1.1.1.1", "", "", 0, 0},
};

static const struct fact country_facts[] = {
    {"2001:218::1", "JP", "AS", 0, 1},
    {"2a02:cf40::1", "NO", "EU", 0, 1},
};

static void test_geoip2_country(void)
{
    struct fg_geoip *g = open_dbs("GeoIP2-Country-Test.mmdb", NULL);
    static const struct fact edges[] = {
        {"214.1.1.1", "", "", 0, 1},        /* found: only traits is_anycast */
        {"2a02:ec80::1", "", "EU", 0, 1},   /* continent without country */
    };

    if (!g)
        return;
    CHECK_FACTS(g, "GeoIP2-Country", common_facts);
    CHECK_FACTS(g, "GeoIP2-Country", country_facts);
    CHECK_FACTS(g, "GeoIP2-Country", edges);
    fg_geoip_close(g);
}

static void test_geolite2_country(void)
{
    struct fg_geoip *g = open_dbs("GeoLite2-Country-Test.mmdb", NULL);

    if (!g)
        return;
    CHECK_FACTS(g, "GeoLite2-Country", common_facts);
    CHECK_FACTS(g, "GeoLite2-Country", country_facts);
    fg_geoip_close(g);
}

/* The City files hold country and continent too. */
static void test_city_as_country(void)
{
    static const char *const names[] = {"GeoIP2-City-Test.mmdb", "GeoLite2-City-Test.mmdb"};

    for (unsigned i = 0; i < 2; i++) {
        struct fg_geoip *g = open_dbs(names[i], NULL);
        if (!g)
            continue;
        CHECK_FACTS(g, names[i], common_facts);
        fg_geoip_close(g);
    }
}

static const struct fact asn_facts[] = {
    {"1.128.0.1", "", "", 1221, 1},
    {"12.81.92.1", "", "", 7018, 1},
    {"15.1.2.3", "", "", 71, 1},
    {"2003::1", "", "", 3320, 1},
    {"2001:1700::1", "", "", 6730, 1},
    {"::ffff:1.128.0.1", "", "", 1221, 1},
    {"127.0.0.1", "", "", 0, 0},
    {"1.1.1.1", "", "", 0, 0},
    {"::1", "", "", 0, 0},
};

/* The ASN file opened as the "country" database: no country, but its ASNs. */
static void test_asn_alone(void)
{
    struct fg_geoip *g = open_dbs("GeoLite2-ASN-Test.mmdb", NULL);

    if (!g)
        return;
    CHECK_FACTS(g, "GeoLite2-ASN", asn_facts);
    fg_geoip_close(g);
}

static void test_country_and_asn(void)
{
    struct fg_geoip *g = open_dbs("GeoIP2-Country-Test.mmdb", "GeoLite2-ASN-Test.mmdb");

    if (!g)
        return;
    /* each fact from its own database; fields the other database might add
     * for the same address are not in the README, so checked one by one */
    for (size_t i = 0; i < sizeof(common_facts) / sizeof(common_facts[0]); i++) {
        const struct fact *f = &common_facts[i];
        struct fg_geo geo = look(g, f->ip);
        CHECK_MSG(strcmp(geo.country, f->country) == 0 && strcmp(geo.continent, f->continent) == 0,
                  "%s: country \"%s\" continent \"%s\", expected \"%s\" \"%s\"", f->ip, geo.country,
                  geo.continent, f->country, f->continent);
        if (f->found)
            CHECK_MSG(geo.found, "%s not found", f->ip);
    }
    for (size_t i = 0; i < sizeof(asn_facts) / sizeof(asn_facts[0]); i++) {
        const struct fact *f = &asn_facts[i];
        struct fg_geo geo = look(g, f->ip);
        CHECK_MSG(geo.asn == f->asn, "%s: asn %u, expected %u", f->ip, (unsigned)geo.asn,
                  (unsigned)f->asn);
        if (f->found)
            CHECK_MSG(geo.found, "%s not found", f->ip);
    }
    /* in neither file */
    static const struct fact nowhere[] = {
        {"1.1.1.1", "", "", 0, 0},
        {"127.0.0.1", "", "", 0, 0},
        {"10.0.0.1", "", "", 0, 0},
        {"::1", "", "", 0, 0},
        {"::ffff:127.0.0.1", "", "", 0, 0},
    };
    CHECK_FACTS(g, "Country+ASN", nowhere);
    fg_geoip_close(g);
}

static const struct fact loopback_facts[] = {
    {"127.0.0.1", "ZZ", "", 64512, 1},      /* no continent; ASN from the same file */
    {"127.255.0.9", "ZZ", "", 64512, 1},
    {"127.0.0.2", "DE", "EU", 64513, 1},
    {"127.0.0.3", "US", "NA", 64514, 1},
    {"127.0.0.4", "JP", "AS", 64515, 1},
    {"10.1.2.3", "DE", "EU", 64513, 1},
    {"::1", "ZZ", "", 64512, 1},
    {"::ffff:127.0.0.2", "DE", "EU", 64513, 1},
    {"::ffff:127.0.0.1", "ZZ", "", 64512, 1},
    {"192.0.2.1", "", "", 0, 0},
    {"2001:db8::1", "", "", 0, 0},
};

static void test_loopback(void)
{
    struct fg_geoip *g = open_dbs("loopback-test.mmdb", NULL);

    if (g) {
        CHECK_FACTS(g, "loopback", loopback_facts);
        fg_geoip_close(g);
    }
    /* an ASN file that knows none of these: the ASN falls back to the
     * country file's own */
    g = open_dbs("loopback-test.mmdb", "GeoLite2-ASN-Test.mmdb");
    if (g) {
        CHECK_FACTS(g, "loopback+ASN", loopback_facts);
        struct fg_geo geo = look(g, "1.128.0.1");
        CHECK_UINT(geo.asn, 1221);
        CHECK(geo.found);
        CHECK_STR(geo.country, "");
        fg_geoip_close(g);
    }
}

static void test_odd_input(void)
{
    struct fg_geoip *g = open_dbs("loopback-test.mmdb", NULL);
    unsigned char a[16] = {127, 0, 0, 2};
    struct fg_geo geo;

    memset(&geo, 0x55, sizeof(geo));
    fg_geoip_lookup(NULL, AF_INET, a, &geo);
    CHECK(!geo.found && !geo.country[0] && !geo.continent[0] && geo.asn == 0);
    if (!g)
        return;
    memset(&geo, 0x55, sizeof(geo));
    fg_geoip_lookup(g, AF_UNIX, a, &geo);
    CHECK(!geo.found && !geo.country[0] && !geo.continent[0] && geo.asn == 0);
    fg_geoip_lookup(g, AF_INET, a, &geo);
    CHECK_STR(geo.country, "DE");
    fg_geoip_close(g);
    fg_geoip_close(NULL);
}

static void check_open_error_at(int line, const char *country, const char *asn, const char *want,
                                int prefix_only)
{
    char *err = (char *)"untouched";
    struct fg_geoip *g = fg_geoip_open(country, asn, &err);
    int ok = g == NULL && err &&
             (prefix_only ? strncmp(err, want, strlen(want)) == 0 : strcmp(err, want) == 0);

    unit_report_(ok, __FILE__, line, "fg_geoip_open(%s, %s)\n    got:      %s\n    expected: %s%s",
                 country ? country : "NULL", asn ? asn : "NULL",
                 g ? "(opened)" : err ? err : "NULL", want, prefix_only ? "..." : "");
    fg_geoip_close(g);
    if (!g)
        free(err);
}

#define CHECK_OPEN_ERROR(c, a, want) check_open_error_at(__LINE__, (c), (a), (want), 0)
#define CHECK_OPEN_ERROR_PREFIX(c, a, want) check_open_error_at(__LINE__, (c), (a), (want), 1)

static void test_open_errors(void)
{
    char *missing = db_path("no-such-file.mmdb"), *readme = db_path("README.md");
    char *country = db_path("GeoIP2-Country-Test.mmdb");
    char *want, empty[] = "/tmp/fg-geoip-empty-XXXXXX";
    int fd;

    want = xasprintf("cannot open GeoIP database %s: No such file or directory", missing);
    CHECK_OPEN_ERROR(missing, NULL, want);
    /* the ASN database fails after the country one opened: nothing leaks */
    CHECK_OPEN_ERROR(country, missing, want);
    free(want);

    want = xasprintf("GeoIP database %s is not a MaxMind DB file: ", readme);
    CHECK_OPEN_ERROR_PREFIX(readme, NULL, want);
    CHECK_OPEN_ERROR_PREFIX(country, readme, want);
    free(want);

    want = xasprintf("cannot open GeoIP database %s: Is a directory", data_dir);
    CHECK_OPEN_ERROR(data_dir, NULL, want);
    free(want);

    if (CHECK((fd = mkstemp(empty)) >= 0)) {
        close(fd);
        want = xasprintf("GeoIP database %s is not a MaxMind DB file: the file is empty", empty);
        CHECK_OPEN_ERROR(empty, NULL, want);
        free(want);
        unlink(empty);
    }

    CHECK_OPEN_ERROR(NULL, NULL, "no GeoIP country database given");
    CHECK_OPEN_ERROR("", NULL, "no GeoIP country database given");
    CHECK_OPEN_ERROR(country, "", "empty path for the GeoIP ASN database");

    /* err may be NULL */
    CHECK(fg_geoip_open(missing, NULL, NULL) == NULL);
    free(missing);
    free(readme);
    free(country);
}

/* Many threads on one handle, every answer compared with the one the main
 * thread got alone. */
#define NTHREADS 8
#define ROUNDS 2000

static const char *const mixed[] = {
    "81.2.69.142", "2001:218::1", "1.128.0.1", "2003::1", "214.1.1.1", "2a02:ec80::1",
    "::ffff:89.160.20.112", "1.1.1.1", "::1", "12.81.92.1", "67.43.156.1", "2a02:cf40::1",
};
#define NMIXED (sizeof(mixed) / sizeof(mixed[0]))

struct worker {
    const struct fg_geoip *g;
    int family[NMIXED];
    unsigned char addr[NMIXED][16];
    struct fg_geo want[NMIXED];
    unsigned long mismatches;
};

static void *work(void *arg)
{
    struct worker *w = arg;

    for (unsigned r = 0; r < ROUNDS; r++)
        for (unsigned i = 0; i < NMIXED; i++) {
            struct fg_geo geo;
            fg_geoip_lookup(w->g, w->family[i], w->addr[i], &geo);
            if (strcmp(geo.country, w->want[i].country) || strcmp(geo.continent, w->want[i].continent) ||
                geo.asn != w->want[i].asn || geo.found != w->want[i].found)
                w->mismatches++;
        }
    return NULL;
}

static void test_threads(void)
{
    struct fg_geoip *g = open_dbs("GeoIP2-Country-Test.mmdb", "GeoLite2-ASN-Test.mmdb");
    static struct worker w[NTHREADS];
    pthread_t t[NTHREADS];

    if (!g)
        return;
    for (unsigned k = 0; k < NTHREADS; k++) {
        w[k].g = g;
        w[k].mismatches = 0;
        for (unsigned i = 0; i < NMIXED; i++) {
            w[k].family[i] = strchr(mixed[i], ':') ? AF_INET6 : AF_INET;
            inet_pton(w[k].family[i], mixed[i], w[k].addr[i]);
            w[k].want[i] = look(g, mixed[i]);
        }
    }
    CHECK_STR(w[0].want[0].country, "GB");
    CHECK_UINT(w[0].want[2].asn, 1221);
    for (unsigned k = 0; k < NTHREADS; k++)
        CHECK(pthread_create(&t[k], NULL, work, &w[k]) == 0);
    for (unsigned k = 0; k < NTHREADS; k++) {
        pthread_join(t[k], NULL);
        CHECK_MSG(w[k].mismatches == 0, "thread %u: %lu answers differ", k, w[k].mismatches);
    }
    fg_geoip_close(g);
}

int main(void)
{
    struct stat st;

    /* configure's --with-testdata (make check exports it), else beside
     * the source tree */
    if (getenv("FG_TESTDATA") && *getenv("FG_TESTDATA")) {
        size_t n = strlen(getenv("FG_TESTDATA")) + 8;
        data_dir = malloc(n);
        snprintf(data_dir, n, "%s/geoip", getenv("FG_TESTDATA"));
    } else {
        data_dir = src_path("../shared/testdata/geoip");
    }
    if (stat(data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("SKIP: no GeoIP test data at %s\n", data_dir);
        free(data_dir);
        return 77;
    }
    UNIT_RUN(test_geoip2_country);
    UNIT_RUN(test_geolite2_country);
    UNIT_RUN(test_city_as_country);
    UNIT_RUN(test_asn_alone);
    UNIT_RUN(test_country_and_asn);
    UNIT_RUN(test_loopback);
    UNIT_RUN(test_odd_input);
    UNIT_RUN(test_open_errors);
    UNIT_RUN(test_threads);
    free(data_dir);
    return unit_summary();
}
