/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit test of cnode/capture.c on a live device: as root, a capture on
 * "lo" in a libev loop sees the datagrams we send to ourselves (the
 * savefile and dead-handle tests are test_capture.c's).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "capture.h"
#include "test_capture.h"

struct live {
    unsigned port; /* UDP destination port of our datagrams */
    int packets;   /* ours seen */
    int others;    /* anything else the filter let through */
    int errors;
    int flushes;
    uint32_t caplen;
    uint32_t len;
    int timed_out;
};

static void
live_packet(struct ewp_capture *c, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    struct live *l = c->data;

    /* Ethernet, IPv4 without options, UDP to our port */
    if (h->caplen >= 14 + 20 + 8 && bytes[12] == 0x08 && bytes[13] == 0x00 &&
        bytes[14] == 0x45 && bytes[23] == 17 &&
        ((unsigned)bytes[36] << 8 | bytes[37]) == l->port) {
        l->packets++;
        l->caplen = h->caplen;
        l->len = h->len;
    } else {
        l->others++;
    }
}

static void
live_error(struct ewp_capture *c, const char *reason)
{
    struct live *l = c->data;

    (void)reason;
    l->errors++;
}

static void
live_flush(struct ewp_capture *c)
{
    struct live *l = c->data;

    l->flushes++;
}

static void
live_timeout(struct ev_loop *lp, ev_timer *w, int revents)
{
    struct live *l = w->data;

    (void)revents;
    l->timed_out = 1;
    ev_break(lp, EVBREAK_ALL);
}

static void
test_live_capture_on_lo_as_root(void)
{
    struct ewp_capture_opts o = ewp_test_capture_opts();
    struct ev_loop *loop = ewp_test_capture_loop();
    struct ewp_capture c;
    struct pcap_stat ps, ps0;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    struct live l;
    ev_timer timer;
    char err[PCAP_ERRBUF_SIZE], filter[64];
    unsigned char frame[60];
    int s, k, rv;

    /* run.c marks this test inactive (skipped, and said so) when not root:
     * reaching it without root is a failure, and so is any open error */
    CU_ASSERT_FATAL(geteuid() == 0);
    memset(&l, 0, sizeof(l));
    o.snaplen = 200;
    err[0] = '\0';
    rv = ewp_capture_open(loop, &c, "lo", &o, err, sizeof(err));
    if (rv < 0)
        fprintf(stderr, "\n  (lo: %s) ", err);
    CU_ASSERT_FATAL(rv == 0);
    CU_ASSERT(c.p != NULL && c.fd >= 0 && c.watching == 0 && c.failed == 0);
    CU_ASSERT(c.dlt == DLT_EN10MB);
    c.packet_cb = live_packet;
    c.error_cb = live_error;
    c.flush_cb = live_flush;
    c.data = &l;

    s = socket(AF_INET, SOCK_DGRAM, 0);
    CU_ASSERT_FATAL(s >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT(bind(s, (struct sockaddr *)(void *)&sin, sizeof(sin)) == 0);
    CU_ASSERT(getsockname(s, (struct sockaddr *)(void *)&sin, &slen) == 0);
    l.port = ntohs(sin.sin_port);
    (void)snprintf(filter, sizeof(filter), "udp and dst port %u", l.port);

    err[0] = '\0';
    CU_ASSERT(ewp_capture_filter(&c, filter, strlen(filter), 1, PCAP_NETMASK_UNKNOWN, err,
                                 sizeof(err)) == 0);
    err[0] = '\0';
    CU_ASSERT(ewp_capture_filter(&c, "no such thing", 13, 1, PCAP_NETMASK_UNKNOWN, err,
                                 sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');

    /* the counts from here: the filter passes only the three below */
    CU_ASSERT(ewp_capture_stats(&c, &ps0, err, sizeof(err)) == 0);

    ewp_capture_start(&c);
    CU_ASSERT(c.watching == 1);
    ewp_capture_start(&c); /* again: nothing changes */
    CU_ASSERT(c.watching == 1);

    for (k = 0; k < 3; k++)
        CU_ASSERT(sendto(s, "0123456789", 10, 0, (struct sockaddr *)(void *)&sin, sizeof(sin)) ==
                  10);
    ev_timer_init(&timer, live_timeout, 5.0, 0.0);
    timer.data = &l;
    ev_timer_start(loop, &timer);
    while (l.packets < 3 && !l.timed_out && l.errors == 0)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &timer);
    CU_ASSERT(l.timed_out == 0);
    CU_ASSERT(l.packets == 3);
    CU_ASSERT(l.errors == 0);
    CU_ASSERT(l.flushes >= 1);
    CU_ASSERT(l.caplen == 14 + 20 + 8 + 10 && l.len == 14 + 20 + 8 + 10);

    err[0] = '\0';
    CU_ASSERT(ewp_capture_stats(&c, &ps, err, sizeof(err)) == 0);
    CU_ASSERT(ps.ps_recv >= 3);
    /* each counted once: not also as it left (the outgoing copy on lo) */
    CU_ASSERT(ps.ps_recv - ps0.ps_recv == 3);
    CU_ASSERT(ps.ps_drop == ps0.ps_drop);

    /* a frame for nobody (local experimental ethertype) goes out on lo */
    memset(frame, 0, sizeof(frame));
    frame[12] = 0x88;
    frame[13] = 0xb5;
    err[0] = '\0';
    CU_ASSERT(ewp_capture_write(&c, frame, sizeof(frame), err, sizeof(err)) == 0);

    ewp_capture_stop(&c);
    CU_ASSERT(c.watching == 0);
    ewp_capture_stop(&c);
    ewp_capture_close(&c);
    CU_ASSERT(c.p == NULL);
    ewp_capture_close(&c);
    (void)close(s);
}

CU_TestInfo ewp_capture_live_tests[] = {
    {"a live capture on lo sees our datagrams (root)", test_live_capture_on_lo_as_root},
    CU_TEST_INFO_NULL,
};
