/* Active health checks (fg/health.h). Each check is one HTTP/1.1 GET with
 * "Connection: close" on a fresh connection: the answer is read to its end
 * (at most 64 KiB), then its status line and body are judged. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "fg/health.h"
#include "fg/log.h"
#include "fg/outlier.h"
#include "fg/wait_queue.h"

#define MAX_ANSWER (64 * 1024)

struct probe {
    struct fg_health *hc;
    struct fg_backend *b;
    const struct fg_health_cfg *cfg;
    struct event *timer;
    struct bufferevent *bev;
};

struct fg_health {
    struct event_base *base;
    pthread_t thread;
    int stop_fd;
    struct event *stop_ev;
    struct probe *probes;
    unsigned nprobes;
    unsigned seed;
};

static void schedule(struct probe *p, int soon)
{
    unsigned ms = p->cfg->interval_ms, jitter = ms / 10;
    struct timeval tv;

    /* +-10% so that checks of many backends do not march in step */
    if (jitter)
        ms = ms - jitter + (unsigned)rand_r(&p->hc->seed) % (2 * jitter + 1);
    if (soon)
        ms = (unsigned)rand_r(&p->hc->seed) % 100;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(p->timer, &tv);
}

static void verdict(struct probe *p, int pass, const char *why)
{
    const struct fg_health_cfg *c = p->cfg;
    struct fg_backend *b = p->b;
    int down = atomic_load(&b->st->down);

    pthread_mutex_lock(&b->st->info_lock);
    snprintf(b->st->info.check, sizeof(b->st->info.check), "%s: %s", pass ? "pass" : "fail", why);
    b->st->info.check_ms = fg_outlier_now_ms();
    if (!pass && !down && p->b->st->health_failures + 1 >= c->fall)
        snprintf(b->st->info.down_why, sizeof(b->st->info.down_why), "%u in a row, last: %s",
                 p->b->st->health_failures + 1, why);
    pthread_mutex_unlock(&b->st->info_lock);

    if (pass) {
        p->b->st->health_passes++;
        p->b->st->health_failures = 0;
        if (down && p->b->st->health_passes >= c->rise) {
            atomic_store(&p->b->st->up_since_ms, fg_outlier_now_ms());     /* slow start from here */
            atomic_store(&p->b->st->down, 0);
            fg_log_info("upstream %s: backend %s is UP (%u passing checks)",
                        p->b->upstream->name, p->b->addr.text, p->b->st->health_passes);
            fg_wait_queue_kick(p->b->upstream);     /* room for waiters */
        }
    } else {
        p->b->st->health_failures++;
        p->b->st->health_passes = 0;
        if (!down && p->b->st->health_failures >= c->fall) {
            atomic_store(&p->b->st->down, 1);
            fg_log_warn("upstream %s: backend %s is DOWN: %s (%u failed checks)",
                        p->b->upstream->name, p->b->addr.text, why, p->b->st->health_failures);
            /* waiters may have nothing left to wait for: answer them now */
            fg_wait_queue_kick(p->b->upstream);
        } else if (!down) {
            fg_log_debug("upstream %s: backend %s check failed: %s", p->b->upstream->name,
                         p->b->addr.text, why);
        }
    }
}

static void end_check(struct probe *p)
{
    if (p->bev)
        bufferevent_free(p->bev);
    p->bev = NULL;
    schedule(p, 0);
}

/* The whole answer is in the input buffer: judge it. */
static void judge(struct probe *p)
{
    struct evbuffer *in = bufferevent_get_input(p->bev);
    size_t len = evbuffer_get_length(in);
    const char *text = len ? (const char *)evbuffer_pullup(in, -1) : "";
    const char *body;
    char why[96];
    unsigned status = 0;
    int pass;

    if (len < 12 || (memcmp(text, "HTTP/1.1 ", 9) && memcmp(text, "HTTP/1.0 ", 9)) ||
        sscanf(text + 9, "%3u", &status) != 1) {
        verdict(p, 0, len ? "not an HTTP answer" : "connection closed without an answer");
        end_check(p);
        return;
    }
    body = memmem(text, len, "\r\n\r\n", 4);
    pass = status >= p->cfg->status_min && status <= p->cfg->status_max;
    snprintf(why, sizeof(why), "status %u", status);
    if (pass && p->cfg->body_contains) {
        size_t blen = body ? len - (size_t)(body + 4 - text) : 0;
        pass = body && memmem(body + 4, blen, p->cfg->body_contains,
                              strlen(p->cfg->body_contains)) != NULL;
        if (!pass)
            snprintf(why, sizeof(why), "status %u, body without \"%.40s\"", status,
                     p->cfg->body_contains);
    }
    verdict(p, pass, why);
    end_check(p);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct probe *p = arg;

    if (evbuffer_get_length(bufferevent_get_input(bev)) >= MAX_ANSWER)
        judge(p);                       /* enough to judge; stop reading */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct probe *p = arg;

    if (what & BEV_EVENT_CONNECTED)
        return;
    if (what & BEV_EVENT_EOF) {
        judge(p);
        return;
    }
    verdict(p, 0, (what & BEV_EVENT_TIMEOUT) ? "timeout" :
                  (what & BEV_EVENT_READING) ? "read error" :
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    end_check(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    const struct fg_health_cfg *c = p->cfg;
    struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};

    p->bev = bufferevent_socket_new(p->hc->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!p->bev) {
        verdict(p, 0, "out of memory");
        schedule(p, 0);
        return;
    }
    bufferevent_setcb(p->bev, on_read, NULL, on_event, p);
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    evbuffer_add_printf(bufferevent_get_output(p->bev),
                        "GET %s HTTP/1.1\r\nhost: %s\r\nuser-agent: fleetgate-health\r\n"
                        "connection: close\r\n\r\n", c->path, p->b->addr.text);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&p->b->addr.ss,
                                   (int)p->b->addr.len) < 0) {
        verdict(p, 0, "cannot connect");
        end_check(p);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct fg_health *h = arg;
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0) {
        /* stopping either way */
    }
    event_base_loopbreak(h->base);
}

static void *health_main(void *arg)
{
    struct fg_health *h = arg;

    event_base_dispatch(h->base);
    return NULL;
}

static void health_free(struct fg_health *h)
{
    for (unsigned i = 0; i < h->nprobes; i++) {
        if (h->probes[i].bev)
            bufferevent_free(h->probes[i].bev);
        if (h->probes[i].timer)
            event_free(h->probes[i].timer);
    }
    free(h->probes);
    if (h->stop_ev)
        event_free(h->stop_ev);
    if (h->stop_fd >= 0)
        close(h->stop_fd);
    if (h->base)
        event_base_free(h->base);
    free(h);
}

struct fg_health *fg_health_start(const struct fg_config *cfg, char **err)
{
    struct fg_health *h;
    unsigned n = 0, k = 0;

    *err = NULL;
    for (unsigned u = 0; u < cfg->nupstreams; u++)
        if (cfg->upstreams[u].health.enabled)
            n += cfg->upstreams[u].nbackends;
    if (!n)
        return NULL;
    if (!(h = calloc(1, sizeof(*h))) || !(h->probes = calloc(n, sizeof(*h->probes)))) {
        free(h);
        *err = strdup("health checks: out of memory");
        return NULL;
    }
    h->stop_fd = -1;
    h->seed = (unsigned)getpid();
    if (!(h->base = event_base_new()) ||
        (h->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        !(h->stop_ev = event_new(h->base, h->stop_fd, EV_READ | EV_PERSIST, on_stop, h)) ||
        event_add(h->stop_ev, NULL) < 0)
        goto fail;
    for (unsigned u = 0; u < cfg->nupstreams; u++) {
        struct fg_upstream *up = &cfg->upstreams[u];
        if (!up->health.enabled)
            continue;
        for (unsigned b = 0; b < up->nbackends; b++, k++) {
            struct probe *p = &h->probes[k];
            p->hc = h;
            p->b = &up->backends[b];
            p->cfg = &up->health;
            if (!(p->timer = evtimer_new(h->base, on_timer, p)))
                goto fail;
            h->nprobes++;
            /* a backend never checked: at once; one checked before (a
             * reload started this checker): when its next check is due
             * anyway, not in a burst with every other */
            schedule(p, p->b->st->info.check_ms == 0);
        }
    }
    if (pthread_create(&h->thread, NULL, health_main, h) != 0)
        goto fail;
    fg_log_info("health checks: %u backends", h->nprobes);
    return h;
fail:
    *err = strdup("health checks: cannot set up their event loop");
    health_free(h);
    return NULL;
}

void fg_health_stop(struct fg_health *h)
{
    uint64_t one = 1;

    if (!h)
        return;
    if (write(h->stop_fd, &one, sizeof(one)) < 0)
        fg_log_warn("health checks: cannot signal stop: %s", strerror(errno));
    pthread_join(h->thread, NULL);
    health_free(h);
}
