#ifndef FG_ROUTE_H
#define FG_ROUTE_H

#include <stddef.h>

#include "fg/config-t.h"

/* The first route of <cfg> whose match accepts <path> (origin-form target,
 * query included), or NULL. The query is not part of the prefix match. */
const struct fg_route *fg_route_match(const struct fg_config *cfg, const char *path,
                                      size_t path_len);

#endif
