/* xoshiro256** seeded from the kernel: fast, and good enough that ids do not
 * collide; ids are not secrets. */
#include "config.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "fg/request_id.h"

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void fg_rng_seed(struct fg_rng *r)
{
    if (getrandom(r->s, sizeof(r->s), 0) != (ssize_t)sizeof(r->s)) {
        /* getrandom cannot fail for 32 bytes after boot; keep going anyway */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r->s[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL;
        r->s[1] = (uint64_t)ts.tv_sec ^ (uintptr_t)r;
        r->s[2] = 0x2545f4914f6cdd1dULL;
        r->s[3] = 0xda942042e4dd58b5ULL;
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

uint64_t fg_rng_next(struct fg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void fg_request_id_make(struct fg_rng *r, char out[32])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = fg_rng_next(r), b = fg_rng_next(r);

    for (int i = 0; i < 16; i++) {
        out[i] = hex[(a >> (60 - 4 * i)) & 15];
        out[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
    }
}
