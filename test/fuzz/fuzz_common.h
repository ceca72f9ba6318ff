/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Helpers shared by the libFuzzer harnesses in test/fuzz/. libei.a is not
 * built with the sanitizers, so ASan cannot see ei_decode_* read past the
 * end of a buffer. Input handed to ei is therefore copied to the very end
 * of a mapping whose next page is PROT_NONE: reading one byte past it is a
 * SEGV, which libFuzzer reports as a crash. The bytes in front of the copy
 * are ASan-poisoned, so instrumented code reading before the start is
 * caught too. Header-only: a harness of one file has the state below to
 * itself; one of several files (fuzz_dispatch*.c) defines FUZZ_COMMON_SHARED
 * before including this in each, and defines the state in one of them.
 */
#ifndef EWP_FUZZ_COMMON_H
#define EWP_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sanitizer/asan_interface.h>

#define FUZZ_GUARD_CAP (1u << 20) /* inputs larger than this are not guarded */

#ifdef FUZZ_COMMON_SHARED
#define FUZZ_COMMON_STATE extern
#else
#define FUZZ_COMMON_STATE static
#endif

/* Called by FUZZ_CHECK before it aborts, when set (fuzz_dispatch.c saves
 * the inputs that built up its state). */
FUZZ_COMMON_STATE void (*fuzz_failure_hook)(void);

/* Abort with a message: libFuzzer saves the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                           \
    do {                                                                \
        if (!(cond)) {                                                  \
            (void)fprintf(stderr, "fuzz check failed: %s (%s:%d): ",   \
                          #cond, __FILE__, __LINE__);                   \
            (void)fprintf(stderr, __VA_ARGS__);                         \
            (void)fputc('\n', stderr);                                  \
            if (fuzz_failure_hook != NULL)                              \
                fuzz_failure_hook();                                    \
            abort();                                                    \
        }                                                               \
    } while (0)

FUZZ_COMMON_STATE unsigned char *fuzz_guard_base; /* FUZZ_GUARD_CAP bytes, then a PROT_NONE page */
FUZZ_COMMON_STATE size_t fuzz_guard_open;         /* bytes at the end currently unpoisoned */

/* A copy of data[0..len) that ends where an unreadable page begins, or
 * data itself when it is too large (then only ASan's redzones guard it). */
static inline const char *
fuzz_guard_copy(const void *data, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *dst;

    if (fuzz_guard_base == NULL) {
        void *m = mmap(NULL, FUZZ_GUARD_CAP + (size_t)page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (m == MAP_FAILED || mprotect((unsigned char *)m + FUZZ_GUARD_CAP, (size_t)page,
                                        PROT_NONE) < 0) {
            perror("fuzz_guard_copy: mmap");
            abort();
        }
        fuzz_guard_base = m;
        ASAN_POISON_MEMORY_REGION(fuzz_guard_base, FUZZ_GUARD_CAP);
    }
    if (len > FUZZ_GUARD_CAP)
        return data;
    ASAN_POISON_MEMORY_REGION(fuzz_guard_base + FUZZ_GUARD_CAP - fuzz_guard_open,
                              fuzz_guard_open);
    dst = fuzz_guard_base + FUZZ_GUARD_CAP - len;
    ASAN_UNPOISON_MEMORY_REGION(dst, len);
    fuzz_guard_open = len;
    if (len > 0)
        memcpy(dst, data, len);
    return (const char *)dst;
}

/* Forget the last copy: any pointer into it kept by the code under test
 * now fails on use (use-after-poison). */
static inline void
fuzz_guard_release(void)
{
    if (fuzz_guard_base != NULL && fuzz_guard_open > 0) {
        ASAN_POISON_MEMORY_REGION(fuzz_guard_base + FUZZ_GUARD_CAP - fuzz_guard_open,
                                  fuzz_guard_open);
        fuzz_guard_open = 0;
    }
}

/* Read every byte of p[0..len): ASan checks the range. */
static inline void
fuzz_touch(const void *p, size_t len)
{
    static volatile unsigned char sink;
    const unsigned char *b = p;
    unsigned char acc = 0;
    size_t n;

    for (n = 0; n < len; n++)
        acc ^= b[n];
    sink = acc;
    (void)sink;
}

#endif /* EWP_FUZZ_COMMON_H */
