/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * --user: become that user keeping CAP_NET_RAW and CAP_NET_ADMIN only, in
 * the permitted and effective sets and in the bounding set (so no exec can
 * gain any other), with libcap-ng as tcpdump does: the bounding set is
 * applied first (that needs CAP_SETPCAP, which root has), then
 * capng_change_id keeps capabilities across the uid change
 * (PR_SET_KEEPCAPS), drops the supplementary groups, changes group and
 * user and applies the permitted and effective sets, in the order that
 * works; what the process has then is read back from the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cap-ng.h>

#include "privs.h"

/*
 * Returns:
 *  0 - running as user, with CAP_NET_RAW and CAP_NET_ADMIN only
 * -1 - error in errbuf (the caller must exit: half-dropped is not safe)
 */
int
ewp_privs_drop(const char *user, char *errbuf, size_t errlen)
{
    struct passwd *pw;
    int rc;

    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        (void)snprintf(errbuf, errlen, "--user %s: no such user", user);
        return -1;
    }
    /* the bounding set first, while we are root (it needs CAP_SETPCAP);
     * capng_change_id can only clear it whole */
    capng_clear(CAPNG_SELECT_BOTH);
    if (capng_updatev(CAPNG_ADD, CAPNG_BOUNDING_SET, CAP_NET_RAW, CAP_NET_ADMIN, -1) != 0 ||
        capng_apply(CAPNG_SELECT_BOUNDS) != 0) {
        (void)snprintf(errbuf, errlen, "--user %s: cannot set the bounding set", user);
        return -1;
    }
    capng_clear(CAPNG_SELECT_CAPS);
    if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_RAW, CAP_NET_ADMIN,
                      -1) != 0) {
        (void)snprintf(errbuf, errlen, "--user %s: capng_updatev failed", user);
        return -1;
    }
    rc = capng_change_id((int)pw->pw_uid, (int)pw->pw_gid,
                         CAPNG_DROP_SUPP_GRP);
    if (rc != 0) {
        (void)snprintf(errbuf, errlen, "--user %s: cannot change user (capng_change_id: %d%s%s)",
                       user, rc, errno != 0 ? ", " : "", errno != 0 ? strerror(errno) : "");
        return -1;
    }
    /* what the process has now, read back from the kernel */
    if (capng_get_caps_process() != 0 ||
        getuid() != pw->pw_uid || geteuid() != pw->pw_uid || getgid() != pw->pw_gid ||
        capng_have_capability(CAPNG_EFFECTIVE, CAP_SYS_ADMIN) ||
        !capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_RAW)) {
        (void)snprintf(errbuf, errlen, "--user %s: the change did not take", user);
        return -1;
    }
    return 0;
}
