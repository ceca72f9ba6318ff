/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * make bench-demux: the cost per packet of ewp_demux_match (cnode/demux.c)
 * with 1, 10, 100 and 1,000 members, beside the plain loop (each member's
 * program through pcap_offline_filter, what demux.c did before), measured
 * side by side in one run on the same packets. Three member sets:
 *
 *   shape  udp and src port 53 and dst port P_i (P_i = 1000 + i)
 *   mix    a third of those, a third host 10.0.x.y, a third tcp port P_i,
 *          and every 50th an odd one (vlan 10, len > 100, ip protochain 6)
 *   idle   the members of shape, every packet member 0's (issue 13's "1,000
 *          idle handles": one handle gets the traffic, the others none)
 *
 * The packets of shape and mix are UDP and TCP datagrams from 10.0.x.y,
 * port 53, to ports 1000-1999 (each hits at most a member or two); those
 * of idle UDP datagrams from port 53 to port 1000. Each figure is the
 * least CPU time of BENCH_REPS rounds (default 40) of BENCH_PACKETS
 * packets (default 20000), every size in each round (on a shared machine
 * the ratios still move by a tenth or two from run to run). Then the time
 * to add and remove 1,000 and 10,000 members of
 * the shape, per member (flat when set and remove do not grow with the
 * number of members). Exit status 0; the numbers are the output.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcap/pcap.h>

#include "demux.h"

#define MAX_MEMBERS 10000
#define NPKT 1024

static struct bpf_program progs[MAX_MEMBERS]; /* churn's */
static struct bpf_program sized[4][1000];      /* the members of each size */
static char who[MAX_MEMBERS];
static void *out[MAX_MEMBERS];
static unsigned char pkts[NPKT][128];
static uint32_t lens[NPKT];
static volatile size_t sink;

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: other load does not count */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void
compile(pcap_t *p, const char *text, struct bpf_program *prog)
{
    if (pcap_compile(p, prog, text, 1, PCAP_NETMASK_UNKNOWN) < 0) {
        (void)fprintf(stderr, "bench-demux: %s: %s\n", text, pcap_geterr(p));
        exit(1);
    }
}

/* Member i's filter of the set (0: shape, 1: mix, 2: idle) */
static void
filter(pcap_t *p, int mix, size_t i, struct bpf_program *prog)
{
    static const char *const odd[] = { "vlan 10", "len > 100", "ip protochain 6" };
    char text[96];

    if (mix != 1 || i % 3 == 0)
        (void)snprintf(text, sizeof(text), "udp and src port 53 and dst port %zu", 1000 + i);
    else if (i % 50 == 49)
        (void)snprintf(text, sizeof(text), "%s", odd[i / 50 % 3]);
    else if (i % 3 == 1)
        (void)snprintf(text, sizeof(text), "host 10.0.%zu.%zu", i / 256 % 256, i % 256);
    else
        (void)snprintf(text, sizeof(text), "tcp port %zu", 1000 + i);
    compile(p, text, prog);
}

/* Ethernet, IPv4, UDP or TCP from 10.0.x.y:53 to a port in 1000-1999;
 * idle: all UDP to port 1000 */
static void
make_packets(int idle)
{
    uint64_t r = 88172645463325252ULL;
    size_t i;

    for (i = 0; i < NPKT; i++) {
        unsigned char *b = pkts[i];
        int tcp;
        unsigned port, src;

        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        tcp = !idle && (r >> 8) % 4 == 0;
        port = idle ? 1000 : 1000 + (unsigned)((r >> 16) % 1000);
        src = (unsigned)((r >> 32) % 1000);
        memset(b, 0, sizeof(pkts[i]));
        b[12] = 0x08;
        b[14] = 0x45, b[22] = 64, b[23] = tcp ? 6 : 17;
        b[26] = 10, b[28] = (unsigned char)(src / 256), b[29] = (unsigned char)src;
        b[30] = 10, b[33] = 1;
        b[34] = 0, b[35] = 53, b[36] = (unsigned char)(port >> 8), b[37] = (unsigned char)port;
        lens[i] = 14 + 20 + (tcp ? 20 : 8) + 32;
        b[16] = 0, b[17] = (unsigned char)(lens[i] - 14);
    }
}

/* ns per packet of ewp_demux_match, or of the plain loop over the n
 * programs of progs */
static double
run(struct ewp_demux *d, const struct bpf_program *progs_n, size_t n, size_t packets, int plain)
{
    struct pcap_pkthdr h;
    double t0 = now();
    size_t i, j, got = 0;

    memset(&h, 0, sizeof(h));
    for (i = 0; i < packets; i++) {
        h.caplen = h.len = lens[i % NPKT];
        if (!plain) {
            got += ewp_demux_match(d, &h, pkts[i % NPKT], out);
            continue;
        }
        for (j = 0; j < n; j++)
            if (pcap_offline_filter(&progs_n[j], &h, pkts[i % NPKT]) != 0)
                out[got++ % MAX_MEMBERS] = &who[j];
    }
    sink += got;
    return (now() - t0) / (double)packets;
}

static size_t
env(const char *name, size_t dflt)
{
    const char *v = getenv(name);

    return v != NULL && atol(v) > 0 ? (size_t)atol(v) : dflt;
}

/* ns per member to add n members of the shape, and to remove them */
static void
churn(pcap_t *p, size_t n)
{
    struct ewp_demux *d = ewp_demux_new();
    double t0, t1, t2;
    size_t i;

    for (i = 0; i < n; i++)
        filter(p, 0, i, &progs[i]);
    t0 = now();
    for (i = 0; i < n; i++)
        if (d == NULL || ewp_demux_set(d, &who[i], &progs[i]) < 0)
            exit(1);
    t1 = now();
    for (i = 0; i < n; i++)
        ewp_demux_remove(d, &who[(i * 7919) % n]); /* n is not a multiple of 7919 */
    t2 = now();
    printf("%-6s %8zu members: set %.0f ns each, remove %.0f ns each\n", "churn", n,
           (t1 - t0) / (double)n, (t2 - t1) / (double)n);
    ewp_demux_free(d);
    for (i = 0; i < n; i++)
        pcap_freecode(&progs[i]);
}

int
main(void)
{
    static const size_t sizes[] = { 1, 10, 100, 1000 };
    size_t reps = env("BENCH_REPS", 40), packets = env("BENCH_PACKETS", 20000);
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
    int mix;
    size_t s, r, i;

    if (p == NULL)
        return 1;
    printf("%-6s %8s %14s %14s %12s\n", "set", "members", "demux ns/pkt", "plain ns/pkt",
           "plain/demux");
    for (mix = 0; mix < 3; mix++) {
        struct ewp_demux *d[4];
        double best[4], plain[4];
        const char *set = mix == 0 ? "shape" : mix == 1 ? "mix" : "idle";

        make_packets(mix == 2);

        for (s = 0; s < 4; s++) {
            d[s] = ewp_demux_new();
            best[s] = plain[s] = 1e18;
            for (i = 0; i < sizes[s]; i++) {
                filter(p, mix, i, &sized[s][i]);
                if (d[s] == NULL || ewp_demux_set(d[s], &who[i], &sized[s][i]) < 0)
                    return 1;
            }
        }
        for (r = 0; r < reps; r++) { /* every size in each round: the same machine load */
            for (s = 0; s < 4; s++) {
                double t = run(d[s], sized[s], sizes[s], packets, 0);
                double tp = run(d[s], sized[s], sizes[s], sizes[s] >= 100 ? packets / 20 : packets, 1);

                best[s] = t < best[s] ? t : best[s];
                plain[s] = tp < plain[s] ? tp : plain[s];
            }
        }
        for (s = 0; s < 4; s++) {
            printf("%-6s %8zu %14.1f %14.1f %11.1fx\n", set, sizes[s], best[s], plain[s],
                   plain[s] / best[s]);
            ewp_demux_free(d[s]);
            for (i = 0; i < sizes[s]; i++)
                pcap_freecode(&sized[s][i]);
        }
        printf("%-6s 1,000 members / 1 member: demux %.2fx, plain loop %.0fx\n", set,
               best[3] / best[0], plain[3] / plain[0]);
    }
    churn(p, 1000);
    churn(p, 10000);
    printf("(sink %zu)\n", (size_t)sink);
    pcap_close(p);
    return 0;
}
