/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * pcapcount: the ceiling for `make bench`. A bare libpcap reader with the
 * capture options ewpcapd uses by default, driven the way ewpcapd drives
 * libpcap (non-blocking handle, poll(2) on the selectable fd,
 * pcap_dispatch(p, -1, ...) at each readiness), that only counts.
 *
 *   pcapcount -i DEV [-f FILTER] [-s SNAPLEN] [-B BYTES] [-t MS] [-c COUNT]
 *             [-w IDLE_MS] [-T SECS]
 *
 * Defaults: snaplen 65535, a 16 MiB kernel buffer, immediate mode (-t MS
 * turns immediate mode off and sets the timeout), no filter. Prints
 * "ready" once the handle is active, then stops after COUNT packets, after
 * IDLE_MS (default 1000) without a packet once one came, after SECS
 * (default 60) or on SIGINT/SIGTERM, and prints one line:
 *
 *   received=N ps_recv=N ps_drop=N ps_ifdrop=N user_s=F sys_s=F cpu_s=F
 *   first_ns=N last_ns=N pps=N
 *
 * first_ns/last_ns are CLOCK_MONOTONIC readings after the dispatch that
 * delivered the first and the last packet; pps is (received - 1) over
 * their difference (what the owner of an ewpcap handle measures too).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
count_cb(unsigned char *user, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    (void)h;
    (void)bytes;
    (*(uint64_t *)user)++;
}

static long
parse_l(const char *s, const char *what, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || *s == '\0' || v < min || v > max) {
        (void)fprintf(stderr, "pcapcount: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void
usage(void)
{
    (void)fprintf(stderr, "usage: pcapcount -i DEV [-f FILTER] [-s SNAPLEN] [-B BYTES] [-t MS]"
                          " [-c COUNT] [-w IDLE_MS] [-T SECS]\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    const char *dev = NULL, *filter = NULL;
    long snaplen = 65535, buffer = 16L << 20, timeout = -1, idle_ms = 1000, secs = 60;
    long count = 0;
    char errbuf[PCAP_ERRBUF_SIZE];
    struct bpf_program prog;
    struct pcap_stat ps;
    struct rusage ru;
    struct pollfd pfd;
    uint64_t received = 0, first = 0, last = 0, deadline;
    double user_s, sys_s;
    pcap_t *p;
    int ch, status;

    while ((ch = getopt(argc, argv, "i:f:s:B:t:c:w:T:h")) != -1) {
        switch (ch) {
        case 'i': dev = optarg; break;
        case 'f': filter = optarg; break;
        case 's': snaplen = parse_l(optarg, "snaplen", 1, 262144); break;
        case 'B': buffer = parse_l(optarg, "buffer", 0, 1L << 30); break;
        case 't': timeout = parse_l(optarg, "timeout", 0, 60000); break;
        case 'c': count = parse_l(optarg, "count", 0, 1000000000L); break;
        case 'w': idle_ms = parse_l(optarg, "idle", 1, 600000); break;
        case 'T': secs = parse_l(optarg, "seconds", 1, 3600); break;
        default: usage();
        }
    }
    if (dev == NULL || optind != argc)
        usage();

    p = pcap_create(dev, errbuf);
    if (p == NULL) {
        (void)fprintf(stderr, "pcapcount: %s\n", errbuf);
        return 1;
    }
    (void)pcap_set_snaplen(p, (int)snaplen);
    (void)pcap_set_promisc(p, 0);
    (void)pcap_set_immediate_mode(p, timeout < 0);
    if (timeout >= 0)
        (void)pcap_set_timeout(p, (int)timeout);
    if (buffer > 0)
        (void)pcap_set_buffer_size(p, (int)buffer);
    status = pcap_activate(p);
    if (status < 0) {
        (void)fprintf(stderr, "pcapcount: %s: %s\n", pcap_statustostr(status), pcap_geterr(p));
        return 1;
    }
    if (filter != NULL) {
        if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0 ||
            pcap_setfilter(p, &prog) < 0) {
            (void)fprintf(stderr, "pcapcount: filter: %s\n", pcap_geterr(p));
            return 1;
        }
        pcap_freecode(&prog);
    }
    if (pcap_setnonblock(p, 1, errbuf) < 0) {
        (void)fprintf(stderr, "pcapcount: %s\n", errbuf);
        return 1;
    }
    pfd.fd = pcap_get_selectable_fd(p);
    pfd.events = POLLIN;
    if (pfd.fd < 0) {
        (void)fprintf(stderr, "pcapcount: no selectable fd\n");
        return 1;
    }
    (void)signal(SIGINT, on_signal);
    (void)signal(SIGTERM, on_signal);
    (void)signal(SIGPIPE, SIG_IGN);

    (void)printf("ready\n");
    (void)fflush(stdout);

    deadline = now_ns() + (uint64_t)secs * 1000000000ULL;
    while (!stop) {
        uint64_t before = received, t;
        int r = poll(&pfd, 1, 50);

        if (r < 0 && errno != EINTR) {
            perror("pcapcount: poll");
            break;
        }
        if (r > 0) {
            if (pcap_dispatch(p, -1, count_cb, (unsigned char *)&received) == PCAP_ERROR) {
                (void)fprintf(stderr, "pcapcount: %s\n", pcap_geterr(p));
                break;
            }
        }
        t = now_ns();
        if (received != before) {
            if (before == 0)
                first = t;
            last = t;
        }
        if (count > 0 && received >= (uint64_t)count)
            break;
        if (received > 0 && t - last > (uint64_t)idle_ms * 1000000ULL)
            break;
        if (t > deadline)
            break;
    }

    memset(&ps, 0, sizeof(ps));
    (void)pcap_stats(p, &ps);
    (void)getrusage(RUSAGE_SELF, &ru);
    user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    (void)printf("received=%llu ps_recv=%u ps_drop=%u ps_ifdrop=%u user_s=%.3f sys_s=%.3f "
                 "cpu_s=%.3f first_ns=%llu last_ns=%llu pps=%.0f\n",
                 (unsigned long long)received, ps.ps_recv, ps.ps_drop, ps.ps_ifdrop,
                 user_s, sys_s, user_s + sys_s, (unsigned long long)first,
                 (unsigned long long)last,
                 received > 1 && last > first
                     ? (double)(received - 1) * 1e9 / (double)(last - first) : 0.0);
    (void)fflush(stdout);
    pcap_close(p);
    return 0;
}
