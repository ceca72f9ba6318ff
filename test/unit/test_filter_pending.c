/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A filter request made while an open waits for its own filter to compile
 * (filter.c) is a filter request, not the open: its failure does not close
 * the handle (which had closed it silently, the open already answered
 * {ok, Ref}), and the open's filter is set until a later one is. On the
 * real stack (stack.h).
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <ev.h>

#include "handles.h"
#include "stack.h"

struct filter_req {
    const erlang_ref *ref;
    const char *text;
};

/* {filter, Ref, Text, []} */
static void
enc_filter(ei_x_buff *x, const void *arg)
{
    const struct filter_req *a = arg;

    CU_ASSERT(ei_x_encode_tuple_header(x, 4) == 0 && ei_x_encode_atom(x, "filter") == 0 &&
              ei_x_encode_ref(x, a->ref) == 0 &&
              ei_x_encode_binary(x, a->text, (long)strlen(a->text)) == 0 &&
              ei_x_encode_empty_list(x) == 0);
}

/* Runs the loop, reading what the daemon writes, for secs or until the
 * handle's open and want are done (h no longer pending, its filter want) */
static void
settle(const struct ewp_handle *h, const char *want, double secs)
{
    struct timespec t0, t;
    static char buf[1u << 16];

    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        (void)ev_run(ewp_stack.loop, EVRUN_NOWAIT);
        while (read(ewp_stack.fds[1], buf, sizeof(buf)) > 0)
            ;
        if (ewp_handles_count(ewp_stack.req.handles) == 0 ||
            (!h->pending && h->filter != NULL && strcmp(h->filter, want) == 0))
            return;
        (void)clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 > secs)
            return;
        usleep(1000);
    }
}

/* A stack and a handle opened with "udp", then filter text asked for
 * before the open's compile is done, the loop run until want is set */
static struct ewp_handle *
open_then_filter(const char *text, const char *want)
{
    struct ewp_handle *h;
    struct filter_req a;

    ewp_stack_setup(8u << 20, 0);
    h = ewp_stack_open(ewp_stack_enc_open_file, "udp");
    CU_ASSERT_FATAL(h->pending);
    a.ref = &h->ref;
    a.text = text;
    ewp_stack_call(enc_filter, &a);
    settle(h, want, 10);
    return h;
}

/* Open with "udp", then a filter that does not compile before the open's
 * compile is done: the handle stays, started, with "udp" */
static void
test_bad_filter_while_open_compiles(void)
{
    struct ewp_handle *h = open_then_filter("not a filter", "udp");

    CU_ASSERT_FATAL(ewp_handles_count(ewp_stack.req.handles) == 1);
    CU_ASSERT(!h->pending);
    CU_ASSERT(h->filter != NULL && strcmp(h->filter, "udp") == 0);
    ewp_stack_teardown();
}

/* Open with "udp", then "tcp" before the open's compile is done: the
 * handle starts, and ends with "tcp" */
static void
test_filter_while_open_compiles(void)
{
    struct ewp_handle *h = open_then_filter("tcp", "tcp");

    CU_ASSERT_FATAL(ewp_handles_count(ewp_stack.req.handles) == 1);
    CU_ASSERT(!h->pending);
    CU_ASSERT(h->filter != NULL && strcmp(h->filter, "tcp") == 0);
    CU_ASSERT_EQUAL(h->filter_set_gen, h->filter_gen);
    ewp_stack_teardown();
}

CU_TestInfo ewp_filter_pending_tests[] = {
    {"a bad filter asked while the open compiles leaves the open", test_bad_filter_while_open_compiles},
    {"a filter asked while the open compiles is set after it", test_filter_while_open_compiles},
    CU_TEST_INFO_NULL,
};
