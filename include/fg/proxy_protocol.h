/* The PROXY protocol (versions 1 and 2) header that a trusted load balancer
 * sends at the start of a client connection, before HTTP/1.1 or HTTP/2: a
 * pure parser, no I/O. The bytes arrive in pieces, so the parser is called on
 * everything buffered so far and says whether the header is complete, may
 * still become one, or cannot be one.
 *
 * Strict on purpose: a listener that expects the header accepts nothing else,
 * so a peer that sends plain HTTP (or TLS) fails on its first byte that
 * differs from both signatures, and a malformed header never passes.
 *
 * Version 1: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" or
 * "PROXY UNKNOWN[ <anything but CR and LF>]\r\n", at most 107 bytes with the
 * CRLF. Single spaces; addresses as inet_pton(3) reads them for the named
 * family; ports decimal 0..65535, digits only, no leading zeros ("0" itself
 * is allowed).
 *
 * Version 2: the 12-byte signature, then version 2 with command LOCAL or
 * PROXY, the family byte (TCP over IPv4 or IPv6, UNSPEC, or UNIX stream) and
 * a big-endian length of the rest. LOCAL ignores the family and the whole
 * block. The address block must be at least the family's size; the TLVs that
 * follow the addresses are skipped, but must tile the rest exactly (a type
 * byte, a 16-bit length, that many bytes). The whole header is capped at
 * FG_PP_V2_MAX bytes. */
#ifndef FG_PROXY_PROTOCOL_H
#define FG_PROXY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define FG_PP_V1_MAX 107    /* bytes in the longest v1 header, CRLF included */
#define FG_PP_V2_MAX 4096   /* bytes in the longest v2 header accepted: 16 + its length */

struct fg_proxy_hdr {
    int family;                       /* AF_INET, AF_INET6, or AF_UNSPEC for "UNKNOWN" / LOCAL /
                                       * UNSPEC / UNIX (use the socket's own peer) */
    unsigned char src[16], dst[16];   /* network byte order; AF_INET: first 4 bytes; rest zero */
    uint16_t src_port, dst_port;      /* host byte order; zero for AF_UNSPEC */
};

enum { FG_PP_NEED_MORE = 0, FG_PP_ERROR = -1 };

/* Parses a PROXY protocol v1 or v2 header at the start of buf[0..len).
 * Returns:
 *   > 0                the header's length in bytes: the caller drops that
 *                      many and what follows is the client's own protocol;
 *                      *out is filled;
 *   FG_PP_NEED_MORE    buf[0..len) is a valid prefix of a header that is not
 *                      complete yet (len 0 included); never returned for v1
 *                      once 106 bytes hold no CR (the CRLF could no longer end
 *                      within 107 bytes), nor for v2 beyond FG_PP_V2_MAX;
 *   FG_PP_ERROR        the bytes cannot be a PROXY header (no header at all
 *                      included); *why is set to a static reason.
 * *out is written only on success, *why only on error; either may be NULL. */
int fg_proxy_protocol_parse(const unsigned char *buf, size_t len, struct fg_proxy_hdr *out,
                            const char **why);

#endif
