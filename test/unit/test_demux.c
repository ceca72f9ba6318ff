/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/demux.c and demux_run.c: members with real filters
 * (pcap_compile on pcap_open_dead for DLT_EN10MB, DLT_LINUX_SLL and
 * DLT_RAW), many of one shape and odd ones beside them, members set,
 * replaced and removed between packets. Every answer of ewp_demux_match is
 * compared with each member's program run through pcap_offline_filter, on
 * hand-made and random packets, some cut short (caplen < len). Packets are
 * exact-size heap copies, so a read past caplen is a valgrind or ASan
 * error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <pcap/pcap.h>

#include "demux.h"

#define MAX_SLOTS 1200

/* An assertion whose failure record names the case instead of the source */
#define CHECK_CASE(cond, what) \
    CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, __LINE__, (what), __FILE__, "", CU_FALSE)

/* What the demux should hold: a member per slot */
struct slot {
    int in;                  /* a member now */
    int every;               /* with no program */
    struct bpf_program prog; /* its program (when !every) */
    char text[96];           /* its filter */
};

static struct slot slots[MAX_SLOTS];
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
slots_reset(void)
{
    size_t i;

    for (i = 0; i < MAX_SLOTS; i++) {
        if (!slots[i].every && slots[i].prog.bf_insns != NULL)
            pcap_freecode(&slots[i].prog);
        memset(&slots[i], 0, sizeof(slots[i]));
    }
}

/* Compiles text for linktype into s->prog; 0, or -1 when libpcap refuses it */
static int
compile(int linktype, const char *text, struct bpf_program *prog)
{
    pcap_t *p = pcap_open_dead(linktype, 65535);
    int rv;

    CU_ASSERT_FATAL(p != NULL);
    rv = pcap_compile(p, prog, text, 1, PCAP_NETMASK_UNKNOWN);
    pcap_close(p);
    return rv;
}

/* Makes slot i a member with filter text (NULL: no filter); 0, or -1 when
 * the filter does not compile for linktype */
static int
put(struct ewp_demux *d, int linktype, size_t i, const char *text)
{
    struct slot *s = &slots[i];
    struct bpf_program prog;

    if (text != NULL && compile(linktype, text, &prog) < 0)
        return -1;
    CHECK_CASE(ewp_demux_set(d, s, text != NULL ? &prog : NULL) == 0, text != NULL ? text : "(none)");
    if (!s->every && s->prog.bf_insns != NULL)
        pcap_freecode(&s->prog);
    memset(s, 0, sizeof(*s));
    s->in = 1;
    s->every = text == NULL;
    if (text != NULL) {
        s->prog = prog;
        (void)snprintf(s->text, sizeof(s->text), "%s", text);
    }
    return 0;
}

static void
take_out(struct ewp_demux *d, size_t i)
{
    ewp_demux_remove(d, &slots[i]);
    if (!slots[i].every && slots[i].prog.bf_insns != NULL)
        pcap_freecode(&slots[i].prog);
    memset(&slots[i], 0, sizeof(slots[i]));
}

static int
cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

    return x < y ? -1 : x > y;
}

/* ewp_demux_match on an exact-size copy of pkt[0..caplen) of wire length
 * len, against every member's program through pcap_offline_filter; 1 when
 * the answers are the same */
static int
same_answer(struct ewp_demux *d, const unsigned char *pkt, uint32_t caplen, uint32_t len)
{
    static void *got[MAX_SLOTS], *want[MAX_SLOTS];
    struct pcap_pkthdr h;
    unsigned char *copy = malloc(caplen > 0 ? caplen : 1);
    size_t n, nwant = 0, i, count = 0;
    int same;

    CU_ASSERT_FATAL(copy != NULL);
    memcpy(copy, pkt, caplen);
    memset(&h, 0, sizeof(h));
    h.caplen = caplen;
    h.len = len;
    for (i = 0; i < MAX_SLOTS; i++) {
        if (!slots[i].in)
            continue;
        count++;
        if (slots[i].every || pcap_offline_filter(&slots[i].prog, &h, copy) != 0)
            want[nwant++] = &slots[i];
    }
    CU_ASSERT(ewp_demux_count(d) == count);
    n = ewp_demux_match(d, &h, copy, got);
    free(copy);
    qsort(got, n, sizeof(*got), cmp_ptr);
    same = n == nwant && memcmp(got, want, n * sizeof(*got)) == 0;
    if (!same) {
        (void)fprintf(stderr, "\ndemux: %zu matched, %zu want (caplen %u len %u)\n", n, nwant,
                      caplen, len);
        for (i = 0; i < n && i < 5; i++)
            (void)fprintf(stderr, "  got %s\n", ((struct slot *)got[i])->text);
        for (i = 0; i < nwant && i < 5; i++)
            (void)fprintf(stderr, "  want %s\n", ((struct slot *)want[i])->text);
    }
    return same;
}

/* A packet: link header for linktype, then IPv4 or IPv6, then UDP or TCP
 * (proto 17 or 6) with these ports, then payload bytes; its length */
static uint32_t
packet(unsigned char *b, int linktype, int v6, int vlan, uint8_t proto, uint32_t src, uint32_t dst,
       uint16_t sport, uint16_t dport, size_t payload)
{
    size_t off = 0, ip, l4, hl = proto == 6 ? 20 : 8, i;

    if (linktype == DLT_EN10MB) {
        memset(b, 0x02, 12);
        off = 12;
        if (vlan >= 0) {
            b[off++] = 0x81, b[off++] = 0x00, b[off++] = (uint8_t)(vlan >> 8),
            b[off++] = (uint8_t)vlan;
        }
        b[off++] = v6 ? 0x86 : 0x08, b[off++] = v6 ? 0xdd : 0x00;
    } else if (linktype == DLT_LINUX_SLL) {
        memset(b, 0, 14);
        b[2] = 0, b[3] = 1, b[5] = 6;
        off = 14;
        b[off++] = v6 ? 0x86 : 0x08, b[off++] = v6 ? 0xdd : 0x00;
    }
    ip = off;
    if (v6) {
        memset(b + ip, 0, 40);
        b[ip] = 0x60;
        b[ip + 4] = (uint8_t)((hl + payload) >> 8), b[ip + 5] = (uint8_t)(hl + payload);
        b[ip + 6] = proto, b[ip + 7] = 64;
        for (i = 0; i < 4; i++) {
            b[ip + 20 + i] = (uint8_t)(src >> (24 - 8 * i));
            b[ip + 36 + i] = (uint8_t)(dst >> (24 - 8 * i));
        }
        l4 = ip + 40;
    } else {
        memset(b + ip, 0, 20);
        b[ip] = 0x45;
        b[ip + 2] = (uint8_t)((20 + hl + payload) >> 8), b[ip + 3] = (uint8_t)(20 + hl + payload);
        b[ip + 8] = (uint8_t)(rnd() % 4); /* ttl: 0 divides by zero */
        b[ip + 9] = proto;
        for (i = 0; i < 4; i++) {
            b[ip + 12 + i] = (uint8_t)(src >> (24 - 8 * i));
            b[ip + 16 + i] = (uint8_t)(dst >> (24 - 8 * i));
        }
        l4 = ip + 20;
    }
    memset(b + l4, 0, hl);
    b[l4] = (uint8_t)(sport >> 8), b[l4 + 1] = (uint8_t)sport;
    b[l4 + 2] = (uint8_t)(dport >> 8), b[l4 + 3] = (uint8_t)dport;
    for (i = 0; i < payload; i++)
        b[l4 + hl + i] = (uint8_t)rnd();
    return (uint32_t)(l4 + hl + payload);
}

/* The odd filters beside the shapes */
static const char *const odd[] = {
    NULL, "vlan 10", "len > 100", "ip[2:2] / ip[8] = 1", "ether[100] = 1", "ip protochain 6",
    "udp[8:2] = 7", "less 60", "ip[8] = 2",
};

/* A filter for slot i: mostly of one of eight shapes with constants the
 * packets hit, every tenth an odd one */
static const char *
filter_for(size_t i, char *buf, size_t len)
{
    unsigned a = 1000 + rnd() % 300, b = rnd() % 4;

    if (i % 10 == 9)
        return odd[rnd() % (sizeof(odd) / sizeof(odd[0]))];
    switch ((i / 10) % 8) {
    case 0:
        (void)snprintf(buf, len, "udp and src port 53 and dst port %u", a);
        break;
    case 1:
        (void)snprintf(buf, len, "host 10.0.%u.%u", b, a % 256);
        break;
    case 2:
        (void)snprintf(buf, len, "tcp port %u", a);
        break;
    case 3:
        (void)snprintf(buf, len, "not host 10.1.%u.%u", b, a % 256);
        break;
    case 4:
        (void)snprintf(buf, len, "host 10.2.0.%u and port %u", a % 256, 1000 + rnd() % 300);
        break;
    case 5:
        (void)snprintf(buf, len, "port 53 or port %u", a);
        break;
    case 6: /* lists of many at src port, split again at dst port */
        (void)snprintf(buf, len, "udp and src port %u and dst port %u", 53 + b, a);
        break;
    default:
        (void)snprintf(buf, len, "ip6 and udp dst port %u", a);
        break;
    }
    return buf;
}

/* A random packet whose fields mostly hit the filters' constants */
static uint32_t
random_packet(unsigned char *b, int linktype, uint32_t *len)
{
    int v6 = rnd() % 4 == 0, vlan = linktype == DLT_EN10MB && rnd() % 8 == 0 ? (int)(rnd() % 12) : -1;
    uint8_t proto = rnd() % 3 == 0 ? 6 : 17;
    uint32_t net = rnd() % 3 == 0 ? 0x0a000000 : rnd() % 2 ? 0x0a010000 : 0x0a020000;
    uint32_t src = net | (rnd() % 4) << 8 | (1000 + rnd() % 300) % 256;
    uint32_t dst = net | (rnd() % 4) << 8 | (1000 + rnd() % 300) % 256;
    uint16_t sport = rnd() % 3 == 0 ? (uint16_t)(53 + rnd() % 4) : (uint16_t)(1000 + rnd() % 300);
    uint16_t dport = rnd() % 3 == 0 ? 53 : (uint16_t)(1000 + rnd() % 300);
    uint32_t n = packet(b, linktype, v6, vlan, proto, src, dst, sport, dport, rnd() % 120);
    uint32_t flips = rnd() % 3, i;

    for (i = 0; i < flips; i++) /* a few bytes anywhere */
        b[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
    *len = n + (rnd() % 4 == 0 ? rnd() % 50 : 0);
    return rnd() % 3 == 0 ? rnd() % (n + 1) : n;
}

/* n members of the shapes and odd ones for linktype, then packets: every
 * answer checked; returns how many answers differed */
static int
many_members(int linktype, size_t n, size_t packets)
{
    struct ewp_demux *d = ewp_demux_new();
    unsigned char b[512];
    char text[96];
    size_t i, bad = 0, compiled = 0;

    CU_ASSERT_FATAL(d != NULL);
    slots_reset();
    for (i = 0; i < n; i++)
        compiled += put(d, linktype, i, filter_for(i, text, sizeof(text))) == 0;
    CU_ASSERT(compiled >= n * 8 / 10);
    for (i = 0; i < packets; i++) {
        uint32_t len, caplen = random_packet(b, linktype, &len);

        bad += !same_answer(d, b, caplen, len);
    }
    ewp_demux_free(d);
    slots_reset();
    return (int)bad;
}

static void
test_many_members_ethernet(void)
{
    CHECK_CASE(many_members(DLT_EN10MB, 700, 400) == 0, "ethernet: answers differed");
}

static void
test_many_members_sll_and_raw(void)
{
    CHECK_CASE(many_members(DLT_LINUX_SLL, 300, 300) == 0, "linux sll: answers differed");
    CHECK_CASE(many_members(DLT_RAW, 300, 300) == 0, "raw: answers differed");
}

/* 1,000 of udp and src port 53 and dst port P_i: a datagram to one port
 * is each of its members', and nobody's once cut before the port */
static void
test_one_shape_hand_made(void)
{
    struct ewp_demux *d = ewp_demux_new();
    unsigned char b[256];
    char text[96];
    void *out[MAX_SLOTS];
    struct pcap_pkthdr h;
    uint32_t n;
    size_t i, got;

    CU_ASSERT_FATAL(d != NULL);
    slots_reset();
    for (i = 0; i < 1000; i++) {
        (void)snprintf(text, sizeof(text), "udp and src port 53 and dst port %zu", 2000 + i % 900);
        CU_ASSERT_FATAL(put(d, DLT_EN10MB, i, text) == 0);
    }
    n = packet(b, DLT_EN10MB, 0, -1, 17, 0x0a000001, 0x0a000002, 53, 2005, 10);
    memset(&h, 0, sizeof(h));
    h.caplen = h.len = n;
    got = ewp_demux_match(d, &h, b, out);
    CU_ASSERT(got == 2); /* slots 5 and 905 */
    CU_ASSERT(got == 2 && ((out[0] == &slots[5] && out[1] == &slots[905]) ||
                           (out[0] == &slots[905] && out[1] == &slots[5])));
    CU_ASSERT(same_answer(d, b, n, n));
    CU_ASSERT(same_answer(d, b, 14 + 20 + 3, n)); /* cut inside the port */
    n = packet(b, DLT_EN10MB, 1, -1, 17, 0x0a000001, 0x0a000002, 53, 2899, 0);
    CU_ASSERT(same_answer(d, b, n, n));
    h.caplen = h.len = n;
    CU_ASSERT(ewp_demux_match(d, &h, b, out) == 1 && out[0] == &slots[899]);
    n = packet(b, DLT_EN10MB, 0, -1, 17, 0x0a000001, 0x0a000002, 54, 2005, 10);
    CU_ASSERT(same_answer(d, b, n, n));
    h.caplen = h.len = n;
    CU_ASSERT(ewp_demux_match(d, &h, b, out) == 0);
    ewp_demux_free(d);
    slots_reset();
}

/* Members set, replaced and removed between packets: each answer still
 * every member's own */
static void
test_set_replace_remove_between_packets(void)
{
    struct ewp_demux *d = ewp_demux_new();
    unsigned char b[512];
    char text[96];
    size_t step, i, bad = 0;

    CU_ASSERT_FATAL(d != NULL);
    slots_reset();
    for (step = 0; step < 3000; step++) {
        uint32_t len, caplen;

        i = rnd() % 400;
        switch (rnd() % 4) {
        case 0:
            take_out(d, i);
            break;
        default:
            (void)put(d, DLT_EN10MB, i, filter_for(i + rnd() % 10, text, sizeof(text)));
            break;
        }
        if (step % 5 == 0) {
            caplen = random_packet(b, DLT_EN10MB, &len);
            bad += !same_answer(d, b, caplen, len);
        }
    }
    CHECK_CASE(bad == 0, "answers differed after set/replace/remove");
    for (i = 0; i < 400; i++)
        take_out(d, i);
    CU_ASSERT(ewp_demux_count(d) == 0);
    ewp_demux_free(d);
    slots_reset();
}

/* Same programs are one, a refused program leaves the member as it was,
 * no program is every packet */
static void
test_duplicates_refusals_and_no_filter(void)
{
    struct ewp_demux *d = ewp_demux_new();
    struct bpf_insn bad_jump[] = { BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 5, 0),
                                   BPF_STMT(BPF_RET | BPF_K, 1) };
    struct bpf_insn bad_code[] = { BPF_STMT(0xff, 0), BPF_STMT(BPF_RET | BPF_K, 1) };
    struct bpf_insn loop[] = { BPF_STMT(BPF_JMP | BPF_JA, UINT32_MAX), BPF_STMT(BPF_RET | BPF_K, 1) };
    struct bpf_program p1 = { 2, bad_jump }, p2 = { 2, bad_code }, p3 = { 2, loop };
    unsigned char b[256];
    uint32_t n;
    size_t i;

    CU_ASSERT_FATAL(d != NULL);
    slots_reset();
    for (i = 0; i < 6; i++)
        CU_ASSERT(put(d, DLT_EN10MB, i, i < 3 ? "udp dst port 7" : "udp dst port 8") == 0);
    CU_ASSERT(put(d, DLT_EN10MB, 6, NULL) == 0);
    errno = 0;
    CU_ASSERT(ewp_demux_set(d, &slots[0], &p1) == -1 && errno == EINVAL);
    errno = 0;
    CU_ASSERT(ewp_demux_set(d, &slots[1], &p2) == -1 && errno == EINVAL);
    errno = 0;
    CU_ASSERT(ewp_demux_set(d, &slots[7], &p3) == -1 && errno == EINVAL);
    CU_ASSERT(ewp_demux_count(d) == 7);
    n = packet(b, DLT_EN10MB, 0, -1, 17, 1, 2, 9, 7, 4);
    CU_ASSERT(same_answer(d, b, n, n));
    n = packet(b, DLT_EN10MB, 0, -1, 17, 1, 2, 9, 8, 4);
    CU_ASSERT(same_answer(d, b, n, n));
    CU_ASSERT(same_answer(d, b, 0, n));
    ewp_demux_remove(d, &slots[100]); /* not in: nothing */
    CU_ASSERT(ewp_demux_count(d) == 7);
    ewp_demux_free(d);
    slots_reset();
}

/* A random valid program of len instructions using every opcode of the
 * interpreter: scratch memory stored first (libpcap 1.10 leaves it
 * unset), jumps forward only, no division by a constant 0, no shift by a
 * constant of 32 or more; small constants, so packets of small bytes
 * meet them */
static void
random_program(struct bpf_insn *f, u_int len)
{
    static const uint16_t codes[] = {
        BPF_LD | BPF_W | BPF_ABS, BPF_LD | BPF_H | BPF_ABS, BPF_LD | BPF_B | BPF_ABS,
        BPF_LD | BPF_W | BPF_IND, BPF_LD | BPF_H | BPF_IND, BPF_LD | BPF_B | BPF_IND,
        BPF_LDX | BPF_MSH | BPF_B, BPF_LD | BPF_W | BPF_LEN, BPF_LDX | BPF_W | BPF_LEN,
        BPF_LD | BPF_IMM, BPF_LDX | BPF_IMM, BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM, BPF_ST, BPF_STX,
        BPF_JMP | BPF_JA, BPF_JMP | BPF_JGT | BPF_K, BPF_JMP | BPF_JGE | BPF_K,
        BPF_JMP | BPF_JSET | BPF_K, BPF_JMP | BPF_JGT | BPF_X, BPF_JMP | BPF_JGE | BPF_X,
        BPF_JMP | BPF_JEQ | BPF_X, BPF_JMP | BPF_JSET | BPF_X, BPF_ALU | BPF_NEG,
        BPF_MISC | BPF_TAX, BPF_MISC | BPF_TXA,
    };
    static const uint16_t alu[] = { BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_MOD,
                                    BPF_AND, BPF_OR,  BPF_XOR, BPF_LSH, BPF_RSH };
    u_int i;

    for (i = 0; i < 2 * BPF_MEMWORDS; i += 2) {
        f[i] = (struct bpf_insn)BPF_STMT(BPF_LD | BPF_IMM, rnd() % 5);
        f[i + 1] = (struct bpf_insn)BPF_STMT(BPF_ST, i / 2);
    }
    for (; i < len - 1; i++) {
        u_int room = len - 2 - i, pick = rnd() % 4;
        uint16_t code;

        if (rnd() % 30 == 0)
            code = rnd() % 2 ? BPF_RET | BPF_A : BPF_RET | BPF_K;
        else if (pick == 0)
            code = BPF_JMP | BPF_JEQ | BPF_K;
        else if (pick == 1)
            code = (uint16_t)(BPF_ALU | alu[rnd() % 10] | (rnd() % 2 ? BPF_X : BPF_K));
        else
            code = codes[rnd() % (sizeof(codes) / sizeof(codes[0]))];
        f[i] = (struct bpf_insn)BPF_STMT(code, rnd() % 4 == 0 ? rnd() % 70 : rnd() % 4);
        if (BPF_CLASS(code) == BPF_JMP) {
            f[i].jt = (uint8_t)(rnd() % (room + 1 < 255 ? room + 1 : 255));
            f[i].jf = (uint8_t)(rnd() % (room + 1 < 255 ? room + 1 : 255));
            if (code == (BPF_JMP | BPF_JA))
                f[i].k = rnd() % (room + 1);
        } else if (BPF_CLASS(code) == BPF_ST || BPF_CLASS(code) == BPF_STX ||
                   BPF_MODE(code) == BPF_MEM) {
            f[i].k %= BPF_MEMWORDS;
        } else if (code == (BPF_ALU | BPF_DIV | BPF_K) || code == (BPF_ALU | BPF_MOD | BPF_K)) {
            f[i].k += f[i].k == 0;
        } else if (code == (BPF_ALU | BPF_LSH | BPF_K) || code == (BPF_ALU | BPF_RSH | BPF_K)) {
            f[i].k %= 32;
        } else if (code == (BPF_RET | BPF_K)) {
            f[i].k = rnd() % 2;
        }
    }
    f[len - 1] = (struct bpf_insn)BPF_STMT(BPF_RET | BPF_A, 0); /* A decides, mostly */
}

/* Random programs over every opcode, 24 members each differing from the
 * others in the k of their jeq #k: each answer pcap_offline_filter's */
static void
test_random_programs_every_opcode(void)
{
    struct bpf_insn base[80];
    unsigned char b[96];
    size_t round, i, bad = 0;
    u_int j;

    slots_reset();
    for (round = 0; round < 400; round++) {
        struct ewp_demux *d = ewp_demux_new();
        u_int len = 2 * BPF_MEMWORDS + 8 + rnd() % 40;

        CU_ASSERT_FATAL(d != NULL);
        random_program(base, len);
        CU_ASSERT_FATAL(bpf_validate(base, (int)len));
        for (i = 0; i < 24; i++) {
            struct slot *s = &slots[i];

            s->prog.bf_len = len;
            s->prog.bf_insns = malloc(len * sizeof(struct bpf_insn));
            CU_ASSERT_FATAL(s->prog.bf_insns != NULL);
            memcpy(s->prog.bf_insns, base, len * sizeof(struct bpf_insn));
            for (j = 0; j < len; j++)
                if (base[j].code == (BPF_JMP | BPF_JEQ | BPF_K) && rnd() % 2)
                    s->prog.bf_insns[j].k = rnd() % 4;
            s->in = 1;
            (void)snprintf(s->text, sizeof(s->text), "random %zu/%zu", round, i);
            CU_ASSERT(ewp_demux_set(d, s, &s->prog) == 0);
        }
        for (i = 0; i < 50; i++) {
            uint32_t n = 20 + rnd() % 60, k;

            for (k = 0; k < n; k++)
                b[k] = (uint8_t)(rnd() % 3 == 0 ? rnd() : rnd() % 4);
            bad += !same_answer(d, b, rnd() % 3 == 0 ? rnd() % (n + 1) : n, n + rnd() % 3);
        }
        ewp_demux_free(d);
        slots_reset();
    }
    CHECK_CASE(bad == 0, "random programs: answers differed");
}

CU_TestInfo ewp_demux_tests[] = {
    {"1,000 of one shape: each datagram its port's members", test_one_shape_hand_made},
    {"many members on ethernet: every answer pcap_offline_filter's", test_many_members_ethernet},
    {"many members on linux sll and raw ip", test_many_members_sll_and_raw},
    {"set, replace and remove between packets", test_set_replace_remove_between_packets},
    {"duplicates, refused programs, no filter", test_duplicates_refusals_and_no_filter},
    {"random programs of every opcode, differing in jeq #k", test_random_programs_every_opcode},
    CU_TEST_INFO_NULL,
};
