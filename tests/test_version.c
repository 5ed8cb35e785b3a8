/*
 * Version test: the version the headers announce (AE_VERSION_*) is the
 * version of the library actually linked (ae_version(), ae_version_number()).
 * SQLite's advice: assert header == library at start-up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "autoenc/version.h"

static void test_string_matches_header(void **state)
{
    (void)state;
    assert_non_null(ae_version());
    assert_string_equal(ae_version(), AE_VERSION_STRING);
}

static void test_number_matches_header(void **state)
{
    (void)state;
    assert_int_equal(ae_version_number(), AE_VERSION_NUMBER);
    assert_int_equal(AE_VERSION_NUMBER,
                     AE_VERSION_MAJOR * 10000 + AE_VERSION_MINOR * 100 + AE_VERSION_PATCH);
}

static void test_string_matches_parts(void **state)
{
    char expect[32];
    (void)state;
    snprintf(expect, sizeof expect, "%d.%d.%d", AE_VERSION_MAJOR, AE_VERSION_MINOR,
             AE_VERSION_PATCH);
    assert_string_equal(AE_VERSION_STRING, expect);
    assert_true(AE_VERSION_MINOR < 100 && AE_VERSION_PATCH < 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_matches_header),
        cmocka_unit_test(test_number_matches_header),
        cmocka_unit_test(test_string_matches_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
