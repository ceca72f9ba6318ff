/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * pktgen: a bounded UDP packet generator for `make bench`.
 *
 *   pktgen -d ADDR [-p PORT] [-s FRAME] [-n COUNT] [-r PPS] [-b BATCH] [-T SECS]
 *
 * Sends COUNT UDP datagrams to ADDR:PORT with sendmmsg(2), BATCH messages
 * per call. FRAME is the size of the frame a capture on the receiving veth
 * sees (Ethernet 14 + IPv4 20 + UDP 8 + payload), 58..1514 bytes. The
 * payload starts with the sequence number and the send time (CLOCK_REALTIME,
 * ns), both 64-bit big-endian, taken just before the sendmmsg that carries
 * the packet. With -r the sending is paced to PPS packets per second
 * (absolute deadlines on CLOCK_MONOTONIC, so a late batch is followed at
 * once by the next); without it (or -r 0) it sends as fast as it can.
 *
 * It stops after COUNT packets or SECS seconds (default 60), whichever
 * comes first, and prints one line of key=value pairs:
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
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN 42        /* Ethernet + IPv4 + UDP headers, as captured */
#define PAYLOAD_MIN 16    /* sequence number + timestamp */
#define FRAME_MAX 1514
#define BATCH_MAX 1024
#define COUNT_MAX 100000000UL

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

static void
usage(void)
{
    (void)fprintf(stderr,
        "usage: pktgen -d ADDR [-p PORT] [-s FRAME] [-n COUNT] [-r PPS] [-b BATCH] [-T SECS]\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    const char *dst = NULL;
    unsigned long port = 9000, frame = 64, count = 100000, pps = 0, batch = 0, secs = 60;
    static char bufs[BATCH_MAX][FRAME_MAX];
    static struct mmsghdr msgs[BATCH_MAX];
    static struct iovec iovs[BATCH_MAX];
    struct sockaddr_in sin;
    uint64_t start, deadline, elapsed, seq = 0, errors = 0;
    size_t payload;
    int fd, ch, sndbuf = 4 << 20;
    unsigned long i;

    while ((ch = getopt(argc, argv, "d:p:s:n:r:b:T:h")) != -1) {
        switch (ch) {
        case 'd': dst = optarg; break;
        case 'p': port = parse_ul(optarg, "port", 1, 65535); break;
        case 's': frame = parse_ul(optarg, "frame size", HDR_LEN + PAYLOAD_MIN, FRAME_MAX); break;
        case 'n': count = parse_ul(optarg, "count", 1, COUNT_MAX); break;
        case 'r': pps = parse_ul(optarg, "rate", 0, 100000000UL); break;
        case 'b': batch = parse_ul(optarg, "batch", 1, BATCH_MAX); break;
        case 'T': secs = parse_ul(optarg, "seconds", 1, 3600); break;
        default: usage();
        }
    }
    if (dst == NULL || optind != argc)
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

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("pktgen: socket");
        return 1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        perror("pktgen: connect");
        return 1;
    }
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    payload = frame - HDR_LEN;
    memset(bufs, 0, sizeof(bufs));
    for (i = 0; i < batch; i++) {
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = payload;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    start = now_ns(CLOCK_MONOTONIC);
    deadline = start + (uint64_t)secs * 1000000000ULL;
    while (seq < count) {
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

            memcpy(bufs[i], &s, 8);
            memcpy(bufs[i] + 8, &ts, 8);
        }
        while (off < n) {
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
        seq += n;
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
