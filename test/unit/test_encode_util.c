/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What the encode suites share (test_encode.h): the check of a message's
 * SEND header.
 */
#include <CUnit/CUnit.h>
#include <ei.h>

#include "encode.h"
#include "test_encode.h"

/* buf[*i..] is 'p', 131, {SEND, '', To}, 131: moves *i past it */
void
ewp_te_expect_send_header(const char *buf, int *i, const erlang_pid *to)
{
    erlang_pid got;
    char atom[MAXATOMLEN];
    long op;
    int version, arity;

    CU_ASSERT(buf[*i] == (char)EWP_PASS_THROUGH);
    (*i)++;
    CU_ASSERT(ei_decode_version(buf, i, &version) == 0 && version == EWP_VERSION_MAGIC);
    CU_ASSERT(ei_decode_tuple_header(buf, i, &arity) == 0 && arity == 3);
    CU_ASSERT(ei_decode_long(buf, i, &op) == 0 && op == EWP_DOP_SEND);
    CU_ASSERT(ei_decode_atom(buf, i, atom) == 0 && atom[0] == '\0');
    CU_ASSERT(ei_decode_pid(buf, i, &got) == 0 && ei_cmp_pids(&got, (erlang_pid *)to) == 0);
    CU_ASSERT(ei_decode_version(buf, i, &version) == 0 && version == EWP_VERSION_MAGIC);
}
