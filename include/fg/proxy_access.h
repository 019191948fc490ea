/* The proxy's side of access control and geography: authentication when
 * the request head is in, the 401/403/429 answers once the route is known,
 * the headers the gateway writes for the backend, and the rate headers of
 * the response. Worker thread only. */
#ifndef FG_PROXY_ACCESS_H
#define FG_PROXY_ACCESS_H

#include <stddef.h>

struct fg_exchange;
struct fg_route;

/* The request head is complete: finds its key (when there is an "access"
 * section) and marks the headers never to be forwarded (credentials, the
 * client's own geography headers). */
void fg_proxy_access_start(struct fg_exchange *x);

/* 1 when the body must be read before fg_proxy_access_check(): the key
 * may use some models only, and the model is in the body. */
int fg_proxy_access_needs_body(const struct fg_exchange *x, const struct fg_route *r);

/* The route is known. 0: the request may go on (counted in its limits);
 * -1: it was answered 401, 403 or 429. */
int fg_proxy_access_check(struct fg_exchange *x, const struct fg_route *r);

/* 1 when a request header (or trailer) of this name is never forwarded: a
 * credential (with an "access" section), a geography header the gateway
 * writes, one of the route's "upstream_headers". */
int fg_proxy_access_dropped(const struct fg_exchange *x, const char *name, size_t nlen);

/* Marks the client's headers that the route's "upstream_headers" replace,
 * and Accept-Encoding when the response's tokens are to be counted. */
void fg_proxy_access_mark(struct fg_exchange *x);

/* Writes the route's upstream_headers and the geography headers as
 * "name: value\r\n" lines at <p> (NULL: only measures). Returns the bytes. */
size_t fg_proxy_access_headers(struct fg_exchange *x, char *p);

/* Adds x-ratelimit-* to the response head when a rate limit counted it. */
void fg_proxy_access_response(struct fg_exchange *x);

#endif
