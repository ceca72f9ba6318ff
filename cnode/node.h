/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The C-node: ei set-up, the listen socket, the epmd registration and one
 * struct ewp_peer per connected Erlang node. After ei's handshake each peer
 * socket is non-blocking and framed here, with a bounded input and output
 * buffer. node.c owns every distribution fd; messages go to command.c.
 */
#ifndef EWP_NODE_H
#define EWP_NODE_H

#include <stddef.h>
#include <netinet/in.h>

#include <ei.h>
#include <ev.h>

#define EWP_FRAME_MAX (64u << 20)     /* larger incoming frames close the connection */
#define EWP_OUT_HIGH (16u << 20)      /* queued bytes that pause the peer's captures */
#define EWP_OUT_LOW (12u << 20)       /* ... and resume them */
#define EWP_OUT_PACKET_MAX (32u << 20) /* packets beyond this queue are dropped */
#define EWP_OUT_MAX (64u << 20)       /* a peer that lets this much queue up is dropped */

struct ewp_peer;

struct ewp_node_config {
    const char *alive;     /* alive part of the node name */
    const char *host;      /* host part */
    const char *cookie;    /* NULL: ~/.erlang.cookie */
    struct in_addr listen; /* listen address */
    int port;              /* listen port, 0: any */
    double ticktime;       /* seconds of silence before a peer counts as dead */
};

int ewp_node_init(struct ev_loop *loop, const struct ewp_node_config *cfg,
                  char *errbuf, size_t errlen);
void ewp_node_close(void);
ei_cnode *ewp_node_cnode(void);
const char *ewp_node_name(void);
int ewp_node_failed(void);
int ewp_node_port(void);

int ewp_peer_send(struct ewp_peer *p, const char *body, size_t len);
char *ewp_peer_reserve(struct ewp_peer *p, size_t max);
char *ewp_peer_reserve_more(struct ewp_peer *p, size_t have, size_t more);
char *ewp_peer_frame_body(struct ewp_peer *p);
void ewp_peer_commit(struct ewp_peer *p, size_t used);
int ewp_peer_congested(const struct ewp_peer *p);
size_t ewp_peer_queued(const struct ewp_peer *p);
const char *ewp_peer_name(const struct ewp_peer *p);
struct ewp_peer *ewp_node_peer_next(struct ewp_peer *prev);
struct ewp_peer *ewp_node_peer_by_name(const char *name);

#endif /* EWP_NODE_H */
