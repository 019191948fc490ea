/* "fleetgate keygen NAME": a new random API key (fg/keygen.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "fg/keygen.h"

#define KEY_BYTES 32            /* 256 bits from the OpenSSL CSPRNG */

/* base64url without padding (RFC 4648 section 5): safe in headers and
 * shells without quoting. */
static size_t base64url(const unsigned char *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0, i = 0;

    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
        out[n++] = abc[v >> 6 & 63];
        out[n++] = abc[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
        out[n++] = abc[v >> 6 & 63];
    }
    out[n] = '\0';
    return n;
}

int fg_key_name_valid(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > FG_KEY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return 0;
    }
    return 1;
}

int fg_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fg_sha256_parse(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        int hi = fg_hex_digit(hex[2 * i]), lo = fg_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

void fg_sha256_hex(const char *data, size_t len, char hex[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)data, len, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int fg_keygen_main(int argc, char **argv)
{
    unsigned char raw[KEY_BYTES];
    char key[4 + (KEY_BYTES + 2) / 3 * 4 + 1], hex[65];

    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: fleetgate keygen NAME\n"
                        "  prints a new API key once, then its entry for \"keys\" (the key's SHA-256)\n");
        return 2;
    }
    if (!fg_key_name_valid(argv[1])) {
        fprintf(stderr, "fleetgate keygen: invalid name \"%s\": 1 to %d of A-Z a-z 0-9 - _ .\n",
                argv[1], FG_KEY_NAME_MAX);
        return 2;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        fprintf(stderr, "fleetgate keygen: the random generator failed\n");
        return 1;
    }
    memcpy(key, "fgk_", 4);
    base64url(raw, sizeof(raw), key + 4);
    fg_sha256_hex(key, strlen(key), hex);
    printf("%s\n{\"name\": \"%s\", \"sha256\": \"%s\"}\n", key, argv[1], hex);
    fprintf(stderr, "fleetgate keygen: the first line is the key; it is shown only this once "
                    "(the gateway keeps only its SHA-256, the second line's entry)\n");
    return ferror(stdout) || fflush(stdout) != 0;
}
