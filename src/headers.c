/* Header lists and the rules for what crosses the proxy. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fg/headers.h"

int fg_headers_add(struct fg_headers *h, char *name, size_t nlen, char *value, size_t vlen)
{
    struct fg_header *e;

    if (h->n == h->cap) {
        unsigned cap = h->cap ? h->cap * 2 : 16;
        struct fg_header *v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    e = &h->v[h->n++];
    e->name = name;
    e->nlen = (uint32_t)nlen;
    e->value = value;
    e->vlen = (uint32_t)vlen;
    e->flags = 0;
    return 0;
}

void fg_headers_reset(struct fg_headers *h) { h->n = 0; }

void fg_headers_free(struct fg_headers *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

struct fg_header *fg_headers_find(const struct fg_headers *h, const char *name, size_t nlen)
{
    for (unsigned i = 0; i < h->n; i++)
        if (h->v[i].nlen == nlen && memcmp(h->v[i].name, name, nlen) == 0)
            return &h->v[i];
    return NULL;
}

static int ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

/* The next non-empty element of a comma-separated list value (RFC 9110 5.6.1:
 * elements may be empty, optional whitespace around them), from *pos on:
 * sets *start and *len and returns 1, or returns 0 at the end. */
static int next_list_element(const char *value, size_t vlen, size_t *pos, size_t *start,
                             size_t *len)
{
    size_t i = *pos;

    while (i < vlen) {
        size_t b, e;
        while (i < vlen && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        b = i;
        while (i < vlen && value[i] != ',')
            i++;
        e = i;
        while (e > b && (value[e - 1] == ' ' || value[e - 1] == '\t'))
            e--;
        if (e > b) {
            *pos = i;
            *start = b;
            *len = e - b;
            return 1;
        }
    }
    *pos = i;
    return 0;
}

int fg_header_has_token(const char *value, size_t vlen, const char *token, size_t tlen)
{
    size_t pos = 0, start, len;

    while (next_list_element(value, vlen, &pos, &start, &len))
        if (ieq(value + start, len, token, tlen))
            return 1;
    return 0;
}

/* The flags of a fixed name (names are stored lower-cased): a switch on the
 * length, then at most two memcmp. */
static uint8_t known_flags(const char *name, size_t len)
{
#define IS(lit) (memcmp(name, lit, sizeof(lit) - 1) == 0)
    switch (len) {
    case 2:
        return IS("te") ? FG_HDR_HOP : 0;
    case 4:
        return IS("host") ? FG_HDR_HOST : 0;
    case 7:
        return IS("upgrade") ? FG_HDR_HOP : 0;
    case 10:
        return IS("connection") || IS("keep-alive") ? FG_HDR_HOP : 0;
    case 12:
        return IS("x-request-id") ? FG_HDR_REQID : 0;
    case 14:
        return IS("content-length") ? FG_HDR_FRAMING : 0;
    case 15:
        return IS("x-forwarded-for") ? FG_HDR_XFF : 0;
    case 16:
        return IS("proxy-connection") ? FG_HDR_HOP : 0;
    case 17:
        return IS("transfer-encoding") ? FG_HDR_FRAMING | FG_HDR_HOP
             : IS("x-forwarded-proto") ? FG_HDR_XFP : 0;
    default:
        return 0;
    }
#undef IS
}

/* Connection: a, b  makes headers a and b hop-by-hop (RFC 9110 7.6.1). Each
 * token of the value is matched against the names of its length only. */
static void mark_connection_tokens(struct fg_headers *h, const char *value, size_t vlen)
{
    size_t pos = 0, start, len;

    while (next_list_element(value, vlen, &pos, &start, &len)) {
        for (unsigned j = 0; j < h->n; j++) {
            struct fg_header *e = &h->v[j];
            if (!(e->flags & FG_HDR_HOP) && ieq(e->name, e->nlen, value + start, len))
                e->flags |= FG_HDR_HOP;
        }
    }
}

void fg_headers_classify(struct fg_headers *h)
{
    int has_connection = 0;

    for (unsigned i = 0; i < h->n; i++) {
        struct fg_header *e = &h->v[i];
        e->flags = known_flags(e->name, e->nlen);
        if (e->nlen == 10 && memcmp(e->name, "connection", 10) == 0)
            has_connection = 1;
    }
    if (!has_connection)
        return;
    for (unsigned i = 0; i < h->n; i++) {
        struct fg_header *c = &h->v[i];
        if (c->nlen == 10 && memcmp(c->name, "connection", 10) == 0)
            mark_connection_tokens(h, c->value, c->vlen);
    }
}

/* tchar per RFC 9110 5.6.2 */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
};

int fg_is_token(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!tchar[(unsigned char)s[i]])
            return 0;
    return 1;
}

int fg_is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

int fg_host_valid(const char *s, size_t len)
{
    size_t i = 0;

    if (len && s[0] == '[') {
        for (i = 1; i < len && s[i] != ']'; i++)
            if (!s[i] || !strchr("0123456789abcdefABCDEF:.", s[i]))
                return 0;
        if (i == len || i == 1)
            return 0;
        i++;                            /* past ']' */
    } else {
        /* unreserved / pct-encoded / sub-delims */
        for (; i < len && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c && strchr("-._~!$&'()*+,;=%", c))))
                return 0;
        }
    }
    if (i == len)
        return 1;
    if (s[i] != ':')
        return 0;
    for (i++; i < len; i++)             /* the port: digits (maybe none) */
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}
