/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Savefiles opened under ewpcapd's --files directory (openat2, beneath a
 * directory descriptor, no symbolic links; regular files only).
 */
#ifndef EWP_FILES_H
#define EWP_FILES_H

#include <stddef.h>

int ewp_files_open(const char *dir, int dirfd, const char *path, size_t len, int create,
                   const char **why);

#endif /* EWP_FILES_H */
