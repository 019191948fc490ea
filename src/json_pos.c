/* Positions of values inside JSON text (see fg/json_pos.h).
 *
 * Not a parser: jansson has already validated the text, so these scanners
 * only need to step over values, and they do so without recursion (bracket
 * counting) so that deeply nested input cannot exhaust the stack. Every read
 * is checked against the end of the buffer because the text is not
 * NUL-terminated and, for fg_json_key_before(), not complete. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg/json_pos.h"

/* ---- growable string ----------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    int oom;                    /* sticky: once set, buf_take() returns NULL */
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

static char *buf_take(struct buf *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        return b->oom ? NULL : strdup("");
    }
    return b->p;
}

/* ---- lexical helpers ----------------------------------------------------- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* <p> at an opening quote: returns the byte after the closing quote. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\' && ++p >= end)
            return NULL;
    }
    return NULL;
}

/* Characters of true, false, null and numbers. */
static int scalar_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '-' || c == '+' || c == '.';
}

/* <p> at the first byte of a value: returns the byte after it. */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *start = p;
    while (p < end && scalar_char(*p))
        p++;
    return p > start ? p : NULL;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void add_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_add(b, u, n);
}

/* Decodes the string token starting at the opening quote <p>. Returns the
 * malloc'd value, or NULL when malformed, out of memory, or holding a NUL
 * (which no C-string key could equal anyway). */
static char *decode_string(const char *p, const char *end)
{
    const char *e = skip_string(p, end);
    struct buf b = {0};
    if (!e)
        return NULL;
    e--;                        /* the closing quote */
    for (p++; p < e;) {
        if (*p != '\\') {
            buf_addc(&b, *p++);
            continue;
        }
        p++;
        char c = *p++;          /* p < e: skip_string saw a byte after the backslash */
        unsigned cp, lo;
        switch (c) {
        case '"': case '\\': case '/':
            buf_addc(&b, c);
            break;
        case 'b': buf_addc(&b, '\b'); break;
        case 'f': buf_addc(&b, '\f'); break;
        case 'n': buf_addc(&b, '\n'); break;
        case 'r': buf_addc(&b, '\r'); break;
        case 't': buf_addc(&b, '\t'); break;
        case 'u':
            if (hex4(p, e, &cp) < 0)
                goto bad;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, e, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    goto bad;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
                goto bad;
            }
            add_utf8(&b, cp);
            break;
        default:
            goto bad;
        }
    }
    return buf_take(&b);
bad:
    free(b.p);
    return NULL;
}

/* ---- public -------------------------------------------------------------- */

void fg_json_linecol(const char *text, size_t len, size_t offset, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    if (offset > len)
        offset = len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;                /* continuation bytes belong to the previous character */
        }
    }
    *line = l;
    *col = c;
}

int fg_json_pos(const char *text, size_t len, const struct fg_json_seg *path,
                unsigned depth, int at_key, unsigned *line, unsigned *col)
{
    const char *end = text + len;
    const char *p = skip_ws(text, end);

    for (unsigned i = 0; i < depth; i++) {
        const struct fg_json_seg *seg = &path[i];
        int last = i + 1 == depth;
        if (p >= end)
            return -1;
        if (seg->key) {
            if (*p != '{')
                return -1;
            p = skip_ws(p + 1, end);
            for (;;) {
                if (p >= end || *p != '"')
                    return -1;  /* includes '}': no such member */
                const char *kstart = p;
                char *k = decode_string(p, end);
                int match = k && strcmp(k, seg->key) == 0;
                free(k);
                p = skip_string(p, end);
                if (!p || (p = skip_ws(p, end)) >= end || *p != ':')
                    return -1;
                p = skip_ws(p + 1, end);
                if (match) {
                    if (last && at_key)
                        p = kstart;
                    break;
                }
                p = skip_value(p, end);
                if (!p || (p = skip_ws(p, end)) >= end || *p != ',')
                    return -1;
                p = skip_ws(p + 1, end);
            }
        } else {
            if (*p != '[')
                return -1;
            p = skip_ws(p + 1, end);
            for (size_t n = 0; n < seg->index; n++) {
                p = skip_value(p, end);
                if (!p)
                    return -1;
                p = skip_ws(p, end);
                if (p >= end || *p != ',')
                    return -1;
                p = skip_ws(p + 1, end);
            }
            if (p >= end || *p == ']')
                return -1;
        }
    }
    if (p >= end)
        return -1;
    fg_json_linecol(text, len, (size_t)(p - text), line, col);
    return 0;
}

static int simple_key(const char *k)
{
    if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_'))
        return 0;
    for (k++; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '_'))
            return 0;
    return 1;
}

static void add_quoted(struct buf *b, const char *s)
{
    buf_addc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf_addc(b, '\\');
            buf_addc(b, (char)c);
        } else if (c < 0x20 || c == 0x7F) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_add(b, esc, 6);
        } else {
            buf_addc(b, (char)c);
        }
    }
    buf_addc(b, '"');
}

char *fg_json_quote(const char *s)
{
    struct buf b = {0};
    add_quoted(&b, s);
    return buf_take(&b);
}

char *fg_json_path_format(const struct fg_json_seg *path, unsigned depth)
{
    struct buf b = {0};
    buf_addc(&b, '$');
    for (unsigned i = 0; i < depth; i++) {
        if (path[i].key && simple_key(path[i].key)) {
            buf_addc(&b, '.');
            buf_add(&b, path[i].key, strlen(path[i].key));
        } else if (path[i].key) {
            buf_addc(&b, '[');
            add_quoted(&b, path[i].key);
            buf_addc(&b, ']');
        } else {
            char idx[32];
            int n = snprintf(idx, sizeof idx, "[%zu]", path[i].index);
            buf_add(&b, idx, (size_t)n);
        }
    }
    return buf_take(&b);
}

/* An open container while scanning towards the duplicate key. */
struct frame {
    char kind;                  /* '{' or '[' */
    int want_key;               /* object: the next string is a member name */
    size_t index;               /* array: current element */
    const char *key;            /* object: opening quote of the current member name */
};

int fg_json_key_before(const char *text, size_t len, size_t offset, char **path,
                       char **key, unsigned *line, unsigned *col)
{
    const char *end = text + len;
    const char *stop = text + (offset < len ? offset : len);
    const char *p = text;
    struct frame *st = NULL;
    struct fg_json_seg *segs = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;

    /* A flat token walk: the text up to <offset> is a valid JSON prefix, so
     * the stack of open containers and their current keys is the path. */
    while ((p = skip_ws(p, end)) < stop) {
        const char *q;
        switch (*p) {
        case '{': case '[':
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct frame *ns = realloc(st, ncap * sizeof *ns);
                if (!ns)
                    goto out;
                st = ns;
                cap = ncap;
            }
            st[n++] = (struct frame){.kind = *p, .want_key = *p == '{'};
            p++;
            break;
        case '}': case ']':
            if (n == 0)
                goto out;
            n--;
            p++;
            break;
        case ',':
            if (n && st[n - 1].kind == '[')
                st[n - 1].index++;
            else if (n)
                st[n - 1].want_key = 1;
            p++;
            break;
        case ':':
            if (n)
                st[n - 1].want_key = 0;
            p++;
            break;
        case '"':
            q = skip_string(p, end);
            if (!q)
                goto out;
            if (n && st[n - 1].kind == '{' && st[n - 1].want_key)
                st[n - 1].key = p;
            p = q;
            break;
        default:
            q = skip_value(p, end);
            if (!q)
                goto out;
            p = q;
            break;
        }
    }
    if (n == 0 || st[n - 1].kind != '{' || !st[n - 1].key)
        goto out;

    if (n > 0xFFFF)             /* deeper than jansson accepts: not our text */
        goto out;
    segs = calloc(n, sizeof *segs);
    if (!segs)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (st[i].kind == '[') {
            segs[i].index = st[i].index;
            continue;
        }
        if (!st[i].key)
            goto out;
        segs[i].key = decode_string(st[i].key, end);
        if (!segs[i].key)
            goto out;
    }
    *path = fg_json_path_format(segs, (unsigned)n);
    *key = strdup(segs[n - 1].key);
    if (!*path || !*key) {
        free(*path);
        free(*key);
        *path = *key = NULL;
        goto out;
    }
    fg_json_linecol(text, len, (size_t)(st[n - 1].key - text), line, col);
    rc = 0;
out:
    if (segs)
        for (size_t i = 0; i < n; i++)
            free((char *)segs[i].key);
    free(segs);
    free(st);
    return rc;
}
