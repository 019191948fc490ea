/* API-key authentication and limits (docs/configuration.md, "Access").
 *
 * fg_access_start() builds the key set from the configuration and its key
 * file; fg_access_reload() replaces it when the key file changed (main
 * thread). Worker threads authenticate requests and admit them under the
 * key's, the route's and the global limits; fg_access_release() gives back
 * what a request held and charges the tokens its response reported. */
#ifndef FG_ACCESS_H
#define FG_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "fg/access-t.h"

struct fg_config;
struct fg_exchange;
struct fg_route;
struct fg_worker;

enum fg_auth_result {
    FG_AUTH_NONE,                   /* no credential in the request */
    FG_AUTH_OK,
    FG_AUTH_UNKNOWN,                /* no such key */
    FG_AUTH_EXPIRED,                /* x->api_key is set: its name may be logged */
};

/* Why a request was refused (429). */
struct fg_limit_refusal {
    const char *scope;              /* "key", "route" or "global" */
    const char *what;               /* "requests per second", "concurrent requests", "tokens per minute" */
    uint64_t limit, remaining, reset_s, retry_after_s;
};

/* Builds the first key set. -1 with *err (malloc'd): the key file cannot
 * be read or is invalid. Without an "access" section, does nothing. */
int fg_access_start(const struct fg_config *cfg, struct fg_worker *workers, unsigned n, char **err);

/* Main thread: re-reads the key file when it changed since it was last
 * read (or always, with <force>: SIGHUP). 1: new keys in use; 0: nothing
 * to do; -1: the file could not be used (logged; the old keys stay). */
int fg_access_reload(int force);

/* A reload of the whole configuration, in two steps so that a bad key file
 * rejects it before anything changed: the key set of <cfg> (NULL with *err
 * set when its key file is bad), then, once the reload goes ahead, that
 * set in use (and <cfg>'s key file watched). Either thread that reloads. */
struct fg_access_next;
struct fg_access_next *fg_access_prepare(const struct fg_config *cfg, char **err);
void fg_access_commit(struct fg_access_next *nx);
void fg_access_abandon(struct fg_access_next *nx);

/* Calls <fn> for every key's limit state (any thread; /metrics). */
void fg_access_foreach_state(void (*fn)(const char *name, const struct fg_limit_state *s,
                                         void *arg),
                             void *arg);

/* After the workers stopped. */
void fg_access_stop(void);

/* Finds the request's key ("Authorization: Bearer KEY" or "x-api-key"),
 * marking the header it came from FG_HDR_DROP (never forwarded).
 * With FG_AUTH_OK and FG_AUTH_EXPIRED, x->api_key is the key, held until
 * fg_access_release(). */
enum fg_auth_result fg_access_authenticate(struct fg_exchange *x);

int fg_access_key_allows_route(const struct fg_api_key *k, const struct fg_route *r);
int fg_access_key_allows_model(const struct fg_api_key *k, const char *model, size_t len);

/* Admits x (x->route set) under its key's, its route's and the global
 * limits, counting it in each. -1 with *why filled: refused (everything
 * taken was given back). */
int fg_access_admit(struct fg_exchange *x, struct fg_limit_refusal *why);

/* What x holds: concurrency counts, the key set; charges the tokens its
 * response reported to every tokens-per-minute limit it counted in. */
void fg_access_release(struct fg_exchange *x);

#endif
