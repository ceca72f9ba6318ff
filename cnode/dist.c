/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The distribution transport of ewpcapd: connected peers. ei's receive
 * and send cannot serve a non-blocking loop (a partial read loses bytes, a
 * timed-out write corrupts the stream), so frames are read and written
 * here, on connections whose handshake listen.c has done:
 *
 *   <<Len:32/big, 112, 131, Control, [131, Message]>>    Len = 0 is a tick
 *
 * or, with a peer that offered the atom cache too (ewp_peer_use_atom_cache),
 * <<Len:32/big, 131, 68, Header, Control, [Message]>> both ways: incoming
 * frames are rewritten into the first form before ops->frame sees them, and
 * ewp_peer_send gives ours a header of no refs (atomcache.h).
 *
 * Input is read into a per-peer buffer and each complete frame is handed
 * to ops->frame (ctl.c checks and decodes it): dist_in.c, which shares the
 * peer's structure (dist_int.h) and this rule. Output goes into a per-peer
 * buffer written from the loop: nobody ever blocks on a slow peer. Above
 * EWP_OUT_HIGH queued bytes a peer counts as congested (the layer above
 * pauses the captures that feed it); below EWP_OUT_LOW, ops->drained.
 *
 * A peer that is silent for the tick time is dropped; the peer's own ticks
 * are answered and, when we have sent nothing for a quarter of the tick
 * time, we tick too; either only when nothing is queued for it (a peer
 * that sends ticks and reads nothing must not make us queue 4 bytes each).
 * Packets for all peers together stop at EWP_OUT_TOTAL_PACKET_MAX queued,
 * counting the room reserved for frames being built in place.
 *
 * THE RULE: a send never frees anything and never calls up. A peer that
 * fails (its output would pass out_max, a socket error, EOF, a tick
 * timeout, a bad frame) is only marked dead: its watchers stop and it moves
 * to the dead list. ewp_dist_reap, run by the prepare watcher after every
 * callback of the loop iteration, calls ops->peer_down for it (the layer
 * above closes that node's handles) and then frees it. So code that holds a
 * handle or a peer while it sends can never see it freed under its feet,
 * whatever the send's outcome; sends to a dead peer return -1 and are
 * harmless.
 *
 * Output is written by the same prepare step, once per peer and loop
 * iteration, as soon as the iteration's callbacks have queued it (all the
 * packets of one pcap_dispatch leave in one send, and a lone packet in
 * immediate mode without waiting a loop turn for EPOLLOUT); only what the
 * socket does not take waits for the writable watcher.
 *
 * A TLS peer (ewp_dist_adopt_xport) reads and writes through its xport
 * (xport.h, tls.c) instead of read/send, with the same buffers and the same
 * rule; bytes the xport holds decrypted (pending) are read before the loop
 * waits again, since the socket will not announce them. Plain peers have
 * no xport and make the same system calls as ever.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <ei.h>
#include <ev.h>

#include "be.h"
#include "dist.h"
#include "dist_int.h"
#include "log.h"

#define WRITE_IOV 64            /* chunks per sendmsg */

static void reap_cb(struct ev_loop *loop, ev_prepare *w, int revents);
static void write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void peer_write(struct ewp_peer *p);
static void peer_free(struct ewp_peer *p);
static char *out_reserve(struct ewp_peer *p, size_t need, size_t keep);
static void out_commit(struct ewp_peer *p, size_t n);
static void out_queued(struct ewp_peer *p);
static void unbuild(struct ewp_peer *p);

/* No peers yet; NULL when out of memory */
struct ewp_dist *
ewp_dist_new(struct ev_loop *loop, const struct ewp_dist_config *cfg,
             const struct ewp_dist_ops *ops, void *ctx)
{
    struct ewp_dist *d;

    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->loop = loop;
    d->ops = ops;
    d->ctx = ctx;
    d->ticktime = cfg->ticktime > 0 ? cfg->ticktime : 60;
    d->out_max = cfg->out_max > 0 ? cfg->out_max : EWP_OUT_MAX;
    d->packet_max = cfg->packet_max > 0 ? cfg->packet_max : EWP_OUT_PACKET_MAX;
    d->total_max = cfg->total_max > 0 ? cfg->total_max : EWP_OUT_TOTAL_PACKET_MAX;
    d->spares.max = EWP_OUT_SPARES;
    ev_prepare_init(&d->reap_w, reap_cb);
    d->reap_w.data = d;
    if (loop != NULL)
        ev_prepare_start(loop, &d->reap_w);
    return d;
}

/* Close every connection (peer_down for each) */
void
ewp_dist_free(struct ewp_dist *d)
{
    struct ewp_peer *p;

    if (d == NULL)
        return;
    while ((p = d->peers) != NULL)
        ewp_peer_drop(p, "shutdown");
    ewp_dist_reap(d);
    if (d->loop != NULL)
        ev_prepare_stop(d->loop, &d->reap_w);
    free(d);
}

/*
 * A connection whose handshake is done becomes a peer (also used by the
 * tests, on one end of a socketpair); rest holds bytes that came after the
 * handshake, handed over as frames from the loop, not from here. A node
 * that reconnects under its name had a dead connection: the old one is
 * dropped. NULL: out of memory (fd is then not ours).
 */
struct ewp_peer *
ewp_dist_adopt(struct ewp_dist *d, int fd, const char *name, const char *rest,
               size_t rest_len)
{
    return ewp_dist_adopt_xport(d, fd, NULL, name, rest, rest_len);
}

/* ... whose bytes pass through xp (owned from now on, unless NULL is
 * returned); it may hold decrypted input already: read at once. */
struct ewp_peer *
ewp_dist_adopt_xport(struct ewp_dist *d, int fd, struct ewp_xport *xp, const char *name,
                     const char *rest, size_t rest_len)
{
    struct ewp_peer *p, *old;
    int one = 1;

    for (old = d->peers; old != NULL; old = old->next)
        if (strcmp(old->name, name) == 0) {
            ewp_peer_drop(old, "replaced by a new connection");
            break;
        }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    if (rest_len > 0) {
        if ((p->in = malloc(rest_len)) == NULL) {
            free(p);
            return NULL;
        }
        memcpy(p->in, rest, rest_len);
        p->in_len = p->in_cap = rest_len;
        p->in_pending = 1;
    }
    ewp_outq_init(&p->out, &d->spares);
    p->d = d;
    p->fd = fd;
    p->xp = xp;
    (void)snprintf(p->name, sizeof(p->name), "%s", name);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p->last_rx = ev_now(d->loop);
    ev_io_init(&p->rio, ewp_dist_read_cb, fd, EV_READ);
    p->rio.data = p;
    ev_io_init(&p->wio, write_cb, fd, EV_WRITE);
    p->wio.data = p;
    ev_timer_init(&p->tick, tick_cb, d->ticktime / 4, d->ticktime / 4);
    p->tick.data = p;
    ev_io_start(d->loop, &p->rio);
    ev_timer_start(d->loop, &p->tick);
    if (p->in_pending || xp != NULL)
        ev_feed_event(d->loop, &p->rio, EV_READ);
    p->next = d->peers;
    d->peers = p;
    EWP_LOG(1, "connect from %s", p->name);
    return p;
}

/* Both ends offered DFLAG_DIST_HDR_ATOM_CACHE: from now on every frame
 * either way has the distribution header (atomcache.h). Call it right
 * after the adopt, before the loop hands over a frame. Returns 0, or -1
 * when out of memory (the peer is then dropped). */
int
ewp_peer_use_atom_cache(struct ewp_peer *p)
{
    if ((p->ac_in = ewp_ac_in_new()) == NULL || (p->ac_out = ewp_ac_out_new()) == NULL) {
        ewp_peer_drop(p, "out of memory");
        return -1;
    }
    EWP_LOG(2, "%s: frames with the atom cache header", p->name);
    return 0;
}

/* The cache of what we told the peer, for frames built in place
 * (ewp_ac_tmpl_put); NULL when the peer takes pass-through frames */
struct ewp_ac_out *
ewp_peer_atom_cache(const struct ewp_peer *p)
{
    return p->ac_out;
}

/*
 * The prepare step: write what this iteration queued, then tear down the
 * peers dropped since the last time (peer_down, then free). peer_down may
 * send, and a send may drop another peer: the loop runs until none is left.
 */
void
ewp_dist_reap(struct ewp_dist *d)
{
    struct ewp_peer *p, *next;

    d->flushing = 1;
    for (p = d->peers; p != NULL; p = next) {
        next = p->next;    /* a dropped peer moves to the dead list */
        if (ewp_peer_queued(p) > 0 && !ev_is_active(&p->wio))
            peer_write(p);
    }
    while ((p = d->dead) != NULL) {
        d->dead = p->next;
        if (d->ops != NULL && d->ops->peer_down != NULL)
            d->ops->peer_down(d->ctx, p);
        peer_free(p);
    }
    d->flushing = 0;
}

struct ewp_peer *
ewp_dist_peer_by_name(struct ewp_dist *d, const char *name)
{
    struct ewp_peer *p;

    for (p = d->peers; p != NULL; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

struct ewp_peer *
ewp_dist_peer_next(struct ewp_dist *d, struct ewp_peer *prev)
{
    return prev == NULL ? d->peers : prev->next;
}

/* Queue one frame (body starting with 'p'). Returns 0, or -1 when the peer
 * is dead or would pass out_max (it is then marked dead: see the rule). */
int
ewp_peer_send(struct ewp_peer *p, const char *body, size_t len)
{
    char *o;

    if (p->dead)
        return -1;
    if (p->building > 0) { /* deliver.c closes a frame it builds before any send */
        EWP_ERR("%s: internal: a frame sent while one is being built", p->name);
        ewp_peer_drop(p, "internal error");
        return -1;
    }
    if (ewp_peer_queued(p) + len + 4 > p->d->out_max) {
        ewp_peer_drop(p, "output buffer full");
        return -1;
    }
    /* with the atom cache: the same frame with a header of no refs (+1) */
    if ((o = out_reserve(p, len + 4 + (p->ac_out != NULL), 0)) == NULL) {
        ewp_peer_drop(p, "out of memory");
        return -1;
    }
    if (p->ac_out != NULL) {
        long n;

        if ((n = ewp_ac_plain(o + 4, body, len)) < 0) {
            EWP_LOG(0, "%s: a frame of ours not sent: not in pass-through form", p->name);
            return -1;
        }
        len = (size_t)n;
    } else {
        memcpy(o + 4, body, len);
    }
    ewp_put_be32(o, (uint32_t)len);
    out_commit(p, len + 4);
    return 0;
}

/* Room for one frame body of at most max bytes, to be filled in place and
 * committed; NULL when packets for this peer must be dropped. */
char *
ewp_peer_reserve(struct ewp_peer *p, size_t max)
{
    return ewp_peer_reserve_more(p, 0, max);
}

/* Grow a frame being filled in place: have bytes of body are written,
 * room for more is wanted. The body may move: use the pointer returned. */
char *
ewp_peer_reserve_more(struct ewp_peer *p, size_t have, size_t more)
{
    struct ewp_dist *d = p->d;
    size_t frame = 4 + have + more;

    /* other peers' frames being built count against the total: a shared
     * capture's dispatch may build one for each of its members' nodes;
     * and packets held elsewhere (ewp_peer_hold) against both */
    if (p->dead || have > SIZE_MAX / 4 || more > SIZE_MAX / 4 ||
        ewp_peer_queued(p) + p->held + frame > d->packet_max ||
        d->out_total + d->out_building - p->building + d->out_held + frame > d->total_max)
        return NULL;
    /* the length in front is written at the commit: kept only with a body */
    if (out_reserve(p, frame, have > 0 ? 4 + have : 0) == NULL)
        return NULL;
    d->out_building += frame - p->building;
    p->building = frame;
    return ewp_outq_tail(&p->out) + 4;
}

/* The frame being filled in place (after ewp_peer_reserve*) */
char *
ewp_peer_frame_body(struct ewp_peer *p)
{
    return ewp_outq_tail(&p->out) + 4;
}

void
ewp_peer_commit(struct ewp_peer *p, size_t used)
{
    ewp_put_be32(ewp_outq_tail(&p->out), (uint32_t)used);
    unbuild(p);
    out_commit(p, used + 4);
}

/* Bytes of packets for p gathered outside its queue (a handle's own
 * batch buffer, deliver.c) count against the same room as its queued
 * packets, for p and for all peers: -1 (nothing counted) when they do not
 * fit there, or p is dead. ewp_peer_unhold gives them back, before they
 * are queued or when they are freed. */
int
ewp_peer_hold(struct ewp_peer *p, size_t bytes)
{
    struct ewp_dist *d = p->d;

    if (p->dead || bytes > SIZE_MAX / 4 ||
        ewp_peer_queued(p) + p->building + p->held + bytes > d->packet_max ||
        d->out_total + d->out_building + d->out_held + bytes > d->total_max)
        return -1;
    p->held += bytes;
    d->out_held += bytes;
    return 0;
}

void
ewp_peer_unhold(struct ewp_peer *p, size_t bytes)
{
    p->held -= bytes;
    p->d->out_held -= bytes;
}

/* The frame being built is committed, or will never be */
static void
unbuild(struct ewp_peer *p)
{
    p->d->out_building -= p->building;
    p->building = 0;
}

/* Stop the peer now; ewp_dist_reap tears it down. Safe anywhere, twice. */
void
ewp_peer_drop(struct ewp_peer *p, const char *why)
{
    struct ewp_dist *d = p->d;
    struct ewp_peer **pp;

    if (p->dead)
        return;
    p->dead = 1;
    EWP_LOG(1, "disconnect %s: %s", p->name, why);
    ev_io_stop(d->loop, &p->rio);
    ev_io_stop(d->loop, &p->wio);
    ev_timer_stop(d->loop, &p->tick);
    for (pp = &d->peers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    p->next = d->dead;
    d->dead = p;
}

int
ewp_peer_congested(const struct ewp_peer *p)
{
    return p->congested;
}

int
ewp_peer_dead(const struct ewp_peer *p)
{
    return p->dead;
}

size_t
ewp_peer_queued(const struct ewp_peer *p)
{
    return ewp_outq_queued(&p->out);
}

size_t
ewp_peer_held(const struct ewp_peer *p)
{
    return ewp_outq_held(&p->out);
}

const char *
ewp_peer_name(const struct ewp_peer *p)
{
    return p->name;
}

static void
reap_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    ewp_dist_reap(w->data);
}


static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    peer_write(w->data);
}

/* Send what the socket takes; watch for writable while anything is left.
 * A plain send takes all the socket can take at once; an xport's write
 * may take less (TLS: GATHER_MAX of tls.c per call), so it is called
 * again until everything is written or it would block, and it may keep
 * records of what it took for the socket (unsent): called with nothing
 * new, it sends those. */
static void
peer_write(struct ewp_peer *p)
{
    struct ewp_dist *d = p->d;
    struct iovec iov[WRITE_IOV];
    struct msghdr msg;
    ssize_t n = 0;
    int k;

    if (p->building > 0) { /* frames close by the end of their dispatch */
        EWP_ERR("%s: internal: a write while a frame is being built", p->name);
        ewp_peer_drop(p, "internal error"); /* its queue's tail is not its own */
        return;
    }
    for (;;) {
        k = ewp_outq_iov(&p->out, iov, p->xp == NULL ? WRITE_IOV : 1);
        if (p->xp == NULL) {
            if (k == 0)
                break;
            memset(&msg, 0, sizeof(msg));
            msg.msg_iov = iov;
            msg.msg_iovlen = (size_t)k;
            n = sendmsg(p->fd, &msg, MSG_NOSIGNAL);
        } else {
            /* nothing queued: a write of 0 bytes sends what it holds */
            n = p->xp->ops->write(p->xp, k > 0 ? (const void *)iov[0].iov_base : "",
                                  k > 0 ? iov[0].iov_len : 0);
        }
        if (n <= 0)
            break;
        ewp_outq_consume(&p->out, (size_t)n);
        d->out_total -= (size_t)n;
        /* plain: the socket took what it could; TLS: on while it takes */
        if ((p->xp == NULL && (k < WRITE_IOV || ewp_outq_queued(&p->out) == 0)) ||
            ewp_outq_queued(&p->out) == 0)
            break;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        ewp_peer_drop(p, strerror(errno));
        return;
    }
    if (ewp_peer_queued(p) > 0 || (p->xp != NULL && p->xp->ops->unsent(p->xp) > 0)) {
        if (!ev_is_active(&p->wio))
            ev_io_start(d->loop, &p->wio);
    } else {
        ev_io_stop(d->loop, &p->wio);
    }
    if (p->congested && ewp_peer_queued(p) < EWP_OUT_LOW) {
        p->congested = 0;
        if (d->ops != NULL && d->ops->drained != NULL)
            d->ops->drained(d->ctx, p);
    }
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ewp_peer *p = w->data;

    (void)revents;
    if (ev_now(loop) - p->last_rx > p->d->ticktime) {
        ewp_peer_drop(p, "net tick timeout");
        return;
    }
    /* nothing waits: the queue's chunks go back (outq.h); a busy peer pays
     * one small allocation a tick for it, an idle one holds nothing */
    if (ewp_peer_queued(p) == 0)
        ewp_outq_trim(&p->out);
    if (p->sent == p->sent_at_tick && ewp_peer_queued(p) == 0)
        ewp_dist_queue_tick(p);
    p->sent_at_tick = p->sent;
}

static void
peer_free(struct ewp_peer *p)
{
    if (p->xp != NULL)
        p->xp->ops->free(p->xp);
    p->d->out_total -= ewp_peer_queued(p);
    p->d->out_held -= p->held; /* none: its handles were closed at peer_down */
    unbuild(p);
    (void)close(p->fd);
    ewp_ac_in_free(p->ac_in);
    ewp_ac_out_free(p->ac_out);
    ewp_ac_buf_free(&p->ac_frame);
    free(p->in);
    ewp_outq_free(&p->out);
    free(p);
}

/* Room for need bytes at the queue's tail, keeping the keep bytes of a
 * frame already written there; NULL when memory is short. */
static char *
out_reserve(struct ewp_peer *p, size_t need, size_t keep)
{
    return ewp_outq_reserve(&p->out, need, keep);
}

void
ewp_dist_queue_tick(struct ewp_peer *p)
{
    char *o = p->building > 0 ? NULL : out_reserve(p, 4, 0);

    if (o != NULL) {
        memset(o, 0, 4);
        out_commit(p, 4);
    }
}

/* n bytes written at the tail are queued */
static void
out_commit(struct ewp_peer *p, size_t n)
{
    ewp_outq_commit(&p->out, n);
    p->d->out_total += n;
    out_queued(p);
}

static void
out_queued(struct ewp_peer *p)
{
    p->sent++;
    /* queued by the prepare step itself (peer_down's notices): no later
     * flush runs before the loop blocks, so watch for writable now */
    if (p->d->flushing && !ev_is_active(&p->wio))
        ev_io_start(p->d->loop, &p->wio);
    if (ewp_peer_queued(p) > EWP_OUT_HIGH)
        p->congested = 1;
}
