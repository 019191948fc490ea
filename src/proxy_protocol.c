/* PROXY protocol v1 and v2 header parser (fg/proxy_protocol.h), written from
 * the protocol's specification. Every call reparses from the first byte: a
 * header is at most FG_PP_V2_MAX bytes and arrives in a few pieces. */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include "fg/proxy_protocol.h"

#define V1_SIG "PROXY "
#define V1_SIG_LEN (sizeof(V1_SIG) - 1)

/* Version 2: signature, then version/command, family/transport and a
 * big-endian length of what follows the 16 bytes. */
static const unsigned char v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};
#define V2_HDR_LEN 16
#define V2_VERSION 0x2
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_FAM_UNSPEC 0x00          /* UNSPEC over UNSPEC */
#define V2_FAM_TCP4 0x11            /* AF_INET over STREAM */
#define V2_FAM_TCP6 0x21            /* AF_INET6 over STREAM */
#define V2_FAM_UNIX_STREAM 0x31     /* AF_UNIX over STREAM */
#define V2_ADDR_TCP4 12             /* 2 x 4 bytes + 2 x port */
#define V2_ADDR_TCP6 36             /* 2 x 16 bytes + 2 x port */
#define V2_ADDR_UNIX 216            /* 2 x 108 bytes */
#define V2_TLV_HDR 3                /* type, 16-bit length */

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return FG_PP_ERROR;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Version 1 ------------------------------------------------------------- */

/* Is s[0..n) <word> (whole) or the start of it (not whole)? */
static int word_is(const unsigned char *s, size_t n, const char *word, int whole)
{
    size_t wn = strlen(word);

    return (whole ? n == wn : n <= wn) && memcmp(s, word, n) == 0;
}

/* Can s[0..n) begin a dotted quad: four decimal octets of at most 255,
 * no leading zeros (as glibc's inet_pton requires)? */
static int v4_prefix(const unsigned char *s, size_t n)
{
    unsigned dots = 0, digits = 0, octet = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (digits == 0 || ++dots > 3)
                return 0;
            digits = octet = 0;
        } else if (s[i] >= '0' && s[i] <= '9') {
            if (digits == 1 && octet == 0)
                return 0;
            octet = octet * 10 + (unsigned)(s[i] - '0');
            if (++digits > 3 || octet > 255)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Can s[0..n) begin an IPv6 address? Hex digits, colons and the dots of an
 * embedded IPv4 tail; no ":::" and at most one "::". inet_pton has the last
 * word once the field is complete. */
static int v6_prefix(const unsigned char *s, size_t n)
{
    unsigned doubles = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];

        if (c == ':') {
            if (i >= 1 && s[i - 1] == ':' && ++doubles > 1)
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                     c == '.')) {
            return 0;
        }
    }
    return 1;
}

/* An address of family <af> in s[0..n): complete (whole) or a start of one.
 * A complete one is stored to <dst> in network byte order. */
static int v1_addr(const unsigned char *s, size_t n, int af, int whole, unsigned char *dst)
{
    char tmp[INET6_ADDRSTRLEN];
    size_t max = af == AF_INET ? INET_ADDRSTRLEN - 1 : INET6_ADDRSTRLEN - 1;

    if (n > max || !(af == AF_INET ? v4_prefix(s, n) : v6_prefix(s, n)))
        return 0;
    if (!whole)
        return 1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(af, tmp, dst) == 1;
}

/* A port in s[0..n): decimal digits only, no leading zero but "0" itself,
 * at most 65535; complete (whole) or a start of one. */
static int v1_port(const unsigned char *s, size_t n, int whole, uint16_t *port)
{
    unsigned long v = 0;

    if (n == 0)
        return !whole;
    if (n > 5 || (s[0] == '0' && n > 1))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return 0;
    *port = (uint16_t)v;
    return 1;
}

/* The line after "PROXY ": s[0..n), up to its CR when <whole>, else all that
 * arrived so far (then it need only be a start of a valid line). 0 or
 * FG_PP_ERROR. */
static int v1_line(const unsigned char *s, size_t n, int whole, struct fg_proxy_hdr *h,
                   const char **why)
{
    static const char *const bad[4] = {
        "PROXY v1: bad source address", "PROXY v1: bad destination address",
        "PROXY v1: bad source port", "PROXY v1: bad destination port",
    };
    const unsigned char *sp = memchr(s, ' ', n), *p, *end = s + n;
    size_t pn = sp ? (size_t)(sp - s) : n;
    int af;

    if (word_is(s, pn, "UNKNOWN", 1)) {
        /* Whatever follows up to the CRLF is to be ignored. */
        h->family = AF_UNSPEC;
        return 0;
    }
    if (word_is(s, pn, "TCP4", 1))
        af = AF_INET;
    else if (word_is(s, pn, "TCP6", 1))
        af = AF_INET6;
    else if (!sp && !whole &&
             (word_is(s, pn, "UNKNOWN", 0) || word_is(s, pn, "TCP4", 0) || word_is(s, pn, "TCP6", 0)))
        return 0;
    else
        return fail(why, "PROXY v1: protocol not TCP4, TCP6 or UNKNOWN");
    if (!sp)
        return whole ? fail(why, "PROXY v1: no addresses after the protocol") : 0;
    h->family = af;

    /* Four fields, one space before each, none after the last. */
    p = sp + 1;
    for (int k = 0; k < 4; k++) {
        const unsigned char *q = memchr(p, ' ', (size_t)(end - p));
        size_t fn = (size_t)((q ? q : end) - p);
        int last = q == NULL, fwhole = !last || whole, ok;

        if (q && k == 3)
            return fail(why, "PROXY v1: data after the destination port");
        if (last && whole && k < 3)
            return fail(why, "PROXY v1: missing fields");
        if (fn == 0 && fwhole)
            return fail(why, "PROXY v1: empty field (two spaces or a trailing space)");
        if (k < 2)
            ok = v1_addr(p, fn, af, fwhole, k == 0 ? h->src : h->dst);
        else
            ok = v1_port(p, fn, fwhole, k == 2 ? &h->src_port : &h->dst_port);
        if (!ok)
            return fail(why, bad[k]);
        if (last)
            return 0;
        p = q + 1;
    }
    return 0;
}

/* buf[0..len) starts with "PROXY ". */
static int v1_parse(const unsigned char *buf, size_t len, struct fg_proxy_hdr *out,
                    const char **why)
{
    /* The CR of a 107-byte line is at 105: look no further. */
    size_t lim = len < FG_PP_V1_MAX - 1 ? len : FG_PP_V1_MAX - 1, cr;
    struct fg_proxy_hdr h;
    int whole;

    for (cr = V1_SIG_LEN; cr < lim; cr++) {
        if (buf[cr] == '\n')
            return fail(why, "PROXY v1: LF without CR");
        if (buf[cr] == '\r')
            break;
    }
    whole = cr < lim;
    if (!whole && len >= FG_PP_V1_MAX - 1)
        return fail(why, "PROXY v1: no CRLF within 107 bytes");
    if (whole && cr + 1 < len && buf[cr + 1] != '\n')
        return fail(why, "PROXY v1: CR not followed by LF");
    memset(&h, 0, sizeof(h));
    if (v1_line(buf + V1_SIG_LEN, cr - V1_SIG_LEN, whole, &h, why) < 0)
        return FG_PP_ERROR;
    if (!whole || cr + 1 == len)
        return FG_PP_NEED_MORE;
    if (out)
        *out = h;
    return (int)(cr + 2);
}

/* Version 2 ------------------------------------------------------------- */

/* Do the TLVs tile p[0..n) exactly? */
static int v2_tlvs_ok(const unsigned char *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        if (n - off < V2_TLV_HDR)
            return 0;
        off += V2_TLV_HDR + get16(p + off + 1);
        if (off > n)
            return 0;
    }
    return 1;
}

/* buf[0..len) starts with the 12-byte signature. Each byte is judged as soon
 * as it is there. */
static int v2_parse(const unsigned char *buf, size_t len, struct fg_proxy_hdr *out,
                    const char **why)
{
    struct fg_proxy_hdr h;
    unsigned cmd, fam = 0;
    size_t total, alen = 0;

    if (len <= 12)
        return FG_PP_NEED_MORE;
    if (buf[12] >> 4 != V2_VERSION)
        return fail(why, "PROXY v2: version is not 2");
    cmd = buf[12] & 0x0f;
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
        return fail(why, "PROXY v2: command neither LOCAL nor PROXY");
    if (len <= 13)
        return FG_PP_NEED_MORE;
    /* LOCAL: the family is to be ignored, and so is the whole block. */
    if (cmd == V2_CMD_PROXY) {
        fam = buf[13];
        switch (fam) {
        case V2_FAM_UNSPEC:
            break;
        case V2_FAM_TCP4:
            alen = V2_ADDR_TCP4;
            break;
        case V2_FAM_TCP6:
            alen = V2_ADDR_TCP6;
            break;
        case V2_FAM_UNIX_STREAM:
            alen = V2_ADDR_UNIX;
            break;
        default:
            return fail(why, "PROXY v2: not TCP over IPv4 or IPv6, UNIX stream or UNSPEC");
        }
    }
    if (len < V2_HDR_LEN)
        return FG_PP_NEED_MORE;
    total = V2_HDR_LEN + get16(buf + 14);
    if (total > FG_PP_V2_MAX)
        return fail(why, "PROXY v2: header longer than 4096 bytes");
    if (total - V2_HDR_LEN < alen)
        return fail(why, "PROXY v2: address block shorter than its family's");
    if (len < total)
        return FG_PP_NEED_MORE;

    memset(&h, 0, sizeof(h));
    h.family = AF_UNSPEC;
    /* UNSPEC: the block is ignored as a whole, TLVs cannot be found in it. */
    if (cmd == V2_CMD_PROXY && fam != V2_FAM_UNSPEC &&
        !v2_tlvs_ok(buf + V2_HDR_LEN + alen, total - V2_HDR_LEN - alen))
        return fail(why, "PROXY v2: TLVs do not fit the header exactly");
    if (cmd == V2_CMD_PROXY && fam == V2_FAM_TCP4) {
        h.family = AF_INET;
        memcpy(h.src, buf + 16, 4);
        memcpy(h.dst, buf + 20, 4);
        h.src_port = get16(buf + 24);
        h.dst_port = get16(buf + 26);
    } else if (cmd == V2_CMD_PROXY && fam == V2_FAM_TCP6) {
        h.family = AF_INET6;
        memcpy(h.src, buf + 16, 16);
        memcpy(h.dst, buf + 32, 16);
        h.src_port = get16(buf + 48);
        h.dst_port = get16(buf + 50);
    }
    if (out)
        *out = h;
    return (int)total;
}

int fg_proxy_protocol_parse(const unsigned char *buf, size_t len, struct fg_proxy_hdr *out,
                            const char **why)
{
    size_t n;

    if (len == 0)
        return FG_PP_NEED_MORE;
    /* The signatures differ in their first byte: at most one can match. */
    n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    if (memcmp(buf, v2_sig, n) == 0)
        return len < sizeof(v2_sig) ? FG_PP_NEED_MORE : v2_parse(buf, len, out, why);
    n = len < V1_SIG_LEN ? len : V1_SIG_LEN;
    if (memcmp(buf, V1_SIG, n) == 0)
        return len < V1_SIG_LEN ? FG_PP_NEED_MORE : v1_parse(buf, len, out, why);
    return fail(why, "not a PROXY protocol header");
}
