/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/decode.c's ewp_decode_request on the shapes of the
 * requests: what open, open_file, close, stats, write, filter, dev,
 * getifaddrs and info give, and badarg or unknown_request for the wrong
 * arity, the wrong types and names we do not know. The options are
 * test_decode_opts.c's.
 */
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "decode.h"
#include "test_decode.h"

static void
test_request_open3_gives_device_and_default_options(void)
{
    struct ewp_request req;
    struct ewp_opts def;

    ewp_decode_opts_default(&def);
    CU_ASSERT(ewp_td_request(&req, "{open, <<\"eth0\">>, []}") == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN);
    CU_ASSERT(req.dev_len == 4 && memcmp(req.dev, "eth0", 4) == 0);
    CU_ASSERT(req.dev == ewp_td_last_buf + 1 + 1 + 6 + 5); /* points into the buffer */
    CU_ASSERT(req.has_owner == 0);
    CU_ASSERT(req.monitor_owner == 0);
    CU_ASSERT(memcmp(&req.opts, &def, sizeof(def)) == 0);

    CU_ASSERT(ewp_td_request(&req, "{open, <<>>, []}") == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN && req.dev_len == 0);
    CU_ASSERT(ewp_td_request(&req, "{open, \"lo\", []}") == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 2 && memcmp(req.dev, "lo", 2) == 0);
    CU_ASSERT(ewp_td_request(&req, "{open, [], []}") == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 0);
    /* a request further into the buffer */
    CU_ASSERT(ewp_td_request_at(3, &req, "{open, <<\"eth1\">>, [{snaplen, 9}]}") == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 4 && memcmp(req.dev, "eth1", 4) == 0 && req.opts.snaplen == 9);
}

static void
test_request_open4_gives_the_owner(void)
{
    struct ewp_request req;
    erlang_pid owner = mkpid(77);
    erlang_ref ref = mkref(1);

    CU_ASSERT(ewp_td_request(&req, "{open, <<\"eth0\">>, [{promisc, true}], ~p}", &owner) ==
              EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN && req.has_owner == 1);
    CU_ASSERT(ei_cmp_pids(&req.owner, &owner) == 0);
    CU_ASSERT(req.opts.promisc == 1);
    CU_ASSERT(ewp_td_request(&req, "{open, <<\"eth0\">>, [], self}") == EWP_DECODE_BADARG);
    CU_ASSERT(ewp_td_request(&req, "{open, <<\"eth0\">>, [], ~r}", &ref) == EWP_DECODE_BADARG);
    CU_ASSERT(ewp_td_request(&req, "{open, <<\"eth0\">>, [], {~p}}", &owner) == EWP_DECODE_BADARG);
}

static void
test_request_close_stats_write_and_filter_give_their_arguments(void)
{
    struct ewp_request req;
    erlang_ref ref = mkref(31);
    unsigned char pkt[300];
    size_t n;

    CU_ASSERT(ewp_td_request(&req, "{close, ~r}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_CLOSE && ei_cmp_refs(&req.ref, &ref) == 0);
    CU_ASSERT(ewp_td_request(&req, "{stats, ~r}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_STATS && ei_cmp_refs(&req.ref, &ref) == 0);

    for (n = 0; n < sizeof(pkt); n++)
        pkt[n] = (unsigned char)n;
    CU_ASSERT(ewp_td_request(&req, "{write, ~r, ~B}", &ref, pkt, (int)sizeof(pkt)) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_WRITE && ei_cmp_refs(&req.ref, &ref) == 0);
    CU_ASSERT(req.data_len == sizeof(pkt) && memcmp(req.data, pkt, sizeof(pkt)) == 0);
    CU_ASSERT(req.data > ewp_td_last_buf && req.data < ewp_td_last_buf + 400);
    CU_ASSERT(ewp_td_request(&req, "{write, ~r, <<>>}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_WRITE && req.data_len == 0);

    CU_ASSERT(ewp_td_request(&req, "{filter, ~r, <<\"tcp port 80\">>, []}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_FILTER && ei_cmp_refs(&req.ref, &ref) == 0);
    CU_ASSERT(req.data_len == 11 && memcmp(req.data, "tcp port 80", 11) == 0);
    CU_ASSERT(req.opts.optimize == 1 && req.opts.netmask == 0xffffffffU &&
              req.opts.limit == EWP_FILTER_LIMIT);
    CU_ASSERT(ewp_td_request(&req, "{filter, ~r, \"udp\", []}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_FILTER && req.data_len == 3 && memcmp(req.data, "udp", 3) == 0);
    CU_ASSERT(ewp_td_request(&req, "{filter, ~r, [], []}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_FILTER && req.data_len == 0);
    CU_ASSERT(ewp_td_request(&req, "{filter, ~r, <<>>, []}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.data_len == 0);
}

static void
test_request_atoms_dev_getifaddrs_and_info(void)
{
    struct ewp_request req;

    CU_ASSERT(ewp_td_request(&req, "dev") == EWP_DECODE_OK && req.type == EWP_REQ_DEV);
    CU_ASSERT(ewp_td_request(&req, "getifaddrs") == EWP_DECODE_OK && req.type == EWP_REQ_GETIFADDRS);
    CU_ASSERT(ewp_td_request(&req, "info") == EWP_DECODE_OK && req.type == EWP_REQ_INFO);
}

/* Each request of bad (~r a reference, ~p a pid) decodes as badarg */
static void
expect_all_badarg(const char *const *bad, size_t count)
{
    erlang_ref ref = mkref(1);
    erlang_pid pid = mkpid(1);
    struct ewp_request req;
    size_t n;

    for (n = 0; n < count; n++) {
        int rv = strstr(bad[n], "~p") != NULL ? ewp_td_request(&req, bad[n], &pid)
                                              : ewp_td_request(&req, bad[n], &ref);

        ewp_td_expect_status(rv, EWP_DECODE_BADARG, bad[n]);
    }
}

static void
test_request_of_the_wrong_arity_is_badarg(void)
{
    static const char *const bad[] = {
        "{close}", "{close, ~r, x}", "{stats}", "{stats, ~r, x}", "{open, <<\"eth0\">>}",
        "{open}", "{open, <<\"eth0\">>, [], ~p, x}", "{filter, ~r, <<\"tcp\">>}",
        "{filter, ~r, <<\"tcp\">>, [], x}", "{write, ~r}", "{write, ~r, <<>>, x}", "{dev}",
        "{dev, x}", "{getifaddrs}", "{info}", "{info, verbose}", "open", "close", "filter",
        "write", "stats",
    };

    expect_all_badarg(bad, N_ELEMS(bad));
}

static void
test_request_with_arguments_of_the_wrong_type_is_badarg(void)
{
    static const char *const bad[] = {
        "{close, 1}", "{close, ~p}", "{close, <<>>}", "{stats, ref}", "{stats, {~r}}",
        "{write, ~r, 1}", "{write, ~r, packet}", "{write, ~r, {<<>>}}", "{write, 1, <<>>}",
        "{write, ~r, [<<\"a\">>]}", "{filter, 1, <<\"tcp\">>, []}", "{filter, ~r, 1, []}",
        "{filter, ~r, tcp, []}", "{filter, ~r, [<<\"tcp\">>], []}", "{filter, ~r, <<\"tcp\">>, foo}",
        "{filter, ~r, <<\"tcp\">>, {}}", "{filter, ~r, <<\"tcp\">>, <<>>}", "{open, 1, []}",
        "{open, eth0, []}", "{open, {}, []}", "{open, [<<\"eth0\">>], []}",
        "{open, <<\"eth0\">>, foo}", "{open, <<\"eth0\">>, <<>>}", "{open, <<\"eth0\">>, {}}",
        "{open, <<\"eth0\">>, 1}", "{open, <<\"eth0\">>, \"abc\"}",
    };

    expect_all_badarg(bad, N_ELEMS(bad));
}

static void
test_request_unknown_is_unknown(void)
{
    static const char *const bad[] = {
        "foo", "{foo}", "{foo, 1}", "{foo, ~r}", "42", "-1", "\"open\"", "<<\"open\">>", "{}",
        "{1, 2}", "{\"open\", <<\"eth0\">>, []}", "{<<\"close\">>, ~r}", "[open]", "[]",
        "'Open'", "'open '", "{{open}, x}", "{[], ~r}", "{'dev ', x}", "~r", "{~r, close}",
    };
    erlang_ref ref = mkref(1);
    struct ewp_request req;
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++)
        ewp_td_expect_status(ewp_td_request(&req, bad[n], &ref), EWP_DECODE_UNKNOWN, bad[n]);

    /* a float and a bignum at the head */
    ewp_td_expect_status(ewp_td_request(&req, "{~d, x}", 1.5), EWP_DECODE_UNKNOWN, "{1.5, x}");
    ewp_td_expect_status(ewp_td_request(&req, "~L", (long long)1 << 62), EWP_DECODE_UNKNOWN, "1 bsl 62");
}

static void
test_request_device_longer_than_255_bytes_or_with_nul_is_badarg(void)
{
    struct ewp_request req;
    char dev[300];

    memset(dev, 'd', sizeof(dev));
    dev[255] = '\0';
    CU_ASSERT(ewp_td_request(&req, "{open, ~b, []}", dev) == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 255);
    CU_ASSERT(ewp_td_request(&req, "{open, ~s, []}", dev) == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 255);
    dev[255] = 'd';
    dev[256] = '\0';
    CU_ASSERT(ewp_td_request(&req, "{open, ~b, []}", dev) == EWP_DECODE_BADARG);
    CU_ASSERT(ewp_td_request(&req, "{open, ~s, []}", dev) == EWP_DECODE_BADARG);
    CU_ASSERT(ewp_td_request(&req, "{open, ~B, []}", dev, 299) == EWP_DECODE_BADARG);

    CU_ASSERT(ewp_td_request(&req, "{open, ~B, []}", "eth\0", 4) == EWP_DECODE_BADARG);
    CU_ASSERT(ewp_td_request(&req, "{open, ~B, []}", "\0eth", 4) == EWP_DECODE_BADARG);
    CU_ASSERT(ewp_td_request(&req, "{open, ~B, []}", "\0", 1) == EWP_DECODE_BADARG);
    CU_ASSERT(ewp_td_request(&req, "{open, ~t, []}", "k\0\3e\0t", 6) == EWP_DECODE_BADARG);
    CU_ASSERT(ewp_td_request(&req, "{open, ~t, []}", "k\0\3eth", 6) == EWP_DECODE_OK);
}

static void
test_request_open_file_gives_path_options_and_owner(void)
{
    struct ewp_request req;
    erlang_pid owner = mkpid(5);
    erlang_ref ref = mkref(1);
    char path[EWP_PATH_MAX + 2];

    CU_ASSERT(ewp_td_request(&req, "{open_file, <<\"/tmp/in.pcap\">>, []}") == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN_FILE && req.has_owner == 0);
    CU_ASSERT(req.dev_len == 12 && memcmp(req.dev, "/tmp/in.pcap", 12) == 0);
    CU_ASSERT(req.dev > ewp_td_last_buf && req.dev < ewp_td_last_buf + 40);
    CU_ASSERT(ewp_td_request(&req, "{open_file, \"in.pcap\", [{filter, \"udp\"}, {batch, 4}], ~p}",
                      &owner) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN_FILE && req.has_owner == 1 &&
              ei_cmp_pids(&req.owner, &owner) == 0);
    CU_ASSERT(req.dev_len == 7 && memcmp(req.dev, "in.pcap", 7) == 0);
    CU_ASSERT(req.opts.has_filter == 1 && req.opts.filter_len == 3 && req.opts.batch == 4);

    memset(path, 'p', sizeof(path));
    path[EWP_PATH_MAX] = '\0';
    CU_ASSERT(ewp_td_request(&req, "{open_file, ~b, []}", path) == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == EWP_PATH_MAX);
    path[EWP_PATH_MAX] = 'p';
    path[EWP_PATH_MAX + 1] = '\0';
    ewp_td_expect_status(ewp_td_request(&req, "{open_file, ~b, []}", path), EWP_DECODE_BADARG,
                  "{open_file, <<4096 bytes>>, []}");
    ewp_td_expect_status(ewp_td_request(&req, "{open_file, ~s, []}", path), EWP_DECODE_BADARG,
                  "{open_file, \"4096 bytes\", []}");

    {
        static const char *const bad[] = {
            "{open_file, <<>>, []}", "{open_file, [], []}", "{open_file, ~B, []}",
            "{open_file, 1, []}", "{open_file, in, []}", "{open_file, <<\"in\">>, foo}",
            "{open_file, <<\"in\">>, [{foo, 1}]}", "{open_file, <<\"in\">>, [], self}",
            "{open_file, <<\"in\">>, [], ~r}", "{open_file, <<\"in\">>}", "{open_file}",
            "open_file", "{open_file, <<\"in\">>, [], ~p, x}",
        };
        size_t n;

        for (n = 0; n < N_ELEMS(bad); n++) {
            int rv;

            if (strstr(bad[n], "~B") != NULL)
                rv = ewp_td_request(&req, bad[n], "a\0b", 3);
            else if (strstr(bad[n], "~p") != NULL)
                rv = ewp_td_request(&req, bad[n], &owner);
            else
                rv = ewp_td_request(&req, bad[n], &ref);
            ewp_td_expect_status(rv, EWP_DECODE_BADARG, bad[n]);
        }
    }
}

CU_TestInfo ewp_decode_request_tests[] = {
    {"{open, Dev, Opts} gives the device and default options",
     test_request_open3_gives_device_and_default_options},
    {"{open, Dev, Opts, Owner} gives the owner", test_request_open4_gives_the_owner},
    {"close, stats, write and filter give their arguments",
     test_request_close_stats_write_and_filter_give_their_arguments},
    {"dev, getifaddrs and info are atoms", test_request_atoms_dev_getifaddrs_and_info},
    {"a request of the wrong arity is badarg", test_request_of_the_wrong_arity_is_badarg},
    {"a request with arguments of the wrong type is badarg",
     test_request_with_arguments_of_the_wrong_type_is_badarg},
    {"an unknown request is unknown_request", test_request_unknown_is_unknown},
    {"a device longer than 255 bytes or with a NUL is badarg",
     test_request_device_longer_than_255_bytes_or_with_nul_is_badarg},
    {"{open_file, Path, Opts[, Owner]} gives the path, options and owner",
     test_request_open_file_gives_path_options_and_owner},
    CU_TEST_INFO_NULL,
};
