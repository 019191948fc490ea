/* Growable text buffer (fg/jbuf.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg/exchange.h"
#include "fg/jbuf.h"

void fg_jbuf_init(struct fg_jbuf *b, size_t hint)
{
    b->len = 0;
    b->failed = 0;
    b->cap = hint ? hint : 256;
    b->p = malloc(b->cap);
    if (!b->p) {
        b->cap = 0;
        b->failed = 1;
    }
}

void fg_jbuf_free(struct fg_jbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Room for <more> bytes plus a NUL. */
static int reserve(struct fg_jbuf *b, size_t more)
{
    size_t need, cap;
    char *p;

    if (b->failed)
        return -1;
    need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void fg_jbuf_put(struct fg_jbuf *b, const char *s, size_t len)
{
    if (reserve(b, len) < 0)
        return;
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void fg_jbuf_puts(struct fg_jbuf *b, const char *s)
{
    fg_jbuf_put(b, s, strlen(s));
}

void fg_jbuf_printf(struct fg_jbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (reserve(b, 64) < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (reserve(b, (size_t)n) < 0)
            return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void fg_jbuf_json_string(struct fg_jbuf *b, const char *s)
{
    size_t len = strlen(s), n;

    /* worst case: every byte becomes \u00XX */
    if (reserve(b, len * 6 + 2) < 0)
        return;
    b->p[b->len++] = '"';
    n = fg_json_escape(b->p + b->len, b->cap - b->len, s);
    b->len += n;
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

void fg_jbuf_float(struct fg_jbuf *b, float v)
{
    if (reserve(b, 32) < 0)
        return;
    b->len += (size_t)snprintf(b->p + b->len, 32, "%.9g", (double)v);
}

void fg_jbuf_u64(struct fg_jbuf *b, uint64_t v)
{
    char tmp[24];
    size_t n = 0;

    if (reserve(b, 24) < 0)
        return;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        b->p[b->len++] = tmp[--n];
    b->p[b->len] = '\0';
}
