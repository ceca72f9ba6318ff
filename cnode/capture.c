/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A handle's capture. A live one is a member of a shared source
 * (source.c: one pcap_t per device and options, its fd in the loop, each
 * member's filter run there); this file gives each member its own
 * callbacks, its {dump, Path} and the per-handle calls, and refuses a
 * shared member a filter of the kernel's metadata ({share, false} gets a
 * source of its own, whose filter the kernel runs). A savefile has a
 * pcap_t of its own, read from a timer in chunks of FILE_CHUNK records so
 * that one file never starves the other clients, its filter run here.
 * pcap_loop is never used: it does not return on buffer timeouts and would
 * block every other client.
 */
#include <errno.h>
#include <stdio.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "capture.h"
#include "demux.h"
#include "log.h"
#include "source.h"

#define FILE_INTERVAL 1e-4  /* seconds between two chunks of a savefile */
#define FILE_CHUNK 256      /* packets of a savefile read per chunk */

/* Linux's SKF_AD_OFF (linux/filter.h) as BPF's unsigned k: a load at
 * k >= it reads the kernel's packet metadata (the packet type of
 * inbound/outbound, ifindex, the VLAN tag, ...), not the packet */
#define SKF_AD_OFF_K 0xfffff000u

/* Why a shared capture refuses such a program */
static const char needs_own_capture[] =
    "inbound, outbound, ifindex and other filters of kernel metadata need a capture of its "
    "own: open with {share, false}";

static void reset(struct ev_loop *loop, struct ewp_capture *c, int offline);
static int reads_metadata(const struct bpf_program *prog);
static void member_packet(void *who, const struct pcap_pkthdr *h, const unsigned char *bytes);
static void member_flush(void *who);
static void member_error(void *who, const char *reason);
static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void dispatch(struct ewp_capture *c);
static void handler(unsigned char *user, const struct pcap_pkthdr *h,
                    const unsigned char *bytes);

static const struct ewp_source_ops member_ops = {member_packet, member_flush, member_error};

/*
 * A live capture: a member of the source of (dev, o), which is activated
 * here when it is the first (see source.h). Returns:
 *  0 - ready, datalink read; not yet reading (see ewp_capture_start)
 * -1 - error in errbuf; nothing stays open
 */
int
ewp_capture_open(struct ev_loop *loop, struct ewp_capture *c, const char *dev,
                 const struct ewp_capture_opts *o, char *errbuf, size_t errlen)
{
    reset(loop, c, 0);
    c->member.ops = &member_ops;
    c->member.who = c;
    if (ewp_source_join(loop, &c->member, dev, o, errbuf, errlen) < 0)
        return -1;
    c->p = ewp_source_pcap(&c->member);
    c->device = dev;
    c->dlt = pcap_datalink(c->p);
    c->fd = pcap_get_selectable_fd(c->p);
    return 0;
}

/* Would an open of (dev, o) join a capture already open (costing no new
 * kernel ring)? */
int
ewp_capture_joins(struct ev_loop *loop, const char *dev, const struct ewp_capture_opts *o)
{
    return ewp_source_would_join(loop, dev, o);
}

/* Another capture sharing c's pcap_t, or NULL */
struct ewp_capture *
ewp_capture_other(const struct ewp_capture *c)
{
    const struct ewp_source_member *m = ewp_source_other(&c->member);

    return m != NULL ? m->who : NULL;
}

/* A savefile (fd, opened by files.c; ours from now on, closed on error
 * too), its stamps in nanoseconds when nano, read in chunks of FILE_CHUNK
 * records from a timer so that one file never starves the other clients;
 * eof_cb at its end. */
int
ewp_capture_open_offline(struct ev_loop *loop, struct ewp_capture *c, int fd,
                         int nano, char *errbuf, size_t errlen)
{
    char pcap_err[PCAP_ERRBUF_SIZE];
    FILE *fp;

    reset(loop, c, 1);
    fp = fdopen(fd, "rb");
    if (fp == NULL) {
        (void)snprintf(errbuf, errlen, "%s", strerror(errno));
        (void)close(fd);
        return -1;
    }
    pcap_err[0] = '\0';
    /* libpcap scales the file's stamps (micro, nano, pcapng's if_tsresol)
     * to the precision asked for */
    c->p = pcap_fopen_offline_with_tstamp_precision(
        fp, nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO, pcap_err);
    if (c->p == NULL) {
        (void)snprintf(errbuf, errlen, "%s", pcap_err);
        (void)fclose(fp);
        return -1;
    }
    c->dlt = pcap_datalink(c->p);
    ev_timer_init(&c->timer, poll_cb, 0., FILE_INTERVAL);
    c->timer.data = c;
    return 0;
}

/* {dump, Path}: captured packets are written to a savefile on this host
 * instead of being sent to the owner (its source is exclusive: see
 * request.c). fd (opened by files.c) is ours from now on, closed on error
 * too. */
int
ewp_capture_dump_open(struct ewp_capture *c, int fd, char *errbuf, size_t errlen)
{
    FILE *fp = fdopen(fd, "wb");

    if (fp == NULL) {
        (void)snprintf(errbuf, errlen, "%s", strerror(errno));
        (void)close(fd);
        return -1;
    }
    c->dumper = pcap_dump_fopen(c->p, fp);
    if (c->dumper == NULL) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(c->p));
        (void)fclose(fp);
        return -1;
    }
    return 0;
}

/* Compile and set a filter (in the loop: tests, and what compiles at
 * once). A member of a shared source compiles against a dead handle of
 * its link type, as compile.c's jobs do for it (source.c says why). The
 * compiled program is freed on every path (the original leaked it when
 * pcap_setfilter failed). */
int
ewp_capture_filter(struct ewp_capture *c, const char *filter, size_t len, int optimize,
                   uint32_t netmask, char *errbuf, size_t errlen)
{
    struct bpf_program fp;
    pcap_t *dead = NULL, *cp = c->p;
    char *text;
    int rv;

    text = malloc(len + 1);
    if (text == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    memcpy(text, filter, len);
    text[len] = '\0';
    if (c->member.src != NULL && !ewp_source_exclusive(&c->member)) {
        dead = pcap_open_dead(c->dlt, pcap_snapshot(c->p));
        if (dead == NULL) {
            (void)snprintf(errbuf, errlen, "out of memory");
            free(text);
            return -1;
        }
        cp = dead;
    }
    if (pcap_compile(cp, &fp, text, optimize, netmask) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(cp));
        rv = -1;
    } else {
        rv = ewp_capture_setprog(c, &fp, errbuf, errlen);
        pcap_freecode(&fp);
    }
    if (dead != NULL)
        pcap_close(dead);
    free(text);
    return rv;
}

/*
 * Set a program compiled elsewhere (compile.c); the caller frees it. A
 * live capture's goes to its source (demux.h: run on every packet the
 * shared ring reads; an exclusive source's is its kernel filter). A
 * shared one refuses a program that reads the kernel's metadata: there it
 * would run on libpcap's bytes, where such a load matches nothing. A
 * savefile's program is kept and run by handler, not given to libpcap:
 * libpcap's offline read counts only the records that match, so a filter
 * that matches nothing would read the whole file in one pcap_dispatch,
 * stalling the loop; this way each dispatch reads FILE_CHUNK records.
 */
int
ewp_capture_setprog(struct ewp_capture *c, struct bpf_program *prog, char *errbuf,
                    size_t errlen)
{
    if (c->offline) {
        struct bpf_insn *insns = NULL;

        if (prog->bf_len > 0) {
            insns = calloc(prog->bf_len, sizeof(*insns));
            if (insns == NULL) {
                (void)snprintf(errbuf, errlen, "out of memory");
                return -1;
            }
            memcpy(insns, prog->bf_insns, prog->bf_len * sizeof(*insns));
        }
        free(c->prog.bf_insns);
        c->prog.bf_insns = insns;
        c->prog.bf_len = prog->bf_len;
        c->prog_loops = prog->bf_len > 0 && ewp_demux_loops(prog);
        return 0;
    }
    if (c->member.src != NULL && !ewp_source_exclusive(&c->member) &&
        reads_metadata(prog)) {
        (void)snprintf(errbuf, errlen, "%s", needs_own_capture);
        return -1;
    }
    if (c->member.src != NULL)
        return ewp_source_setprog(&c->member, prog, errbuf, errlen);
    if (pcap_setfilter(c->p, prog) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(c->p));
        return -1;
    }
    return 0;
}

/* A packet sent on the device (the shared pcap_t) */
int
ewp_capture_write(struct ewp_capture *c, const void *buf, size_t len, char *errbuf,
                  size_t errlen)
{
    if (len == 0) { /* libpcap's own text, without a stale errno after it */
        (void)snprintf(errbuf, errlen, "The number of bytes to be sent must be positive");
        return -1;
    }
    if (len > (size_t)0x7fffffff) {
        (void)snprintf(errbuf, errlen, "packet too large");
        return -1;
    }
    if (pcap_sendpacket(c->p, buf, (int)len) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(c->p));
        return -1;
    }
    return 0;
}

/* The capture's counts: a live capture's are its own share of its
 * source's (ewp_source_stats) */
int
ewp_capture_stats(struct ewp_capture *c, struct pcap_stat *ps, char *errbuf, size_t errlen)
{
    if (c->member.src != NULL)
        return ewp_source_stats(&c->member, ps, errbuf, errlen);
    memset(ps, 0, sizeof(*ps));
    if (pcap_stats(c->p, ps) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(c->p));
        return -1;
    }
    return 0;
}

/*
 * Is the interface still there? Checked from a timer (request.c, through
 * deliver.c): libpcap reports a vanished interface only when it reads the
 * socket. Returns -1 (and calls error_cb once) when the interface is gone;
 * for a live capture the source tells every member at once.
 */
int
ewp_capture_check(struct ewp_capture *c)
{
    unsigned idx;

    if (c->p == NULL || c->failed || c->offline)
        return 0;
    if (c->member.src != NULL)
        return ewp_source_check(&c->member);
    if (c->ifindex == 0 || c->device == NULL)
        return 0;
    idx = if_nametoindex(c->device);
    if (idx == c->ifindex || (idx == 0 && (errno == EMFILE || errno == ENFILE)))
        return 0; /* there; or we cannot tell (out of descriptors): it stays */
    ewp_capture_stop(c);
    member_error(c, "The interface disappeared");
    return -1;
}

/* Read (again). A failed capture stays stopped. */
void
ewp_capture_start(struct ewp_capture *c)
{
    if (c->p == NULL || c->watching || c->failed)
        return;
    if (c->member.src != NULL) {
        ewp_source_start(&c->member);
        c->watching = c->member.active;
        return;
    }
    ev_timer_start(c->loop, &c->timer);
    c->watching = 1;
}

/* Stop reading. Stopped from a packet callback (the node's output buffer
 * is full): a savefile's chunk ends there; a live capture's packets from
 * now on are missed (its source reads on for the others, or, when none
 * reads, leaves the rest in the ring, libpcap resuming in the middle of
 * the block at the next dispatch). */
void
ewp_capture_stop(struct ewp_capture *c)
{
    if (c->member.src != NULL) {
        ewp_source_stop(&c->member);
        c->watching = 0;
        return;
    }
    if (c->dispatching && c->p != NULL)
        pcap_breakloop(c->p);
    if (!c->watching)
        return;
    ev_timer_stop(c->loop, &c->timer);
    c->watching = 0;
}

void
ewp_capture_close(struct ewp_capture *c)
{
    ewp_capture_stop(c);
    if (c->dumper != NULL)
        pcap_dump_close(c->dumper);
    c->dumper = NULL;
    if (c->member.src != NULL)
        ewp_source_leave(&c->member); /* the last one closes the pcap_t */
    else if (c->share != NULL)
        ewp_pcapshare_close(c->share); /* now, or after a running compile */
    else if (c->p != NULL)
        pcap_close(c->p);
    c->share = NULL;
    c->p = NULL;
    free(c->prog.bf_insns);
    c->prog.bf_insns = NULL;
    c->prog.bf_len = 0;
}

/* A reference to c's pcap_t for a compile job (pcapshare.h), or NULL: the
 * job compiles against a dead handle (closed; out of memory; a member of
 * a shared source, see source.c) */
struct ewp_pcapshare *
ewp_capture_share(struct ewp_capture *c)
{
    if (c->p == NULL)
        return NULL;
    if (c->member.src != NULL)
        return ewp_source_share(&c->member);
    if (c->share == NULL && (c->share = ewp_pcapshare_new(c->p)) == NULL)
        return NULL;
    return ewp_pcapshare_ref(c->share);
}

/* The first device of pcap_findalldevs, as the original's dev/0. The device
 * list is freed (the original leaked it). */
int
ewp_capture_default_dev(char *dev, size_t devlen, char *errbuf, size_t errlen)
{
    char pcap_err[PCAP_ERRBUF_SIZE];
    pcap_if_t *alldevs = NULL;

    pcap_err[0] = '\0';
    if (pcap_findalldevs(&alldevs, pcap_err) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_err);
        return -1;
    }
    if (alldevs == NULL) {
        (void)snprintf(errbuf, errlen, "no suitable device found");
        return -1;
    }
    (void)snprintf(dev, devlen, "%s", alldevs->name);
    pcap_freealldevs(alldevs);
    return 0;
}

static void
reset(struct ev_loop *loop, struct ewp_capture *c, int offline)
{
    memset(&c->io, 0, sizeof(c->io));
    memset(&c->member, 0, sizeof(c->member));
    c->p = NULL;
    c->loop = loop;
    c->fd = -1;
    c->watching = 0;
    c->dispatching = 0;
    c->failed = 0;
    c->offline = offline;
    c->prog.bf_insns = NULL;
    c->prog.bf_len = 0;
    c->dumper = NULL;
    c->share = NULL;
    c->ifindex = 0;
}

/* Does prog load from the kernel's metadata (a Linux ancillary load:
 * BPF_LD or BPF_LDX, BPF_ABS or BPF_IND, at k >= SKF_AD_OFF)? */
static int
reads_metadata(const struct bpf_program *prog)
{
    u_int i;

    for (i = 0; prog->bf_insns != NULL && i < prog->bf_len; i++) {
        const struct bpf_insn *in = &prog->bf_insns[i];

        if ((BPF_CLASS(in->code) == BPF_LD || BPF_CLASS(in->code) == BPF_LDX) &&
            (BPF_MODE(in->code) == BPF_ABS || BPF_MODE(in->code) == BPF_IND) &&
            in->k >= SKF_AD_OFF_K)
            return 1;
    }
    return 0;
}

/* A packet of the source that this capture's filter accepts */
static void
member_packet(void *who, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    handler(who, h, bytes);
}

/* After a dispatch that gave it packets: the open batch, the dump */
static void
member_flush(void *who)
{
    struct ewp_capture *c = who;

    if (c->dumper != NULL)
        (void)pcap_dump_flush(c->dumper);
    if (c->flush_cb != NULL)
        c->flush_cb(c);
}

/* The capture is over (read error, interface gone): stays stopped */
static void
member_error(void *who, const char *reason)
{
    struct ewp_capture *c = who;

    c->watching = 0;
    c->failed = 1;
    if (c->error_cb != NULL)
        c->error_cb(c, reason);
}

static void
poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    dispatch(w->data);
}

/* A chunk of a savefile */
static void
dispatch(struct ewp_capture *c)
{
    int n;

    if (c->p == NULL)
        return;
    c->dispatching = 1;
    n = pcap_dispatch(c->p, FILE_CHUNK, handler, (unsigned char *)c);
    c->dispatching = 0;
    if (c->flush_cb != NULL)
        c->flush_cb(c);
    if (n == 0 && c->offline) {
        ewp_capture_stop(c);
        c->failed = 1; /* nothing more to read: stays stopped */
        if (c->eof_cb != NULL)
            c->eof_cb(c);
        return;
    }
    if (n == PCAP_ERROR) {
        char reason[PCAP_ERRBUF_SIZE];

        (void)snprintf(reason, sizeof(reason), "%s", pcap_geterr(c->p));
        ewp_capture_stop(c);
        member_error(c, reason);
    }
}

static void
handler(unsigned char *user, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    struct ewp_capture *c = (struct ewp_capture *)user;

    /* libpcap's interpreter may never end on a program that jumps
     * backward (ip6 protochain on an AH header naming itself): ours, with
     * a bound of steps, runs those (demux_loop.c) */
    if (c->offline && c->prog.bf_len > 0 &&
        (c->prog_loops ? ewp_demux_run_one(&c->prog, h, bytes)
                       : pcap_offline_filter(&c->prog, h, bytes)) == 0)
        return; /* read, counted by pcap_dispatch, not matched */
    if (c->dumper != NULL) {
        pcap_dump((unsigned char *)c->dumper, h, bytes);
        c->dumped++;
        return;
    }
    c->packet_cb(c, h, bytes);
}
