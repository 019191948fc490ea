/* libFuzzer harness: a real worker fed one client connection's raw bytes,
 * as they come (mostly the HTTP/1.1 front, src/h1_front.c); see
 * fuzz_h2_frames.c, which this file includes. */
#define FUZZ_FRONT_RAW 1
#include "fuzz_h2_frames.c"
