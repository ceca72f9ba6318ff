/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/decode.c on options: ewp_decode_opts_default, the
 * options of open (each value, all together, which occurrence wins, the
 * wrong types, unknown or malformed ones), the few a filter request takes,
 * {dump, Path}, and ewp_filter_within_limit, which applies {limit, L}.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "decode.h"
#include "test_decode.h"

/* {open, <<"eth0">>, Opts} with Opts given as text */
static int
open_with(struct ewp_request *req, const char *opts)
{
    char fmt[512];

    (void)snprintf(fmt, sizeof(fmt), "{open, <<\"eth0\">>, %s}", opts);
    return ewp_td_request(req, fmt);
}

/* {filter, Ref, <<"tcp">>, Opts} with Opts given as text */
static int
filter_with(struct ewp_request *req, const char *opts)
{
    char fmt[512];
    erlang_ref ref = mkref(1);

    (void)snprintf(fmt, sizeof(fmt), "{filter, ~r, <<\"tcp\">>, %s}", opts);
    return ewp_td_request(req, fmt, &ref);
}

/* ---- ewp_decode_request: options ---- */

static void
test_opts_default_values(void)
{
    struct ewp_opts o;

    memset(&o, 0x5a, sizeof(o));
    ewp_decode_opts_default(&o);
    CU_ASSERT(o.snaplen == 65535);
    CU_ASSERT(o.promisc == 0);
    CU_ASSERT(o.immediate == 1);
    CU_ASSERT(o.timeout_ms == 0);
    CU_ASSERT(o.buffer == 0);
    CU_ASSERT(o.monitor == 0);
    CU_ASSERT(o.time_unit == EWP_TIME_TIMESTAMP);
    CU_ASSERT(o.has_filter == 0);
    CU_ASSERT(o.filter_len == 0);
    CU_ASSERT(o.optimize == 1);
    CU_ASSERT(o.netmask == 0xffffffffU);
    CU_ASSERT(o.limit == 8192 && o.limit == EWP_FILTER_LIMIT);
    CU_ASSERT(o.batch == 1);
    CU_ASSERT(o.share == 1);
    CU_ASSERT(o.dump == NULL && o.dump_len == 0);
}

static void
test_opts_each_valid_value_sets_its_field(void)
{
    struct ewp_request r;

    CU_ASSERT(open_with(&r, "[{snaplen, 0}]") == 0 && r.opts.snaplen == 0);
    CU_ASSERT(open_with(&r, "[{snaplen, 96}]") == 0 && r.opts.snaplen == 96);
    CU_ASSERT(open_with(&r, "[{snaplen, 2147483647}]") == 0 && r.opts.snaplen == INT_MAX);
    CU_ASSERT(open_with(&r, "[{promisc, true}]") == 0 && r.opts.promisc == 1);
    CU_ASSERT(open_with(&r, "[{promisc, false}]") == 0 && r.opts.promisc == 0);

    CU_ASSERT(open_with(&r, "[{timeout, immediate}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{timeout, infinity}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{timeout, 500}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 500);
    CU_ASSERT(open_with(&r, "[{timeout, 0}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{timeout, 2147483647}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == INT_MAX);
    CU_ASSERT(open_with(&r, "[{to_ms, 250}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 250);

    CU_ASSERT(open_with(&r, "[{immediate, false}]") == 0 && r.opts.immediate == 0);
    CU_ASSERT(open_with(&r, "[{immediate, true}]") == 0 && r.opts.immediate == 1);

    CU_ASSERT(open_with(&r, "[{buffer, 1048576}]") == 0 && r.opts.buffer == 1048576);
    CU_ASSERT(open_with(&r, "[{buffer, 0}]") == 0 && r.opts.buffer == 0);
    CU_ASSERT(open_with(&r, "[{buffer, -1}]") == 0 && r.opts.buffer == -1);
    CU_ASSERT(open_with(&r, "[{buffer, -2147483648}]") == 0 && r.opts.buffer == INT_MIN);
    CU_ASSERT(open_with(&r, "[{monitor, true}]") == 0 && r.opts.monitor == 1);
    CU_ASSERT(open_with(&r, "[{monitor, false}]") == 0 && r.opts.monitor == 0);
    CU_ASSERT(open_with(&r, "[{share, false}]") == 0 && r.opts.share == 0);
    CU_ASSERT(open_with(&r, "[{share, true}]") == 0 && r.opts.share == 1);
    CU_ASSERT(open_with(&r, "[{share, false}, {share, true}]") == 0 && r.opts.share == 0);
    CU_ASSERT(open_with(&r, "[]") == 0 && r.opts.share == 1);
    CU_ASSERT(open_with(&r, "[{time_unit, microsecond}]") == 0 &&
              r.opts.time_unit == EWP_TIME_MICROSECOND);
    CU_ASSERT(open_with(&r, "[{time_unit, timestamp}]") == 0 &&
              r.opts.time_unit == EWP_TIME_TIMESTAMP);
    CU_ASSERT(open_with(&r, "[{time_unit, nanosecond}]") == 0 &&
              r.opts.time_unit == EWP_TIME_NANOSECOND && r.opts.precision == EWP_TSTAMP_MICRO);
    /* nano without a time_unit: Time in nanoseconds; with one: as asked */
    CU_ASSERT(open_with(&r, "[{tstamp_precision, nano}]") == 0 &&
              r.opts.precision == EWP_TSTAMP_NANO && r.opts.time_unit == EWP_TIME_NANOSECOND);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, nano}, {time_unit, timestamp}]") == 0 &&
              r.opts.precision == EWP_TSTAMP_NANO && r.opts.time_unit == EWP_TIME_TIMESTAMP);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, micro}]") == 0 &&
              r.opts.precision == EWP_TSTAMP_MICRO && r.opts.time_unit == EWP_TIME_TIMESTAMP);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, micro}, {tstamp_precision, nano}]") == 0 &&
              r.opts.precision == EWP_TSTAMP_MICRO);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, pico}]") == EWP_DECODE_BADARG);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, 9}]") == EWP_DECODE_BADARG);
    CU_ASSERT(open_with(&r, "[{time_unit, picosecond}]") == EWP_DECODE_BADARG);

    CU_ASSERT(open_with(&r, "[{filter, <<\"tcp port 80\">>}]") == 0);
    CU_ASSERT(r.opts.has_filter == 1 && r.opts.filter_len == 11 &&
              memcmp(r.opts.filter, "tcp port 80", 11) == 0);
    CU_ASSERT(r.opts.filter > ewp_td_last_buf && r.opts.filter < ewp_td_last_buf + 64);
    CU_ASSERT(open_with(&r, "[{filter, \"udp\"}]") == 0);
    CU_ASSERT(r.opts.has_filter == 1 && r.opts.filter_len == 3 &&
              memcmp(r.opts.filter, "udp", 3) == 0);
    CU_ASSERT(open_with(&r, "[{filter, <<>>}]") == 0);
    CU_ASSERT(r.opts.has_filter == 1 && r.opts.filter_len == 0);
    CU_ASSERT(open_with(&r, "[{filter, []}]") == 0);
    CU_ASSERT(r.opts.has_filter == 1 && r.opts.filter_len == 0);

    CU_ASSERT(open_with(&r, "[{optimize, false}]") == 0 && r.opts.optimize == 0);
    CU_ASSERT(open_with(&r, "[{optimize, true}]") == 0 && r.opts.optimize == 1);
    CU_ASSERT(open_with(&r, "[{netmask, 0}]") == 0 && r.opts.netmask == 0);
    CU_ASSERT(open_with(&r, "[{netmask, 4294967295}]") == 0 && r.opts.netmask == 0xffffffffU);
    CU_ASSERT(open_with(&r, "[{netmask, 4294967040}]") == 0 && r.opts.netmask == 0xffffff00U);
    CU_ASSERT(open_with(&r, "[{netmask, {255, 255, 255, 0}}]") == 0 &&
              r.opts.netmask == 0xffffff00U);
    CU_ASSERT(open_with(&r, "[{netmask, {10, 1, 2, 3}}]") == 0 && r.opts.netmask == 0x0a010203U);
    CU_ASSERT(open_with(&r, "[{netmask, {0, 0, 0, 0}}]") == 0 && r.opts.netmask == 0);
    CU_ASSERT(open_with(&r, "[{limit, -1}]") == 0 && r.opts.limit == -1);
    CU_ASSERT(open_with(&r, "[{limit, 0}]") == 0 && r.opts.limit == 0);
    CU_ASSERT(open_with(&r, "[{limit, 100000}]") == 0 && r.opts.limit == 100000);
    CU_ASSERT(open_with(&r, "[{limit, -9223372036854775807}]") == 0 &&
              r.opts.limit == -LONG_MAX);
    CU_ASSERT(open_with(&r, "[{batch, 1}]") == 0 && r.opts.batch == 1);
    CU_ASSERT(open_with(&r, "[{batch, 64}]") == 0 && r.opts.batch == 64);
    CU_ASSERT(open_with(&r, "[{batch, 65536}]") == 0 && r.opts.batch == EWP_BATCH_MAX);
}

static void
test_opts_all_together(void)
{
    struct ewp_request r;

    CU_ASSERT(open_with(&r, "[{snaplen, 128}, {promisc, true}, {timeout, 20}, {buffer, 4096}, "
                            "{monitor, true}, {time_unit, microsecond}, {filter, \"ip\"}, "
                            "{optimize, false}, {netmask, {255, 0, 0, 0}}, {limit, 3}, "
                            "{batch, 8}]") == 0);
    CU_ASSERT(r.opts.snaplen == 128 && r.opts.promisc == 1 && r.opts.immediate == 0 &&
              r.opts.timeout_ms == 20 && r.opts.buffer == 4096 && r.opts.monitor == 1 &&
              r.opts.time_unit == EWP_TIME_MICROSECOND && r.opts.has_filter == 1 &&
              r.opts.filter_len == 2 && r.opts.optimize == 0 && r.opts.netmask == 0xff000000U &&
              r.opts.limit == 3 && r.opts.batch == 8);
}

static void
test_opts_immediate_overrides_timeout_in_any_order(void)
{
    struct ewp_request r;

    CU_ASSERT(open_with(&r, "[{immediate, true}, {timeout, 500}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 500);
    CU_ASSERT(open_with(&r, "[{timeout, 500}, {immediate, true}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 500);
    CU_ASSERT(open_with(&r, "[{immediate, false}, {timeout, immediate}]") == 0);
    CU_ASSERT(r.opts.immediate == 0);
    CU_ASSERT(open_with(&r, "[{timeout, immediate}, {immediate, false}]") == 0);
    CU_ASSERT(r.opts.immediate == 0);
    CU_ASSERT(open_with(&r, "[{to_ms, 7}, {immediate, true}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 7);
    CU_ASSERT(open_with(&r, "[{immediate, true}, {timeout, infinity}]") == 0);
    CU_ASSERT(r.opts.immediate == 1);
    /* the first {immediate, _} counts */
    CU_ASSERT(open_with(&r, "[{immediate, false}, {timeout, 9}, {immediate, true}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 9);
}

static void
test_opts_first_occurrence_wins(void)
{
    struct ewp_request r;

    CU_ASSERT(open_with(&r, "[{snaplen, 1}, {snaplen, 2}]") == 0 && r.opts.snaplen == 1);
    CU_ASSERT(open_with(&r, "[{promisc, true}, {promisc, false}]") == 0 && r.opts.promisc == 1);
    CU_ASSERT(open_with(&r, "[{timeout, 5}, {timeout, 6}]") == 0 && r.opts.timeout_ms == 5);
    CU_ASSERT(open_with(&r, "[{timeout, 5}, {to_ms, 6}]") == 0 && r.opts.timeout_ms == 5);
    CU_ASSERT(open_with(&r, "[{to_ms, 6}, {timeout, 5}]") == 0 && r.opts.timeout_ms == 6);
    CU_ASSERT(open_with(&r, "[{timeout, infinity}, {timeout, 5}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{timeout, immediate}, {timeout, 5}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{buffer, 10}, {buffer, 20}]") == 0 && r.opts.buffer == 10);
    CU_ASSERT(open_with(&r, "[{monitor, false}, {monitor, true}]") == 0 && r.opts.monitor == 0);
    CU_ASSERT(open_with(&r, "[{time_unit, microsecond}, {time_unit, timestamp}]") == 0 &&
              r.opts.time_unit == EWP_TIME_MICROSECOND);
    CU_ASSERT(open_with(&r, "[{filter, \"tcp\"}, {filter, <<\"udp\">>}]") == 0);
    CU_ASSERT(r.opts.filter_len == 3 && memcmp(r.opts.filter, "tcp", 3) == 0);
    CU_ASSERT(open_with(&r, "[{optimize, false}, {optimize, true}]") == 0 && r.opts.optimize == 0);
    CU_ASSERT(open_with(&r, "[{netmask, {255, 0, 0, 0}}, {netmask, 0}]") == 0 &&
              r.opts.netmask == 0xff000000U);
    CU_ASSERT(open_with(&r, "[{limit, -1}, {limit, 5}]") == 0 && r.opts.limit == -1);
    CU_ASSERT(open_with(&r, "[{batch, 2}, {batch, 3}]") == 0 && r.opts.batch == 2);
    CU_ASSERT(filter_with(&r, "[{limit, 1}, {limit, 2}]") == 0 && r.opts.limit == 1);
}

static void
test_opts_of_the_wrong_type_are_badarg(void)
{
    static const char *const bad[] = {
        /* snaplen: 0..2147483647 */
        "[{snaplen, -1}]", "[{snaplen, 2147483648}]", "[{snaplen, foo}]", "[{snaplen, \"1\"}]",
        "[{snaplen, <<\"1\">>}]", "[{snaplen, ~d}]", "[{snaplen, {1}}]", "[{snaplen, []}]",
        /* booleans */
        "[{promisc, 1}]", "[{promisc, yes}]", "[{promisc, \"true\"}]", "[{immediate, 1}]",
        "[{immediate, immediate}]", "[{monitor, 0}]", "[{monitor, []}]", "[{optimize, 1}]",
        "[{optimize, 'True'}]", "[{share, 1}]", "[{share, yes}]", "[{share, \"false\"}]",
        /* timeout: immediate | infinity | 0..2147483647 */
        "[{timeout, -1}]", "[{timeout, 2147483648}]", "[{timeout, foo}]", "[{timeout, \"10\"}]",
        "[{timeout, ~d}]", "[{timeout, 'Infinity'}]", "[{timeout, {5}}]",
        /* to_ms: 0..2147483647 only */
        "[{to_ms, immediate}]", "[{to_ms, infinity}]", "[{to_ms, -1}]", "[{to_ms, 2147483648}]",
        /* buffer: integer() fitting an int */
        "[{buffer, foo}]", "[{buffer, 2147483648}]", "[{buffer, -2147483649}]",
        "[{buffer, ~d}]",
        /* time_unit */
        "[{time_unit, foo}]", "[{time_unit, second}]", "[{time_unit, millisecond}]",
        "[{time_unit, 1}]", "[{time_unit, \"microsecond\"}]",
        /* filter: binary() | string() */
        "[{filter, 1}]", "[{filter, tcp}]", "[{filter, [300]}]", "[{filter, [<<\"tcp\">>]}]",
        "[{filter, {<<\"tcp\">>}}]", "[{filter, ~d}]",
        /* netmask: 0..16#FFFFFFFF | {A, B, C, D} */
        "[{netmask, -1}]", "[{netmask, 4294967296}]", "[{netmask, {1, 2, 3}}]",
        "[{netmask, {1, 2, 3, 256}}]", "[{netmask, {1, 2, 3, -1}}]", "[{netmask, {1, 2, 3, 4, 5}}]",
        "[{netmask, foo}]", "[{netmask, \"255.0.0.0\"}]", "[{netmask, {a, b, c, d}}]",
        "[{netmask, [255, 255, 255, 0]}]", "[{netmask, 18446744073709551615}]", "[{netmask, 9223372036854775807}]", "[{netmask, ~d}]",
        /* limit: integer() */
        "[{limit, foo}]", "[{limit, ~d}]", "[{limit, 9223372036854775808}]",
        "[{limit, -9223372036854775809}]", "[{limit, \"1\"}]",
        /* batch: 1..65536 */
        "[{batch, 0}]", "[{batch, -1}]", "[{batch, 65537}]", "[{batch, foo}]",
        /* a later duplicate is type-checked too */
        "[{snaplen, 1}, {snaplen, foo}]", "[{filter, \"tcp\"}, {filter, 1}]",
        "[{timeout, 5}, {to_ms, infinity}]",
    };
    struct ewp_request r;
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++) {
        char fmt[512];

        (void)snprintf(fmt, sizeof(fmt), "{open, <<\"eth0\">>, %s}", bad[n]);
        ewp_td_expect_status(ewp_td_request(&r, fmt, 1.0), EWP_DECODE_BADARG, bad[n]);
    }
}

static void
test_opts_unknown_or_malformed_are_badarg(void)
{
    static const char *const bad[] = {
        "[{foo, 1}]", "[{snaplen, 1}, {foo, 1}]", "[{'Snaplen', 1}]", "[{\"snaplen\", 1}]",
        "[{<<\"snaplen\">>, 1}]", "[{1, 1}]", "[snaplen]", "[{snaplen}]", "[{snaplen, 1, 2}]",
        "[[snaplen, 1]]", "[{}]", "[1]", "[[]]", "[promisc]", "[{promisc, true} | foo]",
        "[{promisc, true}, {snaplen, 1} | {snaplen, 2}]", "[{snaplen, 1} | <<>>]",
        "[{filter, \"tcp\"} | \"udp\"]", "[{nolimit, 1}]", "[{to_MS, 1}]", "[{timeout , 1, 2}]",
    };
    struct ewp_request r;
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++)
        ewp_td_expect_status(open_with(&r, bad[n]), EWP_DECODE_BADARG, bad[n]);
    CU_ASSERT(open_with(&r, "[{snaplen, 1} | []]") == EWP_DECODE_OK && r.opts.snaplen == 1);
}

static void
test_filter_request_takes_only_filter_options(void)
{
    static const char *const open_only[] = {
        "[{snaplen, 1}]",      "[{promisc, true}]",       "[{timeout, 5}]",
        "[{timeout, immediate}]", "[{to_ms, 5}]",         "[{immediate, true}]",
        "[{buffer, 1}]",       "[{monitor, false}]",      "[{time_unit, microsecond}]",
        "[{filter, \"tcp\"}]", "[{batch, 2}]",            "[{limit, 1}, {snaplen, 1}]",
        "[{foo, 1}]",          "[{optimize, 1}]",         "[{netmask, foo}]",
        "[{limit, foo}]",      "[{optimize, true} | foo]", "[{share, false}]",
    };
    struct ewp_request r;
    size_t n;

    for (n = 0; n < N_ELEMS(open_only); n++)
        ewp_td_expect_status(filter_with(&r, open_only[n]), EWP_DECODE_BADARG, open_only[n]);

    CU_ASSERT(filter_with(&r, "[]") == 0);
    CU_ASSERT(r.opts.optimize == 1 && r.opts.netmask == 0xffffffffU && r.opts.limit == 8192);
    CU_ASSERT(filter_with(&r, "[{optimize, false}, {netmask, {255, 255, 0, 0}}, {limit, -1}]") ==
              0);
    CU_ASSERT(r.opts.optimize == 0 && r.opts.netmask == 0xffff0000U && r.opts.limit == -1);
    CU_ASSERT(r.data_len == 3 && memcmp(r.data, "tcp", 3) == 0);
    CU_ASSERT(r.opts.has_filter == 0);
    CU_ASSERT(filter_with(&r, "[{netmask, 16777215}]") == 0 && r.opts.netmask == 0x00ffffffU);
    CU_ASSERT(filter_with(&r, "[{limit, 0}]") == 0 && r.opts.limit == 0);
}

static void
test_opts_dump_gives_a_path(void)
{
    static const char *const bad[] = {
        "[{dump, <<>>}]", "[{dump, []}]", "[{dump, 1}]", "[{dump, out}]", "[{dump, {\"x\"}}]",
        "[{dump, [<<\"x\">>]}]", "[{dump, ~B}]", "[{dump, \"x\"}, {dump, 1}]",
    };
    struct ewp_request r;
    char path[EWP_PATH_MAX + 2];
    char fmt[64];
    size_t n;

    CU_ASSERT(open_with(&r, "[{dump, <<\"/tmp/out.pcap\">>}]") == 0);
    CU_ASSERT(r.opts.dump_len == 13 && memcmp(r.opts.dump, "/tmp/out.pcap", 13) == 0);
    CU_ASSERT(r.opts.dump > ewp_td_last_buf && r.opts.dump < ewp_td_last_buf + 64);
    CU_ASSERT(open_with(&r, "[{dump, \"out.pcap\"}, {dump, \"other.pcap\"}]") == 0);
    CU_ASSERT(r.opts.dump_len == 8 && memcmp(r.opts.dump, "out.pcap", 8) == 0);

    memset(path, 'd', sizeof(path));
    path[EWP_PATH_MAX] = '\0';
    CU_ASSERT(ewp_td_request(&r, "{open, <<>>, [{dump, ~b}]}", path) == EWP_DECODE_OK);
    CU_ASSERT(r.opts.dump_len == EWP_PATH_MAX);
    path[EWP_PATH_MAX] = 'd';
    path[EWP_PATH_MAX + 1] = '\0';
    ewp_td_expect_status(ewp_td_request(&r, "{open, <<>>, [{dump, ~b}]}", path), EWP_DECODE_BADARG,
                  "[{dump, <<4096 bytes>>}]");

    for (n = 0; n < N_ELEMS(bad); n++) {
        (void)snprintf(fmt, sizeof(fmt), "{open, <<\"eth0\">>, %s}", bad[n]);
        ewp_td_expect_status(ewp_td_request(&r, fmt, "a\0b", 3), EWP_DECODE_BADARG, bad[n]);
    }
    /* not a filter option */
    ewp_td_expect_status(filter_with(&r, "[{dump, \"x\"}]"), EWP_DECODE_BADARG,
                  "{filter, Ref, F, [{dump, \"x\"}]}");
}

/* ---- ewp_filter_within_limit ---- */

static void
test_filter_within_limit_follows_size_less_than_limit_or_negative(void)
{
    CU_ASSERT(ewp_filter_within_limit(0, EWP_FILTER_LIMIT));
    CU_ASSERT(ewp_filter_within_limit(8191, EWP_FILTER_LIMIT));
    CU_ASSERT(!ewp_filter_within_limit(8192, EWP_FILTER_LIMIT));
    CU_ASSERT(!ewp_filter_within_limit(8193, EWP_FILTER_LIMIT));
    CU_ASSERT(!ewp_filter_within_limit(0, 0));
    CU_ASSERT(!ewp_filter_within_limit(1, 0));
    CU_ASSERT(ewp_filter_within_limit(0, 1));
    CU_ASSERT(!ewp_filter_within_limit(1, 1));
    CU_ASSERT(ewp_filter_within_limit(0, -1));
    CU_ASSERT(ewp_filter_within_limit(1000000, -1));
    CU_ASSERT(ewp_filter_within_limit(SIZE_MAX, -1));
    CU_ASSERT(ewp_filter_within_limit(SIZE_MAX, LONG_MIN));
    CU_ASSERT(ewp_filter_within_limit(SIZE_MAX - 1, LONG_MAX) == (SIZE_MAX - 1 < (size_t)LONG_MAX));
    CU_ASSERT(ewp_filter_within_limit(1000000, LONG_MAX));
}

CU_TestInfo ewp_decode_opts_tests[] = {
    {"ewp_decode_opts_default gives the documented defaults", test_opts_default_values},
    {"each valid option value sets its field", test_opts_each_valid_value_sets_its_field},
    {"all options together set all fields", test_opts_all_together},
    {"{immediate, B} overrides timeout in any order",
     test_opts_immediate_overrides_timeout_in_any_order},
    {"the first occurrence of an option wins", test_opts_first_occurrence_wins},
    {"options of the wrong type are badarg", test_opts_of_the_wrong_type_are_badarg},
    {"unknown or malformed options are badarg", test_opts_unknown_or_malformed_are_badarg},
    {"a filter request takes only filter options", test_filter_request_takes_only_filter_options},
    {"{dump, Path} gives a path of 1 to EWP_PATH_MAX bytes", test_opts_dump_gives_a_path},
    {"ewp_filter_within_limit is size < limit orelse limit < 0",
     test_filter_within_limit_follows_size_less_than_limit_or_negative},
    CU_TEST_INFO_NULL,
};
