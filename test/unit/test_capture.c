/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/capture.c. Without privileges: a missing device,
 * the default device, and filter/stats/write on pcap_open_dead and on the
 * savefile test/data/udp_tcp_arp.pcap (UDP 10.0.0.1:1234 > 10.0.0.2:53,
 * TCP SYN 10.0.0.1:40000 > 10.0.0.2:80, ARP request, UDP 10.0.0.1:68 >
 * 10.0.0.255:67), read directly and through the loop (open_offline, dump).
 * The live capture on "lo" is test_capture_live.c's; both use the loop and
 * the options made here (test_capture.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define SAVEFILE "test/data/udp_tcp_arp.pcap"

int ewp_capture_suite_init(void);
int ewp_capture_suite_clean(void);

static struct ev_loop *loop;

struct ev_loop *
ewp_test_capture_loop(void)
{
    return loop;
}

int
ewp_capture_suite_init(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    return loop != NULL ? 0 : -1;
}

int
ewp_capture_suite_clean(void)
{
    if (loop != NULL)
        ev_loop_destroy(loop);
    loop = NULL;
    return 0;
}

struct ewp_capture_opts
ewp_test_capture_opts(void)
{
    struct ewp_capture_opts o;

    memset(&o, 0, sizeof(o));
    o.snaplen = 65535;
    o.immediate = 1;
    return o;
}

static void
test_open_of_a_missing_device_fails_with_a_reason(void)
{
    struct ewp_capture_opts o = ewp_test_capture_opts();
    struct ewp_capture c;
    char err[PCAP_ERRBUF_SIZE];
    char small[8];

    memset(&c, 0xa5, sizeof(c));
    err[0] = '\0';
    CU_ASSERT(ewp_capture_open(loop, &c, "ewp_nosuchdev0", &o, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    CU_ASSERT(c.p == NULL);
    CU_ASSERT(c.fd == -1);
    CU_ASSERT(c.watching == 0);

    /* the other option paths, and a short error buffer */
    o.immediate = 0;
    o.timeout_ms = 100;
    o.buffer = 1 << 20;
    o.monitor = 1;
    o.promisc = 1;
    memset(small, 'x', sizeof(small));
    CU_ASSERT(ewp_capture_open(loop, &c, "ewp_nosuchdev0", &o, small, sizeof(small)) == -1);
    CU_ASSERT(memchr(small, '\0', sizeof(small)) != NULL && small[0] != '\0');
    CU_ASSERT(c.p == NULL);

    /* stop and close of a capture that never opened do nothing */
    ewp_capture_stop(&c);
    ewp_capture_close(&c);
    CU_ASSERT(c.p == NULL);
    ewp_capture_start(&c);
    CU_ASSERT(c.watching == 0);
}

static void
test_default_dev_gives_a_device_or_a_reason(void)
{
    char dev[256], err[PCAP_ERRBUF_SIZE], tiny[2];
    int rv;

    dev[0] = err[0] = '\0';
    rv = ewp_capture_default_dev(dev, sizeof(dev), err, sizeof(err));
    CU_ASSERT(rv == 0 || rv == -1);
    if (rv == 0) {
        CU_ASSERT(dev[0] != '\0' && strlen(dev) < sizeof(dev));
    } else {
        CU_ASSERT(err[0] != '\0');
    }

    /* a device name is cut to the buffer, always terminated */
    memset(tiny, 'x', sizeof(tiny));
    err[0] = '\0';
    rv = ewp_capture_default_dev(tiny, sizeof(tiny), err, sizeof(err));
    if (rv == 0) {
        CU_ASSERT(tiny[1] == '\0' && tiny[0] == dev[0]);
    } else {
        CU_ASSERT(err[0] != '\0');
    }
}

/* A struct ewp_capture around a handle that was not made by ewp_capture_open */
static void
wrap(struct ewp_capture *c, pcap_t *p)
{
    memset(c, 0, sizeof(*c));
    c->p = p;
    c->fd = -1;
    c->loop = loop;
}

static void
test_dead_handle_filter_stats_and_write_fail_with_reasons(void)
{
    struct ewp_capture c;
    struct pcap_stat ps;
    char err[PCAP_ERRBUF_SIZE];

    wrap(&c, pcap_open_dead(DLT_EN10MB, 65535));
    CU_ASSERT_FATAL(c.p != NULL);

    /* compiles, then pcap_setfilter fails: the program is freed (valgrind) */
    err[0] = '\0';
    CU_ASSERT(ewp_capture_filter(&c, "udp", 3, 1, PCAP_NETMASK_UNKNOWN, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    /* does not compile */
    err[0] = '\0';
    CU_ASSERT(ewp_capture_filter(&c, "no such thing", 13, 1, PCAP_NETMASK_UNKNOWN, err,
                                 sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');

    err[0] = '\0';
    memset(&ps, 0x5a, sizeof(ps));
    CU_ASSERT(ewp_capture_stats(&c, &ps, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    CU_ASSERT(ps.ps_recv == 0 && ps.ps_drop == 0 && ps.ps_ifdrop == 0);

    err[0] = '\0';
    CU_ASSERT(ewp_capture_write(&c, "0123456789abcdef", 16, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    err[0] = '\0';
    CU_ASSERT(ewp_capture_write(&c, "x", (size_t)0x80000000U, err, sizeof(err)) == -1);
    CU_ASSERT(strcmp(err, "packet too large") == 0);

    ewp_capture_close(&c);
    CU_ASSERT(c.p == NULL);
    ewp_capture_close(&c);
}

/* Indices (0-based) of the savefile's packets that pass the current filter */
static unsigned
passing(pcap_t *p)
{
    struct pcap_pkthdr *h;
    const u_char *d;
    unsigned mask = 0, n = 0;

    while (pcap_next_ex(p, &h, &d) == 1) {
        /* the packets carry their index in the seconds of their timestamp */
        n = (unsigned)(h->ts.tv_sec - 1795725610);
        if (n < 32)
            mask |= 1u << n;
    }
    return mask;
}

static pcap_t *
open_savefile(void)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(SAVEFILE, err);

    if (p == NULL)
        fprintf(stderr, "\n%s: %s (run from the top directory)\n", SAVEFILE, err);
    return p;
}

static void
filter_savefile(const char *text, size_t len, int optimize, uint32_t netmask, int want_rv,
                unsigned want_mask)
{
    struct ewp_capture c;
    char err[PCAP_ERRBUF_SIZE];
    char what[200];
    int rv;

    wrap(&c, open_savefile());
    CU_ASSERT_FATAL(c.p != NULL);
    err[0] = '\0';
    rv = ewp_capture_filter(&c, text, len, optimize, netmask, err, sizeof(err));
    (void)snprintf(what, sizeof(what), "filter \"%.*s\" returns %d", (int)len, text, want_rv);
    CU_assertImplementation(rv == want_rv, __LINE__, what, __FILE__, "", CU_FALSE);
    if (rv < 0) {
        CU_ASSERT(err[0] != '\0');
    } else {
        unsigned got = passing(c.p);

        (void)snprintf(what, sizeof(what), "filter \"%.*s\" passes packets %#x, not %#x",
                       (int)len, text, want_mask, got);
        CU_assertImplementation(got == want_mask, __LINE__, what, __FILE__, "", CU_FALSE);
    }
    ewp_capture_close(&c);
}

static void
test_filter_on_a_savefile_passes_what_it_says(void)
{
    filter_savefile("udp", 3, 1, PCAP_NETMASK_UNKNOWN, 0, 0x9);
    filter_savefile("tcp", 3, 1, PCAP_NETMASK_UNKNOWN, 0, 0x2);
    filter_savefile("arp", 3, 0, PCAP_NETMASK_UNKNOWN, 0, 0x4);
    filter_savefile("", 0, 1, PCAP_NETMASK_UNKNOWN, 0, 0xf);
    filter_savefile("udp dst port 53", 15, 1, 0, 0, 0x1);
    /* only len bytes count: the text needs no NUL */
    filter_savefile("tcpdump is not a filter", 3, 1, PCAP_NETMASK_UNKNOWN, 0, 0x2);
    filter_savefile("udp or tcp", 3, 1, PCAP_NETMASK_UNKNOWN, 0, 0x9);
    /* the netmask reaches pcap_compile */
    filter_savefile("ip broadcast", 12, 1, PCAP_NETMASK_UNKNOWN, -1, 0);
    filter_savefile("ip broadcast", 12, 1, 0xffffff00U, 0, 0x8);
    filter_savefile("no such thing", 13, 1, PCAP_NETMASK_UNKNOWN, -1, 0);
    filter_savefile("udp and", 7, 1, PCAP_NETMASK_UNKNOWN, -1, 0);
}

static void
test_stats_on_a_savefile_fails_with_a_reason(void)
{
    struct ewp_capture c;
    struct pcap_stat ps;
    char err[PCAP_ERRBUF_SIZE];

    wrap(&c, open_savefile());
    CU_ASSERT_FATAL(c.p != NULL);
    err[0] = '\0';
    CU_ASSERT(ewp_capture_stats(&c, &ps, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    ewp_capture_close(&c);
}

/* ---- savefiles through the loop ---- */

struct reader {
    int packets;
    unsigned mask;
    int eofs;
    int errors;
    int timed_out;
};

static void
reader_packet(struct ewp_capture *c, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    struct reader *r = c->data;
    unsigned n = (unsigned)(h->ts.tv_sec - 1795725610);

    (void)bytes;
    r->packets++;
    if (n < 32)
        r->mask |= 1u << n;
}

static void
reader_eof(struct ewp_capture *c)
{
    struct reader *r = c->data;

    r->eofs++;
}

static void
reader_error(struct ewp_capture *c, const char *reason)
{
    struct reader *r = c->data;

    (void)reason;
    r->errors++;
}

static void
reader_timeout(struct ev_loop *lp, ev_timer *w, int revents)
{
    struct reader *r = w->data;

    (void)revents;
    r->timed_out = 1;
    ev_break(lp, EVBREAK_ALL);
}

/* Opens the savefile with ewp_capture_open_offline, ready to start */
static int
open_reader(struct ewp_capture *c, struct reader *r)
{
    char err[PCAP_ERRBUF_SIZE];

    memset(c, 0, sizeof(*c));
    memset(r, 0, sizeof(*r));
    err[0] = '\0';
    if (ewp_capture_open_offline(loop, c, open(SAVEFILE, O_RDONLY | O_CLOEXEC), 0, err,
                                 sizeof(err)) < 0) {
        fprintf(stderr, "\n%s: %s (run from the top directory)\n", SAVEFILE, err);
        return -1;
    }
    c->packet_cb = reader_packet;
    c->eof_cb = reader_eof;
    c->error_cb = reader_error;
    c->data = r;
    return 0;
}

/* Runs the loop until the end of the file (or 10 s) */
static void
read_to_eof(struct ewp_capture *c, struct reader *r)
{
    ev_timer timer;

    ewp_capture_start(c);
    ev_timer_init(&timer, reader_timeout, 10.0, 0.0);
    timer.data = r;
    ev_timer_start(loop, &timer);
    while (r->eofs == 0 && !r->timed_out && r->errors == 0)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &timer);
}

static void
test_open_offline_reads_a_savefile_to_its_end_in_the_loop(void)
{
    struct ewp_capture c;
    struct reader r;
    char err[PCAP_ERRBUF_SIZE];
    int fd;

    CU_ASSERT_FATAL(open_reader(&c, &r) == 0);
    CU_ASSERT(c.p != NULL && c.offline == 1 && c.dlt == DLT_EN10MB && c.watching == 0);
    read_to_eof(&c, &r);
    CU_ASSERT(r.timed_out == 0 && r.errors == 0);
    CU_ASSERT(r.packets == 4 && r.mask == 0xf);
    CU_ASSERT(r.eofs == 1);
    CU_ASSERT(c.watching == 0 && c.failed == 1);
    /* at its end it stays stopped */
    ewp_capture_start(&c);
    CU_ASSERT(c.watching == 0);
    ewp_capture_close(&c);
    CU_ASSERT(c.p == NULL);

    /* with a filter */
    CU_ASSERT_FATAL(open_reader(&c, &r) == 0);
    err[0] = '\0';
    CU_ASSERT(ewp_capture_filter(&c, "udp", 3, 1, PCAP_NETMASK_UNKNOWN, err, sizeof(err)) == 0);
    read_to_eof(&c, &r);
    CU_ASSERT(r.packets == 2 && r.mask == 0x9 && r.eofs == 1);
    ewp_capture_close(&c);

    /* no file (files.c found none: -1) */
    memset(&c, 0, sizeof(c));
    err[0] = '\0';
    CU_ASSERT(ewp_capture_open_offline(loop, &c, -1, 0, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    CU_ASSERT(c.p == NULL);
    ewp_capture_close(&c);
    /* not a savefile: refused, and the descriptor is closed */
    err[0] = '\0';
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(ewp_capture_open_offline(loop, &c, fd, 0, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    CU_ASSERT(c.p == NULL);
    CU_ASSERT(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
}

static void
test_dump_writes_the_packets_instead_of_calling_back(void)
{
    struct ewp_capture c;
    struct reader r;
    char path[] = "/tmp/ewp_unit_dumpXXXXXX";
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p;
    int fd;

    fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);

    CU_ASSERT_FATAL(open_reader(&c, &r) == 0);
    err[0] = '\0';
    CU_ASSERT(ewp_capture_dump_open(&c, fd, err, sizeof(err)) == 0);
    CU_ASSERT(c.dumper != NULL);
    read_to_eof(&c, &r);
    CU_ASSERT(r.eofs == 1);
    CU_ASSERT(r.packets == 0);
    CU_ASSERT(c.dumped == 4);
    ewp_capture_close(&c);
    CU_ASSERT(c.dumper == NULL && c.p == NULL);

    /* the dump holds the four packets */
    p = pcap_open_offline(path, err);
    CU_ASSERT(p != NULL);
    if (p != NULL) {
        CU_ASSERT(pcap_datalink(p) == DLT_EN10MB);
        CU_ASSERT(passing(p) == 0xf);
        pcap_close(p);
    }
    (void)unlink(path);

    /* no descriptor (files.c refused the path) */
    CU_ASSERT_FATAL(open_reader(&c, &r) == 0);
    err[0] = '\0';
    CU_ASSERT(ewp_capture_dump_open(&c, -1, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    CU_ASSERT(c.dumper == NULL);
    ewp_capture_close(&c);
}

static void
test_setprog_sets_a_program_compiled_elsewhere(void)
{
    struct bpf_program prog;
    struct ewp_capture c;
    struct reader r;
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);

    CU_ASSERT_FATAL(dead != NULL);
    CU_ASSERT_FATAL(pcap_compile(dead, &prog, "tcp", 1, PCAP_NETMASK_UNKNOWN) == 0);

    CU_ASSERT_FATAL(open_reader(&c, &r) == 0);
    err[0] = '\0';
    CU_ASSERT(ewp_capture_setprog(&c, &prog, err, sizeof(err)) == 0);
    /* a savefile's program is kept and run by the dispatch handler (so that
     * each dispatch counts records read, matched or not), not by libpcap */
    CU_ASSERT_FATAL(c.prog.bf_len == prog.bf_len);
    CU_ASSERT(memcmp(c.prog.bf_insns, prog.bf_insns, prog.bf_len * sizeof(*prog.bf_insns)) == 0);
    ewp_capture_close(&c);

    /* a handle that takes no filter: the caller still owns the program */
    wrap(&c, pcap_open_dead(DLT_EN10MB, 65535));
    CU_ASSERT_FATAL(c.p != NULL);
    err[0] = '\0';
    CU_ASSERT(ewp_capture_setprog(&c, &prog, err, sizeof(err)) == -1);
    CU_ASSERT(err[0] != '\0');
    ewp_capture_close(&c);

    pcap_freecode(&prog);
    pcap_close(dead);
}

CU_TestInfo ewp_capture_tests[] = {
    {"opening a missing device fails with a reason",
     test_open_of_a_missing_device_fails_with_a_reason},
    {"ewp_capture_default_dev gives a device or a reason",
     test_default_dev_gives_a_device_or_a_reason},
    {"filter, stats and write on a dead handle fail with reasons",
     test_dead_handle_filter_stats_and_write_fail_with_reasons},
    {"a filter on a savefile passes what it says", test_filter_on_a_savefile_passes_what_it_says},
    {"stats on a savefile fails with a reason", test_stats_on_a_savefile_fails_with_a_reason},
    {"ewp_capture_open_offline reads a savefile to its end in the loop",
     test_open_offline_reads_a_savefile_to_its_end_in_the_loop},
    {"a dump gets the packets instead of the callback",
     test_dump_writes_the_packets_instead_of_calling_back},
    {"ewp_capture_setprog sets a program compiled elsewhere",
     test_setprog_sets_a_program_compiled_elsewhere},
    CU_TEST_INFO_NULL,
};
