/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A connection's output queue: bytes appended at the tail, written from
 * the head, in a list of chunks (OUTQ_CHUNK each, or one frame's size when
 * a frame is larger). Bytes once queued never move: a queue that the
 * socket drains slower than it fills costs no copy (the contiguous buffer
 * this replaces moved everything queued, up to EWP_OUT_HIGH, each time its
 * tail reached its end). A frame is built in place at the tail: reserve
 * room, write, commit; a reserve that does not fit the last chunk moves
 * only the frame's bytes written so far (keep) to a new chunk.
 *
 * It does no I/O: ewp_outq_iov describes the head for writev/sendmsg and
 * ewp_outq_consume drops what the socket took. No logging, no libev.
 */
#ifndef EWP_OUTQ_H
#define EWP_OUTQ_H

#include <stddef.h>
#include <sys/uio.h>

#define OUTQ_CHUNK (256u << 10) /* bytes per chunk, unless a frame needs more */
#define OUTQ_FIRST (4u << 10)   /* the first chunk of a queue that holds none */
#define OUTQ_SPARES 8           /* drained OUTQ_CHUNK chunks a queue keeps */

struct ewp_outq_chunk;

/* The spare chunks of all the queues that share it, counted against one
 * bound: a queue keeps a drained chunk only while n < max. Without it a
 * daemon with many peers that each rose and fell would hold OUTQ_SPARES
 * chunks per peer outside every packet budget. */
struct ewp_outq_pool {
    unsigned n;   /* spare chunks held by the queues sharing it */
    unsigned max; /* most spare chunks they may hold together */
};

struct ewp_outq {
    struct ewp_outq_chunk *head;  /* oldest chunk, written from */
    struct ewp_outq_chunk *tail;  /* newest, appended to */
    struct ewp_outq_chunk *spare; /* drained OUTQ_CHUNK chunks kept for reuse */
    int nspare;                   /* ... how many (at most OUTQ_SPARES) */
    size_t queued;                /* committed bytes not yet consumed */
    struct ewp_outq_pool *pool;   /* spares bound shared with other queues, or NULL */
};

/* The allocator of chunks: malloc; the unit tests put one that fails. */
extern void *(*ewp_outq_malloc)(size_t size);

/* An empty queue; pool (NULL: none) bounds its spares with other queues'. */
void ewp_outq_init(struct ewp_outq *q, struct ewp_outq_pool *pool);
/* Every chunk freed; the queue stays empty and usable, in its pool. */
void ewp_outq_free(struct ewp_outq *q);

/* Room for need bytes at the tail, contiguous, of which the first keep
 * (keep <= need) are already written there and uncommitted (a frame being
 * built): they are carried along if the room has to be found in a new
 * chunk. Returns the tail (where those keep bytes start), or NULL when
 * memory is short (the queue is unchanged, the keep bytes still where
 * ewp_outq_tail said). */
char *ewp_outq_reserve(struct ewp_outq *q, size_t need, size_t keep);

/* The tail: where the next bytes go (valid after a successful reserve). */
char *ewp_outq_tail(const struct ewp_outq *q);

/* Queue n bytes written at the tail (n <= what the last reserve gave). */
void ewp_outq_commit(struct ewp_outq *q, size_t n);

/* Up to max iovecs describing the queued bytes from the head, in order;
 * returns how many were filled (0 when nothing is queued). */
int ewp_outq_iov(const struct ewp_outq *q, struct iovec *iov, int max);

/* Drop n bytes from the head (n <= queued): the socket took them. Chunks
 * emptied are kept for reuse, up to OUTQ_SPARES of OUTQ_CHUNK and while
 * the pool has room (a queue
 * that rises and falls by a few MiB in a flood would otherwise give them
 * to malloc, which gives them to the kernel, and fault them in again:
 * page faults were 7% of ewpcapd's CPU there), the others freed; an
 * emptied queue keeps no chunk larger than OUTQ_CHUNK. */
void ewp_outq_consume(struct ewp_outq *q, size_t n);

/* Nothing queued: give back every chunk, the spares too (an idle peer holds
 * no output memory; its next frame starts an OUTQ_FIRST chunk). Nothing
 * is done while bytes are queued. Not between a reserve and its commit. */
void ewp_outq_trim(struct ewp_outq *q);

/* The bytes of the chunks held (the spares included) */
size_t ewp_outq_held(const struct ewp_outq *q);

static inline size_t
ewp_outq_queued(const struct ewp_outq *q)
{
    return q->queued;
}

#endif
