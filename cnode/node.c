/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Distribution for ewpcapd. ei does the listen and the epmd registration.
 * ei's accept, receive and send cannot serve a non-blocking loop (its
 * handshake blocks on a silent client, a partial read loses bytes, a
 * timed-out write corrupts the stream), so connections are accepted
 * non-blocking, the handshake runs as a state machine (handshake.c) under a
 * timeout, and frames are read and written here:
 *
 *   <<Len:32/big, 112, 131, Control, [131, Message]>>    Len = 0 is a tick
 *
 * Input is read into a per-peer buffer, each complete frame checked term by
 * term (ewp_decode_check) before anything decodes it, and handed to
 * command.c. Output goes into a per-peer buffer written from the loop when
 * the socket is writable: nobody ever blocks on a slow peer. Above
 * EWP_OUT_HIGH queued bytes a peer counts as congested and command.c pauses
 * the captures that feed it; below EWP_OUT_LOW they resume.
 *
 * A peer that is silent for the tick time is dropped; the peer's own ticks
 * are answered and, when we have sent nothing for a quarter of the tick
 * time, we tick too. Dropping a peer tells command.c, which closes every
 * handle of that node. Peers are freed in a prepare watcher, after every
 * callback of the loop iteration has run, so no callback sees a freed peer.
 *
 * Output is written by the same prepare watcher, once per peer and loop
 * iteration, as soon as the iteration's callbacks have queued it (all the
 * packets of one pcap_dispatch leave in one send, and a lone packet in
 * immediate mode without waiting a loop turn for EPOLLOUT); only what the
 * socket does not take waits for the writable watcher.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <ei.h>
#include <ev.h>

#include "command.h"
#include "decode.h"
#include "encode.h"
#include "handshake.h"
#include "log.h"
#include "netns.h"
#include "rpc.h"
#include "node.h"

#define HANDSHAKE_SECS 5.0      /* a handshake not done by then is dropped */
#define HANDSHAKES_MAX 64       /* handshakes in progress at once */
#define ACCEPTS_PER_READY 16    /* connections accepted per readiness */
#define READ_CHUNK (64u << 10)  /* bytes read per readiness */
#define REPUBLISH_SECS 1.0      /* retry interval after epmd went away */
#define REPUBLISH_TRIES 60      /* then give up and exit */
#define OUT_KEEP (1u << 20)     /* an idle output buffer larger than this is freed */

struct ewp_peer {
    int fd;                         /* the connection, O_NONBLOCK */
    char name[MAXNODELEN + 1];      /* the peer's node name */
    ev_io rio;                      /* readable */
    ev_io wio;                      /* writable, started while output waits */
    ev_timer tick;                  /* liveness and our own ticks */
    ev_tstamp last_rx;              /* when a byte last arrived */
    unsigned long sent;             /* frames queued, for the tick check */
    unsigned long sent_at_tick;     /* ... as seen by the last tick check */
    char *in;                       /* input buffer */
    size_t in_len;                  /* bytes in it */
    size_t in_cap;                  /* its size */
    char *out;                      /* output buffer */
    size_t out_head;                /* first unwritten byte */
    size_t out_len;                 /* end of queued bytes */
    size_t out_cap;                 /* its size */
    int congested;                  /* above EWP_OUT_HIGH, not yet below EWP_OUT_LOW */
    int dead;                       /* dropped, waiting to be freed */
    struct ewp_peer *next;          /* all peers, or the dead list */
};

/* A connection in its handshake */
struct ewp_hs_conn {
    int fd;                      /* accepted, O_NONBLOCK */
    char addr[64];               /* peer address, for the log */
    ev_io rio;                   /* readable */
    ev_timer timeout;            /* HANDSHAKE_SECS */
    struct ewp_hs hs;            /* the state machine */
    struct ewp_hs_conn *next;    /* all handshakes */
};

static struct {
    struct ev_loop *loop;        /* the one loop */
    ei_cnode ec;                 /* our node */
    int listen_fd;               /* ei_xlisten */
    int port;                    /* its port */
    int epmd_fd;                 /* kept open: closing it unregisters */
    ev_io accept_w;              /* listen socket readable */
    ev_io epmd_w;                /* epmd connection readable: it went away */
    ev_timer republish_w;        /* retries ei_publish */
    ev_prepare reap_w;           /* writes queued output, frees dead peers */
    int republish_tries;         /* retries so far */
    int failed;                  /* gave up on epmd */
    double ticktime;             /* --ticktime */
    struct ewp_peer *peers;      /* live peers */
    struct ewp_peer *dead;       /* peers to free */
    struct ewp_hs_conn *hs;      /* handshakes in progress */
    int nhs;                     /* how many */
    int flushing;                /* in reap_cb's writes: queue, then watch */
} node = {.listen_fd = -1, .epmd_fd = -1};

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);
static void hs_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void hs_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void hs_close(struct ewp_hs_conn *c, const char *why);
static struct ewp_peer *peer_new(int fd, const char *name);
static void epmd_cb(struct ev_loop *loop, ev_io *w, int revents);
static void republish_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void reap_cb(struct ev_loop *loop, ev_prepare *w, int revents);
static void read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void peer_write(struct ewp_peer *p);
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents);
static int publish(void);
static int start_epmd(void);
static void peer_drop(struct ewp_peer *p, const char *why);
static void peer_free(struct ewp_peer *p);
static int frames(struct ewp_peer *p);
static void frame(struct ewp_peer *p, const char *buf, size_t len);
static int out_reserve(struct ewp_peer *p, size_t need);
static int out_reserve_keep(struct ewp_peer *p, size_t need, size_t keep);
static void out_queued(struct ewp_peer *p);
static void put32(char *b, uint32_t v);
static uint32_t get32(const char *b);

/*
 * Returns:
 *  0 - listening and registered with epmd
 * -1 - error in errbuf
 */
int
ewp_node_init(struct ev_loop *loop, const struct ewp_node_config *cfg, char *errbuf,
              size_t errlen)
{
    char nodename[MAXNODELEN + 1];
    struct in_addr addr = cfg->listen;
    unsigned creation;
    int n;

    node.loop = loop;
    node.ticktime = cfg->ticktime;
    node.port = cfg->port;

    if (ei_init() < 0) {
        (void)snprintf(errbuf, errlen, "ei_init failed");
        return -1;
    }
    n = snprintf(nodename, sizeof(nodename), "%s@%s", cfg->alive, cfg->host);
    if (n < 0 || (size_t)n >= sizeof(nodename)) {
        (void)snprintf(errbuf, errlen, "node name too long");
        return -1;
    }
    /* A fresh creation at each start: pids and refs of a previous daemon of
     * the same name never match ours. epmd may assign its own at publish. */
    creation = ((unsigned)time(NULL) ^ ((unsigned)getpid() << 12)) | 4u;
    if (ei_connect_xinit(&node.ec, cfg->host, cfg->alive, nodename, NULL, cfg->cookie,
                         creation) < 0) {
        (void)snprintf(errbuf, errlen, "ei_connect_xinit failed (cookie?): %s",
                       strerror(errno));
        return -1;
    }

    node.listen_fd = ei_xlisten(&node.ec, &addr, &node.port, 128);
    if (node.listen_fd < 0) {
        (void)snprintf(errbuf, errlen, "listen on %s:%d: %s", inet_ntoa(cfg->listen),
                       cfg->port, strerror(errno));
        return -1;
    }
    (void)fcntl(node.listen_fd, F_SETFD, FD_CLOEXEC);
    (void)fcntl(node.listen_fd, F_SETFL, fcntl(node.listen_fd, F_GETFL) | O_NONBLOCK);

    if (publish() < 0) {
        /* as erl does: start epmd and try again for a few seconds */
        if (start_epmd() == 0)
            for (n = 0; n < 50 && publish() < 0; n++)
                (void)usleep(100 * 1000);
        if (node.epmd_fd < 0) {
            (void)snprintf(errbuf, errlen,
                           "cannot register %s with epmd (name in use, or epmd not running)",
                           nodename);
            (void)close(node.listen_fd);
            node.listen_fd = -1;
            return -1;
        }
    }

    ev_io_init(&node.accept_w, accept_cb, node.listen_fd, EV_READ);
    ev_io_start(loop, &node.accept_w);
    ev_timer_init(&node.republish_w, republish_cb, REPUBLISH_SECS, REPUBLISH_SECS);
    ev_prepare_init(&node.reap_w, reap_cb);
    ev_prepare_start(loop, &node.reap_w);
    EWP_LOG(1, "%s listening on port %d", nodename, node.port);
    return 0;
}

void
ewp_node_close(void)
{
    struct ewp_peer *p;

    while (node.hs != NULL)
        hs_close(node.hs, "shutdown");
    while ((p = node.peers) != NULL)
        peer_drop(p, "shutdown");
    reap_cb(node.loop, &node.reap_w, 0);
    if (node.listen_fd >= 0) {
        ev_io_stop(node.loop, &node.accept_w);
        (void)close(node.listen_fd);
        node.listen_fd = -1;
    }
    ev_timer_stop(node.loop, &node.republish_w);
    ev_prepare_stop(node.loop, &node.reap_w);
    if (node.epmd_fd >= 0) {
        ev_io_stop(node.loop, &node.epmd_w);
        (void)close(node.epmd_fd);
        node.epmd_fd = -1;
    }
}

ei_cnode *
ewp_node_cnode(void)
{
    return &node.ec;
}

const char *
ewp_node_name(void)
{
    return ei_thisnodename(&node.ec);
}

int
ewp_node_port(void)
{
    return node.port;
}

int
ewp_node_failed(void)
{
    return node.failed;
}

/* Queue one frame (body starting with 'p'). Returns 0, or -1 when the peer
 * is gone or has let EWP_OUT_MAX bytes pile up (it is then dropped). */
int
ewp_peer_send(struct ewp_peer *p, const char *body, size_t len)
{
    if (p->dead)
        return -1;
    if (ewp_peer_queued(p) + len + 4 > EWP_OUT_MAX) {
        peer_drop(p, "output buffer full");
        return -1;
    }
    if (out_reserve(p, len + 4) < 0) {
        peer_drop(p, "out of memory");
        return -1;
    }
    put32(p->out + p->out_len, (uint32_t)len);
    memcpy(p->out + p->out_len + 4, body, len);
    p->out_len += len + 4;
    out_queued(p);
    return 0;
}

/* Room for one frame body of at most max bytes, to be filled in place and
 * committed; NULL when packets for this peer must be dropped. */
char *
ewp_peer_reserve(struct ewp_peer *p, size_t max)
{
    return ewp_peer_reserve_more(p, 0, max);
}

/* Grow a frame being filled in place: have bytes of body are written,
 * room for more is wanted. The body may move: use the pointer returned. */
char *
ewp_peer_reserve_more(struct ewp_peer *p, size_t have, size_t more)
{
    if (p->dead || ewp_peer_queued(p) + have + more + 4 > EWP_OUT_PACKET_MAX)
        return NULL;
    if (out_reserve_keep(p, 4 + have + more, 4 + have) < 0)
        return NULL;
    return p->out + p->out_len + 4;
}

/* The frame being filled in place (after ewp_peer_reserve*) */
char *
ewp_peer_frame_body(struct ewp_peer *p)
{
    return p->out + p->out_len + 4;
}

void
ewp_peer_commit(struct ewp_peer *p, size_t used)
{
    put32(p->out + p->out_len, (uint32_t)used);
    p->out_len += used + 4;
    out_queued(p);
}

int
ewp_peer_congested(const struct ewp_peer *p)
{
    return p->congested;
}

size_t
ewp_peer_queued(const struct ewp_peer *p)
{
    return p->out_len - p->out_head;
}

const char *
ewp_peer_name(const struct ewp_peer *p)
{
    return p->name;
}

struct ewp_peer *
ewp_node_peer_by_name(const char *name)
{
    struct ewp_peer *p;

    for (p = node.peers; p != NULL; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

struct ewp_peer *
ewp_node_peer_next(struct ewp_peer *prev)
{
    return prev == NULL ? node.peers : prev->next;
}

/* Accept without blocking; the handshake runs in hs_read_cb. */
static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
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
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                EWP_ERR("accept: %s", strerror(errno));
            return;
        }
        if (node.nhs >= HANDSHAKES_MAX) {
            /* Full: the oldest handshake goes. A real node finishes its
             * handshake in milliseconds, so what has waited longest is a
             * silent client; evicting it keeps a flood of them from
             * locking every node out. */
            struct ewp_hs_conn *oldest = node.hs;

            while (oldest->next != NULL)
                oldest = oldest->next;
            hs_close(oldest, "evicted: too many handshakes in progress");
        }
        if ((c = calloc(1, sizeof(*c))) == NULL) {
            EWP_ERR("out of memory for a handshake: connection closed");
            (void)close(fd);
            continue;
        }
        c->fd = fd;
        if (ss.ss_family == AF_INET)
            (void)inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&ss)->sin_addr, c->addr,
                            sizeof(c->addr));
        if (getrandom(&challenge, sizeof(challenge), GRND_NONBLOCK) != sizeof(challenge))
            challenge = (uint32_t)random();
        ewp_hs_init(&c->hs, ei_thisnodename(&node.ec), node.ec.ei_connect_cookie,
                    node.ec.creation, challenge, EWP_DFLAG_OURS);
        ev_io_init(&c->rio, hs_read_cb, fd, EV_READ);
        c->rio.data = c;
        ev_timer_init(&c->timeout, hs_timeout_cb, HANDSHAKE_SECS, 0);
        c->timeout.data = c;
        ev_io_start(loop, &c->rio);
        ev_timer_start(loop, &c->timeout);
        c->next = node.hs;
        node.hs = c;
        node.nhs++;
    }
}

static void
hs_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ewp_hs_conn *c = w->data;
    struct ewp_peer *p, *old;
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

    /* Done: a node that reconnects under its name had a dead connection. */
    for (old = node.peers; old != NULL; old = old->next)
        if (strcmp(old->name, c->hs.peer_name) == 0) {
            peer_drop(old, "replaced by a new connection");
            break;
        }
    p = peer_new(c->fd, c->hs.peer_name);
    if (p == NULL) {
        hs_close(c, "out of memory");
        return;
    }
    c->fd = -1;
    hs_close(c, NULL);
    if (used < (size_t)n) { /* bytes past the handshake: already frames */
        if (out_reserve(p, 0) < 0 || (p->in = malloc((size_t)n - used)) == NULL) {
            peer_drop(p, "out of memory");
            return;
        }
        memcpy(p->in, buf + used, (size_t)n - used);
        p->in_len = p->in_cap = (size_t)n - used;
        if (frames(p) < 0)
            peer_drop(p, "bad frame");
    }
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
    struct ewp_hs_conn **cc;

    ev_io_stop(node.loop, &c->rio);
    ev_timer_stop(node.loop, &c->timeout);
    if (why != NULL)
        EWP_LOG(1, "connection from %s%s%s refused: %s", c->addr[0] ? c->addr : "?",
                c->hs.peer_name[0] ? " as " : "", c->hs.peer_name, why);
    if (c->fd >= 0)
        (void)close(c->fd);
    for (cc = &node.hs; *cc != NULL; cc = &(*cc)->next)
        if (*cc == c) {
            *cc = c->next;
            break;
        }
    node.nhs--;
    free(c);
}

static struct ewp_peer *
peer_new(int fd, const char *name)
{
    struct ewp_peer *p;
    int one = 1;

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->fd = fd;
    (void)snprintf(p->name, sizeof(p->name), "%s", name);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p->last_rx = ev_now(node.loop);
    ev_io_init(&p->rio, read_cb, fd, EV_READ);
    p->rio.data = p;
    ev_io_init(&p->wio, write_cb, fd, EV_WRITE);
    p->wio.data = p;
    ev_timer_init(&p->tick, tick_cb, node.ticktime / 4, node.ticktime / 4);
    p->tick.data = p;
    ev_io_start(node.loop, &p->rio);
    ev_timer_start(node.loop, &p->tick);
    p->next = node.peers;
    node.peers = p;
    EWP_LOG(1, "connect from %s", p->name);
    return p;
}

static void
epmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    char buf[64];
    ssize_t n;

    (void)revents;
    n = read(w->fd, buf, sizeof(buf));
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    EWP_ERR("epmd closed the registration of %s; registering again", ewp_node_name());
    ev_io_stop(loop, w);
    (void)close(node.epmd_fd);
    node.epmd_fd = -1;
    node.republish_tries = 0;
    ev_timer_again(loop, &node.republish_w);
}

static void
republish_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    if (publish() == 0) {
        EWP_ERR("registered %s with epmd again", ewp_node_name());
        ev_timer_stop(loop, w);
        return;
    }
    if (++node.republish_tries >= REPUBLISH_TRIES) {
        EWP_ERR("epmd did not come back in %d s: exiting", REPUBLISH_TRIES);
        node.failed = 1;
        ev_timer_stop(loop, w);
        ev_break(loop, EVBREAK_ALL);
    }
}

static void
reap_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct ewp_peer *p, *next;

    (void)loop;
    (void)w;
    (void)revents;
    node.flushing = 1;
    for (p = node.peers; p != NULL; p = next) {
        next = p->next;    /* a dropped peer moves to the dead list */
        if (!p->dead && p->out_len > p->out_head && !ev_is_active(&p->wio))
            peer_write(p);
    }
    node.flushing = 0;
    while ((p = node.dead) != NULL) {
        node.dead = p->next;
        peer_free(p);
    }
}

/* ei_publish from the namespace we started in (see netns.c). */
static int
publish(void)
{
    int fd;

    if (ewp_netns_home() < 0)
        return -1;
    fd = ei_publish(&node.ec, node.port);
    if (ewp_netns_away() < 0)
        EWP_ERR("cannot go back to the capture namespace: %s", strerror(errno));
    if (fd < 0)
        return -1;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    node.epmd_fd = fd;
    if (node.loop != NULL) {
        ev_io_init(&node.epmd_w, epmd_cb, fd, EV_READ);
        ev_io_start(node.loop, &node.epmd_w);
    }
    return 0;
}

/* "epmd -daemon", as erl does when no epmd runs. */
static int
start_epmd(void)
{
    char *argv[] = {"epmd", "-daemon", NULL};
    extern char **environ;
    pid_t pid;
    int status;

    if (posix_spawnp(&pid, "epmd", NULL, NULL, argv, environ) != 0) {
        EWP_ERR("cannot start epmd: not in PATH");
        return -1;
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return 0;
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ewp_peer *p = w->data;
    ssize_t n;

    (void)revents;
    if (p->in_cap - p->in_len < READ_CHUNK) {
        size_t cap = p->in_len + READ_CHUNK;
        char *in = realloc(p->in, cap);

        if (in == NULL) {
            peer_drop(p, "out of memory");
            return;
        }
        p->in = in;
        p->in_cap = cap;
    }
    n = read(p->fd, p->in + p->in_len, p->in_cap - p->in_len);
    if (n == 0) {
        peer_drop(p, "connection closed");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            peer_drop(p, strerror(errno));
        return;
    }
    p->last_rx = ev_now(loop);
    p->in_len += (size_t)n;
    if (frames(p) < 0)
        peer_drop(p, "bad frame");
}

/* Handle every complete frame in the input buffer; keep the rest. */
static int
frames(struct ewp_peer *p)
{
    size_t pos = 0;

    while (!p->dead && p->in_len - pos >= 4) {
        uint32_t len = get32(p->in + pos);

        if (len == 0) { /* tick: answer it */
            char tock[4] = {0, 0, 0, 0};

            if (out_reserve(p, 4) == 0) {
                memcpy(p->out + p->out_len, tock, 4);
                p->out_len += 4;
                out_queued(p);
            }
            pos += 4;
            continue;
        }
        if (len > EWP_FRAME_MAX)
            return -1;
        if (p->in_len - pos - 4 < len)
            break;
        frame(p, p->in + pos + 4, len);
        pos += 4 + (size_t)len;
    }
    if (p->dead)
        return 0;
    memmove(p->in, p->in + pos, p->in_len - pos);
    p->in_len -= pos;
    /* a large buffer left behind by one large frame is given back */
    if (p->in_len == 0 && p->in_cap > 4 * READ_CHUNK) {
        free(p->in);
        p->in = NULL;
        p->in_cap = 0;
    }
    return 0;
}

/* One frame: 'p', 131, Control, [131, Message]. Anything malformed is
 * logged and skipped: the stream itself is still in step. */
static void
frame(struct ewp_peer *p, const char *buf, size_t len)
{
    char to_name[MAXATOMLEN];
    erlang_pid from, to;
    int i = 1, ctl, msg = -1, arity, id_len, msg_bad = 0;
    long op;

    if (buf[0] != EWP_PASS_THROUGH || len < 2 || (unsigned char)buf[1] != EWP_VERSION_MAGIC)
        goto bad;
    i = 2;
    ctl = i;
    if (ewp_decode_check(buf, len, &i) < 0)
        goto bad;
    if ((size_t)i < len) {
        if ((unsigned char)buf[i] != EWP_VERSION_MAGIC)
            goto bad;
        msg = i;
        i++;
        if (ewp_decode_check(buf, len, &i) < 0 || (size_t)i != len)
            msg_bad = 1; /* only a call can still be answered, see below */
    }

    i = ctl;
    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity < 1 ||
        ei_decode_long(buf, &i, &op) < 0)
        goto bad;

    EWP_LOG(2, "%s: control %ld, %zu bytes", p->name, op, len);
    if (msg_bad && op != EWP_DOP_REG_SEND && op != EWP_DOP_REG_SEND_TT)
        goto bad;
    switch (op) {
    case EWP_DOP_REG_SEND:    /* {6, From, '', ToName} */
    case EWP_DOP_REG_SEND_TT: /* {16, From, '', ToName, TraceToken} */
        if (arity < 4 || msg < 0 || ei_skip_term(buf, &i) < 0 || ei_skip_term(buf, &i) < 0 ||
            ei_decode_atom(buf, &i, to_name) < 0)
            goto bad;
        if (msg_bad) /* a call we cannot read may still be refused */
            ewp_command_refuse(p, to_name, buf + msg, len - (size_t)msg);
        else
            ewp_command_reg_send(p, to_name, buf + msg, len - (size_t)msg);
        return;

    case EWP_DOP_EXIT:     /* {3, From, To, Reason} */
    case EWP_DOP_EXIT2:    /* {8, From, To, Reason} */
    case EWP_DOP_EXIT_TT:  /* {13, From, To, TraceToken, Reason} */
    case EWP_DOP_EXIT2_TT: /* {18, From, To, TraceToken, Reason} */
        if (arity < 4 || ei_decode_pid(buf, &i, &from) < 0)
            goto bad;
        if (ei_decode_pid(buf, &i, &to) < 0)
            return; /* an exit signal to a port or to nothing of ours */
        ewp_command_exit(p, &from, &to);
        return;

    case EWP_DOP_LINK: /* {1, From, To} */
        if (arity != 3 || ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0)
            goto bad;
        ewp_command_link(p, &from, &to);
        return;

    case EWP_DOP_UNLINK_ID: { /* {35, Id, From, To}: answer {36, Id, To, From} */
        ei_x_buff x;
        int id = i;

        if (arity != 4 || ei_skip_term(buf, &i) < 0)
            goto bad;
        id_len = i - id;
        if (ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0)
            goto bad;
        if (ei_x_new(&x) < 0)
            return;
        if (ewp_encode_unlink_id(&x, EWP_DOP_UNLINK_ID_ACK, buf + id, id_len, &to, &from) == 0)
            (void)ewp_peer_send(p, x.buff, (size_t)x.index);
        ei_x_free(&x);
        return;
    }

    case EWP_DOP_SPAWN_REQUEST:    /* {29, ReqId, From, GL, {M, F, Arity}, Opts} + Args */
    case EWP_DOP_SPAWN_REQUEST_TT: { /* {30, ReqId, From, GL, {M, F, Arity}, Opts, Token} */
        char mod[MAXATOMLEN], fun[MAXATOMLEN];
        int reqid = i, reqid_len, mfa;
        long fa;

        if (arity < 6 || msg < 0 || ei_skip_term(buf, &i) < 0)
            goto bad;
        reqid_len = i - reqid;
        if (ei_decode_pid(buf, &i, &from) < 0 || ei_skip_term(buf, &i) < 0 ||
            ei_decode_tuple_header(buf, &i, &mfa) < 0 || mfa != 3 ||
            ei_decode_atom(buf, &i, mod) < 0 || ei_decode_atom(buf, &i, fun) < 0 ||
            ei_decode_long(buf, &i, &fa) < 0)
            goto bad;
        ewp_rpc_spawn(p, buf + reqid, reqid_len, &from, mod, fun, fa, buf + msg,
                      len - (size_t)msg);
        return;
    }

    case EWP_DOP_MONITOR_P: { /* {19, From, ToProc, Ref} */
        int to_i, ref_i;

        if (arity != 4 || ei_decode_pid(buf, &i, &from) < 0)
            goto bad;
        to_i = i;
        if (ei_skip_term(buf, &i) < 0)
            goto bad;
        ref_i = i;
        if (ei_skip_term(buf, &i) < 0)
            goto bad;
        ewp_command_monitor(p, &from, buf + to_i, ref_i - to_i, buf + ref_i, i - ref_i);
        return;
    }

    case EWP_DOP_MONITOR_P_EXIT: { /* {21, FromProc, ToPid, Ref, Reason} */
        erlang_ref ref;

        if (arity != 5 || ei_decode_pid(buf, &i, &from) < 0 || ei_decode_pid(buf, &i, &to) < 0 ||
            ei_decode_ref(buf, &i, &ref) < 0)
            return; /* a monitor of a name, or not one of ours */
        ewp_command_monitor_exit(p, &from, &to, &ref);
        return;
    }

    default:
        /* SEND to a pid, UNLINK, UNLINK_ID_ACK, demonitors, group leader: nothing to do */
        EWP_LOG(2, "%s: control %ld ignored", p->name, op);
        return;
    }

bad:
    EWP_LOG(1, "%s: malformed frame of %zu bytes skipped", p->name, len);
}

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    peer_write(w->data);
}

/* Send what the socket takes; watch for writable while anything is left. */
static void
peer_write(struct ewp_peer *p)
{
    ssize_t n;

    n = send(p->fd, p->out + p->out_head, p->out_len - p->out_head, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            peer_drop(p, strerror(errno));
        else if (!ev_is_active(&p->wio))
            ev_io_start(node.loop, &p->wio);
        return;
    }
    p->out_head += (size_t)n;
    if (p->out_head < p->out_len) {
        if (!ev_is_active(&p->wio))
            ev_io_start(node.loop, &p->wio);
    } else {
        ev_io_stop(node.loop, &p->wio);
        p->out_head = p->out_len = 0;
        if (p->out_cap > OUT_KEEP) {
            free(p->out);
            p->out = NULL;
            p->out_cap = 0;
        }
    }
    if (p->congested && ewp_peer_queued(p) < EWP_OUT_LOW) {
        p->congested = 0;
        ewp_command_peer_drained(p);
    }
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ewp_peer *p = w->data;

    (void)revents;
    if (ev_now(loop) - p->last_rx > node.ticktime) {
        peer_drop(p, "net tick timeout");
        return;
    }
    if (p->sent == p->sent_at_tick && out_reserve(p, 4) == 0) {
        memset(p->out + p->out_len, 0, 4);
        p->out_len += 4;
        out_queued(p);
    }
    p->sent_at_tick = p->sent;
}

/* Stop the peer now, close its node's handles, free it later (reap_cb). */
static void
peer_drop(struct ewp_peer *p, const char *why)
{
    struct ewp_peer **pp;

    if (p->dead)
        return;
    p->dead = 1;
    EWP_LOG(1, "disconnect %s: %s", p->name, why);
    ev_io_stop(node.loop, &p->rio);
    ev_io_stop(node.loop, &p->wio);
    ev_timer_stop(node.loop, &p->tick);
    for (pp = &node.peers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    ewp_command_peer_down(p);
    p->next = node.dead;
    node.dead = p;
}

static void
peer_free(struct ewp_peer *p)
{
    (void)close(p->fd);
    free(p->in);
    free(p->out);
    free(p);
}

/* Make room for need more bytes at out_len. */
static int
out_reserve(struct ewp_peer *p, size_t need)
{
    return out_reserve_keep(p, need, 0);
}

/* ... keeping the keep bytes already written past out_len. */
static int
out_reserve_keep(struct ewp_peer *p, size_t need, size_t keep)
{
    size_t queued = p->out_len - p->out_head;
    size_t cap;
    char *out;

    if (p->out_cap - p->out_len >= need)
        return 0;
    if (p->out_head > 0) {
        memmove(p->out, p->out + p->out_head, queued + keep);
        p->out_head = 0;
        p->out_len = queued;
        if (p->out_cap - p->out_len >= need)
            return 0;
    }
    cap = p->out_cap < 65536 ? 65536 : p->out_cap;
    while (cap - p->out_len < need)
        cap *= 2;
    out = realloc(p->out, cap);
    if (out == NULL)
        return -1;
    p->out = out;
    p->out_cap = cap;
    return 0;
}

static void
out_queued(struct ewp_peer *p)
{
    p->sent++;
    /* queued by the flush itself (a drop's notices): no later flush runs
     * before the loop blocks, so watch for writable now */
    if (node.flushing && !ev_is_active(&p->wio))
        ev_io_start(node.loop, &p->wio);
    if (ewp_peer_queued(p) > EWP_OUT_HIGH)
        p->congested = 1;
}

static void
put32(char *b, uint32_t v)
{
    b[0] = (char)(v >> 24);
    b[1] = (char)(v >> 16);
    b[2] = (char)(v >> 8);
    b[3] = (char)v;
}

static uint32_t
get32(const char *b)
{
    const unsigned char *u = (const unsigned char *)b;

    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}
