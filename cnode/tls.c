/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * TLS for the distribution listener (OTP's inet_tls_dist: TLS first, on
 * the accepted connection, then the distribution handshake inside it with
 * 4-byte lengths, then frames as over TCP). OpenSSL, TLS 1.2 and 1.3
 * only, no renegotiation, no session tickets or cache (a node reconnects
 * rarely). Everything is non-blocking: ewp_tls_handshake is one step of
 * SSL_accept, called by listen.c on readiness under its handshake timer,
 * and the connection's xport (xport.h) maps SSL_read/SSL_write onto
 * read(2)/send(2) semantics for dist.c. Partial writes are on and the
 * write buffer may move between retries (dist.c's output buffer grows and
 * compacts), as SSL_write then allows.
 *
 * The optfile: an -ssl_dist_optfile is Erlang text. ei has no parser for
 * text, and a second, hand-written one would drift from erl_parse; so
 * ewpcapd asks erl itself, once at start, to read it exactly as a node
 * does (ssl_dist_sup:consult/1, what -ssl_dist_optfile runs) and print the
 * term in the external format, which we decode with ei
 * (ewp_tls_config_from_etf).
 * The embedded daemon never does this: ewpcap_daemon.erl passes the
 * node's options as flags.
 *
 * It does not do: CRLs, OCSP, verify_fun, password-protected keys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ei.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "tls.h"

#define TLS_RECORD_HANDSHAKE 0x16     /* first byte of a TLS ClientHello record */
#define OPTFILE_MAX (256u << 10)      /* largest optfile term accepted, in bytes */

struct ewp_tls {
    SSL_CTX *ctx;                     /* certificate, key, CAs, verification */
};

/* One connection: the xport is first, so a struct ewp_xport * is one of these */
struct tls_conn {
    struct ewp_xport x;               /* ops */
    SSL *ssl;                         /* the session on fd */
    int fd;                           /* not ours: listen.c / dist.c close it */
    int peeked;                       /* the first byte was a TLS record */
    int fatal;                        /* a fatal error: no close_notify */
};

extern char **environ;

static ssize_t conn_read(struct ewp_xport *x, void *buf, size_t len);
static ssize_t conn_write(struct ewp_xport *x, const void *buf, size_t len);
static size_t conn_pending(struct ewp_xport *x);
static void conn_free(struct ewp_xport *x);
static ssize_t io_result(struct tls_conn *c, int rv);
static void ssl_error(char *errbuf, size_t errlen, const char *what);
static int decode_server_opts(struct ewp_tls_config *cfg, const char *buf, int *index,
                              char *errbuf, size_t errlen);
static int decode_path(const char *buf, int *index, char *out, size_t outlen);
static int hex_value(char c);
static int run_consult(const char *path, char **out, size_t *outlen, char *errbuf,
                       size_t errlen);

static const struct ewp_xport_ops conn_ops = {
    .read = conn_read,
    .write = conn_write,
    .pending = conn_pending,
    .free = conn_free,
};

/* NULL: error in errbuf */
struct ewp_tls *
ewp_tls_new(const struct ewp_tls_config *cfg, char *errbuf, size_t errlen)
{
    static const unsigned char sid[] = "ewpcapd";
    struct ewp_tls *t;
    SSL_CTX *ctx;
    long mode;

    if (cfg->cert[0] == '\0') {
        (void)snprintf(errbuf, errlen, "TLS needs a certificate (--tls-cert)");
        return NULL;
    }
    if (cfg->verify_peer && cfg->cacert[0] == '\0') {
        (void)snprintf(errbuf, errlen, "--tls-verify peer needs --tls-cacert");
        return NULL;
    }
    ERR_clear_error();
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        ssl_error(errbuf, errlen, "SSL_CTX_new");
        return NULL;
    }
    (void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    (void)SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                       SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET |
                                       SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* AES-128-GCM first: both ends spend less per packet than with
     * AES-256 (OpenSSL's default first choice), at a strength TLS 1.3
     * ranks equal for this use; the client's list still decides what is
     * possible */
    (void)SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                        "TLS_CHACHA20_POLY1305_SHA256");
    (void)SSL_CTX_set_num_tickets(ctx, 0);
    (void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    (void)SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
    (void)SSL_CTX_set_mode(ctx, mode);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1) {
        ssl_error(errbuf, errlen, cfg->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key[0] ? cfg->key : cfg->cert,
                                    SSL_FILETYPE_PEM) != 1) {
        ssl_error(errbuf, errlen, cfg->key[0] ? cfg->key : cfg->cert);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error(errbuf, errlen, "key does not match the certificate");
        goto fail;
    }
    if (cfg->cacert[0] != '\0') {
        STACK_OF(X509_NAME) *names;

        if (SSL_CTX_load_verify_locations(ctx, cfg->cacert, NULL) != 1 ||
            (names = SSL_load_client_CA_file(cfg->cacert)) == NULL) {
            ssl_error(errbuf, errlen, cfg->cacert);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    SSL_CTX_set_verify(ctx,
                       cfg->verify_peer ? SSL_VERIFY_PEER | (cfg->fail_if_no_peer_cert
                                                                 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                                 : 0)
                                        : SSL_VERIFY_NONE,
                       NULL);
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        (void)snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    t->ctx = ctx;
    return t;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void
ewp_tls_free(struct ewp_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* A server session on the accepted fd; NULL: out of memory */
struct ewp_xport *
ewp_tls_conn_new(struct ewp_tls *t, int fd)
{
    struct tls_conn *c;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    ERR_clear_error();
    if ((c->ssl = SSL_new(t->ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(c->ssl);
    c->x.ops = &conn_ops;
    c->fd = fd;
    return &c->x;
}

/*
 * One step of the server handshake, on readiness of the fd.
 *
 * Returns:
 *  1 - done: distribution handshake bytes may follow (and be pending)
 *  0 - wait until the fd is writable (*want_write) or readable, then call again
 * -1 - refused (reason in errbuf)
 */
int
ewp_tls_handshake(struct ewp_xport *x, int *want_write, char *errbuf, size_t errlen)
{
    struct tls_conn *c = (struct tls_conn *)(void *)x;
    unsigned char first;
    ssize_t n;
    int rv;

    *want_write = 0;
    if (!c->peeked) {
        /* a plaintext node says so in its first byte: refuse it by name */
        n = recv(c->fd, &first, 1, MSG_PEEK);
        if (n == 0) {
            (void)snprintf(errbuf, errlen, "closed before TLS");
            return -1;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            (void)snprintf(errbuf, errlen, "%s", strerror(errno));
            return -1;
        }
        if (first != TLS_RECORD_HANDSHAKE) {
            c->fatal = 1;
            (void)snprintf(errbuf, errlen, "not TLS (a plaintext distribution handshake?): "
                                           "TLS is required");
            return -1;
        }
        c->peeked = 1;
    }
    ERR_clear_error();
    rv = SSL_do_handshake(c->ssl);
    if (rv == 1)
        return 1;
    switch (SSL_get_error(c->ssl, rv)) {
    case SSL_ERROR_WANT_READ:
        return 0;
    case SSL_ERROR_WANT_WRITE:
        *want_write = 1;
        return 0;
    default:
        break;
    }
    c->fatal = 1;
    if (SSL_get_verify_result(c->ssl) != X509_V_OK)
        (void)snprintf(errbuf, errlen, "TLS: client certificate: %s",
                       X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
    else
        ssl_error(errbuf, errlen, "TLS");
    return -1;
}

static ssize_t
conn_read(struct ewp_xport *x, void *buf, size_t len)
{
    struct tls_conn *c = (struct tls_conn *)(void *)x;

    ERR_clear_error();
    return io_result(c, SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len));
}

static ssize_t
conn_write(struct ewp_xport *x, const void *buf, size_t len)
{
    struct tls_conn *c = (struct tls_conn *)(void *)x;

    if (len == 0)
        return 0;
    ERR_clear_error();
    return io_result(c, SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len));
}

/*
 * SSL_read/SSL_write's result as read(2)'s. SSL_read cannot want to write
 * here, so waiting for readable after its EAGAIN is right: renegotiation
 * and tickets are off (ewp_tls_new), and OpenSSL 3 answers a TLS 1.3
 * KeyUpdate with the next SSL_write, not inside SSL_read (checked with a
 * full socket: the read returns the data, nothing is written).
 */
static ssize_t
io_result(struct tls_conn *c, int rv)
{
    int saved = errno;

    if (rv > 0)
        return rv;
    switch (SSL_get_error(c->ssl, rv)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        c->fatal = 1;
        ERR_clear_error();
        if (saved == 0)
            return 0;
        errno = saved;
        return -1;
    default:
        c->fatal = 1;
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

static size_t
conn_pending(struct ewp_xport *x)
{
    struct tls_conn *c = (struct tls_conn *)(void *)x;

    return (size_t)SSL_pending(c->ssl);
}

/* A close_notify when the session is sound (best effort, never waits) */
static void
conn_free(struct ewp_xport *x)
{
    struct tls_conn *c = (struct tls_conn *)(void *)x;

    if (!c->fatal && SSL_is_init_finished(c->ssl))
        (void)SSL_shutdown(c->ssl);
    ERR_clear_error();
    SSL_free(c->ssl);
    free(c);
}

static void
ssl_error(char *errbuf, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char s[256];

    if (e == 0)
        (void)snprintf(s, sizeof(s), "%s", errno != 0 ? strerror(errno) : "failed");
    else
        ERR_error_string_n(e, s, sizeof(s));
    ERR_clear_error();
    (void)snprintf(errbuf, errlen, "%s: %s", what, s);
}

/*
 * The term of an -ssl_dist_optfile, in the external format:
 *   [{server, [{certfile, F}, {keyfile, F}, {cacertfile, F},
 *              {verify, verify_peer | verify_none}, {fail_if_no_peer_cert, B}, ...]},
 *    {client, [...]}]
 * Only the server options matter here (we accept, never connect); other
 * server options are logged and ignored. Returns 0, or -1 with errbuf.
 */
int
ewp_tls_config_from_etf(struct ewp_tls_config *cfg, const char *buf, size_t len,
                        char *errbuf, size_t errlen)
{
    int index = 0, version, arity, n, i;
    char key[MAXATOMLEN];

    if (len > INT_MAX || ei_decode_version(buf, &index, &version) < 0 ||
        ei_decode_list_header(buf, &index, &n) < 0)
        goto bad;
    for (i = 0; i < n; i++) {
        if (ei_decode_tuple_header(buf, &index, &arity) < 0 || arity != 2 ||
            ei_decode_atom(buf, &index, key) < 0)
            goto bad;
        if (strcmp(key, "server") == 0) {
            if (decode_server_opts(cfg, buf, &index, errbuf, errlen) < 0)
                return -1;
        } else if (ei_skip_term(buf, &index) < 0) {
            goto bad;
        }
    }
    if ((size_t)index > len)
        goto bad;
    return 0;

bad:
    (void)snprintf(errbuf, errlen, "optfile: not [{server, [{Key, Value}]}, ...]");
    return -1;
}

static int
decode_server_opts(struct ewp_tls_config *cfg, const char *buf, int *index, char *errbuf,
                   size_t errlen)
{
    char key[MAXATOMLEN], val[MAXATOMLEN];
    int n, i, arity, rv;

    if (ei_decode_list_header(buf, index, &n) < 0)
        goto bad;
    for (i = 0; i < n; i++) {
        if (ei_decode_tuple_header(buf, index, &arity) < 0 || arity != 2 ||
            ei_decode_atom(buf, index, key) < 0)
            goto bad;
        if (strcmp(key, "certfile") == 0)
            rv = decode_path(buf, index, cfg->cert, sizeof(cfg->cert));
        else if (strcmp(key, "keyfile") == 0)
            rv = decode_path(buf, index, cfg->key, sizeof(cfg->key));
        else if (strcmp(key, "cacertfile") == 0)
            rv = decode_path(buf, index, cfg->cacert, sizeof(cfg->cacert));
        else if (strcmp(key, "verify") == 0) {
            rv = ei_decode_atom(buf, index, val);
            if (rv == 0 && strcmp(val, "verify_peer") == 0)
                cfg->verify_peer = 1;
            else if (rv == 0 && strcmp(val, "verify_none") == 0)
                cfg->verify_peer = 0;
            else
                rv = -1;
        } else if (strcmp(key, "fail_if_no_peer_cert") == 0) {
            rv = ei_decode_boolean(buf, index, &cfg->fail_if_no_peer_cert);
        } else {
            EWP_LOG(1, "optfile: server option %s ignored", key);
            rv = ei_skip_term(buf, index);
        }
        if (rv < 0) {
            (void)snprintf(errbuf, errlen, "optfile: bad value of server option %s", key);
            return -1;
        }
    }
    if (n > 0 && ei_decode_list_header(buf, index, &n) < 0) /* the tail [] */
        goto bad;
    return 0;

bad:
    (void)snprintf(errbuf, errlen, "optfile: server options: not [{Key, Value}]");
    return -1;
}

/* A file name: a string or a binary */
static int
decode_path(const char *buf, int *index, char *out, size_t outlen)
{
    int type, size, i = *index;
    long blen;

    if (ei_get_type(buf, &i, &type, &size) < 0 || size <= 0 || (size_t)size >= outlen)
        return -1;
    if (type == ERL_BINARY_EXT) {
        if (ei_decode_binary(buf, index, out, &blen) < 0)
            return -1;
        out[blen] = '\0';
        return 0;
    }
    return ei_decode_string(buf, index, out);
}

/*
 * --tls-optfile PATH: erl reads it (ssl_dist_sup:consult) and prints the term in
 * the external format, hex-encoded; we decode it with ei. Runs once, at
 * start, before privileges are dropped. $ERL names erl (default: erl in PATH).
 */
int
ewp_tls_read_optfile(struct ewp_tls_config *cfg, const char *path, char *errbuf,
                     size_t errlen)
{
    char *hex = NULL, *bin;
    size_t hexlen = 0, i;
    int rv;

    if (run_consult(path, &hex, &hexlen, errbuf, errlen) < 0)
        return -1;
    if (hexlen % 2 != 0 || (bin = malloc(hexlen / 2 + 1)) == NULL) {
        free(hex);
        (void)snprintf(errbuf, errlen, "--tls-optfile %s: unreadable", path);
        return -1;
    }
    for (i = 0; i < hexlen / 2; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(hex);
            free(bin);
            (void)snprintf(errbuf, errlen, "--tls-optfile %s: unreadable", path);
            return -1;
        }
        bin[i] = (char)((hi << 4) | lo);
    }
    free(hex);
    rv = ewp_tls_config_from_etf(cfg, bin, hexlen / 2, errbuf, errlen);
    free(bin);
    return rv;
}

/* 0..15, or -1 for a byte that is not a hex digit */
static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int
run_consult(const char *path, char **out, size_t *outlen, char *errbuf, size_t errlen)
{
    static const char eval[] =
        "[F] = init:get_plain_arguments(),"
        "try ssl_dist_sup:consult(F) of"
        "  T -> io:put_chars(binary:encode_hex(term_to_binary(T))), halt(0)"
        "catch"
        "  _:E -> io:format(standard_error, \"~p~n\", [E]), halt(1)"
        "end.";
    const char *env = getenv("ERL");
    const char *erl = env != NULL && env[0] != '\0' ? env : "erl";
    char *argv[] = {(char *)erl, (char *)"-noshell", (char *)"-boot", (char *)"start_clean",
                    (char *)"-eval", (char *)eval, (char *)"-extra", (char *)path, NULL};
    posix_spawn_file_actions_t fa;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int pfd[2], status;
    pid_t pid;
    ssize_t n;

    if (pipe2(pfd, O_CLOEXEC) < 0) {
        (void)snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    (void)posix_spawn_file_actions_init(&fa);
    (void)posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
    (void)posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if ((errno = posix_spawnp(&pid, erl, &fa, NULL, argv, environ)) != 0) {
        (void)snprintf(errbuf, errlen, "--tls-optfile: cannot run %s: %s", erl,
                       strerror(errno));
        (void)posix_spawn_file_actions_destroy(&fa);
        (void)close(pfd[0]);
        (void)close(pfd[1]);
        return -1;
    }
    (void)posix_spawn_file_actions_destroy(&fa);
    (void)close(pfd[1]);
    for (;;) {
        if (cap - len < 4096) {
            char *nb;

            if (cap >= 2 * OPTFILE_MAX || (nb = realloc(buf, cap + 65536)) == NULL)
                break;
            buf = nb;
            cap += 65536;
        }
        n = read(pfd[0], buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    (void)close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || len == 0) {
        free(buf);
        (void)snprintf(errbuf, errlen, "--tls-optfile %s: erl could not read it (see above)",
                       path);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}
