/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Packet delivery. The fixed head of every packet message of a handle ('p',
 * the SEND control to the owner, {ewpcap, Ref, DLT, ...) is encoded once
 * at open (ewp_deliver_attach). Per packet we reserve room in the owner
 * node's output buffer, copy that head, encode Time, Length and the binary
 * header into it and copy the packet bytes from the pcap ring: one copy, no
 * allocation, no system call (a batch is built in place too, in the
 * common case, see batch_packet). To a node with the atom cache the head is a
 * template (atomcache.h): its atoms go as new cache entries in the first
 * message and as indexes after, the header written per message from the
 * connection's cache (a few bytes copied once the node has them all).
 * When the buffer passes its high-water mark, every handle feeding that
 * node is paused (a shared capture reads on for the others, the paused
 * ones count what they miss; one with no reader left lets the kernel ring
 * absorb the burst, its drops in stats/1); they resume when it drains.
 *
 * Nothing here closes or frees a handle: a capture's read error or end of
 * file is a message to the owner, and the handle stays until closed.
 */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <ei.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "atomcache.h"
#include "be.h"
#include "capture.h"
#include "deliver.h"
#include "dist.h"
#include "encode.h"
#include "handles.h"
#include "log.h"

#define BATCH_BYTES (1u << 20) /* a batch closes past this many bytes of elements */
#define BATCH_KEEP (1u << 16)  /* a larger own buffer is freed at close */
#define FRAME_FIRST (1u << 17) /* at most this much reserved when a frame opens */

static void packet_cb(struct ewp_capture *c, const struct pcap_pkthdr *hdr,
                      const unsigned char *bytes);
static void batch_packet(struct ewp_handle *h, const struct pcap_pkthdr *hdr,
                         const unsigned char *bytes);
static int frame_packet(struct ewp_handle *h, const struct pcap_pkthdr *hdr,
                        const unsigned char *bytes);
static size_t put_element(struct ewp_handle *h, char *e, const struct pcap_pkthdr *hdr,
                          const unsigned char *bytes);
static int own_room(struct ewp_handle *h, size_t elem);
static char *grow(struct ewp_handle *h, size_t more);
static void batch_close(struct ewp_handle *h);
static void frame_close(struct ewp_handle *h);
static void yield_peer(struct ewp_handle *h);
static void flush_cb(struct ewp_capture *c);
static void pause_peer(struct ewp_handles *t, struct ewp_peer *peer);
static void error_cb(struct ewp_capture *c, const char *reason);
static void eof_cb(struct ewp_capture *c);
static void send_frame(struct ewp_peer *peer, ei_x_buff *x);
static long time_frac(const struct ewp_handle *h, const struct pcap_pkthdr *hdr);
static size_t head_max(const struct ewp_handle *h);
static size_t put_head(struct ewp_handle *h, char *dst);

/* The message head and the capture callbacks of a handle with a ref, an
 * owner and an open capture. Returns 0, or -1 when encoding failed. */
int
ewp_deliver_attach(struct ewp_handle *h)
{
    ei_x_buff px;

    if (ei_x_new(&px) < 0)
        return -1;
    if ((h->batch > 1 ? ewp_encode_batch_prefix(&px, &h->to, &h->ref, h->cap.dlt)
                      : ewp_encode_packet_prefix(&px, &h->to, &h->ref, h->cap.dlt)) < 0) {
        ei_x_free(&px);
        return -1;
    }
    h->prefix = px.buff;
    h->prefix_len = (size_t)px.index;
    if (ewp_peer_atom_cache(h->peer) != NULL) { /* the head's atoms as cache refs */
        if ((h->tmpl = malloc(sizeof(*h->tmpl))) == NULL ||
            ewp_ac_tmpl_make(h->tmpl, h->prefix, h->prefix_len) < 0) {
            free(h->tmpl);
            h->tmpl = NULL;
            return -1; /* the caller frees the prefix with the handle */
        }
    }
    h->cap.eof_cb = eof_cb;
    h->cap.packet_cb = packet_cb;
    h->cap.error_cb = error_cb;
    h->cap.flush_cb = h->batch > 1 ? flush_cb : NULL;
    h->cap.data = h;
    return 0;
}

/* Start reading, unless the node's buffer is past its mark (then the
 * capture starts when it drains) */
void
ewp_deliver_start(struct ewp_handle *h)
{
    if (!ewp_peer_congested(h->peer))
        ewp_capture_start(&h->cap);
}

/* The node's output fell below its low-water mark */
void
ewp_deliver_drained(struct ewp_handles *t, struct ewp_peer *peer)
{
    struct ewp_handle *h;

    for (h = ewp_handles_first_of(t, peer); h != NULL; h = h->node_next)
        if (!h->pending)
            ewp_capture_start(&h->cap);
}

/* Are the captured interfaces still there? A vanished one ends its
 * capture with {ewpcap_error, Ref, Reason} (error_cb, which never frees). */
void
ewp_deliver_check(struct ewp_handles *t)
{
    struct ewp_handle *h, *next;

    for (h = ewp_handles_first(t); h != NULL; h = next) {
        next = h->next;
        (void)ewp_capture_check(&h->cap);
    }
}

/* The hot path: see the top of this file. */
static void
packet_cb(struct ewp_capture *c, const struct pcap_pkthdr *hdr, const unsigned char *bytes)
{
    struct ewp_handle *h = c->data;
    char *dst;
    size_t n;

    if (h->batch > 1) {
        batch_packet(h, hdr, bytes);
        return;
    }
    yield_peer(h);
    dst = ewp_peer_reserve(h->peer, head_max(h) + EWP_TAIL_MAX + hdr->caplen);
    if (dst == NULL) {
        h->drops++;
        return;
    }
    n = put_head(h, dst);
    n += ewp_encode_packet_tail(dst + n, h->time_unit, (long)hdr->ts.tv_sec,
                                time_frac(h, hdr), hdr->len, hdr->caplen);
    memcpy(dst + n, bytes, hdr->caplen);
    n += hdr->caplen;
    ewp_peer_commit(h->peer, n);
    h->packets++;
    h->bytes += hdr->caplen;

    if (ewp_peer_congested(h->peer))
        pause_peer(h->table, h->peer);
}

/*
 * {ewpcap_batch, Ref, DLT, [{Time, Length, Packet}, ...]}, one 3-tuple
 * per packet. The batch closes when it holds h->batch packets or
 * BATCH_BYTES of elements, and at the end of every pcap_dispatch
 * (flush_cb), so batching never delays a packet beyond what libpcap's own
 * timeout does.
 *
 * In place (frame_packet): the message is written straight into the
 * owner node's output buffer, head first, each packet copied once from
 * the pcap ring, the list's length and the frame's committed at the close.
 * Only one handle of a node can have a frame open there: handles of one
 * node that share a capture get their packets interleaved in one dispatch,
 * and whatever else is written to the node first closes the open frame
 * (yield_peer). So a handle that finds another one building, or whose
 * frame was cut short in this dispatch, gathers its batch in its own
 * buffer (below), copied into the node's at the close: one copy more per
 * packet, and batches as full as without sharing. No frame stays open
 * past the dispatch: the flush closes it, before any other watcher can
 * write to the node.
 */
static void
batch_packet(struct ewp_handle *h, const struct pcap_pkthdr *hdr, const unsigned char *bytes)
{
    size_t elem = 2 + EWP_TAIL_MAX + hdr->caplen;

    if (h->frame_used > 0 || (h->batch_count == 0 && !h->contended &&
                              ewp_handles_building(h) == NULL &&
                              ewp_handles_set_building(h, h) == 0)) {
        if (frame_packet(h, hdr, bytes) < 0)
            h->drops++;
        else if (h->batch_count >= h->batch || h->frame_used >= BATCH_BYTES)
            batch_close(h);
        return;
    }
    if (h->batch_used + elem > h->batch_room && own_room(h, elem) < 0) {
        /* no room for it among the node's packets: what the batch holds
         * goes now (or is dropped), and this one starts the next */
        batch_close(h);
        if (h->batch_used + elem > h->batch_room && own_room(h, elem) < 0) {
            h->drops++;
            return;
        }
    }
    h->batch_used += put_element(h, h->batch_buf + h->batch_used, hdr, bytes);
    if (h->batch_count >= h->batch || h->batch_used >= BATCH_BYTES)
        batch_close(h);
}

/* The handle's own buffer grown to hold elem bytes more, its memory
 * counted among the node's packets (ewp_peer_hold: 256 handles of a node
 * gathering batches of 1 MiB could otherwise hold 512 MiB); -1 when that
 * room or the memory is short */
static int
own_room(struct ewp_handle *h, size_t elem)
{
    size_t room = h->batch_room ? h->batch_room : 4096;
    char *grown;

    while (room < h->batch_used + elem)
        room *= 2;
    if (ewp_peer_hold(h->peer, room - h->batch_room) < 0)
        return -1;
    grown = realloc(h->batch_buf, room);
    if (grown == NULL) {
        ewp_peer_unhold(h->peer, room - h->batch_room);
        return -1;
    }
    h->batch_buf = grown;
    h->batch_room = room;
    return 0;
}

/* One packet into the frame built in place (h is the node's building
 * handle), opened first if none is: room for the head, LIST_EXT and the
 * batch's elements as large as this one (at most FRAME_FIRST), then for
 * each element and the closing NIL. -1: no room in the node's buffer (an
 * open frame stays open; none opened: h is building no more). */
static int
frame_packet(struct ewp_handle *h, const struct pcap_pkthdr *hdr, const unsigned char *bytes)
{
    size_t elem = 2 + EWP_TAIL_MAX + hdr->caplen;
    char *body;

    if (h->frame_used == 0) {
        size_t first = head_max(h) + 5 + elem + 1;
        size_t want = first;

        if (first < FRAME_FIRST) /* first + the rest, at most FRAME_FIRST */
            want += (size_t)(h->batch - 1) < (FRAME_FIRST - first) / elem
                        ? elem * (size_t)(h->batch - 1)
                        : FRAME_FIRST - first;
        body = ewp_peer_reserve(h->peer, want);
        if (body == NULL && want > first)
            body = ewp_peer_reserve(h->peer, want = first);
        if (body == NULL) {
            (void)ewp_handles_set_building(h, NULL);
            return -1;
        }
        h->frame_room = want;
        /* with the atom cache, what the head puts in the cache is the
         * node's now: this frame is committed, whatever comes */
        h->frame_list = put_head(h, body);
        h->frame_used = h->frame_list + 5;
    } else if (h->frame_used + elem + 1 <= h->frame_room) {
        body = ewp_peer_frame_body(h->peer); /* reserved at the open */
    } else if ((body = grow(h, elem + 1)) == NULL) {
        return -1;
    }
    h->frame_used += put_element(h, body + h->frame_used, hdr, bytes);
    return 0;
}

/* Room for more bytes after the frame's frame_used: as much again as it
 * holds if the node's buffer allows (a frame that outgrows its chunk moves
 * to a new one, and doubling keeps the moves of a large batch to a few),
 * else just that */
static char *
grow(struct ewp_handle *h, size_t more)
{
    size_t twice = h->frame_used + more;
    char *body = ewp_peer_reserve_more(h->peer, h->frame_used, twice);

    if (body == NULL)
        body = ewp_peer_reserve_more(h->peer, h->frame_used, twice = more);
    if (body != NULL)
        h->frame_room = h->frame_used + twice;
    return body;
}

/* {Time, Length, Packet} at e; returns its length */
static size_t
put_element(struct ewp_handle *h, char *e, const struct pcap_pkthdr *hdr,
            const unsigned char *bytes)
{
    size_t n;

    e[0] = ERL_SMALL_TUPLE_EXT;
    e[1] = 3;
    n = 2 + ewp_encode_packet_tail(e + 2, h->time_unit, (long)hdr->ts.tv_sec,
                                   time_frac(h, hdr), hdr->len, hdr->caplen);
    memcpy(e + n, bytes, hdr->caplen);
    h->batch_bytes += hdr->caplen;
    h->batch_count++;
    return n + hdr->caplen;
}

/* LIST_EXT and its length n at at (5 bytes) */
static void
put_list_len(char *at, uint32_t n)
{
    at[0] = ERL_LIST_EXT;
    ewp_put_be32(at + 1, n);
}

/* The batch's message to the owner. From its own buffer: the head, the
 * list, the elements, NIL, and no room in the node's buffer drops its
 * packets. */
static void
batch_close(struct ewp_handle *h)
{
    uint32_t n = (uint32_t)h->batch_count;
    size_t used;
    char *body;

    if (h->frame_used > 0) {
        frame_close(h);
        return;
    }
    if (h->batch_count == 0)
        return;
    yield_peer(h);
    ewp_peer_unhold(h->peer, h->batch_room); /* its packets are queued now, or dropped */
    body = ewp_peer_reserve(h->peer, head_max(h) + 5 + h->batch_used + 1);
    if (body == NULL) {
        h->drops += n;
    } else {
        used = put_head(h, body);
        put_list_len(body + used, n);
        used += 5;
        memcpy(body + used, h->batch_buf, h->batch_used);
        used += h->batch_used;
        body[used++] = ERL_NIL_EXT;
        ewp_peer_commit(h->peer, used);
        h->packets += n;
        h->bytes += h->batch_bytes;
    }
    h->batch_count = 0;
    h->batch_used = 0;
    h->batch_bytes = 0;
    /* a burst's buffer is not kept, nor one the node's room cannot hold */
    if (h->batch_room > BATCH_KEEP || ewp_peer_hold(h->peer, h->batch_room) < 0) {
        free(h->batch_buf);
        h->batch_buf = NULL;
        h->batch_room = 0;
    }
    if (ewp_peer_congested(h->peer))
        pause_peer(h->table, h->peer);
}

/* The frame built in place: its list's length, NIL (room for it was
 * reserved with each element), committed; to a node dropped since it was
 * opened (dead: its output goes nowhere), its packets are drops */
static void
frame_close(struct ewp_handle *h)
{
    char *body = ewp_peer_frame_body(h->peer);

    if (ewp_peer_dead(h->peer)) {
        h->drops += (unsigned long long)h->batch_count;
    } else {
        put_list_len(body + h->frame_list, (uint32_t)h->batch_count);
        body[h->frame_used++] = ERL_NIL_EXT;
        ewp_peer_commit(h->peer, h->frame_used);
        h->packets += (unsigned long long)h->batch_count;
        h->bytes += h->batch_bytes;
    }
    h->frame_used = 0;
    h->batch_count = 0;
    h->batch_bytes = 0;
    (void)ewp_handles_set_building(h, NULL);
    if (ewp_peer_congested(h->peer))
        pause_peer(h->table, h->peer);
}

/* h is about to write to its node: a frame another handle is building
 * there is closed first */
static void
yield_peer(struct ewp_handle *h)
{
    struct ewp_handle *b = ewp_handles_building(h);

    if (b != NULL && b != h) {
        frame_close(b);
        b->contended = 1;
    }
}

static void
flush_cb(struct ewp_capture *c)
{
    struct ewp_handle *h = c->data;

    batch_close(h);
    h->contended = 0;
}

/* The node's output buffer is past its high-water mark: stop reading every
 * capture that feeds it until it drains (ewp_deliver_drained). */
static void
pause_peer(struct ewp_handles *t, struct ewp_peer *peer)
{
    struct ewp_handle *o;

    for (o = ewp_handles_first_of(t, peer); o != NULL; o = o->node_next)
        ewp_capture_stop(&o->cap);
}

/* {ewpcap_eof, Ref}: a savefile has been read to its end */
static void
eof_cb(struct ewp_capture *c)
{
    struct ewp_handle *h = c->data;
    ei_x_buff x;

    batch_close(h);
    yield_peer(h);
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_message_eof(&x, &h->to, &h->ref) == 0)
        send_frame(h->peer, &x);
    ei_x_free(&x);
}

/* {ewpcap_error, Ref, Reason}: the capture is over, the handle stays */
static void
error_cb(struct ewp_capture *c, const char *reason)
{
    struct ewp_handle *h = c->data;
    ei_x_buff x;

    EWP_LOG(1, "%s: capture on %s failed: %s", ewp_peer_name(h->peer), h->device, reason);
    batch_close(h);
    yield_peer(h);
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_message_error(&x, &h->to, &h->ref, reason) == 0)
        send_frame(h->peer, &x);
    ei_x_free(&x);
}

static void
send_frame(struct ewp_peer *peer, ei_x_buff *x)
{
    (void)ewp_peer_send(peer, x->buff, (size_t)x->index);
}

/* The fraction of the second in the unit of the handle's Time:
 * nanoseconds for EWP_TIME_NANOSECOND, else microseconds, whatever
 * precision libpcap stamps with (h->nano: ts.tv_usec holds nanoseconds). */
static long
time_frac(const struct ewp_handle *h, const struct pcap_pkthdr *hdr)
{
    long frac = (long)hdr->ts.tv_usec;

    if (h->time_unit == EWP_TIME_NANOSECOND)
        return h->nano ? frac : frac * 1000;
    return h->nano ? frac / 1000 : frac;
}

/* The most a message's head takes */
static size_t
head_max(const struct ewp_handle *h)
{
    return h->tmpl != NULL ? h->tmpl->hdr_max + h->tmpl->body_len : h->prefix_len;
}

/* The head of a message that will be committed (with the atom cache, the
 * entries it makes are the peer's from now on); returns its length */
static size_t
put_head(struct ewp_handle *h, char *dst)
{
    if (h->tmpl != NULL)
        return ewp_ac_tmpl_put(ewp_peer_atom_cache(h->peer), h->tmpl, dst);
    memcpy(dst, h->prefix, h->prefix_len);
    return h->prefix_len;
}
