/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The tests of batches built in place (test_deliver.c, and their bounds in
 * test_deliver_bounds.c) share these (test_deliver_util.c). The handles
 * are savefile handles of the real stack (stack.h) with their captures
 * stopped; the tests hand them packets through their capture's callbacks,
 * as a dispatch of a shared capture does, and decode every frame the
 * daemon wrote to the socketpair.
 */
#ifndef EWP_TEST_DELIVER_H
#define EWP_TEST_DELIVER_H

#include <stddef.h>

#include "atomcache.h"
#include "handles.h"
#include "stack.h"

#define MAX_HANDLES 4
#define MAX_SEEN 1024
#define IN_MAX (8u << 20)

/* what the frames read back held, per handle */
struct ewp_tdv_got {
    const struct ewp_handle *h;
    unsigned seen[MAX_SEEN];   /* sequence numbers, in arrival order */
    size_t nseen;
    size_t messages;           /* messages (a batch counts once) */
    size_t largest;            /* most packets in one message */
};
extern struct ewp_tdv_got ewp_tdv_got[MAX_HANDLES];
extern size_t ewp_tdv_ngot;

/* A stack whose node may queue out_max bytes (packets: half), no handle */
void ewp_tdv_start(size_t out_max);

/* A handle of {batch, n} whose capture reads nothing by itself: the next
 * index of ewp_tdv_got */
struct ewp_handle *ewp_tdv_open(int n);

/* Packet seq of handle h (its index idx): byte 0 idx, 1-2 seq, then a
 * pattern of both; len bytes (3 to 16384) */
void ewp_tdv_feed(struct ewp_handle *h, unsigned idx, unsigned seq, size_t len);

/* The end of a dispatch for h (its capture's flush callback) */
void ewp_tdv_flush(struct ewp_handle *h);

/* A stack (ewp_tdv_start), and one handle of batch given n packets, of
 * size + i * step bytes (not flushed) */
struct ewp_handle *ewp_tdv_fed(size_t out_max, int batch, unsigned n, size_t size, size_t step);

/* Every frame of in[0, have) decoded into ewp_tdv_got; with ac (a node
 * that took the atom cache), each is spelled out first as dist.c does */
void ewp_tdv_parse(struct ewp_ac_in *ac, const char *in, size_t have);

/* The same for what the daemon wrote to the socketpair so far */
void ewp_tdv_read_back_ac(struct ewp_ac_in *ac);
void ewp_tdv_read_back(void);

/* ewp_tdv_got[who] holds the sequence numbers 0..n-1, in order */
void ewp_tdv_assert_all(size_t who, unsigned n);

#endif
