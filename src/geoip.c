/* GeoIP lookups over libmaxminddb (fg/geoip.h).
 *
 * Thread safety: an MMDB_s opened with MMDB_MODE_MMAP is only read by
 * MMDB_lookup_sockaddr() and MMDB_get_value() (they walk the mapped search
 * tree and data section; the result and entry live on the caller's stack),
 * and nothing here writes to struct fg_geoip after fg_geoip_open(), so
 * concurrent lookups need no lock. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <maxminddb.h>

#include "fg/log.h"
#include "fg/geoip.h"

struct fg_geoip {
    MMDB_s country;
    MMDB_s asn;
    unsigned has_asn:1;
};

/* Why MMDB_open(<path>) failed with <rc>; <e> is errno right after it. */
static char *open_error(const char *path, int rc, int e)
{
    char ebuf[128];
    struct stat st;

    switch (rc) {
    case MMDB_FILE_OPEN_ERROR:
        return fg_strdupf("cannot open GeoIP database %s: %s", path,
                      e ? strerror_r(e, ebuf, sizeof ebuf) : MMDB_strerror(rc));
    case MMDB_IO_ERROR:
        /* mmap() refuses directories (ENODEV) and empty files (EINVAL):
         * name those plainly rather than by mmap's errno */
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return fg_strdupf("cannot open GeoIP database %s: %s", path,
                          strerror_r(EISDIR, ebuf, sizeof ebuf));
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
            return fg_strdupf("GeoIP database %s is not a MaxMind DB file: the file is empty", path);
        return fg_strdupf("cannot read GeoIP database %s: %s", path,
                      e ? strerror_r(e, ebuf, sizeof ebuf) : MMDB_strerror(rc));
    case MMDB_OUT_OF_MEMORY_ERROR:
        return fg_strdupf("cannot open GeoIP database %s: out of memory", path);
    case MMDB_INVALID_METADATA_ERROR:
        /* no metadata marker: any file that is not an .mmdb at all */
        return fg_strdupf("GeoIP database %s is not a MaxMind DB file: %s", path, MMDB_strerror(rc));
    default:
        /* unknown major version, corrupt tree or data */
        return fg_strdupf("GeoIP database %s cannot be used: %s", path, MMDB_strerror(rc));
    }
}

static int open_one(const char *path, MMDB_s *db, char **err)
{
    int rc, e;

    errno = 0;
    rc = MMDB_open(path, MMDB_MODE_MMAP, db);
    e = errno;
    if (rc == MMDB_SUCCESS)
        return 0;
    if (err)
        *err = open_error(path, rc, e);
    return -1;
}

struct fg_geoip *fg_geoip_open(const char *country_db, const char *asn_db, char **err)
{
    struct fg_geoip *g;

    if (err)
        *err = NULL;
    if (!country_db || !*country_db) {
        if (err)
            *err = fg_strdupf("no GeoIP country database given");
        return NULL;
    }
    if (asn_db && !*asn_db) {
        if (err)
            *err = fg_strdupf("empty path for the GeoIP ASN database");
        return NULL;
    }
    if (!(g = calloc(1, sizeof(*g)))) {
        if (err)
            *err = fg_strdupf("cannot open GeoIP database %s: out of memory", country_db);
        return NULL;
    }
    if (open_one(country_db, &g->country, err) < 0) {
        free(g);
        return NULL;
    }
    if (asn_db) {
        if (open_one(asn_db, &g->asn, err) < 0) {
            MMDB_close(&g->country);
            free(g);
            return NULL;
        }
        g->has_asn = 1;
    }
    return g;
}

void fg_geoip_close(struct fg_geoip *g)
{
    if (!g)
        return;
    MMDB_close(&g->country);
    if (g->has_asn)
        MMDB_close(&g->asn);
    free(g);
}

/* The entry of <sa> in <db>; 0 when the database has none (or is damaged
 * there: a lookup never fails, it just knows nothing). */
static int find(const MMDB_s *db, const struct sockaddr *sa, MMDB_entry_s *entry)
{
    int mmdb_error = MMDB_SUCCESS;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(db, sa, &mmdb_error);

    if (mmdb_error != MMDB_SUCCESS || !r.found_entry)
        return 0;
    *entry = r.entry;
    return 1;
}

/* A two-letter code at <key>/<sub> into <out> (3 bytes); anything else
 * (missing, not a string, not two ASCII letters or digits) leaves it "", as
 * the code may go into headers and logs. */
static void code_at(MMDB_entry_s *entry, const char *key, const char *sub, char *out)
{
    MMDB_entry_data_s d;
    const char *s;

    out[0] = '\0';
    if (MMDB_get_value(entry, &d, key, sub, NULL) != MMDB_SUCCESS || !d.has_data ||
        d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
        return;
    s = d.utf8_string;
    for (int i = 0; i < 2; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return;
    out[0] = s[0];
    out[1] = s[1];
    out[2] = '\0';
}

/* "autonomous_system_number" of <entry>, 0 when missing. The writers store
 * it as uint32; any unsigned type that fits is taken too. */
static uint32_t asn_at(MMDB_entry_s *entry)
{
    MMDB_entry_data_s d;

    if (MMDB_get_value(entry, &d, "autonomous_system_number", NULL) != MMDB_SUCCESS ||
        !d.has_data)
        return 0;
    switch (d.type) {
    case MMDB_DATA_TYPE_UINT16:
        return d.uint16;
    case MMDB_DATA_TYPE_UINT32:
        return d.uint32;
    case MMDB_DATA_TYPE_INT32:
        return d.int32 > 0 ? (uint32_t)d.int32 : 0;
    case MMDB_DATA_TYPE_UINT64:
        return d.uint64 <= UINT32_MAX ? (uint32_t)d.uint64 : 0;
    default:
        return 0;
    }
}

void fg_geoip_lookup(const struct fg_geoip *g, int family, const unsigned char *addr,
                     struct fg_geo *out)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    const struct sockaddr *sa;
    MMDB_entry_s entry;

    memset(out, 0, sizeof(*out));
    if (!g || !addr)
        return;
    /* sockaddrs, not strings: no parsing per request. A mapped IPv6 address
     * is looked up as IPv4, which also serves IPv4-only databases. */
    if (family == AF_INET || (family == AF_INET6 && !memcmp(addr, mapped, 12))) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, family == AF_INET ? addr : addr + 12, 4);
        sa = (const struct sockaddr *)&sin;
    } else if (family == AF_INET6) {
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, addr, 16);
        sa = (const struct sockaddr *)&sin6;
    } else {
        return;
    }
    if (g->has_asn && find(&g->asn, sa, &entry)) {
        out->found = 1;
        out->asn = asn_at(&entry);
    }
    if (find(&g->country, sa, &entry)) {
        out->found = 1;
        code_at(&entry, "country", "iso_code", out->country);
        code_at(&entry, "continent", "code", out->continent);
        if (!out->asn)
            out->asn = asn_at(&entry);
    }
}
