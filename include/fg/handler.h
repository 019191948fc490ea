/* What answers the requests of a listener. The fronts (HTTP/1.1, HTTP/2)
 * parse a request into an exchange and hand it to the listener's handler;
 * the handler answers through the exchange's front ops (x->front). The
 * gateway's handler is the proxy (proxy.c); the reference backend's is the
 * model server (src/serve/). One HTTP stack, several applications.
 *
 * Every op runs on the exchange's worker thread. */
#ifndef FG_HANDLER_H
#define FG_HANDLER_H

#include <stddef.h>

struct fg_exchange;
struct fg_worker;

struct fg_handler_ops {
    /* The request head is complete (x->state FG_X_REQUEST_HEAD). May answer
     * at once (fg_exchange_reply_error() or its own response). */
    void (*start)(struct fg_exchange *x);
    /* Request body bytes. Returns 1 when the client should be paused until
     * front->resume_request(), else 0. */
    int (*request_body)(struct fg_exchange *x, const char *data, size_t len);
    /* The request body is complete; trailers, if any, are in x->req_trailers. */
    void (*request_end)(struct fg_exchange *x);
    /* The client drained its queue below FG_LOW_WATERMARK after the handler
     * saw send_body() return more than FG_HIGH_WATERMARK. */
    void (*resume)(struct fg_exchange *x);
    /* Drop whatever the handler still holds for <x> (backend connection,
     * queued work), calling no front op. Called when the client goes away,
     * when the gateway answers by itself, and before the exchange is
     * recycled; must be harmless when nothing is held. */
    void (*release)(struct fg_exchange *x);
    /* Optional: writes the JSON body of an error the HTTP stack answers by
     * itself (400, 408, 413, ...) in this application's error form; returns
     * its length (< cap). NULL: fleetgate's form (http_error.c). */
    size_t (*error_body)(struct fg_exchange *x, int status, const char *code,
                         const char *message, char *out, size_t cap);
};

/* An application served by fg_daemon_run(): its handler for every listener
 * and per-worker set-up, both optional. */
struct fg_app {
    const char *name;                       /* for logs: "fleetgate", "fleetgate-model" */
    const struct fg_handler_ops *handler;   /* NULL: the proxy */
    void *ctx;
    /* Called on the main thread once the worker's event base exists and
     * before its thread starts; returns 0, or -1 with *err malloc'd. */
    int (*worker_init)(struct fg_worker *w, void *ctx, char **err);
    /* Called after the worker's thread ended and its client connections
     * were closed, before the event base is freed. */
    void (*worker_fini)(struct fg_worker *w, void *ctx);
};

extern const struct fg_handler_ops fg_proxy_handler;

#endif
