/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * --netns: the capture namespace for the main thread, a "home" thread for
 * epmd. The network namespace is a property of each thread, and a socket
 * keeps the namespace of the thread that made it. So ewp_netns_enter starts
 * one thread first, which stays in the namespace ewpcapd was started in,
 * and then moves the main thread (and every thread it starts later: the
 * compile workers) into NAME with one setns(2), which needs CAP_SYS_ADMIN.
 * The listen socket was made before, at home. A registration with epmd made
 * again later (epmd restarted) runs on the home thread (ewp_netns_at_home),
 * so it needs no privilege: after --user it still works, where stepping
 * home with setns would need CAP_SYS_ADMIN again.
 *
 * The home thread blocks every signal and only runs what it is given. When
 * --user changes the uid, glibc changes it on every thread; the home thread
 * has not asked to keep capabilities, so it loses them all (capabilities(7)).
 * Without --netns, ewp_netns_at_home just calls the function.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netns.h"

static struct {
    pthread_t thread;
    int running;                   /* the home thread exists */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int (*fn)(void *);             /* to run at home, or NULL */
    void *arg;
    int result;
    int done;                      /* fn ran, result set */
    int stop;
} home = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *home_main(void *unused);

/*
 * Returns:
 *  0 - now inside the namespace NAME (a path if it contains a '/', else
 *      /var/run/netns/NAME as made by "ip netns add"), the home thread
 *      running in the one we started in
 * -1 - error, described in errbuf; still at home, no thread
 */
int
ewp_netns_enter(const char *name, char *errbuf, size_t errlen)
{
    char path[4096];
    sigset_t all, old;
    int fd, rc;

    if (strchr(name, '/') != NULL)
        (void)snprintf(path, sizeof(path), "%s", name);
    else
        (void)snprintf(path, sizeof(path), "/var/run/netns/%s", name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        (void)snprintf(errbuf, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    /* the home thread inherits a mask that blocks everything */
    (void)sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&home.thread, NULL, home_main, NULL);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        (void)snprintf(errbuf, errlen, "cannot start the home thread: %s", strerror(rc));
        (void)close(fd);
        return -1;
    }
    home.running = 1;
    if (setns(fd, CLONE_NEWNET) < 0) {
        (void)snprintf(errbuf, errlen, "setns %s: %s", path, strerror(errno));
        (void)close(fd);
        ewp_netns_close();
        return -1;
    }
    (void)close(fd);
    return 0;
}

/* fn(arg) in the namespace ewpcapd started in; its result */
int
ewp_netns_at_home(int (*fn)(void *), void *arg)
{
    int result;

    if (!home.running)
        return fn(arg);
    pthread_mutex_lock(&home.lock);
    home.fn = fn;
    home.arg = arg;
    home.done = 0;
    pthread_cond_broadcast(&home.cond);
    while (!home.done)
        pthread_cond_wait(&home.cond, &home.lock);
    result = home.result;
    pthread_mutex_unlock(&home.lock);
    return result;
}

/* Stop the home thread (no-op without one) */
void
ewp_netns_close(void)
{
    if (!home.running)
        return;
    pthread_mutex_lock(&home.lock);
    home.stop = 1;
    pthread_cond_broadcast(&home.cond);
    pthread_mutex_unlock(&home.lock);
    (void)pthread_join(home.thread, NULL);
    home.running = 0;
    home.stop = 0;
}

static void *
home_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&home.lock);
    for (;;) {
        while (!home.stop && home.fn == NULL)
            pthread_cond_wait(&home.cond, &home.lock);
        if (home.stop)
            break;
        home.result = home.fn(home.arg);
        home.fn = NULL;
        home.done = 1;
        pthread_cond_broadcast(&home.cond);
    }
    pthread_mutex_unlock(&home.lock);
    return NULL;
}
