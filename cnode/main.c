/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * ewpcapd: packet capture served to Erlang nodes as a C-node. main() parses
 * the command line, sets up each layer and wires them (dist.c calls up
 * into router.c through the ops it is given; router.c runs requests of
 * request.c), runs the loop and tears down in reverse. It is the only
 * place that exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ei.h>
#include <ev.h>

#include "dist.h"
#include "epmd.h"
#include "listen.h"
#include "log.h"
#include "netns.h"
#include "privs.h"
#include "request.h"
#include "router.h"
#include "tls.h"

#define EWP_VERSION "0.1.0"
#define COOKIE_MAX 1024
#define ALLOW_MAX 64

/* Who we are and where we listen */
struct node_opts {
    const char *alive;     /* alive part of the node name */
    const char *host;      /* host part */
    const char *cookie;    /* NULL: ~/.erlang.cookie */
    const char *listen;    /* listen address (IPv4 or IPv6); NULL: dual stack */
    int port;              /* listen port, 0: any */
    double ticktime;       /* seconds of silence before a peer counts as dead */
};

struct config {
    char alive[MAXATOMLEN];        /* alive part of the node name */
    char host[MAXATOMLEN];         /* host part */
    char cookie[COOKIE_MAX];       /* empty: ~/.erlang.cookie */
    const char *netns;             /* --netns */
    int watch_stdin;               /* --stdin */
    const char *user;              /* --user */
    char files[PATH_MAX];          /* --files, resolved */
    const char *allow[ALLOW_MAX];  /* --allow */
    struct ewp_policy policy;      /* passed to request.c */
    struct node_opts node;         /* our node */
    int tls_on;                    /* any --tls-* flag: TLS distribution only */
    struct ewp_tls_config tls;     /* --tls-* */
};

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

static void usage(FILE *out);
static int start(struct ev_loop *loop, const struct config *cfg, struct daemon *dm,
                 char *errbuf, size_t errlen);
static void stop(struct daemon *dm);
static int init_cnode(ei_cnode *ec, const struct node_opts *o, char *errbuf, size_t errlen);
static unsigned long long default_max_ring(void);
static int parse_args(int argc, char *argv[], struct config *cfg);
static int set_name(struct config *cfg, const char *arg, int longnames);
static int read_cookie_file(const char *path, char *cookie, size_t len);
static int home_cookie_exists(void);
static int parse_tls_arg(struct config *cfg, int opt, const char *arg);
static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents);
static void stdin_cb(struct ev_loop *loop, ev_io *w, int revents);

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

    rv = parse_args(argc, argv, &cfg);
    if (rv != 0)
        return rv < 0 ? 2 : 0;

    (void)signal(SIGPIPE, SIG_IGN);
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
usage(FILE *out)
{
    (void)fprintf(out,
        "ewpcapd " EWP_VERSION ": packet capture for Erlang nodes (a C-node)\n"
        "usage: ewpcapd [-sname NAME[@HOST] | -name NAME@HOST] [options]\n"
        "  -sname NAME[@HOST]   short node name (default: ewpcap@<short hostname>)\n"
        "  -name NAME@HOST      long node name\n"
        "  -cookie COOKIE       magic cookie (visible in ps: prefer --cookie-file)\n"
        "  --cookie-file FILE   read the cookie from FILE\n"
        "                       (else $EWPCAPD_COOKIE, else ~/.erlang.cookie)\n"
        "  --listen ADDR        IPv4 or IPv6 address for node connections\n"
        "                       (default: all, IPv6 and IPv4 where the host has IPv6)\n"
        "  --port N             TCP port for node connections (default: any)\n"
        "  --netns NAME         capture inside network namespace NAME (ip netns)\n"
        "  --ticktime SECONDS   drop a node silent this long (default 60)\n"
        "  --allow DEV          only DEV may be opened (repeat for more; default: all)\n"
        "  --no-inject          refuse write (packet injection)\n"
        "  --max-handles N      open handles in all (default 1024)\n"
        "  --max-node-handles N open handles per client node (default 256)\n"
        "  --max-ring-mb N      kernel buffers of all handles, MiB (default: a quarter\n"
        "                       of the memory)\n"
        "  --max-node-ring-mb N kernel buffers of one node's handles, MiB (default: half\n"
        "                       of --max-ring-mb's default)\n"
        "  --files DIR          savefiles may be read ({file, Path}) and written\n"
        "                       ({dump, Path}) under DIR only (default: refused)\n"
        "  --user USER          run as USER, keeping only cap_net_raw and\n"
        "                       cap_net_admin (when started as root)\n"
        "  --stdin              exit when standard input closes (used as a port)\n"
        "  --tls-cert FILE      TLS distribution (inet_tls_dist) only, with this PEM\n"
        "                       certificate (chain); plaintext nodes are refused\n"
        "  --tls-key FILE       its PEM private key (default: in --tls-cert)\n"
        "  --tls-cacert FILE    PEM CAs that client certificates must chain to\n"
        "  --tls-verify peer|none  verify client certificates (default: none)\n"
        "  --tls-fail-if-no-peer-cert  refuse clients without a certificate\n"
        "  --tls-optfile FILE   the server options of an -ssl_dist_optfile (read\n"
        "                       with erl, $ERL); flags after it override them\n"
        "  -v                   log connects, opens, closes (-v -v: debug)\n"
        "  -h, --help           this text\n"
        "Prints \"ready NODE\" on stdout once registered with epmd. Needs root or\n"
        "cap_net_raw,cap_net_admin to capture.\n");
}

/* All handles' kernel rings together: a quarter of physical memory (a
 * 16 MiB default ring each: 384 handles on a 24 GiB host), at least
 * EWP_RING_FLOOR */
static unsigned long long
default_max_ring(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    unsigned long long total;

    if (pages <= 0 || page <= 0)
        return EWP_RING_FLOOR * 8;
    total = (unsigned long long)pages * (unsigned long long)page / EWP_RING_SHARE;
    return total < EWP_RING_FLOOR ? EWP_RING_FLOOR : total;
}

static int
parse_args(int argc, char *argv[], struct config *cfg)
{
    enum { O_SNAME = 256, O_NAME, O_COOKIE, O_COOKIE_FILE, O_LISTEN, O_PORT, O_NETNS,
           O_TICKTIME, O_STDIN, O_ALLOW, O_NO_INJECT, O_MAX_HANDLES, O_MAX_NODE_HANDLES,
           O_MAX_RING_MB, O_MAX_NODE_RING_MB,
           O_USER, O_FILES,
           O_TLS_CERT, O_TLS_KEY, O_TLS_CACERT, O_TLS_VERIFY, O_TLS_FAIL, O_TLS_OPTFILE };
    static const struct option longopts[] = {
        {"sname", required_argument, NULL, O_SNAME},
        {"name", required_argument, NULL, O_NAME},
        {"cookie", required_argument, NULL, O_COOKIE},
        {"cookie-file", required_argument, NULL, O_COOKIE_FILE},
        {"listen", required_argument, NULL, O_LISTEN},
        {"port", required_argument, NULL, O_PORT},
        {"netns", required_argument, NULL, O_NETNS},
        {"ticktime", required_argument, NULL, O_TICKTIME},
        {"stdin", no_argument, NULL, O_STDIN},
        {"allow", required_argument, NULL, O_ALLOW},
        {"no-inject", no_argument, NULL, O_NO_INJECT},
        {"max-handles", required_argument, NULL, O_MAX_HANDLES},
        {"max-node-handles", required_argument, NULL, O_MAX_NODE_HANDLES},
        {"max-ring-mb", required_argument, NULL, O_MAX_RING_MB},
        {"max-node-ring-mb", required_argument, NULL, O_MAX_NODE_RING_MB},
        {"user", required_argument, NULL, O_USER},
        {"files", required_argument, NULL, O_FILES},
        {"tls-cert", required_argument, NULL, O_TLS_CERT},
        {"tls-key", required_argument, NULL, O_TLS_KEY},
        {"tls-cacert", required_argument, NULL, O_TLS_CACERT},
        {"tls-verify", required_argument, NULL, O_TLS_VERIFY},
        {"tls-fail-if-no-peer-cert", no_argument, NULL, O_TLS_FAIL},
        {"tls-optfile", required_argument, NULL, O_TLS_OPTFILE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *env;
    char *end;
    int named = 0;
    int ch;
    long l;
    double d;

    memset(cfg, 0, sizeof(*cfg));
    cfg->policy.max_handles = EWP_DEFAULT_MAX_HANDLES;
    cfg->policy.max_node_handles = EWP_DEFAULT_MAX_NODE_HANDLES;
    cfg->policy.max_ring = default_max_ring();
    cfg->policy.max_node_ring = cfg->policy.max_ring / 2;
    cfg->node.ticktime = 60;

    opterr = 0;
    while ((ch = getopt_long_only(argc, argv, "vh", longopts, NULL)) != -1) {
        switch (ch) {
        case O_SNAME:
        case O_NAME:
            if (named++ || set_name(cfg, optarg, ch == O_NAME) < 0)
                goto bad;
            break;
        case O_COOKIE:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(cfg->cookie)) {
                (void)fprintf(stderr, "ewpcapd: bad -cookie\n");
                return -1;
            }
            (void)snprintf(cfg->cookie, sizeof(cfg->cookie), "%s", optarg);
            break;
        case O_COOKIE_FILE:
            if (read_cookie_file(optarg, cfg->cookie, sizeof(cfg->cookie)) < 0)
                return -1;
            break;
        case O_LISTEN: {
            struct in6_addr a6;

            if (inet_pton(AF_INET, optarg, &a6) != 1 && inet_pton(AF_INET6, optarg, &a6) != 1) {
                (void)fprintf(stderr, "ewpcapd: --listen: not an IPv4 or IPv6 address: %s\n",
                              optarg);
                return -1;
            }
            cfg->node.listen = optarg;
            break;
        }
        case O_TLS_CERT:
        case O_TLS_KEY:
        case O_TLS_CACERT:
        case O_TLS_VERIFY:
        case O_TLS_FAIL:
        case O_TLS_OPTFILE:
            /* c(ert) k(ey) a (cacert) v(erify) f(ail if no peer cert) o(ptfile) */
            if (parse_tls_arg(cfg, "ckavfo"[ch - O_TLS_CERT], optarg) < 0)
                return -1;
            break;
        case O_PORT:
            errno = 0;
            l = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || l < 0 || l > 65535) {
                (void)fprintf(stderr, "ewpcapd: --port: not a port: %s\n", optarg);
                return -1;
            }
            cfg->node.port = (int)l;
            break;
        case O_NETNS:
            cfg->netns = optarg;
            break;
        case O_TICKTIME:
            d = strtod(optarg, &end);
            if (*end != '\0' || !(d >= 1 && d <= 86400)) {
                (void)fprintf(stderr, "ewpcapd: --ticktime: 1..86400 seconds: %s\n", optarg);
                return -1;
            }
            cfg->node.ticktime = d;
            break;
        case O_STDIN:
            cfg->watch_stdin = 1;
            break;
        case O_ALLOW:
            if (cfg->policy.nallow >= ALLOW_MAX || optarg[0] == '\0') {
                (void)fprintf(stderr, "ewpcapd: --allow: at most %d devices\n", ALLOW_MAX);
                return -1;
            }
            cfg->allow[cfg->policy.nallow++] = optarg;
            break;
        case O_NO_INJECT:
            cfg->policy.no_inject = 1;
            break;
        case O_MAX_HANDLES:
        case O_MAX_NODE_HANDLES:
            errno = 0;
            l = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || l < 1 || l > 1000000) {
                (void)fprintf(stderr, "ewpcapd: --max-%shandles: 1..1000000: %s\n",
                              ch == O_MAX_HANDLES ? "" : "node-", optarg);
                return -1;
            }
            if (ch == O_MAX_HANDLES)
                cfg->policy.max_handles = (int)l;
            else
                cfg->policy.max_node_handles = (int)l;
            break;
        case O_MAX_RING_MB:
        case O_MAX_NODE_RING_MB:
            errno = 0;
            l = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || l < 1 || l > 1048576) {
                (void)fprintf(stderr, "ewpcapd: --max-%sring-mb: 1..1048576: %s\n",
                              ch == O_MAX_RING_MB ? "" : "node-", optarg);
                return -1;
            }
            if (ch == O_MAX_RING_MB)
                cfg->policy.max_ring = (unsigned long long)l << 20;
            else
                cfg->policy.max_node_ring = (unsigned long long)l << 20;
            break;
        case O_USER:
            cfg->user = optarg;
            break;
        case O_FILES:
            if (realpath(optarg, cfg->files) == NULL ||
                (cfg->policy.files_fd =
                     open(cfg->files, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
                (void)fprintf(stderr, "ewpcapd: --files %s: %s\n", optarg, strerror(errno));
                return -1;
            }
            cfg->policy.files_dir = cfg->files;
            break;
        case 'v':
            ewp_verbose++;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            (void)fprintf(stderr, "ewpcapd: unknown or incomplete option: %s\n",
                          argv[optind - 1]);
            goto bad;
        }
    }
    if (optind < argc) {
        (void)fprintf(stderr, "ewpcapd: unexpected argument: %s\n", argv[optind]);
        goto bad;
    }
    if (!named && set_name(cfg, "ewpcap", 0) < 0)
        goto bad;

    if (cfg->cookie[0] == '\0' && (env = getenv("EWPCAPD_COOKIE")) != NULL && env[0] != '\0')
        (void)snprintf(cfg->cookie, sizeof(cfg->cookie), "%s", env);
    if (cfg->cookie[0] == '\0' && !home_cookie_exists()) {
        (void)fprintf(stderr, "ewpcapd: no cookie: give -cookie or --cookie-file, set "
                              "EWPCAPD_COOKIE, or create ~/.erlang.cookie\n");
        return -1;
    }
    cfg->policy.allow = cfg->policy.nallow > 0 ? cfg->allow : NULL;
    cfg->node.alive = cfg->alive;
    cfg->node.host = cfg->host;
    cfg->node.cookie = cfg->cookie[0] != '\0' ? cfg->cookie : NULL;
    return 0;

bad:
    (void)fprintf(stderr, "ewpcapd: try 'ewpcapd -h'\n");
    return -1;
}

/* NAME, NAME@HOST; the host defaults to the (short, for -sname) host name */
static int
set_name(struct config *cfg, const char *arg, int longnames)
{
    const char *at = strchr(arg, '@');
    size_t alen = at != NULL ? (size_t)(at - arg) : strlen(arg);
    size_t i;

    if (alen == 0 || alen >= sizeof(cfg->alive)) {
        (void)fprintf(stderr, "ewpcapd: bad node name: %s\n", arg);
        return -1;
    }
    for (i = 0; i < alen; i++)
        if (!(arg[i] == '_' || arg[i] == '-' || (arg[i] >= '0' && arg[i] <= '9') ||
              (arg[i] >= 'a' && arg[i] <= 'z') || (arg[i] >= 'A' && arg[i] <= 'Z'))) {
            (void)fprintf(stderr, "ewpcapd: bad node name: %s\n", arg);
            return -1;
        }
    memcpy(cfg->alive, arg, alen);
    cfg->alive[alen] = '\0';

    if (at != NULL) {
        if (at[1] == '\0' || strlen(at + 1) >= sizeof(cfg->host) || strchr(at + 1, '@')) {
            (void)fprintf(stderr, "ewpcapd: bad host in node name: %s\n", arg);
            return -1;
        }
        (void)snprintf(cfg->host, sizeof(cfg->host), "%s", at + 1);
    } else {
        if (gethostname(cfg->host, sizeof(cfg->host) - 1) < 0) {
            (void)fprintf(stderr, "ewpcapd: gethostname: %s\n", strerror(errno));
            return -1;
        }
        cfg->host[sizeof(cfg->host) - 1] = '\0';
        if (!longnames) {
            char *dot = strchr(cfg->host, '.');

            if (dot != NULL)
                *dot = '\0';
        }
    }
    if (!longnames && strchr(cfg->host, '.') != NULL) {
        (void)fprintf(stderr, "ewpcapd: -sname host part has a dot: use -name: %s\n", arg);
        return -1;
    }
    return 0;
}

/* --tls-*: each turns TLS on; later ones override the optfile's */
static int
parse_tls_arg(struct config *cfg, int opt, const char *arg)
{
    struct ewp_tls_config *t = &cfg->tls;
    char err[512];
    char *dst = NULL;

    cfg->tls_on = 1;
    switch (opt) {
    case 'c':
        dst = t->cert;
        break;
    case 'k':
        dst = t->key;
        break;
    case 'a':
        dst = t->cacert;
        break;
    case 'v':
        if (strcmp(arg, "peer") != 0 && strcmp(arg, "none") != 0) {
            (void)fprintf(stderr, "ewpcapd: --tls-verify: peer or none: %s\n", arg);
            return -1;
        }
        t->verify_peer = strcmp(arg, "peer") == 0;
        return 0;
    case 'f':
        t->fail_if_no_peer_cert = 1;
        return 0;
    case 'o':
        if (ewp_tls_read_optfile(t, arg, err, sizeof(err)) < 0) {
            (void)fprintf(stderr, "ewpcapd: %s\n", err);
            return -1;
        }
        return 0;
    default:
        return -1;
    }
    /* absolute, as in the log and after --netns */
    if (realpath(arg, dst) == NULL) {
        (void)fprintf(stderr, "ewpcapd: %s: %s\n", arg, strerror(errno));
        return -1;
    }
    return 0;
}

static int
read_cookie_file(const char *path, char *cookie, size_t len)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    if (fp == NULL) {
        (void)fprintf(stderr, "ewpcapd: --cookie-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fgets(cookie, (int)len, fp) == NULL)
        cookie[0] = '\0';
    (void)fclose(fp);
    n = strcspn(cookie, "\r\n");
    cookie[n] = '\0';
    while (n > 0 && (cookie[n - 1] == ' ' || cookie[n - 1] == '\t'))
        cookie[--n] = '\0';
    if (n == 0) {
        (void)fprintf(stderr, "ewpcapd: --cookie-file %s: empty\n", path);
        return -1;
    }
    return 0;
}

static int
home_cookie_exists(void)
{
    const char *home = getenv("HOME");
    char path[4096];

    if (home == NULL)
        return 0;
    (void)snprintf(path, sizeof(path), "%s/.erlang.cookie", home);
    return access(path, R_OK) == 0;
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
