/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The members of a shared capture and their filters (see demux.h): an
 * array of members, each program run by libpcap's own interpreter
 * (pcap_offline_filter), one after the other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "demux.h"

struct member {
    void *who;               /* the caller's pointer */
    struct bpf_program prog; /* its program (bf_len 0: every packet) */
};

struct ewp_demux {
    struct member *m; /* the members */
    size_t n;         /* how many */
    size_t cap;       /* room in m */
};

static struct member *find(struct ewp_demux *d, const void *who);
static int copy_prog(struct bpf_program *dst, const struct bpf_program *src);

struct ewp_demux *
ewp_demux_new(void)
{
    return calloc(1, sizeof(struct ewp_demux));
}

void
ewp_demux_free(struct ewp_demux *d)
{
    size_t i;

    if (d == NULL)
        return;
    for (i = 0; i < d->n; i++)
        free(d->m[i].prog.bf_insns);
    free(d->m);
    free(d);
}

int
ewp_demux_set(struct ewp_demux *d, void *member, const struct bpf_program *prog)
{
    struct bpf_program copy = { 0, NULL };
    struct member *m;

    if (prog != NULL && prog->bf_len > 0 && copy_prog(&copy, prog) < 0)
        return -1;
    m = find(d, member);
    if (m == NULL) {
        if (d->n == d->cap) {
            size_t cap = d->cap ? 2 * d->cap : 8;
            struct member *grown = realloc(d->m, cap * sizeof(*grown));

            if (grown == NULL) {
                free(copy.bf_insns);
                errno = ENOMEM;
                return -1;
            }
            d->m = grown;
            d->cap = cap;
        }
        m = &d->m[d->n++];
        m->who = member;
    } else {
        free(m->prog.bf_insns);
    }
    m->prog = copy;
    return 0;
}

void
ewp_demux_remove(struct ewp_demux *d, void *member)
{
    struct member *m = find(d, member);

    if (m == NULL)
        return;
    free(m->prog.bf_insns);
    *m = d->m[--d->n];
}

size_t
ewp_demux_count(const struct ewp_demux *d)
{
    return d->n;
}

size_t
ewp_demux_match(struct ewp_demux *d, const struct pcap_pkthdr *h,
                const unsigned char *pkt, void **out)
{
    size_t i, got = 0;

    for (i = 0; i < d->n; i++) {
        const struct member *m = &d->m[i];

        if (m->prog.bf_len == 0 || pcap_offline_filter(&m->prog, h, pkt) != 0)
            out[got++] = m->who;
    }
    return got;
}

static struct member *
find(struct ewp_demux *d, const void *who)
{
    size_t i;

    for (i = 0; i < d->n; i++)
        if (d->m[i].who == who)
            return &d->m[i];
    return NULL;
}

/* A copy of src, checked as the kernel would check it */
static int
copy_prog(struct bpf_program *dst, const struct bpf_program *src)
{
    size_t bytes = (size_t)src->bf_len * sizeof(struct bpf_insn);

    if (src->bf_insns == NULL || !bpf_validate(src->bf_insns, (int)src->bf_len)) {
        errno = EINVAL;
        return -1;
    }
    dst->bf_insns = malloc(bytes);
    if (dst->bf_insns == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(dst->bf_insns, src->bf_insns, bytes);
    dst->bf_len = src->bf_len;
    return 0;
}
