/* DNS discovery (fg/dns_discovery.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "fg/config.h"
#include "fg/dns_discovery.h"
#include "fg/log.h"
#include "fg/reload.h"

#define IDLE_CHECK_MS 1000              /* no name to follow: look again this often */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- one round of lookups ----------------------------------------------------
 *
 * A round asks A and AAAA for each name due, on its own evdns base (the
 * "dns" settings may change with any reload), and ends when every answer is
 * in. */

struct lookup {
    struct round *r;
    const char *name;                   /* "host:port" */
    char host[256];
    unsigned port;
    int pending;                        /* queries not answered yet */
    int failed;                         /* a query failed (not "no such name") */
    uint32_t ttl;                       /* the smallest, seconds */
    struct fg_addr *addrs;
    unsigned naddrs, cap;
};

struct round {
    struct event_base *base;
    struct evdns_base *dns;
    struct lookup *l;
    unsigned n;
    int pending;
    int once;                           /* fg_dns_resolve_now(): break the loop when done */
    void (*done)(struct round *r, void *arg);
    void *arg;
};

static int add_addr(struct lookup *l, int family, const void *a)
{
    char ip[INET6_ADDRSTRLEN];
    struct fg_addr *fa;

    if (l->naddrs == l->cap) {
        unsigned cap = l->cap ? l->cap * 2 : 8;
        struct fg_addr *n = realloc(l->addrs, cap * sizeof(*n));
        if (!n)
            return -1;
        l->addrs = n;
        l->cap = cap;
    }
    fa = &l->addrs[l->naddrs];
    memset(fa, 0, sizeof(*fa));
    inet_ntop(family, a, ip, sizeof(ip));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&fa->ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)l->port);
        memcpy(&sin->sin_addr, a, 4);
        fa->len = sizeof(*sin);
        snprintf(fa->text, sizeof(fa->text), "%s:%u", ip, l->port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&fa->ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)l->port);
        memcpy(&sin6->sin6_addr, a, 16);
        fa->len = sizeof(*sin6);
        snprintf(fa->text, sizeof(fa->text), "[%s]:%u", ip, l->port);
    }
    l->naddrs++;
    return 0;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(((const struct fg_addr *)a)->text, ((const struct fg_addr *)b)->text);
}

static void answered(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct lookup *l = arg;
    struct round *r = l->r;

    if (result == DNS_ERR_NONE) {
        for (int i = 0; i < count; i++)
            if (add_addr(l, type == DNS_IPv4_A ? AF_INET : AF_INET6,
                         (const char *)addresses + (size_t)i * (type == DNS_IPv4_A ? 4 : 16)) < 0)
                l->failed = 1;
        if (count > 0 && (uint32_t)ttl < l->ttl)
            l->ttl = (uint32_t)ttl;
    } else if (result != DNS_ERR_NOTEXIST && result != DNS_ERR_NODATA) {
        /* timeout, server failure, shut down: we do not know */
        l->failed = 1;
        fg_log_warn("dns: %s: %s", l->host, evdns_err_to_string(result));
    }
    if (--l->pending == 0) {
        /* sorted, without duplicates: answers compare as sets */
        if (l->naddrs)                  /* qsort() must not see NULL */
            qsort(l->addrs, l->naddrs, sizeof(*l->addrs), by_text);
        unsigned k = 0;
        for (unsigned i = 0; i < l->naddrs; i++)
            if (!k || strcmp(l->addrs[k - 1].text, l->addrs[i].text) != 0)
                l->addrs[k++] = l->addrs[i];
        l->naddrs = k;
    }
    if (--r->pending == 0) {
        if (r->done)
            r->done(r, r->arg);
        if (r->once)
            event_base_loopbreak(r->base);
    }
}

static int split_name(const char *name, char *host, size_t size, unsigned *port)
{
    const char *colon = strrchr(name, ':');
    size_t hlen = colon ? (size_t)(colon - name) : 0;

    if (!colon || hlen == 0 || hlen >= size)
        return -1;
    memcpy(host, name, hlen);
    host[hlen] = '\0';
    *port = (unsigned)strtoul(colon + 1, NULL, 10);
    return 0;
}

static struct evdns_base *dns_base(struct event_base *base, const struct fg_dns_cfg *dc)
{
    struct evdns_base *dns;
    char timeout[32];

    if (dc->nnameservers) {
        if (!(dns = evdns_base_new(base, 0)))
            return NULL;
        for (unsigned i = 0; i < dc->nnameservers; i++) {
            /* "[::1]:53" -> evdns takes it with the brackets */
            if (evdns_base_nameserver_ip_add(dns, dc->nameservers[i]) != 0)
                fg_log_warn("dns: nameserver %s not usable", dc->nameservers[i]);
        }
    } else if (!(dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS))) {
        return NULL;
    }
    snprintf(timeout, sizeof(timeout), "%.3f", dc->timeout_ms / 1000.0);
    evdns_base_set_option(dns, "timeout:", timeout);
    evdns_base_set_option(dns, "attempts:", "2");
    return dns;
}

/* Starts a round for the names of <cfg> for which due(name) holds (all when
 * NULL). 0 when it started, 1 when nothing was due, -1 on error. */
static int round_start(struct round *r, struct event_base *base, const struct fg_config *cfg,
                       int (*due)(const char *name, void *arg), void *arg, int once,
                       void (*done)(struct round *r, void *arg))
{
    memset(r, 0, sizeof(*r));
    r->base = base;
    r->once = once;
    r->done = done;
    r->arg = arg;
    if (!(r->l = calloc(cfg->dns_answers.n ? cfg->dns_answers.n : 1, sizeof(*r->l))))
        return -1;
    for (unsigned i = 0; i < cfg->dns_answers.n; i++) {
        const char *name = cfg->dns_answers.a[i].name;
        struct lookup *l = &r->l[r->n];
        if (due && !due(name, arg))
            continue;
        if (split_name(name, l->host, sizeof(l->host), &l->port) < 0)
            continue;
        l->r = r;
        l->name = name;
        l->ttl = UINT32_MAX;
        r->n++;
    }
    if (!r->n)
        return 1;
    if (!(r->dns = dns_base(base, &cfg->dns)))
        return -1;
    if (evdns_base_count_nameservers(r->dns) == 0) {
        /* no query would ever be answered, nor time out */
        fg_log_error("dns: no usable nameserver (dns.nameservers, /etc/resolv.conf): the "
                     "backends found by name keep the addresses known");
        return -1;
    }
    /* every query counted before any is sent: an answer may come at once */
    r->pending = 2 * (int)r->n;
    for (unsigned i = 0; i < r->n; i++) {
        struct lookup *l = &r->l[i];
        l->pending = 2;
        if (!evdns_base_resolve_ipv4(r->dns, l->host, 0, answered, l))
            answered(DNS_ERR_UNKNOWN, DNS_IPv4_A, 0, 0, NULL, l);
        if (!evdns_base_resolve_ipv6(r->dns, l->host, 0, answered, l))
            answered(DNS_ERR_UNKNOWN, DNS_IPv6_AAAA, 0, 0, NULL, l);
    }
    return 0;
}

static void round_free(struct round *r)
{
    for (unsigned i = 0; r->l && i < r->n; i++)
        free(r->l[i].addrs);
    free(r->l);
    r->l = NULL;
    r->n = 0;
    if (r->dns)
        evdns_base_free(r->dns, 0);
    r->dns = NULL;
}

/* <cfg>'s answers, with the round's where it got one. */
static int merge(const struct fg_config *cfg, const struct round *r, struct fg_dns_answers *out)
{
    const struct fg_dns_answers *known = &cfg->dns_answers;

    out->n = 0;
    if (!(out->a = calloc(known->n ? known->n : 1, sizeof(*out->a))))
        return -1;
    for (unsigned i = 0; i < known->n; i++) {
        const struct fg_addr *addrs = known->a[i].addrs;
        unsigned n = known->a[i].naddrs;
        struct fg_dns_answer *a = &out->a[out->n++];
        for (unsigned j = 0; r && j < r->n; j++)
            if (r->l[j].name == known->a[i].name && !r->l[j].failed && !r->l[j].pending) {
                addrs = r->l[j].addrs;
                n = r->l[j].naddrs;
            }
        if (!(a->name = strdup(known->a[i].name)) ||
            (n && !(a->addrs = malloc(n * sizeof(*a->addrs)))))
            return -1;
        if (n)
            memcpy(a->addrs, addrs, n * sizeof(*addrs));
        a->naddrs = n;
    }
    return 0;
}

int fg_dns_answers_same(const struct fg_dns_answers *a, const struct fg_dns_answers *b)
{
    for (unsigned i = 0; i < a->n; i++) {
        unsigned j = 0;
        while (j < b->n && strcmp(a->a[i].name, b->a[j].name) != 0)
            j++;
        if (j == b->n || a->a[i].naddrs != b->a[j].naddrs)
            return 0;
        for (unsigned k = 0; k < a->a[i].naddrs; k++)
            if (strcmp(a->a[i].addrs[k].text, b->a[j].addrs[k].text) != 0)
                return 0;
    }
    return 1;
}

void fg_dns_resolve_now(const struct fg_config *cfg, struct fg_dns_answers *out)
{
    struct event_base *base = event_base_new();
    struct round r;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!base) {
        merge(cfg, NULL, out);
        return;
    }
    rc = round_start(&r, base, cfg, NULL, NULL, 1, NULL);
    if (rc == 0 && r.pending > 0)
        event_base_dispatch(base);
    if (merge(cfg, rc == 0 ? &r : NULL, out) < 0)
        fg_log_error("dns: out of memory");
    round_free(&r);
    event_base_free(base);
}

/* ---- the resolver thread ------------------------------------------------------ */

struct due_entry {
    char *name;
    uint64_t at_ms;
};

struct fg_dns {
    pthread_t thread;
    struct event_base *base;
    struct event *timer, *stop_ev, *wake_ev;
    int stop_fd, wake_fd;
    struct round r;
    int busy;                           /* a round is waiting for answers */
    int again;                          /* woken meanwhile: another round after it */
    struct fg_config *cfg;              /* the round's, one reference */
    struct due_entry *due;
    unsigned ndue;
};

static struct due_entry *due_of(struct fg_dns *d, const char *name)
{
    for (unsigned i = 0; i < d->ndue; i++)
        if (strcmp(d->due[i].name, name) == 0)
            return &d->due[i];
    return NULL;
}

static int is_due(const char *name, void *arg)
{
    struct fg_dns *d = arg;
    struct due_entry *e = due_of(d, name);

    return !e || e->at_ms <= now_ms();
}

static void arm(struct fg_dns *d, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(d->timer, &tv);
}

/* When each name is due next: its TTL, clamped; the due list keeps only the
 * configuration's names. */
static void schedule(struct fg_dns *d)
{
    const struct fg_config *cfg = d->cfg;
    struct due_entry *nd = calloc(cfg->dns_answers.n ? cfg->dns_answers.n : 1, sizeof(*nd));
    uint64_t now = now_ms(), next = 0;

    if (!nd) {
        arm(d, cfg->dns.max_ttl_ms);
        return;
    }
    for (unsigned i = 0; i < cfg->dns_answers.n; i++) {
        const char *name = cfg->dns_answers.a[i].name;
        struct due_entry *old = due_of(d, name);
        uint64_t at = old ? old->at_ms : now;
        for (unsigned j = 0; j < d->r.n; j++) {
            const struct lookup *l = &d->r.l[j];
            if (strcmp(l->name, name) != 0)
                continue;
            uint64_t ttl = l->ttl == UINT32_MAX ? 0 : (uint64_t)l->ttl * 1000;
            if (ttl < cfg->dns.min_ttl_ms)
                ttl = cfg->dns.min_ttl_ms;
            if (ttl > cfg->dns.max_ttl_ms)
                ttl = cfg->dns.max_ttl_ms;
            at = now + ttl;
        }
        nd[i].name = strdup(name);
        nd[i].at_ms = at;
        if (!next || at < next)
            next = at;
    }
    for (unsigned i = 0; i < d->ndue; i++)
        free(d->due[i].name);
    free(d->due);
    d->due = nd;
    d->ndue = cfg->dns_answers.n;
    arm(d, next > now ? next - now : 0);
}

static void round_done(struct round *r, void *arg)
{
    struct fg_dns *d = arg;
    struct fg_dns_answers next;

    (void)r;
    if (merge(d->cfg, &d->r, &next) == 0 && !fg_dns_answers_same(&next, &d->cfg->dns_answers)) {
        char *msg = NULL;
        fg_log_info("dns: the addresses of a backend name changed: building the configuration "
                    "again");
        if (fg_reload_dns(&next, &msg) != 0)
            fg_log_warn("dns: the new addresses are not in use: %s", msg ? msg : "?");
        free(msg);
    }
    fg_dns_answers_free(&next);
    d->busy = 0;
    /* evdns is freed from the timer, not from inside its own callback */
    schedule(d);
    if (d->again) {
        d->again = 0;
        evtimer_del(d->timer);
        arm(d, 0);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct fg_dns *d = arg;
    int rc;

    (void)fd;
    (void)what;
    round_free(&d->r);
    fg_config_unref(d->cfg);
    if (!(d->cfg = fg_runtime_config()) || !d->cfg->dns_answers.n) {
        arm(d, IDLE_CHECK_MS);          /* a reload may bring names */
        return;
    }
    rc = round_start(&d->r, d->base, d->cfg, is_due, d, 0, round_done);
    if (rc == 0 && d->r.pending > 0) {
        d->busy = 1;
    } else if (rc != 0) {
        if (rc < 0)
            fg_log_error("dns: cannot start lookups");
        schedule(d);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct fg_dns *d = arg;
    uint64_t v;

    (void)what;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* the loop stops either way */
    }
    event_base_loopbreak(d->base);
}

/* A reload brought names: a round now (names never asked are due). */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct fg_dns *d = arg;
    uint64_t v;

    (void)what;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: taken already */
    }
    if (d->busy) {
        d->again = 1;
        return;
    }
    evtimer_del(d->timer);
    arm(d, 0);
}

void fg_dns_wake(struct fg_dns *d)
{
    uint64_t one = 1;

    if (d && write(d->wake_fd, &one, sizeof(one)) < 0)
        fg_log_warn("dns: cannot wake the resolver: %s", strerror(errno));
}

static void *dns_main(void *arg)
{
    struct fg_dns *d = arg;

    event_base_dispatch(d->base);
    return NULL;
}

static void dns_free(struct fg_dns *d)
{
    round_free(&d->r);
    fg_config_unref(d->cfg);
    for (unsigned i = 0; i < d->ndue; i++)
        free(d->due[i].name);
    free(d->due);
    if (d->timer)
        event_free(d->timer);
    if (d->stop_ev)
        event_free(d->stop_ev);
    if (d->stop_fd >= 0)
        close(d->stop_fd);
    if (d->wake_ev)
        event_free(d->wake_ev);
    if (d->wake_fd >= 0)
        close(d->wake_fd);
    if (d->base)
        event_base_free(d->base);
    free(d);
}

struct fg_dns *fg_dns_start(char **err)
{
    struct fg_dns *d = calloc(1, sizeof(*d));

    *err = NULL;
    if (!d) {
        *err = strdup("dns: out of memory");
        return NULL;
    }
    d->stop_fd = d->wake_fd = -1;
    if (!(d->base = event_base_new()) || !(d->timer = evtimer_new(d->base, on_timer, d)) ||
        (d->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        !(d->stop_ev = event_new(d->base, d->stop_fd, EV_READ | EV_PERSIST, on_stop, d)) ||
        event_add(d->stop_ev, NULL) < 0 ||
        (d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        !(d->wake_ev = event_new(d->base, d->wake_fd, EV_READ | EV_PERSIST, on_wake, d)) ||
        event_add(d->wake_ev, NULL) < 0)
        goto fail;
    /* the names were resolved at start-up: the first round when their TTL
     * runs out, at the shortest */
    if (!(d->cfg = fg_runtime_config()))
        goto fail;
    arm(d, d->cfg->dns_answers.n ? d->cfg->dns.min_ttl_ms : IDLE_CHECK_MS);
    if (pthread_create(&d->thread, NULL, dns_main, d) != 0)
        goto fail;
    return d;
fail:
    *err = strdup("dns: cannot start the resolver thread");
    dns_free(d);
    return NULL;
}

void fg_dns_stop(struct fg_dns *d)
{
    uint64_t one = 1;

    if (!d)
        return;
    if (write(d->stop_fd, &one, sizeof(one)) < 0)
        fg_log_warn("dns: cannot signal stop: %s", strerror(errno));
    pthread_join(d->thread, NULL);
    dns_free(d);
}
