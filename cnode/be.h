/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Big-endian integers in byte buffers (the distribution protocol's
 * lengths, flags and creations), through <endian.h>: one copy for every
 * file. The buffers need no alignment (memcpy).
 */
#ifndef EWP_BE_H
#define EWP_BE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t
ewp_get_be32(const void *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return be32toh(v);
}

static inline uint64_t
ewp_get_be64(const void *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return be64toh(v);
}

static inline void
ewp_put_be32(void *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, sizeof(v));
}

static inline void
ewp_put_be64(void *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, sizeof(v));
}

#endif /* EWP_BE_H */
