/* The CPU engine: the model's forward pass in plain C (kernels_cpu.c).
 *
 * Everything is allocated in fg_engine_cpu_new: the packed dense weights and
 * the workspaces for max_batch images. A forward pass pads, convolves and
 * pools one image at a time into the batch's flattened feature rows, then
 * runs both dense layers over the whole batch and the softmax into out. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg/engine-impl.h"
#include "fg/kernels_cpu.h"

#define ALIGN_BYTES 64u

struct cpu_engine {
    struct fg_engine base;      /* first: engine.c casts */
    unsigned hp, wp;            /* padded input sides */
    unsigned ho, wo;            /* convolution output sides */
    size_t conv_plane;          /* floats between conv output planes */
    size_t flat;                /* pooled features per image */
    size_t hs1, hs2;            /* row strides of hidden and logits (padded) */
    float *xpad;                /* one padded, scaled image */
    float *conv;                /* one image's convolution output */
    float *feat;                /* [max_batch][flat] */
    float *hid;                 /* [max_batch][hs1] */
    float *logits;              /* [max_batch][hs2] */
    float *fc1_t, *fc1_b;       /* [flat][hs1], [hs1] */
    float *fc2_t, *fc2_b;       /* [hidden][hs2], [hs2] */
};

/* A zeroed, 64-byte aligned array of a * b floats, or NULL (also when the
 * size overflows). */
static float *ws_alloc(size_t a, size_t b)
{
    size_t bytes;
    float *p;

    if (a && b > SIZE_MAX / sizeof(float) / a)
        return NULL;
    bytes = a * b * sizeof(float);
    if (bytes > SIZE_MAX - ALIGN_BYTES)
        return NULL;
    bytes = (bytes + ALIGN_BYTES - 1) / ALIGN_BYTES * ALIGN_BYTES;
    p = aligned_alloc(ALIGN_BYTES, bytes ? bytes : ALIGN_BYTES);
    if (p)
        memset(p, 0, bytes);
    return p;
}

static void cpu_destroy(struct fg_engine *base)
{
    struct cpu_engine *e = (struct cpu_engine *)base;

    free(e->xpad);
    free(e->conv);
    free(e->feat);
    free(e->hid);
    free(e->logits);
    free(e->fc1_t);
    free(e->fc1_b);
    free(e->fc2_t);
    free(e->fc2_b);
    free(e);
}

/* Convolution with ReLU, then pooling, of image i into its feature row. */
static void features(struct cpu_engine *e, const float *img, unsigned i)
{
    const struct fg_model *m = e->base.model;

    fg_k_pad_scale(img, m->in_c, m->in_h, m->in_w, m->pad, m->input_scale, e->xpad);
    fg_k_conv_wide(e->xpad, m->in_c, e->hp, e->wp, m->conv_w, m->conv_b, m->conv_out,
                   m->kernel, e->conv);
    fg_k_maxpool(e->conv, m->conv_out, e->conv_plane, e->wp, e->ho, e->wo, m->pool,
                 e->feat + (size_t)i * e->flat);
}

static int cpu_forward(struct fg_engine *base, const float *in, unsigned n, float *out,
                       char **err)
{
    struct cpu_engine *e = (struct cpu_engine *)base;
    const struct fg_model *m = base->model;
    size_t in_size = fg_model_input_size(m);

    for (unsigned i = 0; i < n; i++)
        features(e, in + (size_t)i * in_size, i);
    fg_k_dense(e->feat, e->flat, n, (unsigned)e->flat, e->fc1_t, e->fc1_b, e->hs1, 1, e->hid);
    fg_k_dense(e->hid, e->hs1, n, m->hidden, e->fc2_t, e->fc2_b, e->hs2, 0, e->logits);
    fg_k_softmax(e->logits, e->hs2, n, m->classes, out);
    return 0;
}

static void set_geometry(struct cpu_engine *e, const struct fg_model *m)
{
    e->hp = m->in_h + 2 * m->pad;
    e->wp = m->in_w + 2 * m->pad;
    e->ho = fg_model_conv_h(m);
    e->wo = fg_model_conv_w(m);
    e->conv_plane = fg_k_conv_plane(e->ho, e->wp);
    e->flat = (size_t)m->conv_out * fg_model_pool_h(m) * fg_model_pool_w(m);
    e->hs1 = fg_k_round(m->hidden);
    e->hs2 = fg_k_round(m->classes);
}

/* Returns 0, or -1 when an allocation failed. */
static int alloc_buffers(struct cpu_engine *e, const struct fg_model *m, unsigned max_batch)
{
    e->xpad = ws_alloc(1, fg_k_padded_size(m->in_c, m->in_h, m->in_w, m->pad));
    e->conv = ws_alloc(m->conv_out, e->conv_plane);
    e->feat = ws_alloc(max_batch, e->flat);
    e->hid = ws_alloc(max_batch, e->hs1);
    e->logits = ws_alloc(max_batch, e->hs2);
    e->fc1_t = ws_alloc(e->flat, e->hs1);
    e->fc1_b = ws_alloc(1, e->hs1);
    e->fc2_t = ws_alloc(m->hidden, e->hs2);
    e->fc2_b = ws_alloc(1, e->hs2);
    if (!e->xpad || !e->conv || !e->feat || !e->hid || !e->logits || !e->fc1_t || !e->fc1_b ||
        !e->fc2_t || !e->fc2_b)
        return -1;
    return 0;
}

struct fg_engine *fg_engine_cpu_new(const struct fg_model *m, unsigned max_batch, char **err)
{
    struct cpu_engine *e = calloc(1, sizeof(*e));

    if (!e) {
        *err = fg_model_errorf("CPU engine: out of memory");
        return NULL;
    }
    e->base.device = FG_DEVICE_CPU;
    e->base.max_batch = max_batch;
    e->base.model = m;
    e->base.forward = cpu_forward;
    e->base.destroy = cpu_destroy;
    set_geometry(e, m);
    if (alloc_buffers(e, m, max_batch) < 0) {
        *err = fg_model_errorf("CPU engine: out of memory for a batch of %u (model %s v%u)",
                               max_batch, m->name, m->version);
        cpu_destroy(&e->base);
        return NULL;
    }
    fg_k_pack_dense(m->fc1_w, m->fc1_b, m->hidden, (unsigned)e->flat, e->fc1_t, e->fc1_b);
    fg_k_pack_dense(m->fc2_w, m->fc2_b, m->classes, m->hidden, e->fc2_t, e->fc2_b);
    return &e->base;
}
