/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Helpers shared by the CUnit files (no CUnit here):
 *
 *  ewp_t_build  - an Erlang-like term written as text, encoded with
 *                 ei_x_encode_* (like ei_x_format_wo_ver, plus binaries,
 *                 refs, pids, improper lists and raw bytes);
 *  ewp_t_guard  - a copy of some bytes that ends right before an
 *                 inaccessible page, so that reading one byte past the end
 *                 faults even without valgrind.
 *
 * Format of ewp_t_build:
 *   atom  'quoted atom'  -12  "string"  <<"binary">>  {T, ...}  [T, ...]
 *   [T, ... | Tail]
 *   ~a atom (const char *)        ~s string (const char *)
 *   ~b binary (const char *)      ~B binary (const void *, int len)
 *   ~l long    ~L long long       ~u unsigned long
 *   ~d double  ~p erlang_pid *    ~r erlang_ref *
 *   ~t raw encoded term bytes (const void *, int len), appended verbatim
 * No escapes in quoted text. Returns 0, or -1 on a format error.
 *
 * The prototypes are repeated where they are used: test_decode.h for the
 * decode suites, test_encode_reply.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ei.h>

int ewp_t_build(ei_x_buff *x, const char *fmt, ...);
int ewp_t_vbuild(ei_x_buff *x, const char *fmt, va_list ap);
char *ewp_t_guard(const void *data, size_t len);
void ewp_t_guard_release(void);

struct builder {
    ei_x_buff *x;
    const char *s;
    va_list ap;
};

static int build_term(struct builder *b);

static void
skip_space(struct builder *b)
{
    while (*b->s == ' ' || *b->s == '\t' || *b->s == '\n')
        b->s++;
}

/* Number of elements of the tuple or list starting after its opening
 * bracket, counting up to a '|' or the closing bracket at depth 0. */
static int
count_elements(const char *s, char close)
{
    int depth = 0, n = 0, any = 0;
    char quote = 0;

    for (; *s != '\0'; s++) {
        if (quote) {
            if (*s == quote)
                quote = 0;
            continue;
        }
        if (*s == '"' || *s == '\'') {
            quote = *s;
            any = 1;
            continue;
        }
        if (*s == '{' || *s == '[' || (*s == '<' && s[1] == '<')) {
            if (*s == '<')
                s++;
            depth++;
            any = 1;
        } else if (*s == '}' || *s == ']' || (*s == '>' && s[1] == '>')) {
            if (depth == 0)
                return *s == close ? n + any : -1;
            if (*s == '>')
                s++;
            depth--;
        } else if (depth == 0 && *s == ',') {
            n++;
        } else if (depth == 0 && *s == '|') {
            return n + any;
        } else if (*s != ' ') {
            any = 1;
        }
    }
    return -1;
}

static int
build_quoted(struct builder *b, char quote, const char **start, int *len)
{
    const char *end = strchr(b->s + 1, quote);

    if (end == NULL)
        return -1;
    *start = b->s + 1;
    *len = (int)(end - b->s - 1);
    b->s = end + 1;
    return 0;
}

static int
build_directive(struct builder *b)
{
    char d = b->s[1];

    b->s += 2;
    switch (d) {
    case 'a':
        return ei_x_encode_atom(b->x, va_arg(b->ap, const char *));
    case 's':
        return ei_x_encode_string(b->x, va_arg(b->ap, const char *));
    case 'b': {
        const char *p = va_arg(b->ap, const char *);

        return ei_x_encode_binary(b->x, p, (int)strlen(p));
    }
    case 'B': {
        const void *p = va_arg(b->ap, const void *);

        return ei_x_encode_binary(b->x, p, va_arg(b->ap, int));
    }
    case 'l':
        return ei_x_encode_long(b->x, va_arg(b->ap, long));
    case 'L':
        return ei_x_encode_longlong(b->x, va_arg(b->ap, long long));
    case 'u':
        return ei_x_encode_ulong(b->x, va_arg(b->ap, unsigned long));
    case 'd':
        return ei_x_encode_double(b->x, va_arg(b->ap, double));
    case 'p':
        return ei_x_encode_pid(b->x, va_arg(b->ap, const erlang_pid *));
    case 'r':
        return ei_x_encode_ref(b->x, va_arg(b->ap, const erlang_ref *));
    case 't': {
        const void *p = va_arg(b->ap, const void *);

        return ei_x_append_buf(b->x, p, va_arg(b->ap, int));
    }
    default:
        return -1;
    }
}

static int
build_seq(struct builder *b, char close, int n)
{
    int k;

    for (k = 0; k < n; k++) {
        if (k > 0) {
            skip_space(b);
            if (*b->s != ',')
                return -1;
            b->s++;
        }
        if (build_term(b) < 0)
            return -1;
    }
    skip_space(b);
    if (close == ']' && *b->s == '|') {
        b->s++;
        if (build_term(b) < 0)
            return -1;
        skip_space(b);
    } else if (close == ']' && n > 0) {
        if (ei_x_encode_empty_list(b->x) < 0)
            return -1;
    }
    if (*b->s != close)
        return -1;
    b->s++;
    return 0;
}

static int
build_term(struct builder *b)
{
    const char *start;
    int len, n;

    skip_space(b);
    switch (*b->s) {
    case '~':
        return build_directive(b);
    case '{':
        b->s++;
        n = count_elements(b->s, '}');
        if (n < 0 || ei_x_encode_tuple_header(b->x, n) < 0)
            return -1;
        return build_seq(b, '}', n);
    case '[':
        b->s++;
        n = count_elements(b->s, ']');
        if (n < 0)
            return -1;
        if (n == 0) {
            skip_space(b);
            if (*b->s != ']')
                return -1;
            b->s++;
            return ei_x_encode_empty_list(b->x);
        }
        if (ei_x_encode_list_header(b->x, n) < 0)
            return -1;
        return build_seq(b, ']', n);
    case '"':
        if (build_quoted(b, '"', &start, &len) < 0)
            return -1;
        return ei_x_encode_string_len(b->x, start, len);
    case '\'':
        if (build_quoted(b, '\'', &start, &len) < 0)
            return -1;
        return ei_x_encode_atom_len(b->x, start, len);
    case '<':
        if (b->s[1] != '<')
            return -1;
        b->s += 2;
        skip_space(b);
        if (*b->s == '"') {
            if (build_quoted(b, '"', &start, &len) < 0)
                return -1;
        } else {
            start = "";
            len = 0;
        }
        skip_space(b);
        if (b->s[0] != '>' || b->s[1] != '>')
            return -1;
        b->s += 2;
        return ei_x_encode_binary(b->x, start, len);
    default:
        break;
    }
    if (*b->s == '-' || (*b->s >= '0' && *b->s <= '9')) {
        /* beyond long long: a bignum of up to 64 bits */
        char *end;
        unsigned long long u;

        errno = 0;
        if (*b->s == '-') {
            u = strtoull(b->s + 1, &end, 10);
            if (end == b->s + 1 || errno != 0)
                return -1;
            b->s = end;
            if (u <= (unsigned long long)LLONG_MAX)
                return ei_x_encode_longlong(b->x, -(long long)u);
            if (u == (unsigned long long)LLONG_MAX + 1)
                return ei_x_encode_longlong(b->x, LLONG_MIN);
            {
                /* SMALL_BIG_EXT, 8 digits, negative */
                char big[11];
                int k;

                big[0] = ERL_SMALL_BIG_EXT;
                big[1] = 8;
                big[2] = 1;
                for (k = 0; k < 8; k++)
                    big[3 + k] = (char)((u >> (8 * k)) & 0xff);
                return ei_x_append_buf(b->x, big, (int)sizeof(big));
            }
        }
        u = strtoull(b->s, &end, 10);
        if (end == b->s || errno != 0)
            return -1;
        b->s = end;
        if (u <= (unsigned long long)LLONG_MAX)
            return ei_x_encode_longlong(b->x, (long long)u);
        return ei_x_encode_ulonglong(b->x, u);
    }
    if (*b->s >= 'a' && *b->s <= 'z') {
        start = b->s;
        while ((*b->s >= 'a' && *b->s <= 'z') || (*b->s >= 'A' && *b->s <= 'Z') ||
               (*b->s >= '0' && *b->s <= '9') || *b->s == '_' || *b->s == '@')
            b->s++;
        return ei_x_encode_atom_len(b->x, start, (int)(b->s - start));
    }
    return -1;
}

int
ewp_t_vbuild(ei_x_buff *x, const char *fmt, va_list ap)
{
    struct builder b;
    int rv;

    b.x = x;
    b.s = fmt;
    va_copy(b.ap, ap);
    rv = build_term(&b);
    va_end(b.ap);
    if (rv < 0)
        return -1;
    skip_space(&b);
    return *b.s == '\0' ? 0 : -1;
}

int
ewp_t_build(ei_x_buff *x, const char *fmt, ...)
{
    va_list ap;
    int rv;

    va_start(ap, fmt);
    rv = ewp_t_vbuild(x, fmt, ap);
    va_end(ap);
    return rv;
}

/* One mapping reused by every call: GUARD_DATA bytes then a PROT_NONE page. */
#define GUARD_DATA (128 * 1024)

static char *guard_base;
static size_t guard_page;

/* A copy of data[0..len) whose last byte is followed by an unreadable page,
 * valid until the next call. NULL if len is too large or mmap fails. */
char *
ewp_t_guard(const void *data, size_t len)
{
    char *dst;

    if (guard_base == NULL) {
        long ps = sysconf(_SC_PAGESIZE);
        void *m;

        guard_page = ps > 0 ? (size_t)ps : 4096;
        m = mmap(NULL, GUARD_DATA + guard_page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        guard_base = m;
        if (mprotect(guard_base + GUARD_DATA, guard_page, PROT_NONE) < 0) {
            (void)munmap(guard_base, GUARD_DATA + guard_page);
            guard_base = NULL;
            return NULL;
        }
    }
    if (len > GUARD_DATA)
        return NULL;
    dst = guard_base + GUARD_DATA - len;
    if (len > 0)
        memcpy(dst, data, len);
    return dst;
}

void
ewp_t_guard_release(void)
{
    if (guard_base != NULL)
        (void)munmap(guard_base, GUARD_DATA + guard_page);
    guard_base = NULL;
}
