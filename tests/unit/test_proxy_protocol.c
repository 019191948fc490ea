/* PROXY protocol v1 and v2 header parsing: valid headers, every malformed
 * variant, and headers that arrive a byte at a time. */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "fg/proxy_protocol.h"
#include "unit.h"

#define HTTP1 "GET / HTTP/1.1\r\nHost: example\r\n\r\n"
#define HTTP2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

struct bytes {
    const char *s;
    size_t n;
};
#define B(lit) { (lit), sizeof(lit) - 1 }

static const unsigned char v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

/* Parses a copy of buf[0..len) that has nothing after it, so that the
 * address sanitizer sees any read past the bytes given. */
static int parse(const void *buf, size_t len, struct fg_proxy_hdr *h, const char **why)
{
    unsigned char *copy;
    int rc;

    if (len == 0)
        return fg_proxy_protocol_parse(buf, 0, h, why);
    copy = malloc(len);
    if (!copy)
        abort();
    memcpy(copy, buf, len);
    rc = fg_proxy_protocol_parse(copy, len, h, why);
    free(copy);
    return rc;
}

/* Parses <len> bytes that must be an error; its reason must be given. */
static int is_error(const void *buf, size_t len)
{
    struct fg_proxy_hdr h;
    const char *why = NULL;
    int rc = parse(buf, len, &h, &why);

    return rc == FG_PP_ERROR && why != NULL && why[0] != '\0';
}

/* A v2 header: signature, version/command, family, length, body. */
static size_t v2(unsigned char *b, unsigned vc, unsigned fam, const void *body, size_t n)
{
    memcpy(b, v2_sig, sizeof(v2_sig));
    b[12] = (unsigned char)vc;
    b[13] = (unsigned char)fam;
    b[14] = (unsigned char)(n >> 8);
    b[15] = (unsigned char)n;
    if (n)
        memcpy(b + 16, body, n);
    return 16 + n;
}

static const unsigned char body4[12] = {
    10, 1, 2, 3, 192, 0, 2, 1, 0xC7, 0x38 /* 51000 */, 0x01, 0xBB /* 443 */,
};

static size_t body6(unsigned char *b)
{
    struct in6_addr s, d;

    inet_pton(AF_INET6, "2001:db8::1", &s);
    inet_pton(AF_INET6, "2001:db8:0:1::fe", &d);
    memcpy(b, &s, 16);
    memcpy(b + 16, &d, 16);
    b[32] = 0xFF, b[33] = 0xFF;   /* 65535 */
    b[34] = 0x00, b[35] = 0x00;   /* 0 */
    return 36;
}

/* Every prefix of buf[0..n) (n the header's length) needs more, the whole
 * gives n, and so does the whole followed by <extra> bytes of something. */
static void check_bytewise(const unsigned char *buf, size_t n, size_t extra, const char *name)
{
    struct fg_proxy_hdr h;
    const char *why = NULL;

    for (size_t len = 0; len < n; len++) {
        int rc = parse(buf, len, &h, &why);
        CHECK_MSG(rc == FG_PP_NEED_MORE, "%s: %zu of %zu bytes: rc %d (%s)", name, len, n, rc,
                  rc == FG_PP_ERROR ? why : "");
    }
    for (size_t len = n; len <= n + extra; len++) {
        int rc = parse(buf, len, &h, &why);
        CHECK_MSG(rc == (int)n, "%s: %zu bytes: rc %d, expected %zu", name, len, rc, n);
    }
}

/* Version 1 ------------------------------------------------------------- */

static void test_v1_tcp4(void)
{
    static const char hdr[] = "PROXY TCP4 192.168.0.1 10.0.0.2 56324 443\r\n";
    struct fg_proxy_hdr h;
    const char *why = NULL;
    unsigned char src[4] = { 192, 168, 0, 1 }, dst[4] = { 10, 0, 0, 2 }, zero[12] = { 0 };

    memset(&h, 0xAA, sizeof(h));
    CHECK_INT(parse(hdr, sizeof(hdr) - 1, &h, &why), sizeof(hdr) - 1);
    CHECK_INT(h.family, AF_INET);
    CHECK(memcmp(h.src, src, 4) == 0);
    CHECK(memcmp(h.dst, dst, 4) == 0);
    CHECK(memcmp(h.src + 4, zero, 12) == 0);
    CHECK(memcmp(h.dst + 4, zero, 12) == 0);
    CHECK_UINT(h.src_port, 56324);
    CHECK_UINT(h.dst_port, 443);
    CHECK(why == NULL);

    /* Extremes of the ports, the null and broadcast addresses. */
    static const char ext[] = "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
    CHECK_INT(parse(ext, sizeof(ext) - 1, &h, NULL), sizeof(ext) - 1);
    CHECK_UINT(h.src_port, 0);
    CHECK_UINT(h.dst_port, 65535);
    CHECK_UINT(h.dst[0], 255);
    CHECK_UINT(h.dst[3], 255);

    /* No out, no why: still parsed. */
    CHECK_INT(parse(hdr, sizeof(hdr) - 1, NULL, NULL), sizeof(hdr) - 1);
}

static void test_v1_tcp6(void)
{
    static const char hdr[] = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    static const char mapped[] = "PROXY TCP6 ::ffff:10.0.0.1 FE80::a:B:c 1 2\r\n";
    static const char longest[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    struct fg_proxy_hdr h;
    struct in6_addr a;

    CHECK_INT(parse(hdr, sizeof(hdr) - 1, &h, NULL), sizeof(hdr) - 1);
    CHECK_INT(h.family, AF_INET6);
    inet_pton(AF_INET6, "2001:db8::1", &a);
    CHECK(memcmp(h.src, &a, 16) == 0);
    inet_pton(AF_INET6, "::1", &a);
    CHECK(memcmp(h.dst, &a, 16) == 0);
    CHECK_UINT(h.src_port, 65535);
    CHECK_UINT(h.dst_port, 0);

    CHECK_INT(parse(mapped, sizeof(mapped) - 1, &h, NULL), sizeof(mapped) - 1);
    CHECK_INT(h.family, AF_INET6);
    inet_pton(AF_INET6, "::ffff:10.0.0.1", &a);
    CHECK(memcmp(h.src, &a, 16) == 0);
    inet_pton(AF_INET6, "fe80::a:b:c", &a);
    CHECK(memcmp(h.dst, &a, 16) == 0);

    /* The longest text inet_pton reads: 45 characters. */
    static const char v4tail[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 ::1 1 2\r\n";
    CHECK_INT(parse(v4tail, sizeof(v4tail) - 1, &h, NULL), sizeof(v4tail) - 1);
    CHECK_UINT(h.src[15], 255);
    CHECK_UINT(h.src[0], 0xff);

    CHECK_INT(sizeof(longest) - 1, 104);
    CHECK_INT(parse(longest, sizeof(longest) - 1, &h, NULL), 104);
}

static void test_v1_unknown(void)
{
    static const char bare[] = "PROXY UNKNOWN\r\n";
    static const char addrs[] = "PROXY UNKNOWN 192.168.0.1 10.0.0.2 56324 443\r\n";
    static const char junk[] = "PROXY UNKNOWN whatever \t  goes \x01 here\r\n";
    /* The longest v1 header of the specification: 107 bytes. */
    static const char longest[] = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    struct fg_proxy_hdr h;

    memset(&h, 0xAA, sizeof(h));
    CHECK_INT(parse(bare, sizeof(bare) - 1, &h, NULL), sizeof(bare) - 1);
    CHECK_INT(h.family, AF_UNSPEC);
    CHECK_UINT(h.src_port, 0);
    CHECK_UINT(h.src[0], 0);

    memset(&h, 0xAA, sizeof(h));
    CHECK_INT(parse(addrs, sizeof(addrs) - 1, &h, NULL), sizeof(addrs) - 1);
    CHECK_INT(h.family, AF_UNSPEC);
    CHECK_UINT(h.dst_port, 0);

    CHECK_INT(parse(junk, sizeof(junk) - 1, &h, NULL), sizeof(junk) - 1);
    CHECK_INT(h.family, AF_UNSPEC);

    CHECK_INT(sizeof(longest) - 1, FG_PP_V1_MAX);
    CHECK_INT(parse(longest, sizeof(longest) - 1, &h, NULL), FG_PP_V1_MAX);
}

static void test_v1_too_long(void)
{
    unsigned char buf[300];

    /* 108 bytes with the CRLF: one too many. */
    static const char over[] = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655355\r\n";
    CHECK_INT(sizeof(over) - 1, FG_PP_V1_MAX + 1);
    CHECK(is_error(over, sizeof(over) - 1));

    /* No CR ever: needs more until the CRLF could no longer end within 107
     * bytes (CR at 105 at the latest), an error from then on. */
    memcpy(buf, "PROXY UNKNOWN ", 14);
    memset(buf + 14, 'x', sizeof(buf) - 14);
    for (size_t len = 0; len <= sizeof(buf); len++) {
        int rc = parse(buf, len, NULL, NULL);
        if (len < FG_PP_V1_MAX - 1)
            CHECK_MSG(rc == FG_PP_NEED_MORE, "%zu bytes: rc %d", len, rc);
        else
            CHECK_MSG(rc == FG_PP_ERROR, "%zu bytes: rc %d", len, rc);
    }
    /* CR at 105 and no LF after it: an error at 107 bytes. */
    buf[105] = '\r';
    CHECK_INT(parse(buf, 106, NULL, NULL), FG_PP_NEED_MORE);
    CHECK(is_error(buf, 107));
    buf[106] = '\n';
    CHECK_INT(parse(buf, 107, NULL, NULL), 107);
    CHECK_INT(parse(buf, sizeof(buf), NULL, NULL), 107);
    /* CR at 106: too late. */
    buf[105] = 'x';
    buf[106] = '\r';
    buf[107] = '\n';
    CHECK(is_error(buf, 106));
    CHECK(is_error(buf, 108));
}

/* Complete lines that must be refused; each is also refused whatever
 * follows it. */
static const struct bytes v1_bad[] = {
    /* spacing */
    B("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
    B(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1\t2\r\n"),
    /* the keyword and the protocol */
    B("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY UNKNOWNX\r\n"),
    B("PROXY UNKNOWN\tx\r\n"),
    B("PROXY UNKNOW\r\n"),
    B("PROXY\r\n"),
    B("PROXY \r\n"),
    B("PROXY TCP4\r\n"),
    B("PROXY TCP4 \r\n"),
    /* missing and extra fields */
    B("PROXY TCP4 1.2.3.4\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
    /* addresses */
    B("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.x 1 2\r\n"),
    B("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4 ::1 1 2\r\n"),
    B("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"),
    B("PROXY TCP6 ::1 5.6.7.8 1 2\r\n"),
    B("PROXY TCP6 ::1 ::g 1 2\r\n"),
    B("PROXY TCP6 ::1 :::1 1 2\r\n"),
    B("PROXY TCP6 1::2::3 ::1 1 2\r\n"),
    B("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"),
    B("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"),
    B("PROXY TCP6 [::1] ::1 1 2\r\n"),
    B("PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000 ::1 1 2\r\n"),   /* 49 chars */
    B("PROXY TCP6 ::1 0000:0000:0000:0000:0000:0000:255.255.255.2555 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4 0000:0000:0000:0000:0000:0000:0000:0000:0000 1 2\r\n"),
    B("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"),
    /* ports */
    B("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 00080 443\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 http 2\r\n"),
    /* the terminator */
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"),
    B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r"),
    B("PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n"),
    B("PROXY UNKNOWN\n"),
    B("PROXY UNKNOWN x\ny\r\n"),
    B("PROXY UNKNOWN x\ry\r\n"),
};

static void test_v1_malformed(void)
{
    unsigned char buf[256];
    const char *why = NULL;

    /* Reasons are static strings that say what is wrong. */
    CHECK_INT(parse(v1_bad[1].s, v1_bad[1].n, NULL, &why), FG_PP_ERROR);
    CHECK(why && strstr(why, "two spaces"));
    CHECK_INT(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", 36, NULL, &why), FG_PP_ERROR);
    CHECK(why && strstr(why, "destination port"));
    CHECK_INT(parse(HTTP1, sizeof(HTTP1) - 1, NULL, &why), FG_PP_ERROR);
    CHECK_STR(why, "not a PROXY protocol header");

    for (size_t i = 0; i < sizeof(v1_bad) / sizeof(v1_bad[0]); i++) {
        const struct bytes *b = &v1_bad[i];
        int rc = parse(b->s, b->n, NULL, NULL);

        CHECK_MSG(is_error(b->s, b->n), "v1_bad[%zu] \"%s\": rc %d", i, b->s, rc);
        /* The same with HTTP after it. */
        memcpy(buf, b->s, b->n);
        memcpy(buf + b->n, HTTP1, sizeof(HTTP1) - 1);
        CHECK_MSG(is_error(buf, b->n + sizeof(HTTP1) - 1), "v1_bad[%zu] + HTTP", i);
    }
}

/* Errors show as soon as the bytes so far cannot begin a valid line; valid
 * beginnings need more. */
static void test_v1_partial(void)
{
    static const struct bytes more[] = {
        B("P"), B("PROX"), B("PROXY"), B("PROXY "), B("PROXY T"), B("PROXY TCP"), B("PROXY TCP4"),
        B("PROXY TCP4 "), B("PROXY TCP4 1"), B("PROXY TCP4 1.2."), B("PROXY TCP4 255.255.255.25"),
        B("PROXY TCP4 1.2.3.4 "), B("PROXY TCP4 1.2.3.4 5.6.7.8 6553"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 65535 "), B("PROXY TCP4 1.2.3.4 5.6.7.8 1 0"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), B("PROXY TCP6 2001:db8"), B("PROXY TCP6 ::"),
        B("PROXY TCP6 ::ffff:1.2"), B("PROXY UNKN"), B("PROXY UNKNOWN"), B("PROXY UNKNOWN "),
        B("PROXY UNKNOWN foo bar"), B("PROXY UNKNOWN\r"),
    };
    static const struct bytes bad[] = {
        B("X"), B("PROXX"), B("PROXY\r"), B("PROXY  "), B("PROXY TCP7"), B("PROXY TCP4X"),
        B("PROXY UNKNOWN\t"), B("PROXY TCP4  "), B("PROXY TCP4 300"), B("PROXY TCP4 01"),
        B("PROXY TCP4 1.2.3.4.5"), B("PROXY TCP4 1::"), B("PROXY TCP6 ::1 ::g"),
        B("PROXY TCP6 :::"), B("PROXY TCP6 1::2::"), B("PROXY TCP6 ::1 ::1::"),
        B("PROXY TCP4 1.2.3 "), B("PROXY TCP4 1.2.3.4 5.6.7.8 70000"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 00"), B("PROXY TCP4 1.2.3.4 5.6.7.8 +"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "), B("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r"),
        B("PROXY TCP4 1.2.3.4\n"), B("PROXY TCP4 1.2.3.4 5.6.7.8 1\r"),
    };

    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        int rc = parse(more[i].s, more[i].n, NULL, NULL);
        CHECK_MSG(rc == FG_PP_NEED_MORE, "\"%s\": rc %d", more[i].s, rc);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_MSG(is_error(bad[i].s, bad[i].n), "\"%s\" is not an error", bad[i].s);
}

static void test_v1_bytewise(void)
{
    static const struct bytes ok[] = {
        B("PROXY TCP4 192.168.0.1 10.0.0.2 56324 443\r\n"),
        B("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
        B("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"),
        B("PROXY TCP6 ::ffff:10.0.0.1 FE80::a:B:c 1 2\r\n"),
        B("PROXY UNKNOWN\r\n"),
        B("PROXY UNKNOWN 192.168.0.1 10.0.0.2 56324 443\r\n"),
        B("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
    };
    unsigned char buf[256];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        memcpy(buf, ok[i].s, ok[i].n);
        memcpy(buf + ok[i].n, HTTP1, sizeof(HTTP1) - 1);
        check_bytewise(buf, ok[i].n, sizeof(HTTP1) - 1, ok[i].s);
    }
}

/* Version 2 ------------------------------------------------------------- */

static void test_v2_ipv4(void)
{
    unsigned char buf[64];
    struct fg_proxy_hdr h;
    const char *why = NULL;
    size_t n = v2(buf, 0x21, 0x11, body4, sizeof(body4));

    memset(&h, 0xAA, sizeof(h));
    CHECK_INT(n, 28);
    CHECK_INT(parse(buf, n, &h, &why), 28);
    CHECK_INT(h.family, AF_INET);
    CHECK(memcmp(h.src, body4, 4) == 0);
    CHECK(memcmp(h.dst, body4 + 4, 4) == 0);
    CHECK_UINT(h.src[4], 0);
    CHECK_UINT(h.dst[15], 0);
    CHECK_UINT(h.src_port, 51000);
    CHECK_UINT(h.dst_port, 443);
    CHECK(why == NULL);
}

static void test_v2_ipv6(void)
{
    unsigned char buf[64], body[36];
    struct fg_proxy_hdr h;
    size_t n = v2(buf, 0x21, 0x21, body, body6(body));

    CHECK_INT(n, 52);
    CHECK_INT(parse(buf, n, &h, NULL), 52);
    CHECK_INT(h.family, AF_INET6);
    CHECK(memcmp(h.src, body, 16) == 0);
    CHECK(memcmp(h.dst, body + 16, 16) == 0);
    CHECK_UINT(h.src_port, 65535);
    CHECK_UINT(h.dst_port, 0);
}

static void test_v2_local_unspec_unix(void)
{
    unsigned char buf[512], body[300];
    struct fg_proxy_hdr h;
    size_t n;

    memset(body, 0x5A, sizeof(body));

    /* LOCAL, empty: the health checks of the balancer itself. */
    n = v2(buf, 0x20, 0x00, NULL, 0);
    memset(&h, 0xAA, sizeof(h));
    CHECK_INT(parse(buf, n, &h, NULL), 16);
    CHECK_INT(h.family, AF_UNSPEC);
    CHECK_UINT(h.src_port, 0);
    CHECK_UINT(h.src[0], 0);

    /* LOCAL with an address block: skipped, family ignored. */
    n = v2(buf, 0x20, 0x11, body4, sizeof(body4));
    CHECK_INT(parse(buf, n, &h, NULL), 28);
    CHECK_INT(h.family, AF_UNSPEC);
    CHECK_UINT(h.src_port, 0);
    n = v2(buf, 0x20, 0xFF, body, 7);
    CHECK_INT(parse(buf, n, &h, NULL), 23);
    CHECK_INT(h.family, AF_UNSPEC);

    /* PROXY over UNSPEC: the block is skipped whatever it holds. */
    n = v2(buf, 0x21, 0x00, NULL, 0);
    CHECK_INT(parse(buf, n, &h, NULL), 16);
    CHECK_INT(h.family, AF_UNSPEC);
    n = v2(buf, 0x21, 0x00, body, 5);
    CHECK_INT(parse(buf, n, &h, NULL), 21);
    CHECK_INT(h.family, AF_UNSPEC);

    /* PROXY over UNIX stream: 216 bytes of paths, treated as UNSPEC. */
    n = v2(buf, 0x21, 0x31, body, 216);
    memset(&h, 0xAA, sizeof(h));
    CHECK_INT(parse(buf, n, &h, NULL), 16 + 216);
    CHECK_INT(h.family, AF_UNSPEC);
    CHECK_UINT(h.src[0], 0);
    CHECK_UINT(h.dst_port, 0);
    CHECK(is_error(buf, v2(buf, 0x21, 0x31, body, 215)));
}

static void test_v2_tlvs(void)
{
    static const unsigned char tlvs[] = {
        0x01, 0x00, 0x02, 'h', '2',                                                 /* ALPN */
        0x02, 0x00, 0x0B, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',   /* authority */
        0x04, 0x00, 0x00,                                                           /* NOOP */
        0x05, 0x00, 0x03, 1, 2, 3,                                                  /* unique id */
    };
    unsigned char buf[FG_PP_V2_MAX + 64], body[FG_PP_V2_MAX];
    struct fg_proxy_hdr h;
    size_t n;

    memcpy(body, body4, sizeof(body4));
    memcpy(body + sizeof(body4), tlvs, sizeof(tlvs));
    n = v2(buf, 0x21, 0x11, body, sizeof(body4) + sizeof(tlvs));
    CHECK_INT(parse(buf, n, &h, NULL), 16 + 12 + sizeof(tlvs));
    CHECK_INT(h.family, AF_INET);
    CHECK_UINT(h.src_port, 51000);
    CHECK_UINT(h.dst_port, 443);
    check_bytewise(buf, n, 0, "v2 IPv4 + TLVs");

    /* IPv6 with a TLV. */
    size_t a = body6(body);
    memcpy(body + a, tlvs, 5);
    n = v2(buf, 0x21, 0x21, body, a + 5);
    CHECK_INT(parse(buf, n, &h, NULL), 16 + 36 + 5);
    CHECK_INT(h.family, AF_INET6);

    /* A TLV whose header or value runs past the block. */
    memcpy(body, body4, sizeof(body4));
    memcpy(body + sizeof(body4), tlvs, sizeof(tlvs));
    CHECK(is_error(buf, v2(buf, 0x21, 0x11, body, sizeof(body4) + 1)));
    CHECK(is_error(buf, v2(buf, 0x21, 0x11, body, sizeof(body4) + 2)));
    CHECK(is_error(buf, v2(buf, 0x21, 0x11, body, sizeof(body4) + 4)));
    CHECK(is_error(buf, v2(buf, 0x21, 0x11, body, sizeof(body4) + sizeof(tlvs) - 1)));
    CHECK(is_error(buf, v2(buf, 0x21, 0x11, body, sizeof(body4) + sizeof(tlvs) + 1)));
    body[sizeof(body4) + 1] = 0xFF;   /* ALPN length 0xFF02 */
    CHECK(is_error(buf, v2(buf, 0x21, 0x11, body, sizeof(body4) + sizeof(tlvs))));

    /* The cap: a 4096-byte header passes, 4097 does not, and that is known
     * from its first 16 bytes. */
    memcpy(body, body4, sizeof(body4));
    size_t pad = FG_PP_V2_MAX - 16 - 12 - 3;
    body[12] = 0x04;
    body[13] = (unsigned char)(pad >> 8);
    body[14] = (unsigned char)pad;
    memset(body + 15, 0, pad);
    n = v2(buf, 0x21, 0x11, body, FG_PP_V2_MAX - 16);
    CHECK_INT(n, FG_PP_V2_MAX);
    CHECK_INT(parse(buf, n, &h, NULL), FG_PP_V2_MAX);
    CHECK_INT(h.family, AF_INET);
    pad++;
    body[13] = (unsigned char)(pad >> 8);
    body[14] = (unsigned char)pad;
    n = v2(buf, 0x21, 0x11, body, FG_PP_V2_MAX - 16 + 1);
    CHECK(is_error(buf, 16));
    CHECK(is_error(buf, n));
    /* Also under LOCAL and UNSPEC. */
    CHECK(is_error(buf, v2(buf, 0x20, 0x00, body, FG_PP_V2_MAX - 15)));
    CHECK(is_error(buf, v2(buf, 0x21, 0x00, body, FG_PP_V2_MAX - 15)));
    buf[14] = buf[15] = 0xFF;
    CHECK(is_error(buf, 16));
}

static void test_v2_bad(void)
{
    unsigned char buf[64];
    static const unsigned vc_bad[] = { 0x01, 0x11, 0x31, 0xF1, 0x22, 0x23, 0x2F, 0x00, 0x10 };
    static const unsigned fam_bad[] = {
        0x01, 0x02, 0x10, 0x12, 0x13, 0x20, 0x22, 0x30, 0x32, 0x40, 0x41, 0xFF,
    };

    /* Version and command: refused as soon as the 13th byte arrives. */
    for (size_t i = 0; i < sizeof(vc_bad) / sizeof(vc_bad[0]); i++) {
        size_t n = v2(buf, vc_bad[i], 0x11, body4, sizeof(body4));
        CHECK_MSG(is_error(buf, 13), "ver/cmd 0x%02x, 13 bytes", vc_bad[i]);
        CHECK_MSG(is_error(buf, n), "ver/cmd 0x%02x", vc_bad[i]);
    }
    /* Family and transport (DGRAM, unknown nibbles): at the 14th byte. */
    for (size_t i = 0; i < sizeof(fam_bad) / sizeof(fam_bad[0]); i++) {
        size_t n = v2(buf, 0x21, fam_bad[i], body4, sizeof(body4));
        CHECK_MSG(parse(buf, 13, NULL, NULL) == FG_PP_NEED_MORE, "fam 0x%02x, 13 bytes", fam_bad[i]);
        CHECK_MSG(is_error(buf, 14), "fam 0x%02x, 14 bytes", fam_bad[i]);
        CHECK_MSG(is_error(buf, n), "fam 0x%02x", fam_bad[i]);
    }
    /* Address blocks shorter than the family's: at the 16th byte. */
    CHECK(is_error(buf, v2(buf, 0x21, 0x11, body4, 11)));
    CHECK(is_error(buf, 16));
    CHECK(is_error(buf, v2(buf, 0x21, 0x11, NULL, 0)));
    CHECK(is_error(buf, v2(buf, 0x21, 0x21, body4, 12)));
    CHECK(is_error(buf, 16));
    unsigned char body[36];
    CHECK(is_error(buf, v2(buf, 0x21, 0x21, body, body6(body) - 1)));

    /* Each byte of the signature, wrong: refused at that byte. */
    for (size_t i = 0; i < sizeof(v2_sig); i++) {
        size_t n = v2(buf, 0x21, 0x11, body4, sizeof(body4));
        buf[i] ^= 0x20;
        CHECK_MSG(is_error(buf, i + 1), "signature byte %zu", i);
        CHECK_MSG(is_error(buf, n), "signature byte %zu, whole", i);
        if (i > 0)
            CHECK_MSG(parse(buf, i, NULL, NULL) == FG_PP_NEED_MORE, "signature byte %zu, before", i);
    }
}

static void test_v2_bytewise(void)
{
    unsigned char buf[512], body[300];
    size_t n;

    memset(body, 0x33, sizeof(body));
    n = v2(buf, 0x21, 0x11, body4, sizeof(body4));
    memcpy(buf + n, HTTP2_PREFACE, sizeof(HTTP2_PREFACE) - 1);
    check_bytewise(buf, n, sizeof(HTTP2_PREFACE) - 1, "v2 IPv4 + h2 preface");

    n = v2(buf, 0x21, 0x21, body, body6(body));
    memcpy(buf + n, HTTP1, sizeof(HTTP1) - 1);
    check_bytewise(buf, n, sizeof(HTTP1) - 1, "v2 IPv6 + HTTP/1.1");

    memset(body, 0x33, sizeof(body));
    n = v2(buf, 0x20, 0x00, NULL, 0);
    memcpy(buf + n, HTTP1, sizeof(HTTP1) - 1);
    check_bytewise(buf, n, sizeof(HTTP1) - 1, "v2 LOCAL");

    n = v2(buf, 0x20, 0x11, body4, sizeof(body4));
    check_bytewise(buf, n, 0, "v2 LOCAL with addresses");

    n = v2(buf, 0x21, 0x00, body, 9);
    memcpy(buf + n, HTTP2_PREFACE, sizeof(HTTP2_PREFACE) - 1);
    check_bytewise(buf, n, sizeof(HTTP2_PREFACE) - 1, "v2 UNSPEC");

    n = v2(buf, 0x21, 0x31, body, 216);
    check_bytewise(buf, n, 0, "v2 UNIX");
}

/* Both ------------------------------------------------------------------ */

static void test_not_proxy(void)
{
    static const struct bytes bad[] = {
        B("GET / HTTP/1.1\r\n"), B(HTTP1), B("G"), B(HTTP2_PREFACE), B("PRI"),
        B("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),   /* TLS ClientHello */
        B("\r\n\r\nGET"), B("\r\n\r\n\x00\r\nQUIX"), B("\n"), B(" "), B("\0"),
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_MSG(is_error(bad[i].s, bad[i].n), "bad[%zu] is not an error", i);
    /* The HTTP/2 preface shares "PR" with "PROXY ": only its third byte
     * tells. */
    CHECK_INT(parse("PR", 2, NULL, NULL), FG_PP_NEED_MORE);
    CHECK(is_error("PRI", 3));
    CHECK_INT(parse("", 0, NULL, NULL), FG_PP_NEED_MORE);
    CHECK_INT(parse(NULL, 0, NULL, NULL), FG_PP_NEED_MORE);
}

/* Once an error, always an error; once complete, always the same length. */
static void check_monotonic(const unsigned char *buf, size_t n, const char *name)
{
    int first = FG_PP_NEED_MORE;

    for (size_t len = 0; len <= n; len++) {
        int rc = parse(buf, len, NULL, NULL);
        if (first != FG_PP_NEED_MORE)
            CHECK_MSG(rc == first, "%s: %zu bytes: rc %d after %d", name, len, rc, first);
        else
            first = rc;
    }
}

static void test_monotonic(void)
{
    unsigned char buf[512];

    for (size_t i = 0; i < sizeof(v1_bad) / sizeof(v1_bad[0]); i++) {
        memcpy(buf, v1_bad[i].s, v1_bad[i].n);
        memcpy(buf + v1_bad[i].n, HTTP1, sizeof(HTTP1) - 1);
        check_monotonic(buf, v1_bad[i].n + sizeof(HTTP1) - 1, v1_bad[i].s);
    }
    for (unsigned vc = 0; vc < 256; vc += 0x0F) {
        for (unsigned fam = 0; fam < 256; fam += 0x11) {
            size_t n = v2(buf, vc, fam, body4, sizeof(body4));
            memcpy(buf + n, HTTP1, sizeof(HTTP1) - 1);
            check_monotonic(buf, n + sizeof(HTTP1) - 1, "v2");
        }
    }
}

int main(void)
{
    UNIT_RUN(test_v1_tcp4);
    UNIT_RUN(test_v1_tcp6);
    UNIT_RUN(test_v1_unknown);
    UNIT_RUN(test_v1_too_long);
    UNIT_RUN(test_v1_malformed);
    UNIT_RUN(test_v1_partial);
    UNIT_RUN(test_v1_bytewise);
    UNIT_RUN(test_v2_ipv4);
    UNIT_RUN(test_v2_ipv6);
    UNIT_RUN(test_v2_local_unspec_unix);
    UNIT_RUN(test_v2_tlvs);
    UNIT_RUN(test_v2_bad);
    UNIT_RUN(test_v2_bytewise);
    UNIT_RUN(test_not_proxy);
    UNIT_RUN(test_monotonic);
    return unit_summary();
}
