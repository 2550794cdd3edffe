/* harness.h: the few lines every CUnit suite shares: registration of a test table and a main that
 * runs it verbosely and exits non-zero when any assertion failed. Each tests/test_*.c defines
 * `static CU_TestInfo tests[]` and calls LMN_TEST_MAIN("suite name", tests). */
#ifndef LMN_TEST_HARNESS_H
#define LMN_TEST_HARNESS_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdlib.h>

static inline int lmn_test_run(const char *suite, CU_TestInfo *tests) {
  if (CU_initialize_registry() != CUE_SUCCESS) return 2;
  CU_SuiteInfo suites[] = {{(char *)suite, NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};
  if (CU_register_suites(suites) != CUE_SUCCESS) return 2;
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
  CU_cleanup_registry();
  return failed ? 1 : 0;
}

#define LMN_TEST_MAIN(name, table) \
  int main(void) { return lmn_test_run(name, table); }

#endif
