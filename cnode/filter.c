/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Filters. The filter actually set is the user's filter (or none) and "not
 * tcp port P", P being our distribution port: without it a capture on the
 * interface that carries our own distribution traffic (lo for the embedded
 * daemon) would capture the messages that carry its packets, and each of
 * those would make more: a feedback loop. rpcapd excludes its own traffic
 * the same way. Datalinks where "tcp" means nothing (nflog, usb, ...)
 * refuse the combination; they get the user's filter alone.
 *
 * Every user filter of a call that can wait (any call: a gen_server call
 * or an rpc) is compiled by compile.c's workers: pcap_compile of a long
 * filter takes seconds, and a short one naming a host does a DNS lookup,
 * either of which would stall every client in the loop. Only our own
 * exclusion, which names nothing, is compiled in the loop. The call's
 * reply is sent from compiled_cb, which finds the handle again by its ref
 * (it may have been closed meanwhile) and the caller's node by name (it
 * may have gone); a call with a finish callback (rpc) gets the reply term
 * through it, the layer above sends.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ei.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "call.h"
#include "compile.h"
#include "deliver.h"
#include "dist.h"
#include "encode.h"
#include "filter.h"
#include "handles.h"
#include "log.h"

/* Bytes held by one node's compiles (queued or running) */
struct acct {
    char node[MAXNODELEN + 1];    /* whose */
    size_t bytes;                 /* held now */
    struct acct *next;            /* every node with compiles */
};

struct ewp_filters {
    struct ewp_compiler *cc;      /* the workers */
    struct acct *accts;           /* per node */
    size_t bytes;                 /* held by all compiles */
    struct ewp_handles *handles;  /* where compiled filters go */
    struct ewp_dist *dist;        /* where deferred replies go */
    int port;                     /* our distribution port, excluded */
};

/* A call whose reply waits for a filter compiled off the loop */
struct pending {
    int open;                     /* for an open (else filter) */
    erlang_ref ref;               /* the handle */
    struct ewp_call call;         /* whom to answer; its tag is tag */
    char *tag;                    /* copy of the caller's Tag */
    char *cont;                   /* copy of the call's cont, or NULL */
    char *user;                   /* the user's filter text, for info */
    size_t user_len;              /* its length */
    unsigned gen;                 /* the handle's filter_gen when asked */
    struct ewp_filters *f;        /* whose accounts */
    struct acct *acct;            /* the caller's node's */
    size_t cost;                  /* bytes counted there and in f->bytes */
};

static void compiled_cb(void *ctx, struct ewp_compile_job *job);
static void refund(struct pending *pd);
static void discard_pending(void *ctx, struct ewp_compile_job *job);
static int apply_filter(struct ewp_handle *h, struct ewp_compile_job *job, const char *f,
                        size_t len, unsigned gen, char *errbuf);
static struct pending *pending_new(struct ewp_handle *h, const char *text, size_t len, int open,
                                   const struct ewp_call *call);
static int superseded(const struct ewp_compile_job *job, size_t len, char *errbuf);
static struct acct *charge(struct ewp_filters *f, const char *node, size_t cost);

/* NULL when the compile workers cannot start */
struct ewp_filters *
ewp_filter_init(struct ev_loop *loop, struct ewp_handles *t, struct ewp_dist *dist, int port)
{
    struct ewp_filters *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    f->handles = t;
    f->dist = dist;
    f->port = port;
    f->cc = ewp_compile_new(loop, compiled_cb, f);
    if (f->cc == NULL) {
        free(f);
        return NULL;
    }
    return f;
}

/* Stop the workers; pending calls get no reply (we are going away) */
void
ewp_filter_shutdown(struct ewp_filters *f)
{
    if (f == NULL)
        return;
    ewp_compile_shutdown(f->cc, discard_pending, EWP_COMPILE_ABANDON);
    while (f->accts != NULL) {
        struct acct *a = f->accts;

        f->accts = a->next;
        free(a);
    }
    free(f);
}

/*
 * Set h's filter to text (len bytes, may be 0); open: the open's own filter
 * (its outcome is the open's: h starts, or is closed), else a filter
 * request's (one made while the open waits is not the open). Returns 0, -1
 * with the reason in errbuf (EWP_ERRBUF_SIZE), or EWP_DEFERRED when the
 * compile went to a worker and the reply to call will come from
 * compiled_cb (call NULL: the caller cannot wait, compile here).
 */
int
ewp_filter_set(struct ewp_filters *f, struct ewp_handle *h, const char *text, size_t len,
               int optimize, uint32_t netmask, int open, const struct ewp_call *call,
               char *errbuf)
{
    struct ewp_compile_job *job;
    char self[64];
    size_t selflen;
    int rv;

    job = calloc(1, sizeof(*job));
    if (job == NULL)
        goto nomem;
    selflen = (size_t)snprintf(self, sizeof(self), "not tcp port %d", f->port);
    job->text = malloc(len + selflen + 8);
    if (job->text == NULL)
        goto nomem;
    if (len == 0) {
        memcpy(job->text, self, selflen + 1);
    } else {
        job->text[0] = '(';
        memcpy(job->text + 1, text, len);
        (void)sprintf(job->text + 1 + len, ") and %s", self);
        job->fallback = strndup(text, len);
        if (job->fallback == NULL)
            goto nomem;
    }
    /* this filter supersedes any still compiling for h */
    h->filter_gen++;
    job->optimize = optimize;
    job->netmask = netmask;
    job->src = ewp_capture_share(&h->cap);
    job->linktype = h->cap.dlt;
    job->snaplen = pcap_snapshot(h->cap.p);

    if (len > 0 && call != NULL) {
        struct pending *pd;
        /* what the job holds: the text twice, the user's copy, the rest */
        size_t cost = 3 * len + EWP_COMPILE_JOB_COST;
        struct acct *a = charge(f, call->node, cost);

        if (a == NULL) {
            h->filter_gen--; /* nothing asked for after all */
            ewp_compile_free(job);
            EWP_LOG(1, "%s: compile of a %zu byte filter refused: queue full", h->device, len);
            (void)snprintf(errbuf, EWP_ERRBUF_SIZE, "compile_queue_full");
            return EWP_FILTER_QUEUE_FULL;
        }
        pd = pending_new(h, text, len, open, call);
        job->data = pd;
        if (pd == NULL) {
            a->bytes -= cost;
            f->bytes -= cost;
            goto nomem;
        }
        pd->f = f;
        pd->acct = a;
        pd->cost = cost;
        job->owner = h->peer; /* one node's compiles run one at a time */
        EWP_LOG(1, "%s: compiling a %zu byte filter off the loop", h->device, len);
        ewp_compile_submit(f->cc, job);
        return EWP_DEFERRED;
    }

    (void)ewp_compile_run(job);
    rv = apply_filter(h, job, text, len, h->filter_gen, errbuf);
    ewp_compile_free(job);
    return rv;

nomem:
    if (job != NULL)
        ewp_compile_free(job);
    (void)snprintf(errbuf, EWP_ERRBUF_SIZE, "out of memory");
    return -1;
}

static struct pending *
pending_new(struct ewp_handle *h, const char *text, size_t len, int open,
            const struct ewp_call *call)
{
    struct pending *pd = calloc(1, sizeof(*pd));

    if (pd == NULL || (pd->tag = malloc((size_t)call->tag_len + 1)) == NULL ||
        (pd->user = malloc(len + 1)) == NULL ||
        (call->cont != NULL && (pd->cont = malloc((size_t)call->cont_len + 1)) == NULL)) {
        if (pd != NULL) {
            free(pd->tag);
            free(pd->user);
        }
        free(pd);
        return NULL;
    }
    pd->open = open;
    pd->ref = h->ref;
    pd->gen = h->filter_gen;
    pd->call.from = call->from;
    memcpy(pd->tag, call->tag, (size_t)call->tag_len);
    pd->call.tag = pd->tag;
    pd->call.tag_len = call->tag_len;
    (void)snprintf(pd->call.node, sizeof(pd->call.node), "%s", call->node);
    pd->call.finish = call->finish;
    pd->call.finish_ctx = call->finish_ctx;
    if (call->cont != NULL)
        memcpy(pd->cont, call->cont, (size_t)call->cont_len);
    pd->call.cont = pd->cont;
    pd->call.cont_len = call->cont != NULL ? call->cont_len : 0;
    memcpy(pd->user, text, len);
    pd->user[len] = '\0';
    pd->user_len = len;
    return pd;
}

/*
 * Set the compiled program. The user's filter with the exclusion of our
 * own traffic if that compiled, else the user's alone; with no user filter
 * and no exclusion possible (a datalink where "tcp" means nothing: nflog,
 * usb, ...), no filter at all.
 */
static int
apply_filter(struct ewp_handle *h, struct ewp_compile_job *job, const char *f, size_t len,
             unsigned gen, char *errbuf)
{
    char *copy;

    if (job->ok) {
        if (ewp_capture_setprog(&h->cap, &job->prog, errbuf, EWP_ERRBUF_SIZE) < 0)
            return -1;
    } else if (len > 0) {
        (void)snprintf(errbuf, EWP_ERRBUF_SIZE, "%s", job->errbuf);
        return -1;
    }
    copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, f, len);
        copy[len] = '\0';
    }
    free(h->filter);
    h->filter = copy;
    h->filter_len = copy != NULL ? len : 0;
    h->filter_set_gen = gen;
    return 0;
}

/*
 * A filter compiled off the loop: set it, answer the call that waited. The
 * outcome is settled first (an open whose filter is refused is closed,
 * which takes it out of the table), the reply is sent last; a send that
 * fails only marks the caller's node dead (dist.c's rule).
 */
static void
compiled_cb(void *ctx, struct ewp_compile_job *job)
{
    struct ewp_filters *f = ctx;
    struct pending *pd = job->data;
    struct ewp_handle *h = ewp_handles_find_ref(f->handles, &pd->ref);
    struct ewp_peer *peer = ewp_dist_peer_by_name(f->dist, pd->call.node);
    char errbuf[EWP_ERRBUF_SIZE];
    ei_x_buff x;
    int rv = -1, start = 0;

    if (peer != NULL && ei_x_new(&x) == 0) {
        if (pd->call.finish != NULL ||
            ewp_encode_reply_begin(&x, &pd->call.from, pd->call.tag, pd->call.tag_len) == 0) {
            start = x.index;
            if (h == NULL) {
                /* closed meanwhile: by its owner's exit, or by close */
                rv = pd->open ? ewp_encode_error_string(&x, "closed while its filter compiled")
                              : ewp_encode_error_atom(&x, "ebadf");
            } else if (pd->gen <= h->filter_set_gen
                           ? superseded(job, pd->user_len, errbuf)
                           : apply_filter(h, job, pd->user, pd->user_len, pd->gen, errbuf) < 0) {
                if (pd->open)
                    ewp_handle_close(h, 1, "filter refused");
                rv = ewp_encode_error_string(&x, errbuf);
            } else if (pd->open) {
                h->pending = 0;
                ewp_deliver_start(h);
                rv = ewp_encode_ok_ref(&x, &h->ref);
            } else {
                rv = ei_x_encode_atom(&x, "ok");
            }
        }
        /* the handle, if it was opened, is still in the table here */
        if (rv == 0 && pd->call.finish != NULL)
            pd->call.finish(pd->call.finish_ctx, &pd->call, peer, x.buff + start,
                            x.index - start);
        else if (rv == 0)
            (void)ewp_peer_send(peer, x.buff, (size_t)x.index);
        ei_x_free(&x);
    } else if (h != NULL && pd->open) {
        ewp_handle_close(h, 1, "caller gone while its filter compiled");
    }
    discard_pending(ctx, job);
    ewp_compile_free(job);
}

/*
 * A filter asked for later than this one was set while this one compiled
 * (another node's compiles run beside this node's): this one never is,
 * so an earlier result never overwrites a later one. Until a later one is
 * set, this one is (an open's filter is in place before its first packet,
 * whatever was asked for after it). The caller still learns whether its
 * filter compiled (1 with the reason in errbuf, else 0: as if it had been
 * set and then replaced).
 */
static int
superseded(const struct ewp_compile_job *job, size_t len, char *errbuf)
{
    if (job->ok || len == 0)
        return 0;
    (void)snprintf(errbuf, EWP_ERRBUF_SIZE, "%s", job->errbuf);
    return 1;
}

/*
 * Count cost bytes of compiles for node, in its account and the total;
 * NULL (nothing counted) past EWP_COMPILE_NODE_MAX or EWP_COMPILE_MAX.
 */
static struct acct *
charge(struct ewp_filters *f, const char *node, size_t cost)
{
    struct acct *a;

    for (a = f->accts; a != NULL; a = a->next)
        if (strcmp(a->node, node) == 0)
            break;
    if (f->bytes + cost > EWP_COMPILE_MAX ||
        (a != NULL ? a->bytes : 0) + cost > EWP_COMPILE_NODE_MAX)
        return NULL;
    if (a == NULL) {
        a = calloc(1, sizeof(*a));
        if (a == NULL)
            return NULL;
        (void)snprintf(a->node, sizeof(a->node), "%s", node);
        a->next = f->accts;
        f->accts = a;
    }
    a->bytes += cost;
    f->bytes += cost;
    return a;
}

/* The job is done or dropped: its bytes are no longer held */
static void
refund(struct pending *pd)
{
    struct ewp_filters *f = pd->f;
    struct acct **aa;

    pd->acct->bytes -= pd->cost;
    f->bytes -= pd->cost;
    if (pd->acct->bytes > 0)
        return;
    for (aa = &f->accts; *aa != NULL; aa = &(*aa)->next)
        if (*aa == pd->acct) {
            *aa = pd->acct->next;
            free(pd->acct);
            return;
        }
}

static void
discard_pending(void *ctx, struct ewp_compile_job *job)
{
    struct pending *pd = job->data;

    (void)ctx;
    if (pd != NULL) {
        refund(pd);
        free(pd->tag);
        free(pd->cont);
        free(pd->user);
        free(pd);
        job->data = NULL;
    }
}
