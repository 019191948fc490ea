#include "config.h"

#include <string.h>

#include "fg/route.h"

const struct fg_route *fg_route_match(const struct fg_config *cfg, const char *path,
                                      size_t path_len)
{
    const char *q = memchr(path, '?', path_len);
    size_t len = q ? (size_t)(q - path) : path_len;

    for (unsigned i = 0; i < cfg->nroutes; i++) {
        const struct fg_route *r = &cfg->routes[i];
        if (r->path_prefix_len <= len && memcmp(r->path_prefix, path, r->path_prefix_len) == 0)
            return r;
    }
    return NULL;
}
