/* GeoIP: country, continent and autonomous system of a client address, read
 * from MaxMind DB files (GeoIP2/GeoLite2 Country or City, GeoLite2 ASN) with
 * libmaxminddb.
 *
 * The databases are opened once, memory-mapped (MMDB_MODE_MMAP), and never
 * written after fg_geoip_open() returns: a lookup only reads the mapping and
 * its own stack, so fg_geoip_lookup() may run in any number of threads at
 * once on the same struct fg_geoip without a lock. fg_geoip_close() must
 * not race with lookups (close only once every worker stopped using it). */
#ifndef FG_GEOIP_H
#define FG_GEOIP_H

#include <stdint.h>

struct fg_geo {
    char country[3];            /* ISO 3166-1 alpha-2 of "country", or "" */
    char continent[3];          /* "EU", "NA", ... of "continent", or "" */
    uint32_t asn;               /* autonomous system number, or 0 */
    unsigned found:1;           /* some opened database has an entry for the address */
};

/* Opaque: one or two opened databases. */
struct fg_geoip;

/* Opens <country_db> (country and continent; ASN too where that database's
 * entries have "autonomous_system_number", as in a combined file) and, when
 * <asn_db> is not NULL, an ASN database. On failure returns NULL and, when
 * <err> is not NULL, sets *err to a malloc'd message naming the file and the
 * reason, e.g. "cannot open GeoIP database /x.mmdb: No such file or
 * directory" or "GeoIP database /x is not a MaxMind DB file: ...". */
struct fg_geoip *fg_geoip_open(const char *country_db, const char *asn_db, char **err);
void fg_geoip_close(struct fg_geoip *g);

/* Looks up a binary address: <family> AF_INET with 4 bytes at <addr>, or
 * AF_INET6 with 16 (an IPv4-mapped one, ::ffff:a.b.c.d, is looked up as
 * a.b.c.d). Never fails: whatever is unknown is left "" or 0, and an address
 * that no database holds (or a NULL <g>, or another family) gives an empty
 * answer with found 0. Country is the "country" (where the address is
 * used), never "registered_country". The ASN comes from the ASN database
 * when it has one for the address, else from the country database. */
void fg_geoip_lookup(const struct fg_geoip *g, int family, const unsigned char *addr,
                     struct fg_geo *out);

#endif
