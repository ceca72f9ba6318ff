/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The members of a shared capture and their filters (see demux.h). Each
 * distinct program is a variant (members with the same program share it);
 * variants that are the same but for the k of their jeq #k are a group,
 * indexed per jeq by k, and run together in one pass (demux_run.c). A
 * group of one variant runs on libpcap's own interpreter
 * (pcap_offline_filter); a program that jumps backward (protochain) on
 * ours with a bound of steps (demux_run.c says why). Members, groups
 * and variants are found by hash, so set and remove cost about the
 * program's length, not the number of members.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "demux.h"
#include "demux_int.h"

#define IS_JEQ_K(code) ((code) == (BPF_JMP | BPF_JEQ | BPF_K))

static int htab_put(struct ewp_htab *t, struct ewp_hnode *n);
static void htab_del(struct ewp_htab *t, struct ewp_hnode *n);
static int grow(void *pp, size_t *cap, size_t want, size_t size);
static struct ewp_dm_member *member_find(struct ewp_demux *d, const void *who);
static void member_detach(struct ewp_demux *d, struct ewp_dm_member *m);
static int known_insns(const struct bpf_program *prog);
static int uses_mem(uint16_t code);
static uint64_t prog_hash(const struct bpf_insn *f, u_int len, int shape);
static struct ewp_dm_variant *variant_get(struct ewp_demux *d, const struct bpf_program *prog);
static void variant_drop(struct ewp_demux *d, struct ewp_dm_variant *v);
static struct ewp_dm_group *group_get(struct ewp_demux *d, const struct bpf_program *prog);
static int group_same(const struct ewp_dm_group *g, const struct bpf_program *prog);
static void group_free(struct ewp_demux *d, struct ewp_dm_group *g);
static int group_attach(struct ewp_dm_group *g, struct ewp_dm_variant *v);
static void group_detach(struct ewp_dm_group *g, struct ewp_dm_variant *v, size_t njeq);
static int jeq_add(struct ewp_dm_jeq *jq, struct ewp_dm_variant *v, size_t j);
static void jeq_del(struct ewp_dm_jeq *jq, const struct ewp_dm_variant *v, size_t j);
static void jeq_sync(struct ewp_dm_group *g, size_t j);

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
    while (d->ng > 0) {
        struct ewp_dm_group *g = d->g[d->ng - 1];
        size_t left = g->nv;

        while (left-- > 0) { /* the last one frees g */
            struct ewp_dm_variant *v = g->v[left];

            for (i = 0; i < v->nm; i++)
                free(v->m[i]);
            v->nm = 0;
            variant_drop(d, v); /* frees g with its last variant */
        }
    }
    for (i = 0; i < d->every.nm; i++)
        free(d->every.m[i]);
    free(d->every.m);
    free(d->g);
    free(d->scratch);
    free(d->members.b);
    free(d->groups.b);
    free(d->variants.b);
    free(d);
}

int
ewp_demux_set(struct ewp_demux *d, void *member, const struct bpf_program *prog)
{
    struct ewp_dm_member *m = member_find(d, member);
    struct ewp_dm_variant *v = &d->every;
    int fresh = 0;

    if (prog != NULL && prog->bf_len > 0) {
        if (prog->bf_insns == NULL || !bpf_validate(prog->bf_insns, (int)prog->bf_len) ||
            !known_insns(prog)) {
            errno = EINVAL;
            return -1;
        }
        v = variant_get(d, prog);
        if (v == NULL)
            return -1;
    }
    if (m != NULL && m->v == v)
        return 0;
    if (grow(&v->m, &v->mcap, v->nm + 1, sizeof(struct ewp_dm_member *)) < 0)
        goto fail;
    if (m == NULL) {
        m = calloc(1, sizeof(*m));
        if (m == NULL)
            goto fail;
        m->who = member;
        m->node.h = ewp_dm_mix((uintptr_t)member);
        if (htab_put(&d->members, &m->node) < 0) {
            free(m);
            goto fail;
        }
        fresh = 1;
    }
    if (!fresh)
        member_detach(d, m);
    m->v = v;
    m->slot = v->nm;
    v->m[v->nm++] = m;
    v->who0 = v->m[0]->who;
    return 0;

fail:
    if (v != &d->every && v->nm == 0)
        variant_drop(d, v);
    errno = ENOMEM;
    return -1;
}

void
ewp_demux_remove(struct ewp_demux *d, void *member)
{
    struct ewp_dm_member *m = member_find(d, member);

    if (m == NULL)
        return;
    htab_del(&d->members, &m->node);
    member_detach(d, m);
    free(m);
}

size_t
ewp_demux_count(const struct ewp_demux *d)
{
    return d->members.n;
}

size_t
ewp_demux_match(struct ewp_demux *d, const struct pcap_pkthdr *h,
                const unsigned char *pkt, void **out)
{
    size_t i, j, got = 0;

    for (i = 0; i < d->every.nm; i++)
        out[got++] = d->every.m[i]->who;
    for (i = 0; i < d->ng; i++) {
        struct ewp_dm_group *g = d->g[i];

        if (g->nv >= 2) {
            got += ewp_dm_run_group(d, g, h, pkt, out + got);
        } else if (g->loops ? ewp_dm_run_bounded(&g->v[0]->prog, h, pkt)
                            : pcap_offline_filter(&g->v[0]->prog, h, pkt) != 0) {
            for (j = 0; j < g->v[0]->nm; j++)
                out[got++] = g->v[0]->m[j]->who;
        }
    }
    return got;
}

/* Adds n to t (growing it when it can); -1 only when t has no buckets */
static int
htab_put(struct ewp_htab *t, struct ewp_hnode *n)
{
    size_t nb = t->b != NULL ? t->mask + 1 : 0, i;

    if (2 * t->n >= nb) { /* at most half full: short chains */
        size_t want = nb > 0 ? 2 * nb : 16;
        struct ewp_hnode **b = calloc(want, sizeof(struct ewp_hnode *));

        if (b == NULL && t->b == NULL)
            return -1;
        if (b != NULL) { /* rehashed; without room the chains grow */
            for (i = 0; i < nb; i++) {
                while (t->b[i] != NULL) {
                    struct ewp_hnode *e = t->b[i];

                    t->b[i] = e->next;
                    e->next = b[e->h & (want - 1)];
                    b[e->h & (want - 1)] = e;
                }
            }
            free(t->b);
            t->b = b;
            t->mask = want - 1;
        }
    }
    n->next = t->b[n->h & t->mask];
    t->b[n->h & t->mask] = n;
    t->n++;
    return 0;
}

static void
htab_del(struct ewp_htab *t, struct ewp_hnode *n)
{
    struct ewp_hnode **p = &t->b[n->h & t->mask];

    while (*p != n)
        p = &(*p)->next;
    *p = n->next;
    t->n--;
}

/* Room for want elements of size bytes in the array *pp of *cap */
static int
grow(void *pp, size_t *cap, size_t want, size_t size)
{
    size_t c = *cap > 0 ? *cap : 4;
    void *b;

    if (want <= *cap)
        return 0;
    while (c < want)
        c *= 2;
    b = realloc(*(void **)pp, c * size);
    if (b == NULL)
        return -1;
    *(void **)pp = b;
    *cap = c;
    return 0;
}

static struct ewp_dm_member *
member_find(struct ewp_demux *d, const void *who)
{
    uint64_t h = ewp_dm_mix((uintptr_t)who);
    struct ewp_hnode *n;

    if (d->members.b == NULL)
        return NULL;
    for (n = d->members.b[h & d->members.mask]; n != NULL; n = n->next)
        if (n->h == h && ((struct ewp_dm_member *)n)->who == who)
            return (struct ewp_dm_member *)n;
    return NULL;
}

/* Takes m out of its variant, dropping the variant when it was the last */
static void
member_detach(struct ewp_demux *d, struct ewp_dm_member *m)
{
    struct ewp_dm_variant *v = m->v;

    v->m[m->slot] = v->m[--v->nm];
    v->m[m->slot]->slot = m->slot;
    v->who0 = v->nm > 0 ? v->m[0]->who : NULL;
    if (v->nm == 0 && v != &d->every)
        variant_drop(d, v);
}

/* Every instruction one libpcap 1.10's interpreter knows (its bpf_validate
 * lets others through, and it aborts on them), no "ja -1" (a loop) */
static int
known_insns(const struct bpf_program *prog)
{
    static const uint16_t codes[] = {
        BPF_RET | BPF_K, BPF_RET | BPF_A, BPF_LD | BPF_W | BPF_ABS, BPF_LD | BPF_H | BPF_ABS,
        BPF_LD | BPF_B | BPF_ABS, BPF_LD | BPF_W | BPF_LEN, BPF_LDX | BPF_W | BPF_LEN,
        BPF_LD | BPF_W | BPF_IND, BPF_LD | BPF_H | BPF_IND, BPF_LD | BPF_B | BPF_IND,
        BPF_LDX | BPF_MSH | BPF_B, BPF_LD | BPF_IMM, BPF_LDX | BPF_IMM, BPF_LD | BPF_MEM,
        BPF_LDX | BPF_MEM, BPF_ST, BPF_STX, BPF_JMP | BPF_JA, BPF_JMP | BPF_JGT | BPF_K,
        BPF_JMP | BPF_JGE | BPF_K, BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JSET | BPF_K,
        BPF_JMP | BPF_JGT | BPF_X, BPF_JMP | BPF_JGE | BPF_X, BPF_JMP | BPF_JEQ | BPF_X,
        BPF_JMP | BPF_JSET | BPF_X, BPF_ALU | BPF_NEG, BPF_MISC | BPF_TAX, BPF_MISC | BPF_TXA,
    };
    static const uint16_t alu[] = { BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_MOD,
                                    BPF_AND, BPF_OR,  BPF_XOR, BPF_LSH, BPF_RSH };
    u_int i;
    size_t c;

    for (i = 0; i < prog->bf_len; i++) {
        const struct bpf_insn *in = &prog->bf_insns[i];
        int ok = 0;

        for (c = 0; c < sizeof(codes) / sizeof(codes[0]) && !ok; c++)
            ok = in->code == codes[c];
        for (c = 0; c < sizeof(alu) / sizeof(alu[0]) && !ok; c++)
            ok = in->code == (BPF_ALU | alu[c] | BPF_K) || in->code == (BPF_ALU | alu[c] | BPF_X);
        if (!ok || (in->code == (BPF_JMP | BPF_JA) && in->k == UINT32_MAX))
            return 0;
    }
    return 1;
}

/* Whether an instruction reads or writes scratch memory */
static int
uses_mem(uint16_t code)
{
    return code == BPF_ST || code == BPF_STX || code == (BPF_LD | BPF_MEM) ||
           code == (BPF_LDX | BPF_MEM);
}

/* The hash of a program; shape: with the k of its jeq #k left out */
static uint64_t
prog_hash(const struct bpf_insn *f, u_int len, int shape)
{
    uint64_t h = ewp_dm_mix(len);
    u_int i;

    for (i = 0; i < len; i++) {
        uint32_t k = shape && IS_JEQ_K(f[i].code) ? 0 : f[i].k;

        h = ewp_dm_mix(h ^ ((uint64_t)f[i].code << 16 | (uint64_t)f[i].jt << 8 | f[i].jf));
        h = ewp_dm_mix(h ^ k);
    }
    return h;
}

/* The variant of prog, made (with its group) when there is none; NULL
 * with errno ENOMEM */
static struct ewp_dm_variant *
variant_get(struct ewp_demux *d, const struct bpf_program *prog)
{
    size_t bytes = (size_t)prog->bf_len * sizeof(struct bpf_insn);
    uint64_t h = prog_hash(prog->bf_insns, prog->bf_len, 0);
    struct ewp_dm_variant *v;
    struct ewp_dm_group *g;
    struct ewp_hnode *n;
    size_t j;

    for (n = d->variants.b != NULL ? d->variants.b[h & d->variants.mask] : NULL; n != NULL;
         n = n->next) {
        v = (struct ewp_dm_variant *)n;
        if (n->h == h && v->prog.bf_len == prog->bf_len &&
            memcmp(v->prog.bf_insns, prog->bf_insns, bytes) == 0)
            return v;
    }
    if (grow(&d->scratch, &d->scratch_cap, d->nv + 1, sizeof(struct ewp_dm_variant *)) < 0)
        goto nomem;
    g = group_get(d, prog);
    if (g == NULL)
        goto nomem;
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        goto nomem_group;
    v->prog.bf_insns = malloc(bytes);
    v->k = calloc(g->njeq > 0 ? g->njeq : 1, sizeof(*v->k));
    v->at = calloc(g->njeq > 0 ? g->njeq : 1, sizeof(*v->at));
    if (v->prog.bf_insns == NULL || v->k == NULL || v->at == NULL)
        goto nomem_variant;
    memcpy(v->prog.bf_insns, prog->bf_insns, bytes);
    v->prog.bf_len = prog->bf_len;
    v->g = g;
    for (j = 0; j < g->njeq; j++)
        v->k[j] = prog->bf_insns[g->jeq[j].pc].k;
    v->node.h = h;
    if (htab_put(&d->variants, &v->node) < 0)
        goto nomem_variant;
    if (group_attach(g, v) < 0) {
        htab_del(&d->variants, &v->node);
        goto nomem_variant;
    }
    d->nv++;
    return v;

nomem_variant:
    free(v->prog.bf_insns);
    free(v->k);
    free(v->at);
    free(v);
nomem_group:
    if (g->nv == 0)
        group_free(d, g);
nomem:
    errno = ENOMEM;
    return NULL;
}

/* Takes v (no members left) out of its group and frees it */
static void
variant_drop(struct ewp_demux *d, struct ewp_dm_variant *v)
{
    struct ewp_dm_group *g = v->g;

    htab_del(&d->variants, &v->node);
    group_detach(g, v, g->njeq);
    d->nv--;
    if (g->nv == 0)
        group_free(d, g);
    free(v->prog.bf_insns);
    free(v->k);
    free(v->at);
    free(v->m);
    free(v);
}

/* The group of prog's shape, made when there is none */
static struct ewp_dm_group *
group_get(struct ewp_demux *d, const struct bpf_program *prog)
{
    int merge = ewp_dm_mergeable(prog->bf_insns, prog->bf_len);
    uint64_t h = prog_hash(prog->bf_insns, prog->bf_len, merge);
    struct ewp_dm_group *g;
    struct ewp_hnode *n;
    u_int i;

    for (n = d->groups.b != NULL ? d->groups.b[h & d->groups.mask] : NULL; n != NULL; n = n->next)
        if (n->h == h && group_same((struct ewp_dm_group *)n, prog))
            return (struct ewp_dm_group *)n;
    if (grow(&d->g, &d->gcap, d->ng + 1, sizeof(struct ewp_dm_group *)) < 0)
        return NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->node.h = h;
    g->merge = merge;
    g->loops = ewp_dm_loops(prog->bf_insns, prog->bf_len);
    g->len = prog->bf_len;
    g->shape = malloc((size_t)prog->bf_len * sizeof(*g->shape));
    if (g->shape == NULL)
        goto fail;
    memcpy(g->shape, prog->bf_insns, (size_t)prog->bf_len * sizeof(*g->shape));
    if (merge) {
        for (i = 0; i < prog->bf_len; i++) {
            g->njeq += IS_JEQ_K(prog->bf_insns[i].code);
            g->mem |= uses_mem(prog->bf_insns[i].code);
        }
        g->jeq = calloc(g->njeq + 1, sizeof(*g->jeq));
        g->excl_j = calloc(g->njeq + 1, sizeof(*g->excl_j));
        g->excl_k = calloc(g->njeq + 1, sizeof(*g->excl_k));
        if (g->jeq == NULL || g->excl_j == NULL || g->excl_k == NULL)
            goto fail;
        g->njeq = 0;
        for (i = 0; i < prog->bf_len; i++)
            if (IS_JEQ_K(prog->bf_insns[i].code))
                g->jeq[g->njeq++].pc = i;
    }
    if (htab_put(&d->groups, &g->node) < 0)
        goto fail;
    g->slot = d->ng;
    d->g[d->ng++] = g;
    return g;

fail:
    free(g->shape);
    free(g->jeq);
    free(g->excl_j);
    free(g->excl_k);
    free(g);
    return NULL;
}

/* Whether prog has g's shape (a merging group's jeq #k may differ) */
static int
group_same(const struct ewp_dm_group *g, const struct bpf_program *prog)
{
    u_int i;

    if (g->len != prog->bf_len || g->merge != ewp_dm_mergeable(prog->bf_insns, prog->bf_len))
        return 0;
    for (i = 0; i < g->len; i++) {
        const struct bpf_insn *a = &g->shape[i], *b = &prog->bf_insns[i];
        uint16_t code = a->code == EWP_DM_SPLIT ? BPF_JMP | BPF_JEQ | BPF_K : a->code;

        if (code != b->code || a->jt != b->jt || a->jf != b->jf ||
            (a->k != b->k && !(g->merge && IS_JEQ_K(code))))
            return 0;
    }
    return 1;
}

/* Frees g (no variants left) */
static void
group_free(struct ewp_demux *d, struct ewp_dm_group *g)
{
    size_t j;

    htab_del(&d->groups, &g->node);
    d->g[g->slot] = d->g[--d->ng];
    d->g[g->slot]->slot = g->slot;
    for (j = 0; j < g->njeq; j++)
        free(g->jeq[j].cls.b);
    free(g->shape);
    free(g->jeq);
    free(g->excl_j);
    free(g->excl_k);
    free(g->v);
    free(g);
}

/* Adds v to g and to each of g's jeq indexes; -1, g as it was */
static int
group_attach(struct ewp_dm_group *g, struct ewp_dm_variant *v)
{
    size_t j;

    if (grow(&g->v, &g->vcap, g->nv + 1, sizeof(struct ewp_dm_variant *)) < 0)
        return -1;
    for (j = 0; j < g->njeq; j++) {
        if (jeq_add(&g->jeq[j], v, j) < 0) {
            v->slot = g->nv;
            g->v[g->nv++] = v;
            group_detach(g, v, j);
            return -1;
        }
        jeq_sync(g, j);
    }
    v->slot = g->nv;
    g->v[g->nv++] = v;
    return 0;
}

/* Takes v out of g and of its first njeq jeq indexes */
static void
group_detach(struct ewp_dm_group *g, struct ewp_dm_variant *v, size_t njeq)
{
    size_t j;

    for (j = 0; j < njeq; j++) {
        jeq_del(&g->jeq[j], v, j);
        jeq_sync(g, j);
    }
    g->v[v->slot] = g->v[--g->nv];
    g->v[v->slot]->slot = v->slot;
}

/* Adds v to jq's index under its k (jq is g->jeq[j]) */
static int
jeq_add(struct ewp_dm_jeq *jq, struct ewp_dm_variant *v, size_t j)
{
    uint32_t k = v->k[j];
    struct ewp_dm_kclass *c = ewp_dm_kclass_find(jq, k);

    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return -1;
        c->k = k;
        c->node.h = ewp_dm_khash(k);
        if (htab_put(&jq->cls, &c->node) < 0) {
            free(c);
            return -1;
        }
    }
    if (grow(&c->v, &c->cap, c->n + 1, sizeof(struct ewp_dm_variant *)) < 0) {
        if (c->n == 0) {
            htab_del(&jq->cls, &c->node);
            free(c);
        }
        return -1;
    }
    v->at[j] = c->n;
    c->v[c->n++] = v;
    c->v0 = c->v[0];
    if (jq->cls.n == 1)
        jq->k1 = k;
    return 0;
}

static void
jeq_del(struct ewp_dm_jeq *jq, const struct ewp_dm_variant *v, size_t j)
{
    struct ewp_dm_kclass *c = ewp_dm_kclass_find(jq, v->k[j]);
    size_t i = v->at[j];

    c->v[i] = c->v[--c->n];
    c->v[i]->at[j] = i;
    c->v0 = c->n > 0 ? c->v[0] : NULL;
    if (c->n > 0)
        return;
    htab_del(&jq->cls, &c->node);
    free(c->v);
    free(c);
    if (jq->cls.n == 1) { /* the k left */
        for (i = 0; jq->cls.b[i] == NULL; i++)
            ;
        jq->k1 = ((struct ewp_dm_kclass *)jq->cls.b[i])->k;
    }
}

/* The shape's jeq j: a plain jeq when its variants have one k, a split */
static void
jeq_sync(struct ewp_dm_group *g, size_t j)
{
    struct bpf_insn *in = &g->shape[g->jeq[j].pc];

    in->code = g->jeq[j].cls.n == 1 ? BPF_JMP | BPF_JEQ | BPF_K : EWP_DM_SPLIT;
    in->k = g->jeq[j].cls.n == 1 ? g->jeq[j].k1 : (uint32_t)j;
}
