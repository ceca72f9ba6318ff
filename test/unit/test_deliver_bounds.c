/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What batches cost the daemon's memory (deliver.c, dist.c, outq.c): a
 * batch growing in place leaves no empty chunk behind it; the buffers of
 * handles that gather their batches themselves count among their node's
 * packets; and through random rounds of handles of one node fed, flushed
 * and read in part, every count dist.c keeps matches what is queued and
 * held, and every packet read back arrives whole, in order and once, or
 * is a drop. On the stack of test_deliver.h.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ev.h>

#include "atomcache.h"
#include "dist.h"
#include "dist_int.h"
#include "handles.h"
#include "stack.h"
#include "test_deliver.h"

/* Batches of 1 MiB (BATCH_BYTES) built in place behind a queued message:
 * each frame outgrows its chunk three times. The chunks it moves out of
 * are given back, not left in the queue until the socket drains to them
 * (which had the queue hold twice what it queued, outside every cap). */
static void
test_growing_batch_leaves_no_chunks(void)
{
    struct ewp_handle *h = ewp_tdv_fed(64u << 20, 65536, 1, 1500, 0);
    size_t queued, held;
    unsigned i;

    ewp_tdv_flush(h); /* a first message, so the queue is not empty */
    for (i = 1; i < 8 * 700; i++)
        ewp_tdv_feed(h, 0, i, 1500);
    ewp_tdv_flush(h);
    queued = ewp_peer_queued(ewp_stack.peer);
    held = ewp_peer_held(ewp_stack.peer);
    CU_ASSERT(queued > 8 * 700 * 1500);
    CU_ASSERT(held <= queued + queued / 4 + (1u << 20));
    CU_ASSERT_EQUAL(h->drops, 0);
    ewp_stack_teardown();
}

/* The bytes of the handles' own buffers */
static size_t
own_buffers(struct ewp_handle **hs, unsigned n)
{
    size_t sum = 0;
    unsigned k;

    for (k = 0; k < n; k++)
        sum += hs[k]->batch_room;
    return sum;
}

/* Four handles of one node on a shared capture, batches of 65,536 (1 MiB):
 * one builds in place, the others gather in their own buffers. Those count
 * among the node's packets (1 MiB here), so together they never pass it,
 * the node's queue included; every packet is sent or a drop; and their
 * closes give the count back. */
static void
test_own_buffers_count_as_packets(void)
{
    struct ewp_handle *hs[4];
    size_t peak = 0, packet_max;
    unsigned i, k;

    ewp_tdv_start(2u << 20);
    packet_max = ewp_stack.dist->packet_max;
    for (k = 0; k < 4; k++)
        hs[k] = ewp_tdv_open(65536);
    for (i = 0; i < 699; i++) {
        for (k = 0; k < 4; k++)
            ewp_tdv_feed(hs[k], k, i, 1500);
        if (own_buffers(hs, 4) > peak)
            peak = own_buffers(hs, 4);
        CU_ASSERT(own_buffers(hs, 4) + ewp_peer_queued(ewp_stack.peer) +
                      ewp_stack.peer->building <= packet_max);
    }
    CU_ASSERT(peak > 0); /* they did gather */
    CU_ASSERT_EQUAL(ewp_stack.peer->held, own_buffers(hs, 4));
    for (k = 0; k < 4; k++)
        ewp_tdv_flush(hs[k]);
    for (k = 0; k < 4; k++)
        CU_ASSERT_EQUAL(hs[k]->packets + hs[k]->drops, 699);
    CU_ASSERT_EQUAL(ewp_stack.peer->held, own_buffers(hs, 4)); /* the kept ones */
    for (k = 0; k < 4; k++)
        ewp_handle_close(hs[k], 1, "test");
    CU_ASSERT_EQUAL(ewp_stack.peer->held, 0);
    CU_ASSERT_EQUAL(ewp_stack.dist->out_held, 0);
    ewp_stack_teardown();
}

static unsigned rnd_state;

static unsigned
rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) & 0xffffff;
}

/* Outside a dispatch: no frame open, and dist.c's counts are what its
 * one peer queues and its handles hold */
static void
check_counts(struct ewp_handle **hs, unsigned n)
{
    struct ewp_dist *d = ewp_stack.dist;
    struct ewp_peer *p = ewp_stack.peer;

    CU_ASSERT_EQUAL(p->building, 0);
    CU_ASSERT_EQUAL(d->out_building, 0);
    CU_ASSERT_EQUAL(d->out_total, ewp_peer_queued(p));
    CU_ASSERT_EQUAL(p->held, own_buffers(hs, n));
    CU_ASSERT_EQUAL(d->out_held, p->held);
    CU_ASSERT_EQUAL(d->spares.n, (unsigned)p->out.nspare);
}

/* Rounds of 0 to 299 packets of 3 to 16,000 bytes for three handles of one
 * node (batches of 5, 300 and 1) in random turns, each round a dispatch
 * (then a flush of each) and a run of the loop, the socket read in two
 * rounds of three, with the atom cache when ac is set; the counts checked
 * after each, then everything read back: each handle's packets whole, in
 * order, once, in batches of at most its size, the rest drops */
static void
random_rounds(struct ewp_ac_in *ac, unsigned seed)
{
    static const int batch[3] = {5, 300, 1};
    const size_t cap = 64u << 20;
    char *in = malloc(cap);
    struct ewp_handle *hs[3];
    unsigned seq[3] = {0, 0, 0}, round, i, k;
    size_t have = 0;
    ssize_t r;

    CU_ASSERT_FATAL(in != NULL);
    rnd_state = seed;
    ewp_tdv_start(4u << 20); /* packets: 2 MiB */
    if (ac != NULL)
        CU_ASSERT_FATAL(ewp_peer_use_atom_cache(ewp_stack.peer) == 0);
    for (k = 0; k < 3; k++)
        hs[k] = ewp_tdv_open(batch[k]);
    for (round = 0; round < 300; round++) {
        unsigned n = rnd() % 300;

        for (i = 0; i < n; i++) {
            k = rnd() % 3;
            if (seq[k] < MAX_SEEN - 1 && rnd() % 4 != 0)
                ewp_tdv_feed(hs[k], k, seq[k]++, 3 + rnd() % 16000);
        }
        for (k = 0; k < 3; k++)
            ewp_tdv_flush(hs[k]);
        check_counts(hs, 3);
        (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT);
        if (rnd() % 3 != 0) {
            while (have < cap && (r = read(ewp_stack.fds[1], in + have, cap - have)) > 0)
                have += (size_t)r;
            (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT);
        }
        check_counts(hs, 3);
    }
    for (i = 0; i < 50 && ewp_peer_queued(ewp_stack.peer) > 0; i++) {
        (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT);
        while (have < cap && (r = read(ewp_stack.fds[1], in + have, cap - have)) > 0)
            have += (size_t)r;
    }
    CU_ASSERT_FATAL(have < cap);
    CU_ASSERT_EQUAL(ewp_peer_queued(ewp_stack.peer), 0);
    ewp_tdv_parse(ac, in, have);
    for (k = 0; k < 3; k++) {
        CU_ASSERT(hs[k]->drops > 0 || k == 2); /* the cap was reached */
        CU_ASSERT_EQUAL(ewp_tdv_got[k].nseen, hs[k]->packets);
        CU_ASSERT_EQUAL(hs[k]->packets + hs[k]->drops, seq[k]);
        for (i = 1; i < ewp_tdv_got[k].nseen; i++)
            CU_ASSERT(ewp_tdv_got[k].seen[i] > ewp_tdv_got[k].seen[i - 1]);
        CU_ASSERT(ewp_tdv_got[k].largest <= (size_t)batch[k]);
    }
    free(in);
    ewp_stack_teardown();
}

static void
test_random_rounds(void)
{
    random_rounds(NULL, 12345);
}

static void
test_random_rounds_atom_cache(void)
{
    struct ewp_ac_in *ac = ewp_ac_in_new();

    CU_ASSERT_FATAL(ac != NULL);
    random_rounds(ac, 54321);
    ewp_ac_in_free(ac);
}

CU_TestInfo ewp_deliver_bounds_tests[] = {
    {"a growing batch leaves no empty chunk in the queue", test_growing_batch_leaves_no_chunks},
    {"handles' own batch buffers count as the node's packets", test_own_buffers_count_as_packets},
    {"random rounds: counts, and every packet once or a drop", test_random_rounds},
    {"... to a node with the atom cache", test_random_rounds_atom_cache},
    CU_TEST_INFO_NULL,
};
