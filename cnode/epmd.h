/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The epmd registration: publish our name and port (starting epmd as erl
 * does when none runs), keep the registration's socket open (closing it
 * unregisters), and register again when epmd goes away and comes back.
 */
#ifndef EWP_EPMD_H
#define EWP_EPMD_H

#include <stddef.h>

#include <ei.h>
#include <ev.h>

struct ewp_epmd;

struct ewp_epmd *ewp_epmd_new(struct ev_loop *loop, ei_cnode *ec, int port, char *errbuf,
                              size_t errlen);
int ewp_epmd_failed(const struct ewp_epmd *e);
void ewp_epmd_free(struct ewp_epmd *e);

#endif /* EWP_EPMD_H */
