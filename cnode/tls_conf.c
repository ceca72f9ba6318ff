/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The TLS server options from an -ssl_dist_optfile (tls_conf.h). The
 * optfile is Erlang text. ei has no parser for text, and a second,
 * hand-written one would drift from erl_parse; so ewpcapd asks erl
 * itself, once at start, to read it exactly as a node does
 * (ssl_dist_sup:consult/1, what -ssl_dist_optfile runs) and print the
 * term in the external format, which is decoded here with ei
 * (ewp_tls_config_from_etf). The embedded daemon never does this:
 * ewpcap_daemon.erl passes the node's options as flags.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ei.h>

#include "log.h"
#include "tls_conf.h"

#define OPTFILE_MAX (256u << 10) /* largest optfile term accepted, in bytes */

static int decode_server_opts(struct ewp_tls_config *cfg, const char *buf, int *index,
                              char *errbuf, size_t errlen);
static int decode_path(const char *buf, int *index, char *out, size_t outlen);
static int hex_value(char c);
static int run_consult(const char *path, char **out, size_t *outlen, char *errbuf,
                       size_t errlen);

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
