/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Request decoder. It turns the body of a gen_server call sent to the
 * registered name "ewpcap" into a struct ewp_request; it does no I/O and
 * allocates nothing. docs/PROTOCOL.md is the full description; in short:
 *
 *   Erlang                                            ewpcapd
 *   | ---- {'$gen_call', {From, Tag}, Request} ------> |
 *   | <--- {Tag, Reply} (sent to From) --------------- |
 *
 *   Request = {open, Dev, Opts} | {open, Dev, Opts, Owner} | {close, Ref}
 *           | {filter, Ref, Filter, Opts} | {write, Ref, Packet}
 *           | {stats, Ref} | dev | getifaddrs | info
 *           | {open_file, Path, Opts} | {open_file, Path, Opts, Owner}
 *
 * ei's decoders trust their input and know nothing of the buffer's end, so
 * every frame is first walked by ewp_decode_check (decode_check.c), which
 * does bounds-check each term. Only checked terms reach ei_decode_*.
 *
 * Decoders follow ei's contract: on failure they return -1 (or another
 * negative status) and leave *index unchanged.
 */
#include <limits.h>
#include <string.h>

#include <ei.h>

#include "decode.h"

/* Option bits, to make the first occurrence of an option count, as
 * proplists:get_value/3 did in the original library. */
enum {
    OPT_SNAPLEN = 1 << 0,   /* {snaplen, N} */
    OPT_PROMISC = 1 << 1,   /* {promisc, B} */
    OPT_TIMEOUT = 1 << 2,   /* {timeout, T} or {to_ms, N} */
    OPT_IMMEDIATE = 1 << 3, /* {immediate, B} */
    OPT_BUFFER = 1 << 4,    /* {buffer, N} */
    OPT_MONITOR = 1 << 5,   /* {monitor, B} */
    OPT_TIME_UNIT = 1 << 6, /* {time_unit, U} */
    OPT_FILTER = 1 << 7,    /* {filter, F} */
    OPT_OPTIMIZE = 1 << 8,  /* {optimize, B} */
    OPT_NETMASK = 1 << 9,   /* {netmask, M} */
    OPT_LIMIT = 1 << 10,    /* {limit, N} */
    OPT_BATCH = 1 << 11,    /* {batch, N} */
    OPT_DUMP = 1 << 12,     /* {dump, Path} */
    OPT_PRECISION = 1 << 13, /* {tstamp_precision, P} */
    OPT_SHARE = 1 << 14,     /* {share, B} */
    OPT_RELAY = 1 << 15      /* {relay, Pid}: send the packets there; {relay, B}: ignored */
};

#define OPTS_FILTER (OPT_OPTIMIZE | OPT_NETMASK | OPT_LIMIT)
#define OPTS_OPEN (~0)

static const struct {
    const char *name;
    enum ewp_req_type type;
    int min_arity;
    int max_arity;
} reqs[] = {
    {"open", EWP_REQ_OPEN, 3, 4},
    {"close", EWP_REQ_CLOSE, 2, 2},
    {"filter", EWP_REQ_FILTER, 4, 4},
    {"write", EWP_REQ_WRITE, 3, 3},
    {"stats", EWP_REQ_STATS, 2, 2},
    {"dev", EWP_REQ_DEV, 0, 0},
    {"getifaddrs", EWP_REQ_GETIFADDRS, 0, 0},
    {"info", EWP_REQ_INFO, 0, 0},
    {"open_file", EWP_REQ_OPEN_FILE, 3, 4},
};
#define NREQS (sizeof(reqs) / sizeof(reqs[0]))

static int decode_bytes(const char *buf, int *index, const char **p, size_t *len);
static int decode_int(const char *buf, int *index, long min, long max, long *out);
static int decode_opts(const char *buf, int *index, struct ewp_opts *o, int allowed);
static int decode_opt(const char *buf, int *index, struct ewp_opts *o, int allowed,
                      int *seen, int *immediate_override);

/* Whether a request named atom exists (its shape aside) */
int
ewp_decode_known(const char *atom)
{
    size_t n;

    for (n = 0; n < NREQS; n++)
        if (strcmp(atom, reqs[n].name) == 0)
            return 1;
    return 0;
}

/* {'$gen_call', {From, Tag}, Request}: From into *from, the raw bytes of
 * Tag at buf[*tag_index], *tag_len long; *index left at Request. */
int
ewp_decode_call(const char *buf, int *index, erlang_pid *from, int *tag_index,
                int *tag_len)
{
    char atom[MAXATOMLEN];
    erlang_pid pid;
    int i = *index;
    int arity;
    int tag_start;

    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity != 3)
        return -1;
    if (ei_decode_atom(buf, &i, atom) < 0 || strcmp(atom, "$gen_call") != 0)
        return -1;
    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity != 2)
        return -1;
    if (ei_decode_pid(buf, &i, &pid) < 0)
        return -1;
    tag_start = i;
    if (ei_skip_term(buf, &i) < 0)
        return -1;

    if (from != NULL)
        *from = pid;
    if (tag_index != NULL)
        *tag_index = tag_start;
    if (tag_len != NULL)
        *tag_len = i - tag_start;
    *index = i;
    return 0;
}

/*
 * Returns:
 *  EWP_DECODE_OK      - *req filled in, *index past the request
 *  EWP_DECODE_BADARG  - a known request with wrong arity or argument types
 *  EWP_DECODE_UNKNOWN - not a request at all
 * On failure *req may be partly written and *index is unchanged.
 */
int
ewp_decode_request(const char *buf, int *index, struct ewp_request *req)
{
    char atom[MAXATOMLEN];
    int i = *index;
    int arity = 0;
    int type, size;
    size_t n;

    memset(req, 0, sizeof(*req));
    ewp_decode_opts_default(&req->opts);

    if (ei_get_type(buf, &i, &type, &size) < 0)
        return EWP_DECODE_UNKNOWN;
    if (type == ERL_SMALL_TUPLE_EXT || type == ERL_LARGE_TUPLE_EXT) {
        if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity < 1)
            return EWP_DECODE_UNKNOWN;
    }
    if (ei_decode_atom(buf, &i, atom) < 0)
        return EWP_DECODE_UNKNOWN;

    for (n = 0; n < NREQS; n++)
        if (strcmp(atom, reqs[n].name) == 0)
            break;
    if (n == NREQS)
        return EWP_DECODE_UNKNOWN;
    /* "dev" is an atom; {dev} or {open} are malformed, not unknown */
    if (arity < reqs[n].min_arity || arity > reqs[n].max_arity)
        return EWP_DECODE_BADARG;
    if (arity == 0 && reqs[n].min_arity > 0)
        return EWP_DECODE_BADARG;
    req->type = reqs[n].type;

    switch (req->type) {
    case EWP_REQ_OPEN:
        /* {open, Dev :: binary(), Opts :: list()} | {open, Dev, Opts, Owner :: pid()} */
    case EWP_REQ_OPEN_FILE:
        /* {open_file, Path :: binary() | string(), Opts :: list()[, Owner :: pid()]} */
        if (decode_bytes(buf, &i, &req->dev, &req->dev_len) < 0)
            return EWP_DECODE_BADARG;
        /* a device may be <<>> (the default one); a path may not */
        if (req->type == EWP_REQ_OPEN ? req->dev_len > EWP_DEV_MAX
                                      : req->dev_len == 0 || req->dev_len > EWP_PATH_MAX)
            return EWP_DECODE_BADARG;
        if (memchr(req->dev, '\0', req->dev_len) != NULL)
            return EWP_DECODE_BADARG;
        if (decode_opts(buf, &i, &req->opts, OPTS_OPEN) < 0)
            return EWP_DECODE_BADARG;
        if (arity == 4) {
            if (ei_decode_pid(buf, &i, &req->owner) < 0)
                return EWP_DECODE_BADARG;
            req->has_owner = 1;
        }
        break;

    case EWP_REQ_CLOSE: /* {close, Ref} */
    case EWP_REQ_STATS: /* {stats, Ref} */
        if (ei_decode_ref(buf, &i, &req->ref) < 0)
            return EWP_DECODE_BADARG;
        break;

    case EWP_REQ_FILTER:
        /* {filter, Ref, Filter :: binary() | string(), Opts :: list()} */
        if (ei_decode_ref(buf, &i, &req->ref) < 0)
            return EWP_DECODE_BADARG;
        if (decode_bytes(buf, &i, &req->data, &req->data_len) < 0 ||
            memchr(req->data, '\0', req->data_len) != NULL)
            return EWP_DECODE_BADARG;
        if (decode_opts(buf, &i, &req->opts, OPTS_FILTER) < 0)
            return EWP_DECODE_BADARG;
        break;

    case EWP_REQ_WRITE: /* {write, Ref, Packet :: binary()} */
        if (ei_decode_ref(buf, &i, &req->ref) < 0)
            return EWP_DECODE_BADARG;
        if (decode_bytes(buf, &i, &req->data, &req->data_len) < 0)
            return EWP_DECODE_BADARG;
        break;

    case EWP_REQ_DEV:        /* dev */
    case EWP_REQ_GETIFADDRS: /* getifaddrs */
    case EWP_REQ_INFO:       /* info */
        break;
    }

    *index = i;
    return EWP_DECODE_OK;
}

void
ewp_decode_opts_default(struct ewp_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->snaplen = 65535;
    o->immediate = 1;
    o->timeout_ms = 0;
    o->time_unit = EWP_TIME_TIMESTAMP;
    o->optimize = 1;
    o->netmask = 0xffffffffU;
    o->limit = EWP_FILTER_LIMIT;
    o->batch = 1;
    o->share = 1;
}

/* The original library's rule: iolist_size(F) < Limit orelse Limit < 0 */
int
ewp_filter_within_limit(size_t len, long limit)
{
    return limit < 0 || len < (unsigned long)limit;
}

/* Opts :: [{Key, Value}] */
static int
decode_opts(const char *buf, int *index, struct ewp_opts *o, int allowed)
{
    int i = *index;
    int arity, n, type, size;
    int seen = 0;
    int immediate_override = -1;

    if (ei_get_type(buf, &i, &type, &size) < 0)
        return -1;
    if (type == ERL_NIL_EXT) {
        if (ei_skip_term(buf, &i) < 0)
            return -1;
        *index = i;
        return 0;
    }
    if (type != ERL_LIST_EXT)
        return -1;
    if (ei_decode_list_header(buf, &i, &arity) < 0)
        return -1;
    for (n = 0; n < arity; n++)
        if (decode_opt(buf, &i, o, allowed, &seen, &immediate_override) < 0)
            return -1;
    /* proper list only */
    if (ei_get_type(buf, &i, &type, &size) < 0 || type != ERL_NIL_EXT)
        return -1;
    if (ei_skip_term(buf, &i) < 0)
        return -1;

    if (immediate_override >= 0)
        o->immediate = immediate_override;
    o->timing_given = (seen & (OPT_TIMEOUT | OPT_IMMEDIATE)) != 0;
    /* nanoseconds do not fit {MegaSecs, Secs, MicroSecs}: without a
     * time_unit, a nano capture's Time is integer nanoseconds */
    if (o->precision == EWP_TSTAMP_NANO && (seen & OPT_TIME_UNIT) == 0)
        o->time_unit = EWP_TIME_NANOSECOND;
    *index = i;
    return 0;
}

static int
decode_opt(const char *buf, int *index, struct ewp_opts *o, int allowed, int *seen,
           int *immediate_override)
{
    static const struct {
        const char *name;
        int bit;
    } keys[] = {
        {"snaplen", OPT_SNAPLEN},     {"promisc", OPT_PROMISC},
        {"timeout", OPT_TIMEOUT},     {"to_ms", OPT_TIMEOUT},
        {"immediate", OPT_IMMEDIATE}, {"buffer", OPT_BUFFER},
        {"monitor", OPT_MONITOR},     {"time_unit", OPT_TIME_UNIT},
        {"filter", OPT_FILTER},       {"optimize", OPT_OPTIMIZE},
        {"netmask", OPT_NETMASK},     {"limit", OPT_LIMIT},
        {"batch", OPT_BATCH},         {"dump", OPT_DUMP},
        {"tstamp_precision", OPT_PRECISION}, {"share", OPT_SHARE},
        {"relay", OPT_RELAY},
    };
    char key[MAXATOMLEN];
    char val[MAXATOMLEN];
    int i = *index;
    int arity, b, bit, first, type, size;
    size_t k;
    long l;

    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity != 2)
        return -1;
    if (ei_decode_atom(buf, &i, key) < 0)
        return -1;
    for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        if (strcmp(key, keys[k].name) == 0)
            break;
    if (k == sizeof(keys) / sizeof(keys[0]))
        return -1;
    bit = keys[k].bit;
    if ((bit & allowed) == 0)
        return -1;
    first = (*seen & bit) == 0;
    *seen |= bit;

    /* Every value is type-checked, also of an option that does not count. */
    switch (bit) {
    case OPT_SNAPLEN: /* {snaplen, 0..INT_MAX} */
        if (decode_int(buf, &i, 0, INT_MAX, &l) < 0)
            return -1;
        if (first)
            o->snaplen = (int)l;
        break;

    case OPT_BUFFER: /* {buffer, integer()}: applied when > 0 */
        if (decode_int(buf, &i, INT_MIN, INT_MAX, &l) < 0)
            return -1;
        if (first)
            o->buffer = (int)l;
        break;

    case OPT_DUMP: { /* {dump, Path :: binary() | string()} */
        const char *d;
        size_t dlen;

        if (decode_bytes(buf, &i, &d, &dlen) < 0 || dlen == 0 || dlen > EWP_PATH_MAX ||
            memchr(d, '\0', dlen) != NULL)
            return -1;
        if (first) {
            o->dump = d;
            o->dump_len = dlen;
        }
        break;
    }

    case OPT_RELAY: { /* {relay, Pid}: the receiver; {relay, boolean()}: the
                       * library's own switch, ignored (over rpc) */
        erlang_pid pid;

        if (ei_decode_boolean(buf, &i, &b) == 0)
            break;
        if (ei_decode_pid(buf, &i, &pid) < 0)
            return -1;
        if (first) {
            o->has_relay = 1;
            o->relay = pid;
        }
        break;
    }

    case OPT_BATCH: /* {batch, 1..EWP_BATCH_MAX} */
        if (decode_int(buf, &i, 1, EWP_BATCH_MAX, &l) < 0)
            return -1;
        if (first)
            o->batch = (int)l;
        break;

    case OPT_LIMIT: /* {limit, integer()} */
        if (decode_int(buf, &i, LONG_MIN, LONG_MAX, &l) < 0)
            return -1;
        if (first)
            o->limit = l;
        break;

    case OPT_PROMISC:   /* {promisc, boolean()} */
    case OPT_IMMEDIATE: /* {immediate, boolean()} */
    case OPT_MONITOR:   /* {monitor, boolean()} */
    case OPT_OPTIMIZE:  /* {optimize, boolean()} */
    case OPT_SHARE:     /* {share, boolean()} */
        if (ei_decode_boolean(buf, &i, &b) < 0)
            return -1;
        if (!first)
            break;
        if (bit == OPT_PROMISC)
            o->promisc = b;
        else if (bit == OPT_IMMEDIATE)
            *immediate_override = b;
        else if (bit == OPT_MONITOR)
            o->monitor = b;
        else if (bit == OPT_SHARE)
            o->share = b;
        else
            o->optimize = b;
        break;

    case OPT_TIMEOUT: /* {timeout, immediate | infinity | 0..INT_MAX}, {to_ms, 0..INT_MAX} */
        if (ei_get_type(buf, &i, &type, &size) < 0)
            return -1;
        if (type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_EXT ||
            type == ERL_ATOM_UTF8_EXT || type == ERL_SMALL_ATOM_UTF8_EXT) {
            if (strcmp(key, "to_ms") == 0 || ei_decode_atom(buf, &i, val) < 0)
                return -1;
            if (strcmp(val, "immediate") == 0) {
                if (first) {
                    o->immediate = 1;
                    o->timeout_ms = 0;
                }
            } else if (strcmp(val, "infinity") == 0) {
                if (first) {
                    o->immediate = 0;
                    o->timeout_ms = 0;
                }
            } else {
                return -1;
            }
        } else {
            if (decode_int(buf, &i, 0, INT_MAX, &l) < 0)
                return -1;
            if (first) {
                o->immediate = 0;
                o->timeout_ms = (int)l;
            }
        }
        break;

    case OPT_TIME_UNIT: /* {time_unit, timestamp | microsecond | nanosecond} */
        if (ei_decode_atom(buf, &i, val) < 0)
            return -1;
        if (strcmp(val, "timestamp") == 0) {
            if (first)
                o->time_unit = EWP_TIME_TIMESTAMP;
        } else if (strcmp(val, "microsecond") == 0) {
            if (first)
                o->time_unit = EWP_TIME_MICROSECOND;
        } else if (strcmp(val, "nanosecond") == 0) {
            if (first)
                o->time_unit = EWP_TIME_NANOSECOND;
        } else {
            return -1;
        }
        break;

    case OPT_PRECISION: /* {tstamp_precision, micro | nano} */
        if (ei_decode_atom(buf, &i, val) < 0)
            return -1;
        if (strcmp(val, "micro") == 0) {
            if (first)
                o->precision = EWP_TSTAMP_MICRO;
        } else if (strcmp(val, "nano") == 0) {
            if (first)
                o->precision = EWP_TSTAMP_NANO;
        } else {
            return -1;
        }
        break;

    case OPT_FILTER: { /* {filter, binary() | string()} */
        const char *f;
        size_t flen;

        if (decode_bytes(buf, &i, &f, &flen) < 0 || memchr(f, '\0', flen) != NULL)
            return -1;
        if (first) {
            o->has_filter = 1;
            o->filter = f;
            o->filter_len = flen;
        }
        break;
    }

    case OPT_NETMASK: /* {netmask, 0..16#FFFFFFFF | {A, B, C, D}} */
        if (ei_get_type(buf, &i, &type, &size) < 0)
            return -1;
        if (type == ERL_SMALL_TUPLE_EXT) {
            uint32_t m = 0;
            int n;

            if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity != 4)
                return -1;
            for (n = 0; n < 4; n++) {
                if (decode_int(buf, &i, 0, 255, &l) < 0)
                    return -1;
                m = (m << 8) | (uint32_t)l;
            }
            if (first)
                o->netmask = m;
        } else {
            long long ll;

            if (ei_decode_longlong(buf, &i, &ll) < 0 || ll < 0 || ll > 0xffffffffLL)
                return -1;
            if (first)
                o->netmask = (uint32_t)ll;
        }
        break;

    default:
        return -1;
    }

    *index = i;
    return 0;
}

static int
decode_int(const char *buf, int *index, long min, long max, long *out)
{
    int i = *index;
    long l;

    if (ei_decode_long(buf, &i, &l) < 0 || l < min || l > max)
        return -1;
    *out = l;
    *index = i;
    return 0;
}

/* binary() | string() | []: a pointer to the bytes inside buf */
static int
decode_bytes(const char *buf, int *index, const char **p, size_t *len)
{
    int i = *index;
    int type, size;

    if (ei_get_type(buf, &i, &type, &size) < 0)
        return -1;
    switch (type) {
    case ERL_BINARY_EXT:
        *p = buf + i + 5;
        break;
    case ERL_STRING_EXT:
        *p = buf + i + 3;
        break;
    case ERL_NIL_EXT:
        *p = buf + i;
        size = 0;
        break;
    default:
        return -1;
    }
    if (size < 0 || ei_skip_term(buf, &i) < 0)
        return -1;
    *len = (size_t)size;
    *index = i;
    return 0;
}
