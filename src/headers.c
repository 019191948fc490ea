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

int fg_header_has_token(const char *value, size_t vlen, const char *token, size_t tlen)
{
    size_t i = 0;

    while (i < vlen) {
        size_t start, end;
        while (i < vlen && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        start = i;
        while (i < vlen && value[i] != ',')
            i++;
        end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end > start && ieq(value + start, end - start, token, tlen))
            return 1;
    }
    return 0;
}

/* Fixed names and the flags they get; looked up by length first so a
 * typical header costs one or two memcmp. */
static const struct { const char *name; uint8_t len; uint8_t flags; } known[] = {
    { "te", 2, FG_HDR_HOP },
    { "host", 4, FG_HDR_HOST },
    { "upgrade", 7, FG_HDR_HOP },
    { "keep-alive", 10, FG_HDR_HOP },
    { "connection", 10, FG_HDR_HOP },
    { "x-request-id", 12, FG_HDR_REQID },
    { "content-length", 14, FG_HDR_FRAMING },
    { "proxy-connection", 16, FG_HDR_HOP },
    { "x-forwarded-for", 15, FG_HDR_XFF },
    { "x-forwarded-proto", 17, FG_HDR_XFP },
    { "transfer-encoding", 17, FG_HDR_FRAMING | FG_HDR_HOP },
};

void fg_headers_classify(struct fg_headers *h)
{
    int has_connection = 0;

    for (unsigned i = 0; i < h->n; i++) {
        struct fg_header *e = &h->v[i];
        e->flags = 0;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (known[k].len == e->nlen && memcmp(known[k].name, e->name, e->nlen) == 0) {
                e->flags = known[k].flags;
                break;
            }
        }
        if (e->nlen == 10 && memcmp(e->name, "connection", 10) == 0)
            has_connection = 1;
    }
    if (!has_connection)
        return;
    /* Connection: a, b  makes headers a and b hop-by-hop (RFC 9110 7.6.1). */
    for (unsigned i = 0; i < h->n; i++) {
        struct fg_header *c = &h->v[i];
        if (c->nlen != 10 || memcmp(c->name, "connection", 10) != 0)
            continue;
        for (unsigned j = 0; j < h->n; j++)
            if (!(h->v[j].flags & FG_HDR_HOP) &&
                fg_header_has_token(c->value, c->vlen, h->v[j].name, h->v[j].nlen))
                h->v[j].flags |= FG_HDR_HOP;
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
