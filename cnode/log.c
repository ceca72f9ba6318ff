/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * stderr logging: "ewpcapd[pid]: level: message". No buffering, no
 * allocation, safe to call from any callback of the event loop.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

int ewp_verbose = 0;

void
ewp_log_write(const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    n = snprintf(line, sizeof(line), "ewpcapd[%ld]: %s: ", (long)getpid(), level);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_start(ap, fmt);
    (void)vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    (void)fprintf(stderr, "%s\n", line);
}
