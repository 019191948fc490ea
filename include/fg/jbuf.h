/* A growable text buffer for building JSON and Prometheus responses. Once
 * an allocation fails the buffer stays "failed" and further appends are
 * ignored, so callers check once at the end. */
#ifndef FG_JBUF_H
#define FG_JBUF_H

#include <stddef.h>
#include <stdint.h>

struct fg_jbuf {
    char *p;
    size_t len, cap;
    int failed;
};

void fg_jbuf_init(struct fg_jbuf *b, size_t hint);
void fg_jbuf_free(struct fg_jbuf *b);
void fg_jbuf_put(struct fg_jbuf *b, const char *s, size_t len);
void fg_jbuf_puts(struct fg_jbuf *b, const char *s);
void fg_jbuf_printf(struct fg_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal, quotes included. */
void fg_jbuf_json_string(struct fg_jbuf *b, const char *s);
/* A float that reads back as the same float32 ("%.9g"). */
void fg_jbuf_float(struct fg_jbuf *b, float v);
void fg_jbuf_u64(struct fg_jbuf *b, uint64_t v);

#endif
