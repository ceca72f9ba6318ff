/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * One live pcap_t per device and options, shared by its members: one
 * kernel ring, one selectable fd in the loop, one pcap_dispatch per
 * readiness. The ring's kernel filter keeps out only what every member
 * refuses (our own distribution traffic: o->kernel_filter); each member's
 * own program runs here, through demux.h, and each packet goes to the
 * members whose program accepts it. An exclusive source ({dump, Path}:
 * kernel filtering, packets to a file; {share, false}: kernel filtering)
 * has one member and is never joined.
 *
 * Backpressure: a member that stops (its node congested) stays a member;
 * what its program accepts meanwhile is counted as missed (drops in its
 * stats), the others go on. The source stops reading only when no member
 * reads. A read error or a vanished interface is reported once to every
 * member and ends the source: later opens of the same key get a new one.
 *
 * Knows nothing of handles or Erlang: a member is a struct the caller
 * embeds, calling up through struct ewp_source_ops. The loop thread only.
 */
#ifndef EWP_SOURCE_H
#define EWP_SOURCE_H

#include <stddef.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "device.h"
#include "pcapshare.h"

struct ewp_source;

/* Calls up, each with the member's who */
struct ewp_source_ops {
    void (*packet)(void *who, const struct pcap_pkthdr *h, const unsigned char *bytes);
    void (*flush)(void *who);                     /* after a dispatch that gave it packets */
    void (*error)(void *who, const char *reason); /* once: the source is over */
};

struct ewp_source_member {
    struct ewp_source *src;            /* its source; NULL: none */
    const struct ewp_source_ops *ops;  /* set by the caller before join */
    void *who;                         /* ... passed to ops */
    int started;                       /* has read: a pause now misses packets */
    int active;                        /* reading: gets its packets */
    int touched;                       /* got packets in this dispatch */
    int failed;                        /* its error was reported */
    unsigned long long recv;           /* packets its program accepted, started */
    unsigned long long missed;         /* ... of them while it was paused */
    struct pcap_stat base;             /* the ring's counts when it joined */
    struct ewp_source_member *next;    /* the source's members */
    struct ewp_source_member *prev;    /* ... (NULL: the first) */
};

int ewp_source_join(struct ev_loop *loop, struct ewp_source_member *m, const char *dev,
                    const struct ewp_capture_opts *o, char *errbuf, size_t errlen);
int ewp_source_would_join(struct ev_loop *loop, const char *dev,
                          const struct ewp_capture_opts *o);
void ewp_source_leave(struct ewp_source_member *m);
struct ewp_source_member *ewp_source_other(const struct ewp_source_member *m);
int ewp_source_members(const struct ewp_source_member *m);
pcap_t *ewp_source_pcap(const struct ewp_source_member *m);
int ewp_source_exclusive(const struct ewp_source_member *m);
int ewp_source_setprog(struct ewp_source_member *m, const struct bpf_program *prog,
                       char *errbuf, size_t errlen);
void ewp_source_start(struct ewp_source_member *m);
void ewp_source_stop(struct ewp_source_member *m);
int ewp_source_stats(struct ewp_source_member *m, struct pcap_stat *ps, char *errbuf,
                     size_t errlen);
int ewp_source_check(struct ewp_source_member *m);
struct ewp_pcapshare *ewp_source_share(struct ewp_source_member *m);

#endif /* EWP_SOURCE_H */
