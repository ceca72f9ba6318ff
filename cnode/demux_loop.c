/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The programs that jump backward (protochain), each run alone with a
 * bound of steps (see ewp_dm_run_bounded): a shared capture's member's
 * (the others run in demux_run.c or on pcap_offline_filter), and an
 * exclusive capture's, which the kernel refuses (source.c).
 */
#include <stdint.h>
#include <string.h>

#include <pcap/pcap.h>

#include "demux.h"
#include "demux_int.h"

int
ewp_demux_loops(const struct bpf_program *prog)
{
    return prog != NULL && ewp_dm_loops(prog->bf_insns, prog->bf_len);
}

int
ewp_demux_run_one(const struct bpf_program *prog, const struct pcap_pkthdr *h,
                  const unsigned char *pkt)
{
    return ewp_dm_run_bounded(prog, h, pkt);
}

int
ewp_dm_loops(const struct bpf_insn *f, u_int len)
{
    u_int i;

    for (i = 0; i < len; i++)
        if (f[i].code == (BPF_JMP | BPF_JA) && (int32_t)f[i].k < 0)
            return 1;
    return 0;
}

/*
 * A program that jumps backward, alone. pcap_compile makes such loops
 * only for protochain, over a packet's extension headers, and libpcap's
 * interpreter runs them for as long as they go: with 1.10's code for
 * `ip6 protochain', an AH header that names AH again with a length that
 * leads back to itself (its AH step sets X from that length, not past
 * it) loops for ever, and one such packet from the wire would stop the
 * loop thread, every client's. Here a run has a bound: bf_len steps per
 * pass of the loop, at most two passes per byte of the packet (a pass
 * starts at an offset X below caplen, by a next header read there or a
 * stored one: a run that ends never comes to the same start twice), and
 * refuses the packet past it. Within the bound every answer is libpcap's:
 * each instruction runs as in a group's run (ewp_dm_step), a shift by a
 * constant of 32 or more as libpcap's C shift does it on this machine (by
 * k & 31), scratch memory zeroed (protochain stores before it loads).
 * Jumps stay inside the program (bpf_validate: a backward ja wraps to an
 * index below bf_len, the last instruction is a ret).
 */
int
ewp_dm_run_bounded(const struct bpf_program *prog, const struct pcap_pkthdr *h,
                   const unsigned char *p)
{
    const struct bpf_insn *f = prog->bf_insns;
    const uint32_t buflen = h->caplen;
    uint64_t steps = (uint64_t)prog->bf_len * (2 * (uint64_t)buflen + 4);
    uint32_t a = 0, x = 0, mem[BPF_MEMWORDS];
    u_int pc = 0;

    memset(mem, 0, sizeof(mem));
    while (steps-- > 0) {
        const struct bpf_insn *in = &f[pc++];

        switch (in->code) {
        case BPF_RET | BPF_K:
            return in->k != 0;
        case BPF_RET | BPF_A:
            return a != 0;
        default:
            if (!ewp_dm_step(in, &pc, &a, &x, mem, p, buflen, h->len))
                return 0;
            continue;
        }
    }
    return 0;
}
