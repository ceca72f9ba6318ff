/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of what a shared capture refuses (cnode/capture.c): a
 * program that loads the kernel's packet metadata (a Linux ancillary
 * load, BPF_LD of BPF_ABS or BPF_IND at k >= SKF_AD_OFF: inbound,
 * outbound, ifindex) would run in the daemon on libpcap's bytes, where
 * it matches nothing; it is refused with the fix in the reason, the
 * member keeping its program. An exclusive capture ({share, false})
 * gives the same filters to the kernel. As root, on "lo".
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "capture.h"

#define SKF_AD_OFF_K 0xfffff000u

/* A program of one load (code, k) and "accept" */
static int
setprog_load(struct ewp_capture *c, unsigned short code, unsigned k, char *err, size_t errlen)
{
    struct bpf_insn insns[2] = {BPF_STMT(code, k), BPF_STMT(BPF_RET | BPF_K, 65535)};
    struct bpf_program prog = {2, insns};

    err[0] = '\0';
    return ewp_capture_setprog(c, &prog, err, errlen);
}

static int
filter(struct ewp_capture *c, const char *text, char *err, size_t errlen)
{
    err[0] = '\0';
    return ewp_capture_filter(c, text, strlen(text), 1, PCAP_NETMASK_UNKNOWN, err, errlen);
}

static void
test_shared_refuses_metadata_exclusive_takes_it(void)
{
    static const char *const meta[] = {"inbound", "outbound", "ifindex 1",
                                       "udp and (inbound or port 9)"};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct ewp_capture_opts o;
    struct ewp_capture c, x;
    char err[PCAP_ERRBUF_SIZE];
    size_t n;

    /* run.c marks this test inactive (skipped, and said so) when not root */
    CU_ASSERT_FATAL(geteuid() == 0);
    CU_ASSERT_FATAL(loop != NULL);
    memset(&o, 0, sizeof(o));
    o.snaplen = 65535;
    o.immediate = 1;
    CU_ASSERT_FATAL(ewp_capture_open(loop, &c, "lo", &o, err, sizeof(err)) == 0);
    CU_ASSERT(!ewp_source_exclusive(&c.member));

    for (n = 0; n < sizeof(meta) / sizeof(meta[0]); n++) {
        CU_ASSERT(filter(&c, meta[n], err, sizeof(err)) == -1);
        CU_ASSERT(strstr(err, "open with {share, false}") != NULL);
    }
    CU_ASSERT(filter(&c, "udp", err, sizeof(err)) == 0);
    /* the loads themselves, at the edge */
    CU_ASSERT(setprog_load(&c, BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF_K, err, sizeof(err)) == -1);
    CU_ASSERT(strstr(err, "{share, false}") != NULL);
    CU_ASSERT(setprog_load(&c, BPF_LD | BPF_B | BPF_IND, SKF_AD_OFF_K + 4, err, sizeof(err)) ==
              -1);
    CU_ASSERT(setprog_load(&c, BPF_LD | BPF_H | BPF_ABS, 0xffffffffu, err, sizeof(err)) == -1);
    /* a load past any packet, not metadata; an immediate of that value */
    CU_ASSERT(setprog_load(&c, BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF_K - 1, err, sizeof(err)) ==
              0);
    CU_ASSERT(setprog_load(&c, BPF_LD | BPF_IMM, SKF_AD_OFF_K, err, sizeof(err)) == 0);
    CU_ASSERT(setprog_load(&c, BPF_LDX | BPF_IMM, SKF_AD_OFF_K, err, sizeof(err)) == 0);

    /* a capture of its own: the kernel's filter */
    o.exclusive = 1;
    CU_ASSERT_FATAL(ewp_capture_open(loop, &x, "lo", &o, err, sizeof(err)) == 0);
    CU_ASSERT(ewp_source_exclusive(&x.member));
    CU_ASSERT(x.p != c.p);
    for (n = 0; n < sizeof(meta) / sizeof(meta[0]); n++)
        CU_ASSERT(filter(&x, meta[n], err, sizeof(err)) == 0);

    ewp_capture_close(&x);
    ewp_capture_close(&c);
    ev_loop_destroy(loop);
}

CU_TestInfo ewp_share_tests[] = {
    {"a shared capture refuses kernel metadata, an exclusive one takes it (root)",
     test_shared_refuses_metadata_exclusive_takes_it},
    CU_TEST_INFO_NULL,
};
