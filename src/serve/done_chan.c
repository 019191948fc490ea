/* Completion channels: how finished parts of batched jobs cross from the
 * batcher threads to the event loop of the worker that submitted them. A
 * mutex-protected list plus an eventfd watched by that worker's loop; one
 * wake-up delivers everything posted since the last. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "fg/batcher.h"
#include "fg/engine-impl.h"
#include "fg/job_part.h"

struct fg_done_chan {
    pthread_mutex_t mu;
    struct fg_job_part *head, **tail;
    int attached;
    int fd;
    struct event *ev;
};

struct fg_done_chan *fg_done_chan_new(void)
{
    struct fg_done_chan *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->tail = &c->head;
    c->fd = -1;
    return c;
}

static struct fg_job_part *take_all(struct fg_done_chan *c)
{
    struct fg_job_part *list;

    pthread_mutex_lock(&c->mu);
    list = c->head;
    c->head = NULL;
    c->tail = &c->head;
    pthread_mutex_unlock(&c->mu);
    return list;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct fg_done_chan *c = arg;
    uint64_t v;
    struct fg_job_part *p, *next;

    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: a wake-up already consumed; the list is what counts */
    }
    for (p = take_all(c); p; p = next) {
        next = p->next;
        fg_job_part_deliver(p);
    }
}

int fg_done_chan_attach(struct fg_done_chan *c, struct event_base *base, char **err)
{
    c->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->fd < 0 || !(c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_wake, c)) ||
        event_add(c->ev, NULL) < 0) {
        *err = fg_model_errorf("completion channel: %s", strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    c->attached = 1;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void fg_done_chan_detach(struct fg_done_chan *c)
{
    struct fg_job_part *p, *next;

    pthread_mutex_lock(&c->mu);
    c->attached = 0;
    pthread_mutex_unlock(&c->mu);
    for (p = take_all(c); p; p = next) {
        next = p->next;
        fg_job_part_drop(p);
    }
    if (c->ev)
        event_free(c->ev);
    c->ev = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void fg_done_chan_post(struct fg_done_chan *c, struct fg_job_part *p)
{
    uint64_t one = 1;
    int attached;

    p->next = NULL;
    pthread_mutex_lock(&c->mu);
    attached = c->attached;
    if (attached) {
        /* one wake-up per run of posts: the loop takes the whole list. The
         * write happens under the lock so detach cannot close the fd
         * between our check and our write. */
        if (!c->head && write(c->fd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is full, so a wake-up is pending anyway */
        }
        *c->tail = p;
        c->tail = &p->next;
    }
    pthread_mutex_unlock(&c->mu);
    if (!attached)
        fg_job_part_drop(p);
}

void fg_done_chan_free(struct fg_done_chan *c)
{
    if (!c)
        return;
    if (c->attached || c->ev)
        fg_done_chan_detach(c);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
