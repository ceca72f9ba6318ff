/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/decode.c's ewp_decode_check, the check every frame
 * passes before any decoder reads it: it accepts one whole term of any
 * type, and refuses every proper prefix of a valid request, length fields
 * larger than the buffer, nesting deeper than EWP_TERM_DEPTH_MAX and funs.
 * Each case runs on a guarded copy (test_decode.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "decode.h"
#include "test_decode.h"

/* Terms whose length fields claim more than the buffer holds, or which are
 * otherwise malformed: all refused. */
static const struct raw bad_raw[] = {
    /* ei parses FLOAT_EXT text with sscanf, which reads on to a NUL */
    RAW("an old FLOAT_EXT", 'c', '1', '.', '5', '0', '0', '0', '0', '0', '0', '0', '0', '0',
        '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', 'e', '+', '0', '0', 0, 0, 0, 0, 0),
    RAW("a binary claiming 4 GiB", 'm', 0xff, 0xff, 0xff, 0xff, 1, 2, 3),
    RAW("a binary claiming 2 GiB", 'm', 0x7f, 0xff, 0xff, 0xff, 1, 2, 3),
    RAW("a binary claiming one byte too many", 'm', 0, 0, 0, 4, 1, 2, 3),
    RAW("a string claiming 65535 bytes", 'k', 0xff, 0xff, 'a'),
    RAW("a string claiming one byte too many", 'k', 0, 2, 'a'),
    RAW("a list claiming 4G elements", 'l', 0xff, 0xff, 0xff, 0xff, 'j'),
    RAW("a list claiming 2G elements", 'l', 0x7f, 0xff, 0xff, 0xff, 'j', 'j', 'j'),
    RAW("a list without its tail", 'l', 0, 0, 0, 1, 'a', 1),
    RAW("a list one element short", 'l', 0, 0, 0, 2, 'a', 1, 'j'),
    RAW("a large tuple claiming 4G elements", 'i', 0xff, 0xff, 0xff, 0xff, 'j'),
    RAW("a small tuple claiming 255 elements", 'h', 0xff, 'j', 'j'),
    RAW("a small tuple one element short", 'h', 2, 'j'),
    RAW("a map claiming 2G pairs", 't', 0x7f, 0xff, 0xff, 0xff, 'j', 'j'),
    RAW("a map claiming 4G pairs", 't', 0xff, 0xff, 0xff, 0xff, 'j', 'j'),
    RAW("a map with a key and no value", 't', 0, 0, 0, 1, 'j'),
    RAW("an atom claiming 65535 bytes", 'd', 0xff, 0xff, 'a'),
    RAW("a UTF-8 atom claiming 65535 bytes", 'v', 0xff, 0xff, 'a'),
    RAW("a small atom claiming 255 bytes", 's', 0xff, 'a', 'b'),
    RAW("a small big claiming 255 digits", 'n', 0xff, 0, 1, 2),
    RAW("a large big claiming 4G digits", 'o', 0xff, 0xff, 0xff, 0xff, 0, 1, 2),
    RAW("a bitstring claiming 4 GiB", 'M', 0xff, 0xff, 0xff, 0xff, 3, 1),
    RAW("a bitstring of 0 bits in its last byte", 'M', 0, 0, 0, 1, 0, 0xff),
    RAW("a bitstring of 9 bits in its last byte", 'M', 0, 0, 0, 1, 9, 0xff),
    RAW("an empty bitstring", 'M', 0, 0, 0, 0, 3),
    RAW("a ref of 0 words", 'Z', 0, 0, 's', 1, 'a', 0, 0, 0, 1),
    RAW("a ref of 6 words", 'Z', 0, 6, 's', 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
        3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6),
    RAW("a ref claiming 65535 words", 'r', 0xff, 0xff, 's', 1, 'a', 1, 0, 0, 0, 1),
    RAW("a pid cut in its serial", 'X', 's', 1, 'a', 0, 0, 0, 1, 0, 0),
    RAW("a pid whose node is not an atom", 'X', 'a', 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1),
    RAW("a pid whose node atom claims 65535 bytes", 'X', 'd', 0xff, 0xff, 'a'),
    RAW("a port cut in its id", 'x', 's', 1, 'a', 0, 0, 0, 0),
    RAW("an old ref cut in its creation", 'e', 's', 1, 'a', 0, 0, 0, 1),
    RAW("a float cut in its mantissa", 'F', 0x40, 0x09, 0x21),
    RAW("an old float cut in its text", 'c', '1', '.', '5'),
    RAW("an integer cut in its value", 'b', 0, 0, 0),
    RAW("a small integer with no value", 'a'),
    RAW("an EXPORT_EXT fun", 'q', 's', 5, 'l', 'i', 's', 't', 's', 's', 3, 'm', 'a', 'p', 'a',
        2),
    RAW("a NEW_FUN_EXT fun", 'p', 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 's', 1, 'm', 'a', 0, 'a', 0, 'X', 's', 1, 'a', 0, 0, 0, 1, 0, 0,
        0, 0, 0, 0, 0, 1),
    RAW("an old FUN_EXT fun", 'u', 0, 0, 0, 0, 'X', 's', 1, 'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        0, 1, 's', 1, 'm', 'a', 0, 'a', 0),
    RAW("a tuple holding a fun", 'h', 1, 'q', 's', 1, 'm', 's', 1, 'f', 'a', 0),
    RAW("a list holding a fun", 'l', 0, 0, 0, 1, 'q', 's', 1, 'm', 's', 1, 'f', 'a', 0, 'j'),
    RAW("a map holding a fun", 't', 0, 0, 0, 1, 'a', 1, 'q', 's', 1, 'm', 's', 1, 'f', 'a', 0),
    RAW("an atom cache reference", 'R', 0),
    RAW("a version byte", 131, 'j'),
    RAW("a pass-through byte", 'p'),
    RAW("a zero byte", 0),
    RAW("a 0xff byte", 0xff),
    RAW("an empty buffer", 0), /* used with length 0, see below */
};

static void
check_accepts(const char *what, const char *bytes, size_t len)
{
    char msg[300];
    char *buf;
    int end = 0, rv, fault;

    buf = ewp_t_guard(bytes, len);
    CU_ASSERT_FATAL(buf != NULL);
    rv = ewp_td_guarded(OP_CHECK, buf, len, &end, NULL, &fault);
    (void)snprintf(msg, sizeof(msg), "ewp_decode_check accepts %s and moves past it", what);
    CHECK_CASE(!fault && rv == 0 && (size_t)end == len, msg);
}

static void
check_refuses(const char *what, const char *bytes, size_t len, int start)
{
    char msg[300];
    char *buf;
    int i = start, rv, fault;

    buf = ewp_t_guard(bytes, len);
    CU_ASSERT_FATAL(buf != NULL);
    rv = ewp_td_guarded(OP_CHECK, buf, len, &i, NULL, &fault);
    (void)snprintf(msg, sizeof(msg), "ewp_decode_check refuses %s, index unchanged", what);
    CHECK_CASE(!fault && rv == -1 && i == start, msg);
}

static void
test_check_accepts_every_term_type(void)
{
    static const char *const built[] = {
        "0", "255", "256", "-1", "2147483647", "-2147483648", "4294967295",
        "9223372036854775807", "-9223372036854775807", "18446744073709551615", "ok",
        "'$gen_call'", "''", "'with space'", "[]", "\"a string\"", "<<>>",
        "<<\"a binary\">>", "{}", "{a, {b, [c, d | e]}, 1}", "[1, 2, 3 | tail]",
        "[[], [[]], {[]}]", "{~p, ~r}", "~d",
    };
    erlang_pid pid = mkpid(7);
    erlang_ref ref = mkref(9);
    erlang_port port;
    ei_x_buff x;
    size_t n;
    int k;

    for (n = 0; n < N_ELEMS(built); n++) {
        if (strcmp(built[n], "~d") == 0) {
            if (ewp_td_build(&x, built[n], 3.14159) == 0)
                check_accepts("a float", x.buff, (size_t)x.index);
        } else if (ewp_td_build(&x, built[n], &pid, &ref) == 0) {
            check_accepts(built[n], x.buff, (size_t)x.index);
        }
        ei_x_free(&x);
    }

    /* pid, port, ref, bitstring, map, big integer, large tuple and a long
     * proper list as ei encodes them */
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ei_x_encode_pid(&x, &pid) == 0);
    check_accepts("a pid", x.buff, (size_t)x.index);
    x.index = 0;
    memset(&port, 0, sizeof(port));
    strcpy(port.node, "ewpcapd@host");
    port.id = 0x1234567890ULL;
    port.creation = 1702;
    CU_ASSERT(ei_x_encode_port(&x, &port) == 0);
    check_accepts("a port", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_ref(&x, &ref) == 0);
    check_accepts("a ref", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_bitstring(&x, "\xff\xe0", 0, 11) == 0);
    check_accepts("a bitstring", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_map_header(&x, 2) == 0);
    CU_ASSERT(ei_x_encode_atom(&x, "k") == 0);
    CU_ASSERT(ei_x_encode_binary(&x, "v", 1) == 0);
    CU_ASSERT(ei_x_encode_long(&x, 1) == 0);
    CU_ASSERT(ei_x_encode_map_header(&x, 0) == 0);
    check_accepts("a map", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_ulonglong(&x, 18446744073709551615ULL) == 0);
    check_accepts("a big integer", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_tuple_header(&x, 300) == 0);
    for (k = 0; k < 300; k++)
        CU_ASSERT(ei_x_encode_long(&x, k) == 0);
    check_accepts("a large tuple", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_list_header(&x, 10000) == 0);
    for (k = 0; k < 10000; k++)
        CU_ASSERT(ei_x_encode_atom(&x, "a") == 0);
    CU_ASSERT(ei_x_encode_empty_list(&x) == 0);
    check_accepts("a list of 10000 atoms", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_atom_len(&x, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaa",
                                  255) == 0);
    check_accepts("a 255-character atom", x.buff, (size_t)x.index);
    ei_x_free(&x);

    for (n = 0; n < N_ELEMS(ewp_td_valid_raw); n++)
        check_accepts(ewp_td_valid_raw[n].what, (const char *)ewp_td_valid_raw[n].bytes, ewp_td_valid_raw[n].len);
}

static void
test_check_stops_after_one_term_and_honours_the_start_index(void)
{
    ei_x_buff x;
    char *buf;
    int i, rv, fault;

    /* [] {ok, 1} <<"x">>: three terms in a row */
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ei_x_encode_empty_list(&x) == 0);
    CU_ASSERT(ewp_t_build(&x, "{ok, 1}") == 0);
    CU_ASSERT(ewp_t_build(&x, "<<\"x\">>") == 0);
    buf = ewp_t_guard(x.buff, (size_t)x.index);
    CU_ASSERT_FATAL(buf != NULL);

    i = 0;
    rv = ewp_td_guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == 0 && i == 1);
    rv = ewp_td_guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == 0 && i == 1 + 8); /* {ok, 1}: 2 + 4 + 2 */
    rv = ewp_td_guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == 0 && i == x.index);
    /* at the end, past the end, negative */
    rv = ewp_td_guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == -1 && i == x.index);
    i = x.index + 1;
    rv = ewp_td_guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == -1 && i == x.index + 1);
    i = -1;
    rv = ewp_td_guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == -1 && i == -1);
    i = INT_MIN;
    rv = ewp_td_guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == -1 && i == INT_MIN);
    ei_x_free(&x);
}

static void
test_check_refuses_every_prefix_of_valid_requests(void)
{
    erlang_pid pid = mkpid(1), owner = mkpid(2);
    erlang_ref ref = mkref(3);
    unsigned char packet[1000];
    const char *fmts[] = {
        ("{'$gen_call', {~p, ~r}, {open, <<\"eth0\">>, [{snaplen, 96}, {promisc, true}, "
         "{timeout, 100}, {filter, \"tcp port 80\"}, {netmask, {255, 255, 255, 0}}, "
         "{limit, -1}, {time_unit, microsecond}, {buffer, 1048576}], ~p}}"),
        ("{'$gen_call', {~p, [alias | ~r]}, {filter, ~r, <<\"udp\">>, [{optimize, false}, "
         "{netmask, 4294967295}]}}"),
        "{'$gen_call', {~p, ~r}, {write, ~r, ~B}}",
        "{'$gen_call', {~p, ~r}, {stats, ~r}}",
        "{'$gen_call', {~p, ~r}, info}",
        "{close, ~r}",
    };
    char what[200];
    size_t n;
    int len, l;

    for (n = 0; n < sizeof(packet); n++)
        packet[n] = (unsigned char)(n * 7 + 1);
    for (n = 0; n < N_ELEMS(fmts); n++) {
        ei_x_buff x;
        char *copy;
        int ok = 1;

        switch (n) {
        case 0:
            l = ewp_td_build(&x, fmts[n], &pid, &ref, &owner);
            break;
        case 1:
        case 3:
            l = ewp_td_build(&x, fmts[n], &pid, &ref, &ref);
            break;
        case 2:
            l = ewp_td_build(&x, fmts[n], &pid, &ref, &ref, packet, (int)sizeof(packet));
            break;
        case 4:
            l = ewp_td_build(&x, fmts[n], &pid, &ref);
            break;
        default:
            l = ewp_td_build(&x, fmts[n], &ref);
            break;
        }
        if (l < 0) {
            ei_x_free(&x);
            continue;
        }
        len = x.index;
        copy = malloc((size_t)len);
        CU_ASSERT_FATAL(copy != NULL);
        memcpy(copy, x.buff, (size_t)len);
        ei_x_free(&x);

        check_accepts(fmts[n], copy, (size_t)len);
        for (l = 0; l < len; l++) {
            char *buf = ewp_t_guard(copy, (size_t)l);
            int i = 0, rv, fault;

            rv = ewp_td_guarded(OP_CHECK, buf, (size_t)l, &i, NULL, &fault);
            if (fault || rv != -1 || i != 0) {
                ok = 0;
                (void)snprintf(what, sizeof(what), "request %zu cut to %d of %d bytes is refused",
                               n, l, len);
                CHECK_CASE(0, what);
                break;
            }
        }
        (void)snprintf(what, sizeof(what), "every proper prefix of request %zu (%d bytes) is refused",
                       n, len);
        CHECK_CASE(ok, what);
        free(copy);
    }
}

static void
test_check_refuses_length_fields_larger_than_the_buffer(void)
{
    size_t n;
    ei_x_buff x;
    erlang_ref ref = mkref(1);
    char *big;

    for (n = 0; n < N_ELEMS(bad_raw); n++) {
        size_t len = bad_raw[n].len;

        if (strcmp(bad_raw[n].what, "an empty buffer") == 0)
            len = 0;
        check_refuses(bad_raw[n].what, (const char *)bad_raw[n].bytes, len, 0);
    }

    /* an atom of 1021 bytes: more than 255 UTF-8 characters can take */
    big = malloc(3 + 1021);
    CU_ASSERT_FATAL(big != NULL);
    big[0] = 'v';
    big[1] = (char)(1021 >> 8);
    big[2] = (char)(1021 & 0xff);
    memset(big + 3, 'a', 1021);
    check_refuses("an atom of 1021 bytes", big, 3 + 1021, 0);
    big[2] = (char)(1020 & 0xff);
    check_accepts("an atom of 1020 bytes", big, 3 + 1020);
    free(big);

    /* a huge binary inside a request */
    if (ewp_td_build(&x, "{write, ~r, <<\"abc\">>}", &ref) == 0) {
        char *p = memchr(x.buff, 'm', (size_t)x.index);

        CU_ASSERT_FATAL(p != NULL);
        while (p != NULL && (p[1] != 0 || p[4] != 3))
            p = memchr(p + 1, 'm', (size_t)(x.index - (p + 1 - x.buff)));
        CU_ASSERT_FATAL(p != NULL);
        p[1] = (char)0xff;
        check_refuses("{write, Ref, <<Len = 0xff000003>>}", x.buff, (size_t)x.index, 0);
        p[1] = 0;
        p[4] = 4;
        check_refuses("{write, Ref, <<Len = 4, 3 bytes>>}", x.buff, (size_t)x.index, 0);
    }
    ei_x_free(&x);
}

/* depth nested 1-tuples around 'ok', or lists, or improper list tails */
static char *
nested(const char *kind, int depth, size_t *len)
{
    size_t cap = (size_t)depth * 8 + 16, n = 0;
    char *b = malloc(cap);
    int d;

    if (b == NULL)
        return NULL;
    for (d = 0; d < depth; d++) {
        if (strcmp(kind, "tuple") == 0) {
            b[n++] = 'h';
            b[n++] = 1;
        } else if (strcmp(kind, "map") == 0) {
            memcpy(b + n, "t\0\0\0\1j", 6);
            n += 6;
        } else if (strcmp(kind, "list") == 0) {
            memcpy(b + n, "l\0\0\0\1", 5);
            n += 5;
        } else { /* tail: [1 | [1 | ...]] */
            memcpy(b + n, "l\0\0\0\1a\1", 7);
            n += 7;
        }
    }
    if (strcmp(kind, "tail") == 0) {
        b[n++] = 'j';
    } else {
        memcpy(b + n, "s\2ok", 4);
        n += 4;
    }
    if (strcmp(kind, "list") == 0)
        for (d = 0; d < depth; d++)
            b[n++] = 'j';
    *len = n;
    return b;
}

static void
test_check_refuses_nesting_deeper_than_the_limit(void)
{
    static const char *const kinds[] = {"tuple", "list", "map", "tail"};
    char what[100];
    size_t k, len;
    char *b;

    for (k = 0; k < N_ELEMS(kinds); k++) {
        b = nested(kinds[k], EWP_TERM_DEPTH_MAX, &len);
        CU_ASSERT_FATAL(b != NULL);
        (void)snprintf(what, sizeof(what), "%s nested %d deep", kinds[k], EWP_TERM_DEPTH_MAX);
        check_accepts(what, b, len);
        free(b);

        b = nested(kinds[k], EWP_TERM_DEPTH_MAX + 1, &len);
        CU_ASSERT_FATAL(b != NULL);
        (void)snprintf(what, sizeof(what), "%s nested %d deep", kinds[k], EWP_TERM_DEPTH_MAX + 1);
        check_refuses(what, b, len, 0);
        free(b);

        b = nested(kinds[k], 10000, &len);
        CU_ASSERT_FATAL(b != NULL);
        (void)snprintf(what, sizeof(what), "%s nested 10000 deep", kinds[k]);
        check_refuses(what, b, len, 0);
        free(b);
    }

    /* a million levels: refused without exhausting the stack */
    {
        int i = 0;
        size_t n;

        b = malloc(2000000 + 4);
        CU_ASSERT_FATAL(b != NULL);
        for (n = 0; n < 2000000; n += 2) {
            b[n] = 'h';
            b[n + 1] = 1;
        }
        memcpy(b + n, "s\2ok", 4);
        CU_ASSERT(ewp_decode_check(b, n + 4, &i) == -1);
        CU_ASSERT(i == 0);
        free(b);
    }
}

static void
test_check_refuses_funs(void)
{
    erlang_pid pid = mkpid(1);
    erlang_fun fun;
    ei_x_buff x;
    size_t n;

    for (n = 0; n < N_ELEMS(bad_raw); n++)
        if (strstr(bad_raw[n].what, "fun") != NULL)
            check_refuses(bad_raw[n].what, (const char *)bad_raw[n].bytes, bad_raw[n].len, 0);

    /* as ei encodes them */
    memset(&fun, 0, sizeof(fun));
    fun.arity = 2;
    strcpy(fun.module, "lists");
    fun.type = EI_FUN_EXPORT;
    fun.u.exprt.func = (char *)"map";
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ei_x_encode_fun(&x, &fun) == 0);
    check_refuses("fun lists:map/2 from ei_x_encode_fun", x.buff, (size_t)x.index, 0);

    /* a fun as the tag of a call, and as an option value */
    x.index = 0;
    {
        ei_x_buff f;

        CU_ASSERT_FATAL(ei_x_new(&f) == 0);
        CU_ASSERT(ei_x_encode_fun(&f, &fun) == 0);
        CU_ASSERT(ewp_t_build(&x, "{'$gen_call', {~p, ~t}, info}", &pid, f.buff, f.index) == 0);
        check_refuses("a call whose tag is a fun", x.buff, (size_t)x.index, 0);
        x.index = 0;
        CU_ASSERT(ewp_t_build(&x, "{open, <<>>, [{filter, ~t}]}", f.buff, f.index) == 0);
        check_refuses("an open whose filter is a fun", x.buff, (size_t)x.index, 0);
        ei_x_free(&f);
    }
    ei_x_free(&x);
}

CU_TestInfo ewp_decode_check_tests[] = {
    {"ewp_decode_check accepts every term type", test_check_accepts_every_term_type},
    {"ewp_decode_check stops after one term and honours the start index",
     test_check_stops_after_one_term_and_honours_the_start_index},
    {"ewp_decode_check refuses every proper prefix of valid requests",
     test_check_refuses_every_prefix_of_valid_requests},
    {"ewp_decode_check refuses length fields larger than the buffer",
     test_check_refuses_length_fields_larger_than_the_buffer},
    {"ewp_decode_check refuses nesting deeper than EWP_TERM_DEPTH_MAX",
     test_check_refuses_nesting_deeper_than_the_limit},
    {"ewp_decode_check refuses funs", test_check_refuses_funs},
    CU_TEST_INFO_NULL,
};
