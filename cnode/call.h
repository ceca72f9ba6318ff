/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The call being answered. For a gen_server call,
 * {'$gen_call', {From, Tag}, Request} came from From on node; the reply,
 * {Tag, Reply}, goes back to From over that node's connection. A reply may
 * wait (EWP_DEFERRED), e.g. for a filter compiled off the loop (filter.c
 * keeps a copy of the call). A call of another shape (an rpc: its reply is
 * a MONITOR_P_EXIT, or rex's answer) sets finish: the layer above that
 * made the call then builds and sends the deferred reply itself, from the
 * reply term and the bytes in cont it kept for that (copied with the call).
 */
#ifndef EWP_CALL_H
#define EWP_CALL_H

#include <ei.h>

struct ewp_call;
struct ewp_peer;

/* Send the deferred reply to call: term (term_len bytes, no version byte)
 * is what the request answered; peer is the caller's connection. */
typedef void (*ewp_call_finish_fn)(void *ctx, const struct ewp_call *call,
                                   struct ewp_peer *peer, const char *term, int term_len);

struct ewp_call {
    erlang_pid from;                /* who called */
    const char *tag;                /* the raw Tag bytes */
    int tag_len;                    /* their length */
    char node[MAXNODELEN + 1];      /* the caller's node */
    ewp_call_finish_fn finish;      /* NULL: reply {Tag, Reply} to from */
    void *finish_ctx;               /* finish's first argument */
    const char *cont;               /* what finish needs, or NULL */
    int cont_len;                   /* its length */
};

#define EWP_DEFERRED 1 /* the reply will be sent later */

#endif /* EWP_CALL_H */
