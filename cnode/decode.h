/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * External term format -> struct ewp_request. Pure: no I/O, no allocation.
 * Every pointer in a decoded request points into the caller's buffer.
 */
#ifndef EWP_DECODE_H
#define EWP_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include <ei.h>

#define EWP_DEV_MAX 255          /* longest device name accepted */
#define EWP_PATH_MAX 4095        /* longest file path accepted */
#define EWP_TERM_DEPTH_MAX 64    /* deepest nesting ewp_decode_check accepts */
#define EWP_FILTER_LIMIT 8192    /* default {limit, N} */
#define EWP_BATCH_MAX 65536      /* largest {batch, N} */

/* Status codes of ewp_decode_request */
#define EWP_DECODE_OK 0
#define EWP_DECODE_BADARG (-1)   /* known request, malformed */
#define EWP_DECODE_UNKNOWN (-2)   /* no such request */

enum ewp_req_type {
    EWP_REQ_OPEN,       /* {open, Dev, Opts} | {open, Dev, Opts, Owner} */
    EWP_REQ_CLOSE,      /* {close, Ref} */
    EWP_REQ_FILTER,     /* {filter, Ref, Filter, Opts} */
    EWP_REQ_WRITE,      /* {write, Ref, Packet} */
    EWP_REQ_STATS,      /* {stats, Ref} */
    EWP_REQ_DEV,        /* dev */
    EWP_REQ_GETIFADDRS, /* getifaddrs */
    EWP_REQ_INFO,       /* info */
    EWP_REQ_OPEN_FILE   /* {open_file, Path, Opts} */
};

enum ewp_time_unit {
    EWP_TIME_TIMESTAMP = 0,   /* {MegaSecs, Secs, MicroSecs} */
    EWP_TIME_MICROSECOND = 1, /* Secs * 1000000 + MicroSecs */
    EWP_TIME_NANOSECOND = 2   /* Secs * 1000000000 + NanoSecs */
};

enum ewp_tstamp_precision {
    EWP_TSTAMP_MICRO = 0, /* pcap's default: ts.tv_usec in microseconds */
    EWP_TSTAMP_NANO = 1   /* pcap_set_tstamp_precision: ts.tv_usec in nanoseconds */
};

struct ewp_opts {
    int snaplen;              /* pcap_set_snaplen */
    int promisc;              /* pcap_set_promisc */
    int immediate;            /* pcap_set_immediate_mode */
    int timeout_ms;           /* pcap_set_timeout, when not immediate */
    int timing_given;         /* {timeout, _}, {to_ms, _} or {immediate, _} given */
    int buffer;               /* pcap_set_buffer_size when > 0 */
    int monitor;              /* pcap_set_rfmon when possible */
    enum ewp_time_unit time_unit; /* format of Time in packet messages */
    enum ewp_tstamp_precision precision; /* {tstamp_precision, micro | nano} */
    int has_filter;           /* a {filter, F} was given */
    const char *filter;       /* filter text, not NUL-terminated */
    size_t filter_len;        /* its length in bytes */
    int optimize;             /* pcap_compile optimize flag */
    uint32_t netmask;         /* pcap_compile netmask */
    long limit;               /* filter length limit, < 0: none */
    int batch;                /* packets per message, 1: {ewpcap, ...} each */
    const char *dump;         /* {dump, Path}: record to this savefile */
    size_t dump_len;          /* its length, 0: no dump */
    int share;                /* {share, B}: may join a shared capture (1) */
    int has_relay;            /* {relay, Pid}: the packets go to Pid */
    erlang_pid relay;         /* ... that pid (the library's guard) */
};

struct ewp_request {
    enum ewp_req_type type;   /* which request */
    const char *dev;          /* open: device name (open_file: path), not NUL-terminated */
    size_t dev_len;           /* open: its length, 0 = default device */
    int has_owner;            /* open: an Owner pid was given */
    erlang_pid owner;         /* open: that pid */
    erlang_ref ref;           /* handle of close/filter/write/stats */
    const char *data;         /* filter text or packet bytes */
    size_t data_len;          /* their length */
    struct ewp_opts opts;     /* open and filter options */
    int monitor_owner;        /* open: monitor the owner instead of linking
                                 (set by the caller, not decoded: rpc opens) */
};

int ewp_decode_check(const char *buf, size_t len, int *index);
int ewp_decode_check_call(const char *buf, size_t len, int index);
int ewp_decode_known(const char *atom);
int ewp_decode_call(const char *buf, int *index, erlang_pid *from,
                    int *tag_index, int *tag_len);
int ewp_decode_request(const char *buf, int *index, struct ewp_request *req);
void ewp_decode_opts_default(struct ewp_opts *o);
int ewp_filter_within_limit(size_t len, long limit);

#endif /* EWP_DECODE_H */
