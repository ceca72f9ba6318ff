/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Private to demux.c (the members, their programs grouped by shape),
 * demux_run.c (a packet through a group) and demux_loop.c. A group holds the distinct
 * programs (variants) that are the same instruction for instruction but
 * for the k of their jeq #k: one run of the group's shape answers for all
 * of them (see demux_run.c). Programs that jump backward keep a group of
 * their own and run with a bound of steps (demux_loop.c).
 */
#ifndef EWP_DEMUX_INT_H
#define EWP_DEMUX_INT_H

#include <stddef.h>
#include <stdint.h>

#include <pcap/pcap.h>


/* A chained hash table of nodes embedded in their owners, keyed by h */
struct ewp_hnode {
    struct ewp_hnode *next; /* the next in its bucket */
    uint64_t h;             /* its key's hash */
};

struct ewp_htab {
    struct ewp_hnode **b; /* the buckets (NULL: none yet) */
    size_t mask;          /* buckets - 1 */
    size_t n;             /* how many nodes */
};

struct ewp_dm_variant;

struct ewp_dm_member {
    struct ewp_hnode node;     /* in d->members, by who */
    void *who;                 /* the caller's pointer */
    struct ewp_dm_variant *v;  /* its program */
    size_t slot;               /* its index in v->m */
};

/* The variants whose k is k at one jeq of a group */
struct ewp_dm_kclass {
    struct ewp_hnode node;     /* in its jeq's cls, by k */
    uint32_t k;                /* the constant */
    struct ewp_dm_variant *v0; /* v[0], or NULL (one load less per packet) */
    struct ewp_dm_variant **v; /* the variants with it */
    size_t n, cap;             /* how many, room */
};

/* One jeq #k of a group's shape */
struct ewp_dm_jeq {
    struct ewp_htab cls; /* k -> struct ewp_dm_kclass */
    uint32_t k1;         /* the one k when cls.n == 1 */
    u_int pc;            /* where it is */
};

/* In a group's shape, a jeq #k where its variants differ (k: the index of
 * the jeq); where they all have the same k it is a plain jeq with that k */
#define EWP_DM_SPLIT 0x8000

/* One distinct program, and the members that have it */
struct ewp_dm_variant {
    struct ewp_hnode node;     /* in d->variants, by the whole program */
    struct bpf_program prog;   /* the program (bf_len 0: every packet) */
    struct ewp_dm_group *g;    /* its group (NULL: d->every) */
    uint32_t *k;               /* its k at each of g's jeqs */
    size_t *at;                /* its index in each jeq's class of its k */
    void *who0;                /* m[0]->who (one load less per packet) */
    struct ewp_dm_member **m;  /* the members */
    size_t nm, mcap;           /* how many, room */
    size_t slot;               /* its index in g->v */
};

struct ewp_dm_group {
    struct ewp_hnode node;     /* in d->groups, by shape */
    struct bpf_insn *shape;    /* the program, each jeq #k as EWP_DM_SPLIT says */
    u_int len;                 /* its instructions */
    int merge;                 /* 0: one variant, run on pcap_offline_filter */
    int loops;                 /* it jumps backward: run by ewp_dm_run_bounded */
    int mem;                   /* it stores to scratch memory */
    struct ewp_dm_jeq *jeq;    /* the jeq #k of the shape (merge only) */
    size_t njeq;               /* how many */
    struct ewp_dm_variant **v; /* the variants */
    size_t nv, vcap;           /* how many, room */
    size_t slot;               /* its index in d->g */
    uint32_t *excl_j, *excl_k; /* a run's exclusions (njeq each, demux_run.c) */
};

struct ewp_demux {
    struct ewp_htab members;     /* who -> struct ewp_dm_member */
    struct ewp_htab groups;      /* shape -> struct ewp_dm_group */
    struct ewp_htab variants;    /* program -> struct ewp_dm_variant */
    struct ewp_dm_variant every; /* the members with no program */
    struct ewp_dm_group **g;     /* the groups */
    size_t ng, gcap;             /* how many, room */
    size_t nv;                   /* variants in all groups */
    struct ewp_dm_variant **scratch; /* a run's variant lists (room for nv) */
    size_t scratch_cap;          /* room in scratch */
};

/* Mixes x into a 64-bit hash */
static inline uint64_t
ewp_dm_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* The hash of a jeq's k (one multiply: it is looked up per packet) */
static inline uint64_t
ewp_dm_khash(uint32_t k)
{
    return (k * 0x9e3779b97f4a7c15ULL) >> 29;
}

/* The variants of jeq j whose k is k, or NULL */
static inline struct ewp_dm_kclass *
ewp_dm_kclass_find(const struct ewp_dm_jeq *j, uint32_t k)
{
    uint64_t h = ewp_dm_khash(k);
    const struct ewp_hnode *n;

    if (j->cls.b == NULL)
        return NULL;
    for (n = j->cls.b[h & j->cls.mask]; n != NULL; n = n->next) {
        const struct ewp_dm_kclass *c = (const struct ewp_dm_kclass *)n;

        if (n->h == h && c->k == k)
            return (struct ewp_dm_kclass *)c;
    }
    return NULL;
}

/* A big-endian load of size bytes at off into to; 0 past caplen */
static inline int
ewp_dm_load(const unsigned char *p, uint32_t buflen, uint64_t off, u_int size, uint32_t *to)
{
    const unsigned char *b;

    if (off + size > buflen)
        return 0;
    b = p + off;
    switch (size) {
    case 4:
        *to = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        break;
    case 2:
        *to = (uint32_t)b[0] << 8 | b[1];
        break;
    default:
        *to = b[0];
        break;
    }
    return 1;
}

/*
 * One instruction of a run, as libpcap's bpf_filter runs it, for both
 * interpreters (demux_run.c's groups, demux_loop.c's bounded runs):
 * everything but a ret and a group's split. 1: go on (*pc moved past a
 * jump); 0: the packet is refused (a load past caplen, a division by 0,
 * an instruction ewp_demux_set refuses). A shift by a constant takes
 * k & 31, as libpcap's C shift does on this machine (groups never hold
 * one of 32 or more: ewp_dm_mergeable); by X of 32 or more gives 0.
 */
static inline int
ewp_dm_step(const struct bpf_insn *in, u_int *pc, uint32_t *a, uint32_t *x, uint32_t *mem,
            const unsigned char *p, uint32_t buflen, uint32_t wirelen)
{
    switch (in->code) {
    case BPF_LD | BPF_W | BPF_ABS:
        return ewp_dm_load(p, buflen, in->k, 4, a);
    case BPF_LD | BPF_H | BPF_ABS:
        return ewp_dm_load(p, buflen, in->k, 2, a);
    case BPF_LD | BPF_B | BPF_ABS:
        return ewp_dm_load(p, buflen, in->k, 1, a);
    case BPF_LD | BPF_W | BPF_IND:
        return ewp_dm_load(p, buflen, (uint64_t)*x + in->k, 4, a);
    case BPF_LD | BPF_H | BPF_IND:
        return ewp_dm_load(p, buflen, (uint64_t)*x + in->k, 2, a);
    case BPF_LD | BPF_B | BPF_IND:
        return ewp_dm_load(p, buflen, (uint64_t)*x + in->k, 1, a);
    case BPF_LDX | BPF_MSH | BPF_B:
        if (!ewp_dm_load(p, buflen, in->k, 1, x))
            return 0;
        *x = (*x & 0xf) << 2;
        return 1;
    case BPF_LD | BPF_W | BPF_LEN:
        *a = wirelen;
        return 1;
    case BPF_LDX | BPF_W | BPF_LEN:
        *x = wirelen;
        return 1;
    case BPF_LD | BPF_IMM:
        *a = in->k;
        return 1;
    case BPF_LDX | BPF_IMM:
        *x = in->k;
        return 1;
    case BPF_LD | BPF_MEM:
        *a = mem[in->k % BPF_MEMWORDS];
        return 1;
    case BPF_LDX | BPF_MEM:
        *x = mem[in->k % BPF_MEMWORDS];
        return 1;
    case BPF_ST:
        mem[in->k % BPF_MEMWORDS] = *a;
        return 1;
    case BPF_STX:
        mem[in->k % BPF_MEMWORDS] = *x;
        return 1;
    case BPF_JMP | BPF_JA: /* backward (bounded runs only): k wraps, as libpcap's */
        *pc += in->k;
        return 1;
    case BPF_JMP | BPF_JGT | BPF_K:
        *pc += *a > in->k ? in->jt : in->jf;
        return 1;
    case BPF_JMP | BPF_JGE | BPF_K:
        *pc += *a >= in->k ? in->jt : in->jf;
        return 1;
    case BPF_JMP | BPF_JEQ | BPF_K:
        *pc += *a == in->k ? in->jt : in->jf;
        return 1;
    case BPF_JMP | BPF_JSET | BPF_K:
        *pc += (*a & in->k) != 0 ? in->jt : in->jf;
        return 1;
    case BPF_JMP | BPF_JGT | BPF_X:
        *pc += *a > *x ? in->jt : in->jf;
        return 1;
    case BPF_JMP | BPF_JGE | BPF_X:
        *pc += *a >= *x ? in->jt : in->jf;
        return 1;
    case BPF_JMP | BPF_JEQ | BPF_X:
        *pc += *a == *x ? in->jt : in->jf;
        return 1;
    case BPF_JMP | BPF_JSET | BPF_X:
        *pc += (*a & *x) != 0 ? in->jt : in->jf;
        return 1;
    case BPF_ALU | BPF_ADD | BPF_X:
        *a += *x;
        return 1;
    case BPF_ALU | BPF_SUB | BPF_X:
        *a -= *x;
        return 1;
    case BPF_ALU | BPF_MUL | BPF_X:
        *a *= *x;
        return 1;
    case BPF_ALU | BPF_DIV | BPF_X:
        if (*x == 0)
            return 0;
        *a /= *x;
        return 1;
    case BPF_ALU | BPF_MOD | BPF_X:
        if (*x == 0)
            return 0;
        *a %= *x;
        return 1;
    case BPF_ALU | BPF_AND | BPF_X:
        *a &= *x;
        return 1;
    case BPF_ALU | BPF_OR | BPF_X:
        *a |= *x;
        return 1;
    case BPF_ALU | BPF_XOR | BPF_X:
        *a ^= *x;
        return 1;
    case BPF_ALU | BPF_LSH | BPF_X:
        *a = *x < 32 ? *a << *x : 0;
        return 1;
    case BPF_ALU | BPF_RSH | BPF_X:
        *a = *x < 32 ? *a >> *x : 0;
        return 1;
    case BPF_ALU | BPF_ADD: /* | BPF_K, which is 0 */
        *a += in->k;
        return 1;
    case BPF_ALU | BPF_SUB | BPF_K:
        *a -= in->k;
        return 1;
    case BPF_ALU | BPF_MUL | BPF_K:
        *a *= in->k;
        return 1;
    case BPF_ALU | BPF_DIV | BPF_K:
        if (in->k == 0)
            return 0;
        *a /= in->k;
        return 1;
    case BPF_ALU | BPF_MOD | BPF_K:
        if (in->k == 0)
            return 0;
        *a %= in->k;
        return 1;
    case BPF_ALU | BPF_AND | BPF_K:
        *a &= in->k;
        return 1;
    case BPF_ALU | BPF_OR | BPF_K:
        *a |= in->k;
        return 1;
    case BPF_ALU | BPF_XOR | BPF_K:
        *a ^= in->k;
        return 1;
    case BPF_ALU | BPF_LSH | BPF_K:
        *a <<= in->k & 31;
        return 1;
    case BPF_ALU | BPF_RSH | BPF_K:
        *a >>= in->k & 31;
        return 1;
    case BPF_ALU | BPF_NEG:
        *a = 0U - *a;
        return 1;
    case BPF_MISC | BPF_TAX:
        *x = *a;
        return 1;
    case BPF_MISC | BPF_TXA:
        *a = *x;
        return 1;
    default:
        return 0;
    }
}

/* Whether a program can share a group: no backward jump (those run on
 * ewp_dm_run_bounded) and no shift by 32 or more (libpcap's is C's) */
int ewp_dm_mergeable(const struct bpf_insn *f, u_int len);

/* Whether a program jumps backward (ja with a negative k) */
int ewp_dm_loops(const struct bpf_insn *f, u_int len);

/* Whether prog (one that may jump backward) accepts the packet: libpcap's
 * answer wherever libpcap's run ends, a refusal past a bound of steps */
int ewp_dm_run_bounded(const struct bpf_program *prog, const struct pcap_pkthdr *h,
                       const unsigned char *pkt);

/* Writes to out the members of group g (g->merge, g->nv >= 2) whose
 * program accepts the packet; returns how many */
size_t ewp_dm_run_group(struct ewp_demux *d, struct ewp_dm_group *g, const struct pcap_pkthdr *h,
                        const unsigned char *pkt, void **out);

#endif /* EWP_DEMUX_INT_H */
