/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * ewpcapd --user: after start-up, become an unprivileged user that keeps
 * only CAP_NET_RAW and CAP_NET_ADMIN, so a bug in the daemon never runs as
 * root.
 */
#ifndef EWP_PRIVS_H
#define EWP_PRIVS_H

#include <stddef.h>

int ewp_privs_drop(const char *user, char *errbuf, size_t errlen);

#endif /* EWP_PRIVS_H */
