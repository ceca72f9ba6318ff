/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * One levelled logging macro. Everything goes to stderr with the daemon's
 * name and a level tag; stdout is kept for the single "ready" line that the
 * Erlang library waits for.
 */
#ifndef EWP_LOG_H
#define EWP_LOG_H

extern int ewp_verbose; /* 0: errors only, 1: connects/opens/closes, 2: debug */

void ewp_log_write(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define EWP_LOG(lvl, ...)                                   \
    do {                                                    \
        if (ewp_verbose >= (lvl))                           \
            ewp_log_write((lvl) > 1 ? "debug" : "info",     \
                          __VA_ARGS__);                     \
    } while (0)

#define EWP_ERR(...)                                        \
    do {                                                    \
        ewp_log_write("error", __VA_ARGS__);                \
    } while (0)

#endif /* EWP_LOG_H */
