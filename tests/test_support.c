/* The shared test helpers themselves (tests/support): the checking
 * allocator finds what it promises to find (leaks, wrong sizes, unknown
 * pointers), counts from 1 and fails exactly the allocation asked for, also
 * under several threads; the generator is deterministic per seed; the file
 * helpers write what the library reads back. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"
#include "internal.h"
#include "test_support.h"

/* ---- checking allocator ------------------------------------------------------ */
static void *a(size_t n) { return ae_test_alloc(NULL, NULL, 0, n); }
static void *re(void *p, size_t old, size_t n) { return ae_test_alloc(NULL, p, old, n); }
static void fr(void *p, size_t n) { ae_test_alloc(NULL, p, n, 0); }

static void alloc_counts_from_one(void **state)
{
    void *p, *q, *r;
    (void)state;
    ae_test_alloc_fail_at(2);
    p = a(10);
    assert_non_null(p);
    assert_null(a(20)); /* the 2nd */
    assert_int_equal(ae_test_alloc_failed(), 1);
    q = a(5);
    assert_non_null(q);
    assert_int_equal(ae_test_alloc_count(), 3);
    assert_int_equal(ae_test_alloc_live_blocks(), 2);
    assert_int_equal(ae_test_alloc_live_bytes(), 15);
    /* a resize is an allocation: it can fail, and the block stays as it was */
    ae_test_alloc_fail_at(1);
    assert_null(re(p, 10, 100));
    assert_int_equal(ae_test_alloc_live_bytes(), 15);
    r = re(p, 10, 100); /* the 2nd: goes through */
    assert_non_null(r);
    assert_int_equal(ae_test_alloc_live_bytes(), 105);
    assert_int_equal(ae_test_alloc_failed(), 1);
    /* off: nothing fails, the count of failures stays */
    ae_test_alloc_fail_at(0);
    fr(r, 100);
    fr(q, 5);
    assert_int_equal(ae_test_alloc_failed(), 1);
    assert_null(a(0));
    assert_int_equal(ae_test_alloc_check(), 0);
}

static void alloc_reports_leaks_and_bad_frees(void **state)
{
    int not_a_block;
    void *p = a(33);
    (void)state;
    assert_int_equal(ae_test_alloc_check(), -1); /* alive */
    assert_int_equal(ae_test_alloc_live_blocks(), 1);
    assert_int_equal(ae_test_alloc_live_bytes(), 33);
    fr(p, 32); /* freed, but with the wrong size */
    assert_int_equal(ae_test_alloc_live_blocks(), 0);
    assert_int_equal(ae_test_alloc_bad_frees(), 1);
    p = re(a(8), 8, 16);
    assert_non_null(p);
    assert_int_equal(ae_test_alloc_bad_frees(), 1);
    p = re(p, 15, 24); /* resized with the wrong old size: reported, still done */
    assert_non_null(p);
    assert_int_equal(ae_test_alloc_bad_frees(), 2);
    assert_int_equal(ae_test_alloc_live_bytes(), 24);
    fr(p, 24);
    fr(&not_a_block, sizeof not_a_block); /* never handed out: reported, not freed */
    assert_int_equal(ae_test_alloc_bad_frees(), 3);
    assert_int_equal(ae_test_alloc_check(), -1);
    assert_int_equal(ae_test_alloc_bad_frees(), 0); /* the check clears the count */
    assert_int_equal(ae_test_alloc_check(), 0);
}

/* Many blocks (the table grows several times), freed in a scrambled order. */
static void alloc_many_blocks(void **state)
{
    enum { N = 50000 };
    void **p = malloc(N * sizeof *p);
    long bytes = 0;
    (void)state;
    for (size_t i = 0; i < N; i++) {
        p[i] = a(1 + i % 97);
        assert_non_null(p[i]);
        bytes += (long)(1 + i % 97);
    }
    assert_int_equal(ae_test_alloc_live_blocks(), N);
    assert_int_equal(ae_test_alloc_live_bytes(), bytes);
    for (size_t k = 0; k < N; k++) {
        size_t i = (k * 7919) % N; /* 7919 is prime to N: every block once */
        fr(p[i], 1 + i % 97);
        if (k % 4999 == 0) assert_int_equal(ae_test_alloc_live_blocks(), N - 1 - (long)k);
    }
    assert_int_equal(ae_test_alloc_bad_frees(), 0);
    assert_int_equal(ae_test_alloc_check(), 0);
    free(p);
}

static void *churn(void *arg)
{
    void *live[64] = {0};
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        int s = i % 64;
        size_t n = (size_t)(8 + s);
        if (live[s]) live[s] = i % 3 ? (fr(live[s], n), NULL) : re(live[s], n, n);
        else live[s] = a(n);
    }
    for (int s = 0; s < 64; s++)
        if (live[s]) fr(live[s], (size_t)(8 + s));
    return NULL;
}

static void alloc_threads(void **state)
{
    pthread_t th[4];
    (void)state;
    for (int t = 0; t < 4; t++) assert_int_equal(pthread_create(&th[t], NULL, churn, NULL), 0);
    for (int t = 0; t < 4; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    assert_int_equal(ae_test_alloc_bad_frees(), 0);
    assert_int_equal(ae_test_alloc_check(), 0);
}

/* Installed as the library's allocator: the library's blocks are seen. */
static void alloc_through_the_library(void **state)
{
    ae_index *idx = NULL;
    (void)state;
    assert_int_equal(ae_index_create(&idx, AE_INDEX_BRUTE, AE_INDEX_L2, 4), AE_OK);
    assert_true(ae_test_alloc_live_blocks() > 0);
    ae_index_free(idx);
    assert_int_equal(ae_test_alloc_live_blocks(), 0);
    ae_test_alloc_fail_at(1);
    assert_int_equal(ae_index_create(&idx, AE_INDEX_BRUTE, AE_INDEX_L2, 4), AE_ERR_NOMEM);
    assert_int_equal(ae_test_alloc_failed(), 1);
    assert_null(idx);
}

/* ---- test data ----------------------------------------------------------------- */
static void rows_are_deterministic(void **state)
{
    float *x = ae_test_rows(50, 7, 3), *y = ae_test_rows(50, 7, 3), *z = ae_test_rows(50, 7, 4);
    float *w = ae_test_rows_range(50, 7, 3, -2.0, 2.0);
    unsigned char *b1 = ae_test_bytes(1000, 9), *b2 = ae_test_bytes(1000, 9);
    int seen[256] = {0}, distinct = 0;
    (void)state;
    assert_memory_equal(x, y, 350 * sizeof *x);
    assert_memory_not_equal(x, z, 350 * sizeof *x);
    for (size_t i = 0; i < 350; i++) {
        assert_true(x[i] >= 0.0f && x[i] <= 1.0f);
        assert_true(w[i] >= -2.0f && w[i] <= 2.0f);
    }
    assert_memory_equal(b1, b2, 1000);
    for (size_t i = 0; i < 1000; i++) seen[b1[i]] = 1;
    for (int v = 0; v < 256; v++) distinct += seen[v];
    assert_true(distinct > 200); /* 1000 draws cover most byte values */
    free(x);
    free(y);
    free(z);
    free(w);
    free(b1);
    free(b2);
}

static void clusters_are_labelled(void **state)
{
    enum { N = 400, D = 3, K = 4 };
    const float centres[K * D] = {0, 0, 0, 10, 0, 0, 0, 10, 0, 0, 0, 10};
    float x[N * D];
    int32_t labels[N];
    int count[K] = {0};
    ae_test_rng r;
    (void)state;
    ae_test_rng_seed(&r, 5);
    ae_test_clusters(&r, x, labels, N, D, centres, K, 0.5);
    for (size_t i = 0; i < N; i++) {
        assert_true(labels[i] >= 0 && labels[i] < K);
        count[labels[i]]++;
        for (size_t j = 0; j < D; j++)
            assert_true(x[i * D + j] - centres[labels[i] * D + j] >= -0.5f &&
                        x[i * D + j] - centres[labels[i] * D + j] <= 0.5f);
    }
    for (int c = 0; c < K; c++) assert_true(count[c] > N / K / 2);
}

static void drawings(void **state)
{
    unsigned char img[3][784];
    ae_test_rng r;
    (void)state;
    ae_test_rng_seed(&r, 1);
    for (int s = 0; s < 3; s++) {
        size_t ink = 0;
        ae_test_draw(img[s], (ae_test_shape)s, &r);
        for (size_t i = 0; i < 784; i++) {
            assert_true(img[s][i] == 0 || img[s][i] == 255);
            ink += img[s][i] != 0;
        }
        assert_true(ink > 10 && ink < 392);
    }
    assert_memory_not_equal(img[0], img[1], 784);
    assert_memory_not_equal(img[1], img[2], 784);
}

/* ---- files ------------------------------------------------------------------- */
static void file_round_trips(void **state)
{
    static const char text[] = "0123456789";
    unsigned char *b;
    size_t len;
    (void)state;
    assert_non_null(strstr(ae_test_path("x%d.bin", 7), ae_test_tmpdir()));
    assert_non_null(strstr(ae_test_path("x%d.bin", 7), "/x7.bin"));
    assert_int_equal(ae_test_write_file(ae_test_path("a"), text, 10), 0);
    assert_int_equal(ae_test_append_file(ae_test_path("a"), "ab", 2), 0);
    assert_int_equal(ae_test_file_size(ae_test_path("a")), 12);
    assert_int_equal(ae_test_patch_file(ae_test_path("a"), 3, "XY", 2), 0);
    b = ae_test_read_file(ae_test_path("a"), &len);
    assert_non_null(b);
    assert_int_equal(len, 12);
    assert_string_equal((char *)b, "012XY56789ab"); /* NUL-terminated */
    free(b);
    assert_int_equal(ae_test_truncate_file(ae_test_path("a"), 4), 0);
    assert_int_equal(ae_test_file_size(ae_test_path("a")), 4);
    assert_int_equal(ae_test_write_file(ae_test_path("b"), "012X", 4), 0);
    assert_true(ae_test_files_equal(ae_test_path("a"), ae_test_path("b")));
    assert_int_equal(ae_test_write_file(ae_test_path("b"), "012Y", 4), 0);
    assert_false(ae_test_files_equal(ae_test_path("a"), ae_test_path("b")));
    assert_false(ae_test_files_equal(ae_test_path("a"), ae_test_path("missing")));
    assert_int_equal(ae_test_file_size(ae_test_path("missing")), -1);
    assert_null(ae_test_read_file(ae_test_path("missing"), &len));
    assert_int_equal(len, 0);
    assert_int_equal(ae_test_patch_file(ae_test_path("missing"), 0, "x", 1), -1);
    assert_int_equal(ae_test_write_file(ae_test_path("empty"), NULL, 0), 0);
    assert_int_equal(ae_test_file_size(ae_test_path("empty")), 0);
    {
        char names[4][256];
        assert_int_equal(ae_test_write_file(ae_test_path("m.tmp-1"), "", 0), 0);
        assert_int_equal(ae_test_find_names(ae_test_tmpdir(), ".tmp-", names, 4), 1);
        assert_string_equal(names[0], "m.tmp-1");
        assert_int_equal(ae_test_find_names(ae_test_tmpdir(), "nothing", NULL, 0), 0);
        assert_int_equal(ae_test_find_names(ae_test_path("missing"), "", NULL, 0), -1);
    }
}

/* The checksum helper agrees with the library's files: recomputing it on a
 * saved index changes nothing, and an edit with the checksum fixed gets past
 * the checksum test (to the field check behind it). */
static void crc_matches_the_formats(void **state)
{
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    ae_index *idx = NULL;
    unsigned char *b, *copy;
    size_t len;
    (void)state;
    assert_int_equal(ae_index_create(&idx, AE_INDEX_BRUTE, AE_INDEX_L2, 2), AE_OK);
    assert_int_equal(ae_index_build(idx, x, 4, NULL, NULL), AE_OK);
    assert_int_equal(ae_index_save(idx, ae_test_path("i.aeidx")), AE_OK);
    ae_index_free(idx);
    b = ae_test_read_file(ae_test_path("i.aeidx"), &len);
    assert_non_null(b);
    copy = malloc(len);
    memcpy(copy, b, len);
    ae_test_fix_crc32(copy, len);
    assert_memory_equal(copy, b, len);
    copy[12] = 9; /* backend */
    assert_int_equal(ae_test_write_file(ae_test_path("j.aeidx"), copy, len), 0);
    assert_int_equal(ae_index_load(&idx, ae_test_path("j.aeidx")), AE_ERR_CHECKSUM);
    ae_test_fix_crc32(copy, len);
    assert_int_equal(ae_test_write_file(ae_test_path("j.aeidx"), copy, len), 0);
    assert_int_equal(ae_index_load(&idx, ae_test_path("j.aeidx")), AE_ERR_FORMAT);
    free(b);
    free(copy);
}

static void npy_writers(void **state)
{
    static const unsigned char px[2 * 3 * 2] = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};
    size_t dims[3] = {2, 3, 2}, got[AE_TENSOR_MAX_RANK];
    ae_npy_dtype dtype;
    int rank;
    ae_tensor *t = NULL;
    (void)state;
    for (int r = 1; r <= 3; r++) {
        size_t d1[3] = {12, 0, 0}, d2[3] = {4, 3, 0};
        const size_t *d = r == 1 ? d1 : r == 2 ? d2 : dims;
        assert_int_equal(ae_test_write_npy_u8(ae_test_path("u8.npy"), r, d, px), 0);
        assert_int_equal((ae_test_file_size(ae_test_path("u8.npy")) - 12) % 64, 0);
        assert_int_equal(ae_npy_info(&dtype, &rank, got, ae_test_path("u8.npy")), AE_OK);
        assert_int_equal(dtype, AE_NPY_U8);
        assert_int_equal(rank, r);
        for (int i = 0; i < r; i++) assert_int_equal(got[i], d[i]);
    }
    assert_int_equal(ae_npy_load(&t, ae_test_path("u8.npy"), 1.0f), AE_OK);
    for (size_t i = 0; i < 12; i++) assert_true(ae_tensor_data(t)[i] == (float)px[i]);
    ae_tensor_free(t);
    /* version 2 (4 length bytes), no padding */
    assert_int_equal(ae_test_write_npy(ae_test_path("v2.npy"), 2,
                                       "{'descr': '|u1', 'fortran_order': False, 'shape': (12,)}",
                                       0, px, 12),
                     0);
    assert_int_equal(ae_npy_info(&dtype, &rank, got, ae_test_path("v2.npy")), AE_OK);
    assert_int_equal(rank, 1);
    assert_int_equal(got[0], 12);
}

static void tmpdir_removal_is_recursive(void **state)
{
    char dir[1024];
    struct stat st;
    (void)state;
    snprintf(dir, sizeof dir, "%s", ae_test_tmpdir());
    assert_int_equal(mkdir(ae_test_path("sub"), 0700), 0);
    assert_int_equal(mkdir(ae_test_path("sub/deeper"), 0700), 0);
    assert_int_equal(ae_test_write_file(ae_test_path("sub/deeper/f"), "x", 1), 0);
    assert_int_equal(ae_test_tmpdir_remove(), 0);
    assert_int_not_equal(stat(dir, &st), 0);
    assert_string_equal(ae_test_tmpdir(), "");
    /* a new one for the group teardown to remove */
    assert_non_null(ae_test_tmpdir_create("ae_test_", AE_TEST_SHM));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(alloc_counts_from_one, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(alloc_reports_leaks_and_bad_frees, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(alloc_many_blocks, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(alloc_threads, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(alloc_through_the_library, ae_test_alloc_teardown),
        cmocka_unit_test(rows_are_deterministic),
        cmocka_unit_test(clusters_are_labelled),
        cmocka_unit_test(drawings),
        cmocka_unit_test_teardown(file_round_trips, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(crc_matches_the_formats, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(npy_writers, ae_test_alloc_teardown),
        cmocka_unit_test(tmpdir_removal_is_recursive),
    };
    return cmocka_run_group_tests_name("support", tests, ae_test_group_setup, ae_test_group_teardown);
}
