/* Route matching and split arms (fg/route.h). */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include "fg/access.h"
#include "fg/client_geo.h"
#include "fg/exchange-t.h"
#include "fg/keygen.h"
#include "fg/request_id.h"
#include "fg/route.h"

static int lower_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* Host or :authority without the port, against a lower-case name or a
 * "*.suffix" that matches any subdomain (not the bare suffix). */
static int host_matches(const struct fg_route *r, const struct fg_exchange *x)
{
    const char *h = x->authority;
    size_t len = x->authority_len;

    if (!h)
        return 0;
    if (len && h[0] != '[') {
        const char *colon = memchr(h, ':', len);
        if (colon)
            len = (size_t)(colon - h);
    }
    if (len && h[len - 1] == '.')
        len--;                              /* "example.com." is "example.com" */
    if (r->host[0] == '*') {
        size_t sl = r->host_len - 1;        /* ".example.com" */
        return len > sl && lower_eq(h + len - sl, r->host + 1, sl);
    }
    return len == r->host_len && lower_eq(h, r->host, len);
}

static int method_matches(const struct fg_route *r, const struct fg_exchange *x)
{
    for (unsigned i = 0; i < r->nmethods; i++)
        if (strlen(r->methods[i]) == x->method_len &&
            !memcmp(r->methods[i], x->method, x->method_len))
            return 1;
    return 0;
}

static int headers_match(const struct fg_match_kv *list, unsigned n, const struct fg_exchange *x)
{
    for (unsigned i = 0; i < n; i++) {
        const struct fg_match_kv *kv = &list[i];
        int found = 0;
        for (unsigned j = 0; j < x->req_headers.n && !found; j++) {
            const struct fg_header *h = &x->req_headers.v[j];
            found = h->nlen == kv->name_len && !memcmp(h->name, kv->name, kv->name_len) &&
                    h->vlen == kv->value_len && !memcmp(h->value, kv->value, kv->value_len);
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* Compares the percent-decoded (and '+' as space) <enc> with <want>. */
static int decoded_eq(const char *enc, size_t len, const char *want, size_t wlen)
{
    size_t i = 0, k = 0;

    while (i < len) {
        char ch = enc[i];
        if (ch == '%' && i + 2 < len && fg_hex_digit(enc[i + 1]) >= 0 && fg_hex_digit(enc[i + 2]) >= 0) {
            ch = (char)(fg_hex_digit(enc[i + 1]) * 16 + fg_hex_digit(enc[i + 2]));
            i += 3;
        } else {
            if (ch == '+')
                ch = ' ';
            i++;
        }
        if (k >= wlen || want[k] != ch)
            return 0;
        k++;
    }
    return k == wlen;
}

static int query_matches(const struct fg_match_kv *list, unsigned n, const char *q, size_t qlen)
{
    for (unsigned i = 0; i < n; i++) {
        const struct fg_match_kv *kv = &list[i];
        const char *p = q, *end = q + qlen;
        int found = 0;
        while (p < end && !found) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *pe = amp ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            const char *ne = eq ? eq : pe;
            found = decoded_eq(p, (size_t)(ne - p), kv->name, kv->name_len) &&
                    decoded_eq(eq ? eq + 1 : pe, eq ? (size_t)(pe - eq - 1) : 0, kv->value,
                               kv->value_len);
            p = pe + 1;
        }
        if (!found)
            return 0;
    }
    return 1;
}

int fg_route_path_has_model(const char *path, size_t len)
{
    return len > 11 && !memcmp(path, "/v2/models/", 11);
}

const char *fg_request_model(const struct fg_exchange *x, size_t *len)
{
    const char *q = memchr(x->path, '?', x->path_len);
    size_t plen = q ? (size_t)(q - x->path) : x->path_len, n = 0;

    if (fg_route_path_has_model(x->path, plen)) {
        while (11 + n < plen && x->path[11 + n] != '/')
            n++;
        *len = n;
        return n ? x->path + 11 : NULL;
    }
    if (x->body_model_known && x->body_model) {
        *len = x->body_model_len;
        return x->body_model;
    }
    return NULL;
}

/* The model is NAME in /v2/models/NAME or /v2/models/NAME/... (KServe v2);
 * on other paths, the "model" of the JSON body. 1: matches, 0: does not,
 * 2: the body must be read first. */
static int model_matches(const struct fg_route *r, const struct fg_exchange *x, size_t len)
{
    static const char pre[] = "/v2/models/";
    const size_t pl = sizeof(pre) - 1;
    const char *path = x->path;

    if (fg_route_path_has_model(path, len)) {
        if (len < pl + r->model_len || memcmp(path + pl, r->model, r->model_len))
            return 0;
        return len == pl + r->model_len || path[pl + r->model_len] == '/';
    }
    if (x->body_model_known)
        return x->body_model_len == r->model_len &&
               !memcmp(x->body_model, r->model, r->model_len);
    return x->req_has_body ? 2 : 0;
}

/* 1: every condition holds; 0: one does not; 2: all hold that can be
 * checked without the body, and the model needs it. */
static int route_matches(const struct fg_route *r, const struct fg_exchange *x, size_t plen,
                         const char *q, size_t qlen)
{
    int model = 1;

    if (r->path && (plen != r->path_len || memcmp(x->path, r->path, plen)))
        return 0;
    if (r->path_prefix &&
        (r->path_prefix_len > plen || memcmp(r->path_prefix, x->path, r->path_prefix_len)))
        return 0;
    if (r->model && !(model = model_matches(r, x, plen)))
        return 0;
    if (r->host && !host_matches(r, x))
        return 0;
    if (r->nmethods && !method_matches(r, x))
        return 0;
    if (r->nheaders && !headers_match(r->headers, r->nheaders, x))
        return 0;
    if (r->nquery && !query_matches(r->query, r->nquery, q, qlen))
        return 0;
    return model;
}

const struct fg_route *fg_route_match(const struct fg_config *cfg, const struct fg_exchange *x,
                                      int *need_body)
{
    const char *q = memchr(x->path, '?', x->path_len);
    size_t plen = q ? (size_t)(q - x->path) : x->path_len;
    size_t qlen = q ? x->path_len - plen - 1 : 0;

    if (need_body)
        *need_body = 0;
    for (unsigned i = 0; i < cfg->nroutes; i++) {
        int m = route_matches(&cfg->routes[i], x, plen, q ? q + 1 : "", qlen);
        if (m == 1)
            return &cfg->routes[i];
        if (m == 2) {
            /* this route, or a later one, depends on the body's model */
            if (need_body)
                *need_body = 1;
            return NULL;
        }
    }
    return NULL;
}

/* ---- splits ----------------------------------------------------------------- */

/* FNV-1a, then the murmur3 finaliser so that near identities spread over
 * the whole range. No per-process seed: every gateway with the same arms
 * sends an identity to the same arm. */
uint64_t fg_split_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

/* The hash is a point in [0, 1) (h / 2^64) scaled onto the cumulative
 * weights, arms in configuration order. Changing weights moves only the
 * points between the old and new boundaries: 90/10 -> 80/20 moves the
 * identities in [0.8, 0.9), all from the first arm to the second. */
unsigned fg_split_arm_of(const struct fg_split *sp, uint64_t hash)
{
    uint64_t point = (uint64_t)(((unsigned __int128)hash * sp->total) >> 64);
    uint64_t acc = 0;

    for (unsigned i = 0; i < sp->narms; i++) {
        acc += sp->arms[i].weight;
        if (point < acc)
            return i;
    }
    return sp->narms - 1;       /* not reached: point < total */
}

/* The value of cookie <name> in the request's Cookie header(s). */
static const char *cookie_value(const struct fg_exchange *x, const char *name, size_t nlen,
                                size_t *vlen)
{
    for (unsigned j = 0; j < x->req_headers.n; j++) {
        const struct fg_header *h = &x->req_headers.v[j];
        const char *p, *end;
        if (h->nlen != 6 || memcmp(h->name, "cookie", 6))
            continue;
        for (p = h->value, end = h->value + h->vlen; p < end;) {
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *pe = semi ? semi : end;
            const char *eq;
            while (p < pe && (*p == ' ' || *p == '\t'))
                p++;
            eq = memchr(p, '=', (size_t)(pe - p));
            if (eq && (size_t)(eq - p) == nlen && !memcmp(p, name, nlen)) {
                const char *v = eq + 1, *ve = pe;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') {
                    v++;
                    ve--;
                }
                *vlen = (size_t)(ve - v);
                return v;
            }
            p = pe + 1;
        }
    }
    return NULL;
}

static int cookies_match(const struct fg_match_kv *list, unsigned n, const struct fg_exchange *x)
{
    for (unsigned i = 0; i < n; i++) {
        size_t vlen;
        const char *v = cookie_value(x, list[i].name, list[i].name_len, &vlen);
        if (!v || vlen != list[i].value_len || memcmp(v, list[i].value, vlen))
            return 0;
    }
    return 1;
}

static int code_in(char (*codes)[3], unsigned n, const char *code)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(codes[i], code) == 0)
            return 1;
    return 0;
}

/* The geography and key conditions of a rule. The exchange caches what it
 * finds out about its client, hence the cast. */
static int access_holds(const struct fg_rule *u, const struct fg_exchange *cx)
{
    struct fg_exchange *x = (struct fg_exchange *)cx;

    if (u->nnets && !fg_ip_in(fg_exchange_client_ip(x), u->nets, u->nnets))
        return 0;
    if (u->ncountries || u->ncontinents || u->nasns) {
        const struct fg_geo *g = fg_exchange_geo(x);
        int asn_ok = !u->nasns;
        if (u->ncountries && !code_in(u->countries, u->ncountries, g->country))
            return 0;
        if (u->ncontinents && !code_in(u->continents, u->ncontinents, g->continent))
            return 0;
        for (unsigned i = 0; i < u->nasns && !asn_ok; i++)
            asn_ok = g->asn == u->asns[i];
        if (!asn_ok)
            return 0;
    }
    if (u->nkeys) {
        unsigned i = 0;
        if (!x->api_key || x->auth_result != FG_AUTH_OK)
            return 0;
        while (i < u->nkeys && strcmp(u->keys[i], x->api_key->name) != 0)
            i++;
        if (i == u->nkeys)
            return 0;
    }
    return 1;
}

static int rule_holds(const struct fg_rule *u, const struct fg_exchange *x)
{
    const char *q = memchr(x->path, '?', x->path_len);
    size_t qlen = q ? x->path_len - (size_t)(q - x->path) - 1 : 0;

    return (!u->nheaders || headers_match(u->headers, u->nheaders, x)) &&
           (!u->ncookies || cookies_match(u->cookies, u->ncookies, x)) &&
           (!u->nquery || query_matches(u->query, u->nquery, q ? q + 1 : "", qlen)) &&
           access_holds(u, x);
}

static const char *identity(const struct fg_split *sp, const struct fg_exchange *x, size_t *len)
{
    if (sp->sticky == FG_STICKY_HEADER) {
        for (unsigned j = 0; j < x->req_headers.n; j++) {
            const struct fg_header *h = &x->req_headers.v[j];
            if (h->nlen == sp->sticky_name_len && !memcmp(h->name, sp->sticky_name, h->nlen) &&
                h->vlen) {
                *len = h->vlen;
                return h->value;
            }
        }
        return NULL;
    }
    if (sp->sticky == FG_STICKY_COOKIE) {
        const char *v = cookie_value(x, sp->sticky_name, sp->sticky_name_len, len);
        return v && *len ? v : NULL;
    }
    return NULL;
}

struct fg_upstream *fg_route_upstream(const struct fg_route *r, const struct fg_exchange *x,
                                      struct fg_rng *rng)
{
    const struct fg_split *sp = r->split;
    const char *id;
    size_t len = 0;
    uint64_t h;

    for (unsigned i = 0; i < r->nrules; i++)
        if (rule_holds(&r->rules[i], x))
            return r->rules[i].upstream;
    if (!sp)
        return r->upstream;
    id = identity(sp, x, &len);
    h = id ? fg_split_hash(id, len) : fg_rng_next(rng);
    const struct fg_split_weights *rt = atomic_load_explicit(&((struct fg_split *)sp)->st->split_rt,
                                                             memory_order_acquire);
    if (rt && rt->narms != sp->narms)
        rt = NULL;                      /* set for another split of this route */
    if (rt) {                           /* weights from the admin API */
        uint64_t point = (uint64_t)(((unsigned __int128)h * rt->total) >> 64), acc = 0;
        for (unsigned i = 0; i < sp->narms; i++)
            if (point < (acc += rt->weight[i]))
                return sp->arms[i].upstream;
        return sp->arms[sp->narms - 1].upstream;
    }
    return sp->arms[fg_split_arm_of(sp, h)].upstream;
}
