/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Savefiles ({file, Path} reads, {dump, Path} writes) confined to
 * ewpcapd's --files directory. Every file is opened relative to a
 * descriptor of that directory with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS): the kernel refuses "..", absolute paths and any
 * symbolic link, in the last component or in the middle, at the moment of
 * the open, so nothing can be swapped between a check and the use (the old
 * realpath check resolved only the parent of a dump, and pcap_dump_open
 * then followed a link in the last component and truncated its target).
 * Dumps are created O_EXCL (an existing file is never touched) with mode
 * 0600; reads are opened O_NONBLOCK (a FIFO cannot block the loop) and
 * anything that is not a regular file is refused after fstat. Where the
 * kernel has no openat2 (before 5.6), files are refused: there is no safe
 * fallback. What is done with the descriptor is capture.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "files.h"

#define PATH_BYTES_MAX 4096 /* PATH_MAX */

static const char *errno_atom(int err);
static int walk_beneath(int dirfd, char *rel, int flags, mode_t mode);

/*
 * Open path (len bytes, not NUL-terminated) under the directory dirfd
 * (whose real path is dir; NULL: files are refused). A relative path is
 * taken in dir; an absolute one must start with dir. create: a new file
 * for writing (O_EXCL, 0600), else an existing regular file for reading.
 * Returns the descriptor (O_CLOEXEC), or -1 with the error atom in *why.
 */
int
ewp_files_open(const char *dir, int dirfd, const char *path, size_t len, int create,
               const char **why)
{
    struct open_how how;
    char rel[PATH_BYTES_MAX];
    size_t dlen, skip = 0;
    struct stat st;
    int fd, err;

    *why = "bad_path";
    if (dir == NULL) {
        *why = "files_disabled";
        return -1;
    }
    if (len == 0 || memchr(path, '\0', len) != NULL)
        return -1;
    if (path[0] == '/') {
        dlen = strlen(dir);
        if (strcmp(dir, "/") == 0)
            dlen = 0;
        else if (len <= dlen || memcmp(path, dir, dlen) != 0 || path[dlen] != '/')
            return -1;
        for (skip = dlen; skip < len && path[skip] == '/'; skip++)
            ;
    }
    if (len - skip == 0 || len - skip >= sizeof(rel))
        return -1;
    memcpy(rel, path + skip, len - skip);
    rel[len - skip] = '\0';

    memset(&how, 0, sizeof(how));
    how.flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW |
                (create ? O_WRONLY | O_CREAT | O_EXCL : O_RDONLY);
    how.mode = create ? 0600 : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS)
        fd = walk_beneath(dirfd, rel, (int)how.flags, (mode_t)how.mode);
    if (fd < 0) {
        *why = errno_atom(errno);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        err = errno;
        (void)close(fd);
        *why = errno_atom(err);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) { /* a FIFO, a device, a socket, a directory */
        (void)close(fd);
        *why = "not_regular_file";
        return -1;
    }
    /* a regular file ignores O_NONBLOCK; clear it all the same */
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *why = NULL;
    return fd;
}

/*
 * Where openat2 is missing (a kernel before 5.6, or valgrind, which does
 * not know the call): the same rules, one component at a time, each
 * opened relative to the last with O_NOFOLLOW (a symbolic link anywhere
 * fails with ELOOP), "." and ".." refused before anything is opened. Never
 * realpath: nothing is resolved by name twice. rel is cut up in place.
 */
static int
walk_beneath(int dirfd, char *rel, int flags, mode_t mode)
{
    char *comp, *next;
    int fd = dirfd, nfd;

    for (comp = rel;; comp = next) {
        next = strchr(comp, '/');
        if (next != NULL)
            while (*next == '/')
                *next++ = '\0';
        if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0 || comp[0] == '\0') {
            nfd = -1;
            errno = EXDEV;
        } else if (next != NULL && *next != '\0') {
            nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else {
            nfd = openat(fd, comp, flags, mode);
            next = NULL;
        }
        if (fd != dirfd) {
            int saved = errno;

            (void)close(fd);
            errno = saved;
        }
        if (nfd < 0 || next == NULL)
            return nfd;
        fd = nfd;
    }
}

/* The error atom for an openat2 errno */
static const char *
errno_atom(int err)
{
    switch (err) {
    case EXDEV:   /* RESOLVE_BENEATH: "..", an absolute path or link outside */
    case ELOOP:   /* RESOLVE_NO_SYMLINKS, O_NOFOLLOW */
    case ENOTDIR:
    case ENAMETOOLONG:
        return "bad_path";
    case ENOENT:
        return "enoent";
    case EEXIST:
        return "eexist";
    case EACCES:
    case EPERM:
        return "eacces";
    case EISDIR:
        return "not_regular_file";
    case EMFILE:
    case ENFILE:
        return "emfile";
    case ENOSYS:  /* no openat2: refused rather than resolved unsafely */
    case E2BIG:
        return "files_unsupported";
    default:
        return "eio";
    }
}
