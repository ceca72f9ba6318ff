/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The listen socket and the handshakes in progress. ei_accept blocks on a
 * silent client, so connections are accepted non-blocking and the
 * accepting side of the handshake (handshake.c, a pure state machine) runs
 * under a timeout; a connection that completes it is handed to dist.c.
 */
#ifndef EWP_LISTEN_H
#define EWP_LISTEN_H

#include <stddef.h>
#include <netinet/in.h>

#include <ei.h>
#include <ev.h>

#include "dist.h"

struct ewp_tls;

struct ewp_listener;

struct ewp_listen_config {
    ei_cnode *ec;          /* our name, cookie and creation (read at each accept) */
    const char *addr;      /* listen address, IPv4 or IPv6; NULL: dual stack (or 0.0.0.0) */
    int port;              /* listen port, 0: any */
    struct ewp_tls *tls;   /* TLS required, or NULL: plaintext (not owned) */
};

struct ewp_listener *ewp_listen_new(struct ev_loop *loop, const struct ewp_listen_config *cfg,
                                    struct ewp_dist *dist, char *errbuf, size_t errlen);
int ewp_listen_port(const struct ewp_listener *l);
int ewp_listen_failed(const struct ewp_listener *l);
void ewp_listen_free(struct ewp_listener *l);

#endif /* EWP_LISTEN_H */
