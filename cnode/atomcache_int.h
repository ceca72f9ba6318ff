/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Private to atomcache_in.c (incoming frames) and atomcache_out.c (our
 * frames and templates); see atomcache.h. The distribution header, after the
 * external term format's "Distribution Header":
 *
 *   131, 68, N, Flags:(N / 2 + 1 bytes, none when N = 0), N refs
 *
 * Flags holds a half byte per ref, the low half of a byte first: bit 3
 * NewCacheEntryFlag, bits 0-2 SegmentIndex; the half byte after the last
 * ref has LongAtoms in bit 0. A ref is InternalIndex:8 (the entry is
 * SegmentIndex * 256 + InternalIndex) and, when new, the atom's length
 * (2 bytes with LongAtoms, else 1) and its UTF-8 text. In the terms that
 * follow, ATOM_CACHE_REF (82, I) names the atom of the header's I-th ref.
 *
 * Here: the header's bytes, a cache entry, and the flat walk over the
 * terms' tokens that both directions use (defined in atomcache_in.c).
 */
#ifndef EWP_ATOMCACHE_INT_H
#define EWP_ATOMCACHE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "atomcache.h"

#define EWP_AC_VERSION 131        /* external term format version byte */
#define EWP_AC_PASS_THROUGH 112   /* 'p' */
#define EWP_AC_LONG_ATOMS 1       /* in the half byte after the last ref */
#define EWP_AC_NEW_ENTRY 8        /* NewCacheEntryFlag of a ref's half byte */

struct ewp_ac_entry {
    char *text;               /* owned; NULL: never set */
    uint16_t len;             /* bytes */
};

/* One term's token in the flat walk */
struct ewp_ac_tok {
    size_t head;              /* bytes up to an embedded atom, or the whole token */
    int embedded;             /* a node atom follows head (pid, port, reference) */
    size_t tail;              /* fixed bytes after that atom */
    size_t children;          /* terms that follow as its elements */
};

/* the term walk and the entries (atomcache_in.c) */
size_t ewp_ac_atom_at(const unsigned char *b, size_t len, size_t i, int *ref);
int ewp_ac_token(const unsigned char *b, size_t len, size_t i, struct ewp_ac_tok *t);
int ewp_ac_set_entry(struct ewp_ac_entry *e, const unsigned char *text, size_t len);
void ewp_ac_entries_free(struct ewp_ac_entry *e);

/* Bytes of the flags of n > 0 refs: a half byte each and LongAtoms' */
static inline size_t
ewp_ac_flag_bytes(int n)
{
    return (size_t)n / 2 + 1;
}

#endif /* EWP_ATOMCACHE_INT_H */
