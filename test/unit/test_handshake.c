/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of handshake.c's framing: 2-byte lengths over TCP, 4-byte
 * lengths inside TLS (inet_tls_dist's {packet, 4}), and the refusal of a
 * TLS ClientHello by a plaintext daemon. (The state machine's robustness
 * is fuzz_handshake's.)
 */
#include <string.h>

#include <CUnit/CUnit.h>

#include "handshake.h"

#define COOKIE "HSCOOKIE"
#define CHALLENGE 0x1234abcdu

/* 'N' Flags:64 Creation:32 NLen:16 Name, behind a hdr-byte length */
static size_t
send_name(unsigned char *b, size_t hdr)
{
    static const char name[] = "peer@host";
    unsigned char body[64];
    uint64_t flags = EWP_DFLAG_MANDATORY | EWP_DFLAG_HANDSHAKE_23;
    size_t len = 0, i;

    body[len++] = 'N';
    for (i = 0; i < 8; i++)
        body[len++] = (unsigned char)(flags >> (56 - 8 * i));
    memset(body + len, 0, 4), len += 4;
    body[len++] = 0;
    body[len++] = (unsigned char)strlen(name);
    memcpy(body + len, name, strlen(name)), len += strlen(name);
    memset(b, 0, hdr);
    b[hdr - 1] = (unsigned char)len;
    memcpy(b + hdr, body, len);
    return hdr + len;
}

static void
test_tls_4byte_lengths(void)
{
    struct ewp_hs hs;
    unsigned char in[128], d[16];
    size_t used = 0, n;

    ewp_hs_init(&hs, "ewpcap@host", COOKIE, 5, CHALLENGE, EWP_DFLAG_OURS);
    ewp_hs_set_tls(&hs);
    n = send_name(in, 4);
    CU_ASSERT_EQUAL(ewp_hs_input(&hs, in, n, &used), 0);
    CU_ASSERT_EQUAL(used, n);
    /* "sok" with a 4-byte length, then our 'N' */
    CU_ASSERT(hs.out_len > 7 && memcmp(hs.out, "\0\0\0\3sok", 7) == 0);
    CU_ASSERT(hs.out[7] == 0 && hs.out[8] == 0 && hs.out[11] == 'N');
    hs.out_len = 0;
    /* 'r' Challenge:32 Digest, 4-byte length 21, and a frame after it */
    memcpy(in, "\0\0\0\25r\0\0\0\1", 9);
    ewp_hs_digest(CHALLENGE, COOKIE, d);
    memcpy(in + 9, d, 16);
    memcpy(in + 25, "\0\0\0\0", 4);
    CU_ASSERT_EQUAL(ewp_hs_input(&hs, in, 29, &used), 1);
    CU_ASSERT_EQUAL(used, 25);
    CU_ASSERT(hs.out_len == 4 + 17 && memcmp(hs.out, "\0\0\0\21a", 5) == 0);
}

static void
test_plain_2byte_lengths(void)
{
    struct ewp_hs hs;
    unsigned char in[128];
    size_t used = 0, n;

    ewp_hs_init(&hs, "ewpcap@host", COOKIE, 5, CHALLENGE, EWP_DFLAG_OURS);
    n = send_name(in, 2);
    CU_ASSERT_EQUAL(ewp_hs_input(&hs, in, n, &used), 0);
    CU_ASSERT(hs.out_len > 5 && memcmp(hs.out, "\0\3sok", 5) == 0);
}

static void
test_tls_client_on_plain_refused(void)
{
    static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
    struct ewp_hs hs;
    size_t used = 0;

    ewp_hs_init(&hs, "ewpcap@host", COOKIE, 5, CHALLENGE, EWP_DFLAG_OURS);
    CU_ASSERT_EQUAL(ewp_hs_input(&hs, hello, sizeof(hello), &used), -1);
    CU_ASSERT(hs.error != NULL && strncmp(hs.error, "TLS client", 10) == 0);
}

static void
test_tls_length_past_buffer_refused(void)
{
    static const unsigned char big[] = {0, 1, 0, 0, 'N'};
    struct ewp_hs hs;
    size_t used = 0;

    ewp_hs_init(&hs, "ewpcap@host", COOKIE, 5, CHALLENGE, EWP_DFLAG_OURS);
    ewp_hs_set_tls(&hs);
    CU_ASSERT_EQUAL(ewp_hs_input(&hs, big, sizeof(big), &used), -1);
    CU_ASSERT(hs.error != NULL && strcmp(hs.error, "handshake packet too large") == 0);
}

CU_TestInfo ewp_handshake_tests[] = {
    {"inside TLS, 4-byte lengths: send_name, challenge reply, ack", test_tls_4byte_lengths},
    {"over TCP, 2-byte lengths", test_plain_2byte_lengths},
    {"a TLS ClientHello to a plaintext daemon is refused as such",
     test_tls_client_on_plain_refused},
    {"inside TLS, a length past the buffer is refused", test_tls_length_past_buffer_refused},
    CU_TEST_INFO_NULL,
};
