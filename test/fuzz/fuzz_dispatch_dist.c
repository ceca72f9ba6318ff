/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * fuzz_dispatch's fake transport: dist.h's functions over two nodes'
 * connections, with dist.c's rule (see the top of fuzz_dispatch.c: a send
 * that fails marks the peer dead and returns -1, nothing more), its
 * prepare step (fz_reap: queued output written, then peer_down for each
 * dropped peer, which is freed) and the frames filled in place, whose
 * misuse (a write past the reservation, a pointer kept after a move, a
 * send while one is open) is a finding. Every frame offered to a peer is
 * checked (fuzz_dispatch_check.c).
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

/* A node that sends is connected; after a drop, as a new connection */
struct ewp_peer *
fz_peer_in(int slot)
{
    struct ewp_peer *p = fz.dist.live[slot];

    if (p == NULL) {
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
    struct ewp_peer *p;
    int k;

    FUZZ_CHECK(fz.dist.filling == NULL, "a frame left open at the prepare step");
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
        free(p);
    }
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
    FUZZ_CHECK(fz.dist.filling == NULL, "send while a frame is being filled in place");
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

/* The body is at out[cur] + 4, behind the length as in dist.c. Growing
 * moves it to the other buffer and poisons the old one, so a stale
 * pointer is caught; everything past the reservation is poisoned. A
 * fresh reserve fails for a dead peer, or dropping it when 'X' says so;
 * any reserve past FAKE_PACKET_MAX fails (a failed growth keeps the frame,
 * as dist.c's does). */
char *
ewp_peer_reserve_more(struct ewp_peer *p, size_t have, size_t more)
{
    int to = fz.cur;

    fz_known_peer(p, "reserve");
    FUZZ_CHECK(fz.dist.filling == NULL || fz.dist.filling == p,
               "frames filled for two peers at once");
    if (have > 0) {
        FUZZ_CHECK(fz.dist.filling == p && have <= p->reserved,
                   "grow a frame of %zu bytes, %zu reserved", have, p->reserved);
        FUZZ_CHECK(!p->dead, "grow a frame of a dead peer");
    } else {
        fz.dist.filling = NULL;
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
        to = !fz.cur;
    ASAN_POISON_MEMORY_REGION(fz.out[to], fz.open_len[to]);
    ASAN_UNPOISON_MEMORY_REGION(fz.out[to], 4 + have + more);
    fz.open_len[to] = 4 + have + more;
    if (to != fz.cur) {
        memcpy(fz.out[to], fz.out[fz.cur], 4 + have);
        ASAN_POISON_MEMORY_REGION(fz.out[fz.cur], fz.open_len[fz.cur]);
        fz.open_len[fz.cur] = 0;
        fz.cur = to;
    }
    fz.dist.filling = p;
    p->reserved = have + more;
    return (char *)fz.out[fz.cur] + 4;
}

char *
ewp_peer_frame_body(struct ewp_peer *p)
{
    fz_known_peer(p, "frame body");
    FUZZ_CHECK(fz.dist.filling == p, "frame body asked for with no frame reserved");
    return (char *)fz.out[fz.cur] + 4;
}

void
ewp_peer_commit(struct ewp_peer *p, size_t used)
{
    fz_known_peer(p, "commit");
    FUZZ_CHECK(fz.dist.filling == p, "commit with no frame reserved");
    FUZZ_CHECK(!p->dead, "commit to a dead peer");
    FUZZ_CHECK(used <= p->reserved, "commit of %zu bytes, %zu reserved", used, p->reserved);
    (void)fz_check_frame(p, (const char *)fz.out[fz.cur] + 4, used);
    fz.dist.filling = NULL;
    p->queued += used + 4;
    p->sent++;
    ASAN_POISON_MEMORY_REGION(fz.out[fz.cur], fz.open_len[fz.cur]);
    fz.open_len[fz.cur] = 0;
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
