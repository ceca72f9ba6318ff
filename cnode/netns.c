/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * setns(2) wrapper for --netns. Without --netns every function is a no-op
 * returning 0. Needs CAP_SYS_ADMIN (root) to enter the namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netns.h"

static int home_fd = -1; /* namespace we were started in */
static int away_fd = -1; /* namespace given by --netns */

/*
 * Returns:
 *  0 - now inside the namespace NAME (a path if it contains a '/', else
 *      /var/run/netns/NAME as made by "ip netns add")
 * -1 - error, described in errbuf
 */
int
ewp_netns_enter(const char *name, char *errbuf, size_t errlen)
{
    char path[4096];
    int saved_errno;

    if (strchr(name, '/') != NULL)
        (void)snprintf(path, sizeof(path), "%s", name);
    else
        (void)snprintf(path, sizeof(path), "/var/run/netns/%s", name);

    home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_fd < 0) {
        (void)snprintf(errbuf, errlen, "open /proc/self/ns/net: %s", strerror(errno));
        return -1;
    }
    away_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (away_fd < 0) {
        saved_errno = errno;
        (void)snprintf(errbuf, errlen, "open %s: %s", path, strerror(saved_errno));
        goto err_home;
    }
    if (setns(away_fd, CLONE_NEWNET) < 0) {
        saved_errno = errno;
        (void)snprintf(errbuf, errlen, "setns %s: %s", path, strerror(saved_errno));
        goto err_away;
    }
    return 0;

err_away:
    (void)close(away_fd);
    away_fd = -1;
err_home:
    (void)close(home_fd);
    home_fd = -1;
    return -1;
}

int
ewp_netns_home(void)
{
    if (home_fd < 0)
        return 0;
    return setns(home_fd, CLONE_NEWNET);
}

int
ewp_netns_away(void)
{
    if (away_fd < 0)
        return 0;
    return setns(away_fd, CLONE_NEWNET);
}

void
ewp_netns_close(void)
{
    if (away_fd >= 0)
        (void)close(away_fd);
    if (home_fd >= 0)
        (void)close(home_fd);
    away_fd = home_fd = -1;
}
