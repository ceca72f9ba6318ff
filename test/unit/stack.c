/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The daemon's real stack on a socketpair, for the unit tests (stack.h).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "stack.h"

struct ewp_stack ewp_stack;

void
ewp_stack_setup(size_t out_max, int sndbuf)
{
    struct ewp_stack *s = &ewp_stack;
    struct ewp_dist_config dcfg = {.ticktime = 60, .out_max = out_max,
                                   .packet_max = out_max / 2};

    memset(s, 0, sizeof(*s));
    s->loop = ev_loop_new(EVFLAG_AUTO);
    CU_ASSERT_FATAL(s->loop != NULL);
    CU_ASSERT_FATAL(ei_connect_xinit(&s->ec, "host", "ewpcap", "ewpcap@host", NULL, "cookie",
                                     5) == 0);
    s->router.req = &s->req;
    s->dist = ewp_dist_new(s->loop, &dcfg, &ewp_router_dist_ops, &s->router);
    CU_ASSERT_FATAL(s->dist != NULL);
    CU_ASSERT_FATAL(realpath("test/data", s->files) != NULL);
    s->req.loop = s->loop;
    s->req.ec = &s->ec;
    s->req.dist = s->dist;
    s->req.port = 4370;
    s->req.policy.files_dir = s->files;
    s->req.policy.files_fd = open(s->files, O_PATH | O_DIRECTORY | O_CLOEXEC);
    CU_ASSERT_FATAL(s->req.policy.files_fd >= 0);
    CU_ASSERT_FATAL(ewp_request_init(&s->req) == 0);

    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, s->fds) == 0);
    if (sndbuf > 0)
        (void)setsockopt(s->fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    (void)fcntl(s->fds[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(s->fds[1], F_SETFL, O_NONBLOCK);
    s->peer = ewp_dist_adopt(s->dist, s->fds[0], "a@host", NULL, 0);
    CU_ASSERT_FATAL(s->peer != NULL);
    (void)snprintf(s->from.node, sizeof(s->from.node), "a@host");
    s->from.num = 42;
    s->from.creation = 7;
    s->as = &s->from;
}

void
ewp_stack_teardown(void)
{
    struct ewp_stack *s = &ewp_stack;

    ewp_dist_free(s->dist); /* the fd of the peer is closed there */
    ewp_request_shutdown(&s->req);
    (void)close(s->req.policy.files_fd);
    (void)close(s->fds[1]);
    ev_loop_destroy(s->loop);
}

void
ewp_stack_call(void (*enc)(ei_x_buff *x, const void *arg), const void *arg)
{
    struct ewp_stack *s = &ewp_stack;
    ei_x_buff x;

    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT_FATAL(ei_x_append_buf(&x, "p", 1) == 0);
    CU_ASSERT_FATAL(ei_x_encode_version(&x) == 0);
    CU_ASSERT(ei_x_encode_tuple_header(&x, 4) == 0 && ei_x_encode_long(&x, 6) == 0 &&
              ei_x_encode_pid(&x, s->as) == 0 && ei_x_encode_atom(&x, "") == 0 &&
              ei_x_encode_atom(&x, "ewpcap") == 0);
    CU_ASSERT_FATAL(ei_x_encode_version(&x) == 0);
    CU_ASSERT(ei_x_encode_tuple_header(&x, 3) == 0 && ei_x_encode_atom(&x, "$gen_call") == 0 &&
              ei_x_encode_tuple_header(&x, 2) == 0 && ei_x_encode_pid(&x, s->as) == 0 &&
              ei_x_encode_long(&x, (long)++s->tag) == 0);
    enc(&x, arg);
    ewp_router_dist_ops.frame(&s->router, s->peer, x.buff, (size_t)x.index);
    ei_x_free(&x);
}

void
ewp_stack_enc_open_file(ei_x_buff *x, const void *filter)
{
    CU_ASSERT(ei_x_encode_tuple_header(x, 3) == 0 && ei_x_encode_atom(x, "open_file") == 0 &&
              ei_x_encode_binary(x, "known.pcap", 10) == 0);
    if (filter != NULL)
        CU_ASSERT(ei_x_encode_list_header(x, 1) == 0 && ei_x_encode_tuple_header(x, 2) == 0 &&
                  ei_x_encode_atom(x, "filter") == 0 &&
                  ei_x_encode_binary(x, filter, (long)strlen(filter)) == 0);
    CU_ASSERT(ei_x_encode_empty_list(x) == 0);
}

void
ewp_stack_cast(const char *fun, void (*enc)(ei_x_buff *x, const void *arg), const void *arg)
{
    const erlang_pid *from = ewp_stack.as != NULL ? ewp_stack.as : &ewp_stack.from;
    erlang_ref reqid;
    ei_x_buff x;

    memset(&reqid, 0, sizeof(reqid));
    (void)strcpy(reqid.node, from->node);
    reqid.len = 3;
    reqid.n[0] = ++ewp_stack.tag;
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ei_x_append_buf(&x, "p", 1) == 0 && ei_x_encode_version(&x) == 0 &&
              ei_x_encode_tuple_header(&x, 6) == 0 && ei_x_encode_long(&x, 29) == 0 &&
              ei_x_encode_ref(&x, &reqid) == 0 && ei_x_encode_pid(&x, from) == 0 &&
              ei_x_encode_pid(&x, from) == 0 && ei_x_encode_tuple_header(&x, 3) == 0 &&
              ei_x_encode_atom(&x, "erpc") == 0 && ei_x_encode_atom(&x, "execute_cast") == 0 &&
              ei_x_encode_long(&x, 3) == 0 && ei_x_encode_empty_list(&x) == 0);
    CU_ASSERT(ei_x_encode_version(&x) == 0 && ei_x_encode_list_header(&x, 3) == 0 &&
              ei_x_encode_atom(&x, "ewpcap") == 0 && ei_x_encode_atom(&x, fun) == 0);
    enc(&x, arg);
    CU_ASSERT(ei_x_encode_empty_list(&x) == 0);
    ewp_router_dist_ops.frame(&ewp_stack.router, ewp_stack.peer, x.buff, (size_t)x.index);
    ei_x_free(&x);
}

struct ewp_handle *
ewp_stack_open(void (*enc)(ei_x_buff *x, const void *arg), const void *arg)
{
    int n = ewp_handles_count(ewp_stack.req.handles);

    ewp_stack_call(enc, arg);
    CU_ASSERT_FATAL(ewp_handles_count(ewp_stack.req.handles) == n + 1);
    return ewp_handles_first(ewp_stack.req.handles);
}

erlang_pid
ewp_stack_pid(unsigned num)
{
    erlang_pid p = ewp_stack.from;

    p.num = num;
    return p;
}

size_t
ewp_stack_read(char *buf, size_t max)
{
    size_t have = 0;
    int i;

    for (i = 0; i < 20; i++) {
        ssize_t n;

        (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT);
        while (have < max && (n = read(ewp_stack.fds[1], buf + have, max - have)) > 0)
            have += (size_t)n;
    }
    return have;
}
