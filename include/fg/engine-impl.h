/* What an engine implementation provides (engine_cpu.c, engine_cudnn.c).
 * Each embeds struct fg_engine as its first member; src/model/engine.c
 * dispatches to it and checks arguments first. */
#ifndef FG_ENGINE_IMPL_H
#define FG_ENGINE_IMPL_H

#include "fg/model.h"

struct fg_engine {
    enum fg_device device;
    unsigned max_batch;
    const struct fg_model *model;
    /* n is within 1..max_batch here */
    int (*forward)(struct fg_engine *e, const float *in, unsigned n, float *out, char **err);
    void (*destroy)(struct fg_engine *e);
};

struct fg_engine *fg_engine_cpu_new(const struct fg_model *m, unsigned max_batch, char **err);

#ifdef HAVE_CUDNN
struct fg_engine *fg_engine_cudnn_new(const struct fg_model *m, unsigned max_batch, char **err);
/* cudaGetDeviceCount(), 0 on any error (no driver, no device) */
int fg_cudnn_device_count(void);
#endif

/* A malloc'd printf-style message for *err. */
char *fg_model_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
