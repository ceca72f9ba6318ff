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

#include "xport.h"

/* The server options of an -ssl_dist_optfile, as ewpcapd's flags */
struct ewp_tls_config {
    char cert[PATH_MAX];          /* --tls-cert: PEM certificate (chain) */
    char key[PATH_MAX];           /* --tls-key: PEM private key; empty: in cert */
    char cacert[PATH_MAX];        /* --tls-cacert: PEM CAs that sign client certificates */
    int verify_peer;              /* --tls-verify peer (1) | none (0) */
    int fail_if_no_peer_cert;     /* --tls-fail-if-no-peer-cert */
};

struct ewp_tls;

struct ewp_tls *ewp_tls_new(const struct ewp_tls_config *cfg, char *errbuf, size_t errlen);
void ewp_tls_free(struct ewp_tls *t);
struct ewp_xport *ewp_tls_conn_new(struct ewp_tls *t, int fd);
int ewp_tls_handshake(struct ewp_xport *x, int *want_write, char *errbuf, size_t errlen);
int ewp_tls_config_from_etf(struct ewp_tls_config *cfg, const char *buf, size_t len,
                            char *errbuf, size_t errlen);
int ewp_tls_read_optfile(struct ewp_tls_config *cfg, const char *path, char *errbuf,
                         size_t errlen);

#endif /* EWP_TLS_H */
