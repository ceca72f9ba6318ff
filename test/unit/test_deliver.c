/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Batches built in place in the node's output buffer (deliver.c). The
 * handles are savefile handles of the real stack (stack.h) with their
 * captures stopped; the tests hand them packets through their capture's
 * callbacks, as a dispatch of a shared capture does (interleaved, then one
 * flush each), and decode every frame the daemon wrote to the socketpair:
 * each handle's packets must arrive whole, in order, once, in batches of
 * at most its size, and what had no room must be counted as drops.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "atomcache.h"
#include "capture.h"
#include "dist.h"
#include "handles.h"
#include "outq.h"
#include "stack.h"
#include "test_deliver.h"


/* One handle alone: every batch is written where it is sent from (its own
 * buffer is never used), full but the last */
static void
test_lone_batch_in_place(void)
{
    struct ewp_handle *h = ewp_tdv_fed(8u << 20, 4, 10, 60, 100);

    ewp_tdv_flush(h);
    CU_ASSERT(h->batch_buf == NULL);
    CU_ASSERT_EQUAL(h->packets, 10);
    CU_ASSERT_EQUAL(h->drops, 0);
    ewp_tdv_read_back();
    ewp_tdv_assert_all(0, 10);
    CU_ASSERT_EQUAL(ewp_tdv_got[0].messages, 3); /* 4, 4, 2 */
    CU_ASSERT_EQUAL(ewp_tdv_got[0].largest, 4);
    ewp_stack_teardown();
}

/* Three handles of one node given packets in turn, as a shared capture
 * does: a batch of 4, a batch of 3 and one packet per message, 24 each,
 * then each flushed; the frames read back (against ac, if the node took
 * the atom cache). Each one's packets arrive whole and in order. */
static void
interleave(struct ewp_ac_in *ac, struct ewp_handle *hs[3])
{
    static const int batch[3] = {4, 3, 1};
    unsigned i, k;

    for (k = 0; k < 3; k++)
        hs[k] = ewp_tdv_open(batch[k]);
    for (i = 0; i < 24; i++) {
        ewp_tdv_feed(hs[0], 0, i, 100 + (i * 37) % 1400);
        ewp_tdv_feed(hs[1], 1, i, 64 + (i * 53) % 1500);
        ewp_tdv_feed(hs[2], 2, i, 80);
    }
    for (k = 0; k < 3; k++)
        ewp_tdv_flush(hs[k]);
    ewp_tdv_read_back_ac(ac);
    for (k = 0; k < 3; k++) {
        ewp_tdv_assert_all(k, 24);
        CU_ASSERT_EQUAL(ewp_tdv_got[k].largest, (size_t)batch[k]);
        CU_ASSERT_EQUAL(hs[k]->packets, 24);
        CU_ASSERT_EQUAL(hs[k]->drops, 0);
    }
}

/* A batch cut short by another handle's write leaves the rest of that
 * dispatch's batches full */
static void
test_interleaved_handles(void)
{
    struct ewp_handle *hs[3];

    ewp_tdv_start(8u << 20);
    interleave(NULL, hs);
    /* at most one batch cut short in the dispatch, and the last */
    CU_ASSERT(ewp_tdv_got[0].messages <= 24 / 4 + 2);
    CU_ASSERT(ewp_tdv_got[1].messages <= 24 / 3 + 2);
    CU_ASSERT_EQUAL(ewp_tdv_got[2].messages, 24);
    /* the flush ends the dispatch: in place again at the next */
    CU_ASSERT(!hs[0]->contended && !hs[1]->contended);
    ewp_stack_teardown();
}

/* The same to a node that took the atom cache: a head written when a
 * frame opens puts its atoms in the cache, and every frame, committed in
 * the order the heads were written, reads back against it */
static void
test_interleaved_atom_cache(void)
{
    struct ewp_ac_in *ac = ewp_ac_in_new();
    struct ewp_handle *hs[3];

    CU_ASSERT_FATAL(ac != NULL);
    ewp_tdv_start(8u << 20);
    CU_ASSERT_FATAL(ewp_peer_use_atom_cache(ewp_stack.peer) == 0);
    interleave(ac, hs);
    CU_ASSERT(hs[0]->tmpl != NULL && hs[2]->tmpl != NULL);
    ewp_ac_in_free(ac);
    ewp_stack_teardown();
}

/* A batch larger than the frame's first reservation and than a chunk of
 * the output queue: it grows, and moves to a larger chunk, whole */
static void
test_frame_grows_across_chunks(void)
{
    struct ewp_handle *h = ewp_tdv_fed(8u << 20, 64, 60, 9000, 1);

    ewp_tdv_flush(h);
    CU_ASSERT_EQUAL(h->packets, 60);
    ewp_tdv_read_back();
    ewp_tdv_assert_all(0, 60);
    CU_ASSERT_EQUAL(ewp_tdv_got[0].messages, 1);
    ewp_stack_teardown();
}

/* The node's buffer has room for part of a batch: the packets past it
 * are drops, those before it arrive in a whole frame */
static void
test_frame_without_room(void)
{
    /* packets: at most 512 KiB queued */
    struct ewp_handle *h = ewp_tdv_fed(1u << 20, 64, 64, 12000, 0);

    ewp_tdv_flush(h);
    CU_ASSERT(h->drops > 0 && h->packets > 0);
    CU_ASSERT_EQUAL(h->packets + h->drops, 64);
    ewp_tdv_read_back();
    ewp_tdv_assert_all(0, (unsigned)h->packets);
    ewp_stack_teardown();
}

/* The node is dropped while a frame is open: its packets are drops,
 * nothing is committed to the dead peer, and the reap frees it all */
static void
test_frame_open_when_node_drops(void)
{
    struct ewp_handle *h = ewp_tdv_fed(8u << 20, 8, 3, 500, 0);
    size_t before = ewp_peer_queued(ewp_stack.peer);

    ewp_peer_drop(ewp_stack.peer, "test");
    ewp_tdv_flush(h);
    CU_ASSERT_EQUAL(h->drops, 3);
    CU_ASSERT_EQUAL(h->packets, 0);
    CU_ASSERT_EQUAL(ewp_peer_queued(ewp_stack.peer), before);
    ewp_dist_reap(ewp_stack.dist);
    CU_ASSERT_EQUAL(ewp_handles_count(ewp_stack.req.handles), 0);
    ewp_stack_teardown();
}

/* The output queue's allocations, counted */
static size_t allocs, alloc_bytes;

static void *
counting_malloc(size_t size)
{
    allocs++;
    alloc_bytes += size;
    return malloc(size);
}

/* A batch of about 1 MiB (BATCH_BYTES) behind a message already queued:
 * its frame outgrows chunk after chunk, and is moved a few times, not once
 * a packet (which had cost hundreds of allocations and copies) */
static void
test_large_batch_moves_few_times(void)
{
    struct ewp_handle *h = ewp_tdv_fed(64u << 20, 2000, 1, 1500, 0);
    unsigned i;

    ewp_tdv_flush(h); /* a first message, so the queue is not empty */
    allocs = alloc_bytes = 0;
    ewp_outq_malloc = counting_malloc;
    for (i = 1; i < 700; i++)
        ewp_tdv_feed(h, 0, i, 1500);
    ewp_tdv_flush(h);
    ewp_outq_malloc = malloc;
    CU_ASSERT(allocs <= 8);
    CU_ASSERT(alloc_bytes <= (4u << 20));
    CU_ASSERT(ewp_peer_held(ewp_stack.peer) <= (5u << 20));
    CU_ASSERT_EQUAL(h->drops, 0);
    ewp_tdv_read_back();
    ewp_tdv_assert_all(0, 700);
    ewp_stack_teardown();
}

/* Two nodes' frames being built at once, as one dispatch of a capture
 * shared by their handles builds them: the room reserved for the first
 * counts against the packets' total for all peers */
static void
test_frames_count_against_the_total(void)
{
    struct ewp_dist_config cfg = {.ticktime = 60, .total_max = 1u << 20};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct ewp_dist_ops ops = {0};
    struct ewp_dist *d = ewp_dist_new(loop, &cfg, &ops, NULL);
    struct ewp_peer *p1, *p2;
    int a[2], b[2];

    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0 &&
                    socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0);
    (void)fcntl(a[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(b[0], F_SETFL, O_NONBLOCK);
    p1 = ewp_dist_adopt(d, a[0], "a@host", NULL, 0);
    p2 = ewp_dist_adopt(d, b[0], "b@host", NULL, 0);
    CU_ASSERT_FATAL(p1 != NULL && p2 != NULL);
    CU_ASSERT_FATAL(ewp_peer_reserve(p1, 600u << 10) != NULL);
    CU_ASSERT(ewp_peer_reserve(p2, 600u << 10) == NULL);
    CU_ASSERT(ewp_peer_reserve(p2, 300u << 10) != NULL);
    /* the first one committed smaller: its room is given back */
    ewp_peer_commit(p1, 100u << 10);
    CU_ASSERT(ewp_peer_reserve_more(p2, 0, 800u << 10) != NULL);
    CU_ASSERT(ewp_peer_reserve(p1, 300u << 10) == NULL);
    ewp_dist_free(d);
    (void)close(a[1]);
    (void)close(b[1]);
    ev_loop_destroy(loop);
}

/* A frame sent while another is being built would be written over it:
 * the peer is dropped instead (deliver.c never does this; the guard keeps
 * a mistake from corrupting the stream) */
static void
test_send_while_building(void)
{
    ewp_tdv_start(8u << 20);
    CU_ASSERT_FATAL(ewp_peer_reserve(ewp_stack.peer, 1000) != NULL);
    CU_ASSERT_EQUAL(ewp_peer_send(ewp_stack.peer, "p", 1), -1);
    CU_ASSERT(ewp_peer_dead(ewp_stack.peer));
    ewp_stack_teardown();
}

/* The loop's write step with a frame still open (deliver.c closes its
 * frames by the end of their dispatch): draining the queue would reset
 * the chunk under the frame, so the peer is dropped instead */
static void
test_write_while_building(void)
{
    ewp_tdv_start(8u << 20);
    CU_ASSERT_FATAL(ewp_peer_send(ewp_stack.peer, "p", 1) == 0);
    CU_ASSERT_FATAL(ewp_peer_reserve(ewp_stack.peer, 1000) != NULL);
    (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT); /* dropped and reaped */
    CU_ASSERT(ewp_dist_peer_by_name(ewp_stack.dist, "a@host") == NULL);
    ewp_stack_teardown();
}

CU_TestInfo ewp_deliver_tests[] = {
    {"a lone batch handle builds its batches in place", test_lone_batch_in_place},
    {"handles of one node interleaved in a dispatch", test_interleaved_handles},
    {"... to a node with the atom cache", test_interleaved_atom_cache},
    {"a batch grows past its reservation and a chunk", test_frame_grows_across_chunks},
    {"a batch with room for part of it", test_frame_without_room},
    {"a node dropped while a batch is open", test_frame_open_when_node_drops},
    {"a batch of 1 MiB moves a few times, not once a packet", test_large_batch_moves_few_times},
    {"frames being built count against the total", test_frames_count_against_the_total},
    {"a send while a frame is being built drops the peer", test_send_while_building},
    {"a write while a frame is being built drops the peer", test_write_while_building},
    CU_TEST_INFO_NULL,
};
