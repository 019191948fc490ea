/* The model server's handler for the HTTP stack: the Open Inference
 * Protocol (KServe v2) over REST, plus Triton's generate extension.
 *
 *   GET  /v2                                   server metadata
 *   GET  /v2/health/live, /v2/health/ready     200, empty body
 *   GET  /v2/models/NAME[/versions/V]          model metadata
 *   GET  /v2/models/NAME[/versions/V]/ready    200, empty body
 *   POST /v2/models/NAME[/versions/V]/infer    JSON tensors in and out
 *   POST /v2/models/NAME[/versions/V]/generate        {"input": data} -> JSON
 *   POST /v2/models/NAME[/versions/V]/generate_stream -> one SSE event per item
 *   GET  /metrics                              Prometheus text
 *
 * Errors take the protocol's form {"error": "message"}. A request's items
 * join the model's batcher; the answer is written when its parts come back
 * (see fg/batcher.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fg/exchange.h"
#include "fg/headers.h"
#include "fg/jbuf.h"
#include "fg/serve.h"
#include "fg/tensor_json.h"
#include "fg/worker.h"

#define INPUT_NAME "input"
#define OUT_PROBS "probabilities"
#define OUT_LABEL "label"

enum route {
    R_NOT_FOUND = 0,
    R_SERVER_META,
    R_LIVE,
    R_READY,
    R_METRICS,
    R_MODEL_META,
    R_MODEL_READY,
    R_INFER,
    R_GENERATE,
    R_GENERATE_STREAM,
};

struct req {
    enum route route;
    struct fg_served_model *sm;
    char *body;                     /* the request body, malloc'd */
    size_t len, cap;
    struct fg_job *job;
    unsigned delivered;             /* items answered so far */
    unsigned want_probs:1, want_label:1;
    unsigned streaming:1;           /* SSE head sent */
    char *id;                       /* the request's "id", echoed; arena */
};

static struct fg_serve *serve_of(struct fg_exchange *x)
{
    return x->worker->app->ctx;
}

void fg_serve_count(struct fg_serve *s, int status)
{
    if (status >= 100 && status < 600)
        atomic_fetch_add_explicit(&s->responses[status], 1, memory_order_relaxed);
}

struct fg_served_model *fg_serve_find(struct fg_serve *s, const char *name, size_t nlen,
                                      const char *version, size_t vlen)
{
    for (unsigned i = 0; i < s->nmodels; i++) {
        struct fg_served_model *m = &s->models[i];
        if (strlen(m->model->name) != nlen || memcmp(m->model->name, name, nlen))
            continue;
        if (version ? (strlen(m->version) == vlen && !memcmp(m->version, version, vlen))
                    : m->latest)
            return m;
    }
    return NULL;
}

/* ---- answering ---------------------------------------------------------------- */

/* Frees what the request holds; the exchange is answered next. */
static void req_drop(struct req *r)
{
    if (r->job) {
        fg_job_release(r->job);
        r->job = NULL;
    }
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
}

static void reply_json(struct fg_exchange *x, int status, struct fg_jbuf *b)
{
    struct req *r = x->handler_data;

    if (b->failed) {
        fg_jbuf_free(b);
        fg_exchange_reply_error(x, 500, "out_of_memory", "out of memory building the answer");
        return;
    }
    if (r)
        req_drop(r);
    fg_serve_count(serve_of(x), status);
    fg_exchange_reply(x, status, "application/json", b->p, b->len);
    fg_jbuf_free(b);
}

static void reply_empty(struct fg_exchange *x, int status)
{
    fg_serve_count(serve_of(x), status);
    fg_exchange_reply(x, status, "application/json", "", 0);
}

static void reply_errorf(struct fg_exchange *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_errorf(struct fg_exchange *x, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fg_exchange_reply_error(x, status, "model_error", msg);
}

/* The protocol's error form; also used for errors the HTTP stack answers
 * by itself (400, 408, 413 ...). */
static size_t error_body(struct fg_exchange *x, int status, const char *code, const char *message,
                         char *out, size_t cap)
{
    char msg[512];
    int n;

    fg_serve_count(serve_of(x), status);
    fg_json_escape(msg, sizeof(msg), message);
    n = snprintf(out, cap, "{\"error\":\"%s\"}\n", msg);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* ---- metadata ------------------------------------------------------------------ */

static void server_metadata(struct fg_exchange *x)
{
    struct fg_jbuf b;

    fg_jbuf_init(&b, 256);
    fg_jbuf_printf(&b, "{\"name\":\"fleetgate-model\",\"version\":\"%s\","
                       "\"extensions\":[\"generate\"]}\n", PACKAGE_VERSION);
    reply_json(x, 200, &b);
}

static void shape_json(struct fg_jbuf *b, const unsigned *dims, unsigned n)
{
    fg_jbuf_puts(b, "[-1");
    for (unsigned i = 0; i < n; i++)
        fg_jbuf_printf(b, ",%u", dims[i]);
    fg_jbuf_puts(b, "]");
}

static void model_metadata(struct fg_exchange *x, struct fg_served_model *sm)
{
    struct fg_serve *s = serve_of(x);
    const struct fg_model *m = sm->model;
    unsigned in_dims[3] = {m->in_h, m->in_w, 0}, out_dims[1] = {m->classes};
    struct fg_jbuf b;
    int first = 1;

    if (m->in_c != 1) {
        in_dims[0] = m->in_c;
        in_dims[1] = m->in_h;
        in_dims[2] = m->in_w;
    }
    fg_jbuf_init(&b, 512);
    fg_jbuf_puts(&b, "{\"name\":");
    fg_jbuf_json_string(&b, m->name);
    fg_jbuf_puts(&b, ",\"versions\":[");
    for (unsigned i = 0; i < s->nmodels; i++) {
        if (strcmp(s->models[i].model->name, m->name))
            continue;
        fg_jbuf_printf(&b, "%s\"%s\"", first ? "" : ",", s->models[i].version);
        first = 0;
    }
    fg_jbuf_puts(&b, "],\"platform\":\"fleetgate-c\",\"inputs\":[{\"name\":\"" INPUT_NAME
                     "\",\"datatype\":\"FP32\",\"shape\":");
    shape_json(&b, in_dims, m->in_c != 1 ? 3 : 2);
    fg_jbuf_puts(&b, "}],\"outputs\":[{\"name\":\"" OUT_PROBS "\",\"datatype\":\"FP32\",\"shape\":");
    shape_json(&b, out_dims, 1);
    fg_jbuf_puts(&b, "},{\"name\":\"" OUT_LABEL "\",\"datatype\":\"INT64\",\"shape\":[-1]}]}\n");
    reply_json(x, 200, &b);
}

static void metrics(struct fg_exchange *x)
{
    struct fg_jbuf b;

    fg_jbuf_init(&b, 8192);
    /* counted before rendering, so a scrape sees itself */
    fg_serve_count(serve_of(x), 200);
    fg_serve_metrics(serve_of(x), &b);
    if (b.failed) {
        fg_jbuf_free(&b);
        fg_exchange_reply_error(x, 500, "out_of_memory", "out of memory building the answer");
        return;
    }
    fg_exchange_reply(x, 200, "text/plain; version=0.0.4", b.p, b.len);
    fg_jbuf_free(&b);
}

/* ---- results ------------------------------------------------------------------- */

static unsigned argmax(const float *p, unsigned n)
{
    unsigned best = 0;

    for (unsigned i = 1; i < n; i++)
        if (p[i] > p[best])
            best = i;
    return best;
}

static void float_row(struct fg_jbuf *b, const float *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (i)
            fg_jbuf_put(b, ",", 1);
        fg_jbuf_float(b, p[i]);
    }
}

static void answer_head(struct fg_jbuf *b, struct req *r)
{
    fg_jbuf_puts(b, "{\"model_name\":");
    fg_jbuf_json_string(b, r->sm->model->name);
    fg_jbuf_printf(b, ",\"model_version\":\"%s\"", r->sm->version);
    if (r->id) {
        fg_jbuf_puts(b, ",\"id\":");
        fg_jbuf_json_string(b, r->id);
    }
}

/* The infer answer: output tensors, flat row-major data. */
static void answer_infer(struct fg_exchange *x, struct req *r)
{
    const struct fg_job *job = r->job;
    unsigned k = r->sm->model->classes;
    struct fg_jbuf b;
    int first = 1;

    fg_jbuf_init(&b, 64 + (size_t)job->n * (r->want_probs ? k * 16 : 4));
    answer_head(&b, r);
    fg_jbuf_puts(&b, ",\"outputs\":[");
    if (r->want_probs) {
        fg_jbuf_printf(&b, "{\"name\":\"" OUT_PROBS "\",\"datatype\":\"FP32\",\"shape\":[%u,%u],"
                           "\"data\":[", job->n, k);
        for (unsigned i = 0; i < job->n; i++) {
            if (i)
                fg_jbuf_put(&b, ",", 1);
            float_row(&b, job->out + (size_t)i * k, k);
        }
        fg_jbuf_puts(&b, "]}");
        first = 0;
    }
    if (r->want_label) {
        fg_jbuf_printf(&b, "%s{\"name\":\"" OUT_LABEL "\",\"datatype\":\"INT64\",\"shape\":[%u],"
                           "\"data\":[", first ? "" : ",", job->n);
        for (unsigned i = 0; i < job->n; i++)
            fg_jbuf_printf(&b, "%s%u", i ? "," : "", argmax(job->out + (size_t)i * k, k));
        fg_jbuf_puts(&b, "]}");
    }
    fg_jbuf_puts(&b, "]}\n");
    reply_json(x, 200, &b);
}

/* The generate answer: outputs as members, one entry per item. */
static void answer_generate(struct fg_exchange *x, struct req *r)
{
    const struct fg_job *job = r->job;
    unsigned k = r->sm->model->classes;
    struct fg_jbuf b;

    fg_jbuf_init(&b, 64 + (size_t)job->n * (k * 16 + 4));
    answer_head(&b, r);
    fg_jbuf_puts(&b, ",\"" OUT_LABEL "\":[");
    for (unsigned i = 0; i < job->n; i++)
        fg_jbuf_printf(&b, "%s%u", i ? "," : "", argmax(job->out + (size_t)i * k, k));
    fg_jbuf_puts(&b, "],\"" OUT_PROBS "\":[");
    for (unsigned i = 0; i < job->n; i++) {
        fg_jbuf_puts(&b, i ? ",[" : "[");
        float_row(&b, job->out + (size_t)i * k, k);
        fg_jbuf_puts(&b, "]");
    }
    fg_jbuf_puts(&b, "]}\n");
    reply_json(x, 200, &b);
}

static void stream_head(struct fg_exchange *x, struct req *r)
{
    fg_headers_reset(&x->resp_headers);
    fg_headers_add(&x->resp_headers, (char *)"content-type", 12, (char *)"text/event-stream", 17);
    fg_headers_add(&x->resp_headers, (char *)"cache-control", 13, (char *)"no-cache", 8);
    x->status = 200;
    x->resp_content_length = -1;
    x->resp_no_body = x->req_head_only;
    x->state = FG_X_RESPONDING;
    r->streaming = 1;
    fg_serve_count(serve_of(x), 200);
    x->front->send_head(x);
}

/* One SSE event per item, in the order the items come back. */
static void stream_items(struct fg_exchange *x, struct req *r, unsigned first, unsigned count)
{
    const struct fg_job *job = r->job;
    unsigned k = r->sm->model->classes;
    struct fg_jbuf b;

    fg_jbuf_init(&b, (size_t)count * (k * 16 + 128));
    for (unsigned i = first; i < first + count; i++) {
        const float *p = job->out + (size_t)i * k;
        fg_jbuf_puts(&b, "data: ");
        answer_head(&b, r);
        fg_jbuf_printf(&b, ",\"index\":%u,\"" OUT_LABEL "\":%u,\"" OUT_PROBS "\":[", i,
                       argmax(p, k));
        float_row(&b, p, k);
        fg_jbuf_puts(&b, "]}\n\n");
    }
    if (!b.failed && !x->req_head_only)
        x->front->send_body(x, b.p, b.len);
    fg_jbuf_free(&b);
}

static void stream_end(struct fg_exchange *x, struct req *r, const char *error)
{
    if (error && !x->req_head_only) {
        char msg[256], ev[400];
        int n;
        fg_json_escape(msg, sizeof(msg), error);
        n = snprintf(ev, sizeof(ev), "event: error\ndata: {\"error\":\"%s\"}\n\n", msg);
        if (n > 0)
            x->front->send_body(x, ev, (size_t)n < sizeof(ev) ? (size_t)n : sizeof(ev) - 1);
    }
    req_drop(r);
    x->state = FG_X_DONE;
    x->front->send_end(x);          /* may free x */
}

/* A part of the request's items came back from a batch. */
static void on_part(struct fg_job *job, unsigned first, unsigned count, int failed, const char *why)
{
    struct fg_exchange *x = job->arg;
    struct req *r = x->handler_data;

    if (failed) {
        if (r->streaming)
            stream_end(x, r, why);
        else
            reply_errorf(x, 500, "inference failed: %s", why);
        return;
    }
    r->delivered += count;
    if (r->route == R_GENERATE_STREAM) {
        stream_items(x, r, first, count);
        if (r->delivered == job->n)
            stream_end(x, r, NULL);
        return;
    }
    if (r->delivered < job->n)
        return;
    if (r->route == R_INFER)
        answer_infer(x, r);
    else
        answer_generate(x, r);
}

/* ---- requests ------------------------------------------------------------------ */

static int parse_outputs(struct fg_exchange *x, struct req *r, json_t *outputs)
{
    size_t i;
    json_t *o;

    r->want_probs = r->want_label = 1;
    if (!outputs)
        return 0;
    if (!json_is_array(outputs)) {
        reply_errorf(x, 400, "\"outputs\" must be an array");
        return -1;
    }
    if (json_array_size(outputs) == 0)
        return 0;
    r->want_probs = r->want_label = 0;
    json_array_foreach(outputs, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!name) {
            reply_errorf(x, 400, "\"outputs\"[%zu] needs a \"name\"", i);
            return -1;
        }
        if (!strcmp(name, OUT_PROBS)) {
            r->want_probs = 1;
        } else if (!strcmp(name, OUT_LABEL)) {
            r->want_label = 1;
        } else {
            reply_errorf(x, 400, "unknown output \"%.64s\" (this model has \"" OUT_PROBS
                                 "\" and \"" OUT_LABEL "\")", name);
            return -1;
        }
    }
    return 0;
}

static int keep_id(struct fg_exchange *x, struct req *r, json_t *root)
{
    json_t *id = json_object_get(root, "id");

    if (!id)
        return 0;
    if (!json_is_string(id)) {
        reply_errorf(x, 400, "\"id\" must be a string");
        return -1;
    }
    /* with its NUL */
    r->id = fg_arena_dup(&x->arena, json_string_value(id), strlen(json_string_value(id)) + 1);
    return 0;
}

static void item_dims(const struct fg_model *m, unsigned *dims, unsigned *n)
{
    if (m->in_c == 1) {
        dims[0] = m->in_h;
        dims[1] = m->in_w;
        *n = 2;
    } else {
        dims[0] = m->in_c;
        dims[1] = m->in_h;
        dims[2] = m->in_w;
        *n = 3;
    }
}

/* Checks the request's tensor, fills a job and queues it. */
static void submit(struct fg_exchange *x, struct req *r, const struct fg_tensor_spec *spec,
                   uint64_t n)
{
    const struct fg_batcher_cfg *bc = fg_batcher_cfg(r->sm->batcher);
    char why[256];

    if (n > bc->max_queue) {
        reply_errorf(x, 413, "a batch of %llu items is more than this server queues (%u)",
                     (unsigned long long)n, bc->max_queue);
        return;
    }
    r->job = fg_job_new(r->sm->batcher, (unsigned)n, on_part, x);
    if (!r->job) {
        reply_errorf(x, 503, "out of memory for %llu items", (unsigned long long)n);
        return;
    }
    if (fg_tensor_flatten(spec, r->job->in, why, sizeof(why)) < 0) {
        reply_errorf(x, 400, "input \"" INPUT_NAME "\": %s", why);
        return;
    }
    free(r->body);                  /* parsed: no longer needed */
    r->body = NULL;
    if (fg_job_submit(r->job, x->worker->app_worker) < 0) {
        reply_errorf(x, 503, "the inference queue is full (%u items); retry later", bc->max_queue);
        return;
    }
    if (r->route == R_GENERATE_STREAM)
        stream_head(x, r);
}

static const char *const infer_keys[] = {"id", "inputs", "outputs", "parameters", NULL};
static const char *const generate_keys[] = {"id", INPUT_NAME, "parameters", NULL};

static int known_keys(struct fg_exchange *x, json_t *root, const char *const *keys)
{
    const char *k;
    json_t *v;

    json_object_foreach(root, k, v) {
        unsigned i = 0;
        while (keys[i] && strcmp(keys[i], k))
            i++;
        if (!keys[i]) {
            reply_errorf(x, 400, "unknown member \"%.64s\" in the request", k);
            return -1;
        }
    }
    return 0;
}

static void infer(struct fg_exchange *x, struct req *r, json_t *root)
{
    json_t *inputs = json_object_get(root, "inputs"), *in;
    unsigned dims[3], ndims;
    struct fg_tensor_spec spec;
    char why[256];
    const char *name;
    uint64_t n;

    if (known_keys(x, root, infer_keys) < 0 || keep_id(x, r, root) < 0 ||
        parse_outputs(x, r, json_object_get(root, "outputs")) < 0)
        return;
    if (!json_is_array(inputs) || json_array_size(inputs) != 1) {
        reply_errorf(x, 400, "\"inputs\" must be an array of exactly one tensor (\"" INPUT_NAME "\")");
        return;
    }
    in = json_array_get(inputs, 0);
    name = json_string_value(json_object_get(in, "name"));
    if (!json_is_object(in) || !name) {
        reply_errorf(x, 400, "\"inputs\"[0] must be an object with a \"name\"");
        return;
    }
    if (strcmp(name, INPUT_NAME)) {
        reply_errorf(x, 400, "unknown input \"%.64s\" (this model's input is \"" INPUT_NAME "\")",
                     name);
        return;
    }
    item_dims(r->sm->model, dims, &ndims);
    n = fg_tensor_parse_input(in, dims, ndims, &spec, why, sizeof(why));
    if (!n) {
        reply_errorf(x, 400, "input \"" INPUT_NAME "\": %s", why);
        return;
    }
    submit(x, r, &spec, n);
}

static void generate(struct fg_exchange *x, struct req *r, json_t *root)
{
    json_t *data = json_object_get(root, INPUT_NAME);
    unsigned dims[3], ndims;
    struct fg_tensor_spec spec;
    char why[256];
    uint64_t n;

    if (known_keys(x, root, generate_keys) < 0 || keep_id(x, r, root) < 0)
        return;
    if (!data) {
        reply_errorf(x, 400, "the request needs \"" INPUT_NAME "\": the image data");
        return;
    }
    item_dims(r->sm->model, dims, &ndims);
    n = fg_tensor_infer_shape(data, dims, ndims, &spec, why, sizeof(why));
    if (!n) {
        reply_errorf(x, 400, "input \"" INPUT_NAME "\": %s", why);
        return;
    }
    r->want_probs = r->want_label = 1;
    submit(x, r, &spec, n);
}

/* The whole body is here: parse it and queue its items. */
static void run_post(struct fg_exchange *x, struct req *r)
{
    json_error_t je;
    json_t *root;

    if (!r->len) {
        reply_errorf(x, 400, "the request has no body (a JSON object is expected)");
        return;
    }
    root = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        reply_errorf(x, 400, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return;
    }
    if (!json_is_object(root))
        reply_errorf(x, 400, "the request body must be a JSON object");
    else if (r->route == R_INFER)
        infer(x, r, root);
    else
        generate(x, r, root);
    json_decref(root);
}

/* ---- routing ------------------------------------------------------------------- */

static int has_prefix(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(end - *p) < n || memcmp(*p, lit, n))
        return 0;
    *p += n;
    return 1;
}

/* One path segment [A-Za-z0-9_.-]+; returns its length (0: none). */
static size_t segment(const char *p, const char *end)
{
    size_t n = 0;

    while (p + n < end && p[n] != '/') {
        char c = p[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
        n++;
    }
    return n;
}

/* The model part of a path, for messages. */
struct model_ref {
    const char *name, *ver;
    size_t nlen, vlen;
};

static enum route route_path(struct fg_exchange *x, struct model_ref *ref)
{
    const char *p = x->path, *end = memchr(x->path, '?', x->path_len);
    const char *name, *ver = NULL;
    size_t nlen, vlen = 0;
    enum route rt;

    if (!end)
        end = x->path + x->path_len;
    if ((size_t)(end - p) == 3 && !memcmp(p, "/v2", 3))
        return R_SERVER_META;
    if ((size_t)(end - p) == 8 && !memcmp(p, "/metrics", 8))
        return R_METRICS;
    if (!has_prefix(&p, end, "/v2/"))
        return R_NOT_FOUND;
    if ((size_t)(end - p) == 11 && !memcmp(p, "health/live", 11))
        return R_LIVE;
    if ((size_t)(end - p) == 12 && !memcmp(p, "health/ready", 12))
        return R_READY;
    if (!has_prefix(&p, end, "models/") || !(nlen = segment(p, end)))
        return R_NOT_FOUND;
    name = p;
    p += nlen;
    if (has_prefix(&p, end, "/versions/")) {
        if (!(vlen = segment(p, end)))
            return R_NOT_FOUND;
        ver = p;
        p += vlen;
    }
    if (p == end)
        rt = R_MODEL_META;
    else if ((size_t)(end - p) == 6 && !memcmp(p, "/ready", 6))
        rt = R_MODEL_READY;
    else if ((size_t)(end - p) == 6 && !memcmp(p, "/infer", 6))
        rt = R_INFER;
    else if ((size_t)(end - p) == 9 && !memcmp(p, "/generate", 9))
        rt = R_GENERATE;
    else if ((size_t)(end - p) == 16 && !memcmp(p, "/generate_stream", 16))
        rt = R_GENERATE_STREAM;
    else
        return R_NOT_FOUND;
    *ref = (struct model_ref){name, ver, nlen, vlen};
    return rt;
}

static int is_method(struct fg_exchange *x, const char *m)
{
    size_t n = strlen(m);
    return x->method_len == n && !memcmp(x->method, m, n);
}

static void serve_start(struct fg_exchange *x)
{
    struct fg_serve *s = serve_of(x);
    struct req *r = fg_arena_alloc_object(&x->arena, sizeof(*r));
    struct model_ref ref = {0};
    int post;
    uint64_t max = x->worker->cfg->client.max_body_bytes;

    x->state = FG_X_UPSTREAM;
    if (!r) {
        fg_exchange_reply_error(x, 503, "out_of_memory", "out of memory");
        return;
    }
    memset(r, 0, sizeof(*r));
    x->handler_data = r;
    r->route = route_path(x, &ref);
    if (r->route == R_NOT_FOUND) {
        fg_exchange_reply_error(x, 404, "not_found", "no such endpoint");
        return;
    }
    if (ref.name && !(r->sm = fg_serve_find(s, ref.name, ref.nlen, ref.ver, ref.vlen))) {
        if (ref.ver)
            reply_errorf(x, 404, "unknown model \"%.*s\" version \"%.*s\"", (int)ref.nlen,
                         ref.name, (int)ref.vlen, ref.ver);
        else
            reply_errorf(x, 404, "unknown model \"%.*s\"", (int)ref.nlen, ref.name);
        return;
    }
    post = r->route == R_INFER || r->route == R_GENERATE || r->route == R_GENERATE_STREAM;
    if (post ? !is_method(x, "POST") : !(is_method(x, "GET") || is_method(x, "HEAD"))) {
        char msg[96], body[160];
        size_t n;
        snprintf(msg, sizeof(msg), "method %.*s not allowed here (use %s)", (int)x->method_len,
                 x->method, post ? "POST" : "GET");
        n = error_body(x, 405, "method_not_allowed", msg, body, sizeof(body));
        fg_exchange_reply_ex(x, 405, "application/json", body, n, "allow",
                             post ? "POST" : "GET, HEAD");
        return;
    }
    if (!post) {
        switch (r->route) {
        case R_SERVER_META: server_metadata(x); break;
        case R_LIVE: reply_empty(x, 200); break;
        case R_READY: reply_empty(x, s->nmodels ? 200 : 503); break;
        case R_METRICS: metrics(x); break;
        case R_MODEL_META: model_metadata(x, r->sm); break;
        case R_MODEL_READY: reply_empty(x, 200); break;
        default: break;
        }
        return;
    }
    if (max && x->req_content_length >= 0 && (uint64_t)x->req_content_length > max) {
        fg_exchange_reply_error(x, 413, "body_too_large", "request body exceeds the size limit");
        return;
    }
    if (x->req_content_length > 0) {
        r->cap = (size_t)x->req_content_length;
        r->body = malloc(r->cap);
        if (!r->body) {
            fg_exchange_reply_error(x, 413, "body_too_large", "no memory for a body this large");
            return;
        }
    }
}

static int serve_request_body(struct fg_exchange *x, const char *data, size_t len)
{
    struct req *r = x->handler_data;

    if (!r || x->state != FG_X_UPSTREAM || r->job)
        return 0;                   /* answered already: the rest is dropped */
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        char *p;
        while (cap < r->len + len)
            cap *= 2;
        if (!(p = realloc(r->body, cap))) {
            fg_exchange_reply_error(x, 413, "body_too_large", "no memory for a body this large");
            return 0;
        }
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, len);
    r->len += len;
    return 0;
}

static void serve_request_end(struct fg_exchange *x)
{
    struct req *r = x->handler_data;

    if (!r || x->state != FG_X_UPSTREAM || r->job)
        return;
    if (r->route == R_INFER || r->route == R_GENERATE || r->route == R_GENERATE_STREAM)
        run_post(x, r);
}

static void serve_resume(struct fg_exchange *x)
{
    /* answers are bounded by the request's size: nothing is paused */
}

static void serve_release(struct fg_exchange *x)
{
    struct req *r = x->handler_data;

    if (r)
        req_drop(r);
}

const struct fg_handler_ops fg_serve_handler = {
    .start = serve_start,
    .request_body = serve_request_body,
    .request_end = serve_request_end,
    .resume = serve_resume,
    .release = serve_release,
    .error_body = error_body,
};

/* ---- per worker ------------------------------------------------------------------ */

int fg_serve_worker_init(struct fg_worker *w, void *ctx, char **err)
{
    struct fg_serve *s = ctx;

    w->app_worker = s->chans[w->id];
    return fg_done_chan_attach(s->chans[w->id], w->base, err);
}

void fg_serve_worker_fini(struct fg_worker *w, void *ctx)
{
    struct fg_serve *s = ctx;

    fg_done_chan_detach(s->chans[w->id]);
}
