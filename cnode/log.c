/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * stderr logging: "ewpcapd[pid]: level: message". No buffering, no
 * allocation, safe to call from any callback of the event loop. Messages
 * carry strings a peer chose (node names, device names, paths): every
 * byte that is not printable ASCII, and the backslash, is written as \xNN,
 * so that a peer can never forge a line or a terminal escape in the log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

int ewp_verbose = 0;

void
ewp_log_write(const char *level, const char *fmt, ...)
{
    static const char hex[] = "0123456789abcdef";
    char msg[1024], line[4 * sizeof(msg) + 64];
    const unsigned char *m;
    va_list ap;
    size_t n;
    int k;

    k = snprintf(line, sizeof(line), "ewpcapd[%ld]: %s: ", (long)getpid(), level);
    if (k < 0 || (size_t)k >= sizeof(line))
        return;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (n = (size_t)k, m = (const unsigned char *)msg; *m != '\0'; m++) {
        if (*m >= 0x20 && *m < 0x7f && *m != '\\') {
            line[n++] = (char)*m;
        } else {
            line[n++] = '\\';
            line[n++] = 'x';
            line[n++] = hex[*m >> 4];
            line[n++] = hex[*m & 15];
        }
    }
    line[n++] = '\n';
    (void)fwrite(line, 1, n, stderr);
}
