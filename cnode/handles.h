/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The handle table and each handle's link or monitor. A handle is a pcap
 * capture with an owner pid (who gets the packets), a link pid (whose exit
 * closes the handle, normally the client library's guard process) or, for
 * rpc opens, a monitor of the owner, its own pid on this node for the link,
 * and a cluster-unique reference.
 *
 * Closing follows the rule of dist.c: a handle is taken out of the table
 * before any message about it is sent, and a send never frees anything, so
 * iterating over the table (next) or over one node's handles (node_next)
 * with the next pointer saved is safe while the current handle is closed.
 */
#ifndef EWP_HANDLES_H
#define EWP_HANDLES_H

#include <stddef.h>

#include <ei.h>

#include "capture.h"
#include "decode.h"
#include "dist.h"

struct ewp_handles;
struct ewp_node;

struct ewp_ac_tmpl;

struct ewp_handle {
    struct ewp_handles *table;       /* the table it is in (or will be) */
    erlang_ref ref;                  /* the handle's name in every message */
    erlang_pid pid;                  /* our end of the link */
    erlang_pid owner;                /* the owner (info); its exit closes */
    erlang_pid to;                   /* receives the packets: owner, or its relay */
    int relayed;                     /* to is a relay ({relay, Pid}), not the owner */
    erlang_pid link;                 /* linked: its exit closes the handle */
    int monitored;                   /* the owner is monitored, not linked */
    erlang_ref mon_ref;              /* ... with this monitor reference */
    struct ewp_peer *peer;           /* the owner's node connection */
    struct ewp_capture cap;          /* the pcap side */
    char device[EWP_PATH_MAX + 1];   /* for info: device, or savefile path */
    char *filter;                    /* current filter text, for info */
    size_t filter_len;               /* its length */
    int snaplen;                     /* for info and buffer reservation */
    unsigned long long ring;         /* kernel buffer bytes asked for (live) */
    enum ewp_time_unit time_unit;    /* format of Time */
    int nano;                        /* pcap's ts.tv_usec holds nanoseconds */
    char *prefix;                    /* encoded message head (deliver.c) */
    size_t prefix_len;               /* its length */
    struct ewp_ac_tmpl *tmpl;        /* the head with cached atoms, or NULL (deliver.c) */
    char *batch_buf;                 /* the open batch's elements (deliver.c) */
    size_t batch_room;               /* bytes allocated there */
    int pending;                     /* open waits for its filter to compile */
    unsigned filter_gen;             /* filters asked for so far (filter.c) */
    unsigned filter_set_gen;         /* ... the one set: a compile finished
                                        after a later one was set is not */
    int batch;                       /* packets per message; 1: no batching */
    int batch_count;                 /* packets in the open batch */
    size_t batch_used;               /* bytes of its elements */
    size_t batch_bytes;              /* packet bytes in them */
    size_t frame_used;               /* body bytes of the batch built in place
                                        in the node's output (deliver.c); 0: none */
    size_t frame_list;               /* ... where its LIST_EXT is */
    size_t frame_room;               /* ... body bytes reserved for it */
    int contended;                   /* its frame was cut short this dispatch */
    unsigned long long packets;      /* messages queued to the owner */
    unsigned long long bytes;        /* packet bytes in them */
    unsigned long long drops;        /* packets the output buffer had no room for */
    struct ewp_handle *next;         /* the table: every handle, newest first */
    struct ewp_handle *prev;         /* ... the one before (NULL: the first) */
    struct ewp_handle *node_next;    /* the handles of the same node */
    struct ewp_handle *node_prev;    /* ... the one before (NULL: the first) */
    struct ewp_handle *ref_next;     /* hash chain by ref (handles.c) */
    struct ewp_handle *pid_next;     /* hash chain by pid (handles.c) */
    struct ewp_node *node;           /* its node's record (handles.c) */
};

struct ewp_handles *ewp_handles_new(struct ev_loop *loop, ei_cnode *ec);
void ewp_handles_free(struct ewp_handles *t);
struct ev_loop *ewp_handles_loop(const struct ewp_handles *t);
ei_cnode *ewp_handles_cnode(const struct ewp_handles *t);
struct ewp_handle *ewp_handle_new(struct ewp_handles *t, struct ewp_peer *peer);
int ewp_handles_add(struct ewp_handles *t, struct ewp_handle *h, int monitor_owner);
void ewp_handle_close(struct ewp_handle *h, int unlink, const char *why);
void ewp_handle_free(struct ewp_handle *h);
void ewp_handles_peer_down(struct ewp_handles *t, struct ewp_peer *peer);
struct ewp_handle *ewp_handles_first(const struct ewp_handles *t);
struct ewp_handle *ewp_handles_find_ref(const struct ewp_handles *t, const erlang_ref *ref);
struct ewp_handle *ewp_handles_find_pid(const struct ewp_handles *t, const erlang_pid *pid);
int ewp_handles_count(const struct ewp_handles *t);
int ewp_handles_count_peer(const struct ewp_handles *t, const struct ewp_peer *peer);
struct ewp_handle *ewp_handles_first_of(const struct ewp_handles *t,
                                        const struct ewp_peer *peer);
unsigned long long ewp_handles_ring(const struct ewp_handles *t);
/* The handle of h's node that is building a batch in place in the node's
 * output buffer (deliver.c), or NULL; set, -1 when h is in no table */
struct ewp_handle *ewp_handles_building(const struct ewp_handle *h);
int ewp_handles_set_building(struct ewp_handle *h, struct ewp_handle *b);
unsigned long long ewp_handles_ring_peer(const struct ewp_handles *t,
                                         const struct ewp_peer *peer);
void ewp_format_pid(const erlang_pid *pid, char *buf, size_t len);

#endif /* EWP_HANDLES_H */
