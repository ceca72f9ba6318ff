/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * One distribution frame, 'p', 131, Control, [131, Message], read and
 * dispatched (see ctl.h). Anything malformed is logged and skipped: the
 * stream itself is still in step, dist.c framed it.
 */
#include <stddef.h>
#include <string.h>

#include <ei.h>

#include "ctl.h"
#include "decode.h"
#include "dist.h"
#include "encode.h"
#include "log.h"

static void unlink_id(struct ewp_peer *p, const char *buf, int *i);

void
ewp_ctl_frame(const struct ewp_ctl_ops *ops, void *ctx, struct ewp_peer *p, const char *buf,
              size_t len)
{
    char to_name[MAXATOMLEN];
    erlang_pid from, to;
    int i = 1, ctl, msg = -1, arity, msg_bad = 0, normal;
    long op;

    if (len < 2 || buf[0] != EWP_PASS_THROUGH || (unsigned char)buf[1] != EWP_VERSION_MAGIC)
        goto bad;
    i = 2;
    ctl = i;
    if (ewp_decode_check(buf, len, &i) < 0)
        goto bad;
    if ((size_t)i < len) {
        if ((unsigned char)buf[i] != EWP_VERSION_MAGIC)
            goto bad;
        msg = i;
        i++;
        if (ewp_decode_check(buf, len, &i) < 0 || (size_t)i != len)
            msg_bad = 1; /* only a call can still be answered, see ctl.h */
    }

    i = ctl;
    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity < 1 ||
        ei_decode_long(buf, &i, &op) < 0)
        goto bad;

    EWP_LOG(2, "%s: control %ld, %zu bytes", ewp_peer_name(p), op, len);
    if (msg_bad && op != EWP_DOP_REG_SEND && op != EWP_DOP_REG_SEND_TT)
        goto bad;
    switch (op) {
    case EWP_DOP_REG_SEND:    /* {6, From, '', ToName} */
    case EWP_DOP_REG_SEND_TT: /* {16, From, '', ToName, TraceToken} */
        if (arity < 4 || msg < 0 || ei_skip_term(buf, &i) < 0 || ei_skip_term(buf, &i) < 0 ||
            ei_decode_atom(buf, &i, to_name) < 0)
            goto bad;
        ops->reg_send(ctx, p, to_name, buf + msg, len - (size_t)msg, !msg_bad);
        return;

    case EWP_DOP_EXIT:     /* {3, From, To, Reason} */
    case EWP_DOP_EXIT2:    /* {8, From, To, Reason} */
    case EWP_DOP_EXIT_TT:  /* {13, From, To, TraceToken, Reason} */
    case EWP_DOP_EXIT2_TT: /* {18, From, To, TraceToken, Reason} */
        if (arity < 4 || ei_decode_pid(buf, &i, &from) < 0)
            goto bad;
        if (ei_decode_pid(buf, &i, &to) < 0)
            return; /* an exit signal to a port or to nothing of ours */
        if ((op == EWP_DOP_EXIT_TT || op == EWP_DOP_EXIT2_TT) && ei_skip_term(buf, &i) < 0)
            goto bad;
        {
            char reason[MAXATOMLEN];

            normal = ei_decode_atom(buf, &i, reason) == 0 && strcmp(reason, "normal") == 0;
        }
        ops->exit(ctx, p, &from, &to, op == EWP_DOP_EXIT || op == EWP_DOP_EXIT_TT, normal);
        return;

    case EWP_DOP_LINK: /* {1, From, To} */
        if (arity != 3 || ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0)
            goto bad;
        ops->link(ctx, p, &from, &to);
        return;

    case EWP_DOP_UNLINK_ID: /* {35, Id, From, To} */
        if (arity != 4)
            goto bad;
        unlink_id(p, buf, &i);
        return;

    case EWP_DOP_SPAWN_REQUEST:    /* {29, ReqId, From, GL, {M, F, Arity}, Opts} + Args */
    case EWP_DOP_SPAWN_REQUEST_TT: { /* {30, ReqId, From, GL, {M, F, Arity}, Opts, Token} */
        char mod[MAXATOMLEN], fun[MAXATOMLEN];
        int reqid = i, reqid_len, mfa;
        long fa;

        if (arity < 6 || msg < 0 || ei_skip_term(buf, &i) < 0)
            goto bad;
        reqid_len = i - reqid;
        if (ei_decode_pid(buf, &i, &from) < 0 || ei_skip_term(buf, &i) < 0 ||
            ei_decode_tuple_header(buf, &i, &mfa) < 0 || mfa != 3 ||
            ei_decode_atom(buf, &i, mod) < 0 || ei_decode_atom(buf, &i, fun) < 0 ||
            ei_decode_long(buf, &i, &fa) < 0)
            goto bad;
        ops->spawn(ctx, p, buf + reqid, reqid_len, &from, mod, fun, fa, buf + msg,
                   len - (size_t)msg);
        return;
    }

    case EWP_DOP_MONITOR_P: { /* {19, From, ToProc, Ref} */
        int to_i, ref_i;

        if (arity != 4 || ei_decode_pid(buf, &i, &from) < 0)
            goto bad;
        to_i = i;
        if (ei_skip_term(buf, &i) < 0)
            goto bad;
        ref_i = i;
        if (ei_skip_term(buf, &i) < 0)
            goto bad;
        ops->monitor(ctx, p, &from, buf + to_i, ref_i - to_i, buf + ref_i, i - ref_i);
        return;
    }

    case EWP_DOP_MONITOR_P_EXIT: { /* {21, FromProc, ToPid, Ref, Reason} */
        erlang_ref ref;

        if (arity != 5 || ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0 ||
            ei_decode_ref(buf, &i, &ref) < 0)
            return; /* a monitor of a name, or not one of ours */
        ops->monitor_exit(ctx, p, &from, &to, &ref);
        return;
    }

    default:
        /* SEND to a pid, UNLINK, UNLINK_ID_ACK, demonitors, group leader: nothing to do */
        EWP_LOG(2, "%s: control %ld ignored", ewp_peer_name(p), op);
        return;
    }

bad:
    EWP_LOG(1, "%s: malformed frame of %zu bytes skipped", ewp_peer_name(p), len);
}

/* {35, Id, From, To}: answer {36, Id, To, From} */
static void
unlink_id(struct ewp_peer *p, const char *buf, int *i)
{
    erlang_pid from, to;
    ei_x_buff x;
    int id = *i, id_len;

    if (ei_skip_term(buf, i) < 0)
        goto bad;
    id_len = *i - id;
    if (ei_decode_pid(buf, i, &from) < 0 || ei_decode_pid(buf, i, &to) < 0)
        goto bad;
    if (ei_x_new(&x) < 0)
        return;
    if (ewp_encode_unlink_id(&x, EWP_DOP_UNLINK_ID_ACK, buf + id, id_len, &to, &from) == 0)
        (void)ewp_peer_send(p, x.buff, (size_t)x.index);
    ei_x_free(&x);
    return;
bad:
    EWP_LOG(1, "%s: malformed UNLINK_ID skipped", ewp_peer_name(p));
}
