/* The checking allocator (test_support.h). Live blocks are kept in an
 * open-addressing table keyed by address, outside the blocks themselves, so
 * the library gets malloc's own pointers (ASan and valgrind see the exact
 * block bounds) and a free of an address never handed out is reported
 * instead of corrupting the heap. One mutex guards the table and counters:
 * a resize must move its table entry in the same step as the realloc, or
 * another thread could be handed the old address first. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_support.h"

typedef struct block {
    void *ptr; /* NULL: empty slot */
    size_t size;
    long number; /* allocation number since install */
} block;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static block *g_table;
static size_t g_cap, g_blocks; /* slots (a power of two), live blocks */
static long g_bytes, g_count, g_fail_at, g_failed, g_bad, g_number;

static size_t slot_of(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (g_cap - 1);
}

static void die(const char *what)
{
    fprintf(stderr, "ae_test_alloc: %s\n", what);
    abort();
}

static size_t find(const void *p)
{
    size_t i;
    if (!g_cap) return (size_t)-1;
    for (i = slot_of(p); g_table[i].ptr; i = (i + 1) & (g_cap - 1))
        if (g_table[i].ptr == p) return i;
    return (size_t)-1;
}

static void put(block b)
{
    size_t i;
    if ((g_blocks + 1) * 2 > g_cap) { /* keep the load at most 1/2 */
        block *old = g_table;
        size_t old_cap = g_cap;
        g_cap = g_cap ? g_cap * 2 : 4096;
        g_table = calloc(g_cap, sizeof *g_table);
        if (!g_table) die("out of memory for the block table");
        for (size_t j = 0; j < old_cap; j++)
            if (old[j].ptr) {
                for (i = slot_of(old[j].ptr); g_table[i].ptr; i = (i + 1) & (g_cap - 1)) {
                }
                g_table[i] = old[j];
            }
        free(old);
    }
    for (i = slot_of(b.ptr); g_table[i].ptr; i = (i + 1) & (g_cap - 1)) {
    }
    g_table[i] = b;
    g_blocks++;
    g_bytes += (long)b.size;
}

/* Linear probing without tombstones: after emptying slot i, entries further
 * along the run that hash at or before i move back into it. */
static void take(size_t i)
{
    size_t j = i;
    g_bytes -= (long)g_table[i].size;
    g_blocks--;
    g_table[i].ptr = NULL;
    for (;;) {
        size_t home;
        j = (j + 1) & (g_cap - 1);
        if (!g_table[j].ptr) return;
        home = slot_of(g_table[j].ptr);
        /* j's entry may stay when its home lies cyclically in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
        g_table[i] = g_table[j];
        g_table[j].ptr = NULL;
        i = j;
    }
}

static void bad_free(const void *ptr, const block *b, size_t old_size, size_t new_size)
{
    g_bad++;
    if (b)
        fprintf(stderr, "ae_test_alloc: block %p (allocation #%ld, %zu bytes) %s as %zu bytes\n",
                ptr, b->number, b->size, new_size ? "resized" : "freed", old_size);
    else
        fprintf(stderr, "ae_test_alloc: %s of %p, which is not a live block\n",
                new_size ? "resize" : "free", ptr);
    if (getenv("AE_TEST_ALLOC_TRAP")) abort();
}

/* Counts one allocation; 1 when it is the one to fail. */
static int counted_failure(void)
{
    g_number++;
    if (++g_count == g_fail_at) {
        g_failed++;
        return 1;
    }
    return 0;
}

void *ae_test_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    void *q = NULL;
    (void)ud;
    pthread_mutex_lock(&g_mu);
    if (ptr) {
        size_t i = find(ptr);
        if (i == (size_t)-1) {
            bad_free(ptr, NULL, old_size, new_size);
        } else {
            block b = g_table[i];
            if (b.size != old_size) bad_free(ptr, &b, old_size, new_size);
            if (new_size == 0) {
                take(i);
                free(ptr);
            } else if (!counted_failure() && (q = realloc(ptr, new_size)) != NULL) {
                take(i);
                put((block){q, new_size, g_number});
            }
        }
    } else if (new_size > 0 && !counted_failure() && (q = malloc(new_size)) != NULL) {
        put((block){q, new_size, g_number});
    }
    pthread_mutex_unlock(&g_mu);
    return q;
}

int ae_test_alloc_install(void)
{
    pthread_mutex_lock(&g_mu);
    g_count = g_fail_at = g_failed = g_bad = g_number = 0;
    pthread_mutex_unlock(&g_mu);
    return ae_set_allocator(ae_test_alloc, NULL) == AE_OK ? 0 : -1;
}

void ae_test_alloc_uninstall(void)
{
    ae_set_allocator(NULL, NULL);
    pthread_mutex_lock(&g_mu);
    if (g_blocks == 0) { /* nothing left to check: give the table back */
        free(g_table);
        g_table = NULL;
        g_cap = 0;
    }
    pthread_mutex_unlock(&g_mu);
}

void ae_test_alloc_fail_at(long n)
{
    pthread_mutex_lock(&g_mu);
    if (n > 0) {
        g_count = 0;
        g_failed = 0;
    }
    g_fail_at = n > 0 ? n : 0;
    pthread_mutex_unlock(&g_mu);
}

static long read_locked(const long *v)
{
    long x;
    pthread_mutex_lock(&g_mu);
    x = *v;
    pthread_mutex_unlock(&g_mu);
    return x;
}

long ae_test_alloc_count(void) { return read_locked(&g_count); }
long ae_test_alloc_failed(void) { return read_locked(&g_failed); }
long ae_test_alloc_live_bytes(void) { return read_locked(&g_bytes); }
long ae_test_alloc_bad_frees(void) { return read_locked(&g_bad); }

long ae_test_alloc_live_blocks(void)
{
    long x;
    pthread_mutex_lock(&g_mu);
    x = (long)g_blocks;
    pthread_mutex_unlock(&g_mu);
    return x;
}

int ae_test_alloc_check(void)
{
    int rc = 0;
    pthread_mutex_lock(&g_mu);
    if (g_blocks) {
        size_t shown = 0;
        fprintf(stderr, "ae_test_alloc: %zu blocks (%ld bytes) still alive:\n", g_blocks,
                g_bytes);
        for (size_t i = 0; i < g_cap; i++)
            if (g_table[i].ptr && shown++ < 20)
                fprintf(stderr, "ae_test_alloc:   allocation #%ld, %zu bytes\n",
                        g_table[i].number, g_table[i].size);
        if (shown > 20) fprintf(stderr, "ae_test_alloc:   ... and %zu more\n", shown - 20);
        rc = -1;
    }
    if (g_bad) {
        fprintf(stderr, "ae_test_alloc: %ld frees or resizes with a wrong size or pointer\n",
                g_bad);
        g_bad = 0;
        rc = -1;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

int ae_test_alloc_teardown(void **state)
{
    (void)state;
    ae_test_alloc_fail_at(0);
    return ae_test_alloc_check();
}
