/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Incoming frames (see atomcache.h and, for the header's bytes,
 * atomcache_int.h): the peer's header read against the connection's cache
 * and the frame rewritten into the pass-through form. Also the flat term
 * walk (ewp_ac_atom_at, ewp_ac_token), ewp_ac_set_entry and
 * ewp_ac_entries_free, which atomcache_out.c shares.
 *
 * They come from the peer: every length and index is checked
 * against the frame, a reference to an entry never set or to a ref the
 * header does not have is a bad frame (the caller drops the peer), and the
 * only allocations are the entries' texts (at most EWP_AC_SIZE of at most
 * EWP_AC_ATOM_MAX bytes) and the rewritten frame, bounded by max (dist.c
 * passes ewp_ac_in_max: a few times the frame, not what its references
 * could spell out). The terms
 * are walked flat, token by token, counting the terms still owed to find
 * where Control ends: no recursion, whatever the nesting. A token we do not
 * know (a fun, a truncated term) ends the walk and the rest is copied as
 * it is: the term check above (decode_check.c) refuses it there, as it
 * would have without a header.
 */
#include <stdlib.h>
#include <string.h>

#include <ei.h>

#include "atomcache.h"
#include "atomcache_int.h"
#include "be.h"

#define REFS_MAX 255          /* refs in one header: N is one byte */

struct ewp_ac_in {
    struct ewp_ac_entry e[EWP_AC_SIZE]; /* set by the peer's new entries */
};

static int put(struct ewp_ac_buf *o, const void *p, size_t n, size_t max);
static int put_atom(struct ewp_ac_buf *o, const struct ewp_ac_entry *e, size_t max);
static unsigned half(const unsigned char *flags, int k);

struct ewp_ac_in *
ewp_ac_in_new(void)
{
    return calloc(1, sizeof(struct ewp_ac_in));
}

void
ewp_ac_in_free(struct ewp_ac_in *c)
{
    if (c == NULL)
        return;
    ewp_ac_entries_free(c->e);
    free(c);
}

void
ewp_ac_buf_free(struct ewp_ac_buf *b)
{
    free(b->b);
    b->b = NULL;
    b->len = b->cap = 0;
}

/*
 * A frame body with a distribution header -> out, the same frame as
 * 'p', 131, Control, [131, Message] with every reference spelled out
 * (SMALL_ATOM_UTF8_EXT, or ATOM_UTF8_EXT past 255 bytes). The header's
 * new entries go into c. out is reused (its bytes replaced) and grows to
 * at most max bytes.
 * Returns 0, or -1 for a bad frame: no header, a header cut short, an
 * atom longer than EWP_AC_ATOM_MAX, a reference to an entry never set, an
 * entry twice in one header, a term referring to a ref the header lacks,
 * out of memory or past max. Entries set before the failure stay set.
 */
int
ewp_ac_in_frame(struct ewp_ac_in *c, const char *buf, size_t len, size_t max,
                struct ewp_ac_buf *out)
{
    const unsigned char *b = (const unsigned char *)buf;
    const unsigned char *flags = NULL;
    unsigned char seen[EWP_AC_SIZE / 8];
    uint16_t refs[REFS_MAX];
    size_t i = 3, pending = 1;
    int n, k, long_atoms = 0, in_msg = 0;

    out->len = 0;
    if (len < 3 || b[0] != EWP_AC_VERSION || b[1] != EWP_DIST_HEADER)
        return -1;
    n = b[2];
    memset(seen, 0, sizeof(seen));
    if (n > 0) {
        if (ewp_ac_flag_bytes(n) > len - i)
            return -1;
        flags = b + i;
        i += ewp_ac_flag_bytes(n);
        long_atoms = (half(flags, n) & EWP_AC_LONG_ATOMS) != 0;
    }
    for (k = 0; k < n; k++) {
        unsigned h = half(flags, k);
        uint16_t ix;

        if (i >= len)
            return -1;
        ix = (uint16_t)(((h & 7u) << 8) | b[i++]);
        if (seen[ix / 8] & (1u << (ix % 8)))
            return -1; /* erts never names an entry twice: a later one would rename it */
        seen[ix / 8] |= (unsigned char)(1u << (ix % 8));
        if (h & EWP_AC_NEW_ENTRY) {
            size_t tl;

            if ((long_atoms ? 2u : 1u) > len - i)
                return -1;
            tl = long_atoms ? ((size_t)b[i] << 8 | b[i + 1]) : b[i];
            i += long_atoms ? 2 : 1;
            if (tl > EWP_AC_ATOM_MAX || tl > len - i)
                return -1;
            if (ewp_ac_set_entry(&c->e[ix], b + i, tl) < 0)
                return -1;
            i += tl;
        } else if (c->e[ix].text == NULL) {
            return -1;
        }
        refs[k] = ix;
    }

    if (put(out, "p\203", 2, max) < 0)
        return -1;
    while (i < len) {
        struct ewp_ac_tok t;
        size_t a;
        int ref;

        if (pending == 0) { /* Control is over: the message */
            if (in_msg)
                break;
            in_msg = 1;
            pending = 1;
            if (put(out, "\203", 1, max) < 0)
                return -1;
        }
        if ((a = ewp_ac_atom_at(b, len, i, &ref)) > 0) {
            if (ref >= n)
                return -1;
            if ((ref < 0 ? put(out, b + i, a, max) : put_atom(out, &c->e[refs[ref]], max)) < 0)
                return -1;
            i += a;
            pending--;
            continue;
        }
        if (ewp_ac_token(b, len, i, &t) < 0)
            break;
        if (t.embedded) {
            a = ewp_ac_atom_at(b, len, i + t.head, &ref);
            if (a == 0 || t.tail > len - i - t.head - a)
                break;
            if (ref >= n)
                return -1;
            if (put(out, b + i, t.head, max) < 0 ||
                (ref < 0 ? put(out, b + i + t.head, a, max)
                         : put_atom(out, &c->e[refs[ref]], max)) < 0 ||
                put(out, b + i + t.head + a, t.tail, max) < 0)
                return -1;
            i += t.head + a + t.tail;
        } else {
            if (put(out, b + i, t.head, max) < 0)
                return -1;
            i += t.head;
        }
        pending = pending - 1 + t.children;
    }
    /* what the walk did not take, as it is (see the top of this file) */
    return put(out, b + i, len - i, max);
}

/* The most a frame of len bytes may be rewritten to (EWP_AC_GROWTH, in
 * atomcache.h), and never past cap */
size_t
ewp_ac_in_max(size_t len, size_t cap)
{
    if (len > (cap - EWP_AC_SLACK) / EWP_AC_GROWTH)
        return cap;
    return len * EWP_AC_GROWTH + EWP_AC_SLACK;
}

/* ---- the term walk, shared with atomcache_out.c ---- */

/* An atom at b[i]: returns its size (0: no atom there, or it runs past
 * len), *ref the ATOM_CACHE_REF's index or -1 for an atom spelled out. */
size_t
ewp_ac_atom_at(const unsigned char *b, size_t len, size_t i, int *ref)
{
    size_t n;

    *ref = -1;
    if (i >= len)
        return 0;
    switch (b[i]) {
    case EWP_ATOM_CACHE_REF:
        if (len - i < 2)
            return 0;
        *ref = b[i + 1];
        return 2;
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
        if (len - i < 3)
            return 0;
        n = (size_t)b[i + 1] << 8 | b[i + 2];
        return n > len - i - 3 ? 0 : 3 + n;
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        if (len - i < 2)
            return 0;
        n = b[i + 1];
        return n > len - i - 2 ? 0 : 2 + n;
    default:
        return 0;
    }
}

/* Any other term's token at b[i]. Returns 0, or -1 for a tag we do not
 * walk or a token that runs past len. */
int
ewp_ac_token(const unsigned char *b, size_t len, size_t i, struct ewp_ac_tok *t)
{
    size_t left = len - i, n;

    memset(t, 0, sizeof(*t));
    if (left < 1)
        return -1;
    switch (b[i]) {
    case ERL_SMALL_INTEGER_EXT:
        t->head = 2;
        break;
    case ERL_INTEGER_EXT:
        t->head = 5;
        break;
    case NEW_FLOAT_EXT:
        t->head = 9;
        break;
    case ERL_NIL_EXT:
        t->head = 1;
        break;
    case ERL_SMALL_TUPLE_EXT:
        if (left < 2)
            return -1;
        t->head = 2;
        t->children = b[i + 1];
        break;
    case ERL_LARGE_TUPLE_EXT:
    case ERL_LIST_EXT:
    case ERL_MAP_EXT:
        if (left < 5)
            return -1;
        t->head = 5;
        n = ewp_get_be32(b + i + 1);
        t->children = b[i] == ERL_LIST_EXT ? n + 1 : b[i] == ERL_MAP_EXT ? 2 * n : n;
        if (t->children > left)
            return -1; /* each element takes a byte at least */
        break;
    case ERL_STRING_EXT:
        if (left < 3)
            return -1;
        t->head = 3 + ((size_t)b[i + 1] << 8 | b[i + 2]);
        break;
    case ERL_BINARY_EXT:
        if (left < 5)
            return -1;
        t->head = 5 + (size_t)ewp_get_be32(b + i + 1);
        break;
    case ERL_BIT_BINARY_EXT:
        if (left < 6)
            return -1;
        t->head = 6 + (size_t)ewp_get_be32(b + i + 1);
        break;
    case ERL_SMALL_BIG_EXT:
        if (left < 3)
            return -1;
        t->head = 3 + (size_t)b[i + 1];
        break;
    case ERL_LARGE_BIG_EXT:
        if (left < 6)
            return -1;
        t->head = 6 + (size_t)ewp_get_be32(b + i + 1);
        break;
    case ERL_PID_EXT:      /* atom, ID:4, Serial:4, Creation:1 */
    case ERL_NEW_PID_EXT:  /* atom, ID:4, Serial:4, Creation:4 */
        t->head = 1;
        t->embedded = 1;
        t->tail = b[i] == ERL_PID_EXT ? 9 : 12;
        break;
    case ERL_PORT_EXT:     /* atom, ID:4, Creation:1 */
    case ERL_NEW_PORT_EXT: /* atom, ID:4, Creation:4 */
    case ERL_V4_PORT_EXT:  /* atom, ID:8, Creation:4 */
        t->head = 1;
        t->embedded = 1;
        t->tail = b[i] == ERL_PORT_EXT ? 5 : b[i] == ERL_NEW_PORT_EXT ? 8 : 12;
        break;
    case ERL_REFERENCE_EXT: /* atom, ID:4, Creation:1 */
        t->head = 1;
        t->embedded = 1;
        t->tail = 5;
        break;
    case ERL_NEW_REFERENCE_EXT:   /* Len:2, atom, Creation:1, ID:4*Len */
    case ERL_NEWER_REFERENCE_EXT: /* Len:2, atom, Creation:4, ID:4*Len */
        if (left < 3)
            return -1;
        n = (size_t)b[i + 1] << 8 | b[i + 2];
        t->head = 3;
        t->embedded = 1;
        t->tail = (b[i] == ERL_NEW_REFERENCE_EXT ? 1 : 4) + 4 * n;
        break;
    default:
        return -1;
    }
    return t->head > left ? -1 : 0;
}

/* Frees the texts of a cache's EWP_AC_SIZE entries */
void
ewp_ac_entries_free(struct ewp_ac_entry *e)
{
    int i;

    for (i = 0; i < EWP_AC_SIZE; i++)
        free(e[i].text);
}

/* An entry set to a copy of text (NUL-terminated); -1 out of memory,
 * the entry then left empty */
int
ewp_ac_set_entry(struct ewp_ac_entry *e, const unsigned char *text, size_t len)
{
    char *s = malloc(len + 1);

    free(e->text);
    e->text = s;
    e->len = 0;
    if (s == NULL)
        return -1;
    memcpy(s, text, len);
    s[len] = '\0';
    e->len = (uint16_t)len;
    return 0;
}

/* ---- helpers ---- */

/* Append n bytes; -1 past max or out of memory */
static int
put(struct ewp_ac_buf *o, const void *p, size_t n, size_t max)
{
    if (n > max || o->len > max - n)
        return -1;
    if (o->cap - o->len < n) {
        size_t cap = o->cap < 4096 ? 4096 : o->cap;
        char *nb;

        while (cap - o->len < n)
            cap *= 2;
        if (cap > max)
            cap = max;
        if ((nb = realloc(o->b, cap)) == NULL)
            return -1;
        o->b = nb;
        o->cap = cap;
    }
    if (n > 0)
        memcpy(o->b + o->len, p, n);
    o->len += n;
    return 0;
}

/* An entry's atom spelled out */
static int
put_atom(struct ewp_ac_buf *o, const struct ewp_ac_entry *e, size_t max)
{
    unsigned char h[3];

    if (e->len <= 255) {
        h[0] = ERL_SMALL_ATOM_UTF8_EXT;
        h[1] = (unsigned char)e->len;
        if (put(o, h, 2, max) < 0)
            return -1;
    } else {
        h[0] = ERL_ATOM_UTF8_EXT;
        h[1] = (unsigned char)(e->len >> 8);
        h[2] = (unsigned char)(e->len & 0xff);
        if (put(o, h, 3, max) < 0)
            return -1;
    }
    return put(o, e->text, e->len, max);
}

/* The k-th half byte of the flags */
static unsigned
half(const unsigned char *flags, int k)
{
    return (flags[k / 2] >> (4 * (k % 2))) & 0xfu;
}
