/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320): the checksum that
 * ends an .fgm file, the same value as Python's zlib.crc32(). */
#ifndef FG_CRC32_H
#define FG_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0; fg_crc32(fg_crc32(0, a, n), b, m)
 * equals the CRC of a followed by b. */
uint32_t fg_crc32(uint32_t crc, const void *buf, size_t len);

#endif
