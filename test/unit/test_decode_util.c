/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What the decode suites share (test_decode.h): the suite init and clean
 * that turn SIGSEGV and SIGBUS into a test failure, the decoders run under
 * them, terms built from text, requests decoded from a guarded buffer and
 * the valid terms ei does not produce.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "decode.h"
#include "test_decode.h"

/* ---- faults ---- */

static sigjmp_buf fault_env;
static volatile sig_atomic_t fault_armed;
static struct sigaction old_segv, old_bus;

static void
on_fault(int sig)
{
    if (fault_armed) {
        fault_armed = 0;
        siglongjmp(fault_env, 1);
    }
    (void)signal(sig, SIG_DFL);
    (void)raise(sig);
}

int
ewp_decode_suite_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    if (sigaction(SIGSEGV, &sa, &old_segv) < 0 || sigaction(SIGBUS, &sa, &old_bus) < 0)
        return -1;
    return 0;
}

int
ewp_decode_suite_clean(void)
{
    (void)sigaction(SIGSEGV, &old_segv, NULL);
    (void)sigaction(SIGBUS, &old_bus, NULL);
    ewp_t_guard_release();
    return 0;
}

/* Runs one decoder; a SIGSEGV/SIGBUS inside sets *fault and returns -99. */
int
ewp_td_guarded(enum op op, const char *buf, size_t len, int *index, void *out, int *fault)
{
    volatile int rv = -99;

    *fault = 0;
    if (sigsetjmp(fault_env, 1) == 0) {
        fault_armed = 1;
        switch (op) {
        case OP_CHECK:
            rv = ewp_decode_check(buf, len, index);
            break;
        case OP_CALL: {
            struct call_out *c = out;

            rv = ewp_decode_call(buf, index, &c->from, &c->tag_index, &c->tag_len);
            break;
        }
        case OP_REQUEST:
            rv = ewp_decode_request(buf, index, out);
            break;
        }
        fault_armed = 0;
    } else {
        *fault = 1;
    }
    return rv;
}

/* ---- fixtures ---- */

/* A freshly built term; the caller frees it with ei_x_free. */
int
ewp_td_build(ei_x_buff *x, const char *fmt, ...)
{
    va_list ap;
    int rv;

    if (ei_x_new(x) < 0)
        return -1;
    va_start(ap, fmt);
    rv = ewp_t_vbuild(x, fmt, ap);
    va_end(ap);
    CHECK_CASE(rv == 0, fmt);
    return rv;
}

/* ---- request helpers ---- */

char *ewp_td_last_buf; /* guarded copy of the last request decoded */

/*
 * Decodes the request fmt at offset `pad` of a guarded buffer (after `pad`
 * bytes of NIL terms): asserts that it is a checked term, that *index moves
 * to its end on success and stays put on failure, and that nothing faults.
 */
static int
vrequest_at(int pad, struct ewp_request *req, const char *fmt, va_list ap)
{
    ei_x_buff x;
    char *buf;
    char what[600];
    int i, end, rv, fault, k, len;

    if (ei_x_new(&x) < 0)
        return -100;
    for (k = 0; k < pad; k++)
        (void)ei_x_encode_empty_list(&x);
    rv = ewp_t_vbuild(&x, fmt, ap);
    len = x.index;
    buf = rv == 0 ? ewp_t_guard(x.buff, (size_t)len) : NULL;
    ei_x_free(&x);
    (void)snprintf(what, sizeof(what), "request %s is built and checked", fmt);
    if (buf == NULL) {
        CHECK_CASE(0, what);
        return -100;
    }
    ewp_td_last_buf = buf;
    end = pad;
    rv = ewp_td_guarded(OP_CHECK, buf, (size_t)len, &end, NULL, &fault);
    CHECK_CASE(!fault && rv == 0 && end == len, what);

    i = pad;
    rv = ewp_td_guarded(OP_REQUEST, buf, (size_t)len, &i, req, &fault);
    (void)snprintf(what, sizeof(what), "decoding %s does not fault", fmt);
    CHECK_CASE(!fault, what);
    if (rv == EWP_DECODE_OK) {
        (void)snprintf(what, sizeof(what), "decoding %s moves *index to its end", fmt);
        CHECK_CASE(i == len, what);
    } else {
        (void)snprintf(what, sizeof(what), "decoding %s leaves *index alone on failure", fmt);
        CHECK_CASE(i == pad, what);
    }
    return rv;
}

int
ewp_td_request(struct ewp_request *req, const char *fmt, ...)
{
    va_list ap;
    int rv;

    va_start(ap, fmt);
    rv = vrequest_at(0, req, fmt, ap);
    va_end(ap);
    return rv;
}

int
ewp_td_request_at(int pad, struct ewp_request *req, const char *fmt, ...)
{
    va_list ap;
    int rv;

    va_start(ap, fmt);
    rv = vrequest_at(pad, req, fmt, ap);
    va_end(ap);
    return rv;
}

void
ewp_td_expect_status(int got, int want, const char *what)
{
    char msg[600];

    (void)snprintf(msg, sizeof(msg), "%s: status %d, expected %d", what, got, want);
    CHECK_CASE(got == want, msg);
}

/* ---- raw terms ---- */

/* Terms ei does not produce (any more) but a peer may send, all valid */
const struct raw ewp_td_valid_raw[N_VALID_RAW] = {
    RAW("an old PID_EXT", 'g', 's', 1, 'a', 0, 0, 0, 1, 0, 0, 0, 0, 1),
    RAW("an old PORT_EXT", 'f', 's', 1, 'a', 0, 0, 0, 1, 1),
    RAW("a NEW_PORT_EXT", 'Y', 's', 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1),
    RAW("a V4_PORT_EXT", 'x', 's', 1, 'a', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1),
    RAW("an old REFERENCE_EXT", 'e', 's', 1, 'a', 0, 0, 0, 1, 1),
    RAW("a NEW_REFERENCE_EXT", 'r', 0, 3, 's', 1, 'a', 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3),
    RAW("a NEWER_REFERENCE_EXT of 5 words", 'Z', 0, 5, 's', 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1, 0,
        0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5),
    RAW("a LARGE_BIG_EXT", 'o', 0, 0, 0, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    RAW("a SMALL_BIG_EXT", 'n', 8, 1, 1, 2, 3, 4, 5, 6, 7, 8),
    RAW("an ATOM_EXT", 'd', 0, 2, 'o', 'k'),
    RAW("an ATOM_UTF8_EXT", 'v', 0, 2, 0xc3, 0xa9),
    RAW("a SMALL_ATOM_EXT", 's', 2, 'o', 'k'),
    RAW("a SMALL_ATOM_UTF8_EXT", 'w', 2, 0xc3, 0xa9),
    RAW("an empty atom", 'w', 0),
    RAW("a NEW_FLOAT_EXT", 'F', 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18),
    RAW("a BIT_BINARY_EXT", 'M', 0, 0, 0, 1, 3, 0xe0),
    RAW("an empty STRING_EXT", 'k', 0, 0),
    RAW("an empty BINARY_EXT", 'm', 0, 0, 0, 0),
    RAW("a MAP_EXT", 't', 0, 0, 0, 1, 'a', 1, 'a', 2),
    RAW("an empty MAP_EXT", 't', 0, 0, 0, 0),
    RAW("an improper LIST_EXT", 'l', 0, 0, 0, 1, 'a', 1, 'a', 2),
    RAW("an empty LARGE_TUPLE_EXT", 'i', 0, 0, 0, 0),
    RAW("an INTEGER_EXT", 'b', 0x80, 0, 0, 0),
    RAW("a pid with an ATOM_UTF8_EXT node", 'X', 'v', 0, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        0, 1),
};
