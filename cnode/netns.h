/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Linux network namespaces: ewpcapd --netns NAME keeps its listen socket and
 * its epmd registration in the namespace it was started in ("home") and opens
 * every capture inside NAME. Sockets keep the namespace they were made in, so
 * one setns() after start-up is enough; only a re-registration with epmd
 * needs to step home for a moment.
 */
#ifndef EWP_NETNS_H
#define EWP_NETNS_H

#include <stddef.h>

int ewp_netns_enter(const char *name, char *errbuf, size_t errlen);
int ewp_netns_home(void);
int ewp_netns_away(void);
void ewp_netns_close(void);

#endif /* EWP_NETNS_H */
