/* Client connection limits: all workers together ("client.max_connections"),
 * and per client address ("client.max_connections_per_address").
 *
 * A connection takes its place when it is accepted and gives it back when
 * it closes, whatever stage it is in (PROXY header, TLS handshake, HTTP/1.1
 * or HTTP/2): the place travels in its struct fg_client_info (counted) and
 * fg_conn_unregister() gives it back. Past the global limit a worker stops
 * accepting (its listeners are disabled, connections wait in the kernel's
 * accept queue) and starts again once the count is below the limit; past
 * the per-address limit a connection is closed at once. Running out of
 * file descriptors (EMFILE, ENFILE) pauses accepting the same way. */
#ifndef FG_CONN_LIMIT_H
#define FG_CONN_LIMIT_H

#include <stdint.h>

#include "fg/config-t.h"
#include "fg/exchange-t.h"

enum fg_conn_refusal {
    FG_CONN_OK = 0,
    FG_CONN_OVER_GLOBAL,            /* max_connections */
    FG_CONN_OVER_ADDRESS,           /* max_connections_per_address */
};

/* A place for a connection from <ci->ip> (any thread). On success <ci> is
 * marked counted. <per_address>: the address limit applies (not to trusted
 * proxies, whose connections carry many clients). */
enum fg_conn_refusal fg_conn_limit_take(const struct fg_client_cfg *cc, struct fg_client_info *ci,
                                        int per_address);
/* Gives back what <ci> holds, if anything. */
void fg_conn_limit_give(const struct fg_client_info *ci);

/* The global limit in force for <cc> (0 in the file: from the descriptor
 * limit), and whether the count has reached it. */
unsigned long fg_conn_limit_max(const struct fg_client_cfg *cc);
int fg_conn_limit_full(const struct fg_client_cfg *cc);

/* Counts for /metrics. */
uint64_t fg_conn_limit_open(void);
uint64_t fg_conn_limit_refused(enum fg_conn_refusal why);
void fg_conn_limit_note_pause(void);
uint64_t fg_conn_limit_pauses(void);

#endif
