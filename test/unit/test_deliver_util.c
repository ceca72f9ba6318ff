/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What the tests of batches built in place share (test_deliver.h): the
 * handles, the packets they are fed, and the frames read back.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <pcap/pcap.h>

#include "be.h"
#include "capture.h"
#include "test_deliver.h"

struct ewp_tdv_got ewp_tdv_got[MAX_HANDLES];
size_t ewp_tdv_ngot;

/* {open_file, <<"known.pcap">>, [{batch, N}]} */
static void
enc_open_batch(ei_x_buff *x, const void *batch)
{
    CU_ASSERT(ei_x_encode_tuple_header(x, 3) == 0 && ei_x_encode_atom(x, "open_file") == 0 &&
              ei_x_encode_binary(x, "known.pcap", 10) == 0 &&
              ei_x_encode_list_header(x, 1) == 0 && ei_x_encode_tuple_header(x, 2) == 0 &&
              ei_x_encode_atom(x, "batch") == 0 &&
              ei_x_encode_long(x, (long)*(const int *)batch) == 0 &&
              ei_x_encode_empty_list(x) == 0);
}

/* A handle of batch n whose capture reads nothing by itself */
struct ewp_handle *
ewp_tdv_open(int n)
{
    struct ewp_handle *h = ewp_stack_open(enc_open_batch, &n);

    CU_ASSERT_FATAL(h->batch == n);
    ewp_capture_stop(&h->cap);
    CU_ASSERT_FATAL(ewp_tdv_ngot < MAX_HANDLES);
    memset(&ewp_tdv_got[ewp_tdv_ngot], 0, sizeof(ewp_tdv_got[ewp_tdv_ngot]));
    ewp_tdv_got[ewp_tdv_ngot++].h = h;
    return h;
}

/* Packet seq of handle h: byte 0 the handle's index, 1-2 seq, then a
 * pattern of both; len bytes */
void
ewp_tdv_feed(struct ewp_handle *h, unsigned idx, unsigned seq, size_t len)
{
    static unsigned char pkt[16384];
    struct pcap_pkthdr hdr;
    size_t i;

    CU_ASSERT_FATAL(len >= 3 && len <= sizeof(pkt));
    pkt[0] = (unsigned char)idx;
    pkt[1] = (unsigned char)(seq >> 8);
    pkt[2] = (unsigned char)seq;
    for (i = 3; i < len; i++)
        pkt[i] = (unsigned char)(i * 7 + seq + idx);
    memset(&hdr, 0, sizeof(hdr));
    hdr.ts.tv_sec = 1700000000 + (time_t)seq;
    hdr.ts.tv_usec = (suseconds_t)seq;
    hdr.caplen = (bpf_u_int32)len;
    hdr.len = (bpf_u_int32)len + 4;
    h->cap.packet_cb(&h->cap, &hdr, pkt);
}

void
ewp_tdv_flush(struct ewp_handle *h)
{
    if (h->cap.flush_cb != NULL)
        h->cap.flush_cb(&h->cap);
}

/* One {Time, Length, Packet} or the last three of {ewpcap, ...} */
static void
check_packet(const char *b, int *idx, size_t who)
{
    char pkt[16384];
    long len, plen;
    unsigned seq;
    int type, size;
    long i;

    CU_ASSERT_FATAL(ei_skip_term(b, idx) == 0); /* Time */
    CU_ASSERT_FATAL(ei_decode_long(b, idx, &len) == 0);
    CU_ASSERT_FATAL(ei_get_type(b, idx, &type, &size) == 0 && type == ERL_BINARY_EXT &&
                    (size_t)size <= sizeof(pkt));
    CU_ASSERT_FATAL(ei_decode_binary(b, idx, pkt, &plen) == 0);
    CU_ASSERT_FATAL(plen >= 3 && len == plen + 4);
    CU_ASSERT_FATAL((unsigned char)pkt[0] == who);
    seq = ((unsigned)(unsigned char)pkt[1] << 8) | (unsigned char)pkt[2];
    for (i = 3; i < plen; i++)
        if ((unsigned char)pkt[i] != (unsigned char)(i * 7 + seq + who))
            break;
    CU_ASSERT(i == plen);
    CU_ASSERT_FATAL(ewp_tdv_got[who].nseen < MAX_SEEN);
    ewp_tdv_got[who].seen[ewp_tdv_got[who].nseen++] = seq;
}

/* Every frame written so far, decoded into ewp_tdv_got[]: see test_deliver.h */
void
ewp_tdv_read_back_ac(struct ewp_ac_in *ac)
{
    static char in[IN_MAX];
    size_t have = ewp_stack_read(in, sizeof(in));

    CU_ASSERT_FATAL(have < sizeof(in));
    ewp_tdv_parse(ac, in, have);
}

void
ewp_tdv_parse(struct ewp_ac_in *ac, const char *in, size_t have)
{
    size_t pos = 0;
    struct ewp_ac_buf plain = {NULL, 0, 0};

    while (pos + 4 <= have) {
        uint32_t len = ewp_get_be32(in + pos);
        const char *b = in + pos + 4;
        char atom[MAXATOMLEN];
        erlang_ref ref;
        int idx = 1, ver, arity, n, i, nil;
        long op, dlt;
        size_t who;

        CU_ASSERT_FATAL(pos + 4 + len <= have);
        pos += 4 + len;
        if (len == 0)
            continue;
        if (ac != NULL) {
            CU_ASSERT_FATAL(ewp_ac_in_frame(ac, b, len, ewp_ac_in_max(len, IN_MAX), &plain) == 0);
            b = plain.b;
            len = (uint32_t)plain.len;
        }
        CU_ASSERT_FATAL(b[0] == 'p');
        CU_ASSERT_FATAL(ei_decode_version(b, &idx, &ver) == 0 &&
                        ei_decode_tuple_header(b, &idx, &arity) == 0 &&
                        ei_decode_long(b, &idx, &op) == 0);
        if (op != 2) /* SEND: a packet message or a reply; else LINK */
            continue;
        CU_ASSERT_FATAL(ei_skip_term(b, &idx) == 0 && ei_skip_term(b, &idx) == 0 &&
                        ei_decode_version(b, &idx, &ver) == 0 &&
                        ei_decode_tuple_header(b, &idx, &arity) == 0);
        if (ei_decode_atom(b, &idx, atom) != 0 ||
            (strcmp(atom, "ewpcap") != 0 && strcmp(atom, "ewpcap_batch") != 0))
            continue; /* a reply */
        CU_ASSERT_FATAL(ei_decode_ref(b, &idx, &ref) == 0 &&
                        ei_decode_long(b, &idx, &dlt) == 0);
        for (who = 0; who < ewp_tdv_ngot; who++)
            if (ei_cmp_refs(&ref, (erlang_ref *)&ewp_tdv_got[who].h->ref) == 0)
                break;
        CU_ASSERT_FATAL(who < ewp_tdv_ngot);
        ewp_tdv_got[who].messages++;
        if (strcmp(atom, "ewpcap") == 0) {
            check_packet(b, &idx, who);
            n = 1;
        } else {
            CU_ASSERT_FATAL(ei_decode_list_header(b, &idx, &n) == 0 && n > 0);
            for (i = 0; i < n; i++) {
                CU_ASSERT_FATAL(ei_decode_tuple_header(b, &idx, &arity) == 0 && arity == 3);
                check_packet(b, &idx, who);
            }
            CU_ASSERT_FATAL(ei_decode_list_header(b, &idx, &nil) == 0 && nil == 0);
        }
        CU_ASSERT_FATAL((size_t)idx == len); /* nothing after the message */
        if ((size_t)n > ewp_tdv_got[who].largest)
            ewp_tdv_got[who].largest = (size_t)n;
    }
    CU_ASSERT(pos == have);
    ewp_ac_buf_free(&plain);
}

void
ewp_tdv_read_back(void)
{
    ewp_tdv_read_back_ac(NULL);
}

/* ewp_tdv_got[who] holds the sequence numbers 0..n-1, in order */
void
ewp_tdv_assert_all(size_t who, unsigned n)
{
    unsigned i;

    CU_ASSERT_EQUAL(ewp_tdv_got[who].nseen, n);
    for (i = 0; i < ewp_tdv_got[who].nseen && i < n; i++)
        CU_ASSERT_EQUAL(ewp_tdv_got[who].seen[i], i);
}

void
ewp_tdv_start(size_t out_max)
{
    ewp_tdv_ngot = 0;
    ewp_stack_setup(out_max, 0);
}

/* A stack whose node may queue out_max bytes, and one handle of batch
 * given n packets, of size + i * step bytes (not flushed) */
struct ewp_handle *
ewp_tdv_fed(size_t out_max, int batch, unsigned n, size_t size, size_t step)
{
    struct ewp_handle *h;
    unsigned i;

    ewp_tdv_start(out_max);
    h = ewp_tdv_open(batch);
    for (i = 0; i < n; i++)
        ewp_tdv_feed(h, 0, i, size + i * step);
    return h;
}
