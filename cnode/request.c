/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Requests (see request.h and docs/PROTOCOL.md): decoded by decode.c, run
 * here against the handle table under the policy, the reply term appended
 * to the caller's buffer. An open builds its handle completely before it
 * enters the table (handles.c), sets its filter before the first packet is
 * read, and on any failure leaves nothing behind.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ei.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "call.h"
#include "capture.h"
#include "decode.h"
#include "deliver.h"
#include "dist.h"
#include "encode.h"
#include "files.h"
#include "filter.h"
#include "handles.h"
#include "log.h"
#include "request.h"

static int run(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *from,
               struct ewp_request *req, const struct ewp_call *call, ei_x_buff *x);
static int do_open(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *from,
                   struct ewp_request *req, const struct ewp_call *call, ei_x_buff *x);
static void tell_link(struct ewp_handle *h, const erlang_pid *from);
static int open_capture(struct ewp_requests *r, struct ewp_handle *h,
                        const struct ewp_request *req, const struct ewp_capture_opts *copts,
                        char *errbuf);
static void capture_opts(const struct ewp_requests *r, const struct ewp_opts *o,
                         struct ewp_capture_opts *copts, char *self, size_t selflen);
static const char *refuse_open(struct ewp_requests *r, struct ewp_peer *peer, const char *dev,
                               unsigned long long ring);
static int ring_bytes(const struct ewp_opts *o);
static int do_filter(struct ewp_requests *r, struct ewp_handle *h,
                     const struct ewp_request *req, const struct ewp_call *call, ei_x_buff *x);
static int do_getifaddrs(ei_x_buff *x);
static int do_info(struct ewp_requests *r, ei_x_buff *x);
static int encode_handle_info(ei_x_buff *x, const struct ewp_handle *h);
static void check_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* The handle table, the compile workers and the interface check; -1 when
 * memory or the workers fail */
int
ewp_request_init(struct ewp_requests *r)
{
    r->handles = ewp_handles_new(r->loop, r->ec);
    if (r->handles == NULL)
        return -1;
    r->filters = ewp_filter_init(r->loop, r->handles, r->dist, r->port);
    if (r->filters == NULL) {
        ewp_handles_free(r->handles);
        r->handles = NULL;
        return -1;
    }
    ev_timer_init(&r->check, check_cb, 1., 1.);
    r->check.data = r;
    if (r->loop != NULL)
        ev_timer_start(r->loop, &r->check);
    return 0;
}

/* Pending compiles dropped, every handle closed */
void
ewp_request_shutdown(struct ewp_requests *r)
{
    if (r->loop != NULL)
        ev_timer_stop(r->loop, &r->check);
    ewp_filter_shutdown(r->filters);
    r->filters = NULL;
    ewp_handles_free(r->handles);
    r->handles = NULL;
}

/* Decode the request at buf[*index] and run it; the reply term is
 * appended to x. monitor_owner: an open monitors its owner instead of
 * linking to the caller (rpc). call NULL: the reply cannot wait (a filter
 * is then compiled in the loop: only tests do this). Returns
 * 0, EWP_DEFERRED (filter.c will reply), or -1 when encoding failed. */
int
ewp_request_run(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *from,
                const char *buf, int *index, int monitor_owner, const struct ewp_call *call,
                ei_x_buff *x)
{
    struct ewp_request req;
    int rc;

    rc = ewp_decode_request(buf, index, &req);
    if (rc == EWP_DECODE_BADARG)
        return ewp_encode_error_atom(x, "badarg");
    if (rc == EWP_DECODE_UNKNOWN)
        return ewp_encode_error_atom(x, "unknown_request");
    req.monitor_owner = monitor_owner;
    return run(r, peer, from, &req, call, x);
}

static int
run(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *from,
    struct ewp_request *req, const struct ewp_call *call, ei_x_buff *x)
{
    char errbuf[EWP_ERRBUF_SIZE];
    struct ewp_handle *h = NULL;
    int rv = 0;

    if (req->type == EWP_REQ_CLOSE || req->type == EWP_REQ_FILTER ||
        req->type == EWP_REQ_WRITE || req->type == EWP_REQ_STATS) {
        h = ewp_handles_find_ref(r->handles, &req->ref);
        if (h == NULL)
            return ewp_encode_error_atom(x, "ebadf");
    }

    switch (req->type) {
    case EWP_REQ_OPEN:
    case EWP_REQ_OPEN_FILE:
        rv = do_open(r, peer, from, req, call, x);
        break;

    case EWP_REQ_CLOSE:
        tell_link(h, from);
        ewp_handle_close(h, 1, "closed");
        rv = ei_x_encode_atom(x, "ok");
        break;

    case EWP_REQ_FILTER:
        rv = do_filter(r, h, req, call, x);
        break;

    case EWP_REQ_WRITE:
        if (r->policy.no_inject) {
            EWP_LOG(1, "%s: write refused (--no-inject)", ewp_peer_name(peer));
            rv = ewp_encode_error_atom(x, "inject_disabled");
        } else if (ewp_capture_write(&h->cap, req->data, req->data_len, errbuf, sizeof(errbuf)) < 0)
            rv = ewp_encode_error_string(x, errbuf);
        else
            rv = ei_x_encode_atom(x, "ok");
        break;

    case EWP_REQ_STATS: {
        struct pcap_stat ps;

        if (ewp_capture_stats(&h->cap, &ps, errbuf, sizeof(errbuf)) < 0)
            rv = ewp_encode_error_string(x, errbuf);
        else
            rv = ewp_encode_stats(x, &ps);
        break;
    }

    case EWP_REQ_DEV: {
        char dev[EWP_DEV_MAX + 1];

        if (ewp_capture_default_dev(dev, sizeof(dev), errbuf, sizeof(errbuf)) < 0)
            rv = ewp_encode_error_string(x, errbuf);
        else
            rv = ewp_encode_ok_string(x, dev);
        break;
    }

    case EWP_REQ_GETIFADDRS:
        rv = do_getifaddrs(x);
        break;

    case EWP_REQ_INFO:
        rv = do_info(r, x);
        break;
    }
    if (rv < 0)
        EWP_ERR("%s: encoding a reply failed", ewp_peer_name(peer));
    return rv;
}

/*
 * A handle opened for another owner ({open, Dev, Opts, Owner}: the
 * library's guard opens so) and closed by another process than its opener
 * (an rpc close, a socket passed on, the library's close/1 made by the
 * owner): {ewpcap_closed, Ref} to the opener, linked to the handle (the
 * guard, which ends on it instead of waiting for the connection to drop).
 * It follows every message of the handle already queued, on the opener's
 * connection. An opener that is the owner itself (the 3-tuple open) is
 * not told: a raw client never asked for it. A handle whose owner is
 * monitored (opened through rpc) has no linked process to tell.
 */
static void
tell_link(struct ewp_handle *h, const erlang_pid *from)
{
    erlang_pid closer = *from, link = h->link, owner = h->owner;
    ei_x_buff x;

    if (h->monitored || ei_cmp_pids(&closer, &link) == 0 || ei_cmp_pids(&link, &owner) == 0)
        return;
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_message_closed(&x, &h->link, &h->ref) == 0)
        (void)ewp_peer_send(h->peer, x.buff, (size_t)x.index);
    ei_x_free(&x);
}

/* {open, Dev, Opts} | {open, Dev, Opts, Owner} | {open_file, Path, Opts} */
static int
do_open(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *from,
        struct ewp_request *req, const struct ewp_call *call, ei_x_buff *x)
{
    const struct ewp_opts *o = &req->opts;
    struct ewp_capture_opts copts;
    char errbuf[EWP_ERRBUF_SIZE];
    char who[MAXATOMLEN_UTF8 + 64];
    char self[32];
    const char *why;
    struct ewp_handle *h;
    int rv;

    if (o->has_filter && !ewp_filter_within_limit(o->filter_len, o->limit))
        return ewp_encode_error_atom(x, "enomem");
    if (req->has_owner && strcmp(req->owner.node, ewp_peer_name(peer)) != 0)
        return ewp_encode_error_atom(x, "badarg");
    if (o->has_relay && strcmp(o->relay.node, ewp_peer_name(peer)) != 0)
        return ewp_encode_error_atom(x, "badarg");

    h = ewp_handle_new(r->handles, peer);
    if (h == NULL)
        return ewp_encode_error_atom(x, "enomem");
    h->owner = req->has_owner ? req->owner : *from;
    h->to = o->has_relay ? o->relay : h->owner;
    h->relayed = o->has_relay;
    h->link = *from;
    h->snaplen = o->snaplen;
    h->time_unit = o->time_unit;
    h->nano = o->precision == EWP_TSTAMP_NANO;
    h->batch = o->batch;
    if (req->type != EWP_REQ_OPEN_FILE && req->dev_len == 0) {
        if (ewp_capture_default_dev(h->device, sizeof(h->device), errbuf, sizeof(errbuf)) < 0)
            goto err;
    } else {
        /* the device, or the savefile path as given (decode.c: at most
         * EWP_PATH_MAX bytes) */
        memcpy(h->device, req->dev, req->dev_len);
        h->device[req->dev_len] = '\0';
    }

    capture_opts(r, o, &copts, self, sizeof(self));
    /* a capture that joins one already open costs no kernel ring (the
     * ring's bytes stay with a handle of it: handles.c) */
    if (req->type != EWP_REQ_OPEN_FILE && !ewp_capture_joins(r->loop, h->device, &copts))
        h->ring = (unsigned long long)ring_bytes(o);
    why = refuse_open(r, peer, req->type == EWP_REQ_OPEN_FILE ? NULL : h->device, h->ring);
    if (why != NULL) {
        EWP_LOG(1, "%s: open %s refused: %s", ewp_peer_name(peer), h->device, why);
        ewp_handle_free(h);
        return ewp_encode_error_atom(x, why);
    }
    rv = open_capture(r, h, req, &copts, errbuf);
    if (rv > 0) { /* the path refused: an atom */
        ewp_handle_free(h);
        return ewp_encode_error_atom(x, errbuf);
    }
    if (rv < 0)
        goto err;

    if (ewp_handles_add(r->handles, h, req->monitor_owner) < 0) {
        (void)snprintf(errbuf, sizeof(errbuf), "cannot make a reference");
        goto err;
    }
    if (ewp_deliver_attach(h) < 0) {
        ewp_handle_close(h, 1, "cannot encode the packet header");
        return ewp_encode_error_string(x, "cannot encode the packet header");
    }
    ewp_format_pid(&h->owner, who, sizeof(who));
    EWP_LOG(1, "%s: open %s for %s (dlt %d, %d handles)", ewp_peer_name(peer), h->device, who,
            h->cap.dlt, ewp_handles_count(r->handles));

    /* the filter is set before the first packet is read */
    h->pending = 1;
    rv = ewp_filter_set(r->filters, h, o->has_filter ? o->filter : "",
                        o->has_filter ? o->filter_len : 0, o->optimize, o->netmask, 1, call,
                        errbuf);
    if (rv == EWP_DEFERRED)
        return EWP_DEFERRED;
    if (rv < 0) {
        ewp_handle_close(h, 1, "filter refused");
        return rv == EWP_FILTER_QUEUE_FULL ? ewp_encode_error_atom(x, errbuf)
                                           : ewp_encode_error_string(x, errbuf);
    }
    h->pending = 0;
    ewp_deliver_start(h);
    return ewp_encode_ok_ref(x, &h->ref);

err:
    EWP_LOG(1, "%s: open %s failed: %s", ewp_peer_name(peer), h->device, errbuf);
    ewp_handle_free(h);
    /* out of descriptors: a term a client can match, not libpcap's text */
    if (strstr(errbuf, strerror(EMFILE)) != NULL || strstr(errbuf, strerror(ENFILE)) != NULL)
        return ewp_encode_error_atom(x, "emfile");
    return ewp_encode_error_string(x, errbuf);
}

/* The capture (live or savefile) and its {dump, Path}. Returns 0, -1 with
 * the reason in errbuf, or 1 with an error atom in errbuf (a path refused). */
static int
open_capture(struct ewp_requests *r, struct ewp_handle *h, const struct ewp_request *req,
             const struct ewp_capture_opts *copts, char *errbuf)
{
    const struct ewp_opts *o = &req->opts;
    const char *why;
    int fd = -1;

    if (req->type == EWP_REQ_OPEN_FILE) {
        fd = ewp_files_open(r->policy.files_dir, r->policy.files_fd, req->dev, req->dev_len, 0,
                            &why);
        if (fd < 0)
            goto refused;
    }
    if ((req->type == EWP_REQ_OPEN_FILE
             ? ewp_capture_open_offline(r->loop, &h->cap, fd, copts->nano, errbuf,
                                        EWP_ERRBUF_SIZE)
             : ewp_capture_open(r->loop, &h->cap, h->device, copts, errbuf,
                                EWP_ERRBUF_SIZE)) < 0)
        return -1;
    if (o->dump_len > 0) {
        /* created once the capture is open: a failed open leaves no file */
        fd = ewp_files_open(r->policy.files_dir, r->policy.files_fd, o->dump, o->dump_len, 1,
                            &why);
        if (fd < 0)
            goto refused; /* ewp_handle_free closes the capture */
        if (ewp_capture_dump_open(&h->cap, fd, errbuf, EWP_ERRBUF_SIZE) < 0)
            return -1;
    }
    return 0;

refused:
    EWP_LOG(1, "%s: open refused: %s", ewp_peer_name(h->peer), why);
    (void)snprintf(errbuf, EWP_ERRBUF_SIZE, "%s", why);
    return 1;
}

/*
 * The capture options of o. Live captures of one device with the same
 * options share one pcap_t, each with its own filter (source.h), except a
 * {dump, Path}, whose packets go to its file through a kernel filter of
 * its own, and a {share, false}, which asks for one (the kernel's filter,
 * compiled against its live pcap_t: inbound, outbound, ifindex and VLAN
 * tags as the classic NIF had them). The shared ring's kernel filter keeps our own distribution
 * traffic out (filter.c composes the same exclusion into every filter).
 */
static void
capture_opts(const struct ewp_requests *r, const struct ewp_opts *o,
             struct ewp_capture_opts *copts, char *self, size_t selflen)
{
    copts->snaplen = o->snaplen;
    copts->promisc = o->promisc;
    copts->immediate = o->timing_given ? o->immediate : 0;
    copts->timeout_ms = o->timing_given ? o->timeout_ms : EWP_DEFAULT_TIMEOUT_MS;
    copts->buffer = ring_bytes(o);
    copts->monitor = o->monitor;
    copts->nano = o->precision == EWP_TSTAMP_NANO;
    copts->exclusive = o->dump_len > 0 || !o->share;
    (void)snprintf(self, selflen, "not tcp port %d", r->port);
    copts->kernel_filter = self;
}

/* The kernel buffer a live capture with these options asks for */
static int
ring_bytes(const struct ewp_opts *o)
{
    int immediate = o->timing_given ? o->immediate : 0;

    return o->buffer > 0 ? o->buffer : immediate ? EWP_IMMEDIATE_BUFFER : EWP_DEFAULT_BUFFER;
}

/* NULL when the policy lets peer open dev (ring: its kernel buffer), else
 * the error atom */
static const char *
refuse_open(struct ewp_requests *r, struct ewp_peer *peer, const char *dev,
            unsigned long long ring)
{
    const struct ewp_policy *pol = &r->policy;
    unsigned long long all = ring + ewp_handles_ring(r->handles);
    unsigned long long node = ring + ewp_handles_ring_peer(r->handles, peer);
    int i;

    if (dev != NULL && pol->nallow > 0) {
        for (i = 0; i < pol->nallow; i++)
            if (strcmp(pol->allow[i], dev) == 0)
                break;
        if (i == pol->nallow)
            return "device_not_allowed";
    }
    if (pol->max_handles > 0 && ewp_handles_count(r->handles) >= pol->max_handles)
        return "too_many_handles";
    if (pol->max_node_handles > 0 &&
        ewp_handles_count_peer(r->handles, peer) >= pol->max_node_handles)
        return "too_many_handles";
    if ((pol->max_ring > 0 && all > pol->max_ring) ||
        (pol->max_node_ring > 0 && node > pol->max_node_ring))
        return "buffer_limit";
    return NULL;
}

/* {filter, Ref, Filter, Opts} */
static int
do_filter(struct ewp_requests *r, struct ewp_handle *h, const struct ewp_request *req,
          const struct ewp_call *call, ei_x_buff *x)
{
    char errbuf[EWP_ERRBUF_SIZE];
    int rv;

    if (!ewp_filter_within_limit(req->data_len, req->opts.limit))
        return ewp_encode_error_atom(x, "enomem");
    rv = ewp_filter_set(r->filters, h, req->data, req->data_len, req->opts.optimize,
                        req->opts.netmask, 0, call, errbuf);
    if (rv == EWP_DEFERRED)
        return EWP_DEFERRED;
    if (rv == EWP_FILTER_QUEUE_FULL)
        return ewp_encode_error_atom(x, errbuf);
    if (rv < 0)
        return ewp_encode_error_string(x, errbuf);
    return ei_x_encode_atom(x, "ok");
}

static int
do_getifaddrs(ei_x_buff *x)
{
    char pcap_err[PCAP_ERRBUF_SIZE];
    pcap_if_t *alldevs = NULL;
    int rv;

    pcap_err[0] = '\0';
    if (pcap_findalldevs(&alldevs, pcap_err) < 0)
        return ewp_encode_error_string(x, pcap_err);
    rv = ewp_encode_ifaddrs(x, alldevs);
    pcap_freealldevs(alldevs);
    return rv;
}

/* {ok, [{node, N}, {os_pid, P}, {handles, [[{K, V}]]}, {nodes, [N]}]} */
static int
do_info(struct ewp_requests *r, ei_x_buff *x)
{
    const struct ewp_handle *h;
    struct ewp_peer *p;
    int npeers = 0, nhandles = ewp_handles_count(r->handles);

    for (p = ewp_dist_peer_next(r->dist, NULL); p != NULL; p = ewp_dist_peer_next(r->dist, p))
        npeers++;

    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "ok") < 0 ||
        ei_x_encode_list_header(x, 4) < 0)
        return -1;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "node") < 0 ||
        ei_x_encode_atom(x, ei_thisnodename(r->ec)) < 0)
        return -1;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "os_pid") < 0 ||
        ei_x_encode_long(x, (long)getpid()) < 0)
        return -1;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "handles") < 0)
        return -1;
    if (nhandles > 0 && ei_x_encode_list_header(x, nhandles) < 0)
        return -1;
    for (h = ewp_handles_first(r->handles); h != NULL; h = h->next)
        if (encode_handle_info(x, h) < 0)
            return -1;
    if (ei_x_encode_empty_list(x) < 0)
        return -1;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "nodes") < 0)
        return -1;
    if (npeers > 0 && ei_x_encode_list_header(x, npeers) < 0)
        return -1;
    for (p = ewp_dist_peer_next(r->dist, NULL); p != NULL; p = ewp_dist_peer_next(r->dist, p))
        if (ei_x_encode_atom(x, ewp_peer_name(p)) < 0)
            return -1;
    if (ei_x_encode_empty_list(x) < 0) /* the nodes */
        return -1;
    if (ei_x_encode_empty_list(x) < 0) /* the info list */
        return -1;
    return 0;
}

static int
encode_handle_info(ei_x_buff *x, const struct ewp_handle *h)
{
    if (ei_x_encode_list_header(x, 12) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "ref") < 0 ||
        ei_x_encode_ref(x, &h->ref) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "owner") < 0 ||
        ei_x_encode_pid(x, &h->owner) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "link") < 0 ||
        ei_x_encode_pid(x, &h->link) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "relay") < 0 ||
        (h->relayed ? ei_x_encode_pid(x, &h->to) : ei_x_encode_atom(x, "false")) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "device") < 0 ||
        ei_x_encode_string(x, h->device) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "filter") < 0 ||
        ei_x_encode_binary(x, h->filter != NULL ? h->filter : "", (int)h->filter_len) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "snaplen") < 0 ||
        ei_x_encode_long(x, h->snaplen) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "datalink") < 0 ||
        ei_x_encode_long(x, h->cap.dlt) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "packets") < 0 ||
        ei_x_encode_ulonglong(x, h->packets) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "bytes") < 0 ||
        ei_x_encode_ulonglong(x, h->bytes) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "drops") < 0 ||
        ei_x_encode_ulonglong(x, h->drops) < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "queue") < 0 ||
        ei_x_encode_ulonglong(x, ewp_peer_queued(h->peer)) < 0 ||
        ei_x_encode_empty_list(x) < 0)
        return -1;
    return 0;
}

static void
check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ewp_requests *r = w->data;

    (void)loop;
    (void)revents;
    ewp_deliver_check(r->handles);
}
