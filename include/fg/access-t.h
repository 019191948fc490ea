/* Types of API-key access control, per-key / per-route / global limits,
 * the client's real address and its geography (configuration and the
 * shared state the limits count in). */
#ifndef FG_ACCESS_T_H
#define FG_ACCESS_T_H

#include <stdint.h>

#include "fg/rate_limit.h"

struct fg_limit_shared;

/* "limits": {"rps", "burst", "concurrency", "tokens_per_minute"}; a limit
 * of 0 is no limit. */
struct fg_limit_cfg {
    uint64_t rps;
    uint64_t burst;                 /* default: rps */
    unsigned concurrency;
    uint64_t tokens_per_minute;
    struct fg_rate_cfg rps_rate;    /* derived when rps > 0 */
    struct fg_rate_cfg tpm_rate;    /* derived when tokens_per_minute > 0 */
};

/* What a limit counts in, shared by every worker thread. A key's state
 * outlives reloads of the key file (looked up by name), so reloading does
 * not hand out a fresh burst. */
struct fg_limit_state {
    struct fg_rate rps;
    struct fg_rate tpm;
    _Atomic unsigned active;        /* requests in progress */
    _Atomic uint64_t refused;       /* 429s answered */
};

struct fg_api_key {
    unsigned char sha256[32];
    char *name;
    int64_t expires;                /* Unix seconds; 0: never */
    char **routes;                  /* route names; none: every keyed route */
    unsigned nroutes;
    char **models;                  /* none: every model */
    unsigned nmodels;
    struct fg_limit_cfg limits;
    struct fg_limit_state *state;   /* bound when the key set is built */
};

/* "access": API keys and global limits. */
struct fg_access_cfg {
    struct fg_api_key *keys;        /* "keys" of the config file itself */
    unsigned nkeys;
    char *key_file;                 /* absolute path; NULL: none */
    unsigned key_file_check_ms;     /* how often the key file's mtime is looked at; default 1000 */
    struct fg_limit_cfg limits;     /* all keyed requests together */
    struct fg_limit_state *global;  /* what they count in: in global_shared */
    struct fg_limit_shared *global_shared;
};

/* "geoip": MaxMind databases and the headers that carry what they say. */
struct fg_geoip_cfg {
    char *database;                 /* country + continent (and ASN if it has it) */
    char *asn_database;             /* optional */
    char *country_header;           /* request headers added upstream; NULL: none */
    char *continent_header;
    char *asn_header;
};

#endif
