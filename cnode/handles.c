/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The handle table (a list: opens and closes are rare, lookups by ref or
 * pid cost a walk) and the distribution side of each handle's life: LINK
 * {HandlePid, From} or MONITOR_P of the owner once it is in the table,
 * UNLINK_ID or DEMONITOR_P when it is closed by request. What happens to
 * its packets is deliver.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ei.h>
#include <ev.h>

#include "atomcache.h"
#include "capture.h"
#include "dist.h"
#include "encode.h"
#include "handles.h"
#include "log.h"

struct ewp_handles {
    struct ev_loop *loop;           /* captures' watchers */
    ei_cnode *ec;                   /* makes refs and pids */
    struct ewp_handle *head;        /* every handle, newest first */
    int count;                      /* how many */
    unsigned long unlink_id;        /* last UNLINK_ID sent */
};

static void send_unlink(struct ewp_handle *h);

struct ewp_handles *
ewp_handles_new(struct ev_loop *loop, ei_cnode *ec)
{
    struct ewp_handles *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->loop = loop;
    t->ec = ec;
    return t;
}

/* Close every handle (no unlink: at shutdown the nodes see us go) */
void
ewp_handles_free(struct ewp_handles *t)
{
    if (t == NULL)
        return;
    while (t->head != NULL)
        ewp_handle_close(t->head, 0, "shutdown");
    free(t);
}

struct ev_loop *
ewp_handles_loop(const struct ewp_handles *t)
{
    return t->loop;
}

ei_cnode *
ewp_handles_cnode(const struct ewp_handles *t)
{
    return t->ec;
}

/* A handle for peer, not yet in the table; NULL: out of memory */
struct ewp_handle *
ewp_handle_new(struct ewp_handles *t, struct ewp_peer *peer)
{
    struct ewp_handle *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->table = t;
    h->peer = peer;
    h->batch = 1;
    return h;
}

/*
 * Give h its ref and pid, put it in the table, then link it to h->link
 * (its exit, or a dead link: noproc, closes it) or, for rpc opens
 * (monitor_owner), monitor h->owner: there is no guard process then, and a
 * lost connection must never send the owner an exit signal. Returns 0, or
 * -1 (not in the table) when ei cannot make a ref or pid.
 */
int
ewp_handles_add(struct ewp_handles *t, struct ewp_handle *h, int monitor_owner)
{
    ei_x_buff x;

    if (ei_make_ref(t->ec, &h->ref) < 0 || ei_make_pid(t->ec, &h->pid) < 0)
        return -1;
    if (monitor_owner) {
        if (ei_make_ref(t->ec, &h->mon_ref) < 0)
            return -1;
        h->monitored = 1;
    }
    h->next = t->head;
    t->head = h;
    t->count++;
    /* in the table first: if this send drops the peer, its teardown
     * (later, dist.c's rule) finds the handle and closes it */
    if (ei_x_new(&x) == 0) {
        if ((h->monitored ? ewp_encode_monitor(&x, EWP_DOP_MONITOR_P, &h->pid, &h->owner,
                                               &h->mon_ref)
                          : ewp_encode_control(&x, EWP_DOP_LINK, &h->pid, &h->link)) == 0)
            (void)ewp_peer_send(h->peer, x.buff, (size_t)x.index);
        ei_x_free(&x);
    }
    return 0;
}

/* Out of the table, then (unlink: closed by request) UNLINK_ID or
 * DEMONITOR_P to its node, then the capture closed and h freed. */
void
ewp_handle_close(struct ewp_handle *h, int unlink, const char *why)
{
    struct ewp_handles *t = h->table;
    struct ewp_handle **hh;

    for (hh = &t->head; *hh != NULL; hh = &(*hh)->next)
        if (*hh == h) {
            *hh = h->next;
            t->count--;
            break;
        }
    h->next = NULL;
    EWP_LOG(1, "%s: close %s (%s; %llu packets, %llu dropped; %d handles)",
            ewp_peer_name(h->peer), h->device, why, h->packets, h->drops, t->count);
    if (unlink)
        send_unlink(h);
    ewp_handle_free(h);
}

/* The capture closed and the memory freed; h is in no table */
void
ewp_handle_free(struct ewp_handle *h)
{
    ewp_capture_close(&h->cap);
    free(h->prefix);
    if (h->tmpl != NULL)
        ewp_ac_tmpl_free(h->tmpl);
    free(h->tmpl);
    free(h->filter);
    free(h);
}

/* The node is gone: so are its handles (no unlink: nobody to tell). */
void
ewp_handles_peer_down(struct ewp_handles *t, struct ewp_peer *peer)
{
    struct ewp_handle *h, *next;

    for (h = t->head; h != NULL; h = next) {
        next = h->next;
        if (h->peer == peer)
            ewp_handle_close(h, 0, "owner node disconnected");
    }
}

struct ewp_handle *
ewp_handles_first(const struct ewp_handles *t)
{
    return t->head;
}

struct ewp_handle *
ewp_handles_find_ref(const struct ewp_handles *t, const erlang_ref *ref)
{
    struct ewp_handle *h;
    erlang_ref r = *ref;

    for (h = t->head; h != NULL; h = h->next)
        if (ei_cmp_refs(&h->ref, &r) == 0)
            return h;
    return NULL;
}

struct ewp_handle *
ewp_handles_find_pid(const struct ewp_handles *t, const erlang_pid *pid)
{
    struct ewp_handle *h;
    erlang_pid p = *pid;

    for (h = t->head; h != NULL; h = h->next)
        if (ei_cmp_pids(&h->pid, &p) == 0)
            return h;
    return NULL;
}

int
ewp_handles_count(const struct ewp_handles *t)
{
    return t->count;
}

int
ewp_handles_count_peer(const struct ewp_handles *t, const struct ewp_peer *peer)
{
    const struct ewp_handle *h;
    int n = 0;

    for (h = t->head; h != NULL; h = h->next)
        if (h->peer == peer)
            n++;
    return n;
}

void
ewp_format_pid(const erlang_pid *pid, char *buf, size_t len)
{
    (void)snprintf(buf, len, "<%s.%u.%u>", pid->node, pid->num, pid->serial);
}

static void
send_unlink(struct ewp_handle *h)
{
    ei_x_buff x;

    if (ei_x_new(&x) < 0)
        return;
    if (h->monitored) {
        if (ewp_encode_monitor(&x, EWP_DOP_DEMONITOR_P, &h->pid, &h->owner, &h->mon_ref) == 0)
            (void)ewp_peer_send(h->peer, x.buff, (size_t)x.index);
    } else {
        char id[16];
        int idlen = 0;

        (void)ei_encode_ulong(id, &idlen, ++h->table->unlink_id);
        if (ewp_encode_unlink_id(&x, EWP_DOP_UNLINK_ID, id, idlen, &h->pid, &h->link) == 0)
            (void)ewp_peer_send(h->peer, x.buff, (size_t)x.index);
    }
    ei_x_free(&x);
}
