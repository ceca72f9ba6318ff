/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Running a request of docs/PROTOCOL.md ({open, Dev, Opts}, close, filter,
 * write, stats, dev, getifaddrs, info) against the handle table under
 * ewpcapd's policy, and encoding its reply. Who asked and how the reply
 * travels is router.c's (and rpc.c's) business.
 */
#ifndef EWP_REQUEST_H
#define EWP_REQUEST_H

#include <ei.h>
#include <ev.h>

#include "call.h"
#include "dist.h"
#include "filter.h"
#include "handles.h"

/* Default caps (see README, Reliability): a node past one gets
 * {error, too_many_handles} or {error, buffer_limit} */
#define EWP_DEFAULT_MAX_HANDLES 1024
#define EWP_DEFAULT_MAX_NODE_HANDLES 256
/* Kernel ring bytes: a quarter of the machine's memory for all handles
 * (EWP_RING_SHARE), half of that for one node's; never less than this */
#define EWP_RING_SHARE 4
#define EWP_RING_FLOOR (256ull << 20)

/* Who may do what: ewpcapd's command-line flags */
struct ewp_policy {
    const char *const *allow; /* devices that may be opened; NULL: all */
    int nallow;               /* how many */
    int no_inject;            /* refuse write */
    int max_handles;          /* open handles in all, 0: no limit */
    int max_node_handles;     /* open handles per client node, 0: no limit */
    unsigned long long max_ring;      /* kernel buffer bytes of all handles, 0: none */
    unsigned long long max_node_ring; /* ... of one node's handles, 0: no limit */
    const char *files_dir;    /* savefiles are read and written only under
                                 this directory (realpath); NULL: refused */
    int files_fd;             /* ... opened O_PATH, when files_dir is set */
};

/* What requests run against; main.c fills it, ewp_request_init starts it */
struct ewp_requests {
    struct ev_loop *loop;         /* captures' watchers */
    ei_cnode *ec;                 /* our node, for refs, pids and info */
    struct ewp_dist *dist;        /* peers, for info and deferred replies */
    int port;                     /* our distribution port (filter.c) */
    struct ewp_policy policy;     /* --allow, --no-inject, limits, --files */
    struct ewp_handles *handles;  /* set by ewp_request_init */
    struct ewp_filters *filters;  /* ... */
    ev_timer check;               /* are the captured interfaces still there? */
};

int ewp_request_init(struct ewp_requests *r);
void ewp_request_shutdown(struct ewp_requests *r);
int ewp_request_run(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *from,
                    const char *buf, int *index, int monitor_owner,
                    const struct ewp_call *call, ei_x_buff *x);

#endif /* EWP_REQUEST_H */
