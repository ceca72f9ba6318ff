/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The distribution header and its atom cache (see atomcache.h), after the
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
 * Incoming frames come from the peer: every length and index is checked
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
#include "be.h"

#define VERSION 131           /* external term format version byte */
#define PASS_THROUGH 112      /* 'p' */
#define LONG_ATOMS 1          /* in the half byte after the last ref */
#define NEW_ENTRY 8           /* NewCacheEntryFlag of a ref's half byte */
#define REFS_MAX 255          /* refs in one header: N is one byte */

struct entry {
    char *text;               /* owned; NULL: never set */
    uint16_t len;             /* bytes */
};

struct ewp_ac_in {
    struct entry e[EWP_AC_SIZE]; /* set by the peer's new entries */
};

struct ewp_ac_out {
    struct entry e[EWP_AC_SIZE]; /* what the peer holds from us */
    uint64_t epoch;              /* changes with any entry */
};

/* One term's token in the flat walk */
struct tok {
    size_t head;              /* bytes up to an embedded atom, or the whole token */
    int embedded;             /* a node atom follows head (pid, port, reference) */
    size_t tail;              /* fixed bytes after that atom */
    size_t children;          /* terms that follow as its elements */
};

static uint64_t epochs;       /* every epoch handed out, across caches */

static size_t atom_at(const unsigned char *b, size_t len, size_t i, int *ref);
static int token(const unsigned char *b, size_t len, size_t i, struct tok *t);
static int put(struct ewp_ac_buf *o, const void *p, size_t n, size_t max);
static int put_atom(struct ewp_ac_buf *o, const struct entry *e, size_t max);
static int set_entry(struct entry *e, const unsigned char *text, size_t len);
static unsigned half(const unsigned char *flags, int k);
static size_t flag_bytes(int n);
static uint16_t slot_of(const unsigned char *text, size_t len);
static int tmpl_atom(struct ewp_ac_tmpl *t, const unsigned char *b, size_t size);

/* ---- incoming ---- */

struct ewp_ac_in *
ewp_ac_in_new(void)
{
    return calloc(1, sizeof(struct ewp_ac_in));
}

void
ewp_ac_in_free(struct ewp_ac_in *c)
{
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < EWP_AC_SIZE; i++)
        free(c->e[i].text);
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
    if (len < 3 || b[0] != VERSION || b[1] != EWP_DIST_HEADER)
        return -1;
    n = b[2];
    memset(seen, 0, sizeof(seen));
    if (n > 0) {
        if (flag_bytes(n) > len - i)
            return -1;
        flags = b + i;
        i += flag_bytes(n);
        long_atoms = (half(flags, n) & LONG_ATOMS) != 0;
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
        if (h & NEW_ENTRY) {
            size_t tl;

            if ((long_atoms ? 2u : 1u) > len - i)
                return -1;
            tl = long_atoms ? ((size_t)b[i] << 8 | b[i + 1]) : b[i];
            i += long_atoms ? 2 : 1;
            if (tl > EWP_AC_ATOM_MAX || tl > len - i)
                return -1;
            if (set_entry(&c->e[ix], b + i, tl) < 0)
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
        struct tok t;
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
        if ((a = atom_at(b, len, i, &ref)) > 0) {
            if (ref >= n)
                return -1;
            if ((ref < 0 ? put(out, b + i, a, max) : put_atom(out, &c->e[refs[ref]], max)) < 0)
                return -1;
            i += a;
            pending--;
            continue;
        }
        if (token(b, len, i, &t) < 0)
            break;
        if (t.embedded) {
            a = atom_at(b, len, i + t.head, &ref);
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

/* ---- outgoing ---- */

struct ewp_ac_out *
ewp_ac_out_new(void)
{
    struct ewp_ac_out *c = calloc(1, sizeof(*c));

    if (c != NULL)
        c->epoch = ++epochs;
    return c;
}

void
ewp_ac_out_free(struct ewp_ac_out *c)
{
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < EWP_AC_SIZE; i++)
        free(c->e[i].text);
    free(c);
}

/*
 * A pass-through frame body of ours ('p', 131, Control, [131, Message])
 * -> dst, the same frame with a header of no refs (131, 68, 0, Control,
 * [Message]). dst has room for len + 1 bytes. Returns the length written,
 * or -1 when body is not such a frame.
 */
long
ewp_ac_plain(char *dst, const char *body, size_t len)
{
    size_t n = 3;
    int i = 2;

    if (len < 3 || body[0] != PASS_THROUGH ||
        (unsigned char)body[1] != VERSION || ei_skip_term(body, &i) < 0 ||
        (size_t)i > len)
        return -1;
    if ((size_t)i < len && (unsigned char)body[i] != VERSION)
        return -1;
    dst[0] = (char)VERSION;
    dst[1] = EWP_DIST_HEADER;
    dst[2] = 0;
    memcpy(dst + n, body + 2, (size_t)i - 2);
    n += (size_t)i - 2;
    if ((size_t)i < len) {
        memcpy(dst + n, body + i + 1, len - (size_t)i - 1);
        n += len - (size_t)i - 1;
    }
    return (long)n;
}

/*
 * A template from a frame head of ours in the pass-through form ('p', 131,
 * Control, 131, the message's first terms): every atom becomes a reference,
 * but those past EWP_AC_TMPL_ATOMS distinct ones and one whose cache entry
 * another atom of the template has (they stay spelled out). Returns 0, or
 * -1 (nothing to free) when out of memory or the head holds a term we do
 * not walk.
 */
int
ewp_ac_tmpl_make(struct ewp_ac_tmpl *t, const char *body, size_t len)
{
    const unsigned char *b = (const unsigned char *)body;
    unsigned char *o;
    size_t i = 2, n = 0;
    int k;

    memset(t, 0, sizeof(*t));
    if (len < 2 || b[0] != PASS_THROUGH || b[1] != VERSION)
        return -1;
    if ((t->body = malloc(len)) == NULL) /* refs are never longer than the atoms */
        return -1;
    o = (unsigned char *)t->body;
    while (i < len) {
        struct tok tk;
        size_t a, tail = 0;
        int ref;

        if (b[i] == VERSION) { /* where the message starts: no version byte */
            i++;
            continue;
        }
        if ((a = atom_at(b, len, i, &ref)) == 0) {
            if (token(b, len, i, &tk) < 0)
                goto fail;
            memcpy(o + n, b + i, tk.head);
            n += tk.head;
            i += tk.head;
            if (!tk.embedded)
                continue;
            if ((a = atom_at(b, len, i, &ref)) == 0 || tk.tail > len - i - a)
                goto fail;
            tail = tk.tail; /* of a pid, port or reference, after its atom */
        }
        if (ref >= 0 || (k = tmpl_atom(t, b + i, a)) == -2)
            goto fail;
        if (k < 0) {
            memcpy(o + n, b + i, a);
            n += a;
        } else {
            o[n++] = EWP_ATOM_CACHE_REF;
            o[n++] = (unsigned char)k;
        }
        i += a;
        memcpy(o + n, b + i, tail);
        n += tail;
        i += tail;
    }
    t->body_len = n;

    /* the header when the peer holds every entry, and the longest one */
    t->old_hdr[0] = VERSION;
    t->old_hdr[1] = EWP_DIST_HEADER;
    t->old_hdr[2] = (unsigned char)t->n;
    t->old_len = 3;
    t->hdr_max = 3;
    if (t->n > 0) {
        memset(t->old_hdr + 3, 0, flag_bytes(t->n));
        for (k = 0; k < t->n; k++)
            t->old_hdr[3 + k / 2] |= (unsigned char)((t->atoms[k].slot >> 8) << (4 * (k % 2)));
        t->old_len += flag_bytes(t->n);
        t->hdr_max = t->old_len;
        for (k = 0; k < t->n; k++) {
            t->old_hdr[t->old_len++] = (unsigned char)(t->atoms[k].slot & 0xff);
            t->hdr_max += 3 + t->atoms[k].len;
        }
    }
    return 0;
fail:
    ewp_ac_tmpl_free(t);
    return -1;
}

/*
 * The header and the template's body into dst (room for t->hdr_max +
 * t->body_len bytes): the atoms c already gave the peer as indexes, the
 * others as new entries, which c records. Returns the bytes written. Call
 * it only for a frame that will be sent: the peer must see every entry c
 * records.
 */
size_t
ewp_ac_tmpl_put(struct ewp_ac_out *c, struct ewp_ac_tmpl *t, char *dst)
{
    unsigned char *o = (unsigned char *)dst;
    size_t p;
    int k, fresh[EWP_AC_TMPL_ATOMS], long_atoms = 0, changed = 0;

    if (t->epoch == c->epoch) { /* nothing changed since our last header */
        memcpy(o, t->old_hdr, t->old_len);
        p = t->old_len;
    } else {
        o[0] = VERSION;
        o[1] = EWP_DIST_HEADER;
        o[2] = (unsigned char)t->n;
        p = 3;
        if (t->n > 0) {
            memcpy(o + 3, t->old_hdr + 3, flag_bytes(t->n));
            p += flag_bytes(t->n);
        }
        for (k = 0; k < t->n; k++) {
            const struct ewp_ac_atom *a = &t->atoms[k];
            const struct entry *e = &c->e[a->slot];

            fresh[k] = e->text == NULL || e->len != a->len || memcmp(e->text, a->text, a->len) != 0;
            if (fresh[k]) {
                o[3 + k / 2] |= (unsigned char)(NEW_ENTRY << (4 * (k % 2)));
                long_atoms |= a->len > 255;
            }
        }
        if (long_atoms)
            o[3 + t->n / 2] |= (unsigned char)(LONG_ATOMS << (4 * (t->n % 2)));
        for (k = 0; k < t->n; k++) {
            const struct ewp_ac_atom *a = &t->atoms[k];

            o[p++] = (unsigned char)(a->slot & 0xff);
            if (!fresh[k])
                continue;
            if (long_atoms)
                o[p++] = (unsigned char)(a->len >> 8);
            o[p++] = (unsigned char)(a->len & 0xff);
            memcpy(o + p, a->text, a->len);
            p += a->len;
            /* out of memory: the entry is forgotten and sent again next time */
            (void)set_entry(&c->e[a->slot], (const unsigned char *)a->text, a->len);
            changed = 1;
        }
        if (changed)
            c->epoch = ++epochs;
    }
    memcpy(o + p, t->body, t->body_len);
    t->epoch = c->epoch;
    return p + t->body_len;
}

void
ewp_ac_tmpl_free(struct ewp_ac_tmpl *t)
{
    int k;

    for (k = 0; k < t->n; k++)
        free(t->atoms[k].text);
    free(t->body);
    memset(t, 0, sizeof(*t));
}

/* ---- helpers ---- */

/* An atom at b[i]: returns its size (0: no atom there, or it runs past
 * len), *ref the ATOM_CACHE_REF's index or -1 for an atom spelled out. */
static size_t
atom_at(const unsigned char *b, size_t len, size_t i, int *ref)
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
static int
token(const unsigned char *b, size_t len, size_t i, struct tok *t)
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
put_atom(struct ewp_ac_buf *o, const struct entry *e, size_t max)
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

static int
set_entry(struct entry *e, const unsigned char *text, size_t len)
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

/* Bytes of the flags of n > 0 refs: a half byte each and LongAtoms' */
static size_t
flag_bytes(int n)
{
    return (size_t)n / 2 + 1;
}

/* The k-th half byte of the flags */
static unsigned
half(const unsigned char *flags, int k)
{
    return (flags[k / 2] >> (4 * (k % 2))) & 0xfu;
}

/* FNV-1a over the text, into the cache's entries */
static uint16_t
slot_of(const unsigned char *text, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++)
        h = (h ^ text[i]) * 16777619u;
    return (uint16_t)(h % EWP_AC_SIZE);
}

/* The template's ref for the atom term at b (size bytes): its index, -1
 * to leave it spelled out (no room, its entry taken by another atom, or
 * Latin-1 text that is not ASCII: entries are UTF-8), -2 out of memory */
static int
tmpl_atom(struct ewp_ac_tmpl *t, const unsigned char *b, size_t size)
{
    size_t hs = b[0] == ERL_ATOM_EXT || b[0] == ERL_ATOM_UTF8_EXT ? 3 : 2;
    const unsigned char *text = b + hs;
    size_t len = size - hs, i;
    uint16_t slot = slot_of(text, len);
    int k;

    if (b[0] == ERL_ATOM_EXT || b[0] == ERL_SMALL_ATOM_EXT)
        for (i = 0; i < len; i++)
            if (text[i] >= 0x80)
                return -1;
    for (k = 0; k < t->n; k++) {
        if (t->atoms[k].len == len && memcmp(t->atoms[k].text, text, len) == 0)
            return k;
        if (t->atoms[k].slot == slot)
            return -1;
    }
    if (t->n == EWP_AC_TMPL_ATOMS || len > EWP_AC_ATOM_MAX)
        return -1;
    if ((t->atoms[k].text = malloc(len + 1)) == NULL)
        return -2;
    memcpy(t->atoms[k].text, text, len);
    t->atoms[k].text[len] = '\0';
    t->atoms[k].len = (uint16_t)len;
    t->atoms[k].slot = slot;
    return t->n++;
}
