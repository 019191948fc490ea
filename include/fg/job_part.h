/* A finished part of a batched job on its way from a batcher thread to the
 * worker that submitted the job (batcher.c <-> done_chan.c). */
#ifndef FG_JOB_PART_H
#define FG_JOB_PART_H

struct fg_job;

struct fg_job_part {
    struct fg_job *job;
    unsigned first, count;
    int failed;
    char why[160];
    struct fg_job_part *next;
};

/* Hands <p> to the job's callback (or drops it when the job was released),
 * and frees <p>. On the job's worker thread. */
void fg_job_part_deliver(struct fg_job_part *p);
/* The worker is gone: drops <p>, freeing its job when this was the last
 * part anything waited for. Any thread. */
void fg_job_part_drop(struct fg_job_part *p);
/* Queues <p> on <c> and wakes its worker, or drops it when <c> is
 * detached. Any thread. */
void fg_done_chan_post(struct fg_done_chan *c, struct fg_job_part *p);

#endif
