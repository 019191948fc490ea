#ifndef FG_EXCHANGE_H
#define FG_EXCHANGE_H

#include <stddef.h>

#include "fg/exchange-t.h"

/* Embedded exchanges (one per HTTP/1.1 connection): init once, reset
 * between requests, destroy with the connection. */
void fg_exchange_init(struct fg_exchange *x, struct fg_worker *w);
void fg_exchange_reset(struct fg_exchange *x);
void fg_exchange_destroy(struct fg_exchange *x);

/* Pooled exchanges (one per HTTP/2 stream), recycled through the worker's
 * free list so a warm worker allocates nothing per request. */
struct fg_exchange *fg_exchange_get(struct fg_worker *w);
void fg_exchange_put(struct fg_exchange *x);

/* The client went away or reset the stream: the handler drops what it
 * holds and the exchange's response ops are never called after this. */
void fg_exchange_abort(struct fg_exchange *x);

/* Keeps the client's X-Request-Id when it is 1..128 characters of
 * [A-Za-z0-9._-], else generates 32 hex characters. Call once the request
 * head is complete. */
void fg_exchange_set_request_id(struct fg_exchange *x);

/* Answers the request from the gateway itself with the JSON error body
 * {"error":{"status":..,"code":..,"message":..,"request_id":..}}. Releases
 * any backend, then emits through the front's ops; when the response head
 * already went out the front's abort() is called instead. */
void fg_exchange_reply_error(struct fg_exchange *x, int status, const char *code,
                             const char *message);
/* Same, with one more header when <hname> is not NULL (e.g. "retry-after"). */
void fg_exchange_reply_error_ex(struct fg_exchange *x, int status, const char *code,
                                const char *message, const char *hname, const char *hvalue);
/* Same, with the headers of <hdrs>: name, value, name, value, ..., NULL
 * (names lower-case); <hdrs> may be NULL. */
void fg_exchange_reply_error_hdrs(struct fg_exchange *x, int status, const char *code,
                                  const char *message, const char *const *hdrs);

/* Answers the request with a complete response from memory: <status>, a
 * Content-Type, Content-Length and <body> (copied). Emits through the
 * front's ops; the last call, send_end(), may free <x>. The response head
 * must not have gone out yet. */
void fg_exchange_reply(struct fg_exchange *x, int status, const char *content_type,
                       const char *body, size_t len);
/* Same, with the headers of <hdrs> (name, value, ..., NULL) */
void fg_exchange_reply_hdrs(struct fg_exchange *x, int status, const char *content_type,
                            const char *body, size_t len, const char *const *hdrs);
/* Same, with one more header (<hname> lower-case, e.g. "allow"). */
void fg_exchange_reply_ex(struct fg_exchange *x, int status, const char *content_type,
                          const char *body, size_t len, const char *hname, const char *hvalue);

/* Writes <s> into <out> as the inside of a JSON string (quotes, backslashes
 * and control characters escaped), truncating to fit <cap>; returns the
 * length written. */
size_t fg_json_escape(char *out, size_t cap, const char *s);

/* Reason phrase for a status code ("OK", "Bad Gateway", ...). */
const char *fg_http_reason(int status);

#endif
