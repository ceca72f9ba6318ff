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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <pcap/pcap.h>

#include "atomcache.h"
#include "be.h"
#include "capture.h"
#include "dist.h"
#include "handles.h"
#include "outq.h"
#include "stack.h"

#define MAX_HANDLES 4
#define MAX_SEEN 1024
#define IN_MAX (8u << 20)

/* what the frames read back held, per handle */
static struct {
    const struct ewp_handle *h;
    unsigned seen[MAX_SEEN];   /* sequence numbers, in arrival order */
    size_t nseen;
    size_t messages;           /* messages (a batch counts once) */
    size_t largest;            /* most packets in one message */
} got[MAX_HANDLES];
static size_t ngot;

/* {open_file, <<"known.pcap">>, [{batch, N}]} */
static void
enc_open_batch(ei_x_buff *x, const void *batch)
{
    CU_ASSERT(ei_x_encode_tuple_header(x, 3) == 0 && ei_x_encode_atom(x, "open_file") == 0 &&
              ei_x_encode_binary(x, "known.pcap", 10) == 0 &&
              ei_x_encode_list_header(x, 1) == 0 && ei_x_encode_tuple_header(x, 2) == 0 &&
              ei_x_encode_atom(x, "batch") == 0 &&
              ei_x_encode_long(x, (long)*(const int *)batch) == 0 &&
              ei_x_encode_empty_list(x) == 0);
}

/* A handle of batch n whose capture reads nothing by itself */
static struct ewp_handle *
open_batch(int n)
{
    struct ewp_handle *h = ewp_stack_open(enc_open_batch, &n);

    CU_ASSERT_FATAL(h->batch == n);
    ewp_capture_stop(&h->cap);
    CU_ASSERT_FATAL(ngot < MAX_HANDLES);
    memset(&got[ngot], 0, sizeof(got[ngot]));
    got[ngot++].h = h;
    return h;
}

/* Packet seq of handle h: byte 0 the handle's index, 1-2 seq, then a
 * pattern of both; len bytes */
static void
feed(struct ewp_handle *h, unsigned idx, unsigned seq, size_t len)
{
    static unsigned char pkt[16384];
    struct pcap_pkthdr hdr;
    size_t i;

    CU_ASSERT_FATAL(len >= 3 && len <= sizeof(pkt));
    pkt[0] = (unsigned char)idx;
    pkt[1] = (unsigned char)(seq >> 8);
    pkt[2] = (unsigned char)seq;
    for (i = 3; i < len; i++)
        pkt[i] = (unsigned char)(i * 7 + seq + idx);
    memset(&hdr, 0, sizeof(hdr));
    hdr.ts.tv_sec = 1700000000 + (time_t)seq;
    hdr.ts.tv_usec = (suseconds_t)seq;
    hdr.caplen = (bpf_u_int32)len;
    hdr.len = (bpf_u_int32)len + 4;
    h->cap.packet_cb(&h->cap, &hdr, pkt);
}

static void
flush(struct ewp_handle *h)
{
    if (h->cap.flush_cb != NULL)
        h->cap.flush_cb(&h->cap);
}

/* One {Time, Length, Packet} or the last three of {ewpcap, ...} */
static void
check_packet(const char *b, int *idx, size_t who)
{
    char pkt[16384];
    long len, plen;
    unsigned seq;
    int type, size;
    long i;

    CU_ASSERT_FATAL(ei_skip_term(b, idx) == 0); /* Time */
    CU_ASSERT_FATAL(ei_decode_long(b, idx, &len) == 0);
    CU_ASSERT_FATAL(ei_get_type(b, idx, &type, &size) == 0 && type == ERL_BINARY_EXT &&
                    (size_t)size <= sizeof(pkt));
    CU_ASSERT_FATAL(ei_decode_binary(b, idx, pkt, &plen) == 0);
    CU_ASSERT_FATAL(plen >= 3 && len == plen + 4);
    CU_ASSERT_FATAL((unsigned char)pkt[0] == who);
    seq = ((unsigned)(unsigned char)pkt[1] << 8) | (unsigned char)pkt[2];
    for (i = 3; i < plen; i++)
        if ((unsigned char)pkt[i] != (unsigned char)(i * 7 + seq + who))
            break;
    CU_ASSERT(i == plen);
    CU_ASSERT_FATAL(got[who].nseen < MAX_SEEN);
    got[who].seen[got[who].nseen++] = seq;
}

/* Every frame written so far, decoded into got[]; with ac (a peer that
 * took the atom cache), each is spelled out first as dist.c does */
static void
read_back_ac(struct ewp_ac_in *ac)
{
    static char in[IN_MAX];
    size_t have = ewp_stack_read(in, sizeof(in)), pos = 0;
    struct ewp_ac_buf plain = {NULL, 0, 0};

    CU_ASSERT_FATAL(have < sizeof(in));
    while (pos + 4 <= have) {
        uint32_t len = ewp_get_be32(in + pos);
        const char *b = in + pos + 4;
        char atom[MAXATOMLEN];
        erlang_ref ref;
        int idx = 1, ver, arity, n, i, nil;
        long op, dlt;
        size_t who;

        CU_ASSERT_FATAL(pos + 4 + len <= have);
        pos += 4 + len;
        if (len == 0)
            continue;
        if (ac != NULL) {
            CU_ASSERT_FATAL(ewp_ac_in_frame(ac, b, len, ewp_ac_in_max(len, IN_MAX), &plain) == 0);
            b = plain.b;
            len = (uint32_t)plain.len;
        }
        CU_ASSERT_FATAL(b[0] == 'p');
        CU_ASSERT_FATAL(ei_decode_version(b, &idx, &ver) == 0 &&
                        ei_decode_tuple_header(b, &idx, &arity) == 0 &&
                        ei_decode_long(b, &idx, &op) == 0);
        if (op != 2) /* SEND: a packet message or a reply; else LINK */
            continue;
        CU_ASSERT_FATAL(ei_skip_term(b, &idx) == 0 && ei_skip_term(b, &idx) == 0 &&
                        ei_decode_version(b, &idx, &ver) == 0 &&
                        ei_decode_tuple_header(b, &idx, &arity) == 0);
        if (ei_decode_atom(b, &idx, atom) != 0 ||
            (strcmp(atom, "ewpcap") != 0 && strcmp(atom, "ewpcap_batch") != 0))
            continue; /* a reply */
        CU_ASSERT_FATAL(ei_decode_ref(b, &idx, &ref) == 0 &&
                        ei_decode_long(b, &idx, &dlt) == 0);
        for (who = 0; who < ngot; who++)
            if (ei_cmp_refs(&ref, (erlang_ref *)&got[who].h->ref) == 0)
                break;
        CU_ASSERT_FATAL(who < ngot);
        got[who].messages++;
        if (strcmp(atom, "ewpcap") == 0) {
            check_packet(b, &idx, who);
            n = 1;
        } else {
            CU_ASSERT_FATAL(ei_decode_list_header(b, &idx, &n) == 0 && n > 0);
            for (i = 0; i < n; i++) {
                CU_ASSERT_FATAL(ei_decode_tuple_header(b, &idx, &arity) == 0 && arity == 3);
                check_packet(b, &idx, who);
            }
            CU_ASSERT_FATAL(ei_decode_list_header(b, &idx, &nil) == 0 && nil == 0);
        }
        CU_ASSERT_FATAL((size_t)idx == len); /* nothing after the message */
        if ((size_t)n > got[who].largest)
            got[who].largest = (size_t)n;
    }
    CU_ASSERT(pos == have);
    ewp_ac_buf_free(&plain);
}

static void
read_back(void)
{
    read_back_ac(NULL);
}

/* got[who] holds the sequence numbers 0..n-1, in order */
static void
assert_all(size_t who, unsigned n)
{
    unsigned i;

    CU_ASSERT_EQUAL(got[who].nseen, n);
    for (i = 0; i < got[who].nseen && i < n; i++)
        CU_ASSERT_EQUAL(got[who].seen[i], i);
}

static void
start(size_t out_max)
{
    ngot = 0;
    ewp_stack_setup(out_max, 0);
}

/* A stack whose node may queue out_max bytes, and one handle of batch
 * given n packets, of size + i * step bytes (not flushed) */
static struct ewp_handle *
fed(size_t out_max, int batch, unsigned n, size_t size, size_t step)
{
    struct ewp_handle *h;
    unsigned i;

    start(out_max);
    h = open_batch(batch);
    for (i = 0; i < n; i++)
        feed(h, 0, i, size + i * step);
    return h;
}

/* One handle alone: every batch is written where it is sent from (its own
 * buffer is never used), full but the last */
static void
test_lone_batch_in_place(void)
{
    struct ewp_handle *h = fed(8u << 20, 4, 10, 60, 100);

    flush(h);
    CU_ASSERT(h->batch_buf == NULL);
    CU_ASSERT_EQUAL(h->packets, 10);
    CU_ASSERT_EQUAL(h->drops, 0);
    read_back();
    assert_all(0, 10);
    CU_ASSERT_EQUAL(got[0].messages, 3); /* 4, 4, 2 */
    CU_ASSERT_EQUAL(got[0].largest, 4);
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
        hs[k] = open_batch(batch[k]);
    for (i = 0; i < 24; i++) {
        feed(hs[0], 0, i, 100 + (i * 37) % 1400);
        feed(hs[1], 1, i, 64 + (i * 53) % 1500);
        feed(hs[2], 2, i, 80);
    }
    for (k = 0; k < 3; k++)
        flush(hs[k]);
    read_back_ac(ac);
    for (k = 0; k < 3; k++) {
        assert_all(k, 24);
        CU_ASSERT_EQUAL(got[k].largest, (size_t)batch[k]);
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

    start(8u << 20);
    interleave(NULL, hs);
    /* at most one batch cut short in the dispatch, and the last */
    CU_ASSERT(got[0].messages <= 24 / 4 + 2);
    CU_ASSERT(got[1].messages <= 24 / 3 + 2);
    CU_ASSERT_EQUAL(got[2].messages, 24);
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
    start(8u << 20);
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
    struct ewp_handle *h = fed(8u << 20, 64, 60, 9000, 1);

    flush(h);
    CU_ASSERT_EQUAL(h->packets, 60);
    read_back();
    assert_all(0, 60);
    CU_ASSERT_EQUAL(got[0].messages, 1);
    ewp_stack_teardown();
}

/* The node's buffer has room for part of a batch: the packets past it
 * are drops, those before it arrive in a whole frame */
static void
test_frame_without_room(void)
{
    /* packets: at most 512 KiB queued */
    struct ewp_handle *h = fed(1u << 20, 64, 64, 12000, 0);

    flush(h);
    CU_ASSERT(h->drops > 0 && h->packets > 0);
    CU_ASSERT_EQUAL(h->packets + h->drops, 64);
    read_back();
    assert_all(0, (unsigned)h->packets);
    ewp_stack_teardown();
}

/* The node is dropped while a frame is open: its packets are drops,
 * nothing is committed to the dead peer, and the reap frees it all */
static void
test_frame_open_when_node_drops(void)
{
    struct ewp_handle *h = fed(8u << 20, 8, 3, 500, 0);
    size_t before = ewp_peer_queued(ewp_stack.peer);

    ewp_peer_drop(ewp_stack.peer, "test");
    flush(h);
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
    struct ewp_handle *h = fed(64u << 20, 2000, 1, 1500, 0);
    unsigned i;

    flush(h); /* a first message, so the queue is not empty */
    allocs = alloc_bytes = 0;
    ewp_outq_malloc = counting_malloc;
    for (i = 1; i < 700; i++)
        feed(h, 0, i, 1500);
    flush(h);
    ewp_outq_malloc = malloc;
    CU_ASSERT(allocs <= 8);
    CU_ASSERT(alloc_bytes <= (4u << 20));
    CU_ASSERT(ewp_peer_held(ewp_stack.peer) <= (5u << 20));
    CU_ASSERT_EQUAL(h->drops, 0);
    read_back();
    assert_all(0, 700);
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
    start(8u << 20);
    CU_ASSERT_FATAL(ewp_peer_reserve(ewp_stack.peer, 1000) != NULL);
    CU_ASSERT_EQUAL(ewp_peer_send(ewp_stack.peer, "p", 1), -1);
    CU_ASSERT(ewp_peer_dead(ewp_stack.peer));
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
    CU_TEST_INFO_NULL,
};
