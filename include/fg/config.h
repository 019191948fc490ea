/* Loading and validating the JSON configuration. */
#ifndef FG_CONFIG_H
#define FG_CONFIG_H

#include "fg/config-t.h"

/* Parses and validates the file at <path>. On success returns a snapshot the
 * caller frees with fg_config_free(). On failure returns NULL and stores in
 * *err a malloc'd message "FILE:LINE:COLUMN: JSON-PATH: reason", e.g.
 * "etc/fg.json:12:9: $.upstreams.a.backends[0].weight: must be an integer in 1..1000".
 * The caller frees *err (NULL only when even the message could not be
 * allocated). JSON syntax errors have no path: "FILE:LINE:COL: reason"; a
 * file that cannot be opened gives "FILE: cannot open: reason".
 * Keeps no global state: any thread may load, several at once. Host names
 * are resolved here (getaddrinfo), so loading may block on DNS. */
struct fg_config *fg_config_load(const char *path, char **err);

/* Same, from memory; <name> stands for the file name in messages and its
 * directory is the base of relative TLS paths. <text> need not be
 * NUL-terminated. On success, *err is set to NULL. */
struct fg_config *fg_config_parse(const char *text, size_t len, const char *name, char **err);

/* Frees it whatever its references (what the loader made and nothing else
 * holds). */
/* The same, where backends with "discovery": "dns" stand for the addresses
 * <dns> gives their names (none for a name it does not have). */
struct fg_config *fg_config_load_dns(const char *path, const struct fg_dns_answers *dns, char **err);
struct fg_config *fg_config_parse_dns(const char *text, size_t len, const char *name,
                                      const struct fg_dns_answers *dns, char **err);
void fg_dns_answers_free(struct fg_dns_answers *as);

void fg_config_free(struct fg_config *cfg);
/* A snapshot shared by a running gateway's threads: fg_config_load() gives
 * one reference; the last fg_config_unref() frees it, in whichever thread. */
struct fg_config *fg_config_ref(struct fg_config *cfg);
void fg_config_unref(struct fg_config *cfg);

/* Fills <cc> with the documented defaults of the "client" object, for
 * programs that build a configuration without a file (fleetgate-model). */
void fg_client_cfg_defaults(struct fg_client_cfg *cc);

/* Parses "1.2.3.4:80", "[::1]:80" or "host:80" (resolved once with
 * getaddrinfo, first result) into <out>. Returns 0, or -1 with *why set to a
 * static reason. */
int fg_addr_parse(const char *text, struct fg_addr *out, const char **why);

/* 1 when listening sockets bound to <a> and <b> would take the same port:
 * the same address, or the same port and family where either is a
 * wildcard. */
int fg_addr_overlaps(const struct fg_addr *a, const struct fg_addr *b);

/* Reads a key file ({"keys": [...]}, the schema of $.access.keys) whose
 * keys' "routes" must name routes of <cfg>. -1 with *err (malloc'd)
 * "FILE:LINE:COL: PATH: reason". */
int fg_key_file_load(const struct fg_config *cfg, const char *path, struct fg_api_key **keys,
                     unsigned *n, char **err);
void fg_api_keys_free(struct fg_api_key *keys, unsigned n);

/* The upstream named <name>, or NULL. */
struct fg_upstream *fg_config_upstream(const struct fg_config *cfg, const char *name);

#endif
