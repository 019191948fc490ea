/* The client's address: binary IP addresses, CIDR membership, and the real
 * client behind trusted proxies from X-Forwarded-For.
 *
 * Addresses are kept normalised: an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) is the IPv4 address a.b.c.d, so a client reaching a
 * dual-stack listener over IPv4 matches IPv4 blocks. */
#ifndef FG_CLIENT_ADDR_H
#define FG_CLIENT_ADDR_H

#include <stddef.h>

#include "fg/config-t.h"

/* Room for the text of any address, with its NUL (INET6_ADDRSTRLEN). */
#define FG_IP_STRLEN 46

struct fg_ip {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char addr[16];     /* AF_INET: the first 4 bytes, the rest 0 */
};

/* Parses the <len> bytes at <s>: "1.2.3.4" or "::1" (no port, brackets,
 * zone or surrounding blanks). An IPv4-mapped IPv6 address comes out as
 * AF_INET. 0, or -1 (and *out untouched) when it is not an address. */
int fg_ip_parse(const char *s, size_t len, struct fg_ip *out);

/* The inet_ntop() text of <ip> into <buf> (FG_IP_STRLEN bytes are always
 * enough). 0, or -1 when it does not fit or the family is unknown. */
int fg_ip_format(const struct fg_ip *ip, char *buf, size_t size);

/* 1 if <ip> is in any of the <n> blocks, else 0. Both the address and the
 * blocks count normalised: a mapped block (::ffff:0:0/96 and longer) is
 * the IPv4 block it maps, and after that an IPv4 address never matches an
 * IPv6 block nor the other way round (so ::/0 does not hold 10.0.0.1).
 * Host bits set in a block's address are ignored. */
int fg_ip_in(const struct fg_ip *ip, const struct fg_cidr *nets, unsigned n);

/* The client of a request from X-Forwarded-For. <peer> is the socket's
 * peer, <trusted> the proxies whose header is believed, <values>/<lens>
 * the <nvalues> X-Forwarded-For header values of the request in order
 * (each a comma-separated list; together one list; <lens> may be NULL for
 * NUL-terminated values). *out (normalised, like everything here) becomes:
 *  - the peer when it is not trusted: a header from anyone else is a spoof;
 *  - else, walking the list from the right, the first entry that is not a
 *    trusted proxy;
 *  - when every entry is trusted, the leftmost one (the peer if the list
 *    has no entries);
 *  - when an entry is not an address ("unknown", a name, garbage), the walk
 *    stops there and the client is the last good entry seen, i.e. the one
 *    to its right (or the peer if there is none).
 * Blanks (SP, HTAB) around entries are ignored and empty entries skipped.
 * "1.2.3.4:80", "[::1]:80" and "[::1]" are taken, without the port, as
 * some proxies send them. */
void fg_xff_client(const struct fg_ip *peer, const struct fg_cidr *trusted, unsigned ntrusted,
                   const char *const *values, const size_t *lens, unsigned nvalues,
                   struct fg_ip *out);

#endif
