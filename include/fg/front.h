/* Starting the protocol of an accepted client connection. conn.c decides
 * which one (TLS ALPN or the HTTP/2 preface) and hands the stream over;
 * from then on the front owns it and frees it when the connection ends. Bytes
 * already read (the sniffed preface) stay in its input buffer. */
#ifndef FG_FRONT_H
#define FG_FRONT_H

#include "fg/exchange-t.h"

struct fg_stream;
struct fg_worker;

void fg_h1_start(struct fg_worker *w, struct fg_stream *bev, const struct fg_client_info *ci);
void fg_h2_start(struct fg_worker *w, struct fg_stream *bev, const struct fg_client_info *ci);

struct fg_client_conn;

/* Every client connection is registered with its worker while it lives:
 * <close_now> frees it at once (worker shutdown). A front registers the
 * object it embeds <c> in when it takes a connection over, and unregisters
 * it when it frees it. */
void fg_conn_register(struct fg_worker *w, struct fg_client_conn *c,
                      void (*close_now)(struct fg_client_conn *c));
void fg_conn_unregister(struct fg_worker *w, struct fg_client_conn *c);

#endif
