/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Savefile paths confined to ewpcapd's --files directory.
 */
#ifndef EWP_FILES_H
#define EWP_FILES_H

#include <stddef.h>

const char *ewp_files_resolve(const char *dir, const char *path, size_t len, int must_exist,
                              char *out);

#endif /* EWP_FILES_H */
