/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/decode.c's ewp_decode_call: the From and the Tag of
 * a {'$gen_call', {From, Tag}, Request}, the Tag kept as one whole term
 * whatever it is (a ref, [alias | Ref], any term a peer may send), other
 * shapes refused with nothing touched.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "decode.h"
#include "test_decode.h"

static void
test_call_with_a_ref_tag_gives_from_tag_and_request(void)
{
    erlang_pid pid = mkpid(42), from;
    erlang_ref ref = mkref(5);
    struct ewp_request req;
    ei_x_buff x, tag;
    char *buf;
    int i = 0, tag_index = -1, tag_len = -1;

    CU_ASSERT_FATAL(ei_x_new(&tag) == 0);
    CU_ASSERT(ei_x_encode_ref(&tag, &ref) == 0);
    if (ewp_td_build(&x, "{'$gen_call', {~p, ~r}, info}", &pid, &ref) == 0) {
        buf = ewp_t_guard(x.buff, (size_t)x.index);
        CU_ASSERT_FATAL(buf != NULL);
        CU_ASSERT(ewp_decode_call(buf, &i, &from, &tag_index, &tag_len) == 0);
        CU_ASSERT(ei_cmp_pids(&from, &pid) == 0);
        CU_ASSERT(tag_len == tag.index);
        CU_ASSERT(tag_index > 0 && tag_index + tag_len == i);
        CU_ASSERT(tag_len == tag.index && memcmp(buf + tag_index, tag.buff, (size_t)tag.index) == 0);
        CU_ASSERT(ewp_decode_request(buf, &i, &req) == EWP_DECODE_OK);
        CU_ASSERT(req.type == EWP_REQ_INFO);
        CU_ASSERT(i == x.index);
    }
    ei_x_free(&x);
    ei_x_free(&tag);
}

static void
test_call_with_an_alias_tag_keeps_the_whole_improper_list(void)
{
    erlang_pid pid = mkpid(42), from;
    erlang_ref ref = mkref(5), got;
    struct ewp_request req;
    ei_x_buff x, tag;
    char *buf;
    char atom[MAXATOMLEN];
    int i = 0, t, tag_index = -1, tag_len = -1, arity;

    CU_ASSERT_FATAL(ei_x_new(&tag) == 0);
    CU_ASSERT(ewp_t_build(&tag, "[alias | ~r]", &ref) == 0);
    if (ewp_td_build(&x, "{'$gen_call', {~p, [alias | ~r]}, {stats, ~r}}", &pid, &ref, &ref) == 0) {
        buf = ewp_t_guard(x.buff, (size_t)x.index);
        CU_ASSERT_FATAL(buf != NULL);
        CU_ASSERT(ewp_decode_call(buf, &i, &from, &tag_index, &tag_len) == 0);
        CU_ASSERT(ei_cmp_pids(&from, &pid) == 0);
        CU_ASSERT(tag_len == tag.index && memcmp(buf + tag_index, tag.buff, (size_t)tag.index) == 0);
        CU_ASSERT(tag_index + tag_len == i);
        /* the tag decodes back to [alias | Ref] */
        t = tag_index;
        CU_ASSERT(ei_decode_list_header(buf, &t, &arity) == 0 && arity == 1);
        CU_ASSERT(ei_decode_atom(buf, &t, atom) == 0 && strcmp(atom, "alias") == 0);
        CU_ASSERT(ei_decode_ref(buf, &t, &got) == 0 && ei_cmp_refs(&got, &ref) == 0);
        CU_ASSERT(t == i);
        CU_ASSERT(ewp_decode_request(buf, &i, &req) == EWP_DECODE_OK);
        CU_ASSERT(req.type == EWP_REQ_STATS && ei_cmp_refs(&req.ref, &ref) == 0);
    }
    ei_x_free(&x);
    ei_x_free(&tag);
}

static void
test_call_accepts_null_outputs_and_any_tag_term(void)
{
    erlang_pid pid = mkpid(1);
    static const char *const tags[] = {"1", "foo", "\"tag\"", "<<\"tag\">>", "{a, [b, {c}]}",
                                       "[]"};
    char fmt[128];
    size_t n;

    for (n = 0; n < N_ELEMS(tags); n++) {
        ei_x_buff x;

        (void)snprintf(fmt, sizeof(fmt), "{'$gen_call', {~p, %s}, dev}", tags[n]);
        if (ewp_td_build(&x, fmt, &pid) == 0) {
            char *buf = ewp_t_guard(x.buff, (size_t)x.index);
            int i = 0;

            CU_ASSERT_FATAL(buf != NULL);
            CHECK_CASE(ewp_decode_call(buf, &i, NULL, NULL, NULL) == 0 && i == x.index - 5, fmt);
        }
        ei_x_free(&x);
    }
}

static void
test_call_refuses_other_shapes_and_touches_nothing(void)
{
    erlang_pid pid = mkpid(1);
    erlang_ref ref = mkref(2);
    static const char *const bad[] = {
        "{'$gen_cast', {~p, ~r}, info}",
        "{gen_call, {~p, ~r}, info}",
        "{\"$gen_call\", {~p, ~r}, info}",
        "{'$gen_call', {~p, ~r}}",
        "{'$gen_call', {~p, ~r}, info, extra}",
        "{'$gen_call'}",
        "{'$gen_call', {~p}, info}",
        "{'$gen_call', {~p, ~r, x}, info}",
        "{'$gen_call', [~p, ~r], info}",
        "{'$gen_call', {self, ~r}, info}",
        "{'$gen_call', {~r, ~r}, info}",
        "{'$gen_call', {<<\"pid\">>, ~r}, info}",
        "{'$gen_call', ~p, info}",
        "['$gen_call', {~p, ~r}, info]",
        "'$gen_call'",
        "{}",
        "42",
    };
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++) {
        ei_x_buff x;
        int rv;

        /* ~r first where the pid is replaced by a ref */
        if (strstr(bad[n], "{~r, ~r}") != NULL)
            rv = ewp_td_build(&x, bad[n], &ref, &ref);
        else if (strstr(bad[n], "~p") != NULL)
            rv = ewp_td_build(&x, bad[n], &pid, &ref);
        else
            rv = ewp_td_build(&x, bad[n], &ref);
        if (rv == 0) {
            char *buf = ewp_t_guard(x.buff, (size_t)x.index);
            erlang_pid from = mkpid(99), orig = mkpid(99);
            int i = 0, tag_index = -5, tag_len = -6;

            CU_ASSERT_FATAL(buf != NULL);
            CHECK_CASE(ewp_decode_call(buf, &i, &from, &tag_index, &tag_len) == -1, bad[n]);
            CHECK_CASE(i == 0 && tag_index == -5 && tag_len == -6 &&
                           ei_cmp_pids(&from, &orig) == 0,
                       bad[n]);
        }
        ei_x_free(&x);
    }
}

/*
 * Regression (5125bee): ei_skip_term decodes an old FLOAT_EXT with
 * sscanf("%lf") on its 31 text bytes, which reads on until a NUL; a tag of
 * 31 digits made ewp_decode_call read past the checked frame. Passes if the
 * check refuses such a float or nothing is read past the end.
 */
static void
test_call_reads_nothing_past_a_checked_float_tag(void)
{
    erlang_pid pid = mkpid(1);
    unsigned char fl[32];
    ei_x_buff x;
    int fault = 0;

    fl[0] = ERL_FLOAT_EXT;
    memset(fl + 1, '1', 31);
    if (ewp_td_build(&x, "{'$gen_call', {~p, ~t}, info}", &pid, fl, (int)sizeof(fl)) == 0) {
        char *buf = ewp_t_guard(x.buff, (size_t)x.index);
        struct call_out co;
        int end = 0, i = 0;

        CU_ASSERT_FATAL(buf != NULL);
        if (ewp_decode_check(buf, (size_t)x.index, &end) == 0) {
            (void)ewp_td_guarded(OP_CALL, buf, (size_t)x.index, &i, &co, &fault);
            CU_ASSERT(fault == 0);
        }
    }
    ei_x_free(&x);
}

/* 'X' pid, 'Y' port or 'Z' ref whose node is an ATOM_EXT of 600 bytes 0xff:
 * valid for ewp_decode_check (at most 255 * 4 bytes), but ei cannot turn
 * the node into UTF-8 in MAXATOMLEN_UTF8 bytes and fails on it. */
static size_t
long_latin1_node(unsigned char *b, char kind)
{
    size_t n = 0;

    b[n++] = (unsigned char)kind;
    if (kind == 'Z') {
        b[n++] = 0;
        b[n++] = 1;
    }
    b[n++] = ERL_ATOM_EXT;
    b[n++] = 600 >> 8;
    b[n++] = 600 & 0xff;
    memset(b + n, 0xff, 600);
    n += 600;
    memset(b + n, 0, 12);
    n += kind == 'X' ? 12 : 8;
    return n;
}

/*
 * ewp_decode_call measures the tag with ei_skip_term, which ignores the
 * failure of a tuple or list element and returns 0 after the header only.
 * Any term that ewp_decode_check accepts but ei cannot skip thus gives a
 * short tag_len and leaves *index inside the tag: the reply would echo a
 * truncated tag (a malformed message) and the request decoded from the
 * wrong place. Each case passes if the check or the call refuses the frame,
 * or if the tag is whole.
 */
static void
test_call_tag_is_always_one_whole_term(void)
{
    erlang_pid pid = mkpid(1);
    unsigned char tag[1200], elem[700];
    char what[200];
    size_t n, k, elen;
    const char kinds[] = {'X', 'Y', 'Z'};

    for (n = 0; n < N_ELEMS(ewp_td_valid_raw) + 2 * N_ELEMS(kinds) + 2; n++) {
        const char *name;
        size_t tlen = 0;
        ei_x_buff x;

        if (n < N_ELEMS(ewp_td_valid_raw)) {
            name = ewp_td_valid_raw[n].what;
            memcpy(elem, ewp_td_valid_raw[n].bytes, ewp_td_valid_raw[n].len);
            elen = ewp_td_valid_raw[n].len;
        } else if (n < N_ELEMS(ewp_td_valid_raw) + 2 * N_ELEMS(kinds)) {
            k = (n - N_ELEMS(ewp_td_valid_raw)) / 2;
            name = kinds[k] == 'X' ? "a pid with a 600-byte latin-1 node"
                   : kinds[k] == 'Y' ? "a port with a 600-byte latin-1 node"
                                     : "a ref with a 600-byte latin-1 node";
            elen = long_latin1_node(elem, kinds[k]);
        } else {
            /* FLOAT_EXT whose text is no number (ewp_decode_check refuses it now) */
            name = "an old FLOAT_EXT of text \"garbage\"";
            elem[0] = 'c';
            memset(elem + 1, 0, 31);
            memcpy(elem + 1, "garbage", 7);
            elen = 32;
        }
        /* {T} for even n, [T] for odd n */
        if (n % 2 == 0) {
            tag[tlen++] = ERL_SMALL_TUPLE_EXT;
            tag[tlen++] = 1;
        } else {
            memcpy(tag, "l\0\0\0\1", 5);
            tlen = 5;
        }
        memcpy(tag + tlen, elem, elen);
        tlen += elen;
        if (n % 2 == 1)
            tag[tlen++] = ERL_NIL_EXT;

        (void)snprintf(what, sizeof(what), "the tag %s%s%s of a call is one whole term",
                       n % 2 ? "[" : "{", name, n % 2 ? "]" : "}");
        if (ewp_td_build(&x, "{'$gen_call', {~p, ~t}, info}", &pid, tag, (int)tlen) == 0) {
            char *buf = ewp_t_guard(x.buff, (size_t)x.index);
            int end = 0, i = 0, tag_index = -1, tag_len = -1;

            CU_ASSERT_FATAL(buf != NULL);
            if (ewp_decode_check(buf, (size_t)x.index, &end) == 0 &&
                ewp_decode_call(buf, &i, NULL, &tag_index, &tag_len) == 0)
                CHECK_CASE(tag_len == (int)tlen && i == x.index - 6, what); /* at 'info' */
        }
        ei_x_free(&x);
    }
}

CU_TestInfo ewp_decode_call_tests[] = {
    {"ewp_decode_call with a ref tag gives From, Tag and the request",
     test_call_with_a_ref_tag_gives_from_tag_and_request},
    {"ewp_decode_call with an [alias | Ref] tag keeps the whole list",
     test_call_with_an_alias_tag_keeps_the_whole_improper_list},
    {"ewp_decode_call accepts NULL outputs and any tag term",
     test_call_accepts_null_outputs_and_any_tag_term},
    {"ewp_decode_call refuses other shapes and touches nothing",
     test_call_refuses_other_shapes_and_touches_nothing},
    {"ewp_decode_call reads nothing past a checked FLOAT_EXT tag",
     test_call_reads_nothing_past_a_checked_float_tag},
    {"ewp_decode_call's tag is always one whole term", test_call_tag_is_always_one_whole_term},
    CU_TEST_INFO_NULL,
};
