/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Packet delivery. The fixed head of every packet message of a handle ('p',
 * the SEND control to the owner, {ewpcap, Ref, DLT, ...) is encoded once
 * at open (ewp_deliver_attach). Per packet we reserve room in the owner
 * node's output buffer, copy that head, encode Time, Length and the binary
 * header into it and copy the packet bytes from the pcap ring: one copy, no
 * allocation, no system call. When the buffer passes its high-water mark,
 * every capture feeding that node is paused and the kernel ring absorbs the
 * burst (its drops show in stats/1); they resume when it drains.
 *
 * Nothing here closes or frees a handle: a capture's read error or end of
 * file is a message to the owner, and the handle stays until closed.
 */
#include <stdint.h>
#include <string.h>

#include <ei.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "capture.h"
#include "deliver.h"
#include "dist.h"
#include "encode.h"
#include "handles.h"
#include "log.h"

static void packet_cb(struct ewp_capture *c, const struct pcap_pkthdr *hdr,
                      const unsigned char *bytes);
static void batch_packet(struct ewp_handle *h, const struct pcap_pkthdr *hdr,
                         const unsigned char *bytes);
static void batch_close(struct ewp_handle *h);
static void flush_cb(struct ewp_capture *c);
static void pause_peer(struct ewp_handles *t, struct ewp_peer *peer);
static void error_cb(struct ewp_capture *c, const char *reason);
static void eof_cb(struct ewp_capture *c);
static void send_frame(struct ewp_peer *peer, ei_x_buff *x);
static long time_frac(const struct ewp_handle *h, const struct pcap_pkthdr *hdr);

/* The message head and the capture callbacks of a handle with a ref, an
 * owner and an open capture. Returns 0, or -1 when encoding failed. */
int
ewp_deliver_attach(struct ewp_handle *h)
{
    ei_x_buff px;

    if (ei_x_new(&px) < 0)
        return -1;
    if ((h->batch > 1 ? ewp_encode_batch_prefix(&px, &h->owner, &h->ref, h->cap.dlt)
                      : ewp_encode_packet_prefix(&px, &h->owner, &h->ref, h->cap.dlt)) < 0) {
        ei_x_free(&px);
        return -1;
    }
    h->prefix = px.buff;
    h->prefix_len = (size_t)px.index;
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
    dst = ewp_peer_reserve(h->peer, h->prefix_len + EWP_TAIL_MAX + hdr->caplen);
    if (dst == NULL) {
        h->drops++;
        return;
    }
    memcpy(dst, h->prefix, h->prefix_len);
    n = h->prefix_len;
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
 * {ewpcap_batch, Ref, DLT, [{Time, Length, Packet}, ...]}, built in place in
 * the output buffer: the head and a LIST_EXT header whose count is filled
 * in when the batch closes, then one 3-tuple per packet. A batch closes
 * when it holds h->batch packets and at the end of every pcap_dispatch
 * (flush_cb), so batching never delays a packet beyond what libpcap's own
 * timeout does. Nothing else writes to the buffer while a batch is open:
 * only this handle's callbacks run during its dispatch.
 */
static void
batch_packet(struct ewp_handle *h, const struct pcap_pkthdr *hdr, const unsigned char *bytes)
{
    size_t elem = 2 + EWP_TAIL_MAX + hdr->caplen;
    char *body;

    if (h->batch_count == 0) {
        body = ewp_peer_reserve(h->peer, h->prefix_len + 5 + elem + 1);
        if (body == NULL) {
            h->drops++;
            return;
        }
        memcpy(body, h->prefix, h->prefix_len);
        body[h->prefix_len] = ERL_LIST_EXT; /* count at close */
        h->batch_used = h->prefix_len + 5;
    } else {
        body = ewp_peer_reserve_more(h->peer, h->batch_used, elem + 1);
        if (body == NULL) {
            batch_close(h);
            h->drops++;
            return;
        }
    }
    body[h->batch_used++] = ERL_SMALL_TUPLE_EXT;
    body[h->batch_used++] = 3;
    h->batch_used += ewp_encode_packet_tail(body + h->batch_used, h->time_unit,
                                            (long)hdr->ts.tv_sec, time_frac(h, hdr),
                                            hdr->len, hdr->caplen);
    memcpy(body + h->batch_used, bytes, hdr->caplen);
    h->batch_used += hdr->caplen;
    h->batch_count++;
    h->packets++;
    h->bytes += hdr->caplen;
    if (h->batch_count >= h->batch)
        batch_close(h);
}

static void
batch_close(struct ewp_handle *h)
{
    char *body;
    uint32_t n = (uint32_t)h->batch_count;

    if (h->batch_count == 0)
        return;
    /* room for the tail NIL was reserved with the last element */
    body = ewp_peer_frame_body(h->peer);
    body[h->prefix_len + 1] = (char)(n >> 24);
    body[h->prefix_len + 2] = (char)(n >> 16);
    body[h->prefix_len + 3] = (char)(n >> 8);
    body[h->prefix_len + 4] = (char)n;
    body[h->batch_used++] = ERL_NIL_EXT;
    ewp_peer_commit(h->peer, h->batch_used);
    h->batch_count = 0;
    h->batch_used = 0;
    if (ewp_peer_congested(h->peer))
        pause_peer(h->table, h->peer);
}

static void
flush_cb(struct ewp_capture *c)
{
    batch_close(c->data);
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
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_message_eof(&x, &h->owner, &h->ref) == 0)
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
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_message_error(&x, &h->owner, &h->ref, reason) == 0)
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
