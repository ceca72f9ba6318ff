/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Requests, the handle table and packet delivery. Each handle is a pcap
 * capture with an owner pid (who gets the packets), a link pid (whose exit
 * closes the handle, normally the client library's guard process), its own
 * pid on this node for the link, and a cluster-unique reference.
 *
 * Packets: the fixed head of every packet message of a handle ('p', the SEND
 * control to the owner, {ewpcap, Ref, DLT, ...) is encoded once at open. Per
 * packet we reserve room in the owner node's output buffer, copy that head,
 * encode Time, Length and the binary header into it and copy the packet
 * bytes from the pcap ring: one copy, no allocation, no system call. When the
 * buffer passes its high-water mark, every capture feeding that node is
 * paused and the kernel ring absorbs the burst (its drops show in stats/1);
 * they resume when it drains.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ei.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "capture.h"
#include "compile.h"
#include "command.h"
#include "decode.h"
#include "encode.h"
#include "log.h"
#include "node.h"
#include "rpc.h"

#define ERRBUF_SIZE 512

struct ewp_handle {
    erlang_ref ref;                  /* the handle's name in every message */
    erlang_pid pid;                  /* our end of the link */
    erlang_pid owner;                /* receives the packets */
    erlang_pid link;                 /* linked: its exit closes the handle */
    int monitored;                   /* the owner is monitored, not linked */
    erlang_ref mon_ref;              /* ... with this monitor reference */
    struct ewp_peer *peer;           /* the owner's node connection */
    struct ewp_capture cap;          /* the pcap side */
    char device[EWP_PATH_MAX + 1];   /* for info: device, or savefile path */
    char *filter;                    /* current filter text, for info */
    size_t filter_len;               /* its length */
    int snaplen;                     /* for info and buffer reservation */
    enum ewp_time_unit time_unit;    /* format of Time */
    char *prefix;                    /* encoded message head, see above */
    size_t prefix_len;               /* its length */
    int pending;                     /* open waits for its filter to compile */
    int batch;                       /* packets per message; 1: no batching */
    int batch_count;                 /* packets in the open batch */
    size_t batch_used;               /* bytes of the open batch's frame body */
    unsigned long long packets;      /* messages queued to the owner */
    unsigned long long bytes;        /* packet bytes in them */
    unsigned long long drops;        /* packets the output buffer had no room for */
    struct ewp_handle *next;         /* the table */
};

/* A call whose reply waits for a filter compiled off the loop */
struct pending {
    enum ewp_req_type type;       /* EWP_REQ_OPEN or EWP_REQ_FILTER */
    erlang_ref ref;               /* the handle */
    struct ewp_call call;         /* whom to answer; its tag is tag */
    char *tag;                    /* copy of the caller's Tag */
    char *user;                   /* the user's filter text, for info */
    size_t user_len;              /* its length */
};

static struct {
    struct ev_loop *loop;            /* for capture watchers */
    struct ewp_handle *handles;      /* every open handle */
    int count;                       /* how many */
    unsigned long unlink_id;         /* last UNLINK_ID sent */
    struct ewp_policy policy;        /* --allow, --no-inject, limits */
    ev_timer check;                  /* are the captured interfaces still there? */
} cmd;

static int run(struct ewp_peer *peer, const erlang_pid *from, struct ewp_request *req,
               const struct ewp_call *call, ei_x_buff *x);
static int do_open(struct ewp_peer *peer, const erlang_pid *from, struct ewp_request *req,
                   const struct ewp_call *call, ei_x_buff *x);
static const char *refuse_open(struct ewp_peer *peer, const char *dev);
static int do_filter(struct ewp_handle *h, const struct ewp_request *req,
                     const struct ewp_call *call, ei_x_buff *x);
static int do_getifaddrs(ei_x_buff *x);
static int do_info(ei_x_buff *x);
static int set_filter(struct ewp_handle *h, const char *f, size_t len, int optimize,
                      uint32_t netmask, const struct ewp_call *call, char *errbuf);
static void compiled_cb(struct ewp_compile_job *job);
static int apply_filter(struct ewp_handle *h, struct ewp_compile_job *job, const char *f,
                        size_t len, char *errbuf);
static struct ewp_handle *find_ref(const erlang_ref *ref);
static struct ewp_handle *find_pid(const erlang_pid *pid);
static void handle_close(struct ewp_handle *h, int unlink, const char *why);
static void send_frame(struct ewp_peer *peer, ei_x_buff *x);
static void packet_cb(struct ewp_capture *c, const struct pcap_pkthdr *hdr,
                      const unsigned char *bytes);
static void batch_packet(struct ewp_handle *h, const struct pcap_pkthdr *hdr,
                         const unsigned char *bytes);
static void batch_close(struct ewp_handle *h);
static void flush_cb(struct ewp_capture *c);
static void pause_peer(struct ewp_peer *peer);
static void error_cb(struct ewp_capture *c, const char *reason);
static void eof_cb(struct ewp_capture *c);
static const char *resolve_path(const char *path, size_t len, int must_exist, char *out);
static void format_pid(const erlang_pid *pid, char *buf, size_t len);

static void
check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ewp_handle *h;

    (void)loop;
    (void)w;
    (void)revents;
    for (h = cmd.handles; h != NULL; h = h->next)
        (void)ewp_capture_check(&h->cap);
}

int
ewp_command_init(struct ev_loop *loop, const struct ewp_policy *policy)
{
    cmd.loop = loop;
    cmd.policy = *policy;
    ev_timer_init(&cmd.check, check_cb, 1., 1.);
    if (loop != NULL)
        ev_timer_start(loop, &cmd.check);
    return ewp_compile_init(loop, compiled_cb);
}

static void
discard_pending(struct ewp_compile_job *job)
{
    struct pending *pd = job->data;

    if (pd != NULL) {
        free(pd->tag);
        free(pd->user);
        free(pd);
        job->data = NULL;
    }
}

void
ewp_command_close_all(void)
{
    if (cmd.loop != NULL)
        ev_timer_stop(cmd.loop, &cmd.check);
    ewp_compile_shutdown(discard_pending);
    while (cmd.handles != NULL)
        handle_close(cmd.handles, 0, "shutdown");
}

int
ewp_command_count(void)
{
    return cmd.count;
}

/* A message to a registered name; msg starts at its version byte. */
void
ewp_command_reg_send(struct ewp_peer *peer, const char *to_name, const char *msg, size_t len)
{
    erlang_pid from;
    ei_x_buff x;
    int i = 0, version, tag_index, tag_len, rv;

    (void)len; /* the frame was checked whole by node.c */
    if (ei_decode_version(msg, &i, &version) < 0 ||
        ewp_decode_call(msg, &i, &from, &tag_index, &tag_len) < 0) {
        EWP_LOG(1, "%s: message to %s is not a call: dropped", ewp_peer_name(peer), to_name);
        return;
    }
    /* The reply can only go back over the connection it came from. */
    if (strcmp(from.node, ewp_peer_name(peer)) != 0) {
        EWP_LOG(1, "%s: call from a pid of %s: dropped", ewp_peer_name(peer), from.node);
        return;
    }
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_reply_begin(&x, &from, msg + tag_index, tag_len) < 0)
        goto out;

    if (strcmp(to_name, "net_kernel") == 0) {
        /* {is_auth, Node}: net_adm:ping/1 */
        char atom[MAXATOMLEN];
        int arity;

        if (ei_decode_tuple_header(msg, &i, &arity) < 0 || arity != 2 ||
            ei_decode_atom(msg, &i, atom) < 0 || strcmp(atom, "is_auth") != 0)
            goto out;
        if (ei_x_encode_atom(&x, "yes") < 0)
            goto out;
    } else if (strcmp(to_name, "ewpcap") == 0) {
        struct ewp_call call;

        call.from = from;
        call.tag = msg + tag_index;
        call.tag_len = tag_len;
        (void)snprintf(call.node, sizeof(call.node), "%s", ewp_peer_name(peer));
        rv = ewp_command_request(peer, &from, msg, &i, 0, &call, &x);
        if (rv < 0 || rv == EWP_DEFERRED)
            goto out;
    } else if (strcmp(to_name, "rex") == 0) {
        /* {block_call, M, F, A, GroupLeader}: rpc:block_call/4,5 */
        if (ewp_rpc_block_call(peer, &from, msg, &i, &x) < 0)
            goto out;
    } else {
        EWP_LOG(1, "%s: message to unknown name %s dropped", ewp_peer_name(peer), to_name);
        goto out;
    }
    send_frame(peer, &x);
out:
    ei_x_free(&x);
}

/* A message to a name that ewp_decode_check refused (a fun inside, nesting
 * too deep, ...): if its call envelope is sound, the caller still gets
 * {error, badarg} or {error, unknown_request} instead of waiting forever. */
void
ewp_command_refuse(struct ewp_peer *peer, const char *to_name, const char *msg, size_t len)
{
    erlang_pid from;
    ei_x_buff x;
    int i = 1, kind, tag_index, tag_len;

    kind = strcmp(to_name, "ewpcap") == 0 ? ewp_decode_check_call(msg, len, 1) : -3;
    if (kind == -3 || ewp_decode_call(msg, &i, &from, &tag_index, &tag_len) < 0 ||
        strcmp(from.node, ewp_peer_name(peer)) != 0) {
        EWP_LOG(1, "%s: malformed message to %s dropped", ewp_peer_name(peer), to_name);
        return;
    }
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_reply_begin(&x, &from, msg + tag_index, tag_len) == 0 &&
        ewp_encode_error_atom(&x, kind == EWP_DECODE_BADARG ? "badarg" : "unknown_request") == 0)
        send_frame(peer, &x);
    ei_x_free(&x);
}

/* Decode the request at buf[*index] and run it; the reply term is
 * appended to x. monitor_owner: an open monitors its owner instead of
 * linking to the caller (rpc). Returns 0, or -1 when encoding failed. */
int
ewp_command_request(struct ewp_peer *peer, const erlang_pid *from, const char *buf,
                    int *index, int monitor_owner, const struct ewp_call *call, ei_x_buff *x)
{
    struct ewp_request req;
    int rc;

    rc = ewp_decode_request(buf, index, &req);
    if (rc == EWP_DECODE_BADARG)
        return ewp_encode_error_atom(x, "badarg");
    if (rc == EWP_DECODE_UNKNOWN)
        return ewp_encode_error_atom(x, "unknown_request");
    req.monitor_owner = monitor_owner;
    return run(peer, from, &req, call, x);
}

/* The pid of the handle named by ref, for the socket record of rpc opens */
int
ewp_command_pid_of(const erlang_ref *ref, erlang_pid *pid)
{
    struct ewp_handle *h = find_ref(ref);

    if (h == NULL)
        return -1;
    *pid = h->pid;
    return 0;
}

/* MONITOR_P {From, To, Ref}: To is one of our names or pids. Monitors of a
 * name we have, or of a live handle, need nothing until it goes away (our
 * names never do; a handle that closes does not notify: monitors of
 * handles are not kept). Anything else is dead already: noproc. */
void
ewp_command_monitor(struct ewp_peer *peer, const erlang_pid *from, const char *to, int to_len,
                    const char *ref, int ref_len)
{
    static const char noproc[] = {(char)ERL_SMALL_ATOM_UTF8_EXT, 6, 'n', 'o', 'p', 'r', 'o', 'c'};
    char name[MAXATOMLEN];
    erlang_pid pid;
    ei_x_buff x;
    int i = 0;

    if (ei_decode_atom(to, &i, name) == 0) {
        if (strcmp(name, "ewpcap") == 0 || strcmp(name, "net_kernel") == 0 ||
            strcmp(name, "rex") == 0)
            return;
    } else if (ei_decode_pid(to, &i, &pid) == 0 && find_pid(&pid) != NULL) {
        return;
    }
    if (ei_x_new(&x) < 0)
        return;
    /* the exit comes "from" the monitored process: our name as a pid does
     * not exist, so the reply names the monitor's target as given */
    if (ewp_encode_monitor_exit_to(&x, to, to_len, from, ref, ref_len, noproc,
                                   (int)sizeof(noproc)) == 0)
        send_frame(peer, &x);
    ei_x_free(&x);
}

/* MONITOR_P_EXIT {From, To, Ref, Reason}: an owner we monitor is gone. */
void
ewp_command_monitor_exit(struct ewp_peer *peer, const erlang_pid *from, const erlang_pid *to,
                         const erlang_ref *ref)
{
    struct ewp_handle *h = find_pid(to);
    erlang_ref r = *ref;

    (void)from;
    if (h == NULL || !h->monitored || ei_cmp_refs(&h->mon_ref, &r) != 0)
        return;
    EWP_LOG(1, "%s: owner of a handle on %s exited", ewp_peer_name(peer), h->device);
    handle_close(h, 0, "owner exited");
}

/* An exit signal from 'from' to 'to': if 'to' is a handle, close it. */
void
ewp_command_exit(struct ewp_peer *peer, const erlang_pid *from, const erlang_pid *to)
{
    struct ewp_handle *h = find_pid(to);
    char who[MAXATOMLEN_UTF8 + 64];

    if (h == NULL)
        return;
    format_pid(from, who, sizeof(who));
    EWP_LOG(1, "%s: exit signal from %s", ewp_peer_name(peer), who);
    handle_close(h, 0, "linked process exited");
}

/* Someone links to one of our pids. A closed handle answers noproc, as a
 * dead process would; a live one keeps its single link. */
void
ewp_command_link(struct ewp_peer *peer, const erlang_pid *from, const erlang_pid *to)
{
    ei_x_buff x;

    if (find_pid(to) != NULL)
        return;
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_exit(&x, to, from, "noproc") == 0)
        send_frame(peer, &x);
    ei_x_free(&x);
}

/* The node is gone: so are its handles. */
void
ewp_command_peer_down(struct ewp_peer *peer)
{
    struct ewp_handle *h, *next;

    for (h = cmd.handles; h != NULL; h = next) {
        next = h->next;
        if (h->peer == peer)
            handle_close(h, 0, "owner node disconnected");
    }
}

void
ewp_command_peer_drained(struct ewp_peer *peer)
{
    struct ewp_handle *h;

    for (h = cmd.handles; h != NULL; h = h->next)
        if (h->peer == peer)
            ewp_capture_start(&h->cap);
}

static int
run(struct ewp_peer *peer, const erlang_pid *from, struct ewp_request *req,
    const struct ewp_call *call, ei_x_buff *x)
{
    char errbuf[ERRBUF_SIZE];
    struct ewp_handle *h = NULL;
    int rv = 0;

    if (req->type == EWP_REQ_CLOSE || req->type == EWP_REQ_FILTER ||
        req->type == EWP_REQ_WRITE || req->type == EWP_REQ_STATS) {
        h = find_ref(&req->ref);
        if (h == NULL)
            return ewp_encode_error_atom(x, "ebadf");
    }

    switch (req->type) {
    case EWP_REQ_OPEN:
    case EWP_REQ_OPEN_FILE:
        rv = do_open(peer, from, req, call, x);
        break;

    case EWP_REQ_CLOSE:
        handle_close(h, 1, "closed");
        rv = ei_x_encode_atom(x, "ok");
        break;

    case EWP_REQ_FILTER:
        rv = do_filter(h, req, req->monitor_owner ? NULL : call, x);
        break;

    case EWP_REQ_WRITE:
        if (cmd.policy.no_inject) {
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
        rv = do_info(x);
        break;
    }
    if (rv < 0)
        EWP_ERR("%s: encoding a reply failed", ewp_peer_name(peer));
    return rv;
}


/* {open, Dev, Opts} | {open, Dev, Opts, Owner} */
static int
do_open(struct ewp_peer *peer, const erlang_pid *from, struct ewp_request *req,
        const struct ewp_call *call, ei_x_buff *x)
{
    const struct ewp_opts *o = &req->opts;
    struct ewp_capture_opts copts;
    char errbuf[ERRBUF_SIZE];
    char who[MAXATOMLEN_UTF8 + 64];
    char dump[PATH_MAX];
    const char *why;
    int rv;
    struct ewp_handle *h;
    ei_x_buff px;

    if (o->has_filter && !ewp_filter_within_limit(o->filter_len, o->limit))
        return ewp_encode_error_atom(x, "enomem");
    if (req->has_owner && strcmp(req->owner.node, ewp_peer_name(peer)) != 0)
        return ewp_encode_error_atom(x, "badarg");

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return ewp_encode_error_atom(x, "enomem");
    h->owner = req->has_owner ? req->owner : *from;
    h->link = *from;
    h->peer = peer;
    h->snaplen = o->snaplen;
    h->time_unit = o->time_unit;
    h->batch = o->batch;
    if (req->type == EWP_REQ_OPEN_FILE) {
        why = resolve_path(req->dev, req->dev_len, 1, h->device);
        if (why != NULL) {
            EWP_LOG(1, "%s: open_file refused: %s", ewp_peer_name(peer), why);
            free(h);
            return ewp_encode_error_atom(x, why);
        }
    } else if (req->dev_len == 0) {
        if (ewp_capture_default_dev(h->device, sizeof(h->device), errbuf, sizeof(errbuf)) < 0)
            goto err_free;
    } else {
        memcpy(h->device, req->dev, req->dev_len);
        h->device[req->dev_len] = '\0';
    }

    why = refuse_open(peer, req->type == EWP_REQ_OPEN_FILE ? NULL : h->device);
    if (why == NULL && o->dump_len > 0)
        why = resolve_path(o->dump, o->dump_len, 0, dump);
    if (why != NULL) {
        EWP_LOG(1, "%s: open %s refused: %s", ewp_peer_name(peer), h->device, why);
        free(h);
        return ewp_encode_error_atom(x, why);
    }

    copts.snaplen = o->snaplen;
    copts.promisc = o->promisc;
    copts.immediate = o->timing_given ? o->immediate : 0;
    copts.timeout_ms = o->timing_given ? o->timeout_ms : EWP_DEFAULT_TIMEOUT_MS;
    copts.buffer = o->buffer > 0         ? o->buffer
                   : copts.immediate     ? EWP_IMMEDIATE_BUFFER
                                         : EWP_DEFAULT_BUFFER;
    copts.monitor = o->monitor;
    if ((req->type == EWP_REQ_OPEN_FILE
             ? ewp_capture_open_offline(cmd.loop, &h->cap, h->device, errbuf, sizeof(errbuf))
             : ewp_capture_open(cmd.loop, &h->cap, h->device, &copts, errbuf, sizeof(errbuf))) < 0)
        goto err_free;
    if (o->dump_len > 0 && ewp_capture_dump_open(&h->cap, dump, errbuf, sizeof(errbuf)) < 0)
        goto err_close;
    h->cap.eof_cb = eof_cb;
    h->cap.packet_cb = packet_cb;
    h->cap.error_cb = error_cb;
    h->cap.flush_cb = h->batch > 1 ? flush_cb : NULL;
    h->cap.data = h;

    if (ei_make_ref(ewp_node_cnode(), &h->ref) < 0 || ei_make_pid(ewp_node_cnode(), &h->pid) < 0) {
        (void)snprintf(errbuf, sizeof(errbuf), "cannot make a reference");
        goto err_close;
    }
    if (ei_x_new(&px) < 0) {
        (void)snprintf(errbuf, sizeof(errbuf), "out of memory");
        goto err_close;
    }
    if ((h->batch > 1 ? ewp_encode_batch_prefix(&px, &h->owner, &h->ref, h->cap.dlt)
                      : ewp_encode_packet_prefix(&px, &h->owner, &h->ref, h->cap.dlt)) < 0) {
        ei_x_free(&px);
        (void)snprintf(errbuf, sizeof(errbuf), "cannot encode the packet header");
        goto err_close;
    }
    h->prefix = px.buff;
    h->prefix_len = (size_t)px.index;

    /* LINK {HandlePid, From}: From's exit (or a dead From: noproc) closes
     * it. rpc opens have no guard process: there we monitor the owner, so
     * that a lost connection never sends the owner an exit signal. */
    if (req->monitor_owner) {
        h->monitored = 1;
        if (ei_make_ref(ewp_node_cnode(), &h->mon_ref) < 0) {
            (void)snprintf(errbuf, sizeof(errbuf), "cannot make a reference");
            free(h->prefix);
            goto err_close;
        }
    }
    if (ei_x_new(&px) == 0) {
        if ((h->monitored ? ewp_encode_monitor(&px, EWP_DOP_MONITOR_P, &h->pid, &h->owner,
                                               &h->mon_ref)
                          : ewp_encode_control(&px, EWP_DOP_LINK, &h->pid, &h->link)) == 0)
            send_frame(peer, &px);
        ei_x_free(&px);
    }

    h->next = cmd.handles;
    cmd.handles = h;
    cmd.count++;
    format_pid(&h->owner, who, sizeof(who));
    EWP_LOG(1, "%s: open %s for %s (dlt %d, %d handles)", ewp_peer_name(peer), h->device, who,
            h->cap.dlt, cmd.count);

    /* the filter is set before the first packet is read */
    h->pending = 1;
    rv = set_filter(h, o->has_filter ? o->filter : "", o->has_filter ? o->filter_len : 0,
                    o->optimize, o->netmask, req->monitor_owner ? NULL : call, errbuf);
    if (rv == EWP_DEFERRED)
        return EWP_DEFERRED;
    if (rv < 0) {
        handle_close(h, 1, "filter refused");
        return ewp_encode_error_string(x, errbuf);
    }
    h->pending = 0;
    if (!ewp_peer_congested(peer))
        ewp_capture_start(&h->cap);
    return ewp_encode_ok_ref(x, &h->ref);

err_close:
    ewp_capture_close(&h->cap);
    free(h->filter);
err_free:
    EWP_LOG(1, "%s: open %s failed: %s", ewp_peer_name(peer), h->device, errbuf);
    free(h);
    return ewp_encode_error_string(x, errbuf);
}

/* NULL when the policy lets peer open dev, else the error atom */
static const char *
refuse_open(struct ewp_peer *peer, const char *dev)
{
    struct ewp_handle *h;
    int n = 0, i;

    if (dev != NULL && cmd.policy.nallow > 0) {
        for (i = 0; i < cmd.policy.nallow; i++)
            if (strcmp(cmd.policy.allow[i], dev) == 0)
                break;
        if (i == cmd.policy.nallow)
            return "device_not_allowed";
    }
    if (cmd.policy.max_handles > 0 && cmd.count >= cmd.policy.max_handles)
        return "too_many_handles";
    if (cmd.policy.max_node_handles > 0) {
        for (h = cmd.handles; h != NULL; h = h->next)
            if (h->peer == peer)
                n++;
        if (n >= cmd.policy.max_node_handles)
            return "too_many_handles";
    }
    return NULL;
}

/* {filter, Ref, Filter, Opts} */
static int
do_filter(struct ewp_handle *h, const struct ewp_request *req, const struct ewp_call *call,
          ei_x_buff *x)
{
    char errbuf[ERRBUF_SIZE];
    int rv;

    if (!ewp_filter_within_limit(req->data_len, req->opts.limit))
        return ewp_encode_error_atom(x, "enomem");
    rv = set_filter(h, req->data, req->data_len, req->opts.optimize, req->opts.netmask, call,
                    errbuf);
    if (rv == EWP_DEFERRED)
        return EWP_DEFERRED;
    if (rv < 0)
        return ewp_encode_error_string(x, errbuf);
    return ei_x_encode_atom(x, "ok");
}

/*
 * The filter actually set is the user's filter (or none) and "not tcp port
 * P", P being our distribution port: without it a capture on the interface
 * that carries our own distribution traffic (lo for the embedded daemon)
 * would capture the messages that carry its packets, and each of those
 * would make more: a feedback loop. rpcapd excludes its own traffic the same
 * way. Datalinks where "tcp" means nothing (nflog, usb, ...) refuse the
 * combination; they get the user's filter alone.
 */
static int
set_filter(struct ewp_handle *h, const char *f, size_t len, int optimize, uint32_t netmask,
           const struct ewp_call *call, char *errbuf)
{
    struct ewp_compile_job *job;
    struct pending *pd;
    char self[64];
    size_t selflen;
    int rv = 0;

    job = calloc(1, sizeof(*job));
    if (job == NULL)
        goto nomem;
    selflen = (size_t)snprintf(self, sizeof(self), "not tcp port %d", ewp_node_port());
    job->text = malloc(len + selflen + 8);
    if (job->text == NULL)
        goto nomem;
    if (len == 0) {
        memcpy(job->text, self, selflen + 1);
    } else {
        job->text[0] = '(';
        memcpy(job->text + 1, f, len);
        (void)sprintf(job->text + 1 + len, ") and %s", self);
        job->fallback = strndup(f, len);
        if (job->fallback == NULL)
            goto nomem;
    }
    job->optimize = optimize;
    job->netmask = netmask;
    job->linktype = h->cap.dlt;
    job->snaplen = pcap_snapshot(h->cap.p);

    if (len > EWP_COMPILE_SYNC_MAX && call != NULL) {
        pd = calloc(1, sizeof(*pd));
        if (pd == NULL || (pd->tag = malloc((size_t)call->tag_len)) == NULL ||
            (pd->user = malloc(len + 1)) == NULL) {
            if (pd != NULL) {
                free(pd->tag);
                free(pd);
            }
            goto nomem;
        }
        pd->type = h->pending ? EWP_REQ_OPEN : EWP_REQ_FILTER;
        pd->ref = h->ref;
        pd->call.from = call->from;
        memcpy(pd->tag, call->tag, (size_t)call->tag_len);
        pd->call.tag = pd->tag;
        pd->call.tag_len = call->tag_len;
        (void)snprintf(pd->call.node, sizeof(pd->call.node), "%s", call->node);
        memcpy(pd->user, f, len);
        pd->user[len] = '\0';
        pd->user_len = len;
        job->data = pd;
        job->owner = h->peer; /* one node's compiles run one at a time */
        EWP_LOG(1, "%s: compiling a %zu byte filter off the loop", h->device, len);
        ewp_compile_submit(job);
        return EWP_DEFERRED;
    }

    (void)ewp_compile_run(job);
    rv = apply_filter(h, job, f, len, errbuf);
    ewp_compile_free(job);
    return rv;

nomem:
    if (job != NULL)
        ewp_compile_free(job);
    (void)snprintf(errbuf, ERRBUF_SIZE, "out of memory");
    return -1;
}

/*
 * Set the compiled program. The user's filter with the exclusion of our
 * own traffic if that compiled, else the user's alone; with no user filter
 * and no exclusion possible (a datalink where "tcp" means nothing: nflog,
 * usb, ...), no filter at all.
 */
static int
apply_filter(struct ewp_handle *h, struct ewp_compile_job *job, const char *f, size_t len,
             char *errbuf)
{
    char *copy;

    if (job->ok) {
        if (ewp_capture_setprog(&h->cap, &job->prog, errbuf, ERRBUF_SIZE) < 0)
            return -1;
    } else if (len > 0) {
        (void)snprintf(errbuf, ERRBUF_SIZE, "%s", job->errbuf);
        return -1;
    }
    copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, f, len);
        copy[len] = '\0';
    }
    free(h->filter);
    h->filter = copy;
    h->filter_len = copy != NULL ? len : 0;
    return 0;
}

/* A filter compiled off the loop: set it, answer the call that waited. */
static void
compiled_cb(struct ewp_compile_job *job)
{
    struct pending *pd = job->data;
    struct ewp_handle *h = find_ref(&pd->ref);
    struct ewp_peer *peer = ewp_node_peer_by_name(pd->call.node);
    char errbuf[ERRBUF_SIZE];
    ei_x_buff x;
    int rv = -1;

    if (peer != NULL && ei_x_new(&x) == 0) {
        if (ewp_encode_reply_begin(&x, &pd->call.from, pd->call.tag, pd->call.tag_len) == 0) {
            if (h == NULL) {
                /* closed meanwhile: by its owner's exit, or by close */
                rv = pd->type == EWP_REQ_OPEN
                         ? ewp_encode_error_string(&x, "closed while its filter compiled")
                         : ewp_encode_error_atom(&x, "ebadf");
            } else if (apply_filter(h, job, pd->user, pd->user_len, errbuf) < 0) {
                if (pd->type == EWP_REQ_OPEN)
                    handle_close(h, 1, "filter refused");
                rv = ewp_encode_error_string(&x, errbuf);
            } else if (pd->type == EWP_REQ_OPEN) {
                h->pending = 0;
                if (!ewp_peer_congested(h->peer))
                    ewp_capture_start(&h->cap);
                rv = ewp_encode_ok_ref(&x, &h->ref);
            } else {
                rv = ei_x_encode_atom(&x, "ok");
            }
        }
        if (rv == 0)
            send_frame(peer, &x);
        ei_x_free(&x);
    } else if (h != NULL && pd->type == EWP_REQ_OPEN) {
        handle_close(h, 1, "caller gone while its filter compiled");
    }
    free(pd->tag);
    free(pd->user);
    free(pd);
    job->data = NULL;
    ewp_compile_free(job);
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
do_info(ei_x_buff *x)
{
    struct ewp_handle *h;
    struct ewp_peer *p;
    int npeers = 0;

    for (p = ewp_node_peer_next(NULL); p != NULL; p = ewp_node_peer_next(p))
        npeers++;

    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "ok") < 0 ||
        ei_x_encode_list_header(x, 4) < 0)
        return -1;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "node") < 0 ||
        ei_x_encode_atom(x, ewp_node_name()) < 0)
        return -1;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "os_pid") < 0 ||
        ei_x_encode_long(x, (long)getpid()) < 0)
        return -1;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "handles") < 0)
        return -1;
    if (cmd.count > 0 && ei_x_encode_list_header(x, cmd.count) < 0)
        return -1;
    for (h = cmd.handles; h != NULL; h = h->next) {
        if (ei_x_encode_list_header(x, 11) < 0 ||
            ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "ref") < 0 ||
            ei_x_encode_ref(x, &h->ref) < 0 ||
            ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "owner") < 0 ||
            ei_x_encode_pid(x, &h->owner) < 0 ||
            ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "link") < 0 ||
            ei_x_encode_pid(x, &h->link) < 0 ||
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
    }
    if (ei_x_encode_empty_list(x) < 0)
        return -1;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "nodes") < 0)
        return -1;
    if (npeers > 0 && ei_x_encode_list_header(x, npeers) < 0)
        return -1;
    for (p = ewp_node_peer_next(NULL); p != NULL; p = ewp_node_peer_next(p))
        if (ei_x_encode_atom(x, ewp_peer_name(p)) < 0)
            return -1;
    if (ei_x_encode_empty_list(x) < 0) /* the nodes */
        return -1;
    if (ei_x_encode_empty_list(x) < 0) /* the info list */
        return -1;
    return 0;
}

static struct ewp_handle *
find_ref(const erlang_ref *ref)
{
    struct ewp_handle *h;
    erlang_ref r = *ref;

    for (h = cmd.handles; h != NULL; h = h->next)
        if (ei_cmp_refs(&h->ref, &r) == 0)
            return h;
    return NULL;
}

static struct ewp_handle *
find_pid(const erlang_pid *pid)
{
    struct ewp_handle *h;
    erlang_pid p = *pid;

    for (h = cmd.handles; h != NULL; h = h->next)
        if (ei_cmp_pids(&h->pid, &p) == 0)
            return h;
    return NULL;
}

/* Unlink (when the link is still there), stop, free. */
static void
handle_close(struct ewp_handle *h, int unlink, const char *why)
{
    struct ewp_handle **hh;

    if (unlink && h->monitored) {
        ei_x_buff x;

        if (ei_x_new(&x) == 0) {
            if (ewp_encode_monitor(&x, EWP_DOP_DEMONITOR_P, &h->pid, &h->owner, &h->mon_ref) == 0)
                send_frame(h->peer, &x);
            ei_x_free(&x);
        }
    } else if (unlink) {
        char id[16];
        int idlen = 0;
        ei_x_buff x;

        (void)ei_encode_ulong(id, &idlen, ++cmd.unlink_id);
        if (ei_x_new(&x) == 0) {
            if (ewp_encode_unlink_id(&x, EWP_DOP_UNLINK_ID, id, idlen, &h->pid, &h->link) == 0)
                send_frame(h->peer, &x);
            ei_x_free(&x);
        }
    }
    for (hh = &cmd.handles; *hh != NULL; hh = &(*hh)->next)
        if (*hh == h) {
            *hh = h->next;
            break;
        }
    cmd.count--;
    EWP_LOG(1, "%s: close %s (%s; %llu packets, %llu dropped; %d handles)",
            ewp_peer_name(h->peer), h->device, why, h->packets, h->drops, cmd.count);
    ewp_capture_close(&h->cap);
    free(h->prefix);
    free(h->filter);
    free(h);
}

static void
send_frame(struct ewp_peer *peer, ei_x_buff *x)
{
    (void)ewp_peer_send(peer, x->buff, (size_t)x->index);
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
                                (long)hdr->ts.tv_usec, hdr->len, hdr->caplen);
    memcpy(dst + n, bytes, hdr->caplen);
    n += hdr->caplen;
    ewp_peer_commit(h->peer, n);
    h->packets++;
    h->bytes += hdr->caplen;

    if (ewp_peer_congested(h->peer))
        pause_peer(h->peer);
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
                                            (long)hdr->ts.tv_sec, (long)hdr->ts.tv_usec,
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
        pause_peer(h->peer);
}

static void
flush_cb(struct ewp_capture *c)
{
    batch_close(c->data);
}

/* The node's output buffer is past its high-water mark: stop reading every
 * capture that feeds it until it drains (ewp_command_peer_drained). */
static void
pause_peer(struct ewp_peer *peer)
{
    struct ewp_handle *o;

    for (o = cmd.handles; o != NULL; o = o->next)
        if (o->peer == peer)
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

/*
 * A savefile path confined to --files DIR: relative paths are taken in DIR,
 * and the real path (symbolic links and ".." resolved; for a file to be
 * created, that of its directory) must be DIR or under it. Returns NULL and
 * the path in out (PATH_MAX), or the error atom.
 */
static const char *
resolve_path(const char *path, size_t len, int must_exist, char *out)
{
    const char *dir = cmd.policy.files_dir;
    char joined[PATH_MAX], parent[PATH_MAX];
    char *slash;
    size_t dlen;
    int n;

    if (dir == NULL)
        return "files_disabled";
    if (path[0] == '/')
        n = snprintf(joined, sizeof(joined), "%.*s", (int)len, path);
    else
        n = snprintf(joined, sizeof(joined), "%s/%.*s", dir, (int)len, path);
    if (n < 0 || (size_t)n >= sizeof(joined))
        return "bad_path";
    if (must_exist) {
        if (realpath(joined, out) == NULL)
            return "enoent";
    } else {
        slash = strrchr(joined, '/');
        if (slash == NULL || slash[1] == '\0' || strcmp(slash + 1, "..") == 0 ||
            strcmp(slash + 1, ".") == 0)
            return "bad_path";
        *slash = '\0';
        if (realpath(joined[0] != '\0' ? joined : "/", parent) == NULL)
            return "enoent";
        n = snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, slash + 1);
        if (n < 0 || n >= PATH_MAX)
            return "bad_path";
    }
    dlen = strlen(dir);
    if (strcmp(dir, "/") != 0 &&
        (strncmp(out, dir, dlen) != 0 || (out[dlen] != '/' && out[dlen] != '\0')))
        return "bad_path";
    return NULL;
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
format_pid(const erlang_pid *pid, char *buf, size_t len)
{
    (void)snprintf(buf, len, "<%s.%u.%u>", pid->node, pid->num, pid->serial);
}
