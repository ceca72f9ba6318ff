/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The gen_server call being answered: {'$gen_call', {From, Tag}, Request}
 * came from From on node; the reply, {Tag, Reply}, goes back to From over
 * that node's connection. A reply may wait (EWP_DEFERRED), e.g. for a
 * filter compiled off the loop (filter.c keeps a copy of the call).
 */
#ifndef EWP_CALL_H
#define EWP_CALL_H

#include <ei.h>

struct ewp_call {
    erlang_pid from;                /* who called */
    const char *tag;                /* the raw Tag bytes */
    int tag_len;                    /* their length */
    char node[MAXNODELEN + 1];      /* the caller's node */
};

#define EWP_DEFERRED 1 /* the reply will be sent later */

#endif /* EWP_CALL_H */
