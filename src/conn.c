/* Accepted client connections until their protocol is known: the TLS
 * handshake and ALPN, or for cleartext the first bytes (the HTTP/2 client
 * preface, or anything else for HTTP/1.1). Then the connection is handed
 * to a front end, which takes over the stream. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "fg/client_addr.h"
#include "fg/admin.h"
#include "fg/conn.h"
#include "fg/conn_limit.h"
#include "fg/front.h"
#include "fg/proxy_protocol.h"
#include "fg/stream.h"
#include "fg/log.h"
#include "fg/worker.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

/* A connection whose protocol is not known yet. */
struct pending {
    struct fg_client_conn base;
    struct fg_worker *w;
    struct fg_stream *bev;
    struct fg_client_info client;
};

void fg_conn_register(struct fg_worker *w, struct fg_client_conn *c,
                      void (*close_now)(struct fg_client_conn *c))
{
    c->close_now = close_now;
    c->drain = NULL;
    c->client = NULL;
    TAILQ_INSERT_TAIL(&w->conns, c, link);
    w->nconns++;
}

void fg_conn_unregister(struct fg_worker *w, struct fg_client_conn *c)
{
    TAILQ_REMOVE(&w->conns, c, link);
    w->nconns--;
    if (c->client)
        fg_conn_limit_give(c->client);
    fg_worker_conn_gone(w);
}

static void drop(struct fg_stream *bev, struct pending *p)
{
    fg_conn_unregister(p->w, &p->base);
    fg_stream_free(bev);
    free(p);
}

static void pending_close_now(struct fg_client_conn *c)
{
    struct pending *p = (struct pending *)c;

    drop(p->bev, p);
}

static void hand_over(struct fg_stream *bev, struct pending *p, int h2)
{
    struct fg_worker *w = p->w;
    struct fg_client_info ci = p->client;

    p->client.counted = 0;              /* the place goes on with the connection */
    fg_conn_unregister(w, &p->base);
    free(p);
    fg_stream_set_timeouts(bev, 0, 0);
    if (h2)
        fg_h2_start(w, bev, &ci);
    else
        fg_h1_start(w, bev, &ci);
}

/* Cleartext: compare what arrived with the preface; decide as soon as the
 * bytes differ (HTTP/1.1) or the whole preface is there (h2c). */
static void sniff_read(struct fg_stream *bev, void *arg)
{
    size_t n, cmp;
    const char *data = fg_stream_input_data(bev, &n);

    if (n == 0)
        return;
    cmp = n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN;
    if (memcmp(data, h2_preface, cmp) != 0) {
        hand_over(bev, arg, 0);
        return;
    }
    if (cmp == H2_PREFACE_LEN)
        hand_over(bev, arg, 1);
    /* else a prefix of the preface: wait for more */
}

static void sniff_event(struct fg_stream *bev, short what, void *arg)
{
    drop(bev, arg);
}

static void tls_event(struct fg_stream *bev, short what, void *arg)
{
    struct pending *p = arg;

    if (what & BEV_EVENT_CONNECTED) {
        SSL *ssl = fg_stream_ssl(bev);
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;

        SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
        hand_over(bev, p, alpn_len == 2 && memcmp(alpn, "h2", 2) == 0);
        return;
    }
    drop(bev, p);       /* handshake failed or timed out */
}

/* The peer's address as text and binary, an IPv4-mapped one as IPv4. */
static void client_addr(const struct sockaddr *sa, struct fg_client_info *ci)
{
    char *out = ci->addr;

    out[0] = '\0';
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, sizeof(ci->addr));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, sizeof(ci->addr));
    if (fg_ip_parse(out, strlen(out), &ci->ip) == 0)
        fg_ip_format(&ci->ip, out, sizeof(ci->addr));
}

/* The connection's stream, TLS or cleartext, from here on. */
static void start_stream(struct fg_worker_listener *l, evutil_socket_t fd,
                         const struct fg_client_info *ci)
{
    struct fg_worker *w = l->worker;
    unsigned ms = w->cfg->client.header_timeout_ms;
    struct fg_stream *bev;
    struct pending *p = calloc(1, sizeof(*p));

    if (!p) {
        fg_conn_limit_give(ci);
        evutil_closesocket(fd);
        return;
    }
    p->w = w;
    p->client = *ci;
    if (l->ssl_ctx) {
        SSL *ssl = SSL_new(l->ssl_ctx);
        bev = ssl ? fg_stream_new(w->loop, fd, ssl) : NULL;
        if (!bev) {
            if (ssl)
                SSL_free(ssl);
            fg_conn_limit_give(ci);
            evutil_closesocket(fd);
            free(p);
            return;
        }
        p->client.tls = 1;
        fg_stream_setcb(bev, NULL, NULL, tls_event, p);
    } else {
        bev = fg_stream_new(w->loop, fd, NULL);
        if (!bev) {
            fg_conn_limit_give(ci);
            evutil_closesocket(fd);
            free(p);
            return;
        }
        fg_stream_setcb(bev, sniff_read, NULL, sniff_event, p);
    }
    p->bev = bev;
    fg_conn_register(w, &p->base, pending_close_now);
    p->base.client = &p->client;
    /* the handshake or the first bytes must come within the header timeout */
    fg_stream_set_timeouts(bev, ms, ms);
    fg_stream_enable(bev, EV_READ | EV_WRITE);
}

/* ---- the PROXY protocol header ----------------------------------------------
 *
 * Read from the socket itself, before any stream (and any TLS) exists, so it
 * works on every listener: the bytes are looked at with MSG_PEEK, and only
 * the header's own bytes are taken from the socket. Bytes known to belong to
 * the header (the parser says they are an incomplete prefix of one) are
 * taken as they come, so a slow sender does not wake the loop again and
 * again for bytes already seen. */
struct pp_wait {
    struct fg_client_conn base;
    struct fg_worker_listener *l;
    evutil_socket_t fd;
    struct event *ev;
    struct fg_client_info client;
    size_t have;                        /* header bytes taken so far */
    unsigned char buf[FG_PP_V2_MAX];
};

static void pp_free(struct pp_wait *pw, int close_fd)
{
    fg_conn_unregister(pw->l->worker, &pw->base);
    fg_worker_listener_unref(pw->l);
    event_free(pw->ev);
    if (close_fd)
        evutil_closesocket(pw->fd);
    free(pw);
}

static void pp_close_now(struct fg_client_conn *c)
{
    pp_free((struct pp_wait *)c, 1);
}

static void pp_read(evutil_socket_t fd, short what, void *arg)
{
    struct pp_wait *pw = arg;
    struct fg_proxy_hdr hdr;
    const char *why = NULL;
    ssize_t n;
    int rc;

    if (what & EV_TIMEOUT) {
        fg_log_debug("client %s: no PROXY protocol header in time", pw->client.addr);
        pp_free(pw, 1);
        return;
    }
    n = recv(fd, pw->buf + pw->have, sizeof(pw->buf) - pw->have, MSG_PEEK);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        pp_free(pw, 1);                 /* closed or failed before the header */
        return;
    }
    rc = fg_proxy_protocol_parse(pw->buf, pw->have + (size_t)n, &hdr, &why);
    if (rc < 0) {
        fg_log_debug("client %s: no valid PROXY protocol header: %s", pw->client.addr,
                     why ? why : "?");
        pp_free(pw, 1);
        return;
    }
    /* take what is the header's: all of it when incomplete */
    size_t take = rc == FG_PP_NEED_MORE ? (size_t)n : (size_t)rc - pw->have;
    if (recv(fd, pw->buf + pw->have, take, 0) != (ssize_t)take) {
        pp_free(pw, 1);
        return;
    }
    pw->have += take;
    if (rc == FG_PP_NEED_MORE)
        return;
    if (hdr.family != AF_INET && hdr.family != AF_INET6)
        pw->client.no_xff = 1;          /* UNKNOWN, LOCAL: the client is not named */
    if (hdr.family == AF_INET || hdr.family == AF_INET6) {
        char text[INET6_ADDRSTRLEN];
        /* normalised (an IPv4-mapped source is IPv4) through its text */
        if (inet_ntop(hdr.family, hdr.src, text, sizeof(text)) &&
            fg_ip_parse(text, strlen(text), &pw->client.ip) == 0)
            fg_ip_format(&pw->client.ip, pw->client.addr, sizeof(pw->client.addr));
    }
    struct fg_worker_listener *l = pw->l;
    struct fg_client_info ci = pw->client;
    pw->client.counted = 0;             /* the place goes on with the connection */
    l->refs++;                          /* a reload may have closed it meanwhile */
    pp_free(pw, 0);
    start_stream(l, fd, &ci);
    fg_worker_listener_unref(l);
}

static void wait_proxy_header(struct fg_worker_listener *l, evutil_socket_t fd,
                              const struct fg_client_info *ci)
{
    struct fg_worker *w = l->worker;
    unsigned ms = w->cfg->client.header_timeout_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    struct pp_wait *pw = calloc(1, sizeof(*pw));

    if (!pw || !(pw->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, pp_read, pw))) {
        free(pw);
        fg_conn_limit_give(ci);
        evutil_closesocket(fd);
        return;
    }
    pw->l = l;
    l->refs++;
    pw->fd = fd;
    pw->client = *ci;
    fg_conn_register(w, &pw->base, pp_close_now);
    pw->base.client = &pw->client;
    event_add(pw->ev, &tv);             /* the whole header within the header timeout */
}

void fg_conn_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                    int socklen, void *arg)
{
    struct fg_worker_listener *l = arg;
    const struct fg_client_cfg *cc = &l->worker->cfg->client;
    struct fg_client_info ci = {.handler = l->handler};
    enum fg_conn_refusal why;
    int one = 1, trusted;

    client_addr(sa, &ci);
    trusted = cc->ntrusted_proxies && fg_ip_in(&ci.ip, cc->trusted_proxies, cc->ntrusted_proxies);
    /* the admin listener is not limited: it must answer in an overload */
    why = l->handler == &fg_admin_handler ? FG_CONN_OK : fg_conn_limit_take(cc, &ci, !trusted);
    if (why != FG_CONN_OK) {
        /* over the global limit: this worker stops accepting until below it
         * (the connections wait in the accept queue); over the address's:
         * this one is closed */
        evutil_closesocket(fd);
        if (why == FG_CONN_OVER_GLOBAL)
            fg_worker_accept_pause(l->worker, 0);
        return;
    }
    if (ci.counted && fg_conn_limit_full(cc))
        fg_worker_accept_pause_all();   /* the last place: stop before refusing */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* only a trusted peer may say who the client is */
    if (l->proxy_protocol && trusted)
        wait_proxy_header(l, fd, &ci);
    else
        start_stream(l, fd, &ci);
}
