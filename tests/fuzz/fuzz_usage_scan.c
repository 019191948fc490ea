/* libFuzzer harness: the streaming usage.total_tokens scanner
 * (src/usage_scan.c). The body is fed whole, then again cut into pieces at
 * places chosen by the input's first bytes; both must give the same result,
 * as the scanner is meant to be indifferent to where reads end. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg/usage_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fg_usage_scan whole, cut;
    uint64_t t1 = 0, t2 = 0;
    int r1, r2;
    unsigned seed;
    char *body;
    size_t len, off;

    if (size < 2)
        return 0;
    seed = data[0] | (unsigned)data[1] << 8;
    len = size - 2;
    if (!(body = malloc(len ? len : 1)))
        return 0;
    memcpy(body, data + 2, len);

    fg_usage_scan_init(&whole);
    fg_usage_scan_feed(&whole, body, len);
    r1 = fg_usage_scan_result(&whole, &t1);

    fg_usage_scan_init(&cut);
    for (off = 0; off < len;) {
        size_t n = 1 + seed % 7;
        seed = seed * 1103515245u + 12345u;
        if (n > len - off)
            n = len - off;
        fg_usage_scan_feed(&cut, body + off, n);
        off += n;
    }
    r2 = fg_usage_scan_result(&cut, &t2);
    if (r1 != r2 || t1 != t2)
        abort();                        /* the result depends on how reads were cut */
    free(body);
    return 0;
}
