/* DNS discovery in the configuration: the "dns" object, backends with
 * "discovery": "dns" (one backend per address their name stood for when the
 * configuration was built), and those answers (fg/dns_discovery.h resolves
 * the names again at run time and builds the configuration anew when an
 * answer changes). */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config-walk.h"
#include "fg/config.h"

/* ---- "dns" ----------------------------------------------------------------- */

static int set_nameservers(struct ctx *c, json_t *v, void *base)
{
    struct fg_dns_cfg *d = base;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;

    if (!json_is_array(v) || n == 0 || n > 8)
        return fail(c, AT_VALUE, "must be an array of 1 to 8 \"IP\" or \"IP:PORT\" strings");
    if (!(d->nameservers = calloc(n, sizeof(*d->nameservers))))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        const char *s = json_is_string(e) ? json_string_value(e) : NULL;
        struct fg_addr a;
        const char *why = NULL;
        char buf[80];
        push_index(c, i);
        /* an address, with or without a port: never a name (who would
         * resolve it?) */
        if (!s || !*s || strlen(s) >= sizeof(buf) - 8)
            return fail(c, AT_VALUE, "must be \"IP\" or \"IP:PORT\"");
        unsigned char tmp[16];
        if (s[0] == '[')
            snprintf(buf, sizeof(buf), "%s", s);
        else if (inet_pton(AF_INET6, s, tmp) == 1)
            snprintf(buf, sizeof(buf), "[%s]:53", s);
        else if (inet_pton(AF_INET, s, tmp) == 1)
            snprintf(buf, sizeof(buf), "%s:53", s);
        else if (strspn(s, "0123456789.:") == strlen(s))
            snprintf(buf, sizeof(buf), "%s", s);
        else
            return fail(c, AT_VALUE, "must be \"IP\" or \"IP:PORT\" (not a host name)");
        if (fg_addr_parse(buf, &a, &why) < 0)
            return fail(c, AT_VALUE, "must be \"IP\" or \"IP:PORT\": %s", why);
        if (!(d->nameservers[d->nnameservers++] = strdup(a.text)))
            return oom(c);
        pop(c);
    }
    return 0;
}

static const struct field dns_fields[] = {
    {.key = "nameservers", .type = FT_FN, .fn = set_nameservers},
    UINT(struct fg_dns_cfg, min_ttl_ms, 100, TIMEOUT_MAX, 1000),
    UINT(struct fg_dns_cfg, max_ttl_ms, 100, TIMEOUT_MAX, 30000),
    UINT(struct fg_dns_cfg, timeout_ms, 10, 60000, 2000),
    {0},
};

int fg_cw_set_dns(struct ctx *c, json_t *v, void *base)
{
    struct fg_config *cfg = base;

    if (!json_is_object(v))
        return fail(c, AT_VALUE, "must be an object (nameservers, min_ttl_ms, max_ttl_ms, timeout_ms)");
    if (walk(c, v, dns_fields, &cfg->dns) < 0)
        return -1;
    if (cfg->dns.min_ttl_ms > cfg->dns.max_ttl_ms) {
        push_key(c, "min_ttl_ms");
        return fail(c, AT_VALUE, "must not be above max_ttl_ms (%u)", cfg->dns.max_ttl_ms);
    }
    return 0;
}

void fg_cw_dns_defaults(struct fg_config *cfg)
{
    set_defaults(dns_fields, &cfg->dns);
}

/* ---- backends found by name ------------------------------------------------- */

/* "host:port" with a host name (not an address: there is nothing to
 * discover about one). */
int fg_cw_dns_name_valid(const char *s, const char **why)
{
    const char *colon = strrchr(s, ':');
    size_t hlen = colon ? (size_t)(colon - s) : 0, plen;
    unsigned long port;

    if (!colon || hlen == 0)
        return *why = "must be \"HOST:PORT\" with a host name", 0;
    if (hlen > 253 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != hlen)
        return *why = "\"discovery\": \"dns\" needs \"HOST:PORT\" with a host name", 0;
    if (strspn(s, "0123456789.") == hlen)
        return *why = "\"discovery\": \"dns\" needs a host name, not an address", 0;
    plen = strspn(colon + 1, "0123456789");
    port = plen && plen <= 5 && colon[1 + plen] == '\0' ? strtoul(colon + 1, NULL, 10) : 0;
    if (port < 1 || port > 65535)
        return *why = "the port must be an integer in 1..65535", 0;
    return 1;
}

/* The configuration's answer for <name>, made (empty, or what <known> says)
 * on first use. NULL out of memory. */
struct fg_dns_answer *fg_cw_dns_answer(struct fg_config *cfg, const struct fg_dns_answers *known,
                                       const char *name)
{
    struct fg_dns_answers *as = &cfg->dns_answers;
    struct fg_dns_answer *a, *grown;

    for (unsigned i = 0; i < as->n; i++)
        if (strcmp(as->a[i].name, name) == 0)
            return &as->a[i];
    if (!(grown = realloc(as->a, (as->n + 1) * sizeof(*as->a))))
        return NULL;
    as->a = grown;
    a = &as->a[as->n];
    memset(a, 0, sizeof(*a));
    if (!(a->name = strdup(name)))
        return NULL;
    as->n++;
    for (unsigned i = 0; known && i < known->n; i++) {
        if (strcmp(known->a[i].name, name) != 0)
            continue;
        if (!known->a[i].naddrs)
            break;                      /* none (and no NULL to memcpy) */
        if (!(a->addrs = malloc(known->a[i].naddrs * sizeof(*a->addrs))))
            return NULL;
        memcpy(a->addrs, known->a[i].addrs, known->a[i].naddrs * sizeof(*a->addrs));
        a->naddrs = known->a[i].naddrs;
        break;
    }
    return a;
}

void fg_dns_answers_free(struct fg_dns_answers *as)
{
    for (unsigned i = 0; i < as->n; i++) {
        free(as->a[i].name);
        free(as->a[i].addrs);
    }
    free(as->a);
    as->a = NULL;
    as->n = 0;
}

void fg_cw_free_dns(struct fg_config *cfg)
{
    for (unsigned i = 0; i < cfg->dns.nnameservers; i++)
        free(cfg->dns.nameservers[i]);
    free(cfg->dns.nameservers);
    fg_dns_answers_free(&cfg->dns_answers);
}
