/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Encoders for everything ewpcapd sends. No I/O, and nothing on the packet
 * path allocates: a handle's fixed message prefix is built once at open
 * (ewp_encode_packet_prefix) and each packet only adds its tail
 * (ewp_encode_packet_tail) and its bytes, written by the caller straight
 * into the peer's output buffer.
 *
 * Every ei_x_encode_* return is checked; a failure fails the one reply.
 */
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <ei.h>
#include <pcap/pcap.h>

#include "encode.h"

#define TRY(expr)             \
    do {                      \
        if ((expr) < 0)       \
            return -1;        \
    } while (0)

static int encode_pass_through(ei_x_buff *x);
static int encode_sockaddr(ei_x_buff *x, const char *key, const struct sockaddr *sa);
static int count_addr_attrs(const pcap_addr_t *a);
static int is_inet(const struct sockaddr *sa);
static int encode_nanoseconds(char *buf, int *index, __int128 ns);
static int message_of_ref(ei_x_buff *x, const erlang_pid *to, const char *tag,
                          const erlang_ref *ref);

/* 'p', 131, {SEND, '', To}, 131: a message to To follows */
int
ewp_encode_send_header(ei_x_buff *x, const erlang_pid *to)
{
    TRY(encode_pass_through(x));
    TRY(ei_x_encode_version(x));
    TRY(ei_x_encode_tuple_header(x, 3));
    TRY(ei_x_encode_long(x, EWP_DOP_SEND));
    TRY(ei_x_encode_atom(x, ""));
    TRY(ei_x_encode_pid(x, to));
    TRY(ei_x_encode_version(x));
    return 0;
}

/* The reply to a gen_server call: {Tag, ...}; the caller encodes Reply. */
int
ewp_encode_reply_begin(ei_x_buff *x, const erlang_pid *to, const char *tag, int tag_len)
{
    TRY(ewp_encode_send_header(x, to));
    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_append_buf(x, tag, tag_len));
    return 0;
}

/* {ewpcap, Ref, DatalinkType, ...: the part shared by all packets of a handle */
int
ewp_encode_packet_prefix(ei_x_buff *x, const erlang_pid *to, const erlang_ref *ref, int dlt)
{
    TRY(ewp_encode_send_header(x, to));
    TRY(ei_x_encode_tuple_header(x, 6));
    TRY(ei_x_encode_atom(x, "ewpcap"));
    TRY(ei_x_encode_ref(x, ref));
    TRY(ei_x_encode_long(x, dlt));
    return 0;
}

/* {ewpcap_batch, Ref, DatalinkType, ...: the caller adds the list
 * [{Time, Length, Packet}, ...] element by element (see deliver.c). */
int
ewp_encode_batch_prefix(ei_x_buff *x, const erlang_pid *to, const erlang_ref *ref, int dlt)
{
    TRY(ewp_encode_send_header(x, to));
    TRY(ei_x_encode_tuple_header(x, 4));
    TRY(ei_x_encode_atom(x, "ewpcap_batch"));
    TRY(ei_x_encode_ref(x, ref));
    TRY(ei_x_encode_long(x, dlt));
    return 0;
}

/* ... Time, Length, <<Packet header>>: writes at most EWP_TAIL_MAX bytes
 * into out and returns how many; the caller appends caplen packet bytes. */
size_t
ewp_encode_packet_tail(char *out, enum ewp_time_unit unit, long sec, long frac,
                       uint32_t len, uint32_t caplen)
{
    int i = 0;

    (void)ewp_encode_time(out, &i, unit, sec, frac);
    (void)ei_encode_ulong(out, &i, len);
    out[i++] = ERL_BINARY_EXT;
    out[i++] = (char)((caplen >> 24) & 0xff);
    out[i++] = (char)((caplen >> 16) & 0xff);
    out[i++] = (char)((caplen >> 8) & 0xff);
    out[i++] = (char)(caplen & 0xff);
    return (size_t)i;
}

/* {MegaSecs, Secs, MicroSecs}, Secs * 1000000 + MicroSecs or, for
 * EWP_TIME_NANOSECOND (frac in nanoseconds then), Secs * 1000000000 +
 * NanoSecs. buf may be NULL to measure, as with ei_encode_*. */
int
ewp_encode_time(char *buf, int *index, enum ewp_time_unit unit, long sec, long frac)
{
    if (unit == EWP_TIME_NANOSECOND)
        return encode_nanoseconds(buf, index, (__int128)sec * 1000000000 + frac);
    if (unit == EWP_TIME_MICROSECOND)
        return ei_encode_longlong(buf, index, (long long)sec * 1000000LL + frac);
    TRY(ei_encode_tuple_header(buf, index, 3));
    TRY(ei_encode_long(buf, index, sec / 1000000));
    TRY(ei_encode_long(buf, index, sec % 1000000));
    TRY(ei_encode_long(buf, index, frac));
    return 0;
}

/* 'p', 131, {Op, From, To}: LINK and UNLINK */
int
ewp_encode_control(ei_x_buff *x, enum ewp_dop op, const erlang_pid *from, const erlang_pid *to)
{
    TRY(encode_pass_through(x));
    TRY(ei_x_encode_version(x));
    TRY(ei_x_encode_tuple_header(x, 3));
    TRY(ei_x_encode_long(x, op));
    TRY(ei_x_encode_pid(x, from));
    TRY(ei_x_encode_pid(x, to));
    return 0;
}

/* 'p', 131, {UNLINK_ID | UNLINK_ID_ACK, Id, From, To}; Id given as raw term bytes */
int
ewp_encode_unlink_id(ei_x_buff *x, enum ewp_dop op, const char *id, int id_len,
                     const erlang_pid *from, const erlang_pid *to)
{
    TRY(encode_pass_through(x));
    TRY(ei_x_encode_version(x));
    TRY(ei_x_encode_tuple_header(x, 4));
    TRY(ei_x_encode_long(x, op));
    TRY(ei_x_append_buf(x, id, id_len));
    TRY(ei_x_encode_pid(x, from));
    TRY(ei_x_encode_pid(x, to));
    return 0;
}

/* 'p', 131, {MONITOR_P | DEMONITOR_P, From, To, Ref} */
int
ewp_encode_monitor(ei_x_buff *x, enum ewp_dop op, const erlang_pid *from, const erlang_pid *to,
                   const erlang_ref *ref)
{
    TRY(encode_pass_through(x));
    TRY(ei_x_encode_version(x));
    TRY(ei_x_encode_tuple_header(x, 4));
    TRY(ei_x_encode_long(x, op));
    TRY(ei_x_encode_pid(x, from));
    TRY(ei_x_encode_pid(x, to));
    TRY(ei_x_encode_ref(x, ref));
    return 0;
}

/* 'p', 131, {MONITOR_P_EXIT, From, To, Ref, Reason}; To, Ref and Reason as
 * raw term bytes (To may be a pid or a registered name). */
int
ewp_encode_monitor_exit(ei_x_buff *x, const erlang_pid *from, const char *to, int to_len,
                        const char *ref, int ref_len, const char *reason, int reason_len)
{
    TRY(encode_pass_through(x));
    TRY(ei_x_encode_version(x));
    TRY(ei_x_encode_tuple_header(x, 5));
    TRY(ei_x_encode_long(x, EWP_DOP_MONITOR_P_EXIT));
    TRY(ei_x_encode_pid(x, from));
    TRY(ei_x_append_buf(x, to, to_len));
    TRY(ei_x_append_buf(x, ref, ref_len));
    TRY(ei_x_append_buf(x, reason, reason_len));
    return 0;
}

/* The same with From as raw bytes (a registered name) and To a pid */
int
ewp_encode_monitor_exit_to(ei_x_buff *x, const char *from, int from_len, const erlang_pid *to,
                           const char *ref, int ref_len, const char *reason, int reason_len)
{
    TRY(encode_pass_through(x));
    TRY(ei_x_encode_version(x));
    TRY(ei_x_encode_tuple_header(x, 5));
    TRY(ei_x_encode_long(x, EWP_DOP_MONITOR_P_EXIT));
    TRY(ei_x_append_buf(x, from, from_len));
    TRY(ei_x_encode_pid(x, to));
    TRY(ei_x_append_buf(x, ref, ref_len));
    TRY(ei_x_append_buf(x, reason, reason_len));
    return 0;
}

/* 'p', 131, {SPAWN_REPLY, ReqId, To, Flags, Pid | ErrorAtom} */
int
ewp_encode_spawn_reply(ei_x_buff *x, const char *reqid, int reqid_len, const erlang_pid *to,
                       int flags, const erlang_pid *pid, const char *error)
{
    TRY(encode_pass_through(x));
    TRY(ei_x_encode_version(x));
    TRY(ei_x_encode_tuple_header(x, 5));
    TRY(ei_x_encode_long(x, EWP_DOP_SPAWN_REPLY));
    TRY(ei_x_append_buf(x, reqid, reqid_len));
    TRY(ei_x_encode_pid(x, to));
    TRY(ei_x_encode_long(x, flags));
    if (pid != NULL)
        TRY(ei_x_encode_pid(x, pid));
    else
        TRY(ei_x_encode_atom(x, error));
    return 0;
}

/* 'p', 131, {EXIT, From, To, Reason} */
int
ewp_encode_exit(ei_x_buff *x, const erlang_pid *from, const erlang_pid *to, const char *reason)
{
    TRY(encode_pass_through(x));
    TRY(ei_x_encode_version(x));
    TRY(ei_x_encode_tuple_header(x, 4));
    TRY(ei_x_encode_long(x, EWP_DOP_EXIT));
    TRY(ei_x_encode_pid(x, from));
    TRY(ei_x_encode_pid(x, to));
    TRY(ei_x_encode_atom(x, reason));
    return 0;
}

/* {error, Reason :: atom()} */
int
ewp_encode_error_atom(ei_x_buff *x, const char *reason)
{
    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_encode_atom(x, "error"));
    TRY(ei_x_encode_atom(x, reason));
    return 0;
}

/* {error, Reason :: string()} */
int
ewp_encode_error_string(ei_x_buff *x, const char *reason)
{
    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_encode_atom(x, "error"));
    TRY(ei_x_encode_string(x, reason));
    return 0;
}

/* {ok, string()} */
int
ewp_encode_ok_string(ei_x_buff *x, const char *s)
{
    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_encode_atom(x, "ok"));
    TRY(ei_x_encode_string(x, s));
    return 0;
}

/* {ok, Ref} */
int
ewp_encode_ok_ref(ei_x_buff *x, const erlang_ref *ref)
{
    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_encode_atom(x, "ok"));
    TRY(ei_x_encode_ref(x, ref));
    return 0;
}

/* {ok, {ewpcap_stat, Recv, Drop, IfDrop, Capt}}: capt is always 0 */
int
ewp_encode_stats(ei_x_buff *x, const struct pcap_stat *ps)
{
    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_encode_atom(x, "ok"));
    TRY(ei_x_encode_tuple_header(x, 5));
    TRY(ei_x_encode_atom(x, "ewpcap_stat"));
    TRY(ei_x_encode_ulong(x, ps->ps_recv));
    TRY(ei_x_encode_ulong(x, ps->ps_drop));
    TRY(ei_x_encode_ulong(x, ps->ps_ifdrop));
    TRY(ei_x_encode_ulong(x, 0));
    return 0;
}

/* 'p', 131, {SEND, '', To}, 131, {Tag, Ref} */
static int
message_of_ref(ei_x_buff *x, const erlang_pid *to, const char *tag, const erlang_ref *ref)
{
    TRY(ewp_encode_send_header(x, to));
    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_encode_atom(x, tag));
    TRY(ei_x_encode_ref(x, ref));
    return 0;
}

/* {ewpcap_eof, Ref} */
int
ewp_encode_message_eof(ei_x_buff *x, const erlang_pid *to, const erlang_ref *ref)
{
    return message_of_ref(x, to, "ewpcap_eof", ref);
}

/* {ewpcap_closed, Ref} */
int
ewp_encode_message_closed(ei_x_buff *x, const erlang_pid *to, const erlang_ref *ref)
{
    return message_of_ref(x, to, "ewpcap_closed", ref);
}

/* 'p', 131, {SEND, '', To}, 131, {ewpcap_error, Ref, Reason :: string()} */
int
ewp_encode_message_error(ei_x_buff *x, const erlang_pid *to, const erlang_ref *ref,
                         const char *reason)
{
    TRY(ewp_encode_send_header(x, to));
    TRY(ei_x_encode_tuple_header(x, 3));
    TRY(ei_x_encode_atom(x, "ewpcap_error"));
    TRY(ei_x_encode_ref(x, ref));
    TRY(ei_x_encode_string(x, reason));
    return 0;
}

/*
 * {ok, [{Name :: string(), [Attr]}]} in pcap_findalldevs order, where Attr is
 * {description, string()} (when present), {flag, [loopback]} (loopback only),
 * then per IPv4/IPv6 address {addr, A}, {netmask, M}, {broadaddr, B},
 * {dstaddr, D} for those that are set. Other families are skipped.
 */
int
ewp_encode_ifaddrs(ei_x_buff *x, const pcap_if_t *devs)
{
    const pcap_if_t *d;
    const pcap_addr_t *a;
    int ndevs = 0;

    for (d = devs; d != NULL; d = d->next)
        ndevs++;

    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_encode_atom(x, "ok"));
    if (ndevs > 0)
        TRY(ei_x_encode_list_header(x, ndevs));
    for (d = devs; d != NULL; d = d->next) {
        int nattrs = 0;

        if (d->description != NULL)
            nattrs++;
        if (d->flags & PCAP_IF_LOOPBACK)
            nattrs++;
        for (a = d->addresses; a != NULL; a = a->next)
            nattrs += count_addr_attrs(a);

        TRY(ei_x_encode_tuple_header(x, 2));
        TRY(ei_x_encode_string(x, d->name));
        if (nattrs > 0)
            TRY(ei_x_encode_list_header(x, nattrs));
        if (d->description != NULL) {
            TRY(ei_x_encode_tuple_header(x, 2));
            TRY(ei_x_encode_atom(x, "description"));
            TRY(ei_x_encode_string(x, d->description));
        }
        if (d->flags & PCAP_IF_LOOPBACK) {
            TRY(ei_x_encode_tuple_header(x, 2));
            TRY(ei_x_encode_atom(x, "flag"));
            TRY(ei_x_encode_list_header(x, 1));
            TRY(ei_x_encode_atom(x, "loopback"));
            TRY(ei_x_encode_empty_list(x));
        }
        for (a = d->addresses; a != NULL; a = a->next) {
            if (!is_inet(a->addr))
                continue;
            TRY(encode_sockaddr(x, "addr", a->addr));
            TRY(encode_sockaddr(x, "netmask", a->netmask));
            TRY(encode_sockaddr(x, "broadaddr", a->broadaddr));
            TRY(encode_sockaddr(x, "dstaddr", a->dstaddr));
        }
        TRY(ei_x_encode_empty_list(x));
    }
    TRY(ei_x_encode_empty_list(x));
    return 0;
}

static int
encode_pass_through(ei_x_buff *x)
{
    const char p = (char)EWP_PASS_THROUGH;

    return ei_x_append_buf(x, &p, 1);
}

static int
is_inet(const struct sockaddr *sa)
{
    return sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

static int
count_addr_attrs(const pcap_addr_t *a)
{
    if (!is_inet(a->addr))
        return 0;
    return 1 + is_inet(a->netmask) + is_inet(a->broadaddr) + is_inet(a->dstaddr);
}

/* {Key, {A,B,C,D}} or {Key, {A,B,C,D,E,F,G,H}}; nothing for other families */
static int
encode_sockaddr(ei_x_buff *x, const char *key, const struct sockaddr *sa)
{
    int n;

    if (!is_inet(sa))
        return 0;
    TRY(ei_x_encode_tuple_header(x, 2));
    TRY(ei_x_encode_atom(x, key));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        const unsigned char *b = (const unsigned char *)&sin->sin_addr.s_addr;

        TRY(ei_x_encode_tuple_header(x, 4));
        for (n = 0; n < 4; n++)
            TRY(ei_x_encode_long(x, b[n]));
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        const unsigned char *b = sin6->sin6_addr.s6_addr;

        TRY(ei_x_encode_tuple_header(x, 8));
        for (n = 0; n < 8; n++)
            TRY(ei_x_encode_long(x, (b[2 * n] << 8) | b[2 * n + 1]));
    }
    return 0;
}

/* Nanoseconds past 2262 (a pcapng's 64-bit stamps may say so) do not fit
 * a long long: those are a SMALL_BIG_EXT, at most 16 digit bytes. */
static int
encode_nanoseconds(char *buf, int *index, __int128 ns)
{
    unsigned __int128 m;
    int n = 0;

    if (ns >= LLONG_MIN && ns <= LLONG_MAX)
        return ei_encode_longlong(buf, index, (long long)ns);
    m = ns < 0 ? -(unsigned __int128)ns : (unsigned __int128)ns;
    if (buf != NULL) {
        buf[*index] = ERL_SMALL_BIG_EXT;
        buf[*index + 2] = ns < 0 ? 1 : 0;
    }
    for (; m != 0; m >>= 8, n++)
        if (buf != NULL)
            buf[*index + 3 + n] = (char)(m & 0xff);
    if (buf != NULL)
        buf[*index + 1] = (char)n;
    *index += 3 + n;
    return 0;
}
