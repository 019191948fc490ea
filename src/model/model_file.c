/* The .fgm model file (docs/model-format.md): reading, validating, freeing.
 *
 * The whole file is read into memory, then checked in this order: magic,
 * format version, the header (every field present, names and dimensions in
 * range), the exact length the header implies, the CRC-32 of everything
 * before the last four bytes, and finally every weight (finite). The first
 * failure is reported as "PATH: reason". */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fg/crc32.h"
#include "fg/engine-impl.h"
#include "fg/model.h"

#define FGM_MAGIC "FGMODEL\0"
#define FGM_MAGIC_LEN 8
#define FGM_FORMAT_VERSION 1u
#define FGM_NAME_MAX 63u
#define FGM_MAX_DIM 4096u
#define FGM_MAX_PAD 4096u
/* At most 16 Mi weights (64 MiB), and at most 16 Mi values in one image's
 * convolution output: the engines size their workspaces from it. */
#define FGM_MAX_WEIGHTS (16u << 20)
#define FGM_MAX_ACTIVATIONS (16u << 20)
/* The largest header: fixed fields, the longest name. */
#define FGM_HEADER_MAX (FGM_MAGIC_LEN + 4 + 4 + FGM_NAME_MAX + 4 * 12)
#define FGM_FILE_MAX (FGM_HEADER_MAX + 4 * (size_t)FGM_MAX_WEIGHTS + 4)
/* Each weight array starts on a 64-byte boundary of the weight block. */
#define FGM_ALIGN_FLOATS 16u

/* What fg_model_load hands out: the public struct and the one block that
 * holds all the weights. */
struct model_alloc {
    struct fg_model pub;
    float *block;
};

struct reader {
    const unsigned char *p;
    size_t len, off;
};

static char *file_error(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *file_error(const char *path, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return fg_model_errorf("%s: %s", path, reason);
}

static void set_err(char **err, char *msg)
{
    if (err)
        *err = msg;
    else
        free(msg);
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static int rd_u32(struct reader *r, uint32_t *v)
{
    if (r->len - r->off < 4)
        return -1;
    *v = le32(r->p + r->off);
    r->off += 4;
    return 0;
}

static int rd_f32(struct reader *r, float *v)
{
    uint32_t u;

    if (rd_u32(r, &u) < 0)
        return -1;
    memcpy(v, &u, sizeof(*v));
    return 0;
}

/* Reads a regular file of at most FGM_FILE_MAX bytes. */
static unsigned char *read_file(const char *path, size_t *len, char **err)
{
    struct stat st;
    unsigned char *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        set_err(err, file_error(path, "cannot open: %s", strerror(errno)));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        set_err(err, file_error(path, "not a regular file"));
        close(fd);
        return NULL;
    }
    if ((uintmax_t)st.st_size > FGM_FILE_MAX) {
        set_err(err, file_error(path, "too large for a model file (%jd bytes, at most %zu)",
                                (intmax_t)st.st_size, (size_t)FGM_FILE_MAX));
        close(fd);
        return NULL;
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        set_err(err, file_error(path, "out of memory"));
        close(fd);
        return NULL;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            set_err(err, file_error(path, "read error: %s", r < 0 ? strerror(errno)
                                                                  : "file shrank while reading"));
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

static int name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* Magic, format version and name. Returns NULL or the reason. */
static char *parse_preamble(struct reader *r, struct fg_model *m, const char *path)
{
    uint32_t ver, nlen;

    if (r->len < FGM_MAGIC_LEN && memcmp(r->p, FGM_MAGIC, r->len) == 0)
        return file_error(path, "truncated (%zu bytes; the magic alone is %d)", r->len,
                          FGM_MAGIC_LEN);
    if (r->len < FGM_MAGIC_LEN || memcmp(r->p, FGM_MAGIC, FGM_MAGIC_LEN) != 0)
        return file_error(path, "bad magic (not an .fgm model file)");
    r->off = FGM_MAGIC_LEN;
    if (rd_u32(r, &ver) < 0)
        return file_error(path, "truncated in the header (%zu bytes)", r->len);
    if (ver != FGM_FORMAT_VERSION)
        return file_error(path, "unsupported format version %u (this build reads version %u)",
                          (unsigned)ver, FGM_FORMAT_VERSION);
    if (rd_u32(r, &nlen) < 0)
        return file_error(path, "truncated in the header (%zu bytes)", r->len);
    if (nlen < 1 || nlen > FGM_NAME_MAX)
        return file_error(path, "name length %u outside 1..%u", (unsigned)nlen, FGM_NAME_MAX);
    if (r->len - r->off < nlen)
        return file_error(path, "truncated in the name (%zu bytes)", r->len);
    for (uint32_t i = 0; i < nlen; i++)
        if (!name_char_ok(r->p[r->off + i]))
            return file_error(path, "name byte %u (0x%02x) is not one of [A-Za-z0-9_.-]",
                              (unsigned)i, r->p[r->off + i]);
    memcpy(m->name, r->p + r->off, nlen);
    m->name[nlen] = '\0';
    r->off += nlen;
    return NULL;
}

/* The fixed fields after the name. Returns NULL or the reason. */
static char *parse_dims(struct reader *r, struct fg_model *m, const char *path)
{
    uint32_t v[10];

    if (rd_u32(r, &v[0]) < 0 || rd_u32(r, &v[1]) < 0 || rd_u32(r, &v[2]) < 0 ||
        rd_u32(r, &v[3]) < 0 || rd_f32(r, &m->input_scale) < 0)
        return file_error(path, "truncated in the header (%zu bytes)", r->len);
    for (int i = 4; i < 10; i++)
        if (rd_u32(r, &v[i]) < 0)
            return file_error(path, "truncated in the header (%zu bytes)", r->len);
    m->version = v[0];
    m->in_c = v[1];
    m->in_h = v[2];
    m->in_w = v[3];
    m->conv_out = v[4];
    m->kernel = v[5];
    m->pad = v[6];
    m->pool = v[7];
    m->hidden = v[8];
    m->classes = v[9];
    return NULL;
}

static char *check_dim(const char *path, const char *what, unsigned v, unsigned lo, unsigned hi)
{
    if (v < lo || v > hi)
        return file_error(path, "%s %u outside %u..%u", what, v, lo, hi);
    return NULL;
}

/* Sizes of the six weight arrays, in file order. */
static void array_sizes(const struct fg_model *m, uint64_t n[6])
{
    uint64_t flat = (uint64_t)m->conv_out * fg_model_pool_h(m) * fg_model_pool_w(m);

    n[0] = (uint64_t)m->conv_out * m->in_c * m->kernel * m->kernel;
    n[1] = m->conv_out;
    n[2] = (uint64_t)m->hidden * flat;
    n[3] = m->hidden;
    n[4] = (uint64_t)m->classes * m->hidden;
    n[5] = m->classes;
}

/* Ranges and the relations between fields. Returns NULL or the reason. */
static char *check_header(const struct fg_model *m, const char *path)
{
    const struct { const char *what; unsigned v, lo, hi; } dims[] = {
        { "model version", m->version, 1, UINT32_MAX },
        { "in_c", m->in_c, 1, FGM_MAX_DIM },
        { "in_h", m->in_h, 1, FGM_MAX_DIM },
        { "in_w", m->in_w, 1, FGM_MAX_DIM },
        { "conv_out", m->conv_out, 1, FGM_MAX_DIM },
        { "kernel", m->kernel, 1, FGM_MAX_DIM },
        { "pad", m->pad, 0, FGM_MAX_PAD },
        { "pool", m->pool, 1, FGM_MAX_DIM },
        { "hidden", m->hidden, 1, FGM_MAX_DIM },
        { "classes", m->classes, 1, FGM_MAX_DIM },
    };
    uint64_t n[6], total = 0, act;
    char *e;

    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++)
        if ((e = check_dim(path, dims[i].what, dims[i].v, dims[i].lo, dims[i].hi)))
            return e;
    if (!isfinite(m->input_scale) || !(m->input_scale > 0))
        return file_error(path, "input_scale %g is not a finite positive number",
                          (double)m->input_scale);
    if (m->kernel > m->in_h + 2 * m->pad || m->kernel > m->in_w + 2 * m->pad)
        return file_error(path, "kernel %u larger than the padded input (%u x %u)", m->kernel,
                          m->in_h + 2 * m->pad, m->in_w + 2 * m->pad);
    if (fg_model_pool_h(m) < 1 || fg_model_pool_w(m) < 1)
        return file_error(path, "pool %u larger than the convolution output (%u x %u)", m->pool,
                          fg_model_conv_h(m), fg_model_conv_w(m));
    act = (uint64_t)m->conv_out * fg_model_conv_h(m) * fg_model_conv_w(m);
    if (act > FGM_MAX_ACTIVATIONS)
        return file_error(path, "convolution output of %ju values per image (at most %u)",
                          (uintmax_t)act, FGM_MAX_ACTIVATIONS);
    array_sizes(m, n);
    for (int i = 0; i < 6; i++)
        total += n[i];
    if (total > FGM_MAX_WEIGHTS)
        return file_error(path, "%ju weights (at most %u)", (uintmax_t)total, FGM_MAX_WEIGHTS);
    return NULL;
}

static char *check_length_crc(const struct reader *r, size_t weights, const char *path)
{
    size_t want = r->off + 4 * weights + 4;
    uint32_t stored, computed;

    if (r->len < want)
        return file_error(path, "truncated (%zu bytes, the header describes %zu)", r->len, want);
    if (r->len > want)
        return file_error(path, "%zu bytes of trailing data (%zu bytes, the header describes %zu)",
                          r->len - want, r->len, want);
    stored = le32(r->p + r->len - 4);
    computed = fg_crc32(0, r->p, r->len - 4);
    if (stored != computed)
        return file_error(path, "CRC mismatch (file says 0x%08x, computed 0x%08x)",
                          (unsigned)stored, (unsigned)computed);
    return NULL;
}

static size_t round_up(size_t n)
{
    return (n + FGM_ALIGN_FLOATS - 1) / FGM_ALIGN_FLOATS * FGM_ALIGN_FLOATS;
}

/* Decodes the six arrays into one aligned block and points the model at
 * them. Returns NULL or the reason; a->block is set either way. */
static char *read_weights(struct reader *r, struct model_alloc *a, const char *path)
{
    static const char *const names[6] = { "conv_w", "conv_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b" };
    struct fg_model *m = &a->pub;
    float **dst[6] = { &m->conv_w, &m->conv_b, &m->fc1_w, &m->fc1_b, &m->fc2_w, &m->fc2_b };
    uint64_t n[6];
    size_t off[6], total = 0;

    array_sizes(m, n);
    for (int i = 0; i < 6; i++) {
        off[i] = total;
        total += round_up((size_t)n[i]);
    }
    a->block = aligned_alloc(FGM_ALIGN_FLOATS * sizeof(float), total * sizeof(float));
    if (!a->block)
        return file_error(path, "out of memory (%zu weights)", total);
    for (int i = 0; i < 6; i++) {
        float *w = a->block + off[i];
        *dst[i] = w;
        for (size_t j = 0; j < n[i]; j++) {
            rd_f32(r, &w[j]);       /* the length was checked */
            if (!isfinite(w[j]))
                return file_error(path, "%s[%zu] is not finite (%g)", names[i], j,
                                  (double)w[j]);
        }
    }
    return NULL;
}

static char *parse(struct reader *r, struct model_alloc *a, const char *path)
{
    uint64_t n[6], total = 0;
    char *e;

    if ((e = parse_preamble(r, &a->pub, path)) || (e = parse_dims(r, &a->pub, path)) ||
        (e = check_header(&a->pub, path)))
        return e;
    array_sizes(&a->pub, n);
    for (int i = 0; i < 6; i++)
        total += n[i];
    if ((e = check_length_crc(r, (size_t)total, path)))
        return e;
    return read_weights(r, a, path);
}

struct fg_model *fg_model_load(const char *path, char **err)
{
    struct reader r = { 0 };
    struct model_alloc *a;
    unsigned char *buf;
    char *e;

    buf = read_file(path, &r.len, err);
    if (!buf)
        return NULL;
    r.p = buf;
    a = calloc(1, sizeof(*a));
    if (!a) {
        free(buf);
        set_err(err, file_error(path, "out of memory"));
        return NULL;
    }
    e = parse(&r, a, path);
    free(buf);
    if (e) {
        set_err(err, e);
        fg_model_free(&a->pub);
        return NULL;
    }
    return &a->pub;
}

void fg_model_free(struct fg_model *m)
{
    struct model_alloc *a = (struct model_alloc *)m;

    if (!a)
        return;
    free(a->block);
    free(a);
}

size_t fg_model_input_size(const struct fg_model *m)
{
    return (size_t)m->in_c * m->in_h * m->in_w;
}

unsigned fg_model_conv_h(const struct fg_model *m)
{
    return m->in_h + 2 * m->pad - m->kernel + 1;
}

unsigned fg_model_conv_w(const struct fg_model *m)
{
    return m->in_w + 2 * m->pad - m->kernel + 1;
}

unsigned fg_model_pool_h(const struct fg_model *m)
{
    return fg_model_conv_h(m) / m->pool;
}

unsigned fg_model_pool_w(const struct fg_model *m)
{
    return fg_model_conv_w(m) / m->pool;
}
