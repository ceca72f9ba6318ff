/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * fuzz_dispatch's checks besides the sanitizers': every frame offered to a
 * peer is well-formed and of a control the daemon sends (and may be the
 * reply a call waits for); every peer named by the code under test is one
 * the fake transport has not torn down; after each step no frame is open
 * and every handle has a live peer and one fake capture. With
 * $EWP_FUZZ_TRACE set, every frame is printed.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ei.h>

#include "decode.h"
#include "encode.h"
#include "handles.h"

#include "fuzz_dispatch.h"

static void trace_frame(const struct ewp_peer *p, const char *buf, size_t len, int msg);

/* 'p', 131, Control, [131, Message]: every term checked, nothing left over,
 * a control the daemon sends, a message exactly with SEND. Returns 1 for a
 * SEND to fz.expect_to. */
int
fz_check_frame(const struct ewp_peer *p, const char *buf, size_t len)
{
    const char *name = fz_peer_names[p->slot];
    erlang_pid to;
    int i = 2, msg = -1, arity, reply = 0;
    long op;

    FUZZ_CHECK(len >= 3 && buf[0] == EWP_PASS_THROUGH &&
                   (unsigned char)buf[1] == EWP_VERSION_MAGIC,
               "frame of %zu bytes to %s does not start with 'p', 131", len, name);
    FUZZ_CHECK(ewp_decode_check(buf, len, &i) == 0, "bad control term in a frame to %s", name);
    if ((size_t)i < len) {
        FUZZ_CHECK((unsigned char)buf[i] == EWP_VERSION_MAGIC, "no version byte before message");
        msg = ++i;
        FUZZ_CHECK(ewp_decode_check(buf, len, &i) == 0, "bad message term in a frame to %s",
                   name);
        FUZZ_CHECK((size_t)i == len, "%zu bytes after the message", len - (size_t)i);
    }
    if (fz.trace)
        trace_frame(p, buf, len, msg);
    i = 2;
    FUZZ_CHECK(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity >= 3 &&
                   ei_decode_long(buf, &i, &op) == 0,
               "control is not {Op, ...}");
    switch (op) {
    case EWP_DOP_SEND: /* {2, '', To} */
        FUZZ_CHECK(arity == 3 && msg > 0, "SEND without a message");
        FUZZ_CHECK(ei_skip_term(buf, &i) == 0 && ei_decode_pid(buf, &i, &to) == 0,
                   "SEND to a non-pid");
        reply = fz.expect_to != NULL && ei_cmp_pids(&to, (erlang_pid *)fz.expect_to) == 0;
        break;
    case EWP_DOP_LINK:
    case EWP_DOP_EXIT:
    case EWP_DOP_MONITOR_P:
    case EWP_DOP_DEMONITOR_P:
    case EWP_DOP_MONITOR_P_EXIT:
    case EWP_DOP_SPAWN_REPLY:
    case EWP_DOP_UNLINK_ID:
    case EWP_DOP_UNLINK_ID_ACK:
        FUZZ_CHECK(msg < 0, "control %ld with a message", op);
        break;
    default:
        FUZZ_CHECK(0, "control %ld sent", op);
    }
    return reply;
}

/* p must be connected, dropped and not yet reaped, or in its peer_down: a
 * torn-down peer was freed.
 * Compared as a pointer first, so the message names the bug. */
void
fz_known_peer(const struct ewp_peer *p, const char *what)
{
    const struct ewp_peer *q;

    if (p != NULL && (p == fz.dist.live[0] || p == fz.dist.live[1] || p == fz.dist.reaping))
        return;
    for (q = fz.dist.dead; q != NULL; q = q->next)
        if (q == p)
            return;
    FUZZ_CHECK(0, "%s for a torn-down or unknown peer %p", what, (const void *)p);
}

/* After every step (and its reap): no frame half-filled; every handle in
 * the table belongs to a connected node; one fake capture per handle. */
void
fz_check_state(void)
{
    const struct ewp_handle *h;
    const struct ewp_peer *left;
    int n = 0;

    if ((left = fz_frame_open()) != NULL)
        FUZZ_CHECK(0, "a frame for %s left open", fz_peer_names[left->slot]);
    FUZZ_CHECK(fz.dist.dead == NULL, "a dropped peer not reaped");
    for (h = ewp_handles_first(fz.req.handles); h != NULL; h = h->next, n++) {
        FUZZ_CHECK(h->peer != NULL && (h->peer == fz.dist.live[0] || h->peer == fz.dist.live[1]),
                   "handle %s of a torn-down peer %p", h->device, (const void *)h->peer);
        FUZZ_CHECK(!h->peer->dead, "handle %s of a dead peer after reap", h->device);
    }
    FUZZ_CHECK(n == ewp_handles_count(fz.req.handles), "%d handles in the table, count %d", n,
               ewp_handles_count(fz.req.handles));
    FUZZ_CHECK(fz.ncaps == n, "%d captures open for %d handles", fz.ncaps, n);
}

/* To peer: Control [Message], for reading what a reproducer does */
static void
trace_frame(const struct ewp_peer *p, const char *buf, size_t len, int msg)
{
    char *ctl = NULL, *m = NULL;
    int i = 2;

    (void)len;
    (void)ei_s_print_term(&ctl, buf, &i);
    if (msg > 0) {
        i = msg;
        (void)ei_s_print_term(&m, buf, &i);
    }
    (void)fprintf(stderr, "fuzz_dispatch: to %s: %s %s\n", fz_peer_names[p->slot], ctl != NULL ? ctl : "?",
                  m != NULL ? m : "");
    free(ctl);
    free(m);
}
