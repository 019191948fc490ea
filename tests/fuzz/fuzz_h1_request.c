/* libFuzzer harness: HTTP/1.1 requests as the front parses them.
 *
 * Not the whole front (src/h1_front.c needs a worker, its configuration
 * and an event loop): this drives llhttp as built for fleetgate (strict
 * mode, the library the front links) over the input, cut into reads of a
 * size taken from the first input byte, and does with what it hands over
 * what the front's callbacks do: the target and header names and values
 * gathered in an arena (names folded to lower case), trailing blanks cut,
 * names checked with fg_is_token(), values with fg_is_field_value(), kept
 * with fg_headers_add(), then fg_headers_classify() (hop-by-hop and
 * Connection tokens) and fg_host_valid() on Host once the head is complete.
 * Pipelined requests start again on fresh state, as the front does.
 *
 * fuzz_h1_response.c includes this file with FUZZ_H1_RESPONSE defined: a
 * backend's responses, parsed with the settings of src/proxy.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "fg/arena.h"
#include "fg/headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 100

struct req {
    struct fg_arena arena;
    struct fg_headers headers;
    char *target, *hname, *hvalue;
    size_t target_len, hname_len, hvalue_len;
    uint64_t body;
    int in_body;
};

static int on_message_begin(llhttp_t *p)
{
    struct req *r = p->data;

    fg_arena_reset(&r->arena);
    fg_headers_reset(&r->headers);
    r->target = r->hname = r->hvalue = NULL;
    r->target_len = r->hname_len = r->hvalue_len = 0;
    r->body = 0;
    r->in_body = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct req *r = p->data;

    if (!r->target && !(r->target = fg_arena_alloc(&r->arena, 0)))
        return -1;
    return fg_arena_append(&r->arena, &r->target, &r->target_len, at, len, 0);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct req *r = p->data;

    if (!r->hname && !(r->hname = fg_arena_alloc(&r->arena, 0)))
        return -1;
    return fg_arena_append(&r->arena, &r->hname, &r->hname_len, at, len, 1);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct req *r = p->data;

    if (!r->hvalue && !(r->hvalue = fg_arena_alloc(&r->arena, 0)))
        return -1;
    return fg_arena_append(&r->arena, &r->hvalue, &r->hvalue_len, at, len, 0);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct req *r = p->data;
    char *v = r->hvalue ? r->hvalue : (char *)"";
    size_t vlen = r->hvalue_len;

    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    if (!r->hname || !fg_is_token(r->hname, r->hname_len) || !fg_is_field_value(v, vlen))
        return -1;                      /* the front answers 400 and closes */
    if (r->headers.n >= MAX_HEADERS)
        return -1;                      /* 431 */
    if (!r->in_body && fg_headers_add(&r->headers, r->hname, r->hname_len, v, vlen) < 0)
        return -1;
    r->hname = r->hvalue = NULL;
    r->hname_len = r->hvalue_len = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct req *r = p->data;
    struct fg_header *host;

    fg_headers_classify(&r->headers);
    for (unsigned i = 0; i < r->headers.n; i++)
        if (!fg_headers_find(&r->headers, r->headers.v[i].name, r->headers.v[i].nlen))
            abort();                    /* a header kept cannot be found again */
    host = fg_headers_find(&r->headers, "host", 4);
    if (host)
        (void)fg_host_valid(host->value, host->vlen);
    r->in_body = 1;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    ((struct req *)p->data)->body += len;
    return 0;
}

/* Both sides stop the parser after a message: the front answers it before
 * it reads the next, the proxy reads nothing after a response. */
static int on_message_complete(llhttp_t *p)
{
    ((struct req *)p->data)->in_body = 0;
    return HPE_PAUSED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static llhttp_settings_t settings;
    static int ready;
    llhttp_t parser;
    struct req r;
    size_t step, off;
    char *copy;

    if (size < 1)
        return 0;
    if (!ready) {
        llhttp_settings_init(&settings);
        settings.on_message_begin = on_message_begin;
        settings.on_url = on_url;
        settings.on_header_field = on_header_field;
        settings.on_header_value = on_header_value;
        settings.on_header_value_complete = on_header_value_complete;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_message_complete;
        ready = 1;
    }
    memset(&r, 0, sizeof r);
    fg_arena_init(&r.arena);
    step = 1 + data[0] % 64;
    size--;
    if (!(copy = malloc(size ? size : 1)))
        return 0;
    memcpy(copy, data + 1, size);
#ifdef FUZZ_H1_RESPONSE
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
#else
    llhttp_init(&parser, HTTP_REQUEST, &settings);
#endif
    parser.data = &r;
    for (off = 0; off < size;) {
        size_t n = size - off < step ? size - off : step;
        llhttp_errno_t err = llhttp_execute(&parser, copy + off, n);
        if (err == HPE_PAUSED) {
#ifdef FUZZ_H1_RESPONSE
            off = size + 1;             /* the response is complete: nothing more is read */
            break;
#else
            /* answered: the next pipelined request starts where it stopped */
            const char *pos = llhttp_get_error_pos(&parser);
            if (pos < copy + off || pos > copy + off + n)
                abort();
            off = (size_t)(pos - copy);
            llhttp_resume(&parser);
            continue;
#endif
        }
        if (err != HPE_OK) {
            off = size + 1;             /* 400 (502 from a backend) and closed */
            break;
        }
        off += n;
    }
    if (off == size)
        (void)llhttp_finish(&parser);  /* the peer closed: a response ending at EOF */
    free(copy);
    fg_headers_free(&r.headers);
    fg_arena_free(&r.arena);
    return 0;
}
