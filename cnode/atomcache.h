/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The distribution header atom cache (DFLAG_DIST_HDR_ATOM_CACHE). Once
 * both ends offer the flag, every frame is
 *
 *   131, 68, NumberOfAtomCacheRefs, Flags, AtomCacheRefs, Control, [Message]
 *
 * with no pass-through byte and no version byte before the two terms, and
 * the terms may name an atom as ATOM_CACHE_REF (82, Index into the
 * header's refs). Incoming (ewp_ac_in_frame): the header is parsed against
 * the connection's cache and the frame rewritten into the pass-through
 * form ('p', 131, Control, [131, Message]) with every reference spelled
 * out, so the layers above read it as before. Outgoing: ewp_ac_plain turns
 * any pass-through frame into a header of no refs; a template
 * (ewp_ac_tmpl_*) is a packet message's fixed head with its atoms as
 * references, whose header carries new cache entries the first time and
 * only indexes afterwards. Pure: no I/O.
 */
#ifndef EWP_ATOMCACHE_H
#define EWP_ATOMCACHE_H

#include <stddef.h>
#include <stdint.h>

#define EWP_DIST_HEADER 68       /* 'D' */
#define EWP_ATOM_CACHE_REF 82    /* 'R' */
#define EWP_AC_SIZE 2048         /* entries: SegmentIndex * 256 + InternalIndex */
#define EWP_AC_ATOM_MAX 1020     /* bytes of an atom: 255 characters of UTF-8 */
#define EWP_AC_TMPL_ATOMS 8      /* atoms a template refers to */
/* An incoming frame rewritten takes at most EWP_AC_GROWTH times its own
 * bytes and EWP_AC_SLACK more (ewp_ac_in_max): a 2-byte reference spells
 * out an atom of up to 1023, and the work above the rewrite is per byte of
 * it, so without this bound a peer would buy 500 times its bytes in our
 * time (a 64 KB frame of references rewritten to 32 MB). */
#define EWP_AC_GROWTH 16
#define EWP_AC_SLACK 4096
#define EWP_AC_TMPL_HDR_OLD (3 + EWP_AC_TMPL_ATOMS / 2 + 1 + EWP_AC_TMPL_ATOMS)

/* A growable byte buffer (the rewritten incoming frame) */
struct ewp_ac_buf {
    char *b;           /* the bytes */
    size_t len;        /* used */
    size_t cap;        /* allocated */
};

struct ewp_ac_in;      /* what the peer told us: index -> atom text */
struct ewp_ac_out;     /* what we told the peer */

/* One atom of a template */
struct ewp_ac_atom {
    char *text;        /* its UTF-8 text (owned) */
    uint16_t len;      /* bytes */
    uint16_t slot;     /* cache entry it goes to */
};

/* A frame head whose atoms go as cache references */
struct ewp_ac_tmpl {
    struct ewp_ac_atom atoms[EWP_AC_TMPL_ATOMS]; /* header ref i = atoms[i] */
    int n;                                 /* how many */
    char *body;                            /* Control and the message head, refs inside */
    size_t body_len;                       /* its length */
    unsigned char old_hdr[EWP_AC_TMPL_HDR_OLD]; /* the header when the peer has them all */
    size_t old_len;                        /* its length */
    size_t hdr_max;                        /* the longest header (all new) */
    uint64_t epoch;                        /* the cache's epoch after our last header */
};

struct ewp_ac_in *ewp_ac_in_new(void);
void ewp_ac_in_free(struct ewp_ac_in *c);
int ewp_ac_in_frame(struct ewp_ac_in *c, const char *buf, size_t len, size_t max,
                    struct ewp_ac_buf *out);
size_t ewp_ac_in_max(size_t len, size_t cap);
void ewp_ac_buf_free(struct ewp_ac_buf *b);

struct ewp_ac_out *ewp_ac_out_new(void);
void ewp_ac_out_free(struct ewp_ac_out *c);
long ewp_ac_plain(char *dst, const char *body, size_t len);

int ewp_ac_tmpl_make(struct ewp_ac_tmpl *t, const char *body, size_t len);
size_t ewp_ac_tmpl_put(struct ewp_ac_out *c, struct ewp_ac_tmpl *t, char *dst);
void ewp_ac_tmpl_free(struct ewp_ac_tmpl *t);

#endif /* EWP_ATOMCACHE_H */
