/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * libFuzzer target for the distribution handshake state machine
 * (cnode/handshake.c, MD5 from nettle). Input layout:
 *
 *   N = data[0] & 7, then N chunk lengths (one byte each), then the stream;
 *   data[0] & 8: 4-byte packet lengths, as inside TLS (ewp_hs_set_tls)
 *
 * The stream is fed to ewp_hs_input in chunks of those lengths (a length
 * longer than what is left takes the rest), then whatever remains in one
 * call, as a non-blocking socket would deliver it. Each chunk is copied to
 * a buffer of exactly its size, so an over-read is an ASan report.
 *
 * The cookie and our challenge are fixed (FUZZ_COOKIE, FUZZ_CHALLENGE):
 * test/fuzz/make_corpus.escript computes the matching challenge reply, so
 * the seed corpus completes a handshake. Checked besides memory safety:
 * the return value agrees with the state, *used never exceeds the chunk,
 * "need more input" consumed everything, the buffers stay in bounds, and
 * a completed handshake ends its output with the 'a' ack.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "handshake.h"

#define FUZZ_OUR_NAME "ewpcap@host"
#define FUZZ_COOKIE "EWPFUZZCOOKIE"
#define FUZZ_CHALLENGE 0x5eed1234u
#define FUZZ_CREATION 0x5eedu

static int feed(struct ewp_hs *hs, const uint8_t *p, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ewp_hs *hs;
    const uint8_t *cuts, *stream;
    size_t ncuts, pos = 0, rest, k;
    int rv = 0;

    if (size == 0)
        return 0;
    ncuts = data[0] & 7;
    if (1 + ncuts > size)
        return 0;
    cuts = data + 1;
    stream = data + 1 + ncuts;
    rest = size - 1 - ncuts;

    /* on the heap: ASan's redzones around the state machine itself */
    hs = malloc(sizeof(*hs));
    FUZZ_CHECK(hs != NULL, "out of memory");
    ewp_hs_init(hs, FUZZ_OUR_NAME, FUZZ_COOKIE, FUZZ_CREATION, FUZZ_CHALLENGE,
                EWP_DFLAG_OURS);
    if (data[0] & 8)
        ewp_hs_set_tls(hs);

    for (k = 0; k < ncuts && rv == 0; k++) {
        size_t n = cuts[k] < rest - pos ? cuts[k] : rest - pos;

        rv = feed(hs, stream + pos, n);
        pos += n;
    }
    if (rv == 0)
        (void)feed(hs, stream + pos, rest - pos);
    free(hs);
    return 0;
}

/* One read's worth of bytes. Returns what ewp_hs_input returned. */
static int
feed(struct ewp_hs *hs, const uint8_t *p, size_t len)
{
    enum ewp_hs_state before = hs->state;
    size_t used = (size_t)-1;
    uint8_t *chunk;
    int rv;

    chunk = malloc(len > 0 ? len : 1);
    FUZZ_CHECK(chunk != NULL, "out of memory");
    if (len > 0)
        memcpy(chunk, p, len);
    rv = ewp_hs_input(hs, chunk, len, &used);
    free(chunk);

    FUZZ_CHECK(rv == -1 || rv == 0 || rv == 1, "ewp_hs_input returned %d", rv);
    FUZZ_CHECK(used <= len, "used %zu of %zu bytes", used, len);
    FUZZ_CHECK(hs->in_len <= sizeof(hs->in), "in_len %zu", hs->in_len);
    FUZZ_CHECK(hs->out_len <= sizeof(hs->out), "out_len %zu", hs->out_len);
    switch (rv) {
    case 0:
        FUZZ_CHECK(used == len, "need more input, yet %zu of %zu bytes left", len - used, len);
        FUZZ_CHECK(hs->state == EWP_HS_RECV_NAME || hs->state == EWP_HS_RECV_REPLY,
                   "state %d after 0", (int)hs->state);
        break;
    case 1:
        FUZZ_CHECK(hs->state == EWP_HS_DONE, "state %d after 1", (int)hs->state);
        FUZZ_CHECK(memchr(hs->peer_name, '\0', sizeof(hs->peer_name)) != NULL &&
                       strchr(hs->peer_name, '@') != NULL,
                   "peer name not a node name");
        FUZZ_CHECK((hs->peer_flags & EWP_DFLAG_MANDATORY) == EWP_DFLAG_MANDATORY,
                   "peer without mandatory flags accepted");
        FUZZ_CHECK(hs->out_len >= 19 && hs->out[hs->out_len - 19] == 0 &&
                       hs->out[hs->out_len - 18] == 17 && hs->out[hs->out_len - 17] == 'a',
                   "no ack at the end of the output");
        break;
    default:
        FUZZ_CHECK(hs->state == EWP_HS_FAILED && hs->error != NULL,
                   "state %d, error %p after -1", (int)hs->state, (const void *)hs->error);
        break;
    }
    if (before == EWP_HS_RECV_NAME && hs->state == EWP_HS_RECV_REPLY)
        FUZZ_CHECK(hs->hdr == 2 ? hs->out_len >= 5 && memcmp(hs->out, "\0\3sok", 5) == 0
                                : hs->out_len >= 7 && memcmp(hs->out, "\0\0\0\3sok", 7) == 0,
                   "challenge sent without status ok");
    return rv;
}
