/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Live captures shared per device and options (see source.h). A source
 * is created by the first member of its key (device.c activates its
 * pcap_t and sets its kernel filter); later members of
 * the same key only join its member list and its demux (no activation, no
 * new ring: an open that joins costs a few allocations). The last member
 * to leave closes the pcap_t (through pcapshare when a compile worker
 * holds it).
 *
 * Each readiness runs pcap_dispatch(p, -1, ...), as capture.c did for a
 * handle of its own; pcap_loop is never used. Per packet the demux names
 * the members whose program accepts it: a reading member gets the packet,
 * a paused one counts it as missed. Nothing here frees a member or a
 * source from inside a callback: members leave by an explicit close,
 * never from a packet, flush or error callback (dist.c's rule).
 */
#include <errno.h>
#include <stdio.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "demux.h"
#include "device.h"
#include "log.h"
#include "source.h"

#define POLL_INTERVAL 0.01  /* seconds, for handles without a selectable fd */

struct ewp_source {
    pcap_t *p;                          /* the one pcap handle */
    struct ev_loop *loop;               /* its watchers' */
    ev_io io;                           /* readiness of the selectable fd */
    ev_timer timer;                     /* polling where there is no fd */
    int fd;                             /* pcap_get_selectable_fd, or -1 */
    int watching;                       /* watchers started */
    int dispatching;                    /* inside pcap_dispatch */
    int failed;                         /* reported to every member: over */
    char *device;                       /* the interface name */
    unsigned ifindex;                   /* its index at open; 0: a pseudo device */
    struct ewp_capture_opts o;          /* the key (o.kernel_filter: kfilter) */
    char *kfilter;                      /* copy of the kernel filter text */
    ev_tstamp checked;                  /* when the interface was last checked */
    struct ewp_demux *demux;            /* the members' programs */
    struct ewp_source_member *members;  /* every member, newest first */
    int nmembers;                       /* how many */
    int nactive;                        /* of them reading */
    size_t room;                        /* entries of match and touched */
    void **match;                       /* the demux's answer for a packet */
    struct ewp_source_member **touched; /* members given packets this dispatch */
    size_t ntouched;                    /* how many */
    struct ewp_pcapshare *share;        /* p, as compile jobs hold it, or NULL */
    struct bpf_program own;             /* exclusive: a program that loops, run
                                           here (bf_len 0: the kernel filters) */
    int listed;                         /* in the registry (shared, not failed) */
    struct ewp_source *next;            /* the registry */
    struct ewp_source *prev;            /* ... (NULL: the first) */
};

static struct ewp_source *registry; /* the shared sources, to join */

static struct ewp_source *find(struct ev_loop *loop, const char *dev,
                               const struct ewp_capture_opts *o);
static struct ewp_source *create(struct ev_loop *loop, const char *dev,
                                 const struct ewp_capture_opts *o, char *errbuf, size_t errlen);
static void destroy(struct ewp_source *s);
static int add_member(struct ewp_source *s, struct ewp_source_member *m);
static void unlist(struct ewp_source *s);
static void watch(struct ewp_source *s);
static void unwatch(struct ewp_source *s);
static void fail(struct ewp_source *s, const char *reason);
static void readable_cb(struct ev_loop *loop, ev_io *w, int revents);
static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void dispatch(struct ewp_source *s);
static void handler(unsigned char *user, const struct pcap_pkthdr *h,
                    const unsigned char *bytes);
static void give(struct ewp_source *s, struct ewp_source_member *m,
                 const struct pcap_pkthdr *h, const unsigned char *bytes);

/*
 * m joins the source of (dev, o), which is created (activated, not yet
 * read) when there is none to join. m->ops and m->who are the caller's.
 * Returns 0, or -1 with the reason in errbuf (m in no source).
 */
int
ewp_source_join(struct ev_loop *loop, struct ewp_source_member *m, const char *dev,
                const struct ewp_capture_opts *o, char *errbuf, size_t errlen)
{
    struct ewp_source *s = o->exclusive ? NULL : find(loop, dev, o);
    int made = 0;

    m->src = NULL;
    m->started = m->active = m->touched = m->failed = 0;
    m->recv = m->missed = 0;
    m->next = m->prev = NULL;
    memset(&m->base, 0, sizeof(m->base));
    if (s == NULL) {
        s = create(loop, dev, o, errbuf, errlen);
        if (s == NULL)
            return -1;
        made = 1;
    }
    if (add_member(s, m) < 0) {
        (void)snprintf(errbuf, errlen, "out of memory");
        if (made)
            destroy(s);
        return -1;
    }
    return 0;
}

/* Would an open of (dev, o) join a source (costing no ring)? */
int
ewp_source_would_join(struct ev_loop *loop, const char *dev, const struct ewp_capture_opts *o)
{
    return !o->exclusive && find(loop, dev, o) != NULL;
}

/* m leaves its source; the last member closes it */
void
ewp_source_leave(struct ewp_source_member *m)
{
    struct ewp_source *s = m->src;

    if (s == NULL)
        return;
    ewp_source_stop(m);
    if (s->demux != NULL)
        ewp_demux_remove(s->demux, m);
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        s->members = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    m->next = m->prev = NULL;
    m->src = NULL;
    if (--s->nmembers == 0)
        destroy(s);
}

/* Another member of m's source, or NULL */
struct ewp_source_member *
ewp_source_other(const struct ewp_source_member *m)
{
    if (m->src == NULL)
        return NULL;
    return m->src->members != m ? m->src->members : m->next;
}

int
ewp_source_members(const struct ewp_source_member *m)
{
    return m->src != NULL ? m->src->nmembers : 0;
}

pcap_t *
ewp_source_pcap(const struct ewp_source_member *m)
{
    return m->src != NULL ? m->src->p : NULL;
}

int
ewp_source_exclusive(const struct ewp_source_member *m)
{
    return m->src != NULL && m->src->o.exclusive;
}

/*
 * m's program (a copy is kept; NULL or empty: every packet). An exclusive
 * source sets it as the kernel filter instead, as a capture of its own
 * always did.
 */
int
ewp_source_setprog(struct ewp_source_member *m, const struct bpf_program *prog, char *errbuf,
                   size_t errlen)
{
    struct ewp_source *s = m->src;

    if (s == NULL) {
        (void)snprintf(errbuf, errlen, "capture closed");
        return -1;
    }
    if (s->o.exclusive)
        return ewp_device_setprog(s->p, prog, &s->own, errbuf, errlen);
    if (ewp_demux_set(s->demux, m, prog) < 0) {
        (void)snprintf(errbuf, errlen, "%s",
                       errno == EINVAL ? "invalid BPF program" : "out of memory");
        return -1;
    }
    return 0;
}

/* m reads (again); the source reads while any member does */
void
ewp_source_start(struct ewp_source_member *m)
{
    struct ewp_source *s = m->src;

    if (s == NULL || m->active || m->failed || s->failed)
        return;
    m->active = 1;
    m->started = 1;
    s->nactive++;
    watch(s);
}

/* m stops reading: what its program accepts from now on is missed. With
 * no member reading, the source stops too (in the middle of a dispatch:
 * the rest stays in the ring; libpcap resumes there). */
void
ewp_source_stop(struct ewp_source_member *m)
{
    struct ewp_source *s = m->src;

    if (s == NULL || !m->active)
        return;
    m->active = 0;
    if (--s->nactive > 0)
        return;
    if (s->dispatching)
        pcap_breakloop(s->p);
    unwatch(s);
}

/*
 * m's counts. A member of a shared source: ps_recv the packets its program
 * accepted since it first read, ps_drop the ring's drops since it joined
 * plus those of its packets it missed while paused, ps_ifdrop the
 * interface's drops since it joined. An exclusive source: pcap_stats.
 */
int
ewp_source_stats(struct ewp_source_member *m, struct pcap_stat *ps, char *errbuf,
                 size_t errlen)
{
    struct ewp_source *s = m->src;
    struct pcap_stat now;

    memset(ps, 0, sizeof(*ps));
    if (s == NULL) {
        (void)snprintf(errbuf, errlen, "capture closed");
        return -1;
    }
    memset(&now, 0, sizeof(now));
    if (pcap_stats(s->p, &now) < 0) {
        (void)snprintf(errbuf, errlen, "%s", pcap_geterr(s->p));
        return -1;
    }
    if (s->o.exclusive) {
        *ps = now;
        return 0;
    }
    ps->ps_recv = (u_int)m->recv;
    ps->ps_drop = (u_int)(now.ps_drop - m->base.ps_drop + m->missed);
    ps->ps_ifdrop = now.ps_ifdrop - m->base.ps_ifdrop;
    return 0;
}

/*
 * Is the interface still there? (libpcap reports a vanished interface
 * only when it reads, and with a kernel filter that rejects every packet
 * it never does.) Asked once per source and loop iteration however many
 * members ask. Returns -1, with every member told once, when it is gone.
 */
int
ewp_source_check(struct ewp_source_member *m)
{
    struct ewp_source *s = m->src;
    char reason[PCAP_ERRBUF_SIZE];
    int idx;

    if (s == NULL || s->failed || s->ifindex == 0 || s->checked == ev_now(s->loop))
        return 0;
    s->checked = ev_now(s->loop);
    idx = ewp_device_ifindex(s->fd, s->device);
    if (idx == (int)s->ifindex || (idx == 0 && (errno == EMFILE || errno == ENFILE)))
        return 0; /* there; or we cannot tell (out of descriptors): it stays */
    if (ewp_device_error(s->fd, s->device, reason, sizeof(reason)) == 0)
        (void)snprintf(reason, sizeof(reason), "The interface disappeared");
    fail(s, reason);
    return -1;
}

/*
 * A reference to the pcap_t for a compile job (pcapshare.h), for an
 * exclusive source only: its program goes to the kernel, which reads an
 * 802.1Q tag from the packet's metadata, as libpcap's code for a live
 * handle does (`vlan' with ancillary loads). A shared source's programs
 * run here on the packets as libpcap hands them over, where that tag is
 * back in the bytes: they are compiled against a dead handle of the same
 * link type (NULL), whose code reads the bytes.
 */
struct ewp_pcapshare *
ewp_source_share(struct ewp_source_member *m)
{
    struct ewp_source *s = m->src;

    if (s == NULL || !s->o.exclusive)
        return NULL;
    if (s->share == NULL && (s->share = ewp_pcapshare_new(s->p)) == NULL)
        return NULL;
    return ewp_pcapshare_ref(s->share);
}

static int
same_opts(const struct ewp_capture_opts *a, const struct ewp_capture_opts *b)
{
    const char *ka = a->kernel_filter != NULL ? a->kernel_filter : "";
    const char *kb = b->kernel_filter != NULL ? b->kernel_filter : "";

    return a->snaplen == b->snaplen && a->promisc == b->promisc &&
           a->immediate == b->immediate &&
           (a->immediate || a->timeout_ms == b->timeout_ms) && a->buffer == b->buffer &&
           a->monitor == b->monitor && a->nano == b->nano && strcmp(ka, kb) == 0;
}

static struct ewp_source *
find(struct ev_loop *loop, const char *dev, const struct ewp_capture_opts *o)
{
    struct ewp_source *s;

    for (s = registry; s != NULL; s = s->next)
        if (s->loop == loop && strcmp(s->device, dev) == 0 && same_opts(&s->o, o))
            return s;
    return NULL;
}

/* A source activated, non-blocking, its kernel filter set, listed unless
 * exclusive, not yet watched; NULL with the reason in errbuf */
static struct ewp_source *
create(struct ev_loop *loop, const char *dev, const struct ewp_capture_opts *o, char *errbuf,
       size_t errlen)
{
    const struct timeval *tmo;
    struct ewp_source *s;
    pcap_t *p;

    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->device = strdup(dev)) == NULL ||
        (o->kernel_filter != NULL && (s->kfilter = strdup(o->kernel_filter)) == NULL) ||
        (!o->exclusive && (s->demux = ewp_demux_new()) == NULL)) {
        if (s != NULL) {
            free(s->device);
            free(s->kfilter);
        }
        free(s);
        (void)snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->o.kernel_filter = s->kfilter;
    s->loop = loop;
    s->fd = -1;

    p = ewp_device_open(dev, o, errbuf, errlen);
    if (p == NULL) {
        destroy(s);
        return NULL;
    }
    s->p = p;
    s->ifindex = if_nametoindex(dev);
    s->fd = pcap_get_selectable_fd(p);
    tmo = pcap_get_required_select_timeout(p);
    ev_io_init(&s->io, readable_cb, s->fd < 0 ? 0 : s->fd, EV_READ);
    s->io.data = s;
    ev_timer_init(&s->timer, poll_cb, POLL_INTERVAL,
                  tmo != NULL ? (double)tmo->tv_sec + tmo->tv_usec / 1e6 : POLL_INTERVAL);
    s->timer.data = s;
    if (!o->exclusive) {
        s->next = registry;
        if (registry != NULL)
            registry->prev = s;
        registry = s;
        s->listed = 1;
    }
    return s;
}

/* s unwatched, unlisted, its pcap_t closed (now, or after a running
 * compile) and freed; it has no member */
static void
destroy(struct ewp_source *s)
{
    unwatch(s);
    unlist(s);
    if (s->share != NULL)
        ewp_pcapshare_close(s->share);
    else if (s->p != NULL)
        pcap_close(s->p);
    ewp_demux_free(s->demux);
    free(s->own.bf_insns);
    free(s->match);
    free(s->touched);
    free(s->device);
    free(s->kfilter);
    free(s);
}

/* m on s's list, in its demux (every packet until it has a program), its
 * base counts taken; -1: out of memory, m in nothing */
static int
add_member(struct ewp_source *s, struct ewp_source_member *m)
{
    if ((size_t)s->nmembers + 1 > s->room) {
        size_t room = s->room ? 2 * s->room : 4;
        void **match = realloc(s->match, room * sizeof(*match));
        struct ewp_source_member **touched;

        if (match == NULL)
            return -1;
        s->match = match;
        touched = realloc(s->touched, room * sizeof(struct ewp_source_member *));
        if (touched == NULL)
            return -1;
        s->touched = touched;
        s->room = room;
    }
    if (s->demux != NULL && ewp_demux_set(s->demux, m, NULL) < 0)
        return -1;
    if (!s->o.exclusive && s->nmembers > 0 && pcap_stats(s->p, &m->base) < 0)
        memset(&m->base, 0, sizeof(m->base));
    m->src = s;
    m->prev = NULL;
    m->next = s->members;
    if (s->members != NULL)
        s->members->prev = m;
    s->members = m;
    s->nmembers++;
    return 0;
}

static void
unlist(struct ewp_source *s)
{
    if (!s->listed)
        return;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        registry = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->listed = 0;
}

static void
watch(struct ewp_source *s)
{
    if (s->p == NULL || s->watching || s->failed)
        return;
    if (s->fd >= 0)
        ev_io_start(s->loop, &s->io);
    if (s->fd < 0 || pcap_get_required_select_timeout(s->p) != NULL)
        ev_timer_start(s->loop, &s->timer);
    s->watching = 1;
    /* Packets may already wait in the ring: a level-triggered fd reports
     * them at the next loop iteration. */
}

static void
unwatch(struct ewp_source *s)
{
    if (!s->watching)
        return;
    ev_io_stop(s->loop, &s->io);
    ev_timer_stop(s->loop, &s->timer);
    s->watching = 0;
}

/* The source is over: unwatched, out of the registry (a new open of its
 * key makes a new one), every member told once; members stay until they
 * leave. */
static void
fail(struct ewp_source *s, const char *reason)
{
    struct ewp_source_member *m, *next;

    if (s->dispatching)
        pcap_breakloop(s->p);
    unwatch(s);
    unlist(s);
    s->failed = 1;
    for (m = s->members; m != NULL; m = next) {
        next = m->next;
        if (m->active) {
            m->active = 0;
            s->nactive--;
        }
        if (m->failed)
            continue;
        m->failed = 1;
        if (m->ops != NULL && m->ops->error != NULL)
            m->ops->error(m->who, reason);
    }
}

static void
readable_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    dispatch(w->data);
}

static void
poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    dispatch(w->data);
}

static void
dispatch(struct ewp_source *s)
{
    char reason[PCAP_ERRBUF_SIZE];
    size_t i;
    int n;

    if (s->p == NULL || s->failed)
        return;
    s->ntouched = 0;
    s->dispatching = 1;
    n = pcap_dispatch(s->p, -1, handler, (unsigned char *)s);
    s->dispatching = 0;
    for (i = 0; i < s->ntouched; i++) {
        struct ewp_source_member *m = s->touched[i];

        m->touched = 0;
        if (m->ops->flush != NULL)
            m->ops->flush(m->who);
    }
    s->ntouched = 0;
    if (n == 0 && s->fd >= 0) {
        /* Readable with nothing to read: in block mode (TPACKET_V3)
         * libpcap does not look at the socket's error, and the fd would
         * stay readable for ever once the interface is gone. */
        if (ewp_device_error(s->fd, s->device, reason, sizeof(reason)) < 0)
            fail(s, reason);
        return;
    }
    if (n == PCAP_ERROR) {
        (void)snprintf(reason, sizeof(reason), "%s", pcap_geterr(s->p));
        fail(s, reason);
    }
}

static void
handler(unsigned char *user, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    struct ewp_source *s = (struct ewp_source *)user;
    size_t i, n;

    if (s->o.exclusive) { /* the kernel filtered it, or its program here */
        if (s->members != NULL &&
            (s->own.bf_len == 0 || ewp_demux_run_one(&s->own, h, bytes)))
            give(s, s->members, h, bytes);
        return;
    }
    n = ewp_demux_match(s->demux, h, bytes, s->match);
    for (i = 0; i < n; i++)
        give(s, s->match[i], h, bytes);
}

static void
give(struct ewp_source *s, struct ewp_source_member *m, const struct pcap_pkthdr *h,
     const unsigned char *bytes)
{
    if (!m->started || m->failed)
        return; /* not reading yet (its open waits for its filter) */
    m->recv++;
    if (!m->active) {
        m->missed++;
        return;
    }
    if (!m->touched) {
        m->touched = 1;
        s->touched[s->ntouched++] = m;
    }
    m->ops->packet(m->who, h, bytes);
}
