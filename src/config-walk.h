/* The configuration loader's machinery, shared by the files that describe
 * parts of the schema (config.c, config_access.c): the state of one load,
 * field tables and walk(), and error messages that name the file, the line,
 * the column and the JSON path. Internal to the loader; see config_walk.c. */
#ifndef FG_CONFIG_WALK_H
#define FG_CONFIG_WALK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fg/config.h"
#include "fg/json_pos.h"

/* State of one load. */
struct ctx {
    const char *name;           /* file name used in messages */
    const char *text;           /* the JSON text, for positions */
    size_t len;
    char *dir;                  /* absolute directory of <name>, computed on first use */
    struct fg_config *cfg;
    const struct fg_dns_answers *dns_known;  /* what "discovery": "dns" names stand for */
    struct fg_json_seg path[FG_JSON_PATH_MAX]; /* where we are, for messages */
    unsigned depth;
    char **err;
};

enum { AT_VALUE = 0, AT_KEY = 1 };

enum ftype {
    FT_UINT,                    /* unsigned, integer in min..max */
    FT_INT,                     /* int, integer in min..max */
    FT_U64,                     /* uint64_t, integer in min..max */
    FT_ENUM,                    /* int-sized enum; one of aux's names, stored as its index */
    FT_ADDR,                    /* struct fg_addr, from "host:port" */
    FT_FILE,                    /* char *, a readable file, made absolute */
    FT_OBJ,                     /* nested struct at offset, described by table aux */
    FT_FN,                      /* anything else: handler fn */
};

#define F_REQUIRED 1u

struct field {
    const char *key;
    enum ftype type;
    size_t offset;              /* destination within the struct being filled */
    int64_t min, max;           /* FT_UINT, FT_INT, FT_U64 */
    int64_t def;                /* default when absent: number, or FT_ENUM index */
    unsigned flags;
    const void *aux;            /* FT_ENUM: NULL-terminated names; FT_OBJ: its table */
    int (*fn)(struct ctx *c, json_t *v, void *base);
};

/* offsetof(T, m), refusing to compile unless T.m has type <want>: a table
 * entry whose FT_ type disagrees with the struct would otherwise silently
 * write the wrong width. */
#define OFF(T, m, want) \
    (offsetof(T, m) + 0 * sizeof(char[_Generic(((T *)0)->m, want: 1, default: -1)]))

#define UINT(T, m, lo, hi, d) \
    {.key = #m, .type = FT_UINT, .offset = OFF(T, m, unsigned), .min = lo, .max = hi, .def = d}
#define INT(T, m, lo, hi, d) \
    {.key = #m, .type = FT_INT, .offset = OFF(T, m, int), .min = lo, .max = hi, .def = d}
#define U64(T, m, lo, hi, d) \
    {.key = #m, .type = FT_U64, .offset = OFF(T, m, uint64_t), .min = lo, .max = hi, .def = d}

#define TIMEOUT_MAX 86400000    /* one day: anything longer is a typo */
#define HEADER_BYTES_MIN 1024
#define HEADER_BYTES_MAX 1048576


/* The loader's own names, kept short in its files; prefixed as symbols. */
#define vformat fg_cw_vformat
#define format fg_cw_format
#define fail fg_cw_fail
#define push_key fg_cw_push_key
#define push_index fg_cw_push_index
#define pop fg_cw_pop
#define set_defaults fg_cw_set_defaults
#define fail_enum fg_cw_fail_enum
#define nonempty_string fg_cw_nonempty_string
#define set_field fg_cw_set_field
#define walk fg_cw_walk
#define only_keys fg_cw_only_keys
#define oom fg_cw_oom
#define copy_string fg_cw_copy_string
#define is_token fg_cw_is_token
#define set_kv fg_cw_set_kv
#define parse_cidr fg_cw_parse_cidr
#define set_file fg_cw_set_file
#define parse_error fg_cw_parse_error
#define load_text fg_cw_load_text
#define abs_path fg_cw_abs_path

char *vformat(const char *fmt, va_list ap);
char *format(const char *fmt, ...) __attribute__((__format__(printf, 1, 2)));

/* Stores "NAME:LINE:COL: PATH: reason" in *c->err, pointing at the value
 * (or, with AT_KEY, at the key) of the current path. Always returns -1, so
 * that handlers can "return fail(...)". Out of memory, *err stays NULL. */
int fail(struct ctx *c, int at, const char *fmt, ...) __attribute__((__format__(printf, 3, 4)));
int oom(struct ctx *c);
/* "expected "a" or "b"" from a NULL-terminated name list. */
int fail_enum(struct ctx *c, const char *const *names);

void push_key(struct ctx *c, const char *key);
void push_index(struct ctx *c, size_t index);
void pop(struct ctx *c);

void set_defaults(const struct field *tab, void *base);
int set_field(struct ctx *c, const struct field *f, json_t *v, void *base);
/* Applies table <tab> to JSON object <obj>, filling the struct at <base>. */
int walk(struct ctx *c, json_t *obj, const struct field *tab, void *base);
/* Fails, at the key, on the first key of <obj> not in <keys> (NULL-terminated). */
int only_keys(struct ctx *c, json_t *obj, const char *const *keys);

const char *nonempty_string(json_t *v);
int copy_string(struct ctx *c, json_t *v, char **dst, size_t *len);
/* An RFC 9110 token (header names, methods). */
int is_token(const char *s);
/* {"name": "value", ...} into an array; header names (headers != 0) must be
 * tokens and are folded to lower case. */
int set_kv(struct ctx *c, json_t *v, struct fg_match_kv **out, unsigned *n, int headers);
/* "10.0.0.0/8", "::1/128" or one address; host bits must be 0. 0 or -1. */
int parse_cidr(const char *s, struct fg_cidr *out);
/* <s> made absolute relative to the config's directory (malloc'd; NULL out
 * of memory or without a current directory). */
char *abs_path(struct ctx *c, const char *s);
/* A readable regular file, made absolute relative to the config's directory. */
int set_file(struct ctx *c, json_t *v, char **dst);
/* jansson's own error (syntax, duplicate key), in the loader's format. */
void parse_error(struct ctx *c, const json_error_t *je);
/* Reads a whole file into a malloc'd buffer. -1 with *err "PATH: cannot ...". */
int load_text(const char *path, char **text, size_t *len, char **err);

/* config_access.c: handlers for the tables of config.c. */
int fg_cw_set_access(struct ctx *c, json_t *v, void *base);
int fg_cw_set_geoip(struct ctx *c, json_t *v, void *base);
int fg_cw_set_route_name(struct ctx *c, json_t *v, void *base);
int fg_cw_set_route_auth(struct ctx *c, json_t *v, void *base);
int fg_cw_set_route_limits(struct ctx *c, json_t *v, void *base);
int fg_cw_set_upstream_headers(struct ctx *c, json_t *v, void *base);
int fg_cw_set_trusted_proxies(struct ctx *c, json_t *v, void *base);
int fg_cw_set_proxy_protocol(struct ctx *c, json_t *v, void *base);
/* After the walk: a listener with proxy_protocol needs trusted_proxies;
 * route "auth": "key" and rule "key" conditions need "access". */
int fg_cw_check_after(struct ctx *c);

/* config_dns.c */
int fg_cw_set_dns(struct ctx *c, json_t *v, void *base);
void fg_cw_dns_defaults(struct fg_config *cfg);
int fg_cw_dns_name_valid(const char *s, const char **why);
struct fg_dns_answer *fg_cw_dns_answer(struct fg_config *cfg, const struct fg_dns_answers *known,
                                       const char *name);
void fg_cw_free_dns(struct fg_config *cfg);
/* A rule's "country", "continent", "asn" and "key" conditions, counted in
 * *conditions. */
int fg_cw_set_rule_access(struct ctx *c, json_t *v, struct fg_rule *r, int *conditions);
/* Frees what config_access.c allocated in <cfg>. */
void fg_cw_free_access(struct fg_config *cfg);

#endif
