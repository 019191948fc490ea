/* JSON tensors (fg/tensor_json.h). */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fg/tensor_json.h"

/* Fill <why> and return 0 (no items) or -1. */
static int refuse(char *why, size_t whylen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(char *why, size_t whylen, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return rc;
}

static void shape_text(const uint64_t *shape, unsigned ndim, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "[");

    for (unsigned i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%llu", i ? "," : "",
                              (unsigned long long)shape[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "]");
}

static void want_text(const unsigned *dims, unsigned ndims, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "[-1");

    for (unsigned i = 0; i < ndims && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, ",%u", dims[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "]");
}

uint64_t fg_tensor_parse_input(json_t *input, const unsigned *dims, unsigned ndims,
                               struct fg_tensor_spec *spec, char *why, size_t whylen)
{
    json_t *shape = json_object_get(input, "shape");
    json_t *dtype = json_object_get(input, "datatype");
    const char *dt;
    char got[160], want[64];
    size_t n;

    memset(spec, 0, sizeof(*spec));
    if (!json_is_string(dtype))
        return refuse(why, whylen, 0, "\"datatype\" must be a string");
    dt = json_string_value(dtype);
    if (!strcmp(dt, "FP32"))
        spec->dtype = FG_DTYPE_FP32;
    else if (!strcmp(dt, "UINT8"))
        spec->dtype = FG_DTYPE_UINT8;
    else
        return refuse(why, whylen, 0, "datatype %.32s is not supported (FP32 or UINT8)", dt);
    if (!json_is_array(shape))
        return refuse(why, whylen, 0, "\"shape\" must be an array of integers");
    n = json_array_size(shape);
    if (n == 0 || n > FG_TENSOR_MAX_DIMS)
        return refuse(why, whylen, 0, "\"shape\" must have 1..%d dimensions", FG_TENSOR_MAX_DIMS);
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 ||
            json_integer_value(d) > (json_int_t)1 << 32)
            return refuse(why, whylen, 0, "\"shape\"[%zu] must be a non-negative integer", i);
        spec->shape[i] = (uint64_t)json_integer_value(d);
    }
    spec->ndim = (unsigned)n;
    want_text(dims, ndims, want, sizeof(want));
    shape_text(spec->shape, spec->ndim, got, sizeof(got));
    if (spec->ndim != ndims + 1)
        return refuse(why, whylen, 0, "shape %s does not match the model's %s", got, want);
    for (unsigned i = 0; i < ndims; i++)
        if (spec->shape[i + 1] != dims[i])
            return refuse(why, whylen, 0, "shape %s does not match the model's %s", got, want);
    if (spec->shape[0] == 0)
        return refuse(why, whylen, 0, "shape %s has an empty batch", got);
    spec->data = json_object_get(input, "data");
    if (!spec->data)
        return refuse(why, whylen, 0, "\"data\" is missing");
    if (!json_is_array(spec->data))
        return refuse(why, whylen, 0, "\"data\" must be an array");
    return spec->shape[0];
}

/* Depth of nesting along the first elements. */
static unsigned nesting(json_t *a)
{
    unsigned d = 0;

    while (json_is_array(a)) {
        d++;
        if (json_array_size(a) == 0)
            break;
        a = json_array_get(a, 0);
    }
    return d;
}

uint64_t fg_tensor_infer_shape(json_t *data, const unsigned *dims, unsigned ndims,
                               struct fg_tensor_spec *spec, char *why, size_t whylen)
{
    uint64_t item = 1, size;
    unsigned depth;

    memset(spec, 0, sizeof(*spec));
    spec->dtype = FG_DTYPE_FP32;
    spec->data = data;
    for (unsigned i = 0; i < ndims; i++)
        item *= dims[i];
    if (!json_is_array(data) || json_array_size(data) == 0)
        return refuse(why, whylen, 0, "the input must be a non-empty array of numbers");
    size = json_array_size(data);
    depth = nesting(data);
    spec->ndim = 1 + ndims;
    for (unsigned i = 0; i < ndims; i++)
        spec->shape[i + 1] = dims[i];
    if (depth == 1) {                         /* flat: k whole items */
        if (size % item)
            return refuse(why, whylen, 0, "%llu values is not a whole number of %llu-value items",
                       (unsigned long long)size, (unsigned long long)item);
        spec->shape[0] = size / item;
    } else if (depth == ndims && ndims > 1 && size == dims[0] &&
               json_array_size(json_array_get(data, 0)) == dims[1]) {
        /* one nested item without the batch dimension: walk it as [dims] */
        spec->ndim = ndims;
        for (unsigned i = 0; i < ndims; i++)
            spec->shape[i] = dims[i];
        return 1;
    } else {
        spec->shape[0] = size;                /* a batch of items, flat or nested */
    }
    return spec->shape[0];
}

struct walk {
    const struct fg_tensor_spec *spec;
    float *out;
    size_t pos;
    char *why;
    size_t whylen;
};

static int put_number(struct walk *w, json_t *v, size_t index)
{
    char *why = w->why;
    size_t whylen = w->whylen;
    double d;

    if (w->spec->dtype == FG_DTYPE_UINT8) {
        json_int_t i;
        if (!json_is_integer(v))
            return refuse(why, whylen, -1, "data[%zu]: UINT8 values must be integers", index);
        i = json_integer_value(v);
        if (i < 0 || i > 255)
            return refuse(why, whylen, -1, "data[%zu]: %lld is outside UINT8's 0..255", index, (long long)i);
        w->out[w->pos++] = (float)i;
        return 0;
    }
    if (!json_is_number(v))
        return refuse(why, whylen, -1, "data[%zu]: not a number", index);
    d = json_number_value(v);
    if (!(fabs(d) <= FLT_MAX))
        return refuse(why, whylen, -1, "data[%zu]: %g is outside FP32's range", index, d);
    w->out[w->pos++] = (float)d;
    return 0;
}

static int walk(struct walk *w, json_t *a, unsigned level)
{
    const struct fg_tensor_spec *spec = w->spec;
    char *why = w->why;
    size_t whylen = w->whylen;
    size_t size = json_array_size(a);
    uint64_t rest = 1;

    for (unsigned i = level; i < spec->ndim; i++)
        rest *= spec->shape[i];
    if (size && json_is_array(json_array_get(a, 0))) {
        if (level + 1 >= spec->ndim)
            return refuse(why, whylen, -1, "data is nested deeper than the shape");
        if (size != spec->shape[level])
            return refuse(why, whylen, -1, "data has %zu arrays at depth %u where the shape needs %llu", size,
                       level + 1, (unsigned long long)spec->shape[level]);
        for (size_t i = 0; i < size; i++) {
            json_t *e = json_array_get(a, i);
            if (!json_is_array(e))
                return refuse(why, whylen, -1, "data mixes arrays and values at depth %u", level + 2);
            if (walk(w, e, level + 1) < 0)
                return -1;
        }
        return 0;
    }
    if (size != rest)
        return refuse(why, whylen, -1, "data has %zu values at depth %u where the shape needs %llu", size,
                   level + 1, (unsigned long long)rest);
    for (size_t i = 0; i < size; i++)
        if (put_number(w, json_array_get(a, i), w->pos) < 0)
            return -1;
    return 0;
}

int fg_tensor_flatten(const struct fg_tensor_spec *spec, float *out, char *why, size_t whylen)
{
    struct walk w = {spec, out, 0, why, whylen};

    if (!json_is_array(spec->data))
        return refuse(why, whylen, -1, "\"data\" must be an array");
    return walk(&w, spec->data, 0);
}
