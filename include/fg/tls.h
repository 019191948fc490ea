#ifndef FG_TLS_H
#define FG_TLS_H

#include <openssl/ssl.h>

#include "fg/config-t.h"

/* A server context for <tls>: TLS 1.2+, certificate chain and key from the
 * configured files, ALPN offering h2 then http/1.1. NULL with *err set
 * (malloc'd) on failure. SSL_CTX is shared by every worker. */
SSL_CTX *fg_tls_server_ctx(const struct fg_tls_cfg *tls, char **err);

#endif
