/* Engine dispatch: picks the implementation for a device and checks the
 * arguments every implementation relies on. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fg/engine-impl.h"

char *fg_model_errorf(const char *fmt, ...)
{
    va_list ap;
    char *m = NULL;

    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    return m;
}

int fg_gpu_built(void)
{
#ifdef HAVE_CUDNN
    return 1;
#else
    return 0;
#endif
}

int fg_gpu_count(void)
{
#ifdef HAVE_CUDNN
    return fg_cudnn_device_count();
#else
    return 0;
#endif
}

struct fg_engine *fg_engine_new(const struct fg_model *m, enum fg_device dev,
                                unsigned max_batch, char **err)
{
    if (max_batch == 0) {
        *err = fg_model_errorf("max batch must be at least 1");
        return NULL;
    }
    if (dev == FG_DEVICE_CPU)
        return fg_engine_cpu_new(m, max_batch, err);
#ifdef HAVE_CUDNN
    if (fg_cudnn_device_count() <= 0) {
        *err = fg_model_errorf("no GPU found (cudaGetDeviceCount found none or no driver)");
        return NULL;
    }
    return fg_engine_cudnn_new(m, max_batch, err);
#else
    *err = fg_model_errorf("this binary was built without CUDA/cuDNN (configure --with-cuda=DIR)");
    return NULL;
#endif
}

int fg_engine_forward(struct fg_engine *e, const float *in, unsigned n, float *out, char **err)
{
    if (n == 0 || n > e->max_batch) {
        *err = fg_model_errorf("batch of %u outside 1..%u", n, e->max_batch);
        return -1;
    }
    return e->forward(e, in, n, out, err);
}

void fg_engine_free(struct fg_engine *e)
{
    if (e)
        e->destroy(e);
}

enum fg_device fg_engine_device(const struct fg_engine *e)
{
    return e->device;
}
