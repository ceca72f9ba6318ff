/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Linux: keep capabilities across setuid (PR_SET_KEEPCAPS), change group
 * and user, then set the permitted and effective sets to CAP_NET_RAW and
 * CAP_NET_ADMIN only, and drop every other capability from the bounding
 * set so that no exec can get them back. Done with the raw capset system
 * call: no libcap needed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "privs.h"

#define KEEP ((1u << CAP_NET_RAW) | (1u << CAP_NET_ADMIN))

/*
 * Returns:
 *  0 - running as user, with CAP_NET_RAW and CAP_NET_ADMIN only
 * -1 - error in errbuf (the caller must exit: half-dropped is not safe)
 */
int
ewp_privs_drop(const char *user, char *errbuf, size_t errlen)
{
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    struct passwd *pw;
    int cap;

    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        (void)snprintf(errbuf, errlen, "--user %s: no such user", user);
        return -1;
    }
    if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0) {
        (void)snprintf(errbuf, errlen, "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
        return -1;
    }
    /* the bounding set limits what an exec could gain; dropping from it
     * needs CAP_SETPCAP, so that one goes last */
    for (cap = 0; cap <= CAP_LAST_CAP; cap++)
        if (cap != CAP_NET_RAW && cap != CAP_NET_ADMIN && cap != CAP_SETPCAP)
            (void)prctl(PR_CAPBSET_DROP, (long)cap, 0L, 0L, 0L);
    (void)prctl(PR_CAPBSET_DROP, (long)CAP_SETPCAP, 0L, 0L, 0L);
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        (void)snprintf(errbuf, errlen, "--user %s: cannot change user: %s", user,
                       strerror(errno));
        return -1;
    }
    memset(&hdr, 0, sizeof(hdr));
    memset(data, 0, sizeof(data));
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    data[0].permitted = KEEP;
    data[0].effective = KEEP;
    if (syscall(SYS_capset, &hdr, data) < 0) {
        (void)snprintf(errbuf, errlen, "capset: %s", strerror(errno));
        return -1;
    }
    (void)prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
    if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid) {
        (void)snprintf(errbuf, errlen, "--user %s: uid did not change", user);
        return -1;
    }
    return 0;
}
