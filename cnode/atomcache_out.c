/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Our frames (see atomcache.h and, for the header's bytes,
 * atomcache_int.h): any pass-through frame given a header of no refs
 * (ewp_ac_plain), and templates: a packet message's fixed head whose atoms
 * go as references, each atom in the entry its text hashes to (FNV-1a), a
 * new entry in the header the first time the connection's cache lacks it
 * and only its index afterwards. The cache records what the peer holds
 * from us; an epoch, changed with any entry, lets a template reuse its
 * last header while nothing changed. The term walk is atomcache_in.c's.
 */
#include <stdlib.h>
#include <string.h>

#include <ei.h>

#include "atomcache.h"
#include "atomcache_int.h"

struct ewp_ac_out {
    struct ewp_ac_entry e[EWP_AC_SIZE]; /* what the peer holds from us */
    uint64_t epoch;              /* changes with any entry */
};

static uint64_t epochs;       /* every epoch handed out, across caches */

static uint16_t slot_of(const unsigned char *text, size_t len);
static int tmpl_atom(struct ewp_ac_tmpl *t, const unsigned char *b, size_t size);

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
    if (c == NULL)
        return;
    ewp_ac_entries_free(c->e);
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

    if (len < 3 || body[0] != EWP_AC_PASS_THROUGH ||
        (unsigned char)body[1] != EWP_AC_VERSION || ei_skip_term(body, &i) < 0 ||
        (size_t)i > len)
        return -1;
    if ((size_t)i < len && (unsigned char)body[i] != EWP_AC_VERSION)
        return -1;
    dst[0] = (char)EWP_AC_VERSION;
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
    if (len < 2 || b[0] != EWP_AC_PASS_THROUGH || b[1] != EWP_AC_VERSION)
        return -1;
    if ((t->body = malloc(len)) == NULL) /* refs are never longer than the atoms */
        return -1;
    o = (unsigned char *)t->body;
    while (i < len) {
        struct ewp_ac_tok tk;
        size_t a, tail = 0;
        int ref;

        if (b[i] == EWP_AC_VERSION) { /* where the message starts: no version byte */
            i++;
            continue;
        }
        if ((a = ewp_ac_atom_at(b, len, i, &ref)) == 0) {
            if (ewp_ac_token(b, len, i, &tk) < 0)
                goto fail;
            memcpy(o + n, b + i, tk.head);
            n += tk.head;
            i += tk.head;
            if (!tk.embedded)
                continue;
            if ((a = ewp_ac_atom_at(b, len, i, &ref)) == 0 || tk.tail > len - i - a)
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
    t->old_hdr[0] = EWP_AC_VERSION;
    t->old_hdr[1] = EWP_DIST_HEADER;
    t->old_hdr[2] = (unsigned char)t->n;
    t->old_len = 3;
    t->hdr_max = 3;
    if (t->n > 0) {
        memset(t->old_hdr + 3, 0, ewp_ac_flag_bytes(t->n));
        for (k = 0; k < t->n; k++)
            t->old_hdr[3 + k / 2] |= (unsigned char)((t->atoms[k].slot >> 8) << (4 * (k % 2)));
        t->old_len += ewp_ac_flag_bytes(t->n);
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
        o[0] = EWP_AC_VERSION;
        o[1] = EWP_DIST_HEADER;
        o[2] = (unsigned char)t->n;
        p = 3;
        if (t->n > 0) {
            memcpy(o + 3, t->old_hdr + 3, ewp_ac_flag_bytes(t->n));
            p += ewp_ac_flag_bytes(t->n);
        }
        for (k = 0; k < t->n; k++) {
            const struct ewp_ac_atom *a = &t->atoms[k];
            const struct ewp_ac_entry *e = &c->e[a->slot];

            fresh[k] = e->text == NULL || e->len != a->len || memcmp(e->text, a->text, a->len) != 0;
            if (fresh[k]) {
                o[3 + k / 2] |= (unsigned char)(EWP_AC_NEW_ENTRY << (4 * (k % 2)));
                long_atoms |= a->len > 255;
            }
        }
        if (long_atoms)
            o[3 + t->n / 2] |= (unsigned char)(EWP_AC_LONG_ATOMS << (4 * (t->n % 2)));
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
            (void)ewp_ac_set_entry(&c->e[a->slot], (const unsigned char *)a->text, a->len);
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
