/* Types of the configuration snapshot.
 *
 * A snapshot is built once by fg_config_load() and never modified afterwards
 * except for the runtime counters marked "shared": those are atomics written
 * by every worker thread. Everything else is read-only after load, so workers
 * read it without locks. */
#ifndef FG_CONFIG_T_H
#define FG_CONFIG_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fg/access-t.h"

#define FG_MAX_WORKERS 256

/* A resolved socket address plus its text form for logs ("127.0.0.1:80",
 * "[::1]:80"). */
struct fg_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64];
};

struct fg_tls_cfg {
    char *certificate;          /* PEM chain file */
    char *key;                  /* PEM private key file */
};

/* An address block: "10.0.0.0/8", "::1/128", or one address. */
struct fg_cidr {
    int family;                     /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
};

struct fg_listener_cfg {
    struct fg_addr addr;
    int backlog;                /* default 511 */
    int proxy_protocol;         /* trusted peers must open with a PROXY v1/v2 header */
    struct fg_tls_cfg *tls;     /* NULL for cleartext (h1 + h2c prior knowledge) */
};

/* Limits and timeouts applied to client connections (every listener). */
struct fg_client_cfg {
    unsigned header_timeout_ms;     /* whole request head must arrive within; default 10000 -> 408 */
    unsigned idle_timeout_ms;       /* keep-alive / h2 idle before close; default 60000 */
    unsigned send_timeout_ms;       /* a client not reading for this long is dropped; default 60000 */
    unsigned body_timeout_ms;       /* a request body's longest stall (body_clock.h); default 60000 */
    unsigned body_min_rate;         /* ...and its least rate, bytes/s; default 500; 0: none */
    unsigned max_header_bytes;      /* request line + headers; default 32768 -> 431 */
    unsigned max_headers;           /* header count; default 100 -> 431 */
    uint64_t max_body_bytes;        /* request body; default 100 MiB; 0 = unlimited -> 413 */
    unsigned h2_max_concurrent_streams; /* default 128 */
    unsigned max_connections;       /* all workers; 0: from the descriptor limit */
    unsigned max_connections_per_address;   /* 0: none; trusted proxies are exempt */
    uint64_t model_body_bytes;      /* body read to find its "model" for routing; default 1 MiB -> 413 */
    /* "trusted_proxies": peers whose X-Forwarded-For (and PROXY header)
     * say who the client is */
    struct fg_cidr *trusted_proxies;
    unsigned ntrusted_proxies;
};

enum fg_balance {
    FG_BALANCE_LEAST_CONN = 0,
    FG_BALANCE_ROUND_ROBIN,
};

struct fg_upstream;
struct fg_geoip;
struct fg_route_state;

/* What a backend's life on this gateway has gathered, as opposed to what
 * the configuration says about it: shared by every worker (atomics), and
 * handed from one configuration to the next by a reload when the new one
 * has the same backend (same upstream name, same address), so health,
 * ejections, in-flight counts and run-time changes survive it
 * (config_state.c). */
struct fg_backend_state {
    _Atomic unsigned refs;          /* configurations holding it */
    unsigned stat_slot;             /* its counters in each worker's stats (stats.c) */
    /* set through the admin API (admin_api.c): a weight in place of the
     * configuration's (0: none), and draining (no new requests) */
    _Atomic unsigned weight_rt;
    _Atomic int draining;
    /* requests currently assigned to this backend, all workers */
    _Atomic unsigned active;
    /* requests ever sent (metrics, tests) */
    _Atomic uint64_t total;
    /* set by the health checker (health.c); balancers skip it */
    _Atomic int down;
    /* the checker's consecutive passes and failures: here, not in the
     * checker, so a reload (which starts a new checker) does not reset
     * them; only the checker thread of the moment touches them */
    unsigned health_passes, health_failures;
    /* passive checks (outlier.c): failures in a row, ejections so far, and
     * until when (CLOCK_MONOTONIC ms) the backend is out */
    _Atomic unsigned consecutive_failures;
    _Atomic unsigned ejections;
    _Atomic uint64_t ejected_until_ms;
    /* when the health checker last brought it back up (ms) */
    _Atomic uint64_t up_since_ms;
    /* a 503 or 429 from it carried Retry-After: no requests until then
     * (CLOCK_MONOTONIC ms; upstreams with "retry" only) */
    _Atomic uint64_t busy_until_ms;
    /* what /status tells about it, written rarely (health checks, ejections)
     * by any thread: under its own lock */
    pthread_mutex_t info_lock;
    struct fg_backend_info {
        char check[96];             /* last health check: "pass: status 200", "fail: timeout" */
        uint64_t check_ms;          /* when (0: none yet) */
        char down_why[96];          /* why the checks took it down */
        char ejected_why[96];       /* the failure that ejected it last */
    } info;
};

struct fg_backend {
    struct fg_addr addr;
    /* "discovery": "dns": found under this name ("host:port", in the
     * configuration's dns_answers); NULL: the address was written */
    const char *dns_name;
    int discovery;                  /* FG_DISCOVERY_* of the entry it came from */
    unsigned weight;                /* 1..1000, default 1: the configuration's */
    unsigned index;                 /* position in upstream->backends */
    struct fg_upstream *upstream;   /* owner */
    /* most requests at once, all workers; 0: no limit ("max_requests") */
    unsigned max_requests;
    struct fg_backend_state *st;    /* shared, outlives reloads */
};

enum { FG_DISCOVERY_NONE = 0, FG_DISCOVERY_DNS };

/* DNS discovery: what a backend name resolved to when a configuration was
 * built (dns_discovery.c resolves it again on its TTL). */
struct fg_dns_answer {
    char *name;                     /* "host:port" as written */
    struct fg_addr *addrs;          /* every A and AAAA record, with the port; sorted */
    unsigned naddrs;
};

struct fg_dns_answers {
    struct fg_dns_answer *a;
    unsigned n;
};

/* "dns": how names with "discovery": "dns" are resolved. */
struct fg_dns_cfg {
    char **nameservers;             /* "IP" or "IP:PORT"; none: /etc/resolv.conf's */
    unsigned nnameservers;
    unsigned min_ttl_ms;            /* re-resolved no sooner; default 1000 */
    unsigned max_ttl_ms;            /* and no later; default 30000 */
    unsigned timeout_ms;            /* per query; default 2000 */
};

/* "outlier_detection" of an upstream: passive checks on real traffic. */
struct fg_outlier_cfg {
    int enabled;
    unsigned consecutive_failures;  /* default 5 */
    unsigned base_ejection_ms;      /* default 30000; x the number of ejections */
    unsigned max_ejection_ms;       /* default 300000 */
    unsigned max_ejected_percent;   /* of the backends, default 50 */
};

/* "health_check" of an upstream: active HTTP checks, one per backend (not
 * per worker), from the health checker's own thread. */
struct fg_health_cfg {
    int enabled;                    /* the key is present */
    char *path;                     /* default "/v2/health/ready" */
    unsigned interval_ms;           /* default 2000, +-10% jitter */
    unsigned timeout_ms;            /* default 1000: connect + answer */
    unsigned rise;                  /* consecutive passes to come back up; default 2 */
    unsigned fall;                  /* consecutive failures to go down; default 3 */
    unsigned status_min, status_max; /* passing statuses; default 200..399 */
    char *body_contains;            /* and this in the response body; NULL: anything */
};

/* "retry" of an upstream: when a request goes to another backend. */
enum {
    FG_RETRY_CONNECT = 1u << 0,     /* the connection failed: nothing was sent */
    FG_RETRY_RESET = 1u << 1,       /* closed or reset before any response byte */
    FG_RETRY_TIMEOUT = 1u << 2,     /* no response head within header_timeout_ms */
};

struct fg_retry_cfg {
    int enabled;
    unsigned on;                    /* FG_RETRY_* */
    unsigned char on_status[200];   /* [status - 400]: retried statuses (429, 5xx) */
    unsigned max_retries;           /* tries after the first; default 1 */
    unsigned budget_percent;        /* retries <= this share of requests; default 20 */
    unsigned min_retries_per_second; /* allowed whatever the share, per worker; default 3 */
    uint64_t max_body_bytes;        /* request bodies kept to be replayed; default 65536 */
    int non_idempotent;             /* replay POST/PATCH too; default false */
    unsigned max_retry_after_ms;    /* a backend's Retry-After held at most; default 60000 */
};

/* "queue" of an upstream: where requests wait while every backend is at its
 * max_requests. */
struct fg_queue_cfg {
    unsigned max_length;            /* all workers; default 1000; 0: 503 at once */
    unsigned timeout_ms;            /* then 503; default 5000 */
    unsigned retry_after_s;         /* Retry-After of those 503s; default 1 */
};

struct fg_upstream {
    char *name;
    unsigned index;                 /* position in config->upstreams */
    enum fg_balance balance;        /* default least_conn */
    struct fg_backend *backends;
    unsigned nbackends;
    unsigned connect_timeout_ms;    /* default 3000 -> retry once, then 502/504 */
    unsigned header_timeout_ms;     /* response head after request sent; default 60000 -> 504 */
    unsigned idle_timeout_ms;       /* no progress mid-exchange; default 60000 */
    unsigned keepalive_timeout_ms;  /* pooled idle connection lifetime; default 30000 */
    unsigned keepalive;             /* idle connections kept per backend per worker; default 1024 */
    unsigned max_response_header_bytes; /* default 32768 -> 502 */
    struct fg_health_cfg health;
    struct fg_outlier_cfg outlier;
    unsigned slow_start_ms;         /* ramp of a returning backend's weight; default 0: none */
    unsigned max_requests;          /* per backend, unless the backend says; default 0: no limit */
    int limited;                    /* some backend has max_requests: the queue is used */
    struct fg_retry_cfg retry;
    struct fg_queue_cfg queue;
    struct fg_upstream_state *st;   /* shared, outlives reloads (by name) */
};

/* An upstream's shared counts, all workers; handed on by a reload to the
 * upstream of the same name. */
struct fg_upstream_state {
    _Atomic unsigned refs;
    unsigned stat_slot;
    /* requests waiting in the queue now: read at every release, so on a
     * line of its own, away from the counters written per request */
    _Alignas(64) _Atomic unsigned queued;
    _Alignas(64) _Atomic uint64_t requests, retries, retries_refused, queue_timeouts, queue_full,
        queue_waits;
};

/* A name and a value a request must carry (header, query parameter). */
struct fg_match_kv {
    char *name;                     /* headers: lower case */
    char *value;
    size_t name_len, value_len;
};

enum fg_sticky {
    FG_STICKY_NONE = 0,             /* every request on its own */
    FG_STICKY_HEADER,               /* the value of a request header */
    FG_STICKY_COOKIE,               /* the value of a cookie */
};

struct fg_split_arm {
    struct fg_upstream *upstream;
    unsigned weight;                /* 0..1000000; 0 = takes nothing */
};

/* "split": weighted arms; with a sticky identity, its hash picks the arm, so
 * one identity always lands in the same arm on every gateway that has the
 * same arms (route.c). */
struct fg_split {
    enum fg_sticky sticky;
    char *sticky_name;              /* header name (lower case) or cookie name */
    size_t sticky_name_len;
    struct fg_split_arm *arms;
    unsigned narms;
    uint64_t total;                 /* sum of the weights, > 0 */
    struct fg_route_state *st;      /* its route's: the admin API's weights */
};

struct fg_split_weights {
    struct fg_split_weights *next_retired;
    unsigned narms;                 /* readers ignore weights for another split */
    uint64_t total;
    unsigned weight[];              /* [narms] */
};

/* A gray-release rule: when every condition given holds, the request goes
 * to <upstream>, before any split. */
struct fg_rule {
    struct fg_match_kv *headers;    /* "header": {"name": "value"} */
    unsigned nheaders;
    struct fg_match_kv *cookies;    /* "cookie": {"name": "value"} */
    unsigned ncookies;
    struct fg_match_kv *query;      /* "query": {"param": "value"} */
    unsigned nquery;
    struct fg_cidr *nets;           /* "client": ["CIDR", ...]: any of them */
    unsigned nnets;
    char (*countries)[3];           /* "country": ["NZ", ...]; "" is unknown */
    unsigned ncountries;
    char (*continents)[3];          /* "continent": ["EU", ...] */
    unsigned ncontinents;
    uint32_t *asns;                 /* "asn": [64512, ...] */
    unsigned nasns;
    char **keys;                    /* "key": API key names */
    unsigned nkeys;
    struct fg_upstream *upstream;
};

enum fg_route_auth {
    FG_ROUTE_AUTH_DEFAULT = 0,      /* keyed when there is an "access" section */
    FG_ROUTE_AUTH_KEY,
    FG_ROUTE_AUTH_OPEN,
};

struct fg_route {
    char *name;                     /* "name": for keys' "routes" and logs; NULL: none */
    int auth;                       /* enum fg_route_auth */
    struct fg_limit_cfg *limits;    /* "limits": all requests of the route together */
    struct fg_limit_state *limit_state; /* what they count in: in limit_shared */
    struct fg_limit_shared *limit_shared;
    struct fg_match_kv *set_headers;    /* "upstream_headers": replace these when sent upstream */
    unsigned nset_headers;
    /* "match": every condition present must hold */
    char *path_prefix;              /* "path_prefix"; "/" when neither it nor "path" is set */
    size_t path_prefix_len;
    char *path;                     /* "path": exact, query excluded */
    size_t path_len;
    char *host;                     /* lower case, no port; "*.example.com" matches subdomains */
    size_t host_len;
    char **methods;                 /* "methods": upper-case tokens */
    unsigned nmethods;
    struct fg_match_kv *headers;    /* "headers": {"name": "exact value"} */
    unsigned nheaders;
    struct fg_match_kv *query;      /* "query": {"param": "exact value"}, percent-decoded */
    unsigned nquery;
    char *model;                    /* "model": the NAME of /v2/models/NAME[/...] */
    size_t model_len;
    /* where it goes: the first rule that holds, else exactly one of
     * upstream and split */
    struct fg_rule *rules;
    unsigned nrules;
    struct fg_upstream *upstream;
    struct fg_split *split;
    /* "fallback": where a request goes when its upstream has no usable
     * backend, or answers 5xx or 429 before any byte reached the client */
    struct fg_upstream *fallback;
    uint64_t fallback_body_bytes;   /* request bodies kept for a replay, at most; default 65536 */
    /* "mirror": a copy of a share of the requests goes there; its answers
     * are read and dropped (src/mirror.c) */
    struct fg_upstream *mirror;
    uint64_t mirror_threshold;      /* percent as a fraction of 2^64 (>= compared with a draw) */
    unsigned mirror_max_in_flight;  /* per worker; beyond, copies are dropped; default 64 */
    uint64_t mirror_body_bytes;     /* larger bodies are not mirrored; default 1 MiB */
    char *upstream_header;          /* response header naming the upstream taken; NULL: none */
    /* "rewrite": what the upstream is sent instead */
    char *rewrite_prefix;           /* replaces match.path_prefix at the start of the path */
    size_t rewrite_prefix_len;
    char *rewrite_model;            /* the model: in /v2/models/NAME and in a JSON body's "model" */
    size_t rewrite_model_len;
    size_t upstream_header_len;
    struct fg_route_state *st;      /* shared, outlives reloads (by name) */
};

/* A route's shared state, all workers; handed on by a reload to the route
 * of the same name (an unnamed route: the unnamed route at the same
 * position). */
struct fg_route_state {
    _Atomic unsigned refs;
    unsigned stat_slot;
    /* what became of the mirrored copies */
    _Atomic uint64_t mirror_sent, mirror_ok, mirror_failed, mirror_dropped;
    /* split weights set through the admin API in place of the arms' (NULL:
     * the configuration's); replaced whole, the old ones kept until the
     * state is freed (a request may still be reading them). A reload keeps
     * them while the new route has the same arms (upstream names, in
     * order). */
    _Atomic(struct fg_split_weights *) split_rt;
    struct fg_split_weights *retired;
};

/* A limit's counts with a reference count: a reload hands it on while the
 * limit is unchanged, so reloading never hands out a fresh burst. */
struct fg_limit_shared {
    _Atomic unsigned refs;
    struct fg_limit_state s;
};

/* "log" */
struct fg_log_cfg {
    char *access;                   /* "stderr", an absolute path, or NULL: no access log */
    int level;                      /* enum fg_log_level; default info */
};

struct fg_config {
    _Atomic unsigned refs;          /* fg_config_ref(): the loader's, workers' generations */
    char *path;                     /* file it was loaded from */
    unsigned workers;               /* resolved: "auto" -> number of CPUs */
    struct fg_listener_cfg *listeners;
    unsigned nlisteners;
    struct fg_client_cfg client;
    struct fg_upstream *upstreams;
    unsigned nupstreams;
    struct fg_route *routes;
    unsigned nroutes;
    /* "admin": the admin listener (GET /status); never TLS */
    int admin_enabled;
    struct fg_listener_cfg admin;
    int admin_token_set;            /* "admin": {"token_sha256"} */
    unsigned char admin_token[32];
    char *source;                   /* the JSON text loaded (GET /config) */
    struct fg_access_cfg *access;   /* "access": API keys; NULL: every route is open */
    struct fg_geoip_cfg *geoip;     /* "geoip"; NULL: none */
    struct fg_geoip *geoip_db;      /* opened at load */
    struct fg_log_cfg log;
    unsigned drain_timeout_ms;      /* SIGTERM: how long open connections may finish; default 30000 */
    struct fg_dns_cfg dns;
    /* every name with "discovery": "dns", and what it stood for here */
    struct fg_dns_answers dns_answers;
};

#endif
