/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Registration with epmd through ei_publish, from the network namespace
 * ewpcapd started in (netns.c: epmd listens there, captures may run in
 * another). When epmd closes the registration (it was restarted), we try
 * again every REPUBLISH_SECS; after REPUBLISH_TRIES the loop is stopped and
 * ewpcapd exits with status 1 (main.c asks ewp_epmd_failed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ei.h>
#include <ev.h>

#include "epmd.h"
#include "log.h"
#include "netns.h"

#define REPUBLISH_SECS 1.0      /* retry interval after epmd went away */
#define REPUBLISH_TRIES 60      /* then give up and exit */

struct ewp_epmd {
    struct ev_loop *loop;        /* the one loop */
    ei_cnode *ec;                /* our node */
    int port;                    /* our listen port */
    int fd;                      /* kept open: closing it unregisters */
    ev_io epmd_w;                /* the registration's socket readable: epmd went away */
    ev_timer republish_w;        /* retries ei_publish */
    int tries;                   /* retries so far */
    int failed;                  /* gave up */
};

static int publish(struct ewp_epmd *e);
static int start_epmd(void);
static void epmd_cb(struct ev_loop *loop, ev_io *w, int revents);
static void republish_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* Registered; NULL: error in errbuf */
struct ewp_epmd *
ewp_epmd_new(struct ev_loop *loop, ei_cnode *ec, int port, char *errbuf, size_t errlen)
{
    struct ewp_epmd *e;
    int n;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    e->loop = loop;
    e->ec = ec;
    e->port = port;
    e->fd = -1;
    ev_timer_init(&e->republish_w, republish_cb, REPUBLISH_SECS, REPUBLISH_SECS);
    e->republish_w.data = e;
    if (publish(e) < 0) {
        /* as erl does: start epmd and try again for a few seconds */
        if (start_epmd() == 0)
            for (n = 0; n < 50 && publish(e) < 0; n++)
                (void)usleep(100 * 1000);
        if (e->fd < 0) {
            (void)snprintf(errbuf, errlen,
                           "cannot register %s with epmd (name in use, or epmd not running)",
                           ei_thisnodename(ec));
            free(e);
            return NULL;
        }
    }
    return e;
}

int
ewp_epmd_failed(const struct ewp_epmd *e)
{
    return e->failed;
}

void
ewp_epmd_free(struct ewp_epmd *e)
{
    if (e == NULL)
        return;
    ev_timer_stop(e->loop, &e->republish_w);
    if (e->fd >= 0) {
        ev_io_stop(e->loop, &e->epmd_w);
        (void)close(e->fd);
    }
    free(e);
}

/* On the home thread (netns.c): the registration's socket must be made in
 * the namespace we started in, where epmd listens */
static int
publish_at_home(void *arg)
{
    struct ewp_epmd *e = arg;

    return ei_publish(e->ec, e->port);
}

/* ei_publish from the namespace we started in (see netns.c). */
static int
publish(struct ewp_epmd *e)
{
    int fd = ewp_netns_at_home(publish_at_home, e);

    if (fd < 0)
        return -1;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    e->fd = fd;
    ev_io_init(&e->epmd_w, epmd_cb, fd, EV_READ);
    e->epmd_w.data = e;
    ev_io_start(e->loop, &e->epmd_w);
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
epmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ewp_epmd *e = w->data;
    char buf[64];
    ssize_t n;

    (void)revents;
    n = read(w->fd, buf, sizeof(buf));
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    EWP_ERR("epmd closed the registration of %s; registering again", ei_thisnodename(e->ec));
    ev_io_stop(loop, w);
    (void)close(e->fd);
    e->fd = -1;
    e->tries = 0;
    ev_timer_again(loop, &e->republish_w);
}

static void
republish_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ewp_epmd *e = w->data;

    (void)revents;
    if (publish(e) == 0) {
        EWP_ERR("registered %s with epmd again", ei_thisnodename(e->ec));
        ev_timer_stop(loop, w);
        return;
    }
    if (++e->tries >= REPUBLISH_TRIES) {
        EWP_ERR("epmd did not come back in %d s: exiting", REPUBLISH_TRIES);
        e->failed = 1;
        ev_timer_stop(loop, w);
        ev_break(loop, EVBREAK_ALL);
    }
}
