/* The access-control and geography parts of the configuration (docs/configuration.md
 * "Access", "GeoIP", route "name", "auth", "limits", "upstream_headers",
 * rule conditions on keys and geography, "trusted_proxies") and the key
 * file, which has the same "keys" as the configuration. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config-walk.h"
#include "fg/config_state.h"
#include "fg/geoip.h"
#include "fg/keygen.h"

/* ---- limits -------------------------------------------------------------- */

static const struct field limit_fields[] = {
    U64(struct fg_limit_cfg, rps, 0, 1000000000, 0),
    U64(struct fg_limit_cfg, burst, 0, 1000000000, 0),
    UINT(struct fg_limit_cfg, concurrency, 0, 10000000, 0),
    U64(struct fg_limit_cfg, tokens_per_minute, 0, 1000000000000LL, 0),
    {0},
};

/* A "limits" object at the current path into <l>, its rates derived. */
static int set_limits_obj(struct ctx *c, json_t *v, struct fg_limit_cfg *l)
{
    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (rps, burst, concurrency, tokens_per_minute)");
    if (walk(c, v, limit_fields, l) < 0)
        return -1;
    if (l->burst && !l->rps) {
        push_key(c, "burst");
        return fail(c, AT_VALUE, "needs \"rps\"");
    }
    if (l->rps)
        fg_rate_cfg_init(&l->rps_rate, l->rps, 1000000000ull, l->burst ? l->burst : l->rps);
    /* a minute's worth at once: the limit is per minute, not per second */
    if (l->tokens_per_minute)
        fg_rate_cfg_init(&l->tpm_rate, l->tokens_per_minute, 60000000000ull, l->tokens_per_minute);
    return 0;
}

int fg_cw_set_route_limits(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;

    if (!(r->limits = calloc(1, sizeof(*r->limits))) ||
        !(r->limit_shared = fg_limit_shared_new()))
        return oom(c);
    r->limit_state = &r->limit_shared->s;
    return set_limits_obj(c, v, r->limits);
}

/* ---- routes -------------------------------------------------------------- */

static int name_ok(const char *s)
{
    return s && fg_key_name_valid(s);
}

int fg_cw_set_route_name(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;

    if (!name_ok(s))
        return fail(c, AT_VALUE, "must be 1 to %d of A-Z a-z 0-9 - _ .", FG_KEY_NAME_MAX);
    for (struct fg_route *o = c->cfg->routes; o < r; o++)
        if (o->name && strcmp(o->name, s) == 0)
            return fail(c, AT_VALUE, "route name \"%s\" is also $.routes[%zu]'s", s,
                        (size_t)(o - c->cfg->routes));
    if (!(r->name = strdup(s)))
        return oom(c);
    return 0;
}

int fg_cw_set_route_auth(struct ctx *c, json_t *v, void *base)
{
    static const char *const names[] = {"key", "open", NULL};
    struct fg_route *r = base;
    const char *s = json_is_string(v) ? json_string_value(v) : "";

    if (strcmp(s, "key") == 0)
        r->auth = FG_ROUTE_AUTH_KEY;
    else if (strcmp(s, "open") == 0)
        r->auth = FG_ROUTE_AUTH_OPEN;
    else
        return fail_enum(c, names);
    return 0;
}

int fg_cw_set_upstream_headers(struct ctx *c, json_t *v, void *base)
{
    struct fg_route *r = base;

    if (set_kv(c, v, &r->set_headers, &r->nset_headers, 1) < 0)
        return -1;
    for (unsigned i = 0; i < r->nset_headers; i++) {
        const char *n = r->set_headers[i].name;
        /* the gateway writes these itself */
        if (!strcmp(n, "host") || !strcmp(n, "content-length") || !strcmp(n, "transfer-encoding") ||
            !strcmp(n, "connection") || !strcmp(n, "x-forwarded-for") ||
            !strcmp(n, "x-forwarded-proto") || !strcmp(n, "x-request-id")) {
            push_key(c, n);
            return fail(c, AT_KEY, "is set by the gateway itself");
        }
        for (const char *p = r->set_headers[i].value; *p; p++)
            if ((unsigned char)*p < 0x20 && *p != '\t') {
                push_key(c, n);
                return fail(c, AT_VALUE, "must not contain control characters");
            }
    }
    return 0;
}

/* ---- rule conditions ------------------------------------------------------ */

static int string_list(struct ctx *c, json_t *e, const char *what, int (*ok)(const char *),
                       char ***out, unsigned *n)
{
    size_t count = json_is_array(e) ? json_array_size(e) : 0;

    if (count == 0)
        return fail(c, AT_VALUE, "must be a non-empty array of %s", what);
    if (!(*out = calloc(count, sizeof(**out))))
        return oom(c);
    for (size_t i = 0; i < count; i++) {
        json_t *a = json_array_get(e, i);
        push_index(c, i);
        if (!json_is_string(a) || !ok(json_string_value(a)))
            return fail(c, AT_VALUE, "must be %s", what);
        if (!((*out)[i] = strdup(json_string_value(a))))
            return oom(c);
        (*n)++;
        pop(c);
    }
    return 0;
}

/* Two upper-case letters (ISO 3166-1 alpha-2 or a continent code), or
 * "unknown" for an address the database does not know. */
static int code_list(struct ctx *c, json_t *e, const char *what, char (**out)[3], unsigned *n)
{
    size_t count = json_is_array(e) ? json_array_size(e) : 0;

    if (count == 0)
        return fail(c, AT_VALUE, "must be a non-empty array of %s", what);
    if (!(*out = calloc(count, sizeof(**out))))
        return oom(c);
    for (size_t i = 0; i < count; i++) {
        json_t *a = json_array_get(e, i);
        const char *s = json_is_string(a) ? json_string_value(a) : "";
        push_index(c, i);
        if (strcmp(s, "unknown") == 0) {
            (*out)[i][0] = '\0';
        } else if (strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z') {
            memcpy((*out)[i], s, 3);
        } else {
            return fail(c, AT_VALUE, "must be two upper-case letters (%s) or \"unknown\"", what);
        }
        (*n)++;
        pop(c);
    }
    return 0;
}

int fg_cw_set_rule_access(struct ctx *c, json_t *v, struct fg_rule *r, int *conditions)
{
    json_t *e;

    if ((e = json_object_get(v, "country"))) {
        push_key(c, "country");
        if (!c->cfg->geoip)
            return fail(c, AT_KEY, "needs \"geoip\" (a database to find countries in)");
        if (code_list(c, e, "ISO country codes", &r->countries, &r->ncountries) < 0)
            return -1;
        pop(c);
        (*conditions)++;
    }
    if ((e = json_object_get(v, "continent"))) {
        push_key(c, "continent");
        if (!c->cfg->geoip)
            return fail(c, AT_KEY, "needs \"geoip\" (a database to find continents in)");
        if (code_list(c, e, "continent codes: AF AN AS EU NA OC SA", &r->continents,
                      &r->ncontinents) < 0)
            return -1;
        pop(c);
        (*conditions)++;
    }
    if ((e = json_object_get(v, "asn"))) {
        size_t count = json_is_array(e) ? json_array_size(e) : 0;
        push_key(c, "asn");
        if (!c->cfg->geoip)
            return fail(c, AT_KEY, "needs \"geoip\" (a database to find AS numbers in)");
        if (count == 0)
            return fail(c, AT_VALUE, "must be a non-empty array of AS numbers");
        if (!(r->asns = calloc(count, sizeof(*r->asns))))
            return oom(c);
        for (size_t i = 0; i < count; i++) {
            json_t *a = json_array_get(e, i);
            push_index(c, i);
            if (!json_is_integer(a) || json_integer_value(a) < 1 ||
                json_integer_value(a) > 4294967295LL)
                return fail(c, AT_VALUE, "must be an AS number in 1..4294967295");
            r->asns[r->nasns++] = (uint32_t)json_integer_value(a);
            pop(c);
        }
        pop(c);
        (*conditions)++;
    }
    if ((e = json_object_get(v, "key"))) {
        push_key(c, "key");
        if (string_list(c, e, "API key names", name_ok, &r->keys, &r->nkeys) < 0)
            return -1;
        pop(c);
        (*conditions)++;
    }
    return 0;
}

/* ---- trusted proxies, PROXY protocol ---------------------------------------- */

int fg_cw_set_trusted_proxies(struct ctx *c, json_t *v, void *base)
{
    struct fg_client_cfg *cc = base;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;

    if (!json_is_array(v))
        return fail(c, AT_VALUE, "must be an array of addresses or CIDR blocks");
    if (n && !(cc->trusted_proxies = calloc(n, sizeof(*cc->trusted_proxies))))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(v, i);
        push_index(c, i);
        if (!json_is_string(a) || parse_cidr(json_string_value(a), &cc->trusted_proxies[i]) < 0)
            return fail(c, AT_VALUE, "must be an address or CIDR block (\"10.0.0.0/8\", "
                                     "\"::1\"), host bits 0");
        cc->ntrusted_proxies++;
        pop(c);
    }
    return 0;
}

int fg_cw_set_proxy_protocol(struct ctx *c, json_t *v, void *base)
{
    struct fg_listener_cfg *l = base;

    if (!json_is_boolean(v))
        return fail(c, AT_VALUE, "must be true or false");
    l->proxy_protocol = json_is_true(v);
    return 0;
}

int fg_cw_check_after(struct ctx *c)
{
    const struct fg_config *cfg = c->cfg;

    /* what names keys needs keys: without "access" it would silently never
     * hold (a rule) or never be enforced (a route) */
    for (unsigned i = 0; !cfg->access && i < cfg->nroutes; i++) {
        const struct fg_route *r = &cfg->routes[i];
        if (r->auth == FG_ROUTE_AUTH_KEY) {
            push_key(c, "routes");
            push_index(c, i);
            push_key(c, "auth");
            return fail(c, AT_VALUE, "\"key\" needs $.access (the keys)");
        }
        for (unsigned j = 0; j < r->nrules; j++) {
            if (!r->rules[j].nkeys)
                continue;
            push_key(c, "routes");
            push_index(c, i);
            push_key(c, "rules");
            push_index(c, j);
            push_key(c, "key");
            return fail(c, AT_VALUE, "needs $.access (the keys it names)");
        }
    }
    if (cfg->client.ntrusted_proxies)
        return 0;
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        if (!cfg->listeners[i].proxy_protocol)
            continue;
        push_key(c, "listeners");
        push_index(c, i);
        push_key(c, "proxy_protocol");
        return fail(c, AT_VALUE, "needs $.client.trusted_proxies: the peers whose PROXY header "
                                 "is believed");
    }
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

/* "2027-01-31T00:00:00Z" (UTC, RFC 3339 without fractions) or Unix seconds. */
static int parse_expiry(json_t *v, int64_t *out)
{
    struct tm tm;
    const char *s, *end;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 1)
            return -1;
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    memset(&tm, 0, sizeof(tm));
    if (strlen(s) != 20 || !(end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *end)
        return -1;
    *out = (int64_t)timegm(&tm);
    return *out > 0 ? 0 : -1;
}

static int model_ok(const char *s)
{
    /* compared with the body's raw bytes: no escapes, no quotes */
    return *s && !strpbrk(s, "/? \t\\\"");
}

/* One key object at the current path into <k>. */
static int set_key(struct ctx *c, json_t *v, struct fg_api_key *k)
{
    static const char *const keys[] = {"name", "sha256", "expires", "routes", "models", "limits",
                                       NULL};
    json_t *e;
    const char *s;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object: {\"name\", \"sha256\", ...} "
                                 "(fleetgate keygen NAME prints one)");
    if (only_keys(c, v, keys) < 0)
        return -1;
    if (!(e = json_object_get(v, "name")))
        return fail(c, AT_VALUE, "missing required key \"name\"");
    push_key(c, "name");
    if (!name_ok(json_is_string(e) ? json_string_value(e) : NULL))
        return fail(c, AT_VALUE, "must be 1 to %d of A-Z a-z 0-9 - _ .", FG_KEY_NAME_MAX);
    if (!(k->name = strdup(json_string_value(e))))
        return oom(c);
    pop(c);
    if (!(e = json_object_get(v, "sha256")))
        return fail(c, AT_VALUE, "missing required key \"sha256\"");
    push_key(c, "sha256");
    s = json_is_string(e) ? json_string_value(e) : "";
    if (fg_sha256_parse(s, k->sha256) < 0)
        return fail(c, AT_VALUE, "must be 64 hex digits: the SHA-256 of the key "
                                 "(never the key itself)");
    pop(c);
    if ((e = json_object_get(v, "expires"))) {
        push_key(c, "expires");
        if (parse_expiry(e, &k->expires) < 0)
            return fail(c, AT_VALUE, "must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\" or Unix seconds");
        pop(c);
    }
    if ((e = json_object_get(v, "routes"))) {
        push_key(c, "routes");
        if (string_list(c, e, "route names", name_ok, &k->routes, &k->nroutes) < 0)
            return -1;
        for (unsigned i = 0; i < k->nroutes; i++) {
            unsigned j = 0;
            while (j < c->cfg->nroutes &&
                   !(c->cfg->routes[j].name && strcmp(c->cfg->routes[j].name, k->routes[i]) == 0))
                j++;
            if (j == c->cfg->nroutes) {
                push_index(c, i);
                return fail(c, AT_VALUE, "no route is named \"%s\"", k->routes[i]);
            }
        }
        pop(c);
    }
    if ((e = json_object_get(v, "models"))) {
        push_key(c, "models");
        if (string_list(c, e, "model names (no '/', '?', '\\', '\"' or spaces)", model_ok, &k->models,
                        &k->nmodels) < 0)
            return -1;
        pop(c);
    }
    if ((e = json_object_get(v, "limits"))) {
        push_key(c, "limits");
        if (set_limits_obj(c, e, &k->limits) < 0)
            return -1;
        pop(c);
    }
    return 0;
}

static int set_keys(struct ctx *c, json_t *v, struct fg_api_key **out, unsigned *n)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 0;

    if (!json_is_array(v))
        return fail(c, AT_VALUE, "must be an array of keys");
    if (count && !(*out = calloc(count, sizeof(**out))))
        return oom(c);
    for (size_t i = 0; i < count; i++) {
        struct fg_api_key *k = &(*out)[i];
        push_index(c, i);
        (*n)++;                 /* counted first: freed whatever happens */
        if (set_key(c, json_array_get(v, i), k) < 0)
            return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp((*out)[j].name, k->name) == 0) {
                push_key(c, "name");
                return fail(c, AT_VALUE, "key name \"%s\" is also [%zu]'s", k->name, j);
            }
            if (memcmp((*out)[j].sha256, k->sha256, 32) == 0) {
                push_key(c, "sha256");
                return fail(c, AT_VALUE, "the same sha256 as [%zu] (\"%s\")", j, (*out)[j].name);
            }
        }
        pop(c);
    }
    return 0;
}

static int set_access_keys(struct ctx *c, json_t *v, void *base)
{
    struct fg_access_cfg *ac = base;
    return set_keys(c, v, &ac->keys, &ac->nkeys);
}

static int set_access_limits(struct ctx *c, json_t *v, void *base)
{
    struct fg_access_cfg *ac = base;
    return set_limits_obj(c, v, &ac->limits);
}

static const struct field access_fields[] = {
    {.key = "keys", .type = FT_FN, .fn = set_access_keys},
    {.key = "key_file", .type = FT_FILE, .offset = OFF(struct fg_access_cfg, key_file, char *)},
    UINT(struct fg_access_cfg, key_file_check_ms, 100, 3600000, 1000),
    {.key = "limits", .type = FT_FN, .fn = set_access_limits},
    {0},
};

int fg_cw_set_access(struct ctx *c, json_t *v, void *base)
{
    struct fg_config *cfg = base;
    struct fg_access_cfg *ac;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (keys, key_file, limits)");
    if (!(cfg->access = ac = calloc(1, sizeof(*ac))) ||
        !(ac->global_shared = fg_limit_shared_new()))
        return oom(c);
    ac->global = &ac->global_shared->s;
    if (walk(c, v, access_fields, ac) < 0)
        return -1;
    if (!ac->nkeys && !ac->key_file)
        return fail(c, AT_VALUE, "needs \"keys\" or \"key_file\" (or leave \"access\" out: "
                                 "every route open)");
    return 0;
}

/* ---- geoip --------------------------------------------------------------- */

static int header_name(struct ctx *c, json_t *v, char **out)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "";

    if (!is_token(s))
        return fail(c, AT_VALUE, "must be a header name");
    if (!(*out = strdup(s)))
        return oom(c);
    for (char *p = *out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

int fg_cw_set_geoip(struct ctx *c, json_t *v, void *base)
{
    static const char *const keys[] = {"database", "asn_database", "headers", NULL};
    static const char *const hkeys[] = {"country", "continent", "asn", NULL};
    struct fg_config *cfg = base;
    struct fg_geoip_cfg *g;
    json_t *e, *h;
    char *err = NULL;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (database, asn_database, headers)");
    if (only_keys(c, v, keys) < 0)
        return -1;
    if (!(cfg->geoip = g = calloc(1, sizeof(*g))))
        return oom(c);
    if (!(e = json_object_get(v, "database")))
        return fail(c, AT_VALUE, "missing required key \"database\"");
    push_key(c, "database");
    if (set_file(c, e, &g->database) < 0)
        return -1;
    pop(c);
    if ((e = json_object_get(v, "asn_database"))) {
        push_key(c, "asn_database");
        if (set_file(c, e, &g->asn_database) < 0)
            return -1;
        pop(c);
    }
    if ((h = json_object_get(v, "headers"))) {
        push_key(c, "headers");
        if (!json_is_object(h))
            return fail(c, AT_VALUE, "must be an object: {\"country\", \"continent\", \"asn\"} "
                                     "to header names");
        if (only_keys(c, h, hkeys) < 0)
            return -1;
        char **dst[] = {&g->country_header, &g->continent_header, &g->asn_header};
        for (int i = 0; i < 3; i++) {
            if (!(e = json_object_get(h, hkeys[i])))
                continue;
            push_key(c, hkeys[i]);
            if (header_name(c, e, dst[i]) < 0)
                return -1;
            pop(c);
        }
        pop(c);
    }
    /* opened now, so that -t and start-up both say what is wrong with it */
    if (!(cfg->geoip_db = fg_geoip_open(g->database, g->asn_database, &err))) {
        push_key(c, err && g->asn_database && strstr(err, g->asn_database) ? "asn_database"
                                                                           : "database");
        fail(c, AT_VALUE, "%s", err ? err : "out of memory");
        free(err);
        return -1;
    }
    return 0;
}

/* ---- the key file ------------------------------------------------------------ */

int fg_key_file_load(const struct fg_config *cfg, const char *path, struct fg_api_key **keys,
                     unsigned *n, char **err)
{
    struct ctx c = {.name = path, .cfg = (struct fg_config *)cfg, .err = err};
    json_error_t je;
    json_t *root = NULL, *v;
    char *text = NULL;
    size_t len;
    int rc = -1;

    *err = NULL;
    *keys = NULL;
    *n = 0;
    if (load_text(path, &text, &len, err) < 0)
        return -1;
    c.text = text;
    c.len = len;
    if (!(root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je))) {
        parse_error(&c, &je);
        goto out;
    }
    if (!json_is_object(root)) {
        fail(&c, AT_VALUE, "must be an object: {\"keys\": [...]}");
        goto out;
    }
    if (only_keys(&c, root, (const char *const[]){"keys", NULL}) < 0)
        goto out;
    if (!(v = json_object_get(root, "keys"))) {
        fail(&c, AT_VALUE, "missing required key \"keys\"");
        goto out;
    }
    push_key(&c, "keys");
    if (set_keys(&c, v, keys, n) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0) {
        fg_api_keys_free(*keys, *n);
        *keys = NULL;
        *n = 0;
        if (!*err)
            *err = format("%s: out of memory", path);
    }
    json_decref(root);
    free(text);
    free(c.dir);
    return rc;
}

/* ---- freeing --------------------------------------------------------------- */

void fg_api_keys_free(struct fg_api_key *keys, unsigned n)
{
    for (unsigned i = 0; keys && i < n; i++) {
        free(keys[i].name);
        for (unsigned j = 0; j < keys[i].nroutes; j++)
            free(keys[i].routes[j]);
        free(keys[i].routes);
        for (unsigned j = 0; j < keys[i].nmodels; j++)
            free(keys[i].models[j]);
        free(keys[i].models);
    }
    free(keys);
}

void fg_cw_free_access(struct fg_config *cfg)
{
    if (cfg->access) {
        fg_api_keys_free(cfg->access->keys, cfg->access->nkeys);
        free(cfg->access->key_file);
        free(cfg->access);
    }
    if (cfg->geoip) {
        free(cfg->geoip->database);
        free(cfg->geoip->asn_database);
        free(cfg->geoip->country_header);
        free(cfg->geoip->continent_header);
        free(cfg->geoip->asn_header);
        free(cfg->geoip);
    }
    fg_geoip_close(cfg->geoip_db);
    free(cfg->client.trusted_proxies);
    for (unsigned i = 0; i < cfg->nroutes; i++) {
        struct fg_route *r = &cfg->routes[i];
        free(r->name);
        free(r->limits);
        for (unsigned j = 0; j < r->nset_headers; j++) {
            free(r->set_headers[j].name);
            free(r->set_headers[j].value);
        }
        free(r->set_headers);
        for (unsigned j = 0; j < r->nrules; j++) {
            struct fg_rule *u = &r->rules[j];
            free(u->countries);
            free(u->continents);
            free(u->asns);
            for (unsigned k = 0; k < u->nkeys; k++)
                free(u->keys[k]);
            free(u->keys);
        }
    }
}
