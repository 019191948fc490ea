/* A per-exchange string arena: header names and values of one request and
 * its response live here, so parsing a head costs no malloc once an exchange
 * object is warm. Blocks are chained, never moved: pointers handed out stay
 * valid until fg_arena_reset(). The first block is kept across resets. */
#ifndef FG_ARENA_H
#define FG_ARENA_H

#include <stddef.h>

struct fg_arena_block;

struct fg_arena {
    struct fg_arena_block *head;    /* current block (newest) */
    struct fg_arena_block *first;   /* kept across resets */
    size_t used;                    /* bytes handed out since reset (limits) */
};

void fg_arena_init(struct fg_arena *a);
void fg_arena_reset(struct fg_arena *a);
void fg_arena_free(struct fg_arena *a);

/* <len> bytes of uninitialised space, or NULL when out of memory. */
char *fg_arena_alloc(struct fg_arena *a, size_t len);

/* <len> bytes aligned for any object (max_align_t), or NULL. */
void *fg_arena_alloc_object(struct fg_arena *a, size_t len);

/* Copies <len> bytes into the arena (no terminator). */
char *fg_arena_dup(struct fg_arena *a, const char *s, size_t len);

/* Grows the string *<s> of *<slen> bytes, which must be the last one handed
 * out by this arena, by <len> bytes of <data>; moves it when the block is
 * full. <lower> folds ASCII to lower case while copying (header names).
 * Returns 0, or -1 when out of memory. */
int fg_arena_append(struct fg_arena *a, char **s, size_t *slen, const char *data, size_t len,
                    int lower);

#endif
