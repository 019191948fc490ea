/* Loading and validating the JSON configuration (see fg/config.h and
 * docs/configuration.md).
 *
 * Every JSON object of the schema is described by one table of fields
 * {key, type, offset, min, max, default}; walk() applies a table to an
 * object, so unknown keys, wrong types, ranges and defaults are handled in
 * one place and reported in one format. Fields whose meaning goes beyond a
 * scalar (arrays of objects, name references) get a handler of their own.
 *
 * The machinery (walk(), fail() and the messages) is config_walk.c; the
 * access-control and geography parts of the schema are config_access.c.
 *
 * Nothing here touches global state: getaddrinfo(), strerror_r() and
 * sysconf() are thread-safe, so two threads may load configurations at
 * once. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1           /* GNU strerror_r(), which returns its message */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-walk.h"
#include "fg/config_state.h"
#include "fg/keygen.h"

static int set_workers(struct ctx *c, json_t *v, void *base);
static int set_listeners(struct ctx *c, json_t *v, void *base);
static int set_tls(struct ctx *c, json_t *v, void *base);
static int set_upstreams(struct ctx *c, json_t *v, void *base);
static int set_backends(struct ctx *c, json_t *v, void *base);
static int set_routes(struct ctx *c, json_t *v, void *base);
static int set_prefix(struct ctx *c, json_t *v, void *base);
static int set_exact_path(struct ctx *c, json_t *v, void *base);
static int set_host(struct ctx *c, json_t *v, void *base);
static int set_methods(struct ctx *c, json_t *v, void *base);
static int set_match_headers(struct ctx *c, json_t *v, void *base);
static int set_match_query(struct ctx *c, json_t *v, void *base);
static int set_model(struct ctx *c, json_t *v, void *base);
static int set_route_upstream(struct ctx *c, json_t *v, void *base);
static int set_split(struct ctx *c, json_t *v, void *base);
static int set_rules(struct ctx *c, json_t *v, void *base);
static int set_upstream_header(struct ctx *c, json_t *v, void *base);
static int set_fallback(struct ctx *c, json_t *v, void *base);
static int set_rewrite(struct ctx *c, json_t *v, void *base);
static int set_mirror(struct ctx *c, json_t *v, void *base);
static int find_upstream(struct ctx *c, json_t *v, struct fg_upstream **out);
static int set_health(struct ctx *c, json_t *v, void *base);
static int set_health_path(struct ctx *c, json_t *v, void *base);
static int set_health_body(struct ctx *c, json_t *v, void *base);
static int set_outlier(struct ctx *c, json_t *v, void *base);
static int set_retry(struct ctx *c, json_t *v, void *base);
static int set_retry_on(struct ctx *c, json_t *v, void *base);
static int set_non_idempotent(struct ctx *c, json_t *v, void *base);
static int set_admin(struct ctx *c, json_t *v, void *base);
static int set_log(struct ctx *c, json_t *v, void *base);

static const struct field retry_fields[] = {
    {.key = "retry_on", .type = FT_FN, .fn = set_retry_on},
    UINT(struct fg_retry_cfg, max_retries, 1, 10, 1),
    UINT(struct fg_retry_cfg, budget_percent, 0, 100, 20),
    UINT(struct fg_retry_cfg, min_retries_per_second, 0, 100000, 3),
    U64(struct fg_retry_cfg, max_body_bytes, 0, 16777216, 65536),
    {.key = "non_idempotent", .type = FT_FN, .fn = set_non_idempotent},
    UINT(struct fg_retry_cfg, max_retry_after_ms, 0, TIMEOUT_MAX, 60000),
    {0},
};

static const struct field queue_fields[] = {
    UINT(struct fg_queue_cfg, max_length, 0, 1000000, 1000),
    UINT(struct fg_queue_cfg, timeout_ms, 1, TIMEOUT_MAX, 5000),
    UINT(struct fg_queue_cfg, retry_after_s, 0, 86400, 1),
    {0},
};

static const struct field outlier_fields[] = {
    UINT(struct fg_outlier_cfg, consecutive_failures, 1, 1000, 5),
    UINT(struct fg_outlier_cfg, base_ejection_ms, 1, TIMEOUT_MAX, 30000),
    UINT(struct fg_outlier_cfg, max_ejection_ms, 1, TIMEOUT_MAX, 300000),
    UINT(struct fg_outlier_cfg, max_ejected_percent, 0, 100, 50),
    {0},
};

static const struct field health_fields[] = {
    {.key = "path", .type = FT_FN, .fn = set_health_path},
    UINT(struct fg_health_cfg, interval_ms, 100, 3600000, 2000),
    UINT(struct fg_health_cfg, timeout_ms, 10, 600000, 1000),
    UINT(struct fg_health_cfg, rise, 1, 100, 2),
    UINT(struct fg_health_cfg, fall, 1, 100, 3),
    UINT(struct fg_health_cfg, status_min, 100, 599, 200),
    UINT(struct fg_health_cfg, status_max, 100, 599, 399),
    {.key = "body_contains", .type = FT_FN, .fn = set_health_body},
    {0},
};

static const struct field client_fields[] = {
    UINT(struct fg_client_cfg, header_timeout_ms, 1, TIMEOUT_MAX, 10000),
    UINT(struct fg_client_cfg, idle_timeout_ms, 1, TIMEOUT_MAX, 60000),
    UINT(struct fg_client_cfg, send_timeout_ms, 1, TIMEOUT_MAX, 60000),
    UINT(struct fg_client_cfg, body_timeout_ms, 1, TIMEOUT_MAX, 60000),
    UINT(struct fg_client_cfg, body_min_rate, 0, 1000000000, 500),
    UINT(struct fg_client_cfg, max_header_bytes, HEADER_BYTES_MIN, HEADER_BYTES_MAX, 32768),
    UINT(struct fg_client_cfg, max_headers, 1, 10000, 100),
    U64(struct fg_client_cfg, max_body_bytes, 0, INT64_MAX, 104857600),
    UINT(struct fg_client_cfg, h2_max_concurrent_streams, 1, 65535, 128),
    UINT(struct fg_client_cfg, max_connections, 0, 10000000, 0),
    UINT(struct fg_client_cfg, max_connections_per_address, 0, 1000000, 0),
    U64(struct fg_client_cfg, model_body_bytes, 0, 1073741824, 1048576),
    {.key = "trusted_proxies", .type = FT_FN, .fn = fg_cw_set_trusted_proxies},
    {0},
};

static const struct field tls_fields[] = {
    {.key = "certificate", .type = FT_FILE, .flags = F_REQUIRED,
     .offset = OFF(struct fg_tls_cfg, certificate, char *)},
    {.key = "key", .type = FT_FILE, .flags = F_REQUIRED,
     .offset = OFF(struct fg_tls_cfg, key, char *)},
    {0},
};

static const struct field listener_fields[] = {
    {.key = "address", .type = FT_ADDR, .flags = F_REQUIRED,
     .offset = OFF(struct fg_listener_cfg, addr, struct fg_addr)},
    INT(struct fg_listener_cfg, backlog, 1, 65535, 511),
    {.key = "tls", .type = FT_FN, .fn = set_tls},
    {.key = "proxy_protocol", .type = FT_FN, .fn = fg_cw_set_proxy_protocol},
    {0},
};

static const char *const balance_names[] = {
    [FG_BALANCE_LEAST_CONN] = "least_conn",
    [FG_BALANCE_ROUND_ROBIN] = "round_robin",
    NULL,
};
_Static_assert(sizeof(enum fg_balance) == sizeof(int), "FT_ENUM stores an int");

static const char *const discovery_names[] = {
    [FG_DISCOVERY_NONE] = "none",
    [FG_DISCOVERY_DNS] = "dns",
    NULL,
};

static const struct field backend_fields[] = {
    {.key = "address", .type = FT_ADDR, .flags = F_REQUIRED,
     .offset = OFF(struct fg_backend, addr, struct fg_addr)},
    UINT(struct fg_backend, weight, 1, 1000, 1),
    UINT(struct fg_backend, max_requests, 0, 1000000, 0),
    {.key = "discovery", .type = FT_ENUM, .aux = discovery_names, .def = FG_DISCOVERY_NONE,
     .offset = OFF(struct fg_backend, discovery, int)},
    {0},
};

/* "discovery": "dns": the address is a name, kept (in dns_name) for the
 * answers, not resolved here */
static int set_dns_backend_name(struct ctx *c, json_t *v, void *base)
{
    struct fg_backend *b = base;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL, *why = NULL;

    if (!s || !fg_cw_dns_name_valid(s, &why))
        return fail(c, AT_VALUE, "%s", s ? why : "must be a string \"HOST:PORT\"");
    if (!(b->dns_name = strdup(s)))
        return oom(c);
    return 0;
}

static const struct field dns_backend_fields[] = {
    {.key = "address", .type = FT_FN, .fn = set_dns_backend_name, .flags = F_REQUIRED},
    UINT(struct fg_backend, weight, 1, 1000, 1),
    UINT(struct fg_backend, max_requests, 0, 1000000, 0),
    {.key = "discovery", .type = FT_ENUM, .aux = discovery_names, .def = FG_DISCOVERY_NONE,
     .offset = OFF(struct fg_backend, discovery, int)},
    {0},
};

static const struct field upstream_fields[] = {
    {.key = "balance", .type = FT_ENUM, .aux = balance_names, .def = FG_BALANCE_LEAST_CONN,
     .offset = OFF(struct fg_upstream, balance, enum fg_balance)},
    {.key = "backends", .type = FT_FN, .fn = set_backends, .flags = F_REQUIRED},
    UINT(struct fg_upstream, connect_timeout_ms, 1, TIMEOUT_MAX, 3000),
    UINT(struct fg_upstream, header_timeout_ms, 1, TIMEOUT_MAX, 60000),
    UINT(struct fg_upstream, idle_timeout_ms, 1, TIMEOUT_MAX, 60000),
    UINT(struct fg_upstream, keepalive_timeout_ms, 1, TIMEOUT_MAX, 30000),
    UINT(struct fg_upstream, keepalive, 0, 65535, 1024),
    UINT(struct fg_upstream, max_response_header_bytes, HEADER_BYTES_MIN, HEADER_BYTES_MAX, 32768),
    {.key = "health_check", .type = FT_FN, .fn = set_health},
    {.key = "outlier_detection", .type = FT_FN, .fn = set_outlier},
    UINT(struct fg_upstream, slow_start_ms, 0, TIMEOUT_MAX, 0),
    UINT(struct fg_upstream, max_requests, 0, 1000000, 0),
    {.key = "retry", .type = FT_FN, .fn = set_retry},
    {.key = "queue", .type = FT_OBJ, .aux = queue_fields,
     .offset = OFF(struct fg_upstream, queue, struct fg_queue_cfg)},
    {0},
};

/* "match" has no struct of its own: it fills the route. */
static const struct field match_fields[] = {
    {.key = "path_prefix", .type = FT_FN, .fn = set_prefix},
    {.key = "path", .type = FT_FN, .fn = set_exact_path},
    {.key = "host", .type = FT_FN, .fn = set_host},
    {.key = "methods", .type = FT_FN, .fn = set_methods},
    {.key = "headers", .type = FT_FN, .fn = set_match_headers},
    {.key = "query", .type = FT_FN, .fn = set_match_query},
    {.key = "model", .type = FT_FN, .fn = set_model},
    {0},
};

/* "upstream" or "split": set_routes() checks that exactly one is there. */
static const struct field route_fields[] = {
    {.key = "name", .type = FT_FN, .fn = fg_cw_set_route_name},
    {.key = "match", .type = FT_OBJ, .aux = match_fields, .offset = 0, .flags = F_REQUIRED},
    {.key = "upstream", .type = FT_FN, .fn = set_route_upstream},
    {.key = "split", .type = FT_FN, .fn = set_split},
    {.key = "rules", .type = FT_FN, .fn = set_rules},
    {.key = "upstream_header", .type = FT_FN, .fn = set_upstream_header},
    {.key = "fallback", .type = FT_FN, .fn = set_fallback},
    {.key = "rewrite", .type = FT_FN, .fn = set_rewrite},
    {.key = "mirror", .type = FT_FN, .fn = set_mirror},
    {.key = "auth", .type = FT_FN, .fn = fg_cw_set_route_auth},
    {.key = "limits", .type = FT_FN, .fn = fg_cw_set_route_limits},
    {.key = "upstream_headers", .type = FT_FN, .fn = fg_cw_set_upstream_headers},
    {0},
};

/* Fields are applied in table order, not document order: "upstreams" must
 * be known before "routes" refer to them. */
static const struct field root_fields[] = {
    {.key = "workers", .type = FT_FN, .fn = set_workers},
    {.key = "listeners", .type = FT_FN, .fn = set_listeners, .flags = F_REQUIRED},
    {.key = "client", .type = FT_OBJ, .aux = client_fields,
     .offset = OFF(struct fg_config, client, struct fg_client_cfg)},
    {.key = "geoip", .type = FT_FN, .fn = fg_cw_set_geoip},        /* rules name countries */
    {.key = "upstreams", .type = FT_FN, .fn = set_upstreams, .flags = F_REQUIRED},
    {.key = "routes", .type = FT_FN, .fn = set_routes, .flags = F_REQUIRED},
    {.key = "access", .type = FT_FN, .fn = fg_cw_set_access},      /* names routes */
    {.key = "admin", .type = FT_FN, .fn = set_admin},
    {.key = "log", .type = FT_FN, .fn = set_log},
    UINT(struct fg_config, drain_timeout_ms, 0, TIMEOUT_MAX, 30000),
    {.key = "dns", .type = FT_FN, .fn = fg_cw_set_dns},
    {0},
};


/* ---- handlers ------------------------------------------------------------ */

static int set_workers(struct ctx *c, json_t *v, void *base)
{
    struct fg_config *cfg = base;
    if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0) {
        cfg->workers = 0;       /* resolved after the walk, like an absent key */
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > FG_MAX_WORKERS)
        return fail(c, AT_VALUE, "must be \"auto\" or an integer in 1..%d", FG_MAX_WORKERS);
    cfg->workers = (unsigned)json_integer_value(v);
    return 0;
}

static int set_listeners(struct ctx *c, json_t *v, void *base)
{
    struct fg_config *cfg = base;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;

    if (n == 0)
        return fail(c, AT_VALUE, "must be a non-empty array");
    if (!(cfg->listeners = calloc(n, sizeof *cfg->listeners)))
        return oom(c);
    cfg->nlisteners = (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        struct fg_listener_cfg *l = &cfg->listeners[i];
        json_t *e = json_array_get(v, i);
        push_index(c, i);
        if (!json_is_object(e))
            return fail(c, AT_VALUE, "must be an object");
        if (walk(c, e, listener_fields, l) < 0)
            return -1;
        /* Two sockets on one address would fail at bind() with a message
         * far from the cause; say where the first one is. */
        for (size_t j = 0; j < i; j++) {
            const struct fg_addr *o = &cfg->listeners[j].addr;
            if (!fg_addr_overlaps(o, &l->addr))
                continue;
            push_key(c, "address");
            if (strcmp(o->text, l->addr.text) == 0)
                return fail(c, AT_VALUE, "duplicate listener address %s (see $.listeners[%zu])",
                            l->addr.text, j);
            return fail(c, AT_VALUE, "listener address %s overlaps $.listeners[%zu] (%s): "
                        "a wildcard address takes its port on every address", l->addr.text, j, o->text);
        }
        pop(c);
    }
    return 0;
}

static int set_tls(struct ctx *c, json_t *v, void *base)
{
    struct fg_listener_cfg *l = base;
    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object");
    if (!(l->tls = calloc(1, sizeof *l->tls)))
        return oom(c);
    return walk(c, v, tls_fields, l->tls);
}

static int set_upstreams(struct ctx *c, json_t *v, void *base)
{
    struct fg_config *cfg = base;
    size_t n = json_is_object(v) ? json_object_size(v) : 0, i = 0;
    const char *name;
    json_t *u;

    if (n == 0)
        return fail(c, AT_VALUE, "must be a non-empty object");
    if (!(cfg->upstreams = calloc(n, sizeof *cfg->upstreams)))
        return oom(c);
    cfg->nupstreams = (unsigned)n;
    json_object_foreach(v, name, u) {
        struct fg_upstream *up = &cfg->upstreams[i];
        up->index = (unsigned)i++;
        push_key(c, name);
        if (!*name)
            return fail(c, AT_KEY, "upstream name must not be empty");
        if (!(up->name = strdup(name)))
            return oom(c);
        if (!json_is_object(u))
            return fail(c, AT_VALUE, "must be an object");
        if (walk(c, u, upstream_fields, up) < 0)
            return -1;
        /* a backend without its own max_requests takes the upstream's */
        for (unsigned b = 0; b < up->nbackends; b++) {
            if (!up->backends[b].max_requests)
                up->backends[b].max_requests = up->max_requests;
            if (up->backends[b].max_requests)
                up->limited = 1;
        }
        pop(c);
    }
    return 0;
}

/* Each entry is one backend, or with "discovery": "dns" one per address its
 * name stands for (none while it has none). */
static int set_backends(struct ctx *c, json_t *v, void *base)
{
    struct fg_upstream *up = base;
    size_t n = json_is_array(v) ? json_array_size(v) : 0, total = 0;
    struct fg_backend *entries;
    /* each entry's answer, by index: a later name may move the array */
    long *answer;
    int rc = -1;

    if (n == 0)
        return fail(c, AT_VALUE, "must be a non-empty array");
    entries = calloc(n, sizeof(*entries));
    answer = calloc(n, sizeof(*answer));
    if (!entries || !answer) {
        free(entries);
        free(answer);
        return oom(c);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i), *d = json_object_get(e, "discovery");
        int dns = json_is_string(d) && strcmp(json_string_value(d), "dns") == 0;
        push_index(c, i);
        if (!json_is_object(e)) {
            fail(c, AT_VALUE, "must be an object");
            goto out;
        }
        if (walk(c, e, dns ? dns_backend_fields : backend_fields, &entries[i]) < 0)
            goto out;
        answer[i] = -1;
        if (dns) {
            struct fg_dns_answer *a = fg_cw_dns_answer(c->cfg, c->dns_known, entries[i].dns_name);
            if (!a) {
                oom(c);
                goto out;
            }
            answer[i] = a - c->cfg->dns_answers.a;
            total += a->naddrs;
        } else {
            total++;
        }
        pop(c);
    }
    if (!(up->backends = calloc(total ? total : 1, sizeof *up->backends))) {
        oom(c);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct fg_dns_answer *a = answer[i] >= 0 ? &c->cfg->dns_answers.a[answer[i]] : NULL;
        unsigned k = a ? a->naddrs : 1;
        for (unsigned j = 0; j < k; j++) {
            struct fg_backend *b = &up->backends[up->nbackends];
            *b = entries[i];
            if (a) {
                b->addr = a->addrs[j];
                b->dns_name = a->name;      /* the configuration's copy */
            }
            b->index = up->nbackends++;
            b->upstream = up;
        }
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free((char *)entries[i].dns_name);
    free(entries);
    free(answer);
    return rc;
}

static int set_routes(struct ctx *c, json_t *v, void *base)
{
    struct fg_config *cfg = base;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;

    if (n == 0)
        return fail(c, AT_VALUE, "must be a non-empty array");
    if (!(cfg->routes = calloc(n, sizeof *cfg->routes)))
        return oom(c);
    cfg->nroutes = (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        push_index(c, i);
        if (!json_is_object(e))
            return fail(c, AT_VALUE, "must be an object");
        if (walk(c, e, route_fields, &cfg->routes[i]) < 0)
            return -1;
        if (!cfg->routes[i].upstream == !cfg->routes[i].split)
            return fail(c, AT_VALUE, "needs exactly one of \"upstream\" and \"split\"");
        if (cfg->routes[i].rewrite_prefix && !cfg->routes[i].path_prefix) {
            push_key(c, "rewrite");
            return fail(c, AT_VALUE, "\"path_prefix\" needs match.path_prefix (the part it replaces)");
        }
        if (!cfg->routes[i].path_prefix && !cfg->routes[i].path) {
            if (!(cfg->routes[i].path_prefix = strdup("/")))
                return oom(c);
            cfg->routes[i].path_prefix_len = 1;
        }
        pop(c);
    }
    return 0;
}

static int set_exact_path(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    if (!json_is_string(v) || json_string_value(v)[0] != '/' ||
        strchr(json_string_value(v), '?'))
        return fail(c, AT_VALUE, "must be a string starting with \"/\", without a query");
    return copy_string(c, v, &r->path, &r->path_len);
}

static int set_host(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    const char *h = nonempty_string(v);

    for (const char *p = h; p && *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || (ch == '*' && p == h && p[1] == '.')))
            h = NULL;
    }
    if (!h)
        return fail(c, AT_VALUE, "must be a host name (letters, digits, '-', '.'), "
                                 "optionally starting with \"*.\"; no port");
    if (copy_string(c, v, &r->host, &r->host_len) < 0)
        return -1;
    for (char *p = r->host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

static int set_methods(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;

    if (n == 0)
        return fail(c, AT_VALUE, "must be a non-empty array of methods (\"GET\", \"POST\", ...)");
    if (!(r->methods = calloc(n, sizeof(*r->methods))))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        push_index(c, i);
        if (!json_is_string(e) || !is_token(json_string_value(e)))
            return fail(c, AT_VALUE, "must be a method name (an HTTP token)");
        for (const char *p = json_string_value(e); *p; p++)
            if (*p >= 'a' && *p <= 'z')
                return fail(c, AT_VALUE, "must be upper case (methods are case-sensitive)");
        if (!(r->methods[i] = strdup(json_string_value(e))))
            return oom(c);
        r->nmethods++;
        pop(c);
    }
    return 0;
}

static int set_match_headers(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    return set_kv(c, v, &r->headers, &r->nheaders, 1);
}

static int set_match_query(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    return set_kv(c, v, &r->query, &r->nquery, 0);
}

static int set_model(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    const char *m = nonempty_string(v);

    for (const char *p = m; p && *p; p++)
        if (*p == '/' || *p == '?' || (unsigned char)*p <= ' ')
            m = NULL;
    if (!m)
        return fail(c, AT_VALUE, "must be a model name (no '/', '?' or spaces)");
    return copy_string(c, v, &r->model, &r->model_len);
}

static int set_upstream_header(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;

    if (!json_is_string(v) || !is_token(json_string_value(v)))
        return fail(c, AT_VALUE, "must be a header name (e.g. \"x-fleetgate-upstream\")");
    if (copy_string(c, v, &r->upstream_header, &r->upstream_header_len) < 0)
        return -1;
    for (char *p = r->upstream_header; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

static int set_health(struct ctx *c, json_t *v, void *base)
{
    struct fg_upstream *u = base;
    struct fg_health_cfg *h = &u->health;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (e.g. {\"path\": \"/v2/health/ready\"})");
    if (walk(c, v, health_fields, h) < 0)
        return -1;
    h->enabled = 1;
    if (!h->path && !(h->path = strdup("/v2/health/ready")))
        return oom(c);
    if (h->status_min > h->status_max) {
        push_key(c, "status_max");
        return fail(c, AT_VALUE, "must be at least status_min (%u)", h->status_min);
    }
    if (h->timeout_ms > h->interval_ms) {
        push_key(c, "timeout_ms");
        return fail(c, AT_VALUE, "must not exceed interval_ms (%u)", h->interval_ms);
    }
    return 0;
}

static int set_outlier(struct ctx *c, json_t *v, void *base)
{
    struct fg_upstream *u = base;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (e.g. {\"consecutive_failures\": 5})");
    if (walk(c, v, outlier_fields, &u->outlier) < 0)
        return -1;
    if (u->outlier.max_ejection_ms < u->outlier.base_ejection_ms) {
        push_key(c, "max_ejection_ms");
        return fail(c, AT_VALUE, "must be at least base_ejection_ms (%u)", u->outlier.base_ejection_ms);
    }
    u->outlier.enabled = 1;
    return 0;
}

static int set_retry(struct ctx *c, json_t *v, void *base)
{
    struct fg_upstream *u = base;
    struct fg_retry_cfg *r = &u->retry;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (e.g. {\"retry_on\": [\"connect-failure\", 503]})");
    if (walk(c, v, retry_fields, r) < 0)
        return -1;
    if (!json_object_get(v, "retry_on")) {
        /* the failures that mean "this backend did not do it" or "is gone" */
        r->on = FG_RETRY_CONNECT | FG_RETRY_RESET;
        r->on_status[502 - 400] = r->on_status[503 - 400] = r->on_status[504 - 400] = 1;
    }
    r->enabled = 1;
    return 0;
}

static int set_retry_on(struct ctx *c, json_t *v, void *base)
{
    static const char *const conditions[] = {"connect-failure", "reset", "timeout", NULL};
    struct fg_retry_cfg *r = base;
    size_t i;
    json_t *e;

    if (!json_is_array(v))
        return fail(c, AT_VALUE, "must be an array of conditions (\"connect-failure\", "
                                 "\"reset\", \"timeout\") and statuses (429, 500..599)");
    json_array_foreach(v, i, e) {
        push_index(c, i);
        if (json_is_integer(e)) {
            json_int_t st = json_integer_value(e);
            if (st != 429 && (st < 500 || st > 599))
                return fail(c, AT_VALUE, "a status to retry must be 429 or in 500..599");
            r->on_status[st - 400] = 1;
        } else if (json_is_string(e)) {
            unsigned k = 0;
            while (conditions[k] && strcmp(conditions[k], json_string_value(e)))
                k++;
            if (!conditions[k])
                return fail_enum(c, conditions);
            r->on |= 1u << k;
        } else {
            return fail(c, AT_VALUE, "must be a status (429, 500..599) or one of \"connect-failure\", "
                                     "\"reset\", \"timeout\"");
        }
        pop(c);
    }
    return 0;
}

static int set_non_idempotent(struct ctx *c, json_t *v, void *base)
{
    struct fg_retry_cfg *r = base;

    if (!json_is_boolean(v))
        return fail(c, AT_VALUE, "must be true or false");
    r->non_idempotent = json_is_true(v);
    return 0;
}

/* "log": {"access": "stderr" | FILE, "level": "debug" | "info" | "warn" | "error"} */
static int set_log(struct ctx *c, json_t *v, void *base)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    struct fg_config *cfg = base;
    json_t *e;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (access, level)");
    if (only_keys(c, v, (const char *const[]){"access", "level", NULL}) < 0)
        return -1;
    if ((e = json_object_get(v, "access"))) {
        const char *s = nonempty_string(e);
        push_key(c, "access");
        if (!s)
            return fail(c, AT_VALUE, "must be \"stderr\" or a file name");
        cfg->log.access = strcmp(s, "stderr") == 0 ? strdup(s) : abs_path(c, s);
        if (!cfg->log.access)
            return oom(c);
        pop(c);
    }
    if ((e = json_object_get(v, "level"))) {
        const char *s = json_is_string(e) ? json_string_value(e) : "";
        int i = 0;
        push_key(c, "level");
        while (levels[i] && strcmp(levels[i], s))
            i++;
        if (!levels[i])
            return fail_enum(c, levels);
        cfg->log.level = i;
        pop(c);
    }
    return 0;
}

/* "admin": {"address": "127.0.0.1:9901"}; the address defaults to that. */
static int set_admin(struct ctx *c, json_t *v, void *base)
{
    struct fg_config *cfg = base;
    json_t *a;
    const char *why;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (e.g. {\"address\": \"127.0.0.1:9901\"})");
    if (only_keys(c, v, (const char *const[]){"address", "token_sha256", NULL}) < 0)
        return -1;
    cfg->admin.backlog = 511;
    if ((a = json_object_get(v, "token_sha256"))) {
        push_key(c, "token_sha256");
        if (fg_sha256_parse(json_is_string(a) ? json_string_value(a) : "", cfg->admin_token) < 0)
            return fail(c, AT_VALUE, "must be 64 hex digits: the SHA-256 of the token");
        cfg->admin_token_set = 1;
        pop(c);
    }
    if ((a = json_object_get(v, "address"))) {
        push_key(c, "address");
        if (set_field(c, &listener_fields[0], a, &cfg->admin) < 0)
            return -1;
    } else if (fg_addr_parse("127.0.0.1:9901", &cfg->admin.addr, &why) < 0) {
        return fail(c, AT_VALUE, "internal error: %s", why);
    }
    for (unsigned j = 0; j < cfg->nlisteners; j++)
        if (fg_addr_overlaps(&cfg->listeners[j].addr, &cfg->admin.addr))
            return fail(c, AT_VALUE, "the admin address %s overlaps $.listeners[%u] (%s)",
                        cfg->admin.addr.text, j, cfg->listeners[j].addr.text);
    if (a)
        pop(c);
    cfg->admin_enabled = 1;
    return 0;
}

static int set_health_path(struct ctx *c, json_t *v, void *base)
{
    struct fg_health_cfg *h = base;
    const char *p = json_is_string(v) ? json_string_value(v) : NULL;

    for (const char *q = p; q && *q; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            p = NULL;
    if (!p || p[0] != '/')
        return fail(c, AT_VALUE, "must be a path starting with \"/\", without spaces");
    if (!(h->path = strdup(p)))
        return oom(c);
    return 0;
}

static int set_health_body(struct ctx *c, json_t *v, void *base)
{
    struct fg_health_cfg *h = base;
    const char *s = nonempty_string(v);

    if (!s)
        return fail(c, AT_VALUE, "must be a non-empty string");
    if (!(h->body_contains = strdup(s)))
        return oom(c);
    return 0;
}

static int set_mirror(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    json_t *e;
    double pct = 100;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object {\"upstream\": NAME, \"percent\": P}");
    if (only_keys(c, v, (const char *const[]){"upstream", "percent", "max_in_flight", "max_body_bytes", NULL}) < 0)
        return -1;
    if (!(e = json_object_get(v, "upstream")))
        return fail(c, AT_VALUE, "missing required key \"upstream\"");
    push_key(c, "upstream");
    if (find_upstream(c, e, &r->mirror) < 0)
        return -1;
    pop(c);
    if ((e = json_object_get(v, "percent"))) {
        push_key(c, "percent");
        if (!json_is_number(e) || json_number_value(e) < 0 || json_number_value(e) > 100)
            return fail(c, AT_VALUE, "must be a number in 0..100");
        pct = json_number_value(e);
        pop(c);
    }
    /* a draw below the threshold is mirrored: pct% of 2^64 */
    r->mirror_threshold = pct >= 100 ? UINT64_MAX : (uint64_t)(pct / 100.0 * 18446744073709551616.0);
    r->mirror_max_in_flight = 64;
    if ((e = json_object_get(v, "max_in_flight"))) {
        push_key(c, "max_in_flight");
        if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > 65535)
            return fail(c, AT_VALUE, "must be an integer in 1..65535");
        r->mirror_max_in_flight = (unsigned)json_integer_value(e);
        pop(c);
    }
    r->mirror_body_bytes = 1 << 20;
    if ((e = json_object_get(v, "max_body_bytes"))) {
        push_key(c, "max_body_bytes");
        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
            json_integer_value(e) > 16 * 1024 * 1024)
            return fail(c, AT_VALUE, "must be an integer in 0..16777216");
        r->mirror_body_bytes = (uint64_t)json_integer_value(e);
        pop(c);
    }
    return 0;
}

static int set_rewrite(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    json_t *e;

    if (!json_is_object(v) || json_object_size(v) == 0)
        return fail(c, AT_VALUE, "must be an object with \"path_prefix\" and/or \"model\"");
    if (only_keys(c, v, (const char *const[]){"path_prefix", "model", NULL}) < 0)
        return -1;
    if ((e = json_object_get(v, "path_prefix"))) {
        push_key(c, "path_prefix");
        if (!json_is_string(e) || json_string_value(e)[0] != '/')
            return fail(c, AT_VALUE, "must be a string starting with \"/\"");
        if (copy_string(c, e, &r->rewrite_prefix, &r->rewrite_prefix_len) < 0)
            return -1;
        pop(c);
    }
    if ((e = json_object_get(v, "model"))) {
        const char *m = nonempty_string(e);
        push_key(c, "model");
        for (const char *p = m; p && *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  strchr("._:-", *p)))
                m = NULL;
        if (!m)
            return fail(c, AT_VALUE, "must be a model name of letters, digits, '.', '_', ':', '-'");
        if (copy_string(c, e, &r->rewrite_model, &r->rewrite_model_len) < 0)
            return -1;
        pop(c);
    }
    return 0;
}

static int set_fallback(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    json_t *u, *m;

    r->fallback_body_bytes = 65536;
    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object {\"upstream\": NAME, \"max_body_bytes\": N}");
    if (only_keys(c, v, (const char *const[]){"upstream", "max_body_bytes", NULL}) < 0)
        return -1;
    if (!(u = json_object_get(v, "upstream")))
        return fail(c, AT_VALUE, "missing required key \"upstream\"");
    push_key(c, "upstream");
    if (find_upstream(c, u, &r->fallback) < 0)
        return -1;
    pop(c);
    if ((m = json_object_get(v, "max_body_bytes"))) {
        push_key(c, "max_body_bytes");
        if (!json_is_integer(m) || json_integer_value(m) < 0 ||
            json_integer_value(m) > 16 * 1024 * 1024)
            return fail(c, AT_VALUE, "must be an integer in 0..16777216");
        r->fallback_body_bytes = (uint64_t)json_integer_value(m);
        pop(c);
    }
    return 0;
}

static const char *const rule_keys[] = {"header", "cookie", "query", "client", "country",
                                        "continent", "asn", "key", "upstream", NULL};

static int set_rule(struct ctx *c, json_t *v, struct fg_rule *r)
{
    json_t *e;
    int conditions = 0;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object: conditions (header, cookie, query, client, "
                                 "country, continent, asn, key) "
                                 "and \"upstream\"");
    if (only_keys(c, v, rule_keys) < 0)
        return -1;
    if ((e = json_object_get(v, "header"))) {
        push_key(c, "header");
        if (set_kv(c, e, &r->headers, &r->nheaders, 1) < 0)
            return -1;
        pop(c);
        conditions++;
    }
    if ((e = json_object_get(v, "cookie"))) {
        push_key(c, "cookie");
        if (set_kv(c, e, &r->cookies, &r->ncookies, 0) < 0)
            return -1;
        pop(c);
        conditions++;
    }
    if ((e = json_object_get(v, "query"))) {
        push_key(c, "query");
        if (set_kv(c, e, &r->query, &r->nquery, 0) < 0)
            return -1;
        pop(c);
        conditions++;
    }
    if ((e = json_object_get(v, "client"))) {
        size_t n = json_is_array(e) ? json_array_size(e) : 0;
        push_key(c, "client");
        if (n == 0)
            return fail(c, AT_VALUE, "must be a non-empty array of addresses or CIDR blocks");
        if (!(r->nets = calloc(n, sizeof(*r->nets))))
            return oom(c);
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_array_get(e, i);
            push_index(c, i);
            if (!json_is_string(a) || parse_cidr(json_string_value(a), &r->nets[i]) < 0)
                return fail(c, AT_VALUE, "must be an address or CIDR block (\"10.0.0.0/8\", "
                                         "\"::1\"), host bits 0");
            r->nnets++;
            pop(c);
        }
        pop(c);
        conditions++;
    }
    if (fg_cw_set_rule_access(c, v, r, &conditions) < 0)
        return -1;
    if (!conditions)
        return fail(c, AT_VALUE, "needs at least one condition (header, cookie, query, client, "
                                 "country, continent, asn, key)");
    if (!(e = json_object_get(v, "upstream")))
        return fail(c, AT_VALUE, "missing required key \"upstream\"");
    push_key(c, "upstream");
    if (find_upstream(c, e, &r->upstream) < 0)
        return -1;
    pop(c);
    return 0;
}

static int set_rules(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;

    if (n == 0)
        return fail(c, AT_VALUE, "must be a non-empty array of rules");
    if (!(r->rules = calloc(n, sizeof(*r->rules))))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        push_index(c, i);
        r->nrules++;            /* counted first: freed whatever happens */
        if (set_rule(c, json_array_get(v, i), &r->rules[i]) < 0)
            return -1;
        pop(c);
    }
    return 0;
}

static int set_sticky(struct ctx *c, json_t *v, struct fg_split *sp)
{
    json_t *h = json_object_get(v, "header"), *k = json_object_get(v, "cookie");

    if (!json_is_object(v) || json_object_size(v) != 1 || (!h && !k))
        return fail(c, AT_VALUE, "must be {\"header\": NAME} or {\"cookie\": NAME}");
    push_key(c, h ? "header" : "cookie");
    if (!json_is_string(h ? h : k) || !is_token(json_string_value(h ? h : k)))
        return fail(c, AT_VALUE, "must be a %s name", h ? "header" : "cookie");
    if (copy_string(c, h ? h : k, &sp->sticky_name, &sp->sticky_name_len) < 0)
        return -1;
    sp->sticky = h ? FG_STICKY_HEADER : FG_STICKY_COOKIE;
    if (h)
        for (char *p = sp->sticky_name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    pop(c);
    return 0;
}

static int set_split(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    struct fg_split *sp;
    json_t *arms = json_object_get(v, "arms"), *sticky = json_object_get(v, "sticky");
    size_t n;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object with \"arms\" (and optionally \"sticky\")");
    if (only_keys(c, v, (const char *const[]){"arms", "sticky", NULL}) < 0)
        return -1;
    if (!(sp = r->split = calloc(1, sizeof(*sp))))
        return oom(c);
    if (sticky) {
        push_key(c, "sticky");
        if (set_sticky(c, sticky, sp) < 0)
            return -1;
        pop(c);
    }
    if (!arms)
        return fail(c, AT_VALUE, "missing required key \"arms\"");
    push_key(c, "arms");
    n = json_is_array(arms) ? json_array_size(arms) : 0;
    if (n == 0)
        return fail(c, AT_VALUE, "must be a non-empty array of {\"upstream\": NAME, \"weight\": N}");
    if (!(sp->arms = calloc(n, sizeof(*sp->arms))))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(arms, i), *u, *w;
        push_index(c, i);
        if (!json_is_object(a))
            return fail(c, AT_VALUE, "must be an object {\"upstream\": NAME, \"weight\": N}");
        if (only_keys(c, a, (const char *const[]){"upstream", "weight", NULL}) < 0)
            return -1;
        u = json_object_get(a, "upstream");
        w = json_object_get(a, "weight");
        if (!u)
            return fail(c, AT_VALUE, "missing required key \"upstream\"");
        if (!w)
            return fail(c, AT_VALUE, "missing required key \"weight\"");
        push_key(c, "upstream");
        if (find_upstream(c, u, &sp->arms[i].upstream) < 0)
            return -1;
        pop(c);
        push_key(c, "weight");
        if (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > 1000000)
            return fail(c, AT_VALUE, "must be an integer in 0..1000000");
        sp->arms[i].weight = (unsigned)json_integer_value(w);
        sp->total += sp->arms[i].weight;
        pop(c);
        sp->narms++;
        pop(c);
    }
    if (sp->total == 0)
        return fail(c, AT_VALUE, "the weights must not all be 0");
    pop(c);
    return 0;
}

static int set_prefix(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    if (!json_is_string(v))
        return fail(c, AT_VALUE, "must be a string starting with \"/\"");
    if (json_string_value(v)[0] != '/')
        return fail(c, AT_VALUE, "must start with \"/\"");
    if (!(r->path_prefix = strdup(json_string_value(v))))
        return oom(c);
    r->path_prefix_len = json_string_length(v);
    return 0;
}

static int find_upstream(struct ctx *c, json_t *v, struct fg_upstream **out)
{
    const char *s = nonempty_string(v);
    if (!s)
        return fail(c, AT_VALUE, "must be a non-empty string");
    if (!(*out = fg_config_upstream(c->cfg, s))) {
        char *q = fg_json_quote(s);
        fail(c, AT_VALUE, "upstream %s is not defined", q ? q : "");
        free(q);
        return -1;
    }
    return 0;
}

static int set_route_upstream(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    return find_upstream(c, v, &r->upstream);
}

/* ---- files --------------------------------------------------------------- */

/* ---- public -------------------------------------------------------------- */

struct fg_upstream *fg_config_upstream(const struct fg_config *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->nupstreams; i++)
        if (cfg->upstreams[i].name && strcmp(cfg->upstreams[i].name, name) == 0)
            return &cfg->upstreams[i];
    return NULL;
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > FG_MAX_WORKERS ? FG_MAX_WORKERS : (unsigned)n;
}

struct fg_config *fg_config_parse(const char *text, size_t len, const char *name, char **err)
{
    return fg_config_parse_dns(text, len, name, NULL, err);
}

struct fg_config *fg_config_parse_dns(const char *text, size_t len, const char *name,
                                      const struct fg_dns_answers *dns, char **err)
{
    struct ctx c = {.name = name ? name : "(config)", .text = text, .len = len, .err = err,
                    .dns_known = dns};
    json_error_t je;
    json_t *root;

    *err = NULL;
    if (!(root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je))) {
        parse_error(&c, &je);
        return NULL;
    }
    if (!(c.cfg = calloc(1, sizeof *c.cfg)) || !(c.cfg->path = strdup(c.name))) {
        oom(&c);
        goto fail;
    }
    atomic_init(&c.cfg->refs, 1);
    if (!json_is_object(root)) {
        fail(&c, AT_VALUE, "must be an object");
        goto fail;
    }
    c.cfg->log.level = 1;               /* info */
    fg_cw_dns_defaults(c.cfg);
    if (!(c.cfg->source = strndup(text, len))) {
        oom(&c);
        goto fail;
    }
    if (walk(&c, root, root_fields, c.cfg) < 0 || fg_cw_check_after(&c) < 0)
        goto fail;
    if (fg_config_states_new(c.cfg) < 0) {
        oom(&c);
        goto fail;
    }
    if (c.cfg->workers == 0)
        c.cfg->workers = cpu_count();
    json_decref(root);
    free(c.dir);
    return c.cfg;
fail:
    json_decref(root);
    free(c.dir);
    fg_config_free(c.cfg);
    return NULL;
}

struct fg_config *fg_config_load(const char *path, char **err)
{
    return fg_config_load_dns(path, NULL, err);
}

struct fg_config *fg_config_load_dns(const char *path, const struct fg_dns_answers *dns, char **err)
{
    struct fg_config *cfg;
    char *text;
    size_t len;

    *err = NULL;
    if (load_text(path, &text, &len, err) < 0)
        return NULL;
    cfg = fg_config_parse_dns(text, len, path, dns, err);
    free(text);
    return cfg;
}

void fg_client_cfg_defaults(struct fg_client_cfg *cc)
{
    set_defaults(client_fields, cc);
}

struct fg_config *fg_config_ref(struct fg_config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void fg_config_unref(struct fg_config *cfg)
{
    if (cfg && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        fg_config_free(cfg);
}

void fg_config_free(struct fg_config *cfg)
{
    if (!cfg)
        return;
    fg_config_states_free(cfg);
    fg_cw_free_access(cfg);
    fg_cw_free_dns(cfg);
    free(cfg->log.access);
    free(cfg->source);
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        struct fg_tls_cfg *tls = cfg->listeners[i].tls;
        if (tls) {
            free(tls->certificate);
            free(tls->key);
            free(tls);
        }
    }
    free(cfg->listeners);
    for (unsigned i = 0; i < cfg->nupstreams; i++) {
        free(cfg->upstreams[i].health.path);
        free(cfg->upstreams[i].health.body_contains);
        free(cfg->upstreams[i].name);
        free(cfg->upstreams[i].backends);
    }
    free(cfg->upstreams);
    for (unsigned i = 0; i < cfg->nroutes; i++) {
        struct fg_route *r = &cfg->routes[i];
        free(r->path_prefix);
        free(r->path);
        free(r->host);
        for (unsigned j = 0; j < r->nmethods; j++)
            free(r->methods[j]);
        free(r->methods);
        for (unsigned j = 0; j < r->nheaders; j++) {
            free(r->headers[j].name);
            free(r->headers[j].value);
        }
        free(r->headers);
        for (unsigned j = 0; j < r->nquery; j++) {
            free(r->query[j].name);
            free(r->query[j].value);
        }
        free(r->query);
        free(r->model);
        free(r->upstream_header);
        free(r->rewrite_prefix);
        free(r->rewrite_model);
        for (unsigned j = 0; j < r->nrules; j++) {
            struct fg_rule *u = &r->rules[j];
            struct fg_match_kv *lists[] = {u->headers, u->cookies, u->query};
            unsigned counts[] = {u->nheaders, u->ncookies, u->nquery};
            for (unsigned k = 0; k < 3; k++) {
                for (unsigned m = 0; m < counts[k]; m++) {
                    free(lists[k][m].name);
                    free(lists[k][m].value);
                }
                free(lists[k]);
            }
            free(u->nets);
        }
        free(r->rules);
        if (r->split) {
            free(r->split->sticky_name);
            free(r->split->arms);
            free(r->split);
        }
    }
    free(cfg->routes);
    free(cfg->path);
    free(cfg);
}
