/* Listener and backend addresses: "1.2.3.4:80", "[::1]:80" or "host:80"
 * (see fg_addr_parse() in fg/config.h).
 *
 * Stricter than getaddrinfo() alone, on purpose: it would accept "10.1" for
 * 10.0.0.1, "+80" or "http" for a port, and an unbracketed IPv6 address
 * whose last group reads as a port. Host names are resolved once, at load
 * time; the text form is rebuilt from the resolved address so that two
 * spellings of one address compare equal (duplicate listeners). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fg/config.h"

/* EAI_NODATA (a name without addresses) is a GNU extension. */
static int no_data(int rc)
{
#ifdef EAI_NODATA
    return rc == EAI_NODATA;
#else
    (void)rc;
    return 0;
#endif
}

int fg_addr_parse(const char *text, struct fg_addr *out, const char **why)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    const char *host, *hend, *port;
    char hbuf[256], pbuf[8], nhost[NI_MAXHOST];
    int bracket = text[0] == '[';

    memset(out, 0, sizeof *out);
    if (bracket) {
        host = text + 1;
        if (!(hend = strchr(host, ']')))
            return *why = "missing \"]\" after the IPv6 address", -1;
        if (hend[1] != ':')
            return *why = "missing port, expected [IPv6]:PORT", -1;
        port = hend + 2;
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
    } else {
        if (!(hend = strrchr(text, ':')))
            return *why = "missing port, expected HOST:PORT", -1;
        host = text;
        if (memchr(host, ':', (size_t)(hend - host)))
            return *why = "an IPv6 address must be written in brackets, as [::1]:8080", -1;
        port = hend + 1;
        hints.ai_family = AF_UNSPEC;
    }

    /* Digits only: strtoul() would also take "+80", " 80" or "0x50". */
    size_t plen = strspn(port, "0123456789");
    unsigned long pnum = 0;
    if (plen > 0 && plen <= 5 && port[plen] == '\0')
        pnum = strtoul(port, NULL, 10);
    if (pnum < 1 || pnum > 65535)
        return *why = "the port must be an integer in 1..65535", -1;
    snprintf(pbuf, sizeof pbuf, "%lu", pnum);

    size_t hlen = (size_t)(hend - host);
    if (hlen == 0)
        return *why = "missing host", -1;
    if (hlen >= sizeof hbuf)
        return *why = "host name too long", -1;
    memcpy(hbuf, host, hlen);
    hbuf[hlen] = '\0';
    if (!bracket) {
        if (strspn(hbuf, "0123456789.") == hlen) {
            /* getaddrinfo() would take "10.1" as 10.0.0.1: insist on the
             * dotted quad everyone reads the same way. */
            struct in_addr a4;
            if (inet_pton(AF_INET, hbuf, &a4) != 1)
                return *why = "invalid IPv4 address", -1;
            hints.ai_family = AF_INET;
            hints.ai_flags |= AI_NUMERICHOST;
        } else if (strspn(hbuf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789-._") != hlen) {
            return *why = "invalid host name", -1;
        }
    }

    int rc = getaddrinfo(hbuf, pbuf, &hints, &res);
    if (rc != 0 || !res) {
        if (bracket)
            *why = "invalid IPv6 address";
        else if (rc == EAI_NONAME || rc == EAI_FAIL || !res || no_data(rc))
            *why = "host name not found";
        else
            *why = gai_strerror(rc);
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    if (res->ai_addrlen > sizeof out->ss) {
        freeaddrinfo(res);
        return *why = "unsupported address family", -1;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);

    if (getnameinfo((struct sockaddr *)&out->ss, out->len, nhost, sizeof nhost, NULL, 0,
                    NI_NUMERICHOST) != 0)
        return *why = "cannot format the address", -1;
    snprintf(out->text, sizeof out->text, out->ss.ss_family == AF_INET6 ? "[%s]:%lu" : "%s:%lu",
             nhost, pnum);
    return 0;
}

/* The port of <a>, and whether it is a wildcard address (0.0.0.0 or ::). */
static unsigned short port_of(const struct fg_addr *a, int *wildcard)
{
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        *wildcard = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        return ntohs(s6->sin6_port);
    }
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
    *wildcard = s4->sin_addr.s_addr == htonl(INADDR_ANY);
    return ntohs(s4->sin_port);
}

int fg_addr_overlaps(const struct fg_addr *a, const struct fg_addr *b)
{
    int wa, wb;

    /* listening IPv6 sockets are IPV6_V6ONLY (worker.c): the families
     * never share a port */
    if (a->ss.ss_family != b->ss.ss_family || port_of(a, &wa) != port_of(b, &wb))
        return 0;
    /* a wildcard takes the port on every address of its family */
    return wa || wb || strcmp(a->text, b->text) == 0;
}
