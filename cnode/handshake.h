/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The accepting side of the Erlang distribution handshake (version 6,
 * OTP 23+) as a pure state machine: bytes in, bytes out, no I/O. listen.c
 * feeds it from a non-blocking socket, so a silent or slow client costs a
 * timer and a few hundred bytes, never a stalled loop (ei_accept blocks).
 */
#ifndef EWP_HANDSHAKE_H
#define EWP_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#define EWP_HS_NAME_MAX 255    /* longest peer node name accepted (an atom) */
#define EWP_HS_BUF 600         /* handshake packets are small */

/* Distribution flags (ERTS distribution protocol) */
#define EWP_DFLAG_EXTENDED_REFERENCES 0x4ULL
#define EWP_DFLAG_DIST_MONITOR 0x8ULL
#define EWP_DFLAG_FUN_TAGS 0x10ULL
#define EWP_DFLAG_DIST_MONITOR_NAME 0x20ULL
#define EWP_DFLAG_NEW_FUN_TAGS 0x80ULL
#define EWP_DFLAG_EXTENDED_PIDS_PORTS 0x100ULL
#define EWP_DFLAG_EXPORT_PTR_TAG 0x200ULL
#define EWP_DFLAG_BIT_BINARIES 0x400ULL
#define EWP_DFLAG_NEW_FLOATS 0x800ULL
#define EWP_DFLAG_DIST_HDR_ATOM_CACHE 0x2000ULL
#define EWP_DFLAG_SMALL_ATOM_TAGS 0x4000ULL
#define EWP_DFLAG_UTF8_ATOMS 0x10000ULL
#define EWP_DFLAG_MAP_TAG 0x20000ULL
#define EWP_DFLAG_BIG_CREATION 0x40000ULL
#define EWP_DFLAG_HANDSHAKE_23 0x1000000ULL
#define EWP_DFLAG_UNLINK_ID 0x2000000ULL
#define EWP_DFLAG_MANDATORY_25_DIGEST 0x4000000ULL
#define EWP_DFLAG_SPAWN (0x1ULL << 32)
#define EWP_DFLAG_V4_NC (0x4ULL << 32)

/* What every OTP 25 peer must support */
#define EWP_DFLAG_MANDATORY                                                   \
    (EWP_DFLAG_EXTENDED_REFERENCES | EWP_DFLAG_FUN_TAGS |                     \
     EWP_DFLAG_EXTENDED_PIDS_PORTS | EWP_DFLAG_UTF8_ATOMS |                   \
     EWP_DFLAG_NEW_FUN_TAGS | EWP_DFLAG_BIG_CREATION | EWP_DFLAG_NEW_FLOATS | \
     EWP_DFLAG_MAP_TAG | EWP_DFLAG_EXPORT_PTR_TAG | EWP_DFLAG_BIT_BINARIES)

/* What we offer: the atom cache (every frame with a distribution header,
 * atomcache.h: the receiving node looks a packet message's atoms up by
 * index); no fragments, so every message is one frame; spawn, for rpc:call/erpc:call (rpc.c); monitors both ways
 * (erts sends MONITOR_P_EXIT only to a node with DIST_MONITOR and
 * DIST_MONITOR_NAME: without the latter an rpc caller's death went
 * unnoticed) */
#define EWP_DFLAG_OURS                                                        \
    (EWP_DFLAG_MANDATORY | EWP_DFLAG_MANDATORY_25_DIGEST |                    \
     EWP_DFLAG_DIST_MONITOR | EWP_DFLAG_DIST_MONITOR_NAME |                   \
     EWP_DFLAG_SMALL_ATOM_TAGS | EWP_DFLAG_DIST_HDR_ATOM_CACHE |              \
     EWP_DFLAG_HANDSHAKE_23 | EWP_DFLAG_UNLINK_ID | EWP_DFLAG_V4_NC |         \
     EWP_DFLAG_SPAWN)

enum ewp_hs_state {
    EWP_HS_RECV_NAME,  /* waiting for the peer's send_name 'N' */
    EWP_HS_RECV_REPLY, /* challenge sent, waiting for 'r' */
    EWP_HS_DONE,       /* acked: distribution frames follow */
    EWP_HS_FAILED      /* refused: close the socket */
};

struct ewp_hs {
    enum ewp_hs_state state;            /* where we are */
    unsigned char in[EWP_HS_BUF];       /* partial input packet */
    size_t in_len;                      /* bytes in it */
    unsigned char out[EWP_HS_BUF];      /* bytes to send */
    size_t out_len;                     /* how many */
    const char *our_name;               /* our node name */
    const char *cookie;                 /* the shared secret */
    uint32_t creation;                  /* our creation */
    uint32_t challenge;                 /* our challenge */
    uint64_t our_flags;                 /* flags we offer */
    size_t hdr;                         /* bytes of each packet's length: 2, or 4 in TLS */
    uint64_t peer_flags;                /* flags the peer offered */
    uint32_t peer_creation;             /* its creation */
    char peer_name[EWP_HS_NAME_MAX + 1]; /* its node name */
    const char *error;                  /* why it failed, for the log */
};

void ewp_hs_init(struct ewp_hs *hs, const char *our_name, const char *cookie,
                 uint32_t creation, uint32_t challenge, uint64_t flags);
void ewp_hs_set_tls(struct ewp_hs *hs);
int ewp_hs_input(struct ewp_hs *hs, const void *data, size_t len, size_t *used);
void ewp_hs_digest(uint32_t challenge, const char *cookie, unsigned char digest[16]);

#endif /* EWP_HANDSHAKE_H */
