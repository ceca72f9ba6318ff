/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * The CUnit runner: one suite per cnode module, verbose basic output (the
 * summary lines are read by CI). Exit status 0 only when every assertion
 * passed.
 */
#include <stdio.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <ei.h>

extern CU_TestInfo ewp_decode_tests[];
extern CU_TestInfo ewp_encode_tests[];
extern CU_TestInfo ewp_capture_tests[];
extern CU_TestInfo ewp_compile_tests[];
extern CU_TestInfo ewp_teardown_tests[];
extern CU_TestInfo ewp_handshake_tests[];

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
        {"decode", ewp_decode_suite_init, ewp_decode_suite_clean, NULL, NULL, ewp_decode_tests},
        {"encode", NULL, NULL, NULL, NULL, ewp_encode_tests},
        {"capture", ewp_capture_suite_init, ewp_capture_suite_clean, NULL, NULL,
         ewp_capture_tests},
        {"compile", ewp_compile_suite_init, ewp_compile_suite_clean, NULL, NULL,
         ewp_compile_tests},
        {"teardown", NULL, NULL, NULL, NULL, ewp_teardown_tests},
        {"handshake", NULL, NULL, NULL, NULL, ewp_handshake_tests},
        CU_SUITE_INFO_NULL,
    };
    unsigned int failures, records;

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
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS)
        fprintf(stderr, "CU_basic_run_tests: %s\n", CU_get_error_msg());
    failures = CU_get_number_of_failures();
    records = CU_get_number_of_failure_records();
    if (CU_get_number_of_suites_failed() > 0)
        records++;
    printf("\n");
    CU_cleanup_registry();
    return failures > 0 || records > 0 ? 1 : 0;
}
