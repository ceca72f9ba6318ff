/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Distribution handshake, accepting side, protocol version 6 (the one OTP
 * 25 nodes use when epmd says the node speaks 6). Every packet carries a
 * 2-byte big-endian length; inside TLS (inet_tls_dist, ewp_hs_set_tls) a
 * 4-byte one:
 *
 *   peer                                      ewpcapd
 *   | --- 'N' Flags:64 Creation:32 NLen:16 Name -> |
 *   | <-- 's' "ok" ------------------------------- |
 *   | <-- 'N' Flags:64 Challenge:32 Creation:32 NLen:16 Name |
 *   | --- 'r' Challenge:32 Digest:128 ----------> |  Digest = MD5(Cookie ++ our challenge)
 *   | <-- 'a' Digest:128 ------------------------ |  MD5(Cookie ++ its challenge)
 *
 * Our flags leave out fragmentation, so each message after the handshake
 * is one self-contained frame; the atom cache is offered (atomcache.h). Not
 * setting DFLAG_PUBLISHED makes us a hidden node, as ei is.
 */
#include <stdio.h>
#include <string.h>

#include <nettle/md5.h>
#include <nettle/memops.h>

#include "handshake.h"
#include "be.h"

static int packet(struct ewp_hs *hs, const unsigned char *p, size_t len);
static size_t in_need(const struct ewp_hs *hs);
static int on_name(struct ewp_hs *hs, const unsigned char *p, size_t len);
static int on_reply(struct ewp_hs *hs, const unsigned char *p, size_t len);
static int out_packet(struct ewp_hs *hs, const unsigned char *body, size_t len);
static int fail(struct ewp_hs *hs, const char *why);

void
ewp_hs_init(struct ewp_hs *hs, const char *our_name, const char *cookie, uint32_t creation,
            uint32_t challenge, uint64_t flags)
{
    memset(hs, 0, sizeof(*hs));
    hs->state = EWP_HS_RECV_NAME;
    hs->our_name = our_name;
    hs->cookie = cookie;
    hs->creation = creation;
    hs->challenge = challenge;
    hs->our_flags = flags;
    hs->hdr = 2;
}

/* Inside TLS, inet_tls_dist's {packet, 4}: 4-byte lengths. Before any input. */
void
ewp_hs_set_tls(struct ewp_hs *hs)
{
    hs->hdr = 4;
}

/*
 * Feed len bytes. *used tells how many were taken: after EWP_HS_DONE the
 * rest already belongs to the distribution stream. Output to send is
 * appended to hs->out.
 *
 * Returns:
 *  0 - need more input
 *  1 - handshake complete (state EWP_HS_DONE)
 * -1 - refused (state EWP_HS_FAILED, reason in hs->error)
 */
int
ewp_hs_input(struct ewp_hs *hs, const void *data, size_t len, size_t *used)
{
    const unsigned char *d = data;
    size_t taken = 0;

    while (taken < len && hs->state != EWP_HS_DONE && hs->state != EWP_HS_FAILED) {
        size_t need, n;

        /* first the length (hs->hdr bytes), then the packet itself */
        if (hs->hdr == 2 && hs->in_len >= 2 && hs->in[0] == 0x16 && hs->in[1] == 0x03) {
            /* a TLS record header where a length belongs: a ClientHello */
            *used = taken;
            return fail(hs, "TLS client (this ewpcapd runs without --tls-cert)");
        }
        need = in_need(hs);
        if (need > sizeof(hs->in)) {
            *used = taken;
            return fail(hs, "handshake packet too large");
        }
        n = need - hs->in_len;
        if (n > len - taken)
            n = len - taken;
        memcpy(hs->in + hs->in_len, d + taken, n);
        hs->in_len += n;
        taken += n;
        if (hs->in_len < hs->hdr || hs->in_len < in_need(hs))
            continue;
        if (hs->in_len == hs->hdr) {
            *used = taken;
            return fail(hs, "empty handshake packet");
        }
        {
            int rv = packet(hs, hs->in + hs->hdr, hs->in_len - hs->hdr);

            hs->in_len = 0;
            if (rv < 0) {
                *used = taken;
                return -1;
            }
        }
    }
    *used = taken;
    if (hs->state == EWP_HS_FAILED)
        return -1;
    return hs->state == EWP_HS_DONE ? 1 : 0;
}

/* MD5(Cookie ++ integer_to_list(Challenge)) */
void
ewp_hs_digest(uint32_t challenge, const char *cookie, unsigned char digest[16])
{
    struct md5_ctx m;
    char num[16];
    int n;

    n = snprintf(num, sizeof(num), "%u", (unsigned)challenge);
    md5_init(&m);
    md5_update(&m, strlen(cookie), (const uint8_t *)cookie);
    md5_update(&m, (size_t)n, (const uint8_t *)num);
    md5_digest(&m, MD5_DIGEST_SIZE, digest);
}

/* Bytes the current packet needs in hs->in: its length field, then all of it.
 * A 4-byte length past the buffer is capped (and refused by the caller). */
static size_t
in_need(const struct ewp_hs *hs)
{
    uint32_t len;

    if (hs->in_len < hs->hdr)
        return hs->hdr;
    len = hs->hdr == 2 ? (((uint32_t)hs->in[0] << 8) | hs->in[1]) : ewp_get_be32(hs->in);
    if (len > EWP_HS_BUF)
        len = EWP_HS_BUF;
    return hs->hdr + (size_t)len;
}

static int
packet(struct ewp_hs *hs, const unsigned char *p, size_t len)
{
    switch (hs->state) {
    case EWP_HS_RECV_NAME:
        return on_name(hs, p, len);
    case EWP_HS_RECV_REPLY:
        return on_reply(hs, p, len);
    case EWP_HS_DONE:
    case EWP_HS_FAILED:
        break;
    }
    return fail(hs, "unexpected handshake packet");
}

/* 'N' Flags:64 Creation:32 NLen:16 Name: answer "ok" and our challenge */
static int
on_name(struct ewp_hs *hs, const unsigned char *p, size_t len)
{
    unsigned char body[1 + 8 + 4 + 4 + 2 + EWP_HS_NAME_MAX];
    size_t nlen, our_len = strlen(hs->our_name);

    if (p[0] != 'N')
        return fail(hs, p[0] == 'n' ? "peer speaks only distribution version 5"
                                    : "not a distribution handshake");
    if (len < 1 + 8 + 4 + 2)
        return fail(hs, "short send_name");
    hs->peer_flags = ewp_get_be64(p + 1);
    hs->peer_creation = ewp_get_be32(p + 9);
    nlen = ((size_t)p[13] << 8) | p[14];
    if (nlen == 0 || nlen > EWP_HS_NAME_MAX || 15 + nlen != len)
        return fail(hs, "bad node name in send_name");
    memcpy(hs->peer_name, p + 15, nlen);
    hs->peer_name[nlen] = '\0';
    if (memchr(hs->peer_name, '@', nlen) == NULL || memchr(hs->peer_name, '\0', nlen) != NULL)
        return fail(hs, "bad node name in send_name");
    if ((hs->peer_flags & EWP_DFLAG_MANDATORY) != EWP_DFLAG_MANDATORY)
        return fail(hs, "peer lacks mandatory distribution capabilities");

    if (out_packet(hs, (const unsigned char *)"sok", 3) < 0)
        return -1;
    if (our_len > EWP_HS_NAME_MAX)
        return fail(hs, "our node name is too long");
    body[0] = 'N';
    ewp_put_be64(body + 1, hs->our_flags);
    ewp_put_be32(body + 9, hs->challenge);
    ewp_put_be32(body + 13, hs->creation);
    body[17] = (unsigned char)(our_len >> 8);
    body[18] = (unsigned char)our_len;
    memcpy(body + 19, hs->our_name, our_len);
    if (out_packet(hs, body, 19 + our_len) < 0)
        return -1;
    hs->state = EWP_HS_RECV_REPLY;
    return 0;
}

/* 'r' Challenge:32 Digest:128: check the digest, send ours */
static int
on_reply(struct ewp_hs *hs, const unsigned char *p, size_t len)
{
    unsigned char expected[16], ack[17];

    if (len != 21 || p[0] != 'r')
        return fail(hs, "bad challenge reply");
    ewp_hs_digest(hs->challenge, hs->cookie, expected);
    /* in constant time: how much of a digest matched must not show */
    if (!memeql_sec(expected, p + 5, 16))
        return fail(hs, "wrong cookie");
    ack[0] = 'a';
    ewp_hs_digest(ewp_get_be32(p + 1), hs->cookie, ack + 1);
    if (out_packet(hs, ack, sizeof(ack)) < 0)
        return -1;
    hs->state = EWP_HS_DONE;
    return 0;
}

static int
out_packet(struct ewp_hs *hs, const unsigned char *body, size_t len)
{
    unsigned char *o = hs->out + hs->out_len;

    if (hs->out_len + hs->hdr + len > sizeof(hs->out))
        return fail(hs, "handshake output overflow");
    if (hs->hdr == 4) {
        ewp_put_be32(o, (uint32_t)len);
    } else {
        o[0] = (unsigned char)(len >> 8);
        o[1] = (unsigned char)len;
    }
    memcpy(o + hs->hdr, body, len);
    hs->out_len += hs->hdr + len;
    return 0;
}

static int
fail(struct ewp_hs *hs, const char *why)
{
    hs->state = EWP_HS_FAILED;
    hs->error = why;
    return -1;
}
