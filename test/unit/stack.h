/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The daemon's real stack for the unit tests that need it whole
 * (test_teardown.c, test_deliver.c): transport, router, request runner,
 * handle table, delivery and filters, with one peer "a@host" on a
 * socketpair. fds[0] is the daemon's end; fds[1] is the test's, read only
 * by ewp_stack_read. Savefiles from test/data stand for captures.
 */
#ifndef EWP_TEST_STACK_H
#define EWP_TEST_STACK_H

#include <limits.h>
#include <stddef.h>

#include <ei.h>
#include <ev.h>

#include "dist.h"
#include "handles.h"
#include "request.h"
#include "router.h"

struct ewp_stack {
    struct ev_loop *loop;
    ei_cnode ec;
    struct ewp_dist *dist;
    struct ewp_requests req;
    struct ewp_router router;
    char files[PATH_MAX];
    int fds[2];
    struct ewp_peer *peer;
    erlang_pid from;          /* a process of the peer's node */
    const erlang_pid *as;     /* who calls: &from unless set */
    unsigned tag;             /* call tags */
};

extern struct ewp_stack ewp_stack;

/* out_max: the peer's cap (packets get half of it); sndbuf: the daemon's
 * socket send buffer, 0 for the system's */
void ewp_stack_setup(size_t out_max, int sndbuf);
void ewp_stack_teardown(void);

/* A call to ewpcap from *ewp_stack.as, as dist.c hands it to the router:
 * 'p', 131, {6, From, '', ewpcap}, 131, {'$gen_call', {From, Tag}, Req},
 * the request encoded by enc into x */
void ewp_stack_call(void (*enc)(ei_x_buff *x, const void *arg), const void *arg);

/* erpc:cast(Node, ewpcap, fun, Args) from *ewp_stack.as, as erts sends it:
 * SPAWN_REQUEST {29, ReqId, From, GL, {erpc, execute_cast, 3}, []} and the
 * argument list [ewpcap, fun, Args], Args encoded by enc (the list whole) */
void ewp_stack_cast(const char *fun, void (*enc)(ei_x_buff *x, const void *arg),
                    const void *arg);

/* {open_file, <<"known.pcap">>, Opts}: opts is NULL for [], else a
 * filter expression ({filter, F}) */
void ewp_stack_enc_open_file(ei_x_buff *x, const void *filter);

/* Open known.pcap with enc's request; returns the new handle */
struct ewp_handle *ewp_stack_open(void (*enc)(ei_x_buff *x, const void *arg),
                                  const void *arg);

/* A pid of the peer's node */
erlang_pid ewp_stack_pid(unsigned num);

/* Run the loop and read what the daemon wrote to fds[1], at most max
 * bytes; returns how many */
size_t ewp_stack_read(char *buf, size_t max);

#endif
