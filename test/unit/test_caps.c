/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The kernel buffer caps with shared captures (request.c, handles.c):
 * the real transport, request runner and handle table, one peer on a
 * socketpair, live opens on "lo" (root). A handle that joins an open
 * capture costs no ring; the ring is counted once, against the handle
 * that opened it and, when that one closes first, against another handle
 * of the capture, until the last one closes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <ev.h>

#include "dist.h"
#include "handles.h"
#include "request.h"
#include "router.h"

#define MIB (1ull << 20)

static struct {
    struct ev_loop *loop;
    ei_cnode ec;
    struct ewp_dist *dist;
    struct ewp_requests req;
    struct ewp_router router;
    int fds[2];               /* [0] the daemon's end, [1] ours */
    struct ewp_peer *peer;
    erlang_pid from;          /* a process of the peer's node */
} t;

static void
setup(void)
{
    struct ewp_dist_config dcfg = {.ticktime = 60};

    memset(&t, 0, sizeof(t));
    t.loop = ev_loop_new(EVFLAG_AUTO);
    CU_ASSERT_FATAL(t.loop != NULL);
    CU_ASSERT_FATAL(ei_connect_xinit(&t.ec, "host", "ewpcap", "ewpcap@host", NULL, "cookie",
                                     5) == 0);
    t.router.req = &t.req;
    t.dist = ewp_dist_new(t.loop, &dcfg, &ewp_router_dist_ops, &t.router);
    CU_ASSERT_FATAL(t.dist != NULL);
    t.req.loop = t.loop;
    t.req.ec = &t.ec;
    t.req.dist = t.dist;
    t.req.port = 4370;
    t.req.policy.max_node_ring = 3 * MIB;
    CU_ASSERT_FATAL(ewp_request_init(&t.req) == 0);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, t.fds) == 0);
    (void)fcntl(t.fds[0], F_SETFL, O_NONBLOCK);
    t.peer = ewp_dist_adopt(t.dist, t.fds[0], "a@host", NULL, 0);
    CU_ASSERT_FATAL(t.peer != NULL);
    (void)snprintf(t.from.node, sizeof(t.from.node), "a@host");
    t.from.num = 42;
    t.from.creation = 7;
}

static void
teardown(void)
{
    ewp_dist_free(t.dist); /* the fd of the peer is closed there */
    ewp_request_shutdown(&t.req);
    (void)close(t.fds[1]);
    ev_loop_destroy(t.loop);
}

/* Runs a request (encoded by enc) for the peer; 1 with *ref set when the
 * reply is {ok, Ref}, 0 when it is {error, buffer_limit}, -1 otherwise */
static int
run(void (*enc)(ei_x_buff *x, const void *arg), const void *arg, erlang_ref *ref)
{
    ei_x_buff req, reply;
    char atom[MAXATOMLEN];
    int index = 0, rindex = 0, arity, rv = -1;

    CU_ASSERT_FATAL(ei_x_new(&req) == 0 && ei_x_new(&reply) == 0);
    enc(&req, arg);
    CU_ASSERT_FATAL(ewp_request_run(&t.req, t.peer, &t.from, req.buff, &index, 0, NULL,
                                    &reply) == 0);
    if (ei_decode_tuple_header(reply.buff, &rindex, &arity) == 0 && arity == 2 &&
        ei_decode_atom(reply.buff, &rindex, atom) == 0) {
        if (strcmp(atom, "ok") == 0 && ref != NULL && ei_decode_ref(reply.buff, &rindex, ref) == 0)
            rv = 1;
        else if (strcmp(atom, "error") == 0 && ei_decode_atom(reply.buff, &rindex, atom) == 0 &&
                 strcmp(atom, "buffer_limit") == 0)
            rv = 0;
    }
    ei_x_free(&req);
    ei_x_free(&reply);
    return rv;
}

/* {open, <<"lo">>, [{buffer, 2 MiB}, {snaplen, *snaplen}]} */
static void
enc_open(ei_x_buff *x, const void *snaplen)
{
    CU_ASSERT(ei_x_encode_tuple_header(x, 3) == 0 && ei_x_encode_atom(x, "open") == 0 &&
              ei_x_encode_binary(x, "lo", 2) == 0 && ei_x_encode_list_header(x, 2) == 0 &&
              ei_x_encode_tuple_header(x, 2) == 0 && ei_x_encode_atom(x, "buffer") == 0 &&
              ei_x_encode_long(x, (long)(2 * MIB)) == 0 &&
              ei_x_encode_tuple_header(x, 2) == 0 && ei_x_encode_atom(x, "snaplen") == 0 &&
              ei_x_encode_long(x, *(const int *)snaplen) == 0 && ei_x_encode_empty_list(x) == 0);
}

/* {close, Ref} */
static void
enc_close(ei_x_buff *x, const void *ref)
{
    CU_ASSERT(ei_x_encode_tuple_header(x, 2) == 0 && ei_x_encode_atom(x, "close") == 0 &&
              ei_x_encode_ref(x, ref) == 0);
}

static void
test_a_shared_ring_is_counted_once_as_root(void)
{
    int same = 1000, other = 999;
    erlang_ref a, b, c;

    CU_ASSERT_FATAL(geteuid() == 0);
    setup();
    CU_ASSERT_FATAL(run(enc_open, &same, &a) == 1);
    CU_ASSERT(ewp_handles_ring_peer(t.req.handles, t.peer) == 2 * MIB);
    /* joins: no ring of its own (4 MiB would pass the node's 3) */
    CU_ASSERT_FATAL(run(enc_open, &same, &b) == 1);
    CU_ASSERT(ewp_handles_ring_peer(t.req.handles, t.peer) == 2 * MIB);
    CU_ASSERT(ewp_handles_ring(t.req.handles) == 2 * MIB);
    /* other options: a ring of their own, past the cap */
    CU_ASSERT(run(enc_open, &other, &c) == 0);
    /* the first closes: b counts the ring it keeps open */
    (void)run(enc_close, &a, NULL);
    CU_ASSERT(ewp_handles_count(t.req.handles) == 1);
    CU_ASSERT(ewp_handles_ring_peer(t.req.handles, t.peer) == 2 * MIB);
    CU_ASSERT(run(enc_open, &other, &c) == 0);
    /* the last closes: the ring is gone, and so is its count */
    (void)run(enc_close, &b, NULL);
    CU_ASSERT(ewp_handles_ring_peer(t.req.handles, t.peer) == 0);
    CU_ASSERT(ewp_handles_ring(t.req.handles) == 0);
    CU_ASSERT(run(enc_open, &other, &c) == 1);
    (void)run(enc_close, &c, NULL);
    CU_ASSERT(ewp_handles_count(t.req.handles) == 0);
    teardown();
}

CU_TestInfo ewp_caps_tests[] = {
    {"a shared ring is counted once (root)", test_a_shared_ring_is_counted_once_as_root},
    CU_TEST_INFO_NULL,
};
