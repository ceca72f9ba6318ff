/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The distribution control layer: a frame body ('p', 131, Control,
 * [131, Message]) is checked term by term (ewp_decode_check) before
 * anything decodes it, its control tuple is read, and the operations an
 * upper layer cares about go to the ops table it registered. UNLINK_ID is
 * acknowledged here; the rest (SEND to a pid, UNLINK, demonitors, group
 * leader) needs nothing.
 */
#ifndef EWP_CTL_H
#define EWP_CTL_H

#include <stddef.h>

#include <ei.h>

#include "dist.h"

struct ewp_ctl_ops {
    /* REG_SEND to to_name; msg starts at its version byte. msg_ok = 0: the
     * message failed ewp_decode_check (a fun inside, too deep, ...), only
     * its call envelope may still be read, to refuse it */
    void (*reg_send)(void *ctx, struct ewp_peer *p, const char *to_name, const char *msg,
                     size_t len, int msg_ok);
    /* EXIT (link_broken: a linked process ended) or EXIT2 (exit/2), and
     * their _TT forms, from a pid to one of our pids; normal: the reason
     * is the atom normal */
    void (*exit)(void *ctx, struct ewp_peer *p, const erlang_pid *from, const erlang_pid *to,
                 int link_broken, int normal);
    /* LINK From -> To */
    void (*link)(void *ctx, struct ewp_peer *p, const erlang_pid *from, const erlang_pid *to);
    /* SPAWN_REQUEST(_TT): ReqId's raw bytes, {Mod, Fun, Arity}, the argument list */
    void (*spawn)(void *ctx, struct ewp_peer *p, const char *reqid, int reqid_len,
                  const erlang_pid *from, const char *mod, const char *fun, long arity,
                  const char *args, size_t args_len);
    /* MONITOR_P From -> To (a name or a pid, raw bytes) with Ref (raw bytes) */
    void (*monitor)(void *ctx, struct ewp_peer *p, const erlang_pid *from, const char *to,
                    int to_len, const char *ref, int ref_len);
    /* MONITOR_P_EXIT: a process we monitor is gone */
    void (*monitor_exit)(void *ctx, struct ewp_peer *p, const erlang_pid *from,
                         const erlang_pid *to, const erlang_ref *ref);
};

void ewp_ctl_frame(const struct ewp_ctl_ops *ops, void *ctx, struct ewp_peer *p,
                   const char *buf, size_t len);

#endif /* EWP_CTL_H */
