/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The transport's input (see dist.c for the frames, the ticks and the
 * rule): a peer's readable watcher reads into its buffer, READ_CHUNK at a
 * time, through its xport when it has one (TLS), and hands each complete
 * frame to ops->frame; with the atom cache, a frame is first rewritten
 * into the pass-through form (atomcache.h). A tick (an empty frame) is
 * answered, unless output waits anyway. A frame over EWP_FRAME_MAX, a
 * frame the atom cache refuses, EOF or a read error drops the peer; so
 * may a frame's handler, after which the rest of the input is ignored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ei.h>
#include <ev.h>

#include "be.h"
#include "dist.h"
#include "dist_int.h"

static int frames(struct ewp_peer *p);

void
ewp_dist_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ewp_peer *p = w->data;
    ssize_t n;

    (void)revents;
    if (p->in_pending) { /* bytes that came with the handshake */
        p->in_pending = 0;
        if (frames(p) < 0) {
            ewp_peer_drop(p, "bad frame");
            return;
        }
        if (p->dead)
            return;
    }
    if (p->in_cap - p->in_len < READ_CHUNK) {
        size_t cap = p->in_len + READ_CHUNK;
        char *in = realloc(p->in, cap);

        if (in == NULL) {
            ewp_peer_drop(p, "out of memory");
            return;
        }
        p->in = in;
        p->in_cap = cap;
    }
    if (p->xp == NULL)
        n = read(p->fd, p->in + p->in_len, p->in_cap - p->in_len);
    else
        n = p->xp->ops->read(p->xp, p->in + p->in_len, p->in_cap - p->in_len);
    if (n == 0) {
        ewp_peer_drop(p, "connection closed");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            ewp_peer_drop(p, strerror(errno));
        return;
    }
    p->last_rx = ev_now(loop);
    p->in_len += (size_t)n;
    if (frames(p) < 0)
        ewp_peer_drop(p, "bad frame");
    else if (p->xp != NULL && !p->dead && p->xp->ops->pending(p->xp) > 0)
        ev_feed_event(loop, &p->rio, EV_READ); /* decrypted, not signalled by the fd */
}

/* Hand over every complete frame in the input buffer; keep the rest. The
 * peer may be dropped by a frame's handler: it stays valid (see the rule),
 * and its remaining input is ignored. */
static int
frames(struct ewp_peer *p)
{
    struct ewp_dist *d = p->d;
    size_t pos = 0;

    while (!p->dead && p->in_len - pos >= 4) {
        uint32_t len = ewp_get_be32(p->in + pos);

        if (len == 0) { /* tick: answer it, unless output waits anyway */
            if (ewp_peer_queued(p) == 0)
                ewp_dist_queue_tick(p);
            pos += 4;
            continue;
        }
        if (len > EWP_FRAME_MAX)
            return -1;
        if (p->in_len - pos - 4 < len)
            break;
        if (p->ac_in != NULL) { /* spelled out for the layer above */
            if (ewp_ac_in_frame(p->ac_in, p->in + pos + 4, len,
                                ewp_ac_in_max(len, EWP_FRAME_MAX + (1u << 20)),
                                &p->ac_frame) < 0)
                return -1;
            if (d->ops != NULL && d->ops->frame != NULL)
                d->ops->frame(d->ctx, p, p->ac_frame.b, p->ac_frame.len);
        } else if (d->ops != NULL && d->ops->frame != NULL) {
            d->ops->frame(d->ctx, p, p->in + pos + 4, len);
        }
        pos += 4 + (size_t)len;
    }
    if (p->ac_frame.cap > 4 * READ_CHUNK)
        ewp_ac_buf_free(&p->ac_frame);
    if (p->dead)
        return 0;
    memmove(p->in, p->in + pos, p->in_len - pos);
    p->in_len -= pos;
    /* a large buffer left behind by one large frame is given back */
    if (p->in_len == 0 && p->in_cap > 4 * READ_CHUNK) {
        free(p->in);
        p->in = NULL;
        p->in_cap = 0;
    }
    return 0;
}
