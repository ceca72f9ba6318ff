/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What the files of the fuzz_dispatch harness share: its state (fz), the
 * fakes' structures and the functions one file calls in another. What the
 * harness does and its operations: fuzz_dispatch.c. Its files, one job
 * each:
 *
 *   fuzz_dispatch.c          the libFuzzer entry points, set-up and reset,
 *                            the inputs since the last reset, ei's refs/pids
 *   fuzz_dispatch_ops.c      the operations an input's first byte chooses
 *   fuzz_dispatch_dist.c     the fake transport (dist.h) and its prepare step
 *   fuzz_dispatch_capture.c  the fake captures (capture.h) and libpcap's calls
 *   fuzz_dispatch_compile.c  the fake compile worker (compile.h), libev, log.h
 *   fuzz_dispatch_check.c    the checks of every frame and of the state after
 *                            a step, the trace
 *
 * Private to them: fuzz_common.h's state is one for all of them (defined
 * in fuzz_dispatch.c).
 */
#ifndef EWP_FUZZ_DISPATCH_H
#define EWP_FUZZ_DISPATCH_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <ei.h>

#include "capture.h"
#include "compile.h"
#include "dist.h"
#include "request.h"
#include "router.h"

#define FUZZ_COMMON_SHARED
#include "fuzz_common.h"

#define FUZZ_OUR_NAME "ewpcap@host"
#define FUZZ_CREATION 0x5eedu
#define FUZZ_PORT 4370
#define RESET_EVERY 64           /* inputs between two resets */
#define HANDLES_MAX 16           /* more open handles force a reset */
#define CAPTURES_MAX 64          /* fake captures open at once */
#define OUT_SIZE (1u << 20)      /* one in-place frame at most this large */
#define HIST_SIZE (256u << 10)   /* inputs kept since the last reset */
#define PACKETS_MAX 16           /* packets per 'P' or 'M' */
#define SNAPLEN_MAX 262144       /* libpcap's MAXIMUM_SNAPLEN */
#define FAKE_OUT_MAX (16u << 10) /* a send past this queue drops the peer */
#define FAKE_PACKET_MAX (8u << 10) /* reserves past this queue fail */

/* One connection, allocated when the node first sends, freed by fz_reap() */
struct ewp_peer {
    int slot;               /* 0 or 1: which node */
    int dead;               /* dropped, waiting for fz_reap() */
    int congested;          /* ewp_peer_congested */
    int open;               /* a frame reserved, not yet committed */
    size_t reserved;        /* ... its body room */
    size_t queued;          /* bytes not yet "written" */
    size_t held;            /* ewp_peer_hold's bytes (handles' own batches) */
    unsigned long sent;     /* frames queued */
    struct ewp_peer *next;  /* the dead list */
};

/* The fake transport: what request.c and filter.c reach through r->dist */
struct ewp_dist {
    struct ewp_peer *live[2];   /* connected, per node; NULL: gone */
    struct ewp_peer *dead;      /* dropped, not yet reaped */
    struct ewp_peer *reaping;   /* in its peer_down */
    int fail_in[2];             /* 'X': the n-th next send/reserve fails */
};

struct fake_capture {
    struct ewp_capture *c;     /* open, c->p is our token */
    int snaplen;               /* caplen never exceeds it */
    const char *dev;           /* a live capture's device; NULL: a savefile */
    struct ewp_capture_opts o; /* ... its options (no kernel_filter: ours) */
};

/* What c->p points to: pcap_snapshot reads it */
struct fake_pcap {
    int snaplen;           /* as opened */
    int dlt;               /* datalink */
};

/* The fake pool: filter.c's callback and context */
struct ewp_compiler {
    ewp_compile_done_cb done; /* filter.c's compiled_cb */
    void *ctx;                /* its struct ewp_filters */
};

/* Everything that lives on between inputs */
struct fuzz_dispatch {
    int ready;                          /* set up once */
    ei_cnode ec;                        /* our node */
    struct ewp_dist dist;               /* the fake transport */
    struct ewp_requests req;            /* as main.c's */
    struct ewp_router router;           /* ... */
    unsigned int ref_seq, pid_seq;      /* wrapped ei_make_ref/pid */
    unsigned long inputs;               /* since the last reset */
    struct fake_capture caps[CAPTURES_MAX]; /* open fake captures */
    int ncaps;                          /* how many */
    int no_devices;                     /* ewp_capture_default_dev fails */
    struct ewp_capture *vanish;         /* ewp_capture_check fails for it */
    int files_fd;                       /* the --files directory, O_PATH */
    unsigned char out[2][2][OUT_SIZE];  /* per node, in-place frames, alternately */
    int cur[2];                         /* per node, which out[] holds its frame */
    size_t open_len[2][2];              /* unpoisoned bytes of each out[][] */
    const erlang_pid *expect_to;        /* a reply must go to this pid */
    int replied;                        /* ... and it did */
    unsigned char hist[HIST_SIZE];      /* inputs since the last reset */
    size_t hist_len;                    /* bytes in hist */
    int hist_raw;                       /* hist is one 'S' input, as is */
    int hist_lost;                      /* an input did not fit */
    int trace;                          /* $EWP_FUZZ_TRACE: print every frame */
    struct ewp_compiler *compiler;      /* between new and shutdown */
    struct ewp_compile_job *jobs;       /* submitted, not done: FIFO */
    int njobs;                          /* how many */
};

extern struct fuzz_dispatch fz;
extern const char *const fz_peer_names[2]; /* node 0, node 1 */
extern char fz_files_dir[PATH_MAX];        /* --files, set up once */
extern struct ewp_policy fz_policies[4];   /* 'C' chooses */

/* fuzz_dispatch_ops.c */
void fz_run(const uint8_t *d, size_t n);

/* fuzz_dispatch_dist.c */
struct ewp_peer *fz_peer_in(int slot);
void fz_reap(void);
const struct ewp_peer *fz_frame_open(void);

/* fuzz_dispatch_capture.c */
int fz_source_members(const struct fake_capture *f, struct ewp_capture **m);

/* fuzz_dispatch_check.c */
int fz_check_frame(const struct ewp_peer *p, const char *buf, size_t len);
void fz_known_peer(const struct ewp_peer *p, const char *what);
void fz_check_state(void);

#endif /* EWP_FUZZ_DISPATCH_H */
