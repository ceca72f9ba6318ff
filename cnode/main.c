/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * ewpcapd: packet capture served to Erlang nodes as a C-node. main() takes
 * the command line (args.c), sets up each layer and wires them (dist.c calls up
 * into router.c through the ops it is given; router.c runs requests of
 * request.c), runs the loop and tears down in reverse. It is the only
 * place that exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ei.h>
#include <ev.h>

#include "args.h"
#include "dist.h"
#include "epmd.h"
#include "listen.h"
#include "log.h"
#include "netns.h"
#include "privs.h"
#include "request.h"
#include "router.h"
#include "tls.h"

/* Every layer, for the teardown */
struct daemon {
    ei_cnode ec;                   /* our node */
    struct ewp_dist *dist;         /* connected nodes */
    struct ewp_listener *listener; /* the listen socket, handshakes */
    struct ewp_tls *tls;           /* TLS context, or NULL */
    struct ewp_epmd *epmd;         /* the registration */
    struct ewp_requests req;       /* handles, filters, policy */
    struct ewp_router router;      /* what comes in */
};

static int start(struct ev_loop *loop, const struct config *cfg, struct daemon *dm,
                 char *errbuf, size_t errlen);
static void stop(struct daemon *dm);
static int init_cnode(ei_cnode *ec, const struct node_opts *o, char *errbuf, size_t errlen);
static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents);
static void stdin_cb(struct ev_loop *loop, ev_io *w, int revents);

/* Descriptors: the soft limit raised to the hard one. Each handle of its
 * own (a savefile, `{share, false}`, a dump) and each node take one, and
 * the caps allow 1,024 handles, where systemd's default soft limit is
 * 1,024 descriptors: four nodes could otherwise leave every other node's
 * opens `emfile` and refuse new nodes at accept. */
static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

int
main(int argc, char *argv[])
{
    struct ev_loop *loop;
    static struct daemon dm;
    struct config cfg;
    char errbuf[512];
    ev_signal sigterm_w, sigint_w, sighup_w;
    ev_io stdin_w;
    int rv;

    rv = ewp_args_parse(argc, argv, &cfg);
    if (rv != 0)
        return rv < 0 ? 2 : 0;

    (void)signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    loop = EV_DEFAULT;
    if (loop == NULL) {
        (void)fprintf(stderr, "ewpcapd: cannot initialise libev\n");
        return 1;
    }

    if (start(loop, &cfg, &dm, errbuf, sizeof(errbuf)) < 0) {
        (void)fprintf(stderr, "ewpcapd: %s\n", errbuf);
        stop(&dm);
        return 1;
    }

    ev_signal_init(&sigterm_w, signal_cb, SIGTERM);
    ev_signal_init(&sigint_w, signal_cb, SIGINT);
    ev_signal_init(&sighup_w, signal_cb, SIGHUP);
    ev_signal_start(loop, &sigterm_w);
    ev_signal_start(loop, &sigint_w);
    ev_signal_start(loop, &sighup_w);
    if (cfg.watch_stdin) {
        ev_io_init(&stdin_w, stdin_cb, STDIN_FILENO, EV_READ);
        ev_io_start(loop, &stdin_w);
    }

    /* The Erlang library waits for this line (ewpcap_daemon.erl). */
    (void)printf("ready %s\n", ei_thisnodename(&dm.ec));
    (void)fflush(stdout);

    ev_run(loop, 0);

    rv = ewp_epmd_failed(dm.epmd) || ewp_listen_failed(dm.listener) ? 1 : 0;
    EWP_LOG(1, "shutting down, closing %d handles", ewp_handles_count(dm.req.handles));
    stop(&dm);
    ewp_netns_close();
    ev_loop_destroy(loop);
    return rv;
}

/*
 * The layers, bottom up: our identity, the transport (calling up into the
 * router), the listen socket, the epmd registration; then the capture
 * namespace and the dropped privileges; then the handle table and filter
 * workers the router runs requests against. Returns 0, or -1 with errbuf.
 */
static int
start(struct ev_loop *loop, const struct config *cfg, struct daemon *dm, char *errbuf,
      size_t errlen)
{
    struct ewp_dist_config dcfg = {.ticktime = cfg->node.ticktime};
    struct ewp_listen_config lcfg = {.ec = &dm->ec, .addr = cfg->node.listen,
                                     .port = cfg->node.port};
    char sub[400];

    dm->router.req = &dm->req;
    if (init_cnode(&dm->ec, &cfg->node, errbuf, errlen) < 0)
        return -1;
    dm->dist = ewp_dist_new(loop, &dcfg, &ewp_router_dist_ops, &dm->router);
    if (dm->dist == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    if (cfg->tls_on && (lcfg.tls = dm->tls = ewp_tls_new(&cfg->tls, errbuf, errlen)) == NULL)
        return -1;
    dm->listener = ewp_listen_new(loop, &lcfg, dm->dist, errbuf, errlen);
    if (dm->listener == NULL)
        return -1;
    /* open to every interface: said in the first line of the log, verbose
     * or not (the embedded daemon passes --listen and stays quiet) */
    if (cfg->node.listen == NULL)
        ewp_log_write("notice", "%s listening on port %d of every address, IPv4 and IPv6 "
                      "(all interfaces; --listen ADDR restricts it)%s",
                      ei_thisnodename(&dm->ec), ewp_listen_port(dm->listener),
                      dm->tls != NULL ? " (TLS)" : "");
    else
        EWP_LOG(1, "%s listening on %s port %d%s", ei_thisnodename(&dm->ec), cfg->node.listen,
                ewp_listen_port(dm->listener), dm->tls != NULL ? " (TLS)" : "");
    dm->epmd = ewp_epmd_new(loop, &dm->ec, ewp_listen_port(dm->listener), errbuf, errlen);
    if (dm->epmd == NULL)
        return -1;
    if (cfg->netns != NULL && ewp_netns_enter(cfg->netns, sub, sizeof(sub)) < 0) {
        (void)snprintf(errbuf, errlen, "--netns: %s", sub);
        return -1;
    }
    if (cfg->user != NULL && ewp_privs_drop(cfg->user, errbuf, errlen) < 0)
        return -1;
    dm->req.loop = loop;
    dm->req.ec = &dm->ec;
    dm->req.dist = dm->dist;
    dm->req.port = ewp_listen_port(dm->listener);
    dm->req.policy = cfg->policy;
    if (ewp_request_init(&dm->req) < 0) {
        (void)snprintf(errbuf, errlen, "cannot start the filter compiler threads");
        return -1;
    }
    return 0;
}

/* In reverse; each part may be missing (start failed before it) */
static void
stop(struct daemon *dm)
{
    ewp_listen_free(dm->listener);
    dm->listener = NULL;
    ewp_dist_free(dm->dist); /* peer_down closes each node's handles */
    dm->dist = NULL;
    if (dm->req.handles != NULL)
        ewp_request_shutdown(&dm->req);
    ewp_epmd_free(dm->epmd);
    dm->epmd = NULL;
    ewp_tls_free(dm->tls);
    dm->tls = NULL;
}

/* ei's node: name, cookie, and a fresh creation at each start (pids and
 * refs of a previous daemon of the same name never match ours; epmd may
 * assign its own at publish) */
static int
init_cnode(ei_cnode *ec, const struct node_opts *o, char *errbuf, size_t errlen)
{
    char nodename[MAXNODELEN + 1];
    unsigned creation;
    int n;

    if (ei_init() < 0) {
        (void)snprintf(errbuf, errlen, "ei_init failed");
        return -1;
    }
    n = snprintf(nodename, sizeof(nodename), "%s@%s", o->alive, o->host);
    if (n < 0 || (size_t)n >= sizeof(nodename)) {
        (void)snprintf(errbuf, errlen, "node name too long");
        return -1;
    }
    creation = ((unsigned)time(NULL) ^ ((unsigned)getpid() << 12)) | 4u;
    if (ei_connect_xinit(ec, o->host, o->alive, nodename, NULL, o->cookie, creation) < 0) {
        (void)snprintf(errbuf, errlen, "ei_connect_xinit failed (cookie?): %s",
                       strerror(errno));
        return -1;
    }
    return 0;
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    switch (w->signum) {
    case SIGTERM:
    case SIGINT:
    case SIGHUP:
        EWP_LOG(1, "signal %d: stopping", w->signum);
        ev_break(loop, EVBREAK_ALL);
        break;
    default:
        break;
    }
}

/* --stdin: the port that started us is gone when stdin closes. */
static void
stdin_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    char buf[256];
    ssize_t n;

    (void)revents;
    n = read(w->fd, buf, sizeof(buf));
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    EWP_LOG(1, "stdin closed: stopping");
    ev_io_stop(loop, w);
    ev_break(loop, EVBREAK_ALL);
}
