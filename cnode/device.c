/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A live pcap_t made ready for the loop (see device.h).
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

#include <pcap/pcap.h>

#include "demux.h"
#include "device.h"
#include "log.h"

static void set_kernel_filter(pcap_t *p, const char *dev, const char *text);
static void ignore_outgoing_on_loopback(pcap_t *p, const char *dev);
static void set_error(pcap_t *p, int status, char *errbuf, size_t errlen);

/* dev activated with o, non-blocking, its kernel filter set; NULL with the
 * reason in errbuf */
pcap_t *
ewp_device_open(const char *dev, const struct ewp_capture_opts *o, char *errbuf, size_t errlen)
{
    char pcap_err[PCAP_ERRBUF_SIZE];
    pcap_t *p;
    int status;

    pcap_err[0] = '\0';
    p = pcap_create(dev, pcap_err);
    if (p == NULL) {
        (void)snprintf(errbuf, errlen, "%s", pcap_err);
        return NULL;
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
        return NULL;
    }
    ignore_outgoing_on_loopback(p, dev);
    if (o->kernel_filter != NULL)
        set_kernel_filter(p, dev, o->kernel_filter);
    return p;

err:
    set_error(p, status, errbuf, errlen);
    pcap_close(p);
    return NULL;
}

/*
 * prog as p's kernel filter (an exclusive capture's: its program filters
 * in the kernel, as a capture of its own always did); *own (the caller's,
 * freed here when replaced) is then empty. Except a program that loops
 * (protochain): the kernel refuses it, and libpcap would then run it
 * itself inside pcap_dispatch, where its code for `ip6 protochain' never
 * ends on some packets. Then the kernel passes every packet and *own is a
 * copy of prog, for the caller to run on each (ewp_demux_run_one,
 * bounded). NULL or empty: every packet. Returns 0, or -1 with the
 * reason in errbuf, *own as it was.
 */
int
ewp_device_setprog(pcap_t *p, const struct bpf_program *prog, struct bpf_program *own_prog,
                   char *errbuf, size_t errlen)
{
    struct bpf_insn every = BPF_STMT(BPF_RET | BPF_K, 262144);
    struct bpf_program all = {1, &every};
    struct bpf_insn *own = NULL;
    int loops;

    if (prog == NULL || prog->bf_len == 0) /* none: every packet */
        prog = &all;
    loops = ewp_demux_loops(prog);
    if (loops) {
        if (!bpf_validate(prog->bf_insns, (int)prog->bf_len)) {
            (void)snprintf(errbuf, errlen, "invalid BPF program");
            return -1;
        }
        own = malloc((size_t)prog->bf_len * sizeof(*own));
        if (own == NULL) {
            (void)snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
        memcpy(own, prog->bf_insns, (size_t)prog->bf_len * sizeof(*own));
    }
    if (pcap_setfilter(p, loops ? &all : (struct bpf_program *)prog) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(p));
        free(own);
        return -1;
    }
    free(own_prog->bf_insns);
    own_prog->bf_insns = own;
    own_prog->bf_len = loops ? prog->bf_len : 0;
    return 0;
}

/*
 * The index of interface dev now, 0 when there is none by that name (errno
 * set). Asked on the capture's own packet socket fd when it has one: no new
 * descriptor (if_nametoindex opens a socket, which fails when we are out
 * of descriptors, and every capture would look gone), and the answer is
 * that of the socket's own network namespace.
 */
int
ewp_device_ifindex(int fd, const char *dev)
{
    struct ifreq ifr;

    if (fd < 0)
        return (int)if_nametoindex(dev);
    memset(&ifr, 0, sizeof(ifr));
    if (strlen(dev) >= sizeof(ifr.ifr_name)) {
        errno = ENODEV;
        return 0;
    }
    memcpy(ifr.ifr_name, dev, strlen(dev));
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
        return 0;
    errno = 0;
    return ifr.ifr_ifindex;
}

/* -1 with libpcap's words for it when the socket fd (of dev) has a
 * pending error, else 0 */
int
ewp_device_error(int fd, const char *dev, char *reason, size_t len)
{
    socklen_t elen = sizeof(int);
    int err = 0;

    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err == 0)
        return 0;
    if (err == ENETDOWN && if_nametoindex(dev) == 0)
        (void)snprintf(reason, len, "The interface disappeared");
    else if (err == ENETDOWN)
        (void)snprintf(reason, len, "The interface went down");
    else
        (void)snprintf(reason, len, "%s", strerror(err));
    return -1;
}

/* The ring's own filter (what no capture of it wants: our own traffic).
 * A datalink where it means nothing (nflog, usb, ...) gets none. */
static void
set_kernel_filter(pcap_t *p, const char *dev, const char *text)
{
    struct bpf_program fp;

    if (pcap_compile(p, &fp, text, 1, PCAP_NETMASK_UNKNOWN) < 0) {
        EWP_LOG(2, "%s: no kernel filter (%s): %s", dev, text, pcap_geterr(p));
        return;
    }
    if (pcap_setfilter(p, &fp) < 0)
        EWP_LOG(1, "%s: kernel filter %s: %s", dev, text, pcap_geterr(p));
    pcap_freecode(&fp);
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
ignore_outgoing_on_loopback(pcap_t *p, const char *dev)
{
#ifdef PACKET_IGNORE_OUTGOING
    struct ifreq ifr;
    int one = 1, fd = pcap_get_selectable_fd(p);

    if (fd < 0 || strlen(dev) >= sizeof(ifr.ifr_name))
        return;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, dev, strlen(dev));
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags & IFF_LOOPBACK) == 0)
        return;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
        EWP_LOG(1, "%s: PACKET_IGNORE_OUTGOING: %s (each packet counted twice)", dev,
                strerror(errno));
#else
    (void)p;
    (void)dev;
#endif
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
