/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The filter a handle runs: the user's expression composed with the
 * exclusion of our own distribution traffic, compiled in the loop when
 * short and by compile.c's workers when long; the reply to a call that
 * waited for a compile is sent from here when it is done.
 */
#ifndef EWP_FILTER_H
#define EWP_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "call.h"
#include "dist.h"
#include "handles.h"

#define EWP_ERRBUF_SIZE 512 /* the errbuf of ewp_filter_set */

/* Compiles queued or running hold about three copies of their filter: a
 * node's may hold EWP_COMPILE_NODE_MAX bytes, all EWP_COMPILE_MAX; past
 * either a filter is refused ({error, compile_queue_full}) */
#define EWP_COMPILE_NODE_MAX (16u << 20)
#define EWP_COMPILE_MAX (64u << 20)
#define EWP_COMPILE_JOB_COST 1024 /* counted per job besides its texts */
#define EWP_FILTER_QUEUE_FULL (-2) /* ewp_filter_set: refused, errbuf the atom */

struct ewp_filters;

struct ewp_filters *ewp_filter_init(struct ev_loop *loop, struct ewp_handles *t,
                                    struct ewp_dist *dist, int port);
void ewp_filter_shutdown(struct ewp_filters *f);
int ewp_filter_set(struct ewp_filters *f, struct ewp_handle *h, const char *text, size_t len,
                   int optimize, uint32_t netmask, int open, const struct ewp_call *call,
                   char *errbuf);

#endif /* EWP_FILTER_H */
