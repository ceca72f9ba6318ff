/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * TLS for the distribution listener, as OTP's inet_tls_dist speaks it:
 * TLS starts on the accepted TCP connection before any distribution
 * handshake (which then runs inside it, with 4-byte lengths). One
 * struct ewp_tls (an SSL_CTX: certificate, key, CA, verification) for the
 * listener, and per connection a struct ewp_xport (xport.h) that listen.c
 * steps through the TLS handshake without blocking and dist.c then reads
 * and writes through.
 */
#ifndef EWP_TLS_H
#define EWP_TLS_H

#include <limits.h>
#include <stddef.h>

#include "tls_conf.h"
#include "xport.h"

struct ewp_tls;

struct ewp_tls *ewp_tls_new(const struct ewp_tls_config *cfg, char *errbuf, size_t errlen);
void ewp_tls_free(struct ewp_tls *t);
struct ewp_xport *ewp_tls_conn_new(struct ewp_tls *t, int fd);
int ewp_tls_handshake(struct ewp_xport *x, int *want_write, char *errbuf, size_t errlen);

#endif /* EWP_TLS_H */
