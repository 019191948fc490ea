/* The reference backend's model: a small convolutional classifier for 8x8
 * digit images, loaded from an .fgm file (docs/model-format.md), and the
 * engines that run its forward pass on the CPU (plain C) or on a GPU
 * (cuDNN + cuBLAS, when configure found them).
 *
 * Network: conv kxk (pad, stride 1) -> bias -> ReLU -> max-pool pxp (stride p)
 *          -> dense(hidden) -> ReLU -> dense(classes) -> softmax.
 * Tensors are NCHW, row-major; the flattened pooled map is indexed
 * c * (ph * pw) + y * pw + x. */
#ifndef FG_MODEL_H
#define FG_MODEL_H

#include <stddef.h>

struct fg_model {
    char name[64];              /* e.g. "digits" */
    unsigned version;           /* e.g. 1 or 2 */
    unsigned in_c, in_h, in_w;  /* input image: 1 x 8 x 8 */
    float input_scale;          /* raw pixel values (0..16) are multiplied by this */
    unsigned conv_out;          /* convolution output channels */
    unsigned kernel;            /* convolution kernel side (3) */
    unsigned pad;               /* zero padding on each side (1: "same") */
    unsigned pool;              /* max-pool window and stride (2) */
    unsigned hidden;            /* first dense layer width */
    unsigned classes;           /* output classes (10) */
    float *conv_w;              /* [conv_out][in_c][kernel][kernel] */
    float *conv_b;              /* [conv_out] */
    float *fc1_w;               /* [hidden][conv_out * pool_h * pool_w] */
    float *fc1_b;               /* [hidden] */
    float *fc2_w;               /* [classes][hidden] */
    float *fc2_b;               /* [classes] */
};

/* Loads and validates an .fgm file. Returns NULL with *err set to a
 * malloc'd message naming the file and the reason. */
struct fg_model *fg_model_load(const char *path, char **err);
void fg_model_free(struct fg_model *m);

/* Elements of one input image (in_c * in_h * in_w). */
size_t fg_model_input_size(const struct fg_model *m);
/* Side lengths of the convolution output and of the pooled map. */
unsigned fg_model_conv_h(const struct fg_model *m);
unsigned fg_model_conv_w(const struct fg_model *m);
unsigned fg_model_pool_h(const struct fg_model *m);
unsigned fg_model_pool_w(const struct fg_model *m);

enum fg_device {
    FG_DEVICE_CPU = 0,
    FG_DEVICE_GPU,
};

/* An engine runs the forward pass for batches of 1..max_batch images. All
 * its memory (host workspaces, device buffers) is allocated at creation; a
 * forward pass allocates nothing. One engine is used by one thread at a
 * time; make one per thread. The model must outlive the engine. */
struct fg_engine;

/* Returns NULL with *err (malloc'd) when the device cannot be used: no GPU,
 * or a binary built without CUDA/cuDNN. */
struct fg_engine *fg_engine_new(const struct fg_model *m, enum fg_device dev,
                                unsigned max_batch, char **err);
/* in: n * fg_model_input_size() raw pixel values (input_scale is applied
 * here); out: n * classes probabilities (each row sums to 1). Returns 0, or
 * -1 with *err (malloc'd) on a device error or n outside 1..max_batch. */
int fg_engine_forward(struct fg_engine *e, const float *in, unsigned n, float *out,
                      char **err);
void fg_engine_free(struct fg_engine *e);
enum fg_device fg_engine_device(const struct fg_engine *e);

/* 1 when this binary was built with the cuDNN path. */
int fg_gpu_built(void);
/* Number of usable GPUs (cudaGetDeviceCount); 0 when there is none, when
 * the driver is missing, or when built without CUDA. */
int fg_gpu_count(void);

#endif
