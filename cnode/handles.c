/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The handle table and the distribution side of each handle's life: LINK
 * {HandlePid, From} or MONITOR_P of the owner once it is in the table,
 * UNLINK_ID or DEMONITOR_P when it is closed by request. What happens to
 * its packets is deliver.c's.
 *
 * Every request names a handle by its ref and every exit signal by its pid,
 * so both are found through hash tables (chained, doubled when they hold
 * more handles than buckets); the handles of one node are on a list of
 * their own, with their count and kernel buffer bytes, so that pausing,
 * resuming or dropping a node and the open caps cost that node's handles,
 * not the whole table's. The table list itself is for what walks every
 * handle anyway (info, the interface check, shutdown).
 */
#include <stdint.h>
#include <stdio.h>
#include <malloc.h>
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

#define HASH_MIN 64      /* buckets of the ref and pid tables at first */
#define NODE_BUCKETS 64  /* buckets of the node records (by peer address) */

/* the handles of one node */
struct ewp_node {
    const struct ewp_peer *peer;    /* the node's connection */
    struct ewp_handle *head;        /* its handles, newest first */
    int count;                      /* how many */
    unsigned long long ring;        /* their kernel buffer bytes */
    struct ewp_handle *building;    /* its batch built in place (deliver.c) */
    struct ewp_node *next;          /* the bucket's chain */
};

struct ewp_handles {
    struct ev_loop *loop;           /* captures' watchers */
    ei_cnode *ec;                   /* makes refs and pids */
    struct ewp_handle *head;        /* every handle, newest first */
    int count;                      /* how many */
    unsigned long long ring;        /* their kernel buffer bytes */
    struct ewp_handle **by_ref;     /* hash chains by ref (ref_next) */
    struct ewp_handle **by_pid;     /* hash chains by pid (pid_next) */
    size_t nbuckets;                /* of each (a power of two) */
    struct ewp_node *nodes[NODE_BUCKETS]; /* node records by peer */
    unsigned long unlink_id;        /* last UNLINK_ID sent */
};

static void send_unlink(struct ewp_handle *h);
static void pass_ring(struct ewp_handle *h);
static size_t ref_hash(const erlang_ref *ref);
static size_t pid_hash(const erlang_pid *pid);
static size_t peer_hash(const struct ewp_peer *peer);
static struct ewp_node *node_of(const struct ewp_handles *t, const struct ewp_peer *peer);
static struct ewp_node *node_get(struct ewp_handles *t, struct ewp_peer *peer);
static void node_put(struct ewp_handles *t, struct ewp_node *n);
static void hash_insert(struct ewp_handles *t, struct ewp_handle *h);
static void hash_remove(struct ewp_handles *t, struct ewp_handle *h);
static void hash_grow(struct ewp_handles *t);

struct ewp_handles *
ewp_handles_new(struct ev_loop *loop, ei_cnode *ec)
{
    struct ewp_handles *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->loop = loop;
    t->ec = ec;
    t->nbuckets = HASH_MIN;
    t->by_ref = calloc(t->nbuckets, sizeof(struct ewp_handle *));
    t->by_pid = calloc(t->nbuckets, sizeof(struct ewp_handle *));
    if (t->by_ref == NULL || t->by_pid == NULL) {
        free(t->by_ref);
        free(t->by_pid);
        free(t);
        return NULL;
    }
    return t;
}

/* Close every handle (no unlink: at shutdown the nodes see us go) */
void
ewp_handles_free(struct ewp_handles *t)
{
    struct ewp_handle *h, *next;

    if (t == NULL)
        return;
    for (h = t->head; h != NULL; h = next) {
        next = h->next;
        ewp_handle_close(h, 0, "shutdown");
    }
    free(t->by_ref);
    free(t->by_pid);
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
 * -1 (not in the table) when ei cannot make a ref or pid, or out of memory.
 */
int
ewp_handles_add(struct ewp_handles *t, struct ewp_handle *h, int monitor_owner)
{
    struct ewp_node *n;
    ei_x_buff x;

    if (ei_make_ref(t->ec, &h->ref) < 0 || ei_make_pid(t->ec, &h->pid) < 0)
        return -1;
    if (monitor_owner) {
        if (ei_make_ref(t->ec, &h->mon_ref) < 0)
            return -1;
        h->monitored = 1;
    }
    n = node_get(t, h->peer);
    if (n == NULL)
        return -1;
    h->node = n;
    h->node_prev = NULL;
    h->node_next = n->head;
    if (n->head != NULL)
        n->head->node_prev = h;
    n->head = h;
    n->count++;
    n->ring += h->ring;
    if ((size_t)t->count >= t->nbuckets)
        hash_grow(t); /* before h is on the list it rehashes */
    hash_insert(t, h);
    h->prev = NULL;
    h->next = t->head;
    if (t->head != NULL)
        t->head->prev = h;
    t->head = h;
    t->count++;
    t->ring += h->ring;
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
    struct ewp_node *n = h->node;

    if (n != NULL) { /* in the table */
        pass_ring(h);
        hash_remove(t, h);
        if (h->prev != NULL)
            h->prev->next = h->next;
        else
            t->head = h->next;
        if (h->next != NULL)
            h->next->prev = h->prev;
        t->count--;
        t->ring -= h->ring;
        if (h->node_prev != NULL)
            h->node_prev->node_next = h->node_next;
        else
            n->head = h->node_next;
        if (h->node_next != NULL)
            h->node_next->node_prev = h->node_prev;
        n->count--;
        n->ring -= h->ring;
        if (n->building == h) { /* only inside a dispatch, which closes no handle */
            EWP_ERR("%s: internal: %s closed with a batch open", ewp_peer_name(h->peer),
                    h->device);
            n->building = NULL;
        }
        if (n->count == 0)
            node_put(t, n);
        h->node = NULL;
    }
    h->next = h->prev = h->node_next = h->node_prev = NULL;
    EWP_LOG(1, "%s: close %s (%s; %llu packets, %llu dropped; %d handles)",
            ewp_peer_name(h->peer), h->device, why, h->packets, h->drops, t->count);
    if (unlink)
        send_unlink(h);
    ewp_handle_free(h);
    if (t->count == 0)
        (void)malloc_trim(0);
}

/* The handle of h's node whose batch is being built in place in the
 * node's output buffer, or NULL (also when h is in no table) */
struct ewp_handle *
ewp_handles_building(const struct ewp_handle *h)
{
    return h->node != NULL ? h->node->building : NULL;
}

/* Record b (h or NULL) as that handle; -1 when h is in no table */
int
ewp_handles_set_building(struct ewp_handle *h, struct ewp_handle *b)
{
    if (h->node == NULL)
        return -1;
    h->node->building = b;
    return 0;
}

/* The capture closed and the memory freed; h is in no table */
void
ewp_handle_free(struct ewp_handle *h)
{
    ewp_capture_close(&h->cap);
    free(h->prefix);
    if (h->batch_room > 0) /* counted among its node's packets (deliver.c) */
        ewp_peer_unhold(h->peer, h->batch_room);
    free(h->batch_buf);
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

    for (h = ewp_handles_first_of(t, peer); h != NULL; h = next) {
        next = h->node_next;
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

    for (h = t->by_ref[ref_hash(ref) & (t->nbuckets - 1)]; h != NULL; h = h->ref_next)
        if (ei_cmp_refs(&h->ref, &r) == 0)
            return h;
    return NULL;
}

struct ewp_handle *
ewp_handles_find_pid(const struct ewp_handles *t, const erlang_pid *pid)
{
    struct ewp_handle *h;
    erlang_pid p = *pid;

    for (h = t->by_pid[pid_hash(pid) & (t->nbuckets - 1)]; h != NULL; h = h->pid_next)
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
    const struct ewp_node *n = node_of(t, peer);

    return n == NULL ? 0 : n->count;
}

/* The newest handle of peer's node (then node_next), or NULL */
struct ewp_handle *
ewp_handles_first_of(const struct ewp_handles *t, const struct ewp_peer *peer)
{
    const struct ewp_node *n = node_of(t, peer);

    return n == NULL ? NULL : n->head;
}

/* The kernel buffer bytes of every live capture in the table */
unsigned long long
ewp_handles_ring(const struct ewp_handles *t)
{
    return t->ring;
}

/* ... of peer's */
unsigned long long
ewp_handles_ring_peer(const struct ewp_handles *t, const struct ewp_peer *peer)
{
    const struct ewp_node *n = node_of(t, peer);

    return n == NULL ? 0 : n->ring;
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

/*
 * h's capture is shared (capture.h) and h counts its kernel ring: another
 * handle of it counts it from now on, in the table's and its node's
 * bytes, so that the ring is counted once for as long as it is open.
 */
static void
pass_ring(struct ewp_handle *h)
{
    struct ewp_capture *c;
    struct ewp_handle *o;

    if (h->ring == 0 || (c = ewp_capture_other(&h->cap)) == NULL || (o = c->data) == NULL ||
        o->node == NULL)
        return;
    o->ring += h->ring;
    o->node->ring += h->ring;
    h->node->ring -= h->ring; /* the table's total stays */
    h->ring = 0;
}

/*
 * Hashes consistent with ei_cmp_refs and ei_cmp_pids: equal terms have
 * equal words. A ref's first two words are ei's counter (a reference a
 * client made up costs a compare, nothing more); the words past len are
 * not read. A pid's num and serial are ei's counter too.
 */
static size_t
mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static size_t
ref_hash(const erlang_ref *ref)
{
    uint32_t a = ref->len > 0 ? ref->n[0] : 0, b = ref->len > 1 ? ref->n[1] : 0;

    return mix(a ^ (b * 0x9e3779b1U));
}

static size_t
pid_hash(const erlang_pid *pid)
{
    return mix(pid->num ^ (pid->serial * 0x9e3779b1U));
}

static size_t
peer_hash(const struct ewp_peer *peer)
{
    return mix((uint32_t)((uintptr_t)peer >> 4)) & (NODE_BUCKETS - 1);
}

static struct ewp_node *
node_of(const struct ewp_handles *t, const struct ewp_peer *peer)
{
    struct ewp_node *n;

    for (n = t->nodes[peer_hash(peer)]; n != NULL; n = n->next)
        if (n->peer == peer)
            return n;
    return NULL;
}

/* peer's record, made when it has none; NULL: out of memory */
static struct ewp_node *
node_get(struct ewp_handles *t, struct ewp_peer *peer)
{
    struct ewp_node *n = node_of(t, peer);
    size_t b;

    if (n != NULL)
        return n;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    b = peer_hash(peer);
    n->peer = peer;
    n->next = t->nodes[b];
    t->nodes[b] = n;
    return n;
}

/* n has no handle left: out of its bucket and freed */
static void
node_put(struct ewp_handles *t, struct ewp_node *n)
{
    struct ewp_node **nn;

    for (nn = &t->nodes[peer_hash(n->peer)]; *nn != NULL; nn = &(*nn)->next)
        if (*nn == n) {
            *nn = n->next;
            break;
        }
    free(n);
}

static void
hash_insert(struct ewp_handles *t, struct ewp_handle *h)
{
    size_t r = ref_hash(&h->ref) & (t->nbuckets - 1), p = pid_hash(&h->pid) & (t->nbuckets - 1);

    h->ref_next = t->by_ref[r];
    t->by_ref[r] = h;
    h->pid_next = t->by_pid[p];
    t->by_pid[p] = h;
}

static void
hash_remove(struct ewp_handles *t, struct ewp_handle *h)
{
    struct ewp_handle **hh;

    for (hh = &t->by_ref[ref_hash(&h->ref) & (t->nbuckets - 1)]; *hh != NULL;
         hh = &(*hh)->ref_next)
        if (*hh == h) {
            *hh = h->ref_next;
            break;
        }
    for (hh = &t->by_pid[pid_hash(&h->pid) & (t->nbuckets - 1)]; *hh != NULL;
         hh = &(*hh)->pid_next)
        if (*hh == h) {
            *hh = h->pid_next;
            break;
        }
    h->ref_next = h->pid_next = NULL;
}

/* Twice the buckets, every handle in the table rehashed; out of memory,
 * the chains just grow longer */
static void
hash_grow(struct ewp_handles *t)
{
    size_t n = t->nbuckets * 2;
    struct ewp_handle **by_ref = calloc(n, sizeof(struct ewp_handle *));
    struct ewp_handle **by_pid = calloc(n, sizeof(struct ewp_handle *));
    struct ewp_handle *h;

    if (by_ref == NULL || by_pid == NULL) {
        free(by_ref);
        free(by_pid);
        return;
    }
    free(t->by_ref);
    free(t->by_pid);
    t->by_ref = by_ref;
    t->by_pid = by_pid;
    t->nbuckets = n;
    for (h = t->head; h != NULL; h = h->next)
        hash_insert(t, h);
}
