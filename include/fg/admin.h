/* The admin listener ("admin" in the configuration; loopback by default):
 * operational endpoints, answered from the configuration snapshot and the
 * shared runtime state on whichever worker accepted the connection.
 *   GET /status   every upstream and backend: state and why, active
 *                 requests, queue, retries, ejections, last health check.
 *   GET /metrics  Prometheus text (stats.c). */
#ifndef FG_ADMIN_H
#define FG_ADMIN_H

#include "fg/handler.h"

extern const struct fg_handler_ops fg_admin_handler;

#endif
