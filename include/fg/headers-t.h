/* A header list: pointers into an exchange's arena. Names are lowercase. */
#ifndef FG_HEADERS_T_H
#define FG_HEADERS_T_H

#include <stdint.h>

struct fg_header {
    char *name;
    char *value;
    uint32_t nlen;
    uint32_t vlen;
    uint32_t flags;             /* FG_HDR_* */
};

/* Set by fg_headers_classify(): what the gateway does with the header. */
#define FG_HDR_HOP      0x01    /* hop-by-hop: never forwarded */
#define FG_HDR_FRAMING  0x02    /* content-length / transfer-encoding: re-derived */
#define FG_HDR_HOST     0x04
#define FG_HDR_XFF      0x08    /* x-forwarded-for */
#define FG_HDR_XFP      0x10    /* x-forwarded-proto */
#define FG_HDR_REQID    0x20    /* x-request-id */
/* Set by the proxy: never sent upstream (an API key, or a header the
 * gateway writes itself: geography, a route's upstream_headers). */
#define FG_HDR_DROP     0x40

struct fg_headers {
    struct fg_header *v;
    unsigned n, cap;
};

#endif
