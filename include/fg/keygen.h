/* API keys as text: making new ones and hashing presented ones. */
#ifndef FG_KEYGEN_H
#define FG_KEYGEN_H

#include <stddef.h>

#define FG_KEY_NAME_MAX 64

/* 1 when <name> is a valid key name: 1..64 of A-Z a-z 0-9 - _ . (names go
 * into logs and headers unquoted). */
int fg_key_name_valid(const char *name);

/* The value of hex digit <c> (either case), or -1. */
int fg_hex_digit(char c);

/* <hex>, exactly 64 hex digits, into the 32 bytes of a SHA-256. 0, or -1
 * when it is anything else. */
int fg_sha256_parse(const char *hex, unsigned char out[32]);

/* The SHA-256 of data[0..len) as 64 lower-case hex digits. */
void fg_sha256_hex(const char *data, size_t len, char hex[65]);

/* "fleetgate keygen NAME" (argv[0] is "keygen"): prints a new random key
 * ("fgk_" + 43 base64url characters) and its config entry on stdout.
 * Returns the exit status. */
int fg_keygen_main(int argc, char **argv);

#endif
