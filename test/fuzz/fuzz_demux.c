/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Differential libFuzzer target for the demultiplexer of a shared capture
 * (cnode/demux.c, demux_run.c). The input is a link type and a stream of
 * operations: a member set to a filter (one of the templates below with
 * fuzzed constants, compiled by pcap_compile), a run of members set to
 * one template with consecutive constants (a group of one shape), a
 * member removed, and a packet (fuzzed bytes, cut to a fuzzed caplen, a
 * fuzzed wire length). Every packet's ewp_demux_match is compared with
 * each member's program run through pcap_offline_filter: the harness
 * aborts when they differ, when a member is answered twice, or when
 * ewp_demux_count is wrong. Packets are guarded copies (fuzz_common.h),
 * so a read past caplen is a crash.
 *
 *   byte 0          link type: EN10MB, LINUX_SLL, RAW (mod 3)
 *   then, by the first byte of each operation (mod 4):
 *   0 slot t a1 a0 b          set member slot (mod 32) to template t
 *   1 slot                    remove member slot
 *   2 cut extra l1 l0 bytes   a packet of l bytes (what is left at most);
 *                             caplen = l when cut >= 128, else min(cut, l);
 *                             len = l + extra
 *   3 t a1 a0 b n             members 32.. 32+n%64 set to template t with
 *                             constants a, a+1, ... (and b)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "demux.h"
#include "fuzz_common.h"

#define SLOTS 96

struct slot {
    int in;                  /* a member now */
    int every;               /* with no program */
    struct bpf_program prog; /* its program (when !every) */
};

static struct slot slots[SLOTS];

/* Compiled filters by link type, template and constants (pcap_compile is
 * most of an input's time): direct-mapped, a failed compile kept too */
#define CACHE 8192
static struct {
    uint64_t key;            /* 1 + the filter's key; 0: empty */
    int ok;                  /* it compiled */
    struct bpf_program prog; /* then its program */
} cache[CACHE];

static void slot_clear(struct slot *s);
static void set_member(struct ewp_demux *d, pcap_t *p, int lt, size_t i, unsigned t, unsigned a,
                       unsigned b);
static int compiled(pcap_t *p, int lt, unsigned t, unsigned a, unsigned b, struct bpf_program *prog);
static int render(char *buf, size_t len, unsigned t, unsigned a, unsigned b);
static void check_packet(struct ewp_demux *d, const unsigned char *data, uint32_t caplen, uint32_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int linktypes[] = { DLT_EN10MB, DLT_LINUX_SLL, DLT_RAW };
    static pcap_t *dead[3]; /* one per link type, for pcap_compile */
    struct ewp_demux *d;
    pcap_t *p;
    size_t pos = 1, i;

    if (size < 1)
        return 0;
    d = ewp_demux_new();
    if (dead[data[0] % 3] == NULL)
        dead[data[0] % 3] = pcap_open_dead(linktypes[data[0] % 3], 65535);
    p = dead[data[0] % 3];
    if (d == NULL || p == NULL)
        abort();
    while (pos < size) {
        unsigned op = data[pos++] % 4;

        if (op == 0 && size - pos >= 5) {
            set_member(d, p, data[0] % 3, data[pos] % 32, data[pos + 1], (unsigned)data[pos + 2] << 8 | data[pos + 3],
                       data[pos + 4]);
            pos += 5;
        } else if (op == 1 && size - pos >= 1) {
            ewp_demux_remove(d, &slots[data[pos] % 32]);
            slot_clear(&slots[data[pos] % 32]);
            pos += 1;
        } else if (op == 2 && size - pos >= 4) {
            uint32_t cut = data[pos], extra = data[pos + 1];
            size_t l = (size_t)data[pos + 2] << 8 | data[pos + 3];

            pos += 4;
            if (l > size - pos)
                l = size - pos;
            check_packet(d, data + pos, cut >= 128 || cut > l ? (uint32_t)l : cut,
                         (uint32_t)(l + extra));
            pos += l;
        } else if (op == 3 && size - pos >= 5) {
            unsigned a = (unsigned)data[pos + 1] << 8 | data[pos + 2], n = data[pos + 4] % 64;

            for (i = 0; i < n; i++)
                set_member(d, p, data[0] % 3, 32 + i, data[pos], (a + i) & 0xffff, data[pos + 3]);
            pos += 5;
        } else {
            break;
        }
    }
    ewp_demux_free(d);
    for (i = 0; i < SLOTS; i++)
        slot_clear(&slots[i]);
    return 0;
}

static void
slot_clear(struct slot *s)
{
    if (s->in && !s->every)
        pcap_freecode(&s->prog);
    memset(s, 0, sizeof(*s));
}

/* Member i set to template t's filter, when it compiles */
static void
set_member(struct ewp_demux *d, pcap_t *p, int lt, size_t i, unsigned t, unsigned a, unsigned b)
{
    struct bpf_program prog = { 0, NULL };
    char text[128];
    int every = render(text, sizeof(text), t, a, b);

    if (!every && compiled(p, lt, t, a, b, &prog) < 0)
        return;
    FUZZ_CHECK(ewp_demux_set(d, &slots[i], every ? NULL : &prog) == 0, "set %s", text);
    slot_clear(&slots[i]);
    slots[i].in = 1;
    slots[i].every = every;
    slots[i].prog = prog;
}

/* A copy of the program of template t with a and b for link type lt; -1
 * when it does not compile */
static int
compiled(pcap_t *p, int lt, unsigned t, unsigned a, unsigned b, struct bpf_program *prog)
{
    uint64_t key = 1 + ((uint64_t)lt << 40 | (uint64_t)(t % 16) << 32 | (uint64_t)a << 8 | b);
    size_t at = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 51) % CACHE;
    char text[128];

    if (cache[at].key != key) {
        if (cache[at].ok)
            pcap_freecode(&cache[at].prog);
        (void)render(text, sizeof(text), t, a, b);
        cache[at].key = key;
        cache[at].ok = pcap_compile(p, &cache[at].prog, text, 1, PCAP_NETMASK_UNKNOWN) == 0;
    }
    if (!cache[at].ok)
        return -1;
    prog->bf_len = cache[at].prog.bf_len;
    prog->bf_insns = malloc(prog->bf_len * sizeof(struct bpf_insn));
    if (prog->bf_insns == NULL)
        abort();
    memcpy(prog->bf_insns, cache[at].prog.bf_insns, prog->bf_len * sizeof(struct bpf_insn));
    return 0;
}

/* The filter of template t (mod 16) with constants a and b; 1 for none */
static int
render(char *buf, size_t len, unsigned t, unsigned a, unsigned b)
{
    switch (t % 16) {
    case 0:
        (void)snprintf(buf, len, "udp and src port %u and dst port %u", 53 + b % 4, a);
        break;
    case 1:
        (void)snprintf(buf, len, "host 10.0.%u.%u", b, a & 0xff);
        break;
    case 2:
        (void)snprintf(buf, len, "tcp port %u", a);
        break;
    case 3:
        (void)snprintf(buf, len, "not host 10.1.%u.%u", b, a & 0xff);
        break;
    case 4:
        (void)snprintf(buf, len, "host 10.2.0.%u and port %u", b, a);
        break;
    case 5:
        (void)snprintf(buf, len, "port 53 or port %u", a);
        break;
    case 6:
        (void)snprintf(buf, len, "ip6 and udp dst port %u", a);
        break;
    case 7:
        (void)snprintf(buf, len, "ip[2:2] / ip[8] = %u", b);
        break;
    case 8:
        (void)snprintf(buf, len, "ether[%u] = %u", a % 300, b);
        break;
    case 9:
        (void)snprintf(buf, len, "len > %u", a % 300);
        break;
    case 10:
        (void)snprintf(buf, len, "vlan %u and udp port %u", b, a);
        break;
    case 11:
        (void)snprintf(buf, len, "ip protochain %u", b);
        break;
    case 12:
        (void)snprintf(buf, len, "udp[8:2] = %u", a);
        break;
    case 13:
        (void)snprintf(buf, len, "icmp[icmptype] = %u or tcp[tcpflags] & %u != 0", b, a & 0xff);
        break;
    case 14:
        (void)snprintf(buf, len, "ip[%u] & %u = %u", a % 40, b, a >> 8);
        break;
    default:
        buf[0] = '\0';
        return 1;
    }
    return 0;
}

static void
check_packet(struct ewp_demux *d, const unsigned char *data, uint32_t caplen, uint32_t len)
{
    static void *got[SLOTS];
    const unsigned char *pkt = (const unsigned char *)fuzz_guard_copy(data, caplen);
    struct pcap_pkthdr h;
    size_t n, i, count = 0;
    int seen[SLOTS] = { 0 };

    memset(&h, 0, sizeof(h));
    h.caplen = caplen;
    h.len = len;
    n = ewp_demux_match(d, &h, pkt, got);
    for (i = 0; i < n; i++) {
        size_t s = (size_t)((struct slot *)got[i] - slots);

        FUZZ_CHECK(s < SLOTS && slots[s].in, "answered %zu, not a member", s);
        FUZZ_CHECK(!seen[s], "member %zu answered twice", s);
        seen[s] = 1;
    }
    for (i = 0; i < SLOTS; i++) {
        int want;

        if (!slots[i].in)
            continue;
        count++;
        want = slots[i].every || pcap_offline_filter(&slots[i].prog, &h, pkt) != 0;
        FUZZ_CHECK(want == seen[i], "member %zu: demux %d, pcap_offline_filter %d (caplen %u len %u)",
                   i, seen[i], want, caplen, len);
    }
    FUZZ_CHECK(ewp_demux_count(d) == count, "count %zu, members %zu", ewp_demux_count(d), count);
    fuzz_guard_release();
}
