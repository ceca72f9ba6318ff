/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * dist.c over an xport that takes more than it puts on the socket (as
 * tls.c's gather buffer does: xport.h's unsent). A fake xport on a
 * socketpair takes every byte it is given but sends at most PER_CALL of
 * them per call, the rest kept in order and sent first on the next call.
 * dist.c must keep watching for writable while the xport holds bytes,
 * with nothing of its own left to write, and call it again: the reader
 * then gets every frame, whole and in order, from the loop alone.
 *
 * And on a plain peer: a peer's output memory is given back at its tick
 * (a short tick time here) when nothing is queued.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ev.h>

#include "be.h"
#include "dist.h"
#include "outq.h"
#include "xport.h"

#define PER_CALL 1000u        /* bytes the fake puts on the socket per call */
#define HELD_MAX (1u << 20)   /* what it can hold */

struct fake {
    struct ewp_xport x;       /* first: a struct ewp_xport * is one of these */
    int fd;                   /* the daemon's end of the socketpair */
    char held[HELD_MAX];      /* taken, not yet sent */
    size_t held_len;
    unsigned calls;           /* writes, empty ones too */
};

static struct fake *fake;

/* PER_CALL of what is held; 0 when all of it went, else -1 with EAGAIN */
static int
fake_send(struct fake *f)
{
    ssize_t n;

    if (f->held_len == 0)
        return 0;
    n = send(f->fd, f->held, f->held_len < PER_CALL ? f->held_len : PER_CALL, MSG_NOSIGNAL);
    if (n < 0)
        return -1;
    memmove(f->held, f->held + n, f->held_len - (size_t)n);
    f->held_len -= (size_t)n;
    if (f->held_len > 0) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

static ssize_t
fake_write(struct ewp_xport *x, const void *buf, size_t len)
{
    struct fake *f = (struct fake *)(void *)x;
    size_t take;

    f->calls++;
    if (fake_send(f) < 0)
        return -1;
    take = len < HELD_MAX ? len : HELD_MAX;
    memcpy(f->held, buf, take);
    f->held_len = take;
    if (fake_send(f) < 0 && errno != EAGAIN)
        return -1;
    return (ssize_t)take;
}

static ssize_t
fake_read(struct ewp_xport *x, void *buf, size_t len)
{
    return read(((struct fake *)(void *)x)->fd, buf, len);
}

static size_t
fake_pending(struct ewp_xport *x)
{
    (void)x;
    return 0;
}

static size_t
fake_unsent(struct ewp_xport *x)
{
    return ((struct fake *)(void *)x)->held_len;
}

static void
fake_free(struct ewp_xport *x)
{
    free(x);
}

static const struct ewp_xport_ops fake_ops = {
    .read = fake_read,
    .write = fake_write,
    .pending = fake_pending,
    .unsent = fake_unsent,
    .free = fake_free,
};

/* Reads what has arrived at fd (non-blocking) onto got */
static size_t
drain(int fd, char *got, size_t have, size_t cap)
{
    ssize_t n;

    while (have < cap && (n = read(fd, got + have, cap - have)) > 0)
        have += (size_t)n;
    return have;
}

/* A transport on loop with cfg, and a non-blocking socketpair for a peer */
static struct ewp_dist *
transport(struct ev_loop *loop, const struct ewp_dist_config *cfg, int fds[2])
{
    struct ewp_dist *d;

    CU_ASSERT_FATAL(loop != NULL);
    d = ewp_dist_new(loop, cfg, NULL, NULL);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(fds[1], F_SETFL, O_NONBLOCK);
    return d;
}

/* Frames of 10,000 and 5,000 bytes (the second queued while the fake still
 * holds most of the first) reach the reader whole and in order through the
 * loop's writable watcher alone */
static void
test_unsent_sent_from_loop(void)
{
    struct ewp_dist_config cfg = {.ticktime = 60};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct ewp_dist *d;
    struct ewp_peer *p;
    static char a[10000], b[5000], want[4 + sizeof(a) + 4 + sizeof(b)],
        got[sizeof(want) + 16];
    size_t have = 0;
    int fds[2], i;

    d = transport(loop, &cfg, fds);
    fake = calloc(1, sizeof(*fake));
    CU_ASSERT_FATAL(fake != NULL);
    fake->x.ops = &fake_ops;
    fake->fd = fds[0];
    p = ewp_dist_adopt_xport(d, fds[0], &fake->x, "a@host", NULL, 0);
    CU_ASSERT_FATAL(p != NULL);

    memset(a, 'a', sizeof(a));
    a[0] = 'p';
    memset(b, 'b', sizeof(b));
    b[0] = 'p';
    ewp_put_be32(want, sizeof(a));
    memcpy(want + 4, a, sizeof(a));
    ewp_put_be32(want + 4 + sizeof(a), sizeof(b));
    memcpy(want + 8 + sizeof(a), b, sizeof(b));

    CU_ASSERT(ewp_peer_send(p, a, sizeof(a)) == 0);
    ewp_dist_reap(d); /* the prepare step: the fake takes it all, sends 1000 */
    CU_ASSERT(ewp_peer_queued(p) == 0);
    CU_ASSERT(fake->held_len == 4 + sizeof(a) - PER_CALL);
    CU_ASSERT(ewp_peer_send(p, b, sizeof(b)) == 0);
    for (i = 0; i < 200 && have < sizeof(want); i++) {
        (void)ev_run(loop, EVRUN_NOWAIT);
        have = drain(fds[1], got, have, sizeof(got));
    }
    CU_ASSERT(have == sizeof(want));
    CU_ASSERT(memcmp(got, want, sizeof(want)) == 0);
    CU_ASSERT(fake->held_len == 0);
    CU_ASSERT(ewp_peer_queued(p) == 0);
    CU_ASSERT(!ewp_peer_dead(p));
    CU_ASSERT(fake->calls >= (sizeof(want) + PER_CALL - 1) / PER_CALL); /* 1000 a call */

    ewp_dist_free(d); /* frees the fake and closes fds[0] */
    (void)close(fds[1]);
    ev_loop_destroy(loop);
}

/* A 100,000-byte frame is written; then only ticks go either way (the
 * other end ticks all the while, so the peer is not dropped for silence,
 * and the daemon answers each): at its first tick (0.05 s) with nothing
 * queued the chunk is given back, and what it holds after is at most the
 * small chunk of a tick. */
static void
test_idle_peer_gives_back(void)
{
    struct ewp_dist_config cfg = {.ticktime = 0.2, .out_max = 1u << 20, .packet_max = 1u << 19};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static char frame[100000], got[1u << 18];
    struct ewp_dist *d;
    struct ewp_peer *p;
    size_t have = 0, held_busy;
    ev_tstamp t0;
    int fds[2];

    d = transport(loop, &cfg, fds);
    p = ewp_dist_adopt(d, fds[0], "b@host", NULL, 0);
    CU_ASSERT_FATAL(p != NULL);
    memset(frame, 'x', sizeof(frame));
    frame[0] = 'p';
    CU_ASSERT(ewp_peer_send(p, frame, sizeof(frame)) == 0);
    while (have < 4 + sizeof(frame) && !ewp_peer_dead(p)) {
        (void)ev_run(loop, EVRUN_NOWAIT);
        have = drain(fds[1], got, have, sizeof(got));
    }
    CU_ASSERT_FATAL(ewp_peer_queued(p) == 0);
    held_busy = ewp_peer_held(p);
    CU_ASSERT(held_busy >= OUTQ_CHUNK); /* kept for the next frame */
    t0 = ev_time();
    while (ev_time() - t0 < 0.15 && !ewp_peer_dead(p)) {
        static const char tick[4];

        CU_ASSERT(write(fds[1], tick, sizeof(tick)) == (ssize_t)sizeof(tick));
        (void)ev_run(loop, EVRUN_ONCE);
        (void)drain(fds[1], got, 0, sizeof(got));
    }
    CU_ASSERT(!ewp_peer_dead(p));
    CU_ASSERT(ewp_peer_held(p) <= OUTQ_FIRST);

    ewp_dist_free(d);
    (void)close(fds[1]);
    ev_loop_destroy(loop);
}

/* Six peers each queue 24 frames of 100,000 bytes (9 chunks) while their
 * readers wait, then the readers take everything: every queue drains at
 * once, and each would keep OUTQ_SPARES chunks for its next rise (54 in
 * all, 13.5 MiB outside every packet budget). The daemon's peers keep at
 * most EWP_OUT_SPARES together, beside each one's last chunk. */
#define BUSY_PEERS 6
static void
test_spares_bounded_for_all_peers(void)
{
    struct ewp_dist_config cfg = {.ticktime = 60, .out_max = 8u << 20, .packet_max = 4u << 20};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static char frame[100000], got[1u << 18];
    struct ewp_peer *p[BUSY_PEERS];
    int fds[BUSY_PEERS][2], i, k, busy;
    struct ewp_dist *d;
    size_t held = 0;

    d = transport(loop, &cfg, fds[0]);
    memset(frame, 'x', sizeof(frame));
    frame[0] = 'p';
    for (i = 0; i < BUSY_PEERS; i++) {
        char name[16];

        if (i > 0) {
            CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i]) == 0);
            (void)fcntl(fds[i][0], F_SETFL, O_NONBLOCK);
            (void)fcntl(fds[i][1], F_SETFL, O_NONBLOCK);
        }
        (void)snprintf(name, sizeof(name), "p%d@host", i);
        p[i] = ewp_dist_adopt(d, fds[i][0], name, NULL, 0);
        CU_ASSERT_FATAL(p[i] != NULL);
        for (k = 0; k < 24; k++)
            CU_ASSERT(ewp_peer_send(p[i], frame, sizeof(frame)) == 0);
        (void)ev_run(loop, EVRUN_NOWAIT);
    }
    for (k = 0; k < 100000; k++) {
        (void)ev_run(loop, EVRUN_NOWAIT);
        for (i = busy = 0; i < BUSY_PEERS; i++) {
            (void)drain(fds[i][1], got, 0, sizeof(got));
            busy += !ewp_peer_dead(p[i]) && ewp_peer_queued(p[i]) > 0;
        }
        if (busy == 0)
            break;
    }
    for (i = 0; i < BUSY_PEERS; i++) {
        CU_ASSERT(!ewp_peer_dead(p[i]));
        CU_ASSERT(ewp_peer_queued(p[i]) == 0);
        held += ewp_peer_held(p[i]);
    }
    CU_ASSERT(held > OUTQ_SPARES * OUTQ_CHUNK); /* spares were kept */
    CU_ASSERT(held <= (EWP_OUT_SPARES + BUSY_PEERS) * (size_t)OUTQ_CHUNK);

    ewp_dist_free(d);
    for (i = 0; i < BUSY_PEERS; i++)
        (void)close(fds[i][1]);
    ev_loop_destroy(loop);
}

CU_TestInfo ewp_xport_tests[] = {
    {"bytes an xport holds are sent from the loop, in order", test_unsent_sent_from_loop},
    {"an idle peer gives its output memory back at its tick", test_idle_peer_gives_back},
    {"busy peers keep EWP_OUT_SPARES spare chunks at most, together", test_spares_bounded_for_all_peers},
    CU_TEST_INFO_NULL,
};
