/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/decode.c on bytes no peer should send: random bytes
 * biased to term tags, and valid requests with bytes changed or cut. Each
 * input goes through ewp_decode_check, then ewp_decode_request and
 * ewp_decode_call on what it accepts; none may fault, read outside the
 * checked term or move *index on failure (test_decode.h runs them guarded).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "decode.h"
#include "test_decode.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void
report_input(const char *why, const unsigned char *b, size_t len)
{
    size_t n;

    fprintf(stderr, "\n%s (%zu bytes):", why, len);
    for (n = 0; n < len && n < 256; n++)
        fprintf(stderr, " %02x", b[n]);
    fprintf(stderr, "\n");
}

/*
 * The decoders' contract on one input: check first; only what it accepts
 * reaches ewp_decode_call and ewp_decode_request, which must stay inside
 * the checked term, leave *index alone on failure and not fault.
 * Returns 0 when everything held.
 */
static int
fuzz_one(const unsigned char *in, size_t len)
{
    struct call_out co;
    struct ewp_request req;
    char *buf = ewp_t_guard(in, len);
    int end = 0, i, j, rv, fault;

    if (buf == NULL)
        return -1;
    rv = ewp_td_guarded(OP_CHECK, buf, len, &end, NULL, &fault);
    if (fault)
        return report_input("ewp_decode_check faulted", in, len), -1;
    if (rv < 0)
        return end == 0 ? 0 : (report_input("ewp_decode_check moved *index", in, len), -1);
    if (rv != 0 || end <= 0 || (size_t)end > len)
        return report_input("ewp_decode_check returned a bad end", in, len), -1;

    i = 0;
    rv = ewp_td_guarded(OP_REQUEST, buf, len, &i, &req, &fault);
    if (fault)
        return report_input("ewp_decode_request faulted", in, len), -1;
    if (rv == EWP_DECODE_OK ? i != end : (rv != EWP_DECODE_BADARG && rv != EWP_DECODE_UNKNOWN) || i != 0)
        return report_input("ewp_decode_request broke its contract", in, len), -1;

    i = 0;
    co.tag_index = co.tag_len = -7;
    rv = ewp_td_guarded(OP_CALL, buf, len, &i, &co, &fault);
    if (fault)
        return report_input("ewp_decode_call faulted", in, len), -1;
    if (rv < 0)
        return i == 0 && co.tag_len == -7 ? 0
                                          : (report_input("ewp_decode_call moved *index", in, len), -1);
    /* the tag is one whole checked term and the request follows it */
    j = co.tag_index;
    if (co.tag_index <= 0 || co.tag_index + co.tag_len != i || i >= end ||
        ewp_decode_check(buf, len, &j) < 0 || j != i)
        return report_input("ewp_decode_call's tag is not one whole term", in, len), -1;
    j = i;
    if (ewp_decode_check(buf, len, &j) < 0 || j != end)
        return report_input("ewp_decode_call left *index off the request", in, len), -1;
    rv = ewp_td_guarded(OP_REQUEST, buf, len, &i, &req, &fault);
    if (fault)
        return report_input("ewp_decode_request faulted after a call", in, len), -1;
    return 0;
}

static void
test_decoders_survive_random_bytes(void)
{
    static const unsigned char tags[] = {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j',
                                         'k', 'l', 'm', 'n', 'o', 'r', 's', 't', 'v', 'w',
                                         'x', 'F', 'M', 'X', 'Y', 'Z', 'p', 'q', 'u'};
    unsigned char in[96];
    int iter, bad = 0;
    size_t len, n;

    rng = 0x2545f4914f6cdd1dULL;
    for (iter = 0; iter < 40000 && !bad; iter++) {
        len = rnd() % sizeof(in);
        for (n = 0; n < len; n++) {
            uint32_t r = rnd();

            /* mostly tags and small numbers, so that terms nest */
            if (r % 3 == 0)
                in[n] = tags[(r >> 8) % sizeof(tags)];
            else if (r % 3 == 1)
                in[n] = (unsigned char)((r >> 8) % 4);
            else
                in[n] = (unsigned char)(r >> 8);
        }
        if (fuzz_one(in, len) < 0)
            bad = 1;
    }
    CU_ASSERT(bad == 0);
}

static void
test_decoders_survive_mutated_requests(void)
{
    erlang_pid pid = mkpid(1);
    erlang_ref ref = mkref(2);
    const char *fmts[] = {
        ("{'$gen_call', {~p, ~r}, {open, <<\"eth0\">>, [{snaplen, 96}, {timeout, 100}, "
         "{filter, \"tcp\"}, {netmask, {255, 255, 255, 0}}, {time_unit, microsecond}], ~p}}"),
        "{'$gen_call', {~p, [alias | ~r]}, {filter, ~r, <<\"udp\">>, [{limit, -1}]}}",
        "{'$gen_call', {~p, ~r}, {write, ~r, <<\"0123456789\">>}}",
        "{'$gen_call', {~p, ~r}, {stats, ~r}}",
        "{'$gen_call', {~p, ~r}, getifaddrs}",
    };
    unsigned char in[512];
    int iter, bad = 0;
    size_t n;

    rng = 0x0123456789abcdefULL;
    for (n = 0; n < N_ELEMS(fmts) && !bad; n++) {
        ei_x_buff x;
        size_t len;

        if (ewp_td_build(&x, fmts[n], &pid, &ref, n == 0 ? (void *)&pid : (void *)&ref, &pid) < 0 ||
            (size_t)x.index > sizeof(in)) {
            ei_x_free(&x);
            continue;
        }
        len = (size_t)x.index;
        CU_ASSERT(fuzz_one((unsigned char *)x.buff, len) == 0);
        for (iter = 0; iter < 8000 && !bad; iter++) {
            int k, flips = 1 + (int)(rnd() % 3);
            size_t l = len;

            memcpy(in, x.buff, len);
            for (k = 0; k < flips; k++) {
                uint32_t r = rnd();
                size_t at = (r >> 8) % len;

                switch (r % 4) {
                case 0:
                    in[at] = (unsigned char)(r >> 20);
                    break;
                case 1:
                    in[at] ^= (unsigned char)(1u << ((r >> 20) % 8));
                    break;
                case 2:
                    in[at] = (unsigned char)((r >> 20) % 4);
                    break;
                default:
                    l = at + 1; /* cut */
                    break;
                }
            }
            if (fuzz_one(in, l) < 0)
                bad = 1;
        }
        ei_x_free(&x);
    }
    CU_ASSERT(bad == 0);
}

CU_TestInfo ewp_decode_fuzz_tests[] = {
    {"decoders survive random bytes", test_decoders_survive_random_bytes},
    {"decoders survive mutated requests", test_decoders_survive_mutated_requests},
    CU_TEST_INFO_NULL,
};
