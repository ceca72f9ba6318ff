/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The handle table at scale: 1,000 handles of three nodes (each on one end
 * of a socketpair, as in test_teardown.c), so that the ref and pid tables
 * grow several times. Every handle must be found by its ref and its pid,
 * the per-node lists must hold exactly that node's handles (what pausing
 * and resuming a node walk), and the counts and kernel buffer sums that the
 * open caps read must follow opens, closes in any order and a node's
 * teardown. The handles have no capture: the table does not look at it.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <ev.h>

#include "dist.h"
#include "handles.h"

#define NODES 3
#define HANDLES 1000

static struct {
    struct ev_loop *loop;
    ei_cnode ec;
    struct ewp_dist *dist;
    struct ewp_handles *table;
    int fds[NODES][2];
    struct ewp_peer *peer[NODES];
    struct ewp_handle *h[HANDLES];
} t;

static void
nop_frame(void *ctx, struct ewp_peer *p, const char *buf, size_t len)
{
    (void)ctx, (void)p, (void)buf, (void)len;
}

static void
nop_peer(void *ctx, struct ewp_peer *p)
{
    (void)ctx, (void)p;
}

static const struct ewp_dist_ops ops = {nop_frame, nop_peer, nop_peer};

static void
setup(void)
{
    struct ewp_dist_config dcfg = {.ticktime = 60, .out_max = 64u << 20,
                                   .packet_max = 1u << 20};
    char name[16];
    int i;

    memset(&t, 0, sizeof(t));
    t.loop = ev_loop_new(EVFLAG_AUTO);
    CU_ASSERT_FATAL(t.loop != NULL);
    CU_ASSERT_FATAL(ei_connect_xinit(&t.ec, "host", "ewpcap", "ewpcap@host", NULL, "cookie",
                                     5) == 0);
    t.dist = ewp_dist_new(t.loop, &dcfg, &ops, NULL);
    CU_ASSERT_FATAL(t.dist != NULL);
    t.table = ewp_handles_new(t.loop, &t.ec);
    CU_ASSERT_FATAL(t.table != NULL);
    for (i = 0; i < NODES; i++) {
        CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, t.fds[i]) == 0);
        (void)snprintf(name, sizeof(name), "n%d@host", i);
        t.peer[i] = ewp_dist_adopt(t.dist, t.fds[i][0], name, NULL, 0);
        CU_ASSERT_FATAL(t.peer[i] != NULL);
    }
}

static void
teardown(void)
{
    int i;

    ewp_handles_free(t.table);
    ewp_dist_free(t.dist);
    for (i = 0; i < NODES; i++)
        (void)close(t.fds[i][1]);
    ev_loop_destroy(t.loop);
}

/* handle i: node i % NODES, a kernel buffer of i + 1 bytes */
static void
add(int i)
{
    struct ewp_handle *h = ewp_handle_new(t.table, t.peer[i % NODES]);

    CU_ASSERT_FATAL(h != NULL);
    h->ring = (unsigned long long)i + 1;
    h->owner.num = (unsigned)i;
    CU_ASSERT_FATAL(ewp_handles_add(t.table, h, i % 2) == 0);
    t.h[i] = h;
}

/* What the table says against t.h (NULL: closed) */
static void
check(void)
{
    unsigned long long ring = 0, nring[NODES] = {0};
    int count = 0, ncount[NODES] = {0}, seen[NODES] = {0}, i, n;
    struct ewp_handle *h;

    for (i = 0; i < HANDLES; i++) {
        if (t.h[i] == NULL)
            continue;
        CU_ASSERT(ewp_handles_find_ref(t.table, &t.h[i]->ref) == t.h[i]);
        CU_ASSERT(ewp_handles_find_pid(t.table, &t.h[i]->pid) == t.h[i]);
        count++;
        ring += t.h[i]->ring;
        ncount[i % NODES]++;
        nring[i % NODES] += t.h[i]->ring;
    }
    CU_ASSERT(ewp_handles_count(t.table) == count);
    CU_ASSERT(ewp_handles_ring(t.table) == ring);
    for (n = 0; n < NODES; n++) {
        CU_ASSERT(ewp_handles_count_peer(t.table, t.peer[n]) == ncount[n]);
        CU_ASSERT(ewp_handles_ring_peer(t.table, t.peer[n]) == nring[n]);
        for (h = ewp_handles_first_of(t.table, t.peer[n]); h != NULL; h = h->node_next) {
            CU_ASSERT(h->peer == t.peer[n]);
            CU_ASSERT_FATAL(seen[n] < ncount[n]); /* no loop, no stranger */
            seen[n]++;
        }
        CU_ASSERT(seen[n] == ncount[n]);
    }
    for (i = 0, h = ewp_handles_first(t.table); h != NULL; h = h->next)
        CU_ASSERT_FATAL(++i <= count);
    CU_ASSERT(i == count);
}

static void
test_table_at_scale(void)
{
    erlang_ref ref;
    erlang_pid pid;
    int i;

    setup();
    for (i = 0; i < HANDLES; i++)
        add(i);
    check();
    /* closed: gone from both tables; a stranger's ref is nobody's */
    ref = t.h[7]->ref;
    pid = t.h[7]->pid;
    ewp_handle_close(t.h[7], 1, "test");
    t.h[7] = NULL;
    CU_ASSERT(ewp_handles_find_ref(t.table, &ref) == NULL);
    CU_ASSERT(ewp_handles_find_pid(t.table, &pid) == NULL);
    ref.n[1] ^= 1;
    CU_ASSERT(ewp_handles_find_ref(t.table, &ref) == NULL);
    /* every third, from the middle, then the oldest and the newest */
    for (i = 500; i < HANDLES + 500; i += 3)
        if (t.h[i % HANDLES] != NULL) {
            ewp_handle_close(t.h[i % HANDLES], 1, "test");
            t.h[i % HANDLES] = NULL;
        }
    CU_ASSERT_FATAL(t.h[0] != NULL && t.h[HANDLES - 1] != NULL);
    ewp_handle_close(t.h[0], 0, "test");
    t.h[0] = NULL;
    ewp_handle_close(t.h[HANDLES - 1], 0, "test");
    t.h[HANDLES - 1] = NULL;
    check();
    /* node 1 goes: its handles only */
    ewp_handles_peer_down(t.table, t.peer[1]);
    for (i = 1; i < HANDLES; i += NODES)
        t.h[i] = NULL;
    check();
    CU_ASSERT(ewp_handles_first_of(t.table, t.peer[1]) == NULL);
    /* and comes back: a fresh list */
    add(4);
    check();
    teardown();
}

CU_TestInfo ewp_handles_tests[] = {
    {"1,000 handles of 3 nodes: by ref, by pid, per node, closed in any order",
     test_table_at_scale},
    CU_TEST_INFO_NULL,
};
