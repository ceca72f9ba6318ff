/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/encode.c on packets: messages are assembled as
 * deliver.c does (prefix, tail, bytes in one buffer, a batch's list around
 * tails) and decoded field by field with ei_decode_*; Time in each unit,
 * and the largest tail within EWP_TAIL_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <pcap/pcap.h>

#include "encode.h"
#include "test_encode.h"

static void
decode_time(const char *buf, int *i, enum ewp_time_unit unit, long sec, long usec)
{
    if (unit == EWP_TIME_MICROSECOND) {
        long long us;

        CU_ASSERT(ei_decode_longlong(buf, i, &us) == 0);
        CU_ASSERT(us == (long long)sec * 1000000 + usec);
    } else {
        long mega, s, u;
        int arity;

        CU_ASSERT(ei_decode_tuple_header(buf, i, &arity) == 0 && arity == 3);
        CU_ASSERT(ei_decode_long(buf, i, &mega) == 0 && mega == sec / 1000000);
        CU_ASSERT(ei_decode_long(buf, i, &s) == 0 && s == sec % 1000000);
        CU_ASSERT(ei_decode_long(buf, i, &u) == 0 && u == usec);
    }
}

/* packet_cb's frame: prefix, tail and caplen bytes; decoded back. */
static void
packet_round_trip(enum ewp_time_unit unit, long sec, long usec, uint32_t wire_len,
                  uint32_t caplen, int dlt)
{
    erlang_pid to = mkpid("owner@host", 12);
    erlang_ref ref = mkref(99), gref;
    ei_x_buff px;
    unsigned char *bytes, *got;
    char *frame;
    char atom[MAXATOMLEN];
    size_t n, tail;
    unsigned long ul;
    long l, blen;
    int i = 0, arity, type, size;

    bytes = malloc(caplen + 1);
    got = malloc(caplen + 1);
    CU_ASSERT_FATAL(bytes != NULL && got != NULL);
    for (n = 0; n < caplen; n++)
        bytes[n] = (unsigned char)(n * 31 + 7);

    CU_ASSERT_FATAL(ei_x_new(&px) == 0);
    CU_ASSERT(ewp_encode_packet_prefix(&px, &to, &ref, dlt) == 0);
    frame = malloc((size_t)px.index + EWP_TAIL_MAX + caplen);
    CU_ASSERT_FATAL(frame != NULL);
    memcpy(frame, px.buff, (size_t)px.index);
    n = (size_t)px.index;
    tail = ewp_encode_packet_tail(frame + n, unit, sec, usec, wire_len, caplen);
    CU_ASSERT(tail > 5 && tail <= EWP_TAIL_MAX);
    n += tail;
    if (caplen > 0)
        memcpy(frame + n, bytes, caplen);
    n += caplen;

    /* {ewpcap, Ref, DLT, Time, Length, Packet} */
    ewp_te_expect_send_header(frame, &i, &to);
    CU_ASSERT(ei_decode_tuple_header(frame, &i, &arity) == 0 && arity == 6);
    CU_ASSERT(ei_decode_atom(frame, &i, atom) == 0 && strcmp(atom, "ewpcap") == 0);
    CU_ASSERT(ei_decode_ref(frame, &i, &gref) == 0 && ei_cmp_refs(&gref, &ref) == 0);
    CU_ASSERT(ei_decode_long(frame, &i, &l) == 0 && l == dlt);
    CU_ASSERT(i == px.index);
    decode_time(frame, &i, unit, sec, usec);
    CU_ASSERT(ei_decode_ulong(frame, &i, &ul) == 0 && ul == wire_len);
    CU_ASSERT(ei_get_type(frame, &i, &type, &size) == 0 && type == ERL_BINARY_EXT &&
              (uint32_t)size == caplen);
    CU_ASSERT(ei_decode_binary(frame, &i, got, &blen) == 0 && (uint32_t)blen == caplen);
    CU_ASSERT(caplen == 0 || memcmp(got, bytes, caplen) == 0);
    CU_ASSERT((size_t)i == n);

    free(frame);
    free(bytes);
    free(got);
    ei_x_free(&px);
}

static void
test_packet_message_with_timestamp_decodes_to_its_fields(void)
{
    packet_round_trip(EWP_TIME_TIMESTAMP, 1795725610L, 972694L, 60, 60, DLT_EN10MB);
    packet_round_trip(EWP_TIME_TIMESTAMP, 0, 0, 1, 1, DLT_RAW);
    packet_round_trip(EWP_TIME_TIMESTAMP, 999999L, 999999L, 1514, 96, DLT_LINUX_SLL);
}

static void
test_packet_message_with_microseconds_decodes_to_its_fields(void)
{
    packet_round_trip(EWP_TIME_MICROSECOND, 1795725610L, 972694L, 60, 60, DLT_EN10MB);
    packet_round_trip(EWP_TIME_MICROSECOND, 0, 1, 100, 100, 0);
}

static void
test_packet_message_of_zero_and_65535_bytes(void)
{
    packet_round_trip(EWP_TIME_TIMESTAMP, 1795725610L, 972694L, 0, 0, DLT_EN10MB);
    packet_round_trip(EWP_TIME_MICROSECOND, 1795725610L, 972694L, 1500, 0, DLT_EN10MB);
    packet_round_trip(EWP_TIME_TIMESTAMP, 1795725610L, 972694L, 65535, 65535, DLT_EN10MB);
    packet_round_trip(EWP_TIME_MICROSECOND, 1795725610L, 972694L, 65535, 65535, DLT_EN10MB);
    /* a wire length beyond 31 bits */
    packet_round_trip(EWP_TIME_TIMESTAMP, 1795725610L, 972694L, 0xffffffffU, 10, DLT_EN10MB);
}

static void
test_time_is_mega_sec_micro_or_microseconds(void)
{
    char buf[64];
    long mega, sec, usec;
    long long us;
    int i = 0, arity, measured = 0;

    CU_ASSERT(ewp_encode_time(NULL, &measured, EWP_TIME_TIMESTAMP, 1795725610L, 972694L) == 0);
    CU_ASSERT(ewp_encode_time(buf, &i, EWP_TIME_TIMESTAMP, 1795725610L, 972694L) == 0);
    CU_ASSERT(i == measured);
    i = 0;
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 3);
    CU_ASSERT(ei_decode_long(buf, &i, &mega) == 0 && mega == 1795);
    CU_ASSERT(ei_decode_long(buf, &i, &sec) == 0 && sec == 725610);
    CU_ASSERT(ei_decode_long(buf, &i, &usec) == 0 && usec == 972694);
    CU_ASSERT(i == measured);

    i = 0;
    measured = 0;
    CU_ASSERT(ewp_encode_time(NULL, &measured, EWP_TIME_MICROSECOND, 1795725610L, 972694L) == 0);
    CU_ASSERT(ewp_encode_time(buf, &i, EWP_TIME_MICROSECOND, 1795725610L, 972694L) == 0);
    CU_ASSERT(i == measured);
    i = 0;
    CU_ASSERT(ei_decode_longlong(buf, &i, &us) == 0 && us == 1795725610972694LL);
    CU_ASSERT(i == measured);

    /* nanoseconds: frac is in nanoseconds */
    i = 0;
    measured = 0;
    CU_ASSERT(ewp_encode_time(NULL, &measured, EWP_TIME_NANOSECOND, 1795725610L, 972694123L) == 0);
    CU_ASSERT(ewp_encode_time(buf, &i, EWP_TIME_NANOSECOND, 1795725610L, 972694123L) == 0);
    CU_ASSERT(i == measured);
    i = 0;
    CU_ASSERT(ei_decode_longlong(buf, &i, &us) == 0 && us == 1795725610972694123LL);
    CU_ASSERT(i == measured);

    /* past 2262 (year 9999): a bignum, 253402300799999999999 */
    i = 0;
    measured = 0;
    CU_ASSERT(ewp_encode_time(NULL, &measured, EWP_TIME_NANOSECOND, 253402300799L, 999999999L) == 0);
    CU_ASSERT(ewp_encode_time(buf, &i, EWP_TIME_NANOSECOND, 253402300799L, 999999999L) == 0);
    CU_ASSERT(i == measured);
    {
        /* 253402300799999999999 = 0x0D_BCA9_D1FE_A2AE_FFFF: SMALL_BIG_EXT, 9
         * digits, positive, little-endian */
        static const unsigned char big[] = {110, 9, 0, 0xff, 0xff, 0xae, 0xa2, 0xfe,
                                            0xd1, 0xa9, 0xbc, 0x0d};
        CU_ASSERT(i == (int)sizeof(big) && memcmp(buf, big, sizeof(big)) == 0);
    }
}

static void
test_packet_tail_fits_in_EWP_TAIL_MAX(void)
{
    char out[EWP_TAIL_MAX + 16];
    size_t n;

    memset(out, 0x5a, sizeof(out));
    /* year 9999, a 4 GiB packet: the largest fields */
    n = ewp_encode_packet_tail(out, EWP_TIME_TIMESTAMP, 253402300799L, 999999L, 0xffffffffU,
                               0xffffffffU);
    CU_ASSERT(n <= EWP_TAIL_MAX);
    n = ewp_encode_packet_tail(out, EWP_TIME_MICROSECOND, 253402300799L, 999999L, 0xffffffffU,
                               0xffffffffU);
    CU_ASSERT(n <= EWP_TAIL_MAX);
    n = ewp_encode_packet_tail(out, EWP_TIME_NANOSECOND, 253402300799L, 999999999L,
                               0xffffffffU, 0xffffffffU);
    CU_ASSERT(n <= EWP_TAIL_MAX);
    CU_ASSERT((unsigned char)out[EWP_TAIL_MAX] == 0x5a);
    /* the binary header closes the tail: 'm', caplen big-endian */
    CU_ASSERT(out[n - 5] == ERL_BINARY_EXT && (unsigned char)out[n - 4] == 0xff &&
              (unsigned char)out[n - 1] == 0xff);
    n = ewp_encode_packet_tail(out, EWP_TIME_TIMESTAMP, 1795725610L, 972694L, 1500, 0x01020304);
    CU_ASSERT(out[n - 5] == ERL_BINARY_EXT && out[n - 4] == 1 && out[n - 3] == 2 &&
              out[n - 2] == 3 && out[n - 1] == 4);
}

static void
test_batch_message_as_command_builds_it_decodes_to_its_fields(void)
{
    erlang_pid to = mkpid("owner@host", 5);
    erlang_ref ref = mkref(3), gref;
    static const unsigned char p1[] = {1, 2, 3}, p2[] = {4, 5, 6, 7, 8};
    const unsigned char *pk[2] = {p1, p2};
    const uint32_t caplen[2] = {sizeof(p1), sizeof(p2)};
    unsigned char got[16];
    char frame[512];
    char atom[MAXATOMLEN];
    ei_x_buff px;
    size_t n;
    long l, blen;
    unsigned long ul;
    int i = 0, k, arity, count;

    CU_ASSERT_FATAL(ei_x_new(&px) == 0);
    CU_ASSERT(ewp_encode_batch_prefix(&px, &to, &ref, DLT_EN10MB) == 0);
    memcpy(frame, px.buff, (size_t)px.index);
    n = (size_t)px.index;
    frame[n] = ERL_LIST_EXT;
    frame[n + 1] = frame[n + 2] = frame[n + 3] = 0;
    frame[n + 4] = 2;
    n += 5;
    for (k = 0; k < 2; k++) {
        frame[n++] = ERL_SMALL_TUPLE_EXT;
        frame[n++] = 3;
        n += ewp_encode_packet_tail(frame + n, EWP_TIME_MICROSECOND, 1795725610L + k, 972694L,
                                    caplen[k] + 100, caplen[k]);
        memcpy(frame + n, pk[k], caplen[k]);
        n += caplen[k];
    }
    frame[n++] = ERL_NIL_EXT;

    ewp_te_expect_send_header(frame, &i, &to);
    CU_ASSERT(ei_decode_tuple_header(frame, &i, &arity) == 0 && arity == 4);
    CU_ASSERT(ei_decode_atom(frame, &i, atom) == 0 && strcmp(atom, "ewpcap_batch") == 0);
    CU_ASSERT(ei_decode_ref(frame, &i, &gref) == 0 && ei_cmp_refs(&gref, &ref) == 0);
    CU_ASSERT(ei_decode_long(frame, &i, &l) == 0 && l == DLT_EN10MB);
    CU_ASSERT(ei_decode_list_header(frame, &i, &count) == 0 && count == 2);
    for (k = 0; k < 2; k++) {
        CU_ASSERT(ei_decode_tuple_header(frame, &i, &arity) == 0 && arity == 3);
        decode_time(frame, &i, EWP_TIME_MICROSECOND, 1795725610L + k, 972694L);
        CU_ASSERT(ei_decode_ulong(frame, &i, &ul) == 0 && ul == caplen[k] + 100);
        CU_ASSERT(ei_decode_binary(frame, &i, got, &blen) == 0 && (uint32_t)blen == caplen[k] &&
                  memcmp(got, pk[k], caplen[k]) == 0);
    }
    CU_ASSERT(ei_decode_list_header(frame, &i, &count) == 0 && count == 0);
    CU_ASSERT((size_t)i == n);
    ei_x_free(&px);
}

CU_TestInfo ewp_encode_packet_tests[] = {
    {"a packet message with a timestamp decodes to its fields",
     test_packet_message_with_timestamp_decodes_to_its_fields},
    {"a packet message with microseconds decodes to its fields",
     test_packet_message_with_microseconds_decodes_to_its_fields},
    {"packet messages of 0 and 65535 bytes decode", test_packet_message_of_zero_and_65535_bytes},
    {"Time is {Mega, Sec, Micro}, microseconds or nanoseconds", test_time_is_mega_sec_micro_or_microseconds},
    {"a packet tail fits in EWP_TAIL_MAX", test_packet_tail_fits_in_EWP_TAIL_MAX},
    {"a batch message built as deliver.c does decodes to its fields",
     test_batch_message_as_command_builds_it_decodes_to_its_fields},
    CU_TEST_INFO_NULL,
};
