/* The CPU engine's kernels (src/model/kernels_cpu.c), one layer each.
 *
 * Inner loops run over contiguous floats in fixed chunks of FG_K_CHUNK, so
 * the compiler vectorizes them at -O2 without run-time checks; buffers are
 * padded to match (fg_k_round). Every output value is summed in a fixed
 * order that depends only on the model, never on the batch size or on the
 * image's place in the batch: an image gives bit-identical results alone or
 * in any batch.
 *
 * Buffers passed to one call never overlap (restrict). */
#ifndef FG_KERNELS_CPU_H
#define FG_KERNELS_CPU_H

#include <stddef.h>

#define FG_K_CHUNK 8

/* n rounded up to a multiple of FG_K_CHUNK. */
static inline size_t fg_k_round(size_t n)
{
    return (n + FG_K_CHUNK - 1) / FG_K_CHUNK * FG_K_CHUNK;
}

/* Floats of the padded input of one image: c planes of (h + 2 pad) x
 * (w + 2 pad), then FG_K_CHUNK floats of slack that fg_k_conv_wide reads. */
size_t fg_k_padded_size(unsigned c, unsigned h, unsigned w, unsigned pad);

/* One image: in[c][h][w] times scale into out[c][h + 2 pad][w + 2 pad], zero
 * borders, zero slack (fg_k_padded_size floats written). */
void fg_k_pad_scale(const float *in, unsigned c, unsigned h, unsigned w, unsigned pad,
                    float scale, float *out);

/* Floats between two output planes of fg_k_conv_wide. */
size_t fg_k_conv_plane(unsigned ho, unsigned wp);

/* One image, stride-1 convolution of the padded input xp[c][hp][wp] (from
 * fg_k_pad_scale) with w[oc][c][k][k] plus b[oc], then ReLU. The output
 * keeps the input's row stride: out[o * plane + y * wp + x] for y < ho =
 * hp - k + 1 and x < wo = wp - k + 1, plane = fg_k_conv_plane(ho, wp);
 * columns x >= wo hold values of no meaning. Each value is b[o] plus the
 * products added in the order c, ky, kx. */
void fg_k_conv_wide(const float *xp, unsigned c, unsigned hp, unsigned wp, const float *w,
                    const float *b, unsigned oc, unsigned k, float *out);

/* One image: max-pool (window and stride pool) of fg_k_conv_wide's output,
 * into out[o][py][px] (py < ho / pool, px < wo / pool), contiguous: the
 * flattened order of the dense layer's input. */
void fg_k_maxpool(const float *in, unsigned oc, size_t plane, unsigned wp, unsigned ho,
                  unsigned wo, unsigned pool, float *out);

/* Packs a dense layer w[h][k], b[h] for fg_k_dense, hs = fg_k_round(h):
 * wt (k * hs floats) holds panels of FG_K_CHUNK outputs, each panel k rows
 * of FG_K_CHUNK weights (w[j][t] goes to wt[(j / FG_K_CHUNK * k + t) *
 * FG_K_CHUNK + j % FG_K_CHUNK]), so one panel is a contiguous k x 8 block;
 * bp[hs] is the bias; both zero beyond h. */
void fg_k_pack_dense(const float *w, const float *b, unsigned h, unsigned k, float *wt,
                     float *bp);

/* A batch of n rows: out[i * hs + j] = bp[j] + sum over t < k, in order, of
 * in[i * in_stride + t] * w[j][t], then max(0, .) when relu; wt and bp as
 * fg_k_pack_dense makes them, hs a multiple of FG_K_CHUNK. The batch is
 * worked in blocks of 16 rows, whose inputs stay in cache while each panel
 * of weights passes over them, 4 rows at a time in registers. */
void fg_k_dense(const float *in, size_t in_stride, unsigned n, unsigned k, const float *wt,
                const float *bp, size_t hs, int relu, float *out);

/* Row-wise softmax of logits[i * stride + j] (j < classes) into
 * out[i * classes + j]; subtracts the row maximum first. */
void fg_k_softmax(const float *logits, size_t stride, unsigned n, unsigned classes, float *out);

#endif
