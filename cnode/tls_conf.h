/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The TLS server options (--tls-* flags, or an -ssl_dist_optfile read as
 * a node reads it) that tls.c makes its SSL_CTX from.
 */
#ifndef EWP_TLS_CONF_H
#define EWP_TLS_CONF_H

#include <limits.h>
#include <stddef.h>

/* The server options of an -ssl_dist_optfile, as ewpcapd's flags */
struct ewp_tls_config {
    char cert[PATH_MAX];          /* --tls-cert: PEM certificate (chain) */
    char key[PATH_MAX];           /* --tls-key: PEM private key; empty: in cert */
    char cacert[PATH_MAX];        /* --tls-cacert: PEM CAs that sign client certificates */
    int verify_peer;              /* --tls-verify peer (1) | none (0) */
    int fail_if_no_peer_cert;     /* --tls-fail-if-no-peer-cert */
};

int ewp_tls_config_from_etf(struct ewp_tls_config *cfg, const char *buf, size_t len,
                            char *errbuf, size_t errlen);
int ewp_tls_read_optfile(struct ewp_tls_config *cfg, const char *path, char *errbuf,
                         size_t errlen);

#endif /* EWP_TLS_CONF_H */
