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
 * read(2)/send(2) semantics for dist.c.
 *
 * Writing, once the TLS handshake is done: SSL_write makes one record of
 * at most 16 KiB at a time and, on a socket BIO, one write(2) for each,
 * which with TCP_NODELAY leaves as a segment of its own and wakes the
 * receiving node once per record (measured: ewpcapd's kernel send cost
 * per packet at 1000 B nearly three times the plaintext daemon's, which
 * sends the same bytes in one send(2)). So the records go into a gather
 * buffer of the connection (a BIO of ours, GATHER_MAX of plaintext per
 * write) and leave in one send(2); what the socket does not take stays
 * there (the xport's unsent) until the fd is writable. The buffer is
 * kept for the connection's life (about GATHER_MAX): freeing it when
 * empty made every write fault its pages in again.
 *
 * The optfile (-ssl_dist_optfile) is read by tls_conf.c.
 *
 * It does not do: CRLs, OCSP, verify_fun, password-protected keys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "tls.h"

#define TLS_RECORD_HANDSHAKE 0x16     /* first byte of a TLS ClientHello record */
#define GATHER_MAX (256u << 10)       /* plaintext encrypted per write, at most */

struct ewp_tls {
    SSL_CTX *ctx;                     /* certificate, key, CAs, verification */
    BIO_METHOD *gather;               /* the gather buffer's BIO */
};

/* One connection: the xport is first, so a struct ewp_xport * is one of these */
struct tls_conn {
    struct ewp_xport x;               /* ops */
    SSL *ssl;                         /* the session on fd */
    int fd;                           /* not ours: listen.c / dist.c close it */
    int peeked;                       /* the first byte was a TLS record */
    int fatal;                        /* a fatal error: no close_notify */
    BIO_METHOD *gather;               /* the context's, for after the handshake */
    char *wb;                         /* records for the socket, or NULL */
    size_t wb_head;                   /* first byte not sent */
    size_t wb_len;                    /* end of the records */
    size_t wb_cap;                    /* size of wb */
};

extern char **environ;

static ssize_t conn_read(struct ewp_xport *x, void *buf, size_t len);
static ssize_t conn_write(struct ewp_xport *x, const void *buf, size_t len);
static size_t conn_pending(struct ewp_xport *x);
static size_t conn_unsent(struct ewp_xport *x);
static int gather_flush(struct tls_conn *c);
static int gather_write(BIO *b, const char *data, int len);
static long gather_ctrl(BIO *b, int cmd, long num, void *ptr);
static int gather_create(BIO *b);
static void conn_free(struct ewp_xport *x);
static ssize_t io_result(struct tls_conn *c, int rv);
static void ssl_error(char *errbuf, size_t errlen, const char *what);

static const struct ewp_xport_ops conn_ops = {
    .read = conn_read,
    .write = conn_write,
    .pending = conn_pending,
    .unsent = conn_unsent,
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
    /* partial writes: one record per SSL_write on the handshake's socket
     * BIO (a retry may come with the buffer moved); the gather BIO after
     * it never asks for one */
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
    if ((t->gather = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                  "ewpcapd gather")) == NULL ||
        BIO_meth_set_write(t->gather, gather_write) != 1 ||
        BIO_meth_set_ctrl(t->gather, gather_ctrl) != 1 ||
        BIO_meth_set_create(t->gather, gather_create) != 1) {
        ssl_error(errbuf, errlen, "BIO_meth_new");
        BIO_meth_free(t->gather);
        free(t);
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
    BIO_meth_free(t->gather);
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
    c->gather = t->gather;
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
    if (rv == 1) {
        /* all of it is on the socket (else WANT_WRITE): from now on the
         * records go through the gather buffer */
        BIO *b = BIO_new(c->gather);

        if (b == NULL) {
            c->fatal = 1;
            ssl_error(errbuf, errlen, "TLS");
            return -1;
        }
        BIO_set_data(b, c);
        SSL_set0_wbio(c->ssl, b);
        return 1;
    }
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

/*
 * Records still unsent go first; then up to GATHER_MAX bytes of buf become
 * records in the gather buffer, which one send(2) writes. Returns the
 * bytes of buf taken (they may wait as records: conn_unsent), or -1 with
 * EAGAIN while earlier records do not fit in the socket. len 0 only sends.
 */
static ssize_t
conn_write(struct ewp_xport *x, const void *buf, size_t len)
{
    struct tls_conn *c = (struct tls_conn *)(void *)x;
    size_t take = len < GATHER_MAX ? len : GATHER_MAX, done = 0;
    ssize_t n;

    if (gather_flush(c) < 0)
        return -1;
    while (done < take) {
        ERR_clear_error();
        n = io_result(c, SSL_write(c->ssl, (const char *)buf + done, (int)(take - done)));
        if (n < 0 && done == 0)
            return -1;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (gather_flush(c) < 0 && errno != EAGAIN)
        return -1;
    return (ssize_t)done;
}

/* Records that wait for the socket: 0, or write again when it is writable */
static size_t
conn_unsent(struct ewp_xport *x)
{
    struct tls_conn *c = (struct tls_conn *)(void *)x;

    return c->wb_len - c->wb_head;
}

/* One send(2) of the gather buffer. 0: it is empty; -1 with errno (EAGAIN:
 * records are left) */
static int
gather_flush(struct tls_conn *c)
{
    ssize_t n;

    if (c->wb_head == c->wb_len)
        return 0;
    n = send(c->fd, c->wb + c->wb_head, c->wb_len - c->wb_head, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EINTR)
            errno = EAGAIN;
        return -1;
    }
    c->wb_head += (size_t)n;
    if (c->wb_head < c->wb_len) {
        errno = EAGAIN;
        return -1;
    }
    c->wb_head = c->wb_len = 0;
    return 0;
}

/* The gather BIO: SSL's records appended to the connection's buffer */
static int
gather_write(BIO *b, const char *data, int len)
{
    struct tls_conn *c = BIO_get_data(b);
    size_t need;

    BIO_clear_retry_flags(b);
    if (c == NULL || len < 0)
        return -1;
    need = c->wb_len + (size_t)len;
    if (need > c->wb_cap) {
        size_t cap = c->wb_cap > 0 ? c->wb_cap : GATHER_MAX + (64u << 10);
        char *nb;

        while (cap < need)
            cap *= 2;
        if ((nb = realloc(c->wb, cap)) == NULL)
            return -1;
        c->wb = nb;
        c->wb_cap = cap;
    }
    memcpy(c->wb + c->wb_len, data, (size_t)len);
    c->wb_len = need;
    return len;
}

static long
gather_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
gather_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
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
    (void)gather_flush(c); /* the close_notify, or an alert */
    ERR_clear_error();
    SSL_free(c->ssl);
    free(c->wb);
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
