/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * rpc for the module ewpcap, so that a node with no ewpcap code at all can
 * drive a capture host with OTP's own tools:
 *
 *   rpc:call(N, ewpcap, F, A)  / erpc:call(...)
 *       SPAWN_REQUEST {29, ReqId, From, GL, {erpc, execute_call, 4}, Opts}
 *       with the arguments [Res, M, F, A]; we answer SPAWN_REPLY with a
 *       fresh pid, run M:F(A...) and send the monitor's exit,
 *       MONITOR_P_EXIT {21, Pid, From, ReqId, {Res, return, Value}} or
 *       {Res, error, Reason, Stack}, which erpc turns into the result or
 *       the exception.
 *   rpc:cast / erpc:cast: erpc:execute_cast/3, run, nothing sent back.
 *   rpc:block_call: {'$gen_call', {From, Tag}, {block_call, M, F, A, GL}}
 *       to rex, answered with the value or {'EXIT', {Reason, Stack}}.
 *
 * Each call is translated into the equivalent request of docs/PROTOCOL.md
 * and run by request.c; what goes back is returned to router.c, which
 * sends it: nothing here sends. A request whose filter is compiled off the
 * loop answers later: the call given to request.c carries router.c's
 * finish callback and, in cont, what ewp_rpc_finish needs to build the
 * outcome's frame from the reply term ({M, F, A} for rex; {Pid, ReqId,
 * Res, M, F, A} for a spawn, whose SPAWN_REPLY goes at once). ewpcap:open/0,1,2 opens for the calling process
 * and returns {ok, {ewpcap_resource, Ref, {Node, HandlePid}}}; the handle
 * monitors its owner. A function that ewpcap does not have, or any other
 * module, fails with undef exactly as on a real node; a bad argument or a
 * closed handle with badarg, as the library does.
 */
#include <string.h>

#include <ei.h>

#include "dist.h"
#include "encode.h"
#include "handles.h"
#include "log.h"
#include "request.h"
#include "rpc.h"

#define ARGS_MAX 3 /* ewpcap's functions take at most three arguments */

enum rpc_result {
    RPC_RETURN,  /* the value is in the output buffer */
    RPC_UNDEF,   /* no such function */
    RPC_BADARG,  /* raised badarg */
    RPC_DEFERRED /* the request answers later, through ewp_rpc_finish */
};

struct span {
    const char *p; /* raw term bytes */
    int len;       /* their length */
};

static enum rpc_result apply(struct ewp_requests *r, struct ewp_peer *peer,
                             const erlang_pid *caller, const char *mod, const char *fun,
                             const char *args, int *index, const struct ewp_call *call,
                             ei_x_buff *val);
static enum rpc_result outcome(struct ewp_requests *r, const char *fun, const char *reply,
                               ei_x_buff *val);
static int encode_block_value(ei_x_buff *x, enum rpc_result rr, const ei_x_buff *val,
                              const char *mod, const char *fun, const struct span *args);
static int encode_result(ei_x_buff *x, const erlang_pid *pid, const erlang_pid *from,
                         const char *reqid, int reqid_len, enum rpc_result r,
                         const struct span *res, const ei_x_buff *val, const char *m,
                         const char *f, const struct span *a);
static int socket_ref(const struct span *s, struct span *ref);
static int build_request(ei_x_buff *req, const char *fun, int n, const struct span *a);
static int encode_exception(ei_x_buff *x, enum rpc_result r, const char *mod, const char *fun,
                            const char *args, int args_len);
static int span_of(const char *buf, int *index, struct span *s);
static int spawn_failed(ei_x_buff *reply, ei_x_buff *result, const char *reqid, int reqid_len,
                        const erlang_pid *from);
static int unknown_option(const struct span *opts, int filter_only, struct span *key);

/* {block_call, M, F, A, GroupLeader}: the reply term is appended to x.
 * Returns 0, -1, or EWP_DEFERRED: ewp_rpc_finish will build the reply
 * (tmpl: the call as router.c made it, with its finish callback). */
int
ewp_rpc_block_call(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *from,
                   const char *msg, int *index, const struct ewp_call *tmpl, ei_x_buff *x)
{
    char mod[MAXATOMLEN], fun[MAXATOMLEN], tag[MAXATOMLEN];
    struct span args;
    struct ewp_call call = *tmpl;
    enum rpc_result rr;
    int i = *index, arity, args_index;
    ei_x_buff val, cont;

    if (ei_decode_tuple_header(msg, &i, &arity) < 0 || arity != 5 ||
        ei_decode_atom(msg, &i, tag) < 0 || strcmp(tag, "block_call") != 0 ||
        ei_decode_atom(msg, &i, mod) < 0 || ei_decode_atom(msg, &i, fun) < 0)
        return ewp_encode_error_atom(x, "badarg");
    args_index = i;
    if (span_of(msg, &i, &args) < 0)
        return ewp_encode_error_atom(x, "badarg");

    if (ei_x_new(&val) < 0)
        return -1;
    if (ei_x_new(&cont) < 0) {
        ei_x_free(&val);
        return -1;
    }
    /* {M, F, A}: what the deferred reply needs */
    if (ei_x_encode_tuple_header(&cont, 3) < 0 || ei_x_encode_atom(&cont, mod) < 0 ||
        ei_x_encode_atom(&cont, fun) < 0 || ei_x_append_buf(&cont, args.p, args.len) < 0) {
        i = -1;
        goto out;
    }
    call.cont = cont.buff;
    call.cont_len = cont.index;
    i = args_index;
    rr = apply(r, peer, from, mod, fun, msg, &i, &call, &val);
    i = rr == RPC_DEFERRED ? EWP_DEFERRED : encode_block_value(x, rr, &val, mod, fun, &args);
out:
    ei_x_free(&cont);
    ei_x_free(&val);
    return i;
}

/* rex's answer: the value, or {'EXIT', {Reason, Stack}} */
static int
encode_block_value(ei_x_buff *x, enum rpc_result rr, const ei_x_buff *val, const char *mod,
                   const char *fun, const struct span *args)
{
    if (rr == RPC_RETURN)
        return ei_x_append_buf(x, val->buff, val->index);
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "EXIT") < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0)
        return -1;
    return encode_exception(x, rr, mod, fun, args->p, args->len);
}

/*
 * The reply of a deferred rpc: term (term_len bytes) is what the request
 * answered, call the copy filter.c kept. The whole frame goes to frame:
 * rex's reply to From, or the spawn's MONITOR_P_EXIT; nothing for a cast
 * (frame left empty). Returns 0 or -1.
 */
int
ewp_rpc_finish(struct ewp_requests *r, const struct ewp_call *call, const char *term,
               int term_len, ei_x_buff *frame)
{
    char m[MAXATOMLEN], f[MAXATOMLEN];
    struct span reqid = {NULL, 0}, res = {NULL, 0}, a;
    erlang_pid pid;
    enum rpc_result rr;
    ei_x_buff val;
    int i = 0, arity, rv = -1;

    (void)term_len; /* a term we encoded ourselves */
    if (call->cont != NULL && ei_decode_atom(call->cont, &i, m) == 0 && strcmp(m, "cast") == 0)
        return 0; /* a cast's: nothing to send */
    i = 0;
    if (call->cont == NULL || ei_decode_tuple_header(call->cont, &i, &arity) < 0 ||
        (arity != 3 && arity != 6))
        return -1;
    if (arity == 6 && (ei_decode_pid(call->cont, &i, &pid) < 0 ||
                       span_of(call->cont, &i, &reqid) < 0 || span_of(call->cont, &i, &res) < 0))
        return -1;
    if (ei_decode_atom(call->cont, &i, m) < 0 || ei_decode_atom(call->cont, &i, f) < 0 ||
        span_of(call->cont, &i, &a) < 0 || ei_x_new(&val) < 0)
        return -1;
    rr = outcome(r, f, term, &val);
    if (arity == 3)
        rv = ewp_encode_reply_begin(frame, &call->from, call->tag, call->tag_len) < 0 ||
                     encode_block_value(frame, rr, &val, m, f, &a) < 0
                 ? -1
                 : 0;
    else
        rv = encode_result(frame, &pid, &call->from, reqid.p, reqid.len, rr, &res, &val, m, f,
                           &a);
    ei_x_free(&val);
    return rv;
}

/*
 * SPAWN_REQUEST: args is the message, [Res, M, F, A] or [M, F, A]. The
 * SPAWN_REPLY frame goes to reply; for a call, the MONITOR_P_EXIT frame
 * with the outcome goes to result (left empty for a cast). The router
 * sends reply, then result. Returns 0, or -1: nothing to send.
 */
int
ewp_rpc_spawn(struct ewp_requests *r, struct ewp_peer *peer, const char *reqid, int reqid_len,
              const erlang_pid *from, const char *mod, const char *fun, long arity,
              const char *args, size_t args_len, const struct ewp_call *tmpl,
              ei_x_buff *reply, ei_x_buff *result)
{
    struct ewp_call c = *tmpl;
    ei_x_buff cont;
    char m[MAXATOMLEN], f[MAXATOMLEN];
    int call = strcmp(fun, "execute_call") == 0 && arity == 4;
    int cast = strcmp(fun, "execute_cast") == 0 && arity == 3;
    struct span res = {NULL, 0}, a;
    erlang_pid pid;
    ei_x_buff val;
    enum rpc_result rr;
    int i = 1, n, a_index, rv; /* args start with the version byte */

    (void)args_len; /* checked whole by ctl.c */
    if (strcmp(mod, "erpc") != 0 || !(call || cast) ||
        ei_decode_list_header(args, &i, &n) < 0 || n != arity ||
        (call && span_of(args, &i, &res) < 0) || ei_decode_atom(args, &i, m) < 0 ||
        ei_decode_atom(args, &i, f) < 0) {
        /* spawn of anything else: we run no arbitrary code */
        EWP_LOG(1, "%s: spawn of %s:%s/%ld refused", ewp_peer_name(peer), mod, fun, arity);
        return ewp_encode_spawn_reply(reply, reqid, reqid_len, from, 0, NULL, "notsup");
    }
    a_index = i;
    if (span_of(args, &i, &a) < 0 || ei_make_pid(r->ec, &pid) < 0 ||
        ewp_encode_spawn_reply(reply, reqid, reqid_len, from, call ? EWP_SPAWN_FLAG_MONITOR : 0,
                               &pid, NULL) < 0)
        return spawn_failed(reply, result, reqid, reqid_len, from);

    EWP_LOG(1, "%s: rpc %s:%s", ewp_peer_name(peer), m, f);
    if (ei_x_new(&val) < 0)
        return spawn_failed(reply, result, reqid, reqid_len, from);
    if (ei_x_new(&cont) < 0) {
        ei_x_free(&val);
        return spawn_failed(reply, result, reqid, reqid_len, from);
    }
    /* {Pid, ReqId, Res, M, F, A}: what a deferred outcome needs; a cast
     * has no outcome to send (cont: the atom cast), but waits all the same:
     * its filter is compiled by the workers and counted against the node's
     * compiles, as a call's (compiled in the loop, a cast's could hold it
     * for minutes, uncounted) */
    rv = call ? (ei_x_encode_tuple_header(&cont, 6) < 0 || ei_x_encode_pid(&cont, &pid) < 0 ||
                         ei_x_append_buf(&cont, reqid, reqid_len) < 0 ||
                         ei_x_append_buf(&cont, res.p, res.len) < 0 ||
                         ei_x_encode_atom(&cont, m) < 0 || ei_x_encode_atom(&cont, f) < 0 ||
                         ei_x_append_buf(&cont, a.p, a.len) < 0
                     ? -1
                     : 0)
              : ei_x_encode_atom(&cont, "cast");
    c.from = *from;
    c.tag = "";
    c.tag_len = 0;
    c.cont = cont.buff;
    c.cont_len = cont.index;
    i = a_index;
    rr = rv < 0 ? RPC_BADARG : apply(r, peer, from, m, f, args, &i, &c, &val);
    rv = rv < 0 ? -1
         : call && rr != RPC_DEFERRED
             ? encode_result(result, &pid, from, reqid, reqid_len, rr, &res, &val, m, f, &a)
             : 0;
    ei_x_free(&cont);
    ei_x_free(&val);
    return rv < 0 ? spawn_failed(reply, result, reqid, reqid_len, from) : 0;
}

/* What could not be encoded is answered all the same, as a spawn that
 * failed (SPAWN_REPLY with the error system_limit): a caller never waits
 * for an answer that will not come. */
static int
spawn_failed(ei_x_buff *reply, ei_x_buff *result, const char *reqid, int reqid_len,
             const erlang_pid *from)
{
    reply->index = 0;
    result->index = 0;
    return ewp_encode_spawn_reply(reply, reqid, reqid_len, from, 0, NULL, "system_limit");
}

/* MONITOR_P_EXIT {21, Pid, From, ReqId, {Res, return, Value}} or
 * {Res, error, Reason, Stack} */
static int
encode_result(ei_x_buff *x, const erlang_pid *pid, const erlang_pid *from, const char *reqid,
              int reqid_len, enum rpc_result r, const struct span *res, const ei_x_buff *val,
              const char *m, const char *f, const struct span *a)
{
    ei_x_buff reason, topid;
    int rv = -1;

    if (ei_x_new(&reason) < 0)
        return -1;
    if (r == RPC_RETURN)
        rv = (ei_x_encode_tuple_header(&reason, 3) < 0 ||
              ei_x_append_buf(&reason, res->p, res->len) < 0 ||
              ei_x_encode_atom(&reason, "return") < 0 ||
              ei_x_append_buf(&reason, val->buff, val->index) < 0)
                 ? -1
                 : 0;
    else
        rv = (ei_x_encode_tuple_header(&reason, 4) < 0 ||
              ei_x_append_buf(&reason, res->p, res->len) < 0 ||
              ei_x_encode_atom(&reason, "error") < 0 ||
              encode_exception(&reason, r, m, f, a->p, a->len) < 0)
                 ? -1
                 : 0;
    if (rv == 0 && ei_x_new(&topid) == 0) {
        rv = ei_x_encode_pid(&topid, from) < 0 ||
                     ewp_encode_monitor_exit(x, pid, topid.buff, topid.index, reqid, reqid_len,
                                             reason.buff, reason.index) < 0
                 ? -1
                 : 0;
        ei_x_free(&topid);
    } else {
        rv = -1;
    }
    ei_x_free(&reason);
    return rv;
}

/* M:F(Args) where Args is the list at args[*index]; the value goes to val */
static enum rpc_result
apply(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *caller, const char *mod,
      const char *fun, const char *args, int *index, const struct ewp_call *call,
      ei_x_buff *val)
{
    struct span a[ARGS_MAX] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
    ei_x_buff req, reply;
    enum rpc_result rr;
    int i = *index, n = 0, k, type, size, ri;

    if (strcmp(mod, "ewpcap") != 0)
        return RPC_UNDEF;
    if (ei_get_type(args, &i, &type, &size) < 0)
        return RPC_BADARG;
    if (type == ERL_LIST_EXT) {
        if (ei_decode_list_header(args, &i, &n) < 0 || n > ARGS_MAX)
            return RPC_UNDEF;
        for (k = 0; k < n; k++)
            if (span_of(args, &i, &a[k]) < 0)
                return RPC_BADARG;
    } else if (type == ERL_STRING_EXT) {
        return RPC_UNDEF; /* a list of small integers: no function of ours */
    } else if (type != ERL_NIL_EXT) {
        return RPC_BADARG;
    }

    /* as the library: an unknown option is {error, {bad_option, Key}} */
    {
        struct span key;
        int filter = strcmp(fun, "filter") == 0 && n == 3;

        if (((strcmp(fun, "open") == 0 && n == 2) || filter) &&
            unknown_option(&a[n - 1], filter, &key)) {
            if (ei_x_encode_tuple_header(val, 2) < 0 || ei_x_encode_atom(val, "error") < 0 ||
                ei_x_encode_tuple_header(val, 2) < 0 || ei_x_encode_atom(val, "bad_option") < 0 ||
                ei_x_append_buf(val, key.p, key.len) < 0)
                return RPC_BADARG;
            return RPC_RETURN;
        }
    }

    if (ei_x_new(&req) < 0)
        return RPC_BADARG;
    k = build_request(&req, fun, n, a);
    if (k < 0) {
        ei_x_free(&req);
        return k == -2 ? RPC_BADARG : RPC_UNDEF;
    }
    if (ei_x_new(&reply) < 0) {
        ei_x_free(&req);
        return RPC_BADARG;
    }
    ri = 0;
    k = ewp_request_run(r, peer, caller, req.buff, &ri, 1, call, &reply);
    rr = k < 0 ? RPC_BADARG : k == EWP_DEFERRED ? RPC_DEFERRED : outcome(r, fun, reply.buff, val);
    ei_x_free(&reply);
    ei_x_free(&req);
    return rr;
}

/* What ewpcap:Fun returned, from the request's reply term: the value goes
 * to val, or the exception the library raises */
static enum rpc_result
outcome(struct ewp_requests *r, const char *fun, const char *reply, ei_x_buff *val)
{
    char atom[MAXATOMLEN];
    int ri = 0, k;

    /* {error, badarg | ebadf} is what the library raises badarg for */
    if (ei_decode_tuple_header(reply, &ri, &k) == 0 && k == 2 &&
        ei_decode_atom(reply, &ri, atom) == 0) {
        if (strcmp(atom, "error") == 0 && ei_decode_atom(reply, &ri, atom) == 0 &&
            (strcmp(atom, "badarg") == 0 || strcmp(atom, "ebadf") == 0 ||
             strcmp(atom, "unknown_request") == 0))
            return RPC_BADARG;
        if (strcmp(fun, "open") == 0 && strcmp(atom, "ok") == 0) {
            /* {ok, Ref} -> {ok, {ewpcap_resource, Ref, {Node, HandlePid}}} */
            const struct ewp_handle *h;
            erlang_ref ref;

            ri = 0;
            if (ei_decode_tuple_header(reply, &ri, &k) < 0 ||
                ei_decode_atom(reply, &ri, atom) < 0 || ei_decode_ref(reply, &ri, &ref) < 0 ||
                (h = ewp_handles_find_ref(r->handles, &ref)) == NULL ||
                ei_x_encode_tuple_header(val, 2) < 0 || ei_x_encode_atom(val, "ok") < 0 ||
                ei_x_encode_tuple_header(val, 3) < 0 ||
                ei_x_encode_atom(val, "ewpcap_resource") < 0 || ei_x_encode_ref(val, &ref) < 0 ||
                ei_x_encode_tuple_header(val, 2) < 0 ||
                ei_x_encode_atom(val, ei_thisnodename(r->ec)) < 0 ||
                ei_x_encode_pid(val, &h->pid) < 0)
                return RPC_BADARG;
            return RPC_RETURN;
        }
    }
    ri = 0;
    if (ei_skip_term(reply, &ri) < 0 || ei_x_append_buf(val, reply, ri) < 0)
        return RPC_BADARG;
    return RPC_RETURN;
}

/*
 * The request for ewpcap:Fun/n. Returns 0, -1 for a function ewpcap does
 * not have (undef), -2 for arguments of the wrong shape (badarg).
 */
static int
build_request(ei_x_buff *req, const char *fun, int n, const struct span *a)
{
    struct span ref;

    if (n == 0 && (strcmp(fun, "dev") == 0 || strcmp(fun, "getifaddrs") == 0 ||
                   strcmp(fun, "info") == 0))
        return ei_x_encode_atom(req, fun) < 0 ? -2 : 0;

    if (strcmp(fun, "open") == 0 && n <= 2) {
        /* open() = open(<<>>, []), open(Dev) = open(Dev, []); "" is "any" */
        if (ei_x_encode_tuple_header(req, 3) < 0 || ei_x_encode_atom(req, "open") < 0)
            return -2;
        if (n == 0)
            return ei_x_encode_binary(req, "", 0) < 0 || ei_x_encode_empty_list(req) < 0 ? -2 : 0;
        if (a[0].len == 1 && a[0].p[0] == ERL_NIL_EXT) {
            if (ei_x_encode_binary(req, "any", 3) < 0)
                return -2;
        } else if (ei_x_append_buf(req, a[0].p, a[0].len) < 0) {
            return -2;
        }
        if (n == 1)
            return ei_x_encode_empty_list(req) < 0 ? -2 : 0;
        return ei_x_append_buf(req, a[1].p, a[1].len) < 0 ? -2 : 0;
    }

    if ((strcmp(fun, "close") == 0 || strcmp(fun, "stats") == 0) && n == 1) {
        if (socket_ref(&a[0], &ref) < 0)
            return -2;
        return ei_x_encode_tuple_header(req, 2) < 0 || ei_x_encode_atom(req, fun) < 0 ||
                       ei_x_append_buf(req, ref.p, ref.len) < 0
                   ? -2
                   : 0;
    }
    if (strcmp(fun, "filter") == 0 && (n == 2 || n == 3)) {
        if (socket_ref(&a[0], &ref) < 0)
            return -2;
        if (ei_x_encode_tuple_header(req, 4) < 0 || ei_x_encode_atom(req, "filter") < 0 ||
            ei_x_append_buf(req, ref.p, ref.len) < 0 || ei_x_append_buf(req, a[1].p, a[1].len) < 0)
            return -2;
        if (n == 2)
            return ei_x_encode_empty_list(req) < 0 ? -2 : 0;
        return ei_x_append_buf(req, a[2].p, a[2].len) < 0 ? -2 : 0;
    }
    if (strcmp(fun, "write") == 0 && n == 2) {
        if (socket_ref(&a[0], &ref) < 0)
            return -2;
        return ei_x_encode_tuple_header(req, 3) < 0 || ei_x_encode_atom(req, "write") < 0 ||
                       ei_x_append_buf(req, ref.p, ref.len) < 0 ||
                       ei_x_append_buf(req, a[1].p, a[1].len) < 0
                   ? -2
                   : 0;
    }
    return -1;
}

/* The first {Key, _} of an option list whose Key the function does not
 * know; 1 with its bytes in *key, else 0 (wrong shapes are left to the
 * request decoder, which answers badarg). */
static int
unknown_option(const struct span *opts, int filter_only, struct span *key)
{
    static const char *const open_keys[] = {
        "snaplen", "promisc", "timeout", "to_ms", "immediate", "buffer", "monitor", "share",
        "time_unit", "tstamp_precision", "filter", "batch", "dump", "optimize", "netmask",
        "limit", "relay", NULL};
    static const char *const filter_keys[] = {"optimize", "netmask", "limit", NULL};
    const char *const *keys = filter_only ? filter_keys : open_keys;
    char atom[MAXATOMLEN];
    int i = 0, n, k, arity, start;

    if (ei_decode_list_header(opts->p, &i, &n) < 0)
        return 0;
    for (; n > 0; n--) {
        if (ei_decode_tuple_header(opts->p, &i, &arity) < 0 || arity != 2)
            return 0;
        start = i;
        if (ei_decode_atom(opts->p, &i, atom) < 0)
            return 0;
        for (k = 0; keys[k] != NULL; k++)
            if (strcmp(atom, keys[k]) == 0)
                break;
        if (keys[k] == NULL) {
            key->p = opts->p + start;
            key->len = i - start;
            return 1;
        }
        if (ei_skip_term(opts->p, &i) < 0)
            return 0;
    }
    return 0;
}

/* {ewpcap_resource, Ref, _}: the raw bytes of Ref */
static int
socket_ref(const struct span *s, struct span *ref)
{
    char atom[MAXATOMLEN];
    int i = 0, arity, type, size;

    if (ei_decode_tuple_header(s->p, &i, &arity) < 0 || arity != 3 ||
        ei_decode_atom(s->p, &i, atom) < 0 || strcmp(atom, "ewpcap_resource") != 0 ||
        ei_get_type(s->p, &i, &type, &size) < 0 ||
        (type != ERL_NEW_REFERENCE_EXT && type != ERL_NEWER_REFERENCE_EXT))
        return -1;
    ref->p = s->p + i;
    if (ei_skip_term(s->p, &i) < 0)
        return -1;
    ref->len = (int)(s->p + i - ref->p);
    return 0;
}

/* Reason, [{M, F, Args, []}]: what a real node gives for undef */
static int
encode_exception(ei_x_buff *x, enum rpc_result r, const char *mod, const char *fun,
                 const char *args, int args_len)
{
    if ((r == RPC_UNDEF ? ei_x_encode_atom(x, "undef") : ei_x_encode_atom(x, "badarg")) < 0)
        return -1;
    if (ei_x_encode_list_header(x, 1) < 0 || ei_x_encode_tuple_header(x, 4) < 0 ||
        ei_x_encode_atom(x, mod) < 0 || ei_x_encode_atom(x, fun) < 0 ||
        ei_x_append_buf(x, args, args_len) < 0 || ei_x_encode_empty_list(x) < 0 ||
        ei_x_encode_empty_list(x) < 0)
        return -1;
    return 0;
}

static int
span_of(const char *buf, int *index, struct span *s)
{
    int i = *index;

    if (ei_skip_term(buf, &i) < 0)
        return -1;
    s->p = buf + *index;
    s->len = i - *index;
    *index = i;
    return 0;
}
