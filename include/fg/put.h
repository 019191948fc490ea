/* Writing a head into space reserved for it: both HTTP/1.1 serialisers (the
 * request to a backend, the response to a client) size the head first,
 * reserve that much of the output buffer once, and fill it with these. */
#ifndef FG_PUT_H
#define FG_PUT_H

#include <stdint.h>
#include <string.h>

/* Copies <n> bytes of <s> to <p>; returns <n>. */
static inline size_t fg_put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

#define FG_PUT_LIT(p, lit) fg_put((p), (lit), sizeof(lit) - 1)

/* Longest output of fg_put_u64 (UINT64_MAX) and of fg_put_hex. */
#define FG_PUT_U64_MAX 20
#define FG_PUT_HEX_MAX 16

/* Writes <v> in decimal, no terminator; returns the length. Numbers in
 * every head (content-length, chunk sizes) go through here rather than
 * sprintf, whose format parsing cost more than the rest of a head. */
static inline size_t fg_put_u64(char *p, uint64_t v)
{
    char tmp[FG_PUT_U64_MAX];
    size_t n = 0;

    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(p, tmp + sizeof(tmp) - n, n);
    return n;
}

/* Writes <v> in lower-case hexadecimal (a chunk size), no terminator. */
static inline size_t fg_put_hex(char *p, uint64_t v)
{
    char tmp[FG_PUT_HEX_MAX];
    size_t n = 0;

    do {
        tmp[sizeof(tmp) - ++n] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    memcpy(p, tmp + sizeof(tmp) - n, n);
    return n;
}

/* Writes a status code as exactly three digits (callers keep it < 1000). */
static inline size_t fg_put_status(char *p, unsigned status)
{
    p[0] = (char)('0' + status / 100 % 10);
    p[1] = (char)('0' + status / 10 % 10);
    p[2] = (char)('0' + status % 10);
    return 3;
}

#endif
