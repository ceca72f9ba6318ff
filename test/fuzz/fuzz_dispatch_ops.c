/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * fuzz_dispatch's operations: the first byte of an input chooses one (the
 * table is at the top of fuzz_dispatch.c), the rest is its argument. Each
 * is one callback of the loop: a frame from a peer through
 * ewp_router_dist_ops, a peer's connection closed, a compile done, a
 * capture's dispatch, the congestion of a node, a send made to fail. What
 * follows (the prepare step and the checks) is fuzz_dispatch.c's step().
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ei.h>
#include <pcap/pcap.h>

#include "capture.h"
#include "compile.h"
#include "decode.h"
#include "deliver.h"
#include "dist.h"
#include "encode.h"
#include "router.h"

#include "fuzz_dispatch.h"

static void op_reg_send(struct ewp_peer *peer, const char *name, const uint8_t *d, size_t n);
static void op_signal(struct ewp_peer *peer, int link, const uint8_t *d, size_t n);
static void op_frame(struct ewp_peer *peer, const uint8_t *d, size_t n);
static void op_packets(const uint8_t *d, size_t n);
static void op_shared(const uint8_t *d, size_t n);
static void op_congestion(const uint8_t *d, size_t n);
static void op_compiled(const uint8_t *d, size_t n);
static void op_fail(const uint8_t *d, size_t n);
static void deliver_frame(struct ewp_peer *p, const ei_x_buff *ctl, const uint8_t *msg,
                          size_t msg_len);
static size_t take_packet(const uint8_t *d, size_t n, size_t pos, int snaplen,
                          struct pcap_pkthdr *hdr, unsigned char **bytes);
static int reading(struct ewp_capture *const *m, int nm);
static int listed(struct ewp_capture *const *set, int n, const struct ewp_capture *c);
static void frames_closed(void);
static uint32_t get32(const uint8_t *p);

/* One operation: the loop callback of a step */
void
fz_run(const uint8_t *d, size_t n)
{
    switch (d[0]) {
    case 131:
        op_reg_send(fz_peer_in(0), "ewpcap", d, n);
        break;
    case 'N':
        op_reg_send(fz_peer_in(0), "net_kernel", d + 1, n - 1);
        break;
    case 'R':
        op_reg_send(fz_peer_in(0), "rex", d + 1, n - 1);
        break;
    case 'E':
    case 'L':
        op_signal(fz_peer_in(0), d[0] == 'L', d + 1, n - 1);
        break;
    case 'D': {
        struct ewp_peer *p = fz.dist.live[n > 1 ? d[1] & 1 : 0];

        if (p != NULL)
            ewp_peer_drop(p, "connection closed");
        break;
    }
    case 'F':
    case 'f':
        op_frame(fz_peer_in(d[0] == 'f'), d + 1, n - 1);
        break;
    case 'J':
        op_compiled(d + 1, n - 1);
        break;
    case 'P':
        op_packets(d + 1, n - 1);
        break;
    case 'M':
        op_shared(d + 1, n - 1);
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

/* 'X' [peer, n, Input...] */
static void
op_fail(const uint8_t *d, size_t n)
{
    if (n < 2)
        return;
    fz.dist.fail_in[d[0] & 1] = d[1] % 16 + 1;
    if (n > 2 && d[2] != 'S')
        fz_run(d + 2, n - 2);
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
             strcmp(from.node, fz_peer_names[peer->slot]) == 0;
    fuzz_guard_release();

    memset(&sender, 0, sizeof(sender));
    (void)snprintf(sender.node, sizeof(sender.node), "%s", fz_peer_names[peer->slot]);
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

        pos = take_packet(d, n, pos, f->snaplen, &hdr, &bytes);
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
    frames_closed();
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

/*
 * [capture, count, flags], then per packet [members:8, caplen:16, extra:8,
 * sec:32, usec:24] and up to caplen bytes: a dispatch of the source the
 * capture is a member of (fz_source_members: the live captures of its
 * device with its options, several nodes' handles among them). As
 * source.c's dispatch(): each packet to every member its program accepts
 * (the k-th member: bit k % 8 of members) that reads; a paused one misses
 * it, the dispatch ends when none reads; then each member given packets is
 * flushed, in the order they got their first. Each node's batch is built
 * in place at the same time as the others'. On flags & 1 a read error
 * ends the source: every member told once (source.c's fail()).
 */
static void
op_shared(const uint8_t *d, size_t n)
{
    struct ewp_capture *m[CAPTURES_MAX], *touched[CAPTURES_MAX];
    struct fake_capture *f;
    size_t pos = 3;
    int count, k, j, nm, nt = 0;

    if (n < 3 || fz.ncaps == 0)
        return;
    f = &fz.caps[d[0] % fz.ncaps];
    if ((nm = fz_source_members(f, m)) == 0)
        return;
    count = d[1] % PACKETS_MAX + 1;
    for (k = 0; k < count && n - pos >= 11 && reading(m, nm); k++) {
        struct pcap_pkthdr hdr;
        unsigned char *bytes;
        uint8_t members = d[pos];

        pos = take_packet(d, n, pos + 1, f->snaplen, &hdr, &bytes);
        for (j = 0; j < nm; j++) {
            struct ewp_capture *c = m[j];

            if (!(members >> (j % 8) & 1) || !c->watching || c->failed)
                continue;
            if (!listed(touched, nt, c))
                touched[nt++] = c;
            c->packet_cb(c, &hdr, bytes);
        }
        free(bytes);
    }
    for (j = 0; j < nt; j++)
        if (touched[j]->flush_cb != NULL)
            touched[j]->flush_cb(touched[j]);
    frames_closed();
    if (!(d[2] & 1))
        return;
    for (j = 0; j < nm; j++) {
        struct ewp_capture *c = m[j];

        if (c->failed)
            continue;
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
        fz.req.policy = fz_policies[d[0] >> 2 & 3];
}

/* A packet at d + pos ([caplen:16, extra:8, sec:32, usec:24], then up to
 * caplen bytes; n - pos >= 10): its header, caplen cut to the snaplen and
 * to what is left, and its bytes as the pcap ring holds them (exactly
 * caplen, *bytes for the caller to free). Returns the position after it. */
static size_t
take_packet(const uint8_t *d, size_t n, size_t pos, int snaplen, struct pcap_pkthdr *hdr,
            unsigned char **bytes)
{
    size_t caplen = ((size_t)d[pos] << 8) | d[pos + 1];
    int snap = snaplen <= 0 || snaplen > SNAPLEN_MAX ? SNAPLEN_MAX : snaplen;

    memset(hdr, 0, sizeof(*hdr));
    hdr->ts.tv_sec = (time_t)get32(d + pos + 3);
    hdr->ts.tv_usec =
        (suseconds_t)((((uint32_t)d[pos + 7] << 16) | ((uint32_t)d[pos + 8] << 8) | d[pos + 9]) %
                      1000000u);
    pos += 10;
    if (caplen > (size_t)snap)
        caplen = (size_t)snap;
    if (caplen > n - pos)
        caplen = n - pos;
    hdr->caplen = (uint32_t)caplen;
    hdr->len = (uint32_t)caplen + d[pos - 8];
    *bytes = malloc(caplen > 0 ? caplen : 1);
    FUZZ_CHECK(*bytes != NULL, "out of memory");
    memcpy(*bytes, d + pos, caplen);
    return pos + caplen;
}

/* Does any of the source's members read? (source.c breaks the loop when
 * the last one stops) */
static int
reading(struct ewp_capture *const *m, int nm)
{
    int j;

    for (j = 0; j < nm; j++)
        if (m[j]->watching && !m[j]->failed)
            return 1;
    return 0;
}

/* Is c one of set's n? */
static int
listed(struct ewp_capture *const *set, int n, const struct ewp_capture *c)
{
    int j;

    for (j = 0; j < n; j++)
        if (set[j] == c)
            return 1;
    return 0;
}

/* After a dispatch, flushed: no node has a frame open (deliver.c's flush
 * closes each batch built in place) */
static void
frames_closed(void)
{
    const struct ewp_peer *left = fz_frame_open();

    if (left != NULL)
        FUZZ_CHECK(0, "a frame for %s left open after dispatch", fz_peer_names[left->slot]);
}

static uint32_t
get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
