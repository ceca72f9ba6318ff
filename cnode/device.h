/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A live pcap_t made ready for the loop: created with its options,
 * activated, non-blocking, outgoing copies ignored on loopback, its kernel
 * filter set; and the questions asked of its packet socket later (is the
 * interface still there, what error is pending). No watchers, no members:
 * source.c shares what this opens.
 */
#ifndef EWP_DEVICE_H
#define EWP_DEVICE_H

#include <stddef.h>

#include <pcap/pcap.h>

/* What a live capture is opened with; captures of one device with equal
 * options share one pcap_t (source.h) */
struct ewp_capture_opts {
    int snaplen;    /* pcap_set_snaplen */
    int promisc;    /* pcap_set_promisc */
    int immediate;  /* pcap_set_immediate_mode */
    int timeout_ms; /* pcap_set_timeout when not immediate */
    int buffer;     /* pcap_set_buffer_size when > 0 */
    int monitor;    /* pcap_set_rfmon when pcap_can_set_rfmon */
    int nano;       /* pcap_set_tstamp_precision(NANO) before activation */
    int exclusive;  /* never shared: a pcap_t of its own, kernel filtering */
    const char *kernel_filter; /* set on the ring at open (NULL: none); a
                                  filter that does not compile is left out */
};

pcap_t *ewp_device_open(const char *dev, const struct ewp_capture_opts *o, char *errbuf,
                        size_t errlen);
int ewp_device_setprog(pcap_t *p, const struct bpf_program *prog, struct bpf_program *own_prog,
                       char *errbuf, size_t errlen);
int ewp_device_ifindex(int fd, const char *dev);
int ewp_device_error(int fd, const char *dev, char *reason, size_t len);

#endif /* EWP_DEVICE_H */
