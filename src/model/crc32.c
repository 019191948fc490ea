/* CRC-32 (IEEE), table-driven, one byte at a time. The table is built on
 * the stack for each call: 256 entries cost far less than reading the file
 * they check, and nothing global needs initialising or locking. */
#include "config.h"

#include "fg/crc32.h"

static void crc32_table(uint32_t t[256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        t[i] = c;
    }
}

uint32_t fg_crc32(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t t[256];

    crc32_table(t);
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
