/* The admin listener's run-time controls (fg/admin_api.h): the bearer
 * token, GET /config with its secrets redacted, a backend's weight and
 * draining, a split's weights (the gray-release ramp). */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "fg/admin_api.h"
#include "fg/exchange.h"
#include "fg/worker.h"

/* Writers of split weights may run on several workers at once. */
static pthread_mutex_t split_lock = PTHREAD_MUTEX_INITIALIZER;

int fg_admin_authorized(const struct fg_exchange *x)
{
    const struct fg_config *cfg = x->gen->cfg;
    unsigned char d[SHA256_DIGEST_LENGTH];

    if (!cfg->admin_token_set)
        return 1;
    for (unsigned i = 0; i < x->req_headers.n; i++) {
        const struct fg_header *h = &x->req_headers.v[i];
        const char *v = h->value;
        size_t n = h->vlen;
        if (h->nlen != 13 || memcmp(h->name, "authorization", 13) || n < 7 ||
            strncasecmp(v, "bearer ", 7))
            continue;
        v += 7, n -= 7;
        while (n && *v == ' ')
            v++, n--;
        SHA256((const unsigned char *)v, n, d);
        return CRYPTO_memcmp(d, cfg->admin_token, sizeof(d)) == 0;
    }
    return 0;
}

/* ---- GET /config ----------------------------------------------------------- */

static void redact(json_t *obj, const char *key)
{
    if (json_is_object(obj) && json_object_get(obj, key))
        json_object_set_new(obj, key, json_string("(redacted)"));
}

char *fg_admin_config_json(const struct fg_config *cfg)
{
    json_t *root, *v, *e;
    const char *k;
    size_t i;
    char *text;

    if (!cfg->source || !(root = json_loads(cfg->source, 0, NULL)))
        return NULL;
    if ((v = json_object_get(json_object_get(root, "access"), "keys")))
        json_array_foreach(v, i, e)
            redact(e, "sha256");
    redact(json_object_get(root, "admin"), "token_sha256");
    json_array_foreach(json_object_get(root, "routes"), i, e) {
        json_t *h = json_object_get(e, "upstream_headers"), *hv;
        json_object_foreach(h, k, hv)
            json_object_set_new(h, k, json_string("(redacted)"));
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

/* ---- changes ---------------------------------------------------------------- */

static int set_error(char *err, size_t size, const char *msg)
{
    snprintf(err, size, "%s", msg);
    return -1;
}

int fg_admin_set_backend(struct fg_backend *b, const char *body, size_t len, char *err,
                         size_t size)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je), *w, *d;
    int rc = -1;

    if (!json_is_object(doc)) {
        set_error(err, size, "the body must be a JSON object: {\"weight\": 1..1000} and/or "
                             "{\"drain\": true|false}");
        goto out;
    }
    w = json_object_get(doc, "weight");
    d = json_object_get(doc, "drain");
    if ((!w && !d) || json_object_size(doc) != (size_t)(!!w + !!d)) {
        set_error(err, size, "the body takes \"weight\" (1..1000, or null for the "
                             "configuration's) and \"drain\" (true or false), nothing else");
        goto out;
    }
    if (w && !json_is_null(w) &&
        (!json_is_integer(w) || json_integer_value(w) < 1 || json_integer_value(w) > 1000)) {
        set_error(err, size, "\"weight\" must be an integer in 1..1000, or null");
        goto out;
    }
    if (d && !json_is_boolean(d)) {
        set_error(err, size, "\"drain\" must be true or false");
        goto out;
    }
    if (w)
        atomic_store(&b->st->weight_rt, json_is_null(w) ? 0 : (unsigned)json_integer_value(w));
    if (d)
        atomic_store(&b->st->draining, json_is_true(d));
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int fg_admin_set_split(struct fg_split *sp, const char *body, size_t len, char *err, size_t size)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je), *ws, *v;
    struct fg_split_weights *nw = NULL, *old;
    const char *name;
    int rc = -1, locked = 0;

    ws = json_object_get(doc, "weights");
    if (!json_is_object(doc) || json_object_size(doc) != 1 || !json_is_object(ws)) {
        set_error(err, size, "the body must be {\"weights\": {UPSTREAM: 0..1000000, ...}}, "
                             "naming the split's arms");
        goto out;
    }
    if (!(nw = calloc(1, sizeof(*nw) + sp->narms * sizeof(nw->weight[0])))) {
        set_error(err, size, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&split_lock);
    locked = 1;
    /* arms not named keep their weight now */
    old = atomic_load(&sp->st->split_rt);
    if (old && old->narms != sp->narms)
        old = NULL;                     /* another generation's split */
    nw->narms = sp->narms;
    for (unsigned i = 0; i < sp->narms; i++)
        nw->weight[i] = old ? old->weight[i] : sp->arms[i].weight;
    json_object_foreach(ws, name, v) {
        unsigned i = 0;
        while (i < sp->narms && strcmp(sp->arms[i].upstream->name, name) != 0)
            i++;
        if (i == sp->narms) {
            snprintf(err, size, "the split has no arm to upstream \"%s\"", name);
            goto out;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
            snprintf(err, size, "the weight of \"%s\" must be an integer in 0..1000000", name);
            goto out;
        }
        nw->weight[i] = (unsigned)json_integer_value(v);
    }
    for (unsigned i = 0; i < sp->narms; i++)
        nw->total += nw->weight[i];
    if (!nw->total) {
        set_error(err, size, "the weights may not all be 0");
        goto out;
    }
    old = atomic_exchange_explicit(&sp->st->split_rt, nw, memory_order_acq_rel);
    if (old) {                          /* a request may still be reading it */
        old->next_retired = sp->st->retired;
        sp->st->retired = old;
    }
    nw = NULL;
    rc = 0;
out:
    if (locked)
        pthread_mutex_unlock(&split_lock);
    free(nw);
    json_decref(doc);
    return rc;
}
