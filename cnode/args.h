/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * ewpcapd's command line: the flags, their checks and defaults, the
 * cookie's sources, usage(). Fills a struct config; starts nothing.
 */
#ifndef EWP_ARGS_H
#define EWP_ARGS_H

#include <limits.h>

#include <ei.h>

#include "request.h"
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

int ewp_args_parse(int argc, char *argv[], struct config *cfg);

#endif /* EWP_ARGS_H */
