/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What the encode suites share (test_encode_packet.c, test_encode_reply.c):
 * the pid and ref fixtures, and the check of the SEND header that starts
 * every message (test_encode_util.c). The helpers keep the short names the
 * tests call them by.
 */
#ifndef EWP_TEST_ENCODE_H
#define EWP_TEST_ENCODE_H

#include <string.h>

#include <ei.h>

static inline erlang_pid
mkpid(const char *node, unsigned num)
{
    erlang_pid p;

    memset(&p, 0, sizeof(p));
    strcpy(p.node, node);
    p.num = num;
    p.serial = 1;
    p.creation = 1703;
    return p;
}

static inline erlang_ref
mkref(unsigned n0)
{
    erlang_ref r;

    memset(&r, 0, sizeof(r));
    strcpy(r.node, "ewpcapd@host");
    r.len = 3;
    r.n[0] = n0;
    r.n[1] = 0xdeadbeef;
    r.n[2] = 7;
    r.creation = 1704;
    return r;
}

/* buf[*i..] is 'p', 131, {SEND, '', To}, 131: moves *i past it */
void ewp_te_expect_send_header(const char *buf, int *i, const erlang_pid *to);

#endif
