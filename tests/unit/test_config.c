/* Unit tests of the configuration loader (src/config.c) and of the JSON
 * position finder it uses for messages (src/json_pos.c).
 *
 * Error cases are written as complete configurations whose one broken piece
 * sits on the first line, so the expected column can be checked by counting
 * characters of the case itself. Run from the build directory; fixtures are
 * found through $FG_SRCDIR (set by "make check") or next to this file. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fg/config.h"
#include "fg/json_pos.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    if (!s)
        abort();
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* The source tree: $FG_SRCDIR, else what this file's compile-time path says
 * (relative to the build directory, where the tests run). */
static char *src_path(const char *rel)
{
    const char *env = getenv("FG_SRCDIR");
    if (env && *env)
        return xasprintf("%s/%s", env, rel);
    const char *me = __FILE__, *tail = strstr(me, "tests/unit/test_config.c");
    if (tail)
        return xasprintf("%.*s%s", (int)(tail - me), me, rel);
    return xstrdup(rel);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    for (;;) {
        char *n = realloc(buf, len + 4096 + 1);
        if (!n)
            abort();
        buf = n;
        size_t got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got == 0)
            break;
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

/* <text> with the first <from> replaced by <to>. */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at)
        abort();
    return xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

static struct fg_config *parse(const char *text, const char *name, char **err)
{
    return fg_config_parse(text, strlen(text), name, err);
}

/* Reports at <line> of this file (the case's) unless <text> fails with
 * exactly <want>. */
static void check_error_at(int line, const char *text, const char *name, const char *want)
{
    char *err = NULL;
    struct fg_config *cfg = parse(text, name, &err);
    unit_report_(cfg == NULL && err && strcmp(err, want) == 0, __FILE__, line,
                 "error case\n    text:     %s\n    got:      %s\n    expected: %s", text,
                 cfg ? "(accepted)" : err ? err : "NULL", want);
    fg_config_free(cfg);
    free(err);
}

#define CHECK_ERROR(text, want) check_error_at(__LINE__, (text), "t.json", (want))

/* ---- building blocks of error cases -------------------------------------- */

#define LISTENERS "\"listeners\": [{\"address\": \"127.0.0.1:8080\"}]"
#define UPSTREAMS "\"upstreams\": {\"m\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]}}"
#define ROUTES "\"routes\": [{\"match\": {\"path_prefix\": \"/\"}, \"upstream\": \"m\"}]"

/* A valid configuration with <x> first on line 1, at column 2. */
#define ROOT(x) "{" x ",\n" LISTENERS ",\n" UPSTREAMS ",\n" ROUTES "}\n"
/* Without one of the required keys, <x> at column 2. */
#define NO_LST(x) "{" x ",\n" UPSTREAMS ",\n" ROUTES "}\n"
#define NO_UPS(x) "{" x ",\n" LISTENERS ",\n" ROUTES "}\n"
#define NO_RTS(x) "{" x ",\n" LISTENERS ",\n" UPSTREAMS "}\n"
/* The listeners array's contents, <x> at column 16. */
#define LST(x) NO_LST("\"listeners\": [" x "]")
/* Upstream "m" itself, <x> at column 21. */
#define UP(x) NO_UPS("\"upstreams\": {\"m\": " x "}")
/* Upstream "m"'s backends array's contents, <x> at column 35. */
#define BE(x) UP("{\"backends\": [" x "]}")
/* The routes array's contents, <x> at column 13. */
#define RT(x) NO_RTS("\"routes\": [" x "]")
/* "match" of the first route, <x> at column 23. */
#define MATCH(x) RT("{\"match\": " x ", \"upstream\": \"m\"}")
/* "client", contents at column 13. */
#define CL(x) ROOT("\"client\": {" x "}")
/* "tls" of the first listener, <x> at column 53. */
#define TLS(x) LST("{\"address\": \"127.0.0.1:8443\", \"tls\": " x "}")

/* ---- json_pos ------------------------------------------------------------ */

static const char pos_text[] =
    "{\"a\": [1, {\"b\\\"c\": [true, null]}, \"x\"],\n"
    " \"caf\\u00e9\": {\"\\ud83d\\ude00\": 5}, \"\xc3\xa9\": 7}";

static int pos_of(const struct fg_json_seg *path, unsigned depth, int at_key, unsigned *line,
                  unsigned *col)
{
    *line = *col = 0;
    return fg_json_pos(pos_text, sizeof pos_text - 1, path, depth, at_key, line, col);
}

#define CHECK_POS(path, at_key, l, c)                                                       \
    do {                                                                                    \
        unsigned line_, col_;                                                               \
        int rc_ = pos_of(path, sizeof path / sizeof *path, at_key, &line_, &col_);          \
        CHECK_MSG(rc_ == 0 && line_ == (l) && col_ == (c),                                  \
                  "fg_json_pos(%s): rc %d at %u:%u, expected %u:%u", #path, rc_, line_,     \
                  col_, (unsigned)(l), (unsigned)(c));                                      \
    } while (0)

#define CHECK_NOPOS(path)                                                                   \
    do {                                                                                    \
        unsigned line_, col_;                                                               \
        CHECK_MSG(pos_of(path, sizeof path / sizeof *path, 0, &line_, &col_) == -1,          \
                  "fg_json_pos(%s) should not be found", #path);                            \
    } while (0)

#define K(k) {.key = (k)}
#define I(i) {.index = (i)}

static void test_json_pos(void)
{
    unsigned line, col;
    CHECK_INT(fg_json_pos(pos_text, sizeof pos_text - 1, NULL, 0, 0, &line, &col), 0);
    CHECK(line == 1 && col == 1);

    const struct fg_json_seg a[] = {K("a")};
    CHECK_POS(a, 0, 1, 7);
    CHECK_POS(a, 1, 1, 2);
    const struct fg_json_seg a0[] = {K("a"), I(0)};
    CHECK_POS(a0, 0, 1, 8);
    CHECK_POS(a0, 1, 1, 8);         /* at_key means nothing for an element */
    const struct fg_json_seg a1[] = {K("a"), I(1)};
    CHECK_POS(a1, 0, 1, 11);
    const struct fg_json_seg a1b[] = {K("a"), I(1), K("b\"c")};
    CHECK_POS(a1b, 0, 1, 20);
    CHECK_POS(a1b, 1, 1, 12);
    const struct fg_json_seg a1b1[] = {K("a"), I(1), K("b\"c"), I(1)};
    CHECK_POS(a1b1, 0, 1, 27);
    const struct fg_json_seg a2[] = {K("a"), I(2)};
    CHECK_POS(a2, 0, 1, 35);
    const struct fg_json_seg cafe[] = {K("caf\xc3\xa9")};
    CHECK_POS(cafe, 0, 2, 15);
    CHECK_POS(cafe, 1, 2, 2);
    const struct fg_json_seg smiley[] = {K("caf\xc3\xa9"), K("\xf0\x9f\x98\x80")};
    CHECK_POS(smiley, 0, 2, 32);
    const struct fg_json_seg e_acute[] = {K("\xc3\xa9")};
    CHECK_POS(e_acute, 0, 2, 41);   /* columns count characters: é is two bytes, one column */
    CHECK_POS(e_acute, 1, 2, 36);

    const struct fg_json_seg a3[] = {K("a"), I(3)};
    CHECK_NOPOS(a3);
    const struct fg_json_seg ab[] = {K("a"), K("b")};
    CHECK_NOPOS(ab);
    const struct fg_json_seg zz[] = {K("zz")};
    CHECK_NOPOS(zz);
    const struct fg_json_seg i0[] = {I(0)};
    CHECK_NOPOS(i0);
    const struct fg_json_seg deep[] = {K("a"), I(0), I(0)};
    CHECK_NOPOS(deep);
    const struct fg_json_seg caf[] = {K("caf")};
    CHECK_NOPOS(caf);

    /* Empty containers and whitespace everywhere JSON allows it. */
    static const char ws[] = " \r\n\t{ \"e\" :[ ] , \"o\"\t:\r{ } ,\"n\": [ [ ], { } , 3 ] }";
    const struct fg_json_seg n2[] = {K("n"), I(2)};
    CHECK(fg_json_pos(ws, sizeof ws - 1, n2, 2, 0, &line, &col) == 0 && line == 2 &&
          col == 44);
    const struct fg_json_seg e0[] = {K("e"), I(0)};
    CHECK_INT(fg_json_pos(ws, sizeof ws - 1, e0, 2, 0, &line, &col), -1);
    const struct fg_json_seg o[] = {K("o")};
    CHECK(fg_json_pos(ws, sizeof ws - 1, o, 1, 0, &line, &col) == 0 && line == 2 && col == 21);

    fg_json_linecol("ab\ncd\xc3\xa9x", 8, 7, &line, &col);
    CHECK(line == 2 && col == 4);
    fg_json_linecol("ab\n", 3, 100, &line, &col);   /* clamped to the end */
    CHECK(line == 2 && col == 1);
}

static void test_json_path_format(void)
{
    const struct fg_json_seg p[] = {K("upstreams"), K("models"), K("backends"), I(0), K("weight")};
    char *s = fg_json_path_format(p, 5);
    CHECK_STR(s, "$.upstreams.models.backends[0].weight");
    free(s);
    s = fg_json_path_format(p, 0);
    CHECK_STR(s, "$");
    free(s);
    const struct fg_json_seg q[] = {K("embed-v2"), K(""), K("_x9"), K("9x"), K("a\"b\\c\n"),
                                    K("caf\xc3\xa9"), I(12345)};
    s = fg_json_path_format(q, 7);
    CHECK_STR(s, "$[\"embed-v2\"][\"\"]._x9[\"9x\"][\"a\\\"b\\\\c\\u000a\"][\"caf\xc3\xa9\"][12345]");
    free(s);
    s = fg_json_quote("say \"hi\"\t\\");
    CHECK_STR(s, "\"say \\\"hi\\\"\\u0009\\\\\"");
    free(s);
}

/* fg_json_key_before() must name the key jansson rejected as a duplicate,
 * and point at its opening quote where jansson points at its closing one. */
static void check_dup(int line, const char *text, const char *want_path, const char *want_key)
{
    json_error_t je;
    json_t *j = json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES, &je);
    char *path = NULL, *key = NULL;
    unsigned l = 0, c = 0;
    int rc = -1;

    if (!unit_report_(j == NULL && json_error_code(&je) == json_error_duplicate_key, __FILE__,
                      line, "jansson should reject %s", text)) {
        json_decref(j);
        return;
    }
    rc = fg_json_key_before(text, strlen(text), (size_t)je.position, &path, &key, &l, &c);
    if (unit_report_(rc == 0, __FILE__, line, "fg_json_key_before(%s) failed", text)) {
        char *q = fg_json_quote(key);
        /* Width in characters of the key token as written in this text:
         * all these cases write it as plain ASCII. */
        unsigned width = (unsigned)strlen(q);
        unit_report_(strcmp(path, want_path) == 0 && strcmp(key, want_key) == 0 &&
                         (int)l == je.line && (int)(c + width - 1) == je.column,
                     __FILE__, line, "%s: got %s \"%s\" at %u:%u, jansson %d:%d", text, path,
                     key, l, c, je.line, je.column);
        free(q);
    }
    free(path);
    free(key);
}

static void test_json_key_before(void)
{
    check_dup(__LINE__, "{\"a\": 1, \"a\": 2}", "$.a", "a");
    check_dup(__LINE__, "{\"x\": [{\"k\": 1}, {\"k\": {\"a\": [1, {\"z\": 1}], \"b\": 2,\n"
                        "  \"a b\": 3, \"c\": [], \"a b\": 4}}]}",
              "$.x[1].k[\"a b\"]", "a b");
    check_dup(__LINE__, "[[], {}, [{\"q\": \"\\\"{[\", \"q\": 1}]]", "$[2][0].q", "q");
    check_dup(__LINE__, "{\"l\": [0, 1, 2, {\"m\": {\"t\": true, \"f\": false, \"t\": 1}}]}",
              "$.l[3].m.t", "t");

    /* Keys are decoded: an escaped spelling is the same key. */
    const char *t = "{\"ab\": 1, \"a\\u0062\": 2}";
    json_error_t je;
    CHECK(json_loadb(t, strlen(t), JSON_REJECT_DUPLICATES, &je) == NULL);
    char *path, *key;
    unsigned line, col;
    CHECK(fg_json_key_before(t, strlen(t), (size_t)je.position, &path, &key, &line, &col) == 0 &&
          strcmp(path, "$.ab") == 0 && strcmp(key, "ab") == 0 && line == 1 && col == 11);
    free(path);
    free(key);

    /* Nothing to name. */
    CHECK_INT(fg_json_key_before("[1, 2]", 6, 6, &path, &key, &line, &col), -1);
    CHECK_INT(fg_json_key_before("", 0, 0, &path, &key, &line, &col), -1);
    CHECK_INT(fg_json_key_before("{\"a\": 1}", 8, 0, &path, &key, &line, &col), -1);
}

/* Any bytes, any truncation: results or -1, never a read outside the buffer
 * (ASan watches: every buffer below is allocated at its exact size, with no
 * NUL after it). */
static void fuzz_one(const char *text, size_t len, unsigned *bad)
{
    static const struct fg_json_seg paths[][5] = {
        {K("upstreams"), K("models"), K("backends"), I(1), K("address")},
        {K("routes"), I(1), K("match"), K("path_prefix")},
        {K("listeners"), I(1)},
        {K("client"), K("h2_max_concurrent_streams")},
    };
    static const unsigned depths[] = {5, 4, 2, 2};
    char *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, text, len);
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++) {
        for (int at_key = 0; at_key < 2; at_key++) {
            unsigned line = 0, col = 0;
            int rc = fg_json_pos(copy, len, paths[i], depths[i], at_key, &line, &col);
            if (rc != -1 && (rc != 0 || line < 1 || col < 1))
                (*bad)++;
        }
    }
    for (size_t off = 0; off <= len; off += 1 + len / 64) {
        char *path = NULL, *key = NULL;
        unsigned line = 0, col = 0;
        int rc = fg_json_key_before(copy, len, off, &path, &key, &line, &col);
        if (rc == 0 && (!path || !key || line < 1 || col < 1))
            (*bad)++;
        if (rc != 0 && (path || key))
            (*bad)++;
        free(path);
        free(key);
    }
    free(copy);
}

static void test_json_pos_robust(void)
{
    char *file = src_path("tests/unit/data/full.json");
    char *text = read_file(file);
    unsigned bad = 0;
    if (!CHECK(text != NULL)) {
        free(file);
        return;
    }
    size_t len = strlen(text);
    /* Every prefix, as jansson's duplicate-key path sees. */
    for (size_t n = 0; n <= len; n++)
        fuzz_one(text, n, &bad);
    /* Structural characters sprinkled over the text. */
    static const char noise[] = "{}[]\":,\\ \n\x80\xc3u0";
    uint64_t seed = 12345;      /* 64-bit so the generator never wraps */
    char *m = xstrdup(text);
    for (int round = 0; round < 3000; round++) {
        if (round % 50 == 0)
            memcpy(m, text, len);
        seed = (seed * 1103515245u + 12345u) & 0x7fffffffu;
        size_t at = (seed >> 8) % len;
        seed = (seed * 1103515245u + 12345u) & 0x7fffffffu;
        m[at] = noise[(seed >> 8) % (sizeof noise - 1)];
        fuzz_one(m, len, &bad);
    }
    CHECK_UINT(bad, 0);
    free(m);
    free(text);
    free(file);
}

/* ---- valid configurations ------------------------------------------------ */

static void check_full(const struct fg_config *cfg)
{
    CHECK_UINT(cfg->workers, 4);
    if (CHECK_UINT(cfg->nlisteners, 2)) {
        const struct fg_listener_cfg *l = cfg->listeners;
        CHECK_STR(l[0].addr.text, "127.0.0.1:8080");
        CHECK_INT(l[0].addr.ss.ss_family, AF_INET);
        CHECK_UINT(l[0].addr.len, sizeof(struct sockaddr_in));
        CHECK_INT(l[0].backlog, 511);
        CHECK(l[0].tls == NULL);
        CHECK_STR(l[1].addr.text, "[::1]:8080");
        CHECK_INT(l[1].addr.ss.ss_family, AF_INET6);
        CHECK_UINT(l[1].addr.len, sizeof(struct sockaddr_in6));
        CHECK_INT(l[1].backlog, 1024);
        CHECK(l[1].tls == NULL);
    }
    CHECK_UINT(cfg->client.header_timeout_ms, 5000);
    CHECK_UINT(cfg->client.idle_timeout_ms, 30000);
    CHECK_UINT(cfg->client.send_timeout_ms, 20000);
    CHECK_UINT(cfg->client.max_header_bytes, 16384);
    CHECK_UINT(cfg->client.max_headers, 50);
    CHECK_UINT(cfg->client.max_body_bytes, 0);
    CHECK_UINT(cfg->client.h2_max_concurrent_streams, 64);

    if (!CHECK_UINT(cfg->nupstreams, 2))
        return;
    const struct fg_upstream *m = &cfg->upstreams[0], *e = &cfg->upstreams[1];
    CHECK_STR(m->name, "models");
    CHECK_UINT(m->index, 0);
    CHECK_INT(m->balance, FG_BALANCE_ROUND_ROBIN);
    CHECK_UINT(m->connect_timeout_ms, 1000);
    CHECK_UINT(m->header_timeout_ms, 2000);
    CHECK_UINT(m->idle_timeout_ms, 4000);
    CHECK_UINT(m->keepalive_timeout_ms, 5000);
    CHECK_UINT(m->keepalive, 0);
    CHECK_UINT(m->max_response_header_bytes, 65536);
    if (CHECK_UINT(m->nbackends, 2)) {
        CHECK_STR(m->backends[0].addr.text, "127.0.0.1:9001");
        CHECK_UINT(m->backends[0].weight, 3);
        CHECK_UINT(m->backends[0].index, 0);
        CHECK(m->backends[0].upstream == m);
        CHECK_UINT(atomic_load(&m->backends[0].st->active), 0);
        CHECK_UINT(atomic_load(&m->backends[0].st->total), 0);
        CHECK_STR(m->backends[1].addr.text, "127.0.0.1:9002");
        CHECK_UINT(m->backends[1].weight, 1);
        CHECK_UINT(m->backends[1].index, 1);
        CHECK(m->backends[1].upstream == m);
    }
    CHECK_STR(e->name, "embed-v2");
    CHECK_UINT(e->index, 1);
    CHECK_INT(e->balance, FG_BALANCE_LEAST_CONN);
    CHECK_UINT(e->connect_timeout_ms, 3000);
    CHECK_UINT(e->header_timeout_ms, 60000);
    CHECK_UINT(e->idle_timeout_ms, 60000);
    CHECK_UINT(e->keepalive_timeout_ms, 30000);
    CHECK_UINT(e->keepalive, 1024);
    CHECK_UINT(e->max_response_header_bytes, 32768);
    if (CHECK_UINT(e->nbackends, 1)) {
        /* "localhost" resolves through /etc/hosts to either loopback. */
        const char *t = e->backends[0].addr.text;
        CHECK_MSG(strcmp(t, "127.0.0.1:9003") == 0 || strcmp(t, "[::1]:9003") == 0,
                  "localhost:9003 resolved to %s", t);
        CHECK_UINT(e->backends[0].weight, 1);
        CHECK(e->backends[0].upstream == e);
    }

    if (CHECK_UINT(cfg->nroutes, 2)) {
        CHECK_STR(cfg->routes[0].path_prefix, "/v1/embeddings");
        CHECK_UINT(cfg->routes[0].path_prefix_len, 14);
        CHECK(cfg->routes[0].upstream == e);
        CHECK_STR(cfg->routes[1].path_prefix, "/");
        CHECK_UINT(cfg->routes[1].path_prefix_len, 1);
        CHECK(cfg->routes[1].upstream == m);
    }
    CHECK(fg_config_upstream(cfg, "models") == m);
    CHECK(fg_config_upstream(cfg, "embed-v2") == e);
    CHECK(fg_config_upstream(cfg, "model") == NULL);
    CHECK(fg_config_upstream(cfg, "") == NULL);
}

static void test_full(void)
{
    char *file = src_path("tests/unit/data/full.json");
    char *err = NULL;
    struct fg_config *cfg = fg_config_load(file, &err);
    if (CHECK(cfg != NULL)) {
        CHECK_STR(cfg->path, file);
        check_full(cfg);
    }
    CHECK_STR(err, NULL);
    fg_config_free(cfg);
    free(file);
}

static unsigned cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > FG_MAX_WORKERS ? FG_MAX_WORKERS : (unsigned)n;
}

static void test_defaults(void)
{
    char *err = NULL;
    struct fg_config *cfg = parse("{" LISTENERS ", " UPSTREAMS ", " ROUTES "}", "t.json", &err);
    CHECK_STR(err, NULL);
    if (!CHECK(cfg != NULL))
        return;
    CHECK_STR(cfg->path, "t.json");
    CHECK_UINT(cfg->workers, cpus());
    CHECK(cfg->workers >= 1 && cfg->workers <= FG_MAX_WORKERS);
    CHECK_INT(cfg->listeners[0].backlog, 511);
    CHECK(cfg->listeners[0].tls == NULL);
    CHECK_UINT(cfg->client.header_timeout_ms, 10000);
    CHECK_UINT(cfg->client.idle_timeout_ms, 60000);
    CHECK_UINT(cfg->client.send_timeout_ms, 60000);
    CHECK_UINT(cfg->client.max_header_bytes, 32768);
    CHECK_UINT(cfg->client.max_headers, 100);
    CHECK_UINT(cfg->client.max_body_bytes, 104857600);
    CHECK_UINT(cfg->client.h2_max_concurrent_streams, 128);
    CHECK(cfg->client.model_body_bytes == 1048576);
    const struct fg_upstream *u = &cfg->upstreams[0];
    CHECK_STR(u->name, "m");
    CHECK_INT(u->balance, FG_BALANCE_LEAST_CONN);
    CHECK_UINT(u->connect_timeout_ms, 3000);
    CHECK_UINT(u->header_timeout_ms, 60000);
    CHECK_UINT(u->idle_timeout_ms, 60000);
    CHECK_UINT(u->keepalive_timeout_ms, 30000);
    CHECK_UINT(u->keepalive, 1024);
    CHECK_UINT(u->max_response_header_bytes, 32768);
    CHECK_UINT(u->backends[0].weight, 1);
    CHECK(cfg->routes[0].upstream == u);
    fg_config_free(cfg);

    /* An empty "client" object gets the same defaults. */
    cfg = parse(CL(""), "t.json", &err);
    if (CHECK(cfg != NULL)) {
        CHECK_UINT(cfg->client.max_body_bytes, 104857600);
        CHECK_UINT(cfg->client.header_timeout_ms, 10000);
        CHECK_UINT(cfg->client.h2_max_concurrent_streams, 128);
    }
    fg_config_free(cfg);
    free(err);
}

static void test_workers(void)
{
    static const struct {
        const char *text;
        unsigned want;          /* 0: the number of CPUs */
    } cases[] = {
        {ROOT("\"workers\": \"auto\""), 0},
        {ROOT("\"workers\": 1"), 1},
        {ROOT("\"workers\": 7"), 7},
        {ROOT("\"workers\": 256"), 256},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *err = NULL;
        struct fg_config *cfg = parse(cases[i].text, "t.json", &err);
        unsigned want = cases[i].want ? cases[i].want : cpus();
        CHECK_MSG(cfg && cfg->workers == want, "case %zu: %s, workers %u, expected %u", i,
                  err ? err : "ok", cfg ? cfg->workers : 0, want);
        fg_config_free(cfg);
        free(err);
    }
}

/* Edge values that must be accepted. */
static void test_ranges_accepted(void)
{
    static const char *const ok[] = {
        CL("\"max_body_bytes\": 9223372036854775807"),
        CL("\"header_timeout_ms\": 1, \"idle_timeout_ms\": 86400000"),
        CL("\"max_header_bytes\": 1024, \"max_headers\": 10000, \"h2_max_concurrent_streams\": 65535"),
        LST("{\"address\": \"127.0.0.1:1\", \"backlog\": 1}, {\"address\": \"127.0.0.1:65535\", \"backlog\": 65535}"),
        BE("{\"address\": \"127.0.0.1:9001\", \"weight\": 1000}"),
        UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"keepalive\": 1024, \"max_response_header_bytes\": 1048576}"),
        UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"balance\": \"least_conn\"}"),
        /* Same address, different families or ports: not duplicates
         * (IPv6 listeners are IPV6_V6ONLY). */
        LST("{\"address\": \"0.0.0.0:8080\"}, {\"address\": \"[::]:8080\"}, {\"address\": \"0.0.0.0:8081\"}"),
        LST("{\"address\": \"[::]:8082\"}, {\"address\": \"127.0.0.1:8082\"}"),
        /* Routes may come before the upstreams they name. */
        "{" ROUTES ", " LISTENERS ", " UPSTREAMS "}",
        /* An upstream's name can be anything but empty. */
        "{" LISTENERS ", \"upstreams\": {\"a b/\\u00e9\": {\"backends\": [{\"address\": \"127.0.0.1:1\"}]}},"
        " \"routes\": [{\"match\": {\"path_prefix\": \"/\"}, \"upstream\": \"a b/\xc3\xa9\"}]}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char *err = NULL;
        struct fg_config *cfg = parse(ok[i], "t.json", &err);
        CHECK_MSG(cfg != NULL, "case %zu rejected: %s", i, err ? err : "NULL");
        fg_config_free(cfg);
        free(err);
    }
}

/* ---- errors -------------------------------------------------------------- */

static void test_syntax_errors(void)
{
    CHECK_ERROR("{\"workers\": 1,}", "t.json:1:15: string or '}' expected near '}'");
    CHECK_ERROR("", "t.json:1:1: '[' or '{' expected near end of file");
    CHECK_ERROR("{}\nx", "t.json:2:1: end of file expected near 'x'");
    CHECK_ERROR("{\n", "t.json:2:1: string or '}' expected near end of file");
    CHECK_ERROR("{\"workers\": 99999999999999999999}",
                "t.json:1:32: too big integer near '99999999999999999999'");
    CHECK_ERROR("{\"a\": \"\\u0000\"}",
                "t.json:1:14: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"\\u0000\"'");
    CHECK_ERROR("[]", "t.json:1:1: $: must be an object");
    CHECK_ERROR("  [1]", "t.json:1:3: $: must be an object");
}

static void test_duplicate_keys(void)
{
    CHECK_ERROR(ROOT("\"workers\": 1, \"workers\": 2"),
                "t.json:1:16: $.workers: duplicate key \"workers\"");
    CHECK_ERROR(ROOT("\"workers\": 1, \"w\\u006frkers\": 2"),
                "t.json:1:16: $.workers: duplicate key \"workers\"");
    CHECK_ERROR(BE("{\"address\": \"127.0.0.1:9001\", \"weight\": 1, \"weight\": 2}"),
                "t.json:1:78: $.upstreams.m.backends[0].weight: duplicate key \"weight\"");
    CHECK_ERROR(LST("{\"address\": \"127.0.0.1:1\"}, {\"address\": \"127.0.0.1:2\", \"address\": \"127.0.0.1:3\"}"),
                "t.json:1:71: $.listeners[1].address: duplicate key \"address\"");
    CHECK_ERROR(NO_UPS("\"upstreams\": {\"m\": {}, \"m\": {}}"),
                "t.json:1:25: $.upstreams.m: duplicate key \"m\"");
    CHECK_ERROR(NO_UPS("\"upstreams\": {\"my up\": {}, \"my up\": {}}"),
                "t.json:1:29: $.upstreams[\"my up\"]: duplicate key \"my up\"");
    /* On a later line, after a two-byte character. */
    CHECK_ERROR("{\"routes\": [],\n \"upstreams\": {\"\xc3\xa9\": 1, \"\xc3\xa9\": 2}}",
                "t.json:2:24: $.upstreams[\"\xc3\xa9\"]: duplicate key \"\xc3\xa9\"");
}

static void test_unknown_keys(void)
{
    CHECK_ERROR(ROOT("\"foo\": 1"), "t.json:1:2: $.foo: unknown key \"foo\"");
    CHECK_ERROR(ROOT("\"my key\": 1"), "t.json:1:2: $[\"my key\"]: unknown key \"my key\"");
    CHECK_ERROR(ROOT("\"caf\\u00e9\": 1"),
                "t.json:1:2: $[\"caf\xc3\xa9\"]: unknown key \"caf\xc3\xa9\"");
    CHECK_ERROR(ROOT("\"a\\\"b\": 1"), "t.json:1:2: $[\"a\\\"b\"]: unknown key \"a\\\"b\"");
    CHECK_ERROR(ROOT("\"Workers\": 1"), "t.json:1:2: $.Workers: unknown key \"Workers\"");
    CHECK_ERROR(LST("{\"address\": \"127.0.0.1:8080\", \"bogus\": 1}"),
                "t.json:1:46: $.listeners[0].bogus: unknown key \"bogus\"");
    CHECK_ERROR(TLS("{\"certificate\": \"a\", \"key\": \"b\", \"ca\": \"c\"}"),
                "t.json:1:86: $.listeners[0].tls.ca: unknown key \"ca\"");
    CHECK_ERROR(CL("\"timeout\": 1"), "t.json:1:13: $.client.timeout: unknown key \"timeout\"");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"retries\": 2}"),
                "t.json:1:67: $.upstreams.m.retries: unknown key \"retries\"");
    CHECK_ERROR(BE("{\"address\": \"127.0.0.1:9001\", \"wieght\": 2}"),
                "t.json:1:65: $.upstreams.m.backends[0].wieght: unknown key \"wieght\"");
    CHECK_ERROR(RT("{\"match\": {\"path_prefix\": \"/\"}, \"upstream\": \"m\", \"rewirte\": 1}"),
                "t.json:1:62: $.routes[0].rewirte: unknown key \"rewirte\"");
    CHECK_ERROR(MATCH("{\"path_prefix\": \"/\", \"hots\": \"x\"}"),
                "t.json:1:44: $.routes[0].match.hots: unknown key \"hots\"");
    /* Unknown keys are reported before anything else wrong in the object. */
    CHECK_ERROR(LST("{\"backlog\": 0, \"x\": 1}"),
                "t.json:1:31: $.listeners[0].x: unknown key \"x\"");
}

static void test_missing_keys(void)
{
    CHECK_ERROR("{}", "t.json:1:1: $: missing required key \"listeners\"");
    CHECK_ERROR(NO_LST("\"workers\": 1"), "t.json:1:1: $: missing required key \"listeners\"");
    CHECK_ERROR(NO_UPS("\"workers\": 1"), "t.json:1:1: $: missing required key \"upstreams\"");
    CHECK_ERROR(NO_RTS("\"workers\": 1"), "t.json:1:1: $: missing required key \"routes\"");
    CHECK_ERROR(LST("{}"), "t.json:1:16: $.listeners[0]: missing required key \"address\"");
    CHECK_ERROR(LST("{\"backlog\": 5}"),
                "t.json:1:16: $.listeners[0]: missing required key \"address\"");
    CHECK_ERROR(TLS("{}"), "t.json:1:53: $.listeners[0].tls: missing required key \"certificate\"");
    CHECK_ERROR(UP("{}"), "t.json:1:21: $.upstreams.m: missing required key \"backends\"");
    CHECK_ERROR(BE("{}"), "t.json:1:35: $.upstreams.m.backends[0]: missing required key \"address\"");
    CHECK_ERROR(BE("{\"weight\": 2}"),
                "t.json:1:35: $.upstreams.m.backends[0]: missing required key \"address\"");
    CHECK_ERROR(RT("{\"upstream\": \"m\"}"),
                "t.json:1:13: $.routes[0]: missing required key \"match\"");
    CHECK_ERROR(RT("{\"match\": {\"path_prefix\": \"/\"}}"),
                "t.json:1:13: $.routes[0]: needs exactly one of \"upstream\" and \"split\"");
}

/* Route match conditions and splits: what loads, and every refusal. */
static void test_routing_keys(void)
{
    char *err = NULL;
    struct fg_config *cfg = parse(
        "{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}],\n"
        " \"upstreams\": {\"a\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]},\n"
        "               \"b\": {\"backends\": [{\"address\": \"127.0.0.1:9002\"}]}},\n"
        " \"routes\": [\n"
        "  {\"match\": {\"path\": \"/exact\", \"host\": \"*.Example.com\", \"methods\": [\"GET\", \"POST\"],\n"
        "             \"headers\": {\"X-Tenant\": \"t1\"}, \"query\": {\"debug\": \"1\"}}, \"upstream\": \"a\"},\n"
        "  {\"match\": {\"model\": \"digits\"},\n"
        "   \"split\": {\"sticky\": {\"header\": \"X-User\"},\n"
        "             \"arms\": [{\"upstream\": \"a\", \"weight\": 90}, {\"upstream\": \"b\", \"weight\": 10}]}},\n"
        "  {\"match\": {}, \"split\": {\"sticky\": {\"cookie\": \"uid\"},\n"
        "   \"arms\": [{\"upstream\": \"a\", \"weight\": 0}, {\"upstream\": \"b\", \"weight\": 1}]}},\n"
        "  {\"match\": {}, \"split\": {\"arms\": [{\"upstream\": \"b\", \"weight\": 3}]}}]}\n",
        "t.json", &err);
    CHECK_STR(err, NULL);
    if (CHECK(cfg != NULL) && CHECK_UINT(cfg->nroutes, 4)) {
        const struct fg_route *r = &cfg->routes[0];
        CHECK_STR(r->path, "/exact");
        CHECK(r->path_prefix == NULL);
        CHECK_STR(r->host, "*.example.com");
        if (CHECK_UINT(r->nmethods, 2))
            CHECK_STR(r->methods[1], "POST");
        if (CHECK_UINT(r->nheaders, 1)) {
            CHECK_STR(r->headers[0].name, "x-tenant");
            CHECK_STR(r->headers[0].value, "t1");
        }
        if (CHECK_UINT(r->nquery, 1))
            CHECK_STR(r->query[0].name, "debug");
        CHECK(r->upstream == fg_config_upstream(cfg, "a") && r->split == NULL);
        r = &cfg->routes[1];
        CHECK_STR(r->model, "digits");
        CHECK_STR(r->path_prefix, "/");
        if (CHECK(r->split != NULL) && CHECK_UINT(r->split->narms, 2)) {
            CHECK_INT(r->split->sticky, FG_STICKY_HEADER);
            CHECK_STR(r->split->sticky_name, "x-user");
            CHECK_UINT(r->split->arms[0].weight, 90);
            CHECK(r->split->arms[1].upstream == fg_config_upstream(cfg, "b"));
            CHECK(r->split->total == 100);
        }
        CHECK(cfg->routes[2].split && cfg->routes[2].split->sticky == FG_STICKY_COOKIE);
        CHECK(cfg->routes[3].split && cfg->routes[3].split->sticky == FG_STICKY_NONE);
    }
    fg_config_free(cfg);
    free(err);

    CHECK_ERROR(MATCH("{\"path\": \"x\"}"),
                "t.json:1:32: $.routes[0].match.path: must be a string starting with \"/\", without a query");
    CHECK_ERROR(MATCH("{\"path\": \"/a?b\"}"),
                "t.json:1:32: $.routes[0].match.path: must be a string starting with \"/\", without a query");
    CHECK_ERROR(MATCH("{\"host\": \"a b\"}"),
                "t.json:1:32: $.routes[0].match.host: must be a host name (letters, digits, '-', '.'), "
                "optionally starting with \"*.\"; no port");
    CHECK_ERROR(MATCH("{\"host\": \"a.com:80\"}"),
                "t.json:1:32: $.routes[0].match.host: must be a host name (letters, digits, '-', '.'), "
                "optionally starting with \"*.\"; no port");
    CHECK_ERROR(MATCH("{\"methods\": []}"),
                "t.json:1:35: $.routes[0].match.methods: must be a non-empty array of methods (\"GET\", \"POST\", ...)");
    CHECK_ERROR(MATCH("{\"methods\": [\"get\"]}"),
                "t.json:1:36: $.routes[0].match.methods[0]: must be upper case (methods are case-sensitive)");
    CHECK_ERROR(MATCH("{\"methods\": [\"G T\"]}"),
                "t.json:1:36: $.routes[0].match.methods[0]: must be a method name (an HTTP token)");
    CHECK_ERROR(MATCH("{\"headers\": {\"a b\": \"x\"}}"),
                "t.json:1:36: $.routes[0].match.headers[\"a b\"]: is not a header name");
    CHECK_ERROR(MATCH("{\"headers\": {\"x\": 1}}"),
                "t.json:1:41: $.routes[0].match.headers.x: must be a string");
    CHECK_ERROR(MATCH("{\"query\": {}}"),
                "t.json:1:33: $.routes[0].match.query: must be a non-empty object of parameter names to values");
    CHECK_ERROR(MATCH("{\"model\": \"a/b\"}"),
                "t.json:1:33: $.routes[0].match.model: must be a model name (no '/', '?' or spaces)");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"split\": {\"arms\": [{\"upstream\": \"m\", \"weight\": 1}]}}"),
                "t.json:1:13: $.routes[0]: needs exactly one of \"upstream\" and \"split\"");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {}}"),
                "t.json:1:36: $.routes[0].split: missing required key \"arms\"");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {\"arms\": []}}"),
                "t.json:1:45: $.routes[0].split.arms: must be a non-empty array of {\"upstream\": NAME, \"weight\": N}");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {\"arms\": [{\"upstream\": \"zz\", \"weight\": 1}]}}"),
                "t.json:1:59: $.routes[0].split.arms[0].upstream: upstream \"zz\" is not defined");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {\"arms\": [{\"upstream\": \"m\", \"weight\": -1}]}}"),
                "t.json:1:74: $.routes[0].split.arms[0].weight: must be an integer in 0..1000000");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {\"arms\": [{\"upstream\": \"m\", \"weight\": 0}]}}"),
                "t.json:1:45: $.routes[0].split.arms: the weights must not all be 0");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {\"arms\": [{\"upstream\": \"m\"}]}}"),
                "t.json:1:46: $.routes[0].split.arms[0]: missing required key \"weight\"");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {\"arms\": [{\"upstream\": \"m\", \"weight\": 1, \"x\": 1}]}}"),
                "t.json:1:77: $.routes[0].split.arms[0].x: unknown key \"x\"");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {\"sticky\": {\"ip\": 1}, \"arms\": [{\"upstream\": \"m\", \"weight\": 1}]}}"),
                "t.json:1:47: $.routes[0].split.sticky: must be {\"header\": NAME} or {\"cookie\": NAME}");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rules\": []}"),
                "t.json:1:53: $.routes[0].rules: must be a non-empty array of rules");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rules\": [{\"upstream\": \"m\"}]}"),
                "t.json:1:54: $.routes[0].rules[0]: needs at least one condition (header, cookie, query, client, "
                "country, continent, asn, key)");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rules\": [{\"header\": {\"a\": \"1\"}}]}"),
                "t.json:1:54: $.routes[0].rules[0]: missing required key \"upstream\"");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rules\": [{\"ip\": 1, \"upstream\": \"m\"}]}"),
                "t.json:1:55: $.routes[0].rules[0].ip: unknown key \"ip\"");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rules\": [{\"client\": [\"10.1.2.3/8\"], \"upstream\": \"m\"}]}"),
                "t.json:1:66: $.routes[0].rules[0].client[0]: must be an address or CIDR block (\"10.0.0.0/8\", \"::1\"), host bits 0");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rules\": [{\"client\": [\"::1/129\"], \"upstream\": \"m\"}]}"),
                "t.json:1:66: $.routes[0].rules[0].client[0]: must be an address or CIDR block (\"10.0.0.0/8\", \"::1\"), host bits 0");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rules\": [{\"client\": [\"x\"], \"upstream\": \"m\"}]}"),
                "t.json:1:66: $.routes[0].rules[0].client[0]: must be an address or CIDR block (\"10.0.0.0/8\", \"::1\"), host bits 0");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"upstream_header\": \"a b\"}"),
                "t.json:1:63: $.routes[0].upstream_header: must be a header name (e.g. \"x-fleetgate-upstream\")");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rewrite\": {\"path_prefix\": \"/x/\"}}"),
                "t.json:1:55: $.routes[0].rewrite: \"path_prefix\" needs match.path_prefix (the part it replaces)");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rewrite\": {\"model\": \"a b\"}}"),
                "t.json:1:65: $.routes[0].rewrite.model: must be a model name of letters, digits, '.', '_', ':', '-'");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"rewrite\": {}}"),
                "t.json:1:55: $.routes[0].rewrite: must be an object with \"path_prefix\" and/or \"model\"");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"fallback\": {\"upstream\": \"nope\"}}"),
                "t.json:1:69: $.routes[0].fallback.upstream: upstream \"nope\" is not defined");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"fallback\": {\"upstream\": \"m\", \"max_body_bytes\": -1}}"),
                "t.json:1:92: $.routes[0].fallback.max_body_bytes: must be an integer in 0..16777216");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"mirror\": {\"percent\": 5}}"),
                "t.json:1:54: $.routes[0].mirror: missing required key \"upstream\"");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"mirror\": {\"upstream\": \"m\", \"percent\": 101}}"),
                "t.json:1:83: $.routes[0].mirror.percent: must be a number in 0..100");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"mirror\": {\"upstream\": \"m\", \"max_in_flight\": 0}}"),
                "t.json:1:89: $.routes[0].mirror.max_in_flight: must be an integer in 1..65535");
    CHECK_ERROR(RT("{\"match\": {}, \"upstream\": \"m\", \"mirror\": {\"upstream\": \"m\", \"share\": 1}}"),
                "t.json:1:72: $.routes[0].mirror.share: unknown key \"share\"");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"health_check\": 1}"),
                "t.json:1:83: $.upstreams.m.health_check: must be an object (e.g. {\"path\": \"/v2/health/ready\"})");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"health_check\": {\"path\": \"health\"}}"),
                "t.json:1:92: $.upstreams.m.health_check.path: must be a path starting with \"/\", without spaces");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"health_check\": {\"fall\": 0}}"),
                "t.json:1:92: $.upstreams.m.health_check.fall: must be an integer in 1..100");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"health_check\": {\"status_min\": 300, \"status_max\": 299}}"),
                "t.json:1:117: $.upstreams.m.health_check.status_max: must be at least status_min (300)");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"health_check\": {\"interval_ms\": 500, \"timeout_ms\": 600}}"),
                "t.json:1:118: $.upstreams.m.health_check.timeout_ms: must not exceed interval_ms (500)");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"health_check\": {\"intervall_ms\": 500}}"),
                "t.json:1:84: $.upstreams.m.health_check.intervall_ms: unknown key \"intervall_ms\"");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"outlier_detection\": {\"consecutive_failures\": 0}}"),
                "t.json:1:113: $.upstreams.m.outlier_detection.consecutive_failures: must be an integer in 1..1000");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"outlier_detection\": {\"base_ejection_ms\": 5000, \"max_ejection_ms\": 1000}}"),
                "t.json:1:134: $.upstreams.m.outlier_detection.max_ejection_ms: must be at least base_ejection_ms (5000)");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"outlier_detection\": {\"max_ejected_percent\": 101}}"),
                "t.json:1:112: $.upstreams.m.outlier_detection.max_ejected_percent: must be an integer in 0..100");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"retry\": {\"retry_on\": [404]}}"),
                "t.json:1:90: $.upstreams.m.retry.retry_on[0]: a status to retry must be 429 or in 500..599");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"retry\": {\"retry_on\": [\"refused\"]}}"),
                "t.json:1:90: $.upstreams.m.retry.retry_on[0]: expected \"connect-failure\", \"reset\" or \"timeout\"");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"retry\": {\"retry_on\": 503}}"),
                "t.json:1:89: $.upstreams.m.retry.retry_on: must be an array of conditions (\"connect-failure\", \"reset\", \"timeout\") and statuses (429, 500..599)");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"retry\": {\"budget_percent\": 120}}"),
                "t.json:1:95: $.upstreams.m.retry.budget_percent: must be an integer in 0..100");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"retry\": {\"non_idempotent\": 1}}"),
                "t.json:1:95: $.upstreams.m.retry.non_idempotent: must be true or false");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"retry\": {\"max_retries\": 0}}"),
                "t.json:1:92: $.upstreams.m.retry.max_retries: must be an integer in 1..10");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\", \"max_requests\": -1}]}"),
                "t.json:1:81: $.upstreams.m.backends[0].max_requests: must be an integer in 0..1000000");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"queue\": {\"timeout_ms\": 0}}"),
                "t.json:1:91: $.upstreams.m.queue.timeout_ms: must be an integer in 1..86400000");
    CHECK_ERROR(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"queue\": {\"length\": 5}}"),
                "t.json:1:77: $.upstreams.m.queue.length: unknown key \"length\"");
    CHECK_ERROR(ROOT("\"admin\": {\"address\": \"127.0.0.1:8080\"}"),
                "t.json:1:23: $.admin.address: the admin address 127.0.0.1:8080 overlaps "
                "$.listeners[0] (127.0.0.1:8080)");
    /* the default admin address is checked too, and a wildcard listener
     * takes the admin's port on loopback */
    CHECK_ERROR("{\"listeners\": [{\"address\": \"0.0.0.0:9901\"}], "
                "\"upstreams\": {\"m\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}]}}, "
                "\"routes\": [{\"match\": {}, \"upstream\": \"m\"}], \"admin\": {}}",
                "t.json:1:166: $.admin: the admin address 127.0.0.1:9901 overlaps "
                "$.listeners[0] (0.0.0.0:9901)");
    CHECK_ERROR(ROOT("\"admin\": {\"token\": \"x\"}"),
                "t.json:1:12: $.admin.token: unknown key \"token\"");
    CHECK_ERROR(ROOT("\"admin\": true"),
                "t.json:1:11: $.admin: must be an object (e.g. {\"address\": \"127.0.0.1:9901\"})");
    CHECK_ERROR(RT("{\"match\": {}, \"split\": {\"stiky\": 1, \"arms\": []}}"),
                "t.json:1:37: $.routes[0].split.stiky: unknown key \"stiky\"");
}

static void test_health_defaults(void)
{
    char *err = NULL;
    struct fg_config *cfg = parse(
        "{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}],\n"
        " \"upstreams\": {\"a\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"health_check\": {}},\n"
        "               \"b\": {\"backends\": [{\"address\": \"127.0.0.1:9002\"}]}},\n"
        " \"routes\": [{\"match\": {}, \"upstream\": \"a\"}]}\n", "t.json", &err);
    CHECK_STR(err, NULL);
    if (CHECK(cfg != NULL)) {
        const struct fg_health_cfg *h = &fg_config_upstream(cfg, "a")->health;
        CHECK_INT(h->enabled, 1);
        CHECK_STR(h->path, "/v2/health/ready");
        CHECK_UINT(h->interval_ms, 2000);
        CHECK_UINT(h->timeout_ms, 1000);
        CHECK_UINT(h->rise, 2);
        CHECK_UINT(h->fall, 3);
        CHECK_UINT(h->status_min, 200);
        CHECK_UINT(h->status_max, 399);
        CHECK(h->body_contains == NULL);
        CHECK_INT(fg_config_upstream(cfg, "b")->health.enabled, 0);
        CHECK_INT(fg_config_upstream(cfg, "a")->outlier.enabled, 0);
    }
    fg_config_free(cfg);
    free(err);
}

static void test_retry_queue_admin(void)
{
    char *err = NULL;
    struct fg_config *cfg = parse(
        "{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}], \"admin\": {},\n"
        " \"upstreams\": {\"a\": {\"backends\": [{\"address\": \"127.0.0.1:9001\"},\n"
        "                                 {\"address\": \"127.0.0.1:9002\", \"max_requests\": 3}],\n"
        "                    \"max_requests\": 8, \"retry\": {}},\n"
        "               \"b\": {\"backends\": [{\"address\": \"127.0.0.1:9002\"}],\n"
        "                    \"retry\": {\"retry_on\": [\"timeout\", 429, 500], \"non_idempotent\": true}}},\n"
        " \"routes\": [{\"match\": {}, \"upstream\": \"a\"}]}\n", "t.json", &err);
    CHECK_STR(err, NULL);
    if (CHECK(cfg != NULL)) {
        const struct fg_upstream *a = fg_config_upstream(cfg, "a"), *b = fg_config_upstream(cfg, "b");
        CHECK_INT(cfg->admin_enabled, 1);
        CHECK_STR(cfg->admin.addr.text, "127.0.0.1:9901");
        CHECK_UINT(a->backends[0].max_requests, 8);
        CHECK_UINT(a->backends[1].max_requests, 3);
        CHECK_INT(a->limited, 1);
        CHECK_INT(b->limited, 0);
        CHECK_UINT(a->queue.max_length, 1000);
        CHECK_UINT(a->queue.timeout_ms, 5000);
        CHECK_UINT(a->queue.retry_after_s, 1);
        /* retry defaults: connect failures, resets, 502/503/504 */
        CHECK_INT(a->retry.enabled, 1);
        CHECK_UINT(a->retry.on, FG_RETRY_CONNECT | FG_RETRY_RESET);
        CHECK_INT(a->retry.on_status[502 - 400] + a->retry.on_status[503 - 400] +
                  a->retry.on_status[504 - 400] + a->retry.on_status[500 - 400], 3);
        CHECK_UINT(a->retry.max_retries, 1);
        CHECK_UINT(a->retry.budget_percent, 20);
        CHECK_UINT(a->retry.min_retries_per_second, 3);
        CHECK(a->retry.max_body_bytes == 65536);
        CHECK_INT(a->retry.non_idempotent, 0);
        CHECK_UINT(a->retry.max_retry_after_ms, 60000);
        CHECK_UINT(b->retry.on, FG_RETRY_TIMEOUT);
        CHECK_INT(b->retry.on_status[429 - 400] + b->retry.on_status[500 - 400] +
                  b->retry.on_status[503 - 400], 2);
        CHECK_INT(b->retry.non_idempotent, 1);
    }
    fg_config_free(cfg);
    free(err);
}

static void test_workers_errors(void)
{
    static const char *const bad[] = {"0", "257", "-1", "\"many\"", "\"AUTO\"", "\"\"", "1.5",
                                      "4.0", "true", "null", "[4]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *text = xasprintf(ROOT("\"workers\": %s"), bad[i]);
        check_error_at(__LINE__, text, "t.json",
                       "t.json:1:13: $.workers: must be \"auto\" or an integer in 1..256");
        free(text);
    }
}

static void test_type_errors(void)
{
    /* listeners */
    CHECK_ERROR(NO_LST("\"listeners\": 5"), "t.json:1:15: $.listeners: must be a non-empty array");
    CHECK_ERROR(NO_LST("\"listeners\": []"), "t.json:1:15: $.listeners: must be a non-empty array");
    CHECK_ERROR(NO_LST("\"listeners\": {}"), "t.json:1:15: $.listeners: must be a non-empty array");
    CHECK_ERROR(NO_LST("\"listeners\": null"), "t.json:1:15: $.listeners: must be a non-empty array");
    CHECK_ERROR(LST("5"), "t.json:1:16: $.listeners[0]: must be an object");
    CHECK_ERROR(LST("{\"address\": \"127.0.0.1:1\"}, []"), "t.json:1:44: $.listeners[1]: must be an object");
    CHECK_ERROR(LST("{\"address\": 8080}"), "t.json:1:28: $.listeners[0].address: must be a non-empty string");
    CHECK_ERROR(LST("{\"address\": \"\"}"), "t.json:1:28: $.listeners[0].address: must be a non-empty string");
    CHECK_ERROR(LST("{\"address\": [\"127.0.0.1:80\"]}"), "t.json:1:28: $.listeners[0].address: must be a non-empty string");
    static const char *const backlog[] = {"0", "65536", "-1", "\"511\"", "511.5", "false"};
    for (size_t i = 0; i < sizeof backlog / sizeof *backlog; i++) {
        char *text = xasprintf(LST("{\"address\": \"127.0.0.1:8080\", \"backlog\": %s}"), backlog[i]);
        check_error_at(__LINE__, text, "t.json",
                       "t.json:1:57: $.listeners[0].backlog: must be an integer in 1..65535");
        free(text);
    }
    /* tls (file checks: test_tls) */
    CHECK_ERROR(TLS("\"x\""), "t.json:1:53: $.listeners[0].tls: must be an object");
    CHECK_ERROR(TLS("true"), "t.json:1:53: $.listeners[0].tls: must be an object");
    CHECK_ERROR(TLS("{\"certificate\": 5, \"key\": \"k\"}"),
                "t.json:1:69: $.listeners[0].tls.certificate: must be a non-empty string");
    CHECK_ERROR(TLS("{\"certificate\": \"\", \"key\": \"k\"}"),
                "t.json:1:69: $.listeners[0].tls.certificate: must be a non-empty string");

    /* client */
    CHECK_ERROR(ROOT("\"client\": 5"), "t.json:1:12: $.client: must be an object");
    CHECK_ERROR(ROOT("\"client\": []"), "t.json:1:12: $.client: must be an object");

    /* upstreams */
    CHECK_ERROR(NO_UPS("\"upstreams\": {}"), "t.json:1:15: $.upstreams: must be a non-empty object");
    CHECK_ERROR(NO_UPS("\"upstreams\": []"), "t.json:1:15: $.upstreams: must be a non-empty object");
    CHECK_ERROR(NO_UPS("\"upstreams\": \"m\""), "t.json:1:15: $.upstreams: must be a non-empty object");
    CHECK_ERROR(UP("5"), "t.json:1:21: $.upstreams.m: must be an object");
    CHECK_ERROR(UP("[]"), "t.json:1:21: $.upstreams.m: must be an object");
    CHECK_ERROR(NO_UPS("\"upstreams\": {\"\": {}}"),
                "t.json:1:16: $.upstreams[\"\"]: upstream name must not be empty");
    CHECK_ERROR(UP("{\"balance\": \"random\", \"backends\": [{\"address\": \"127.0.0.1:9001\"}]}"),
                "t.json:1:33: $.upstreams.m.balance: expected \"least_conn\" or \"round_robin\"");
    CHECK_ERROR(UP("{\"balance\": 1, \"backends\": [{\"address\": \"127.0.0.1:9001\"}]}"),
                "t.json:1:33: $.upstreams.m.balance: expected \"least_conn\" or \"round_robin\"");
    CHECK_ERROR(UP("{\"balance\": \"LEAST_CONN\", \"backends\": [{\"address\": \"127.0.0.1:9001\"}]}"),
                "t.json:1:33: $.upstreams.m.balance: expected \"least_conn\" or \"round_robin\"");
    CHECK_ERROR(UP("{\"backends\": []}"), "t.json:1:34: $.upstreams.m.backends: must be a non-empty array");
    CHECK_ERROR(UP("{\"backends\": {}}"), "t.json:1:34: $.upstreams.m.backends: must be a non-empty array");
    CHECK_ERROR(UP("{\"backends\": \"127.0.0.1:1\"}"), "t.json:1:34: $.upstreams.m.backends: must be a non-empty array");
    CHECK_ERROR(BE("\"x\""), "t.json:1:35: $.upstreams.m.backends[0]: must be an object");
    CHECK_ERROR(BE("{\"address\": 9001}"),
                "t.json:1:47: $.upstreams.m.backends[0].address: must be a non-empty string");
    static const char *const weight[] = {"0", "1001", "-1", "\"2\"", "2.5", "null"};
    for (size_t i = 0; i < sizeof weight / sizeof *weight; i++) {
        char *text = xasprintf(BE("{\"address\": \"127.0.0.1:9001\", \"weight\": %s}"), weight[i]);
        check_error_at(__LINE__, text, "t.json",
                       "t.json:1:75: $.upstreams.m.backends[0].weight: must be an integer in 1..1000");
        free(text);
    }
    CHECK_ERROR(BE("{\"address\": \"127.0.0.1:9001\"}, {\"address\": \"127.0.0.1:9002\", \"weight\": -1}"),
                "t.json:1:106: $.upstreams.m.backends[1].weight: must be an integer in 1..1000");
    CHECK_ERROR(NO_UPS("\"upstreams\": {\"a\": {\"backends\": [{\"address\": \"127.0.0.1:1\"}]}, "
                       "\"b\": {\"backends\": [{\"address\": \"127.0.0.1:0\"}]}}"),
                "t.json:1:96: $.upstreams.b.backends[0].address: invalid address \"127.0.0.1:0\": "
                "the port must be an integer in 1..65535");

    /* routes */
    CHECK_ERROR(NO_RTS("\"routes\": 5"), "t.json:1:12: $.routes: must be a non-empty array");
    CHECK_ERROR(NO_RTS("\"routes\": []"), "t.json:1:12: $.routes: must be a non-empty array");
    CHECK_ERROR(RT("5"), "t.json:1:13: $.routes[0]: must be an object");
    CHECK_ERROR(MATCH("5"), "t.json:1:23: $.routes[0].match: must be an object");
    CHECK_ERROR(MATCH("\"/\""), "t.json:1:23: $.routes[0].match: must be an object");
    CHECK_ERROR(MATCH("{\"path_prefix\": 5}"),
                "t.json:1:39: $.routes[0].match.path_prefix: must be a string starting with \"/\"");
    CHECK_ERROR(MATCH("{\"path_prefix\": [\"/\"]}"),
                "t.json:1:39: $.routes[0].match.path_prefix: must be a string starting with \"/\"");
    CHECK_ERROR(MATCH("{\"path_prefix\": \"api\"}"),
                "t.json:1:39: $.routes[0].match.path_prefix: must start with \"/\"");
    CHECK_ERROR(MATCH("{\"path_prefix\": \"\"}"),
                "t.json:1:39: $.routes[0].match.path_prefix: must start with \"/\"");
    CHECK_ERROR(MATCH("{\"path_prefix\": \" /\"}"),
                "t.json:1:39: $.routes[0].match.path_prefix: must start with \"/\"");
    CHECK_ERROR(RT("{\"match\": {\"path_prefix\": \"/\"}, \"upstream\": 5}"),
                "t.json:1:57: $.routes[0].upstream: must be a non-empty string");
    CHECK_ERROR(RT("{\"match\": {\"path_prefix\": \"/\"}, \"upstream\": \"\"}"),
                "t.json:1:57: $.routes[0].upstream: must be a non-empty string");
    CHECK_ERROR(RT("{\"match\": {\"path_prefix\": \"/\"}, \"upstream\": \"nope\"}"),
                "t.json:1:57: $.routes[0].upstream: upstream \"nope\" is not defined");
    CHECK_ERROR(RT("{\"match\": {\"path_prefix\": \"/\"}, \"upstream\": \"M\"}"),
                "t.json:1:57: $.routes[0].upstream: upstream \"M\" is not defined");
    CHECK_ERROR(RT("{\"match\": {\"path_prefix\": \"/a\"}, \"upstream\": \"m\"}, "
                   "{\"match\": {\"path_prefix\": \"/\"}, \"upstream\": \"x\"}"),
                "t.json:1:108: $.routes[1].upstream: upstream \"x\" is not defined");
}

/* Every integer field: both ends of its range and a string, from one table
 * so that a field added to the loader without a test shows up here. */
static void test_int_ranges(void)
{
    static const struct {
        const char *key;
        long long min, max;
    } client[] = {
        {"header_timeout_ms", 1, 86400000},
        {"idle_timeout_ms", 1, 86400000},
        {"send_timeout_ms", 1, 86400000},
        {"max_header_bytes", 1024, 1048576},
        {"max_headers", 1, 10000},
        {"h2_max_concurrent_streams", 1, 65535},
    }, upstream[] = {
        {"connect_timeout_ms", 1, 86400000},
        {"header_timeout_ms", 1, 86400000},
        {"idle_timeout_ms", 1, 86400000},
        {"keepalive_timeout_ms", 1, 86400000},
        {"keepalive", 0, 65535},
        {"max_response_header_bytes", 1024, 1048576},
    };
    for (size_t i = 0; i < sizeof client / sizeof *client; i++) {
        const char *k = client[i].key;
        char *values[] = {xasprintf("%lld", client[i].min - 1),
                          xasprintf("%lld", client[i].max + 1), xstrdup("\"10\""), xstrdup("1e3")};
        /* The value follows {"client": {"KEY": , which is 12 + strlen(KEY) + 4 characters. */
        char *want = xasprintf("t.json:1:%zu: $.client.%s: must be an integer in %lld..%lld",
                               strlen(k) + 17, k, client[i].min, client[i].max);
        for (size_t v = 0; v < 4; v++) {
            char *text = xasprintf(CL("\"%s\": %s"), k, values[v]);
            check_error_at(__LINE__, text, "t.json", want);
            free(text);
            free(values[v]);
        }
        free(want);
    }
    for (size_t i = 0; i < sizeof upstream / sizeof *upstream; i++) {
        const char *k = upstream[i].key;
        char *values[] = {xasprintf("%lld", upstream[i].min - 1),
                          xasprintf("%lld", upstream[i].max + 1), xstrdup("\"10\""), xstrdup("true")};
        /* The value follows 20 + 46 characters, then "KEY": . */
        char *want = xasprintf("t.json:1:%zu: $.upstreams.m.%s: must be an integer in %lld..%lld",
                               strlen(k) + 71, k, upstream[i].min, upstream[i].max);
        for (size_t v = 0; v < 4; v++) {
            char *text = xasprintf(UP("{\"backends\": [{\"address\": \"127.0.0.1:9001\"}], \"%s\": %s}"),
                                   k, values[v]);
            check_error_at(__LINE__, text, "t.json", want);
            free(text);
            free(values[v]);
        }
        free(want);
    }
    /* uint64_t: no upper bound short of what JSON integers hold. */
    CHECK_ERROR(CL("\"max_body_bytes\": -1"),
                "t.json:1:31: $.client.max_body_bytes: must be an integer >= 0");
    CHECK_ERROR(CL("\"max_body_bytes\": \"1M\""),
                "t.json:1:31: $.client.max_body_bytes: must be an integer >= 0");
    CHECK_ERROR(CL("\"max_body_bytes\": 1.0"),
                "t.json:1:31: $.client.max_body_bytes: must be an integer >= 0");
}

static void test_addresses(void)
{
    static const struct {
        const char *in;
        const char *text;       /* NULL: must fail */
        const char *why;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1:8080", NULL},
        {"0.0.0.0:1", "0.0.0.0:1", NULL},
        {"10.1.2.3:080", "10.1.2.3:80", NULL},
        {"[::1]:8080", "[::1]:8080", NULL},
        {"[0:0::1]:65535", "[::1]:65535", NULL},
        {"[::]:443", "[::]:443", NULL},
        {"[2001:DB8::A]:80", "[2001:db8::a]:80", NULL},
        {"[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:80", NULL},
        {"", NULL, "missing port, expected HOST:PORT"},
        {"127.0.0.1", NULL, "missing port, expected HOST:PORT"},
        {"localhost", NULL, "missing port, expected HOST:PORT"},
        {"127.0.0.1:", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1:0", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1:65536", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1:99999999999", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1:000080", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1:80x", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1:+80", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1: 80", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1:-1", NULL, "the port must be an integer in 1..65535"},
        {"127.0.0.1:http", NULL, "the port must be an integer in 1..65535"},
        {"[::1", NULL, "missing \"]\" after the IPv6 address"},
        {"[::1]80", NULL, "missing port, expected [IPv6]:PORT"},
        {"[::1]", NULL, "missing port, expected [IPv6]:PORT"},
        {"[::1]:", NULL, "the port must be an integer in 1..65535"},
        {"[::1]:0", NULL, "the port must be an integer in 1..65535"},
        {"::1:80", NULL, "an IPv6 address must be written in brackets, as [::1]:8080"},
        {"[zz::1]:80", NULL, "invalid IPv6 address"},
        {"[127.0.0.1]:80", NULL, "invalid IPv6 address"},
        {"[]:80", NULL, "missing host"},
        {":80", NULL, "missing host"},
        {"1.2.3:80", NULL, "invalid IPv4 address"},
        {"256.1.1.1:80", NULL, "invalid IPv4 address"},
        {"1.2.3.4.5:80", NULL, "invalid IPv4 address"},
        {"010.1.1.1:80", NULL, "invalid IPv4 address"},
        {"bad host:80", NULL, "invalid host name"},
        {"h\xc3\xa9:80", NULL, "invalid host name"},
        {"a/b:80", NULL, "invalid host name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fg_addr a;
        const char *why = NULL;
        int rc = fg_addr_parse(cases[i].in, &a, &why);
        if (cases[i].text)
            CHECK_MSG(rc == 0 && strcmp(a.text, cases[i].text) == 0,
                      "fg_addr_parse(\"%s\"): rc %d (%s), text \"%s\", expected \"%s\"",
                      cases[i].in, rc, why ? why : "-", rc == 0 ? a.text : "", cases[i].text);
        else
            CHECK_MSG(rc == -1 && why && strcmp(why, cases[i].why) == 0,
                      "fg_addr_parse(\"%s\"): rc %d, why \"%s\", expected \"%s\"", cases[i].in,
                      rc, why ? why : "NULL", cases[i].why);
    }

    struct fg_addr a;
    const char *why;
    if (CHECK(fg_addr_parse("192.0.2.7:9001", &a, &why) == 0)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;
        CHECK_INT(sin->sin_family, AF_INET);
        CHECK_UINT(ntohs(sin->sin_port), 9001);
        CHECK_UINT(ntohl(sin->sin_addr.s_addr), 0xC0000207u);
        CHECK_UINT(a.len, sizeof *sin);
    }
    if (CHECK(fg_addr_parse("[::1]:443", &a, &why) == 0)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;
        CHECK_INT(sin6->sin6_family, AF_INET6);
        CHECK_UINT(ntohs(sin6->sin6_port), 443);
        CHECK(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
        CHECK_UINT(a.len, sizeof *sin6);
    }
    if (CHECK(fg_addr_parse("localhost:80", &a, &why) == 0))
        CHECK(strcmp(a.text, "127.0.0.1:80") == 0 || strcmp(a.text, "[::1]:80") == 0);

    /* Through the loader, with the text quoted in the message. */
    CHECK_ERROR(LST("{\"address\": \"127.0.0.1:99999\"}"),
                "t.json:1:28: $.listeners[0].address: invalid address \"127.0.0.1:99999\": "
                "the port must be an integer in 1..65535");
    CHECK_ERROR(LST("{\"address\": \"::1:80\"}"),
                "t.json:1:28: $.listeners[0].address: invalid address \"::1:80\": "
                "an IPv6 address must be written in brackets, as [::1]:8080");
    CHECK_ERROR(BE("{\"address\": \"127.0.0.1\"}"),
                "t.json:1:47: $.upstreams.m.backends[0].address: invalid address \"127.0.0.1\": "
                "missing port, expected HOST:PORT");
    CHECK_ERROR(BE("{\"address\": \"a\\\"b:1\"}"),
                "t.json:1:47: $.upstreams.m.backends[0].address: invalid address \"a\\\"b:1\": "
                "invalid host name");

    /* Duplicate listeners, compared after normalisation. */
    CHECK_ERROR(LST("{\"address\": \"127.0.0.1:8080\"}, {\"address\": \"127.0.0.1:8080\"}"),
                "t.json:1:59: $.listeners[1].address: duplicate listener address 127.0.0.1:8080 "
                "(see $.listeners[0])");
    CHECK_ERROR(LST("{\"address\": \"[::1]:8080\"}, {\"address\": \"[0:0::1]:8080\"}"),
                "t.json:1:55: $.listeners[1].address: duplicate listener address [::1]:8080 "
                "(see $.listeners[0])");
    CHECK_ERROR(LST("{\"address\": \"127.0.0.1:1\"}, {\"address\": \"127.0.0.1:2\"}, "
                    "{\"address\": \"127.0.0.1:1\"}"),
                "t.json:1:84: $.listeners[2].address: duplicate listener address 127.0.0.1:1 "
                "(see $.listeners[0])");
    CHECK_ERROR(LST("{\"address\": \"0.0.0.0:8080\"}, {\"address\": \"127.0.0.1:8080\"}"),
                "t.json:1:57: $.listeners[1].address: listener address 127.0.0.1:8080 overlaps "
                "$.listeners[0] (0.0.0.0:8080): a wildcard address takes its port on every address");
    CHECK_ERROR(LST("{\"address\": \"[::]:8080\"}, {\"address\": \"[::1]:8080\"}"),
                "t.json:1:54: $.listeners[1].address: listener address [::1]:8080 overlaps "
                "$.listeners[0] ([::]:8080): a wildcard address takes its port on every address");
}

/* An error deep in a pretty-printed file: lines and indentation count. */
static void test_pretty_positions(void)
{
    char *file = src_path("tests/unit/data/full.json");
    char *text = read_file(file);
    if (!CHECK(text != NULL)) {
        free(file);
        return;
    }
    char *t = replace(text, "\"weight\": 3", "\"weight\": 0");
    CHECK_ERROR(t, "t.json:20:50: $.upstreams.models.backends[0].weight: must be an integer in 1..1000");
    free(t);
    t = replace(text, "\"upstream\": \"embed-v2\"", "\"upstream\": \"embed\"");
    CHECK_ERROR(t, "t.json:35:65: $.routes[0].upstream: upstream \"embed\" is not defined");
    free(t);
    t = replace(text, "\"keepalive\": 0", "\"keep_alive\": 0");
    CHECK_ERROR(t, "t.json:27:7: $.upstreams.models.keep_alive: unknown key \"keep_alive\"");
    free(t);
    t = replace(text, "\"localhost:9003\"", "\"localhost\"");
    CHECK_ERROR(t, "t.json:31:34: $.upstreams[\"embed-v2\"].backends[0].address: "
                   "invalid address \"localhost\": missing port, expected HOST:PORT");
    free(t);
    t = replace(text, "\"backlog\": 1024", "\"backlog\": 1024, \"backlog\": 1");
    CHECK_ERROR(t, "t.json:5:49: $.listeners[1].backlog: duplicate key \"backlog\"");
    free(t);
    t = replace(text, "\"max_headers\": 50,", "\"max_headers\": 50");
    CHECK_ERROR(t, "t.json:13:20: '}' expected near '\"max_body_bytes\"'");
    free(t);
    free(text);
    free(file);
}

/* ---- TLS files and loading from disk -------------------------------------- */

struct tmp {
    char dir[64];
};

static void tmp_make(struct tmp *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/fg-test-config-XXXXXX");
    if (!mkdtemp(t->dir))
        abort();
}

static char *tmp_path(const struct tmp *t, const char *rel)
{
    return xasprintf("%s/%s", t->dir, rel);
}

static void tmp_write(const struct tmp *t, const char *rel, const char *text)
{
    char *p = tmp_path(t, rel);
    write_file(p, text);
    free(p);
}

#define TLS_LISTENER(cert, key)                                                             \
    "{\"listeners\": [{\"address\": \"127.0.0.1:8443\", \"tls\": {\"certificate\": \"" cert    \
    "\", \"key\": \"" key "\"}}],\n" UPSTREAMS ",\n" ROUTES "}\n"

static void test_tls(void)
{
    struct tmp t;
    char *err = NULL, *name, *want, *cert, *key;
    struct fg_config *cfg;

    tmp_make(&t);
    tmp_write(&t, "cert.pem", "not really a certificate\n");
    tmp_write(&t, "key.pem", "not really a key\n");
    char *sub = tmp_path(&t, "sub");
    mkdir(sub, 0700);
    char *dirpem = tmp_path(&t, "dir.pem");
    mkdir(dirpem, 0700);
    tmp_write(&t, "sub/c.pem", "x\n");
    name = tmp_path(&t, "fg.json");
    cert = tmp_path(&t, "cert.pem");
    key = tmp_path(&t, "key.pem");

    /* Relative to the configuration file's directory, made absolute. */
    cfg = parse(TLS_LISTENER("cert.pem", "./key.pem"), name, &err);
    CHECK_STR(err, NULL);
    if (CHECK(cfg && cfg->listeners[0].tls)) {
        CHECK_STR(cfg->listeners[0].tls->certificate, cert);
        CHECK_STR(cfg->listeners[0].tls->key, key);
        CHECK_INT(cfg->listeners[0].backlog, 511);
    }
    fg_config_free(cfg);

    /* Absolute paths are kept; subdirectories work. */
    char *text = xasprintf("{\"listeners\": [{\"address\": \"127.0.0.1:8443\", \"tls\": "
                           "{\"certificate\": \"%s\", \"key\": \"sub/c.pem\"}}],\n" UPSTREAMS
                           ",\n" ROUTES "}\n", cert);
    cfg = parse(text, name, &err);
    free(text);
    CHECK_STR(err, NULL);
    if (CHECK(cfg && cfg->listeners[0].tls)) {
        char *subc = tmp_path(&t, "sub/c.pem");
        CHECK_STR(cfg->listeners[0].tls->certificate, cert);
        CHECK_STR(cfg->listeners[0].tls->key, subc);
        free(subc);
    }
    fg_config_free(cfg);

    /* Missing files, directories, missing keys. */
    want = xasprintf("%s:1:69: $.listeners[0].tls.certificate: cannot read %s/missing.pem: "
                     "No such file or directory", name, t.dir);
    check_error_at(__LINE__, TLS_LISTENER("missing.pem", "key.pem"), name, want);
    free(want);
    want = xasprintf("%s:1:88: $.listeners[0].tls.key: cannot read %s/nokey.pem: "
                     "No such file or directory", name, t.dir);
    check_error_at(__LINE__, TLS_LISTENER("cert.pem", "nokey.pem"), name, want);
    free(want);
    want = xasprintf("%s:1:69: $.listeners[0].tls.certificate: %s/dir.pem is not a regular file",
                     name, t.dir);
    check_error_at(__LINE__, TLS_LISTENER("dir.pem", "key.pem"), name, want);
    free(want);
    want = xasprintf("%s:1:69: $.listeners[0].tls.certificate: cannot read %s/sub/c.pem/x: "
                     "Not a directory", name, t.dir);
    check_error_at(__LINE__, TLS_LISTENER("sub/c.pem/x", "key.pem"), name, want);
    free(want);
    want = xasprintf("%s:1:53: $.listeners[0].tls: missing required key \"key\"", name);
    check_error_at(__LINE__, TLS("{\"certificate\": \"cert.pem\"}"), name, want);
    free(want);
    if (geteuid() != 0) {       /* root reads anything */
        char *locked = tmp_path(&t, "locked.pem");
        write_file(locked, "x\n");
        chmod(locked, 0);
        want = xasprintf("%s:1:69: $.listeners[0].tls.certificate: cannot read %s: "
                         "Permission denied", name, locked);
        check_error_at(__LINE__, TLS_LISTENER("locked.pem", "key.pem"), name, want);
        free(want);
        unlink(locked);
        free(locked);
    }

    /* A relative configuration path is taken from the working directory. */
    char *cwd = getcwd(NULL, 0);
    if (CHECK(cwd && chdir(t.dir) == 0)) {
        char *real = getcwd(NULL, 0);
        static const char *const names[] = {"fg.json", "./fg.json", "sub/../fg.json"};
        for (size_t i = 0; i < 3; i++) {
            cfg = parse(TLS_LISTENER("cert.pem", "key.pem"), names[i], &err);
            CHECK_MSG(cfg != NULL, "%s: %s", names[i], err ? err : "NULL");
            if (cfg) {
                char *want_cert = xasprintf("%s/%scert.pem", real, i == 2 ? "sub/../" : "");
                CHECK_STR(cfg->listeners[0].tls->certificate, want_cert);
                free(want_cert);
            }
            fg_config_free(cfg);
            free(err);
            err = NULL;
        }
        cfg = parse(TLS_LISTENER("c.pem", "c.pem"), "sub/fg.json", &err);
        if (CHECK(cfg != NULL)) {
            char *want_key = xasprintf("%s/sub/c.pem", real);
            CHECK_STR(cfg->listeners[0].tls->key, want_key);
            free(want_key);
        }
        fg_config_free(cfg);
        free(err);
        err = NULL;
        free(real);
        CHECK(chdir(cwd) == 0);
    }
    free(cwd);

    /* fg_config_load(): the file's own name in messages and cfg->path. */
    char *file = tmp_path(&t, "fg.json");
    write_file(file, TLS_LISTENER("cert.pem", "key.pem"));
    cfg = fg_config_load(file, &err);
    if (CHECK(cfg != NULL)) {
        CHECK_STR(cfg->path, file);
        CHECK_STR(cfg->listeners[0].tls->certificate, cert);
    }
    fg_config_free(cfg);
    write_file(file, ROOT("\"workers\": \"two\""));
    cfg = fg_config_load(file, &err);
    want = xasprintf("%s:1:13: $.workers: must be \"auto\" or an integer in 1..256", file);
    CHECK(cfg == NULL);
    CHECK_STR(err, want);
    free(want);
    free(err);
    write_file(file, "{\n  \"workers\": 2\n  \"listeners\": []\n}\n");
    cfg = fg_config_load(file, &err);
    want = xasprintf("%s:3:13: '}' expected near '\"listeners\"'", file);
    CHECK(cfg == NULL);
    CHECK_STR(err, want);
    free(want);
    free(err);
    unlink(file);
    cfg = fg_config_load(file, &err);
    want = xasprintf("%s: cannot open: No such file or directory", file);
    CHECK(cfg == NULL);
    CHECK_STR(err, want);
    free(want);
    free(err);
    cfg = fg_config_load(t.dir, &err);
    CHECK(cfg == NULL && err != NULL);
    free(err);

    char *p;
    static const char *const files[] = {"cert.pem", "key.pem", "sub/c.pem", "sub", "dir.pem"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        p = tmp_path(&t, files[i]);
        if (unlink(p) < 0)
            rmdir(p);
        free(p);
    }
    CHECK(rmdir(t.dir) == 0);
    free(file);
    free(sub);
    free(dirpem);
    free(name);
    free(cert);
    free(key);
}

/* The sample configuration the quick start uses must keep loading. */
static void test_example(void)
{
    char *file = src_path("etc/fleetgate.json");
    char *err = NULL;
    struct fg_config *cfg = fg_config_load(file, &err);
    CHECK_STR(err, NULL);
    if (CHECK(cfg != NULL)) {
        CHECK_UINT(cfg->workers, cpus());
        if (CHECK_UINT(cfg->nlisteners, 2)) {
            CHECK_STR(cfg->listeners[0].addr.text, "127.0.0.1:8080");
            CHECK_STR(cfg->listeners[1].addr.text, "[::1]:8080");
        }
        /* one upstream per version; the model's traffic split 90/10, sticky
         * on x-user */
        struct fg_upstream *v1 = fg_config_upstream(cfg, "digits-v1");
        struct fg_upstream *v2 = fg_config_upstream(cfg, "digits-v2");
        CHECK(v1 != NULL && v1->nbackends == 1 && !strcmp(v1->backends[0].addr.text, "127.0.0.1:9001"));
        CHECK(v2 != NULL && v2->nbackends == 1 && !strcmp(v2->backends[0].addr.text, "127.0.0.1:9002"));
        /* checked, bounded, and visible at the admin listener */
        CHECK_INT(cfg->admin_enabled, 1);
        CHECK_STR(cfg->admin.addr.text, "127.0.0.1:9901");
        if (v1 && v2) {
            CHECK_INT(v1->health.enabled && v2->health.enabled, 1);
            CHECK_UINT(v1->backends[0].max_requests, 512);
        }
        if (CHECK_UINT(cfg->nroutes, 4)) {
            const struct fg_split *sp = cfg->routes[2].split;
            CHECK_STR(cfg->routes[0].path_prefix, "/v2/models/digits/versions/1/");
            CHECK(cfg->routes[0].upstream == v1);
            CHECK(cfg->routes[1].upstream == v2);
            CHECK_STR(cfg->routes[2].model, "digits");
            if (CHECK(sp != NULL) && CHECK_UINT(sp->narms, 2)) {
                CHECK_STR(sp->sticky_name, "x-user");
                CHECK(sp->arms[0].upstream == v1 && sp->arms[0].weight == 90);
                CHECK(sp->arms[1].upstream == v2 && sp->arms[1].weight == 10);
            }
            CHECK(cfg->routes[3].upstream == v1);
        }
    }
    fg_config_free(cfg);
    free(file);
}

/* ---- threads ------------------------------------------------------------- */

struct job {
    const char *text;
    int ok;                     /* loads that gave the expected result */
};

static void *load_many(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < 40; i++) {
        char *err = NULL;
        struct fg_config *cfg = parse(j->text, "t.json", &err);
        if (cfg && cfg->nupstreams == 2 && cfg->routes[1].upstream == &cfg->upstreams[0])
            j->ok++;
        fg_config_free(cfg);
        char *bad = NULL;
        cfg = parse(BE("{\"address\": \"127.0.0.1:9001\", \"weight\": 0}"), "t.json", &bad);
        if (!cfg && bad && strstr(bad, "t.json:1:75: $.upstreams.m.backends[0].weight"))
            j->ok++;
        fg_config_free(cfg);
        free(bad);
        free(err);
    }
    return NULL;
}

static void test_threads(void)
{
    char *file = src_path("tests/unit/data/full.json");
    char *text = read_file(file);
    pthread_t th[4];
    struct job jobs[4];
    if (!CHECK(text != NULL)) {
        free(file);
        return;
    }
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){.text = text};
        CHECK(pthread_create(&th[i], NULL, load_many, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(jobs[i].ok, 80);
    }
    free(text);
    free(file);
}


/* ---- access and geography ------------------------------------------------- */

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
/* "access" with the keys <k> (array contents) at column 23. */
#define KEYS(k) ROOT("\"access\": {\"keys\": [" k "]}")
#define KEY_A "{\"name\": \"a\", \"sha256\": \"" SHA_A "\"}"
/* A route named "r" with <x> in it, at column 38. */
#define NAMED_RT(x) RT("{\"name\": \"r\", \"match\": {}, " x "\"upstream\": \"m\"}")

static void test_access(void)
{
    char *err = NULL;
    struct fg_config *cfg;

    cfg = parse("{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}],\n" UPSTREAMS ",\n"
                "\"routes\": [{\"name\": \"infer\", \"match\": {}, \"upstream\": \"m\","
                " \"limits\": {\"concurrency\": 3}, \"upstream_headers\": {\"Authorization\": \"Bearer b\"}},"
                " {\"name\": \"health\", \"auth\": \"open\", \"match\": {}, \"upstream\": \"m\"}],\n"
                "\"access\": {\"keys\": [{\"name\": \"team-a\", \"sha256\": \"" SHA_A "\","
                " \"routes\": [\"infer\"], \"models\": [\"digits\"], \"expires\": \"2030-01-02T03:04:05Z\","
                " \"limits\": {\"rps\": 10, \"tokens_per_minute\": 600}},"
                " {\"name\": \"b\", \"sha256\": \"" SHA_B "\", \"expires\": 1700000000}],"
                " \"limits\": {\"rps\": 100, \"burst\": 500}}}\n", "t.json", &err);
    CHECK_STR(err, NULL);
    if (CHECK(cfg && cfg->access && cfg->access->nkeys == 2)) {
        const struct fg_api_key *k = &cfg->access->keys[0];
        CHECK_STR(k->name, "team-a");
        CHECK_UINT(k->sha256[0], 0x01);
        CHECK_UINT(k->sha256[31], 0xef);
        CHECK_INT(k->expires, 1893553445);
        CHECK_UINT(k->nroutes, 1);
        CHECK_STR(k->routes[0], "infer");
        CHECK_STR(k->models[0], "digits");
        CHECK_UINT(k->limits.rps, 10);
        CHECK_UINT(k->limits.rps_rate.burst, 10);           /* burst defaults to rps */
        CHECK_UINT(k->limits.tpm_rate.burst, 600);          /* a minute's worth */
        CHECK_INT(cfg->access->keys[1].expires, 1700000000);
        CHECK_UINT(cfg->access->limits.rps_rate.burst, 500);
        CHECK_UINT(cfg->access->key_file_check_ms, 1000);
        CHECK_STR(cfg->routes[0].name, "infer");
        CHECK_INT(cfg->routes[0].auth, FG_ROUTE_AUTH_DEFAULT);
        CHECK_INT(cfg->routes[1].auth, FG_ROUTE_AUTH_OPEN);
        CHECK(cfg->routes[0].limits && cfg->routes[0].limits->concurrency == 3);
        CHECK_STR(cfg->routes[0].set_headers[0].name, "authorization");
    }
    fg_config_free(cfg);
    free(err);
    err = NULL;

    CHECK_ERROR(ROOT("\"access\": {}"),
                "t.json:1:12: $.access: needs \"keys\" or \"key_file\" (or leave \"access\" out: "
                "every route open)");
    CHECK_ERROR(ROOT("\"access\": {\"keyz\": []}"),
                "t.json:1:13: $.access.keyz: unknown key \"keyz\"");
    CHECK_ERROR(KEYS("{\"name\": \"a\"}"),
                "t.json:1:22: $.access.keys[0]: missing required key \"sha256\"");
    CHECK_ERROR(KEYS("{\"name\": \"a\", \"sha256\": \"abc\"}"),
                "t.json:1:46: $.access.keys[0].sha256: must be 64 hex digits: the SHA-256 of the key "
                "(never the key itself)");
    CHECK_ERROR(KEYS("{\"name\": \"a b\", \"sha256\": \"" SHA_A "\"}"),
                "t.json:1:31: $.access.keys[0].name: must be 1 to 64 of A-Z a-z 0-9 - _ .");
    CHECK_ERROR(KEYS(KEY_A ", {\"name\": \"a\", \"sha256\": \"" SHA_B "\"}"),
                "t.json:1:124: $.access.keys[1].name: key name \"a\" is also [0]'s");
    CHECK_ERROR(KEYS(KEY_A ", {\"name\": \"b\", \"sha256\": \"" SHA_A "\"}"),
                "t.json:1:139: $.access.keys[1].sha256: the same sha256 as [0] (\"a\")");
    CHECK_ERROR(KEYS("{\"name\": \"a\", \"sha256\": \"" SHA_A "\", \"expires\": \"2030-01-02\"}"),
                "t.json:1:125: $.access.keys[0].expires: must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\" "
                "or Unix seconds");
    CHECK_ERROR(KEYS("{\"name\": \"a\", \"sha256\": \"" SHA_A "\", \"routes\": [\"nope\"]}"),
                "t.json:1:125: $.access.keys[0].routes[0]: no route is named \"nope\"");
    CHECK_ERROR(KEYS("{\"name\": \"a\", \"sha256\": \"" SHA_A "\", \"models\": [\"a/b\"]}"),
                "t.json:1:125: $.access.keys[0].models[0]: must be model names (no '/', '?', '\\', "
                "'\"' or spaces)");
    CHECK_ERROR(NAMED_RT("\"auth\": \"key\", "),
                "t.json:1:48: $.routes[0].auth: \"key\" needs $.access (the keys)");
    CHECK_ERROR(NAMED_RT("\"rules\": [{\"key\": [\"a\"], \"upstream\": \"m\"}], "),
                "t.json:1:58: $.routes[0].rules[0].key: needs $.access (the keys it names)");
    CHECK_ERROR(KEYS("{\"name\": \"a\", \"sha256\": \"" SHA_A "\", \"limits\": {\"burst\": 5}}"),
                "t.json:1:134: $.access.keys[0].limits.burst: needs \"rps\"");
    CHECK_ERROR(KEYS("{\"name\": \"a\", \"sha256\": \"" SHA_A "\", \"limits\": {\"rps\": -1}}"),
                "t.json:1:132: $.access.keys[0].limits.rps: must be an integer in 0..1000000000");
    CHECK_ERROR(KEYS("{\"name\": \"a\", \"sha256\": \"" SHA_A "\", \"secret\": \"x\"}"),
                "t.json:1:114: $.access.keys[0].secret: unknown key \"secret\"");
    CHECK_ERROR(NAMED_RT("\"auth\": \"none\", "),
                "t.json:1:48: $.routes[0].auth: expected \"key\" or \"open\"");
    CHECK_ERROR(RT("{\"name\": \"r\", \"match\": {}, \"upstream\": \"m\"}, "
                   "{\"name\": \"r\", \"match\": {}, \"upstream\": \"m\"}"),
                "t.json:1:67: $.routes[1].name: route name \"r\" is also $.routes[0]'s");
    CHECK_ERROR(NAMED_RT("\"upstream_headers\": {\"host\": \"x\"}, "),
                "t.json:1:61: $.routes[0].upstream_headers.host: is set by the gateway itself");
    CHECK_ERROR(NAMED_RT("\"rules\": [{\"country\": [\"NZ\"], \"upstream\": \"m\"}], "),
                "t.json:1:51: $.routes[0].rules[0].country: needs \"geoip\" (a database to find "
                "countries in)");
    CHECK_ERROR(NAMED_RT("\"rules\": [{\"key\": [\"a b\"], \"upstream\": \"m\"}], "),
                "t.json:1:59: $.routes[0].rules[0].key[0]: must be API key names");
    CHECK_ERROR(CL("\"trusted_proxies\": [\"10.0.0.1/8\"]"),
                "t.json:1:33: $.client.trusted_proxies[0]: must be an address or CIDR block "
                "(\"10.0.0.0/8\", \"::1\"), host bits 0");
    CHECK_ERROR(LST("{\"address\": \"127.0.0.1:8080\", \"proxy_protocol\": true}"),
                "t.json:1:64: $.listeners[0].proxy_protocol: needs $.client.trusted_proxies: the "
                "peers whose PROXY header is believed");
    CHECK_ERROR(ROOT("\"geoip\": {\"database\": \"/nonexistent.mmdb\"}"),
                "t.json:1:24: $.geoip.database: cannot read /nonexistent.mmdb: No such file or directory");
    CHECK_ERROR(ROOT("\"log\": {\"level\": \"verbose\"}"),
                "t.json:1:19: $.log.level: expected \"debug\", \"info\", \"warn\" or \"error\"");
    CHECK_ERROR(ROOT("\"log\": {\"access\": 1}"),
                "t.json:1:20: $.log.access: must be \"stderr\" or a file name");
    CHECK_ERROR(ROOT("\"log\": {\"file\": \"x\"}"),
                "t.json:1:10: $.log.file: unknown key \"file\"");
    CHECK_ERROR(ROOT("\"admin\": {\"token_sha256\": \"secret\"}"),
                "t.json:1:28: $.admin.token_sha256: must be 64 hex digits: the SHA-256 of the token");
    CHECK_ERROR(ROOT("\"drain_timeout_ms\": -1"),
                "t.json:1:22: $.drain_timeout_ms: must be an integer in 0..86400000");
    CHECK_ERROR(ROOT("\"geoip\": {}"),
                "t.json:1:11: $.geoip: missing required key \"database\"");
}

/* The key file: the same keys, its own positions in messages. */
static void test_key_file(void)
{
    struct tmp t;
    char *err = NULL, *path;
    struct fg_config *cfg = parse(ROOT("\"access\": {\"keys\": [" KEY_A "]}"), "t.json", &err);
    struct fg_api_key *keys = NULL;
    unsigned n = 0;
    int rc;

    if (!CHECK(cfg != NULL))
        return;
    tmp_make(&t);
    tmp_write(&t, "keys.json", "{\"keys\": [{\"name\": \"f\", \"sha256\": \"" SHA_B "\"}]}\n");
    path = tmp_path(&t, "keys.json");
    rc = fg_key_file_load(cfg, path, &keys, &n, &err);
    CHECK_INT(rc, 0);
    CHECK_STR(err, NULL);
    if (CHECK_UINT(n, 1))
        CHECK_STR(keys[0].name, "f");
    fg_api_keys_free(keys, n);

    tmp_write(&t, "keys.json", "{\"keys\": [\n  {\"name\": \"f\", \"sha256\": \"xyz\"}]}\n");
    rc = fg_key_file_load(cfg, path, &keys, &n, &err);
    CHECK_INT(rc, -1);
    char *want = xasprintf("%s:2:27: $.keys[0].sha256: must be 64 hex digits: the SHA-256 of the "
                           "key (never the key itself)", path);
    CHECK_STR(err, want);
    free(want);
    free(err);
    err = NULL;
    tmp_write(&t, "keys.json", "{\"keys\": [}\n");
    rc = fg_key_file_load(cfg, path, &keys, &n, &err);
    CHECK_INT(rc, -1);
    CHECK(err && strstr(err, path) == err);
    free(err);
    err = NULL;
    tmp_write(&t, "keys.json", "[]\n");
    rc = fg_key_file_load(cfg, path, &keys, &n, &err);
    CHECK_INT(rc, -1);
    want = xasprintf("%s:1:1: $: must be an object: {\"keys\": [...]}", path);
    CHECK_STR(err, want);
    free(want);
    free(err);
    unlink(path);
    rmdir(t.dir);
    free(path);
    fg_config_free(cfg);
}

int main(void)
{
    UNIT_RUN(test_json_pos);
    UNIT_RUN(test_json_path_format);
    UNIT_RUN(test_json_key_before);
    UNIT_RUN(test_json_pos_robust);
    UNIT_RUN(test_full);
    UNIT_RUN(test_defaults);
    UNIT_RUN(test_workers);
    UNIT_RUN(test_ranges_accepted);
    UNIT_RUN(test_syntax_errors);
    UNIT_RUN(test_duplicate_keys);
    UNIT_RUN(test_unknown_keys);
    UNIT_RUN(test_missing_keys);
    UNIT_RUN(test_routing_keys);
    UNIT_RUN(test_health_defaults);
    UNIT_RUN(test_retry_queue_admin);
    UNIT_RUN(test_workers_errors);
    UNIT_RUN(test_type_errors);
    UNIT_RUN(test_int_ranges);
    UNIT_RUN(test_addresses);
    UNIT_RUN(test_pretty_positions);
    UNIT_RUN(test_tls);
    UNIT_RUN(test_access);
    UNIT_RUN(test_key_file);
    UNIT_RUN(test_example);
    UNIT_RUN(test_threads);
    return unit_summary();
}
