#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg/arena.h"

/* 4 KiB covers the head of a typical API request and its response. */
#define BLOCK_SIZE 4096

struct fg_arena_block {
    struct fg_arena_block *next;
    size_t cap, len;
    char data[];
};

static struct fg_arena_block *block_new(size_t min)
{
    size_t cap = min > BLOCK_SIZE ? min : BLOCK_SIZE;
    struct fg_arena_block *b = malloc(sizeof(*b) + cap);

    if (b) {
        b->next = NULL;
        b->cap = cap;
        b->len = 0;
    }
    return b;
}

void fg_arena_init(struct fg_arena *a)
{
    a->head = a->first = NULL;
    a->used = 0;
}

static void free_chain(struct fg_arena_block *b, struct fg_arena_block *stop)
{
    while (b && b != stop) {
        struct fg_arena_block *next = b->next;
        free(b);
        b = next;
    }
}

void fg_arena_reset(struct fg_arena *a)
{
    /* newest-first chain: free everything newer than the first block */
    free_chain(a->head, a->first);
    if (a->first) {
        a->first->len = 0;
        a->first->next = NULL;
    }
    a->head = a->first;
    a->used = 0;
}

void fg_arena_free(struct fg_arena *a)
{
    free_chain(a->head, NULL);
    fg_arena_init(a);
}

void *fg_arena_alloc_object(struct fg_arena *a, size_t len)
{
    const uintptr_t align = _Alignof(max_align_t);
    char *p = fg_arena_alloc(a, len + align - 1);

    return p ? (void *)(((uintptr_t)p + align - 1) & ~(align - 1)) : NULL;
}

char *fg_arena_alloc(struct fg_arena *a, size_t len)
{
    struct fg_arena_block *b = a->head;
    char *p;

    if (!b || b->cap - b->len < len) {
        b = block_new(len);
        if (!b)
            return NULL;
        b->next = a->head;
        a->head = b;
        if (!a->first)
            a->first = b;
    }
    p = b->data + b->len;
    b->len += len;
    a->used += len;
    return p;
}

char *fg_arena_dup(struct fg_arena *a, const char *s, size_t len)
{
    char *p = fg_arena_alloc(a, len);

    if (p && len)
        memcpy(p, s, len);
    return p;
}

/* Copies and lower-cases ASCII letters eight bytes at a time: every header
 * name of every request and response comes through here, and the
 * byte-at-a-time loop was the arena's largest cost. Bytes >= 0x80 are
 * left alone. */
static void copy_lower(char *dst, const char *src, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w, low7, ge_a, gt_z;

        memcpy(&w, src + i, 8);
        low7 = w & ~high;                       /* no carries between bytes */
        ge_a = low7 + ones * (0x80 - 'A');      /* high bit: byte >= 'A' */
        gt_z = low7 + ones * (0x7f - 'Z');      /* high bit: byte > 'Z' */
        w |= ((ge_a ^ gt_z) & ~w & high) >> 2;  /* 0x80 >> 2 == 0x20 */
        memcpy(dst + i, &w, 8);
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
    }
}

int fg_arena_append(struct fg_arena *a, char **s, size_t *slen, const char *data, size_t len,
                    int lower)
{
    struct fg_arena_block *b = a->head;
    char *dst;

    if (*s && b && *s + *slen == b->data + b->len && b->cap - b->len >= len) {
        dst = b->data + b->len;         /* grow in place */
        b->len += len;
        a->used += len;
    } else {
        char *n = fg_arena_alloc(a, *slen + len);
        if (!n)
            return -1;
        if (*slen)
            memcpy(n, *s, *slen);
        *s = n;
        dst = n + *slen;
    }
    if (lower)
        copy_lower(dst, data, len);
    else
        memcpy(dst, data, len);
    *slen += len;
    return 0;
}
