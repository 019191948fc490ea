/* DNS discovery: backends written as {"address": "HOST:PORT", "discovery":
 * "dns"} stand for every A and AAAA record of HOST. A resolver thread
 * (libevent's evdns, its own event loop) asks again when the answer's TTL
 * runs out (clamped to dns.min_ttl_ms..max_ttl_ms); when the addresses of a
 * name change, the running configuration is built again from its own text
 * with the new answers and handed over like a reload (fg/reload.h): new
 * backends take requests, removed ones finish theirs and take no more,
 * backends that stay keep everything. A failed lookup (timeout, server
 * failure) keeps the addresses known; an answer with no address (NXDOMAIN,
 * no records) leaves the name without backends.
 *
 * This is how the gateway follows a Kubernetes headless Service or any
 * registry that speaks DNS. */
#ifndef FG_DNS_DISCOVERY_H
#define FG_DNS_DISCOVERY_H

#include "fg/config-t.h"

struct fg_dns;

/* Resolves every name of <cfg> once, now (blocking, at most a few
 * timeouts), into *out (the caller frees it with fg_dns_answers_free()).
 * Names that fail keep what <cfg> has. */
void fg_dns_resolve_now(const struct fg_config *cfg, struct fg_dns_answers *out);

/* The resolver thread, following the running configuration's names. NULL
 * with *err set. */
struct fg_dns *fg_dns_start(char **err);
void fg_dns_stop(struct fg_dns *d);
/* Any thread: look now at the running configuration's names (a reload
 * brought new ones: they get addresses without waiting for a TTL). */
void fg_dns_wake(struct fg_dns *d);

/* 1 when <a> and <b> name the same addresses for every name of <a>. */
int fg_dns_answers_same(const struct fg_dns_answers *a, const struct fg_dns_answers *b);

#endif
