/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A handle's capture in the event loop: a live device through source.h
 * (one pcap_t shared by the captures of a device with the same options,
 * each with its own filter), or a savefile read in chunks from a timer;
 * filter/write/stats, start and stop. Knows nothing of Erlang: packets and
 * errors leave through the callbacks.
 */
#ifndef EWP_CAPTURE_H
#define EWP_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "pcapshare.h"
#include "source.h"

struct ewp_capture;

typedef void (*ewp_capture_packet_cb)(struct ewp_capture *c,
                                      const struct pcap_pkthdr *h,
                                      const unsigned char *bytes);
typedef void (*ewp_capture_error_cb)(struct ewp_capture *c, const char *reason);
typedef void (*ewp_capture_flush_cb)(struct ewp_capture *c);
typedef void (*ewp_capture_eof_cb)(struct ewp_capture *c);

/*
 * Kernel buffer when {buffer, N} is not given. libpcap's 2 MiB default, in
 * immediate mode (TPACKET_V2, one frame per snaplen-sized slot), is a ring
 * of ~32 slots on lo (MTU 65536) and ~1300 on Ethernet: a burst longer than
 * a scheduling delay of the daemon drops packets. 16 MiB absorbs tens of
 * milliseconds at full rate on Ethernet, for 16 MiB of kernel memory.
 */
#define EWP_DEFAULT_BUFFER (16 << 20)

/*
 * Timing when the caller chose none. libpcap's immediate mode (TPACKET_V2)
 * gives every packet a slot of the snaplen: with the default 65535 on a
 * device with offloads, 16 MiB is ~250 slots, 2.5 ms at 100k pps, and it
 * drops on any burst, as bare libpcap does with the same options. Without
 * immediate mode (TPACKET_V3) packets are packed in blocks and libpcap
 * keeps up with ~0.8M pps here; a 1 ms block timeout keeps the delay near
 * immediate (a few ms at most, the kernel timer's granularity). An explicit
 * {timeout, immediate} still gets immediate mode, with a larger buffer.
 */
#define EWP_DEFAULT_TIMEOUT_MS 1
#define EWP_IMMEDIATE_BUFFER (32 << 20)

struct ewp_capture {
    pcap_t *p;                       /* the pcap handle, NULL when closed */
    struct ev_loop *loop;            /* loop the watchers belong to */
    ev_io io;                        /* unused (a live capture's is its source's) */
    ev_timer timer;                  /* a savefile's chunks */
    int fd;                          /* the source's selectable fd, or -1 */
    int dlt;                         /* pcap_datalink, read once at open */
    int watching;                    /* watchers started */
    int dispatching;                 /* inside pcap_dispatch */
    int failed;                      /* a read error ended the capture */
    ewp_capture_packet_cb packet_cb; /* called per packet */
    ewp_capture_error_cb error_cb;   /* called once on a read error */
    ewp_capture_flush_cb flush_cb;   /* called after each pcap_dispatch, or NULL */
    ewp_capture_eof_cb eof_cb;       /* a savefile is read to its end */
    int offline;                     /* reading a savefile */
    struct bpf_program prog;         /* a savefile's filter, run here (bf_len 0: none) */
    int prog_loops;                  /* ... jumps backward: run with a bound of steps */
    const char *device;              /* the interface name, for errors */
    unsigned ifindex;                /* not a source's: checked by name when set */
    pcap_dumper_t *dumper;           /* {dump, Path}: packets go here instead */
    unsigned long long dumped;       /* packets written to the dump */
    struct ewp_pcapshare *share;     /* p, as compile jobs hold it, or NULL (savefile) */
    struct ewp_source_member member; /* a live capture: its place in the shared one */
    void *data;                      /* the caller's */
};

int ewp_capture_open(struct ev_loop *loop, struct ewp_capture *c, const char *dev,
                     const struct ewp_capture_opts *o, char *errbuf, size_t errlen);
int ewp_capture_open_offline(struct ev_loop *loop, struct ewp_capture *c, int fd,
                             int nano, char *errbuf, size_t errlen);
int ewp_capture_dump_open(struct ewp_capture *c, int fd, char *errbuf, size_t errlen);
int ewp_capture_filter(struct ewp_capture *c, const char *filter, size_t len,
                       int optimize, uint32_t netmask, char *errbuf, size_t errlen);
int ewp_capture_setprog(struct ewp_capture *c, struct bpf_program *prog, char *errbuf,
                        size_t errlen);
int ewp_capture_write(struct ewp_capture *c, const void *buf, size_t len,
                      char *errbuf, size_t errlen);
int ewp_capture_stats(struct ewp_capture *c, struct pcap_stat *ps, char *errbuf,
                      size_t errlen);
int ewp_capture_check(struct ewp_capture *c);
void ewp_capture_start(struct ewp_capture *c);
void ewp_capture_stop(struct ewp_capture *c);
void ewp_capture_close(struct ewp_capture *c);
struct ewp_pcapshare *ewp_capture_share(struct ewp_capture *c);
int ewp_capture_joins(struct ev_loop *loop, const char *dev, const struct ewp_capture_opts *o);
struct ewp_capture *ewp_capture_other(const struct ewp_capture *c);
int ewp_capture_default_dev(char *dev, size_t devlen, char *errbuf, size_t errlen);

#endif /* EWP_CAPTURE_H */
