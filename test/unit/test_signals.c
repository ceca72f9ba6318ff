/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Exit signals and monitor exits that close a handle (router.c) count only
 * from a pid of the node whose connection they come over, as erts sends
 * them: another node could otherwise close a handle it does not own by
 * naming its link pid, or its owner and the monitor's reference (which
 * info lists). On the real stack (stack.h), with a second node b@host.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <ev.h>

#include "dist.h"
#include "handles.h"
#include "router.h"
#include "stack.h"

/* 'p', 131, {Op, From, To, Reason} (EXIT: 3), or with a reference after
 * To (MONITOR_P_EXIT: 21) */
static void
signal_frame(struct ewp_peer *over, long op, const erlang_pid *from, const erlang_pid *to,
             const erlang_ref *ref)
{
    ei_x_buff x;

    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ei_x_append_buf(&x, "p", 1) == 0 && ei_x_encode_version(&x) == 0 &&
              ei_x_encode_tuple_header(&x, ref != NULL ? 5 : 4) == 0 &&
              ei_x_encode_long(&x, op) == 0 && ei_x_encode_pid(&x, from) == 0 &&
              ei_x_encode_pid(&x, to) == 0 && (ref == NULL || ei_x_encode_ref(&x, ref) == 0) &&
              ei_x_encode_atom(&x, "killed") == 0);
    ewp_router_dist_ops.frame(&ewp_stack.router, over, x.buff, (size_t)x.index);
    ei_x_free(&x);
}

/* b@host on a socketpair of its own */
static struct ewp_peer *
second_node(int fds[2])
{
    struct ewp_peer *b;

    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
    b = ewp_dist_adopt(ewp_stack.dist, fds[0], "b@host", NULL, 0);
    CU_ASSERT_FATAL(b != NULL);
    return b;
}

/* [<<"lo">>, [{filter, "udp port 9"}]] */
static void
enc_open_args(ei_x_buff *x, const void *arg)
{
    (void)arg;
    CU_ASSERT(ei_x_encode_list_header(x, 2) == 0 && ei_x_encode_binary(x, "lo", 2) == 0 &&
              ei_x_encode_list_header(x, 1) == 0 && ei_x_encode_tuple_header(x, 2) == 0 &&
              ei_x_encode_atom(x, "filter") == 0 && ei_x_encode_string(x, "udp port 9") == 0 &&
              ei_x_encode_empty_list(x) == 0 && ei_x_encode_empty_list(x) == 0);
}

/* ewpcap:open(<<"lo">>, [{filter, "udp port 9"}]) sent by erpc:cast (rpc
 * opens live devices only): the handle monitors its owner, the caster */
static void
cast_open(void)
{
    ewp_stack_cast("open", enc_open_args, NULL);
}

/* A link exit naming a@host's linked pid: ignored over b@host's
 * connection, it closes the handle over a@host's */
static void
test_link_exit_from_its_node_only(void)
{
    struct ewp_handle *h;
    struct ewp_peer *b;
    erlang_pid link, pid;
    int fds[2];

    ewp_stack_setup(8u << 20, 0);
    b = second_node(fds);
    h = ewp_stack_open(ewp_stack_enc_open_file, NULL);
    link = h->link;
    pid = h->pid;
    signal_frame(b, 3, &link, &pid, NULL);
    CU_ASSERT_EQUAL(ewp_handles_count(ewp_stack.req.handles), 1);
    signal_frame(ewp_stack.peer, 3, &link, &pid, NULL);
    CU_ASSERT_EQUAL(ewp_handles_count(ewp_stack.req.handles), 0);
    ewp_stack_teardown();
    (void)close(fds[1]);
}

/* The owner's monitor exit of an rpc-opened handle (on lo: root): ignored
 * over b@host's connection and from another pid, it closes the handle from
 * the owner */
static void
test_monitor_exit_from_the_owner_only(void)
{
    struct ewp_handle *h;
    struct ewp_peer *b;
    erlang_pid owner, pid, other;
    erlang_ref mon;
    int fds[2];

    CU_ASSERT_FATAL(geteuid() == 0);
    ewp_stack_setup(8u << 20, 0);
    b = second_node(fds);
    cast_open();
    {   /* its filter compiles off the loop */
        int i;

        for (i = 0; i < 5000 && ewp_handles_count(ewp_stack.req.handles) == 0; i++) {
            (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT);
            usleep(1000);
        }
    }
    CU_ASSERT_FATAL(ewp_handles_count(ewp_stack.req.handles) == 1);
    h = ewp_handles_first(ewp_stack.req.handles);
    CU_ASSERT_FATAL(h->monitored);
    owner = h->owner;
    pid = h->pid;
    mon = h->mon_ref;
    other = ewp_stack_pid(owner.num + 1);
    signal_frame(b, 21, &owner, &pid, &mon);
    CU_ASSERT_EQUAL(ewp_handles_count(ewp_stack.req.handles), 1);
    signal_frame(ewp_stack.peer, 21, &other, &pid, &mon);
    CU_ASSERT_EQUAL(ewp_handles_count(ewp_stack.req.handles), 1);
    signal_frame(ewp_stack.peer, 21, &owner, &pid, &mon);
    CU_ASSERT_EQUAL(ewp_handles_count(ewp_stack.req.handles), 0);
    ewp_stack_teardown();
    (void)close(fds[1]);
}

CU_TestInfo ewp_signals_tests[] = {
    {"a link exit closes a handle from its node only", test_link_exit_from_its_node_only},
    {"a monitor exit closes a handle from its owner only (root)",
     test_monitor_exit_from_the_owner_only},
    CU_TEST_INFO_NULL,
};
