/* Request ids: 128 random bits as 32 lowercase hex characters. Each worker
 * owns a generator, so making an id takes no lock and no syscall. */
#ifndef FG_REQUEST_ID_H
#define FG_REQUEST_ID_H

#include <stdint.h>

struct fg_rng {
    uint64_t s[4];
};

/* Seeds from getrandom(2). */
void fg_rng_seed(struct fg_rng *r);
uint64_t fg_rng_next(struct fg_rng *r);

/* Writes 32 hex characters (no terminator) to <out>. */
void fg_request_id_make(struct fg_rng *r, char out[32]);

#endif
