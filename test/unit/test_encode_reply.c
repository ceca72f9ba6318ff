/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/encode.c on every frame but packets: replies (the
 * tag echoed, the bodies), the messages to a handle's owner, the
 * distribution controls and getifaddrs' reply, each compared byte for byte
 * with the documented term built independently with ei_x_encode_*
 * (ewp_t_build).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <CUnit/CUnit.h>
#include <ei.h>
#include <pcap/pcap.h>

#include "encode.h"
#include "test_encode.h"

/* term.c */
int ewp_t_build(ei_x_buff *x, const char *fmt, ...);
int ewp_t_vbuild(ei_x_buff *x, const char *fmt, va_list ap);

#define CHECK_CASE(cond, what) \
    CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, __LINE__, (what), __FILE__, "", CU_FALSE)

/* buf[i..len) is exactly the term fmt */
static void
vexpect_rest(const char *buf, int i, int len, const char *fmt, va_list ap)
{
    char what[400];
    ei_x_buff want;
    int ok;

    CU_ASSERT_FATAL(ei_x_new(&want) == 0);
    ok = ewp_t_vbuild(&want, fmt, ap) == 0;
    (void)snprintf(what, sizeof(what), "expected term %s is built", fmt);
    CHECK_CASE(ok, what);
    (void)snprintf(what, sizeof(what), "frame body is %s (%d bytes, expected %d)", fmt, len - i,
                   want.index);
    CHECK_CASE(ok && len - i == want.index && memcmp(buf + i, want.buff, (size_t)want.index) == 0,
               what);
    ei_x_free(&want);
}

/* x is 'p', 131, Control and Control is fmt */
static void
expect_control(const ei_x_buff *x, const char *fmt, ...)
{
    va_list ap;

    CU_ASSERT(x->index > 2 && x->buff[0] == (char)EWP_PASS_THROUGH &&
              (unsigned char)x->buff[1] == EWP_VERSION_MAGIC);
    va_start(ap, fmt);
    vexpect_rest(x->buff, 2, x->index, fmt, ap);
    va_end(ap);
}

/* x is a SEND to `to` of the message fmt */
static void
expect_message(const ei_x_buff *x, const erlang_pid *to, const char *fmt, ...)
{
    va_list ap;
    int i = 0;

    ewp_te_expect_send_header(x->buff, &i, to);
    va_start(ap, fmt);
    vexpect_rest(x->buff, i, x->index, fmt, ap);
    va_end(ap);
}

/* x holds exactly the term fmt (a reply body without header) */
static void
expect_term(const ei_x_buff *x, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vexpect_rest(x->buff, 0, x->index, fmt, ap);
    va_end(ap);
}

/* ---- replies ---- */

static void
reply_with_tag(const char *tag_fmt)
{
    erlang_pid to = mkpid("client@host", 3);
    erlang_ref ref = mkref(11);
    ei_x_buff tag, x;
    char what[200];

    CU_ASSERT_FATAL(ei_x_new(&tag) == 0);
    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ewp_t_build(&tag, tag_fmt, &ref) == 0);
    CU_ASSERT(ewp_encode_reply_begin(&x, &to, tag.buff, tag.index) == 0);
    CU_ASSERT(ei_x_encode_atom(&x, "ok") == 0);
    (void)snprintf(what, sizeof(what), "{%s, ok}", tag_fmt);
    expect_message(&x, &to, what, &ref);
    ei_x_free(&x);
    ei_x_free(&tag);
}

static void
test_reply_begin_echoes_the_tag_bytes_verbatim(void)
{
    reply_with_tag("~r");
    reply_with_tag("[alias | ~r]");
    reply_with_tag("{weird, \"tag\", [1, 2]}");
    reply_with_tag("<<\"binary tag\">>");
    reply_with_tag("[]");
}

static void
test_reply_bodies_have_the_documented_shapes(void)
{
    erlang_ref ref = mkref(17);
    struct pcap_stat ps;
    ei_x_buff x;

    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ewp_encode_error_atom(&x, "ebadf") == 0);
    expect_term(&x, "{error, ebadf}");
    x.index = 0;
    CU_ASSERT(ewp_encode_error_atom(&x, "unknown_request") == 0);
    expect_term(&x, "{error, unknown_request}");
    x.index = 0;
    CU_ASSERT(ewp_encode_error_string(&x, "eth9: No such device exists") == 0);
    expect_term(&x, "{error, \"eth9: No such device exists\"}");
    x.index = 0;
    CU_ASSERT(ewp_encode_error_string(&x, "") == 0);
    expect_term(&x, "{error, []}");
    x.index = 0;
    CU_ASSERT(ewp_encode_ok_string(&x, "eth0") == 0);
    expect_term(&x, "{ok, \"eth0\"}");
    x.index = 0;
    CU_ASSERT(ewp_encode_ok_ref(&x, &ref) == 0);
    expect_term(&x, "{ok, ~r}", &ref);

    x.index = 0;
    memset(&ps, 0, sizeof(ps));
    ps.ps_recv = 10;
    ps.ps_drop = 2;
    ps.ps_ifdrop = 1;
    CU_ASSERT(ewp_encode_stats(&x, &ps) == 0);
    expect_term(&x, "{ok, {ewpcap_stat, 10, 2, 1, 0}}");
    x.index = 0;
    ps.ps_recv = 0xffffffffU;
    ps.ps_drop = 0x80000000U;
    ps.ps_ifdrop = 0;
    CU_ASSERT(ewp_encode_stats(&x, &ps) == 0);
    expect_term(&x, "{ok, {ewpcap_stat, 4294967295, 2147483648, 0, 0}}");
    ei_x_free(&x);
}

static void
test_message_error_and_eof_are_sent_to_the_owner(void)
{
    erlang_pid to = mkpid("owner@host", 8);
    erlang_ref ref = mkref(21);
    ei_x_buff x;

    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ewp_encode_message_error(&x, &to, &ref, "The interface went down") == 0);
    expect_message(&x, &to, "{ewpcap_error, ~r, \"The interface went down\"}", &ref);
    x.index = 0;
    CU_ASSERT(ewp_encode_message_eof(&x, &to, &ref) == 0);
    expect_message(&x, &to, "{ewpcap_eof, ~r}", &ref);
    x.index = 0;
    CU_ASSERT(ewp_encode_message_closed(&x, &to, &ref) == 0);
    expect_message(&x, &to, "{ewpcap_closed, ~r}", &ref);
    x.index = 0;
    CU_ASSERT(ewp_encode_send_header(&x, &to) == 0);
    CU_ASSERT(ei_x_encode_atom(&x, "hello") == 0);
    expect_message(&x, &to, "hello");
    ei_x_free(&x);
}

/* ---- controls ---- */

static void
test_controls_have_the_documented_shapes(void)
{
    erlang_pid from = mkpid("ewpcapd@host", 1), to = mkpid("client@host", 2);
    erlang_ref ref = mkref(5);
    ei_x_buff x, id, raw_ref, reason;

    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT_FATAL(ei_x_new(&id) == 0);
    CU_ASSERT_FATAL(ei_x_new(&raw_ref) == 0);
    CU_ASSERT_FATAL(ei_x_new(&reason) == 0);

    CU_ASSERT(ewp_encode_control(&x, EWP_DOP_LINK, &from, &to) == 0);
    expect_control(&x, "{1, ~p, ~p}", &from, &to);
    x.index = 0;
    CU_ASSERT(ewp_encode_control(&x, EWP_DOP_UNLINK, &from, &to) == 0);
    expect_control(&x, "{4, ~p, ~p}", &from, &to);

    x.index = 0;
    CU_ASSERT(ei_x_encode_ulonglong(&id, 123456789012ULL) == 0);
    CU_ASSERT(ewp_encode_unlink_id(&x, EWP_DOP_UNLINK_ID, id.buff, id.index, &from, &to) == 0);
    expect_control(&x, "{35, 123456789012, ~p, ~p}", &from, &to);
    x.index = 0;
    CU_ASSERT(ewp_encode_unlink_id(&x, EWP_DOP_UNLINK_ID_ACK, id.buff, id.index, &to, &from) ==
              0);
    expect_control(&x, "{36, 123456789012, ~p, ~p}", &to, &from);

    x.index = 0;
    CU_ASSERT(ewp_encode_exit(&x, &from, &to, "noproc") == 0);
    expect_control(&x, "{3, ~p, ~p, noproc}", &from, &to);
    x.index = 0;
    CU_ASSERT(ewp_encode_exit(&x, &from, &to, "normal") == 0);
    expect_control(&x, "{3, ~p, ~p, normal}", &from, &to);

    x.index = 0;
    CU_ASSERT(ewp_encode_monitor(&x, EWP_DOP_MONITOR_P, &from, &to, &ref) == 0);
    expect_control(&x, "{19, ~p, ~p, ~r}", &from, &to, &ref);
    x.index = 0;
    CU_ASSERT(ewp_encode_monitor(&x, EWP_DOP_DEMONITOR_P, &from, &to, &ref) == 0);
    expect_control(&x, "{20, ~p, ~p, ~r}", &from, &to, &ref);

    x.index = 0;
    CU_ASSERT(ei_x_encode_ref(&raw_ref, &ref) == 0);
    CU_ASSERT(ei_x_encode_atom(&reason, "noconnection") == 0);
    CU_ASSERT(ewp_encode_monitor_exit(&x, &from, "\x77\x04rex!", 6, raw_ref.buff, raw_ref.index,
                                      reason.buff, reason.index) == 0);
    expect_control(&x, "{21, ~p, 'rex!', ~r, noconnection}", &from, &ref);
    x.index = 0;
    CU_ASSERT(ewp_encode_monitor_exit_to(&x, "\x77\x06" "ewpcap", 8, &to, raw_ref.buff,
                                         raw_ref.index, reason.buff, reason.index) == 0);
    expect_control(&x, "{21, ewpcap, ~p, ~r, noconnection}", &to, &ref);

    x.index = 0;
    CU_ASSERT(ewp_encode_spawn_reply(&x, raw_ref.buff, raw_ref.index, &to,
                                     EWP_SPAWN_FLAG_MONITOR, &from, NULL) == 0);
    expect_control(&x, "{31, ~r, ~p, 2, ~p}", &ref, &to, &from);
    x.index = 0;
    CU_ASSERT(ewp_encode_spawn_reply(&x, raw_ref.buff, raw_ref.index, &to, 0, NULL, "badarg") ==
              0);
    expect_control(&x, "{31, ~r, ~p, 0, badarg}", &ref, &to);

    ei_x_free(&x);
    ei_x_free(&id);
    ei_x_free(&raw_ref);
    ei_x_free(&reason);
}

/* ---- getifaddrs ---- */

static struct sockaddr_in
in4(const char *a)
{
    struct sockaddr_in s;

    memset(&s, 0, sizeof(s));
    s.sin_family = AF_INET;
    (void)inet_pton(AF_INET, a, &s.sin_addr);
    return s;
}

static struct sockaddr_in6
in6(const char *a)
{
    struct sockaddr_in6 s;

    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    (void)inet_pton(AF_INET6, a, &s.sin6_addr);
    return s;
}

#define SA(s) ((struct sockaddr *)(void *)&(s))

static void
test_ifaddrs_gives_name_and_attributes_in_order(void)
{
    struct sockaddr_in e_addr = in4("192.168.1.10"), e_mask = in4("255.255.255.0"),
                       e_bcast = in4("192.168.1.255"), lo_addr = in4("127.0.0.1"),
                       lo_mask = in4("255.0.0.0"), p_addr = in4("10.8.0.2"),
                       p_dst = in4("10.8.0.1");
    struct sockaddr_in6 e6_addr = in6("fe80::1"), e6_mask = in6("ffff:ffff:ffff:ffff::"),
                        lo6 = in6("::1");
    struct sockaddr_storage packet;
    pcap_addr_t a_packet, a_e4, a_e6, a_lo4, a_lo6, a_p, a_odd, a_null;
    pcap_if_t eth0, lo, any, ptp, odd;
    char n_eth0[] = "eth0", n_lo[] = "lo", n_any[] = "any", n_ptp[] = "tun0", n_odd[] = "odd";
    char d_eth0[] = "Ethernet adapter", d_any[] = "";
    ei_x_buff x;

    memset(&packet, 0, sizeof(packet));
    packet.ss_family = AF_PACKET;

    memset(&a_packet, 0, sizeof(a_packet));
    a_packet.addr = SA(packet); /* skipped */
    a_packet.netmask = SA(e_mask);
    a_packet.next = &a_e4;
    memset(&a_e4, 0, sizeof(a_e4));
    a_e4.addr = SA(e_addr);
    a_e4.netmask = SA(e_mask);
    a_e4.broadaddr = SA(e_bcast);
    a_e4.next = &a_e6;
    memset(&a_e6, 0, sizeof(a_e6));
    a_e6.addr = SA(e6_addr);
    a_e6.netmask = SA(e6_mask);
    memset(&eth0, 0, sizeof(eth0));
    eth0.name = n_eth0;
    eth0.description = d_eth0;
    eth0.addresses = &a_packet;
    eth0.flags = PCAP_IF_UP | PCAP_IF_RUNNING;
    eth0.next = &lo;

    memset(&a_lo4, 0, sizeof(a_lo4));
    a_lo4.addr = SA(lo_addr);
    a_lo4.netmask = SA(lo_mask);
    a_lo4.next = &a_lo6;
    memset(&a_lo6, 0, sizeof(a_lo6));
    a_lo6.addr = SA(lo6);
    memset(&lo, 0, sizeof(lo));
    lo.name = n_lo;
    lo.addresses = &a_lo4;
    lo.flags = PCAP_IF_LOOPBACK | PCAP_IF_UP;
    lo.next = &any;

    memset(&any, 0, sizeof(any));
    any.name = n_any;
    any.next = &ptp;
    (void)d_any;

    memset(&a_p, 0, sizeof(a_p));
    a_p.addr = SA(p_addr);
    a_p.dstaddr = SA(p_dst);
    memset(&ptp, 0, sizeof(ptp));
    ptp.name = n_ptp;
    ptp.addresses = &a_p;
    ptp.next = &odd;

    /* an address without addr, and an IPv4 address with an AF_PACKET mask */
    memset(&a_null, 0, sizeof(a_null));
    a_null.netmask = SA(e_mask);
    a_null.next = &a_odd;
    memset(&a_odd, 0, sizeof(a_odd));
    a_odd.addr = SA(p_addr);
    a_odd.netmask = SA(packet);
    memset(&odd, 0, sizeof(odd));
    odd.name = n_odd;
    odd.description = d_any;
    odd.addresses = &a_null;

    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ewp_encode_ifaddrs(&x, &eth0) == 0);
    expect_term(&x,
                "{ok, ["
                "{\"eth0\", [{description, \"Ethernet adapter\"},"
                "            {addr, {192, 168, 1, 10}}, {netmask, {255, 255, 255, 0}},"
                "            {broadaddr, {192, 168, 1, 255}},"
                "            {addr, {65152, 0, 0, 0, 0, 0, 0, 1}},"
                "            {netmask, {65535, 65535, 65535, 65535, 0, 0, 0, 0}}]},"
                "{\"lo\", [{flag, [loopback]}, {addr, {127, 0, 0, 1}}, {netmask, {255, 0, 0, 0}},"
                "          {addr, {0, 0, 0, 0, 0, 0, 0, 1}}]},"
                "{\"any\", []},"
                "{\"tun0\", [{addr, {10, 8, 0, 2}}, {dstaddr, {10, 8, 0, 1}}]},"
                "{\"odd\", [{description, []}, {addr, {10, 8, 0, 2}}]}"
                "]}");

    /* one device alone */
    x.index = 0;
    any.next = NULL;
    CU_ASSERT(ewp_encode_ifaddrs(&x, &any) == 0);
    expect_term(&x, "{ok, [{\"any\", []}]}");
    ei_x_free(&x);
}

static void
test_ifaddrs_of_no_devices_is_ok_and_an_empty_list(void)
{
    ei_x_buff x;

    CU_ASSERT_FATAL(ei_x_new(&x) == 0);
    CU_ASSERT(ewp_encode_ifaddrs(&x, NULL) == 0);
    expect_term(&x, "{ok, []}");
    ei_x_free(&x);
}

CU_TestInfo ewp_encode_reply_tests[] = {
    {"ewp_encode_reply_begin echoes the tag bytes verbatim",
     test_reply_begin_echoes_the_tag_bytes_verbatim},
    {"reply bodies have the documented shapes", test_reply_bodies_have_the_documented_shapes},
    {"ewpcap_error, ewpcap_eof and ewpcap_closed are sent to their pid", test_message_error_and_eof_are_sent_to_the_owner},
    {"controls have the documented shapes", test_controls_have_the_documented_shapes},
    {"getifaddrs gives names and attributes in documented order",
     test_ifaddrs_gives_name_and_attributes_in_order},
    {"getifaddrs of no devices is {ok, []}", test_ifaddrs_of_no_devices_is_ok_and_an_empty_list},
    CU_TEST_INFO_NULL,
};
