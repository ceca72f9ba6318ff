/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Accepting connections. Each accepted socket is non-blocking and runs the
 * distribution handshake (handshake.c) under HANDSHAKE_SECS; at most
 * HANDSHAKES_MAX run at once, and when a new one comes the oldest goes, so
 * that a flood of silent clients costs a timer and a few hundred bytes
 * each and never locks a real node out. A completed handshake becomes a
 * peer of dist.c (ewp_dist_adopt), with any bytes that came after it.
 * The epmd registration is epmd.c's.
 *
 * With TLS (tls.c), each connection first runs the TLS handshake, stepped
 * on readiness under the same timer, then the distribution handshake
 * inside it with 4-byte lengths; a plaintext client is refused by its
 * first byte. The listen socket is our own (ei_xlisten is IPv4 only):
 * IPv6 and dual stack (:: with IPV6_V6ONLY off, the default where the
 * host has IPv6), or IPv4.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <ei.h>
#include <ev.h>

#include "dist.h"
#include "handshake.h"
#include "listen.h"
#include "log.h"
#include "tls.h"
#include "xport.h"

#define HANDSHAKE_SECS 5.0      /* a handshake not done by then is dropped */
#define HANDSHAKES_MAX 64       /* handshakes in progress at once */
#define ACCEPTS_PER_READY 16    /* connections accepted per readiness */
#define EMFILE_PAUSE 0.5        /* seconds accepting pauses when out of descriptors */

/* A connection in its handshake */
struct ewp_hs_conn {
    struct ewp_listener *l;      /* where it was accepted */
    int fd;                      /* accepted, O_NONBLOCK */
    char addr[64];               /* peer address, for the log */
    ev_io rio;                   /* readable */
    ev_timer timeout;            /* HANDSHAKE_SECS */
    struct ewp_hs hs;            /* the state machine */
    struct ewp_xport *xp;        /* TLS, or NULL */
    int tls_done;                /* the TLS handshake is over */
    struct ewp_hs_conn *next;    /* all handshakes */
};

struct ewp_listener {
    struct ev_loop *loop;        /* the one loop */
    ei_cnode *ec;                /* our identity */
    struct ewp_dist *dist;       /* where peers go */
    int fd;                      /* the listen socket */
    int port;                    /* its port */
    struct ewp_tls *tls;         /* TLS required (not ours), or NULL */
    ev_io accept_w;              /* readable */
    ev_timer resume_w;           /* accepting paused: out of descriptors */
    int reserve;                 /* a spare descriptor (/dev/null), or -1 */
    int failed;                  /* no randomness: the daemon must stop */
    struct ewp_hs_conn *hs;      /* handshakes in progress, newest first */
    int nhs;                     /* how many */
};

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);
static void resume_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void out_of_fds(struct ewp_listener *l);
static void hs_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void hs_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void hs_close(struct ewp_hs_conn *c, const char *why);
static int hs_tls_step(struct ewp_hs_conn *c);
static ssize_t hs_read(struct ewp_hs_conn *c, char *buf, size_t len);
static int listen_socket(const char *addr, int port, char *errbuf, size_t errlen);
static void peer_addr(const struct sockaddr_storage *ss, char *out, size_t outlen);

/* NULL: error in errbuf */
struct ewp_listener *
ewp_listen_new(struct ev_loop *loop, const struct ewp_listen_config *cfg,
               struct ewp_dist *dist, char *errbuf, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    struct ewp_listener *l;

    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    l->loop = loop;
    l->ec = cfg->ec;
    l->dist = dist;
    l->tls = cfg->tls;
    l->fd = listen_socket(cfg->addr, cfg->port, errbuf, errlen);
    if (l->fd < 0) {
        free(l);
        return NULL;
    }
    memset(&ss, 0, sizeof(ss));
    (void)getsockname(l->fd, (struct sockaddr *)&ss, &sslen);
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)(void *)&ss)->sin_port);
    ev_io_init(&l->accept_w, accept_cb, l->fd, EV_READ);
    l->accept_w.data = l;
    ev_io_start(loop, &l->accept_w);
    ev_timer_init(&l->resume_w, resume_cb, EMFILE_PAUSE, 0.);
    l->resume_w.data = l;
    l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return l;
}

int
ewp_listen_port(const struct ewp_listener *l)
{
    return l->port;
}

/* getrandom failed: main.c exits with status 1 */
int
ewp_listen_failed(const struct ewp_listener *l)
{
    return l != NULL && l->failed;
}

void
ewp_listen_free(struct ewp_listener *l)
{
    if (l == NULL)
        return;
    while (l->hs != NULL)
        hs_close(l->hs, "shutdown");
    ev_io_stop(l->loop, &l->accept_w);
    ev_timer_stop(l->loop, &l->resume_w);
    (void)close(l->fd);
    if (l->reserve >= 0)
        (void)close(l->reserve);
    free(l);
}

/* Accept without blocking; the handshake runs in hs_read_cb. */
static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ewp_listener *l = w->data;
    struct sockaddr_storage ss;
    struct ewp_hs_conn *c;
    socklen_t sslen;
    uint32_t challenge;
    int fd, n;

    (void)revents;
    for (n = 0; n < ACCEPTS_PER_READY; n++) {
        sslen = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        fd = accept4(w->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                out_of_fds(l);
            else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                EWP_ERR("accept: %s", strerror(errno));
            return;
        }
        if (l->nhs >= HANDSHAKES_MAX) {
            /* Full: the oldest handshake goes. A real node finishes its
             * handshake in milliseconds, so what has waited longest is a
             * silent client; evicting it keeps a flood of them from
             * locking every node out. */
            struct ewp_hs_conn *oldest = l->hs;

            while (oldest->next != NULL)
                oldest = oldest->next;
            hs_close(oldest, "evicted: too many handshakes in progress");
        }
        if ((c = calloc(1, sizeof(*c))) == NULL) {
            EWP_ERR("out of memory for a handshake: connection closed");
            (void)close(fd);
            continue;
        }
        c->l = l;
        c->fd = fd;
        peer_addr(&ss, c->addr, sizeof(c->addr));
        if (getrandom(&challenge, sizeof(challenge), 0) != sizeof(challenge)) {
            /* a predictable challenge would let a recorded handshake be
             * replayed: no fallback, the daemon stops (main.c) */
            EWP_ERR("getrandom: %s: stopping", strerror(errno));
            l->failed = 1;
            (void)close(fd);
            free(c);
            ev_break(loop, EVBREAK_ALL);
            return;
        }
        if (l->tls != NULL && (c->xp = ewp_tls_conn_new(l->tls, fd)) == NULL) {
            EWP_ERR("out of memory for a TLS handshake: connection closed");
            (void)close(fd);
            free(c);
            continue;
        }
        ewp_hs_init(&c->hs, ei_thisnodename(l->ec), l->ec->ei_connect_cookie,
                    l->ec->creation, challenge, EWP_DFLAG_OURS);
        if (c->xp != NULL)
            ewp_hs_set_tls(&c->hs);
        ev_io_init(&c->rio, hs_read_cb, fd, EV_READ);
        c->rio.data = c;
        ev_timer_init(&c->timeout, hs_timeout_cb, HANDSHAKE_SECS, 0);
        c->timeout.data = c;
        ev_io_start(loop, &c->rio);
        ev_timer_start(loop, &c->timeout);
        c->next = l->hs;
        l->hs = c;
        l->nhs++;
    }
}

/*
 * Out of descriptors: the pending connection stays ready, and a level-
 * triggered watcher would call us again at once, for ever (a spinning
 * loop, a flooded log). The spare descriptor is given up to accept it and
 * close it at once (the client sees the connection closed, not a hang),
 * and accepting pauses for EMFILE_PAUSE seconds; connected nodes and their
 * captures go on. One line is logged per pause.
 */
static void
out_of_fds(struct ewp_listener *l)
{
    int fd;

    if (l->reserve >= 0) {
        (void)close(l->reserve);
        fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            (void)close(fd);
        l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    EWP_ERR("accept: %s: connections refused for %.1f s", strerror(EMFILE), EMFILE_PAUSE);
    ev_io_stop(l->loop, &l->accept_w);
    ev_timer_set(&l->resume_w, EMFILE_PAUSE, 0.);
    ev_timer_start(l->loop, &l->resume_w);
}

static void
resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ewp_listener *l = w->data;

    (void)revents;
    if (l->reserve < 0)
        l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ev_io_start(loop, &l->accept_w);
}

static void
hs_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ewp_hs_conn *c = w->data;
    struct ewp_listener *l = c->l;
    struct ewp_peer *p;
    char buf[EWP_HS_BUF];
    size_t used = 0;
    ssize_t n;
    int rv;

    (void)loop;
    (void)revents;
    if (c->xp != NULL && !c->tls_done && hs_tls_step(c) <= 0)
        return;
    n = hs_read(c, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        hs_close(c, "closed during handshake");
        return;
    }
    if (n < 0)
        return;
    rv = ewp_hs_input(&c->hs, buf, (size_t)n, &used);
    if (c->hs.out_len > 0) {
        /* a fresh socket's buffer takes these few hundred bytes at once */
        if ((c->xp == NULL ? send(c->fd, c->hs.out, c->hs.out_len, MSG_NOSIGNAL)
                           : c->xp->ops->write(c->xp, c->hs.out, c->hs.out_len)) !=
                (ssize_t)c->hs.out_len ||
            (c->xp != NULL && c->xp->ops->unsent(c->xp) > 0)) {
            hs_close(c, "cannot write handshake");
            return;
        }
        c->hs.out_len = 0;
    }
    if (rv < 0) {
        hs_close(c, c->hs.error);
        return;
    }
    if (rv == 0) {
        /* TLS may hold more decrypted bytes than buf took: not signalled by the fd */
        if (c->xp != NULL && c->xp->ops->pending(c->xp) > 0)
            ev_feed_event(l->loop, &c->rio, EV_READ);
        return;
    }

    /* the handshake done: the socket and whatever came after it move on */
    p = ewp_dist_adopt_xport(l->dist, c->fd, c->xp, c->hs.peer_name, buf + used,
                             (size_t)n - used);
    if (p == NULL) {
        hs_close(c, "out of memory");
        return;
    }
    if (c->hs.peer_flags & c->hs.our_flags & EWP_DFLAG_DIST_HDR_ATOM_CACHE)
        (void)ewp_peer_use_atom_cache(p); /* fails: the peer is dropped */
    c->fd = -1;
    c->xp = NULL;
    hs_close(c, NULL);
}

/* A step of the TLS handshake. Returns 1 when it is over (the distribution
 * handshake may read), 0 to wait for the readiness it asked for, -1 when
 * the connection was refused and closed. */
static int
hs_tls_step(struct ewp_hs_conn *c)
{
    char err[256];
    int want_write, rv;

    rv = ewp_tls_handshake(c->xp, &want_write, err, sizeof(err));
    if (rv < 0) {
        hs_close(c, err);
        return -1;
    }
    if (rv == 0 && (int)(c->rio.events & EV_WRITE) == (want_write ? EV_WRITE : 0))
        return 0;
    /* watch what OpenSSL waits for: writable while it asks, else readable */
    ev_io_stop(c->l->loop, &c->rio);
    ev_io_set(&c->rio, c->fd, rv == 0 && want_write ? EV_WRITE : EV_READ);
    ev_io_start(c->l->loop, &c->rio);
    if (rv == 0)
        return 0;
    c->tls_done = 1;
    return 1;
}

static ssize_t
hs_read(struct ewp_hs_conn *c, char *buf, size_t len)
{
    return c->xp == NULL ? read(c->fd, buf, len) : c->xp->ops->read(c->xp, buf, len);
}

static void
hs_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    hs_close(w->data, "handshake timeout");
}

/* End a handshake: why == NULL when it succeeded and the fd moved on. */
static void
hs_close(struct ewp_hs_conn *c, const char *why)
{
    struct ewp_listener *l = c->l;
    struct ewp_hs_conn **cc;

    ev_io_stop(l->loop, &c->rio);
    ev_timer_stop(l->loop, &c->timeout);
    if (why != NULL)
        EWP_LOG(1, "connection from %s%s%s refused: %s", c->addr[0] ? c->addr : "?",
                c->hs.peer_name[0] ? " as " : "", c->hs.peer_name, why);
    if (c->xp != NULL)
        c->xp->ops->free(c->xp);
    if (c->fd >= 0)
        (void)close(c->fd);
    for (cc = &l->hs; *cc != NULL; cc = &(*cc)->next)
        if (*cc == c) {
            *cc = c->next;
            break;
        }
    l->nhs--;
    free(c);
}


/*
 * The listen socket, non-blocking: addr NULL is :: in dual stack (IPv4
 * clients arrive as ::ffff:a.b.c.d), or 0.0.0.0 on a host without IPv6;
 * else an IPv4 or IPv6 literal. Returns the fd, or -1 with errbuf.
 */
static int
listen_socket(const char *addr, int port, char *errbuf, size_t errlen)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&ss;
    socklen_t sslen;
    int fd, one = 1, zero = 0;

    memset(&ss, 0, sizeof(ss));
    if (addr == NULL || inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        if (addr == NULL)
            sin6->sin6_addr = in6addr_any;
        sslen = sizeof(*sin6);
    } else if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof(*sin);
    } else {
        (void)snprintf(errbuf, errlen, "listen: not an address: %s", addr);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && addr == NULL && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
        /* no IPv6 on this host: IPv4 only */
        memset(&ss, 0, sizeof(ss));
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sslen = sizeof(*sin);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) {
        (void)snprintf(errbuf, errlen, "listen: socket: %s", strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6 && addr == NULL)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 128) < 0) {
        int saved = errno;

        (void)close(fd);
        (void)snprintf(errbuf, errlen, "listen on %s port %d: %s",
                       addr != NULL ? addr : "::", port, strerror(saved));
        return -1;
    }
    return fd;
}

/* For the log: a.b.c.d (IPv4-mapped too), or the IPv6 address */
static void
peer_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)ss;

    out[0] = '\0';
    if (ss->ss_family == AF_INET)
        (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ss)->sin_addr,
                        out, (socklen_t)outlen);
    else if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
        (void)inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], out, (socklen_t)outlen);
    else if (ss->ss_family == AF_INET6)
        (void)inet_ntop(AF_INET6, &sin6->sin6_addr, out, (socklen_t)outlen);
}
