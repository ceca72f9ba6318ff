/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Linux network namespaces: ewpcapd --netns NAME keeps its listen socket and
 * its epmd registration in the namespace it was started in ("home") and opens
 * every capture inside NAME. Sockets keep the namespace they were made in:
 * the main thread moves into NAME once, after the listen socket is made; a
 * thread that stays home makes the epmd connections (see netns.c).
 */
#ifndef EWP_NETNS_H
#define EWP_NETNS_H

#include <stddef.h>

int ewp_netns_enter(const char *name, char *errbuf, size_t errlen);
int ewp_netns_at_home(int (*fn)(void *), void *arg);
void ewp_netns_close(void);

#endif /* EWP_NETNS_H */
