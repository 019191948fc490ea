/* fleetgate-model, the reference backend: the models it serves, their
 * batchers, and its handler for the HTTP stack (the Open Inference
 * Protocol v2 over REST, see src/serve/kserve.c). */
#ifndef FG_SERVE_H
#define FG_SERVE_H

#include <stdatomic.h>
#include <stdint.h>

#include "fg/batcher.h"
#include "fg/config-t.h"
#include "fg/handler.h"
#include "fg/model.h"

struct fg_served_model {
    struct fg_model *model;
    struct fg_batcher *batcher;
    char version[16];               /* the model file's version, as text */
    int latest;                     /* highest version of its name: unversioned URLs */
};

struct fg_serve {
    struct fg_served_model *models;
    unsigned nmodels;
    enum fg_device device;
    struct fg_done_chan *chans[FG_MAX_WORKERS];   /* [worker id] */
    /* responses by status code, every worker */
    _Atomic uint64_t responses[600];
};

extern const struct fg_handler_ops fg_serve_handler;

/* Per-worker set-up for fg_app (attaches the worker's completion channel). */
int fg_serve_worker_init(struct fg_worker *w, void *ctx, char **err);
void fg_serve_worker_fini(struct fg_worker *w, void *ctx);

/* The model <name> at <version> (NULL: the latest), or NULL. */
struct fg_served_model *fg_serve_find(struct fg_serve *s, const char *name, size_t nlen,
                                      const char *version, size_t vlen);

/* Counts one response (metrics). */
void fg_serve_count(struct fg_serve *s, int status);

struct fg_jbuf;
/* Prometheus text exposition of every model's queue and batches and of the
 * responses by status (src/serve/metrics.c). */
void fg_serve_metrics(struct fg_serve *s, struct fg_jbuf *out);

#endif
