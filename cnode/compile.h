/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Filters compiled off the event loop. pcap_compile of a large expression
 * can take seconds (a 400 KB filter: ~14 s); done in the loop, every client
 * would wait. Worker threads compile against the capture's own pcap_t
 * (shared: pcapshare.h), or pcap_open_dead(linktype, snaplen) when there is
 * none, and hand the program back to the loop through an ev_async; one
 * client node's jobs run one at a time, in order (see compile.c).
 */
#ifndef EWP_COMPILE_H
#define EWP_COMPILE_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "pcapshare.h"

#define EWP_COMPILE_SYNC_MAX 1024 /* a "long" filter, for tests (every user filter
                                     of a call goes to the workers: filter.c) */
#define EWP_COMPILE_WORKERS 2     /* threads; one client node uses one at a time */

struct ewp_compile_job {
    char *text;                   /* filter to try first (NUL-terminated) */
    char *fallback;               /* then this one, or NULL */
    int optimize;                 /* pcap_compile optimize flag */
    uint32_t netmask;             /* pcap_compile netmask */
    struct ewp_pcapshare *src;    /* compile against this (a reference, dropped by
                                     ewp_compile_free); NULL: a dead handle of */
    int linktype;                 /* ... pcap_datalink of the handle */
    int snaplen;                  /* ... and pcap_snapshot of the handle */
    int ok;                       /* out: prog is valid */
    struct bpf_program prog;      /* out: the compiled program */
    char errbuf[PCAP_ERRBUF_SIZE]; /* out: why not */
    void *data;                   /* the submitter's */
    const void *owner;            /* jobs of one owner never run at once */
    struct ewp_compile_job *next; /* queue */
};

struct ewp_compiler;

/* Called in the loop for each job done (ctx: ewp_compile_new's) */
typedef void (*ewp_compile_done_cb)(void *ctx, struct ewp_compile_job *job);

struct ewp_compiler *ewp_compile_new(struct ev_loop *loop, ewp_compile_done_cb done,
                                     void *ctx);
void ewp_compile_submit(struct ewp_compiler *cc, struct ewp_compile_job *job);
int ewp_compile_run(struct ewp_compile_job *job);
void ewp_compile_free(struct ewp_compile_job *job);
/* How ewp_compile_shutdown treats a compile that is running */
#define EWP_COMPILE_WAIT 0        /* wait for it (tests, a clean exit) */
#define EWP_COMPILE_ABANDON 1     /* leave it to end with the process */
void ewp_compile_shutdown(struct ewp_compiler *cc, ewp_compile_done_cb discard, int running);

#endif /* EWP_COMPILE_H */
