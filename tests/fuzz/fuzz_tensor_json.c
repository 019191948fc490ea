/* libFuzzer harness: the model server's tensor JSON (src/serve/tensor_json.c),
 * as src/serve/kserve.c uses it. The first input byte picks the model's
 * item dims (a small 2-d or 3-d image, so that inputs stay small); the rest
 * is a request body, parsed with jansson as the server does. An object with
 * "inputs" goes through fg_tensor_parse_input() (the V2 infer request),
 * one with "data" through fg_tensor_infer_shape() (the generate extension);
 * then, when the shape is accepted and small enough, fg_tensor_flatten()
 * copies the data into a buffer of exactly the size the shape implies. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg/tensor_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FLOATS (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned dim_sets[4][3] = {{2, 2, 0}, {3, 2, 0}, {1, 2, 2}, {28, 28, 0}};
    const unsigned *dims;
    unsigned ndims;
    struct fg_tensor_spec spec;
    char why[256];
    json_error_t je;
    json_t *root, *in;
    uint64_t n, item = 1, total;
    float *out;

    if (size < 1)
        return 0;
    dims = dim_sets[data[0] & 3];
    ndims = dims[2] ? 3 : 2;
    root = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return 0;
    memset(&spec, 0, sizeof spec);
    why[0] = 0;
    if ((in = json_object_get(root, "inputs")) && json_is_array(in))
        n = fg_tensor_parse_input(json_array_get(in, 0), dims, ndims, &spec, why, sizeof why);
    else if ((in = json_object_get(root, "data")))
        n = fg_tensor_infer_shape(in, dims, ndims, &spec, why, sizeof why);
    else if (json_is_array(root))
        n = fg_tensor_infer_shape(root, dims, ndims, &spec, why, sizeof why);
    else
        n = fg_tensor_parse_input(root, dims, ndims, &spec, why, sizeof why);
    if (!n) {
        if (!why[0])
            abort();                    /* a refusal must say why */
        goto out;
    }
    /* the shape is [N, dims...], or [dims...] for one nested item that
     * came without its batch dimension (the generate extension) */
    if (spec.ndim == ndims + 1 ? spec.shape[0] != n : spec.ndim != ndims || n != 1)
        abort();
    for (unsigned i = 0; i < ndims; i++) {
        if (spec.shape[spec.ndim - ndims + i] != dims[i])
            abort();
        item *= dims[i];
    }
    if (n > MAX_FLOATS / item)
        goto out;                       /* the server caps this too (max_queue) */
    total = n * item;
    if ((out = malloc(total * sizeof *out))) {
        (void)fg_tensor_flatten(&spec, out, why, sizeof why);
        free(out);
    }
out:
    json_decref(root);
    return 0;
}
