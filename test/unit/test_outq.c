/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * outq.c: bytes come out in the order they went in, across chunks and
 * partial consumes; queued bytes never move (the copy the contiguous
 * buffer made); a frame built in place survives a reserve that needs a new
 * chunk; a failed allocation leaves the queue as it was; drained chunks
 * are kept for reuse up to OUTQ_SPARES, the rest freed, and an idle queue
 * gives back what it held (valgrind and ASan check the rest).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "outq.h"

static int fail_alloc; /* the next allocations fail */

static void *
failing_malloc(size_t size)
{
    return fail_alloc ? NULL : malloc(size);
}

/* Appends n bytes of the pattern starting at *seq. */
static void
put(struct ewp_outq *q, size_t n, unsigned *seq)
{
    char *o = ewp_outq_reserve(q, n, 0);
    size_t i;

    CU_ASSERT_FATAL(o != NULL);
    for (i = 0; i < n; i++)
        o[i] = (char)(*seq)++;
    ewp_outq_commit(q, n);
}

/* Takes up to n bytes from the head through the iovecs, checking the
 * pattern from *seq; returns how many were taken. */
static size_t
take(struct ewp_outq *q, size_t n, unsigned *seq)
{
    struct iovec iov[8];
    int k = ewp_outq_iov(q, iov, 8), j;
    size_t done = 0, i;

    for (j = 0; j < k && done < n; j++)
        for (i = 0; i < iov[j].iov_len && done < n; i++, done++)
            CU_ASSERT_EQUAL_FATAL((unsigned char)((char *)iov[j].iov_base)[i],
                                  (unsigned char)(*seq)++);
    ewp_outq_consume(q, done);
    return done;
}

static void
test_order_across_chunks(void)
{
    struct ewp_outq q;
    unsigned in = 0, out = 0;
    size_t sizes[] = {1, 1000, OUTQ_CHUNK - 3, 7, OUTQ_CHUNK, 3 * OUTQ_CHUNK + 5, 64, 0};
    size_t total = 0, i;

    ewp_outq_init(&q, NULL);
    for (i = 0; sizes[i] != 0; i++) {
        put(&q, sizes[i], &in);
        total += sizes[i];
        CU_ASSERT_EQUAL(ewp_outq_queued(&q), total - out);
        /* a partial write now and then, of odd sizes */
        if (i % 2 == 1)
            CU_ASSERT(take(&q, 999 + i, &out) == 999 + i);
    }
    while (ewp_outq_queued(&q) > 0)
        (void)take(&q, 4097, &out);
    CU_ASSERT_EQUAL(in, out);
    CU_ASSERT_EQUAL(ewp_outq_iov(&q, NULL, 0), 0);
    ewp_outq_free(&q);
}

/* The bytes of a queued frame stay where they were while the queue grows
 * and drains around them: nothing is moved to make room. */
static void
test_queued_bytes_never_move(void)
{
    struct ewp_outq q;
    struct iovec iov[1];
    unsigned in = 0, out = 0;
    const char *first;
    int i;

    ewp_outq_init(&q, NULL);
    put(&q, 100, &in);
    CU_ASSERT_FATAL(ewp_outq_iov(&q, iov, 1) == 1);
    first = iov[0].iov_base;
    (void)take(&q, 60, &out);       /* the head moves on by 60 */
    for (i = 0; i < 40; i++)        /* ten chunks' worth queued behind it */
        put(&q, OUTQ_CHUNK / 4 - 1, &in);
    CU_ASSERT_FATAL(ewp_outq_iov(&q, iov, 1) == 1);
    CU_ASSERT_PTR_EQUAL(iov[0].iov_base, first + 60);
    /* the rest of the first chunk (OUTQ_FIRST: it started the queue) */
    CU_ASSERT_EQUAL(iov[0].iov_len, 40 + (OUTQ_FIRST - 100) / (OUTQ_CHUNK / 4 - 1) *
                                             (OUTQ_CHUNK / 4 - 1));
    while (ewp_outq_queued(&q) > 0)
        (void)take(&q, 65536, &out);
    CU_ASSERT_EQUAL(in, out);
    ewp_outq_free(&q);
}

/* A frame being built (keep bytes written, not committed) is carried to
 * the new chunk a larger reserve needs, and nothing else is. */
static void
test_frame_in_place_carried(void)
{
    struct ewp_outq q;
    unsigned in = 0, out = 0;
    char *o;
    size_t i;

    ewp_outq_init(&q, NULL);
    put(&q, OUTQ_CHUNK - 50, &in);
    o = ewp_outq_reserve(&q, 40, 0);
    CU_ASSERT_FATAL(o != NULL);
    for (i = 0; i < 40; i++)
        o[i] = (char)(in + i);
    o = ewp_outq_reserve(&q, 40 + 5000, 40); /* no longer fits the chunk */
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT_PTR_EQUAL(o, ewp_outq_tail(&q));
    for (i = 40; i < 5040; i++)
        o[i] = (char)(in + i);
    for (i = 0; i < 5040; i++)
        CU_ASSERT_EQUAL_FATAL((unsigned char)o[i], (unsigned char)(in + i));
    ewp_outq_commit(&q, 5040);
    in += 5040;
    CU_ASSERT_EQUAL(ewp_outq_queued(&q), OUTQ_CHUNK - 50 + 5040);
    while (ewp_outq_queued(&q) > 0)
        (void)take(&q, 7777, &out);
    CU_ASSERT_EQUAL(in, out);
    ewp_outq_free(&q);
}

/* No memory: NULL, the queue and a frame being built unchanged; then the
 * same reserve succeeds. A size that cannot be allocated at all: NULL. */
static void
test_alloc_failure(void)
{
    struct ewp_outq q;
    unsigned in = 0, out = 0;
    char *o, *again;

    ewp_outq_malloc = failing_malloc;
    ewp_outq_init(&q, NULL);
    fail_alloc = 1;
    CU_ASSERT(ewp_outq_reserve(&q, 10, 0) == NULL);
    CU_ASSERT_EQUAL(ewp_outq_queued(&q), 0);
    fail_alloc = 0;
    put(&q, OUTQ_CHUNK - 8, &in);
    o = ewp_outq_reserve(&q, 8, 0);
    CU_ASSERT_FATAL(o != NULL);
    memcpy(o, "abcdefgh", 8);
    fail_alloc = 1;
    CU_ASSERT(ewp_outq_reserve(&q, 100, 8) == NULL);
    CU_ASSERT_PTR_EQUAL(ewp_outq_tail(&q), o);
    CU_ASSERT(memcmp(o, "abcdefgh", 8) == 0);
    CU_ASSERT_EQUAL(ewp_outq_queued(&q), OUTQ_CHUNK - 8);
    fail_alloc = 0;
    again = ewp_outq_reserve(&q, 100, 8);
    CU_ASSERT_FATAL(again != NULL);
    CU_ASSERT(memcmp(again, "abcdefgh", 8) == 0);
    CU_ASSERT(ewp_outq_reserve(&q, SIZE_MAX - 4, 0) == NULL);
    CU_ASSERT(take(&q, OUTQ_CHUNK, &out) == OUTQ_CHUNK - 8);
    CU_ASSERT_EQUAL(ewp_outq_queued(&q), 0);
    ewp_outq_malloc = malloc;
    ewp_outq_free(&q);
}

/* A frame larger than a chunk gets a chunk of its size, freed when it is
 * drained: an idle queue keeps no large buffer. */
static void
test_large_frame_freed(void)
{
    struct ewp_outq q;
    unsigned in = 0, out = 0;
    struct iovec iov[2];

    ewp_outq_init(&q, NULL);
    put(&q, 4 * OUTQ_CHUNK, &in);
    CU_ASSERT_EQUAL(ewp_outq_iov(&q, iov, 2), 1);
    CU_ASSERT_EQUAL(iov[0].iov_len, 4 * OUTQ_CHUNK);
    while (ewp_outq_queued(&q) > 0)
        (void)take(&q, OUTQ_CHUNK + 1, &out);
    CU_ASSERT_PTR_NULL(q.head);
    CU_ASSERT_PTR_NULL(q.tail);
    /* a reserve that says it keeps bytes, on a queue with no chunk left
     * (dist.c once passed the 4 bytes of a length not yet written) */
    CU_ASSERT_PTR_NOT_NULL(ewp_outq_reserve(&q, 100, 4));
    put(&q, 10, &in);
    CU_ASSERT(take(&q, 10, &out) == 10);
    CU_ASSERT_PTR_NOT_NULL(q.tail); /* a standard chunk is kept for reuse */
    ewp_outq_free(&q);
}

/* An idle queue gives its chunks back (dist.c trims a peer's on an idle
 * tick); a queue that starts from nothing starts small, and grows into
 * standard chunks; nothing is given back while bytes are queued */
static void
test_idle_queue_trimmed(void)
{
    struct ewp_outq q;
    unsigned in = 0, out = 0;
    int i;

    ewp_outq_init(&q, NULL);
    CU_ASSERT_EQUAL(ewp_outq_held(&q), 0);
    put(&q, 4, &in); /* a tick */
    CU_ASSERT_EQUAL(ewp_outq_held(&q), OUTQ_FIRST);
    for (i = 0; i < 12; i++) /* a burst, in standard chunks */
        put(&q, OUTQ_CHUNK / 4 - 1, &in);
    CU_ASSERT(ewp_outq_held(&q) >= 3 * OUTQ_CHUNK);
    ewp_outq_trim(&q); /* queued: kept */
    CU_ASSERT(ewp_outq_held(&q) >= 3 * OUTQ_CHUNK);
    CU_ASSERT(take(&q, OUTQ_CHUNK, &out) == OUTQ_CHUNK);
    while (ewp_outq_queued(&q) > 0)
        (void)take(&q, OUTQ_CHUNK, &out);
    CU_ASSERT_EQUAL(in, out);
    CU_ASSERT(ewp_outq_held(&q) >= OUTQ_CHUNK); /* the last chunk and the spares */
    ewp_outq_trim(&q);
    CU_ASSERT_EQUAL(ewp_outq_held(&q), 0);
    CU_ASSERT_PTR_NULL(q.head);
    CU_ASSERT_PTR_NULL(q.tail);
    put(&q, 4, &in);
    CU_ASSERT_EQUAL(ewp_outq_held(&q), OUTQ_FIRST);
    CU_ASSERT(take(&q, 4, &out) == 4);
    CU_ASSERT_EQUAL(in, out);
    ewp_outq_free(&q);
}

/* A queue that rises and falls by a few MiB, as in a flood: the chunks
 * drained are taken again, no allocation after the first rise; past
 * OUTQ_SPARES of them the rest are freed */
static unsigned long allocs;

static void *
counting_malloc(size_t size)
{
    allocs++;
    return malloc(size);
}

static void
test_spares_reused(void)
{
    struct ewp_outq q;
    unsigned in = 0, out = 0;
    int round, i;

    ewp_outq_malloc = counting_malloc;
    ewp_outq_init(&q, NULL);
    for (round = 0; round < 3; round++) {
        if (round == 1)
            allocs = 0;
        for (i = 0; i < 4 * OUTQ_SPARES / 2; i++) /* OUTQ_SPARES chunks */
            put(&q, OUTQ_CHUNK / 2 - 1, &in);
        while (ewp_outq_queued(&q) > 0)
            (void)take(&q, OUTQ_CHUNK, &out);
    }
    CU_ASSERT_EQUAL(allocs, 0);
    CU_ASSERT_EQUAL(in, out);
    for (i = 0; i < 8 * OUTQ_SPARES; i++) /* a higher rise: 4 x OUTQ_SPARES chunks */
        put(&q, OUTQ_CHUNK / 2 - 1, &in);
    while (ewp_outq_queued(&q) > 0)
        (void)take(&q, OUTQ_CHUNK, &out);
    CU_ASSERT(q.nspare <= OUTQ_SPARES);
    CU_ASSERT(ewp_outq_held(&q) <= (OUTQ_SPARES + 1) * OUTQ_CHUNK);
    ewp_outq_malloc = malloc;
    ewp_outq_trim(&q);
    CU_ASSERT_EQUAL(ewp_outq_held(&q), 0);
    ewp_outq_free(&q);
}

/* Rises by OUTQ_SPARES + 1 chunks and falls to nothing queued (the last
 * stays as the tail) */
static void
rise_and_fall(struct ewp_outq *q, unsigned *in, unsigned *out)
{
    int i;

    for (i = 0; i < 2 * (OUTQ_SPARES + 1); i++)
        put(q, OUTQ_CHUNK / 2 - 1, in);
    while (ewp_outq_queued(q) > 0)
        (void)take(q, OUTQ_CHUNK, out);
}

/* Two queues in a pool of OUTQ_SPARES + 2: the first keeps OUTQ_SPARES
 * spares, the second the 2 left; freeing the first gives its share back
 * to the pool, and the second then keeps OUTQ_SPARES */
static void
test_spares_share_a_pool(void)
{
    struct ewp_outq_pool pool = {.n = 0, .max = OUTQ_SPARES + 2};
    struct ewp_outq a, b;
    unsigned in = 0, out = 0;

    ewp_outq_init(&a, &pool);
    ewp_outq_init(&b, &pool);
    rise_and_fall(&a, &in, &out);
    CU_ASSERT_EQUAL(a.nspare, OUTQ_SPARES);
    CU_ASSERT_EQUAL(pool.n, OUTQ_SPARES);
    rise_and_fall(&b, &in, &out);
    CU_ASSERT_EQUAL(b.nspare, 2);
    CU_ASSERT_EQUAL(pool.n, OUTQ_SPARES + 2);
    rise_and_fall(&b, &in, &out); /* its 2 spares taken and given back */
    CU_ASSERT_EQUAL(b.nspare, 2);
    CU_ASSERT_EQUAL(pool.n, OUTQ_SPARES + 2);
    ewp_outq_trim(&a);
    CU_ASSERT_EQUAL(pool.n, 2);
    rise_and_fall(&b, &in, &out);
    CU_ASSERT_EQUAL(b.nspare, OUTQ_SPARES);
    CU_ASSERT_EQUAL(pool.n, OUTQ_SPARES);
    CU_ASSERT_EQUAL(in, out);
    ewp_outq_free(&b);
    CU_ASSERT_EQUAL(pool.n, 0);
    ewp_outq_free(&a);
    CU_ASSERT_EQUAL(pool.n, 0);
}

CU_TestInfo ewp_outq_tests[] = {
    {"bytes in order across chunks and partial writes", test_order_across_chunks},
    {"queued bytes are never moved", test_queued_bytes_never_move},
    {"a frame built in place is carried to a new chunk", test_frame_in_place_carried},
    {"a failed allocation changes nothing", test_alloc_failure},
    {"a large frame's chunk is freed once drained", test_large_frame_freed},
    {"an idle queue gives its chunks back, and starts small", test_idle_queue_trimmed},
    {"a queue that rises and falls reuses its chunks", test_spares_reused},
    {"queues in a pool keep its spares at most, together", test_spares_share_a_pool},
    CU_TEST_INFO_NULL,
};
