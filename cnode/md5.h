/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * MD5 (RFC 1321), only for the distribution handshake's cookie digests.
 */
#ifndef EWP_MD5_H
#define EWP_MD5_H

#include <stddef.h>
#include <stdint.h>

struct ewp_md5 {
    uint32_t state[4];       /* A, B, C, D */
    uint64_t bytes;          /* message length so far */
    unsigned char block[64]; /* partial input block */
};

void ewp_md5_init(struct ewp_md5 *m);
void ewp_md5_update(struct ewp_md5 *m, const void *data, size_t len);
void ewp_md5_final(struct ewp_md5 *m, unsigned char digest[16]);

#endif /* EWP_MD5_H */
