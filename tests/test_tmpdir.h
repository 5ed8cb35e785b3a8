/* Temporary folders for the test programs: created under $TMPDIR (or /tmp
 * when it is unset or empty, as mktemp(1) does), removed with everything in
 * them. Header-only: include it once per test program. */
#ifndef AE_TEST_TMPDIR_H
#define AE_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

/* Makes dir (cap bytes) a new folder named <prefix>XXXXXX under $TMPDIR or
 * /tmp. Returns 0, or -1 (a cmocka group setup result). */
static inline int ae_test_mkdtemp(char *dir, size_t cap, const char *prefix)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(dir, cap, "%s/%sXXXXXX", base && *base ? base : "/tmp", prefix);
    if (n < 0 || (size_t)n >= cap) return -1;
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and everything in it. Returns 0 or -1. */
static inline int ae_test_rmtree(const char *dir)
{
    char cmd[600];
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (n < 0 || (size_t)n >= sizeof cmd) return -1;
    return system(cmd) == 0 ? 0 : -1;
}

#endif /* AE_TEST_TMPDIR_H */
