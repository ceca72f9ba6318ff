/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * fuzz_dispatch's fake transport: dist.h's functions over two nodes'
 * connections, with dist.c's rule (see the top of fuzz_dispatch.c: a send
 * that fails marks the peer dead and returns -1, nothing more), its
 * prepare step (fz_reap: queued output written, then peer_down for each
 * dropped peer, which is freed) and the frames filled in place. As in
 * dist.c, each peer may have one frame open at a time, whatever the other
 * has open (a shared capture's dispatch builds a batch for each of its
 * members' nodes); what dist.c would drop the peer for with an internal
 * error, or would get wrong silently, is a finding: a send to a peer with
 * a frame open, a second frame opened before the first is committed, a
 * frame left open past a dispatch, a write past the reservation, a pointer
 * kept after the frame moved. Every frame offered to a peer is checked
 * (fuzz_dispatch_check.c).
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "dist.h"
#include "router.h"

#include "fuzz_dispatch.h"

const char *const fz_peer_names[2] = {"fuzz@host", "other@host"};

static int fail_now(struct ewp_peer *p);
static char *frame_at(const struct ewp_peer *p);

/* A node that sends is connected; after a drop, as a new connection */
struct ewp_peer *
fz_peer_in(int slot)
{
    struct ewp_peer *p = fz.dist.live[slot];

    if (p == NULL) {
        /* its node's buffers are free: no frame outlives a step */
        FUZZ_CHECK(fz_frame_open() == NULL, "a frame open when %s connects",
                   fz_peer_names[slot]);
        p = calloc(1, sizeof(*p));
        FUZZ_CHECK(p != NULL, "out of memory");
        p->slot = slot;
        fz.dist.live[slot] = p;
    }
    return p;
}

/* ewp_dist_reap: write what is queued, then peer_down and free each peer
 * dropped since the last time (peer_down may drop others: until none) */
void
fz_reap(void)
{
    const struct ewp_peer *left;
    struct ewp_peer *p;
    int k;

    if ((left = fz_frame_open()) != NULL)
        FUZZ_CHECK(0, "a frame for %s left open at the prepare step", fz_peer_names[left->slot]);
    for (k = 0; k < 2; k++)
        if ((p = fz.dist.live[k]) != NULL && !p->congested)
            p->queued = 0;
    while ((p = fz.dist.dead) != NULL) {
        fz.dist.dead = p->next;
        fz.dist.reaping = p;
        if (fz.trace)
            (void)fprintf(stderr, "fuzz_dispatch: %s down\n", fz_peer_names[p->slot]);
        ewp_router_dist_ops.peer_down(&fz.router, p);
        fz.dist.reaping = NULL;
        /* its handles were closed at its peer_down: their own buffers with them */
        FUZZ_CHECK(p->held == 0, "%s freed holding %zu bytes of its handles' batches",
                   fz_peer_names[p->slot], p->held);
        free(p);
    }
}

/* A peer with a frame open, connected or dropped, or NULL. (No peer is
 * dropped with a frame open: a send or a fresh reserve to it fails a
 * check first, and 'D' and the reset come between steps.) */
const struct ewp_peer *
fz_frame_open(void)
{
    const struct ewp_peer *p;
    int k;

    for (k = 0; k < 2; k++)
        if (fz.dist.live[k] != NULL && fz.dist.live[k]->open)
            return fz.dist.live[k];
    for (p = fz.dist.dead; p != NULL; p = p->next)
        if (p->open)
            return p;
    return NULL;
}

/* ---- dist.h: the rule of dist.c, see the top of fuzz_dispatch.c ---- */

/* An armed 'X' for p's node counts down; at zero this send or reserve fails */
static int
fail_now(struct ewp_peer *p)
{
    int *n = &fz.dist.fail_in[p->slot];

    return *n > 0 && --*n == 0;
}

/* Queue one frame; -1 when the peer is dead or is dropped now */
int
ewp_peer_send(struct ewp_peer *p, const char *body, size_t len)
{
    int reply;

    fz_known_peer(p, "send");
    /* dist.c drops the peer: "internal: a frame sent while one is being
     * built"; deliver.c closes the frame it builds before any send */
    FUZZ_CHECK(!p->open, "send to %s while its frame is being filled in place",
               fz_peer_names[p->slot]);
    reply = fz_check_frame(p, body, len);
    if (p->dead)
        return -1;
    if (fail_now(p) || p->queued + len + 4 > FAKE_OUT_MAX) {
        ewp_peer_drop(p, "output buffer full");
        return -1;
    }
    p->queued += len + 4;
    p->sent++;
    fz.replied |= reply;
    return 0;
}

char *
ewp_peer_reserve(struct ewp_peer *p, size_t max)
{
    return ewp_peer_reserve_more(p, 0, max);
}

/* The body is at out[slot][cur[slot]] + 4, behind the length as in
 * dist.c: each node has its own pair of buffers (one peer of a node at a
 * time: a new connection comes between steps, when no frame is open).
 * Growing moves the body to the other buffer and poisons the old one, so
 * a stale pointer is caught; everything past the reservation is poisoned.
 * A fresh reserve fails for a dead peer, or dropping it when 'X' says so;
 * any reserve past FAKE_PACKET_MAX fails (a failed growth keeps the frame,
 * as dist.c's does). */
char *
ewp_peer_reserve_more(struct ewp_peer *p, size_t have, size_t more)
{
    unsigned char (*out)[OUT_SIZE];
    size_t *open_len;
    int *cur, to;

    fz_known_peer(p, "reserve");
    out = fz.out[p->slot];
    open_len = fz.open_len[p->slot];
    cur = &fz.cur[p->slot];
    to = *cur;
    if (have > 0) {
        FUZZ_CHECK(p->open && have <= p->reserved, "grow a frame of %zu bytes, %zu reserved",
                   have, p->open ? p->reserved : 0);
        FUZZ_CHECK(!p->dead, "grow a frame of a dead peer");
    } else {
        /* dist.c would reserve over the open frame, its bytes lost to
         * the handle still building it */
        FUZZ_CHECK(!p->open, "a second frame for %s while one is open",
                   fz_peer_names[p->slot]);
        if (p->dead)
            return NULL;
        if (fail_now(p)) {
            ewp_peer_drop(p, "connection reset");
            return NULL;
        }
    }
    if (have > OUT_SIZE || more > OUT_SIZE - 4 - have ||
        p->queued + have + more + 4 > FAKE_PACKET_MAX)
        return NULL;
    if (have > 0)
        to = !*cur;
    ASAN_POISON_MEMORY_REGION(out[to], open_len[to]);
    ASAN_UNPOISON_MEMORY_REGION(out[to], 4 + have + more);
    open_len[to] = 4 + have + more;
    if (to != *cur) {
        memcpy(out[to], out[*cur], 4 + have);
        ASAN_POISON_MEMORY_REGION(out[*cur], open_len[*cur]);
        open_len[*cur] = 0;
        *cur = to;
    }
    p->open = 1;
    p->reserved = have + more;
    return frame_at(p);
}

/* dist.c: counted against the packets' room, refused to a dead peer */
int
ewp_peer_hold(struct ewp_peer *p, size_t bytes)
{
    fz_known_peer(p, "hold");
    if (p->dead || bytes > FAKE_PACKET_MAX || p->queued + p->held + bytes > FAKE_PACKET_MAX)
        return -1;
    p->held += bytes;
    return 0;
}

void
ewp_peer_unhold(struct ewp_peer *p, size_t bytes)
{
    fz_known_peer(p, "unhold");
    FUZZ_CHECK(bytes <= p->held, "%s: %zu bytes given back, %zu held", fz_peer_names[p->slot],
               bytes, p->held);
    p->held -= bytes;
}

char *
ewp_peer_frame_body(struct ewp_peer *p)
{
    fz_known_peer(p, "frame body");
    FUZZ_CHECK(p->open, "frame body of %s asked for with no frame reserved",
               fz_peer_names[p->slot]);
    return frame_at(p);
}

void
ewp_peer_commit(struct ewp_peer *p, size_t used)
{
    int cur;

    fz_known_peer(p, "commit");
    FUZZ_CHECK(p->open, "commit to %s with no frame reserved", fz_peer_names[p->slot]);
    FUZZ_CHECK(!p->dead, "commit to a dead peer");
    FUZZ_CHECK(used <= p->reserved, "commit of %zu bytes, %zu reserved", used, p->reserved);
    (void)fz_check_frame(p, frame_at(p), used);
    cur = fz.cur[p->slot];
    p->open = 0;
    p->queued += used + 4;
    p->sent++;
    ASAN_POISON_MEMORY_REGION(fz.out[p->slot][cur], fz.open_len[p->slot][cur]);
    fz.open_len[p->slot][cur] = 0;
}

/* Marked dead, off the live list: fz_reap() tears it down. Never calls up. */
void
ewp_peer_drop(struct ewp_peer *p, const char *why)
{
    fz_known_peer(p, "drop");
    fuzz_touch(why, strlen(why));
    if (p->dead)
        return;
    if (fz.trace)
        (void)fprintf(stderr, "fuzz_dispatch: %s dropped: %s\n", fz_peer_names[p->slot], why);
    p->dead = 1;
    if (fz.dist.live[p->slot] == p)
        fz.dist.live[p->slot] = NULL;
    p->next = fz.dist.dead;
    fz.dist.dead = p;
}

/* Pass-through frames only: the fake peers never offer the atom cache
 * (its header and templates are fuzz_atomcache's) */
struct ewp_ac_out *
ewp_peer_atom_cache(const struct ewp_peer *p)
{
    fz_known_peer(p, "atom cache");
    return NULL;
}

int
ewp_peer_congested(const struct ewp_peer *p)
{
    fz_known_peer(p, "congested");
    return p->congested;
}

int
ewp_peer_dead(const struct ewp_peer *p)
{
    fz_known_peer(p, "dead");
    return p->dead;
}

size_t
ewp_peer_queued(const struct ewp_peer *p)
{
    fz_known_peer(p, "queued");
    return p->queued;
}

const char *
ewp_peer_name(const struct ewp_peer *p)
{
    fz_known_peer(p, "name");
    return fz_peer_names[p->slot];
}

/* Connected peers, node 0 first */
struct ewp_peer *
ewp_dist_peer_next(struct ewp_dist *d, struct ewp_peer *prev)
{
    int k = prev == NULL ? 0 : prev->slot + 1;

    FUZZ_CHECK(d == &fz.dist, "ewp_dist_peer_next of another transport");
    for (; k < 2; k++)
        if (d->live[k] != NULL)
            return d->live[k];
    return NULL;
}

struct ewp_peer *
ewp_dist_peer_by_name(struct ewp_dist *d, const char *name)
{
    int k;

    FUZZ_CHECK(d == &fz.dist, "ewp_dist_peer_by_name of another transport");
    for (k = 0; k < 2; k++)
        if (d->live[k] != NULL && strcmp(fz_peer_names[k], name) == 0)
            return d->live[k];
    return NULL;
}

/* The body of p's open frame */
static char *
frame_at(const struct ewp_peer *p)
{
    return (char *)fz.out[p->slot][fz.cur[p->slot]] + 4;
}
