/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Replies, packet messages and distribution controls -> bytes. Pure: no I/O.
 * Every function that builds a whole frame body starts it with the
 * pass-through byte 'p'; the 4-byte length in front is dist.c's business.
 */
#ifndef EWP_ENCODE_H
#define EWP_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include <ei.h>
#include <pcap/pcap.h>

#include "decode.h"

#define EWP_PASS_THROUGH 112 /* 'p' */
#define EWP_VERSION_MAGIC 131 /* external term format version byte */
#define EWP_TAIL_MAX 64      /* room ewp_encode_packet_tail may use */

/* Distribution control message types (ERTS distribution protocol) */
enum ewp_dop {
    EWP_DOP_LINK = 1,
    EWP_DOP_SEND = 2,
    EWP_DOP_EXIT = 3,
    EWP_DOP_UNLINK = 4,
    EWP_DOP_REG_SEND = 6,
    EWP_DOP_EXIT2 = 8,
    EWP_DOP_SEND_TT = 12,
    EWP_DOP_EXIT_TT = 13,
    EWP_DOP_REG_SEND_TT = 16,
    EWP_DOP_EXIT2_TT = 18,
    EWP_DOP_MONITOR_P = 19,
    EWP_DOP_DEMONITOR_P = 20,
    EWP_DOP_MONITOR_P_EXIT = 21,
    EWP_DOP_SPAWN_REQUEST = 29,
    EWP_DOP_SPAWN_REQUEST_TT = 30,
    EWP_DOP_SPAWN_REPLY = 31,
    EWP_DOP_UNLINK_ID = 35,
    EWP_DOP_UNLINK_ID_ACK = 36
};

#define EWP_SPAWN_FLAG_MONITOR 2 /* SPAWN_REPLY: a monitor was set up */

int ewp_encode_send_header(ei_x_buff *x, const erlang_pid *to);
int ewp_encode_reply_begin(ei_x_buff *x, const erlang_pid *to, const char *tag,
                           int tag_len);
int ewp_encode_packet_prefix(ei_x_buff *x, const erlang_pid *to,
                             const erlang_ref *ref, int dlt);
int ewp_encode_batch_prefix(ei_x_buff *x, const erlang_pid *to,
                            const erlang_ref *ref, int dlt);
size_t ewp_encode_packet_tail(char *out, enum ewp_time_unit unit, long sec,
                              long frac, uint32_t len, uint32_t caplen);
int ewp_encode_time(char *buf, int *index, enum ewp_time_unit unit, long sec,
                    long frac);
int ewp_encode_control(ei_x_buff *x, enum ewp_dop op, const erlang_pid *from,
                       const erlang_pid *to);
int ewp_encode_unlink_id(ei_x_buff *x, enum ewp_dop op, const char *id, int id_len,
                         const erlang_pid *from, const erlang_pid *to);
int ewp_encode_monitor(ei_x_buff *x, enum ewp_dop op, const erlang_pid *from,
                       const erlang_pid *to, const erlang_ref *ref);
int ewp_encode_monitor_exit(ei_x_buff *x, const erlang_pid *from, const char *to,
                            int to_len, const char *ref, int ref_len,
                            const char *reason, int reason_len);
int ewp_encode_monitor_exit_to(ei_x_buff *x, const char *from, int from_len,
                               const erlang_pid *to, const char *ref, int ref_len,
                               const char *reason, int reason_len);
int ewp_encode_spawn_reply(ei_x_buff *x, const char *reqid, int reqid_len,
                           const erlang_pid *to, int flags, const erlang_pid *pid,
                           const char *error);
int ewp_encode_exit(ei_x_buff *x, const erlang_pid *from, const erlang_pid *to,
                    const char *reason);
int ewp_encode_error_atom(ei_x_buff *x, const char *reason);
int ewp_encode_error_string(ei_x_buff *x, const char *reason);
int ewp_encode_ok_string(ei_x_buff *x, const char *s);
int ewp_encode_ok_ref(ei_x_buff *x, const erlang_ref *ref);
int ewp_encode_stats(ei_x_buff *x, const struct pcap_stat *ps);
int ewp_encode_ifaddrs(ei_x_buff *x, const pcap_if_t *devs);
int ewp_encode_message_eof(ei_x_buff *x, const erlang_pid *to, const erlang_ref *ref);
int ewp_encode_message_closed(ei_x_buff *x, const erlang_pid *to, const erlang_ref *ref);
int ewp_encode_message_error(ei_x_buff *x, const erlang_pid *to,
                             const erlang_ref *ref, const char *reason);

#endif /* EWP_ENCODE_H */
