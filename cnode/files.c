/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Savefile paths ({file, Path} reads, {dump, Path} writes) confined to
 * ewpcapd's --files directory. Pure path logic: opening is capture.c's.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

/*
 * path (len bytes) confined to dir (a real path, or NULL: files refused):
 * relative paths are taken in dir, and the real path (symbolic links and
 * ".." resolved; for a file to be created, that of its directory) must be
 * dir or under it. Returns NULL with the path in out (PATH_MAX bytes), or
 * the error atom.
 */
const char *
ewp_files_resolve(const char *dir, const char *path, size_t len, int must_exist, char *out)
{
    char joined[PATH_MAX], parent[PATH_MAX];
    char *slash;
    size_t dlen;
    int n;

    if (dir == NULL)
        return "files_disabled";
    if (len > 0 && path[0] == '/')
        n = snprintf(joined, sizeof(joined), "%.*s", (int)len, path);
    else
        n = snprintf(joined, sizeof(joined), "%s/%.*s", dir, (int)len, path);
    if (n < 0 || (size_t)n >= sizeof(joined))
        return "bad_path";
    if (must_exist) {
        if (realpath(joined, out) == NULL)
            return "enoent";
    } else {
        slash = strrchr(joined, '/');
        if (slash == NULL || slash[1] == '\0' || strcmp(slash + 1, "..") == 0 ||
            strcmp(slash + 1, ".") == 0)
            return "bad_path";
        *slash = '\0';
        if (realpath(joined[0] != '\0' ? joined : "/", parent) == NULL)
            return "enoent";
        n = snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, slash + 1);
        if (n < 0 || n >= PATH_MAX)
            return "bad_path";
    }
    dlen = strlen(dir);
    if (strcmp(dir, "/") != 0 &&
        (strncmp(out, dir, dlen) != 0 || (out[dlen] != '/' && out[dlen] != '\0')))
        return "bad_path";
    return NULL;
}
