/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The top of ewpcapd's message path (see router.h). Frames come from
 * dist.c through ewp_router_dist_ops, are read by ctl.c and come back here
 * through the ctl ops below. Calls to our names get their reply here, in
 * one frame, after the request has done all it does: a reply that does not
 * fit only marks the node dead (dist.c's rule), nothing is freed under a
 * caller.
 */
#include <stdio.h>
#include <string.h>

#include <ei.h>

#include "call.h"
#include "ctl.h"
#include "decode.h"
#include "deliver.h"
#include "dist.h"
#include "encode.h"
#include "handles.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "rpc.h"

static void frame_op(void *ctx, struct ewp_peer *p, const char *buf, size_t len);
static void peer_down_op(void *ctx, struct ewp_peer *p);
static void drained_op(void *ctx, struct ewp_peer *p);
static void reg_send(void *ctx, struct ewp_peer *peer, const char *to_name, const char *msg,
                     size_t len, int msg_ok);
static void refuse(struct ewp_peer *peer, const char *to_name, const char *msg, size_t len);
static void exit_op(void *ctx, struct ewp_peer *peer, const erlang_pid *from,
                    const erlang_pid *to, int link_broken, int normal);
static void link_op(void *ctx, struct ewp_peer *peer, const erlang_pid *from,
                    const erlang_pid *to);
static void spawn_op(void *ctx, struct ewp_peer *peer, const char *reqid, int reqid_len,
                     const erlang_pid *from, const char *mod, const char *fun, long arity,
                     const char *args, size_t args_len);
static void monitor_op(void *ctx, struct ewp_peer *peer, const erlang_pid *from,
                       const char *to, int to_len, const char *ref, int ref_len);
static void monitor_exit_op(void *ctx, struct ewp_peer *peer, const erlang_pid *from,
                            const erlang_pid *to, const erlang_ref *ref);
static void send_frame(struct ewp_peer *peer, const ei_x_buff *x);
static void rpc_finish(void *ctx, const struct ewp_call *call, struct ewp_peer *peer,
                       const char *term, int term_len);
static void call_of(struct ewp_call *call, struct ewp_router *rt, struct ewp_peer *peer,
                    const erlang_pid *from, const char *tag, int tag_len, int rpc);

const struct ewp_dist_ops ewp_router_dist_ops = {
    .frame = frame_op,
    .peer_down = peer_down_op,
    .drained = drained_op,
};

static const struct ewp_ctl_ops ctl_ops = {
    .reg_send = reg_send,
    .exit = exit_op,
    .link = link_op,
    .spawn = spawn_op,
    .monitor = monitor_op,
    .monitor_exit = monitor_exit_op,
};

static void
frame_op(void *ctx, struct ewp_peer *p, const char *buf, size_t len)
{
    ewp_ctl_frame(&ctl_ops, ctx, p, buf, len);
}

/* The node is gone (called by ewp_dist_reap): so are its handles. */
static void
peer_down_op(void *ctx, struct ewp_peer *p)
{
    struct ewp_router *rt = ctx;

    if (rt->req->handles != NULL)
        ewp_handles_peer_down(rt->req->handles, p);
}

static void
drained_op(void *ctx, struct ewp_peer *p)
{
    struct ewp_router *rt = ctx;

    if (rt->req->handles != NULL)
        ewp_deliver_drained(rt->req->handles, p);
}

/* A message to a registered name; msg starts at its version byte. */
static void
reg_send(void *ctx, struct ewp_peer *peer, const char *to_name, const char *msg, size_t len,
         int msg_ok)
{
    struct ewp_router *rt = ctx;
    erlang_pid from;
    ei_x_buff x;
    int i = 0, version, tag_index, tag_len, rv;

    if (!msg_ok) {
        refuse(peer, to_name, msg, len);
        return;
    }
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

        call_of(&call, rt, peer, &from, msg + tag_index, tag_len, 0);
        rv = ewp_request_run(rt->req, peer, &from, msg, &i, 0, &call, &x);
        if (rv < 0 || rv == EWP_DEFERRED)
            goto out;
    } else if (strcmp(to_name, "rex") == 0) {
        /* {block_call, M, F, A, GroupLeader}: rpc:block_call/4,5 */
        struct ewp_call call;

        call_of(&call, rt, peer, &from, msg + tag_index, tag_len, 1);
        rv = ewp_rpc_block_call(rt->req, peer, &from, msg, &i, &call, &x);
        if (rv < 0 || rv == EWP_DEFERRED)
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
static void
refuse(struct ewp_peer *peer, const char *to_name, const char *msg, size_t len)
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

/*
 * An exit signal from 'from' to 'to'. A handle behaves as a process that
 * traps no exits: the end of its link (EXIT from the linked pid, with any
 * reason: the library's guard exits normal when the owner goes) closes
 * it; a link exit from a pid it is not linked to is ignored, as erts
 * ignores it; exit/2 (EXIT2) closes it unless the reason is normal.
 */
static void
exit_op(void *ctx, struct ewp_peer *peer, const erlang_pid *from, const erlang_pid *to,
        int link_broken, int normal)
{
    struct ewp_router *rt = ctx;
    struct ewp_handle *h = ewp_handles_find_pid(rt->req->handles, to);
    char who[MAXATOMLEN_UTF8 + 64];
    erlang_pid a = *from;

    if (h == NULL)
        return;
    ewp_format_pid(from, who, sizeof(who));
    /* erts sends a signal from a pid of its own node, over its own
     * connection: one from another node's pid is forged */
    if (strcmp(from->node, ewp_peer_name(peer)) != 0) {
        EWP_LOG(1, "%s: exit signal from a pid of another node (%s) ignored",
                ewp_peer_name(peer), who);
        return;
    }
    if (link_broken ? ei_cmp_pids(&a, &h->link) != 0 : normal) {
        EWP_LOG(1, "%s: %s from %s ignored", ewp_peer_name(peer),
                link_broken ? "link exit" : "exit(normal)", who);
        return;
    }
    EWP_LOG(1, "%s: exit signal from %s", ewp_peer_name(peer), who);
    ewp_handle_close(h, 0, "linked process exited");
}

/* Someone links to one of our pids. A closed handle answers noproc, as a
 * dead process would; a live one keeps its single link. */
static void
link_op(void *ctx, struct ewp_peer *peer, const erlang_pid *from, const erlang_pid *to)
{
    struct ewp_router *rt = ctx;
    ei_x_buff x;

    if (ewp_handles_find_pid(rt->req->handles, to) != NULL)
        return;
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_exit(&x, to, from, "noproc") == 0)
        send_frame(peer, &x);
    ei_x_free(&x);
}

/* rpc:call / erpc:call / casts: SPAWN_REPLY, then the outcome */
static void
spawn_op(void *ctx, struct ewp_peer *peer, const char *reqid, int reqid_len,
         const erlang_pid *from, const char *mod, const char *fun, long arity,
         const char *args, size_t args_len)
{
    struct ewp_router *rt = ctx;
    struct ewp_call call;
    ei_x_buff reply, result;

    /* as for calls: the answer can only go back over this connection, and
     * a node may act only for its own processes */
    if (strcmp(from->node, ewp_peer_name(peer)) != 0) {
        EWP_LOG(1, "%s: spawn request from a pid of %s: dropped", ewp_peer_name(peer),
                from->node);
        return;
    }
    if (ei_x_new(&reply) < 0)
        return;
    if (ei_x_new(&result) < 0) {
        ei_x_free(&reply);
        return;
    }
    call_of(&call, rt, peer, from, "", 0, 1);
    if (ewp_rpc_spawn(rt->req, peer, reqid, reqid_len, from, mod, fun, arity, args, args_len,
                      &call, &reply, &result) == 0) {
        send_frame(peer, &reply);
        if (result.index > 0)
            send_frame(peer, &result);
    }
    ei_x_free(&result);
    ei_x_free(&reply);
}

/* MONITOR_P {From, To, Ref}: To is one of our names or pids. Monitors of a
 * name we have, or of a live handle, need nothing until it goes away (our
 * names never do; a handle that closes does not notify: monitors of
 * handles are not kept). Anything else is dead already: noproc. */
static void
monitor_op(void *ctx, struct ewp_peer *peer, const erlang_pid *from, const char *to,
           int to_len, const char *ref, int ref_len)
{
    static const char noproc[] = {(char)ERL_SMALL_ATOM_UTF8_EXT, 6, 'n', 'o', 'p', 'r', 'o', 'c'};
    struct ewp_router *rt = ctx;
    char name[MAXATOMLEN];
    erlang_pid pid;
    ei_x_buff x;
    int i = 0;

    if (ei_decode_atom(to, &i, name) == 0) {
        if (strcmp(name, "ewpcap") == 0 || strcmp(name, "net_kernel") == 0 ||
            strcmp(name, "rex") == 0)
            return;
    } else if (ei_decode_pid(to, &i, &pid) == 0 &&
               ewp_handles_find_pid(rt->req->handles, &pid) != NULL) {
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
static void
monitor_exit_op(void *ctx, struct ewp_peer *peer, const erlang_pid *from,
                const erlang_pid *to, const erlang_ref *ref)
{
    struct ewp_router *rt = ctx;
    struct ewp_handle *h = ewp_handles_find_pid(rt->req->handles, to);
    erlang_ref r = *ref;
    erlang_pid f = *from;

    /* from the owner, over its node's connection (a forged one is ignored) */
    if (h == NULL || !h->monitored || ei_cmp_refs(&h->mon_ref, &r) != 0 ||
        ei_cmp_pids(&f, &h->owner) != 0 || strcmp(from->node, ewp_peer_name(peer)) != 0)
        return;
    EWP_LOG(1, "%s: owner of a handle on %s exited", ewp_peer_name(peer), h->device);
    ewp_handle_close(h, 0, "owner exited");
}

static void
send_frame(struct ewp_peer *peer, const ei_x_buff *x)
{
    (void)ewp_peer_send(peer, x->buff, (size_t)x->index);
}

/* The call a request answers; rpc: its deferred reply is rpc.c's frame,
 * sent by rpc_finish */
static void
call_of(struct ewp_call *call, struct ewp_router *rt, struct ewp_peer *peer,
        const erlang_pid *from, const char *tag, int tag_len, int rpc)
{
    memset(call, 0, sizeof(*call));
    call->from = *from;
    call->tag = tag;
    call->tag_len = tag_len;
    (void)snprintf(call->node, sizeof(call->node), "%s", ewp_peer_name(peer));
    call->finish = rpc ? rpc_finish : NULL;
    call->finish_ctx = rt;
}

/* An rpc's reply that waited for a compile (called by filter.c): rpc.c
 * builds the frame, it is sent here, as every frame of a call is */
static void
rpc_finish(void *ctx, const struct ewp_call *call, struct ewp_peer *peer, const char *term,
           int term_len)
{
    struct ewp_router *rt = ctx;
    ei_x_buff x;

    if (ei_x_new(&x) < 0)
        return;
    if (ewp_rpc_finish(rt->req, call, term, term_len, &x) < 0)
        EWP_ERR("%s: encoding an rpc reply failed", ewp_peer_name(peer));
    else if (x.index > 0) /* a cast has none */
        send_frame(peer, &x);
    ei_x_free(&x);
}
