/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The command line of ewpcapd (see args.h): getopt_long_only over the
 * flags of usage(), each value checked, the defaults that depend on the
 * machine (kernel ring caps), the node name and the cookie (-cookie,
 * --cookie-file, $EWPCAPD_COOKIE, ~/.erlang.cookie).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ei.h>

#include "args.h"
#include "log.h"
#include "request.h"
#include "tls.h"

static void usage(FILE *out);
static unsigned long long default_max_ring(void);
static int set_name(struct config *cfg, const char *arg, int longnames);
static int read_cookie_file(const char *path, char *cookie, size_t len);
static int home_cookie_exists(void);
static int parse_tls_arg(struct config *cfg, int opt, const char *arg);

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

/* Returns 0, 1 after -h (usage printed), -1 on a bad command line (the
 * reason on stderr) */
int
ewp_args_parse(int argc, char *argv[], struct config *cfg)
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
