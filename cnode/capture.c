/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * libpcap driven from libev. The handle is non-blocking; its selectable fd
 * goes into the loop and each readiness runs pcap_dispatch(p, -1, ...),
 * which on Linux hands over what the ring holds and returns. pcap_loop is
 * never used: it does not return on buffer timeouts and would block every
 * other client. Where there is no selectable fd, or libpcap asks for a
 * select timeout, a timer polls instead.
 *
 * Activation warnings (PCAP_WARNING_*: promiscuous mode not supported, ...)
 * are not errors here, unlike in the original ewpcap NIF: the capture works,
 * so we log the warning and go on.
 */
#include <errno.h>
#include <stdio.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "capture.h"
#include "log.h"

#define POLL_INTERVAL 0.01  /* seconds, for handles without a selectable fd */
#define FILE_INTERVAL 1e-4  /* seconds between two chunks of a savefile */
#define FILE_CHUNK 256      /* packets of a savefile read per chunk */

static void readable_cb(struct ev_loop *loop, ev_io *w, int revents);
static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void dispatch(struct ewp_capture *c);
static void handler(unsigned char *user, const struct pcap_pkthdr *h,
                    const unsigned char *bytes);
static void set_error(pcap_t *p, int status, char *errbuf, size_t errlen);
static int ifindex_of(struct ewp_capture *c);
static void ignore_outgoing_on_loopback(struct ewp_capture *c);
static int socket_error(struct ewp_capture *c, char *reason, size_t len);

/*
 * Returns:
 *  0 - activated, non-blocking, datalink read; not yet watched (see
 *      ewp_capture_start)
 * -1 - error in errbuf; nothing stays open
 */
int
ewp_capture_open(struct ev_loop *loop, struct ewp_capture *c, const char *dev,
                 const struct ewp_capture_opts *o, char *errbuf, size_t errlen)
{
    char pcap_err[PCAP_ERRBUF_SIZE];
    const struct timeval *tmo;
    pcap_t *p;
    int status;

    memset(&c->io, 0, sizeof(c->io));
    c->p = NULL;
    c->loop = loop;
    c->fd = -1;
    c->watching = 0;
    c->dispatching = 0;
    c->failed = 0;
    c->offline = 0;
    c->prog.bf_insns = NULL;
    c->prog.bf_len = 0;
    c->dumper = NULL;
    c->share = NULL;

    pcap_err[0] = '\0';
    p = pcap_create(dev, pcap_err);
    if (p == NULL) {
        (void)snprintf(errbuf, errlen, "%s", pcap_err);
        return -1;
    }

    if ((status = pcap_set_snaplen(p, o->snaplen)) != 0)
        goto err;
    if ((status = pcap_set_promisc(p, o->promisc)) != 0)
        goto err;
    if ((status = pcap_set_immediate_mode(p, o->immediate)) != 0)
        goto err;
    if (!o->immediate && (status = pcap_set_timeout(p, o->timeout_ms)) != 0)
        goto err;
    if (o->buffer > 0 && (status = pcap_set_buffer_size(p, o->buffer)) != 0)
        goto err;
    if (o->monitor && pcap_can_set_rfmon(p) == 1 && (status = pcap_set_rfmon(p, 1)) != 0)
        goto err;
    /* PCAP_ERROR_TSTAMP_PRECISION_NOTSUP when the device cannot: set_error
     * gives pcap_statustostr's text ("That device doesn't support that time
     * stamp precision"), the open fails with it */
    if (o->nano &&
        (status = pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO)) != 0)
        goto err;

    status = pcap_activate(p);
    if (status < 0)
        goto err;
    if (status > 0)
        EWP_LOG(1, "%s: warning: %s: %s", dev, pcap_statustostr(status), pcap_geterr(p));

    if (pcap_setnonblock(p, 1, pcap_err) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_err);
        pcap_close(p);
        return -1;
    }

    c->p = p;
    c->device = dev;
    c->ifindex = if_nametoindex(dev);
    c->dlt = pcap_datalink(p);
    c->fd = pcap_get_selectable_fd(p);
    ignore_outgoing_on_loopback(c);
    tmo = pcap_get_required_select_timeout(p);
    ev_io_init(&c->io, readable_cb, c->fd < 0 ? 0 : c->fd, EV_READ);
    c->io.data = c;
    ev_timer_init(&c->timer, poll_cb, POLL_INTERVAL,
                  tmo != NULL ? (double)tmo->tv_sec + tmo->tv_usec / 1e6 : POLL_INTERVAL);
    c->timer.data = c;
    return 0;

err:
    set_error(p, status, errbuf, errlen);
    pcap_close(p);
    return -1;
}

/* A savefile (fd, opened by files.c; ours from now on, closed on error
 * too), its stamps in nanoseconds when nano, read in chunks of FILE_CHUNK records from a timer so that one
 * file never starves the other clients; eof_cb at its end. */
int
ewp_capture_open_offline(struct ev_loop *loop, struct ewp_capture *c, int fd,
                         int nano, char *errbuf, size_t errlen)
{
    char pcap_err[PCAP_ERRBUF_SIZE];
    FILE *fp;

    memset(&c->io, 0, sizeof(c->io));
    c->p = NULL;
    c->loop = loop;
    c->fd = -1;
    c->watching = 0;
    c->dispatching = 0;
    c->failed = 0;
    c->offline = 1;
    c->prog.bf_insns = NULL;
    c->prog.bf_len = 0;
    c->dumper = NULL;
    c->share = NULL;
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
    ev_io_init(&c->io, readable_cb, 0, EV_READ);
    c->io.data = c;
    ev_timer_init(&c->timer, poll_cb, 0., FILE_INTERVAL);
    c->timer.data = c;
    return 0;
}

/* {dump, Path}: captured packets are written to a savefile on this host
 * instead of being sent to the owner. fd (opened by files.c) is ours from
 * now on, closed on error too. */
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

/* Compile and set a filter. The compiled program is freed on every path
 * (the original leaked it when pcap_setfilter failed). */
int
ewp_capture_filter(struct ewp_capture *c, const char *filter, size_t len, int optimize,
                   uint32_t netmask, char *errbuf, size_t errlen)
{
    struct bpf_program fp;
    char *text;
    int rv = 0;

    text = malloc(len + 1);
    if (text == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    memcpy(text, filter, len);
    text[len] = '\0';

    if (pcap_compile(c->p, &fp, text, optimize, netmask) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(c->p));
        free(text);
        return -1;
    }
    if (pcap_setfilter(c->p, &fp) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(c->p));
        rv = -1;
    }
    pcap_freecode(&fp);
    free(text);
    return rv;
}

/*
 * Set a program compiled elsewhere (compile.c); the caller frees it. A
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
        return 0;
    }
    if (pcap_setfilter(c->p, prog) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(c->p));
        return -1;
    }
    return 0;
}

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

int
ewp_capture_stats(struct ewp_capture *c, struct pcap_stat *ps, char *errbuf, size_t errlen)
{
    memset(ps, 0, sizeof(*ps));
    if (pcap_stats(c->p, ps) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(c->p));
        return -1;
    }
    return 0;
}

/*
 * Is the interface still there? Checked from a timer (request.c, through deliver.c): libpcap
 * reports a vanished interface only when it reads the socket, and in block
 * mode with a filter that rejects every packet it never does. Returns -1
 * (and calls error_cb once) when the interface is gone.
 */
int
ewp_capture_check(struct ewp_capture *c)
{
    char reason[PCAP_ERRBUF_SIZE];
    int idx;

    if (c->p == NULL || c->failed || c->offline || c->ifindex == 0)
        return 0;
    idx = ifindex_of(c);
    if (idx == (int)c->ifindex || (idx == 0 && (errno == EMFILE || errno == ENFILE)))
        return 0; /* there; or we cannot tell (out of descriptors): it stays */
    if (socket_error(c, reason, sizeof(reason)) == 0)
        (void)snprintf(reason, sizeof(reason), "The interface disappeared");
    ewp_capture_stop(c);
    c->failed = 1;
    if (c->error_cb != NULL)
        c->error_cb(c, reason);
    return -1;
}

/* Watch the handle (again). A failed capture stays stopped. */
void
ewp_capture_start(struct ewp_capture *c)
{
    if (c->p == NULL || c->watching || c->failed)
        return;
    if (c->fd >= 0)
        ev_io_start(c->loop, &c->io);
    if (c->fd < 0 || pcap_get_required_select_timeout(c->p) != NULL)
        ev_timer_start(c->loop, &c->timer);
    c->watching = 1;
    /* Packets may already wait in the ring: a level-triggered fd reports
     * them at the next loop iteration. */
}

void
ewp_capture_stop(struct ewp_capture *c)
{
    /* Stopped from a packet callback (the node's output buffer is full):
     * the rest of the ring stays in the ring, not in our buffer; libpcap
     * resumes in the middle of the block at the next dispatch. */
    if (c->dispatching && c->p != NULL)
        pcap_breakloop(c->p);
    if (!c->watching)
        return;
    ev_io_stop(c->loop, &c->io);
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
    if (c->share != NULL)
        ewp_pcapshare_close(c->share); /* now, or after a running compile */
    else if (c->p != NULL)
        pcap_close(c->p);
    c->share = NULL;
    c->p = NULL;
    free(c->prog.bf_insns);
    c->prog.bf_insns = NULL;
    c->prog.bf_len = 0;
}

/* A reference to c's pcap_t for a compile job (pcapshare.h), or NULL
 * (closed, or out of memory: the job compiles against a dead handle) */
struct ewp_pcapshare *
ewp_capture_share(struct ewp_capture *c)
{
    if (c->p == NULL)
        return NULL;
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
readable_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    dispatch(w->data);
}

static void
poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    dispatch(w->data);
}

static void
dispatch(struct ewp_capture *c)
{
    int n;

    if (c->p == NULL)
        return;
    c->dispatching = 1;
    n = pcap_dispatch(c->p, c->offline ? FILE_CHUNK : -1, handler, (unsigned char *)c);
    c->dispatching = 0;
    if (c->flush_cb != NULL)
        c->flush_cb(c);
    if (c->dumper != NULL && n > 0)
        (void)pcap_dump_flush(c->dumper);
    if (c->offline && n == 0) {
        ewp_capture_stop(c);
        c->failed = 1; /* nothing more to read: stays stopped */
        if (c->eof_cb != NULL)
            c->eof_cb(c);
        return;
    }
    if (n == 0 && !c->offline && c->fd >= 0) {
        /* Readable with nothing to read: in block mode (TPACKET_V3)
         * libpcap does not look at the socket's error, and the fd would
         * stay readable for ever once the interface is gone. */
        char reason[PCAP_ERRBUF_SIZE];

        if (socket_error(c, reason, sizeof(reason)) < 0) {
            ewp_capture_stop(c);
            c->failed = 1;
            if (c->error_cb != NULL)
                c->error_cb(c, reason);
        }
        return;
    }
    if (n == PCAP_ERROR) {
        char reason[PCAP_ERRBUF_SIZE];

        (void)snprintf(reason, sizeof(reason), "%s", pcap_geterr(c->p));
        ewp_capture_stop(c);
        c->failed = 1;
        if (c->error_cb != NULL)
            c->error_cb(c, reason);
    }
}

static void
handler(unsigned char *user, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    struct ewp_capture *c = (struct ewp_capture *)user;

    if (c->offline && c->prog.bf_len > 0 && pcap_offline_filter(&c->prog, h, bytes) == 0)
        return; /* read, counted by pcap_dispatch, not matched */
    if (c->dumper != NULL) {
        pcap_dump((unsigned char *)c->dumper, h, bytes);
        c->dumped++;
        return;
    }
    c->packet_cb(c, h, bytes);
}

/*
 * The index of c's interface now, 0 when there is none by that name (errno
 * set). Asked on the capture's own packet socket when it has one: no new
 * descriptor (if_nametoindex opens a socket, which fails when we are out
 * of descriptors, and every capture would look gone), and the answer is
 * that of the socket's own network namespace.
 */
static int
ifindex_of(struct ewp_capture *c)
{
    struct ifreq ifr;

    if (c->fd < 0)
        return (int)if_nametoindex(c->device);
    memset(&ifr, 0, sizeof(ifr));
    if (strlen(c->device) >= sizeof(ifr.ifr_name)) {
        errno = ENODEV;
        return 0;
    }
    memcpy(ifr.ifr_name, c->device, strlen(c->device));
    if (ioctl(c->fd, SIOCGIFINDEX, &ifr) < 0)
        return 0;
    errno = 0;
    return ifr.ifr_ifindex;
}

/*
 * On a loopback device the kernel hands a packet socket each packet twice:
 * as it leaves and as it comes back. libpcap drops the outgoing copy, but
 * only after the kernel counted it in ps_recv and gave it a ring slot, or,
 * with the ring full, counted it in ps_drop: one lost packet was two drops
 * (53,642 "dropped by kernel" for 40,000 sent). The socket ignores outgoing
 * packets there instead (Linux 4.20): the same packets are delivered, each
 * counted once, and the ring holds twice as many. Not on "any", where the
 * outgoing packets of the other devices are wanted.
 */
static void
ignore_outgoing_on_loopback(struct ewp_capture *c)
{
#ifdef PACKET_IGNORE_OUTGOING
    struct ifreq ifr;
    int one = 1;

    if (c->fd < 0 || strlen(c->device) >= sizeof(ifr.ifr_name))
        return;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, c->device, strlen(c->device));
    if (ioctl(c->fd, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags & IFF_LOOPBACK) == 0)
        return;
    if (setsockopt(c->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
        EWP_LOG(1, "%s: PACKET_IGNORE_OUTGOING: %s (each packet counted twice)",
                c->device, strerror(errno));
#else
    (void)c;
#endif
}

/* -1 with libpcap's words for it when the socket has a pending error */
static int
socket_error(struct ewp_capture *c, char *reason, size_t len)
{
    socklen_t elen = sizeof(int);
    int err = 0;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err == 0)
        return 0;
    if (err == ENETDOWN && c->device != NULL && if_nametoindex(c->device) == 0)
        (void)snprintf(reason, len, "The interface disappeared");
    else if (err == ENETDOWN)
        (void)snprintf(reason, len, "The interface went down");
    else
        (void)snprintf(reason, len, "%s", strerror(err));
    return -1;
}

static void
set_error(pcap_t *p, int status, char *errbuf, size_t errlen)
{
    const char *detail = pcap_geterr(p);

    if (detail != NULL && detail[0] != '\0')
        (void)snprintf(errbuf, errlen, "%s", detail);
    else
        (void)snprintf(errbuf, errlen, "%s", pcap_statustostr(status));
}
