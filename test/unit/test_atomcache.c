/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/atomcache_in.c and atomcache_out.c: the
 * distribution header parsed and its frame rewritten into the
 * pass-through form (ewp_ac_in_frame), our own frames given a header
 * (ewp_ac_plain) and packet heads by reference (ewp_ac_tmpl_*), checked
 * by reading them back through ewp_ac_in_frame.
 *
 * Incoming frames are written byte by byte, the terms after the header
 * with ei. Every parse runs on an exact-size heap copy, so a read past the
 * end is a valgrind (make check) or ASan (make asan-check) error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>

#include "atomcache.h"
#include "encode.h"

#define MAX_OUT (1u << 20)

/* An assertion whose failure record names the case instead of the source */
#define CHECK_CASE(cond, what) \
    CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, __LINE__, (what), __FILE__, "", CU_FALSE)

/* ewp_ac_in_frame on an exact-size copy of buf[0..len) */
static int
in_frame(struct ewp_ac_in *c, const void *buf, size_t len, struct ewp_ac_buf *out)
{
    char *copy = malloc(len > 0 ? len : 1);
    int rv;

    CU_ASSERT_FATAL(copy != NULL);
    memcpy(copy, buf, len);
    rv = ewp_ac_in_frame(c, copy, len, MAX_OUT, out);
    free(copy);
    return rv;
}

/* 131, 68, then the bytes given, then the terms of x (no version bytes) */
static size_t
frame(unsigned char *dst, const unsigned char *hdr, size_t hdr_len, const ei_x_buff *x)
{
    dst[0] = 131;
    dst[1] = EWP_DIST_HEADER;
    memcpy(dst + 2, hdr, hdr_len);
    memcpy(dst + 2 + hdr_len, x->buff, (size_t)x->index);
    return 2 + hdr_len + (size_t)x->index;
}

/* The pass-through frame of a control and a message given as ei terms */
static void
pass_through(ei_x_buff *x)
{
    CU_ASSERT_FATAL(ei_x_new(x) == 0);
    CU_ASSERT_FATAL(ei_x_append_buf(x, "p", 1) == 0);
    CU_ASSERT_FATAL(ei_x_encode_version(x) == 0);
}

/* {6, '', ewpcap} and then {'$gen_call', hello} as ATOM_CACHE_REFs 0..3 */
static void
refs_terms(ei_x_buff *x)
{
    static const unsigned char t[] = {
        104, 3, 97, 6, 82, 0, 82, 1,      /* {6, '', ewpcap} */
        104, 2, 82, 2, 82, 3              /* {'$gen_call', hello} */
    };

    CU_ASSERT_FATAL(ei_x_new(x) == 0);
    CU_ASSERT_FATAL(ei_x_append_buf(x, (const char *)t, sizeof(t)) == 0);
}

/* what refs_terms reads as, spelled out */
static void
refs_expected(ei_x_buff *x)
{
    pass_through(x);
    CU_ASSERT_FATAL(ei_x_encode_tuple_header(x, 3) == 0);
    CU_ASSERT_FATAL(ei_x_encode_long(x, 6) == 0);
    CU_ASSERT_FATAL(ei_x_encode_atom(x, "") == 0);
    CU_ASSERT_FATAL(ei_x_encode_atom(x, "ewpcap") == 0);
    CU_ASSERT_FATAL(ei_x_encode_version(x) == 0);
    CU_ASSERT_FATAL(ei_x_encode_tuple_header(x, 2) == 0);
    CU_ASSERT_FATAL(ei_x_encode_atom(x, "$gen_call") == 0);
    CU_ASSERT_FATAL(ei_x_encode_atom(x, "hello") == 0);
}

/* Four new entries: 0 '' at 5, 1 ewpcap at 256 + 7 (segment 1), 2
 * '$gen_call' at 7 * 256 + 255 (segment 7), 3 hello at 9 */
static const unsigned char new_hdr[] = {
    4, 0x98, 0x8f, 0x00,
    5, 0,
    7, 6, 'e', 'w', 'p', 'c', 'a', 'p',
    255, 9, '$', 'g', 'e', 'n', '_', 'c', 'a', 'l', 'l',
    9, 5, 'h', 'e', 'l', 'l', 'o'
};
/* ... the same four as old entries */
static const unsigned char old_hdr[] = {4, 0x10, 0x07, 0x00, 5, 7, 255, 9};

static void
expect_bytes(const struct ewp_ac_buf *out, const ei_x_buff *want, const char *what)
{
    CHECK_CASE(out->len == (size_t)want->index && memcmp(out->b, want->buff, out->len) == 0,
               what);
}

static void
test_new_then_old_entries_read_as_spelled_out(void)
{
    struct ewp_ac_in *c = ewp_ac_in_new();
    struct ewp_ac_buf out = {0};
    unsigned char f[256];
    ei_x_buff t, want;
    size_t n;

    CU_ASSERT_FATAL(c != NULL);
    refs_terms(&t);
    refs_expected(&want);
    n = frame(f, new_hdr, sizeof(new_hdr), &t);
    CU_ASSERT_EQUAL_FATAL(in_frame(c, f, n, &out), 0);
    expect_bytes(&out, &want, "new entries in segments 0, 1 and 7 read as spelled out");
    n = frame(f, old_hdr, sizeof(old_hdr), &t);
    CU_ASSERT_EQUAL_FATAL(in_frame(c, f, n, &out), 0);
    expect_bytes(&out, &want, "the same entries by index read the same");
    ei_x_free(&t);
    ei_x_free(&want);
    ewp_ac_buf_free(&out);
    ewp_ac_in_free(c);
}

static void
test_every_truncated_header_is_refused(void)
{
    unsigned char f[256];
    struct ewp_ac_buf out = {0};
    ei_x_buff t;
    size_t n, k, hdr_end = 2 + sizeof(new_hdr);
    char what[96];

    refs_terms(&t);
    n = frame(f, new_hdr, sizeof(new_hdr), &t);
    for (k = 0; k < hdr_end; k++) {
        struct ewp_ac_in *c = ewp_ac_in_new();

        CU_ASSERT_FATAL(c != NULL);
        (void)snprintf(what, sizeof(what), "a header cut at %zu of %zu bytes is refused", k,
                       hdr_end);
        CHECK_CASE(in_frame(c, f, k, &out) == -1, what);
        ewp_ac_in_free(c);
    }
    /* cut inside the terms: the rest goes up as it is, for the term check */
    for (k = hdr_end; k < n; k++) {
        struct ewp_ac_in *c = ewp_ac_in_new();

        CU_ASSERT_FATAL(c != NULL);
        (void)snprintf(what, sizeof(what), "terms cut at %zu of %zu bytes go up, shorter", k, n);
        CHECK_CASE(in_frame(c, f, k, &out) == 0 && out.len >= 2 && out.b[0] == 'p', what);
        ewp_ac_in_free(c);
    }
    ei_x_free(&t);
    ewp_ac_buf_free(&out);
}

static void
test_bad_headers_are_refused(void)
{
    static const struct {
        const char *what;
        unsigned char bytes[16];
        size_t len;
    } bad[] = {
        {"a pass-through frame", {'p', 131, 104, 1, 97, 1}, 6},
        {"a version byte alone", {131}, 1},
        {"an old entry never set", {131, 68, 1, 0x01, 0x03, 97, 1}, 7},
        {"an old entry of another segment never set", {131, 68, 1, 0x07, 0xff, 97, 1}, 7},
        {"an entry twice in one header", {131, 68, 2, 0x88, 0, 3, 1, 'a', 3, 1, 'b', 97, 1}, 13},
        {"a term naming ref 1 of a header of 1", {131, 68, 1, 0x08, 3, 1, 'a', 82, 1}, 9},
        {"a term naming a ref with no header refs", {131, 68, 0, 82, 0}, 5},
        {"a pid whose node names a missing ref", {131, 68, 0, 103, 82, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                  0}, 15},
        {"a new entry's text past the frame", {131, 68, 1, 0x08, 0, 9, 'a', 'b'}, 8},
        {"a long atom's length cut short", {131, 68, 1, 0x18, 0, 1}, 6},
    };
    struct ewp_ac_buf out = {0};
    size_t k;

    for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct ewp_ac_in *c = ewp_ac_in_new();

        CU_ASSERT_FATAL(c != NULL);
        CHECK_CASE(in_frame(c, bad[k].bytes, bad[k].len, &out) == -1, bad[k].what);
        ewp_ac_in_free(c);
    }
    ewp_ac_buf_free(&out);
}

static void
test_long_atoms_and_their_bound(void)
{
    struct ewp_ac_in *c = ewp_ac_in_new();
    struct ewp_ac_buf out = {0};
    unsigned char *f = malloc(8 + 1100);
    size_t n;

    CU_ASSERT_FATAL(c != NULL && f != NULL);
    /* one new entry of 300 bytes, LongAtoms: the atom comes up as ATOM_UTF8_EXT */
    memcpy(f, "\203D\001\030\000\001\054", 7);
    memset(f + 7, 'x', 300);
    f[307] = 82;
    f[308] = 0;
    n = 309;
    CU_ASSERT_EQUAL_FATAL(in_frame(c, f, n, &out), 0);
    CHECK_CASE(out.len == 2 + 3 + 300 && (unsigned char)out.b[2] == ERL_ATOM_UTF8_EXT &&
                   (unsigned char)out.b[3] == 1 && (unsigned char)out.b[4] == 44,
               "a 300-byte entry reads as ATOM_UTF8_EXT of 300 bytes");
    /* 1020 bytes is the most an atom has (255 characters of UTF-8); 1021 is refused */
    memcpy(f, "\203D\001\030\000\003\374", 7);
    memset(f + 7, 'y', 1020);
    f[1027] = 82;
    f[1028] = 0;
    CHECK_CASE(in_frame(c, f, 1029, &out) == 0, "an entry of 1020 bytes is taken");
    memcpy(f, "\203D\001\030\000\003\375", 7);
    memset(f + 7, 'y', 1021);
    f[1028] = 82;
    f[1029] = 0;
    CHECK_CASE(in_frame(c, f, 1030, &out) == -1, "an entry of 1021 bytes is refused");
    free(f);
    ewp_ac_buf_free(&out);
    ewp_ac_in_free(c);
}

static void
test_output_bounded_by_max(void)
{
    struct ewp_ac_in *c = ewp_ac_in_new();
    struct ewp_ac_buf out = {0};
    unsigned char f[2 + 4 + 255 + 1 + 5 + 2 * 100 + 1];
    size_t n = 0, k;

    CU_ASSERT_FATAL(c != NULL);
    /* one 255-byte atom, then a list of 100 references to it: 51 KiB from 470 bytes */
    f[n++] = 131;
    f[n++] = 68;
    f[n++] = 1;
    f[n++] = 0x08;
    f[n++] = 0;
    f[n++] = 255;
    memset(f + n, 'z', 255);
    n += 255;
    f[n++] = ERL_LIST_EXT;
    f[n++] = 0;
    f[n++] = 0;
    f[n++] = 0;
    f[n++] = 100;
    for (k = 0; k < 100; k++) {
        f[n++] = 82;
        f[n++] = 0;
    }
    f[n++] = ERL_NIL_EXT;
    CU_ASSERT_EQUAL(ewp_ac_in_frame(c, (const char *)f, n, 2 + 5 + 100 * 257 + 1, &out), 0);
    CU_ASSERT_EQUAL(out.len, 2 + 5 + 100 * 257 + 1);
    CHECK_CASE(ewp_ac_in_frame(c, (const char *)f, n, 2 + 5 + 100 * 257, &out) == -1,
               "a frame that would spell out past max is refused");
    CU_ASSERT(out.cap <= 2 + 5 + 100 * 257 + 1);
    ewp_ac_buf_free(&out);
    ewp_ac_in_free(c);
}

static void
test_unknown_term_goes_up_as_it_is(void)
{
    struct ewp_ac_in *c = ewp_ac_in_new();
    struct ewp_ac_buf out = {0};
    /* {1, a} and then a NEW_FUN_EXT (not walked): the rest unchanged */
    static const unsigned char f[] = {131, 68, 1, 0x08, 4, 1, 'a', 104, 2, 97, 1, 82, 0,
                                      112, 0, 0, 0, 9, 82, 0, 1, 2, 3};
    static const unsigned char want[] = {'p', 131, 104, 2, 97, 1, 119, 1, 'a',
                                         131, 112, 0, 0, 0, 9, 82, 0, 1, 2, 3};

    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT_EQUAL_FATAL(in_frame(c, f, sizeof(f), &out), 0);
    CHECK_CASE(out.len == sizeof(want) && memcmp(out.b, want, sizeof(want)) == 0,
               "after a term we do not walk, the bytes go up unchanged");
    /* a control alone: no version byte added */
    CU_ASSERT_EQUAL_FATAL(in_frame(c, f, 13, &out), 0);
    CHECK_CASE(out.len == 9 && memcmp(out.b, want, 9) == 0, "a control alone stays alone");
    ewp_ac_buf_free(&out);
    ewp_ac_in_free(c);
}

static void
test_plain_frames_get_an_empty_header(void)
{
    ei_x_buff x;
    erlang_pid to;
    char dst[256];
    long n;

    memset(&to, 0, sizeof(to));
    strcpy(to.node, "client@host");
    to.num = 7;
    to.creation = 3;
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT_FATAL(ewp_encode_send_header(&x, &to) == 0);
    CU_ASSERT_FATAL(ei_x_encode_atom(&x, "hello") == 0);
    n = ewp_ac_plain(dst, x.buff, (size_t)x.index);
    CHECK_CASE(n == x.index && memcmp(dst, "\203D\000", 3) == 0 &&
                   memcmp(dst + 3, x.buff + 2, (size_t)x.index - 2 - 8) == 0 &&
                   memcmp(dst + n - 7, "\167\005hello", 7) == 0,
               "a SEND with its message: header of no refs, the version bytes gone");
    /* a control alone (LINK) grows by one byte */
    x.index = 0;
    CU_ASSERT_FATAL(ewp_encode_control(&x, EWP_DOP_LINK, &to, &to) == 0);
    n = ewp_ac_plain(dst, x.buff, (size_t)x.index);
    CHECK_CASE(n == x.index + 1 && memcmp(dst + 3, x.buff + 2, (size_t)x.index - 2) == 0,
               "a control alone: the header and the control");
    CHECK_CASE(ewp_ac_plain(dst, "\203h\001a\001", 5) == -1, "a frame without 'p' is refused");
    ei_x_free(&x);
}

/* A packet head through a template and back through ewp_ac_in_frame */
static void
head_round_trip(struct ewp_ac_out *out, struct ewp_ac_tmpl *t, struct ewp_ac_in *in,
                const ei_x_buff *prefix, int want_new, const char *what)
{
    char *dst = malloc(t->hdr_max + t->body_len);
    struct ewp_ac_buf back = {0};
    size_t n;
    int k, news = 0;

    CU_ASSERT_FATAL(dst != NULL);
    n = ewp_ac_tmpl_put(out, t, dst);
    for (k = 0; k < t->n; k++) /* the NewCacheEntryFlag of each ref */
        news += ((unsigned char)dst[3 + k / 2] >> (4 * (k % 2)) & 8) != 0;
    CHECK_CASE(news == want_new, what);
    CHECK_CASE(in_frame(in, dst, n, &back) == 0 && back.len == (size_t)prefix->index &&
                   memcmp(back.b, prefix->buff, back.len) == 0,
               "the head reads back as the pass-through head");
    free(dst);
    ewp_ac_buf_free(&back);
}

static void
test_packet_head_by_reference(void)
{
    struct ewp_ac_out *out = ewp_ac_out_new(), *out2 = ewp_ac_out_new();
    struct ewp_ac_in *in = ewp_ac_in_new(), *in2 = ewp_ac_in_new();
    struct ewp_ac_tmpl t, b;
    ei_x_buff px, bx;
    erlang_pid to;
    erlang_ref ref;

    CU_ASSERT_FATAL(out != NULL && out2 != NULL && in != NULL && in2 != NULL);
    memset(&to, 0, sizeof(to));
    strcpy(to.node, "client@host");
    to.num = 7;
    to.creation = 3;
    memset(&ref, 0, sizeof(ref));
    strcpy(ref.node, "ewpcapd@host");
    ref.len = 3;
    ref.n[0] = 1;
    ref.creation = 5;
    CU_ASSERT_FATAL(ei_x_new(&px) == 0 && ei_x_new(&bx) == 0);
    CU_ASSERT_FATAL(ewp_encode_packet_prefix(&px, &to, &ref, 1) == 0);
    CU_ASSERT_FATAL(ewp_encode_batch_prefix(&bx, &to, &ref, 1) == 0);
    CU_ASSERT_EQUAL_FATAL(ewp_ac_tmpl_make(&t, px.buff, (size_t)px.index), 0);
    CU_ASSERT_EQUAL_FATAL(ewp_ac_tmpl_make(&b, bx.buff, (size_t)bx.index), 0);
    CU_ASSERT_EQUAL(t.n, 4); /* '', client@host, ewpcap, ewpcapd@host */
    CU_ASSERT(t.body_len < (size_t)px.index);

    head_round_trip(out, &t, in, &px, 4, "the first head makes its four entries");
    head_round_trip(out, &t, in, &px, 0, "the second refers to them by index");
    head_round_trip(out, &b, in, &bx, 1, "a batch head makes only ewpcap_batch new");
    head_round_trip(out, &t, in, &px, 0, "a head after another's: by index still");
    head_round_trip(out2, &t, in2, &px, 4, "a new connection's cache gets them new again");

    ewp_ac_tmpl_free(&t);
    ewp_ac_tmpl_free(&b);
    CU_ASSERT_EQUAL(ewp_ac_tmpl_make(&t, "\203h\001a\001", 5), -1);
    ei_x_free(&px);
    ei_x_free(&bx);
    ewp_ac_out_free(out);
    ewp_ac_out_free(out2);
    ewp_ac_in_free(in);
    ewp_ac_in_free(in2);
}

/* FNV-1a into 2048 entries, as atomcache_out.c places atoms */
static unsigned
slot_of(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % EWP_AC_SIZE;
}

static void
test_evicted_entry_is_sent_again(void)
{
    struct ewp_ac_out *out = ewp_ac_out_new();
    struct ewp_ac_in *in = ewp_ac_in_new();
    struct ewp_ac_tmpl ta, tb;
    ei_x_buff a, b;
    char na[16], nb[16];
    unsigned i, j;

    CU_ASSERT_FATAL(out != NULL && in != NULL);
    /* two atoms of the same entry */
    for (i = 0, j = 1;; j++) {
        (void)snprintf(na, sizeof(na), "a%u", i);
        (void)snprintf(nb, sizeof(nb), "a%u", j);
        if (slot_of(na) == slot_of(nb))
            break;
    }
    pass_through(&a);
    CU_ASSERT_FATAL(ei_x_encode_tuple_header(&a, 2) == 0 && ei_x_encode_long(&a, 18) == 0 &&
                    ei_x_encode_atom(&a, na) == 0);
    pass_through(&b);
    CU_ASSERT_FATAL(ei_x_encode_tuple_header(&b, 2) == 0 && ei_x_encode_long(&b, 18) == 0 &&
                    ei_x_encode_atom(&b, nb) == 0);
    CU_ASSERT_FATAL(ewp_ac_tmpl_make(&ta, a.buff, (size_t)a.index) == 0 &&
                    ewp_ac_tmpl_make(&tb, b.buff, (size_t)b.index) == 0);
    head_round_trip(out, &ta, in, &a, 1, "atom A new");
    head_round_trip(out, &ta, in, &a, 0, "atom A by index");
    head_round_trip(out, &tb, in, &b, 1, "atom B new, in A's entry");
    head_round_trip(out, &ta, in, &a, 1, "atom A new again: B took its entry");
    head_round_trip(out, &ta, in, &a, 0, "atom A by index again");
    ewp_ac_tmpl_free(&ta);
    ewp_ac_tmpl_free(&tb);
    ei_x_free(&a);
    ei_x_free(&b);
    ewp_ac_out_free(out);
    ewp_ac_in_free(in);
}

CU_TestInfo ewp_atomcache_tests[] = {
    {"new entries, then the same by index, read as spelled out",
     test_new_then_old_entries_read_as_spelled_out},
    {"every truncated header is refused", test_every_truncated_header_is_refused},
    {"bad headers and references are refused", test_bad_headers_are_refused},
    {"LongAtoms, and an atom past 1020 bytes refused", test_long_atoms_and_their_bound},
    {"the rewritten frame is bounded by max", test_output_bounded_by_max},
    {"a term we do not walk goes up as it is", test_unknown_term_goes_up_as_it_is},
    {"our frames get a header of no refs", test_plain_frames_get_an_empty_header},
    {"packet heads refer to their atoms by index after the first",
     test_packet_head_by_reference},
    {"an entry another atom took is sent new again", test_evicted_entry_is_sent_again},
    CU_TEST_INFO_NULL,
};
