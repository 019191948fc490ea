/* libFuzzer harness: the PROXY protocol v1/v2 header parser
 * (fg_proxy_protocol_parse, src/proxy_protocol.c). Every prefix of the input
 * is fed too, as a connection's first reads arrive cut anywhere: a prefix
 * must never be answered differently from "need more" unless the whole is. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg/proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fg_proxy_hdr hdr;
    const char *why = NULL;
    unsigned char *copy;
    int full;

    /* an exact-size heap copy so that ASan sees any read past the end */
    if (!(copy = malloc(size ? size : 1)))
        return 0;
    memcpy(copy, data, size);
    full = fg_proxy_protocol_parse(copy, size, &hdr, &why);
    if (full > 0 && (size_t)full > size)
        abort();                        /* consumed more than it was given */
    for (size_t n = 0; n < size && n <= FG_PP_V2_MAX + 16; n++) {
        int r = fg_proxy_protocol_parse(copy, n, &hdr, &why);
        if (r > 0 && (size_t)r > n)
            abort();
    }
    free(copy);
    return 0;
}
