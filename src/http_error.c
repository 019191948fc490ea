/* Responses the gateway writes itself: a JSON error body with the status,
 * a stable machine-readable code, a message and the request id. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "fg/exchange.h"
#include "fg/headers.h"
#include "fg/handler.h"

const char *fg_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:
        if (status >= 500) return "Server Error";
        if (status >= 400) return "Client Error";
        if (status >= 300) return "Redirection";
        if (status >= 200) return "Success";
        return "Informational";
    }
}

/* Copies <s> into <out> as the inside of a JSON string. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;

    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

size_t fg_json_escape(char *out, size_t cap, const char *s)
{
    return json_escape(out, cap, s);
}

void fg_exchange_reply_error(struct fg_exchange *x, int status, const char *code,
                             const char *message)
{
    fg_exchange_reply_error_ex(x, status, code, message, NULL, NULL);
}

void fg_exchange_reply_error_ex(struct fg_exchange *x, int status, const char *code,
                                const char *message, const char *hname, const char *hvalue)
{
    const char *hdrs[] = {hname, hvalue, NULL};

    fg_exchange_reply_error_hdrs(x, status, code, message, hname ? hdrs : NULL);
}

void fg_exchange_reply_error_hdrs(struct fg_exchange *x, int status, const char *code,
                                  const char *message, const char *const *hdrs)
{
    char msg[512], body[1024];
    size_t blen;

    if (x->handler)
        x->handler->release(x);
    if (x->state == FG_X_RESPONDING || x->state == FG_X_DONE) {
        /* the client already has a head: it can only learn of the error
         * by the stream or connection ending abnormally */
        x->state = FG_X_DONE;
        x->front->abort(x);
        return;
    }
    if (!x->request_id_len)
        fg_exchange_set_request_id(x);
    if (x->handler && x->handler->error_body) {
        blen = x->handler->error_body(x, status, code, message, body, sizeof(body));
    } else {
        int n;
        json_escape(msg, sizeof(msg), message);
        n = snprintf(body, sizeof(body),
                     "{\"error\":{\"status\":%d,\"code\":\"%s\",\"message\":\"%s\","
                     "\"request_id\":\"%s\"}}\n",
                     status, code, msg, x->request_id);
        blen = n < 0 ? 0 : (size_t)n >= sizeof(body) ? strlen(body) : (size_t)n;
    }
    x->resp_from_gateway = 1;
    fg_exchange_reply_hdrs(x, status, "application/json", body, blen, hdrs);
}

void fg_exchange_reply(struct fg_exchange *x, int status, const char *content_type,
                       const char *body, size_t len)
{
    fg_exchange_reply_ex(x, status, content_type, body, len, NULL, NULL);
}

void fg_exchange_reply_ex(struct fg_exchange *x, int status, const char *content_type,
                          const char *body, size_t len, const char *hname, const char *hvalue)
{
    const char *hdrs[] = {hname, hvalue, NULL};

    fg_exchange_reply_hdrs(x, status, content_type, body, len, hname ? hdrs : NULL);
}

void fg_exchange_reply_hdrs(struct fg_exchange *x, int status, const char *content_type,
                            const char *body, size_t len, const char *const *hdrs)
{
    char clbuf[24];
    int cllen = snprintf(clbuf, sizeof(clbuf), "%zu", len);
    size_t ctlen = strlen(content_type);
    char *ct = fg_arena_alloc(&x->arena, 12 + ctlen);
    char *cl = fg_arena_dup(&x->arena, clbuf, (size_t)cllen);

    if (!x->request_id_len)
        fg_exchange_set_request_id(x);
    fg_headers_reset(&x->resp_headers);
    fg_headers_reset(&x->resp_trailers);
    x->status = status;
    x->resp_no_body = x->req_head_only;
    x->resp_content_length = (int64_t)len;
    x->resp_body_bytes = x->req_head_only ? 0 : len;
    if (ct) {
        memcpy(ct, "content-type", 12);
        memcpy(ct + 12, content_type, ctlen);
        fg_headers_add(&x->resp_headers, ct, 12, ct + 12, ctlen);
    }
    if (cl) {
        fg_headers_add(&x->resp_headers, (char *)"content-length", 14, cl, (size_t)cllen);
        x->resp_headers.v[x->resp_headers.n - 1].flags = FG_HDR_FRAMING;
    }
    for (; hdrs && hdrs[0]; hdrs += 2) {
        size_t nl = strlen(hdrs[0]), vl = strlen(hdrs[1]);
        char *n = fg_arena_dup(&x->arena, hdrs[0], nl), *v = fg_arena_dup(&x->arena, hdrs[1], vl);
        if (n && v)
            fg_headers_add(&x->resp_headers, n, nl, v, vl);
    }
    x->state = FG_X_RESPONDING;
    x->front->send_head(x);
    if (!x->req_head_only && len)
        x->front->send_body(x, body, len);      /* copied by the front */
    x->state = FG_X_DONE;
    x->front->send_end(x);          /* last use of x */
}
