/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A pcap_t shared between a capture and the compile workers (see
 * pcapshare.h). One mutex per share guards everything in it.
 */
#include <pthread.h>
#include <stdlib.h>

#include <pcap/pcap.h>

#include "pcapshare.h"

struct ewp_pcapshare {
    pthread_mutex_t lock;
    pcap_t *p;       /* NULL once closed */
    int closing;     /* the capture is done with p */
    int borrowed;    /* workers compiling with p now */
    int refs;        /* the capture's and the jobs' */
};

/* A share of p holding one reference (the capture's); NULL: out of memory */
struct ewp_pcapshare *
ewp_pcapshare_new(pcap_t *p)
{
    struct ewp_pcapshare *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->p = p;
    s->refs = 1;
    return s;
}

/* Another reference to s (for a compile job) */
struct ewp_pcapshare *
ewp_pcapshare_ref(struct ewp_pcapshare *s)
{
    pthread_mutex_lock(&s->lock);
    s->refs++;
    pthread_mutex_unlock(&s->lock);
    return s;
}

/* Drop a reference; the last one frees s. Only ewp_pcapshare_close drops
 * the capture's, and a job gives back what it borrowed before its own
 * reference goes: by the last one the pcap_t is closed. */
void
ewp_pcapshare_unref(struct ewp_pcapshare *s)
{
    int last;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) {
        (void)pthread_mutex_destroy(&s->lock);
        free(s);
    }
}

/* The capture is done with its pcap_t: closed now, or by the worker that
 * gives it back; then the capture's reference is dropped. */
void
ewp_pcapshare_close(struct ewp_pcapshare *s)
{
    pcap_t *p = NULL;

    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    if (s->borrowed == 0) {
        p = s->p;
        s->p = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (p != NULL)
        pcap_close(p);
    ewp_pcapshare_unref(s);
}

/* The pcap_t to compile against, or NULL when the capture has closed it;
 * give it back with ewp_pcapshare_giveback */
pcap_t *
ewp_pcapshare_borrow(struct ewp_pcapshare *s)
{
    pcap_t *p = NULL;

    pthread_mutex_lock(&s->lock);
    if (!s->closing && s->p != NULL) {
        s->borrowed++;
        p = s->p;
    }
    pthread_mutex_unlock(&s->lock);
    return p;
}

void
ewp_pcapshare_giveback(struct ewp_pcapshare *s)
{
    pcap_t *p = NULL;

    pthread_mutex_lock(&s->lock);
    if (--s->borrowed == 0 && s->closing) {
        p = s->p;
        s->p = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (p != NULL)
        pcap_close(p);
}
