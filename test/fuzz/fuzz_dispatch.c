/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * libFuzzer target for everything above the transport: router.c, ctl.c,
 * request.c, handles.c, deliver.c, filter.c, files.c, rpc.c, decode.c and
 * encode.c, built the way main.c builds them (a struct ewp_requests run by
 * ewp_request_init, a struct ewp_router over it) and driven only through
 * ewp_router_dist_ops (frame, peer_down, drained) and the capture and
 * compile callbacks. Faked below: dist.h, capture.h, compile.h, log.c and
 * pcap_findalldevs. No sockets, no pcap, no threads, no event loop.
 *
 * The fake dist.h keeps dist.c's rule: a send that fails marks the peer
 * dead and returns -1, nothing more; later sends and fresh reserves fail.
 * After every operation (a loop callback) the harness does what the
 * prepare step's ewp_dist_reap does: queued output is "written" (unless
 * the peer is congested), then ops->peer_down for each dead peer, which is
 * then freed. A node that sends again gets a new struct ewp_peer: a
 * pointer kept to a torn-down one is a use-after-free. A send fails past
 * FAKE_OUT_MAX queued, or when 'X' says so; a reserve past FAKE_PACKET_MAX.
 *
 * Compiles are deterministic: a submitted job waits until a 'J' input
 * completes it (ewp_compile_run, then the done callback, as compile.c's
 * wake_cb does). A fake compile fails for text containing "bad", and for
 * "tcp" on fake1. --files is a real directory ($EWP_FUZZ_FILES, else a new
 * one under /tmp) holding in.pcap, notpcap.txt, sub/, escape -> /etc and
 * in-link.pcap -> in.pcap, opened as main.c does (an O_PATH descriptor), so
 * that files.c's confinement runs for real; opening a path ending in
 * ".pcap" succeeds, a dump to bad.pcap fails, nothing is read or written.
 *
 * State lives on between inputs. Every RESET_EVERY inputs, or with more
 * than HANDLES_MAX handles, the harness resets as main.c stops: every peer
 * dropped and reaped, ewp_request_shutdown, ewp_request_init. On a failed
 * check or an ASan report the inputs since the last reset are written, as
 * one 'S' input, to $EWP_FUZZ_HISTORY. The first byte chooses the operation:
 *
 *   131       the input is a message to ewpcap, from peer 0: framed as
 *             'p', 131, {6, From, '', ewpcap}, Msg and given to .frame
 *   'N' 'R'   the rest is a message (131 first) to net_kernel / rex
 *   'E' 'L'   the rest is 131 {Op, From, To, ...}: a frame with the
 *             control {3, From, To, normal} (EXIT) / {1, From, To} (LINK)
 *   'F' 'f'   the rest is a whole frame body from peer 0 / 1
 *   'D'       peer data[1] & 1 drops (connection closed), is reaped
 *   'J'       complete data[1] % 4 + 1 queued compile jobs (FIFO)
 *   'P'       packets for an open capture: [capture, count, flags] then per
 *             packet [caplen:16, extra:8, sec:32, usec:24] and the bytes;
 *             delivered like capture.c's dispatch (packets or the dump,
 *             flush), then flags & 1 a read error, flags & 2 on a savefile
 *             no packet and the end of file, flags & 4 the interface check
 *             (ewp_deliver_check) finds this capture's interface gone
 *   'C'       [bits]: bit 0 set peer 0 congested, clear it (drained);
 *             bit 1 no device for dev/open(<<>>); bits 2-3 choose the
 *             policy (--files, defaults, --allow fake1 lo, --no-inject and
 *             handle limits) until the next reset
 *   'X'       [peer, n, Input...]: the (n % 16 + 1)-th next send or fresh
 *             reserve to peer & 1 fails and drops it; then Input, if any,
 *             runs as an operation in the same step (no 'S' inside)
 *   'S'       a sequence: reset, then records [len:16, input] (no 'S')
 *
 * Peers: "fuzz@host" (0), "other@host" (1); we are "ewpcap@host", creation
 * FUZZ_CREATION, refs and pids counted from 0 at each reset (--wrap).
 *
 * Checked besides ASan/UBSan/LSan: every frame offered to a peer is a
 * well-formed 'p' frame of a control the daemon sends; a call to ewpcap
 * from the peer's own node gets a reply unless the peer died or the filter
 * went to the compile worker; nothing is sent while a frame is filled in
 * place, which is never written past its reservation (poisoned) nor used
 * after it moved; nothing goes to a torn-down peer; after each step every
 * handle in the table has a live peer, and one open fake capture. With
 * $EWP_FUZZ_TRACE set, every frame is printed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ei.h>
#include <ev.h>
#include <pcap/pcap.h>
#include <sanitizer/asan_interface.h>

#include "capture.h"
#include "compile.h"
#include "decode.h"
#include "deliver.h"
#include "dist.h"
#include "encode.h"
#include "handles.h"
#include "log.h"
#include "request.h"
#include "router.h"

#include "fuzz_common.h"

#define FUZZ_OUR_NAME "ewpcap@host"
#define FUZZ_CREATION 0x5eedu
#define FUZZ_PORT 4370
#define RESET_EVERY 64           /* inputs between two resets */
#define HANDLES_MAX 16           /* more open handles force a reset */
#define CAPTURES_MAX 64          /* fake captures open at once */
#define OUT_SIZE (1u << 20)      /* one in-place frame at most this large */
#define HIST_SIZE (256u << 10)   /* inputs kept since the last reset */
#define PACKETS_MAX 16           /* packets per 'P' */
#define SNAPLEN_MAX 262144       /* libpcap's MAXIMUM_SNAPLEN */
#define FAKE_OUT_MAX (16u << 10) /* a send past this queue drops the peer */
#define FAKE_PACKET_MAX (8u << 10) /* reserves past this queue fail */

static const char *const peer_names[2] = {"fuzz@host", "other@host"};

/* One connection, allocated when the node first sends, freed by reap() */
struct ewp_peer {
    int slot;               /* 0 or 1: which node */
    int dead;               /* dropped, waiting for reap() */
    int congested;          /* ewp_peer_congested */
    size_t reserved;        /* body room of the frame being filled */
    size_t queued;          /* bytes not yet "written" */
    unsigned long sent;     /* frames queued */
    struct ewp_peer *next;  /* the dead list */
};

/* The fake transport: what request.c and filter.c reach through r->dist */
struct ewp_dist {
    struct ewp_peer *live[2];   /* connected, per node; NULL: gone */
    struct ewp_peer *dead;      /* dropped, not yet reaped */
    struct ewp_peer *reaping;   /* in its peer_down */
    struct ewp_peer *filling;   /* a frame reserved, not yet committed */
    int fail_in[2];             /* 'X': the n-th next send/reserve fails */
};

struct fake_capture {
    struct ewp_capture *c; /* open, c->p is our token */
    int snaplen;           /* caplen never exceeds it */
};

/* What c->p points to: pcap_snapshot reads it */
struct fake_pcap {
    int snaplen;           /* as opened */
    int dlt;               /* datalink */
};

static const char *const allowed[] = {"fake1", "lo"};
static char files_dir[PATH_MAX];         /* --files, set up once */
static struct ewp_policy policies[4] = {
    {.files_dir = files_dir},            /* --files DIR */
    {.allow = NULL},                     /* ewpcapd's defaults */
    {.allow = allowed, .nallow = 2, .files_dir = files_dir}, /* --allow fake1 lo */
    {.no_inject = 1, .max_handles = 3, .max_node_handles = 2, .files_dir = files_dir},
};

/* The fake pool: filter.c's callback and context */
struct ewp_compiler {
    ewp_compile_done_cb done; /* filter.c's compiled_cb */
    void *ctx;                /* its struct ewp_filters */
};

static struct {
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
    unsigned char out[2][OUT_SIZE];     /* in-place frames, alternately */
    int cur;                            /* which out[] holds the open frame */
    size_t open_len[2];                 /* unpoisoned bytes of each out[] */
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
} fz;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int __real_ei_make_ref(ei_cnode *ec, erlang_ref *ref);
int __wrap_ei_make_ref(ei_cnode *ec, erlang_ref *ref);
int __real_ei_make_pid(ei_cnode *ec, erlang_pid *pid);
int __wrap_ei_make_pid(ei_cnode *ec, erlang_pid *pid);

static void setup(void);
static void reset(void);
static void step(const uint8_t *d, size_t n);
static void run(const uint8_t *d, size_t n);
static void op_reg_send(struct ewp_peer *peer, const char *name, const uint8_t *d, size_t n);
static void op_signal(struct ewp_peer *peer, int link, const uint8_t *d, size_t n);
static void op_frame(struct ewp_peer *peer, const uint8_t *d, size_t n);
static void op_packets(const uint8_t *d, size_t n);
static void op_congestion(const uint8_t *d, size_t n);
static void op_compiled(const uint8_t *d, size_t n);
static void op_fail(const uint8_t *d, size_t n);
static void deliver_frame(struct ewp_peer *p, const ei_x_buff *ctl, const uint8_t *msg,
                          size_t msg_len);
static struct ewp_peer *peer_in(int slot);
static void reap(void);
static int fail_now(struct ewp_peer *p);
static void known_peer(const struct ewp_peer *p, const char *what);
static int check_frame(const struct ewp_peer *p, const char *buf, size_t len);
static void make_files(void);
static void check_state(void);
static void history_add(const uint8_t *d, size_t n, int raw);
static void history_dump(void);
static void history_report(const char *report);
static void trace_frame(const struct ewp_peer *p, const char *buf, size_t len, int msg);
static uint32_t get32(const uint8_t *p);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    if (data[0] == 'S') {
        size_t pos = 1;

        reset();
        history_add(data, size, 1);
        while (size - pos >= 2) {
            size_t len = ((size_t)data[pos] << 8) | data[pos + 1];

            pos += 2;
            if (len > size - pos)
                len = size - pos;
            if (len > 0 && data[pos] != 'S')
                step(data + pos, len);
            pos += len;
        }
        reset();
        return 0;
    }
    if (++fz.inputs >= RESET_EVERY || ewp_handles_count(fz.req.handles) > HANDLES_MAX)
        reset();
    history_add(data, size, 0);
    step(data, size);
    return 0;
}

/* ---- the operations ---- */

/* One loop callback, then the prepare step */
static void
step(const uint8_t *d, size_t n)
{
    run(d, n);
    fuzz_guard_release();
    reap();
    check_state();
}

static void
run(const uint8_t *d, size_t n)
{
    switch (d[0]) {
    case 131:
        op_reg_send(peer_in(0), "ewpcap", d, n);
        break;
    case 'N':
        op_reg_send(peer_in(0), "net_kernel", d + 1, n - 1);
        break;
    case 'R':
        op_reg_send(peer_in(0), "rex", d + 1, n - 1);
        break;
    case 'E':
    case 'L':
        op_signal(peer_in(0), d[0] == 'L', d + 1, n - 1);
        break;
    case 'D': {
        struct ewp_peer *p = fz.dist.live[n > 1 ? d[1] & 1 : 0];

        if (p != NULL)
            ewp_peer_drop(p, "connection closed");
        break;
    }
    case 'F':
    case 'f':
        op_frame(peer_in(d[0] == 'f'), d + 1, n - 1);
        break;
    case 'J':
        op_compiled(d + 1, n - 1);
        break;
    case 'P':
        op_packets(d + 1, n - 1);
        break;
    case 'C':
        op_congestion(d + 1, n - 1);
        break;
    case 'X':
        op_fail(d + 1, n - 1);
        break;
    default:
        break;
    }
}

/* A node that sends is connected; after a drop, as a new connection */
static struct ewp_peer *
peer_in(int slot)
{
    struct ewp_peer *p = fz.dist.live[slot];

    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        FUZZ_CHECK(p != NULL, "out of memory");
        p->slot = slot;
        fz.dist.live[slot] = p;
    }
    return p;
}

/* ewp_dist_reap: write what is queued, then peer_down and free each peer
 * dropped since the last time (peer_down may drop others: until none) */
static void
reap(void)
{
    struct ewp_peer *p;
    int k;

    FUZZ_CHECK(fz.dist.filling == NULL, "a frame left open at the prepare step");
    for (k = 0; k < 2; k++)
        if ((p = fz.dist.live[k]) != NULL && !p->congested)
            p->queued = 0;
    while ((p = fz.dist.dead) != NULL) {
        fz.dist.dead = p->next;
        fz.dist.reaping = p;
        if (fz.trace)
            (void)fprintf(stderr, "fuzz_dispatch: %s down\n", peer_names[p->slot]);
        ewp_router_dist_ops.peer_down(&fz.router, p);
        fz.dist.reaping = NULL;
        free(p);
    }
}

/* 'X' [peer, n, Input...] */
static void
op_fail(const uint8_t *d, size_t n)
{
    if (n < 2)
        return;
    fz.dist.fail_in[d[0] & 1] = d[1] % 16 + 1;
    if (n > 2 && d[2] != 'S')
        run(d + 2, n - 2);
}

/* 'p', 131, Control (ctl, version byte first), then msg as given */
static void
deliver_frame(struct ewp_peer *p, const ei_x_buff *ctl, const uint8_t *msg, size_t msg_len)
{
    size_t len = 1 + (size_t)ctl->index + msg_len;
    char *body = malloc(len);

    FUZZ_CHECK(body != NULL, "out of memory");
    body[0] = EWP_PASS_THROUGH;
    memcpy(body + 1, ctl->buff, (size_t)ctl->index);
    if (msg_len > 0)
        memcpy(body + 1 + ctl->index, msg, msg_len);
    ewp_router_dist_ops.frame(&fz.router, p, fuzz_guard_copy(body, len), len);
    free(body);
}

/* A message (version byte first) to a registered name, framed as REG_SEND
 * {6, From, '', Name} from a pid of the peer's node */
static void
op_reg_send(struct ewp_peer *peer, const char *name, const uint8_t *d, size_t n)
{
    const char *msg;
    erlang_pid from, sender;
    ei_x_buff ctl;
    int i = 1, expect, njobs = fz.njobs;

    if (n < 2 || d[0] != 131)
        return;
    /* a well-formed call to ewpcap from this peer's node must be answered */
    msg = fuzz_guard_copy(d, n);
    expect = ewp_decode_check(msg, n, &i) == 0 && (size_t)i == n;
    i = 1;
    expect = expect && strcmp(name, "ewpcap") == 0 &&
             ewp_decode_call(msg, &i, &from, NULL, NULL) == 0 &&
             strcmp(from.node, peer_names[peer->slot]) == 0;
    fuzz_guard_release();

    memset(&sender, 0, sizeof(sender));
    (void)snprintf(sender.node, sizeof(sender.node), "%s", peer_names[peer->slot]);
    sender.num = 1;
    sender.creation = 1;
    FUZZ_CHECK(ei_x_new_with_version(&ctl) == 0, "out of memory");
    FUZZ_CHECK(ei_x_encode_tuple_header(&ctl, 4) == 0 && ei_x_encode_long(&ctl, 6) == 0 &&
                   ei_x_encode_pid(&ctl, &sender) == 0 && ei_x_encode_atom(&ctl, "") == 0 &&
                   ei_x_encode_atom(&ctl, name) == 0,
               "cannot encode REG_SEND");
    fz.expect_to = expect ? &from : NULL;
    fz.replied = 0;
    deliver_frame(peer, &ctl, d, n);
    ei_x_free(&ctl);
    /* unless its filter went to the compile worker: then the reply waits */
    FUZZ_CHECK(!expect || fz.replied || fz.njobs > njobs || peer->dead,
               "a call from %s<%u.%u> got no reply", from.node, from.num, from.serial);
    fz.expect_to = NULL;
}

/* 131 {Op, From, To, ...}: an exit signal or a link, as a frame */
static void
op_signal(struct ewp_peer *peer, int link, const uint8_t *d, size_t n)
{
    const char *buf;
    erlang_pid from, to;
    ei_x_buff ctl;
    int i = 1, arity;

    if (n < 2 || d[0] != 131)
        return;
    buf = fuzz_guard_copy(d, n);
    if (ewp_decode_check(buf, n, &i) < 0 || (size_t)i != n)
        return;
    i = 1;
    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity < 3 || ei_skip_term(buf, &i) < 0 ||
        ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0)
        return;
    fuzz_guard_release();
    FUZZ_CHECK(ei_x_new_with_version(&ctl) == 0, "out of memory");
    /* a node name ei decodes but will not encode (not UTF-8): F's business */
    if (ei_x_encode_tuple_header(&ctl, link ? 3 : 4) == 0 &&
        ei_x_encode_long(&ctl, link ? EWP_DOP_LINK : EWP_DOP_EXIT) == 0 &&
        ei_x_encode_pid(&ctl, &from) == 0 && ei_x_encode_pid(&ctl, &to) == 0 &&
        (link || ei_x_encode_atom(&ctl, "normal") == 0))
        deliver_frame(peer, &ctl, NULL, 0);
    ei_x_free(&ctl);
}

static void
op_frame(struct ewp_peer *peer, const uint8_t *d, size_t n)
{
    if (n == 0)
        return;
    ewp_router_dist_ops.frame(&fz.router, peer, fuzz_guard_copy(d, n), n);
}

/* [capture, count, flags], then per packet [caplen:16, extra:8, sec:32,
 * usec:24] and up to caplen bytes. As capture.c's dispatch(): every packet
 * (pcap_dispatch does not stop when the callback pauses the capture), then
 * flush_cb, then on flags & 1 a read error; flags & 4 the interface check. */
static void
op_packets(const uint8_t *d, size_t n)
{
    struct fake_capture *f;
    struct ewp_capture *c;
    size_t pos = 3;
    int count, k;

    if (n < 3 || fz.ncaps == 0)
        return;
    f = &fz.caps[d[0] % fz.ncaps];
    c = f->c;
    count = d[1] % PACKETS_MAX + 1;
    if (d[2] & 4) {
        fz.vanish = c;
        ewp_deliver_check(fz.req.handles);
        fz.vanish = NULL;
        return;
    }
    if (c->p == NULL || !c->watching || c->failed)
        return;
    if (c->offline && (d[2] & 2))
        count = 0; /* pcap_dispatch read nothing: the end of the file */

    for (k = 0; k < count && n - pos >= 10; k++) {
        struct pcap_pkthdr hdr;
        unsigned char *bytes;
        size_t caplen = ((size_t)d[pos] << 8) | d[pos + 1];
        int snap = f->snaplen <= 0 || f->snaplen > SNAPLEN_MAX ? SNAPLEN_MAX : f->snaplen;

        memset(&hdr, 0, sizeof(hdr));
        hdr.ts.tv_sec = (time_t)get32(d + pos + 3);
        hdr.ts.tv_usec =
            (suseconds_t)((((uint32_t)d[pos + 7] << 16) | ((uint32_t)d[pos + 8] << 8) | d[pos + 9]) %
                          1000000u);
        pos += 10;
        if (caplen > (size_t)snap)
            caplen = (size_t)snap;
        if (caplen > n - pos)
            caplen = n - pos;
        hdr.caplen = (uint32_t)caplen;
        hdr.len = (uint32_t)caplen + d[pos - 8];
        /* the packet as the pcap ring holds it: exactly caplen bytes */
        bytes = malloc(caplen > 0 ? caplen : 1);
        FUZZ_CHECK(bytes != NULL, "out of memory");
        memcpy(bytes, d + pos, caplen);
        pos += caplen;
        if (c->dumper != NULL) {
            fuzz_touch(c->dumper, sizeof(int));
            c->dumped++;
        } else {
            c->packet_cb(c, &hdr, bytes);
        }
        free(bytes);
    }
    if (c->flush_cb != NULL)
        c->flush_cb(c);
    FUZZ_CHECK(fz.dist.filling == NULL, "a frame left open after dispatch");
    if (c->offline && k == 0) {
        ewp_capture_stop(c);
        c->failed = 1;
        if (c->eof_cb != NULL)
            c->eof_cb(c);
    } else if (d[2] & 1) {
        ewp_capture_stop(c);
        c->failed = 1;
        if (c->error_cb != NULL)
            c->error_cb(c, "fake read error: the device went away");
    }
}

/* The worker finished the oldest jobs: done callbacks in order, as
 * compile.c's wake_cb calls them */
static void
op_compiled(const uint8_t *d, size_t n)
{
    int k = (n > 0 ? d[0] % 4 : 0) + 1;

    while (k-- > 0 && fz.jobs != NULL) {
        struct ewp_compile_job *job = fz.jobs;

        fz.jobs = job->next;
        fz.njobs--;
        job->next = NULL;
        (void)ewp_compile_run(job);
        fz.compiler->done(fz.compiler->ctx, job);
    }
}

static void
op_congestion(const uint8_t *d, size_t n)
{
    struct ewp_peer *p = fz.dist.live[0];

    if (n == 0)
        return;
    if (p != NULL && (d[0] & 1)) {
        p->congested = 1;
    } else if (p != NULL && p->congested) {
        p->congested = 0;
        ewp_router_dist_ops.drained(&fz.router, p);
    }
    if (d[0] & 2)
        fz.no_devices = !fz.no_devices;
    if (d[0] >> 2 & 3)
        fz.req.policy = policies[d[0] >> 2 & 3];
}

/* ---- checks ---- */

/* 'p', 131, Control, [131, Message]: every term checked, nothing left over,
 * a control the daemon sends, a message exactly with SEND. Returns 1 for a
 * SEND to fz.expect_to. */
static int
check_frame(const struct ewp_peer *p, const char *buf, size_t len)
{
    const char *name = peer_names[p->slot];
    erlang_pid to;
    int i = 2, msg = -1, arity, reply = 0;
    long op;

    FUZZ_CHECK(len >= 3 && buf[0] == EWP_PASS_THROUGH &&
                   (unsigned char)buf[1] == EWP_VERSION_MAGIC,
               "frame of %zu bytes to %s does not start with 'p', 131", len, name);
    FUZZ_CHECK(ewp_decode_check(buf, len, &i) == 0, "bad control term in a frame to %s", name);
    if ((size_t)i < len) {
        FUZZ_CHECK((unsigned char)buf[i] == EWP_VERSION_MAGIC, "no version byte before message");
        msg = ++i;
        FUZZ_CHECK(ewp_decode_check(buf, len, &i) == 0, "bad message term in a frame to %s",
                   name);
        FUZZ_CHECK((size_t)i == len, "%zu bytes after the message", len - (size_t)i);
    }
    if (fz.trace)
        trace_frame(p, buf, len, msg);
    i = 2;
    FUZZ_CHECK(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity >= 3 &&
                   ei_decode_long(buf, &i, &op) == 0,
               "control is not {Op, ...}");
    switch (op) {
    case EWP_DOP_SEND: /* {2, '', To} */
        FUZZ_CHECK(arity == 3 && msg > 0, "SEND without a message");
        FUZZ_CHECK(ei_skip_term(buf, &i) == 0 && ei_decode_pid(buf, &i, &to) == 0,
                   "SEND to a non-pid");
        reply = fz.expect_to != NULL && ei_cmp_pids(&to, (erlang_pid *)fz.expect_to) == 0;
        break;
    case EWP_DOP_LINK:
    case EWP_DOP_EXIT:
    case EWP_DOP_MONITOR_P:
    case EWP_DOP_DEMONITOR_P:
    case EWP_DOP_MONITOR_P_EXIT:
    case EWP_DOP_SPAWN_REPLY:
    case EWP_DOP_UNLINK_ID:
    case EWP_DOP_UNLINK_ID_ACK:
        FUZZ_CHECK(msg < 0, "control %ld with a message", op);
        break;
    default:
        FUZZ_CHECK(0, "control %ld sent", op);
    }
    return reply;
}

/* p must be connected, dropped and not yet reaped, or in its peer_down: a
 * torn-down peer was freed.
 * Compared as a pointer first, so the message names the bug. */
static void
known_peer(const struct ewp_peer *p, const char *what)
{
    const struct ewp_peer *q;

    if (p != NULL && (p == fz.dist.live[0] || p == fz.dist.live[1] || p == fz.dist.reaping))
        return;
    for (q = fz.dist.dead; q != NULL; q = q->next)
        if (q == p)
            return;
    FUZZ_CHECK(0, "%s for a torn-down or unknown peer %p", what, (const void *)p);
}

/* After every step (and its reap): no frame half-filled; every handle in
 * the table belongs to a connected node; one fake capture per handle. */
static void
check_state(void)
{
    const struct ewp_handle *h;
    int n = 0;

    FUZZ_CHECK(fz.dist.filling == NULL, "a frame left open");
    FUZZ_CHECK(fz.dist.dead == NULL, "a dropped peer not reaped");
    for (h = ewp_handles_first(fz.req.handles); h != NULL; h = h->next, n++) {
        FUZZ_CHECK(h->peer != NULL && (h->peer == fz.dist.live[0] || h->peer == fz.dist.live[1]),
                   "handle %s of a torn-down peer %p", h->device, (const void *)h->peer);
        FUZZ_CHECK(!h->peer->dead, "handle %s of a dead peer after reap", h->device);
    }
    FUZZ_CHECK(n == ewp_handles_count(fz.req.handles), "%d handles in the table, count %d", n,
               ewp_handles_count(fz.req.handles));
    FUZZ_CHECK(fz.ncaps == n, "%d captures open for %d handles", fz.ncaps, n);
}

/* ---- state ---- */

static void
setup(void)
{
    struct in_addr addr;

    if (fz.ready)
        return;
    fz.ready = 1;
    fz.trace = getenv("EWP_FUZZ_TRACE") != NULL;
    if (ei_init() != 0)
        abort();
    addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ei_connect_xinit(&fz.ec, "host", "ewpcap", FUZZ_OUR_NAME, &addr, "EWPFUZZCOOKIE",
                         FUZZ_CREATION) < 0)
        abort();
    ASAN_POISON_MEMORY_REGION(fz.out, sizeof(fz.out));
    make_files();
    /* as main.c's start(), with no loop */
    fz.router.req = &fz.req;
    fz.req.loop = NULL;
    fz.req.ec = &fz.ec;
    fz.req.dist = &fz.dist;
    fz.req.port = FUZZ_PORT;
    fz.req.policy = policies[0];
    FUZZ_CHECK(ewp_request_init(&fz.req) == 0, "ewp_request_init failed");
    /* not __sanitizer_set_death_callback: libFuzzer owns that one */
    __asan_set_error_report_callback(history_report);
    fuzz_failure_hook = history_dump;
}

static void
make_files(void)
{
    const char *env = getenv("EWP_FUZZ_FILES");
    char tmpl[] = "/tmp/ewpfuzz-files.XXXXXX";
    char path[PATH_MAX + 32];
    const char *dir;
    FILE *f;
    int k;

    if (env != NULL) {
        (void)mkdir(env, 0700);
        dir = env;
    } else {
        dir = mkdtemp(tmpl);
    }
    FUZZ_CHECK(dir != NULL && realpath(dir, files_dir) != NULL, "cannot make the files dir");
    (void)snprintf(path, sizeof(path), "%s/in.pcap", files_dir);
    if ((f = fopen(path, "a")) != NULL)
        (void)fclose(f);
    (void)snprintf(path, sizeof(path), "%s/notpcap.txt", files_dir);
    if ((f = fopen(path, "a")) != NULL)
        (void)fclose(f);
    (void)snprintf(path, sizeof(path), "%s/sub", files_dir);
    (void)mkdir(path, 0700);
    (void)snprintf(path, sizeof(path), "%s/escape", files_dir);
    (void)symlink("/etc", path);
    (void)snprintf(path, sizeof(path), "%s/in-link.pcap", files_dir);
    (void)symlink("in.pcap", path);
    fz.files_fd = open(files_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(fz.files_fd >= 0, "cannot open the files dir");
    for (k = 0; k < 4; k++)
        policies[k].files_fd = policies[k].files_dir != NULL ? fz.files_fd : -1;
}

/* As main.c's stop() then start(): every node drops and is reaped (its
 * handles close), the requests shut down and start again */
static void
reset(void)
{
    int k;

    for (k = 0; k < 2; k++)
        if (fz.dist.live[k] != NULL)
            ewp_peer_drop(fz.dist.live[k], "shutdown");
    reap();
    FUZZ_CHECK(ewp_handles_count(fz.req.handles) == 0, "%d handles after every node left",
               ewp_handles_count(fz.req.handles));
    ewp_request_shutdown(&fz.req);
    FUZZ_CHECK(fz.ncaps == 0, "%d captures open after shutdown", fz.ncaps);
    FUZZ_CHECK(fz.njobs == 0 && fz.compiler == NULL, "compile worker not shut down");
    fz.ref_seq = 0;
    fz.pid_seq = 0;
    fz.inputs = 0;
    fz.no_devices = 0;
    fz.dist.fail_in[0] = fz.dist.fail_in[1] = 0;
    fz.req.policy = policies[0];
    FUZZ_CHECK(ewp_request_init(&fz.req) == 0, "ewp_request_init failed");
    fz.hist_len = 0;
    fz.hist_raw = 0;
    fz.hist_lost = 0;
}

static void
history_add(const uint8_t *d, size_t n, int raw)
{
    if (raw) {
        fz.hist_raw = 1;
        fz.hist_len = n < HIST_SIZE ? n : 0;
        fz.hist_lost = n >= HIST_SIZE;
        if (fz.hist_len > 0)
            memcpy(fz.hist, d, n);
        return;
    }
    if (n > 0xffff || fz.hist_len + 2 + n > HIST_SIZE) {
        fz.hist_lost = 1;
        return;
    }
    fz.hist[fz.hist_len] = (unsigned char)(n >> 8);
    fz.hist[fz.hist_len + 1] = (unsigned char)n;
    memcpy(fz.hist + fz.hist_len + 2, d, n);
    fz.hist_len += 2 + n;
}

static void
history_report(const char *report)
{
    (void)report;
    history_dump();
}

/* On a failed check or an ASan report: the inputs since the last reset,
 * as one 'S' input. (UBSan and LSan reports do not call back.) */
static void
history_dump(void)
{
    const char *path = getenv("EWP_FUZZ_HISTORY");
    FILE *f;

    if (path == NULL || fz.hist_lost || (fz.hist_len == 0 && !fz.hist_raw))
        return;
    f = fopen(path, "wb");
    if (f == NULL)
        return;
    if (!fz.hist_raw)
        (void)fputc('S', f);
    (void)fwrite(fz.hist, 1, fz.hist_len, f);
    (void)fclose(f);
    (void)fprintf(stderr, "fuzz_dispatch: inputs since the last reset written to %s\n", path);
}

/* To peer: Control [Message], for reading what a reproducer does */
static void
trace_frame(const struct ewp_peer *p, const char *buf, size_t len, int msg)
{
    char *ctl = NULL, *m = NULL;
    int i = 2;

    (void)len;
    (void)ei_s_print_term(&ctl, buf, &i);
    if (msg > 0) {
        i = msg;
        (void)ei_s_print_term(&m, buf, &i);
    }
    (void)fprintf(stderr, "fuzz_dispatch: to %s: %s %s\n", peer_names[p->slot], ctl != NULL ? ctl : "?",
                  m != NULL ? m : "");
    free(ctl);
    free(m);
}

static uint32_t
get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- ei: predictable refs and pids ---- */

int
__wrap_ei_make_ref(ei_cnode *ec, erlang_ref *ref)
{
    if (__real_ei_make_ref(ec, ref) < 0)
        return -1;
    ref->len = 3;
    memset(ref->n, 0, sizeof(ref->n));
    ref->n[0] = fz.ref_seq++;
    return 0;
}

int
__wrap_ei_make_pid(ei_cnode *ec, erlang_pid *pid)
{
    if (__real_ei_make_pid(ec, pid) < 0)
        return -1;
    pid->num = fz.pid_seq++;
    pid->serial = 0;
    return 0;
}

/* ---- dist.h: the rule of dist.c, see the top of this file ---- */

/* An armed 'X' for p's node counts down; at zero this send or reserve fails */
static int
fail_now(struct ewp_peer *p)
{
    int *n = &fz.dist.fail_in[p->slot];

    return *n > 0 && --*n == 0;
}

/* Queue one frame; -1 when the peer is dead or is dropped now */
int
ewp_peer_send(struct ewp_peer *p, const char *body, size_t len)
{
    int reply;

    known_peer(p, "send");
    FUZZ_CHECK(fz.dist.filling == NULL, "send while a frame is being filled in place");
    reply = check_frame(p, body, len);
    if (p->dead)
        return -1;
    if (fail_now(p) || p->queued + len + 4 > FAKE_OUT_MAX) {
        ewp_peer_drop(p, "output buffer full");
        return -1;
    }
    p->queued += len + 4;
    p->sent++;
    fz.replied |= reply;
    return 0;
}

char *
ewp_peer_reserve(struct ewp_peer *p, size_t max)
{
    return ewp_peer_reserve_more(p, 0, max);
}

/* The body is at out[cur] + 4, behind the length as in dist.c. Growing
 * moves it to the other buffer and poisons the old one, so a stale
 * pointer is caught; everything past the reservation is poisoned. A
 * fresh reserve fails for a dead peer, or dropping it when 'X' says so;
 * any reserve past FAKE_PACKET_MAX fails (a failed growth keeps the frame,
 * as dist.c's does). */
char *
ewp_peer_reserve_more(struct ewp_peer *p, size_t have, size_t more)
{
    int to = fz.cur;

    known_peer(p, "reserve");
    FUZZ_CHECK(fz.dist.filling == NULL || fz.dist.filling == p,
               "frames filled for two peers at once");
    if (have > 0) {
        FUZZ_CHECK(fz.dist.filling == p && have <= p->reserved,
                   "grow a frame of %zu bytes, %zu reserved", have, p->reserved);
        FUZZ_CHECK(!p->dead, "grow a frame of a dead peer");
    } else {
        fz.dist.filling = NULL;
        if (p->dead)
            return NULL;
        if (fail_now(p)) {
            ewp_peer_drop(p, "connection reset");
            return NULL;
        }
    }
    if (have > OUT_SIZE || more > OUT_SIZE - 4 - have ||
        p->queued + have + more + 4 > FAKE_PACKET_MAX)
        return NULL;
    if (have > 0)
        to = !fz.cur;
    ASAN_POISON_MEMORY_REGION(fz.out[to], fz.open_len[to]);
    ASAN_UNPOISON_MEMORY_REGION(fz.out[to], 4 + have + more);
    fz.open_len[to] = 4 + have + more;
    if (to != fz.cur) {
        memcpy(fz.out[to], fz.out[fz.cur], 4 + have);
        ASAN_POISON_MEMORY_REGION(fz.out[fz.cur], fz.open_len[fz.cur]);
        fz.open_len[fz.cur] = 0;
        fz.cur = to;
    }
    fz.dist.filling = p;
    p->reserved = have + more;
    return (char *)fz.out[fz.cur] + 4;
}

char *
ewp_peer_frame_body(struct ewp_peer *p)
{
    known_peer(p, "frame body");
    FUZZ_CHECK(fz.dist.filling == p, "frame body asked for with no frame reserved");
    return (char *)fz.out[fz.cur] + 4;
}

void
ewp_peer_commit(struct ewp_peer *p, size_t used)
{
    known_peer(p, "commit");
    FUZZ_CHECK(fz.dist.filling == p, "commit with no frame reserved");
    FUZZ_CHECK(!p->dead, "commit to a dead peer");
    FUZZ_CHECK(used <= p->reserved, "commit of %zu bytes, %zu reserved", used, p->reserved);
    (void)check_frame(p, (const char *)fz.out[fz.cur] + 4, used);
    fz.dist.filling = NULL;
    p->queued += used + 4;
    p->sent++;
    ASAN_POISON_MEMORY_REGION(fz.out[fz.cur], fz.open_len[fz.cur]);
    fz.open_len[fz.cur] = 0;
}

/* Marked dead, off the live list: reap() tears it down. Never calls up. */
void
ewp_peer_drop(struct ewp_peer *p, const char *why)
{
    known_peer(p, "drop");
    fuzz_touch(why, strlen(why));
    if (p->dead)
        return;
    if (fz.trace)
        (void)fprintf(stderr, "fuzz_dispatch: %s dropped: %s\n", peer_names[p->slot], why);
    p->dead = 1;
    if (fz.dist.live[p->slot] == p)
        fz.dist.live[p->slot] = NULL;
    p->next = fz.dist.dead;
    fz.dist.dead = p;
}

/* Pass-through frames only: the fake peers never offer the atom cache
 * (its header and templates are fuzz_atomcache's) */
struct ewp_ac_out *
ewp_peer_atom_cache(const struct ewp_peer *p)
{
    known_peer(p, "atom cache");
    return NULL;
}

int
ewp_peer_congested(const struct ewp_peer *p)
{
    known_peer(p, "congested");
    return p->congested;
}

int
ewp_peer_dead(const struct ewp_peer *p)
{
    known_peer(p, "dead");
    return p->dead;
}

size_t
ewp_peer_queued(const struct ewp_peer *p)
{
    known_peer(p, "queued");
    return p->queued;
}

const char *
ewp_peer_name(const struct ewp_peer *p)
{
    known_peer(p, "name");
    return peer_names[p->slot];
}

/* Connected peers, node 0 first */
struct ewp_peer *
ewp_dist_peer_next(struct ewp_dist *d, struct ewp_peer *prev)
{
    int k = prev == NULL ? 0 : prev->slot + 1;

    FUZZ_CHECK(d == &fz.dist, "ewp_dist_peer_next of another transport");
    for (; k < 2; k++)
        if (d->live[k] != NULL)
            return d->live[k];
    return NULL;
}

struct ewp_peer *
ewp_dist_peer_by_name(struct ewp_dist *d, const char *name)
{
    int k;

    FUZZ_CHECK(d == &fz.dist, "ewp_dist_peer_by_name of another transport");
    for (k = 0; k < 2; k++)
        if (d->live[k] != NULL && strcmp(peer_names[k], name) == 0)
            return d->live[k];
    return NULL;
}

/* ---- capture.h: "fake0" (Ethernet) and "fake1" (NFLOG, where a filter
 * naming tcp fails, as on the real datalink) open; filters containing "bad"
 * fail; write and stats succeed ---- */

int
ewp_capture_open(struct ev_loop *loop, struct ewp_capture *c, const char *dev,
                 const struct ewp_capture_opts *o, char *errbuf, size_t errlen)
{
    struct fake_pcap *fp;
    int dlt;

    if (strcmp(dev, "fake0") == 0) {
        dlt = DLT_EN10MB;
    } else if (strcmp(dev, "fake1") == 0) {
        dlt = 239; /* DLT_NFLOG */
    } else {
        (void)snprintf(errbuf, errlen, "%s: No such device exists (SIOCGIFHWADDR: No such device)",
                       dev);
        return -1;
    }
    if (fz.ncaps == CAPTURES_MAX) {
        (void)snprintf(errbuf, errlen, "too many fake captures");
        return -1;
    }
    memset(c, 0, sizeof(*c));
    fp = malloc(sizeof(*fp)); /* a handle that is never closed leaks it */
    if (fp == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    fp->snaplen = o->snaplen <= 0 || o->snaplen > SNAPLEN_MAX ? SNAPLEN_MAX : o->snaplen;
    fp->dlt = dlt;
    c->p = (pcap_t *)fp;
    c->loop = loop;
    c->fd = -1;
    c->dlt = dlt;
    fz.caps[fz.ncaps].c = c;
    fz.caps[fz.ncaps].snaplen = o->snaplen;
    fz.ncaps++;
    return 0;
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The path of fd, from /proc (files.c opened it) */
static void
fd_path(int fd, char *path, size_t len)
{
    char proc[64];
    ssize_t n;

    (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, path, len - 1);
    FUZZ_CHECK(n > 0, "fd %d is not open", fd);
    path[n] = '\0';
}

/* As capture.c: fd is ours, closed on success (here: the fake reads
 * nothing) and on failure */
int
ewp_capture_open_offline(struct ev_loop *loop, struct ewp_capture *c, int fd,
                         int nano, char *errbuf, size_t errlen)
{
    struct fake_pcap *fp;
    char path[PATH_MAX];

    (void)nano;
    fd_path(fd, path, sizeof(path));
    (void)close(fd);
    FUZZ_CHECK(strncmp(path, files_dir, strlen(files_dir)) == 0 &&
                   path[strlen(files_dir)] == '/',
               "open_offline of %s, outside --files %s", path, files_dir);
    if (!ends_with(path, ".pcap")) {
        (void)snprintf(errbuf, errlen, "unknown file format");
        return -1;
    }
    if (fz.ncaps == CAPTURES_MAX) {
        (void)snprintf(errbuf, errlen, "too many fake captures");
        return -1;
    }
    memset(c, 0, sizeof(*c));
    fp = malloc(sizeof(*fp));
    FUZZ_CHECK(fp != NULL, "out of memory");
    fp->snaplen = SNAPLEN_MAX;
    fp->dlt = DLT_EN10MB;
    c->p = (pcap_t *)fp;
    c->loop = loop;
    c->fd = -1;
    c->offline = 1;
    c->dlt = DLT_EN10MB;
    fz.caps[fz.ncaps].c = c;
    fz.caps[fz.ncaps].snaplen = SNAPLEN_MAX;
    fz.ncaps++;
    return 0;
}

int
ewp_capture_dump_open(struct ewp_capture *c, int fd, char *errbuf, size_t errlen)
{
    char path[PATH_MAX];

    fd_path(fd, path, sizeof(path));
    (void)close(fd);
    /* a dump made by an input is removed at once: O_EXCL would refuse
     * the next input's */
    (void)unlink(path);
    FUZZ_CHECK(c->p != NULL, "dump_open on a closed capture");
    FUZZ_CHECK(c->dumper == NULL, "a second dump_open");
    FUZZ_CHECK(strncmp(path, files_dir, strlen(files_dir)) == 0 &&
                   path[strlen(files_dir)] == '/',
               "dump to %s, outside --files %s", path, files_dir);
    if (ends_with(path, "/bad.pcap")) {
        (void)snprintf(errbuf, errlen, "%s: Permission denied", path);
        return -1;
    }
    c->dumper = malloc(sizeof(int)); /* a token, freed by close */
    FUZZ_CHECK(c->dumper != NULL, "out of memory");
    return 0;
}

int
ewp_capture_filter(struct ewp_capture *c, const char *filter, size_t len, int optimize,
                   uint32_t netmask, char *errbuf, size_t errlen)
{
    (void)optimize;
    (void)netmask;
    FUZZ_CHECK(c->p != NULL, "filter on a closed capture");
    fuzz_touch(filter, len);
    if (memmem(filter, len, "bad", 3) != NULL) {
        (void)snprintf(errbuf, errlen, "syntax error in filter expression");
        return -1;
    }
    if (c->dlt == 239 && memmem(filter, len, "tcp", 3) != NULL) {
        (void)snprintf(errbuf, errlen, "tcp does not apply to NFLOG");
        return -1;
    }
    return 0;
}

int
ewp_capture_setprog(struct ewp_capture *c, struct bpf_program *prog, char *errbuf,
                    size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    FUZZ_CHECK(c->p != NULL, "setprog on a closed capture");
    FUZZ_CHECK(prog->bf_len > 0 && prog->bf_insns != NULL, "setprog of an empty program");
    fuzz_touch(prog->bf_insns, prog->bf_len * sizeof(*prog->bf_insns));
    return 0;
}

int
ewp_capture_write(struct ewp_capture *c, const void *buf, size_t len, char *errbuf,
                  size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    FUZZ_CHECK(c->p != NULL, "write on a closed capture");
    fuzz_touch(buf, len);
    return 0;
}

int
ewp_capture_stats(struct ewp_capture *c, struct pcap_stat *ps, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    FUZZ_CHECK(c->p != NULL, "stats on a closed capture");
    memset(ps, 0, sizeof(*ps));
    ps->ps_recv = 42;
    ps->ps_drop = 1;
    ps->ps_ifdrop = UINT_MAX;
    return 0;
}

/* As capture.c: a live capture whose interface is gone ('P' flags & 4)
 * stops and reports through error_cb */
int
ewp_capture_check(struct ewp_capture *c)
{
    FUZZ_CHECK(c != NULL, "ewp_capture_check of NULL");
    if (c != fz.vanish || c->p == NULL || c->failed || c->offline)
        return 0;
    ewp_capture_stop(c);
    c->failed = 1;
    if (c->error_cb != NULL)
        c->error_cb(c, "The interface disappeared");
    return -1;
}

void
ewp_capture_start(struct ewp_capture *c)
{
    if (c->p == NULL || c->watching || c->failed)
        return;
    c->watching = 1;
}

void
ewp_capture_stop(struct ewp_capture *c)
{
    c->watching = 0;
}

void
ewp_capture_close(struct ewp_capture *c)
{
    int k;

    ewp_capture_stop(c);
    free(c->dumper);
    c->dumper = NULL;
    if (c->p == NULL)
        return;
    for (k = 0; k < fz.ncaps; k++)
        if (fz.caps[k].c == c)
            break;
    FUZZ_CHECK(k < fz.ncaps, "close of a capture that was never opened");
    fz.caps[k] = fz.caps[--fz.ncaps];
    free(c->p);
    c->p = NULL;
}

/* The fake pcap_t cannot be compiled against: jobs use a dead handle */
struct ewp_pcapshare *
ewp_capture_share(struct ewp_capture *c)
{
    FUZZ_CHECK(c->p != NULL, "a share of a closed capture");
    return NULL;
}

/* Every fake capture has a pcap_t of its own: none is shared, so every
 * handle counts its ring (handles.c, request.c) */
int
ewp_capture_joins(struct ev_loop *loop, const char *dev, const struct ewp_capture_opts *o)
{
    (void)loop;
    (void)o;
    FUZZ_CHECK(dev != NULL, "joins of a NULL device");
    return 0;
}

struct ewp_capture *
ewp_capture_other(const struct ewp_capture *c)
{
    FUZZ_CHECK(c != NULL, "ewp_capture_other of NULL");
    return NULL;
}

int
ewp_capture_default_dev(char *dev, size_t devlen, char *errbuf, size_t errlen)
{
    if (fz.no_devices) {
        (void)snprintf(errbuf, errlen, "no suitable device found");
        return -1;
    }
    (void)snprintf(dev, devlen, "%s", "fake0");
    return 0;
}

/* ---- compile.h: a queue completed by 'J', and a fake compiler ---- */

struct ewp_compiler *
ewp_compile_new(struct ev_loop *loop, ewp_compile_done_cb done, void *ctx)
{
    (void)loop;
    FUZZ_CHECK(fz.compiler == NULL, "a second compile pool");
    fz.compiler = calloc(1, sizeof(*fz.compiler));
    FUZZ_CHECK(fz.compiler != NULL, "out of memory");
    fz.compiler->done = done;
    fz.compiler->ctx = ctx;
    return fz.compiler;
}

void
ewp_compile_submit(struct ewp_compiler *cc, struct ewp_compile_job *job)
{
    struct ewp_compile_job **jj;

    FUZZ_CHECK(cc != NULL && cc == fz.compiler, "submit to no compile pool");
    FUZZ_CHECK(job->text != NULL, "job without text");
    job->next = NULL;
    for (jj = &fz.jobs; *jj != NULL; jj = &(*jj)->next)
        ;
    *jj = job;
    fz.njobs++;
}

/* "Compile" one text: touch all of it (NUL-terminated), fail as
 * documented at the top, else a one-instruction program. */
static int
fake_compile(struct ewp_compile_job *job, const char *text)
{
    fuzz_touch(text, strlen(text) + 1);
    if (strstr(text, "bad") != NULL) {
        (void)snprintf(job->errbuf, sizeof(job->errbuf), "syntax error in filter expression");
        return -1;
    }
    if (job->linktype == 239 && strstr(text, "tcp") != NULL) {
        (void)snprintf(job->errbuf, sizeof(job->errbuf), "tcp does not apply to NFLOG");
        return -1;
    }
    job->prog.bf_len = 1;
    job->prog.bf_insns = calloc(1, sizeof(*job->prog.bf_insns));
    FUZZ_CHECK(job->prog.bf_insns != NULL, "out of memory");
    return 0;
}

int
ewp_compile_run(struct ewp_compile_job *job)
{
    job->ok = fake_compile(job, job->text) == 0 ||
              (job->fallback != NULL && fake_compile(job, job->fallback) == 0);
    return job->ok ? 0 : -1;
}

/* As compile.c: the program, the texts and the job; not job->data */
void
ewp_compile_free(struct ewp_compile_job *job)
{
    if (job->ok)
        free(job->prog.bf_insns);
    free(job->text);
    free(job->fallback);
    free(job);
}

/* As compile.c: jobs not done get discard, not their callback, and are freed */
void
ewp_compile_shutdown(struct ewp_compiler *cc, ewp_compile_done_cb discard, int running)
{
    (void)running; /* the fake runs jobs in the loop: none is ever running */
    struct ewp_compile_job *job;

    if (cc == NULL)
        return;
    FUZZ_CHECK(cc == fz.compiler, "shutdown of another compile pool");
    while ((job = fz.jobs) != NULL) {
        fz.jobs = job->next;
        discard(cc->ctx, job);
        ewp_compile_free(job);
    }
    fz.njobs = 0;
    free(cc);
    fz.compiler = NULL;
}

/* ---- libev: request.c's interface check timer (never started: no loop) ---- */

void
ev_timer_start(struct ev_loop *loop, ev_timer *w)
{
    FUZZ_CHECK(loop != NULL && w != NULL, "ev_timer_start without a loop");
}

void
ev_timer_stop(struct ev_loop *loop, ev_timer *w)
{
    FUZZ_CHECK(loop != NULL && w != NULL, "ev_timer_stop without a loop");
}

/* ---- libpcap: the calls request.c and filter.c make themselves ---- */

int
pcap_snapshot(pcap_t *p)
{
    const struct fake_pcap *fp = (const struct fake_pcap *)p;

    FUZZ_CHECK(p != NULL, "pcap_snapshot of NULL");
    return fp->snaplen;
}

static struct sockaddr *
fake_sa(int family, const char *text)
{
    struct sockaddr_storage *ss = calloc(1, sizeof(*ss));

    if (ss == NULL)
        return NULL;
    ss->ss_family = (sa_family_t)family;
    if (family == AF_INET)
        (void)inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr);
    else if (family == AF_INET6)
        (void)inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr);
    return (struct sockaddr *)ss;
}

static pcap_addr_t *
fake_addr(pcap_addr_t *next, int family, const char *addr, const char *mask, const char *bcast)
{
    pcap_addr_t *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return next;
    a->next = next;
    a->addr = fake_sa(family, addr);
    if (mask != NULL)
        a->netmask = fake_sa(family, mask);
    if (bcast != NULL)
        a->broadaddr = fake_sa(family, bcast);
    return a;
}

static pcap_if_t *
fake_if(pcap_if_t *next, const char *name, const char *desc, pcap_addr_t *addrs)
{
    pcap_if_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return next;
    d->next = next;
    d->name = strdup(name);
    d->description = desc != NULL ? strdup(desc) : NULL;
    d->addresses = addrs;
    d->flags = PCAP_IF_UP | PCAP_IF_RUNNING;
    return d;
}

int
pcap_findalldevs(pcap_if_t **alldevs, char *errbuf)
{
    pcap_if_t *d;

    if (fz.no_devices) {
        (void)snprintf(errbuf, PCAP_ERRBUF_SIZE, "fake: no devices");
        return -1;
    }
    d = fake_if(NULL, "fake1", NULL, fake_addr(NULL, AF_PACKET, "", NULL, NULL));
    d = fake_if(d, "fake0", "fake Ethernet",
                fake_addr(fake_addr(NULL, AF_INET6, "fe80::1", "ffff:ffff:ffff:ffff::", NULL),
                          AF_INET, "192.0.2.1", "255.255.255.0", "192.0.2.255"));
    *alldevs = d;
    return 0;
}

void
pcap_freealldevs(pcap_if_t *alldevs)
{
    while (alldevs != NULL) {
        pcap_if_t *next = alldevs->next;
        pcap_addr_t *a = alldevs->addresses;

        while (a != NULL) {
            pcap_addr_t *an = a->next;

            free(a->addr);
            free(a->netmask);
            free(a->broadaddr);
            free(a->dstaddr);
            free(a);
            a = an;
        }
        free(alldevs->name);
        free(alldevs->description);
        free(alldevs);
        alldevs = next;
    }
}

/* ---- log.h: format everything, print nothing ---- */

int ewp_verbose = 2;

void
ewp_log_write(const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    (void)level;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fuzz_touch(line, strnlen(line, sizeof(line)));
}
