/* The exchange: one protocol-neutral request/response pair.
 *
 * A front end (HTTP/1.1 or HTTP/2) fills the request half and hands the
 * exchange to its listener's handler (the proxy, or the model server); the
 * handler fills the response half and calls the front's ops to emit it. Neither side looks at the other's protocol. All
 * strings point into x->arena. One exchange belongs to one worker thread. */
#ifndef FG_EXCHANGE_T_H
#define FG_EXCHANGE_T_H

#include <stdint.h>
#include <sys/queue.h>

#include "fg/arena.h"
#include "fg/client_addr.h"
#include "fg/config-t.h"
#include "fg/geoip.h"
#include "fg/headers-t.h"

struct fg_exchange;
struct fg_worker;
struct fg_wgen;
struct fg_uconn;
struct evbuffer;
struct fg_handler_ops;
struct fg_keyset;
struct fg_usage_scan;

/* Implemented by each front end. Called on the worker thread only. */
struct fg_front_ops {
    /* The response head is in x->status / x->resp_headers: emit it. */
    void (*send_head)(struct fg_exchange *x);
    /* Response body bytes. Returns how many bytes now wait to reach the
     * client for this exchange, which the proxy compares with its high
     * watermark to pause the backend (back-pressure). */
    size_t (*send_body)(struct fg_exchange *x, const char *data, size_t len);
    /* The response is complete; trailers, if any, are in x->resp_trailers. */
    void (*send_end)(struct fg_exchange *x);
    /* The response failed after its head went out: the client must see an
     * error (reset stream, closed connection), never a short response that
     * looks complete. The exchange is finished after this call. */
    void (*abort)(struct fg_exchange *x);
    /* The backend can take more request body: resume reading it. */
    void (*resume_request)(struct fg_exchange *x);
    /* The request body came too slowly (body_clock.c): answer 408 if no
     * response started, else end the stream or connection. */
    void (*body_timeout)(struct fg_exchange *x);
    /* Optional: nonzero while the client cannot send this body because of
     * the connection, not of itself (an HTTP/2 connection window spent on
     * other streams): that time is not held against it. */
    int (*body_blocked)(struct fg_exchange *x);
    /* Optional: no part of the response went out for send_timeout_ms
     * (send_clock.c; HTTP/2, where flow control can stall a stream whose
     * socket is writable): end the stream. */
    void (*send_timeout)(struct fg_exchange *x);
};

/* Facts about the client connection an exchange arrived on. */
struct fg_client_info {
    const struct fg_handler_ops *handler;  /* the listener's */
    char addr[48];              /* "127.0.0.1" / "::1" (INET6_ADDRSTRLEN 46): no port (X-Forwarded-For) */
    struct fg_ip ip;            /* the same, binary; both from a PROXY header when there was one */
    unsigned no_xff:1;          /* a PROXY header without an address: the peer is a trusted
                                   proxy, yet X-Forwarded-For may be the client's own */
    unsigned tls:1;
    unsigned h2:1;
    /* its place in the connection limits (conn_limit.c): taken for
     * counted_ip, the peer it was accepted from */
    unsigned counted:1, counted_addr:1;
    struct fg_ip counted_ip;
};

enum fg_exchange_state {
    FG_X_FREE = 0,              /* not in use */
    FG_X_REQUEST_HEAD,          /* receiving the request head */
    FG_X_UPSTREAM,              /* head complete; waiting for the response head */
    FG_X_RESPONDING,            /* response head went out; streaming the body */
    FG_X_DONE,                  /* response complete or aborted */
};

struct fg_exchange {
    enum fg_exchange_state state;
    struct fg_worker *worker;
    /* the worker's generation it started in (one reference): its route,
     * upstream and backends are of gen->cfg, whatever reloads happen */
    struct fg_wgen *gen;
    const struct fg_front_ops *front;
    void *front_data;                   /* h1 connection or h2 stream */
    const struct fg_client_info *client;
    const struct fg_handler_ops *handler;  /* answers the request: proxy, model server */
    void *handler_data;                 /* the handler's per-exchange state */
    struct fg_arena arena;

    /* request */
    char *method;                       /* e.g. "GET" */
    char *path;                         /* origin-form target, query included */
    char *authority;                    /* Host or :authority; may be NULL */
    uint32_t method_len, path_len, authority_len;
    struct fg_headers req_headers;
    struct fg_headers req_trailers;
    int64_t req_content_length;         /* -1: unknown (chunked / h2 without it) */
    uint64_t req_body_bytes;            /* received so far */
    unsigned req_has_body:1;            /* a body follows the head */
    unsigned req_body_done:1;           /* whole body received from the client */
    unsigned req_head_only:1;           /* HEAD: response has no body */
    unsigned req_expect_continue:1;
    /* set while the head is read when it must be refused: answered with
     * this error once the head is complete (HTTP/2, whose head arrives
     * through many callbacks that cannot answer) */
    int reject_status;
    const char *reject_code, *reject_message;
    char request_id[129];
    uint32_t request_id_len;

    /* response */
    int status;
    struct fg_headers resp_headers;
    struct fg_headers resp_trailers;
    int64_t resp_content_length;        /* -1 unknown */
    unsigned resp_no_body:1;            /* 1xx/204/304 or a HEAD request */
    unsigned resp_from_gateway:1;       /* produced by fg_exchange_reply_error() */

    /* upstream side, owned by the proxy */
    const struct fg_route *route;
    struct fg_upstream *upstream;
    struct fg_backend *backend;         /* holds one count in backend->active */
    struct fg_uconn *uconn;
    struct fg_tried *tried;             /* backends that failed it (arena); avoided by retries */
    unsigned attempts;                  /* retries so far */
    struct fg_backend *retry_to;        /* picked for a retry decided in the parser */
    uint64_t keep_limit;                /* request body kept up to this for replays; 0: not kept */
    unsigned resp_paused:1;             /* backend reading paused for the client */
    unsigned fell_back:1;               /* sent to the route's fallback upstream */
    unsigned fallback_pending:1;        /* a 5xx/429 head seen: fall back once the parser returns */
    unsigned body_not_kept:1;           /* request body larger than keep_limit */
    unsigned replaying:1;               /* the kept body is being sent again */
    unsigned queued:1;                  /* waiting in the upstream's queue (wait_queue.c) */
    unsigned held_end:1;                /* queued: the request body ended meanwhile */
    struct evbuffer *kept_body;         /* request body kept for a retry or fallback replay */
    uint64_t queue_deadline_ms;         /* queued: 503 then */
    TAILQ_ENTRY(fg_exchange) qlink;     /* queued: in the worker's wait queue */
    struct fg_exchange *mirror;         /* the copy of this request, while its body flows */
    struct fg_exchange *mirror_of;      /* on a copy: the request it copies, while linked */
    uint64_t mirror_body;               /* on a copy: body bytes sent so far */
    /* routing on (or rewriting) the "model" of a JSON body: the body is
     * read whole before a route is chosen */
    struct evbuffer *inspect_body;
    char *body_model;                   /* the body's "model" string, raw; arena */
    uint32_t body_model_len;
    unsigned body_model_known:1;        /* the body was read: body_model is what it has */
    unsigned body_model_ambiguous:1;    /* ...and could name a model twice (json_model.h) */
    unsigned awaiting_body:1;           /* routing waits for the whole body */
    unsigned req_paused:1;              /* client reading paused for the backend */
    /* the body's receive clock (body_clock.c) */
    unsigned body_watched:1, body_paused:1;
    int64_t body_credit_ms;
    uint64_t body_mark_ms, body_mark_bytes;
    uint64_t body_excused_ms;           /* not charged: the connection blocked it */
    TAILQ_ENTRY(fg_exchange) body_link;
    /* the response's send clock (send_clock.c) */
    unsigned send_watched:1, send_progress:1;
    uint64_t send_mark_ms;
    TAILQ_ENTRY(fg_exchange) send_link;

    /* access control (access.c): the request's key, held with its key set
     * until the exchange ends, and the limits it counts in */
    const struct fg_api_key *api_key;
    struct fg_keyset *keyset;
    struct {
        const struct fg_limit_cfg *cfg;
        struct fg_limit_state *state;
    } held[3];
    unsigned nheld;
    unsigned auth_result;               /* enum fg_auth_result */
    struct fg_usage_scan *usage;        /* counting the response's tokens (arena) */
    unsigned usage_on:1;
    unsigned rate_shown:1;              /* x-ratelimit-* go on the response */
    uint64_t rate_limit, rate_remaining, rate_reset_s;
    /* the client as routing and geography see it (client_addr.c), found
     * on first use */
    unsigned client_known:1;
    unsigned geo_known:1;
    struct fg_ip client_ip;
    struct fg_geo geo;

    /* for the metrics and logs (stats.c) */
    uint64_t t_start_ns;                /* the proxy took the request (monotonic) */
    uint64_t t_head_ns;                 /* the backend's response head came */
    uint64_t resp_body_bytes;           /* response body bytes sent on */
    const struct fg_backend *last_backend;  /* the backend bound last */
    unsigned mirror_copy:1;             /* a route mirror's copy: not counted */
    uint64_t t_bind_ns;                 /* a backend was bound (and maybe connected to) */
    uint64_t connect_ns;                /* how long its connection took; 0: pooled */
    const char *key_name;               /* the API key's name (arena), for the log */
    uint32_t key_name_len;
    const char *path_orig;              /* the client's path, when a route rewrote it */
    uint32_t path_orig_len;

    /* HTTP/2 front only: the stream and its response body on the way out */
    int32_t h2_stream_id;
    uint64_t h2_unconsumed;             /* DATA bytes not yet returned to the window */
    uint64_t h2_head_bytes;             /* header list decoded so far, refused fields too */
    uint64_t h2_head_since_ms;          /* first read that ended inside its head; 0: none yet */
    unsigned h2_out_eof:1;              /* whole response body is in h2_out */
    unsigned h2_deferred:1;             /* data provider waits for h2_out */
    unsigned h2_out_blocked:1;          /* data provider waits for the socket */
    unsigned h2_end_sent:1;             /* our END_STREAM went out */
    unsigned h2_reset_after_end:1;      /* then RST_STREAM NO_ERROR (body too slow) */
    /* the request is complete but not started: its stream may still be
     * reset within the same read (rapid reset), see h2_front.c */
    unsigned h2_pending:1, h2_pending_end:1;
    TAILQ_ENTRY(fg_exchange) h2_plink;

    /* kept across fg_exchange_reset(): */
    struct evbuffer *h2_out;            /* allocated on first use */
    TAILQ_ENTRY(fg_exchange) link;      /* worker free list, or h2 connection's streams */
};

#endif
