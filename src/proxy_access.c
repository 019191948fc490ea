/* The proxy's side of access control and geography (fg/proxy_access.h):
 * the answers 401, 403 and 429, the rate headers, and the request headers
 * the gateway writes for the backend instead of the client's. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fg/access.h"
#include "fg/client_geo.h"
#include "fg/exchange.h"
#include "fg/headers.h"
#include "fg/proxy_access.h"
#include "fg/route.h"
#include "fg/worker.h"

static int route_keyed(const struct fg_config *cfg, const struct fg_route *r)
{
    return cfg->access && r->auth != FG_ROUTE_AUTH_OPEN;
}

static int name_is(const char *want, const char *name, size_t nlen)
{
    return want && strlen(want) == nlen && memcmp(want, name, nlen) == 0;
}

int fg_proxy_access_dropped(const struct fg_exchange *x, const char *name, size_t nlen)
{
    const struct fg_config *cfg = x->gen->cfg;
    const struct fg_geoip_cfg *g = cfg->geoip;
    const struct fg_route *r = x->route;

    if (cfg->access && (name_is("authorization", name, nlen) || name_is("x-api-key", name, nlen)))
        return 1;
    /* a client may not say what the gateway says for it */
    if (g && (name_is(g->country_header, name, nlen) || name_is(g->continent_header, name, nlen) ||
              name_is(g->asn_header, name, nlen)))
        return 1;
    for (unsigned j = 0; r && j < r->nset_headers; j++)
        if (name_is(r->set_headers[j].name, name, nlen))
            return 1;
    return 0;
}

void fg_proxy_access_start(struct fg_exchange *x)
{
    const struct fg_config *cfg = x->gen->cfg;
    const struct fg_geoip_cfg *g = cfg->geoip;
    struct fg_headers *h = &x->req_headers;

    if (cfg->access)
        x->auth_result = fg_access_authenticate(x);
    if (g && (g->country_header || g->continent_header || g->asn_header))
        for (unsigned i = 0; i < h->n; i++)
            if (fg_proxy_access_dropped(x, h->v[i].name, h->v[i].nlen))
                h->v[i].flags |= FG_HDR_DROP;
}

int fg_proxy_access_needs_body(const struct fg_exchange *x, const struct fg_route *r)
{
    const struct fg_api_key *k = x->api_key;
    size_t len;

    return route_keyed(x->gen->cfg, r) && k && x->auth_result == FG_AUTH_OK && k->nmodels &&
           x->req_has_body && !x->body_model_known && !fg_request_model(x, &len);
}

static void reply_401(struct fg_exchange *x, const char *code, const char *message,
                      const char *challenge)
{
    const char *hdrs[] = {"www-authenticate", challenge, NULL};

    fg_exchange_reply_error_hdrs(x, 401, code, message, hdrs);
}

static void reply_429(struct fg_exchange *x, const struct fg_limit_refusal *why)
{
    char limit[24], remaining[24], reset[24], retry[24], msg[160];
    const char *hdrs[] = {"retry-after", retry, "x-ratelimit-limit", limit,
                          "x-ratelimit-remaining", remaining, "x-ratelimit-reset", reset, NULL};

    snprintf(limit, sizeof(limit), "%" PRIu64, why->limit);
    snprintf(remaining, sizeof(remaining), "%" PRIu64, why->remaining);
    snprintf(reset, sizeof(reset), "%" PRIu64, why->reset_s);
    snprintf(retry, sizeof(retry), "%" PRIu64, why->retry_after_s ? why->retry_after_s : 1);
    snprintf(msg, sizeof(msg), "over the %s limit of %s", why->scope, why->what);
    fg_exchange_reply_error_hdrs(x, 429, "rate_limited", msg, hdrs);
}

int fg_proxy_access_check(struct fg_exchange *x, const struct fg_route *r)
{
    const struct fg_api_key *k = x->api_key;
    struct fg_limit_refusal why;
    const char *model;
    size_t len;

    if (!route_keyed(x->gen->cfg, r)) {
        /* an open route: the key, if any, plays no part; only the route's
         * own limits apply */
        fg_access_release(x);
        x->auth_result = FG_AUTH_NONE;
        if (r->limits && fg_access_admit(x, &why) < 0) {
            reply_429(x, &why);
            return -1;
        }
        return 0;
    }
    switch (x->auth_result) {
    case FG_AUTH_NONE:
        reply_401(x, "missing_key",
                  "an API key is required: Authorization: Bearer KEY, or x-api-key: KEY",
                  "Bearer realm=\"fleetgate\"");
        return -1;
    case FG_AUTH_UNKNOWN:
        reply_401(x, "invalid_key", "the API key is not valid",
                  "Bearer realm=\"fleetgate\", error=\"invalid_token\"");
        return -1;
    case FG_AUTH_EXPIRED:
        reply_401(x, "key_expired", "the API key has expired",
                  "Bearer realm=\"fleetgate\", error=\"invalid_token\"");
        return -1;
    default:
        break;
    }
    if (!fg_access_key_allows_route(k, r)) {
        fg_exchange_reply_error(x, 403, "route_not_allowed", "this API key may not use this route");
        return -1;
    }
    if (k->nmodels) {
        if (x->body_model_ambiguous) {
            fg_exchange_reply_error(x, 400, "ambiguous_model",
                                    "the body names its model more than once, or in an escaped key");
            return -1;
        }
        model = fg_request_model(x, &len);
        if (model && r->rewrite_model) {    /* what the backend will be asked for */
            model = r->rewrite_model;
            len = r->rewrite_model_len;
        }
        if (model ? !fg_access_key_allows_model(k, model, len)
                  : !(x->req_head_only || (x->method_len == 3 && !memcmp(x->method, "GET", 3)))) {
            fg_exchange_reply_error(x, 403, "model_not_allowed",
                                    model ? "this API key may not use this model"
                                          : "this API key may use named models only, and the "
                                            "request names none");
            return -1;
        }
    }
    if (fg_access_admit(x, &why) < 0) {
        reply_429(x, &why);
        return -1;
    }
    return 0;
}

/* ---- headers for the backend ------------------------------------------------ */

static size_t add_line(char *p, const char *name, const char *value, size_t vlen)
{
    size_t n = strlen(name);

    if (p) {
        memcpy(p, name, n);
        memcpy(p + n, ": ", 2);
        memcpy(p + n + 2, value, vlen);
        memcpy(p + n + 2 + vlen, "\r\n", 2);
    }
    return n + 2 + vlen + 2;
}

size_t fg_proxy_access_headers(struct fg_exchange *x, char *p)
{
    const struct fg_config *cfg = x->gen->cfg;
    const struct fg_geoip_cfg *g = cfg->geoip;
    const struct fg_route *r = x->route;
    size_t n = 0;

    if (r)
        for (unsigned i = 0; i < r->nset_headers; i++)
            n += add_line(p ? p + n : NULL, r->set_headers[i].name, r->set_headers[i].value,
                          r->set_headers[i].value_len);
    if (g && (g->country_header || g->continent_header || g->asn_header)) {
        const struct fg_geo *geo = fg_exchange_geo(x);
        char asn[16];
        int alen = snprintf(asn, sizeof(asn), "%u", (unsigned)geo->asn);
        if (g->country_header)
            n += add_line(p ? p + n : NULL, g->country_header, geo->country[0] ? geo->country : "unknown",
                          geo->country[0] ? strlen(geo->country) : 7);
        if (g->continent_header)
            n += add_line(p ? p + n : NULL, g->continent_header,
                          geo->continent[0] ? geo->continent : "unknown",
                          geo->continent[0] ? strlen(geo->continent) : 7);
        if (g->asn_header && geo->asn)
            n += add_line(p ? p + n : NULL, g->asn_header, asn, (size_t)alen);
    }
    return n;
}

void fg_proxy_access_mark(struct fg_exchange *x)
{
    const struct fg_route *r = x->route;
    struct fg_headers *h = &x->req_headers;

    /* the route's own headers replace the client's of the same names */
    for (unsigned j = 0; r && j < r->nset_headers; j++)
        for (unsigned i = 0; i < h->n; i++)
            if (h->v[i].nlen == r->set_headers[j].name_len &&
                memcmp(h->v[i].name, r->set_headers[j].name, h->v[i].nlen) == 0)
                h->v[i].flags |= FG_HDR_DROP;
    /* tokens are read from the response body: it must not be compressed */
    if (x->usage_on)
        for (unsigned i = 0; i < h->n; i++)
            if (name_is("accept-encoding", h->v[i].name, h->v[i].nlen))
                h->v[i].flags |= FG_HDR_DROP;
}

void fg_proxy_access_response(struct fg_exchange *x)
{
    char *v;
    int n;

    if (!x->rate_shown)
        return;
    const char *names[] = {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"};
    uint64_t vals[] = {x->rate_limit, x->rate_remaining, x->rate_reset_s};
    for (int i = 0; i < 3; i++) {
        if (!(v = fg_arena_alloc(&x->arena, 21)))
            return;
        n = snprintf(v, 21, "%" PRIu64, vals[i]);
        fg_headers_add(&x->resp_headers, (char *)names[i], strlen(names[i]), v, (size_t)n);
    }
}
