/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A packet through a group of programs that differ only in the k of their
 * jeq #k (see demux_int.h), with the answer libpcap's interpreter gives
 * each of them (bpf_filter semantics: a load past caplen or a division by
 * zero rejects, len is the wire length, ret non-zero accepts).
 *
 * The shape runs once, with one set of registers, carrying the set of
 * variants still on that path. At a jeq #k where the group's variants
 * differ, those whose k equals A take jt and the others jf: the run forks,
 * each fork with its part and its own registers. The first path
 * carries "every variant but the excluded" without listing them: at a
 * differing jeq it looks A up in that jeq's index (k -> variants), lists
 * those not excluded for the jt fork and goes on to jf excluding (jeq, A).
 * Later forks carry explicit lists, split in place. Lists are disjoint,
 * so a packet costs one run of the shape, a lookup per differing jeq
 * reached and the work of the variants that match there, not a run per
 * member. A side that goes straight to ret #0 is not run: the other goes
 * on without a fork. Jumps are forward only (ewp_dm_mergeable), so a path
 * reaches a jeq at most once. Scratch memory starts zeroed (libpcap 1.10
 * leaves it unset; pcap_compile's programs store before they load).
 */
#include <stdint.h>
#include <string.h>

#include <pcap/pcap.h>

#include "demux_int.h"

/* One packet through one group */
struct walk {
    const struct ewp_dm_group *g; /* the group */
    const unsigned char *p;       /* the packet */
    uint32_t wirelen, buflen;     /* its len, its caplen */
    struct ewp_dm_variant **buf;  /* room for the explicit lists */
    size_t used;                  /* of buf */
    size_t nexcl;                 /* the first path's exclusions (g->excl_*) */
    void **out;                   /* the answer */
    size_t got;                   /* its length */
};

static void walk(struct walk *w, u_int pc, uint32_t a, uint32_t x, const uint32_t *mem0,
                 struct ewp_dm_variant **set, size_t n);
static int rejects(const struct bpf_insn *in);
static int excluded(const struct walk *w, const struct ewp_dm_variant *v);
static inline void emit(struct walk *w, struct ewp_dm_variant **set, size_t n);
static inline void emit_variant(struct walk *w, const struct ewp_dm_variant *v);

size_t
ewp_dm_run_group(struct ewp_demux *d, struct ewp_dm_group *g, const struct pcap_pkthdr *h,
                 const unsigned char *pkt, void **out)
{
    static const uint32_t zero[BPF_MEMWORDS]; /* scratch memory starts 0 */
    struct walk w;

    w.g = g;
    w.p = pkt;
    w.wirelen = h->len;
    w.buflen = h->caplen;
    w.buf = d->scratch;
    w.used = 0;
    w.nexcl = 0;
    w.out = out;
    w.got = 0;
    walk(&w, 0, 0, 0, zero, NULL, 0);
    return w.got;
}

int
ewp_dm_mergeable(const struct bpf_insn *f, u_int len)
{
    u_int i;

    for (i = 0; i < len; i++) {
        switch (f[i].code) {
        case BPF_JMP | BPF_JA:
            if ((int32_t)f[i].k < 0)
                return 0;
            break;
        case BPF_ALU | BPF_LSH | BPF_K:
        case BPF_ALU | BPF_RSH | BPF_K:
            if (f[i].k >= 32)
                return 0;
            break;
        default:
            break;
        }
    }
    return 1;
}

/* The path from pc with registers r, carrying set[0..n) (set NULL: the
 * first path's, every variant not excluded) */
static void
walk(struct walk *w, u_int pc, uint32_t a, uint32_t x, const uint32_t *mem0,
     struct ewp_dm_variant **set, size_t n)
{
    const struct ewp_dm_group *g = w->g;
    const struct bpf_insn *shape = g->shape;            /* locals: kept in registers */
    const unsigned char *p = w->p;
    const uint32_t buflen = w->buflen;
    uint32_t mem[BPF_MEMWORDS]; /* this path's own (only when the shape uses it) */

    if (g->mem)
        memcpy(mem, mem0, sizeof(mem));

    for (;;) {
        const struct bpf_insn *in = &shape[pc++];
        const struct ewp_dm_jeq *jq;
        struct ewp_dm_kclass *c;
        size_t i, t, start;
        int32_t j;
        int t_dead, f_dead;

        /* the common case first: one jump table, ewp_dm_step's */
        if (in->code != EWP_DM_SPLIT && BPF_CLASS(in->code) != BPF_RET) {
            if (!ewp_dm_step(in, &pc, &a, &x, mem, p, buflen, w->wirelen))
                return;
            continue;
        }
        if (BPF_CLASS(in->code) == BPF_RET) { /* ret #k or ret a */
            if ((BPF_RVAL(in->code) == BPF_A ? a : in->k) != 0)
                emit(w, set, n);
            return;
        }
        { /* a jeq #k where the variants differ */
            j = (int32_t)in->k;
            jq = &g->jeq[j];
            t_dead = rejects(&shape[pc + in->jt]);
            f_dead = rejects(&shape[pc + in->jf]);
            if (set == NULL) { /* the first path: A looked up */
                c = ewp_dm_kclass_find(jq, a);
                if (c == NULL) { /* nobody has k A */
                    if (f_dead)
                        return;
                    pc += in->jf;
                    continue;
                }
                start = w->used;
                if (!t_dead && c->n == 1 && !excluded(w, c->v0))
                    w->buf[w->used++] = c->v0;
                for (i = 0; !t_dead && c->n > 1 && i < c->n; i++)
                    if (!excluded(w, c->v[i]))
                        w->buf[w->used++] = c->v[i];
                if (f_dead) { /* only the jt side lives: on with its list, here */
                    if (w->used == start)
                        return;
                    set = w->buf + start;
                    n = w->used - start;
                    pc += in->jt;
                    continue;
                }
                if (w->used > start) {
                    walk(w, pc + in->jt, a, x, mem, w->buf + start, w->used - start);
                }
                g->excl_j[w->nexcl] = (uint32_t)j;
                g->excl_k[w->nexcl++] = a;
                pc += in->jf;
                continue;
            }
            for (i = 0, t = 0; i < n; i++) { /* a list: those equal to A first */
                if (set[i]->k[j] == a) {
                    struct ewp_dm_variant *v = set[i];

                    set[i] = set[t];
                    set[t++] = v;
                }
            }
            if (t > 0 && t < n && !t_dead && !f_dead) { /* both sides */
                walk(w, pc + in->jt, a, x, mem, set, t);
                set += t;
                n -= t;
                pc += in->jf;
                continue;
            }
            if (t > 0 && !t_dead) { /* the jt side only */
                n = t;
                pc += in->jt;
                continue;
            }
            set += t; /* the jf side only */
            n -= t;
            if (n == 0 || f_dead)
                return;
            pc += in->jf;
            continue;
        }
    }
}

/* Whether in is "ret #0" (a side of a split that ends there needs no run) */
static int
rejects(const struct bpf_insn *in)
{
    return in->code == (BPF_RET | BPF_K) && in->k == 0;
}

/* Whether the first path has left v behind at a jeq */
static int
excluded(const struct walk *w, const struct ewp_dm_variant *v)
{
    size_t e;

    for (e = 0; e < w->nexcl; e++)
        if (v->k[w->g->excl_j[e]] == w->g->excl_k[e])
            return 1;
    return 0;
}

/* The members of set[0..n) (set NULL: of every variant not excluded) */
static inline void
emit(struct walk *w, struct ewp_dm_variant **set, size_t n)
{
    size_t i;

    if (set != NULL) {
        for (i = 0; i < n; i++)
            emit_variant(w, set[i]);
        return;
    }
    for (i = 0; i < w->g->nv; i++)
        if (!excluded(w, w->g->v[i]))
            emit_variant(w, w->g->v[i]);
}

static inline void
emit_variant(struct walk *w, const struct ewp_dm_variant *v)
{
    size_t i;

    w->out[w->got++] = v->who0;
    for (i = 1; i < v->nm; i++)
        w->out[w->got++] = v->m[i]->who;
}
