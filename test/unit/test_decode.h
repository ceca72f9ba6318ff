/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What the decode suites share (test_decode_check.c, test_decode_fuzz.c,
 * test_decode_call.c, test_decode_request.c, test_decode_opts.c), defined
 * in test_decode_util.c.
 *
 * Inputs are built with ei_x_encode_* (through ewp_t_build, see term.c) or
 * written byte by byte where ei cannot produce them. Every decoder runs on a
 * copy that ends right before an unreadable page (ewp_t_guard) with SIGSEGV
 * turned into a test failure, so a read past the end fails the test even
 * without valgrind. The helpers keep the short names the tests call them by.
 */
#ifndef EWP_TEST_DECODE_H
#define EWP_TEST_DECODE_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "decode.h"

/* term.c */
int ewp_t_build(ei_x_buff *x, const char *fmt, ...);
int ewp_t_vbuild(ei_x_buff *x, const char *fmt, va_list ap);
char *ewp_t_guard(const void *data, size_t len);
void ewp_t_guard_release(void);

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* An assertion whose failure record names the case instead of the source */
#define CHECK_CASE(cond, what) \
    CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, __LINE__, (what), __FILE__, "", CU_FALSE)

/* Every decode suite's init and clean: SIGSEGV and SIGBUS inside ewp_td_guarded()
 * become a failure of the running test */
int ewp_decode_suite_init(void);
int ewp_decode_suite_clean(void);

/* ---- faults ---- */

enum op { OP_CHECK, OP_CALL, OP_REQUEST };

struct call_out {
    erlang_pid from;
    int tag_index;
    int tag_len;
};

/* Runs one decoder; a SIGSEGV/SIGBUS inside sets *fault and returns -99. */
int ewp_td_guarded(enum op op, const char *buf, size_t len, int *index, void *out, int *fault);

/* ---- fixtures ---- */

static inline erlang_pid
mkpid(unsigned num)
{
    erlang_pid p;

    memset(&p, 0, sizeof(p));
    strcpy(p.node, "client@host");
    p.num = num;
    p.serial = 2;
    p.creation = 1701;
    return p;
}

static inline erlang_ref
mkref(unsigned n0)
{
    erlang_ref r;

    memset(&r, 0, sizeof(r));
    strcpy(r.node, "ewpcapd@host");
    r.len = 3;
    r.n[0] = n0;
    r.n[1] = 0x12345678;
    r.n[2] = 0x9abcdef0;
    r.creation = 1702;
    return r;
}

/* A freshly built term; the caller frees it with ei_x_free. */
int ewp_td_build(ei_x_buff *x, const char *fmt, ...);

/* ---- requests ---- */

extern char *ewp_td_last_buf; /* guarded copy of the last request decoded */

/*
 * Decode the request fmt from a guarded buffer, at its start or after `pad`
 * NIL terms, asserting that it is a checked term, that *index moves to its
 * end on success and stays put on failure, and that nothing faults.
 * Return the decoder's status.
 */
int ewp_td_request(struct ewp_request *req, const char *fmt, ...);
int ewp_td_request_at(int pad, struct ewp_request *req, const char *fmt, ...);

/* Assert that a status is the one expected, naming the case */
void ewp_td_expect_status(int got, int want, const char *what);

/* ---- raw terms ---- */

struct raw {
    const char *what;
    const unsigned char *bytes;
    size_t len;
};

#define RAW(what, ...)                                                           \
    {                                                                            \
        what, (const unsigned char[]){__VA_ARGS__},                              \
            sizeof((const unsigned char[]){__VA_ARGS__})                         \
    }

/* Terms ei does not produce (any more) but a peer may send, all valid.
 * N_VALID_RAW counts them: one too many is a compile error, one too few
 * leaves an entry of zeros that "ewp_decode_check accepts every term type"
 * fails on. */
#define N_VALID_RAW 24
extern const struct raw ewp_td_valid_raw[N_VALID_RAW];

#endif
