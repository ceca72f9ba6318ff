/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/source.c, the capture shared per device and
 * options. Without privileges: a missing device fails with a reason and
 * leaves no source to join. As root, on "lo" in a libev loop: two members
 * with the same options share one pcap_t and fd, each gets exactly the
 * datagrams its own program accepts; a paused member counts what it misses
 * while the other goes on; other options or an exclusive member get a
 * pcap_t of their own; the last member to leave closes it; an exclusive
 * member's protochain program, which the kernel refuses, runs bounded in
 * the daemon (libpcap's own run never ends on some frames).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "source.h"

struct got {
    int packets;    /* given to this member */
    int flushes;    /* dispatches that gave it packets */
    int errors;     /* error calls */
    unsigned port;  /* the UDP port its packets went to (the last) */
};

static void
got_packet(void *who, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    struct got *g = who;

    g->packets++;
    if (h->caplen >= 14 + 20 + 8)
        g->port = (unsigned)bytes[36] << 8 | bytes[37];
}

static void
got_flush(void *who)
{
    ((struct got *)who)->flushes++;
}

static void
got_error(void *who, const char *reason)
{
    (void)reason;
    ((struct got *)who)->errors++;
}

static const struct ewp_source_ops ops = {got_packet, got_flush, got_error};

static struct ewp_capture_opts
lo_opts(void)
{
    struct ewp_capture_opts o;

    memset(&o, 0, sizeof(o));
    o.snaplen = 200;
    o.timeout_ms = 1;
    o.buffer = 1 << 20;
    o.kernel_filter = "not tcp port 4369";
    return o;
}

static void
test_missing_device_fails_and_leaves_nothing(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct ewp_capture_opts o = lo_opts();
    struct ewp_source_member m;
    char err[PCAP_ERRBUF_SIZE];

    CU_ASSERT_FATAL(loop != NULL);
    memset(&m, 0xa5, sizeof(m));
    err[0] = '\0';
    CU_ASSERT(ewp_source_join(loop, &m, "ewp_nosuchdev0", &o, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    CU_ASSERT(m.src == NULL);
    CU_ASSERT(ewp_source_would_join(loop, "ewp_nosuchdev0", &o) == 0);
    /* a member in no source: every call is harmless */
    CU_ASSERT(ewp_source_pcap(&m) == NULL && ewp_source_members(&m) == 0);
    CU_ASSERT(ewp_source_other(&m) == NULL && ewp_source_share(&m) == NULL);
    CU_ASSERT(ewp_source_check(&m) == 0);
    ewp_source_start(&m);
    ewp_source_stop(&m);
    CU_ASSERT(m.active == 0);
    ewp_source_leave(&m);
    ev_loop_destroy(loop);
}

/* ---- live, on lo (root) ---- */

static int
udp_socket(struct sockaddr_in *sin)
{
    socklen_t slen = sizeof(*sin);
    int s = socket(AF_INET, SOCK_DGRAM, 0);

    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)(void *)sin, sizeof(*sin)) < 0 ||
        getsockname(s, (struct sockaddr *)(void *)sin, &slen) < 0)
        return -1;
    return s;
}

/* "udp dst port P" compiled as source.c's members' are: a dead handle */
static void
set_port_prog(struct ewp_source_member *m, unsigned port)
{
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 200);
    struct bpf_program prog;
    char text[64], err[PCAP_ERRBUF_SIZE];

    CU_ASSERT_FATAL(dead != NULL);
    (void)snprintf(text, sizeof(text), "udp dst port %u", port);
    CU_ASSERT_FATAL(pcap_compile(dead, &prog, text, 1, PCAP_NETMASK_UNKNOWN) == 0);
    CU_ASSERT(ewp_source_setprog(m, &prog, err, sizeof(err)) == 0);
    pcap_freecode(&prog);
    pcap_close(dead);
}

static void
stop_cb(struct ev_loop *lp, ev_timer *w, int revents)
{
    (void)revents;
    *(int *)w->data = 1;
    ev_break(lp, EVBREAK_ALL);
}

/* Runs the loop until *count reaches want or 5 s pass */
static void
run_until(struct ev_loop *loop, const int *count, int want)
{
    ev_timer timer;
    int timed_out = 0;

    ev_now_update(loop); /* 5 s from now, not from the loop's last time */
    ev_timer_init(&timer, stop_cb, 5.0, 0.0);
    timer.data = &timed_out;
    ev_timer_start(loop, &timer);
    while (*count < want && !timed_out)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &timer);
}

static void
send_n(int s, const struct sockaddr_in *to, int n)
{
    int k;

    for (k = 0; k < n; k++)
        CU_ASSERT(sendto(s, "0123456789", 10, 0, (const struct sockaddr *)(const void *)to,
                         sizeof(*to)) == 10);
}

static void
test_members_share_one_pcap_and_get_their_own_as_root(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct ewp_capture_opts o = lo_opts(), other = lo_opts(), excl = lo_opts();
    struct ewp_source_member a, b, c, d;
    struct got ga, gb;
    struct sockaddr_in ta, tb;
    struct pcap_stat ps;
    char err[PCAP_ERRBUF_SIZE], kernel[96];
    int sa, sb;

    CU_ASSERT_FATAL(geteuid() == 0 && loop != NULL);
    memset(&ga, 0, sizeof(ga));
    memset(&gb, 0, sizeof(gb));
    a.ops = b.ops = c.ops = d.ops = &ops;
    a.who = &ga;
    b.who = &gb;
    c.who = d.who = NULL;
    sa = udp_socket(&ta);
    sb = udp_socket(&tb);
    CU_ASSERT_FATAL(sa >= 0 && sb >= 0);
    /* the ring's own filter keeps the rest of lo's traffic (other tests
     * on this machine) out of its small buffer */
    (void)snprintf(kernel, sizeof(kernel), "udp and (dst port %u or dst port %u)",
                   ntohs(ta.sin_port), ntohs(tb.sin_port));
    o.kernel_filter = other.kernel_filter = excl.kernel_filter = kernel;

    CU_ASSERT(ewp_source_would_join(loop, "lo", &o) == 0);
    CU_ASSERT_FATAL(ewp_source_join(loop, &a, "lo", &o, err, sizeof(err)) == 0);
    CU_ASSERT(ewp_source_would_join(loop, "lo", &o) == 1);
    CU_ASSERT_FATAL(ewp_source_join(loop, &b, "lo", &o, err, sizeof(err)) == 0);
    CU_ASSERT(a.src == b.src && ewp_source_pcap(&a) == ewp_source_pcap(&b));
    CU_ASSERT(ewp_source_members(&a) == 2);
    CU_ASSERT(ewp_source_other(&a) == &b && ewp_source_other(&b) == &a);
    CU_ASSERT(ewp_source_share(&a) == NULL); /* shared: dead-handle compiles */

    /* another snaplen, or exclusive: a pcap_t of its own */
    other.snaplen = 100;
    excl.exclusive = 1;
    CU_ASSERT(ewp_source_would_join(loop, "lo", &other) == 0);
    CU_ASSERT(ewp_source_would_join(loop, "lo", &excl) == 0);
    CU_ASSERT_FATAL(ewp_source_join(loop, &c, "lo", &other, err, sizeof(err)) == 0);
    CU_ASSERT_FATAL(ewp_source_join(loop, &d, "lo", &excl, err, sizeof(err)) == 0);
    CU_ASSERT(c.src != a.src && d.src != a.src && d.src != c.src);
    CU_ASSERT(ewp_source_exclusive(&d) && !ewp_source_exclusive(&a));
    ewp_source_leave(&c);
    ewp_source_leave(&d);
    CU_ASSERT(c.src == NULL && d.src == NULL);

    set_port_prog(&a, ntohs(ta.sin_port));
    set_port_prog(&b, ntohs(tb.sin_port));
    ewp_source_start(&a);
    ewp_source_start(&b);
    CU_ASSERT(a.active && b.active);

    /* each gets exactly its own */
    send_n(sa, &ta, 3);
    send_n(sb, &tb, 2);
    run_until(loop, &ga.packets, 3);
    run_until(loop, &gb.packets, 2);
    CU_ASSERT(ga.packets == 3 && ga.port == ntohs(ta.sin_port));
    CU_ASSERT(gb.packets == 2 && gb.port == ntohs(tb.sin_port));
    CU_ASSERT(ga.flushes >= 1 && gb.flushes >= 1 && ga.errors == 0);
    CU_ASSERT(ewp_source_stats(&a, &ps, err, sizeof(err)) == 0);
    CU_ASSERT(ps.ps_recv == 3 && ps.ps_drop == 0);

    /* a paused: b goes on, a's packets are missed and counted as drops */
    ewp_source_stop(&a);
    CU_ASSERT(!a.active && b.active);
    send_n(sa, &ta, 4);
    send_n(sb, &tb, 1);
    run_until(loop, &gb.packets, 3);
    CU_ASSERT(gb.packets == 3);
    CU_ASSERT(ga.packets == 3);
    CU_ASSERT(ewp_source_stats(&a, &ps, err, sizeof(err)) == 0);
    CU_ASSERT(ps.ps_recv == 7 && ps.ps_drop == 4);
    CU_ASSERT(ewp_source_stats(&b, &ps, err, sizeof(err)) == 0);
    CU_ASSERT(ps.ps_recv == 3 && ps.ps_drop == 0);

    /* b leaves: a is the last, resumes and reads */
    ewp_source_leave(&b);
    CU_ASSERT(ewp_source_members(&a) == 1 && ewp_source_other(&a) == NULL);
    ewp_source_start(&a);
    send_n(sa, &ta, 1);
    run_until(loop, &ga.packets, 4);
    CU_ASSERT(ga.packets == 4);
    ewp_source_leave(&a);
    CU_ASSERT(a.src == NULL);
    CU_ASSERT(ewp_source_would_join(loop, "lo", &o) == 0);
    (void)close(sa);
    (void)close(sb);
    ev_loop_destroy(loop);
}

/* An Ethernet frame of IPv6 on lo with next header nh; ah: an AH header
 * after it that names AH again with a length leading back to itself */
static void
inject_ipv6(pcap_t *p, uint8_t nh, int ah)
{
    unsigned char f[128];

    memset(f, 0, sizeof(f));
    f[12] = 0x86;
    f[13] = 0xdd;
    f[14] = 0x60;
    f[19] = sizeof(f) - 54;
    f[20] = nh;
    if (ah) {
        f[54] = 51;
        f[55] = 8; /* libpcap's AH step: X = (8 + 2) * 4, the same again */
    }
    CU_ASSERT(pcap_inject(p, f, sizeof(f)) == (int)sizeof(f));
}

/* In a child: an exclusive member with `ip6 protochain 6' gets the frame
 * on which libpcap's interpreter never ends, then one its program
 * accepts; exits 0 when it got the second alone */
static void
child_exclusive_protochain(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct ewp_capture_opts o = lo_opts();
    struct ewp_source_member m;
    struct bpf_program prog;
    struct got g;
    char err[PCAP_ERRBUF_SIZE];
    int ok;

    (void)alarm(20);
    memset(&g, 0, sizeof(g));
    m.ops = &ops;
    m.who = &g;
    o.exclusive = 1;
    o.buffer = 8 << 20; /* its kernel passes all of lo's traffic */
    if (loop == NULL || ewp_source_join(loop, &m, "lo", &o, err, sizeof(err)) < 0 ||
        pcap_compile(ewp_source_pcap(&m), &prog, "ip6 protochain 6", 1,
                     PCAP_NETMASK_UNKNOWN) < 0)
        _exit(2);
    ok = ewp_source_setprog(&m, &prog, err, sizeof(err)) == 0;
    pcap_freecode(&prog);
    ewp_source_start(&m);
    inject_ipv6(ewp_source_pcap(&m), 51, 1);
    inject_ipv6(ewp_source_pcap(&m), 6, 0);
    run_until(loop, &g.packets, 1);
    ewp_source_leave(&m); /* nothing left for valgrind's count */
    ev_loop_destroy(loop);
    _exit(ok && g.packets == 1 && g.errors == 0 ? 0 : 3);
}

static void
test_exclusive_protochain_loop_as_root(void)
{
    pid_t pid;
    int status = 0;

    CU_ASSERT_FATAL(geteuid() == 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        child_exclusive_protochain();
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    CU_ASSERT(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM); /* a hang */
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

CU_TestInfo ewp_source_tests[] = {
    {"joining a missing device fails and leaves nothing",
     test_missing_device_fails_and_leaves_nothing},
    {"members share one pcap_t and get their own (root)",
     test_members_share_one_pcap_and_get_their_own_as_root},
    {"an exclusive member's protochain on a frame where libpcap loops (root)",
     test_exclusive_protochain_loop_as_root},
    CU_TEST_INFO_NULL,
};
