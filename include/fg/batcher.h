/* Dynamic batching for one model: requests from every connection and every
 * worker thread join one queue of items (images); a batch runs when
 * max_batch items wait or the oldest has waited max_delay_us. Batches run
 * on the batcher's own threads (a small pool on the CPU, one thread and one
 * stream on a GPU), never on an event loop; results go back to the worker
 * thread that submitted the job, through that worker's completion channel.
 *
 * A job (one request) may be split over several batches; each finished
 * part is delivered on its own, so a stream can answer item by item. */
#ifndef FG_BATCHER_H
#define FG_BATCHER_H

#include <stdatomic.h>
#include <stdint.h>

#include "fg/model.h"

struct event_base;
struct fg_batcher;
struct fg_job;
struct fg_done_chan;

struct fg_batcher_cfg {
    enum fg_device device;
    unsigned max_batch;             /* items per batch, >= 1 */
    unsigned max_delay_us;          /* how long the oldest item may wait for company */
    unsigned max_queue;             /* items waiting, beyond which submit refuses */
    unsigned threads;               /* CPU: engines (threads); GPU: always 1 */
    unsigned simulate_latency_us;   /* added to every batch (tests, demos) */
};

/* Power-of-two histogram of batch sizes (1, 2, 4 .. 2^15+) and of batch
 * durations in microseconds (1 .. 2^24+); all counters are atomics. */
#define FG_BATCH_SIZE_BUCKETS 16
#define FG_BATCH_TIME_BUCKETS 25

struct fg_batcher_stats {
    _Atomic uint64_t batches;
    _Atomic uint64_t items;
    _Atomic uint64_t failed_batches;
    _Atomic uint64_t rejected_items;     /* refused: queue full */
    _Atomic uint64_t size_bucket[FG_BATCH_SIZE_BUCKETS];   /* size <= 2^i */
    _Atomic uint64_t time_bucket[FG_BATCH_TIME_BUCKETS];   /* us <= 2^i */
    _Atomic uint64_t time_us_sum;
    _Atomic unsigned queue_depth;        /* items waiting now */
};

/* Called on the submitting worker's thread for each finished part of
 * <job>: items [first, first + count) of job->out are ready, unless
 * <failed> (the engine failed: *why says how). The callback may call
 * fg_job_release(). */
typedef void (*fg_job_cb)(struct fg_job *job, unsigned first, unsigned count, int failed,
                          const char *why);

struct fg_job {
    unsigned n;                     /* items */
    float *in;                      /* n * input size, filled by the submitter */
    float *out;                     /* n * classes, filled by the batcher */
    fg_job_cb cb;
    void *arg;                      /* the submitter's */

    /* private to the batcher, under its lock */
    struct fg_batcher *batcher;
    struct fg_done_chan *chan;
    uint64_t enqueued_ns;
    unsigned next;                  /* items handed to batches so far */
    unsigned in_flight;             /* parts taken whose delivery is pending */
    unsigned queued:1, cancelled:1;
    struct fg_job *qnext;
};

/* Starts the batcher's threads, each with its own engine for <m>. Returns
 * NULL with *err (malloc'd) when an engine cannot be created. */
struct fg_batcher *fg_batcher_new(const struct fg_model *m, const struct fg_batcher_cfg *cfg,
                                  char **err);
/* Stops the threads (after every job was released) and frees. */
void fg_batcher_free(struct fg_batcher *b);
const struct fg_batcher_stats *fg_batcher_stats(const struct fg_batcher *b);
const struct fg_batcher_cfg *fg_batcher_cfg(const struct fg_batcher *b);

/* A job for <n> items with room for inputs and outputs; NULL when out of
 * memory. */
struct fg_job *fg_job_new(struct fg_batcher *b, unsigned n, fg_job_cb cb, void *arg);
/* Queues <job>; its parts are delivered through <chan>. Returns 0, or -1
 * when the queue cannot take n more items (the caller answers 503 and
 * releases the job). */
int fg_job_submit(struct fg_job *job, struct fg_done_chan *chan);
/* The submitter is done with <job> (answered, or its client went away):
 * items not yet batched are dropped, and the job is freed once no batch
 * holds a part of it. Worker thread only. */
void fg_job_release(struct fg_job *job);

/* Completion channels, one per worker thread: an eventfd in that worker's
 * event loop. Created and freed on the main thread around the daemon's
 * life; attached to a worker's loop in its init and detached in its fini,
 * after which parts still arriving are dropped (their jobs were released). */
struct fg_done_chan *fg_done_chan_new(void);
int fg_done_chan_attach(struct fg_done_chan *c, struct event_base *base, char **err);
void fg_done_chan_detach(struct fg_done_chan *c);
void fg_done_chan_free(struct fg_done_chan *c);

#endif
