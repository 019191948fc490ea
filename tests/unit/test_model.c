/* The model: .fgm loading and its errors, the CPU engine against a naive
 * reference, bit-identical results across batch sizes, and the held-out
 * accuracy of the shipped models (models/digits-v*.fgm on
 * tests/data/digits-test.csv, both made by scripts/train-digits.py).
 * FG_SRCDIR names the source tree (default: the current directory). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fg/crc32.h"
#include "fg/model.h"
#include "unit.h"

#define MAX_BATCH 256u
#define HDR_FIXED 16            /* magic, format version, name length */

struct dataset {
    float *pixels;              /* [n][64] raw values 0..16 */
    int *labels;
    unsigned n;
};

static char tmpdir[64];

static const char *srcdir(void)
{
    const char *s = getenv("FG_SRCDIR");
    return s && *s ? s : ".";
}

static void src_path(char *buf, size_t len, const char *rel)
{
    snprintf(buf, len, "%s/%s", srcdir(), rel);
}

/* ---- files ---------------------------------------------------------------- */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long sz;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)sz + 1);
        if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)sz;
    }
    fclose(f);
    return buf;
}

static int spill(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f)
        return -1;
    ok = fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void put_u32(unsigned char *b, uint32_t v)
{
    b[0] = v & 0xFF;
    b[1] = v >> 8 & 0xFF;
    b[2] = v >> 16 & 0xFF;
    b[3] = v >> 24;
}

static void put_f32(unsigned char *b, float f)
{
    uint32_t v;

    memcpy(&v, &f, sizeof(v));
    put_u32(b, v);
}

/* Rewrites the trailing CRC of a model file image. */
static void fix_crc(unsigned char *buf, size_t len)
{
    put_u32(buf + len - 4, fg_crc32(0, buf, len - 4));
}

/* ---- the held-out set ------------------------------------------------------- */

static int parse_row(char *line, float *px, int *label)
{
    char *p = line, *end;

    for (int i = 0; i <= 64; i++) {
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > (i < 64 ? 16 : 9))
            return -1;
        if (i < 64)
            px[i] = (float)v;
        else
            *label = (int)v;
        p = end;
        if (i < 64 && *p++ != ',')
            return -1;
    }
    return *p == '\n' || *p == '\0' ? 0 : -1;
}

static int load_dataset(struct dataset *d)
{
    char path[4096], line[1024];
    unsigned cap = 0;
    FILE *f;

    memset(d, 0, sizeof(*d));
    src_path(path, sizeof(path), "tests/data/digits-test.csv");
    f = fopen(path, "r");
    if (!CHECK_MSG(f != NULL, "cannot open %s", path))
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (d->n == cap) {
            cap = cap ? 2 * cap : 512;
            d->pixels = realloc(d->pixels, (size_t)cap * 64 * sizeof(float));
            d->labels = realloc(d->labels, cap * sizeof(int));
        }
        if (!CHECK_MSG(parse_row(line, d->pixels + (size_t)d->n * 64, &d->labels[d->n]) == 0,
                       "%s: bad row %u", path, d->n + 1))
            break;
        d->n++;
    }
    fclose(f);
    return CHECK(d->n >= 300) ? 0 : -1;
}

/* ---- a naive reference forward pass (double sums) ---------------------------- */

static void naive_forward(const struct fg_model *m, const float *img, float *probs)
{
    unsigned ch = fg_model_conv_h(m), cw = fg_model_conv_w(m);
    unsigned ph = fg_model_pool_h(m), pw = fg_model_pool_w(m), k = m->kernel;
    size_t flat = (size_t)m->conv_out * ph * pw;
    double *conv = calloc((size_t)m->conv_out * ch * cw, sizeof(double));
    double *feat = calloc(flat, sizeof(double)), *hid = calloc(m->hidden, sizeof(double));
    double *z = calloc(m->classes, sizeof(double)), zmax, sum = 0;

    for (unsigned o = 0; o < m->conv_out; o++)
        for (unsigned y = 0; y < ch; y++)
            for (unsigned x = 0; x < cw; x++) {
                double s = m->conv_b[o];
                for (unsigned c = 0; c < m->in_c; c++)
                    for (unsigned ky = 0; ky < k; ky++)
                        for (unsigned kx = 0; kx < k; kx++) {
                            long iy = (long)y + ky - m->pad, ix = (long)x + kx - m->pad;
                            if (iy < 0 || ix < 0 || iy >= m->in_h || ix >= m->in_w)
                                continue;
                            s += (double)m->conv_w[((o * m->in_c + c) * k + ky) * k + kx] *
                                 img[(c * m->in_h + iy) * m->in_w + ix] * m->input_scale;
                        }
                conv[(o * ch + y) * cw + x] = s > 0 ? s : 0;
            }
    for (unsigned o = 0; o < m->conv_out; o++)
        for (unsigned y = 0; y < ph; y++)
            for (unsigned x = 0; x < pw; x++) {
                double mx = -INFINITY;
                for (unsigned dy = 0; dy < m->pool; dy++)
                    for (unsigned dx = 0; dx < m->pool; dx++)
                        mx = fmax(mx, conv[(o * ch + y * m->pool + dy) * cw + x * m->pool + dx]);
                feat[(o * ph + y) * pw + x] = mx;
            }
    for (unsigned h = 0; h < m->hidden; h++) {
        double s = m->fc1_b[h];
        for (size_t t = 0; t < flat; t++)
            s += (double)m->fc1_w[h * flat + t] * feat[t];
        hid[h] = s > 0 ? s : 0;
    }
    for (unsigned c = 0; c < m->classes; c++) {
        double s = m->fc2_b[c];
        for (unsigned h = 0; h < m->hidden; h++)
            s += (double)m->fc2_w[c * m->hidden + h] * hid[h];
        z[c] = s;
    }
    zmax = z[0];
    for (unsigned c = 1; c < m->classes; c++)
        zmax = fmax(zmax, z[c]);
    for (unsigned c = 0; c < m->classes; c++)
        sum += exp(z[c] - zmax);
    for (unsigned c = 0; c < m->classes; c++)
        probs[c] = (float)(exp(z[c] - zmax) / sum);
    free(conv);
    free(feat);
    free(hid);
    free(z);
}

/* ---- engine runs ---------------------------------------------------------------- */

/* Runs all n images in batches of `batch`; returns 0 or -1. */
static int run_batches(struct fg_engine *e, const float *in, size_t in_size, unsigned n,
                       unsigned classes, unsigned batch, float *out)
{
    for (unsigned i = 0; i < n; i += batch) {
        unsigned b = n - i < batch ? n - i : batch;
        char *err = NULL;
        if (!CHECK_MSG(fg_engine_forward(e, in + (size_t)i * in_size, b,
                                         out + (size_t)i * classes, &err) == 0,
                       "forward of %u at %u: %s", b, i, err ? err : "?")) {
            free(err);
            return -1;
        }
    }
    return 0;
}

/* Checks rows sum to 1 and agree with the naive reference; returns the
 * number of rows whose argmax is the label (labels may be NULL). */
static unsigned check_rows(const struct fg_model *m, const float *in, const float *out,
                           unsigned n, const int *labels)
{
    size_t in_size = fg_model_input_size(m);
    unsigned ok = 0, bad_sum = 0, bad_ref = 0;
    float *ref = malloc(m->classes * sizeof(float));

    for (unsigned i = 0; i < n; i++) {
        const float *p = out + (size_t)i * m->classes;
        double sum = 0;
        unsigned best = 0;
        naive_forward(m, in + i * in_size, ref);
        for (unsigned c = 0; c < m->classes; c++) {
            sum += p[c];
            best = p[c] > p[best] ? c : best;
            bad_ref += fabsf(p[c] - ref[c]) > 1e-5f;
        }
        bad_sum += fabs(sum - 1.0) > 1e-5;
        ok += labels && (int)best == labels[i];
    }
    CHECK_MSG(bad_sum == 0, "%s v%u: %u of %u rows do not sum to 1", m->name, m->version,
              bad_sum, n);
    CHECK_MSG(bad_ref == 0, "%s v%u: %u values differ from the reference by more than 1e-5",
              m->name, m->version, bad_ref);
    free(ref);
    return ok;
}

static double seconds(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Microseconds per forward pass of a full batch, over about 0.2 s (after
 * one pass that warms the caches). */
static double time_batch(struct fg_engine *e, const float *in, float *out)
{
    char *err = NULL;
    double start, now;
    int reps = 0;

    if (fg_engine_forward(e, in, MAX_BATCH, out, &err) < 0) {
        free(err);
        return -1;
    }
    start = now = seconds();
    while (now - start < 0.2 && reps < 1000) {
        fg_engine_forward(e, in, MAX_BATCH, out, &err);
        reps++;
        now = seconds();
    }
    return (now - start) * 1e6 / reps;
}

static void test_digits(const struct dataset *d, const char *file, unsigned version,
                        unsigned conv_out, unsigned hidden)
{
    static const unsigned batches[] = { 1, MAX_BATCH, 37 };
    char path[4096], *err = NULL;
    struct fg_model *m;
    struct fg_engine *e;
    float *out[3], *big;
    unsigned n = d->n, ok;

    src_path(path, sizeof(path), file);
    m = fg_model_load(path, &err);
    if (!CHECK_MSG(m != NULL, "%s", err ? err : "?")) {
        free(err);
        return;
    }
    CHECK_STR(m->name, "digits");
    CHECK_UINT(m->version, version);
    CHECK_UINT(m->conv_out, conv_out);
    CHECK_UINT(m->hidden, hidden);
    CHECK_UINT(m->classes, 10);
    CHECK_UINT(fg_model_input_size(m), 64);
    CHECK_UINT(fg_model_pool_h(m), 4);
    e = fg_engine_new(m, FG_DEVICE_CPU, MAX_BATCH, &err);
    if (!CHECK_MSG(e != NULL, "%s", err ? err : "?")) {
        free(err);
        fg_model_free(m);
        return;
    }
    CHECK(fg_engine_device(e) == FG_DEVICE_CPU);
    for (int b = 0; b < 3; b++) {
        out[b] = calloc((size_t)n * m->classes, sizeof(float));
        run_batches(e, d->pixels, 64, n, m->classes, batches[b], out[b]);
    }
    CHECK_MSG(memcmp(out[0], out[1], (size_t)n * m->classes * sizeof(float)) == 0,
              "v%u: batch 1 and batch %u differ", version, MAX_BATCH);
    CHECK_MSG(memcmp(out[0], out[2], (size_t)n * m->classes * sizeof(float)) == 0,
              "v%u: batch 1 and batch 37 differ", version);
    ok = check_rows(m, d->pixels, out[0], n, d->labels);
    printf("%s v%u: held-out accuracy %.4f (%u/%u)\n", m->name, m->version, (double)ok / n, ok,
           n);
    CHECK_MSG(ok >= 0.97 * n, "v%u: accuracy %u/%u below 0.97", version, ok, n);

    big = calloc((size_t)MAX_BATCH * m->classes, sizeof(float));
    printf("%s v%u: CPU forward of a batch of %u: %.1f us\n", m->name, m->version, MAX_BATCH,
           time_batch(e, d->pixels, big));
    free(big);
    for (int b = 0; b < 3; b++)
        free(out[b]);
    fg_engine_free(e);
    fg_model_free(m);
}

/* ---- a synthetic model of other shapes ------------------------------------------ */

struct shape {
    unsigned in_c, in_h, in_w, conv_out, kernel, pad, pool, hidden, classes;
};

/* A complete .fgm image with weights from a fixed LCG; *len set. */
static unsigned char *make_model(const struct shape *s, size_t *len)
{
    unsigned ch = s->in_h + 2 * s->pad - s->kernel + 1, cw = s->in_w + 2 * s->pad - s->kernel + 1;
    size_t flat = (size_t)s->conv_out * (ch / s->pool) * (cw / s->pool);
    size_t nw = (size_t)s->conv_out * s->in_c * s->kernel * s->kernel + s->conv_out +
                s->hidden * flat + s->hidden + (size_t)s->classes * s->hidden + s->classes;
    /* model version 5, the input, then (after input_scale) the layers */
    const uint32_t before[] = { 5, s->in_c, s->in_h, s->in_w };
    const uint32_t after[] = { s->conv_out, s->kernel, s->pad, s->pool, s->hidden, s->classes };
    unsigned char *b;
    size_t off = HDR_FIXED + 5;
    uint32_t x = 12345;

    *len = off + 4 * 11 + 4 * nw + 4;
    b = malloc(*len);
    memcpy(b, "FGMODEL\0", 8);
    put_u32(b + 8, 1);
    put_u32(b + 12, 5);
    memcpy(b + 16, "synth", 5);
    for (int i = 0; i < 4; i++, off += 4)
        put_u32(b + off, before[i]);
    put_f32(b + off, 0.25f);
    off += 4;
    for (int i = 0; i < 6; i++, off += 4)
        put_u32(b + off, after[i]);
    for (size_t i = 0; i < nw; i++, off += 4) {
        x = x * 1664525u + 1013904223u;
        put_f32(b + off, ((float)(x >> 8) / 16777216.0f - 0.5f) * 0.8f);
    }
    fix_crc(b, *len);
    return b;
}

static void test_shapes(void)
{
    static const struct shape shapes[] = {
        { 2, 5, 7, 3, 3, 0, 2, 6, 4 },      /* channels, no pad, odd sides */
        { 3, 9, 6, 5, 5, 2, 3, 17, 3 },     /* 5x5 kernel, pool 3 */
        { 1, 4, 4, 1, 1, 0, 1, 1, 2 },      /* 1x1 everything */
        { 1, 8, 8, 9, 3, 1, 2, 33, 10 },    /* widths not multiples of 8 */
    };
    char path[128], *err = NULL;

    for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
        size_t len, in_size;
        unsigned char *b = make_model(&shapes[t], &len);
        struct fg_model *m;
        struct fg_engine *e1, *e9;
        float *in, *o1, *o9;
        unsigned n = 23;

        snprintf(path, sizeof(path), "%s/synth%zu.fgm", tmpdir, t);
        CHECK(spill(path, b, len) == 0);
        free(b);
        m = fg_model_load(path, &err);
        unlink(path);
        if (!CHECK_MSG(m != NULL, "shape %zu: %s", t, err ? err : "?")) {
            free(err);
            continue;
        }
        in_size = fg_model_input_size(m);
        in = malloc(n * in_size * sizeof(float));
        for (size_t i = 0; i < n * in_size; i++)
            in[i] = (float)((i * 7 + t) % 17);
        o1 = calloc((size_t)n * m->classes, sizeof(float));
        o9 = calloc((size_t)n * m->classes, sizeof(float));
        e1 = fg_engine_new(m, FG_DEVICE_CPU, 1, &err);
        e9 = fg_engine_new(m, FG_DEVICE_CPU, 9, &err);
        if (CHECK(e1 && e9)) {
            run_batches(e1, in, in_size, n, m->classes, 1, o1);
            run_batches(e9, in, in_size, n, m->classes, 9, o9);
            CHECK_MSG(memcmp(o1, o9, (size_t)n * m->classes * sizeof(float)) == 0,
                      "shape %zu: batch 1 and 9 differ", t);
            check_rows(m, in, o1, n, NULL);
        }
        fg_engine_free(e1);
        fg_engine_free(e9);
        free(in);
        free(o1);
        free(o9);
        fg_model_free(m);
    }
}

/* ---- loader errors ---------------------------------------------------------------- */

/* Writes buf to a temporary file, loads it and checks that loading fails
 * with a message holding the path and `reason`. */
static void expect_error(const char *what, const unsigned char *buf, size_t len,
                         const char *reason)
{
    char path[128], *err = NULL;
    struct fg_model *m;

    snprintf(path, sizeof(path), "%s/%s.fgm", tmpdir, what);
    if (!CHECK(spill(path, buf, len) == 0))
        return;
    m = fg_model_load(path, &err);
    unlink(path);
    CHECK_MSG(m == NULL, "%s: loaded", what);
    CHECK_MSG(err && strstr(err, path) && strstr(err, reason),
              "%s: error \"%s\" lacks the path or \"%s\"", what, err ? err : "(none)", reason);
    fg_model_free(m);
    free(err);
}

static void test_load_errors(void)
{
    char path[4096], *err = NULL;
    unsigned char *good, *b;
    size_t len = 0, hdr;

    src_path(path, sizeof(path), "models/digits-v1.fgm");
    good = slurp(path, &len);
    if (!CHECK_MSG(good != NULL && len > 200, "cannot read %s", path))
        return;
    b = malloc(len + 1);
    hdr = HDR_FIXED + good[12];     /* end of the name: model version comes next */

    memcpy(b, good, len);
    expect_error("empty", b, 0, "truncated");
    expect_error("short-header", b, 30, "truncated");
    expect_error("truncated", b, len - 100, "truncated");
    expect_error("no-crc", b, len - 4, "truncated");
    b[len] = 0;
    expect_error("trailing", b, len + 1, "trailing");

    b[0] = 'X';
    expect_error("magic", b, len, "bad magic");
    memcpy(b, "PK\3\4", 4);
    expect_error("zip", b, 4, "bad magic");

    memcpy(b, good, len);
    put_u32(b + 8, 2);
    expect_error("version", b, len, "unsupported format version 2");

    memcpy(b, good, len);
    b[len / 2] ^= 0x10;
    expect_error("flipped", b, len, "CRC mismatch (file says 0x");
    memcpy(b, good, len);
    b[len - 1] ^= 0xFF;
    expect_error("flipped-crc", b, len, "CRC mismatch");

    /* header faults behind a valid CRC: the range checks speak */
    memcpy(b, good, len);
    put_u32(b + hdr + 5 * 4 + 4, 11);       /* kernel 11 > 8 + 2 */
    fix_crc(b, len);
    expect_error("kernel", b, len, "kernel 11 larger than the padded input");
    memcpy(b, good, len);
    put_u32(b + hdr + 5 * 4, 0);            /* conv_out */
    fix_crc(b, len);
    expect_error("conv-out", b, len, "conv_out 0 outside 1..4096");
    memcpy(b, good, len);
    put_u32(b + hdr + 5 * 4 + 12, 5000);    /* pool */
    fix_crc(b, len);
    expect_error("pool", b, len, "pool 5000 outside");
    memcpy(b, good, len);
    put_u32(b + hdr + 5 * 4 + 12, 9);       /* pool 9 > conv side 8 */
    fix_crc(b, len);
    expect_error("pool-big", b, len, "pool 9 larger than the convolution output");
    memcpy(b, good, len);
    b[16] = '/';
    fix_crc(b, len);
    expect_error("name", b, len, "name byte 0");
    memcpy(b, good, len);
    put_u32(b + 12, 64);
    fix_crc(b, len);
    expect_error("name-len", b, len, "name length 64");
    memcpy(b, good, len);
    put_f32(b + hdr + 11 * 4, NAN);              /* conv_w[0] */
    fix_crc(b, len);
    expect_error("nan", b, len, "conv_w[0] is not finite (nan)");
    memcpy(b, good, len);
    put_f32(b + len - 8, INFINITY);              /* the last weight */
    fix_crc(b, len);
    expect_error("inf", b, len, "fc2_b[9] is not finite (inf)");
    memcpy(b, good, len);
    put_f32(b + hdr + 4 * 4, -1.0f);             /* input_scale */
    fix_crc(b, len);
    expect_error("scale", b, len, "input_scale -1 is not a finite positive number");

    /* and the unchanged bytes load */
    snprintf(path, sizeof(path), "%s/good.fgm", tmpdir);
    if (CHECK(spill(path, good, len) == 0)) {
        struct fg_model *m = fg_model_load(path, &err);
        CHECK_MSG(m != NULL, "%s", err ? err : "?");
        fg_model_free(m);
        unlink(path);
    }

    snprintf(path, sizeof(path), "%s/missing.fgm", tmpdir);
    CHECK(fg_model_load(path, &err) == NULL);
    CHECK_MSG(err && strstr(err, path) && strstr(err, "cannot open: No such file"), "got %s",
              err ? err : "(none)");
    free(err);
    err = NULL;
    CHECK(fg_model_load(tmpdir, &err) == NULL);
    CHECK_MSG(err && strstr(err, "not a regular file"), "got %s", err ? err : "(none)");
    free(err);
    free(b);
    free(good);
}

/* ---- engine arguments ------------------------------------------------------------------ */

static void test_engine_args(void)
{
    char path[4096], *err = NULL;
    struct fg_model *m;
    struct fg_engine *e;
    float in[64 * 5] = { 0 }, out[10 * 5];

    src_path(path, sizeof(path), "models/digits-v1.fgm");
    m = fg_model_load(path, &err);
    if (!CHECK_MSG(m != NULL, "%s", err ? err : "?")) {
        free(err);
        return;
    }
    CHECK(fg_engine_new(m, FG_DEVICE_CPU, 0, &err) == NULL);
    CHECK(err && strstr(err, "max batch"));
    free(err);
    err = NULL;
    if (fg_gpu_count() == 0) {
        CHECK(fg_engine_new(m, FG_DEVICE_GPU, 4, &err) == NULL);
        CHECK(err != NULL);
        free(err);
        err = NULL;
    }
    e = fg_engine_new(m, FG_DEVICE_CPU, 4, &err);
    if (CHECK(e != NULL)) {
        int rc = fg_engine_forward(e, in, 0, out, &err);   /* CHECK_INT evaluates twice */
        CHECK_INT(rc, -1);
        CHECK_MSG(err && strstr(err, "batch of 0 outside 1..4"), "got %s", err ? err : "(none)");
        free(err);
        err = NULL;
        rc = fg_engine_forward(e, in, 5, out, &err);
        CHECK_INT(rc, -1);
        CHECK_MSG(err && strstr(err, "batch of 5 outside 1..4"), "got %s", err ? err : "(none)");
        free(err);
        err = NULL;
        rc = fg_engine_forward(e, in, 4, out, &err);
        CHECK_INT(rc, 0);
    }
    fg_engine_free(e);
    fg_model_free(m);
}

static void test_crc32(void)
{
    /* the check value of CRC-32/IEEE, and zlib.crc32(b"") */
    CHECK_UINT(fg_crc32(0, "123456789", 9), 0xCBF43926u);
    CHECK_UINT(fg_crc32(0, "", 0), 0);
    CHECK_UINT(fg_crc32(fg_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

int main(void)
{
    struct dataset d = { 0 };
    const char *t = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/fgmodel-XXXXXX", t && *t && strlen(t) < 40 ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    UNIT_RUN(test_crc32);
    UNIT_RUN(test_load_errors);
    UNIT_RUN(test_engine_args);
    UNIT_RUN(test_shapes);
    if (load_dataset(&d) == 0) {
        unit_test_ = "test_digits_v1";
        test_digits(&d, "models/digits-v1.fgm", 1, 8, 32);
        unit_test_ = "test_digits_v2";
        test_digits(&d, "models/digits-v2.fgm", 2, 16, 64);
        unit_test_ = "main";
    }
    free(d.pixels);
    free(d.labels);
    rmdir(tmpdir);
    return unit_summary();
}
