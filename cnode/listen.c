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
#include <unistd.h>

#include <ei.h>
#include <ev.h>

#include "dist.h"
#include "handshake.h"
#include "listen.h"
#include "log.h"

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
    struct ewp_hs_conn *next;    /* all handshakes */
};

struct ewp_listener {
    struct ev_loop *loop;        /* the one loop */
    ei_cnode *ec;                /* our identity */
    struct ewp_dist *dist;       /* where peers go */
    int fd;                      /* the listen socket */
    int port;                    /* its port */
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

/* NULL: error in errbuf */
struct ewp_listener *
ewp_listen_new(struct ev_loop *loop, const struct ewp_listen_config *cfg,
               struct ewp_dist *dist, char *errbuf, size_t errlen)
{
    struct in_addr addr = cfg->addr;
    struct ewp_listener *l;

    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    l->loop = loop;
    l->ec = cfg->ec;
    l->dist = dist;
    l->port = cfg->port;
    l->fd = ei_xlisten(l->ec, &addr, &l->port, 128);
    if (l->fd < 0) {
        (void)snprintf(errbuf, errlen, "listen on %s:%d: %s", inet_ntoa(cfg->addr),
                       cfg->port, strerror(errno));
        free(l);
        return NULL;
    }
    (void)fcntl(l->fd, F_SETFD, FD_CLOEXEC);
    (void)fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
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
        if (ss.ss_family == AF_INET)
            (void)inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&ss)->sin_addr, c->addr,
                            sizeof(c->addr));
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
        ewp_hs_init(&c->hs, ei_thisnodename(l->ec), l->ec->ei_connect_cookie,
                    l->ec->creation, challenge, EWP_DFLAG_OURS);
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
    n = read(c->fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        hs_close(c, "closed during handshake");
        return;
    }
    if (n < 0)
        return;
    rv = ewp_hs_input(&c->hs, buf, (size_t)n, &used);
    if (c->hs.out_len > 0) {
        /* a fresh socket's buffer takes these few hundred bytes at once */
        if (send(c->fd, c->hs.out, c->hs.out_len, MSG_NOSIGNAL) != (ssize_t)c->hs.out_len) {
            hs_close(c, "cannot write handshake");
            return;
        }
        c->hs.out_len = 0;
    }
    if (rv < 0) {
        hs_close(c, c->hs.error);
        return;
    }
    if (rv == 0)
        return;

    /* the handshake done: the socket and whatever came after it move on */
    p = ewp_dist_adopt(l->dist, c->fd, c->hs.peer_name, buf + used, (size_t)n - used);
    if (p == NULL) {
        hs_close(c, "out of memory");
        return;
    }
    c->fd = -1;
    hs_close(c, NULL);
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

