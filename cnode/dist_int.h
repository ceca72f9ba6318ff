/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The transport's own structures, shared by dist.c (peers, output, ticks,
 * the rule) and dist_in.c (input: reading and framing). Nothing else
 * includes this: the layers above see dist.h only. Below dist.h in the
 * include layers (.ci/check-layers): it names struct ewp_dist_ops only.
 */
#ifndef EWP_DIST_INT_H
#define EWP_DIST_INT_H

#include <ei.h>
#include <ev.h>

#include "atomcache.h"
#include "outq.h"
#include "xport.h"

struct ewp_dist_ops; /* dist.h, which includes nothing of this */

#define READ_CHUNK (64u << 10)  /* bytes read per readiness */

struct ewp_peer {
    struct ewp_dist *d;             /* the transport it belongs to */
    int fd;                         /* the connection, O_NONBLOCK */
    struct ewp_xport *xp;           /* TLS (owned), or NULL: plain read/send on fd */
    char name[MAXNODELEN + 1];      /* the peer's node name */
    ev_io rio;                      /* readable */
    ev_io wio;                      /* writable, started while output waits */
    ev_timer tick;                  /* liveness and our own ticks */
    ev_tstamp last_rx;              /* when a byte last arrived */
    unsigned long sent;             /* frames queued, for the tick check */
    unsigned long sent_at_tick;     /* ... as seen by the last tick check */
    char *in;                       /* input buffer */
    size_t in_len;                  /* bytes in it */
    size_t in_cap;                  /* its size */
    struct ewp_outq out;            /* output queue */
    size_t building;                /* bytes reserved for the frame being built
                                       in place (counted in d->out_building) */
    size_t held;                    /* bytes of its packets gathered elsewhere
                                       (ewp_peer_hold; counted in d->out_held) */
    int congested;                  /* above EWP_OUT_HIGH, not yet below EWP_OUT_LOW */
    int dead;                       /* dropped, waiting for ewp_dist_reap */
    int in_pending;                 /* in holds frames not yet handed over */
    struct ewp_ac_in *ac_in;        /* with the atom cache: the peer's entries */
    struct ewp_ac_out *ac_out;      /* ... and ours; NULL: pass-through frames */
    struct ewp_ac_buf ac_frame;     /* an incoming frame rewritten (atomcache.h) */
    struct ewp_peer *next;          /* all live peers, or the dead list */
};

struct ewp_dist {
    struct ev_loop *loop;             /* the one loop */
    const struct ewp_dist_ops *ops;   /* calls up */
    void *ctx;                        /* ... with this */
    ev_prepare reap_w;                /* ewp_dist_reap */
    double ticktime;                  /* --ticktime */
    size_t out_max;                   /* drop a peer whose queue would pass this */
    size_t packet_max;                /* refuse packets past this */
    size_t total_max;                 /* ... and packets for all peers past this */
    size_t out_total;                 /* bytes queued for all live peers */
    size_t out_building;              /* ... and reserved for frames being built */
    size_t out_held;                  /* ... and held outside the queues */
    struct ewp_outq_pool spares;      /* all peers' drained chunks kept for reuse */
    struct ewp_peer *peers;           /* live peers */
    struct ewp_peer *dead;            /* peers to tear down */
    int flushing;                     /* in ewp_dist_reap: queue, then watch */
};

/* dist_in.c: the readable watcher of every peer */
void ewp_dist_read_cb(struct ev_loop *loop, ev_io *w, int revents);

/* dist.c: queue a tick (an empty frame) for p; nothing when memory is short */
void ewp_dist_queue_tick(struct ewp_peer *p);

#endif
