/* The GPU engine (cuDNN + cuBLAS) against the CPU engine on the held-out
 * set, for every shipped model: each probability within 1e-4, the same
 * argmax, and the GPU's batches of 1 within 1e-5 of its batches of 256.
 * Exits 77 (SKIP for automake's test driver) when the binary was built
 * without cuDNN or when there is no usable GPU (docs/gpu.md). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg/model.h"
#include "unit.h"

#define BATCH 256
#define TOL_CPU 1e-4   /* GPU vs CPU, per probability */
#define TOL_BATCH 1e-5 /* GPU batch 1 vs batch 256 */

static const char *srcdir;

struct heldout {
    float *px;     /* n * in_size raw pixel values */
    int *label;    /* n */
    unsigned n;
};

/* Reads tests/data/digits-test.csv: per line in_size integer pixels then the
 * label, separated by commas and/or blanks; '#' lines and empty lines are
 * skipped. Returns 0, or -1 after reporting the failure. */
static int read_heldout(const char *path, size_t in_size, unsigned classes, struct heldout *h)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    unsigned lineno = 0, cap = 0;

    memset(h, 0, sizeof *h);
    if (!CHECK_MSG(f != NULL, "cannot open %s", path))
        return -1;
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        size_t i;
        long v;

        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
            continue;
        if (h->n == cap) {
            unsigned ncap = cap ? cap * 2 : 1024;
            float *px = realloc(h->px, (size_t)ncap * in_size * sizeof *px);
            int *lb = px ? realloc(h->label, (size_t)ncap * sizeof *lb) : NULL;

            if (px)
                h->px = px;
            if (!px || !lb) {
                CHECK_MSG(0, "out of memory reading %s", path);
                goto fail;
            }
            h->label = lb;
            cap = ncap;
        }
        for (i = 0; i <= in_size; i++) {
            while (*p == ',' || *p == ' ' || *p == '\t')
                p++;
            v = strtol(p, &end, 10);
            if (end == p) {
                CHECK_MSG(0, "%s:%u: expected %zu values then the label", path, lineno, in_size);
                goto fail;
            }
            p = end;
            if (i < in_size) {
                h->px[(size_t)h->n * in_size + i] = (float)v;
            } else if (v >= 0 && (unsigned long)v < classes) {
                h->label[h->n] = (int)v;
            } else {
                CHECK_MSG(0, "%s:%u: label %ld outside 0..%u", path, lineno, v, classes - 1);
                goto fail;
            }
        }
        h->n++;
    }
    fclose(f);
    return CHECK_MSG(h->n > 0, "%s: no rows", path) ? 0 : -1;

fail:
    fclose(f);
    return -1;
}

/* max |a[i] - b[i]| over n values; a NaN on either side counts as infinite */
static double max_diff(const float *a, const float *b, size_t n)
{
    double d, max = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        d = fabs((double)a[i] - b[i]);
        if (isnan(d))
            return INFINITY;
        if (d > max)
            max = d;
    }
    return max;
}

static unsigned argmax(const float *p, unsigned k)
{
    unsigned i, best = 0;

    for (i = 1; i < k; i++)
        if (p[i] > p[best])
            best = i;
    return best;
}

/* Runs all images through e in batches of batch (the last one partial). */
static int run_all(struct fg_engine *e, const struct heldout *h, size_t in_size, unsigned classes,
                   unsigned batch, float *out, const char *what)
{
    unsigned i, n;
    char *err = NULL;

    for (i = 0; i < h->n; i += n) {
        n = h->n - i < batch ? h->n - i : batch;
        if (fg_engine_forward(e, h->px + (size_t)i * in_size, n, out + (size_t)i * classes,
                              &err) != 0) {
            CHECK_MSG(0, "%s: forward of images %u..%u: %s", what, i, i + n - 1,
                      err ? err : "?");
            free(err);
            return -1;
        }
    }
    return 0;
}

static void compare_model(const char *file)
{
    char path[4096];
    char *err = NULL;
    struct fg_model *m;
    struct fg_engine *cpu = NULL, *gpu = NULL;
    struct heldout h = {0};
    float *p_cpu = NULL, *p_gpu = NULL, *p_gpu1 = NULL, *again = NULL;
    size_t in_size, i, total;
    unsigned k, j, argmax_diff = 0, correct = 0, bad_sums = 0;
    double max_cpu, max_batch;

    snprintf(path, sizeof path, "%s/%s", srcdir, file);
    m = fg_model_load(path, &err);
    if (!CHECK_MSG(m != NULL, "%s", err ? err : path)) {
        free(err);
        return;
    }
    in_size = fg_model_input_size(m);
    k = m->classes;
    snprintf(path, sizeof path, "%s/tests/data/digits-test.csv", srcdir);
    if (read_heldout(path, in_size, k, &h) < 0)
        goto out;

    cpu = fg_engine_new(m, FG_DEVICE_CPU, BATCH, &err);
    if (!CHECK_MSG(cpu != NULL, "CPU engine: %s", err ? err : "?"))
        goto out;
    gpu = fg_engine_new(m, FG_DEVICE_GPU, BATCH, &err);
    if (!CHECK_MSG(gpu != NULL, "GPU engine: %s", err ? err : "?"))
        goto out;
    CHECK_INT(fg_engine_device(gpu), FG_DEVICE_GPU);

    total = (size_t)h.n * k;
    p_cpu = malloc(total * sizeof(float));
    p_gpu = malloc(total * sizeof(float));
    p_gpu1 = malloc(total * sizeof(float));
    again = malloc((size_t)BATCH * k * sizeof(float));
    if (!CHECK(p_cpu && p_gpu && p_gpu1 && again))
        goto out;

    /* Batches of 256, then every image alone on the same engine (the
     * descriptors switch to n = 1), then the first batch again (back). */
    if (run_all(cpu, &h, in_size, k, BATCH, p_cpu, "CPU") < 0 ||
        run_all(gpu, &h, in_size, k, BATCH, p_gpu, "GPU") < 0 ||
        run_all(gpu, &h, in_size, k, 1, p_gpu1, "GPU, batch 1") < 0)
        goto out;
    j = h.n < BATCH ? h.n : BATCH;
    if (!CHECK_MSG(fg_engine_forward(gpu, h.px, j, again, &err) == 0, "GPU: %s",
                   err ? err : "?"))
        goto out;
    max_cpu = max_diff(p_cpu, p_gpu, total);
    max_batch = fmax(max_diff(p_gpu1, p_gpu, total), max_diff(again, p_gpu, (size_t)j * k));
    for (j = 0; j < h.n; j++) {
        const float *g = p_gpu + (size_t)j * k;
        unsigned a = argmax(g, k);
        double sum = 0;

        if (a != argmax(p_cpu + (size_t)j * k, k))
            argmax_diff++;
        if ((int)a == h.label[j])
            correct++;
        for (i = 0; i < k; i++)
            sum += g[i];
        if (!(fabs(sum - 1.0) <= 1e-4))
            bad_sums++;
    }

    printf("%s: %u held-out images x %u classes: max |CPU - GPU| = %.3g, "
           "max |GPU batch 1 - GPU batch %u| = %.3g\n",
           file, h.n, k, max_cpu, BATCH, max_batch);
    printf("%s: GPU held-out accuracy %.2f%% (%u/%u)\n", file, 100.0 * correct / h.n, correct,
           h.n);
    CHECK_MSG(max_cpu <= TOL_CPU, "%s: max |CPU - GPU| = %.3g > %g", file, max_cpu, TOL_CPU);
    CHECK_MSG(argmax_diff == 0, "%s: CPU and GPU disagree on the class of %u images", file,
              argmax_diff);
    CHECK_MSG(max_batch <= TOL_BATCH, "%s: max |GPU batch 1 - batch %u| = %.3g > %g", file,
              BATCH, max_batch, TOL_BATCH);
    CHECK_MSG(bad_sums == 0, "%s: %u GPU rows do not sum to 1", file, bad_sums);

    /* The dispatcher's batch bounds hold for the GPU engine too. */
    CHECK(fg_engine_forward(gpu, h.px, BATCH + 1, again, &err) == -1 && err != NULL);
    free(err);
    err = NULL;

out:
    free(err);
    free(again);
    free(p_gpu1);
    free(p_gpu);
    free(p_cpu);
    fg_engine_free(gpu);
    fg_engine_free(cpu);
    free(h.px);
    free(h.label);
    fg_model_free(m);
}

static void test_digits_v1(void)
{
    compare_model("models/digits-v1.fgm");
}

static void test_digits_v2(void)
{
    compare_model("models/digits-v2.fgm");
}

int main(void)
{
    int built = fg_gpu_built();

    if (!built || fg_gpu_count() <= 0) {
        printf("SKIP: no GPU (built with cuDNN: %s)\n", built ? "yes" : "no");
        return 77;
    }
    srcdir = getenv("FG_SRCDIR");
    if (!srcdir || !*srcdir)
        srcdir = ".";
    UNIT_RUN(test_digits_v1);
    UNIT_RUN(test_digits_v2);
    return unit_summary();
}
