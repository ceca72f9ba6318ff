/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * pktgen: a bounded UDP packet generator for `make bench`.
 *
 *   pktgen -d ADDR [-p PORT] [-s FRAME] [-n COUNT] [-r PPS] [-b BATCH] [-T SECS]
 *          [-i IFNAME -m DSTMAC]
 *
 * Sends COUNT UDP datagrams to ADDR:PORT with sendmmsg(2), BATCH messages
 * per call: through a UDP socket, or with -i and -m as whole Ethernet
 * frames through a packet socket bound to IFNAME (qdisc bypassed; source
 * MAC and IPv4 address are IFNAME's, destination MAC is DSTMAC), which
 * leaves out the sender's UDP/IP stack and so offers about twice the rate
 * on a small machine: the frames on the wire are the same. FRAME is the size of the frame a capture on the receiving veth
 * sees (Ethernet 14 + IPv4 20 + UDP 8 + payload), 58..1514 bytes. The
 * payload starts with the sequence number and the send time (CLOCK_REALTIME,
 * ns), both 64-bit big-endian, taken just before the sendmmsg that carries
 * the packet. With -r the sending is paced to PPS packets per second
 * (absolute deadlines on CLOCK_MONOTONIC, so a late batch is followed at
 * once by the next); without it (or -r 0) it sends as fast as it can.
 *
 * It stops after COUNT packets or SECS seconds (default 60), whichever
 * comes first, or at SIGTERM/SIGINT (the bench's background load), and
 * prints one line of key=value pairs:
 *
 *   sent=N elapsed_ns=N pps=N errors=N target_pps=N batch=N
 *
 * Only the destination given is ever addressed; the bench runs it inside
 * its own network namespace.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN 42        /* Ethernet + IPv4 + UDP headers, as captured */
#define PAYLOAD_MIN 16    /* sequence number + timestamp */
#define FRAME_MAX 1514
#define BATCH_MAX 1024
#define COUNT_MAX 100000000UL

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static uint64_t
now_ns(clockid_t clk)
{
    struct timespec ts;

    (void)clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
sleep_until(uint64_t t_ns)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(t_ns / 1000000000ULL);
    ts.tv_nsec = (long)(t_ns % 1000000000ULL);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static unsigned long
parse_ul(const char *s, const char *what, unsigned long min, unsigned long max)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || *s == '\0' || v < min || v > max) {
        (void)fprintf(stderr, "pktgen: bad %s: %s (%lu..%lu)\n", what, s, min, max);
        exit(2);
    }
    return v;
}

/* A packet socket bound to ifname, and the Ethernet + IPv4 + UDP headers
 * of every frame in hdr (HDR_LEN bytes). Returns the socket or exits. */
static int
open_raw(const char *ifname, const char *dstmac, const struct sockaddr_in *dst,
         unsigned long port, size_t frame, unsigned char *hdr)
{
    struct sockaddr_ll sll;
    struct ifreq ifr;
    unsigned int mac[6];
    uint32_t sum = 0;
    uint16_t w;
    int fd, one = 1, i;

    if (strlen(ifname) >= IFNAMSIZ ||
        sscanf(dstmac, "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
               &mac[5]) != 6) {
        (void)fprintf(stderr, "pktgen: bad interface or MAC: %s %s\n", ifname, dstmac);
        exit(2);
    }
    fd = socket(AF_PACKET, SOCK_RAW, 0);    /* protocol 0: sends only */
    if (fd < 0) {
        perror("pktgen: socket(AF_PACKET)");
        exit(1);
    }
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, ifname, strlen(ifname));
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
        perror("pktgen: SIOCGIFHWADDR");
        exit(1);
    }
    for (i = 0; i < 6; i++) {
        hdr[i] = (unsigned char)mac[i];
        hdr[6 + i] = (unsigned char)ifr.ifr_hwaddr.sa_data[i];
    }
    hdr[12] = 0x08;    /* IPv4 */
    hdr[13] = 0x00;
    if (ioctl(fd, SIOCGIFADDR, &ifr) < 0) {
        perror("pktgen: SIOCGIFADDR");
        exit(1);
    }
    /* IPv4: no options, DF, TTL 64, UDP */
    hdr[14] = 0x45;
    hdr[15] = 0;
    hdr[16] = (unsigned char)((frame - 14) >> 8);
    hdr[17] = (unsigned char)((frame - 14) & 0xff);
    memset(hdr + 18, 0, 4);
    hdr[20] = 0x40;
    hdr[22] = 64;
    hdr[23] = IPPROTO_UDP;
    memcpy(hdr + 26, &((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr, 4);
    memcpy(hdr + 30, &dst->sin_addr, 4);
    hdr[24] = hdr[25] = 0;
    for (i = 14; i < 34; i += 2)
        sum += (uint32_t)(hdr[i] << 8 | hdr[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    w = (uint16_t)~sum;
    hdr[24] = (unsigned char)(w >> 8);
    hdr[25] = (unsigned char)(w & 0xff);
    /* UDP from port 40000, no checksum (allowed over IPv4) */
    hdr[34] = 40000 >> 8;
    hdr[35] = 40000 & 0xff;
    hdr[36] = (unsigned char)(port >> 8);
    hdr[37] = (unsigned char)(port & 0xff);
    hdr[38] = (unsigned char)((frame - 34) >> 8);
    hdr[39] = (unsigned char)((frame - 34) & 0xff);
    hdr[40] = hdr[41] = 0;

    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = (int)if_nametoindex(ifname);
    if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        perror("pktgen: bind");
        exit(1);
    }
    (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
    return fd;
}

static void
usage(void)
{
    (void)fprintf(stderr,
        "usage: pktgen -d ADDR [-p PORT] [-s FRAME] [-n COUNT] [-r PPS] [-b BATCH] [-T SECS]\n"
        "              [-i IFNAME -m DSTMAC]\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    const char *dst = NULL, *ifname = NULL, *dstmac = NULL;
    unsigned char hdr[HDR_LEN];
    unsigned long port = 9000, frame = 64, count = 100000, pps = 0, batch = 0, secs = 60;
    static char bufs[BATCH_MAX][FRAME_MAX];
    static struct mmsghdr msgs[BATCH_MAX];
    static struct iovec iovs[BATCH_MAX];
    struct sockaddr_in sin;
    uint64_t start, deadline, elapsed, seq = 0, errors = 0;
    size_t payload, off0;
    int fd, ch, sndbuf = 4 << 20;
    unsigned long i;

    while ((ch = getopt(argc, argv, "d:p:s:n:r:b:T:i:m:h")) != -1) {
        switch (ch) {
        case 'd': dst = optarg; break;
        case 'p': port = parse_ul(optarg, "port", 1, 65535); break;
        case 's': frame = parse_ul(optarg, "frame size", HDR_LEN + PAYLOAD_MIN, FRAME_MAX); break;
        case 'n': count = parse_ul(optarg, "count", 1, COUNT_MAX); break;
        case 'r': pps = parse_ul(optarg, "rate", 0, 100000000UL); break;
        case 'b': batch = parse_ul(optarg, "batch", 1, BATCH_MAX); break;
        case 'T': secs = parse_ul(optarg, "seconds", 1, 3600); break;
        case 'i': ifname = optarg; break;
        case 'm': dstmac = optarg; break;
        default: usage();
        }
    }
    if (dst == NULL || optind != argc || (ifname == NULL) != (dstmac == NULL))
        usage();

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, dst, &sin.sin_addr) != 1) {
        (void)fprintf(stderr, "pktgen: not an IPv4 address: %s\n", dst);
        return 2;
    }

    /* Batch: unpaced, 64 per call; paced, about one call per 50 us (so the
     * pacing stays smooth at high rates and exact, one packet per call, at
     * low ones). */
    if (batch == 0) {
        batch = pps == 0 ? 64 : pps / 20000;
        if (batch < 1)
            batch = 1;
        if (batch > 64)
            batch = 64;
    }

    if (ifname != NULL) {
        fd = open_raw(ifname, dstmac, &sin, port, frame, hdr);
    } else {
        fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd < 0) {
            perror("pktgen: socket");
            return 1;
        }
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
            perror("pktgen: connect");
            return 1;
        }
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        (void)sigaction(SIGTERM, &sa, NULL);
        (void)sigaction(SIGINT, &sa, NULL);
    }

    /* UDP socket: the buffers are payloads; packet socket: whole frames */
    payload = frame - HDR_LEN;
    off0 = ifname != NULL ? HDR_LEN : 0;
    memset(bufs, 0, sizeof(bufs));
    for (i = 0; i < batch; i++) {
        if (ifname != NULL)
            memcpy(bufs[i], hdr, HDR_LEN);
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = off0 + payload;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    start = now_ns(CLOCK_MONOTONIC);
    deadline = start + (uint64_t)secs * 1000000000ULL;
    while (seq < count && !stopping) {
        unsigned long n = batch, off = 0;
        uint64_t ts, t;

        if (count - seq < n)
            n = (unsigned long)(count - seq);
        if (pps > 0) {
            t = start + (uint64_t)((double)seq * 1e9 / (double)pps);
            if (t > now_ns(CLOCK_MONOTONIC))
                sleep_until(t);
        }
        if (now_ns(CLOCK_MONOTONIC) > deadline) {
            (void)fprintf(stderr, "pktgen: time limit reached after %llu packets\n",
                          (unsigned long long)seq);
            break;
        }
        ts = htobe64(now_ns(CLOCK_REALTIME));
        for (i = 0; i < n; i++) {
            uint64_t s = htobe64(seq + i);

            memcpy(bufs[i] + off0, &s, 8);
            memcpy(bufs[i] + off0 + 8, &ts, 8);
        }
        while (off < n && !stopping) {
            int r = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);

            if (r < 0) {
                if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) {
                    errors++;
                    if (errors > 1000000) {
                        (void)fprintf(stderr, "pktgen: too many send errors\n");
                        goto done;
                    }
                    continue;
                }
                perror("pktgen: sendmmsg");
                goto done;
            }
            off += (unsigned long)r;
        }
        seq += off;
    }
done:
    elapsed = now_ns(CLOCK_MONOTONIC) - start;
    (void)printf("sent=%llu elapsed_ns=%llu pps=%.0f errors=%llu target_pps=%lu batch=%lu\n",
                 (unsigned long long)seq, (unsigned long long)elapsed,
                 elapsed > 0 ? (double)seq * 1e9 / (double)elapsed : 0.0,
                 (unsigned long long)errors, pps, batch);
    (void)fflush(stdout);
    (void)close(fd);
    return 0;
}
