/* fleetgate-model: the reference backend. Loads digit classifiers, starts
 * their batchers on the CPU or a GPU, and serves the Open Inference
 * Protocol with fleetgate's own HTTP/1.1 and HTTP/2 stack. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fg/config.h"
#include "fg/daemon.h"
#include "fg/log.h"
#include "fg/serve.h"

struct options {
    char **models;
    unsigned nmodels;
    char **listens;
    unsigned nlistens;
    const char *device;
    unsigned workers;
    uint64_t max_body_bytes;
    struct fg_batcher_cfg batch;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fleetgate-model --model FILE[,FILE...] --listen ADDR [options]\n"
            "       fleetgate-model -v | -h\n"
            "\n"
            "Serves digit classifiers (.fgm files) over the Open Inference Protocol v2\n"
            "(KServe REST, HTTP/1.1 and h2c) with dynamic batching.\n"
            "\n"
            "  --model FILE[,FILE...]   model files to serve (repeatable)\n"
            "  --listen ADDR            127.0.0.1:8001, [::1]:8001 (repeatable)\n"
            "  --device auto|cpu|gpu    auto: a GPU when one is found (default auto)\n"
            "  --max-batch N            items per batch (default 64)\n"
            "  --max-delay-us N         longest wait for a fuller batch (default 2000)\n"
            "  --max-queue N            items waiting before 503 (default 4096)\n"
            "  --threads N              CPU batch threads (default: half the CPUs, >= 1)\n"
            "  --workers N              HTTP event-loop threads (default 1)\n"
            "  --max-body-bytes N       request body limit, 413 past it (default 16777216)\n"
            "  --simulate-latency-us N  add N us to every batch (tests, demos; default 0)\n"
            "  -d                       debug logging\n"
            "  -v                       print the version and exit\n"
            "  -h                       print this help and exit\n");
}

static int parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max) {
        fprintf(stderr, "fleetgate-model: %s: \"%s\" is not an integer in %llu..%llu\n", opt, s,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int push(char ***v, unsigned *n, const char *s)
{
    char **p = realloc(*v, (*n + 1) * sizeof(**v));

    if (!p)
        return -1;
    *v = p;
    p[(*n)++] = (char *)s;
    return 0;
}

enum { O_MODEL = 256, O_LISTEN, O_DEVICE, O_MAX_BATCH, O_MAX_DELAY, O_MAX_QUEUE, O_THREADS,
       O_WORKERS, O_MAX_BODY, O_SIMULATE };

static const struct option long_options[] = {
    {"model", required_argument, NULL, O_MODEL},
    {"listen", required_argument, NULL, O_LISTEN},
    {"device", required_argument, NULL, O_DEVICE},
    {"max-batch", required_argument, NULL, O_MAX_BATCH},
    {"max-delay-us", required_argument, NULL, O_MAX_DELAY},
    {"max-queue", required_argument, NULL, O_MAX_QUEUE},
    {"threads", required_argument, NULL, O_THREADS},
    {"workers", required_argument, NULL, O_WORKERS},
    {"max-body-bytes", required_argument, NULL, O_MAX_BODY},
    {"simulate-latency-us", required_argument, NULL, O_SIMULATE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

/* Returns 0 to go on, else the exit status + 1. */
static int parse_args(int argc, char **argv, struct options *o)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t v;
    int opt;

    o->device = "auto";
    o->workers = 1;
    o->max_body_bytes = 16 << 20;
    o->batch.max_batch = 64;
    o->batch.max_delay_us = 2000;
    o->batch.max_queue = 4096;
    o->batch.threads = ncpu > 1 ? (unsigned)ncpu / 2 : 1;
    while ((opt = getopt_long(argc, argv, "dvh", long_options, NULL)) != -1) {
        switch (opt) {
        case O_MODEL:
            for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ","))
                if (push(&o->models, &o->nmodels, tok) < 0)
                    return 2;
            break;
        case O_LISTEN:
            if (push(&o->listens, &o->nlistens, optarg) < 0)
                return 2;
            break;
        case O_DEVICE:
            if (strcmp(optarg, "auto") && strcmp(optarg, "cpu") && strcmp(optarg, "gpu")) {
                fprintf(stderr, "fleetgate-model: --device: \"%s\" is not auto, cpu or gpu\n",
                        optarg);
                return 3;
            }
            o->device = optarg;
            break;
        case O_MAX_BATCH:
            if (parse_uint("--max-batch", optarg, 1, 65536, &v) < 0)
                return 3;
            o->batch.max_batch = (unsigned)v;
            break;
        case O_MAX_DELAY:
            if (parse_uint("--max-delay-us", optarg, 0, 10000000, &v) < 0)
                return 3;
            o->batch.max_delay_us = (unsigned)v;
            break;
        case O_MAX_QUEUE:
            if (parse_uint("--max-queue", optarg, 1, 1 << 24, &v) < 0)
                return 3;
            o->batch.max_queue = (unsigned)v;
            break;
        case O_THREADS:
            if (parse_uint("--threads", optarg, 1, 256, &v) < 0)
                return 3;
            o->batch.threads = (unsigned)v;
            break;
        case O_WORKERS:
            if (parse_uint("--workers", optarg, 1, FG_MAX_WORKERS, &v) < 0)
                return 3;
            o->workers = (unsigned)v;
            break;
        case O_MAX_BODY:
            if (parse_uint("--max-body-bytes", optarg, 1024, (uint64_t)1 << 32, &v) < 0)
                return 3;
            o->max_body_bytes = v;
            break;
        case O_SIMULATE:
            if (parse_uint("--simulate-latency-us", optarg, 0, 10000000, &v) < 0)
                return 3;
            o->batch.simulate_latency_us = (unsigned)v;
            break;
        case 'd': fg_log_set_level(FG_LOG_DEBUG); break;
        case 'v': printf("fleetgate-model %s (kernels: CPU%s)\n", PACKAGE_VERSION,
                         fg_gpu_built() ? " + cuDNN" : " only"); return 1;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 3;
        }
    }
    if (optind != argc || !o->nmodels || !o->nlistens) {
        if (optind == argc)
            fprintf(stderr, "fleetgate-model: %s\n",
                    !o->nmodels ? "--model is required" : "--listen is required");
        usage(stderr);
        return 3;
    }
    if (o->batch.max_queue < o->batch.max_batch) {
        fprintf(stderr, "fleetgate-model: --max-queue (%u) must be at least --max-batch (%u)\n",
                o->batch.max_queue, o->batch.max_batch);
        return 3;
    }
    return 0;
}

static struct fg_config *make_config(const struct options *o)
{
    struct fg_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg)
        atomic_init(&cfg->refs, 1);

    if (!cfg || !(cfg->path = strdup("fleetgate-model")) ||
        !(cfg->listeners = calloc(o->nlistens, sizeof(*cfg->listeners)))) {
        fg_config_free(cfg);
        fprintf(stderr, "fleetgate-model: out of memory\n");
        return NULL;
    }
    cfg->workers = o->workers;
    fg_client_cfg_defaults(&cfg->client);
    cfg->client.max_body_bytes = o->max_body_bytes;
    for (unsigned i = 0; i < o->nlistens; i++) {
        const char *why = NULL;
        if (fg_addr_parse(o->listens[i], &cfg->listeners[i].addr, &why) < 0) {
            fprintf(stderr, "fleetgate-model: --listen %s: %s\n", o->listens[i], why);
            fg_config_free(cfg);
            return NULL;
        }
        cfg->listeners[i].backlog = 511;
        cfg->nlisteners++;
    }
    return cfg;
}

static int load_models(struct fg_serve *s, const struct options *o)
{
    s->models = calloc(o->nmodels, sizeof(*s->models));
    if (!s->models)
        return -1;
    for (unsigned i = 0; i < o->nmodels; i++) {
        struct fg_served_model *m = &s->models[i];
        char *err = NULL;

        if (!(m->model = fg_model_load(o->models[i], &err))) {
            fprintf(stderr, "fleetgate-model: %s\n", err ? err : o->models[i]);
            free(err);
            return -1;
        }
        s->nmodels++;
        snprintf(m->version, sizeof(m->version), "%u", m->model->version);
        for (unsigned j = 0; j < i; j++) {
            if (!strcmp(s->models[j].model->name, m->model->name) &&
                s->models[j].model->version == m->model->version) {
                fprintf(stderr, "fleetgate-model: %s: model %s version %u is loaded twice\n",
                        o->models[i], m->model->name, m->model->version);
                return -1;
            }
        }
    }
    for (unsigned i = 0; i < s->nmodels; i++) {
        struct fg_served_model *m = &s->models[i];
        m->latest = 1;
        for (unsigned j = 0; j < s->nmodels; j++)
            if (!strcmp(s->models[j].model->name, m->model->name) &&
                s->models[j].model->version > m->model->version)
                m->latest = 0;
    }
    return 0;
}

static int pick_device(struct fg_serve *s, const char *want)
{
    int gpus = fg_gpu_count();

    if (!strcmp(want, "cpu") || (!strcmp(want, "auto") && gpus <= 0)) {
        s->device = FG_DEVICE_CPU;
        return 0;
    }
    if (gpus <= 0) {
        fprintf(stderr, "fleetgate-model: --device gpu: %s\n",
                fg_gpu_built() ? "no GPU found (cudaGetDeviceCount found none, or no driver)"
                               : "this binary was built without CUDA/cuDNN "
                                 "(configure --with-cuda=DIR)");
        return -1;
    }
    s->device = FG_DEVICE_GPU;
    return 0;
}

static int start_batchers(struct fg_serve *s, const struct options *o)
{
    struct fg_batcher_cfg bc = o->batch;

    bc.device = s->device;
    for (unsigned i = 0; i < s->nmodels; i++) {
        char *err = NULL;
        if (!(s->models[i].batcher = fg_batcher_new(s->models[i].model, &bc, &err))) {
            fprintf(stderr, "fleetgate-model: %s version %s: %s\n", s->models[i].model->name,
                    s->models[i].version, err ? err : "cannot start");
            free(err);
            return -1;
        }
        fg_log_info("model %s version %s on the %s: batches of up to %u, %u us delay, queue %u",
                    s->models[i].model->name, s->models[i].version,
                    s->device == FG_DEVICE_GPU ? "GPU (cuDNN)" : "CPU", bc.max_batch,
                    bc.max_delay_us, bc.max_queue);
    }
    return 0;
}

static void serve_free(struct fg_serve *s)
{
    for (unsigned i = 0; i < s->nmodels; i++) {
        fg_batcher_free(s->models[i].batcher);
        fg_model_free(s->models[i].model);
    }
    free(s->models);
    for (unsigned i = 0; i < FG_MAX_WORKERS; i++)
        fg_done_chan_free(s->chans[i]);
}

int main(int argc, char **argv)
{
    struct options o = {0};
    static struct fg_serve s;
    struct fg_config *cfg = NULL;
    struct fg_app app = {
        .name = "fleetgate-model",
        .handler = &fg_serve_handler,
        .ctx = &s,
        .worker_init = fg_serve_worker_init,
        .worker_fini = fg_serve_worker_fini,
    };
    int status = 1, rc = parse_args(argc, argv, &o);

    if (rc) {
        free(o.models);
        free(o.listens);
        return rc - 1;
    }
    if (!(cfg = make_config(&o)) || load_models(&s, &o) < 0 || pick_device(&s, o.device) < 0)
        goto out;
    for (unsigned i = 0; i < cfg->workers; i++)
        if (!(s.chans[i] = fg_done_chan_new())) {
            fprintf(stderr, "fleetgate-model: out of memory\n");
            goto out;
        }
    if (start_batchers(&s, &o) < 0)
        goto out;
    status = fg_daemon_run(cfg, &app);
out:
    serve_free(&s);
    fg_config_unref(cfg);
    free(o.models);
    free(o.listens);
    return status;
}
