/* CPU kernels of the digits model (include/fg/kernels_cpu.h). Plain C that
 * GCC vectorizes at -O2 (the "very cheap" cost model): inner loops have a
 * fixed trip count and restrict pointers, so no run-time checks are needed.
 *
 * The convolution and the dense layers share one register block: 4 rows
 * (output channels or images) by FG_K_CHUNK columns of sums, kept as
 * accumulators of LANES floats. Each accumulator is updated by a loop of
 * exactly LANES iterations at a fixed place, which becomes one vector
 * multiply and add, and GCC keeps all of them in registers through the
 * loop over the reduction (taps or inputs) instead of storing and reloading
 * them at each step. Every sum is the bias plus the products in reduction
 * order, whatever row of a block or of a batch it falls on. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "fg/kernels_cpu.h"

#define LANES 4u            /* floats per accumulator: one 128-bit register */
#define BLOCK_ROWS 4u       /* rows of the register block */
/* Images of a batch that fg_k_dense works through together: their inputs
 * stay in cache while each panel of weights passes over them. */
#define DENSE_BLOCK 16u

_Static_assert(FG_K_CHUNK == 2 * LANES && BLOCK_ROWS == 4,
               "block_madd is written out for 4 rows of 2 accumulators");

struct block {
    float a[BLOCK_ROWS][FG_K_CHUNK / LANES][LANES];
};

static inline void lanes_madd(float *restrict a, float x, const float *restrict v)
{
    for (size_t j = 0; j < LANES; j++)
        a[j] += x * v[j];
}

/* Row r of the block += x_r * v[0 .. FG_K_CHUNK). */
static inline void block_madd(struct block *restrict b, float x0, float x1, float x2,
                              float x3, const float *restrict v)
{
    lanes_madd(b->a[0][0], x0, v);
    lanes_madd(b->a[0][1], x0, v + LANES);
    lanes_madd(b->a[1][0], x1, v);
    lanes_madd(b->a[1][1], x1, v + LANES);
    lanes_madd(b->a[2][0], x2, v);
    lanes_madd(b->a[2][1], x2, v + LANES);
    lanes_madd(b->a[3][0], x3, v);
    lanes_madd(b->a[3][1], x3, v + LANES);
}

/* Row r starts as init[0 .. FG_K_CHUNK). */
static inline void block_init(struct block *restrict b, unsigned r, const float *restrict init)
{
    memcpy(b->a[r], init, FG_K_CHUNK * sizeof(float));
}

/* Row r into out[0 .. FG_K_CHUNK), through max(0, .) when relu. */
static inline void block_store(const struct block *restrict b, unsigned r, int relu,
                               float *restrict out)
{
    const float *restrict a = &b->a[r][0][0];

    for (size_t j = 0; j < FG_K_CHUNK; j++)
        out[j] = relu && !(a[j] > 0.0f) ? 0.0f : a[j];
}

/* Row r of a block of `rows` valid ones, clamped: the rows past the last
 * valid one repeat it, so they read memory that exists, and are dropped. */
static inline unsigned clamp_row(unsigned r, unsigned rows)
{
    return r < rows ? r : rows - 1;
}

/* ---- input --------------------------------------------------------------- */

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

/* ---- convolution ----------------------------------------------------------- */

size_t fg_k_conv_plane(unsigned ho, unsigned wp)
{
    return fg_k_round((size_t)ho * wp);
}

/* Output channels o .. o + ocs - 1 (ocs <= BLOCK_ROWS) at the FG_K_CHUNK
 * positions starting at xp, through ReLU into out (channel o's plane). */
static void conv_block(const float *restrict xp, unsigned c, size_t in_plane, unsigned wp,
                       unsigned k, const float *restrict w, const float *restrict b,
                       unsigned ocs, float *restrict out, size_t plane)
{
    size_t taps = (size_t)c * k * k, tap = 0;
    const float *restrict w0 = w + clamp_row(0, ocs) * taps, *restrict w1 = w + clamp_row(1, ocs) * taps;
    const float *restrict w2 = w + clamp_row(2, ocs) * taps, *restrict w3 = w + clamp_row(3, ocs) * taps;
    struct block acc;

    for (unsigned r = 0; r < BLOCK_ROWS; r++) {
        float bias[FG_K_CHUNK];
        for (size_t j = 0; j < FG_K_CHUNK; j++)
            bias[j] = b[clamp_row(r, ocs)];
        block_init(&acc, r, bias);
    }
    for (size_t ch = 0; ch < c; ch++)
        for (size_t ky = 0; ky < k; ky++)
            for (size_t kx = 0; kx < k; kx++, tap++)
                block_madd(&acc, w0[tap], w1[tap], w2[tap], w3[tap],
                           xp + ch * in_plane + ky * wp + kx);
    for (unsigned r = 0; r < ocs; r++)
        block_store(&acc, r, 1, out + r * plane);
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
    size_t in_plane = (size_t)hp * wp, taps = (size_t)c * k * k;

    for (unsigned o = 0; o < oc; o += BLOCK_ROWS) {
        unsigned ocs = oc - o < BLOCK_ROWS ? oc - o : BLOCK_ROWS;
        for (size_t i = 0; i < len; i += FG_K_CHUNK)
            conv_block(xp + i, c, in_plane, wp, k, w + o * taps, b + o, ocs,
                       out + o * plane + i, plane);
    }
}

/* ---- max-pool ------------------------------------------------------------------ */

static inline float max2(float a, float b)
{
    return a > b ? a : b;       /* one maxss on x86, no branch */
}

/* Maximum of a pool x pool window whose top-left value is win. */
static float window_max(const float *restrict win, unsigned wp, unsigned pool)
{
    float m = win[0];

    for (size_t y = 0; y < pool; y++)
        for (size_t x = 0; x < pool; x++)
            m = max2(win[y * wp + x], m);
    return m;
}

void fg_k_maxpool(const float *restrict in, unsigned oc, size_t plane, unsigned wp,
                  unsigned ho, unsigned wo, unsigned pool, float *restrict out)
{
    unsigned ph = ho / pool, pw = wo / pool;

    for (size_t o = 0; o < oc; o++)
        for (size_t py = 0; py < ph; py++) {
            const float *restrict r0 = in + o * plane + py * pool * wp, *restrict r1 = r0 + wp;
            float *restrict dst = out + (o * ph + py) * pw;
            if (pool == 2) {
                for (size_t px = 0; px < pw; px++)
                    dst[px] = max2(max2(r0[2 * px], r0[2 * px + 1]),
                                   max2(r1[2 * px], r1[2 * px + 1]));
            } else {
                for (size_t px = 0; px < pw; px++)
                    dst[px] = window_max(r0 + px * pool, wp, pool);
            }
        }
}

/* ---- dense layers ------------------------------------------------------------------ */

void fg_k_pack_dense(const float *restrict w, const float *restrict b, unsigned h, unsigned k,
                     float *restrict wt, float *restrict bp)
{
    size_t hs = fg_k_round(h);

    memset(wt, 0, (size_t)k * hs * sizeof(*wt));
    memset(bp, 0, hs * sizeof(*bp));
    for (size_t j = 0; j < h; j++) {
        float *restrict panel = wt + j / FG_K_CHUNK * k * FG_K_CHUNK;
        bp[j] = b[j];
        for (size_t t = 0; t < k; t++)
            panel[t * FG_K_CHUNK + j % FG_K_CHUNK] = w[j * k + t];
    }
}

/* Images 0 .. rows - 1 (rows <= BLOCK_ROWS) of in, the FG_K_CHUNK outputs
 * of one panel of weights. */
static void dense_block(const float *restrict in, size_t in_stride, unsigned rows, unsigned k,
                        const float *restrict panel, const float *restrict bias, int relu,
                        float *restrict out, size_t out_stride)
{
    const float *restrict x0 = in + clamp_row(0, rows) * in_stride;
    const float *restrict x1 = in + clamp_row(1, rows) * in_stride;
    const float *restrict x2 = in + clamp_row(2, rows) * in_stride;
    const float *restrict x3 = in + clamp_row(3, rows) * in_stride;
    struct block acc;

    for (unsigned r = 0; r < BLOCK_ROWS; r++)
        block_init(&acc, r, bias);
    for (size_t t = 0; t < k; t++)
        block_madd(&acc, x0[t], x1[t], x2[t], x3[t], panel + t * FG_K_CHUNK);
    for (unsigned r = 0; r < rows; r++)
        block_store(&acc, r, relu, out + r * out_stride);
}

void fg_k_dense(const float *restrict in, size_t in_stride, unsigned n, unsigned k,
                const float *restrict wt, const float *restrict bp, size_t hs, int relu,
                float *restrict out)
{
    for (unsigned i0 = 0; i0 < n; i0 += DENSE_BLOCK) {
        unsigned end = n - i0 < DENSE_BLOCK ? n : i0 + DENSE_BLOCK;
        for (size_t p = 0; p < hs / FG_K_CHUNK; p++) {
            const float *restrict panel = wt + p * k * FG_K_CHUNK;
            for (unsigned i = i0; i < end; i += BLOCK_ROWS)
                dense_block(in + i * in_stride, in_stride,
                            end - i < BLOCK_ROWS ? end - i : BLOCK_ROWS, k, panel,
                            bp + p * FG_K_CHUNK, relu, out + i * hs + p * FG_K_CHUNK, hs);
        }
    }
}

/* ---- softmax ------------------------------------------------------------------------ */

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
