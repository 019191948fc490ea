/* Protocol glue: header classification (hop-by-hop, Connection tokens),
 * token checks, the arena, request ids and route matching. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fg/arena.h"
#include "fg/headers.h"
#include "fg/put.h"
#include "fg/request_id.h"
#include "unit.h"

static void add(struct fg_headers *h, const char *n, const char *v)
{
    fg_headers_add(h, (char *)n, strlen(n), (char *)v, strlen(v));
}

static struct fg_header *find(struct fg_headers *h, const char *n)
{
    return fg_headers_find(h, n, strlen(n));
}

static void test_classify(void)
{
    struct fg_headers h = { 0 };

    add(&h, "host", "example");
    add(&h, "connection", "keep-alive, X-Drop-Me");
    add(&h, "keep-alive", "timeout=5");
    add(&h, "x-drop-me", "1");
    add(&h, "te", "trailers");
    add(&h, "upgrade", "h2c");
    add(&h, "transfer-encoding", "chunked");
    add(&h, "content-length", "5");
    add(&h, "x-forwarded-for", "10.0.0.1");
    add(&h, "x-forwarded-proto", "https");
    add(&h, "x-request-id", "abc");
    add(&h, "proxy-connection", "close");
    add(&h, "content-type", "application/json");
    add(&h, "trailer", "x-checksum");
    fg_headers_classify(&h);
    CHECK_UINT(find(&h, "host")->flags, FG_HDR_HOST);
    CHECK(find(&h, "connection")->flags & FG_HDR_HOP);
    CHECK(find(&h, "keep-alive")->flags & FG_HDR_HOP);
    CHECK(find(&h, "x-drop-me")->flags & FG_HDR_HOP);
    CHECK(find(&h, "te")->flags & FG_HDR_HOP);
    CHECK(find(&h, "upgrade")->flags & FG_HDR_HOP);
    CHECK(find(&h, "proxy-connection")->flags & FG_HDR_HOP);
    CHECK(find(&h, "transfer-encoding")->flags & FG_HDR_FRAMING);
    CHECK(find(&h, "content-length")->flags & FG_HDR_FRAMING);
    CHECK(!(find(&h, "content-length")->flags & FG_HDR_HOP));
    CHECK_UINT(find(&h, "x-forwarded-for")->flags, FG_HDR_XFF);
    CHECK_UINT(find(&h, "x-forwarded-proto")->flags, FG_HDR_XFP);
    CHECK_UINT(find(&h, "x-request-id")->flags, FG_HDR_REQID);
    CHECK_UINT(find(&h, "content-type")->flags, 0);
    CHECK_UINT(find(&h, "trailer")->flags, 0);
    CHECK(find(&h, "nope") == NULL);
    fg_headers_free(&h);
}

/* Connection tokens: any case, spaces and empty list elements, several
 * Connection headers, a token that names a framing header, and names that
 * only share a length or a prefix with a token. */
static void test_classify_connection_tokens(void)
{
    struct fg_headers h = { 0 };

    add(&h, "connection", " ,, X-A-B ,\tx-c\t, ");
    add(&h, "x-a-b", "1");
    add(&h, "x-c", "2");
    add(&h, "x-d", "3");
    add(&h, "x-a-bc", "4");
    add(&h, "x-a", "5");
    add(&h, "connection", "Content-Length");
    add(&h, "content-length", "5");
    add(&h, "server", "s");
    fg_headers_classify(&h);
    CHECK(h.v[1].flags & FG_HDR_HOP);
    CHECK(h.v[2].flags & FG_HDR_HOP);
    CHECK_UINT(h.v[3].flags, 0);
    CHECK_UINT(h.v[4].flags, 0);
    CHECK_UINT(h.v[5].flags, 0);
    CHECK_UINT(h.v[7].flags, FG_HDR_FRAMING | FG_HDR_HOP);
    CHECK_UINT(h.v[8].flags, 0);
    fg_headers_reset(&h);
    /* no Connection header: a keep-alive header alone is still hop-by-hop,
     * and nothing else is marked */
    add(&h, "keep-alive", "timeout=5");
    add(&h, "x-c", "2");
    fg_headers_classify(&h);
    CHECK_UINT(h.v[0].flags, FG_HDR_HOP);
    CHECK_UINT(h.v[1].flags, 0);
    fg_headers_free(&h);
}

static void test_tokens(void)
{
    CHECK(fg_header_has_token("a, b ,c", 7, "B", 1));
    CHECK(fg_header_has_token("close", 5, "close", 5));
    CHECK(!fg_header_has_token("closed", 6, "close", 5));
    CHECK(!fg_header_has_token("", 0, "close", 5));
    CHECK(fg_header_has_token(" ,, upgrade", 11, "upgrade", 7));
    CHECK(fg_is_token("x-api-key", 9));
    CHECK(!fg_is_token("bad name", 8));
    CHECK(!fg_is_token("", 0));
    CHECK(!fg_is_token("a:b", 3));
    CHECK(fg_is_field_value("text/plain; q=1\t", 16));
    CHECK(!fg_is_field_value("a\rb", 3));
    CHECK(!fg_is_field_value("a\nb", 3));
    CHECK(!fg_is_field_value("a\x7f", 2));
}

static void test_arena(void)
{
    struct fg_arena a;
    char *s = NULL, *first;
    size_t len = 0;
    char big[10000];

    fg_arena_init(&a);
    CHECK(fg_arena_append(&a, &s, &len, "Content-", 8, 1) == 0);
    first = s;
    CHECK(fg_arena_append(&a, &s, &len, "TYPE", 4, 1) == 0);
    CHECK(s == first);                  /* grew in place */
    CHECK_UINT(len, 12);
    CHECK(memcmp(s, "content-type", 12) == 0);
    /* a string that spills over the block moves, intact */
    memset(big, 'x', sizeof(big));
    CHECK(fg_arena_append(&a, &s, &len, big, sizeof(big), 0) == 0);
    CHECK_UINT(len, 12 + sizeof(big));
    CHECK(memcmp(s, "content-type", 12) == 0 && s[len - 1] == 'x');
    CHECK(memcmp(fg_arena_dup(&a, "abc", 3), "abc", 3) == 0);
    fg_arena_reset(&a);
    CHECK_UINT(a.used, 0);
    CHECK(fg_arena_alloc(&a, 100) != NULL);
    fg_arena_free(&a);
}

/* Lower-casing works eight bytes at a time: every byte value, at every
 * position of a word and in the byte-wise tail, against the plain rule. */
static void test_arena_lower(void)
{
    unsigned char src[256 + 7];
    struct fg_arena a;
    int bad = 0;

    fg_arena_init(&a);
    for (size_t shift = 0; shift < 8; shift++) {
        char *s = NULL;
        size_t len = 0;

        for (size_t i = 0; i < sizeof(src); i++)
            src[i] = (unsigned char)(i * 1 + shift * 37);
        if (!CHECK(fg_arena_append(&a, &s, &len, (char *)src, sizeof(src) - shift, 1) == 0))
            break;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = src[i], want = c >= 'A' && c <= 'Z' ? c + 32 : c;
            if ((unsigned char)s[i] != want && bad++ < 5)
                CHECK_MSG(0, "shift %zu byte %zu: 0x%02x became 0x%02x", shift, i, c,
                          (unsigned char)s[i]);
        }
    }
    CHECK_INT(bad, 0);
    fg_arena_free(&a);
}

static void test_put_numbers(void)
{
    char b[32];

    CHECK_UINT(fg_put_u64(b, 0), 1);
    CHECK(b[0] == '0');
    CHECK_UINT(fg_put_u64(b, 205), 3);
    CHECK(memcmp(b, "205", 3) == 0);
    CHECK_UINT(fg_put_u64(b, 18446744073709551615ULL), FG_PUT_U64_MAX);
    CHECK(memcmp(b, "18446744073709551615", 20) == 0);
    CHECK_UINT(fg_put_u64(b, 1000000), 7);
    CHECK(memcmp(b, "1000000", 7) == 0);
    CHECK_UINT(fg_put_hex(b, 0), 1);
    CHECK(b[0] == '0');
    CHECK_UINT(fg_put_hex(b, 0x1f40), 4);
    CHECK(memcmp(b, "1f40", 4) == 0);
    CHECK_UINT(fg_put_hex(b, UINT64_MAX), FG_PUT_HEX_MAX);
    CHECK(memcmp(b, "ffffffffffffffff", 16) == 0);
    CHECK_UINT(fg_put_status(b, 200), 3);
    CHECK(memcmp(b, "200", 3) == 0);
    fg_put_status(b, 99);
    CHECK(memcmp(b, "099", 3) == 0);
}

static void test_request_id(void)
{
    struct fg_rng r;
    char a[32], b[32];

    fg_rng_seed(&r);
    fg_request_id_make(&r, a);
    fg_request_id_make(&r, b);
    CHECK(memcmp(a, b, 32) != 0);
    for (int i = 0; i < 32; i++)
        CHECK_MSG((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'),
                  "id char %d is %c", i, a[i]);
}

int main(void)
{
    UNIT_RUN(test_classify);
    UNIT_RUN(test_classify_connection_tokens);
    UNIT_RUN(test_tokens);
    UNIT_RUN(test_arena);
    UNIT_RUN(test_arena_lower);
    UNIT_RUN(test_put_numbers);
    UNIT_RUN(test_request_id);
    return unit_summary();
}
