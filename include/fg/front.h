/* Starting the protocol of an accepted client connection. conn.c decides
 * which one (TLS ALPN or the HTTP/2 preface) and hands the bufferevent over;
 * from then on the front owns it and frees it when the connection ends. Bytes
 * already read (the sniffed preface) stay in its input buffer. */
#ifndef FG_FRONT_H
#define FG_FRONT_H

#include "fg/exchange-t.h"

struct bufferevent;
struct fg_worker;

void fg_h1_start(struct fg_worker *w, struct bufferevent *bev, const struct fg_client_info *ci);
void fg_h2_start(struct fg_worker *w, struct bufferevent *bev, const struct fg_client_info *ci);

/* Accepted connections count against the worker; fronts call this when a
 * connection they own is freed. */
void fg_conn_closed(struct fg_worker *w);

#endif
