/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * libFuzzer target for everything above the transport: router.c, ctl.c,
 * request.c, handles.c, deliver.c, filter.c, files.c, rpc.c, decode.c and
 * encode.c, built the way main.c builds them (a struct ewp_requests run by
 * ewp_request_init, a struct ewp_router over it) and driven only through
 * ewp_router_dist_ops (frame, peer_down, drained) and the capture and
 * compile callbacks. Faked in the files beside this one (fuzz_dispatch.h
 * lists them): dist.h, capture.h, compile.h, log.c and pcap_findalldevs.
 * No sockets, no pcap, no threads, no event loop. This file: the entry
 * points, the set-up and reset, the inputs kept since the last reset.
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
 *   'M'       packets for a shared capture: [capture, count, flags] then per
 *             packet [members:8] and a packet as for 'P'; the capture's
 *             source is every open live capture of its device with its
 *             options (of one node or both), each packet going to the k-th
 *             of them when bit k % 8 of members is set and it reads, as
 *             source.c's dispatch does; then each one given packets is
 *             flushed, then flags & 1 a read error for all of them
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
 * went to the compile worker; a node has one frame at most filled in
 * place (both may at once, in a shared capture's dispatch), nothing is
 * sent to it meanwhile, and none is left open past a dispatch; a frame is
 * never written past its reservation (poisoned) nor used after it moved;
 * nothing goes to a torn-down peer; after each step every
 * handle in the table has a live peer, and one open fake capture. With
 * $EWP_FUZZ_TRACE set, every frame is printed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ei.h>
#include <sanitizer/asan_interface.h>

#include "handles.h"
#include "request.h"

#include "fuzz_dispatch.h"

/* fuzz_common.h's state, one for every file of the harness */
void (*fuzz_failure_hook)(void);
unsigned char *fuzz_guard_base;
size_t fuzz_guard_open;

struct fuzz_dispatch fz;

static const char *const allowed[] = {"fake1", "lo"};
char fz_files_dir[PATH_MAX];
struct ewp_policy fz_policies[4] = {
    {.files_dir = fz_files_dir},         /* --files DIR */
    {.allow = NULL},                     /* ewpcapd's defaults */
    {.allow = allowed, .nallow = 2, .files_dir = fz_files_dir}, /* --allow fake1 lo */
    {.no_inject = 1, .max_handles = 3, .max_node_handles = 2, .files_dir = fz_files_dir},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int __real_ei_make_ref(ei_cnode *ec, erlang_ref *ref);
int __wrap_ei_make_ref(ei_cnode *ec, erlang_ref *ref);
int __real_ei_make_pid(ei_cnode *ec, erlang_pid *pid);
int __wrap_ei_make_pid(ei_cnode *ec, erlang_pid *pid);

static void setup(void);
static void reset(void);
static void step(const uint8_t *d, size_t n);
static void make_files(void);
static void history_add(const uint8_t *d, size_t n, int raw);
static void history_dump(void);
static void history_report(const char *report);

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

/* One loop callback, then the prepare step */
static void
step(const uint8_t *d, size_t n)
{
    fz_run(d, n);
    fuzz_guard_release();
    fz_reap();
    fz_check_state();
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
    fz.req.policy = fz_policies[0];
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
    FUZZ_CHECK(dir != NULL && realpath(dir, fz_files_dir) != NULL, "cannot make the files dir");
    (void)snprintf(path, sizeof(path), "%s/in.pcap", fz_files_dir);
    if ((f = fopen(path, "a")) != NULL)
        (void)fclose(f);
    (void)snprintf(path, sizeof(path), "%s/notpcap.txt", fz_files_dir);
    if ((f = fopen(path, "a")) != NULL)
        (void)fclose(f);
    (void)snprintf(path, sizeof(path), "%s/sub", fz_files_dir);
    (void)mkdir(path, 0700);
    (void)snprintf(path, sizeof(path), "%s/escape", fz_files_dir);
    (void)symlink("/etc", path);
    (void)snprintf(path, sizeof(path), "%s/in-link.pcap", fz_files_dir);
    (void)symlink("in.pcap", path);
    fz.files_fd = open(fz_files_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(fz.files_fd >= 0, "cannot open the files dir");
    for (k = 0; k < 4; k++)
        fz_policies[k].files_fd = fz_policies[k].files_dir != NULL ? fz.files_fd : -1;
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
    fz_reap();
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
    fz.req.policy = fz_policies[0];
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
