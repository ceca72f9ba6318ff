/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What arrives from the nodes, routed: messages to our registered names
 * (ewpcap: requests; rex: rpc:block_call; net_kernel: ping), their
 * gen_server envelope and reply, refusals of calls that cannot be read,
 * exit signals, links and monitors of our pids, rpc spawns, and lost or
 * drained peers. Registered with dist.c as its ops (ewp_router_dist_ops,
 * ctx: a struct ewp_router), and with ctl.c.
 */
#ifndef EWP_ROUTER_H
#define EWP_ROUTER_H

#include "dist.h"
#include "request.h"

struct ewp_router {
    struct ewp_requests *req;    /* runs requests */
};

extern const struct ewp_dist_ops ewp_router_dist_ops;

#endif /* EWP_ROUTER_H */
