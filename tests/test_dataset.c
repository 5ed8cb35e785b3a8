/* ae_dataset: loading a folder of generated <category>.npy files, the
 * per-category cap, the stratified split, determinism, scaling, errors. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

#include "test_support.h"

/* <tmpdir>/a, or <tmpdir>/a/b */
static const char *path2(const char *a, const char *b)
{
    return b ? ae_test_path("%s/%s", a, b) : ae_test_path("%s", a);
}

/* uint8 .npy of `rows` rows, shape (rows, 784) or (rows, 28, 28). Row r of
 * category c: pixel 0 = c, pixel 1 = r, pixel 2 = 255, pixel 3 = 0, the rest
 * a pattern. */
static void write_u8(const char *path, int cat, size_t rows, int square)
{
    unsigned char *px = malloc(rows * 784);
    size_t flat[2] = {rows, 784}, sq[3] = {rows, 28, 28};
    assert_non_null(px);
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < 784; i++) {
            int v = i == 0 ? cat : i == 1 ? (int)r : i == 2 ? 255 : i == 3 ? 0
                                                                         : (int)((r * 7 + i) % 256);
            px[r * 784 + i] = (unsigned char)v;
        }
    assert_int_equal(ae_test_write_npy_u8(path, square ? 3 : 2, square ? sq : flat, px), 0);
    free(px);
}

static const size_t SIZES[3] = {37, 12, 2}; /* a.npy, b_c.npy, c_d_e.npy */

static int group_setup(void **state)
{
    if (ae_test_group_setup(state) != 0) return -1;
    /* "three": three categories of unequal sizes, plus things to skip */
    if (mkdir(path2("three", NULL), 0700) != 0) return -1;
    write_u8(path2("three", "b_c.npy"), 1, SIZES[1], 0);
    write_u8(path2("three", "a.npy"), 0, SIZES[0], 0);
    write_u8(path2("three", "c_d_e.npy"), 2, SIZES[2], 0);
    write_u8(path2("three", ".hidden.npy"), 9, 3, 0);
    if (ae_test_write_file(path2("three", "README.md"), "not data\n", 9) != 0) return -1;
    if (mkdir(path2("three", "sub.npy"), 0700) != 0) return -1;
    /* "square": (N, 28, 28) files; "mixed": one (N,784) and one (N,28,28) */
    if (mkdir(path2("square", NULL), 0700) != 0) return -1;
    write_u8(path2("square", "x.npy"), 0, 4, 1);
    write_u8(path2("square", "y.npy"), 1, 5, 1);
    if (mkdir(path2("mixed", NULL), 0700) != 0) return -1;
    write_u8(path2("mixed", "x.npy"), 0, 4, 1);
    write_u8(path2("mixed", "y.npy"), 1, 5, 0);
    /* "single": a category of one row */
    if (mkdir(path2("single", NULL), 0700) != 0) return -1;
    write_u8(path2("single", "one.npy"), 0, 1, 0);
    write_u8(path2("single", "two.npy"), 1, 2, 0);
    write_u8(path2("single", "ten.npy"), 2, 10, 0);
    /* "empty", "bad" (a malformed file), "width" (different widths) */
    if (mkdir(path2("empty", NULL), 0700) != 0) return -1;
    if (mkdir(path2("bad", NULL), 0700) != 0) return -1;
    write_u8(path2("bad", "a.npy"), 0, 3, 0);
    {
        static const char cut[] = "\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'";
        if (ae_test_write_file(path2("bad", "b.npy"), cut, sizeof cut - 1) != 0) return -1;
    }
    if (mkdir(path2("width", NULL), 0700) != 0) return -1;
    write_u8(path2("width", "a.npy"), 0, 3, 0);
    {
        float v[6] = {0.f, .5f, 1.f, .25f, .75f, 1.f};
        size_t dims[2] = {2, 3};
        if (ae_npy_save_f32(path2("width", "b.npy"), v, 2, dims) != AE_OK) return -1;
        /* "float": float32 files taken as they are; "nan": with a NaN */
        if (mkdir(path2("float", NULL), 0700) != 0) return -1;
        dims[1] = 3;
        if (ae_npy_save_f32(path2("float", "p.npy"), v, 2, dims) != AE_OK) return -1;
        {
            size_t one_row[2] = {1, 3};
            if (ae_npy_save_f32(path2("float", "q.npy"), v, 2, one_row) != AE_OK) return -1;
        }
        if (mkdir(path2("nan", NULL), 0700) != 0) return -1;
        v[4] = NAN;
        if (ae_npy_save_f32(path2("nan", "p.npy"), v, 2, dims) != AE_OK) return -1;
    }
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */
static ae_dataset *load(const char *dir, size_t cap, double frac, uint64_t seed)
{
    ae_dataset *ds = NULL;
    ae_status st = ae_dataset_load(&ds, path2(dir, NULL), cap, frac, seed);
    if (st != AE_OK) print_error("load %s: %d %s\n", dir, st, ae_last_error());
    assert_int_equal(st, AE_OK);
    assert_non_null(ds);
    return ds;
}

/* Every row's pixels match its (label, source row); every (label, row < n_c)
 * occurs exactly once across train and test. */
static void check_cover(const ae_dataset *ds, const size_t *rows_per_cat)
{
    const float *x[2];
    const int32_t *y[2];
    const size_t *src[2];
    size_t n[2], w = ae_dataset_row_width(ds), ncat = ae_dataset_num_categories(ds), total = 0;
    char *seen[16] = {0};
    assert_int_equal(ae_dataset_train(&x[0], &y[0], &n[0], ds), AE_OK);
    assert_int_equal(ae_dataset_test(&x[1], &y[1], &n[1], ds), AE_OK);
    assert_int_equal(ae_dataset_sources(&src[0], &src[1], ds), AE_OK);
    assert_true(ncat <= 16);
    for (size_t c = 0; c < ncat; c++) {
        seen[c] = calloc(rows_per_cat[c], 1);
        total += rows_per_cat[c];
    }
    assert_int_equal(n[0] + n[1], total);
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < n[s]; i++) {
            const float *row = x[s] + i * w;
            size_t c = (size_t)y[s][i], r = src[s][i];
            assert_true(c < ncat);
            assert_true(r < rows_per_cat[c]);
            assert_int_equal(seen[c][r], 0); /* disjoint, no duplicate */
            seen[c][r] = 1;
            assert_float_equal(row[0], c / 255.0f, 1e-7);
            assert_float_equal(row[1], r / 255.0f, 1e-7);
            assert_float_equal(row[2], 1.0f, 1e-6);
            assert_true(row[3] == 0.0f);
            for (size_t k = 0; k < w; k++) assert_true(row[k] >= 0.0f && row[k] <= 1.0f);
        }
    for (size_t c = 0; c < ncat; c++) {
        for (size_t r = 0; r < rows_per_cat[c]; r++) assert_int_equal(seen[c][r], 1);
        free(seen[c]);
    }
}

/* ---- tests -------------------------------------------------------------------- */
static void names_counts_split(void **state)
{
    ae_dataset *ds;
    const float *tx;
    const int32_t *ty;
    size_t ntr, nte, a, b;
    int rank;
    size_t dims[AE_TENSOR_MAX_RANK];
    (void)state;
    ds = load("three", 0, AE_DATASET_DEFAULT_TEST_FRACTION, 7);
    assert_int_equal(ae_dataset_num_categories(ds), 3);
    assert_string_equal(ae_dataset_category_name(ds, 0), "a");
    assert_string_equal(ae_dataset_category_name(ds, 1), "b c");
    assert_string_equal(ae_dataset_category_name(ds, 2), "c d e");
    assert_null(ae_dataset_category_name(ds, 3));
    assert_int_equal(ae_dataset_row_width(ds), 784);
    assert_int_equal(ae_dataset_row_shape(&rank, dims, ds), AE_OK);
    assert_int_equal(rank, 1);
    assert_int_equal(dims[0], 784);
    /* floor(n * 0.1 + 0.5), at least 1 and at most n - 1 when n >= 2 */
    assert_int_equal(ae_dataset_category_counts(&a, &b, ds, 0), AE_OK);
    assert_int_equal(b, 4); /* 3.7 -> 4 */
    assert_int_equal(a, 33);
    assert_int_equal(ae_dataset_category_counts(&a, &b, ds, 1), AE_OK);
    assert_int_equal(b, 1); /* 1.2 -> 1 */
    assert_int_equal(a, 11);
    assert_int_equal(ae_dataset_category_counts(&a, &b, ds, 2), AE_OK);
    assert_int_equal(b, 1); /* 0.2 -> 0 -> at least 1 */
    assert_int_equal(a, 1);
    assert_int_equal(ae_dataset_category_counts(&a, &b, ds, 3), AE_ERR_RANGE);
    assert_int_equal(ae_dataset_train(NULL, NULL, &ntr, ds), AE_OK);
    assert_int_equal(ae_dataset_test(&tx, &ty, &nte, ds), AE_OK);
    assert_int_equal(ntr, 45);
    assert_int_equal(nte, 6);
    /* test rows grouped by label, in file order within a label */
    {
        const size_t *tsrc;
        ae_dataset_sources(NULL, &tsrc, ds);
        for (size_t i = 1; i < nte; i++)
            assert_true(ty[i - 1] < ty[i] || (ty[i - 1] == ty[i] && tsrc[i - 1] < tsrc[i]));
    }
    check_cover(ds, SIZES);
    ae_dataset_free(ds);
    ae_dataset_free(NULL);
}

static void per_category_cap_takes_first_rows(void **state)
{
    ae_dataset *ds;
    size_t capped[3] = {5, 5, 2}, a, b;
    const size_t *s0, *s1;
    size_t n0, n1;
    (void)state;
    ds = load("three", 5, 0.2, 3);
    for (size_t c = 0; c < 3; c++) {
        assert_int_equal(ae_dataset_category_counts(&a, &b, ds, c), AE_OK);
        assert_int_equal(a + b, capped[c]);
        assert_int_equal(b, 1);
    }
    check_cover(ds, capped); /* sources are rows 0..cap-1: the FIRST rows */
    ae_dataset_sources(&s0, &s1, ds);
    ae_dataset_train(NULL, NULL, &n0, ds);
    ae_dataset_test(NULL, NULL, &n1, ds);
    for (size_t i = 0; i < n0; i++) assert_true(s0[i] < 5);
    for (size_t i = 0; i < n1; i++) assert_true(s1[i] < 5);
    ae_dataset_free(ds);
    /* a cap above every size changes nothing */
    ds = load("three", 1000, 0.1, 3);
    ae_dataset_train(NULL, NULL, &n0, ds);
    ae_dataset_test(NULL, NULL, &n1, ds);
    assert_int_equal(n0 + n1, 51);
    ae_dataset_free(ds);
}

static void deterministic_per_seed(void **state)
{
    ae_dataset *d1, *d2, *d3;
    const float *x1, *x2, *x3;
    const int32_t *y1, *y2, *y3, *t1, *t2;
    const size_t *s1, *s2, *s3, *u1, *u2, *u3;
    size_t n1, n2, n3, m1, m2;
    (void)state;
    d1 = load("three", 0, 0.25, 1234);
    d2 = load("three", 0, 0.25, 1234);
    d3 = load("three", 0, 0.25, 1235);
    ae_dataset_train(&x1, &y1, &n1, d1);
    ae_dataset_train(&x2, &y2, &n2, d2);
    ae_dataset_train(&x3, &y3, &n3, d3);
    ae_dataset_test(NULL, &t1, &m1, d1);
    ae_dataset_test(NULL, &t2, &m2, d2);
    ae_dataset_sources(&s1, &u1, d1);
    ae_dataset_sources(&s2, &u2, d2);
    ae_dataset_sources(&s3, &u3, d3);
    assert_int_equal(n1, n2);
    assert_int_equal(n1, n3); /* counts depend only on sizes and fraction */
    assert_int_equal(m1, m2);
    assert_memory_equal(x1, x2, n1 * 784 * sizeof(float));
    assert_memory_equal(y1, y2, n1 * sizeof *y1);
    assert_memory_equal(s1, s2, n1 * sizeof *s1);
    assert_memory_equal(t1, t2, m1 * sizeof *t1);
    assert_memory_equal(u1, u2, m1 * sizeof *u1);
    /* another seed: another order (and, here, other held-out rows) */
    {
        int same_order = 1, same_test = 1;
        for (size_t i = 0; i < n1; i++)
            if (y1[i] != y3[i] || s1[i] != s3[i]) same_order = 0;
        for (size_t i = 0; i < m1; i++)
            if (u1[i] != u3[i]) same_test = 0;
        assert_false(same_order);
        assert_false(same_test);
    }
    /* shuffled across categories: labels are not sorted */
    {
        int sorted = 1;
        for (size_t i = 1; i < n1; i++)
            if (y1[i - 1] > y1[i]) sorted = 0;
        assert_false(sorted);
    }
    ae_dataset_free(d1);
    ae_dataset_free(d2);
    ae_dataset_free(d3);
    /* the last 20% of the training rows (fit's validation part) usually mix
     * categories: with 45 rows of which 33 are 'a', a last 9 all 'a' has a
     * probability of about 6%, so most of 20 seeds must show a mix */
    {
        int mixed_seeds = 0;
        for (uint64_t seed = 1; seed <= 20; seed++) {
            ae_dataset *d = load("three", 0, 0.1, seed);
            const int32_t *y;
            size_t n;
            int mixed = 0;
            ae_dataset_train(NULL, &y, &n, d);
            for (size_t i = n - n / 5; i < n; i++)
                if (y[i] != y[n - 1]) mixed = 1;
            mixed_seeds += mixed;
            ae_dataset_free(d);
        }
        assert_true(mixed_seeds >= 15);
    }
}

static void split_edge_cases(void **state)
{
    ae_dataset *ds;
    size_t a, b, n;
    const float *x;
    const int32_t *y;
    (void)state;
    ds = load("single", 0, 0.1, 5);
    assert_string_equal(ae_dataset_category_name(ds, 0), "one");
    ae_dataset_category_counts(&a, &b, ds, 0);
    assert_int_equal(a, 1); /* a lone row trains */
    assert_int_equal(b, 0);
    ae_dataset_category_counts(&a, &b, ds, 1);
    assert_int_equal(b, 1);
    ae_dataset_category_counts(&a, &b, ds, 2);
    assert_int_equal(b, 1);
    assert_int_equal(a, 1);
    ae_dataset_free(ds);
    /* a large fraction still leaves one training row per category */
    ds = load("single", 0, 0.99, 5);
    ae_dataset_category_counts(&a, &b, ds, 1);
    assert_int_equal(a, 1);
    assert_int_equal(b, 9);
    assert_string_equal(ae_dataset_category_name(ds, 1), "ten"); /* file name order */
    ae_dataset_free(ds);
    /* fraction 0: everything trains, the test set is empty */
    ds = load("three", 0, 0.0, 5);
    ae_dataset_test(&x, &y, &n, ds);
    assert_int_equal(n, 0);
    assert_null(x);
    assert_null(y);
    ae_dataset_train(NULL, NULL, &n, ds);
    assert_int_equal(n, 51);
    check_cover(ds, SIZES);
    ae_dataset_free(ds);
}

static void shapes(void **state)
{
    ae_dataset *ds;
    int rank;
    size_t dims[AE_TENSOR_MAX_RANK];
    (void)state;
    ds = load("square", 0, 0.5, 1);
    assert_int_equal(ae_dataset_row_width(ds), 784);
    ae_dataset_row_shape(&rank, dims, ds);
    assert_int_equal(rank, 2);
    assert_int_equal(dims[0], 28);
    assert_int_equal(dims[1], 28);
    assert_int_equal(dims[2], 0);
    {
        size_t sizes[2] = {4, 5};
        check_cover(ds, sizes);
    }
    ae_dataset_free(ds);
    ds = load("mixed", 0, 0.5, 1);
    ae_dataset_row_shape(&rank, dims, ds);
    assert_int_equal(rank, 1);
    assert_int_equal(dims[0], 784);
    ae_dataset_free(ds);
    /* float32 files: values kept as they are */
    ds = load("float", 0, 0.0, 1);
    {
        const float *x;
        const int32_t *y;
        const size_t *src;
        size_t n;
        static const float v[6] = {0.f, .5f, 1.f, .25f, .75f, 1.f};
        ae_dataset_train(&x, &y, &n, ds);
        ae_dataset_sources(&src, NULL, ds);
        assert_int_equal(n, 3); /* p: 2 rows of 3, q: 1 row of 3 */
        assert_int_equal(ae_dataset_row_width(ds), 3);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < 3; k++)
                assert_true(x[i * 3 + k] == v[src[i] * 3 + k]);
    }
    ae_dataset_free(ds);
}

static void errors(void **state)
{
    ae_dataset *ds = (ae_dataset *)(void *)&ds;
    (void)state;
    assert_int_equal(ae_dataset_load(&ds, path2("nope", NULL), 0, 0.1, 1), AE_ERR_IO);
    assert_null(ds);
    assert_non_null(strstr(ae_last_error(), "nope"));
    assert_int_equal(ae_dataset_load(&ds, path2("empty", NULL), 0, 0.1, 1), AE_ERR_IO);
    assert_non_null(strstr(ae_last_error(), "no .npy files"));
    assert_int_equal(ae_dataset_load(&ds, path2("bad", NULL), 0, 0.1, 1), AE_ERR_FORMAT);
    assert_non_null(strstr(ae_last_error(), "b.npy"));
    assert_int_equal(ae_dataset_load(&ds, path2("width", NULL), 0, 0.1, 1), AE_ERR_SHAPE);
    assert_non_null(strstr(ae_last_error(), "rows of 3 values"));
    assert_int_equal(ae_dataset_load(&ds, path2("nan", NULL), 0, 0.1, 1), AE_ERR_NUMERIC);
    assert_int_equal(ae_dataset_load(&ds, path2("three", NULL), 0, 1.0, 1), AE_ERR_RANGE);
    assert_int_equal(ae_dataset_load(&ds, path2("three", NULL), 0, -0.1, 1), AE_ERR_RANGE);
    assert_int_equal(ae_dataset_load(&ds, path2("three", NULL), 0, NAN, 1), AE_ERR_RANGE);
    assert_int_equal(ae_dataset_load(&ds, NULL, 0, 0.1, 1), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_dataset_load(NULL, path2("three", NULL), 0, 0.1, 1), AE_ERR_INVALID_ARG);
    assert_null(ds);
    /* accessors on NULL */
    assert_int_equal(ae_dataset_num_categories(NULL), 0);
    assert_int_equal(ae_dataset_row_width(NULL), 0);
    assert_null(ae_dataset_category_name(NULL, 0));
    assert_int_equal(ae_dataset_train(NULL, NULL, NULL, NULL),
                     AE_ERR_INVALID_ARG);
    assert_int_equal(ae_dataset_test(NULL, NULL, NULL, NULL),
                     AE_ERR_INVALID_ARG);
    assert_int_equal(ae_dataset_sources(NULL, NULL, NULL), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_dataset_row_shape(NULL, NULL, NULL),
                     AE_ERR_INVALID_ARG);
    assert_int_equal(ae_dataset_category_counts(NULL, NULL, NULL, 0),
                     AE_ERR_INVALID_ARG);
}

/* Each allocation of a load failing in turn: AE_ERR_NOMEM and nothing leaked. */
static void alloc_failures(void **state)
{
    long k;
    ae_status st;
    (void)state;
    for (k = 1;; k++) {
        ae_dataset *ds = NULL;
        ae_test_alloc_fail_at(k);
        st = ae_dataset_load(&ds, path2("three", NULL), 0, 0.1, 9);
        ae_test_alloc_fail_at(0);
        if (st == AE_OK) {
            ae_dataset_free(ds);
            break;
        }
        assert_int_equal(st, AE_ERR_NOMEM);
        assert_null(ds);
        assert_int_equal(ae_test_alloc_live_blocks(), 0);
    }
    assert_true(k - 1 > 10); /* failure points */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(names_counts_split, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(per_category_cap_takes_first_rows, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(deterministic_per_seed, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(split_edge_cases, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(shapes, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(errors, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(alloc_failures, ae_test_alloc_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, ae_test_group_teardown);
}
