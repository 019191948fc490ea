/* GET /metrics: Prometheus text exposition (format 0.0.4). */
#include "config.h"

#include "fg/jbuf.h"
#include "fg/serve.h"

static const char *device_name(enum fg_device d)
{
    return d == FG_DEVICE_GPU ? "gpu" : "cpu";
}

static void labels(struct fg_jbuf *b, const struct fg_served_model *m)
{
    fg_jbuf_printf(b, "model=\"%s\",version=\"%s\"", m->model->name, m->version);
}

static void help(struct fg_jbuf *b, const char *name, const char *type, const char *text)
{
    fg_jbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* Cumulative buckets with upper bounds 2^i * scale, then +Inf. */
static void histogram(struct fg_jbuf *b, const char *name, const struct fg_served_model *m,
                      _Atomic const uint64_t *bucket, unsigned nbuckets, double scale,
                      double sum, uint64_t count)
{
    uint64_t cum = 0;

    for (unsigned i = 0; i + 1 < nbuckets; i++) {
        cum += atomic_load(&bucket[i]);
        fg_jbuf_printf(b, "%s_bucket{", name);
        labels(b, m);
        fg_jbuf_printf(b, ",le=\"%.9g\"} %llu\n", (double)(UINT64_C(1) << i) * scale,
                       (unsigned long long)cum);
    }
    fg_jbuf_printf(b, "%s_bucket{", name);
    labels(b, m);
    fg_jbuf_printf(b, ",le=\"+Inf\"} %llu\n%s_sum{", (unsigned long long)count, name);
    labels(b, m);
    fg_jbuf_printf(b, "} %.9g\n%s_count{", sum, name);
    labels(b, m);
    fg_jbuf_printf(b, "} %llu\n", (unsigned long long)count);
}

void fg_serve_metrics(struct fg_serve *s, struct fg_jbuf *b)
{
    help(b, "fleetgate_model_info", "gauge", "Models served, with their device and batching.");
    for (unsigned i = 0; i < s->nmodels; i++) {
        const struct fg_served_model *m = &s->models[i];
        const struct fg_batcher_cfg *c = fg_batcher_cfg(m->batcher);
        fg_jbuf_puts(b, "fleetgate_model_info{");
        labels(b, m);
        fg_jbuf_printf(b, ",device=\"%s\",max_batch=\"%u\",max_delay_us=\"%u\",max_queue=\"%u\"} 1\n",
                       device_name(c->device), c->max_batch, c->max_delay_us, c->max_queue);
    }
    help(b, "fleetgate_model_queue_depth", "gauge", "Items (images) waiting for a batch.");
    for (unsigned i = 0; i < s->nmodels; i++) {
        fg_jbuf_puts(b, "fleetgate_model_queue_depth{");
        labels(b, &s->models[i]);
        fg_jbuf_printf(b, "} %u\n", atomic_load(&fg_batcher_stats(s->models[i].batcher)->queue_depth));
    }
    help(b, "fleetgate_model_queue_rejected_total", "counter",
         "Items refused with 503 because the queue was full.");
    for (unsigned i = 0; i < s->nmodels; i++) {
        fg_jbuf_puts(b, "fleetgate_model_queue_rejected_total{");
        labels(b, &s->models[i]);
        fg_jbuf_printf(b, "} %llu\n", (unsigned long long)atomic_load(
                           &fg_batcher_stats(s->models[i].batcher)->rejected_items));
    }
    help(b, "fleetgate_model_inferences_total", "counter", "Items run through the model.");
    for (unsigned i = 0; i < s->nmodels; i++) {
        fg_jbuf_puts(b, "fleetgate_model_inferences_total{");
        labels(b, &s->models[i]);
        fg_jbuf_printf(b, "} %llu\n", (unsigned long long)atomic_load(
                           &fg_batcher_stats(s->models[i].batcher)->items));
    }
    help(b, "fleetgate_model_failed_batches_total", "counter", "Batches the engine failed.");
    for (unsigned i = 0; i < s->nmodels; i++) {
        fg_jbuf_puts(b, "fleetgate_model_failed_batches_total{");
        labels(b, &s->models[i]);
        fg_jbuf_printf(b, "} %llu\n", (unsigned long long)atomic_load(
                           &fg_batcher_stats(s->models[i].batcher)->failed_batches));
    }
    help(b, "fleetgate_model_batch_size", "histogram", "Items per batch.");
    for (unsigned i = 0; i < s->nmodels; i++) {
        const struct fg_batcher_stats *st = fg_batcher_stats(s->models[i].batcher);
        histogram(b, "fleetgate_model_batch_size", &s->models[i], st->size_bucket,
                  FG_BATCH_SIZE_BUCKETS, 1, (double)atomic_load(&st->items),
                  atomic_load(&st->batches));
    }
    help(b, "fleetgate_model_inference_seconds", "histogram",
         "Time to run one batch through the engine (copies included).");
    for (unsigned i = 0; i < s->nmodels; i++) {
        const struct fg_batcher_stats *st = fg_batcher_stats(s->models[i].batcher);
        histogram(b, "fleetgate_model_inference_seconds", &s->models[i], st->time_bucket,
                  FG_BATCH_TIME_BUCKETS, 1e-6, (double)atomic_load(&st->time_us_sum) * 1e-6,
                  atomic_load(&st->batches));
    }
    help(b, "fleetgate_model_requests_total", "counter", "Requests answered, by HTTP status code.");
    for (int code = 100; code < 600; code++) {
        uint64_t n = atomic_load(&s->responses[code]);
        if (n)
            fg_jbuf_printf(b, "fleetgate_model_requests_total{code=\"%d\"} %llu\n", code,
                           (unsigned long long)n);
    }
}
