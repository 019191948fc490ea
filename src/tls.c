/* TLS server contexts. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "fg/tls.h"

static char *openssl_error(const char *what, const char *file)
{
    char buf[256], *msg;
    unsigned long e = ERR_get_error();
    size_t len;

    ERR_error_string_n(e, buf, sizeof(buf));
    len = strlen(what) + strlen(file) + strlen(buf) + 8;
    msg = malloc(len);
    if (msg)
        snprintf(msg, len, "%s %s: %s", what, file, buf);
    ERR_clear_error();
    return msg;
}

/* Prefer h2, then http/1.1; a client offering neither gets http/1.1. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char prefs[] = "\x02h2\x08http/1.1";
    unsigned char *o;

    if (SSL_select_next_proto(&o, outlen, prefs, sizeof(prefs) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *fg_tls_server_ctx(const struct fg_tls_cfg *tls, char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (!ctx) {
        *err = openssl_error("cannot create a TLS context for", tls->certificate);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* read whole batches of records per read(2), not a header then a body */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->certificate) != 1) {
        *err = openssl_error("cannot load certificate", tls->certificate);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1) {
        *err = openssl_error("cannot load private key", tls->key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *err = openssl_error("private key does not match certificate", tls->key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    return ctx;
}
