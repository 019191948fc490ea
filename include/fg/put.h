/* Writing a head into space reserved for it: both HTTP/1.1 serialisers (the
 * request to a backend, the response to a client) size the head first,
 * reserve that much of the output buffer once, and fill it with these. */
#ifndef FG_PUT_H
#define FG_PUT_H

#include <string.h>

/* Copies <n> bytes of <s> to <p>; returns <n>. */
static inline size_t fg_put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

#define FG_PUT_LIT(p, lit) fg_put((p), (lit), sizeof(lit) - 1)

#endif
