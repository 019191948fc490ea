/* libFuzzer harness: the configuration loader (fg_config_parse,
 * src/config.c and the files of CONFIG_SOURCES). The input is the text of
 * a configuration file.
 *
 * The loader resolves backend host names with getaddrinfo(); a fuzzer must
 * not wait on DNS, so this file's getaddrinfo() (found before the C
 * library's) takes numeric addresses and "localhost" only. The loader also
 * stat()s and opens, read-only, files that a configuration names (TLS
 * certificates, GeoIP databases); it writes nothing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    static gai_fn real;
    struct addrinfo h;

    if (!real && !(real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo")))
        return EAI_FAIL;
    if (hints)
        h = *hints;
    else {
        memset(&h, 0, sizeof h);
        h.ai_family = AF_UNSPEC;
    }
    if (!node || strcmp(node, "localhost"))
        h.ai_flags |= AI_NUMERICHOST;
    return real(node, service, &h, res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *err = NULL;
    struct fg_config *cfg;

    /* an exact-size copy, not NUL-terminated: the loader takes a length */
    if (!(text = malloc(size ? size : 1)))
        return 0;
    memcpy(text, data, size);
    cfg = fg_config_parse(text, size, "fuzz.json", &err);
    if (cfg)
        fg_config_free(cfg);
    else if (!err)
        abort();                        /* a refusal must say why */
    free(err);
    free(text);
    return 0;
}
