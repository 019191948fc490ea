#ifndef FG_HEADERS_H
#define FG_HEADERS_H

#include <stddef.h>

#include "fg/headers-t.h"

/* Appends a header (pointers are kept, not copied). Returns 0, or -1 when
 * out of memory. The array grows by doubling and is kept across resets. */
int fg_headers_add(struct fg_headers *h, char *name, size_t nlen, char *value, size_t vlen);
void fg_headers_reset(struct fg_headers *h);
void fg_headers_free(struct fg_headers *h);

/* First header named <name> (lowercase), or NULL. */
struct fg_header *fg_headers_find(const struct fg_headers *h, const char *name, size_t nlen);

/* Sets FG_HDR_* flags on every header: the fixed hop-by-hop set plus every
 * token listed in Connection headers. */
void fg_headers_classify(struct fg_headers *h);

/* Case-insensitive search of <token> in a comma-separated list value. */
int fg_header_has_token(const char *value, size_t vlen, const char *token, size_t tlen);

/* RFC 9110 token / field-value checks used by both front ends. */
int fg_is_token(const char *s, size_t len);
int fg_is_field_value(const char *s, size_t len);
/* A Host header's value (RFC 9112 3.2, RFC 3986 3.2.2): a reg-name or an
 * IPv4 address, or an IP literal in brackets, with an optional port; empty
 * is allowed. */
int fg_host_valid(const char *s, size_t len);

#endif
