/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The term checker of the decoder (decode.h): ei's decoders trust their
 * input and know nothing of the buffer's end, so every frame is first
 * walked here, each term bounds-checked against the buffer, nesting limited
 * to EWP_TERM_DEPTH_MAX, funs and other terms a request never holds
 * refused. Pure: no I/O, no allocation.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <ei.h>

#include "decode.h"
#include "be.h"

static int check_term(const unsigned char *b, size_t len, size_t *i, int depth);
static int check_atom(const unsigned char *b, size_t len, size_t *i);

/* Check that buf[*index..len) starts with one well-formed term (no version
 * byte) and advance *index past it. Returns 0 or -1 (index unchanged). */
int
ewp_decode_check(const char *buf, size_t len, int *index)
{
    size_t i;

    if (*index < 0 || (size_t)*index > len)
        return -1;
    i = (size_t)*index;
    if (check_term((const unsigned char *)buf, len, &i, 0) < 0)
        return -1;
    if (i > INT_MAX)
        return -1;
    *index = (int)i;
    return 0;
}

/*
 * For a message that ewp_decode_check refused as a whole: is it at least a
 * call, {'$gen_call', {Pid, Tag}, Request}, whose envelope is sound, so that
 * the caller can be told? Returns EWP_DECODE_BADARG (a known request, say
 * with a fun or nested too deep), EWP_DECODE_UNKNOWN (anything else) or -3
 * when there is nobody to answer. buf[*index] is the first byte after the
 * version byte.
 */
int
ewp_decode_check_call(const char *buf, size_t len, int index)
{
    const unsigned char *b = (const unsigned char *)buf;
    char atom[MAXATOMLEN];
    size_t i = (size_t)index;
    int k = index;

    if (len - i < 2 || b[i] != ERL_SMALL_TUPLE_EXT || b[i + 1] != 3)
        return -3;
    i += 2;
    if (check_atom(b, len, &i) < 0 || len - i < 2 || b[i] != ERL_SMALL_TUPLE_EXT ||
        b[i + 1] != 2)
        return -3;
    i += 2;
    if (check_term(b, len, &i, 1) < 0) /* Pid */
        return -3;
    if (check_term(b, len, &i, 1) < 0) /* Tag */
        return -3;
    if (ewp_decode_call(buf, &k, NULL, NULL, NULL) < 0)
        return -3;
    /* the request's head: an atom, or a tuple starting with one */
    if (len - i >= 2 && (b[i] == ERL_SMALL_TUPLE_EXT || b[i] == ERL_LARGE_TUPLE_EXT))
        i += b[i] == ERL_SMALL_TUPLE_EXT ? 2 : 5;
    k = (int)i;
    if (i >= len || check_atom(b, len, &i) < 0 || ei_decode_atom(buf, &k, atom) < 0)
        return EWP_DECODE_UNKNOWN;
    return ewp_decode_known(atom) ? EWP_DECODE_BADARG : EWP_DECODE_UNKNOWN;
}

#define NEED(n)                          \
    do {                                 \
        if ((size_t)(n) > len - *i)      \
            return -1;                   \
    } while (0)

static int
check_atom(const unsigned char *b, size_t len, size_t *i)
{
    size_t n;
    int is_utf8;

    NEED(1);
    is_utf8 = b[*i] == ERL_ATOM_UTF8_EXT || b[*i] == ERL_SMALL_ATOM_UTF8_EXT;
    switch (b[*i]) {
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
        NEED(3);
        n = ((size_t)b[*i + 1] << 8) | b[*i + 2];
        *i += 3;
        break;
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        NEED(2);
        n = b[*i + 1];
        *i += 2;
        break;
    default:
        return -1;
    }
    /* At most 255 characters: Latin-1 atoms 255 bytes, UTF-8 ones 4 bytes a
     * character. A longer Latin-1 atom does not fit ei's buffer once
     * converted, and ei_skip_term then silently stops inside a tuple. */
    if (n > (is_utf8 ? 255 * 4 : 255))
        return -1;
    NEED(n);
    *i += n;
    return 0;
}

/* One term at b[*i], bounded by len, nested at most EWP_TERM_DEPTH_MAX. */
static int
check_term(const unsigned char *b, size_t len, size_t *i, int depth)
{
    uint32_t n, k;
    unsigned char tag;

    if (depth > EWP_TERM_DEPTH_MAX)
        return -1;
    NEED(1);
    tag = b[*i];

    switch (tag) {
    case ERL_SMALL_INTEGER_EXT:
        NEED(2);
        *i += 2;
        return 0;
    case ERL_INTEGER_EXT:
        NEED(5);
        *i += 5;
        return 0;
    /* ERL_FLOAT_EXT (31 bytes of text) is refused: ei parses it with sscanf,
     * which reads past the term when the text has no NUL (found by
     * fuzzing). Nodes since R11 send NEW_FLOAT_EXT. */
    case NEW_FLOAT_EXT:
        NEED(9);
        *i += 9;
        return 0;
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        return check_atom(b, len, i);
    case ERL_NIL_EXT:
        *i += 1;
        return 0;
    case ERL_STRING_EXT:
        NEED(3);
        n = ((uint32_t)b[*i + 1] << 8) | b[*i + 2];
        *i += 3;
        NEED(n);
        *i += n;
        return 0;
    case ERL_BINARY_EXT:
        NEED(5);
        n = ewp_get_be32(b + *i + 1);
        *i += 5;
        NEED(n);
        *i += n;
        return 0;
    case ERL_BIT_BINARY_EXT:
        NEED(6);
        n = ewp_get_be32(b + *i + 1);
        if (b[*i + 5] < 1 || b[*i + 5] > 8 || n == 0)
            return -1;
        *i += 6;
        NEED(n);
        *i += n;
        return 0;
    case ERL_SMALL_BIG_EXT:
        NEED(3);
        n = b[*i + 1];
        *i += 3;
        NEED(n);
        *i += n;
        return 0;
    case ERL_LARGE_BIG_EXT:
        NEED(6);
        n = ewp_get_be32(b + *i + 1);
        *i += 6;
        NEED(n);
        *i += n;
        return 0;
    case ERL_PID_EXT:     /* atom, ID:4, Serial:4, Creation:1 */
    case ERL_NEW_PID_EXT: /* atom, ID:4, Serial:4, Creation:4 */
        *i += 1;
        if (check_atom(b, len, i) < 0)
            return -1;
        NEED(tag == ERL_PID_EXT ? 9 : 12);
        *i += tag == ERL_PID_EXT ? 9 : 12;
        return 0;
    case ERL_PORT_EXT:     /* atom, ID:4, Creation:1 */
    case ERL_NEW_PORT_EXT: /* atom, ID:4, Creation:4 */
    case ERL_V4_PORT_EXT:  /* atom, ID:8, Creation:4 */
        *i += 1;
        if (check_atom(b, len, i) < 0)
            return -1;
        k = tag == ERL_PORT_EXT ? 5 : tag == ERL_NEW_PORT_EXT ? 8 : 12;
        NEED(k);
        *i += k;
        return 0;
    case ERL_REFERENCE_EXT: /* atom, ID:4, Creation:1 */
        *i += 1;
        if (check_atom(b, len, i) < 0)
            return -1;
        NEED(5);
        *i += 5;
        return 0;
    case ERL_NEW_REFERENCE_EXT:   /* Len:2, atom, Creation:1, ID:4*Len */
    case ERL_NEWER_REFERENCE_EXT: /* Len:2, atom, Creation:4, ID:4*Len */
        NEED(3);
        n = ((uint32_t)b[*i + 1] << 8) | b[*i + 2];
        if (n < 1 || n > 5) /* erlang_ref holds at most 5 words */
            return -1;
        *i += 3;
        if (check_atom(b, len, i) < 0)
            return -1;
        k = (tag == ERL_NEW_REFERENCE_EXT ? 1 : 4) + 4 * n;
        NEED(k);
        *i += k;
        return 0;
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
        if (tag == ERL_SMALL_TUPLE_EXT) {
            NEED(2);
            n = b[*i + 1];
            *i += 2;
        } else {
            NEED(5);
            n = ewp_get_be32(b + *i + 1);
            *i += 5;
        }
        NEED(n); /* each element takes a byte at least */
        for (k = 0; k < n; k++)
            if (check_term(b, len, i, depth + 1) < 0)
                return -1;
        return 0;
    case ERL_LIST_EXT:
        NEED(5);
        n = ewp_get_be32(b + *i + 1);
        *i += 5;
        NEED(n);
        for (k = 0; k < n; k++)
            if (check_term(b, len, i, depth + 1) < 0)
                return -1;
        return check_term(b, len, i, depth + 1); /* tail */
    case ERL_MAP_EXT:
        NEED(5);
        n = ewp_get_be32(b + *i + 1);
        *i += 5;
        if (n > (len - *i) / 2)
            return -1;
        for (k = 0; k < 2 * n; k++)
            if (check_term(b, len, i, depth + 1) < 0)
                return -1;
        return 0;
    /* Funs are refused: no request carries one, and ei_skip_term would
     * walk their insides unchecked. */
    default:
        return -1;
    }
}
