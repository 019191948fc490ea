/* The GPU engine: the forward pass of the network in include/fg/model.h on
 * device 0 with cuDNN (convolution, biases, ReLU, max-pool, softmax) and
 * cuBLAS (the two dense layers). Plain C compiled by the C compiler against
 * the CUDA headers: no nvcc, no kernels of our own (docs/gpu.md).
 *
 * Everything is set up once, in fg_engine_cudnn_new(): one stream, the cuDNN
 * and cuBLAS handles bound to it, the descriptors, the weights on the
 * device, device buffers and pinned host staging buffers for max_batch
 * images, and the convolution algorithm with its workspace. A forward pass
 * sets the batch size into the descriptors when it differs from the last
 * pass's, queues one host-to-device copy, the layers and one device-to-host
 * copy on the stream, and waits for the stream. It allocates nothing.
 *
 * input_scale is applied as the alpha of cudnnConvolutionForward: the
 * convolution is linear in its input, so conv(s * x, w) = s * conv(x, w),
 * and the bias is added afterwards. Neither the weights nor the input are
 * rescaled in memory.
 *
 * Every CUDA, cuDNN and cuBLAS status is checked; a failure becomes an *err
 * message naming the call and the library's description of the status. */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "fg/engine-impl.h"

/* Convolution algorithms needing more workspace than this are passed over:
 * for 8x8 images any sensible one needs far less. */
#define WORKSPACE_LIMIT ((size_t)64 << 20)
/* The workspace given to cuBLAS (cublasSetWorkspace): what its manual
 * recommends, 32 MiB on Hopper (compute capability 9) and later, 4 MiB
 * before. */
#define BLAS_WORKSPACE_NEW ((size_t)32 << 20)
#define BLAS_WORKSPACE_OLD ((size_t)4 << 20)

struct cudnn_engine {
    struct fg_engine base; /* first: the dispatcher hands this pointer back */
    int gpu;               /* CUDA device number */

    /* shapes, from the model */
    unsigned in_size;           /* in_c * in_h * in_w */
    unsigned conv_h, conv_w;    /* convolution output side */
    unsigned pool_h, pool_w;    /* pooled map side */
    unsigned flat;              /* conv_out * pool_h * pool_w: dense1's input width */
    float input_scale;

    cudaStream_t stream;
    int stream_made;
    cudnnHandle_t dnn;
    cublasHandle_t blas;

    /* descriptors; those of activations have the batch size as N */
    cudnnTensorDescriptor_t x_desc;      /* n x in_c x in_h x in_w */
    cudnnFilterDescriptor_t w_desc;      /* conv_out x in_c x kernel x kernel */
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnTensorDescriptor_t conv_y_desc; /* n x conv_out x conv_h x conv_w */
    cudnnTensorDescriptor_t conv_b_desc; /* 1 x conv_out x 1 x 1 */
    cudnnActivationDescriptor_t relu;
    cudnnPoolingDescriptor_t pool_desc;
    cudnnTensorDescriptor_t pool_y_desc; /* n x conv_out x pool_h x pool_w */
    cudnnTensorDescriptor_t fc1_y_desc;  /* n x hidden x 1 x 1 */
    cudnnTensorDescriptor_t fc1_b_desc;  /* 1 x hidden x 1 x 1 */
    cudnnTensorDescriptor_t fc2_y_desc;  /* n x classes x 1 x 1: logits and probabilities */
    cudnnTensorDescriptor_t fc2_b_desc;  /* 1 x classes x 1 x 1 */
    unsigned desc_n;                     /* batch size the descriptors hold; 0: unknown */

    cudnnConvolutionFwdAlgo_t algo;
    size_t ws_size;

    /* device memory: weights, then buffers for max_batch images */
    float *d_conv_w, *d_conv_b, *d_fc1_w, *d_fc1_b, *d_fc2_w, *d_fc2_b;
    float *d_x, *d_conv_y, *d_pool_y, *d_fc1_y, *d_logits, *d_prob;
    void *d_ws;
    void *d_blas_ws;  /* cuBLAS's workspace, ours so that it allocates none */
    size_t blas_ws_size;
    /* pinned host staging for the input and the probabilities */
    float *h_in, *h_out;
};

/* ---- status checks ---------------------------------------------------- */

static int cuda_ok(cudaError_t st, const char *call, char **err)
{
    if (st == cudaSuccess)
        return 1;
    /* Clear the error unless it is sticky (then it stays, and every later
     * call reports it). */
    (void)cudaGetLastError();
    *err = fg_model_errorf("GPU engine: %s: %s (%s)", call, cudaGetErrorString(st),
                           cudaGetErrorName(st));
    return 0;
}

static int dnn_ok(cudnnStatus_t st, const char *call, char **err)
{
    char detail[256] = "";

    if (st == CUDNN_STATUS_SUCCESS)
        return 1;
#if CUDNN_MAJOR >= 9
    cudnnGetLastErrorString(detail, sizeof detail);
    detail[sizeof detail - 1] = '\0';
#endif
    if (detail[0])
        *err = fg_model_errorf("GPU engine: %s: %s (%s)", call, cudnnGetErrorString(st), detail);
    else
        *err = fg_model_errorf("GPU engine: %s: %s", call, cudnnGetErrorString(st));
    return 0;
}

static int blas_ok(cublasStatus_t st, const char *call, char **err)
{
    if (st == CUBLAS_STATUS_SUCCESS)
        return 1;
    *err = fg_model_errorf("GPU engine: %s: %s (%s)", call, cublasGetStatusString(st),
                           cublasGetStatusName(st));
    return 0;
}

/* CUDA(cudaFoo, args...) calls cudaFoo(args...) and returns 1, or sets *err
 * (a variable named err must be in scope) naming cudaFoo and returns 0. */
#define CUDA(fn, ...) cuda_ok(fn(__VA_ARGS__), #fn, err)
#define DNN(fn, ...) dnn_ok(fn(__VA_ARGS__), #fn, err)
#define BLAS(fn, ...) blas_ok(fn(__VA_ARGS__), #fn, err)

/* ---- set-up ------------------------------------------------------------ */

/* Checks the model's shapes against what cuDNN and cuBLAS take (int sizes)
 * and fills in the engine's copies. */
static int check_shapes(struct cudnn_engine *e, const struct fg_model *m, unsigned max_batch,
                        char **err)
{
    unsigned long long per_image, big;

    if (m->in_c == 0 || m->in_h == 0 || m->in_w == 0 || m->conv_out == 0 || m->kernel == 0 ||
        m->pool == 0 || m->hidden == 0 || m->classes == 0) {
        *err = fg_model_errorf("GPU engine: model %s has a zero dimension", m->name);
        return 0;
    }
    if (!m->conv_w || !m->conv_b || !m->fc1_w || !m->fc1_b || !m->fc2_w || !m->fc2_b) {
        *err = fg_model_errorf("GPU engine: model %s lacks weights", m->name);
        return 0;
    }
    e->conv_h = fg_model_conv_h(m);
    e->conv_w = fg_model_conv_w(m);
    e->pool_h = fg_model_pool_h(m);
    e->pool_w = fg_model_pool_w(m);
    if (e->conv_h == 0 || e->conv_w == 0 || e->pool_h == 0 || e->pool_w == 0) {
        *err = fg_model_errorf("GPU engine: model %s: empty convolution output or pooled map",
                               m->name);
        return 0;
    }
    /* The largest tensor must count fewer than INT_MAX elements: cuDNN's
     * and cuBLAS's sizes are ints. */
    per_image = (unsigned long long)m->in_c * m->in_h * m->in_w;
    big = (unsigned long long)m->conv_out * e->conv_h * e->conv_w;
    if (big > per_image)
        per_image = big;
    if (m->hidden > per_image)
        per_image = m->hidden;
    if (m->classes > per_image)
        per_image = m->classes;
    big = (unsigned long long)m->hidden * m->conv_out * e->pool_h * e->pool_w;
    if (per_image * max_batch > INT_MAX || big > INT_MAX) {
        *err = fg_model_errorf("GPU engine: model %s with batches of %u is too large", m->name,
                               max_batch);
        return 0;
    }
    e->in_size = m->in_c * m->in_h * m->in_w;
    e->flat = m->conv_out * e->pool_h * e->pool_w;
    e->input_scale = m->input_scale;
    return 1;
}

static int set_4d(cudnnTensorDescriptor_t d, unsigned n, unsigned c, unsigned h, unsigned w,
                  char **err)
{
    return DNN(cudnnSetTensor4dDescriptor, d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)n,
               (int)c, (int)h, (int)w);
}

/* Sets the batch size n into every descriptor that has one. */
static int set_batch(struct cudnn_engine *e, unsigned n, char **err)
{
    const struct fg_model *m = e->base.model;

    e->desc_n = 0; /* unknown until all are set */
    if (!set_4d(e->x_desc, n, m->in_c, m->in_h, m->in_w, err) ||
        !set_4d(e->conv_y_desc, n, m->conv_out, e->conv_h, e->conv_w, err) ||
        !set_4d(e->pool_y_desc, n, m->conv_out, e->pool_h, e->pool_w, err) ||
        !set_4d(e->fc1_y_desc, n, m->hidden, 1, 1, err) ||
        !set_4d(e->fc2_y_desc, n, m->classes, 1, 1, err))
        return 0;
    e->desc_n = n;
    return 1;
}

/* The descriptors that do not depend on the batch size. */
static int make_descriptors(struct cudnn_engine *e, char **err)
{
    const struct fg_model *m = e->base.model;

    if (!DNN(cudnnCreateTensorDescriptor, &e->x_desc) ||
        !DNN(cudnnCreateFilterDescriptor, &e->w_desc) ||
        !DNN(cudnnCreateConvolutionDescriptor, &e->conv_desc) ||
        !DNN(cudnnCreateTensorDescriptor, &e->conv_y_desc) ||
        !DNN(cudnnCreateTensorDescriptor, &e->conv_b_desc) ||
        !DNN(cudnnCreateActivationDescriptor, &e->relu) ||
        !DNN(cudnnCreatePoolingDescriptor, &e->pool_desc) ||
        !DNN(cudnnCreateTensorDescriptor, &e->pool_y_desc) ||
        !DNN(cudnnCreateTensorDescriptor, &e->fc1_y_desc) ||
        !DNN(cudnnCreateTensorDescriptor, &e->fc1_b_desc) ||
        !DNN(cudnnCreateTensorDescriptor, &e->fc2_y_desc) ||
        !DNN(cudnnCreateTensorDescriptor, &e->fc2_b_desc))
        return 0;

    /* Weights [conv_out][in_c][kernel][kernel]: KCRS, cuDNN's NCHW filter. */
    if (!DNN(cudnnSetFilter4dDescriptor, e->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
             (int)m->conv_out, (int)m->in_c, (int)m->kernel, (int)m->kernel))
        return 0;
    /* Cross-correlation (the weights are not flipped), stride 1, no dilation,
     * accumulated in FP32. FMA math: no TF32 tensor cores, which cuDNN
     * allows by default for FP32 on Ampere and later and which would put
     * the results about 1e-3 away from the CPU engine's. */
    if (!DNN(cudnnSetConvolution2dDescriptor, e->conv_desc, (int)m->pad, (int)m->pad, 1, 1, 1, 1,
             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ||
        !DNN(cudnnSetConvolutionMathType, e->conv_desc, CUDNN_FMA_MATH))
        return 0;
    if (!DNN(cudnnSetActivationDescriptor, e->relu, CUDNN_ACTIVATION_RELU,
             CUDNN_NOT_PROPAGATE_NAN, 0.0))
        return 0;
    /* Max-pool: window = stride = pool, no padding; a partial window at
     * the edge is dropped, as fg_model_pool_h() counts. */
    if (!DNN(cudnnSetPooling2dDescriptor, e->pool_desc, CUDNN_POOLING_MAX,
             CUDNN_NOT_PROPAGATE_NAN, (int)m->pool, (int)m->pool, 0, 0, (int)m->pool,
             (int)m->pool))
        return 0;
    /* Biases broadcast over N, H and W by cudnnAddTensor. */
    if (!set_4d(e->conv_b_desc, 1, m->conv_out, 1, 1, err) ||
        !set_4d(e->fc1_b_desc, 1, m->hidden, 1, 1, err) ||
        !set_4d(e->fc2_b_desc, 1, m->classes, 1, 1, err))
        return 0;
    return set_batch(e, e->base.max_batch, err);
}

/* cuDNN's own idea of the convolution and pooling output shapes must be
 * the model's (fg_model_conv_h() and friends, which the CPU engine uses). */
static int check_output_dims(struct cudnn_engine *e, char **err)
{
    const struct fg_model *m = e->base.model;
    int n, c, h, w;

    if (!DNN(cudnnGetConvolution2dForwardOutputDim, e->conv_desc, e->x_desc, e->w_desc, &n, &c,
             &h, &w))
        return 0;
    if ((unsigned)n != e->desc_n || (unsigned)c != m->conv_out || (unsigned)h != e->conv_h ||
        (unsigned)w != e->conv_w) {
        *err = fg_model_errorf("GPU engine: cuDNN's convolution output is %dx%dx%dx%d, the "
                               "model's %ux%ux%ux%u",
                               n, c, h, w, e->desc_n, m->conv_out, e->conv_h, e->conv_w);
        return 0;
    }
    if (!DNN(cudnnGetPooling2dForwardOutputDim, e->pool_desc, e->conv_y_desc, &n, &c, &h, &w))
        return 0;
    if ((unsigned)n != e->desc_n || (unsigned)c != m->conv_out || (unsigned)h != e->pool_h ||
        (unsigned)w != e->pool_w) {
        *err = fg_model_errorf("GPU engine: cuDNN's pooled map is %dx%dx%dx%d, the model's "
                               "%ux%ux%ux%u",
                               n, c, h, w, e->desc_n, m->conv_out, e->pool_h, e->pool_w);
        return 0;
    }
    return 1;
}

/* The workspace algo needs for every batch size 1..max_batch (descriptors
 * are set per size: a size for max_batch says nothing about the others),
 * in *size; 0 when the algorithm cannot run one of them. Leaves the
 * descriptors at max_batch. */
static int algo_workspace(struct cudnn_engine *e, cudnnConvolutionFwdAlgo_t algo, size_t *size,
                          char **err)
{
    size_t need = 0, sz;
    unsigned n;

    for (n = 1; n <= e->base.max_batch; n++) {
        if (!set_batch(e, n, err))
            return 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(e->dnn, e->x_desc, e->w_desc, e->conv_desc,
                                                    e->conv_y_desc, algo, &sz) !=
            CUDNN_STATUS_SUCCESS)
            break;
        if (sz > need)
            need = sz;
    }
    if (!set_batch(e, e->base.max_batch, err))
        return 0;
    *size = need;
    return n > e->base.max_batch;
}

/* Chooses the convolution algorithm, once: the first of cuDNN's heuristic
 * ranking (for max_batch) that runs in FP32 without tensor cores, supports
 * every batch size up to max_batch and needs at most WORKSPACE_LIMIT;
 * implicit GEMM (no workspace, supports everything) when none does. */
static int choose_algo(struct cudnn_engine *e, char **err)
{
    cudnnConvolutionFwdAlgoPerf_t *perf;
    int max = 0, got = 0, i;
    size_t ws;

    if (!DNN(cudnnGetConvolutionForwardAlgorithmMaxCount, e->dnn, &max))
        return 0;
    if (max < 1)
        max = 1;
    perf = calloc((size_t)max, sizeof *perf);
    if (!perf) {
        *err = fg_model_errorf("GPU engine: out of memory");
        return 0;
    }
    if (!DNN(cudnnGetConvolutionForwardAlgorithm_v7, e->dnn, e->x_desc, e->w_desc, e->conv_desc,
             e->conv_y_desc, max, &got, perf)) {
        free(perf);
        return 0;
    }
    for (i = 0; i < got; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].mathType == CUDNN_TENSOR_OP_MATH ||
            perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
            continue;
        if (algo_workspace(e, perf[i].algo, &ws, err) && ws <= WORKSPACE_LIMIT) {
            e->algo = perf[i].algo;
            e->ws_size = ws;
            free(perf);
            return 1;
        }
        if (e->desc_n != e->base.max_batch) /* set_batch itself failed: *err is set */
            goto fail;
    }
    if (algo_workspace(e, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &ws, err) &&
        ws <= WORKSPACE_LIMIT) {
        e->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        e->ws_size = ws;
        free(perf);
        return 1;
    }
    if (e->desc_n == e->base.max_batch)
        *err = fg_model_errorf("GPU engine: no convolution algorithm runs every batch of 1..%u "
                               "(cudnnGetConvolutionForwardAlgorithm_v7 offered %d)",
                               e->base.max_batch, got);
fail:
    free(perf);
    return 0;
}

static int dev_alloc(void **p, size_t bytes, const char *what, char **err)
{
    cudaError_t st;

    if (bytes == 0)
        return 1;
    st = cudaMalloc(p, bytes);
    if (st == cudaSuccess)
        return 1;
    *p = NULL;
    (void)cudaGetLastError();
    *err = fg_model_errorf("GPU engine: cudaMalloc(%zu bytes for %s): %s (%s)", bytes, what,
                           cudaGetErrorString(st), cudaGetErrorName(st));
    return 0;
}

static int host_alloc(float **p, size_t bytes, const char *what, char **err)
{
    void *q = NULL;
    cudaError_t st = cudaMallocHost(&q, bytes);

    if (st == cudaSuccess) {
        *p = q;
        return 1;
    }
    (void)cudaGetLastError();
    *err = fg_model_errorf("GPU engine: cudaMallocHost(%zu bytes for %s): %s (%s)", bytes, what,
                           cudaGetErrorString(st), cudaGetErrorName(st));
    return 0;
}

/* Copies count floats of weights to new device memory. */
static int upload(float **d, const float *h, size_t count, const char *what, char **err)
{
    cudaError_t st;

    if (!dev_alloc((void **)d, count * sizeof(float), what, err))
        return 0;
    st = cudaMemcpy(*d, h, count * sizeof(float), cudaMemcpyHostToDevice);
    if (st == cudaSuccess)
        return 1;
    (void)cudaGetLastError();
    *err = fg_model_errorf("GPU engine: cudaMemcpy(%s to the device): %s (%s)", what,
                           cudaGetErrorString(st), cudaGetErrorName(st));
    return 0;
}

static int allocate(struct cudnn_engine *e, char **err)
{
    const struct fg_model *m = e->base.model;
    size_t b = e->base.max_batch, f = sizeof(float);
    size_t kk = (size_t)m->kernel * m->kernel;

    return upload(&e->d_conv_w, m->conv_w, (size_t)m->conv_out * m->in_c * kk,
                  "convolution weights", err) &&
           upload(&e->d_conv_b, m->conv_b, m->conv_out, "convolution bias", err) &&
           upload(&e->d_fc1_w, m->fc1_w, (size_t)m->hidden * e->flat, "dense1 weights", err) &&
           upload(&e->d_fc1_b, m->fc1_b, m->hidden, "dense1 bias", err) &&
           upload(&e->d_fc2_w, m->fc2_w, (size_t)m->classes * m->hidden, "dense2 weights",
                  err) &&
           upload(&e->d_fc2_b, m->fc2_b, m->classes, "dense2 bias", err) &&
           dev_alloc((void **)&e->d_x, b * e->in_size * f, "input", err) &&
           dev_alloc((void **)&e->d_conv_y, b * m->conv_out * e->conv_h * e->conv_w * f,
                     "convolution output", err) &&
           dev_alloc((void **)&e->d_pool_y, b * e->flat * f, "pooled map", err) &&
           dev_alloc((void **)&e->d_fc1_y, b * m->hidden * f, "dense1 output", err) &&
           dev_alloc((void **)&e->d_logits, b * m->classes * f, "logits", err) &&
           dev_alloc((void **)&e->d_prob, b * m->classes * f, "probabilities", err) &&
           dev_alloc(&e->d_ws, e->ws_size, "convolution workspace", err) &&
           dev_alloc(&e->d_blas_ws, e->blas_ws_size, "cuBLAS workspace", err) &&
           host_alloc(&e->h_in, b * e->in_size * f, "input staging", err) &&
           host_alloc(&e->h_out, b * m->classes * f, "output staging", err);
}

/* ---- forward pass and teardown ---------------------------------------- */

static int cudnn_forward(struct fg_engine *base, const float *in, unsigned n, float *out,
                         char **err)
{
    struct cudnn_engine *e = (struct cudnn_engine *)base;
    const struct fg_model *m = base->model;
    const float one = 1.0f, zero = 0.0f, scale = e->input_scale;
    size_t in_bytes = (size_t)n * e->in_size * sizeof(float);
    size_t out_bytes = (size_t)n * m->classes * sizeof(float);
    size_t ws;

    /* The current device is per host thread; this one may not be the
     * creator. */
    if (!CUDA(cudaSetDevice, e->gpu))
        return -1;
    if (n != e->desc_n) {
        if (!set_batch(e, n, err))
            return -1;
        /* Checked for every n at creation; cheap enough to confirm. */
        if (!DNN(cudnnGetConvolutionForwardWorkspaceSize, e->dnn, e->x_desc, e->w_desc,
                 e->conv_desc, e->conv_y_desc, e->algo, &ws)) {
            e->desc_n = 0;
            return -1;
        }
        if (ws > e->ws_size) {
            e->desc_n = 0;
            *err = fg_model_errorf("GPU engine: the convolution algorithm needs %zu bytes of "
                                   "workspace for a batch of %u, more than the %zu allocated",
                                   ws, n, e->ws_size);
            return -1;
        }
    }

    memcpy(e->h_in, in, in_bytes);
    if (!CUDA(cudaMemcpyAsync, e->d_x, e->h_in, in_bytes, cudaMemcpyHostToDevice, e->stream))
        goto fail;

    /* conv: y = input_scale * conv(x, w); then + bias, ReLU in place. */
    if (!DNN(cudnnConvolutionForward, e->dnn, &scale, e->x_desc, e->d_x, e->w_desc, e->d_conv_w,
             e->conv_desc, e->algo, e->d_ws, e->ws_size, &zero, e->conv_y_desc, e->d_conv_y) ||
        !DNN(cudnnAddTensor, e->dnn, &one, e->conv_b_desc, e->d_conv_b, &one, e->conv_y_desc,
             e->d_conv_y) ||
        !DNN(cudnnActivationForward, e->dnn, e->relu, &one, e->conv_y_desc, e->d_conv_y, &zero,
             e->conv_y_desc, e->d_conv_y) ||
        !DNN(cudnnPoolingForward, e->dnn, e->pool_desc, &one, e->conv_y_desc, e->d_conv_y, &zero,
             e->pool_y_desc, e->d_pool_y))
        goto fail;

    /* Dense layers with column-major cuBLAS on row-major data. A row-major
     * r x c matrix is, read column-major, its c x r transpose with leading
     * dimension c. Row-major:  Y[n][h] = sum_k X[n][k] * W[h][k],  Y = X W^T.
     * Read column-major: X is Xc = X^T (k x n, ld k), W is Wc = W^T (k x h,
     * ld k), Y is Yc = Y^T (h x n, ld h), and Y^T = W X^T, so
     *     Yc = Wc^T * Xc:  Sgemm(op(A) = T, op(B) = N, m = h, n = n, k = k,
     *                           A = W (lda k), B = X (ldb k), C = Y (ldc h)).
     * The pooled map, NCHW, is X with k = conv_out * pool_h * pool_w in the
     * model's flatten order c * ph * pw + y * pw + x; Y, n x h row-major, is
     * the NCHW tensor n x h x 1 x 1 that the bias and ReLU take. */
    if (!BLAS(cublasSgemm, e->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m->hidden, (int)n,
              (int)e->flat, &one, e->d_fc1_w, (int)e->flat, e->d_pool_y, (int)e->flat, &zero,
              e->d_fc1_y, (int)m->hidden) ||
        !DNN(cudnnAddTensor, e->dnn, &one, e->fc1_b_desc, e->d_fc1_b, &one, e->fc1_y_desc,
             e->d_fc1_y) ||
        !DNN(cudnnActivationForward, e->dnn, e->relu, &one, e->fc1_y_desc, e->d_fc1_y, &zero,
             e->fc1_y_desc, e->d_fc1_y) ||
        !BLAS(cublasSgemm, e->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m->classes, (int)n,
              (int)m->hidden, &one, e->d_fc2_w, (int)m->hidden, e->d_fc1_y, (int)m->hidden,
              &zero, e->d_logits, (int)m->classes) ||
        !DNN(cudnnAddTensor, e->dnn, &one, e->fc2_b_desc, e->d_fc2_b, &one, e->fc2_y_desc,
             e->d_logits) ||
        /* softmax over C (x 1 x 1) of each image, max subtracted first */
        !DNN(cudnnSoftmaxForward, e->dnn, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE,
             &one, e->fc2_y_desc, e->d_logits, &zero, e->fc2_y_desc, e->d_prob))
        goto fail;

    if (!CUDA(cudaMemcpyAsync, e->h_out, e->d_prob, out_bytes, cudaMemcpyDeviceToHost,
              e->stream) ||
        /* also where errors of the queued work show up */
        !CUDA(cudaStreamSynchronize, e->stream))
        goto fail;
    memcpy(out, e->h_out, out_bytes);
    return 0;

fail:
    /* Nothing queued may still use the staging buffers when the next pass
     * writes them. */
    (void)cudaStreamSynchronize(e->stream);
    (void)cudaGetLastError();
    return -1;
}

static void cudnn_destroy(struct fg_engine *base)
{
    struct cudnn_engine *e = (struct cudnn_engine *)base;
    void *dev[] = {e->d_conv_w, e->d_conv_b, e->d_fc1_w,  e->d_fc1_b,    e->d_fc2_w,
                   e->d_fc2_b,  e->d_x,      e->d_conv_y, e->d_pool_y,   e->d_fc1_y,
                   e->d_logits, e->d_prob,   e->d_ws,     e->d_blas_ws};
    cudnnTensorDescriptor_t tensors[] = {e->x_desc,      e->conv_y_desc, e->conv_b_desc,
                                         e->pool_y_desc, e->fc1_y_desc,  e->fc1_b_desc,
                                         e->fc2_y_desc,  e->fc2_b_desc};
    size_t i;

    /* Statuses are not checked here: there is nobody to tell. */
    if (e->stream_made) {
        (void)cudaSetDevice(e->gpu);
        (void)cudaStreamSynchronize(e->stream);
    }
    /* the handles first: they use the stream and the workspaces */
    if (e->blas)
        (void)cublasDestroy(e->blas);
    if (e->dnn)
        (void)cudnnDestroy(e->dnn);
    for (i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i])
            (void)cudaFree(dev[i]);
    if (e->h_in)
        (void)cudaFreeHost(e->h_in);
    if (e->h_out)
        (void)cudaFreeHost(e->h_out);
    for (i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
        if (tensors[i])
            (void)cudnnDestroyTensorDescriptor(tensors[i]);
    if (e->w_desc)
        (void)cudnnDestroyFilterDescriptor(e->w_desc);
    if (e->conv_desc)
        (void)cudnnDestroyConvolutionDescriptor(e->conv_desc);
    if (e->relu)
        (void)cudnnDestroyActivationDescriptor(e->relu);
    if (e->pool_desc)
        (void)cudnnDestroyPoolingDescriptor(e->pool_desc);
    if (e->stream_made)
        (void)cudaStreamDestroy(e->stream);
    (void)cudaGetLastError();
    free(e);
}

int fg_cudnn_device_count(void)
{
    int n = 0;

    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n > 0 ? n : 0;
}

struct fg_engine *fg_engine_cudnn_new(const struct fg_model *m, unsigned max_batch, char **err)
{
    struct cudnn_engine *e = calloc(1, sizeof *e);
    size_t version = cudnnGetVersion();
    int cc_major = 0;

    if (!e) {
        *err = fg_model_errorf("GPU engine: out of memory");
        return NULL;
    }
    e->base.device = FG_DEVICE_GPU;
    e->base.max_batch = max_batch;
    e->base.model = m;
    e->base.forward = cudnn_forward;
    e->base.destroy = cudnn_destroy;
    e->gpu = 0;

    /* cuDNN 9 numbers versions major * 10000 + ..., cuDNN 8 major * 1000 + ... */
    if (version / (CUDNN_MAJOR >= 9 ? 10000 : 1000) != CUDNN_MAJOR) {
        *err = fg_model_errorf("GPU engine: the cuDNN library is version %zu, the headers "
                               "this was built with are %d.%d",
                               version, CUDNN_MAJOR, CUDNN_MINOR);
        goto fail;
    }
    /* Shapes and descriptors first: host-side only, no device needed. */
    if (!check_shapes(e, m, max_batch, err) || !make_descriptors(e, err) ||
        !check_output_dims(e, err))
        goto fail;

    if (!CUDA(cudaSetDevice, e->gpu) || !CUDA(cudaStreamCreate, &e->stream))
        goto fail;
    e->stream_made = 1;
    if (!DNN(cudnnCreate, &e->dnn) || !DNN(cudnnSetStream, e->dnn, e->stream) ||
        !BLAS(cublasCreate, &e->blas) || !BLAS(cublasSetStream, e->blas, e->stream) ||
        /* alpha and beta are host floats; plain FP32 GEMM, no TF32 */
        !BLAS(cublasSetPointerMode, e->blas, CUBLAS_POINTER_MODE_HOST) ||
        !BLAS(cublasSetMathMode, e->blas, CUBLAS_DEFAULT_MATH))
        goto fail;
    if (!CUDA(cudaDeviceGetAttribute, &cc_major, cudaDevAttrComputeCapabilityMajor, e->gpu))
        goto fail;
    e->blas_ws_size = cc_major >= 9 ? BLAS_WORKSPACE_NEW : BLAS_WORKSPACE_OLD;
    if (!choose_algo(e, err) || !allocate(e, err) ||
        /* after cublasSetStream, which resets the workspace to cuBLAS's own */
        !BLAS(cublasSetWorkspace, e->blas, e->d_blas_ws, e->blas_ws_size))
        goto fail;
    return &e->base;

fail:
    cudnn_destroy(&e->base);
    return NULL;
}
