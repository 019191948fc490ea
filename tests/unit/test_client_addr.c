/* Client addresses: parsing and formatting, CIDR membership, and the client
 * behind trusted proxies from X-Forwarded-For. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "fg/client_addr.h"
#include "unit.h"

/* A block from "addr/bits" (test data only: no error handling beyond exit). */
static struct fg_cidr cidr(const char *s)
{
    struct fg_cidr c;
    char buf[64];
    const char *slash = strchr(s, '/');

    memset(&c, 0, sizeof(c));
    if (slash)
        snprintf(buf, sizeof buf, "%.*s", (int)(slash - s), s);
    c.family = slash && strchr(buf, ':') ? AF_INET6 : AF_INET;
    if (!slash || inet_pton(c.family, buf, c.addr) != 1) {
        fprintf(stderr, "bad test block %s\n", s);
        exit(99);
    }
    c.bits = (unsigned)atoi(slash + 1);
    return c;
}

/* An address exactly as written: a mapped IPv6 address stays AF_INET6, as a
 * socket's peer on a dual-stack listener does. */
static struct fg_ip raw(const char *s)
{
    struct fg_ip ip;

    memset(&ip, 0, sizeof(ip));
    ip.family = strchr(s, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(ip.family, s, ip.addr) != 1) {
        fprintf(stderr, "bad test address %s\n", s);
        exit(99);
    }
    return ip;
}

static const char *fmt(const struct fg_ip *ip, char buf[FG_IP_STRLEN])
{
    if (fg_ip_format(ip, buf, FG_IP_STRLEN) < 0)
        snprintf(buf, FG_IP_STRLEN, "(family %d)", ip->family);
    return buf;
}

/* ---- fg_ip_parse / fg_ip_format ---- */

static void check_round_at(int line, const char *in, int family, const char *want)
{
    struct fg_ip ip;
    char buf[FG_IP_STRLEN];
    int rc = fg_ip_parse(in, strlen(in), &ip);

    if (!unit_report_(rc == 0, __FILE__, line, "fg_ip_parse(\"%s\") failed", in))
        return;
    unit_report_(ip.family == family && fg_ip_format(&ip, buf, sizeof buf) == 0 &&
                     strcmp(buf, want) == 0,
                 __FILE__, line, "\"%s\": got family %d \"%s\", expected family %d \"%s\"", in,
                 ip.family, fmt(&ip, buf), family, want);
    if (family == AF_INET) {
        static const unsigned char zero[12];
        unit_report_(!memcmp(ip.addr + 4, zero, 12), __FILE__, line,
                     "\"%s\": bytes 4..15 of an IPv4 address not 0", in);
    }
}

#define CHECK_ROUND(in, family, want) check_round_at(__LINE__, (in), (family), (want))

static void test_parse_format(void)
{
    CHECK_ROUND("1.2.3.4", AF_INET, "1.2.3.4");
    CHECK_ROUND("0.0.0.0", AF_INET, "0.0.0.0");
    CHECK_ROUND("255.255.255.255", AF_INET, "255.255.255.255");
    CHECK_ROUND("::", AF_INET6, "::");
    CHECK_ROUND("::1", AF_INET6, "::1");
    CHECK_ROUND("2001:db8::1", AF_INET6, "2001:db8::1");
    CHECK_ROUND("2001:DB8::A", AF_INET6, "2001:db8::a");
    CHECK_ROUND("2001:0db8:0000:0000:0001:0000:0000:0001", AF_INET6, "2001:db8::1:0:0:1");
    CHECK_ROUND("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AF_INET6,
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    /* mapped: IPv4 */
    CHECK_ROUND("::ffff:1.2.3.4", AF_INET, "1.2.3.4");
    CHECK_ROUND("::FFFF:102:304", AF_INET, "1.2.3.4");
    CHECK_ROUND("0:0:0:0:0:ffff:7f00:1", AF_INET, "127.0.0.1");
    /* IPv4-compatible (deprecated) and NAT64 are not mapped */
    CHECK_ROUND("::1.2.3.4", AF_INET6, "::1.2.3.4");
    CHECK_ROUND("64:ff9b::1.2.3.4", AF_INET6, "64:ff9b::102:304");
    CHECK_ROUND("::fffe:1.2.3.4", AF_INET6, "::fffe:102:304");
    /* the longest text of all */
    CHECK_ROUND("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", AF_INET6,
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

    static const char *const bad[] = {
        "",          "1.2.3",      "1.2.3.4.5",    "256.1.1.1",   "01.2.3.4",    "1.2.3.04",
        "0x1.2.3.4", " 1.2.3.4",   "1.2.3.4 ",     "1.2.3.4:80",  "[::1]",       "[::1]:80",
        "::1::1",    ":::",        "fe80::1%eth0", "unknown",     "localhost",   "1:2:3:4:5:6:7:8:9",
        "::ffff:1.2.3.256", "1.2.3.4/8", "-1.2.3.4",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fg_ip ip = raw("9.9.9.9");
        int rc = fg_ip_parse(bad[i], strlen(bad[i]), &ip);
        CHECK_MSG(rc == -1, "fg_ip_parse(\"%s\") accepted", bad[i]);
        CHECK_MSG(ip.family == AF_INET && ip.addr[0] == 9, "fg_ip_parse(\"%s\") wrote *out", bad[i]);
    }

    /* the length counts, not the NUL */
    struct fg_ip ip;
    char buf[FG_IP_STRLEN];
    if (CHECK(fg_ip_parse("1.2.3.45", 7, &ip) == 0))
        CHECK_STR(fmt(&ip, buf), "1.2.3.4");
    CHECK(fg_ip_parse("1.2.3.4\0junk", 12, &ip) == -1);
    CHECK(fg_ip_parse("1.2.3.4", 8, &ip) == -1);   /* the NUL itself */
    char longer[200];
    memset(longer, '1', sizeof longer);
    CHECK(fg_ip_parse(longer, sizeof longer, &ip) == -1);
    /* not NUL-terminated: exactly <len> bytes on the heap (ASan sees an overread) */
    char *heap = malloc(11);
    memcpy(heap, "2001:db8::7", 11);
    if (CHECK(fg_ip_parse(heap, 11, &ip) == 0))
        CHECK_STR(fmt(&ip, buf), "2001:db8::7");
    free(heap);
}

static void test_format_edges(void)
{
    struct fg_ip ip = raw("192.168.100.200");
    char buf[64];

    /* 15 characters and the NUL */
    CHECK_INT(fg_ip_format(&ip, buf, 15), -1);
    if (CHECK_INT(fg_ip_format(&ip, buf, 16), 0))
        CHECK_STR(buf, "192.168.100.200");
    CHECK_INT(fg_ip_format(&ip, buf, 0), -1);
    CHECK_INT(fg_ip_format(&ip, buf, sizeof buf), 0);
    /* a mapped address built by hand comes out as IPv4 */
    ip = raw("::ffff:10.1.2.3");
    CHECK_INT(ip.family, AF_INET6);
    if (CHECK_INT(fg_ip_format(&ip, buf, sizeof buf), 0))
        CHECK_STR(buf, "10.1.2.3");
    ip.family = AF_UNIX;
    CHECK_INT(fg_ip_format(&ip, buf, sizeof buf), -1);
    ip.family = 0;
    CHECK_INT(fg_ip_format(&ip, buf, sizeof buf), -1);
}

/* ---- fg_ip_in ---- */

static void check_in_at(int line, const char *ip_text, const char *block, int want)
{
    struct fg_ip ip = raw(ip_text);
    struct fg_cidr c = cidr(block);
    int got = fg_ip_in(&ip, &c, 1);

    unit_report_(got == want, __FILE__, line, "%s in %s: got %d, expected %d", ip_text, block, got,
                 want);
}

#define IN(ip, block) check_in_at(__LINE__, (ip), (block), 1)
#define OUT(ip, block) check_in_at(__LINE__, (ip), (block), 0)

static void test_cidr(void)
{
    /* /0: every address of its family, none of the other */
    IN("0.0.0.0", "0.0.0.0/0");
    IN("255.255.255.255", "0.0.0.0/0");
    IN("::ffff:8.8.8.8", "0.0.0.0/0");
    OUT("::1", "0.0.0.0/0");
    OUT("2001:db8::1", "0.0.0.0/0");
    IN("::", "::/0");
    IN("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0");
    OUT("10.0.0.1", "::/0");
    OUT("::ffff:10.0.0.1", "::/0");     /* mapped: IPv4, so not in an IPv6 block */
    /* /32 and /128: one address */
    IN("192.0.2.1", "192.0.2.1/32");
    OUT("192.0.2.0", "192.0.2.1/32");
    OUT("192.0.2.2", "192.0.2.1/32");
    OUT("193.0.2.1", "192.0.2.1/32");
    IN("2001:db8::1", "2001:db8::1/128");
    OUT("2001:db8::", "2001:db8::1/128");
    OUT("2001:db8::3", "2001:db8::1/128");
    OUT("2001:db9::1", "2001:db8::1/128");
    /* /12 ends inside the second byte */
    IN("172.16.0.0", "172.16.0.0/12");
    IN("172.31.255.255", "172.31.0.0/12");  /* host bits in the block are ignored */
    IN("172.31.255.255", "172.16.0.0/12");
    OUT("172.32.0.0", "172.16.0.0/12");
    OUT("172.15.255.255", "172.16.0.0/12");
    IN("2000::", "2000::/12");
    IN("200f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2000::/12");
    OUT("2010::", "2000::/12");
    OUT("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2000::/12");
    /* other boundaries: one bit into a byte, one bit short of the end */
    IN("10.127.255.255", "10.0.0.0/9");
    OUT("10.128.0.0", "10.0.0.0/9");
    IN("10.0.0.1", "10.0.0.0/31");
    OUT("10.0.0.2", "10.0.0.0/31");
    IN("2001:db8::1", "2001:db8::/127");
    OUT("2001:db8::2", "2001:db8::/127");
    IN("10.9.9.9", "10.0.0.0/8");
    OUT("11.0.0.0", "10.0.0.0/8");
    OUT("9.255.255.255", "10.0.0.0/8");
    IN("fd12:3456::1", "fd00::/8");
    OUT("fe00::1", "fd00::/8");
    /* a mapped peer is its IPv4 address */
    IN("::ffff:10.1.2.3", "10.0.0.0/8");
    OUT("::ffff:11.1.2.3", "10.0.0.0/8");
    OUT("::ffff:10.1.2.3", "::ffff:0:0/95");    /* shorter than the mapped prefix: IPv6 */
    /* a mapped block is the IPv4 block */
    IN("10.1.2.3", "::ffff:0:0/96");
    IN("10.1.2.3", "::ffff:10.0.0.0/104");
    OUT("11.1.2.3", "::ffff:10.0.0.0/104");
    IN("::ffff:10.1.2.3", "::ffff:10.0.0.0/104");
    IN("10.1.2.3", "::ffff:10.1.2.3/128");
    OUT("10.1.2.4", "::ffff:10.1.2.3/128");
    OUT("::1", "::ffff:0:0/96");
    /* ::a.b.c.d (compatible) is IPv6, not in the IPv4 block */
    OUT("::10.1.2.3", "10.0.0.0/8");

    /* lists */
    struct fg_cidr nets[3] = {cidr("10.0.0.0/8"), cidr("2001:db8::/32"), cidr("192.168.1.0/24")};
    struct fg_ip ip = raw("192.168.1.77");
    CHECK_INT(fg_ip_in(&ip, nets, 3), 1);
    CHECK_INT(fg_ip_in(&ip, nets, 2), 0);
    CHECK_INT(fg_ip_in(&ip, nets, 0), 0);
    ip = raw("2001:db8:ffff::1");
    CHECK_INT(fg_ip_in(&ip, nets, 3), 1);
    /* not a block (bits past the family's end): matches nothing */
    struct fg_cidr odd = cidr("10.0.0.0/8");
    odd.bits = 33;
    ip = raw("10.0.0.0");
    CHECK_INT(fg_ip_in(&ip, &odd, 1), 0);
    ip.family = AF_UNIX;
    odd.bits = 0;
    CHECK_INT(fg_ip_in(&ip, &odd, 1), 0);
}

/* ---- fg_xff_client ---- */

static const char *const trusted_text[] = {"10.0.0.0/8", "192.168.0.0/16", "fd00::/8",
                                           "127.0.0.1/32"};
#define NTRUSTED (sizeof(trusted_text) / sizeof(trusted_text[0]))
static struct fg_cidr trusted[NTRUSTED];

/* <values>: the header lines, NULL-terminated. */
static void check_xff_at(int line, const char *peer_text, const char *const *values,
                         const char *want)
{
    struct fg_ip peer = raw(peer_text), out, w;
    size_t lens[8];
    unsigned n = 0;
    char got_s[FG_IP_STRLEN], vals[512] = "";

    for (; values && values[n]; n++) {
        lens[n] = strlen(values[n]);
        snprintf(vals + strlen(vals), sizeof vals - strlen(vals), "%s\"%s\"", n ? ", " : "",
                 values[n]);
    }
    if (fg_ip_parse(want, strlen(want), &w) < 0) {
        fprintf(stderr, "bad expected address %s\n", want);
        exit(99);
    }
    memset(&out, 0x55, sizeof(out));
    fg_xff_client(&peer, trusted, NTRUSTED, values, lens, n, &out);
    unit_report_(out.family == w.family && !memcmp(out.addr, w.addr, 16), __FILE__, line,
                 "peer %s, X-Forwarded-For [%s]\n    got:      %s\n    expected: %s", peer_text,
                 vals, fmt(&out, got_s), want);
    /* the same with NUL-terminated values */
    memset(&out, 0x55, sizeof(out));
    fg_xff_client(&peer, trusted, NTRUSTED, values, NULL, n, &out);
    unit_report_(out.family == w.family && !memcmp(out.addr, w.addr, 16), __FILE__, line,
                 "(lens NULL) peer %s, X-Forwarded-For [%s]: got %s, expected %s", peer_text, vals,
                 fmt(&out, got_s), want);
}

#define XFF(peer, want, ...) \
    check_xff_at(__LINE__, (peer), (const char *const[]){__VA_ARGS__, NULL}, (want))
#define XFF_NONE(peer, want) check_xff_at(__LINE__, (peer), NULL, (want))

static void test_xff(void)
{
    for (unsigned i = 0; i < NTRUSTED; i++)
        trusted[i] = cidr(trusted_text[i]);

    /* an untrusted peer: the header is a spoof */
    XFF("203.0.113.7", "203.0.113.7", "1.1.1.1");
    XFF("203.0.113.7", "203.0.113.7", "10.0.0.5, 192.168.1.1");
    XFF("203.0.113.7", "203.0.113.7", "garbage");
    XFF("2001:db8::77", "2001:db8::77", "198.51.100.9");
    XFF("::ffff:203.0.113.7", "203.0.113.7", "1.1.1.1");       /* normalised */
    XFF("::ffff:203.0.113.7", "203.0.113.7", "10.0.0.1");
    XFF_NONE("203.0.113.7", "203.0.113.7");

    /* a trusted peer, no header or nothing in it: the peer */
    XFF_NONE("10.0.0.1", "10.0.0.1");
    XFF("10.0.0.1", "10.0.0.1", "");
    XFF("10.0.0.1", "10.0.0.1", " , ,\t,");
    XFF("10.0.0.1", "10.0.0.1", "", "");

    /* single hop */
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9");
    XFF("127.0.0.1", "198.51.100.9", "198.51.100.9");
    XFF("::ffff:10.0.0.1", "198.51.100.9", "198.51.100.9");    /* mapped trusted peer */
    XFF("127.0.0.2", "127.0.0.2", "198.51.100.9");             /* /32: .2 is not trusted */

    /* chains of trusted proxies: the first untrusted from the right */
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9, 192.168.1.1, 10.0.0.2");
    XFF("10.0.0.1", "198.51.100.9", "6.6.6.6, 198.51.100.9, 10.0.0.2");    /* forged left part */
    XFF("10.0.0.1", "198.51.100.9", "10.0.0.99, 198.51.100.9, 10.0.0.2"); /* forged trusted one */
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9,10.0.0.3,10.0.0.2");
    XFF("10.0.0.1", "198.51.100.9", "\t198.51.100.9 ,  10.0.0.2\t");
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9,,, 10.0.0.2,");
    /* every entry trusted: the leftmost */
    XFF("10.0.0.1", "10.0.0.5", "10.0.0.5, 192.168.1.1, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.5", ", 10.0.0.5, 192.168.1.1,");
    XFF("10.0.0.1", "fd00::5", "fd00::5, 10.0.0.2");

    /* garbage stops the walk: the last good entry to its right, or the peer */
    XFF("10.0.0.1", "10.0.0.2", "198.51.100.9, unknown, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.3", "198.51.100.9, 10.0.0.9 10.0.0.8, 10.0.0.3");
    XFF("10.0.0.1", "10.0.0.1", "198.51.100.9, 10.0.0.2, unknown");
    XFF("10.0.0.1", "10.0.0.1", "unknown");
    XFF("10.0.0.1", "10.0.0.1", "proxy.example.com");
    XFF("10.0.0.1", "10.0.0.1", "\"198.51.100.9\"");
    XFF("10.0.0.1", "10.0.0.1", "198.51.100.9/32");
    XFF("10.0.0.1", "10.0.0.1", "_hidden");
    XFF("10.0.0.1", "198.51.100.9", "unknown, 198.51.100.9");  /* found before the garbage */
    XFF("10.0.0.1", "198.51.100.9", "unknown, 198.51.100.9, 10.0.0.2");

    /* ports */
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9:5555");
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9:5555, 10.0.0.2:80");
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9:0, 10.0.0.2:65535");
    XFF("10.0.0.1", "2001:db8::9", "[2001:db8::9]:443");
    XFF("10.0.0.1", "2001:db8::9", "[2001:db8::9]");
    XFF("10.0.0.1", "2001:db8::9", "[2001:db8::9]:443, [fd00::2]:8080, 10.0.0.2");
    XFF("10.0.0.1", "198.51.100.9", "[::ffff:198.51.100.9]:443");
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9, [::ffff:10.0.0.7]:1"); /* mapped, trusted */
    /* bad ports and brackets are garbage */
    XFF("10.0.0.1", "10.0.0.2", "198.51.100.9:, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "198.51.100.9:65536, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "198.51.100.9:123456, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "198.51.100.9:http, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "198.51.100.9:-1, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "[2001:db8::9, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "[2001:db8::9]443, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "[2001:db8::9]:, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "[198.51.100.9]:80, 10.0.0.2");  /* brackets hold IPv6 only */
    XFF("10.0.0.1", "10.0.0.2", "2001:db8::9:443x, 10.0.0.2");
    XFF("10.0.0.1", "10.0.0.2", "[], 10.0.0.2");

    /* several header lines: one list, in order */
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9, 10.0.0.3", "10.0.0.2");
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9", "10.0.0.3, 10.0.0.2");
    XFF("10.0.0.1", "203.0.113.1", "198.51.100.9", "203.0.113.1, 10.0.0.2");
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9, 10.0.0.9", "");
    XFF("10.0.0.1", "198.51.100.9", "198.51.100.9", "", "10.0.0.2");
    XFF("10.0.0.1", "10.0.0.5", "10.0.0.5, 10.0.0.6", "10.0.0.7");    /* all trusted */
    XFF("10.0.0.1", "10.0.0.1", "198.51.100.9", "10.0.0.3, junk");    /* stops in line 2 */
    XFF("10.0.0.1", "10.0.0.3", "198.51.100.9", "junk, 10.0.0.3");
    XFF("10.0.0.1", "10.0.0.3", "junk", "10.0.0.3");                  /* stops in line 1 */
    XFF("10.0.0.1", "198.51.100.9", "junk, 198.51.100.9", "10.0.0.3");

    /* IPv6 all along */
    XFF("fd00::1", "2001:db8::1", "2001:db8::1, fd00::2");
    XFF("fd00::1", "2001:db8::1", "2001:db8::1,fd12::2,fd00::2");
    XFF("fd00::1", "198.51.100.9", "198.51.100.9, fd00::2, 10.0.0.4");
    XFF("fd00::1", "198.51.100.9", "::ffff:198.51.100.9");
    XFF("fd00::1", "2001:db8::1", "2001:db8::1", "fd00::2");
    XFF("fd00::1", "fd00::2", "2001:db8::1::, fd00::2");
    XFF("fe80::1", "fe80::1", "2001:db8::1");                          /* untrusted */

    /* no trusted proxies at all: always the peer */
    struct fg_ip peer = raw("10.0.0.1"), out;
    const char *v[] = {"198.51.100.9"};
    size_t l[] = {12};
    fg_xff_client(&peer, trusted, 0, v, l, 1, &out);
    CHECK(out.family == AF_INET && !memcmp(out.addr, peer.addr, 16));

    /* values are read by length: not NUL-terminated, on the heap */
    static const char text[] = "198.51.100.9, 10.0.0.2";
    char *h1 = malloc(sizeof text - 1), *h2 = malloc(8);
    memcpy(h1, text, sizeof text - 1);
    memcpy(h2, "10.0.0.3", 8);
    const char *hv[] = {h1, h2};
    size_t hl[] = {sizeof text - 1, 8};
    char buf[FG_IP_STRLEN];
    fg_xff_client(&peer, trusted, NTRUSTED, hv, hl, 2, &out);
    CHECK_STR(fmt(&out, buf), "198.51.100.9");
    /* a length shorter than the text: the rest is not read */
    hl[0] = 12;                         /* "198.51.100.9" */
    hl[1] = 7;                          /* "10.0.0." : garbage */
    fg_xff_client(&peer, trusted, NTRUSTED, hv, hl, 2, &out);
    CHECK_STR(fmt(&out, buf), "10.0.0.1");
    hl[1] = 0;
    fg_xff_client(&peer, trusted, NTRUSTED, hv, hl, 2, &out);
    CHECK_STR(fmt(&out, buf), "198.51.100.9");
    free(h1);
    free(h2);
}

int main(void)
{
    UNIT_RUN(test_parse_format);
    UNIT_RUN(test_format_edges);
    UNIT_RUN(test_cidr);
    UNIT_RUN(test_xff);
    return unit_summary();
}
