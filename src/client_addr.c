/* Client addresses and X-Forwarded-For (fg/client_addr.h). */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "fg/client_addr.h"

static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* <in> with an IPv4-mapped IPv6 address turned into its IPv4 one. */
static void normalise(const struct fg_ip *in, struct fg_ip *out)
{
    if (in->family == AF_INET6 && !memcmp(in->addr, mapped_prefix, 12)) {
        unsigned char a4[4];
        memcpy(a4, in->addr + 12, 4);
        memset(out, 0, sizeof(*out));
        out->family = AF_INET;
        memcpy(out->addr, a4, 4);
    } else if (out != in) {
        *out = *in;
    }
}

int fg_ip_parse(const char *s, size_t len, struct fg_ip *out)
{
    char buf[64];
    struct fg_ip ip;

    /* the longest address text is 45 bytes; a NUL inside would cut it */
    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(&ip, 0, sizeof(ip));
    ip.family = memchr(buf, ':', len) ? AF_INET6 : AF_INET;
    if (inet_pton(ip.family, buf, ip.addr) != 1)
        return -1;
    normalise(&ip, out);
    return 0;
}

int fg_ip_format(const struct fg_ip *ip, char *buf, size_t size)
{
    struct fg_ip n;

    if (ip->family != AF_INET && ip->family != AF_INET6)
        return -1;
    normalise(ip, &n);
    if (size > (size_t)FG_IP_STRLEN)
        size = FG_IP_STRLEN;    /* inet_ntop takes a socklen_t */
    return inet_ntop(n.family, n.addr, buf, (socklen_t)size) ? 0 : -1;
}

/* The first <bits> bits of <a> and <net> are equal. */
static int prefix_equal(const unsigned char *net, unsigned bits, const unsigned char *a)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (memcmp(net, a, full))
        return 0;
    return !rest || ((net[full] ^ a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* <ip> (normalised) in <net>; a mapped IPv6 block counts as its IPv4 one. */
static int in_block(const struct fg_ip *ip, const struct fg_cidr *net)
{
    if (net->family == AF_INET6 && net->bits >= 96 && net->bits <= 128 &&
        !memcmp(net->addr, mapped_prefix, 12))
        return ip->family == AF_INET && prefix_equal(net->addr + 12, net->bits - 96, ip->addr);
    if (net->family != ip->family)
        return 0;
    if (net->bits > (net->family == AF_INET ? 32u : 128u))
        return 0;               /* not a block: matches nothing */
    return prefix_equal(net->addr, net->bits, ip->addr);
}

int fg_ip_in(const struct fg_ip *ip, const struct fg_cidr *nets, unsigned n)
{
    struct fg_ip a;

    normalise(ip, &a);
    if (a.family != AF_INET && a.family != AF_INET6)
        return 0;
    for (unsigned i = 0; i < n; i++)
        if (in_block(&a, &nets[i]))
            return 1;
    return 0;
}

/* A port after "host:": 1 to 5 digits, at most 65535. */
static int port_ok(const char *p, size_t len)
{
    unsigned v = 0;

    if (len == 0 || len > 5)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

/* One X-Forwarded-For entry, already trimmed: an address, "a.b.c.d:port",
 * "[v6]" or "[v6]:port". */
static int parse_entry(const char *s, size_t len, struct fg_ip *out)
{
    const char *colon = NULL;
    unsigned colons = 0;

    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        size_t inner, after;
        if (!close)
            return -1;
        inner = (size_t)(close - s) - 1;
        after = len - (size_t)(close - s) - 1;
        /* brackets hold IPv6 only */
        if (!memchr(s + 1, ':', inner))
            return -1;
        if (after && (close[1] != ':' || !port_ok(close + 2, after - 1)))
            return -1;
        return fg_ip_parse(s + 1, inner, out);
    }
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':') {
            if (!colon)
                colon = s + i;
            colons++;
        }
    /* one colon: IPv4 with a port (a bare IPv6 address has at least two) */
    if (colons == 1) {
        size_t host = (size_t)(colon - s);
        if (!port_ok(colon + 1, len - host - 1))
            return -1;
        return fg_ip_parse(s, host, out);
    }
    return fg_ip_parse(s, len, out);
}

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

void fg_xff_client(const struct fg_ip *peer, const struct fg_cidr *trusted, unsigned ntrusted,
                   const char *const *values, const size_t *lens, unsigned nvalues,
                   struct fg_ip *out)
{
    struct fg_ip p, cand, last;
    int have_last = 0;

    normalise(peer, &p);
    if (!fg_ip_in(&p, trusted, ntrusted)) {
        *out = p;
        return;
    }
    /* the header lines form one list: walk the last line first, each line
     * from its end */
    for (unsigned v = nvalues; v-- > 0;) {
        const char *s = values[v];
        const char *end;

        if (!s)
            continue;
        end = s + (lens ? lens[v] : strlen(s));
        while (end > s) {
            const char *b = end, *e = end;
            while (b > s && b[-1] != ',')
                b--;
            end = b > s ? b - 1 : s;    /* before the comma, for the next entry */
            while (b < e && blank(*b))
                b++;
            while (e > b && blank(e[-1]))
                e--;
            if (b == e)
                continue;
            if (parse_entry(b, (size_t)(e - b), &cand) < 0) {
                *out = have_last ? last : p;
                return;
            }
            if (!fg_ip_in(&cand, trusted, ntrusted)) {
                *out = cand;
                return;
            }
            last = cand;
            have_last = 1;
        }
    }
    *out = have_last ? last : p;
}
