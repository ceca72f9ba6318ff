/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/decode.c: ewp_decode_check, ewp_decode_call,
 * ewp_decode_request, ewp_decode_opts_default, ewp_filter_within_limit.
 *
 * Inputs are built with ei_x_encode_* (through ewp_t_build, see term.c) or
 * written byte by byte where ei cannot produce them. Every decoder runs on a
 * copy that ends right before an unreadable page (ewp_t_guard) with SIGSEGV
 * turned into a test failure, so a read past the end fails the test even
 * without valgrind.
 */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "decode.h"

/* term.c */
int ewp_t_build(ei_x_buff *x, const char *fmt, ...);
int ewp_t_vbuild(ei_x_buff *x, const char *fmt, va_list ap);
char *ewp_t_guard(const void *data, size_t len);
void ewp_t_guard_release(void);

int ewp_decode_suite_init(void);
int ewp_decode_suite_clean(void);

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* An assertion whose failure record names the case instead of the source */
#define CHECK_CASE(cond, what) \
    CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, __LINE__, (what), __FILE__, "", CU_FALSE)

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

enum op { OP_CHECK, OP_CALL, OP_REQUEST };

struct call_out {
    erlang_pid from;
    int tag_index;
    int tag_len;
};

/* Runs one decoder; a SIGSEGV/SIGBUS inside sets *fault and returns -99. */
static int
guarded(enum op op, const char *buf, size_t len, int *index, void *out, int *fault)
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

static erlang_pid
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

static erlang_ref
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
static int
build(ei_x_buff *x, const char *fmt, ...)
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

static char *last_buf; /* guarded copy of the last request decoded */

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
    last_buf = buf;
    end = pad;
    rv = guarded(OP_CHECK, buf, (size_t)len, &end, NULL, &fault);
    CHECK_CASE(!fault && rv == 0 && end == len, what);

    i = pad;
    rv = guarded(OP_REQUEST, buf, (size_t)len, &i, req, &fault);
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

static int
request(struct ewp_request *req, const char *fmt, ...)
{
    va_list ap;
    int rv;

    va_start(ap, fmt);
    rv = vrequest_at(0, req, fmt, ap);
    va_end(ap);
    return rv;
}

static int
request_at(int pad, struct ewp_request *req, const char *fmt, ...)
{
    va_list ap;
    int rv;

    va_start(ap, fmt);
    rv = vrequest_at(pad, req, fmt, ap);
    va_end(ap);
    return rv;
}

/* {open, <<"eth0">>, Opts} with Opts given as text */
static int
open_with(struct ewp_request *req, const char *opts)
{
    char fmt[512];

    (void)snprintf(fmt, sizeof(fmt), "{open, <<\"eth0\">>, %s}", opts);
    return request(req, fmt);
}

/* {filter, Ref, <<"tcp">>, Opts} with Opts given as text */
static int
filter_with(struct ewp_request *req, const char *opts)
{
    char fmt[512];
    erlang_ref ref = mkref(1);

    (void)snprintf(fmt, sizeof(fmt), "{filter, ~r, <<\"tcp\">>, %s}", opts);
    return request(req, fmt, &ref);
}

static void
expect_status(int got, int want, const char *what)
{
    char msg[600];

    (void)snprintf(msg, sizeof(msg), "%s: status %d, expected %d", what, got, want);
    CHECK_CASE(got == want, msg);
}

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

/* Terms ei does not produce (any more) but a peer may send, all valid */
static const struct raw valid_raw[] = {
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

/* Terms whose length fields claim more than the buffer holds, or which are
 * otherwise malformed: all refused. */
static const struct raw bad_raw[] = {
    /* ei parses FLOAT_EXT text with sscanf, which reads on to a NUL */
    RAW("an old FLOAT_EXT", 'c', '1', '.', '5', '0', '0', '0', '0', '0', '0', '0', '0', '0',
        '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', 'e', '+', '0', '0', 0, 0, 0, 0, 0),
    RAW("a binary claiming 4 GiB", 'm', 0xff, 0xff, 0xff, 0xff, 1, 2, 3),
    RAW("a binary claiming 2 GiB", 'm', 0x7f, 0xff, 0xff, 0xff, 1, 2, 3),
    RAW("a binary claiming one byte too many", 'm', 0, 0, 0, 4, 1, 2, 3),
    RAW("a string claiming 65535 bytes", 'k', 0xff, 0xff, 'a'),
    RAW("a string claiming one byte too many", 'k', 0, 2, 'a'),
    RAW("a list claiming 4G elements", 'l', 0xff, 0xff, 0xff, 0xff, 'j'),
    RAW("a list claiming 2G elements", 'l', 0x7f, 0xff, 0xff, 0xff, 'j', 'j', 'j'),
    RAW("a list without its tail", 'l', 0, 0, 0, 1, 'a', 1),
    RAW("a list one element short", 'l', 0, 0, 0, 2, 'a', 1, 'j'),
    RAW("a large tuple claiming 4G elements", 'i', 0xff, 0xff, 0xff, 0xff, 'j'),
    RAW("a small tuple claiming 255 elements", 'h', 0xff, 'j', 'j'),
    RAW("a small tuple one element short", 'h', 2, 'j'),
    RAW("a map claiming 2G pairs", 't', 0x7f, 0xff, 0xff, 0xff, 'j', 'j'),
    RAW("a map claiming 4G pairs", 't', 0xff, 0xff, 0xff, 0xff, 'j', 'j'),
    RAW("a map with a key and no value", 't', 0, 0, 0, 1, 'j'),
    RAW("an atom claiming 65535 bytes", 'd', 0xff, 0xff, 'a'),
    RAW("a UTF-8 atom claiming 65535 bytes", 'v', 0xff, 0xff, 'a'),
    RAW("a small atom claiming 255 bytes", 's', 0xff, 'a', 'b'),
    RAW("a small big claiming 255 digits", 'n', 0xff, 0, 1, 2),
    RAW("a large big claiming 4G digits", 'o', 0xff, 0xff, 0xff, 0xff, 0, 1, 2),
    RAW("a bitstring claiming 4 GiB", 'M', 0xff, 0xff, 0xff, 0xff, 3, 1),
    RAW("a bitstring of 0 bits in its last byte", 'M', 0, 0, 0, 1, 0, 0xff),
    RAW("a bitstring of 9 bits in its last byte", 'M', 0, 0, 0, 1, 9, 0xff),
    RAW("an empty bitstring", 'M', 0, 0, 0, 0, 3),
    RAW("a ref of 0 words", 'Z', 0, 0, 's', 1, 'a', 0, 0, 0, 1),
    RAW("a ref of 6 words", 'Z', 0, 6, 's', 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
        3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6),
    RAW("a ref claiming 65535 words", 'r', 0xff, 0xff, 's', 1, 'a', 1, 0, 0, 0, 1),
    RAW("a pid cut in its serial", 'X', 's', 1, 'a', 0, 0, 0, 1, 0, 0),
    RAW("a pid whose node is not an atom", 'X', 'a', 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1),
    RAW("a pid whose node atom claims 65535 bytes", 'X', 'd', 0xff, 0xff, 'a'),
    RAW("a port cut in its id", 'x', 's', 1, 'a', 0, 0, 0, 0),
    RAW("an old ref cut in its creation", 'e', 's', 1, 'a', 0, 0, 0, 1),
    RAW("a float cut in its mantissa", 'F', 0x40, 0x09, 0x21),
    RAW("an old float cut in its text", 'c', '1', '.', '5'),
    RAW("an integer cut in its value", 'b', 0, 0, 0),
    RAW("a small integer with no value", 'a'),
    RAW("an EXPORT_EXT fun", 'q', 's', 5, 'l', 'i', 's', 't', 's', 's', 3, 'm', 'a', 'p', 'a',
        2),
    RAW("a NEW_FUN_EXT fun", 'p', 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 's', 1, 'm', 'a', 0, 'a', 0, 'X', 's', 1, 'a', 0, 0, 0, 1, 0, 0,
        0, 0, 0, 0, 0, 1),
    RAW("an old FUN_EXT fun", 'u', 0, 0, 0, 0, 'X', 's', 1, 'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        0, 1, 's', 1, 'm', 'a', 0, 'a', 0),
    RAW("a tuple holding a fun", 'h', 1, 'q', 's', 1, 'm', 's', 1, 'f', 'a', 0),
    RAW("a list holding a fun", 'l', 0, 0, 0, 1, 'q', 's', 1, 'm', 's', 1, 'f', 'a', 0, 'j'),
    RAW("a map holding a fun", 't', 0, 0, 0, 1, 'a', 1, 'q', 's', 1, 'm', 's', 1, 'f', 'a', 0),
    RAW("an atom cache reference", 'R', 0),
    RAW("a version byte", 131, 'j'),
    RAW("a pass-through byte", 'p'),
    RAW("a zero byte", 0),
    RAW("a 0xff byte", 0xff),
    RAW("an empty buffer", 0), /* used with length 0, see below */
};

/* ---- ewp_decode_check ---- */

static void
check_accepts(const char *what, const char *bytes, size_t len)
{
    char msg[300];
    char *buf;
    int end = 0, rv, fault;

    buf = ewp_t_guard(bytes, len);
    CU_ASSERT_FATAL(buf != NULL);
    rv = guarded(OP_CHECK, buf, len, &end, NULL, &fault);
    (void)snprintf(msg, sizeof(msg), "ewp_decode_check accepts %s and moves past it", what);
    CHECK_CASE(!fault && rv == 0 && (size_t)end == len, msg);
}

static void
check_refuses(const char *what, const char *bytes, size_t len, int start)
{
    char msg[300];
    char *buf;
    int i = start, rv, fault;

    buf = ewp_t_guard(bytes, len);
    CU_ASSERT_FATAL(buf != NULL);
    rv = guarded(OP_CHECK, buf, len, &i, NULL, &fault);
    (void)snprintf(msg, sizeof(msg), "ewp_decode_check refuses %s, index unchanged", what);
    CHECK_CASE(!fault && rv == -1 && i == start, msg);
}

static void
test_check_accepts_every_term_type(void)
{
    static const char *const built[] = {
        "0", "255", "256", "-1", "2147483647", "-2147483648", "4294967295",
        "9223372036854775807", "-9223372036854775807", "18446744073709551615", "ok",
        "'$gen_call'", "''", "'with space'", "[]", "\"a string\"", "<<>>",
        "<<\"a binary\">>", "{}", "{a, {b, [c, d | e]}, 1}", "[1, 2, 3 | tail]",
        "[[], [[]], {[]}]", "{~p, ~r}", "~d",
    };
    erlang_pid pid = mkpid(7);
    erlang_ref ref = mkref(9);
    erlang_port port;
    ei_x_buff x;
    size_t n;
    int k;

    for (n = 0; n < N_ELEMS(built); n++) {
        if (strcmp(built[n], "~d") == 0) {
            if (build(&x, built[n], 3.14159) == 0)
                check_accepts("a float", x.buff, (size_t)x.index);
        } else if (build(&x, built[n], &pid, &ref) == 0) {
            check_accepts(built[n], x.buff, (size_t)x.index);
        }
        ei_x_free(&x);
    }

    /* pid, port, ref, bitstring, map, big integer, large tuple and a long
     * proper list as ei encodes them */
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ei_x_encode_pid(&x, &pid) == 0);
    check_accepts("a pid", x.buff, (size_t)x.index);
    x.index = 0;
    memset(&port, 0, sizeof(port));
    strcpy(port.node, "ewpcapd@host");
    port.id = 0x1234567890ULL;
    port.creation = 1702;
    CU_ASSERT(ei_x_encode_port(&x, &port) == 0);
    check_accepts("a port", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_ref(&x, &ref) == 0);
    check_accepts("a ref", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_bitstring(&x, "\xff\xe0", 0, 11) == 0);
    check_accepts("a bitstring", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_map_header(&x, 2) == 0);
    CU_ASSERT(ei_x_encode_atom(&x, "k") == 0);
    CU_ASSERT(ei_x_encode_binary(&x, "v", 1) == 0);
    CU_ASSERT(ei_x_encode_long(&x, 1) == 0);
    CU_ASSERT(ei_x_encode_map_header(&x, 0) == 0);
    check_accepts("a map", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_ulonglong(&x, 18446744073709551615ULL) == 0);
    check_accepts("a big integer", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_tuple_header(&x, 300) == 0);
    for (k = 0; k < 300; k++)
        CU_ASSERT(ei_x_encode_long(&x, k) == 0);
    check_accepts("a large tuple", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_list_header(&x, 10000) == 0);
    for (k = 0; k < 10000; k++)
        CU_ASSERT(ei_x_encode_atom(&x, "a") == 0);
    CU_ASSERT(ei_x_encode_empty_list(&x) == 0);
    check_accepts("a list of 10000 atoms", x.buff, (size_t)x.index);
    x.index = 0;
    CU_ASSERT(ei_x_encode_atom_len(&x, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaa",
                                  255) == 0);
    check_accepts("a 255-character atom", x.buff, (size_t)x.index);
    ei_x_free(&x);

    for (n = 0; n < N_ELEMS(valid_raw); n++)
        check_accepts(valid_raw[n].what, (const char *)valid_raw[n].bytes, valid_raw[n].len);
}

static void
test_check_stops_after_one_term_and_honours_the_start_index(void)
{
    ei_x_buff x;
    char *buf;
    int i, rv, fault;

    /* [] {ok, 1} <<"x">>: three terms in a row */
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ei_x_encode_empty_list(&x) == 0);
    CU_ASSERT(ewp_t_build(&x, "{ok, 1}") == 0);
    CU_ASSERT(ewp_t_build(&x, "<<\"x\">>") == 0);
    buf = ewp_t_guard(x.buff, (size_t)x.index);
    CU_ASSERT_FATAL(buf != NULL);

    i = 0;
    rv = guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == 0 && i == 1);
    rv = guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == 0 && i == 1 + 8); /* {ok, 1}: 2 + 4 + 2 */
    rv = guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == 0 && i == x.index);
    /* at the end, past the end, negative */
    rv = guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == -1 && i == x.index);
    i = x.index + 1;
    rv = guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == -1 && i == x.index + 1);
    i = -1;
    rv = guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == -1 && i == -1);
    i = INT_MIN;
    rv = guarded(OP_CHECK, buf, (size_t)x.index, &i, NULL, &fault);
    CU_ASSERT(!fault && rv == -1 && i == INT_MIN);
    ei_x_free(&x);
}

static void
test_check_refuses_every_prefix_of_valid_requests(void)
{
    erlang_pid pid = mkpid(1), owner = mkpid(2);
    erlang_ref ref = mkref(3);
    unsigned char packet[1000];
    const char *fmts[] = {
        ("{'$gen_call', {~p, ~r}, {open, <<\"eth0\">>, [{snaplen, 96}, {promisc, true}, "
         "{timeout, 100}, {filter, \"tcp port 80\"}, {netmask, {255, 255, 255, 0}}, "
         "{limit, -1}, {time_unit, microsecond}, {buffer, 1048576}], ~p}}"),
        ("{'$gen_call', {~p, [alias | ~r]}, {filter, ~r, <<\"udp\">>, [{optimize, false}, "
         "{netmask, 4294967295}]}}"),
        "{'$gen_call', {~p, ~r}, {write, ~r, ~B}}",
        "{'$gen_call', {~p, ~r}, {stats, ~r}}",
        "{'$gen_call', {~p, ~r}, info}",
        "{close, ~r}",
    };
    char what[200];
    size_t n;
    int len, l;

    for (n = 0; n < sizeof(packet); n++)
        packet[n] = (unsigned char)(n * 7 + 1);
    for (n = 0; n < N_ELEMS(fmts); n++) {
        ei_x_buff x;
        char *copy;
        int ok = 1;

        switch (n) {
        case 0:
            l = build(&x, fmts[n], &pid, &ref, &owner);
            break;
        case 1:
        case 3:
            l = build(&x, fmts[n], &pid, &ref, &ref);
            break;
        case 2:
            l = build(&x, fmts[n], &pid, &ref, &ref, packet, (int)sizeof(packet));
            break;
        case 4:
            l = build(&x, fmts[n], &pid, &ref);
            break;
        default:
            l = build(&x, fmts[n], &ref);
            break;
        }
        if (l < 0) {
            ei_x_free(&x);
            continue;
        }
        len = x.index;
        copy = malloc((size_t)len);
        CU_ASSERT_FATAL(copy != NULL);
        memcpy(copy, x.buff, (size_t)len);
        ei_x_free(&x);

        check_accepts(fmts[n], copy, (size_t)len);
        for (l = 0; l < len; l++) {
            char *buf = ewp_t_guard(copy, (size_t)l);
            int i = 0, rv, fault;

            rv = guarded(OP_CHECK, buf, (size_t)l, &i, NULL, &fault);
            if (fault || rv != -1 || i != 0) {
                ok = 0;
                (void)snprintf(what, sizeof(what), "request %zu cut to %d of %d bytes is refused",
                               n, l, len);
                CHECK_CASE(0, what);
                break;
            }
        }
        (void)snprintf(what, sizeof(what), "every proper prefix of request %zu (%d bytes) is refused",
                       n, len);
        CHECK_CASE(ok, what);
        free(copy);
    }
}

static void
test_check_refuses_length_fields_larger_than_the_buffer(void)
{
    size_t n;
    ei_x_buff x;
    erlang_ref ref = mkref(1);
    char *big;

    for (n = 0; n < N_ELEMS(bad_raw); n++) {
        size_t len = bad_raw[n].len;

        if (strcmp(bad_raw[n].what, "an empty buffer") == 0)
            len = 0;
        check_refuses(bad_raw[n].what, (const char *)bad_raw[n].bytes, len, 0);
    }

    /* an atom of 1021 bytes: more than 255 UTF-8 characters can take */
    big = malloc(3 + 1021);
    CU_ASSERT_FATAL(big != NULL);
    big[0] = 'v';
    big[1] = (char)(1021 >> 8);
    big[2] = (char)(1021 & 0xff);
    memset(big + 3, 'a', 1021);
    check_refuses("an atom of 1021 bytes", big, 3 + 1021, 0);
    big[2] = (char)(1020 & 0xff);
    check_accepts("an atom of 1020 bytes", big, 3 + 1020);
    free(big);

    /* a huge binary inside a request */
    if (build(&x, "{write, ~r, <<\"abc\">>}", &ref) == 0) {
        char *p = memchr(x.buff, 'm', (size_t)x.index);

        CU_ASSERT_FATAL(p != NULL);
        while (p != NULL && (p[1] != 0 || p[4] != 3))
            p = memchr(p + 1, 'm', (size_t)(x.index - (p + 1 - x.buff)));
        CU_ASSERT_FATAL(p != NULL);
        p[1] = (char)0xff;
        check_refuses("{write, Ref, <<Len = 0xff000003>>}", x.buff, (size_t)x.index, 0);
        p[1] = 0;
        p[4] = 4;
        check_refuses("{write, Ref, <<Len = 4, 3 bytes>>}", x.buff, (size_t)x.index, 0);
    }
    ei_x_free(&x);
}

/* depth nested 1-tuples around 'ok', or lists, or improper list tails */
static char *
nested(const char *kind, int depth, size_t *len)
{
    size_t cap = (size_t)depth * 8 + 16, n = 0;
    char *b = malloc(cap);
    int d;

    if (b == NULL)
        return NULL;
    for (d = 0; d < depth; d++) {
        if (strcmp(kind, "tuple") == 0) {
            b[n++] = 'h';
            b[n++] = 1;
        } else if (strcmp(kind, "map") == 0) {
            memcpy(b + n, "t\0\0\0\1j", 6);
            n += 6;
        } else if (strcmp(kind, "list") == 0) {
            memcpy(b + n, "l\0\0\0\1", 5);
            n += 5;
        } else { /* tail: [1 | [1 | ...]] */
            memcpy(b + n, "l\0\0\0\1a\1", 7);
            n += 7;
        }
    }
    if (strcmp(kind, "tail") == 0) {
        b[n++] = 'j';
    } else {
        memcpy(b + n, "s\2ok", 4);
        n += 4;
    }
    if (strcmp(kind, "list") == 0)
        for (d = 0; d < depth; d++)
            b[n++] = 'j';
    *len = n;
    return b;
}

static void
test_check_refuses_nesting_deeper_than_the_limit(void)
{
    static const char *const kinds[] = {"tuple", "list", "map", "tail"};
    char what[100];
    size_t k, len;
    char *b;

    for (k = 0; k < N_ELEMS(kinds); k++) {
        b = nested(kinds[k], EWP_TERM_DEPTH_MAX, &len);
        CU_ASSERT_FATAL(b != NULL);
        (void)snprintf(what, sizeof(what), "%s nested %d deep", kinds[k], EWP_TERM_DEPTH_MAX);
        check_accepts(what, b, len);
        free(b);

        b = nested(kinds[k], EWP_TERM_DEPTH_MAX + 1, &len);
        CU_ASSERT_FATAL(b != NULL);
        (void)snprintf(what, sizeof(what), "%s nested %d deep", kinds[k], EWP_TERM_DEPTH_MAX + 1);
        check_refuses(what, b, len, 0);
        free(b);

        b = nested(kinds[k], 10000, &len);
        CU_ASSERT_FATAL(b != NULL);
        (void)snprintf(what, sizeof(what), "%s nested 10000 deep", kinds[k]);
        check_refuses(what, b, len, 0);
        free(b);
    }

    /* a million levels: refused without exhausting the stack */
    {
        int i = 0;
        size_t n;

        b = malloc(2000000 + 4);
        CU_ASSERT_FATAL(b != NULL);
        for (n = 0; n < 2000000; n += 2) {
            b[n] = 'h';
            b[n + 1] = 1;
        }
        memcpy(b + n, "s\2ok", 4);
        CU_ASSERT(ewp_decode_check(b, n + 4, &i) == -1);
        CU_ASSERT(i == 0);
        free(b);
    }
}

static void
test_check_refuses_funs(void)
{
    erlang_pid pid = mkpid(1);
    erlang_fun fun;
    ei_x_buff x;
    size_t n;

    for (n = 0; n < N_ELEMS(bad_raw); n++)
        if (strstr(bad_raw[n].what, "fun") != NULL)
            check_refuses(bad_raw[n].what, (const char *)bad_raw[n].bytes, bad_raw[n].len, 0);

    /* as ei encodes them */
    memset(&fun, 0, sizeof(fun));
    fun.arity = 2;
    strcpy(fun.module, "lists");
    fun.type = EI_FUN_EXPORT;
    fun.u.exprt.func = (char *)"map";
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ei_x_encode_fun(&x, &fun) == 0);
    check_refuses("fun lists:map/2 from ei_x_encode_fun", x.buff, (size_t)x.index, 0);

    /* a fun as the tag of a call, and as an option value */
    x.index = 0;
    {
        ei_x_buff f;

        CU_ASSERT_FATAL(ei_x_new(&f) == 0);
        CU_ASSERT(ei_x_encode_fun(&f, &fun) == 0);
        CU_ASSERT(ewp_t_build(&x, "{'$gen_call', {~p, ~t}, info}", &pid, f.buff, f.index) == 0);
        check_refuses("a call whose tag is a fun", x.buff, (size_t)x.index, 0);
        x.index = 0;
        CU_ASSERT(ewp_t_build(&x, "{open, <<>>, [{filter, ~t}]}", f.buff, f.index) == 0);
        check_refuses("an open whose filter is a fun", x.buff, (size_t)x.index, 0);
        ei_x_free(&f);
    }
    ei_x_free(&x);
}

/* ---- fuzzing ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void
report_input(const char *why, const unsigned char *b, size_t len)
{
    size_t n;

    fprintf(stderr, "\n%s (%zu bytes):", why, len);
    for (n = 0; n < len && n < 256; n++)
        fprintf(stderr, " %02x", b[n]);
    fprintf(stderr, "\n");
}

/*
 * The decoders' contract on one input: check first; only what it accepts
 * reaches ewp_decode_call and ewp_decode_request, which must stay inside
 * the checked term, leave *index alone on failure and not fault.
 * Returns 0 when everything held.
 */
static int
fuzz_one(const unsigned char *in, size_t len)
{
    struct call_out co;
    struct ewp_request req;
    char *buf = ewp_t_guard(in, len);
    int end = 0, i, j, rv, fault;

    if (buf == NULL)
        return -1;
    rv = guarded(OP_CHECK, buf, len, &end, NULL, &fault);
    if (fault)
        return report_input("ewp_decode_check faulted", in, len), -1;
    if (rv < 0)
        return end == 0 ? 0 : (report_input("ewp_decode_check moved *index", in, len), -1);
    if (rv != 0 || end <= 0 || (size_t)end > len)
        return report_input("ewp_decode_check returned a bad end", in, len), -1;

    i = 0;
    rv = guarded(OP_REQUEST, buf, len, &i, &req, &fault);
    if (fault)
        return report_input("ewp_decode_request faulted", in, len), -1;
    if (rv == EWP_DECODE_OK ? i != end : (rv != EWP_DECODE_BADARG && rv != EWP_DECODE_UNKNOWN) || i != 0)
        return report_input("ewp_decode_request broke its contract", in, len), -1;

    i = 0;
    co.tag_index = co.tag_len = -7;
    rv = guarded(OP_CALL, buf, len, &i, &co, &fault);
    if (fault)
        return report_input("ewp_decode_call faulted", in, len), -1;
    if (rv < 0)
        return i == 0 && co.tag_len == -7 ? 0
                                          : (report_input("ewp_decode_call moved *index", in, len), -1);
    /* the tag is one whole checked term and the request follows it */
    j = co.tag_index;
    if (co.tag_index <= 0 || co.tag_index + co.tag_len != i || i >= end ||
        ewp_decode_check(buf, len, &j) < 0 || j != i)
        return report_input("ewp_decode_call's tag is not one whole term", in, len), -1;
    j = i;
    if (ewp_decode_check(buf, len, &j) < 0 || j != end)
        return report_input("ewp_decode_call left *index off the request", in, len), -1;
    rv = guarded(OP_REQUEST, buf, len, &i, &req, &fault);
    if (fault)
        return report_input("ewp_decode_request faulted after a call", in, len), -1;
    return 0;
}

static void
test_decoders_survive_random_bytes(void)
{
    static const unsigned char tags[] = {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j',
                                         'k', 'l', 'm', 'n', 'o', 'r', 's', 't', 'v', 'w',
                                         'x', 'F', 'M', 'X', 'Y', 'Z', 'p', 'q', 'u'};
    unsigned char in[96];
    int iter, bad = 0;
    size_t len, n;

    rng = 0x2545f4914f6cdd1dULL;
    for (iter = 0; iter < 40000 && !bad; iter++) {
        len = rnd() % sizeof(in);
        for (n = 0; n < len; n++) {
            uint32_t r = rnd();

            /* mostly tags and small numbers, so that terms nest */
            if (r % 3 == 0)
                in[n] = tags[(r >> 8) % sizeof(tags)];
            else if (r % 3 == 1)
                in[n] = (unsigned char)((r >> 8) % 4);
            else
                in[n] = (unsigned char)(r >> 8);
        }
        if (fuzz_one(in, len) < 0)
            bad = 1;
    }
    CU_ASSERT(bad == 0);
}

static void
test_decoders_survive_mutated_requests(void)
{
    erlang_pid pid = mkpid(1);
    erlang_ref ref = mkref(2);
    const char *fmts[] = {
        ("{'$gen_call', {~p, ~r}, {open, <<\"eth0\">>, [{snaplen, 96}, {timeout, 100}, "
         "{filter, \"tcp\"}, {netmask, {255, 255, 255, 0}}, {time_unit, microsecond}], ~p}}"),
        "{'$gen_call', {~p, [alias | ~r]}, {filter, ~r, <<\"udp\">>, [{limit, -1}]}}",
        "{'$gen_call', {~p, ~r}, {write, ~r, <<\"0123456789\">>}}",
        "{'$gen_call', {~p, ~r}, {stats, ~r}}",
        "{'$gen_call', {~p, ~r}, getifaddrs}",
    };
    unsigned char in[512];
    int iter, bad = 0;
    size_t n;

    rng = 0x0123456789abcdefULL;
    for (n = 0; n < N_ELEMS(fmts) && !bad; n++) {
        ei_x_buff x;
        size_t len;

        if (build(&x, fmts[n], &pid, &ref, n == 0 ? (void *)&pid : (void *)&ref, &pid) < 0 ||
            (size_t)x.index > sizeof(in)) {
            ei_x_free(&x);
            continue;
        }
        len = (size_t)x.index;
        CU_ASSERT(fuzz_one((unsigned char *)x.buff, len) == 0);
        for (iter = 0; iter < 8000 && !bad; iter++) {
            int k, flips = 1 + (int)(rnd() % 3);
            size_t l = len;

            memcpy(in, x.buff, len);
            for (k = 0; k < flips; k++) {
                uint32_t r = rnd();
                size_t at = (r >> 8) % len;

                switch (r % 4) {
                case 0:
                    in[at] = (unsigned char)(r >> 20);
                    break;
                case 1:
                    in[at] ^= (unsigned char)(1u << ((r >> 20) % 8));
                    break;
                case 2:
                    in[at] = (unsigned char)((r >> 20) % 4);
                    break;
                default:
                    l = at + 1; /* cut */
                    break;
                }
            }
            if (fuzz_one(in, l) < 0)
                bad = 1;
        }
        ei_x_free(&x);
    }
    CU_ASSERT(bad == 0);
}

/* ---- ewp_decode_call ---- */

static void
test_call_with_a_ref_tag_gives_from_tag_and_request(void)
{
    erlang_pid pid = mkpid(42), from;
    erlang_ref ref = mkref(5);
    struct ewp_request req;
    ei_x_buff x, tag;
    char *buf;
    int i = 0, tag_index = -1, tag_len = -1;

    CU_ASSERT_FATAL(ei_x_new(&tag) == 0);
    CU_ASSERT(ei_x_encode_ref(&tag, &ref) == 0);
    if (build(&x, "{'$gen_call', {~p, ~r}, info}", &pid, &ref) == 0) {
        buf = ewp_t_guard(x.buff, (size_t)x.index);
        CU_ASSERT_FATAL(buf != NULL);
        CU_ASSERT(ewp_decode_call(buf, &i, &from, &tag_index, &tag_len) == 0);
        CU_ASSERT(ei_cmp_pids(&from, &pid) == 0);
        CU_ASSERT(tag_len == tag.index);
        CU_ASSERT(tag_index > 0 && tag_index + tag_len == i);
        CU_ASSERT(tag_len == tag.index && memcmp(buf + tag_index, tag.buff, (size_t)tag.index) == 0);
        CU_ASSERT(ewp_decode_request(buf, &i, &req) == EWP_DECODE_OK);
        CU_ASSERT(req.type == EWP_REQ_INFO);
        CU_ASSERT(i == x.index);
    }
    ei_x_free(&x);
    ei_x_free(&tag);
}

static void
test_call_with_an_alias_tag_keeps_the_whole_improper_list(void)
{
    erlang_pid pid = mkpid(42), from;
    erlang_ref ref = mkref(5), got;
    struct ewp_request req;
    ei_x_buff x, tag;
    char *buf;
    char atom[MAXATOMLEN];
    int i = 0, t, tag_index = -1, tag_len = -1, arity;

    CU_ASSERT_FATAL(ei_x_new(&tag) == 0);
    CU_ASSERT(ewp_t_build(&tag, "[alias | ~r]", &ref) == 0);
    if (build(&x, "{'$gen_call', {~p, [alias | ~r]}, {stats, ~r}}", &pid, &ref, &ref) == 0) {
        buf = ewp_t_guard(x.buff, (size_t)x.index);
        CU_ASSERT_FATAL(buf != NULL);
        CU_ASSERT(ewp_decode_call(buf, &i, &from, &tag_index, &tag_len) == 0);
        CU_ASSERT(ei_cmp_pids(&from, &pid) == 0);
        CU_ASSERT(tag_len == tag.index && memcmp(buf + tag_index, tag.buff, (size_t)tag.index) == 0);
        CU_ASSERT(tag_index + tag_len == i);
        /* the tag decodes back to [alias | Ref] */
        t = tag_index;
        CU_ASSERT(ei_decode_list_header(buf, &t, &arity) == 0 && arity == 1);
        CU_ASSERT(ei_decode_atom(buf, &t, atom) == 0 && strcmp(atom, "alias") == 0);
        CU_ASSERT(ei_decode_ref(buf, &t, &got) == 0 && ei_cmp_refs(&got, &ref) == 0);
        CU_ASSERT(t == i);
        CU_ASSERT(ewp_decode_request(buf, &i, &req) == EWP_DECODE_OK);
        CU_ASSERT(req.type == EWP_REQ_STATS && ei_cmp_refs(&req.ref, &ref) == 0);
    }
    ei_x_free(&x);
    ei_x_free(&tag);
}

static void
test_call_accepts_null_outputs_and_any_tag_term(void)
{
    erlang_pid pid = mkpid(1);
    static const char *const tags[] = {"1", "foo", "\"tag\"", "<<\"tag\">>", "{a, [b, {c}]}",
                                       "[]"};
    char fmt[128];
    size_t n;

    for (n = 0; n < N_ELEMS(tags); n++) {
        ei_x_buff x;

        (void)snprintf(fmt, sizeof(fmt), "{'$gen_call', {~p, %s}, dev}", tags[n]);
        if (build(&x, fmt, &pid) == 0) {
            char *buf = ewp_t_guard(x.buff, (size_t)x.index);
            int i = 0;

            CU_ASSERT_FATAL(buf != NULL);
            CHECK_CASE(ewp_decode_call(buf, &i, NULL, NULL, NULL) == 0 && i == x.index - 5, fmt);
        }
        ei_x_free(&x);
    }
}

static void
test_call_refuses_other_shapes_and_touches_nothing(void)
{
    erlang_pid pid = mkpid(1);
    erlang_ref ref = mkref(2);
    static const char *const bad[] = {
        "{'$gen_cast', {~p, ~r}, info}",
        "{gen_call, {~p, ~r}, info}",
        "{\"$gen_call\", {~p, ~r}, info}",
        "{'$gen_call', {~p, ~r}}",
        "{'$gen_call', {~p, ~r}, info, extra}",
        "{'$gen_call'}",
        "{'$gen_call', {~p}, info}",
        "{'$gen_call', {~p, ~r, x}, info}",
        "{'$gen_call', [~p, ~r], info}",
        "{'$gen_call', {self, ~r}, info}",
        "{'$gen_call', {~r, ~r}, info}",
        "{'$gen_call', {<<\"pid\">>, ~r}, info}",
        "{'$gen_call', ~p, info}",
        "['$gen_call', {~p, ~r}, info]",
        "'$gen_call'",
        "{}",
        "42",
    };
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++) {
        ei_x_buff x;
        int rv;

        /* ~r first where the pid is replaced by a ref */
        if (strstr(bad[n], "{~r, ~r}") != NULL)
            rv = build(&x, bad[n], &ref, &ref);
        else if (strstr(bad[n], "~p") != NULL)
            rv = build(&x, bad[n], &pid, &ref);
        else
            rv = build(&x, bad[n], &ref);
        if (rv == 0) {
            char *buf = ewp_t_guard(x.buff, (size_t)x.index);
            erlang_pid from = mkpid(99), orig = mkpid(99);
            int i = 0, tag_index = -5, tag_len = -6;

            CU_ASSERT_FATAL(buf != NULL);
            CHECK_CASE(ewp_decode_call(buf, &i, &from, &tag_index, &tag_len) == -1, bad[n]);
            CHECK_CASE(i == 0 && tag_index == -5 && tag_len == -6 &&
                           ei_cmp_pids(&from, &orig) == 0,
                       bad[n]);
        }
        ei_x_free(&x);
    }
}

/*
 * Regression (5125bee): ei_skip_term decodes an old FLOAT_EXT with
 * sscanf("%lf") on its 31 text bytes, which reads on until a NUL; a tag of
 * 31 digits made ewp_decode_call read past the checked frame. Passes if the
 * check refuses such a float or nothing is read past the end.
 */
static void
test_call_reads_nothing_past_a_checked_float_tag(void)
{
    erlang_pid pid = mkpid(1);
    unsigned char fl[32];
    ei_x_buff x;
    int fault = 0;

    fl[0] = ERL_FLOAT_EXT;
    memset(fl + 1, '1', 31);
    if (build(&x, "{'$gen_call', {~p, ~t}, info}", &pid, fl, (int)sizeof(fl)) == 0) {
        char *buf = ewp_t_guard(x.buff, (size_t)x.index);
        struct call_out co;
        int end = 0, i = 0;

        CU_ASSERT_FATAL(buf != NULL);
        if (ewp_decode_check(buf, (size_t)x.index, &end) == 0) {
            (void)guarded(OP_CALL, buf, (size_t)x.index, &i, &co, &fault);
            CU_ASSERT(fault == 0);
        }
    }
    ei_x_free(&x);
}

/* 'X' pid, 'Y' port or 'Z' ref whose node is an ATOM_EXT of 600 bytes 0xff:
 * valid for ewp_decode_check (at most 255 * 4 bytes), but ei cannot turn
 * the node into UTF-8 in MAXATOMLEN_UTF8 bytes and fails on it. */
static size_t
long_latin1_node(unsigned char *b, char kind)
{
    size_t n = 0;

    b[n++] = (unsigned char)kind;
    if (kind == 'Z') {
        b[n++] = 0;
        b[n++] = 1;
    }
    b[n++] = ERL_ATOM_EXT;
    b[n++] = 600 >> 8;
    b[n++] = 600 & 0xff;
    memset(b + n, 0xff, 600);
    n += 600;
    memset(b + n, 0, 12);
    n += kind == 'X' ? 12 : 8;
    return n;
}

/*
 * ewp_decode_call measures the tag with ei_skip_term, which ignores the
 * failure of a tuple or list element and returns 0 after the header only.
 * Any term that ewp_decode_check accepts but ei cannot skip thus gives a
 * short tag_len and leaves *index inside the tag: the reply would echo a
 * truncated tag (a malformed message) and the request decoded from the
 * wrong place. Each case passes if the check or the call refuses the frame,
 * or if the tag is whole.
 */
static void
test_call_tag_is_always_one_whole_term(void)
{
    erlang_pid pid = mkpid(1);
    unsigned char tag[1200], elem[700];
    char what[200];
    size_t n, k, elen;
    const char kinds[] = {'X', 'Y', 'Z'};

    for (n = 0; n < N_ELEMS(valid_raw) + 2 * N_ELEMS(kinds) + 2; n++) {
        const char *name;
        size_t tlen = 0;
        ei_x_buff x;

        if (n < N_ELEMS(valid_raw)) {
            name = valid_raw[n].what;
            memcpy(elem, valid_raw[n].bytes, valid_raw[n].len);
            elen = valid_raw[n].len;
        } else if (n < N_ELEMS(valid_raw) + 2 * N_ELEMS(kinds)) {
            k = (n - N_ELEMS(valid_raw)) / 2;
            name = kinds[k] == 'X' ? "a pid with a 600-byte latin-1 node"
                   : kinds[k] == 'Y' ? "a port with a 600-byte latin-1 node"
                                     : "a ref with a 600-byte latin-1 node";
            elen = long_latin1_node(elem, kinds[k]);
        } else {
            /* FLOAT_EXT whose text is no number (ewp_decode_check refuses it now) */
            name = "an old FLOAT_EXT of text \"garbage\"";
            elem[0] = 'c';
            memset(elem + 1, 0, 31);
            memcpy(elem + 1, "garbage", 7);
            elen = 32;
        }
        /* {T} for even n, [T] for odd n */
        if (n % 2 == 0) {
            tag[tlen++] = ERL_SMALL_TUPLE_EXT;
            tag[tlen++] = 1;
        } else {
            memcpy(tag, "l\0\0\0\1", 5);
            tlen = 5;
        }
        memcpy(tag + tlen, elem, elen);
        tlen += elen;
        if (n % 2 == 1)
            tag[tlen++] = ERL_NIL_EXT;

        (void)snprintf(what, sizeof(what), "the tag %s%s%s of a call is one whole term",
                       n % 2 ? "[" : "{", name, n % 2 ? "]" : "}");
        if (build(&x, "{'$gen_call', {~p, ~t}, info}", &pid, tag, (int)tlen) == 0) {
            char *buf = ewp_t_guard(x.buff, (size_t)x.index);
            int end = 0, i = 0, tag_index = -1, tag_len = -1;

            CU_ASSERT_FATAL(buf != NULL);
            if (ewp_decode_check(buf, (size_t)x.index, &end) == 0 &&
                ewp_decode_call(buf, &i, NULL, &tag_index, &tag_len) == 0)
                CHECK_CASE(tag_len == (int)tlen && i == x.index - 6, what); /* at 'info' */
        }
        ei_x_free(&x);
    }
}

/* ---- ewp_decode_request: shapes ---- */

static void
test_request_open3_gives_device_and_default_options(void)
{
    struct ewp_request req;
    struct ewp_opts def;

    ewp_decode_opts_default(&def);
    CU_ASSERT(request(&req, "{open, <<\"eth0\">>, []}") == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN);
    CU_ASSERT(req.dev_len == 4 && memcmp(req.dev, "eth0", 4) == 0);
    CU_ASSERT(req.dev == last_buf + 1 + 1 + 6 + 5); /* points into the buffer */
    CU_ASSERT(req.has_owner == 0);
    CU_ASSERT(req.monitor_owner == 0);
    CU_ASSERT(memcmp(&req.opts, &def, sizeof(def)) == 0);

    CU_ASSERT(request(&req, "{open, <<>>, []}") == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN && req.dev_len == 0);
    CU_ASSERT(request(&req, "{open, \"lo\", []}") == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 2 && memcmp(req.dev, "lo", 2) == 0);
    CU_ASSERT(request(&req, "{open, [], []}") == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 0);
    /* a request further into the buffer */
    CU_ASSERT(request_at(3, &req, "{open, <<\"eth1\">>, [{snaplen, 9}]}") == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 4 && memcmp(req.dev, "eth1", 4) == 0 && req.opts.snaplen == 9);
}

static void
test_request_open4_gives_the_owner(void)
{
    struct ewp_request req;
    erlang_pid owner = mkpid(77);
    erlang_ref ref = mkref(1);

    CU_ASSERT(request(&req, "{open, <<\"eth0\">>, [{promisc, true}], ~p}", &owner) ==
              EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN && req.has_owner == 1);
    CU_ASSERT(ei_cmp_pids(&req.owner, &owner) == 0);
    CU_ASSERT(req.opts.promisc == 1);
    CU_ASSERT(request(&req, "{open, <<\"eth0\">>, [], self}") == EWP_DECODE_BADARG);
    CU_ASSERT(request(&req, "{open, <<\"eth0\">>, [], ~r}", &ref) == EWP_DECODE_BADARG);
    CU_ASSERT(request(&req, "{open, <<\"eth0\">>, [], {~p}}", &owner) == EWP_DECODE_BADARG);
}

static void
test_request_close_stats_write_and_filter_give_their_arguments(void)
{
    struct ewp_request req;
    erlang_ref ref = mkref(31);
    unsigned char pkt[300];
    size_t n;

    CU_ASSERT(request(&req, "{close, ~r}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_CLOSE && ei_cmp_refs(&req.ref, &ref) == 0);
    CU_ASSERT(request(&req, "{stats, ~r}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_STATS && ei_cmp_refs(&req.ref, &ref) == 0);

    for (n = 0; n < sizeof(pkt); n++)
        pkt[n] = (unsigned char)n;
    CU_ASSERT(request(&req, "{write, ~r, ~B}", &ref, pkt, (int)sizeof(pkt)) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_WRITE && ei_cmp_refs(&req.ref, &ref) == 0);
    CU_ASSERT(req.data_len == sizeof(pkt) && memcmp(req.data, pkt, sizeof(pkt)) == 0);
    CU_ASSERT(req.data > last_buf && req.data < last_buf + 400);
    CU_ASSERT(request(&req, "{write, ~r, <<>>}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_WRITE && req.data_len == 0);

    CU_ASSERT(request(&req, "{filter, ~r, <<\"tcp port 80\">>, []}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_FILTER && ei_cmp_refs(&req.ref, &ref) == 0);
    CU_ASSERT(req.data_len == 11 && memcmp(req.data, "tcp port 80", 11) == 0);
    CU_ASSERT(req.opts.optimize == 1 && req.opts.netmask == 0xffffffffU &&
              req.opts.limit == EWP_FILTER_LIMIT);
    CU_ASSERT(request(&req, "{filter, ~r, \"udp\", []}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_FILTER && req.data_len == 3 && memcmp(req.data, "udp", 3) == 0);
    CU_ASSERT(request(&req, "{filter, ~r, [], []}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_FILTER && req.data_len == 0);
    CU_ASSERT(request(&req, "{filter, ~r, <<>>, []}", &ref) == EWP_DECODE_OK);
    CU_ASSERT(req.data_len == 0);
}

static void
test_request_atoms_dev_getifaddrs_and_info(void)
{
    struct ewp_request req;

    CU_ASSERT(request(&req, "dev") == EWP_DECODE_OK && req.type == EWP_REQ_DEV);
    CU_ASSERT(request(&req, "getifaddrs") == EWP_DECODE_OK && req.type == EWP_REQ_GETIFADDRS);
    CU_ASSERT(request(&req, "info") == EWP_DECODE_OK && req.type == EWP_REQ_INFO);
}

static void
test_request_of_the_wrong_arity_is_badarg(void)
{
    static const char *const bad[] = {
        "{close}", "{close, ~r, x}", "{stats}", "{stats, ~r, x}", "{open, <<\"eth0\">>}",
        "{open}", "{open, <<\"eth0\">>, [], ~p, x}", "{filter, ~r, <<\"tcp\">>}",
        "{filter, ~r, <<\"tcp\">>, [], x}", "{write, ~r}", "{write, ~r, <<>>, x}", "{dev}",
        "{dev, x}", "{getifaddrs}", "{info}", "{info, verbose}", "open", "close", "filter",
        "write", "stats",
    };
    erlang_ref ref = mkref(1);
    erlang_pid pid = mkpid(1);
    struct ewp_request req;
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++) {
        int rv = strstr(bad[n], "~p") != NULL ? request(&req, bad[n], &pid)
                                              : request(&req, bad[n], &ref);

        expect_status(rv, EWP_DECODE_BADARG, bad[n]);
    }
}

static void
test_request_with_arguments_of_the_wrong_type_is_badarg(void)
{
    static const char *const bad[] = {
        "{close, 1}", "{close, ~p}", "{close, <<>>}", "{stats, ref}", "{stats, {~r}}",
        "{write, ~r, 1}", "{write, ~r, packet}", "{write, ~r, {<<>>}}", "{write, 1, <<>>}",
        "{write, ~r, [<<\"a\">>]}", "{filter, 1, <<\"tcp\">>, []}", "{filter, ~r, 1, []}",
        "{filter, ~r, tcp, []}", "{filter, ~r, [<<\"tcp\">>], []}", "{filter, ~r, <<\"tcp\">>, foo}",
        "{filter, ~r, <<\"tcp\">>, {}}", "{filter, ~r, <<\"tcp\">>, <<>>}", "{open, 1, []}",
        "{open, eth0, []}", "{open, {}, []}", "{open, [<<\"eth0\">>], []}",
        "{open, <<\"eth0\">>, foo}", "{open, <<\"eth0\">>, <<>>}", "{open, <<\"eth0\">>, {}}",
        "{open, <<\"eth0\">>, 1}", "{open, <<\"eth0\">>, \"abc\"}",
    };
    erlang_ref ref = mkref(1);
    erlang_pid pid = mkpid(1);
    struct ewp_request req;
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++) {
        int rv = strstr(bad[n], "~p") != NULL ? request(&req, bad[n], &pid)
                                              : request(&req, bad[n], &ref);

        expect_status(rv, EWP_DECODE_BADARG, bad[n]);
    }
}

static void
test_request_unknown_is_unknown(void)
{
    static const char *const bad[] = {
        "foo", "{foo}", "{foo, 1}", "{foo, ~r}", "42", "-1", "\"open\"", "<<\"open\">>", "{}",
        "{1, 2}", "{\"open\", <<\"eth0\">>, []}", "{<<\"close\">>, ~r}", "[open]", "[]",
        "'Open'", "'open '", "{{open}, x}", "{[], ~r}", "{'dev ', x}", "~r", "{~r, close}",
    };
    erlang_ref ref = mkref(1);
    struct ewp_request req;
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++)
        expect_status(request(&req, bad[n], &ref), EWP_DECODE_UNKNOWN, bad[n]);

    /* a float and a bignum at the head */
    expect_status(request(&req, "{~d, x}", 1.5), EWP_DECODE_UNKNOWN, "{1.5, x}");
    expect_status(request(&req, "~L", (long long)1 << 62), EWP_DECODE_UNKNOWN, "1 bsl 62");
}

static void
test_request_device_longer_than_255_bytes_or_with_nul_is_badarg(void)
{
    struct ewp_request req;
    char dev[300];

    memset(dev, 'd', sizeof(dev));
    dev[255] = '\0';
    CU_ASSERT(request(&req, "{open, ~b, []}", dev) == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 255);
    CU_ASSERT(request(&req, "{open, ~s, []}", dev) == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == 255);
    dev[255] = 'd';
    dev[256] = '\0';
    CU_ASSERT(request(&req, "{open, ~b, []}", dev) == EWP_DECODE_BADARG);
    CU_ASSERT(request(&req, "{open, ~s, []}", dev) == EWP_DECODE_BADARG);
    CU_ASSERT(request(&req, "{open, ~B, []}", dev, 299) == EWP_DECODE_BADARG);

    CU_ASSERT(request(&req, "{open, ~B, []}", "eth\0", 4) == EWP_DECODE_BADARG);
    CU_ASSERT(request(&req, "{open, ~B, []}", "\0eth", 4) == EWP_DECODE_BADARG);
    CU_ASSERT(request(&req, "{open, ~B, []}", "\0", 1) == EWP_DECODE_BADARG);
    CU_ASSERT(request(&req, "{open, ~t, []}", "k\0\3e\0t", 6) == EWP_DECODE_BADARG);
    CU_ASSERT(request(&req, "{open, ~t, []}", "k\0\3eth", 6) == EWP_DECODE_OK);
}

/* ---- ewp_decode_request: options ---- */

static void
test_opts_default_values(void)
{
    struct ewp_opts o;

    memset(&o, 0x5a, sizeof(o));
    ewp_decode_opts_default(&o);
    CU_ASSERT(o.snaplen == 65535);
    CU_ASSERT(o.promisc == 0);
    CU_ASSERT(o.immediate == 1);
    CU_ASSERT(o.timeout_ms == 0);
    CU_ASSERT(o.buffer == 0);
    CU_ASSERT(o.monitor == 0);
    CU_ASSERT(o.time_unit == EWP_TIME_TIMESTAMP);
    CU_ASSERT(o.has_filter == 0);
    CU_ASSERT(o.filter_len == 0);
    CU_ASSERT(o.optimize == 1);
    CU_ASSERT(o.netmask == 0xffffffffU);
    CU_ASSERT(o.limit == 8192 && o.limit == EWP_FILTER_LIMIT);
    CU_ASSERT(o.batch == 1);
    CU_ASSERT(o.share == 1);
    CU_ASSERT(o.dump == NULL && o.dump_len == 0);
}

static void
test_opts_each_valid_value_sets_its_field(void)
{
    struct ewp_request r;

    CU_ASSERT(open_with(&r, "[{snaplen, 0}]") == 0 && r.opts.snaplen == 0);
    CU_ASSERT(open_with(&r, "[{snaplen, 96}]") == 0 && r.opts.snaplen == 96);
    CU_ASSERT(open_with(&r, "[{snaplen, 2147483647}]") == 0 && r.opts.snaplen == INT_MAX);
    CU_ASSERT(open_with(&r, "[{promisc, true}]") == 0 && r.opts.promisc == 1);
    CU_ASSERT(open_with(&r, "[{promisc, false}]") == 0 && r.opts.promisc == 0);

    CU_ASSERT(open_with(&r, "[{timeout, immediate}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{timeout, infinity}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{timeout, 500}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 500);
    CU_ASSERT(open_with(&r, "[{timeout, 0}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{timeout, 2147483647}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == INT_MAX);
    CU_ASSERT(open_with(&r, "[{to_ms, 250}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 250);

    CU_ASSERT(open_with(&r, "[{immediate, false}]") == 0 && r.opts.immediate == 0);
    CU_ASSERT(open_with(&r, "[{immediate, true}]") == 0 && r.opts.immediate == 1);

    CU_ASSERT(open_with(&r, "[{buffer, 1048576}]") == 0 && r.opts.buffer == 1048576);
    CU_ASSERT(open_with(&r, "[{buffer, 0}]") == 0 && r.opts.buffer == 0);
    CU_ASSERT(open_with(&r, "[{buffer, -1}]") == 0 && r.opts.buffer == -1);
    CU_ASSERT(open_with(&r, "[{buffer, -2147483648}]") == 0 && r.opts.buffer == INT_MIN);
    CU_ASSERT(open_with(&r, "[{monitor, true}]") == 0 && r.opts.monitor == 1);
    CU_ASSERT(open_with(&r, "[{monitor, false}]") == 0 && r.opts.monitor == 0);
    CU_ASSERT(open_with(&r, "[{share, false}]") == 0 && r.opts.share == 0);
    CU_ASSERT(open_with(&r, "[{share, true}]") == 0 && r.opts.share == 1);
    CU_ASSERT(open_with(&r, "[{share, false}, {share, true}]") == 0 && r.opts.share == 0);
    CU_ASSERT(open_with(&r, "[]") == 0 && r.opts.share == 1);
    CU_ASSERT(open_with(&r, "[{time_unit, microsecond}]") == 0 &&
              r.opts.time_unit == EWP_TIME_MICROSECOND);
    CU_ASSERT(open_with(&r, "[{time_unit, timestamp}]") == 0 &&
              r.opts.time_unit == EWP_TIME_TIMESTAMP);
    CU_ASSERT(open_with(&r, "[{time_unit, nanosecond}]") == 0 &&
              r.opts.time_unit == EWP_TIME_NANOSECOND && r.opts.precision == EWP_TSTAMP_MICRO);
    /* nano without a time_unit: Time in nanoseconds; with one: as asked */
    CU_ASSERT(open_with(&r, "[{tstamp_precision, nano}]") == 0 &&
              r.opts.precision == EWP_TSTAMP_NANO && r.opts.time_unit == EWP_TIME_NANOSECOND);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, nano}, {time_unit, timestamp}]") == 0 &&
              r.opts.precision == EWP_TSTAMP_NANO && r.opts.time_unit == EWP_TIME_TIMESTAMP);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, micro}]") == 0 &&
              r.opts.precision == EWP_TSTAMP_MICRO && r.opts.time_unit == EWP_TIME_TIMESTAMP);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, micro}, {tstamp_precision, nano}]") == 0 &&
              r.opts.precision == EWP_TSTAMP_MICRO);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, pico}]") == EWP_DECODE_BADARG);
    CU_ASSERT(open_with(&r, "[{tstamp_precision, 9}]") == EWP_DECODE_BADARG);
    CU_ASSERT(open_with(&r, "[{time_unit, picosecond}]") == EWP_DECODE_BADARG);

    CU_ASSERT(open_with(&r, "[{filter, <<\"tcp port 80\">>}]") == 0);
    CU_ASSERT(r.opts.has_filter == 1 && r.opts.filter_len == 11 &&
              memcmp(r.opts.filter, "tcp port 80", 11) == 0);
    CU_ASSERT(r.opts.filter > last_buf && r.opts.filter < last_buf + 64);
    CU_ASSERT(open_with(&r, "[{filter, \"udp\"}]") == 0);
    CU_ASSERT(r.opts.has_filter == 1 && r.opts.filter_len == 3 &&
              memcmp(r.opts.filter, "udp", 3) == 0);
    CU_ASSERT(open_with(&r, "[{filter, <<>>}]") == 0);
    CU_ASSERT(r.opts.has_filter == 1 && r.opts.filter_len == 0);
    CU_ASSERT(open_with(&r, "[{filter, []}]") == 0);
    CU_ASSERT(r.opts.has_filter == 1 && r.opts.filter_len == 0);

    CU_ASSERT(open_with(&r, "[{optimize, false}]") == 0 && r.opts.optimize == 0);
    CU_ASSERT(open_with(&r, "[{optimize, true}]") == 0 && r.opts.optimize == 1);
    CU_ASSERT(open_with(&r, "[{netmask, 0}]") == 0 && r.opts.netmask == 0);
    CU_ASSERT(open_with(&r, "[{netmask, 4294967295}]") == 0 && r.opts.netmask == 0xffffffffU);
    CU_ASSERT(open_with(&r, "[{netmask, 4294967040}]") == 0 && r.opts.netmask == 0xffffff00U);
    CU_ASSERT(open_with(&r, "[{netmask, {255, 255, 255, 0}}]") == 0 &&
              r.opts.netmask == 0xffffff00U);
    CU_ASSERT(open_with(&r, "[{netmask, {10, 1, 2, 3}}]") == 0 && r.opts.netmask == 0x0a010203U);
    CU_ASSERT(open_with(&r, "[{netmask, {0, 0, 0, 0}}]") == 0 && r.opts.netmask == 0);
    CU_ASSERT(open_with(&r, "[{limit, -1}]") == 0 && r.opts.limit == -1);
    CU_ASSERT(open_with(&r, "[{limit, 0}]") == 0 && r.opts.limit == 0);
    CU_ASSERT(open_with(&r, "[{limit, 100000}]") == 0 && r.opts.limit == 100000);
    CU_ASSERT(open_with(&r, "[{limit, -9223372036854775807}]") == 0 &&
              r.opts.limit == -LONG_MAX);
    CU_ASSERT(open_with(&r, "[{batch, 1}]") == 0 && r.opts.batch == 1);
    CU_ASSERT(open_with(&r, "[{batch, 64}]") == 0 && r.opts.batch == 64);
    CU_ASSERT(open_with(&r, "[{batch, 65536}]") == 0 && r.opts.batch == EWP_BATCH_MAX);
}

static void
test_opts_all_together(void)
{
    struct ewp_request r;

    CU_ASSERT(open_with(&r, "[{snaplen, 128}, {promisc, true}, {timeout, 20}, {buffer, 4096}, "
                            "{monitor, true}, {time_unit, microsecond}, {filter, \"ip\"}, "
                            "{optimize, false}, {netmask, {255, 0, 0, 0}}, {limit, 3}, "
                            "{batch, 8}]") == 0);
    CU_ASSERT(r.opts.snaplen == 128 && r.opts.promisc == 1 && r.opts.immediate == 0 &&
              r.opts.timeout_ms == 20 && r.opts.buffer == 4096 && r.opts.monitor == 1 &&
              r.opts.time_unit == EWP_TIME_MICROSECOND && r.opts.has_filter == 1 &&
              r.opts.filter_len == 2 && r.opts.optimize == 0 && r.opts.netmask == 0xff000000U &&
              r.opts.limit == 3 && r.opts.batch == 8);
}

static void
test_opts_immediate_overrides_timeout_in_any_order(void)
{
    struct ewp_request r;

    CU_ASSERT(open_with(&r, "[{immediate, true}, {timeout, 500}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 500);
    CU_ASSERT(open_with(&r, "[{timeout, 500}, {immediate, true}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 500);
    CU_ASSERT(open_with(&r, "[{immediate, false}, {timeout, immediate}]") == 0);
    CU_ASSERT(r.opts.immediate == 0);
    CU_ASSERT(open_with(&r, "[{timeout, immediate}, {immediate, false}]") == 0);
    CU_ASSERT(r.opts.immediate == 0);
    CU_ASSERT(open_with(&r, "[{to_ms, 7}, {immediate, true}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 7);
    CU_ASSERT(open_with(&r, "[{immediate, true}, {timeout, infinity}]") == 0);
    CU_ASSERT(r.opts.immediate == 1);
    /* the first {immediate, _} counts */
    CU_ASSERT(open_with(&r, "[{immediate, false}, {timeout, 9}, {immediate, true}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 9);
}

static void
test_opts_first_occurrence_wins(void)
{
    struct ewp_request r;

    CU_ASSERT(open_with(&r, "[{snaplen, 1}, {snaplen, 2}]") == 0 && r.opts.snaplen == 1);
    CU_ASSERT(open_with(&r, "[{promisc, true}, {promisc, false}]") == 0 && r.opts.promisc == 1);
    CU_ASSERT(open_with(&r, "[{timeout, 5}, {timeout, 6}]") == 0 && r.opts.timeout_ms == 5);
    CU_ASSERT(open_with(&r, "[{timeout, 5}, {to_ms, 6}]") == 0 && r.opts.timeout_ms == 5);
    CU_ASSERT(open_with(&r, "[{to_ms, 6}, {timeout, 5}]") == 0 && r.opts.timeout_ms == 6);
    CU_ASSERT(open_with(&r, "[{timeout, infinity}, {timeout, 5}]") == 0);
    CU_ASSERT(r.opts.immediate == 0 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{timeout, immediate}, {timeout, 5}]") == 0);
    CU_ASSERT(r.opts.immediate == 1 && r.opts.timeout_ms == 0);
    CU_ASSERT(open_with(&r, "[{buffer, 10}, {buffer, 20}]") == 0 && r.opts.buffer == 10);
    CU_ASSERT(open_with(&r, "[{monitor, false}, {monitor, true}]") == 0 && r.opts.monitor == 0);
    CU_ASSERT(open_with(&r, "[{time_unit, microsecond}, {time_unit, timestamp}]") == 0 &&
              r.opts.time_unit == EWP_TIME_MICROSECOND);
    CU_ASSERT(open_with(&r, "[{filter, \"tcp\"}, {filter, <<\"udp\">>}]") == 0);
    CU_ASSERT(r.opts.filter_len == 3 && memcmp(r.opts.filter, "tcp", 3) == 0);
    CU_ASSERT(open_with(&r, "[{optimize, false}, {optimize, true}]") == 0 && r.opts.optimize == 0);
    CU_ASSERT(open_with(&r, "[{netmask, {255, 0, 0, 0}}, {netmask, 0}]") == 0 &&
              r.opts.netmask == 0xff000000U);
    CU_ASSERT(open_with(&r, "[{limit, -1}, {limit, 5}]") == 0 && r.opts.limit == -1);
    CU_ASSERT(open_with(&r, "[{batch, 2}, {batch, 3}]") == 0 && r.opts.batch == 2);
    CU_ASSERT(filter_with(&r, "[{limit, 1}, {limit, 2}]") == 0 && r.opts.limit == 1);
}

static void
test_opts_of_the_wrong_type_are_badarg(void)
{
    static const char *const bad[] = {
        /* snaplen: 0..2147483647 */
        "[{snaplen, -1}]", "[{snaplen, 2147483648}]", "[{snaplen, foo}]", "[{snaplen, \"1\"}]",
        "[{snaplen, <<\"1\">>}]", "[{snaplen, ~d}]", "[{snaplen, {1}}]", "[{snaplen, []}]",
        /* booleans */
        "[{promisc, 1}]", "[{promisc, yes}]", "[{promisc, \"true\"}]", "[{immediate, 1}]",
        "[{immediate, immediate}]", "[{monitor, 0}]", "[{monitor, []}]", "[{optimize, 1}]",
        "[{optimize, 'True'}]", "[{share, 1}]", "[{share, yes}]", "[{share, \"false\"}]",
        /* timeout: immediate | infinity | 0..2147483647 */
        "[{timeout, -1}]", "[{timeout, 2147483648}]", "[{timeout, foo}]", "[{timeout, \"10\"}]",
        "[{timeout, ~d}]", "[{timeout, 'Infinity'}]", "[{timeout, {5}}]",
        /* to_ms: 0..2147483647 only */
        "[{to_ms, immediate}]", "[{to_ms, infinity}]", "[{to_ms, -1}]", "[{to_ms, 2147483648}]",
        /* buffer: integer() fitting an int */
        "[{buffer, foo}]", "[{buffer, 2147483648}]", "[{buffer, -2147483649}]",
        "[{buffer, ~d}]",
        /* time_unit */
        "[{time_unit, foo}]", "[{time_unit, second}]", "[{time_unit, millisecond}]",
        "[{time_unit, 1}]", "[{time_unit, \"microsecond\"}]",
        /* filter: binary() | string() */
        "[{filter, 1}]", "[{filter, tcp}]", "[{filter, [300]}]", "[{filter, [<<\"tcp\">>]}]",
        "[{filter, {<<\"tcp\">>}}]", "[{filter, ~d}]",
        /* netmask: 0..16#FFFFFFFF | {A, B, C, D} */
        "[{netmask, -1}]", "[{netmask, 4294967296}]", "[{netmask, {1, 2, 3}}]",
        "[{netmask, {1, 2, 3, 256}}]", "[{netmask, {1, 2, 3, -1}}]", "[{netmask, {1, 2, 3, 4, 5}}]",
        "[{netmask, foo}]", "[{netmask, \"255.0.0.0\"}]", "[{netmask, {a, b, c, d}}]",
        "[{netmask, [255, 255, 255, 0]}]", "[{netmask, 18446744073709551615}]", "[{netmask, 9223372036854775807}]", "[{netmask, ~d}]",
        /* limit: integer() */
        "[{limit, foo}]", "[{limit, ~d}]", "[{limit, 9223372036854775808}]",
        "[{limit, -9223372036854775809}]", "[{limit, \"1\"}]",
        /* batch: 1..65536 */
        "[{batch, 0}]", "[{batch, -1}]", "[{batch, 65537}]", "[{batch, foo}]",
        /* a later duplicate is type-checked too */
        "[{snaplen, 1}, {snaplen, foo}]", "[{filter, \"tcp\"}, {filter, 1}]",
        "[{timeout, 5}, {to_ms, infinity}]",
    };
    struct ewp_request r;
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++) {
        char fmt[512];

        (void)snprintf(fmt, sizeof(fmt), "{open, <<\"eth0\">>, %s}", bad[n]);
        expect_status(request(&r, fmt, 1.0), EWP_DECODE_BADARG, bad[n]);
    }
}

static void
test_opts_unknown_or_malformed_are_badarg(void)
{
    static const char *const bad[] = {
        "[{foo, 1}]", "[{snaplen, 1}, {foo, 1}]", "[{'Snaplen', 1}]", "[{\"snaplen\", 1}]",
        "[{<<\"snaplen\">>, 1}]", "[{1, 1}]", "[snaplen]", "[{snaplen}]", "[{snaplen, 1, 2}]",
        "[[snaplen, 1]]", "[{}]", "[1]", "[[]]", "[promisc]", "[{promisc, true} | foo]",
        "[{promisc, true}, {snaplen, 1} | {snaplen, 2}]", "[{snaplen, 1} | <<>>]",
        "[{filter, \"tcp\"} | \"udp\"]", "[{nolimit, 1}]", "[{to_MS, 1}]", "[{timeout , 1, 2}]",
    };
    struct ewp_request r;
    size_t n;

    for (n = 0; n < N_ELEMS(bad); n++)
        expect_status(open_with(&r, bad[n]), EWP_DECODE_BADARG, bad[n]);
    CU_ASSERT(open_with(&r, "[{snaplen, 1} | []]") == EWP_DECODE_OK && r.opts.snaplen == 1);
}

static void
test_filter_request_takes_only_filter_options(void)
{
    static const char *const open_only[] = {
        "[{snaplen, 1}]",      "[{promisc, true}]",       "[{timeout, 5}]",
        "[{timeout, immediate}]", "[{to_ms, 5}]",         "[{immediate, true}]",
        "[{buffer, 1}]",       "[{monitor, false}]",      "[{time_unit, microsecond}]",
        "[{filter, \"tcp\"}]", "[{batch, 2}]",            "[{limit, 1}, {snaplen, 1}]",
        "[{foo, 1}]",          "[{optimize, 1}]",         "[{netmask, foo}]",
        "[{limit, foo}]",      "[{optimize, true} | foo]", "[{share, false}]",
    };
    struct ewp_request r;
    size_t n;

    for (n = 0; n < N_ELEMS(open_only); n++)
        expect_status(filter_with(&r, open_only[n]), EWP_DECODE_BADARG, open_only[n]);

    CU_ASSERT(filter_with(&r, "[]") == 0);
    CU_ASSERT(r.opts.optimize == 1 && r.opts.netmask == 0xffffffffU && r.opts.limit == 8192);
    CU_ASSERT(filter_with(&r, "[{optimize, false}, {netmask, {255, 255, 0, 0}}, {limit, -1}]") ==
              0);
    CU_ASSERT(r.opts.optimize == 0 && r.opts.netmask == 0xffff0000U && r.opts.limit == -1);
    CU_ASSERT(r.data_len == 3 && memcmp(r.data, "tcp", 3) == 0);
    CU_ASSERT(r.opts.has_filter == 0);
    CU_ASSERT(filter_with(&r, "[{netmask, 16777215}]") == 0 && r.opts.netmask == 0x00ffffffU);
    CU_ASSERT(filter_with(&r, "[{limit, 0}]") == 0 && r.opts.limit == 0);
}

static void
test_request_open_file_gives_path_options_and_owner(void)
{
    struct ewp_request req;
    erlang_pid owner = mkpid(5);
    erlang_ref ref = mkref(1);
    char path[EWP_PATH_MAX + 2];

    CU_ASSERT(request(&req, "{open_file, <<\"/tmp/in.pcap\">>, []}") == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN_FILE && req.has_owner == 0);
    CU_ASSERT(req.dev_len == 12 && memcmp(req.dev, "/tmp/in.pcap", 12) == 0);
    CU_ASSERT(req.dev > last_buf && req.dev < last_buf + 40);
    CU_ASSERT(request(&req, "{open_file, \"in.pcap\", [{filter, \"udp\"}, {batch, 4}], ~p}",
                      &owner) == EWP_DECODE_OK);
    CU_ASSERT(req.type == EWP_REQ_OPEN_FILE && req.has_owner == 1 &&
              ei_cmp_pids(&req.owner, &owner) == 0);
    CU_ASSERT(req.dev_len == 7 && memcmp(req.dev, "in.pcap", 7) == 0);
    CU_ASSERT(req.opts.has_filter == 1 && req.opts.filter_len == 3 && req.opts.batch == 4);

    memset(path, 'p', sizeof(path));
    path[EWP_PATH_MAX] = '\0';
    CU_ASSERT(request(&req, "{open_file, ~b, []}", path) == EWP_DECODE_OK);
    CU_ASSERT(req.dev_len == EWP_PATH_MAX);
    path[EWP_PATH_MAX] = 'p';
    path[EWP_PATH_MAX + 1] = '\0';
    expect_status(request(&req, "{open_file, ~b, []}", path), EWP_DECODE_BADARG,
                  "{open_file, <<4096 bytes>>, []}");
    expect_status(request(&req, "{open_file, ~s, []}", path), EWP_DECODE_BADARG,
                  "{open_file, \"4096 bytes\", []}");

    {
        static const char *const bad[] = {
            "{open_file, <<>>, []}", "{open_file, [], []}", "{open_file, ~B, []}",
            "{open_file, 1, []}", "{open_file, in, []}", "{open_file, <<\"in\">>, foo}",
            "{open_file, <<\"in\">>, [{foo, 1}]}", "{open_file, <<\"in\">>, [], self}",
            "{open_file, <<\"in\">>, [], ~r}", "{open_file, <<\"in\">>}", "{open_file}",
            "open_file", "{open_file, <<\"in\">>, [], ~p, x}",
        };
        size_t n;

        for (n = 0; n < N_ELEMS(bad); n++) {
            int rv;

            if (strstr(bad[n], "~B") != NULL)
                rv = request(&req, bad[n], "a\0b", 3);
            else if (strstr(bad[n], "~p") != NULL)
                rv = request(&req, bad[n], &owner);
            else
                rv = request(&req, bad[n], &ref);
            expect_status(rv, EWP_DECODE_BADARG, bad[n]);
        }
    }
}

static void
test_opts_dump_gives_a_path(void)
{
    static const char *const bad[] = {
        "[{dump, <<>>}]", "[{dump, []}]", "[{dump, 1}]", "[{dump, out}]", "[{dump, {\"x\"}}]",
        "[{dump, [<<\"x\">>]}]", "[{dump, ~B}]", "[{dump, \"x\"}, {dump, 1}]",
    };
    struct ewp_request r;
    char path[EWP_PATH_MAX + 2];
    char fmt[64];
    size_t n;

    CU_ASSERT(open_with(&r, "[{dump, <<\"/tmp/out.pcap\">>}]") == 0);
    CU_ASSERT(r.opts.dump_len == 13 && memcmp(r.opts.dump, "/tmp/out.pcap", 13) == 0);
    CU_ASSERT(r.opts.dump > last_buf && r.opts.dump < last_buf + 64);
    CU_ASSERT(open_with(&r, "[{dump, \"out.pcap\"}, {dump, \"other.pcap\"}]") == 0);
    CU_ASSERT(r.opts.dump_len == 8 && memcmp(r.opts.dump, "out.pcap", 8) == 0);

    memset(path, 'd', sizeof(path));
    path[EWP_PATH_MAX] = '\0';
    CU_ASSERT(request(&r, "{open, <<>>, [{dump, ~b}]}", path) == EWP_DECODE_OK);
    CU_ASSERT(r.opts.dump_len == EWP_PATH_MAX);
    path[EWP_PATH_MAX] = 'd';
    path[EWP_PATH_MAX + 1] = '\0';
    expect_status(request(&r, "{open, <<>>, [{dump, ~b}]}", path), EWP_DECODE_BADARG,
                  "[{dump, <<4096 bytes>>}]");

    for (n = 0; n < N_ELEMS(bad); n++) {
        (void)snprintf(fmt, sizeof(fmt), "{open, <<\"eth0\">>, %s}", bad[n]);
        expect_status(request(&r, fmt, "a\0b", 3), EWP_DECODE_BADARG, bad[n]);
    }
    /* not a filter option */
    expect_status(filter_with(&r, "[{dump, \"x\"}]"), EWP_DECODE_BADARG,
                  "{filter, Ref, F, [{dump, \"x\"}]}");
}

/* ---- ewp_filter_within_limit ---- */

static void
test_filter_within_limit_follows_size_less_than_limit_or_negative(void)
{
    CU_ASSERT(ewp_filter_within_limit(0, EWP_FILTER_LIMIT));
    CU_ASSERT(ewp_filter_within_limit(8191, EWP_FILTER_LIMIT));
    CU_ASSERT(!ewp_filter_within_limit(8192, EWP_FILTER_LIMIT));
    CU_ASSERT(!ewp_filter_within_limit(8193, EWP_FILTER_LIMIT));
    CU_ASSERT(!ewp_filter_within_limit(0, 0));
    CU_ASSERT(!ewp_filter_within_limit(1, 0));
    CU_ASSERT(ewp_filter_within_limit(0, 1));
    CU_ASSERT(!ewp_filter_within_limit(1, 1));
    CU_ASSERT(ewp_filter_within_limit(0, -1));
    CU_ASSERT(ewp_filter_within_limit(1000000, -1));
    CU_ASSERT(ewp_filter_within_limit(SIZE_MAX, -1));
    CU_ASSERT(ewp_filter_within_limit(SIZE_MAX, LONG_MIN));
    CU_ASSERT(ewp_filter_within_limit(SIZE_MAX - 1, LONG_MAX) == (SIZE_MAX - 1 < (size_t)LONG_MAX));
    CU_ASSERT(ewp_filter_within_limit(1000000, LONG_MAX));
}

CU_TestInfo ewp_decode_tests[] = {
    {"ewp_decode_check accepts every term type", test_check_accepts_every_term_type},
    {"ewp_decode_check stops after one term and honours the start index",
     test_check_stops_after_one_term_and_honours_the_start_index},
    {"ewp_decode_check refuses every proper prefix of valid requests",
     test_check_refuses_every_prefix_of_valid_requests},
    {"ewp_decode_check refuses length fields larger than the buffer",
     test_check_refuses_length_fields_larger_than_the_buffer},
    {"ewp_decode_check refuses nesting deeper than EWP_TERM_DEPTH_MAX",
     test_check_refuses_nesting_deeper_than_the_limit},
    {"ewp_decode_check refuses funs", test_check_refuses_funs},
    {"decoders survive random bytes", test_decoders_survive_random_bytes},
    {"decoders survive mutated requests", test_decoders_survive_mutated_requests},
    {"ewp_decode_call with a ref tag gives From, Tag and the request",
     test_call_with_a_ref_tag_gives_from_tag_and_request},
    {"ewp_decode_call with an [alias | Ref] tag keeps the whole list",
     test_call_with_an_alias_tag_keeps_the_whole_improper_list},
    {"ewp_decode_call accepts NULL outputs and any tag term",
     test_call_accepts_null_outputs_and_any_tag_term},
    {"ewp_decode_call refuses other shapes and touches nothing",
     test_call_refuses_other_shapes_and_touches_nothing},
    {"ewp_decode_call reads nothing past a checked FLOAT_EXT tag",
     test_call_reads_nothing_past_a_checked_float_tag},
    {"ewp_decode_call's tag is always one whole term", test_call_tag_is_always_one_whole_term},
    {"{open, Dev, Opts} gives the device and default options",
     test_request_open3_gives_device_and_default_options},
    {"{open, Dev, Opts, Owner} gives the owner", test_request_open4_gives_the_owner},
    {"close, stats, write and filter give their arguments",
     test_request_close_stats_write_and_filter_give_their_arguments},
    {"dev, getifaddrs and info are atoms", test_request_atoms_dev_getifaddrs_and_info},
    {"a request of the wrong arity is badarg", test_request_of_the_wrong_arity_is_badarg},
    {"a request with arguments of the wrong type is badarg",
     test_request_with_arguments_of_the_wrong_type_is_badarg},
    {"an unknown request is unknown_request", test_request_unknown_is_unknown},
    {"a device longer than 255 bytes or with a NUL is badarg",
     test_request_device_longer_than_255_bytes_or_with_nul_is_badarg},
    {"ewp_decode_opts_default gives the documented defaults", test_opts_default_values},
    {"each valid option value sets its field", test_opts_each_valid_value_sets_its_field},
    {"all options together set all fields", test_opts_all_together},
    {"{immediate, B} overrides timeout in any order",
     test_opts_immediate_overrides_timeout_in_any_order},
    {"the first occurrence of an option wins", test_opts_first_occurrence_wins},
    {"options of the wrong type are badarg", test_opts_of_the_wrong_type_are_badarg},
    {"unknown or malformed options are badarg", test_opts_unknown_or_malformed_are_badarg},
    {"a filter request takes only filter options", test_filter_request_takes_only_filter_options},
    {"{open_file, Path, Opts[, Owner]} gives the path, options and owner",
     test_request_open_file_gives_path_options_and_owner},
    {"{dump, Path} gives a path of 1 to EWP_PATH_MAX bytes", test_opts_dump_gives_a_path},
    {"ewp_filter_within_limit is size < limit orelse limit < 0",
     test_filter_within_limit_follows_size_less_than_limit_or_negative},
    CU_TEST_INFO_NULL,
};
