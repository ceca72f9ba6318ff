/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A connection's output queue in chunks (see outq.h). Each chunk holds
 * [off, len) of queued bytes and room up to cap; only the tail chunk is
 * appended to and only the head chunk is consumed from. An empty queue has
 * no chunk or one empty tail chunk (reused from its start).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"

void *(*ewp_outq_malloc)(size_t size) = malloc;

struct ewp_outq_chunk {
    struct ewp_outq_chunk *next; /* newer */
    size_t off;                  /* first byte not yet consumed */
    size_t len;                  /* end of committed bytes */
    size_t cap;                  /* room in data */
    char data[];
};

static struct ewp_outq_chunk *
chunk_new(struct ewp_outq *q, size_t need)
{
    struct ewp_outq_chunk *c;
    size_t cap = need > OUTQ_CHUNK ? need : OUTQ_CHUNK;

    if (q->head == NULL && q->spare == NULL && need <= OUTQ_FIRST)
        cap = OUTQ_FIRST; /* a queue starting from nothing: a tick, a reply */

    if (cap == OUTQ_CHUNK && q->spare != NULL) {
        c = q->spare;
        q->spare = c->next;
        q->nspare--;
        if (q->pool != NULL)
            q->pool->n--;
    } else {
        if (cap > SIZE_MAX - sizeof(*c))
            return NULL;
        c = ewp_outq_malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
    }
    c->next = NULL;
    c->off = c->len = 0;
    return c;
}

/* A drained chunk: kept as a spare when it is a standard one, there are
 * fewer than OUTQ_SPARES and the pool has room, else freed. */
static void
chunk_drop(struct ewp_outq *q, struct ewp_outq_chunk *c)
{
    if (c->cap == OUTQ_CHUNK && q->nspare < OUTQ_SPARES &&
        (q->pool == NULL || q->pool->n < q->pool->max)) {
        c->next = q->spare;
        q->spare = c;
        q->nspare++;
        if (q->pool != NULL)
            q->pool->n++;
    } else {
        free(c);
    }
}

void
ewp_outq_init(struct ewp_outq *q, struct ewp_outq_pool *pool)
{
    q->head = q->tail = q->spare = NULL;
    q->nspare = 0;
    q->queued = 0;
    q->pool = pool;
}

void
ewp_outq_free(struct ewp_outq *q)
{
    struct ewp_outq_chunk *c, *next;

    for (c = q->head; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    for (c = q->spare; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    if (q->pool != NULL)
        q->pool->n -= (unsigned)q->nspare;
    ewp_outq_init(q, q->pool);
}

char *
ewp_outq_reserve(struct ewp_outq *q, size_t need, size_t keep)
{
    struct ewp_outq_chunk *t = q->tail, *c;

    if (t != NULL && t->cap - t->len >= need)
        return t->data + t->len;
    if (t != NULL && t->len == t->off && t->cap >= need) {
        /* empty: the keep bytes to its start */
        memmove(t->data, t->data + t->len, keep);
        t->off = t->len = 0;
        return t->data;
    }
    if ((c = chunk_new(q, need)) == NULL)
        return NULL;
    if (keep > 0 && t != NULL) /* no tail: nothing can have been written */
        memcpy(c->data, t->data + t->len, keep);
    if (t == NULL) {
        q->head = q->tail = c;
    } else if (t->len == t->off && q->head == t) {
        /* the only chunk, empty and too small: replaced */
        chunk_drop(q, t);
        q->head = q->tail = c;
    } else if (t->len == t->off) {
        /* an empty tail behind queued chunks, which a frame built in place
         * outgrew: out of the list, not left there, counted nowhere, until
         * the socket drains to it (a growing 1 MiB batch left one of each
         * size it passed: the queue held twice its bytes) */
        struct ewp_outq_chunk *prev = q->head;

        while (prev->next != t)
            prev = prev->next;
        prev->next = c;
        q->tail = c;
        chunk_drop(q, t);
    } else {
        t->next = c;
        q->tail = c;
    }
    return c->data;
}

char *
ewp_outq_tail(const struct ewp_outq *q)
{
    return q->tail->data + q->tail->len;
}

void
ewp_outq_commit(struct ewp_outq *q, size_t n)
{
    q->tail->len += n;
    q->queued += n;
}

int
ewp_outq_iov(const struct ewp_outq *q, struct iovec *iov, int max)
{
    const struct ewp_outq_chunk *c;
    int n = 0;

    for (c = q->head; c != NULL && n < max; c = c->next) {
        if (c->len == c->off)
            continue;
        iov[n].iov_base = (void *)(c->data + c->off);
        iov[n].iov_len = c->len - c->off;
        n++;
    }
    return n;
}

void
ewp_outq_consume(struct ewp_outq *q, size_t n)
{
    struct ewp_outq_chunk *c;

    q->queued -= n;
    while ((c = q->head) != NULL) {
        size_t have = c->len - c->off;

        if (n < have) {
            c->off += n;
            return;
        }
        n -= have;
        c->off = c->len;
        if (c->next == NULL)
            break;
        q->head = c->next;
        chunk_drop(q, c);
    }
    /* the last chunk is empty: reused from its start, unless oversized */
    if (c != NULL && c->cap > OUTQ_CHUNK) {
        free(c);
        q->head = q->tail = NULL;
    } else if (c != NULL) {
        c->off = c->len = 0;
    }
}

void
ewp_outq_trim(struct ewp_outq *q)
{
    if (q->queued == 0)
        ewp_outq_free(q); /* which leaves it empty and usable */
}

size_t
ewp_outq_held(const struct ewp_outq *q)
{
    const struct ewp_outq_chunk *c;
    size_t n = 0;

    for (c = q->head; c != NULL; c = c->next)
        n += c->cap;
    for (c = q->spare; c != NULL; c = c->next)
        n += c->cap;
    return n;
}
