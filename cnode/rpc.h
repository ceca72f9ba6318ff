/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * OTP's rpc, answered by ewpcapd for the module ewpcap: erpc:call/rpc:call
 * (spawn_request of erpc:execute_call/4), erpc:cast/rpc:cast
 * (erpc:execute_cast/3) and rpc:block_call (a call to the name rex). Each
 * is run as the equivalent request (request.c); rpc.c returns the frames
 * to send and never sends. A reply that waits for a compile is built by
 * ewp_rpc_finish, called through the finish callback of the call (tmpl,
 * router.c's) that router.c gave, which sends it.
 */
#ifndef EWP_RPC_H
#define EWP_RPC_H

#include <stddef.h>

#include <ei.h>

#include "call.h"
#include "dist.h"
#include "request.h"

int ewp_rpc_block_call(struct ewp_requests *r, struct ewp_peer *peer, const erlang_pid *from,
                       const char *msg, int *index, const struct ewp_call *tmpl, ei_x_buff *x);
int ewp_rpc_spawn(struct ewp_requests *r, struct ewp_peer *peer, const char *reqid,
                  int reqid_len, const erlang_pid *from, const char *mod, const char *fun,
                  long arity, const char *args, size_t args_len, const struct ewp_call *tmpl,
                  ei_x_buff *reply, ei_x_buff *result);
int ewp_rpc_finish(struct ewp_requests *r, const struct ewp_call *call, const char *term,
                   int term_len, ei_x_buff *frame);

#endif /* EWP_RPC_H */
