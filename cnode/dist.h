/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The distribution transport: one struct ewp_peer per connected Erlang
 * node (listen.c hands them over after the handshake), each with a bounded
 * input and output buffer, framing and ticks. It knows nothing of what the
 * frames mean: each complete frame, each lost peer and each drained output
 * buffer leaves through the ops table the layer above registers.
 *
 * The rule (see dist.c): nothing here ever frees a peer, or calls up, from
 * inside a function the layer above called. A send that does not fit marks
 * the peer dead and returns -1; ops->peer_down runs later, from the loop's
 * prepare step (ewp_dist_reap), when no caller holds a pointer.
 */
#ifndef EWP_DIST_H
#define EWP_DIST_H

#include <stddef.h>

#include <ev.h>

#define EWP_FRAME_MAX (64u << 20)      /* larger incoming frames close the connection */
#define EWP_OUT_HIGH (16u << 20)       /* queued bytes that pause the peer's captures */
#define EWP_OUT_LOW (12u << 20)        /* ... and resume them */
#define EWP_OUT_PACKET_MAX (32u << 20) /* packets beyond this queue are dropped */
#define EWP_OUT_MAX (64u << 20)        /* a peer that lets this much queue up is dropped */
#define EWP_OUT_TOTAL_PACKET_MAX (256u << 20) /* packets for all peers together */
#define EWP_OUT_SPARES 32 /* drained output chunks all peers keep together (8 MiB) */

struct ewp_ac_out;
struct ewp_dist;
struct ewp_peer;
struct ewp_xport;

/* Calls up, registered by the layer above; ctx is its own */
struct ewp_dist_ops {
    /* one frame body ('p', 131, Control, [131, Message]), len > 0; with the
     * atom cache, the frame rewritten into that form (atomcache.h) */
    void (*frame)(void *ctx, struct ewp_peer *p, const char *buf, size_t len);
    /* the peer is gone; called once, from ewp_dist_reap, before it is freed */
    void (*peer_down)(void *ctx, struct ewp_peer *p);
    /* its output fell below EWP_OUT_LOW after passing EWP_OUT_HIGH */
    void (*drained)(void *ctx, struct ewp_peer *p);
};

struct ewp_dist_config {
    double ticktime;       /* seconds of silence before a peer counts as dead */
    size_t out_max;        /* 0: EWP_OUT_MAX; tests set less */
    size_t packet_max;     /* 0: EWP_OUT_PACKET_MAX */
    size_t total_max;      /* 0: EWP_OUT_TOTAL_PACKET_MAX */
};

struct ewp_dist *ewp_dist_new(struct ev_loop *loop, const struct ewp_dist_config *cfg,
                              const struct ewp_dist_ops *ops, void *ctx);
void ewp_dist_free(struct ewp_dist *d);
struct ewp_peer *ewp_dist_adopt(struct ewp_dist *d, int fd, const char *name,
                                const char *rest, size_t rest_len);
struct ewp_peer *ewp_dist_adopt_xport(struct ewp_dist *d, int fd, struct ewp_xport *xp,
                                      const char *name, const char *rest, size_t rest_len);
int ewp_peer_use_atom_cache(struct ewp_peer *p);
struct ewp_ac_out *ewp_peer_atom_cache(const struct ewp_peer *p);
void ewp_dist_reap(struct ewp_dist *d);
struct ewp_peer *ewp_dist_peer_next(struct ewp_dist *d, struct ewp_peer *prev);
struct ewp_peer *ewp_dist_peer_by_name(struct ewp_dist *d, const char *name);

int ewp_peer_send(struct ewp_peer *p, const char *body, size_t len);
char *ewp_peer_reserve(struct ewp_peer *p, size_t max);
char *ewp_peer_reserve_more(struct ewp_peer *p, size_t have, size_t more);
char *ewp_peer_frame_body(struct ewp_peer *p);
void ewp_peer_commit(struct ewp_peer *p, size_t used);
int ewp_peer_hold(struct ewp_peer *p, size_t bytes);
void ewp_peer_unhold(struct ewp_peer *p, size_t bytes);
void ewp_peer_drop(struct ewp_peer *p, const char *why);
int ewp_peer_congested(const struct ewp_peer *p);
int ewp_peer_dead(const struct ewp_peer *p);
size_t ewp_peer_queued(const struct ewp_peer *p);
/* Bytes of output memory the peer holds (outq's chunks): given back at
 * each tick that finds nothing queued (see dist.c) */
size_t ewp_peer_held(const struct ewp_peer *p);
const char *ewp_peer_name(const struct ewp_peer *p);

#endif /* EWP_DIST_H */
