/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * libFuzzer target for the distribution header (cnode/atomcache_in.c and
 * atomcache_out.c, linked with decode_check.c). The input is a stream of frames, each behind a
 * 2-byte length, all read against one incoming cache as dist.c reads a
 * connection's (so later frames can refer to the entries of earlier ones):
 * ewp_ac_in_frame, then, as ctl.c does, ewp_decode_check on the rewritten
 * control and message. A frame in our own pass-through form ('p', 131) is
 * also made a template, put through an outgoing cache twice (new entries,
 * then by index) and read back.
 *
 * Besides ASan/UBSan findings, the harness aborts when the rewrite breaks
 * its contract: a frame taken whose rewrite does not start 'p', 131 or
 * passes max, a template's head longer than its bound, or a template's
 * head that its own cache's reader refuses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "atomcache.h"
#include "decode.h"
#include "fuzz_common.h"

#define MAX_OUT (1u << 20)

static void tmpl_round_trip(const char *buf, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ewp_ac_in *c = ewp_ac_in_new();
    struct ewp_ac_buf out = {0};
    size_t pos = 0;

    if (c == NULL)
        return 0;
    while (size - pos >= 2) {
        size_t len = (size_t)data[pos] << 8 | data[pos + 1];
        const char *buf;
        int i;

        pos += 2;
        if (len > size - pos)
            len = size - pos;
        buf = fuzz_guard_copy(data + pos, len);
        if (ewp_ac_in_frame(c, buf, len, MAX_OUT, &out) == 0) {
            FUZZ_CHECK(out.len >= 2 && out.b[0] == 'p' && (unsigned char)out.b[1] == 131,
                       "a rewritten frame starts %02x %02x", out.len > 0 ? out.b[0] : 0,
                       out.len > 1 ? out.b[1] : 0);
            FUZZ_CHECK(out.len <= MAX_OUT, "rewritten to %zu bytes", out.len);
            i = 2; /* as ctl.c */
            if (ewp_decode_check(out.b, out.len, &i) == 0 && (size_t)i < out.len &&
                (unsigned char)out.b[i] == 131) {
                i++;
                (void)ewp_decode_check(out.b, out.len, &i);
            }
        }
        if (len >= 2 && buf[0] == 'p')
            tmpl_round_trip(buf, len);
        fuzz_guard_release();
        pos += len;
    }
    ewp_ac_buf_free(&out);
    ewp_ac_in_free(c);
    return 0;
}

static void
tmpl_round_trip(const char *buf, size_t len)
{
    struct ewp_ac_out *o = ewp_ac_out_new();
    struct ewp_ac_in *in = ewp_ac_in_new();
    struct ewp_ac_buf back = {0};
    struct ewp_ac_tmpl t;
    char *dst;
    int k;

    if (o == NULL || in == NULL || ewp_ac_tmpl_make(&t, buf, len) < 0)
        goto out;
    FUZZ_CHECK(t.body_len <= len, "template body of %zu bytes from %zu", t.body_len, len);
    dst = malloc(t.hdr_max + t.body_len);
    if (dst != NULL) {
        for (k = 0; k < 2; k++) {
            size_t n = ewp_ac_tmpl_put(o, &t, dst);

            FUZZ_CHECK(n <= t.hdr_max + t.body_len, "head of %zu bytes, bound %zu", n,
                       t.hdr_max + t.body_len);
            FUZZ_CHECK(ewp_ac_in_frame(in, dst, n, MAX_OUT, &back) == 0,
                       "our own head (put %d) refused by the reader", k);
        }
        free(dst);
    }
    ewp_ac_tmpl_free(&t);
out:
    ewp_ac_buf_free(&back);
    ewp_ac_in_free(in);
    ewp_ac_out_free(o);
}
