/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A filter sent by erpc:cast (rpc.c's spawn of erpc:execute_cast/3, which
 * is answered with no outcome) goes to the compile workers and counts
 * against the node's compiles, as a call's does: compiled in the loop, a
 * cast's filter of a few hundred terms held every node's packets for
 * seconds to minutes, and one the call path refuses was taken. On the
 * real stack (stack.h).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <ev.h>

#include "handles.h"
#include "stack.h"

static double
now_s(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct cast_args {
    const erlang_ref *ref;
    const char *f;
    size_t len;
};

/* [{ewpcap_resource, Ref, {N, P}}, F, []] */
static void
enc_filter_args(ei_x_buff *x, const void *arg)
{
    const struct cast_args *a = arg;

    CU_ASSERT(ei_x_encode_list_header(x, 3) == 0 && ei_x_encode_tuple_header(x, 3) == 0 &&
              ei_x_encode_atom(x, "ewpcap_resource") == 0 && ei_x_encode_ref(x, a->ref) == 0 &&
              ei_x_encode_tuple_header(x, 2) == 0 && ei_x_encode_atom(x, "ewpcap@host") == 0 &&
              ei_x_encode_pid(x, &ewp_stack.from) == 0 &&
              ei_x_encode_binary(x, a->f, (long)a->len) == 0 && ei_x_encode_empty_list(x) == 0 &&
              ei_x_encode_empty_list(x) == 0);
}

/* erpc:cast(ewpcap@host, ewpcap, filter, [{ewpcap_resource, Ref, {N, P}}, F, []]) */
static void
cast_filter(const erlang_ref *ref, const char *f, size_t len)
{
    struct cast_args a = {ref, f, len};

    ewp_stack_cast("filter", enc_filter_args, &a);
}

/* Runs the loop, reading what the daemon writes, until h's filter is want
 * or secs pass */
static void
run_until_filter(const struct ewp_handle *h, const char *want, double secs)
{
    double end = now_s() + secs;
    static char buf[1u << 16];

    while ((h->filter == NULL || strcmp(h->filter, want) != 0) && now_s() < end) {
        (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT);
        while (read(ewp_stack.fds[1], buf, sizeof(buf)) > 0)
            ;
        usleep(1000);
    }
}

static void
test_cast_filter_off_the_loop(void)
{
    const size_t big = 6u << 20; /* 3 x 6 MiB + 1 KiB: past the node's compiles */
    char *f = malloc(big);
    struct ewp_handle *h;

    CU_ASSERT_FATAL(f != NULL);
    memset(f, ' ', big);
    memcpy(f, "ip", 2);
    ewp_stack_setup(64u << 20, 0);
    h = ewp_stack_open(ewp_stack_enc_open_file, NULL);
    /* not compiled while the frame is handled: by a worker, later */
    cast_filter(&h->ref, "tcp", 3);
    CU_ASSERT(h->filter == NULL || strcmp(h->filter, "tcp") != 0);
    run_until_filter(h, "tcp", 10);
    CU_ASSERT(h->filter != NULL && strcmp(h->filter, "tcp") == 0);
    /* refused as the call's is (compile_queue_full), unanswered */
    cast_filter(&h->ref, f, big);
    run_until_filter(h, "never", 0.3);
    CU_ASSERT(h->filter != NULL && strcmp(h->filter, "tcp") == 0);
    free(f);
    ewp_stack_teardown();
}

CU_TestInfo ewp_rpc_cast_tests[] = {
    {"a filter sent by erpc:cast is compiled off the loop, and counted", test_cast_filter_off_the_loop},
    CU_TEST_INFO_NULL,
};
