/* Finding the top-level "model" of a JSON body (fg/json_model.h). A scanner,
 * not a validator: it follows strings (with escapes), nesting and literals
 * far enough to know where each top-level member starts and ends; the
 * backend still parses the body. */
#include "config.h"

#include <string.h>

#include "fg/json_model.h"

struct scan {
    const char *p, *end;
};

static void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* At a '"': moves past the closing quote. */
static int skip_string(struct scan *s)
{
    s->p++;
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '\\') {
            if (s->p >= s->end)
                return -1;
            s->p++;
        } else if (c == '"') {
            return 0;
        } else if ((unsigned char)c < 0x20) {
            return -1;
        }
    }
    return -1;
}

/* Any value: string, number, literal, or a nested object/array. */
static int skip_value(struct scan *s)
{
    const char *b;

    ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == '"')
        return skip_string(s);
    if (*s->p == '{' || *s->p == '[') {
        int depth = 0;
        while (s->p < s->end) {
            char c = *s->p;
            if (c == '"') {
                if (skip_string(s) < 0)
                    return -1;
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    s->p++;
                    return 0;
                }
            }
            s->p++;
        }
        return -1;
    }
    b = s->p;                   /* number or literal: up to a delimiter */
    while (s->p < s->end && *s->p && !strchr(",}] \t\r\n", *s->p))
        s->p++;
    return s->p > b ? 0 : -1;
}

int fg_json_find_model(const char *text, size_t len, size_t *start, size_t *end)
{
    struct scan s = {text, text + len};

    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    s.p++;
    ws(&s);
    if (s.p < s.end && *s.p == '}')
        return 0;
    while (s.p < s.end) {
        const char *k;
        int is_model;

        ws(&s);
        if (s.p >= s.end || *s.p != '"')
            return -1;
        k = s.p;
        if (skip_string(&s) < 0)
            return -1;
        is_model = s.p - k == 7 && !memcmp(k, "\"model\"", 7);
        ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return -1;
        s.p++;
        ws(&s);
        if (is_model && s.p < s.end && *s.p == '"') {
            const char *v = s.p;
            if (skip_string(&s) < 0)
                return -1;
            *start = (size_t)(v - text);
            *end = (size_t)(s.p - text);
            return 1;
        }
        if (skip_value(&s) < 0)
            return -1;
        ws(&s);
        if (s.p >= s.end)
            return -1;
        if (*s.p == '}')
            return 0;
        if (*s.p != ',')
            return -1;
        s.p++;
    }
    return -1;
}

int fg_json_model_unambiguous(const char *text, size_t len)
{
    struct scan s = {text, text + len};
    unsigned models = 0;

    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return 1;                       /* not an object: it names no model */
    s.p++;
    ws(&s);
    if (s.p < s.end && *s.p == '}')
        return 1;
    while (s.p < s.end) {
        const char *k;

        ws(&s);
        if (s.p >= s.end || *s.p != '"')
            return 0;
        k = s.p;
        if (skip_string(&s) < 0)
            return 0;
        /* an escaped key may decode to "model": a JSON library would see
         * a second model where this scanner sees none */
        if (memchr(k, '\\', (size_t)(s.p - k)) ||
            (s.p - k == 7 && !memcmp(k, "\"model\"", 7) && ++models > 1))
            return 0;
        ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return 0;
        s.p++;
        ws(&s);
        if (skip_value(&s) < 0)
            return 0;
        ws(&s);
        if (s.p >= s.end)
            return 0;
        if (*s.p == '}')
            return 1;
        if (*s.p != ',')
            return 0;
        s.p++;
    }
    return 0;
}
