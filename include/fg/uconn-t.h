/* A connection from a worker to one backend, speaking HTTP/1.1. It carries
 * one exchange at a time and goes back to the worker's pool for that backend
 * when the exchange ends cleanly. */
#ifndef FG_UCONN_T_H
#define FG_UCONN_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <llhttp.h>

struct fg_stream;
struct fg_worker;
struct fg_backend;
struct fg_pool;
struct fg_exchange;

enum fg_uconn_state {
    FG_UC_CLOSED = 0,           /* freed or about to be */
    FG_UC_CONNECTING,           /* TCP connect in progress, bound to an exchange */
    FG_UC_ACTIVE,               /* connected, bound to an exchange */
    FG_UC_IDLE,                 /* in the pool, no exchange */
};

struct fg_uconn {
    enum fg_uconn_state state;
    struct fg_worker *worker;
    struct fg_backend *backend;         /* of the exchange it serves; NULL while idle */
    struct fg_pool *pool;               /* where it waits when idle (fg/wgen.h) */
    struct fg_stream *bev;
    struct fg_exchange *x;
    TAILQ_ENTRY(fg_uconn) link;         /* pool idle list */

    /* response parsing (llhttp in response mode) */
    llhttp_t parser;
    char *hname, *hvalue;
    size_t hname_len, hvalue_len;
    /* obs-fold detection (as in h1_front.c): the chunk being parsed, where
     * the next span of a value must start, where the name ended, and
     * whether a line break followed it in an earlier chunk */
    const char *chunk_start, *chunk_end, *value_next;
    uintptr_t field_end;
    int lf_after_field;
    size_t head_bytes;
    unsigned head_done:1;               /* final (non-1xx) response head seen */
    unsigned in_trailers:1;
    unsigned msg_done:1;                /* response complete */
    unsigned got_bytes:1;               /* any response byte arrived */
    unsigned chunked_req:1;             /* request body framed as chunked */
    unsigned req_sent:1;                /* whole request queued for writing */
    unsigned reused:1;                  /* came from the pool */
};

#endif
