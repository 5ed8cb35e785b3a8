/* Test fixture shared by the data tests: a counting allocator hook (leak
 * checks, an injected failure at allocation number g_fail_at), per-test
 * reset and leak check, and a temporary folder for the group. Header-only:
 * include it once per test program, after cmocka.h and internal.h. */
#ifndef AE_TEST_COUNTING_ALLOC_H
#define AE_TEST_COUNTING_ALLOC_H

#include "test_tmpdir.h"

static long g_live;         /* library blocks alive */
static long g_fail_at = -1; /* fail the allocation with this number (0-based) */
static long g_count;        /* allocations counted since the last reset */

static void *count_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        if (ptr) g_live--;
        free(ptr);
        return NULL;
    }
    if (g_fail_at >= 0 && g_count++ == g_fail_at) return NULL;
    if (!ptr) {
        void *p = malloc(new_size);
        if (p) g_live++;
        return p;
    }
    return realloc(ptr, new_size);
}

/* Installs the hook and makes dir (cap bytes) a new folder under $TMPDIR or
 * /tmp named <prefix>XXXXXX. Returns 0 or -1 (a cmocka group setup result). */
static int counting_group_setup(char *dir, size_t cap, const char *prefix)
{
    if (ae_set_allocator(count_alloc, NULL) != AE_OK) return -1;
    return ae_test_mkdtemp(dir, cap, prefix);
}

/* Removes the folder and restores the default allocator. */
static int counting_group_teardown(const char *dir)
{
    ae_set_allocator(NULL, NULL);
    return ae_test_rmtree(dir);
}

static int test_setup(void **state)
{
    (void)state;
    g_live = 0;
    g_fail_at = -1;
    g_count = 0;
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    assert_int_equal(g_live, 0); /* nothing leaked */
    return 0;
}

#endif /* AE_TEST_COUNTING_ALLOC_H */
