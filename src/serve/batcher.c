/* Dynamic batching: one FIFO of jobs per model, drained by the batcher's
 * threads into batches of up to max_batch items (see fg/batcher.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fg/batcher.h"
#include "fg/engine-impl.h"
#include "fg/job_part.h"

/* One slice of a job inside a batch. */
struct slice {
    struct fg_job *job;
    unsigned first, count;
};

struct runner {
    struct fg_batcher *b;
    pthread_t thread;
    int started;
    struct fg_engine *engine;
    float *in, *out;                /* max_batch staging rows */
    struct slice *slices;           /* at most max_batch */
};

struct fg_batcher {
    const struct fg_model *model;
    struct fg_batcher_cfg cfg;
    size_t in_size, out_size;       /* floats per item */

    pthread_mutex_t mu;
    pthread_cond_t cond;            /* CLOCK_MONOTONIC */
    struct fg_job *head, *tail;     /* jobs with items not yet batched */
    unsigned queued_items;
    int stopping;

    struct runner *runners;
    unsigned nrunners;
    struct fg_batcher_stats stats;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned bucket_of(uint64_t v, unsigned nbuckets)
{
    unsigned i = 0;

    while (i + 1 < nbuckets && v > (UINT64_C(1) << i))
        i++;
    return i;
}

/* ---- jobs ---------------------------------------------------------------- */

struct fg_job *fg_job_new(struct fg_batcher *b, unsigned n, fg_job_cb cb, void *arg)
{
    size_t floats = (size_t)n * (b->in_size + b->out_size);
    struct fg_job *job;

    if (n == 0 || floats / n != b->in_size + b->out_size)
        return NULL;
    job = malloc(sizeof(*job) + floats * sizeof(float));
    if (!job)
        return NULL;
    memset(job, 0, sizeof(*job));
    job->n = n;
    job->in = (float *)(job + 1);
    job->out = job->in + (size_t)n * b->in_size;
    job->cb = cb;
    job->arg = arg;
    job->batcher = b;
    return job;
}

/* Under b->mu. */
static void unqueue(struct fg_batcher *b, struct fg_job *job)
{
    struct fg_job **pp = &b->head, *prev = NULL;

    for (; *pp && *pp != job; pp = &(*pp)->qnext)
        prev = *pp;
    if (!*pp)
        return;
    *pp = job->qnext;
    if (b->tail == job)
        b->tail = prev;
    job->qnext = NULL;
    job->queued = 0;
    b->queued_items -= job->n - job->next;
    job->next = job->n;
    atomic_store(&b->stats.queue_depth, b->queued_items);
}

int fg_job_submit(struct fg_job *job, struct fg_done_chan *chan)
{
    struct fg_batcher *b = job->batcher;
    int rc = 0;

    job->chan = chan;
    pthread_mutex_lock(&b->mu);
    if (b->stopping || b->queued_items + (uint64_t)job->n > b->cfg.max_queue) {
        rc = -1;
        atomic_fetch_add(&b->stats.rejected_items, job->n);
    } else {
        /* A runner needs waking only to learn of a first item (it then
         * waits for that item's deadline by itself) or of a full batch;
         * waking it for every item of a filling batch would cost a futex
         * call and a context switch per request. */
        int wake = b->queued_items == 0 || b->queued_items + job->n >= b->cfg.max_batch;
        job->enqueued_ns = now_ns();
        job->queued = 1;
        job->qnext = NULL;
        if (b->tail)
            b->tail->qnext = job;
        else
            b->head = job;
        b->tail = job;
        b->queued_items += job->n;
        atomic_store(&b->stats.queue_depth, b->queued_items);
        if (wake)
            pthread_cond_signal(&b->cond);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void fg_job_release(struct fg_job *job)
{
    struct fg_batcher *b = job->batcher;
    int free_now;

    pthread_mutex_lock(&b->mu);
    if (job->queued)
        unqueue(b, job);
    job->cancelled = 1;
    free_now = job->in_flight == 0;
    pthread_mutex_unlock(&b->mu);
    if (free_now)
        free(job);
}

/* Counts one part as delivered; returns whether the job was released
 * (and, if so, whether it is now free to go). */
static int part_done(struct fg_job *job, int *free_now)
{
    struct fg_batcher *b = job->batcher;
    int cancelled;

    pthread_mutex_lock(&b->mu);
    job->in_flight--;
    cancelled = job->cancelled;
    *free_now = cancelled && job->in_flight == 0;
    pthread_mutex_unlock(&b->mu);
    return cancelled;
}

void fg_job_part_deliver(struct fg_job_part *p)
{
    struct fg_job *job = p->job;
    unsigned first = p->first, count = p->count;
    int failed = p->failed, free_now;
    char why[sizeof(p->why)];

    memcpy(why, p->why, sizeof(why));
    free(p);
    if (part_done(job, &free_now)) {
        if (free_now)
            free(job);
        return;
    }
    job->cb(job, first, count, failed, why);
}

void fg_job_part_drop(struct fg_job_part *p)
{
    struct fg_job *job = p->job;
    int free_now;

    free(p);
    /* the worker is gone, so its exchanges released their jobs first */
    if (part_done(job, &free_now) && free_now)
        free(job);
}

/* ---- batch runners --------------------------------------------------------- */

/* Under b->mu: fills r->slices from the queue head; returns the item count. */
static unsigned take_batch(struct fg_batcher *b, struct runner *r, unsigned *nslices)
{
    unsigned room = b->cfg.max_batch, items = 0, ns = 0;

    while (room && b->head) {
        struct fg_job *job = b->head;
        unsigned k = job->n - job->next;

        if (k > room)
            k = room;
        r->slices[ns++] = (struct slice){job, job->next, k};
        job->next += k;
        job->in_flight++;
        room -= k;
        items += k;
        if (job->next == job->n) {
            b->head = job->qnext;
            if (!b->head)
                b->tail = NULL;
            job->qnext = NULL;
            job->queued = 0;
        }
    }
    b->queued_items -= items;
    atomic_store(&b->stats.queue_depth, b->queued_items);
    *nslices = ns;
    return items;
}

static void post_parts(struct runner *r, unsigned nslices, int failed, const char *why)
{
    for (unsigned i = 0; i < nslices; i++) {
        struct slice *s = &r->slices[i];
        struct fg_job_part *p = malloc(sizeof(*p));

        if (!p) {
            /* out of memory: the part cannot reach its worker; its client
             * waits for a timeout rather than getting a wrong answer */
            int free_now;
            if (part_done(s->job, &free_now) && free_now)
                free(s->job);
            continue;
        }
        memset(p, 0, sizeof(*p));
        p->job = s->job;
        p->first = s->first;
        p->count = s->count;
        p->failed = failed;
        if (why)
            snprintf(p->why, sizeof(p->why), "%s", why);
        fg_done_chan_post(s->job->chan, p);
    }
}

static void run_batch(struct runner *r, unsigned items, unsigned nslices)
{
    struct fg_batcher *b = r->b;
    size_t isz = b->in_size, osz = b->out_size, row = 0;
    uint64_t t0, us;
    char *err = NULL;
    int rc;

    /* gather: the slices' inputs into one contiguous batch */
    for (unsigned i = 0; i < nslices; i++) {
        const struct slice *s = &r->slices[i];
        memcpy(r->in + row * isz, s->job->in + (size_t)s->first * isz,
               (size_t)s->count * isz * sizeof(float));
        row += s->count;
    }
    t0 = now_ns();
    rc = fg_engine_forward(r->engine, r->in, items, r->out, &err);
    if (b->cfg.simulate_latency_us)
        usleep(b->cfg.simulate_latency_us);
    us = (now_ns() - t0) / 1000;

    atomic_fetch_add(&b->stats.batches, 1);
    atomic_fetch_add(&b->stats.items, items);
    atomic_fetch_add(&b->stats.size_bucket[bucket_of(items, FG_BATCH_SIZE_BUCKETS)], 1);
    atomic_fetch_add(&b->stats.time_bucket[bucket_of(us, FG_BATCH_TIME_BUCKETS)], 1);
    atomic_fetch_add(&b->stats.time_us_sum, us);
    if (rc < 0) {
        atomic_fetch_add(&b->stats.failed_batches, 1);
        post_parts(r, nslices, 1, err ? err : "inference failed");
        free(err);
        return;
    }
    /* scatter: each slice's outputs back into its job */
    row = 0;
    for (unsigned i = 0; i < nslices; i++) {
        const struct slice *s = &r->slices[i];
        memcpy(s->job->out + (size_t)s->first * osz, r->out + row * osz,
               (size_t)s->count * osz * sizeof(float));
        row += s->count;
    }
    post_parts(r, nslices, 0, NULL);
}

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    struct fg_batcher *b = r->b;
    uint64_t max_delay_ns = (uint64_t)b->cfg.max_delay_us * 1000;

    pthread_mutex_lock(&b->mu);
    for (;;) {
        unsigned items, nslices;

        while (!b->stopping && b->queued_items == 0)
            pthread_cond_wait(&b->cond, &b->mu);
        if (b->stopping)
            break;
        if (b->queued_items < b->cfg.max_batch) {
            /* not full yet: wait for company until the oldest item's time is up */
            uint64_t deadline = b->head->enqueued_ns + max_delay_ns;
            if (now_ns() < deadline) {
                struct timespec ts = {(time_t)(deadline / 1000000000u),
                                      (long)(deadline % 1000000000u)};
                pthread_cond_timedwait(&b->cond, &b->mu, &ts);
                continue;
            }
        }
        items = take_batch(b, r, &nslices);
        if (b->queued_items)
            pthread_cond_signal(&b->cond);  /* the next batch for another runner */
        pthread_mutex_unlock(&b->mu);
        run_batch(r, items, nslices);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------- */

struct fg_batcher *fg_batcher_new(const struct fg_model *m, const struct fg_batcher_cfg *cfg,
                                  char **err)
{
    struct fg_batcher *b = calloc(1, sizeof(*b));
    pthread_condattr_t ca;

    if (!b) {
        *err = fg_model_errorf("out of memory");
        return NULL;
    }
    b->model = m;
    b->cfg = *cfg;
    if (b->cfg.device == FG_DEVICE_GPU || b->cfg.threads == 0)
        b->cfg.threads = 1;         /* one stream on the GPU */
    b->in_size = fg_model_input_size(m);
    b->out_size = m->classes;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &ca);
    pthread_condattr_destroy(&ca);

    b->runners = calloc(b->cfg.threads, sizeof(*b->runners));
    if (!b->runners) {
        *err = fg_model_errorf("out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < b->cfg.threads; i++) {
        struct runner *r = &b->runners[i];
        r->b = b;
        b->nrunners++;
        if (!(r->engine = fg_engine_new(m, b->cfg.device, b->cfg.max_batch, err)))
            goto fail;
        r->in = malloc((size_t)b->cfg.max_batch * b->in_size * sizeof(float));
        r->out = malloc((size_t)b->cfg.max_batch * b->out_size * sizeof(float));
        r->slices = malloc((size_t)b->cfg.max_batch * sizeof(*r->slices));
        if (!r->in || !r->out || !r->slices) {
            *err = fg_model_errorf("out of memory for batches of %u", b->cfg.max_batch);
            goto fail;
        }
    }
    for (unsigned i = 0; i < b->nrunners; i++) {
        int e = pthread_create(&b->runners[i].thread, NULL, runner_main, &b->runners[i]);
        if (e) {
            *err = fg_model_errorf("cannot start a batch thread: %s", strerror(e));
            goto fail;
        }
        b->runners[i].started = 1;
    }
    return b;
fail:
    fg_batcher_free(b);
    return NULL;
}

void fg_batcher_free(struct fg_batcher *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = 1;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
    for (unsigned i = 0; i < b->nrunners; i++) {
        struct runner *r = &b->runners[i];
        if (r->started)
            pthread_join(r->thread, NULL);
        fg_engine_free(r->engine);
        free(r->in);
        free(r->out);
        free(r->slices);
    }
    free(b->runners);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

const struct fg_batcher_stats *fg_batcher_stats(const struct fg_batcher *b)
{
    return &b->stats;
}

const struct fg_batcher_cfg *fg_batcher_cfg(const struct fg_batcher *b)
{
    return &b->cfg;
}
