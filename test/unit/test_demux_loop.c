/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of the programs that jump backward in cnode/demux.c (those
 * of `protochain', which loops over a packet's extension headers). libpcap
 * 1.10's own code for `ip6 protochain 6' never ends on a packet whose AH
 * header names AH again with a length that leads back to itself (its AH
 * step sets X from the length alone): pcap_offline_filter spins for ever,
 * and so would ewpcapd's loop, for every client, on one packet from the
 * wire. The demux must answer such a packet (refuse it) and still give
 * libpcap's answer on every packet where libpcap's run ends. A hang is
 * caught in a child process with an alarm, so the runner goes on.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <pcap/pcap.h>

#include "demux.h"

#define LOOP_ALARM 10 /* seconds a child may take */

static int member;    /* its address is the member */

/* An Ethernet frame of IPv6 whose payload starts with next header nh
 * (bytes after the 40-byte header left to the caller); its length */
static uint32_t
ipv6_frame(unsigned char *b, size_t room, uint8_t nh)
{
    memset(b, 0, room);
    b[12] = 0x86;
    b[13] = 0xdd;
    b[14] = 0x60;
    b[20] = nh;
    return 14 + 40;
}

static void
compile_on(struct bpf_program *prog, const char *text)
{
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);

    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(pcap_compile(p, prog, text, 1, PCAP_NETMASK_UNKNOWN) == 0);
    pcap_close(p);
}

/* In a child: the looping packet through a demux whose one member has
 * `ip6 protochain 6'; exits 0 when the answer came and refuses it */
static void
child_match_loop_packet(void)
{
    struct ewp_demux *d = ewp_demux_new();
    struct bpf_program prog;
    struct pcap_pkthdr h;
    unsigned char *b = malloc(128);
    void *out[1];
    uint32_t n;

    (void)alarm(LOOP_ALARM);
    compile_on(&prog, "ip6 protochain 6");
    if (d == NULL || b == NULL || ewp_demux_set(d, &member, &prog) != 0)
        _exit(2);
    n = ipv6_frame(b, 128, 51); /* AH */
    b[n] = 51;                  /* AH: next header AH again, */
    b[n + 1] = 8;               /* length 8: (8 + 2) * 4 = 40, the same X */
    memset(&h, 0, sizeof(h));
    h.caplen = h.len = 128;
    n = (uint32_t)ewp_demux_match(d, &h, b, out);
    ewp_demux_free(d); /* nothing left for valgrind's count */
    pcap_freecode(&prog);
    free(b);
    _exit(n == 0 ? 0 : 3);
}

static void
test_protochain_loop_answered(void)
{
    pid_t pid = fork();
    int status = 0;

    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        child_match_loop_packet();
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    /* SIGALRM: the match never returned */
    CU_ASSERT(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A chain of n extension headers (hop-by-hop, routing, fragment,
 * destination: none of them AH, so libpcap's run ends) of random lengths,
 * then a last next header; the frame's length */
static uint32_t
chain(unsigned char *b, size_t room, unsigned n, uint8_t last, unsigned *seed)
{
    static const uint8_t ext[] = { 0, 43, 44, 60 };
    uint32_t at = ipv6_frame(b, room, ext[rand_r(seed) % 4]), i;

    for (i = 0; i < n && at + 8 * 4 <= room; i++) {
        uint8_t len = (uint8_t)(rand_r(seed) % 3);

        b[at] = i + 1 < n ? ext[rand_r(seed) % 4] : last;
        b[at + 1] = len;
        at += 8u * (len + 1u);
    }
    return at + 20 < room ? at + 20 : (uint32_t)room;
}

/* Where libpcap's run ends, the demux gives its answer */
static void
test_protochain_same_answer_where_libpcap_ends(void)
{
    static const char *filters[] = { "ip6 protochain 6", "ip6 protochain 17",
                                     "ip6 protochain 17 or udp port 53" };
    struct bpf_program prog[3];
    struct ewp_demux *d = ewp_demux_new();
    unsigned char b[1600];
    void *out[3];
    unsigned seed = 7, round, bad = 0;
    size_t f;

    CU_ASSERT_FATAL(d != NULL);
    for (f = 0; f < 3; f++) {
        compile_on(&prog[f], filters[f]);
        CU_ASSERT_FATAL(ewp_demux_set(d, &prog[f], &prog[f]) == 0);
    }
    for (round = 0; round < 3000; round++) {
        uint32_t len = chain(b, sizeof(b), round % 60, round % 3 ? 6 : 17, &seed);
        uint32_t caplen = round % 4 == 0 ? (uint32_t)rand_r(&seed) % (len + 1) : len;
        unsigned char *copy = malloc(caplen > 0 ? caplen : 1);
        struct pcap_pkthdr h;
        size_t n, want = 0, i, found;

        CU_ASSERT_FATAL(copy != NULL);
        memcpy(copy, b, caplen);
        memset(&h, 0, sizeof(h));
        h.caplen = caplen;
        h.len = len;
        n = ewp_demux_match(d, &h, copy, out);
        for (f = 0; f < 3; f++) {
            if (pcap_offline_filter(&prog[f], &h, copy) == 0)
                continue;
            want++;
            for (i = 0, found = 0; i < n; i++)
                found += out[i] == &prog[f];
            bad += found != 1;
        }
        bad += n != want;
        free(copy);
    }
    CU_ASSERT(bad == 0);
    ewp_demux_free(d);
    for (f = 0; f < 3; f++)
        pcap_freecode(&prog[f]);
}

CU_TestInfo ewp_demux_loop_tests[] = {
    {"protochain on a packet where libpcap loops: answered, refused",
     test_protochain_loop_answered},
    {"protochain: libpcap's answer wherever its run ends",
     test_protochain_same_answer_where_libpcap_ends},
    CU_TEST_INFO_NULL,
};
