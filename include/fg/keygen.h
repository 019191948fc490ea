/* API keys as text: making new ones and hashing presented ones. */
#ifndef FG_KEYGEN_H
#define FG_KEYGEN_H

#include <stddef.h>

#define FG_KEY_NAME_MAX 64

/* 1 when <name> is a valid key name: 1..64 of A-Z a-z 0-9 - _ . (names go
 * into logs and headers unquoted). */
int fg_key_name_valid(const char *name);

/* The SHA-256 of data[0..len) as 64 lower-case hex digits. */
void fg_sha256_hex(const char *data, size_t len, char hex[65]);

/* "fleetgate keygen NAME" (argv[0] is "keygen"): prints a new random key
 * ("fgk_" + 43 base64url characters) and its config entry on stdout.
 * Returns the exit status. */
int fg_keygen_main(int argc, char **argv);

#endif
