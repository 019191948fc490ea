/* CPU kernels of the digits model (include/fg/kernels_cpu.h). Plain C; the
 * inner loops are fixed chunks of FG_K_CHUNK contiguous floats, which GCC's
 * -O2 vectorizer (the "very cheap" cost model) accepts: the trip count is
 * known and restrict rules out aliasing. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "fg/kernels_cpu.h"

/* Rows of a batch that fg_k_dense works through together. */
#define DENSE_BLOCK 16u

size_t fg_k_padded_size(unsigned c, unsigned h, unsigned w, unsigned pad)
{
    return (size_t)c * (h + 2 * pad) * (w + 2 * pad) + FG_K_CHUNK;
}

void fg_k_pad_scale(const float *restrict in, unsigned c, unsigned h, unsigned w, unsigned pad,
                    float scale, float *restrict out)
{
    size_t wp = (size_t)w + 2 * pad, hp = (size_t)h + 2 * pad;

    memset(out, 0, fg_k_padded_size(c, h, w, pad) * sizeof(*out));
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = 0; y < h; y++) {
            const float *restrict src = in + (ch * h + y) * w;
            float *restrict dst = out + (ch * hp + y + pad) * wp + pad;
            for (size_t x = 0; x < w; x++)
                dst[x] = src[x] * scale;
        }
}

size_t fg_k_conv_plane(unsigned ho, unsigned wp)
{
    return fg_k_round((size_t)ho * wp);
}

/* acc[i] += wv * src[i] for i < len (a multiple of FG_K_CHUNK). */
static void axpy_chunks(float *restrict acc, const float *restrict src, float wv, size_t len)
{
    for (size_t i = 0; i < len; i += FG_K_CHUNK)
        for (size_t j = 0; j < FG_K_CHUNK; j++)
            acc[i + j] += wv * src[i + j];
}

void fg_k_conv_wide(const float *restrict xp, unsigned c, unsigned hp, unsigned wp,
                    const float *restrict w, const float *restrict b, unsigned oc, unsigned k,
                    float *restrict out)
{
    unsigned ho = hp - k + 1, wo = wp - k + 1;
    size_t plane = fg_k_conv_plane(ho, wp);
    /* Output positions y * wp + x up to the last valid one, rounded up: the
     * reads stay within the padded planes plus their slack. */
    size_t len = fg_k_round((size_t)(ho - 1) * wp + wo);
    size_t in_plane = (size_t)hp * wp;

    for (size_t o = 0; o < oc; o++) {
        float *restrict acc = out + o * plane;
        const float *restrict wk = w + o * c * k * k;
        for (size_t i = 0; i < len; i++)
            acc[i] = b[o];
        for (size_t ch = 0; ch < c; ch++)
            for (size_t ky = 0; ky < k; ky++)
                for (size_t kx = 0; kx < k; kx++)
                    axpy_chunks(acc, xp + ch * in_plane + ky * wp + kx,
                                wk[(ch * k + ky) * k + kx], len);
    }
}

/* Maximum of a pool x pool window whose top-left value is win. */
static float window_max(const float *restrict win, unsigned wp, unsigned pool)
{
    float m = win[0];

    for (size_t y = 0; y < pool; y++)
        for (size_t x = 0; x < pool; x++) {
            float v = win[y * wp + x];
            m = v > m ? v : m;
        }
    return m;
}

void fg_k_relu_maxpool(const float *restrict in, unsigned oc, size_t plane, unsigned wp,
                       unsigned ho, unsigned wo, unsigned pool, float *restrict out)
{
    unsigned ph = ho / pool, pw = wo / pool;

    for (size_t o = 0; o < oc; o++)
        for (size_t py = 0; py < ph; py++) {
            const float *restrict row = in + o * plane + py * pool * wp;
            float *restrict dst = out + (o * ph + py) * pw;
            for (size_t px = 0; px < pw; px++) {
                float m = window_max(row + px * pool, wp, pool);
                dst[px] = m > 0.0f ? m : 0.0f;
            }
        }
}

void fg_k_pack_dense(const float *restrict w, const float *restrict b, unsigned h, unsigned k,
                     float *restrict wt, float *restrict bp)
{
    size_t hs = fg_k_round(h);

    memset(wt, 0, (size_t)k * hs * sizeof(*wt));
    memset(bp, 0, hs * sizeof(*bp));
    for (size_t j = 0; j < h; j++) {
        bp[j] = b[j];
        for (size_t t = 0; t < k; t++)
            wt[t * hs + j] = w[j * k + t];
    }
}

/* Rows [0, rows) of one block: bias, the k products in order, ReLU. */
static void dense_block(const float *restrict in, size_t in_stride, unsigned rows, unsigned k,
                        const float *restrict wt, const float *restrict bp, size_t hs, int relu,
                        float *restrict out)
{
    for (size_t i = 0; i < rows; i++)
        memcpy(out + i * hs, bp, hs * sizeof(*out));
    for (size_t t = 0; t < k; t++) {
        const float *restrict wrow = wt + t * hs;
        for (size_t i = 0; i < rows; i++)
            axpy_chunks(out + i * hs, wrow, in[i * in_stride + t], hs);
    }
    if (!relu)
        return;
    for (size_t i = 0; i < rows * hs; i += FG_K_CHUNK)
        for (size_t j = 0; j < FG_K_CHUNK; j++)
            out[i + j] = out[i + j] > 0.0f ? out[i + j] : 0.0f;
}

void fg_k_dense(const float *restrict in, size_t in_stride, unsigned n, unsigned k,
                const float *restrict wt, const float *restrict bp, size_t hs, int relu,
                float *restrict out)
{
    for (unsigned i = 0; i < n; i += DENSE_BLOCK) {
        unsigned rows = n - i < DENSE_BLOCK ? n - i : DENSE_BLOCK;
        dense_block(in + i * in_stride, in_stride, rows, k, wt, bp, hs, relu, out + i * hs);
    }
}

void fg_k_softmax(const float *restrict logits, size_t stride, unsigned n, unsigned classes,
                  float *restrict out)
{
    for (size_t i = 0; i < n; i++) {
        const float *restrict z = logits + i * stride;
        float *restrict p = out + i * classes;
        float m = z[0], sum = 0.0f;
        for (size_t j = 1; j < classes; j++)
            m = z[j] > m ? z[j] : m;
        for (size_t j = 0; j < classes; j++) {
            p[j] = expf(z[j] - m);
            sum += p[j];
        }
        for (size_t j = 0; j < classes; j++)
            p[j] /= sum;
    }
}
