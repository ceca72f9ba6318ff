/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * What the capture suites share (test_capture.c, test_capture_live.c): the
 * libev loop of the "capture" suites (made by ewp_capture_suite_init) and
 * the options of a plain capture (snaplen 65535, immediate mode).
 */
#ifndef EWP_TEST_CAPTURE_H
#define EWP_TEST_CAPTURE_H

#include <ev.h>

#include "capture.h"

int ewp_capture_suite_init(void);
int ewp_capture_suite_clean(void);
struct ev_loop *ewp_test_capture_loop(void);
struct ewp_capture_opts ewp_test_capture_opts(void);

#endif
