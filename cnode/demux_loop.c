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

static u_int size(uint16_t code);
static int alu(const struct bpf_insn *in, uint32_t v, int by_x, uint32_t *a);

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
 * the same instructions as walk, a shift by a constant of 32 or more as
 * libpcap's C shift does it on this machine (by k & 31), scratch memory
 * zeroed (protochain stores before it loads). Jumps stay inside the
 * program (bpf_validate: a backward ja wraps to an index below bf_len,
 * the last instruction is a ret).
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
        case BPF_LD | BPF_W | BPF_ABS:
        case BPF_LD | BPF_H | BPF_ABS:
        case BPF_LD | BPF_B | BPF_ABS:
            if (!ewp_dm_load(p, buflen, in->k, size(in->code), &a))
                return 0;
            continue;
        case BPF_LD | BPF_W | BPF_IND:
        case BPF_LD | BPF_H | BPF_IND:
        case BPF_LD | BPF_B | BPF_IND:
            if (!ewp_dm_load(p, buflen, (uint64_t)x + in->k, size(in->code), &a))
                return 0;
            continue;
        case BPF_LDX | BPF_MSH | BPF_B:
            if (!ewp_dm_load(p, buflen, in->k, 1, &x))
                return 0;
            x = (x & 0xf) << 2;
            continue;
        case BPF_LD | BPF_W | BPF_LEN:
            a = h->len;
            continue;
        case BPF_LDX | BPF_W | BPF_LEN:
            x = h->len;
            continue;
        case BPF_LD | BPF_IMM:
            a = in->k;
            continue;
        case BPF_LDX | BPF_IMM:
            x = in->k;
            continue;
        case BPF_LD | BPF_MEM:
            a = mem[in->k % BPF_MEMWORDS];
            continue;
        case BPF_LDX | BPF_MEM:
            x = mem[in->k % BPF_MEMWORDS];
            continue;
        case BPF_ST:
            mem[in->k % BPF_MEMWORDS] = a;
            continue;
        case BPF_STX:
            mem[in->k % BPF_MEMWORDS] = x;
            continue;
        case BPF_JMP | BPF_JA: /* backward: k wraps, as libpcap's sign extension */
            pc += in->k;
            continue;
        case BPF_JMP | BPF_JGT | BPF_K:
            pc += a > in->k ? in->jt : in->jf;
            continue;
        case BPF_JMP | BPF_JGE | BPF_K:
            pc += a >= in->k ? in->jt : in->jf;
            continue;
        case BPF_JMP | BPF_JEQ | BPF_K:
            pc += a == in->k ? in->jt : in->jf;
            continue;
        case BPF_JMP | BPF_JSET | BPF_K:
            pc += (a & in->k) != 0 ? in->jt : in->jf;
            continue;
        case BPF_JMP | BPF_JGT | BPF_X:
            pc += a > x ? in->jt : in->jf;
            continue;
        case BPF_JMP | BPF_JGE | BPF_X:
            pc += a >= x ? in->jt : in->jf;
            continue;
        case BPF_JMP | BPF_JEQ | BPF_X:
            pc += a == x ? in->jt : in->jf;
            continue;
        case BPF_JMP | BPF_JSET | BPF_X:
            pc += (a & x) != 0 ? in->jt : in->jf;
            continue;
        case BPF_ALU | BPF_NEG:
            a = 0U - a;
            continue;
        case BPF_MISC | BPF_TAX:
            x = a;
            continue;
        case BPF_MISC | BPF_TXA:
            a = x;
            continue;
        default:
            break;
        }
        if (BPF_CLASS(in->code) != BPF_ALU || !alu(in, BPF_SRC(in->code) == BPF_X ? x : in->k,
                                                   BPF_SRC(in->code) == BPF_X, &a))
            return 0; /* a division by 0; or not an instruction ewp_demux_set takes */
    }
    return 0;
}

/* The bytes a load of code reads */
static u_int
size(uint16_t code)
{
    return BPF_SIZE(code) == BPF_W ? 4 : BPF_SIZE(code) == BPF_H ? 2 : 1;
}

/* A op= v for an ALU instruction (v: X or k); 0 on a division by 0 */
static int
alu(const struct bpf_insn *in, uint32_t v, int by_x, uint32_t *a)
{
    switch (BPF_OP(in->code)) {
    case BPF_ADD:
        *a += v;
        return 1;
    case BPF_SUB:
        *a -= v;
        return 1;
    case BPF_MUL:
        *a *= v;
        return 1;
    case BPF_DIV:
        if (v == 0)
            return 0;
        *a /= v;
        return 1;
    case BPF_MOD:
        if (v == 0)
            return 0;
        *a %= v;
        return 1;
    case BPF_AND:
        *a &= v;
        return 1;
    case BPF_OR:
        *a |= v;
        return 1;
    case BPF_XOR:
        *a ^= v;
        return 1;
    case BPF_LSH: /* X of 32 or more: 0, as libpcap; k: its C shift */
        *a = by_x ? (v < 32 ? *a << v : 0) : *a << (v & 31);
        return 1;
    case BPF_RSH:
        *a = by_x ? (v < 32 ? *a >> v : 0) : *a >> (v & 31);
        return 1;
    default:
        return 0;
    }
}
