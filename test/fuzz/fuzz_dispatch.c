/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * libFuzzer target for the dispatcher: cnode/command.c, rpc.c, decode.c and
 * encode.c, with every function of node.h, capture.h and compile.h (and
 * log.c, and the libpcap calls command.c makes itself) replaced by the
 * fakes below. No sockets, no pcap, no threads, no event loop.
 *
 * The compile worker is deterministic here: a submitted job waits in a
 * queue until a 'J' input completes it (ewp_compile_run, then the done
 * callback, as compile.c's wake_cb does), so that a close, an exit or a
 * lost peer can come between a large filter's submission and its reply.
 * A fake compile fails for text containing "bad", and for "tcp" on fake1.
 *
 * Savefiles: --files is a real directory ($EWP_FUZZ_FILES, else a new one
 * under /tmp) holding in.pcap, notpcap.txt, sub/ and escape -> /etc, so that
 * command.c's realpath confinement runs for real; opening and dumping are
 * fake (nothing is read or written): a path ending in ".pcap" opens, a dump
 * to a file named bad.pcap fails.
 *
 * Handles live on from one input to the next, so that an open in one input
 * and a close, filter, write, exit or packet in a later one meet. Every
 * RESET_EVERY inputs, and whenever more than HANDLES_MAX are open, the
 * harness closes everything (ewp_command_close_all). To reproduce a finding
 * that needed earlier inputs, the inputs since the last reset are written,
 * as one 'S' input, to $EWP_FUZZ_HISTORY on a failed check or an ASan
 * report.
 *
 * The first byte chooses the operation:
 *
 *   131       the whole input is a message to the registered name ewpcap,
 *             as node.c hands it to ewp_command_reg_send after the frame
 *             check (version byte included)
 *   'N' 'R'   the rest is a message to net_kernel / rex
 *   'E' 'L'   the rest is 131 and a control tuple {Op, From, To, ...}:
 *             ewp_command_exit / ewp_command_link (From, To)
 *   'D'       ewp_command_peer_down of peer data[1] & 1; the peer counts as
 *             gone (ewp_node_peer_by_name) until it sends again
 *   'J'       complete data[1] % 4 + 1 queued compile jobs (FIFO)
 *   'F' 'f'   the rest is a whole frame body ('p', 131, Control, [131, Msg])
 *             from peer 0 / 1, parsed as node.c's frame() does (REG_SEND to
 *             any name, EXIT*, LINK, UNLINK_ID, SPAWN_REQUEST, MONITOR_P,
 *             MONITOR_P_EXIT)
 *   'P'       packets for an open capture: [capture, count, flags] then per
 *             packet [caplen:16, extra:8, sec:32, usec:24] and the bytes;
 *             delivered like capture.c's dispatch (packets or the dump,
 *             flush, then flags & 1 a read error, or flags & 2 on a
 *             savefile no packet and the end of file)
 *   'C'       [bits]: bit 0 set peer 0 congested, clear it (and drain);
 *             bit 1 no device for dev/open(<<>>); bits 2-3 choose the
 *             policy (--files, defaults, --allow fake1 lo, --no-inject and
 *             handle limits) until the next reset
 *   'S'       a sequence: reset, then records [len:16, input] (no 'S')
 *   other     ignored
 *
 * The peers are "fuzz@host" (0) and "other@host" (1); our node is
 * "ewpcap@host", creation FUZZ_CREATION. ei_make_ref/ei_make_pid are
 * wrapped (-Wl,--wrap) to count from 0 after each reset, so the corpus
 * can name the first handle's ref and pid (see make_corpus.escript).
 *
 * Checked besides ASan/UBSan/LSan: each frame sent (ewp_peer_send) or
 * filled in place (ewp_peer_reserve/commit) is a well-formed 'p' frame
 * whose terms ewp_decode_check accepts; a call to ewpcap from the peer's
 * own node gets a reply sent to From; nothing is sent while a frame is
 * being filled in place; a reserved frame is never written past its
 * reservation (the rest of the buffer is poisoned) nor used after it moved;
 * every open handle has exactly one open fake capture. With $EWP_FUZZ_TRACE
 * set, every frame is printed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
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
#include "command.h"
#include "compile.h"
#include "decode.h"
#include "encode.h"
#include "log.h"
#include "node.h"
#include "rpc.h"

#include "fuzz_common.h"

#define FUZZ_OUR_NAME "ewpcap@host"
#define FUZZ_CREATION 0x5eedu
#define FUZZ_PORT 4370
#define RESET_EVERY 64         /* inputs between two resets */
#define HANDLES_MAX 16         /* more open handles force a reset */
#define CAPTURES_MAX 64        /* fake captures open at once */
#define OUT_SIZE (1u << 20)    /* one in-place frame at most this large */
#define HIST_SIZE (256u << 10) /* inputs kept since the last reset */
#define PACKETS_MAX 16         /* packets per 'P' */
#define SNAPLEN_MAX 262144     /* libpcap's MAXIMUM_SNAPLEN */

struct ewp_peer {
    const char *name;   /* node name */
    int down;           /* ewp_command_peer_down'd, not back yet */
    int congested;      /* ewp_peer_congested */
    int filling;        /* a frame reserved, not yet committed */
    size_t reserved;    /* its body's room */
    unsigned long sent; /* frames sent or committed */
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

static struct ewp_peer peers[2] = {{.name = "fuzz@host"}, {.name = "other@host"}};

static const char *const allowed[] = {"fake1", "lo"};
static char files_dir[PATH_MAX];         /* --files, set up once */
static struct ewp_policy policies[4] = {
    {.files_dir = files_dir},            /* --files DIR */
    {.allow = NULL},                     /* ewpcapd's defaults */
    {.allow = allowed, .nallow = 2, .files_dir = files_dir}, /* --allow fake1 lo */
    {.no_inject = 1, .max_handles = 3, .max_node_handles = 2, .files_dir = files_dir},
};

static struct {
    int ready;                          /* set up once */
    ei_cnode ec;                        /* ewp_node_cnode */
    unsigned int ref_seq, pid_seq;      /* wrapped ei_make_ref/pid */
    unsigned long inputs;               /* since the last reset */
    struct fake_capture caps[CAPTURES_MAX]; /* open fake captures */
    int ncaps;                          /* how many */
    int no_devices;                     /* ewp_capture_default_dev fails */
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
    ewp_compile_done_cb compile_done;   /* command.c's */
    int compile_started;                /* between init and shutdown */
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
static void run(const uint8_t *d, size_t n);
static void op_reg_send(struct ewp_peer *peer, const char *name, const uint8_t *d, size_t n);
static void op_signal(struct ewp_peer *peer, int link, const uint8_t *d, size_t n);
static void op_frame(struct ewp_peer *peer, const uint8_t *d, size_t n);
static void frame(struct ewp_peer *p, const char *buf, size_t len);
static void op_packets(const uint8_t *d, size_t n);
static void op_congestion(const uint8_t *d, size_t n);
static void op_compiled(const uint8_t *d, size_t n);
static struct ewp_peer *peer_in(struct ewp_peer *p);
static void check_frame(const struct ewp_peer *p, const char *buf, size_t len);
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
                run(data + pos, len);
            pos += len;
        }
        reset();
        return 0;
    }
    if (++fz.inputs >= RESET_EVERY || ewp_command_count() > HANDLES_MAX)
        reset();
    history_add(data, size, 0);
    run(data, size);
    return 0;
}

/* ---- the operations ---- */

static void
run(const uint8_t *d, size_t n)
{
    switch (d[0]) {
    case 131:
        op_reg_send(peer_in(&peers[0]), "ewpcap", d, n);
        break;
    case 'N':
        op_reg_send(peer_in(&peers[0]), "net_kernel", d + 1, n - 1);
        break;
    case 'R':
        op_reg_send(peer_in(&peers[0]), "rex", d + 1, n - 1);
        break;
    case 'E':
    case 'L':
        op_signal(peer_in(&peers[0]), d[0] == 'L', d + 1, n - 1);
        break;
    case 'D': {
        struct ewp_peer *p = &peers[n > 1 ? d[1] & 1 : 0];

        if (!p->down) {
            p->down = 1;
            ewp_command_peer_down(p);
        }
        break;
    }
    case 'F':
    case 'f':
        op_frame(peer_in(&peers[d[0] == 'f']), d + 1, n - 1);
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
    default:
        break;
    }
    fuzz_guard_release();
    check_state();
}

/* A peer that sends is connected (again) */
static struct ewp_peer *
peer_in(struct ewp_peer *p)
{
    p->down = 0;
    return p;
}

/* A message (version byte first) to a registered name, if node.c's frame
 * check would let it through. */
static void
op_reg_send(struct ewp_peer *peer, const char *name, const uint8_t *d, size_t n)
{
    const char *msg;
    erlang_pid from;
    int i = 1, expect, njobs = fz.njobs;

    if (n < 2 || d[0] != 131)
        return;
    msg = fuzz_guard_copy(d, n);
    if (ewp_decode_check(msg, n, &i) < 0 || (size_t)i != n)
        return;

    /* a well-formed call to ewpcap from this peer's node must be answered */
    i = 1;
    expect = strcmp(name, "ewpcap") == 0 &&
             ewp_decode_call(msg, &i, &from, NULL, NULL) == 0 &&
             strcmp(from.node, peer->name) == 0;
    fz.expect_to = expect ? &from : NULL;
    fz.replied = 0;
    ewp_command_reg_send(peer, name, msg, n);
    /* unless its filter went to the compile worker: then the reply waits */
    FUZZ_CHECK(!expect || fz.replied || fz.njobs > njobs, "a call from %s<%u.%u> got no reply",
               from.node, from.num, from.serial);
    fz.expect_to = NULL;
}

/* 131 {Op, From, To, ...}: an exit signal or a link */
static void
op_signal(struct ewp_peer *peer, int link, const uint8_t *d, size_t n)
{
    const char *buf;
    erlang_pid from, to;
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
    if (link)
        ewp_command_link(peer, &from, &to);
    else
        ewp_command_exit(peer, &from, &to);
}

static void
op_frame(struct ewp_peer *peer, const uint8_t *d, size_t n)
{
    if (n == 0)
        return;
    frame(peer, fuzz_guard_copy(d, n), n);
}

/* node.c's frame(), minus the logging: the checks and the dispatch must
 * match it, so that only what node.c would pass reaches command.c. */
static void
frame(struct ewp_peer *p, const char *buf, size_t len)
{
    char to_name[MAXATOMLEN];
    erlang_pid from, to;
    int i = 1, ctl, msg = -1, arity, id_len;
    long op;

    if (buf[0] != EWP_PASS_THROUGH || len < 2 || (unsigned char)buf[1] != EWP_VERSION_MAGIC)
        return;
    i = 2;
    ctl = i;
    if (ewp_decode_check(buf, len, &i) < 0)
        return;
    if ((size_t)i < len) {
        if ((unsigned char)buf[i] != EWP_VERSION_MAGIC)
            return;
        msg = i;
        i++;
        if (ewp_decode_check(buf, len, &i) < 0 || (size_t)i != len)
            return;
    }

    i = ctl;
    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity < 1 ||
        ei_decode_long(buf, &i, &op) < 0)
        return;

    switch (op) {
    case EWP_DOP_REG_SEND:
    case EWP_DOP_REG_SEND_TT:
        if (arity < 4 || msg < 0 || ei_skip_term(buf, &i) < 0 || ei_skip_term(buf, &i) < 0 ||
            ei_decode_atom(buf, &i, to_name) < 0)
            return;
        ewp_command_reg_send(p, to_name, buf + msg, len - (size_t)msg);
        return;

    case EWP_DOP_EXIT:
    case EWP_DOP_EXIT2:
    case EWP_DOP_EXIT_TT:
    case EWP_DOP_EXIT2_TT:
        if (arity < 4 || ei_decode_pid(buf, &i, &from) < 0)
            return;
        if (ei_decode_pid(buf, &i, &to) < 0)
            return;
        ewp_command_exit(p, &from, &to);
        return;

    case EWP_DOP_LINK:
        if (arity != 3 || ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0)
            return;
        ewp_command_link(p, &from, &to);
        return;

    case EWP_DOP_UNLINK_ID: {
        ei_x_buff x;
        int id = i;

        if (arity != 4 || ei_skip_term(buf, &i) < 0)
            return;
        id_len = i - id;
        if (ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0)
            return;
        if (ei_x_new(&x) < 0)
            return;
        if (ewp_encode_unlink_id(&x, EWP_DOP_UNLINK_ID_ACK, buf + id, id_len, &to, &from) == 0)
            (void)ewp_peer_send(p, x.buff, (size_t)x.index);
        ei_x_free(&x);
        return;
    }

    case EWP_DOP_SPAWN_REQUEST:
    case EWP_DOP_SPAWN_REQUEST_TT: {
        char mod[MAXATOMLEN], fun[MAXATOMLEN];
        int reqid = i, reqid_len, mfa;
        long fa;

        if (arity < 6 || msg < 0 || ei_skip_term(buf, &i) < 0)
            return;
        reqid_len = i - reqid;
        if (ei_decode_pid(buf, &i, &from) < 0 || ei_skip_term(buf, &i) < 0 ||
            ei_decode_tuple_header(buf, &i, &mfa) < 0 || mfa != 3 ||
            ei_decode_atom(buf, &i, mod) < 0 || ei_decode_atom(buf, &i, fun) < 0 ||
            ei_decode_long(buf, &i, &fa) < 0)
            return;
        ewp_rpc_spawn(p, buf + reqid, reqid_len, &from, mod, fun, fa, buf + msg,
                      len - (size_t)msg);
        return;
    }

    case EWP_DOP_MONITOR_P: {
        int to_i, ref_i;

        if (arity != 4 || ei_decode_pid(buf, &i, &from) < 0)
            return;
        to_i = i;
        if (ei_skip_term(buf, &i) < 0)
            return;
        ref_i = i;
        if (ei_skip_term(buf, &i) < 0)
            return;
        ewp_command_monitor(p, &from, buf + to_i, ref_i - to_i, buf + ref_i, i - ref_i);
        return;
    }

    case EWP_DOP_MONITOR_P_EXIT: {
        erlang_ref ref;

        if (arity != 5 || ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0 ||
            ei_decode_ref(buf, &i, &ref) < 0)
            return;
        ewp_command_monitor_exit(p, &from, &to, &ref);
        return;
    }

    default:
        return;
    }
}

/* [capture, count, flags], then per packet [caplen:16, extra:8, sec:32,
 * usec:24] and up to caplen bytes. As capture.c's dispatch(): every packet
 * (pcap_dispatch does not stop when the callback pauses the capture), then
 * flush_cb, then on flags & 1 a read error. */
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
    FUZZ_CHECK(!peers[0].filling && !peers[1].filling, "a frame left open after dispatch");
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
        fz.compile_done(job);
    }
}

static void
op_congestion(const uint8_t *d, size_t n)
{
    if (n == 0)
        return;
    if (d[0] & 1) {
        peers[0].congested = 1;
    } else if (peers[0].congested) {
        peers[0].congested = 0;
        ewp_command_peer_drained(&peers[0]);
    }
    if (d[0] & 2)
        fz.no_devices = !fz.no_devices;
    if (d[0] >> 2 & 3)
        (void)ewp_command_init(NULL, &policies[d[0] >> 2 & 3]);
}

/* ---- checks ---- */

/* 'p', 131, Control, [131, Message]: every term checked, nothing left over,
 * a control the daemon sends, a message exactly with SEND. */
static void
check_frame(const struct ewp_peer *p, const char *buf, size_t len)
{
    erlang_pid to;
    int i = 2, msg = -1, arity;
    long op;

    FUZZ_CHECK(len >= 3 && buf[0] == EWP_PASS_THROUGH &&
                   (unsigned char)buf[1] == EWP_VERSION_MAGIC,
               "frame of %zu bytes to %s does not start with 'p', 131", len, p->name);
    FUZZ_CHECK(ewp_decode_check(buf, len, &i) == 0, "bad control term in a frame to %s",
               p->name);
    if ((size_t)i < len) {
        FUZZ_CHECK((unsigned char)buf[i] == EWP_VERSION_MAGIC, "no version byte before message");
        msg = ++i;
        FUZZ_CHECK(ewp_decode_check(buf, len, &i) == 0, "bad message term in a frame to %s",
                   p->name);
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
        if (fz.expect_to != NULL && ei_cmp_pids(&to, (erlang_pid *)fz.expect_to) == 0)
            fz.replied = 1;
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
}

/* After every operation: no frame half-filled, one fake capture per handle. */
static void
check_state(void)
{
    FUZZ_CHECK(!peers[0].filling && !peers[1].filling, "a frame left open");
    FUZZ_CHECK(fz.ncaps == ewp_command_count(), "%d captures open for %d handles", fz.ncaps,
               ewp_command_count());
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
    FUZZ_CHECK(ewp_command_init(NULL, &policies[0]) == 0, "ewp_command_init failed");
    /* not __sanitizer_set_death_callback: libFuzzer owns that one */
    __asan_set_error_report_callback(history_report);
    fuzz_failure_hook = history_dump;
}

/* The --files directory: see the top of the file */
static void
make_files(void)
{
    const char *env = getenv("EWP_FUZZ_FILES");
    char tmpl[] = "/tmp/ewpfuzz-files.XXXXXX";
    char path[PATH_MAX + 32];
    const char *dir;
    FILE *f;

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
}

static void
reset(void)
{
    ewp_command_close_all();
    FUZZ_CHECK(fz.ncaps == 0, "%d captures open after close_all", fz.ncaps);
    FUZZ_CHECK(ewp_command_count() == 0, "%d handles after close_all", ewp_command_count());
    fz.ref_seq = 0;
    fz.pid_seq = 0;
    fz.inputs = 0;
    fz.no_devices = 0;
    FUZZ_CHECK(fz.njobs == 0 && !fz.compile_started, "compile worker not shut down");
    FUZZ_CHECK(ewp_command_init(NULL, &policies[0]) == 0, "ewp_command_init failed");
    peers[0].down = peers[1].down = 0;
    peers[0].congested = peers[1].congested = 0;
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
    (void)fprintf(stderr, "fuzz_dispatch: to %s: %s %s\n", p->name, ctl != NULL ? ctl : "?",
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

/* ---- node.h ---- */

int
ewp_node_init(struct ev_loop *loop, const struct ewp_node_config *cfg, char *errbuf,
              size_t errlen)
{
    (void)loop;
    (void)cfg;
    (void)snprintf(errbuf, errlen, "not in the fuzzer");
    return -1;
}

void
ewp_node_close(void)
{
}

ei_cnode *
ewp_node_cnode(void)
{
    setup();
    return &fz.ec;
}

const char *
ewp_node_name(void)
{
    return FUZZ_OUR_NAME;
}

int
ewp_node_failed(void)
{
    return 0;
}

int
ewp_node_port(void)
{
    return FUZZ_PORT;
}

int
ewp_peer_send(struct ewp_peer *p, const char *body, size_t len)
{
    FUZZ_CHECK(p == &peers[0] || p == &peers[1], "send to an unknown peer %p", (void *)p);
    FUZZ_CHECK(!p->down, "send to %s after ewp_command_peer_down", p->name);
    FUZZ_CHECK(!peers[0].filling && !peers[1].filling,
               "send while a frame is being filled in place");
    check_frame(p, body, len);
    p->sent++;
    return 0;
}

char *
ewp_peer_reserve(struct ewp_peer *p, size_t max)
{
    return ewp_peer_reserve_more(p, 0, max);
}

/* The body is at out[cur] + 4, behind the length as in node.c. Growing
 * moves it to the other buffer and poisons the old one, so a stale
 * pointer is caught; everything past the reservation is poisoned. */
char *
ewp_peer_reserve_more(struct ewp_peer *p, size_t have, size_t more)
{
    int to = fz.cur;

    FUZZ_CHECK(p == &peers[0] || p == &peers[1], "reserve for an unknown peer");
    FUZZ_CHECK(!peers[p == &peers[0]].filling, "frames filled for two peers at once");
    if (have > 0)
        FUZZ_CHECK(p->filling && have <= p->reserved,
                   "grow a frame of %zu bytes, %zu reserved (filling %d)", have, p->reserved,
                   p->filling);
    if (have > OUT_SIZE || more > OUT_SIZE - 4 - have)
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
    p->filling = 1;
    p->reserved = have + more;
    return (char *)fz.out[fz.cur] + 4;
}

char *
ewp_peer_frame_body(struct ewp_peer *p)
{
    FUZZ_CHECK(p->filling, "frame body asked for with no frame reserved");
    return (char *)fz.out[fz.cur] + 4;
}

void
ewp_peer_commit(struct ewp_peer *p, size_t used)
{
    FUZZ_CHECK(p->filling, "commit with no frame reserved");
    FUZZ_CHECK(used <= p->reserved, "commit of %zu bytes, %zu reserved", used, p->reserved);
    check_frame(p, (const char *)fz.out[fz.cur] + 4, used);
    p->filling = 0;
    p->sent++;
    ASAN_POISON_MEMORY_REGION(fz.out[fz.cur], fz.open_len[fz.cur]);
    fz.open_len[fz.cur] = 0;
}

int
ewp_peer_congested(const struct ewp_peer *p)
{
    return p->congested;
}

size_t
ewp_peer_queued(const struct ewp_peer *p)
{
    return p->sent * 100;
}

const char *
ewp_peer_name(const struct ewp_peer *p)
{
    return p->name;
}

struct ewp_peer *
ewp_node_peer_next(struct ewp_peer *prev)
{
    int k = prev == NULL ? 0 : prev == &peers[0] ? 1 : 2;

    for (; k < 2; k++)
        if (!peers[k].down)
            return &peers[k];
    return NULL;
}

struct ewp_peer *
ewp_node_peer_by_name(const char *name)
{
    int k;

    for (k = 0; k < 2; k++)
        if (!peers[k].down && strcmp(peers[k].name, name) == 0)
            return &peers[k];
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

int
ewp_capture_open_offline(struct ev_loop *loop, struct ewp_capture *c, const char *path,
                         char *errbuf, size_t errlen)
{
    struct fake_pcap *fp;

    FUZZ_CHECK(strncmp(path, files_dir, strlen(files_dir)) == 0,
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
ewp_capture_dump_open(struct ewp_capture *c, const char *path, char *errbuf, size_t errlen)
{
    FUZZ_CHECK(c->p != NULL, "dump_open on a closed capture");
    FUZZ_CHECK(c->dumper == NULL, "a second dump_open");
    FUZZ_CHECK(strncmp(path, files_dir, strlen(files_dir)) == 0,
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

int
ewp_capture_check(struct ewp_capture *c)
{
    FUZZ_CHECK(c != NULL, "ewp_capture_check of NULL");
    return 0; /* fake interfaces never vanish */
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

int
ewp_compile_init(struct ev_loop *loop, ewp_compile_done_cb done)
{
    (void)loop;
    fz.compile_done = done;
    fz.compile_started = 1;
    return 0;
}

void
ewp_compile_submit(struct ewp_compile_job *job)
{
    struct ewp_compile_job **jj;

    FUZZ_CHECK(fz.compile_started, "submit with no compile worker");
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
ewp_compile_shutdown(ewp_compile_done_cb discard)
{
    struct ewp_compile_job *job;

    if (!fz.compile_started)
        return;
    fz.compile_started = 0;
    while ((job = fz.jobs) != NULL) {
        fz.jobs = job->next;
        discard(job);
        ewp_compile_free(job);
    }
    fz.njobs = 0;
}

/* ---- libev: command.c's interface check timer (never started: no loop) ---- */

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

/* ---- libpcap: the calls command.c makes itself ---- */

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
