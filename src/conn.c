/* Accepted client connections until their protocol is known: the TLS
 * handshake and ALPN, or for cleartext the first bytes (the HTTP/2 client
 * preface, or anything else for HTTP/1.1). Then the connection is handed
 * to a front end, which takes over the stream. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "fg/client_addr.h"
#include "fg/conn.h"
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
    TAILQ_INSERT_TAIL(&w->conns, c, link);
    w->nconns++;
}

void fg_conn_unregister(struct fg_worker *w, struct fg_client_conn *c)
{
    TAILQ_REMOVE(&w->conns, c, link);
    w->nconns--;
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
    struct evbuffer *in = fg_stream_input(bev);
    size_t n = evbuffer_get_length(in);
    size_t cmp = n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN;
    const unsigned char *data;

    if (n == 0)
        return;
    data = evbuffer_pullup(in, (ev_ssize_t)cmp);
    if (memcmp(data, h2_preface, cmp) != 0) {
        hand_over(bev, arg, 0);
        return;
    }
    if (cmp == H2_PREFACE_LEN)
        hand_over(bev, arg, 1);
    /* else a prefix of the preface: wait for more */
}

static void sniff_event(struct fg_stream *bev, short what, void *arg);

/* A trusted peer's PROXY header (v1 or v2) comes first: it says who the
 * client is. Then the bytes after it are sniffed as usual. */
static void proxy_header_read(struct fg_stream *bev, void *arg)
{
    struct pending *p = arg;
    struct evbuffer *in = fg_stream_input(bev);
    size_t n = evbuffer_get_length(in);
    struct fg_proxy_hdr hdr;
    const char *why = NULL;
    int rc;

    if (n == 0)
        return;
    rc = fg_proxy_protocol_parse(evbuffer_pullup(in, (ev_ssize_t)n), n, &hdr, &why);
    if (rc == FG_PP_NEED_MORE)
        return;
    if (rc < 0) {
        fg_log_debug("client %s: no valid PROXY protocol header: %s", p->client.addr,
                     why ? why : "?");
        drop(bev, p);
        return;
    }
    evbuffer_drain(in, (size_t)rc);
    if (hdr.family == AF_INET || hdr.family == AF_INET6) {
        struct fg_ip ip = {.family = hdr.family};
        memcpy(ip.addr, hdr.src, hdr.family == AF_INET ? 4 : 16);
        /* normalised (an IPv4-mapped source is IPv4) through its text */
        inet_ntop(hdr.family, hdr.src, p->client.addr, sizeof(p->client.addr));
        if (fg_ip_parse(p->client.addr, strlen(p->client.addr), &p->client.ip) < 0)
            p->client.ip = ip;
        fg_ip_format(&p->client.ip, p->client.addr, sizeof(p->client.addr));
    }
    fg_stream_setcb(bev, sniff_read, NULL, sniff_event, p);
    if (evbuffer_get_length(in))
        sniff_read(bev, p);
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

void fg_conn_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                    int socklen, void *arg)
{
    struct fg_worker_listener *l = arg;
    struct fg_worker *w = l->worker;
    unsigned ms = w->cfg->client.header_timeout_ms;
    struct fg_stream *bev;
    struct pending *p;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p = calloc(1, sizeof(*p));
    if (!p) {
        evutil_closesocket(fd);
        return;
    }
    p->w = w;
    p->client.handler = l->handler;
    client_addr(sa, &p->client);
    if (l->ssl_ctx) {
        SSL *ssl = SSL_new(l->ssl_ctx);
        bev = ssl ? fg_stream_new(w->loop, fd, ssl) : NULL;
        if (!bev) {
            if (ssl)
                SSL_free(ssl);
            evutil_closesocket(fd);
            free(p);
            return;
        }
        p->client.tls = 1;
        fg_stream_setcb(bev, NULL, NULL, tls_event, p);
    } else {
        bev = fg_stream_new(w->loop, fd, NULL);
        if (!bev) {
            evutil_closesocket(fd);
            free(p);
            return;
        }
        /* only a trusted peer may say who the client is */
        if (l->cfg->proxy_protocol && w->cfg->client.ntrusted_proxies &&
            fg_ip_in(&p->client.ip, w->cfg->client.trusted_proxies,
                     w->cfg->client.ntrusted_proxies))
            fg_stream_setcb(bev, proxy_header_read, NULL, sniff_event, p);
        else
            fg_stream_setcb(bev, sniff_read, NULL, sniff_event, p);
    }
    p->bev = bev;
    fg_conn_register(w, &p->base, pending_close_now);
    /* the handshake or the first bytes must come within the header timeout */
    fg_stream_set_timeouts(bev, ms, ms);
    fg_stream_enable(bev, EV_READ | EV_WRITE);
}
