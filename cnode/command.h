/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The handle table and the requests that act on it. node.c hands over each
 * message for a registered name, each exit signal and each lost peer;
 * command.c decodes, runs the request against capture.c and queues the
 * reply. It also turns captured packets into messages for their owners.
 */
#ifndef EWP_COMMAND_H
#define EWP_COMMAND_H

#include <stddef.h>

#include <ei.h>
#include <ev.h>

struct ewp_peer;

/* Who may do what: ewpcapd's command-line flags */
struct ewp_policy {
    const char *const *allow; /* devices that may be opened; NULL: all */
    int nallow;               /* how many */
    int no_inject;            /* refuse write */
    int max_handles;          /* open handles in all, 0: no limit */
    int max_node_handles;     /* open handles per client node, 0: no limit */
    const char *files_dir;    /* savefiles are read and written only under
                                 this directory (realpath); NULL: refused */
};

/* The gen_server call being answered: a reply can wait (EWP_DEFERRED) */
struct ewp_call {
    erlang_pid from;                /* who called */
    const char *tag;                /* the raw Tag bytes */
    int tag_len;                    /* their length */
    char node[MAXNODELEN + 1];      /* the caller's node */
};

#define EWP_DEFERRED 1 /* the reply will be sent later */

int ewp_command_init(struct ev_loop *loop, const struct ewp_policy *policy);
void ewp_command_close_all(void);
void ewp_command_reg_send(struct ewp_peer *peer, const char *to_name, const char *msg,
                          size_t len);
void ewp_command_exit(struct ewp_peer *peer, const erlang_pid *from, const erlang_pid *to);
void ewp_command_link(struct ewp_peer *peer, const erlang_pid *from, const erlang_pid *to);
void ewp_command_peer_down(struct ewp_peer *peer);
void ewp_command_peer_drained(struct ewp_peer *peer);
int ewp_command_count(void);
int ewp_command_request(struct ewp_peer *peer, const erlang_pid *from, const char *buf,
                        int *index, int monitor_owner, const struct ewp_call *call,
                        ei_x_buff *x);
void ewp_command_refuse(struct ewp_peer *peer, const char *to_name, const char *msg,
                        size_t len);
int ewp_command_pid_of(const erlang_ref *ref, erlang_pid *pid);
void ewp_command_monitor(struct ewp_peer *peer, const erlang_pid *from, const char *to,
                         int to_len, const char *ref, int ref_len);
void ewp_command_monitor_exit(struct ewp_peer *peer, const erlang_pid *from,
                              const erlang_pid *to, const erlang_ref *ref);

#endif /* EWP_COMMAND_H */
