/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A byte stream under a connection, other than the plain socket: what
 * dist.c and listen.c call instead of read(2) and send(2) when a
 * connection is wrapped (tls.c). Plain connections have no xport (NULL),
 * so the plaintext path stays the system calls it always was.
 *
 * The functions follow read(2)/send(2): read returns > 0, 0 at end of
 * stream, -1 with errno (EAGAIN: wait for the socket to be readable
 * again); write returns the bytes taken (maybe fewer than len) or -1 with
 * errno (EAGAIN: wait for writable; retry later with the same bytes at
 * the start of the buffer, which may have moved, and at least as many).
 * pending tells how many bytes the xport already holds, decrypted, that
 * the socket's readiness will not announce: read them before waiting.
 * write may take bytes it has not yet put on the socket (TLS: records in
 * its gather buffer): unsent counts them; while it is not 0, call write
 * again when the socket is writable (with len 0 when nothing else is to
 * be written), as for bytes not taken.
 */
#ifndef EWP_XPORT_H
#define EWP_XPORT_H

#include <stddef.h>
#include <sys/types.h>

struct ewp_xport;

struct ewp_xport_ops {
    ssize_t (*read)(struct ewp_xport *x, void *buf, size_t len);         /* as read(2) */
    ssize_t (*write)(struct ewp_xport *x, const void *buf, size_t len);  /* as send(2) */
    size_t (*pending)(struct ewp_xport *x);   /* bytes held that the fd will not signal */
    size_t (*unsent)(struct ewp_xport *x);    /* bytes taken, not yet on the socket */
    void (*free)(struct ewp_xport *x);        /* frees it; the fd stays open */
};

struct ewp_xport {
    const struct ewp_xport_ops *ops;          /* how */
};

#endif /* EWP_XPORT_H */
