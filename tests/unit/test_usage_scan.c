/* The usage scanner (fg/usage_scan.h): total_tokens from plain JSON and SSE
 * bodies, the same answer however the body is cut into chunks, text inside
 * strings and total_tokens outside a usage object never counted, numbers
 * that are not plain integers ignored, and random bytes survived. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg/usage_scan.h"
#include "unit.h"

/* ---- helpers -------------------------------------------------------------- */

/* Scans <len> bytes of <body> in one piece; returns what the scanner returns,
 * the value in *v. */
static int scan_mem(const char *body, size_t len, uint64_t *v)
{
    struct fg_usage_scan s;

    fg_usage_scan_init(&s);
    fg_usage_scan_feed(&s, body, len);
    return fg_usage_scan_result(&s, v);
}

static int scan(const char *body, uint64_t *v)
{
    return scan_mem(body, strlen(body), v);
}

/* The value for <body>, or -1 when the scanner reports none (then the value
 * must be 0). */
static long long value_of(const char *body)
{
    uint64_t v = 12345;
    int r = scan(body, &v);

    if (!r)
        return v == 0 ? -1 : -2;
    return (long long)v;
}

#define CHECK_VALUE(body, want)                                                   \
    CHECK_MSG(value_of(body) == (want), "body %s\n    got %lld, expected %lld", \
              (body), value_of(body), (long long)(want))

/* A realistic non-streamed chat completion. */
static const char plain_body[] =
    "{\n"
    "  \"id\": \"chatcmpl-9x8y7z\",\n"
    "  \"object\": \"chat.completion\",\n"
    "  \"created\": 1718000000,\n"
    "  \"model\": \"gpt-4o-mini\",\n"
    "  \"choices\": [\n"
    "    {\n"
    "      \"index\": 0,\n"
    "      \"message\": {\n"
    "        \"role\": \"assistant\",\n"
    "        \"content\": \"Sure: {\\\"usage\\\": {\\\"total_tokens\\\": 999}} and C:\\\\\"\n"
    "      },\n"
    "      \"logprobs\": null,\n"
    "      \"finish_reason\": \"stop\"\n"
    "    }\n"
    "  ],\n"
    "  \"usage\": {\n"
    "    \"prompt_tokens\": 9,\n"
    "    \"completion_tokens\": 12,\n"
    "    \"total_tokens\": 21,\n"
    "    \"prompt_tokens_details\": {\"cached_tokens\": 3, \"total_tokens\": 77}\n"
    "  },\n"
    "  \"system_fingerprint\": \"fp_44709d6fcb\"\n"
    "}\n";

/* A streamed one: content chunks with "usage":null (stream_options
 * include_usage), other SSE fields and a comment carrying decoys, the usage
 * event last, then [DONE]. */
static const char sse_body[] =
    ": keep-alive {\"usage\":{\"total_tokens\":501}}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n"
    "\n"
    "event: message\n"
    "id: {\"usage\":{\"total_tokens\":502}}\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"data: {\\\"usage\\\":{\\\"total_tokens\\\":503}}\"}}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\n\\ndata: {\\\"usage\\\":{\\\"total_tokens\\\":504}}\\n\\n\"}}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"back\\\\\\\\\"}}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

/* ---- the two body forms --------------------------------------------------- */

static void test_plain_json(void)
{
    uint64_t v = 0;

    CHECK_INT(scan(plain_body, &v), 1);
    CHECK_UINT(v, 21);
    CHECK_VALUE("{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
                "\"completion_tokens\":12,\"total_tokens\":21}}", 21);
    CHECK_VALUE("{\"usage\":{\"total_tokens\":21}}", 21);
    CHECK_VALUE("  \r\n\t{ \"usage\" :\n{ \"total_tokens\"\n:\t21 } }", 21);
    /* a UTF-8 BOM before the body */
    CHECK_VALUE("\xEF\xBB\xBF{\"usage\":{\"total_tokens\":21}}", 21);
    /* usage deeper down (the Responses API's response.completed event) */
    CHECK_VALUE("{\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"output\":[],"
                "\"usage\":{\"input_tokens\":5,\"output_tokens\":6,\"total_tokens\":11}}}", 11);
    /* "usage" after other members, total_tokens before other members */
    CHECK_VALUE("{\"a\":[1,2,{\"b\":\"c\"}],\"usage\":{\"total_tokens\":4,\"x\":[]},\"z\":true}", 4);
}

static void test_sse_stream(void)
{
    uint64_t v = 0;
    char *big;
    size_t cap = 200000, n = 0;
    int i;

    CHECK_INT(scan(sse_body, &v), 1);
    CHECK_UINT(v, 21);

    /* many events, usage only in the last */
    big = malloc(cap);
    if (!CHECK(big != NULL))
        return;
    for (i = 0; i < 1000; i++)
        n += (size_t)snprintf(big + n, cap - n,
                              "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":"
                              "{\"content\":\"tok%d \\\"total_tokens\\\": %d\"}}]}\n\n", i, i);
    n += (size_t)snprintf(big + n, cap - n,
                          "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":100,"
                          "\"completion_tokens\":1000,\"total_tokens\":1100}}\n\n"
                          "data: [DONE]\n\n");
    CHECK(n < cap);
    CHECK_INT(scan_mem(big, n, &v), 1);
    CHECK_UINT(v, 1100);
    free(big);

    /* no space after "data:", CRLF and lone CR line ends */
    CHECK_VALUE("data:{\"usage\":{\"total_tokens\":21}}\n\n", 21);
    CHECK_VALUE("data: {\"usage\":{\"total_tokens\":21}}\r\n\r\ndata: [DONE]\r\n\r\n", 21);
    CHECK_VALUE("data: {\"usage\":{\"total_tokens\":21}}\r\rdata: [DONE]\r\r", 21);
    /* leading blank lines */
    CHECK_VALUE("\n\r\ndata: {\"usage\":{\"total_tokens\":21}}\n\n", 21);
    /* one event's document spread over several data lines */
    CHECK_VALUE("data: {\"usage\":\ndata: {\"total_tokens\":\ndata: 8}}\n\n", 8);
    /* events without the blank line between them, one document a line */
    CHECK_VALUE("data: {\"usage\":null}\ndata: {\"usage\":{\"total_tokens\":6}}\ndata: [DONE]\n", 6);
    /* the last line need not end */
    CHECK_VALUE("data: {\"usage\":{\"total_tokens\":21}}", 21);
}

/* Decoys in non-data lines and fields that only look like data. */
static void test_sse_fields(void)
{
    CHECK_VALUE(": {\"usage\":{\"total_tokens\":5}}\n\n", -1);
    CHECK_VALUE("event: {\"usage\":{\"total_tokens\":5}}\n\n", -1);
    CHECK_VALUE("id: {\"usage\":{\"total_tokens\":5}}\n\n", -1);
    CHECK_VALUE("retry: 1000\n\n", -1);
    CHECK_VALUE("xdata: {\"usage\":{\"total_tokens\":5}}\n\n", -1);
    CHECK_VALUE("dat: {\"usage\":{\"total_tokens\":5}}\n\n", -1);
    CHECK_VALUE("Data: {\"usage\":{\"total_tokens\":5}}\n\n", -1);
    CHECK_VALUE(" data: {\"usage\":{\"total_tokens\":5}}\n\n", -1);
    CHECK_VALUE("data\n\n", -1);
    /* a decoy line does not stop the data lines around it */
    CHECK_VALUE("data: {\"usage\":\n: {\"usage\":{\"total_tokens\":5}}\ndata: {\"total_tokens\":7}}\n\n", 7);
    /* an HTML error page is neither form */
    CHECK_VALUE("<html><body>{\"usage\":{\"total_tokens\":5}}</body></html>", -1);
}

/* ---- chunking ------------------------------------------------------------- */

static void check_splits(const char *name, const char *body, uint64_t want)
{
    size_t len = strlen(body), i, j;
    struct fg_usage_scan s;
    uint64_t v;
    int r, bad = 0;

    for (i = 0; i <= len; i++) {
        fg_usage_scan_init(&s);
        fg_usage_scan_feed(&s, body, i);
        fg_usage_scan_feed(&s, body + i, len - i);
        r = fg_usage_scan_result(&s, &v);
        if (!CHECK_MSG(r == 1 && v == want, "%s split at %zu: got %d/%llu, expected %llu",
                       name, i, r, (unsigned long long)v, (unsigned long long)want))
            if (++bad > 5)
                return;
    }

    fg_usage_scan_init(&s);
    for (i = 0; i < len; i++)
        fg_usage_scan_feed(&s, body + i, 1);
    r = fg_usage_scan_result(&s, &v);
    CHECK_MSG(r == 1 && v == want, "%s byte by byte: got %d/%llu", name, r, (unsigned long long)v);

    /* random cuts, with empty feeds thrown in */
    srand(7);
    for (j = 0; j < 500; j++) {
        fg_usage_scan_init(&s);
        for (i = 0; i < len;) {
            size_t n = (size_t)rand() % 17;
            if (n > len - i)
                n = len - i;
            fg_usage_scan_feed(&s, body + i, n);
            i += n;
        }
        r = fg_usage_scan_result(&s, &v);
        if (!CHECK_MSG(r == 1 && v == want, "%s random cuts #%zu: got %d/%llu", name, j, r,
                       (unsigned long long)v))
            return;
    }
}

static void test_splits(void)
{
    check_splits("plain", plain_body, 21);
    check_splits("sse", sse_body, 21);
    check_splits("crlf", "data: {\"usage\":{\"total_tokens\":1234567}}\r\n\r\ndata: [DONE]\r\n\r\n",
                 1234567);
    check_splits("bom", "\xEF\xBB\xBF {\"usage\":{\"total_tokens\":42}}", 42);
}

/* ---- what must not count -------------------------------------------------- */

static void test_inside_strings(void)
{
    /* the model wrote JSON in its content */
    CHECK_VALUE("{\"choices\":[{\"message\":{\"content\":"
                "\"\\\"usage\\\": {\\\"total_tokens\\\": 999}\"}}]}", -1);
    /* a decoy after the real usage must not win as "last" */
    CHECK_VALUE("{\"usage\":{\"total_tokens\":21},\"choices\":[{\"message\":{\"content\":"
                "\"\\\"usage\\\": {\\\"total_tokens\\\": 999}\"}}]}", 21);
    /* the decoy in a key's spelling, as a string value */
    CHECK_VALUE("{\"usage\":{\"a\":\"total_tokens\",\"b\":5}}", -1);
    CHECK_VALUE("{\"usage\":{\"note\":\"\\\"total_tokens\\\":5\"}}", -1);
    /* SSE content with escaped newlines and a fake data line */
    CHECK_VALUE("data: {\"choices\":[{\"delta\":{\"content\":\"x\\n\\ndata: "
                "{\\\"usage\\\":{\\\"total_tokens\\\":999}}\\n\\n\"}}]}\n\ndata: [DONE]\n\n", -1);
}

static void test_escapes(void)
{
    /* "C:\\" ends at the quote after the escaped backslash */
    CHECK_VALUE("{\"content\":\"C:\\\\\",\"usage\":{\"total_tokens\":7}}", 7);
    CHECK_VALUE("{\"content\":\"\\\\\\\\\",\"usage\":{\"total_tokens\":7}}", 7);
    /* \\ then \" : the string goes on past the quote */
    CHECK_VALUE("{\"content\":\"a\\\\\\\",\\\"usage\\\":{\\\"total_tokens\\\":9}}\"}", -1);
    CHECK_VALUE("{\"content\":\"a\\\\\\\",\\\"usage\\\":{\\\"total_tokens\\\":9}}\","
                "\"usage\":{\"total_tokens\":8}}", 8);
    /* \u escapes inside content, and in a key (which then does not match) */
    CHECK_VALUE("{\"c\":\"\\u0022usage\\u0022\",\"usage\":{\"total_tokens\":3}}", 3);
    CHECK_VALUE("{\"usage\":{\"total\\u005ftokens\":3}}", -1);
    CHECK_VALUE("{\"\\u0075sage\":{\"total_tokens\":3}}", -1);
}

static void test_outside_usage(void)
{
    CHECK_VALUE("{\"total_tokens\": 5}", -1);
    CHECK_VALUE("{\"x\":{\"total_tokens\":5}}", -1);
    CHECK_VALUE("{\"usage\":{\"details\":{\"total_tokens\":5}}}", -1);
    CHECK_VALUE("{\"usage\":[{\"total_tokens\":5}]}", -1);
    CHECK_VALUE("{\"usage\":{\"prompt_tokens\":1},\"total_tokens\":5}", -1);
    /* a sibling object at the depth a usage object had */
    CHECK_VALUE("{\"usage\":{\"prompt_tokens\":1},\"other\":{\"total_tokens\":5}}", -1);
    CHECK_VALUE("{\"a\":[\"usage\",{\"total_tokens\":5}]}", -1);
    CHECK_VALUE("{\"usagex\":{\"total_tokens\":5}}", -1);
    CHECK_VALUE("{\"usag\":{\"total_tokens\":5}}", -1);
    CHECK_VALUE("{\"usage\":{\"total_tokens_x\":5}}", -1);
    CHECK_VALUE("{\"usage\":{\"total_token\":5}}", -1);
    CHECK_VALUE("[{\"total_tokens\":5}]", -1);
    /* each SSE document stands alone: usage does not stay open across events */
    CHECK_VALUE("data: {\"usage\":{\"a\":1\n\ndata: {\"total_tokens\":5}\n\n", -1);
    CHECK_VALUE("data: {\"usage\":{\"a\":1,\n\ndata: \"total_tokens\":5}}\n\n", -1);
}

static void test_nested_usage(void)
{
    CHECK_VALUE("{\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":3},\"total_tokens\":21}}", 21);
    CHECK_VALUE("{\"usage\":{\"prompt_tokens\":9,\"completion_tokens_details\":{\"reasoning_tokens\":0,"
                "\"audio_tokens\":[1,{\"x\":2}]},\"total_tokens\":21}}", 21);
    /* a usage inside a usage: the inner one is read, the outer one goes on */
    CHECK_VALUE("{\"usage\":{\"usage\":{\"total_tokens\":1},\"total_tokens\":2}}", 2);
    CHECK_VALUE("{\"usage\":{\"total_tokens\":2,\"usage\":{\"total_tokens\":1}}}", 1);
}

static void test_no_usage(void)
{
    struct fg_usage_scan s;
    uint64_t v = 99;

    fg_usage_scan_init(&s);
    CHECK_INT(fg_usage_scan_result(&s, &v), 0);
    CHECK_UINT(v, 0);
    v = 99;
    CHECK_INT(scan("{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}]}", &v), 0);
    CHECK_UINT(v, 0);
    CHECK_VALUE("", -1);
    CHECK_VALUE("{\"usage\":null}", -1);
    CHECK_VALUE("{\"usage\":{}}", -1);
    CHECK_VALUE("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", -1);
    /* a zero is a value */
    CHECK_VALUE("{\"usage\":{\"total_tokens\":0}}", 0);
}

/* ---- numbers -------------------------------------------------------------- */

static void test_big_numbers(void)
{
    uint64_t v = 0;

    CHECK_INT(scan("{\"usage\":{\"total_tokens\":18446744073709551614}}", &v), 1);
    CHECK_UINT(v, UINT64_MAX - 1);
    CHECK_INT(scan("{\"usage\":{\"total_tokens\":18446744073709551615}}", &v), 1);
    CHECK_UINT(v, UINT64_MAX);
    CHECK_INT(scan("{\"usage\":{\"total_tokens\":18446744073709551616}}", &v), 1);
    CHECK_UINT(v, UINT64_MAX);
    CHECK_INT(scan("{\"usage\":{\"total_tokens\":99999999999999999999999999999999999999}}", &v), 1);
    CHECK_UINT(v, UINT64_MAX);
}

static void test_bad_numbers(void)
{
    static const char *const bad[] = {"12.5", "-3", "\"12\"", "1e3", "1E3", "2e+1", "012", "00",
                                      "21x", "true", "null", "[21]", "{\"n\":21}", "+4", ".5"};
    char body[128];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        /* alone: nothing counts */
        snprintf(body, sizeof body, "{\"usage\":{\"total_tokens\":%s}}", bad[i]);
        CHECK_MSG(value_of(body) == -1, "%s counted as %lld", body, value_of(body));
        /* after a good value: the good one stays */
        snprintf(body, sizeof body,
                 "data: {\"usage\":{\"total_tokens\":10}}\n\ndata: {\"usage\":{\"total_tokens\":%s}}\n\n",
                 bad[i]);
        CHECK_MSG(value_of(body) == 10, "%s gave %lld", body, value_of(body));
    }
    /* cut off by the end of the body */
    CHECK_VALUE("{\"usage\":{\"total_tokens\":21", -1);
    /* ended by whitespace, ',' or '}' */
    CHECK_VALUE("{\"usage\":{\"total_tokens\":21 }}", 21);
    CHECK_VALUE("{\"usage\":{\"total_tokens\":21,\"x\":1}}", 21);
}

static void test_last_wins(void)
{
    CHECK_VALUE("data: {\"usage\":{\"total_tokens\":10}}\n\ndata: {\"usage\":{\"total_tokens\":20}}\n\n", 20);
    CHECK_VALUE("data: {\"usage\":{\"total_tokens\":20}}\n\ndata: {\"usage\":{\"total_tokens\":10}}\n\n", 10);
    CHECK_VALUE("{\"usage\":{\"total_tokens\":3,\"total_tokens\":4}}", 4);
}

/* ---- limits and malformed input ------------------------------------------- */

/* <wrappers> objects around {"usage":{"total_tokens":5}}, so the usage
 * object is at depth wrappers + 2. */
static long long nested_value(unsigned wrappers, const char *open, const char *close)
{
    static char body[200000];
    size_t n = 0;
    unsigned i;

    for (i = 0; i < wrappers; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%s", open);
    n += (size_t)snprintf(body + n, sizeof body - n, "{\"usage\":{\"total_tokens\":5}}");
    for (i = 0; i < wrappers; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%s", close);
    return value_of(body);
}

static void test_depth(void)
{
    CHECK_INT(nested_value(FG_USAGE_SCAN_MAX_DEPTH - 2, "{\"a\":", "}"), 5);
    CHECK_INT(nested_value(FG_USAGE_SCAN_MAX_DEPTH - 1, "{\"a\":", "}"), -1);
    CHECK_INT(nested_value(FG_USAGE_SCAN_MAX_DEPTH - 2, "[", "]"), 5);
    CHECK_INT(nested_value(1000, "[", "]"), -1);
    /* deep nesting elsewhere, then usage back at a shallow depth */
    {
        static char body[10000];
        size_t n = 0;
        unsigned i;

        n += (size_t)snprintf(body + n, sizeof body - n, "{\"a\":");
        for (i = 0; i < 500; i++)
            n += (size_t)snprintf(body + n, sizeof body - n, "{\"usage\":");
        n += (size_t)snprintf(body + n, sizeof body - n, "1");
        for (i = 0; i < 500; i++)
            n += (size_t)snprintf(body + n, sizeof body - n, "}");
        snprintf(body + n, sizeof body - n, ",\"usage\":{\"total_tokens\":31}}");
        CHECK_VALUE(body, 31);
    }
}

static void test_malformed(void)
{
    /* a raw newline in a string breaks a plain body for good */
    CHECK_VALUE("{\"a\":\"x\ny\",\"usage\":{\"total_tokens\":5}}", -1);
    /* a '}' with nothing open */
    CHECK_VALUE("}{\"usage\":{\"total_tokens\":5}}", -1);
    /* in SSE only the broken document is lost */
    CHECK_VALUE("data: {\"a\":\"unterminated\ndata: {\"usage\":{\"total_tokens\":5}}\n\n", 5);
    CHECK_VALUE("data: }}}\n\ndata: {\"usage\":{\"total_tokens\":5}}\n\n", 5);
    CHECK_VALUE("data: {\"a\":\"x\n\ndata: {\"usage\":{\"total_tokens\":5}}\n\n", 5);
    CHECK_VALUE("data: {\"usage\":{\"total_tokens\":\"\n\ndata: {\"usage\":{\"total_tokens\":5}}\n\n", 5);
    /* garbage keys and stray colons */
    CHECK_VALUE("{\"usage\"::{\"total_tokens\":5}}", -1);
    CHECK_VALUE("{\"usage\" \"x\":{\"total_tokens\":5}}", -1);
    CHECK_VALUE("{\"usage\":{\"total_tokens\"::5}}", -1);
    /* only a string at a key position (after '{' or ',') is a key */
    CHECK_VALUE("{\"usage\":{\"a\":\"total_tokens\":5}}", -1);
    CHECK_VALUE("{\"a\":\"usage\":{\"total_tokens\":5}}", -1);
    CHECK_VALUE("{\"usage\":{\"a\":1 \"total_tokens\":5}}", -1);
    /* a NUL does not end the body (lengths, not C strings); between tokens
     * it is a stray byte, inside a string a control byte that breaks it */
    {
        static const char body[] = "{\"x\":1\0,\"usage\":{\"total_tokens\":5}}";
        static const char in_str[] = "{\"x\":\"\0\",\"usage\":{\"total_tokens\":5}}";
        uint64_t v = 0;
        CHECK_INT(scan_mem(body, sizeof body - 1, &v), 1);
        CHECK_UINT(v, 5);
        CHECK_INT(scan_mem(in_str, sizeof in_str - 1, &v), 0);
    }
}

/* Random bytes, and mutated real bodies, fed in random pieces: the scanner
 * must not crash (run under ASan/UBSan) and must stay consistent. */
static void test_fuzz(void)
{
    static const char alphabet[] = "{}[]\":,\\ \n\r\tdata:usage total_tokens0123456789.-e\xEF\xBB\xBF";
    unsigned char buf[1024];
    struct fg_usage_scan s;
    uint64_t v;
    int iter, bad = 0;

    srand(12345);
    for (iter = 0; iter < 10000; iter++) {
        size_t len = (size_t)rand() % sizeof buf, i;
        int kind = iter % 3;

        if (kind == 2) {        /* a real body with some bytes changed */
            const char *src = iter % 2 ? plain_body : sse_body;
            size_t sl = strlen(src);
            len = sl < sizeof buf ? sl : sizeof buf;
            memcpy(buf, src, len);
            for (i = 0; i < 1 + (size_t)rand() % 8; i++)
                buf[(size_t)rand() % len] = (unsigned char)rand();
        } else {
            for (i = 0; i < len; i++)
                buf[i] = kind ? (unsigned char)alphabet[(size_t)rand() % (sizeof alphabet - 1)]
                              : (unsigned char)rand();
        }
        fg_usage_scan_init(&s);
        for (i = 0; i < len;) {
            size_t n = 1 + (size_t)rand() % 64;
            if (n > len - i)
                n = len - i;
            fg_usage_scan_feed(&s, (const char *)buf + i, n);
            i += n;
        }
        v = 1;
        if (fg_usage_scan_result(&s, &v) == 0 && v != 0)
            bad++;
    }
    CHECK_INT(bad, 0);
}

static void test_state_size(void)
{
    CHECK(sizeof(struct fg_usage_scan) <= 64);
}

int main(void)
{
    UNIT_RUN(test_plain_json);
    UNIT_RUN(test_sse_stream);
    UNIT_RUN(test_sse_fields);
    UNIT_RUN(test_splits);
    UNIT_RUN(test_inside_strings);
    UNIT_RUN(test_escapes);
    UNIT_RUN(test_outside_usage);
    UNIT_RUN(test_nested_usage);
    UNIT_RUN(test_no_usage);
    UNIT_RUN(test_big_numbers);
    UNIT_RUN(test_bad_numbers);
    UNIT_RUN(test_last_wins);
    UNIT_RUN(test_depth);
    UNIT_RUN(test_malformed);
    UNIT_RUN(test_fuzz);
    UNIT_RUN(test_state_size);
    return unit_summary();
}
