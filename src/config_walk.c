/* The configuration loader's machinery (config-walk.h): messages, the
 * generic walk over field tables, and the value checks several parts of
 * the schema share.
 *
 * Errors carry "FILE:LINE:COL: JSON-PATH: reason". The loader keeps the path
 * of the value being checked as a stack of segments; json_pos.c turns it
 * into a line and column by scanning the text again, which only happens
 * once, on the error path. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1           /* GNU strerror_r(), which returns its message */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-walk.h"

char *vformat(const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

int fail(struct ctx *c, int at, const char *fmt, ...)
{
    unsigned line = 1, col = 1;
    va_list ap;

    if (*c->err)                /* keep the first, most precise, message */
        return -1;
    va_start(ap, fmt);
    char *reason = vformat(fmt, ap);
    va_end(ap);
    char *path = fg_json_path_format(c->path, c->depth);
    /* The path exists in the text jansson parsed, so the lookup only fails
     * on a bug; 1:1 then still makes a well-formed message. */
    (void)fg_json_pos(c->text, c->len, c->path, c->depth, at == AT_KEY, &line, &col);
    if (reason && path)
        *c->err = format("%s:%u:%u: %s: %s", c->name, line, col, path, reason);
    free(reason);
    free(path);
    return -1;
}

void push_key(struct ctx *c, const char *key)
{
    /* The schema is at most 5 levels deep and unknown keys stop the walk,
     * so this bound is a programming error, not an input error. */
    if (c->depth >= FG_JSON_PATH_MAX)
        abort();
    c->path[c->depth++] = (struct fg_json_seg){.key = key};
}

void push_index(struct ctx *c, size_t index)
{
    if (c->depth >= FG_JSON_PATH_MAX)
        abort();
    c->path[c->depth++] = (struct fg_json_seg){.index = index};
}

void pop(struct ctx *c)
{
    c->depth--;
}

void set_defaults(const struct field *tab, void *base)
{
    char *b = base;
    for (const struct field *f = tab; f->key; f++) {
        switch (f->type) {
        case FT_UINT: *(unsigned *)(b + f->offset) = (unsigned)f->def; break;
        case FT_INT: *(int *)(b + f->offset) = (int)f->def; break;
        case FT_U64: *(uint64_t *)(b + f->offset) = (uint64_t)f->def; break;
        case FT_ENUM: *(int *)(b + f->offset) = (int)f->def; break;
        case FT_OBJ: set_defaults(f->aux, b + f->offset); break;
        default: break;
        }
    }
}

static const char *range_text(const struct field *f, char *buf, size_t size)
{
    if (f->max == INT64_MAX)
        snprintf(buf, size, "an integer >= %lld", (long long)f->min);
    else
        snprintf(buf, size, "an integer in %lld..%lld", (long long)f->min, (long long)f->max);
    return buf;
}

/* "expected "a" or "b"" from a NULL-terminated name list. */
int fail_enum(struct ctx *c, const char *const *names)
{
    char buf[256];
    size_t n = 0, used = 0;
    while (names[n])
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof buf; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + used, sizeof buf - used, "%s\"%s\"", sep, names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return fail(c, AT_VALUE, "expected %s", buf);
}

const char *nonempty_string(json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

int set_field(struct ctx *c, const struct field *f, json_t *v, void *base)
{
    char *dst = (char *)base + f->offset;
    char buf[96];
    const char *s, *why;

    switch (f->type) {
    case FT_UINT: case FT_INT: case FT_U64: {
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
        if (!json_is_integer(v) || n < f->min || n > f->max)
            return fail(c, AT_VALUE, "must be %s", range_text(f, buf, sizeof buf));
        if (f->type == FT_UINT)
            *(unsigned *)dst = (unsigned)n;
        else if (f->type == FT_INT)
            *(int *)dst = (int)n;
        else
            *(uint64_t *)dst = (uint64_t)n;
        return 0;
    }
    case FT_ENUM: {
        const char *const *names = f->aux;
        s = json_is_string(v) ? json_string_value(v) : NULL;
        for (int i = 0; s && names[i]; i++) {
            if (strcmp(s, names[i]) == 0) {
                *(int *)dst = i;
                return 0;
            }
        }
        return fail_enum(c, names);
    }
    case FT_ADDR:
        if (!(s = nonempty_string(v)))
            return fail(c, AT_VALUE, "must be a non-empty string");
        if (fg_addr_parse(s, (struct fg_addr *)dst, &why) < 0) {
            char *q = fg_json_quote(s);
            fail(c, AT_VALUE, "invalid address %s: %s", q ? q : "", why);
            free(q);
            return -1;
        }
        return 0;
    case FT_FILE:
        return set_file(c, v, (char **)dst);
    case FT_OBJ:
        if (!json_is_object(v))
            return fail(c, AT_VALUE, "must be an object");
        return walk(c, v, f->aux, dst);
    case FT_FN:
        return f->fn(c, v, base);
    }
    return fail(c, AT_VALUE, "internal error: bad field type");
}

/* Applies table <tab> to JSON object <obj>, filling the struct at <base>.
 * The caller has checked that <obj> is an object and pushed its path.
 * Unknown keys are looked for first, so a misspelt key is reported as such
 * rather than as the required key it was meant to be; then fields are set
 * in table order, whatever the order in the file. */
int walk(struct ctx *c, json_t *obj, const struct field *tab, void *base)
{
    const char *key;
    json_t *v;

    set_defaults(tab, base);
    json_object_foreach(obj, key, v) {
        const struct field *f = tab;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (!f->key) {
            char *q = fg_json_quote(key);
            push_key(c, key);
            fail(c, AT_KEY, "unknown key %s", q ? q : "");
            free(q);
            return -1;
        }
    }
    for (const struct field *f = tab; f->key; f++) {
        v = json_object_get(obj, f->key);
        if (!v) {
            if (f->flags & F_REQUIRED)
                return fail(c, AT_VALUE, "missing required key \"%s\"", f->key);
            continue;
        }
        push_key(c, f->key);
        if (set_field(c, f, v, base) < 0)
            return -1;
        pop(c);
    }
    return 0;
}

/* Fails, at the key, on the first key of object <obj> not in <keys>
 * (NULL-terminated): the hand-written objects are as strict as the tables. */
int only_keys(struct ctx *c, json_t *obj, const char *const *keys)
{
    const char *key;
    json_t *e;

    json_object_foreach(obj, key, e) {
        unsigned i = 0;
        while (keys[i] && strcmp(keys[i], key))
            i++;
        if (!keys[i]) {
            char *q = fg_json_quote(key);
            push_key(c, key);
            fail(c, AT_KEY, "unknown key %s", q ? q : "");
            free(q);
            return -1;
        }
    }
    return 0;
}

int oom(struct ctx *c)
{
    return fail(c, AT_VALUE, "out of memory");
}

int copy_string(struct ctx *c, json_t *v, char **dst, size_t *len)
{
    if (!(*dst = strdup(json_string_value(v))))
        return oom(c);
    *len = json_string_length(v);
    return 0;
}

/* RFC 9110 tchar */
static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

int is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* {"name": "value", ...} into an array; header names must be tokens and are
 * folded to lower case. */
int set_kv(struct ctx *c, json_t *v, struct fg_match_kv **out, unsigned *n, int headers)
{
    size_t count = json_is_object(v) ? json_object_size(v) : 0;
    const char *key;
    json_t *e;

    if (count == 0)
        return fail(c, AT_VALUE, "must be a non-empty object of %s", headers ?
                    "header names to values" : "parameter names to values");
    if (!(*out = calloc(count, sizeof(**out))))
        return oom(c);
    json_object_foreach(v, key, e) {
        struct fg_match_kv *kv = &(*out)[(*n)++];   /* counted now: freed whatever happens */
        push_key(c, key);
        if (headers && !is_token(key))
            return fail(c, AT_KEY, "is not a header name");
        if (!headers && !*key)
            return fail(c, AT_KEY, "must not be empty");
        if (!json_is_string(e))
            return fail(c, AT_VALUE, "must be a string");
        if (!(kv->name = strdup(key)) || copy_string(c, e, &kv->value, &kv->value_len) < 0)
            return oom(c);
        kv->name_len = strlen(key);
        if (headers)
            for (char *p = kv->name; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        pop(c);
    }
    return 0;
}

/* "10.0.0.0/8", "2001:db8::/32", or one address (all its bits). */
int parse_cidr(const char *s, struct fg_cidr *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    unsigned max;
    char *end;
    unsigned long bits;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    out->bits = max;
    if (slash) {
        if (!slash[1] || slash[1] < '0' || slash[1] > '9')
            return -1;
        bits = strtoul(slash + 1, &end, 10);
        if (*end || bits > max)
            return -1;
        out->bits = (unsigned)bits;
    }
    /* host bits must be 0: "10.1.2.3/8" is more likely a typo than intent */
    for (unsigned i = out->bits; i < max; i++)
        if (out->addr[i / 8] & (0x80 >> (i % 8)))
            return -1;
    return 0;
}

/* Directory of the configuration file, absolute, without a trailing slash
 * (empty for "/"), so relative paths keep meaning the same file whatever the
 * daemon's working directory is later. */
static const char *config_dir(struct ctx *c)
{
    if (c->dir)
        return c->dir;
    const char *slash = strrchr(c->name, '/');
    size_t dlen = slash ? (size_t)(slash - c->name) : 0;
    if (c->name[0] == '/') {
        c->dir = strndup(c->name, dlen);
    } else {
        char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return NULL;
        if (dlen == 0 || (dlen == 1 && c->name[0] == '.'))
            c->dir = strcmp(cwd, "/") == 0 ? strdup("") : strdup(cwd);
        else
            c->dir = format("%s%s%.*s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", (int)dlen, c->name);
        free(cwd);
    }
    return c->dir;
}

char *abs_path(struct ctx *c, const char *s)
{
    const char *dir;

    if (s[0] == '/')
        return strdup(s);
    if (!(dir = config_dir(c)))
        return NULL;
    while (s[0] == '.' && s[1] == '/')
        s += 2;
    return format("%s/%s", dir, s);
}

int set_file(struct ctx *c, json_t *v, char **dst)
{
    const char *s = nonempty_string(v);
    char ebuf[128];
    struct stat st;
    int fd;

    if (!s)
        return fail(c, AT_VALUE, "must be a non-empty string");
    if (s[0] == '/') {
        *dst = strdup(s);
    } else {
        const char *dir = config_dir(c);
        if (!dir) {
            int e = errno;
            return fail(c, AT_VALUE, "cannot resolve %s: current directory: %s", s,
                        strerror_r(e, ebuf, sizeof ebuf));
        }
        while (s[0] == '.' && s[1] == '/')
            s += 2;
        *dst = format("%s/%s", dir, s);
    }
    if (!*dst)
        return oom(c);
    /* Checked now so that -t catches it, although TLS loads the files
     * later: a typo should not wait until the first handshake. */
    if (stat(*dst, &st) < 0) {
        int e = errno;
        return fail(c, AT_VALUE, "cannot read %s: %s", *dst, strerror_r(e, ebuf, sizeof ebuf));
    }
    if (!S_ISREG(st.st_mode))
        return fail(c, AT_VALUE, "%s is not a regular file", *dst);
    if ((fd = open(*dst, O_RDONLY | O_CLOEXEC)) < 0) {
        int e = errno;
        return fail(c, AT_VALUE, "cannot read %s: %s", *dst, strerror_r(e, ebuf, sizeof ebuf));
    }
    close(fd);
    return 0;
}

/* jansson's own error (syntax, duplicate key, too big a number), which it
 * locates itself. A duplicate key gets the same shape as our messages. */
void parse_error(struct ctx *c, const json_error_t *je)
{
    char *path, *key, *q;
    unsigned line, col;

    if (json_error_code(je) == json_error_duplicate_key && je->position >= 0 &&
        fg_json_key_before(c->text, c->len, (size_t)je->position, &path, &key, &line, &col) == 0) {
        q = fg_json_quote(key);
        if (q)
            *c->err = format("%s:%u:%u: %s: duplicate key %s", c->name, line, col, path, q);
        free(q);
        free(path);
        free(key);
        if (*c->err)
            return;
    }
    /* jansson counts a position at the very start of a line as column 0
     * and an empty text as line 1, column 0; editors start at 1. */
    *c->err = format("%s:%d:%d: %s", c->name, je->line < 1 ? 1 : je->line,
                     je->column < 1 ? 1 : je->column, je->text);
}

int load_text(const char *path, char **out, size_t *outlen, char **err)
{
    char ebuf[128], *text = NULL;
    size_t len = 0, cap = 0;
    FILE *f;

    if (!(f = fopen(path, "re"))) {
        int e = errno;
        *err = format("%s: cannot open: %s", path, strerror_r(e, ebuf, sizeof ebuf));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *t = realloc(text, ncap);
            if (!t) {
                *err = format("%s: out of memory", path);
                goto fail;
            }
            text = t;
            cap = ncap;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        *err = format("%s: cannot read: %s", path, strerror_r(e, ebuf, sizeof ebuf));
        goto fail;
    }
    fclose(f);
    *out = text;
    *outlen = len;
    return 0;
fail:
    fclose(f);
    free(text);
    return -1;
}
