/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * fuzz_dispatch's fake captures: capture.h over no pcap_t (c->p points to
 * a struct fake_pcap), each open one listed in fz.caps for the 'P'
 * operation to dispatch packets to, and grouped as source.c shares live
 * ones (fz_source_members) for 'M'; savefiles and dumps confined to the
 * real --files directory, as files.c opens them; and the libpcap calls
 * request.c and filter.c make themselves (pcap_snapshot, two fake
 * interfaces from pcap_findalldevs).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "capture.h"

#include "fuzz_dispatch.h"

static int same_opts(const struct ewp_capture_opts *a, const struct ewp_capture_opts *b);
static int ends_with(const char *s, const char *suffix);
static void fd_path(int fd, char *path, size_t len);

/* ---- capture.h: "fake0" (Ethernet) and "fake1" (NFLOG, where a filter
 * naming tcp fails, as on the real datalink) open; filters containing "bad"
 * fail; write and stats succeed ---- */

int
ewp_capture_open(struct ev_loop *loop, struct ewp_capture *c, const char *dev,
                 const struct ewp_capture_opts *o, char *errbuf, size_t errlen)
{
    struct fake_pcap *fp;
    const char *name;
    int dlt;

    if (strcmp(dev, "fake0") == 0) {
        name = "fake0";
        dlt = DLT_EN10MB;
    } else if (strcmp(dev, "fake1") == 0) {
        name = "fake1";
        dlt = 239; /* DLT_NFLOG */
    } else {
        (void)snprintf(errbuf, errlen, "%s: No such device exists (SIOCGIFHWADDR: No such device)",
                       dev);
        return -1;
    }
    if (fz.ncaps == CAPTURES_MAX) {
        (void)snprintf(errbuf, errlen, "too many fake captures");
        return -1;
    }
    memset(c, 0, sizeof(*c));
    fp = malloc(sizeof(*fp)); /* a handle that is never closed leaks it */
    if (fp == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    fp->snaplen = o->snaplen <= 0 || o->snaplen > SNAPLEN_MAX ? SNAPLEN_MAX : o->snaplen;
    fp->dlt = dlt;
    c->p = (pcap_t *)fp;
    c->loop = loop;
    c->fd = -1;
    c->dlt = dlt;
    fz.caps[fz.ncaps].c = c;
    fz.caps[fz.ncaps].snaplen = o->snaplen;
    fz.caps[fz.ncaps].dev = name;
    fz.caps[fz.ncaps].o = *o;
    fz.caps[fz.ncaps].o.kernel_filter = NULL; /* request.c's, not kept */
    fz.ncaps++;
    return 0;
}

/* Would source.c share one pcap_t between captures of a and b? */
static int
same_opts(const struct ewp_capture_opts *a, const struct ewp_capture_opts *b)
{
    return a->snaplen == b->snaplen && a->promisc == b->promisc &&
           a->immediate == b->immediate &&
           (a->immediate || a->timeout_ms == b->timeout_ms) && a->buffer == b->buffer &&
           a->monitor == b->monitor && a->nano == b->nano;
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The path of fd, from /proc (files.c opened it) */
static void
fd_path(int fd, char *path, size_t len)
{
    char proc[64];
    ssize_t n;

    (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, path, len - 1);
    FUZZ_CHECK(n > 0, "fd %d is not open", fd);
    path[n] = '\0';
}

/* As capture.c: fd is ours, closed on success (here: the fake reads
 * nothing) and on failure */
int
ewp_capture_open_offline(struct ev_loop *loop, struct ewp_capture *c, int fd,
                         int nano, char *errbuf, size_t errlen)
{
    struct fake_pcap *fp;
    char path[PATH_MAX];

    (void)nano;
    fd_path(fd, path, sizeof(path));
    (void)close(fd);
    FUZZ_CHECK(strncmp(path, fz_files_dir, strlen(fz_files_dir)) == 0 &&
                   path[strlen(fz_files_dir)] == '/',
               "open_offline of %s, outside --files %s", path, fz_files_dir);
    if (!ends_with(path, ".pcap")) {
        (void)snprintf(errbuf, errlen, "unknown file format");
        return -1;
    }
    if (fz.ncaps == CAPTURES_MAX) {
        (void)snprintf(errbuf, errlen, "too many fake captures");
        return -1;
    }
    memset(c, 0, sizeof(*c));
    fp = malloc(sizeof(*fp));
    FUZZ_CHECK(fp != NULL, "out of memory");
    fp->snaplen = SNAPLEN_MAX;
    fp->dlt = DLT_EN10MB;
    c->p = (pcap_t *)fp;
    c->loop = loop;
    c->fd = -1;
    c->offline = 1;
    c->dlt = DLT_EN10MB;
    fz.caps[fz.ncaps].c = c;
    fz.caps[fz.ncaps].snaplen = SNAPLEN_MAX;
    fz.caps[fz.ncaps].dev = NULL;
    fz.ncaps++;
    return 0;
}

int
ewp_capture_dump_open(struct ewp_capture *c, int fd, char *errbuf, size_t errlen)
{
    char path[PATH_MAX];

    fd_path(fd, path, sizeof(path));
    (void)close(fd);
    /* a dump made by an input is removed at once: O_EXCL would refuse
     * the next input's */
    (void)unlink(path);
    FUZZ_CHECK(c->p != NULL, "dump_open on a closed capture");
    FUZZ_CHECK(c->dumper == NULL, "a second dump_open");
    FUZZ_CHECK(strncmp(path, fz_files_dir, strlen(fz_files_dir)) == 0 &&
                   path[strlen(fz_files_dir)] == '/',
               "dump to %s, outside --files %s", path, fz_files_dir);
    if (ends_with(path, "/bad.pcap")) {
        (void)snprintf(errbuf, errlen, "%s: Permission denied", path);
        return -1;
    }
    c->dumper = malloc(sizeof(int)); /* a token, freed by close */
    FUZZ_CHECK(c->dumper != NULL, "out of memory");
    return 0;
}

int
ewp_capture_filter(struct ewp_capture *c, const char *filter, size_t len, int optimize,
                   uint32_t netmask, char *errbuf, size_t errlen)
{
    (void)optimize;
    (void)netmask;
    FUZZ_CHECK(c->p != NULL, "filter on a closed capture");
    fuzz_touch(filter, len);
    if (memmem(filter, len, "bad", 3) != NULL) {
        (void)snprintf(errbuf, errlen, "syntax error in filter expression");
        return -1;
    }
    if (c->dlt == 239 && memmem(filter, len, "tcp", 3) != NULL) {
        (void)snprintf(errbuf, errlen, "tcp does not apply to NFLOG");
        return -1;
    }
    return 0;
}

int
ewp_capture_setprog(struct ewp_capture *c, struct bpf_program *prog, char *errbuf,
                    size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    FUZZ_CHECK(c->p != NULL, "setprog on a closed capture");
    FUZZ_CHECK(prog->bf_len > 0 && prog->bf_insns != NULL, "setprog of an empty program");
    fuzz_touch(prog->bf_insns, prog->bf_len * sizeof(*prog->bf_insns));
    return 0;
}

int
ewp_capture_write(struct ewp_capture *c, const void *buf, size_t len, char *errbuf,
                  size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    FUZZ_CHECK(c->p != NULL, "write on a closed capture");
    fuzz_touch(buf, len);
    return 0;
}

int
ewp_capture_stats(struct ewp_capture *c, struct pcap_stat *ps, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    FUZZ_CHECK(c->p != NULL, "stats on a closed capture");
    memset(ps, 0, sizeof(*ps));
    ps->ps_recv = 42;
    ps->ps_drop = 1;
    ps->ps_ifdrop = UINT_MAX;
    return 0;
}

/* As capture.c: a live capture whose interface is gone ('P' flags & 4)
 * stops and reports through error_cb */
int
ewp_capture_check(struct ewp_capture *c)
{
    FUZZ_CHECK(c != NULL, "ewp_capture_check of NULL");
    if (c != fz.vanish || c->p == NULL || c->failed || c->offline)
        return 0;
    ewp_capture_stop(c);
    c->failed = 1;
    if (c->error_cb != NULL)
        c->error_cb(c, "The interface disappeared");
    return -1;
}

void
ewp_capture_start(struct ewp_capture *c)
{
    if (c->p == NULL || c->watching || c->failed)
        return;
    c->watching = 1;
}

void
ewp_capture_stop(struct ewp_capture *c)
{
    c->watching = 0;
}

void
ewp_capture_close(struct ewp_capture *c)
{
    int k;

    ewp_capture_stop(c);
    free(c->dumper);
    c->dumper = NULL;
    if (c->p == NULL)
        return;
    for (k = 0; k < fz.ncaps; k++)
        if (fz.caps[k].c == c)
            break;
    FUZZ_CHECK(k < fz.ncaps, "close of a capture that was never opened");
    fz.caps[k] = fz.caps[--fz.ncaps];
    free(c->p);
    c->p = NULL;
}

/* The fake pcap_t cannot be compiled against: jobs use a dead handle */
struct ewp_pcapshare *
ewp_capture_share(struct ewp_capture *c)
{
    FUZZ_CHECK(c->p != NULL, "a share of a closed capture");
    return NULL;
}

/* Every fake capture has a pcap_t of its own as far as the rings go: none
 * joins, so every handle counts its ring (handles.c, request.c). Only
 * 'M' dispatches packets as the shared one would (fz_source_members). */
int
ewp_capture_joins(struct ev_loop *loop, const char *dev, const struct ewp_capture_opts *o)
{
    (void)loop;
    (void)o;
    FUZZ_CHECK(dev != NULL, "joins of a NULL device");
    return 0;
}

struct ewp_capture *
ewp_capture_other(const struct ewp_capture *c)
{
    FUZZ_CHECK(c != NULL, "ewp_capture_other of NULL");
    return NULL;
}

/* The members of f's source, as source.c would share them: every open
 * live capture of its device with the same options (same_opts there), but
 * none that is exclusive ({dump, Path}, {share, false}), in the order of
 * fz.caps, into m (CAPTURES_MAX at most). Returns how many: 0 when f is a
 * savefile's or exclusive. */
int
fz_source_members(const struct fake_capture *f, struct ewp_capture **m)
{
    int k, n = 0;

    if (f->dev == NULL || f->o.exclusive || f->c->dumper != NULL)
        return 0;
    for (k = 0; k < fz.ncaps; k++) {
        const struct fake_capture *g = &fz.caps[k];

        if (g->dev != NULL && strcmp(g->dev, f->dev) == 0 && !g->o.exclusive &&
            g->c->dumper == NULL && same_opts(&g->o, &f->o))
            m[n++] = g->c;
    }
    return n;
}

int
ewp_capture_default_dev(char *dev, size_t devlen, char *errbuf, size_t errlen)
{
    if (fz.no_devices) {
        (void)snprintf(errbuf, errlen, "no suitable device found");
        return -1;
    }
    (void)snprintf(dev, devlen, "%s", "fake0");
    return 0;
}

/* ---- libpcap: the calls request.c and filter.c make themselves ---- */

int
pcap_snapshot(pcap_t *p)
{
    const struct fake_pcap *fp = (const struct fake_pcap *)p;

    FUZZ_CHECK(p != NULL, "pcap_snapshot of NULL");
    return fp->snaplen;
}

static struct sockaddr *
fake_sa(int family, const char *text)
{
    struct sockaddr_storage *ss = calloc(1, sizeof(*ss));

    if (ss == NULL)
        return NULL;
    ss->ss_family = (sa_family_t)family;
    if (family == AF_INET)
        (void)inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr);
    else if (family == AF_INET6)
        (void)inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr);
    return (struct sockaddr *)ss;
}

static pcap_addr_t *
fake_addr(pcap_addr_t *next, int family, const char *addr, const char *mask, const char *bcast)
{
    pcap_addr_t *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return next;
    a->next = next;
    a->addr = fake_sa(family, addr);
    if (mask != NULL)
        a->netmask = fake_sa(family, mask);
    if (bcast != NULL)
        a->broadaddr = fake_sa(family, bcast);
    return a;
}

static pcap_if_t *
fake_if(pcap_if_t *next, const char *name, const char *desc, pcap_addr_t *addrs)
{
    pcap_if_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return next;
    d->next = next;
    d->name = strdup(name);
    d->description = desc != NULL ? strdup(desc) : NULL;
    d->addresses = addrs;
    d->flags = PCAP_IF_UP | PCAP_IF_RUNNING;
    return d;
}

int
pcap_findalldevs(pcap_if_t **alldevs, char *errbuf)
{
    pcap_if_t *d;

    if (fz.no_devices) {
        (void)snprintf(errbuf, PCAP_ERRBUF_SIZE, "fake: no devices");
        return -1;
    }
    d = fake_if(NULL, "fake1", NULL, fake_addr(NULL, AF_PACKET, "", NULL, NULL));
    d = fake_if(d, "fake0", "fake Ethernet",
                fake_addr(fake_addr(NULL, AF_INET6, "fe80::1", "ffff:ffff:ffff:ffff::", NULL),
                          AF_INET, "192.0.2.1", "255.255.255.0", "192.0.2.255"));
    *alldevs = d;
    return 0;
}

void
pcap_freealldevs(pcap_if_t *alldevs)
{
    while (alldevs != NULL) {
        pcap_if_t *next = alldevs->next;
        pcap_addr_t *a = alldevs->addresses;

        while (a != NULL) {
            pcap_addr_t *an = a->next;

            free(a->addr);
            free(a->netmask);
            free(a->broadaddr);
            free(a->dstaddr);
            free(a);
            a = an;
        }
        free(alldevs->name);
        free(alldevs->description);
        free(alldevs);
        alldevs = next;
    }
}
