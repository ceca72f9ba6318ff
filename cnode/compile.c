/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * EWP_COMPILE_WORKERS worker threads, two queues (to do, done) under one
 * mutex. The loop submits jobs; a worker takes the oldest job whose owner
 * (the client node, job->owner) has no job being compiled by another
 * worker, compiles it (pcap_compile is thread-safe since libpcap 1.8)
 * against the capture's own pcap_t, borrowed (pcapshare.h), or a dead
 * handle of the same link type and snaplen, moves it to the done
 * queue and wakes the loop with ev_async_send. The loop then calls the
 * done callback for each. So one node's jobs run one at a time and in
 * order, and a node that sends a filter taking a minute to compile holds
 * one worker, not the others' filters. Nothing else is shared.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "compile.h"
#include "log.h"

/* A worker's argument */
struct worker_arg {
    struct ewp_compiler *cc;       /* its pool */
    int self;                      /* its index */
};

struct ewp_compiler {
    struct ev_loop *loop;          /* where done callbacks run */
    ev_async wake;                 /* worker -> loop */
    pthread_t threads[EWP_COMPILE_WORKERS];
    int started;                   /* threads running */
    const struct ewp_compile_job *running[EWP_COMPILE_WORKERS]; /* or NULL */
    struct worker_arg args[EWP_COMPILE_WORKERS]; /* each worker's argument */
    int stop;                      /* asks the worker to end */
    pthread_mutex_t lock;          /* protects the queues and stop */
    pthread_cond_t cond;           /* work or stop for the worker */
    struct ewp_compile_job *todo;  /* FIFO: head */
    struct ewp_compile_job **todo_tail;
    struct ewp_compile_job *done;  /* FIFO: head */
    struct ewp_compile_job **done_tail;
    ewp_compile_done_cb done_cb;   /* the submitter's */
    void *ctx;                     /* ... and its argument */
};

static void *worker(void *arg);
static struct ewp_compile_job *take(struct ewp_compiler *cc, int self);
static void wake_cb(struct ev_loop *loop, ev_async *w, int revents);
static int compile_one(struct ewp_compile_job *job, const char *text);

/* The workers started; NULL when none could be (or out of memory) */
struct ewp_compiler *
ewp_compile_new(struct ev_loop *loop, ewp_compile_done_cb done, void *ctx)
{
    struct ewp_compiler *cc = calloc(1, sizeof(*cc));

    if (cc == NULL)
        return NULL;
    cc->loop = loop;
    cc->done_cb = done;
    cc->ctx = ctx;
    cc->todo_tail = &cc->todo;
    cc->done_tail = &cc->done;
    if (pthread_mutex_init(&cc->lock, NULL) != 0) {
        free(cc);
        return NULL;
    }
    if (pthread_cond_init(&cc->cond, NULL) != 0) {
        (void)pthread_mutex_destroy(&cc->lock);
        free(cc);
        return NULL;
    }
    ev_async_init(&cc->wake, wake_cb);
    cc->wake.data = cc;
    ev_async_start(loop, &cc->wake);
    for (cc->started = 0; cc->started < EWP_COMPILE_WORKERS; cc->started++) {
        cc->running[cc->started] = NULL;
        cc->args[cc->started].cc = cc;
        cc->args[cc->started].self = cc->started;
        if (pthread_create(&cc->threads[cc->started], NULL, worker, &cc->args[cc->started]) != 0)
            break;
    }
    if (cc->started == 0) {
        ev_async_stop(loop, &cc->wake);
        (void)pthread_cond_destroy(&cc->cond);
        (void)pthread_mutex_destroy(&cc->lock);
        free(cc);
        return NULL;
    }
    return cc;
}

void
ewp_compile_submit(struct ewp_compiler *cc, struct ewp_compile_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&cc->lock);
    *cc->todo_tail = job;
    cc->todo_tail = &job->next;
    pthread_cond_broadcast(&cc->cond);
    pthread_mutex_unlock(&cc->lock);
}

/* Compile in the calling thread: job->ok and prog or errbuf. Returns 0/-1. */
int
ewp_compile_run(struct ewp_compile_job *job)
{
    job->ok = compile_one(job, job->text) == 0 ||
              (job->fallback != NULL && compile_one(job, job->fallback) == 0);
    return job->ok ? 0 : -1;
}

void
ewp_compile_free(struct ewp_compile_job *job)
{
    if (job->ok)
        pcap_freecode(&job->prog);
    ewp_pcapshare_unref(job->src);
    free(job->text);
    free(job->fallback);
    free(job);
}

/*
 * Stop the workers; jobs not done get discard (to free their data), not
 * their callback, and are freed; so is cc. With EWP_COMPILE_ABANDON a
 * worker in the middle of a compile is not waited for (pcap_compile cannot
 * be interrupted, and one filter may take minutes): it is detached, cc
 * stays allocated for it, and it ends with the process, which is about to
 * exit (SIGTERM must not wait for a client's filter). Its job is never
 * handed back.
 */
void
ewp_compile_shutdown(struct ewp_compiler *cc, ewp_compile_done_cb discard, int running)
{
    struct ewp_compile_job *job, *todo, *done;
    int i, busy[EWP_COMPILE_WORKERS] = {0}, abandoned = 0;

    if (cc == NULL)
        return;
    pthread_mutex_lock(&cc->lock);
    cc->stop = 1;
    for (i = 0; i < cc->started; i++) {
        busy[i] = running == EWP_COMPILE_ABANDON && cc->running[i] != NULL;
        abandoned += busy[i];
    }
    pthread_cond_broadcast(&cc->cond);
    pthread_mutex_unlock(&cc->lock);
    for (i = 0; i < cc->started; i++)
        if (busy[i])
            (void)pthread_detach(cc->threads[i]);
        else
            (void)pthread_join(cc->threads[i], NULL);
    ev_async_stop(cc->loop, &cc->wake);
    pthread_mutex_lock(&cc->lock);
    todo = cc->todo;
    done = cc->done;
    cc->todo = cc->done = NULL;
    cc->todo_tail = &cc->todo;
    cc->done_tail = &cc->done;
    pthread_mutex_unlock(&cc->lock);
    while ((job = todo) != NULL) {
        todo = job->next;
        discard(cc->ctx, job);
        ewp_compile_free(job);
    }
    while ((job = done) != NULL) {
        done = job->next;
        discard(cc->ctx, job);
        ewp_compile_free(job);
    }
    if (abandoned > 0) {
        EWP_LOG(1, "shutting down: %d filter compile(s) abandoned", abandoned);
        return; /* cc is the abandoned workers' until the process ends */
    }
    cc->started = 0;
    (void)pthread_cond_destroy(&cc->cond);
    (void)pthread_mutex_destroy(&cc->lock);
    free(cc);
}

static void *
worker(void *arg)
{
    struct ewp_compiler *cc = ((struct worker_arg *)arg)->cc;
    int self = ((struct worker_arg *)arg)->self;
    struct ewp_compile_job *job;

    pthread_mutex_lock(&cc->lock);
    for (;;) {
        while (!cc->stop && (job = take(cc, self)) == NULL)
            pthread_cond_wait(&cc->cond, &cc->lock);
        if (cc->stop)
            break;
        pthread_mutex_unlock(&cc->lock);

        (void)ewp_compile_run(job);

        pthread_mutex_lock(&cc->lock);
        cc->running[self] = NULL;
        job->next = NULL;
        *cc->done_tail = job;
        cc->done_tail = &job->next;
        /* after a shutdown nobody waits: an abandoned job stays in done */
        if (!cc->stop)
            ev_async_send(cc->loop, &cc->wake);
        /* the owner's next job may now go to any worker */
        pthread_cond_broadcast(&cc->cond);
    }
    pthread_mutex_unlock(&cc->lock);
    return NULL;
}

/* With the lock held: unlink and return the oldest job whose owner no
 * other worker is compiling for (marking it ours), or NULL. */
static struct ewp_compile_job *
take(struct ewp_compiler *cc, int self)
{
    struct ewp_compile_job **pp, *job;
    int i, busy;

    for (pp = &cc->todo; (job = *pp) != NULL; pp = &job->next) {
        for (busy = 0, i = 0; i < EWP_COMPILE_WORKERS && !busy; i++)
            busy = i != self && cc->running[i] != NULL && cc->running[i]->owner == job->owner;
        if (busy)
            continue;
        *pp = job->next;
        if (*pp == NULL)
            cc->todo_tail = pp;
        cc->running[self] = job;
        return job;
    }
    return NULL;
}

static void
wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct ewp_compiler *cc = w->data;
    struct ewp_compile_job *list, *job;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&cc->lock);
    list = cc->done;
    cc->done = NULL;
    cc->done_tail = &cc->done;
    pthread_mutex_unlock(&cc->lock);
    while ((job = list) != NULL) {
        list = job->next;
        cc->done_cb(cc->ctx, job);
    }
}

static int
compile_one(struct ewp_compile_job *job, const char *text)
{
    pcap_t *dead, *live;

    if (job->src != NULL) {
        int rv = 0;

        live = ewp_pcapshare_borrow(job->src);
        if (live == NULL) {
            /* its capture closed meanwhile: nothing to compile for */
            (void)snprintf(job->errbuf, sizeof(job->errbuf), "capture closed");
            return -1;
        }
        if (pcap_compile(live, &job->prog, text, job->optimize, job->netmask) < 0) {
            (void)snprintf(job->errbuf, sizeof(job->errbuf), "%s", pcap_geterr(live));
            rv = -1;
        }
        ewp_pcapshare_giveback(job->src);
        return rv;
    }
    dead = pcap_open_dead(job->linktype, job->snaplen);
    if (dead == NULL) {
        (void)snprintf(job->errbuf, sizeof(job->errbuf), "pcap_open_dead failed");
        return -1;
    }
    if (pcap_compile(dead, &job->prog, text, job->optimize, job->netmask) < 0) {
        (void)snprintf(job->errbuf, sizeof(job->errbuf), "%s", pcap_geterr(dead));
        pcap_close(dead);
        return -1;
    }
    pcap_close(dead);
    return 0;
}
