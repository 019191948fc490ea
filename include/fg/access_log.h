/* The access log: one JSON line per proxied request (time, request id,
 * client, country, key name — never the key —, method, path, protocol,
 * route, upstream, backend, status, bytes in and out, total time, upstream
 * connect time, time to first byte). Each worker buffers its lines and
 * writes them with one write() when 32 KiB are waiting or a second has
 * passed; the file is opened O_APPEND, so lines never interleave. */
#ifndef FG_ACCESS_LOG_H
#define FG_ACCESS_LOG_H

#include <stddef.h>

struct event;
struct fg_config;
struct fg_exchange;
struct fg_worker;

struct fg_access_log_buf {              /* in each worker */
    char *buf;
    size_t len, cap;
    struct event *timer;                /* flushes what waits */
};

/* Main thread, before the workers: opens $.log.access ("stderr", a file, or
 * nothing). -1 with *err (malloc'd). */
int fg_access_log_open(const struct fg_config *cfg, char **err);
/* Main thread, SIGUSR1: opens the file's path again (logrotate moved it)
 * and puts it in place of the old one under the same descriptor. */
int fg_access_log_reopen(void);
/* After the workers are freed. */
void fg_access_log_close(void);

int fg_access_log_worker_init(struct fg_worker *w);
void fg_access_log_worker_fini(struct fg_worker *w);     /* writes what waits */

/* The exchange ends: its line. */
void fg_access_log_exchange(struct fg_worker *w, struct fg_exchange *x);

#endif
