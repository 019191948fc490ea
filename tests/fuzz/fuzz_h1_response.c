/* libFuzzer harness: a backend's HTTP/1.1 responses, parsed as src/proxy.c
 * parses them (llhttp in strict mode, HTTP_RESPONSE), with the header
 * checks of fuzz_h1_request.c; see there for what it covers and what not. */
#define FUZZ_H1_RESPONSE 1
#include "fuzz_h1_request.c"
