/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The CUnit runner: one suite per cnode module (decode.c's and encode.c's
 * by topic), verbose basic output (the summary lines are read by CI). Exit
 * status 0 only when every assertion passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <ei.h>

extern CU_TestInfo ewp_decode_check_tests[];
extern CU_TestInfo ewp_decode_fuzz_tests[];
extern CU_TestInfo ewp_decode_call_tests[];
extern CU_TestInfo ewp_decode_request_tests[];
extern CU_TestInfo ewp_decode_opts_tests[];
extern CU_TestInfo ewp_encode_packet_tests[];
extern CU_TestInfo ewp_encode_reply_tests[];
extern CU_TestInfo ewp_capture_tests[];
extern CU_TestInfo ewp_capture_live_tests[];
extern CU_TestInfo ewp_compile_tests[];
extern CU_TestInfo ewp_teardown_tests[];
extern CU_TestInfo ewp_handshake_tests[];
extern CU_TestInfo ewp_handles_tests[];
extern CU_TestInfo ewp_atomcache_tests[];
extern CU_TestInfo ewp_xport_tests[];
extern CU_TestInfo ewp_source_tests[];
extern CU_TestInfo ewp_caps_tests[];
extern CU_TestInfo ewp_demux_tests[];
extern CU_TestInfo ewp_share_tests[];
extern CU_TestInfo ewp_demux_loop_tests[];
extern CU_TestInfo ewp_outq_tests[];
extern CU_TestInfo ewp_deliver_tests[];
extern CU_TestInfo ewp_deliver_bounds_tests[];
extern CU_TestInfo ewp_rpc_cast_tests[];
extern CU_TestInfo ewp_signals_tests[];
extern CU_TestInfo ewp_filter_pending_tests[];

int ewp_decode_suite_init(void);
int ewp_decode_suite_clean(void);
int ewp_capture_suite_init(void);
int ewp_capture_suite_clean(void);
int ewp_compile_suite_init(void);
int ewp_compile_suite_clean(void);

int
main(void)
{
    CU_SuiteInfo suites[] = {
        {"decode_check", ewp_decode_suite_init, ewp_decode_suite_clean, NULL, NULL,
         ewp_decode_check_tests},
        {"decode_fuzz", ewp_decode_suite_init, ewp_decode_suite_clean, NULL, NULL,
         ewp_decode_fuzz_tests},
        {"decode_call", ewp_decode_suite_init, ewp_decode_suite_clean, NULL, NULL,
         ewp_decode_call_tests},
        {"decode_request", ewp_decode_suite_init, ewp_decode_suite_clean, NULL, NULL,
         ewp_decode_request_tests},
        {"decode_opts", ewp_decode_suite_init, ewp_decode_suite_clean, NULL, NULL,
         ewp_decode_opts_tests},
        {"encode_packet", NULL, NULL, NULL, NULL, ewp_encode_packet_tests},
        {"encode_reply", NULL, NULL, NULL, NULL, ewp_encode_reply_tests},
        {"capture", ewp_capture_suite_init, ewp_capture_suite_clean, NULL, NULL,
         ewp_capture_tests},
        {"capture_live", ewp_capture_suite_init, ewp_capture_suite_clean, NULL, NULL,
         ewp_capture_live_tests},
        {"compile", ewp_compile_suite_init, ewp_compile_suite_clean, NULL, NULL,
         ewp_compile_tests},
        {"teardown", NULL, NULL, NULL, NULL, ewp_teardown_tests},
        {"handshake", NULL, NULL, NULL, NULL, ewp_handshake_tests},
        {"handles", NULL, NULL, NULL, NULL, ewp_handles_tests},
        {"atomcache", NULL, NULL, NULL, NULL, ewp_atomcache_tests},
        {"xport", NULL, NULL, NULL, NULL, ewp_xport_tests},
        {"source", NULL, NULL, NULL, NULL, ewp_source_tests},
        {"caps", NULL, NULL, NULL, NULL, ewp_caps_tests},
        {"demux", NULL, NULL, NULL, NULL, ewp_demux_tests},
        {"share", NULL, NULL, NULL, NULL, ewp_share_tests},
        {"demux_loop", NULL, NULL, NULL, NULL, ewp_demux_loop_tests},
        {"outq", NULL, NULL, NULL, NULL, ewp_outq_tests},
        {"deliver", NULL, NULL, NULL, NULL, ewp_deliver_tests},
        {"deliver_bounds", NULL, NULL, NULL, NULL, ewp_deliver_bounds_tests},
        {"rpc_cast", NULL, NULL, NULL, NULL, ewp_rpc_cast_tests},
        {"signals", NULL, NULL, NULL, NULL, ewp_signals_tests},
        {"filter_pending", NULL, NULL, NULL, NULL, ewp_filter_pending_tests},
        CU_SUITE_INFO_NULL,
    };
    /* tests that need root: skipped (inactive) when not root */
    static const struct {
        const char *suite, *test;
    } root_tests[] = {
        {"capture", "a live capture on lo sees our datagrams (root)"},
        {"source", "members share one pcap_t and get their own (root)"},
        {"source", "an exclusive member's protochain on a frame where libpcap loops (root)"},
        {"caps", "a shared ring is counted once (root)"},
        {"signals", "a monitor exit closes a handle from its owner only (root)"},
        {"share", "a shared capture refuses kernel metadata, an exclusive one takes it (root)"},
        {NULL, NULL},
    };
    unsigned int failures, records, skipped = 0, i;

    if (ei_init() != 0) {
        fprintf(stderr, "ei_init failed\n");
        return 2;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CU_initialize_registry: %s\n", CU_get_error_msg());
        return 2;
    }
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "CU_register_suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    /* Tests that need root are skipped explicitly when not root (CUnit
     * reports them inactive, and we name them); EWP_UNIT_NEED_ROOT=1 (CI)
     * makes that a failure instead. */
    if (geteuid() != 0) {
        for (i = 0; root_tests[i].suite != NULL; i++) {
            CU_pTest t = CU_get_test(CU_get_suite(root_tests[i].suite), root_tests[i].test);

            if (t == NULL) {
                fprintf(stderr, "no test \"%s\" in suite %s\n", root_tests[i].test,
                        root_tests[i].suite);
                CU_cleanup_registry();
                return 2;
            }
            CU_set_test_active(t, CU_FALSE);
            printf("SKIPPED (not root): %s: %s\n", root_tests[i].suite, root_tests[i].test);
            skipped++;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS && !(skipped > 0 && CU_get_error() == CUE_TEST_INACTIVE))
        fprintf(stderr, "CU_basic_run_tests: %s\n", CU_get_error_msg());
    failures = CU_get_number_of_failures();
    records = CU_get_number_of_failure_records();
    if (CU_get_number_of_suites_failed() > 0)
        records++;
    printf("\n");
    CU_cleanup_registry();
    if (skipped > 0) {
        const char *need = getenv("EWP_UNIT_NEED_ROOT");

        printf("%u test(s) skipped: they need root\n", skipped);
        if (need != NULL && strcmp(need, "1") == 0) {
            printf("FAIL: EWP_UNIT_NEED_ROOT=1 and tests were skipped\n");
            return 1;
        }
    }
    return failures > 0 || records > 0 ? 1 : 0;
}
