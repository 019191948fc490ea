/* The access log (fg/access_log.h): one JSON line per request, buffered per
 * worker, written with one write() per buffer to a file opened O_APPEND (so
 * the workers' writes never interleave within a line), reopened in place
 * with dup2() on SIGUSR1, for logrotate. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "fg/access_log.h"
#include "fg/client_geo.h"
#include "fg/exchange.h"
#include "fg/log.h"
#include "fg/proxy.h"
#include "fg/worker.h"

#define FLUSH_BYTES (32 * 1024)         /* a buffer this full is written at once */
#define FLUSH_MS 1000                   /* else within a second */

static int log_fd = -1;                 /* shared by the workers; replaced by dup2() */
static int log_is_file;                 /* else a pipe or a terminal: writes of whole lines
                                           up to PIPE_BUF, which the kernel keeps whole */
static char *log_path;                  /* NULL: stderr */

static int open_file(const char *path, char **err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0 && err) {
        int e = errno;
        if (asprintf(err, "access log %s: %s", path, strerror(e)) < 0)
            *err = NULL;
    }
    return fd;
}

int fg_access_log_open(const struct fg_config *cfg, char **err)
{
    const char *path = cfg->log.access;

    if (!path)
        return 0;
    if (strcmp(path, "stderr") == 0) {
        struct stat st;
        log_fd = STDERR_FILENO;
        log_is_file = fstat(log_fd, &st) == 0 && S_ISREG(st.st_mode);
        return 0;
    }
    log_is_file = 1;
    if ((log_fd = open_file(path, err)) < 0)
        return -1;
    if (!(log_path = strdup(path))) {
        close(log_fd);
        log_fd = -1;
        return -1;
    }
    return 0;
}

int fg_access_log_reopen(void)
{
    char *err = NULL;
    int fd;

    if (!log_path)
        return 0;
    if ((fd = open_file(log_path, &err)) < 0) {
        fg_log_error("%s; still writing to the file opened before", err ? err : "out of memory");
        free(err);
        return -1;
    }
    /* atomic for the workers: the same descriptor now names the new file */
    if (dup2(fd, log_fd) < 0) {
        fg_log_error("access log %s: dup2: %s", log_path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    fg_log_info("access log %s reopened", log_path);
    return 1;
}

void fg_access_log_close(void)
{
    if (log_path && log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    free(log_path);
    log_path = NULL;
}

/* ---- per worker ---------------------------------------------------------- */

/* How much of buf[0..len) one write() may take: all of it for a file
 * (O_APPEND keeps it whole), else whole lines up to PIPE_BUF (one longer
 * line alone). */
static size_t chunk(const char *buf, size_t len)
{
    size_t end = 0;

    if (log_is_file || len <= PIPE_BUF)
        return len;
    for (size_t i = 0; i < PIPE_BUF; i++)
        if (buf[i] == '\n')
            end = i + 1;
    if (!end) {
        const char *nl = memchr(buf, '\n', len);
        end = nl ? (size_t)(nl - buf) + 1 : len;
    }
    return end;
}

static void flush(struct fg_worker *w)
{
    struct fg_access_log_buf *b = &w->access_log;
    size_t off = 0;

    while (off < b->len) {
        ssize_t n = write(log_fd, b->buf + off, chunk(b->buf + off, b->len - off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;                      /* disk full, closed pipe: the lines are lost */
        off += (size_t)n;
    }
    b->len = 0;
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

int fg_access_log_worker_init(struct fg_worker *w)
{
    struct fg_access_log_buf *b = &w->access_log;

    if (log_fd < 0)
        return 0;
    b->cap = 2 * FLUSH_BYTES;
    if (!(b->buf = malloc(b->cap)) || !(b->timer = evtimer_new(w->base, on_flush_timer, w))) {
        free(b->buf);
        b->buf = NULL;
        return -1;
    }
    return 0;
}

void fg_access_log_worker_fini(struct fg_worker *w)
{
    struct fg_access_log_buf *b = &w->access_log;

    if (b->buf && b->len && log_fd >= 0)
        flush(w);
    if (b->timer)
        event_free(b->timer);
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

/* Room for <n> more bytes, flushing first when needed. */
static char *room(struct fg_worker *w, size_t n)
{
    struct fg_access_log_buf *b = &w->access_log;

    if (b->len + n > b->cap) {
        flush(w);
        if (n > b->cap) {
            char *nb = realloc(b->buf, n);
            if (!nb)
                return NULL;
            b->buf = nb;
            b->cap = n;
        }
    }
    return b->buf + b->len;
}

/* A JSON string of <s> (<len> bytes) into <p>, which has room for 6 x len + 2. */
static size_t json_str(char *p, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    p[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            p[n++] = '\\';
            p[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            /* bytes, not characters: a request target is not always UTF-8 */
            p[n++] = '\\';
            p[n++] = 'u';
            p[n++] = '0';
            p[n++] = '0';
            p[n++] = hex[ch >> 4];
            p[n++] = hex[ch & 15];
        } else {
            p[n++] = (char)ch;
        }
    }
    p[n++] = '"';
    return n;
}

static double ms_between(uint64_t from, uint64_t to)
{
    return from && to >= from ? (double)(to - from) / 1e6 : 0;
}

void fg_access_log_exchange(struct fg_worker *w, struct fg_exchange *x)
{
    const struct fg_config *cfg = x->gen ? x->gen->cfg : w->cfg;
    struct fg_access_log_buf *b = &w->access_log;
    char ts[64], num[256], *p;
    const char *country = NULL;
    struct timespec now;
    struct tm tm;
    uint64_t end = fg_proxy_now_ns();
    size_t need, n = 0;

    if (!b->buf)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now.tv_nsec / 1000000) % 1000);
    if (cfg->geoip && x->client) {
        const struct fg_geo *g = fg_exchange_geo(x);
        country = g->country[0] ? g->country : "unknown";
    }
    const char *route = x->route && x->route->name ? x->route->name : NULL;
    const char *up = x->upstream ? x->upstream->name : NULL;
    const char *be = x->last_backend ? x->last_backend->addr.text : NULL;
    const char *path = x->path_orig ? x->path_orig : x->path;
    size_t path_len = x->path_orig ? x->path_orig_len : x->path_len;
    /* every string is escaped into at most 6 bytes per byte, plus quotes */
    size_t strs = strlen(ts) + x->request_id_len + (x->client ? strlen(x->client->addr) : 0) +
                  x->key_name_len + x->method_len + path_len + (route ? strlen(route) : 0) +
                  (up ? strlen(up) : 0) + (be ? strlen(be) : 0) + (country ? strlen(country) : 0) + 8;
    need = 6 * strs + 512;
    if (!(p = room(w, need)))
        return;
#define FIELD(name) (n += (size_t)sprintf(p + n, "%s\"" name "\":", n > 1 ? "," : ""))
    p[n++] = '{';
    FIELD("time");
    n += json_str(p + n, ts, strlen(ts));
    FIELD("request_id");
    n += json_str(p + n, x->request_id, x->request_id_len);
    if (x->client) {
        FIELD("client");
        n += json_str(p + n, x->client->addr, strlen(x->client->addr));
    }
    if (country) {
        FIELD("country");
        n += json_str(p + n, country, strlen(country));
    }
    if (x->key_name) {
        FIELD("key");
        n += json_str(p + n, x->key_name, x->key_name_len);
    }
    FIELD("method");
    n += json_str(p + n, x->method, x->method_len);
    FIELD("path");
    n += json_str(p + n, path, path_len);
    FIELD("protocol");
    n += (size_t)sprintf(p + n, "\"%s\"", x->client && x->client->h2 ? "HTTP/2" : "HTTP/1.1");
    FIELD("tls");
    n += (size_t)sprintf(p + n, "%s", x->client && x->client->tls ? "true" : "false");
    if (route) {
        FIELD("route");
        n += json_str(p + n, route, strlen(route));
    }
    if (up) {
        FIELD("upstream");
        n += json_str(p + n, up, strlen(up));
    }
    if (be) {
        FIELD("backend");
        n += json_str(p + n, be, strlen(be));
    }
    snprintf(num, sizeof(num),
             ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f,"
             "\"connect_ms\":%.3f,\"ttfb_ms\":%.3f}\n",
             x->status, (unsigned long long)x->req_body_bytes,
             (unsigned long long)x->resp_body_bytes, ms_between(x->t_start_ns, end),
             x->connect_ns / 1e6, ms_between(x->t_start_ns, x->t_head_ns));
    n += (size_t)sprintf(p + n, "%s", num);
#undef FIELD
    b->len += n;
    if (b->len >= FLUSH_BYTES)
        flush(w);
    else if (!evtimer_pending(b->timer, NULL)) {
        struct timeval tv = {.tv_sec = FLUSH_MS / 1000, .tv_usec = (FLUSH_MS % 1000) * 1000};
        evtimer_add(b->timer, &tv);
    }
}
