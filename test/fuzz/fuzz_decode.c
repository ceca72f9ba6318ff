/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * libFuzzer target for the request decoder (cnode/decode.c, linked alone).
 * The input is raw bytes. They are walked by ewp_decode_check twice: as a
 * term without version byte (how rpc.c hands a built request to
 * ewp_request_run) and, when data[0] is 131, from the byte after it (how
 * ctl.c checks a message). Only a term that passes the check is decoded,
 * as router.c does: ewp_decode_call, then ewp_decode_request where the
 * call's Request starts; and ewp_decode_request on the bare term as well.
 *
 * Besides ASan/UBSan findings, the harness aborts when a decoder breaks its
 * contract: ei_skip_term and ewp_decode_check disagree on where a checked
 * term ends, index moved on failure, index past the checked term, a pointer
 * of the request outside the buffer, an option out of its documented range.
 * Decoding runs on a guarded copy (fuzz_common.h) so that an over-read by
 * the uninstrumented libei faults.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ei.h>

#include "decode.h"
#include "fuzz_common.h"

static void one(const char *buf, size_t len, int start);
static void request(const char *buf, int end, int start);
static void within(const char *buf, int end, const char *p, size_t len, const char *what);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf;
    int i;

    if (size > INT_MAX)
        return 0;
    /* the check itself on libFuzzer's exact-size buffer, where ASan's
     * redzones are precise for instrumented code */
    i = 0;
    (void)ewp_decode_check((const char *)data, size, &i);
    if (size > 0 && data[0] == 131) {
        i = 1;
        (void)ewp_decode_check((const char *)data, size, &i);
    }

    buf = fuzz_guard_copy(data, size);
    one(buf, size, 0);
    if (size > 0 && data[0] == 131)
        one(buf, size, 1);
    fuzz_guard_release();
    return 0;
}

static void
one(const char *buf, size_t len, int start)
{
    erlang_pid from;
    int i = start, end, j, tag_index = -1, tag_len = -1;

    if (ewp_decode_check(buf, len, &i) < 0) {
        FUZZ_CHECK(i == start, "ewp_decode_check moved index on failure (%d -> %d)", start, i);
        return;
    }
    FUZZ_CHECK(i > start && (size_t)i <= len, "checked term [%d, %d) outside [0, %zu)", start,
               i, len);
    end = i;

    /* decode.c measures terms with ei_skip_term (a call's Tag, a binary):
     * on a checked term it must agree with the check. Inside a list or a
     * tuple ei_skip_term ignores an element it cannot skip and carries on
     * from there, so a disagreement means a reply with a mangled term. */
    j = start;
    FUZZ_CHECK(ei_skip_term(buf, &j) == 0 && j == end,
               "ei_skip_term ends at %d, ewp_decode_check at %d (from %d)", j, end, start);

    /* as router.c: {'$gen_call', {From, Tag}, Request} */
    j = start;
    if (ewp_decode_call(buf, &j, &from, &tag_index, &tag_len) == 0) {
        FUZZ_CHECK(j > start && j <= end, "call index %d outside (%d, %d]", j, start, end);
        FUZZ_CHECK(tag_index > start && tag_len > 0 && tag_index + tag_len <= j,
                   "tag [%d, +%d) outside the call", tag_index, tag_len);
        FUZZ_CHECK(memchr(from.node, '\0', sizeof(from.node)) != NULL, "pid node not terminated");
        fuzz_touch(buf + tag_index, (size_t)tag_len);
        request(buf, end, j);
    } else {
        FUZZ_CHECK(j == start, "ewp_decode_call moved index on failure");
    }

    /* as rpc.c: a bare request term */
    request(buf, end, start);
}

static void
request(const char *buf, int end, int start)
{
    struct ewp_request req;
    int i = start, rc;

    rc = ewp_decode_request(buf, &i, &req);
    FUZZ_CHECK(rc == EWP_DECODE_OK || rc == EWP_DECODE_BADARG || rc == EWP_DECODE_UNKNOWN,
               "ewp_decode_request returned %d", rc);
    if (rc != EWP_DECODE_OK) {
        FUZZ_CHECK(i == start, "ewp_decode_request moved index on failure (%d)", rc);
        return;
    }
    FUZZ_CHECK(i > start && i <= end, "request index %d outside (%d, %d]", i, start, end);

    switch (req.type) {
    case EWP_REQ_OPEN:
        FUZZ_CHECK(req.dev_len <= EWP_DEV_MAX, "device name of %zu bytes", req.dev_len);
        within(buf, end, req.dev, req.dev_len, "device");
        FUZZ_CHECK(req.dev_len == 0 || memchr(req.dev, '\0', req.dev_len) == NULL,
                   "device name with NUL");
        if (req.has_owner)
            FUZZ_CHECK(memchr(req.owner.node, '\0', sizeof(req.owner.node)) != NULL,
                       "owner node not terminated");
        break;
    case EWP_REQ_OPEN_FILE:
        FUZZ_CHECK(req.dev_len <= EWP_PATH_MAX, "path of %zu bytes", req.dev_len);
        within(buf, end, req.dev, req.dev_len, "path");
        if (req.has_owner)
            FUZZ_CHECK(memchr(req.owner.node, '\0', sizeof(req.owner.node)) != NULL,
                       "owner node not terminated");
        break;
    case EWP_REQ_FILTER:
        within(buf, end, req.data, req.data_len, "filter");
        (void)ewp_filter_within_limit(req.data_len, req.opts.limit);
        break;
    case EWP_REQ_WRITE:
        within(buf, end, req.data, req.data_len, "packet");
        break;
    case EWP_REQ_CLOSE:
    case EWP_REQ_STATS:
        FUZZ_CHECK(req.ref.len >= 1 && req.ref.len <= 5, "ref of %d words", req.ref.len);
        break;
    case EWP_REQ_DEV:
    case EWP_REQ_GETIFADDRS:
    case EWP_REQ_INFO:
        break;
    default:
        FUZZ_CHECK(0, "request type %d", (int)req.type);
    }

    /* documented ranges of docs/PROTOCOL.md */
    FUZZ_CHECK(req.opts.snaplen >= 0, "snaplen %d", req.opts.snaplen);
    FUZZ_CHECK(req.opts.timeout_ms >= 0, "timeout %d", req.opts.timeout_ms);
    FUZZ_CHECK(req.opts.batch >= 1 && req.opts.batch <= EWP_BATCH_MAX, "batch %d",
               req.opts.batch);
    FUZZ_CHECK(req.opts.immediate == 0 || req.opts.immediate == 1, "immediate %d",
               req.opts.immediate);
    FUZZ_CHECK(req.opts.time_unit == EWP_TIME_TIMESTAMP ||
                   req.opts.time_unit == EWP_TIME_MICROSECOND,
               "time_unit %d", (int)req.opts.time_unit);
    if (req.opts.dump_len > 0)
        within(buf, end, req.opts.dump, req.opts.dump_len, "dump path");
    if (req.opts.has_filter) {
        within(buf, end, req.opts.filter, req.opts.filter_len, "filter option");
        (void)ewp_filter_within_limit(req.opts.filter_len, req.opts.limit);
    }
}

/* p[0..len) lies inside the checked term buf[0..end) */
static void
within(const char *buf, int end, const char *p, size_t len, const char *what)
{
    FUZZ_CHECK(p != NULL || len == 0, "%s: NULL with length %zu", what, len);
    if (len == 0)
        return;
    FUZZ_CHECK(p >= buf && p <= buf + end && len <= (size_t)(buf + end - p),
               "%s [%td, +%zu) outside the term [0, %d)", what, p - buf, len, end);
    fuzz_touch(p, len);
}
