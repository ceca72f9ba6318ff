/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Teardown is deferred (the rule at the top of cnode/dist.c): the real
 * transport, router, request runner, handle table, delivery and filters,
 * with one peer on a socketpair whose other end never reads, its output
 * queue filled to a few bytes under its cap. Then close, open (its LINK),
 * a filter compiled off the loop (its reply) and the interface check (its
 * ewpcap_error) each send a frame that does not fit. The peer must only be
 * marked dead there; ewp_dist_reap then closes what is left of its handles
 * and frees it. Under valgrind (make check) and ASan (make asan-check) a
 * handle freed twice, or a handle left with a freed peer, is an error;
 * the counts below catch the second without them.
 *
 * Savefiles from test/data stand for captures (no root needed); the
 * interface check is driven through a savefile handle made to look live.
 *
 * The same harness, with fds[1] read, checks what a close sends the
 * handle's opener ({ewpcap_closed, Ref}, request.c's tell_link): to an
 * opener that opened for another owner, when a third process closes; not
 * when the opener closes, nor to an opener that is its own owner.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <ev.h>

#include "be.h"
#include "call.h"
#include "compile.h"
#include "deliver.h"
#include "dist.h"
#include "encode.h"
#include "handles.h"
#include "request.h"
#include "router.h"
#include "stack.h"

#define OUT_MAX (1u << 20)    /* the peer's cap in these tests */
#define ROOM 8                /* bytes left under it: less than any control frame */
#define REPLY_MIN 40          /* a reply frame is longer than this */

/* {open_file, <<"known.pcap">>, [], Owner} */
static void
enc_open_file_for(ei_x_buff *x, const void *owner)
{
    CU_ASSERT(ei_x_encode_tuple_header(x, 4) == 0 && ei_x_encode_atom(x, "open_file") == 0 &&
              ei_x_encode_binary(x, "known.pcap", 10) == 0 && ei_x_encode_empty_list(x) == 0 &&
              ei_x_encode_pid(x, owner) == 0);
}

/* {close, Ref} */
static void
enc_close(ei_x_buff *x, const void *ref)
{
    CU_ASSERT(ei_x_encode_tuple_header(x, 2) == 0 && ei_x_encode_atom(x, "close") == 0 &&
              ei_x_encode_ref(x, ref) == 0);
}

/* Fill the peer's queue to OUT_MAX - room. First the socket itself is
 * filled (the loop writes until it would block; nobody reads fds[1]), so
 * that the queue stays where it is put. */
static void
fill(size_t room)
{
    static char body[OUT_MAX];
    size_t q;
    int i;

    memset(body, 0, sizeof(body));
    body[0] = 'p';
    CU_ASSERT_FATAL(ewp_peer_send(ewp_stack.peer, body, 256 << 10) == 0);
    for (i = 0; i < 50; i++)
        (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT);
    q = ewp_peer_queued(ewp_stack.peer);
    CU_ASSERT_FATAL(q > 0 && q < OUT_MAX - room - 4);
    CU_ASSERT_FATAL(ewp_peer_send(ewp_stack.peer, body, OUT_MAX - room - 4 - q) == 0);
    CU_ASSERT_FATAL(ewp_peer_queued(ewp_stack.peer) == OUT_MAX - room);
    CU_ASSERT_FATAL(!ewp_peer_dead(ewp_stack.peer));
}

static struct ewp_handle *
open_one(const char *filter)
{
    return ewp_stack_open(ewp_stack_enc_open_file, filter);
}

/* close: the UNLINK_ID does not fit */
static void
test_close_send_fails(void)
{
    struct ewp_handle *h;
    erlang_ref ref;

    ewp_stack_setup(OUT_MAX, 4096);
    h = open_one(NULL);
    (void)open_one(NULL); /* a second handle of the same node */
    ref = h->ref;
    fill(ROOM);
    ewp_stack_call(enc_close, &ref);
    CU_ASSERT(ewp_peer_dead(ewp_stack.peer));
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 1);
    CU_ASSERT(ewp_handles_find_ref(ewp_stack.req.handles, &ref) == NULL);
    ewp_dist_reap(ewp_stack.dist); /* the node's other handle goes with it */
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 0);
    CU_ASSERT(ewp_dist_peer_next(ewp_stack.dist, NULL) == NULL);
    ewp_stack_teardown();
}

/* open: the LINK to the caller does not fit */
static void
test_open_link_fails(void)
{
    struct ewp_handle *h;

    ewp_stack_setup(OUT_MAX, 4096);
    fill(ROOM);
    ewp_stack_call(ewp_stack_enc_open_file, NULL);
    CU_ASSERT(ewp_peer_dead(ewp_stack.peer));
    /* the handle is in the table, so the node's teardown finds it */
    h = ewp_handles_first(ewp_stack.req.handles);
    CU_ASSERT_FATAL(h != NULL);
    CU_ASSERT(h->peer == ewp_stack.peer);
    ewp_dist_reap(ewp_stack.dist);
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 0);
    ewp_stack_teardown();
}

/* The frame of LINK {OurPid, From}: what an open sends before its reply */
static size_t
link_frame_size(void)
{
    erlang_pid ours = ewp_stack.from;
    ei_x_buff x;
    size_t n;

    (void)snprintf(ours.node, sizeof(ours.node), "ewpcap@host");
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT_FATAL(ewp_encode_control(&x, EWP_DOP_LINK, &ours, &ewp_stack.from) == 0);
    n = (size_t)x.index + 4;
    ei_x_free(&x);
    return n;
}

/* a filter compiled by a worker: the LINK fits, the reply does not */
static void
test_compile_reply_fails(void)
{
    char filter[EWP_COMPILE_SYNC_MAX + 200];
    size_t n = 0;
    int i;

    ewp_stack_setup(OUT_MAX, 4096);
    while (n + 16 < sizeof(filter))
        n += (size_t)snprintf(filter + n, sizeof(filter) - n, "%sudp port %d",
                              n == 0 ? "" : " or ", (int)(n % 60000) + 1);
    fill(link_frame_size() + REPLY_MIN / 2);
    ewp_stack_call(ewp_stack_enc_open_file, filter); /* deferred: the LINK now, the reply later */
    CU_ASSERT_FATAL(!ewp_peer_dead(ewp_stack.peer));
    CU_ASSERT_FATAL(ewp_handles_count(ewp_stack.req.handles) == 1);
    CU_ASSERT_FATAL(ewp_handles_first(ewp_stack.req.handles)->pending);
    for (i = 0; i < 2000 && !ewp_peer_dead(ewp_stack.peer); i++)
        (void)ev_run(ewp_stack.loop, EVRUN_ONCE); /* the worker wakes the loop */
    CU_ASSERT(ewp_peer_dead(ewp_stack.peer));
    /* compiled_cb set the filter before its reply failed */
    CU_ASSERT_FATAL(ewp_handles_count(ewp_stack.req.handles) == 1);
    CU_ASSERT(!ewp_handles_first(ewp_stack.req.handles)->pending);
    ewp_dist_reap(ewp_stack.dist);
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 0);
    ewp_stack_teardown();
}

/* the interface check: a vanished interface's ewpcap_error does not fit,
 * for each of two handles of the node, in one pass over the table */
static void
test_check_error_fails(void)
{
    struct ewp_handle *h;

    ewp_stack_setup(OUT_MAX, 4096);
    (void)open_one(NULL);
    (void)open_one(NULL);
    (void)open_one(NULL);
    for (h = ewp_handles_first(ewp_stack.req.handles); h != NULL; h = h->next) {
        h->cap.offline = 0;            /* looks live, on an interface */
        h->cap.device = "ewp-gone0";   /* that is gone */
        h->cap.ifindex = 0x7ffffff0u;
    }
    fill(ROOM);
    ewp_deliver_check(ewp_stack.req.handles);
    CU_ASSERT(ewp_peer_dead(ewp_stack.peer));
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 3); /* errors close nothing */
    for (h = ewp_handles_first(ewp_stack.req.handles); h != NULL; h = h->next)
        CU_ASSERT(h->cap.failed);
    ewp_dist_reap(ewp_stack.dist);
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 0);
    ewp_stack_teardown();
}

/* A send that fails never frees: the peer stays readable until reaped, a
 * second drop is harmless, sends and reservations fail */
static void
test_dead_peer_until_reaped(void)
{
    ewp_stack_setup(OUT_MAX, 4096);
    (void)open_one(NULL);
    ewp_peer_drop(ewp_stack.peer, "test");
    ewp_peer_drop(ewp_stack.peer, "test again");
    CU_ASSERT(ewp_peer_dead(ewp_stack.peer));
    CU_ASSERT(ewp_peer_send(ewp_stack.peer, "p", 1) == -1);
    CU_ASSERT(ewp_peer_reserve(ewp_stack.peer, 100) == NULL);
    CU_ASSERT(strcmp(ewp_peer_name(ewp_stack.peer), "a@host") == 0);
    CU_ASSERT(ewp_dist_peer_by_name(ewp_stack.dist, "a@host") == NULL);
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 1);
    ewp_dist_reap(ewp_stack.dist);
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 0);
    ewp_stack_teardown();
}

/* ---- what a close tells the opener ---- */

/* What the daemon sent the peer until now, flushed through the loop and
 * read from fds[1], one letter a frame in order: 'L' LINK, 'U' UNLINK_ID,
 * 'C' {ewpcap_closed, Ref} to ewp_stack.from (with Ref = *ref), 'c' an
 * ewpcap_closed to anyone else or of another Ref, 'M' any other message,
 * '?' any other control. The letters are NUL-terminated in kinds. */
static void
sent_kinds(const erlang_ref *ref, char *kinds, size_t max)
{
    static char in[1 << 16];
    size_t have = ewp_stack_read(in, sizeof(in)), pos = 0, k = 0;

    while (pos + 4 <= have && k + 1 < max) {
        uint32_t len = ewp_get_be32(in + pos);
        const char *b = in + pos + 4;
        int idx = 1, ver = 0, arity = 0;
        long op = -1;

        CU_ASSERT_FATAL(pos + 4 + len <= have);
        pos += 4 + len;
        if (len == 0)
            continue;
        CU_ASSERT_FATAL(b[0] == 'p');
        CU_ASSERT_FATAL(ei_decode_version(b, &idx, &ver) == 0 &&
                        ei_decode_tuple_header(b, &idx, &arity) == 0 &&
                        ei_decode_long(b, &idx, &op) == 0);
        if (op == EWP_DOP_LINK) {
            kinds[k++] = 'L';
        } else if (op == EWP_DOP_UNLINK_ID) {
            kinds[k++] = 'U';
        } else if (op == EWP_DOP_SEND) {
            erlang_pid to;
            erlang_ref r;
            char atom[MAXATOMLEN];
            int m;

            CU_ASSERT_FATAL(ei_skip_term(b, &idx) == 0 && ei_decode_pid(b, &idx, &to) == 0 &&
                            ei_decode_version(b, &idx, &ver) == 0);
            m = idx;
            if (ei_decode_tuple_header(b, &m, &arity) == 0 && arity == 2 &&
                ei_decode_atom(b, &m, atom) == 0 && strcmp(atom, "ewpcap_closed") == 0) {
                CU_ASSERT_FATAL(ei_decode_ref(b, &m, &r) == 0);
                kinds[k++] = ei_cmp_pids(&to, &ewp_stack.from) == 0 && ei_cmp_refs(&r, (erlang_ref *)ref) == 0
                                 ? 'C'
                                 : 'c';
            } else {
                kinds[k++] = 'M';
            }
        } else {
            kinds[k++] = '?';
        }
    }
    kinds[k] = '\0';
}

/* Opened by ewp_stack.from for another owner, closed by a third process: the
 * opener is told, before the UNLINK_ID and the reply; closed by the
 * opener itself: not told */
static void
test_close_tells_the_opener(void)
{
    erlang_pid owner = ewp_stack_pid(43), third = ewp_stack_pid(44);
    struct ewp_handle *h;
    erlang_ref ref;
    char kinds[64];

    ewp_stack_setup(OUT_MAX, 4096);
    ewp_stack_call(enc_open_file_for, &owner);
    h = ewp_handles_first(ewp_stack.req.handles);
    CU_ASSERT_FATAL(h != NULL);
    ref = h->ref;
    ewp_stack.as = &third; /* no loop turn in between: no packet of the file is read */
    ewp_stack_call(enc_close, &ref);
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 0);
    sent_kinds(&ref, kinds, sizeof(kinds));
    CU_ASSERT_STRING_EQUAL(kinds, "LMCUM"); /* LINK, reply; closed, UNLINK_ID, reply */

    ewp_stack.as = &ewp_stack.from;
    ewp_stack_call(enc_open_file_for, &owner);
    h = ewp_handles_first(ewp_stack.req.handles);
    CU_ASSERT_FATAL(h != NULL);
    ref = h->ref;
    ewp_stack_call(enc_close, &ref);
    sent_kinds(&ref, kinds, sizeof(kinds));
    CU_ASSERT_STRING_EQUAL(kinds, "LMUM");
    ewp_stack_teardown();
}

/* Opened by ewp_stack.from for itself (the 3-tuple open), closed by a third
 * process: nothing new for the opener, which never asked */
static void
test_close_spares_a_raw_opener(void)
{
    erlang_pid third = ewp_stack_pid(44);
    struct ewp_handle *h;
    erlang_ref ref;
    char kinds[64];

    ewp_stack_setup(OUT_MAX, 4096);
    h = open_one(NULL);
    ref = h->ref;
    ewp_stack.as = &third;
    ewp_stack_call(enc_close, &ref);
    CU_ASSERT(ewp_handles_count(ewp_stack.req.handles) == 0);
    sent_kinds(&ref, kinds, sizeof(kinds));
    CU_ASSERT_STRING_EQUAL(kinds, "LMUM");
    ewp_stack_teardown();
}

CU_TestInfo ewp_teardown_tests[] = {
    {"close: UNLINK_ID past the cap", test_close_send_fails},
    {"open: LINK past the cap", test_open_link_fails},
    {"compiled filter: reply past the cap", test_compile_reply_fails},
    {"interface check: errors past the cap", test_check_error_fails},
    {"a dead peer lives until reaped", test_dead_peer_until_reaped},
    {"close by a third process tells the opener, before UNLINK_ID", test_close_tells_the_opener},
    {"close does not tell an opener that is its own owner", test_close_spares_a_raw_opener},
    CU_TEST_INFO_NULL,
};
