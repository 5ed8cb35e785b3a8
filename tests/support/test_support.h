/*
 * Shared helpers of the test programs (library ae_test_support, see
 * tests/support/README.md): one checking allocator, one generator of test
 * data, one set of file helpers. Nothing here calls cmocka: the helpers
 * return a status (0 / -1, or NULL) and say why on stderr, and the suites
 * assert on it. Only the data generators abort, when malloc itself fails.
 */
#ifndef AE_TEST_SUPPORT_H
#define AE_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "autoenc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- checking allocator (alloc.c) ----------------------------------------------
 * An ae_alloc_fn that keeps a table of the live blocks (size and allocation
 * number), so it can report leaks block by block, catch a free or resize
 * with a size other than the block's (or of a block it never handed out),
 * and fail the n-th allocation on request. Allocations are numbered from 1;
 * a resize counts as an allocation (it can fail), a free does not. Thread
 * safe: the library's worker threads allocate through it.
 * AE_TEST_ALLOC_TRAP=1 in the environment aborts at the first bad free
 * (for a debugger). */

/* The hook itself (ud is ignored). */
void *ae_test_alloc(void *ud, void *ptr, size_t old_size, size_t new_size);
/* Installs the hook with counters at zero and injection off. 0, or -1 when
 * ae_set_allocator refuses (library blocks are alive). */
int ae_test_alloc_install(void);
/* Restores the default allocator. */
void ae_test_alloc_uninstall(void);
/* n >= 1: restarts the count and fails the n-th allocation from now (only
 * that one). 0: no more failures; ae_test_alloc_failed() keeps its value. */
void ae_test_alloc_fail_at(long n);
/* Allocations since the last ae_test_alloc_fail_at(n >= 1) or install. */
long ae_test_alloc_count(void);
/* Allocations failed on purpose since the last ae_test_alloc_fail_at(n >= 1). */
long ae_test_alloc_failed(void);
long ae_test_alloc_live_blocks(void);
long ae_test_alloc_live_bytes(void);
/* Frees and resizes with a wrong size or an unknown pointer since the last
 * ae_test_alloc_check (each one is also reported on stderr when it happens). */
long ae_test_alloc_bad_frees(void);
/* 0 when no block is alive and no free was bad; otherwise prints the live
 * blocks (number and size) to stderr, clears the bad-free count and
 * returns -1. */
int ae_test_alloc_check(void);
/* A cmocka setup/teardown (state unused): turns injection off, then
 * ae_test_alloc_check(). */
int ae_test_alloc_teardown(void **state);

/* ---- test data (rows.c) ----------------------------------------------------------
 * One deterministic generator for every suite: the same seed gives the same
 * data on every platform (xoshiro256**). */
typedef struct ae_test_rng {
    uint64_t s[4];
} ae_test_rng;

void ae_test_rng_seed(ae_test_rng *r, uint64_t seed);
/* Uniform in [0, 1). */
double ae_test_rng_uniform(ae_test_rng *r);
/* x[0..n) uniform between lo and hi (in float: hi itself may occur). */
void ae_test_fill(ae_test_rng *r, float *x, size_t n, double lo, double hi);
/* A malloc'ed n x d matrix filled as above, from its own seed. */
float *ae_test_rows(size_t n, size_t d, uint64_t seed);
float *ae_test_rows_range(size_t n, size_t d, uint64_t seed, double lo, double hi);
/* n malloc'ed uniform bytes (uint8 pixels). */
unsigned char *ae_test_bytes(size_t n, uint64_t seed);
/* n labelled rows around k centres (k x d): row i picks a centre c at
 * random, labels[i] = c (labels may be NULL), and each coordinate is the
 * centre's plus uniform noise in [-spread, spread). */
void ae_test_clusters(ae_test_rng *r, float *x, int32_t *labels, size_t n, size_t d,
                      const float *centres, size_t k, double spread);
/* A 28 x 28 uint8 drawing (0 background, 255 ink) of a shape with random
 * position and size: a ring ("clock"), a cross ("star") or a box ("book"). */
typedef enum ae_test_shape { AE_TEST_RING, AE_TEST_CROSS, AE_TEST_BOX } ae_test_shape;
void ae_test_draw(unsigned char img[784], ae_test_shape shape, ae_test_rng *r);

/* ---- files (files.c) ----------------------------------------------------------------- */
/* Where ae_test_tmpdir_create makes the folder. */
typedef enum ae_test_where {
    AE_TEST_TMP,  /* $TMPDIR, or /tmp when unset or empty */
    AE_TEST_SHM,  /* /dev/shm when writable (no fsync cost), else as AE_TEST_TMP */
    AE_TEST_CWD   /* the working directory (a real disk, where fsync means something) */
} ae_test_where;
/* Makes the process's temporary folder <where>/<prefix>XXXXXX; returns its
 * path, or NULL. One folder per process at a time. */
const char *ae_test_tmpdir_create(const char *prefix, ae_test_where where);
/* The folder's path ("" before ae_test_tmpdir_create). */
const char *ae_test_tmpdir(void);
/* Removes the folder and everything in it. 0 or -1. */
int ae_test_tmpdir_remove(void);
/* A cmocka group setup / teardown for the usual suite: a temporary folder
 * (AE_TEST_TMP, prefix "ae_test_") and the checking allocator installed.
 * The teardown fails when library blocks are still alive. */
int ae_test_group_setup(void **state);
int ae_test_group_teardown(void **state);
/* "<tmpdir>/<printf(fmt, ...)>" in one of 8 per-thread rotating buffers:
 * valid until the 8th next call on the same thread. */
const char *ae_test_path(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Writes (replaces) / appends n bytes. 0 or -1. */
int ae_test_write_file(const char *path, const void *data, size_t n);
int ae_test_append_file(const char *path, const void *data, size_t n);
/* The whole file, malloc'ed with one NUL byte after it; *len its size.
 * NULL (and *len 0) when it cannot be read. */
unsigned char *ae_test_read_file(const char *path, size_t *len);
/* The size in bytes, or -1. */
long ae_test_file_size(const char *path);
/* Overwrites n bytes at offset in place (a corruption). 0 or -1. */
int ae_test_patch_file(const char *path, size_t offset, const void *bytes, size_t n);
/* Cuts the file to len bytes. 0 or -1. */
int ae_test_truncate_file(const char *path, size_t len);
/* 1 when both files exist and hold the same bytes, else 0. */
int ae_test_files_equal(const char *a, const char *b);
/* Counts the entries of dir whose name contains `part` and copies up to cap
 * names into names (may be NULL). -1 when dir cannot be read. */
int ae_test_find_names(const char *dir, const char *part, char (*names)[256], int cap);
/* Model and index files end in the CRC-32 of every byte before it:
 * recomputes it after an edit (len >= 4). */
void ae_test_fix_crc32(unsigned char *buf, size_t len);
/* A .npy file with an arbitrary header: magic, version major.0, the header
 * length (2 bytes for version 1, 4 otherwise), dict, spaces up to a multiple
 * of align (0: none), '\n', then len data bytes. 0 or -1. */
int ae_test_write_npy(const char *path, int major, const char *dict, size_t align,
                      const void *data, size_t len);
/* A version-1 uint8 .npy file of the given shape (rank 1..4), as numpy
 * writes it. 0 or -1. */
int ae_test_write_npy_u8(const char *path, int rank, const size_t *dims,
                         const unsigned char *data);

#ifdef __cplusplus
}
#endif
#endif /* AE_TEST_SUPPORT_H */
