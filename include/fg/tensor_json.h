/* Tensors in the Open Inference Protocol's JSON form: checking a request's
 * input tensor against the model and flattening its data (nested arrays or
 * one flat row-major array) into floats. Every refusal comes with a reason
 * for a 400 answer. */
#ifndef FG_TENSOR_JSON_H
#define FG_TENSOR_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define FG_TENSOR_MAX_DIMS 8

enum fg_dtype {
    FG_DTYPE_FP32 = 0,
    FG_DTYPE_UINT8,
};

struct fg_tensor_spec {
    unsigned ndim;
    uint64_t shape[FG_TENSOR_MAX_DIMS];
    enum fg_dtype dtype;
    json_t *data;                       /* borrowed from the request */
};

/* Parses "shape" and "datatype" of an input object and checks the shape is
 * [N, d1, d2, ...] for the model's item dims <dims> (N >= 1). Returns N, or
 * 0 with <why> filled. */
uint64_t fg_tensor_parse_input(json_t *input, const unsigned *dims, unsigned ndims,
                               struct fg_tensor_spec *spec, char *why, size_t whylen);

/* Infers [N, dims...] for bare data (the generate extension, which sends
 * no shape): a flat array of k * item values, an array of flat items, an
 * array of nested items, or one nested item. Returns N, or 0 with <why>. */
uint64_t fg_tensor_infer_shape(json_t *data, const unsigned *dims, unsigned ndims,
                               struct fg_tensor_spec *spec, char *why, size_t whylen);

/* Copies spec->data into <out> (product(shape) floats) in row-major order,
 * checking the nesting matches the shape and every value is a number (for
 * UINT8: an integer in 0..255). Returns 0, or -1 with <why>. */
int fg_tensor_flatten(const struct fg_tensor_spec *spec, float *out, char *why, size_t whylen);

#endif
