#ifndef FG_UCONN_H
#define FG_UCONN_H

#include "fg/uconn-t.h"

/* A pooled idle connection to <b>, or a new one whose connect has started.
 * The returned connection is bound to <x> (FG_UC_ACTIVE or
 * FG_UC_CONNECTING); NULL with errno set when the socket could not even be
 * created. Bytes written to its output before the connect completes are
 * sent once it does. */
struct fg_uconn *fg_uconn_acquire(struct fg_worker *w, struct fg_backend *b,
                                  struct fg_exchange *x, int allow_pooled);

/* Ends the exchange's use of <c>: back to the pool when <reusable> and the
 * pool has room, else closed. */
void fg_uconn_release(struct fg_uconn *c, int reusable);

/* Closes and frees at once. */
void fg_uconn_close(struct fg_uconn *c);


/* Applies the read and write timeouts of the connection's phase. */
void fg_uconn_set_timeouts(struct fg_uconn *c, unsigned read_ms, unsigned write_ms);



/* Implemented by the proxy: what an active connection does with its events. */
void fg_proxy_on_backend_read(struct fg_uconn *c);
void fg_proxy_on_backend_write(struct fg_uconn *c);
void fg_proxy_on_backend_event(struct fg_uconn *c, short what);
#endif
