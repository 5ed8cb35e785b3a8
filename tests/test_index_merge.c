/* ae_index_merge_results: the merged results of shards equal one index over
 * all rows (exact backends), ties go to the smaller global id, and bad
 * inputs fail cleanly; ae_set_error reports a component's message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"
#include "test_support.h"

enum { DIM = 8, ROWS = 600, NQ = 25, K = 12 };

static ae_index *build(ae_index_backend backend, const float *x, size_t n)
{
    ae_index *idx = NULL;
    assert_int_equal(ae_index_create(&idx, backend, AE_INDEX_L2, DIM), AE_OK);
    assert_int_equal(ae_index_build(idx, x, n, NULL, NULL), AE_OK);
    return idx;
}

/* Three shards of unequal size (ids local to each shard, offsets given) merge
 * to the neighbours of one brute-force index over all rows. */
static void shards_equal_one_index(void **state)
{
    (void)state;
    const size_t cut[4] = {0, 150, 420, ROWS};
    const int64_t offsets[3] = {0, 150, 420};
    float *x = ae_test_rows(ROWS, DIM, 7), *q = ae_test_rows(NQ, DIM, 8);
    float *sd = calloc(3 * NQ * K, sizeof *sd), *md = calloc(NQ * K, sizeof *md);
    float *td = calloc(NQ * K, sizeof *td);
    int64_t *si = calloc(3 * NQ * K, sizeof *si), *mi = calloc(NQ * K, sizeof *mi);
    int64_t *ti = calloc(NQ * K, sizeof *ti);
    assert_non_null(x);
    assert_true(q && sd && md && td && si && mi && ti);
    for (int s = 0; s < 3; s++) {
        ae_index *shard = build(s == 1 ? AE_INDEX_BALLTREE : AE_INDEX_BRUTE, x + cut[s] * DIM,
                                cut[s + 1] - cut[s]);
        assert_int_equal(ae_index_search(shard, q, NQ, K, 0, sd + s * NQ * K, si + s * NQ * K),
                         AE_OK);
        ae_index_free(shard);
    }
    ae_index *all = build(AE_INDEX_BRUTE, x, ROWS);
    assert_int_equal(ae_index_search(all, q, NQ, K, 0, td, ti), AE_OK);
    ae_index_free(all);
    assert_int_equal(ae_index_merge_results(sd, si, 3, NQ, K, offsets, K, md, mi), AE_OK);
    assert_memory_equal(mi, ti, NQ * K * sizeof *mi);
    assert_memory_equal(md, td, NQ * K * sizeof *md);
    /* fewer merged than each shard gives: the prefix */
    assert_int_equal(ae_index_merge_results(sd, si, 3, NQ, K, offsets, 5, md, mi), AE_OK);
    for (size_t i = 0; i < NQ; i++) assert_memory_equal(mi + i * 5, ti + i * K, 5 * sizeof *mi);
    free(x), free(q), free(sd), free(md), free(td), free(si), free(mi), free(ti);
}

/* Equal distances in two shards: the smaller global id first; unfilled
 * slots (id -1) skipped; too few valid results is AE_ERR_RANGE. */
static void ties_and_gaps(void **state)
{
    (void)state;
    const float sd[2 * 3] = {1.0f, 2.0f, 0.0f, 1.0f, 2.0f, 3.0f};
    const int64_t si[2 * 3] = {5, 9, -1, 3, 4, 6}; /* shard 0 has two results */
    float d[8]; /* room for the k = 6 and 7 calls, which write before they fail */
    int64_t id[8];
    assert_int_equal(ae_index_merge_results(sd, si, 2, 1, 3, NULL, 4, d, id), AE_OK);
    const int64_t want[4] = {3, 5, 4, 9};
    assert_memory_equal(id, want, sizeof want);
    assert_true(d[0] == 1.0f && d[1] == 1.0f && d[2] == 2.0f && d[3] == 2.0f);
    assert_int_equal(ae_index_merge_results(sd, si, 2, 1, 3, NULL, 6, d, id), AE_ERR_RANGE);
    assert_int_equal(ae_index_merge_results(sd, si, 2, 1, 3, NULL, 7, d, id), AE_ERR_RANGE);
    assert_int_equal(ae_index_merge_results(NULL, si, 2, 1, 3, NULL, 2, d, id), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_index_merge_results(sd, si, 0, 1, 3, NULL, 2, d, id), AE_ERR_INVALID_ARG);
    assert_non_null(strstr(ae_last_error(), "ae_index_merge_results: "));
    const float nan_d[2] = {0.0f / 0.0f, 1.0f};
    const int64_t two[2] = {1, 2};
    assert_int_equal(ae_index_merge_results(nan_d, two, 1, 1, 2, NULL, 2, d, id), AE_ERR_NUMERIC);
}

/* More shards than the merge's on-stack head array: the allocated path,
 * including its allocation failure. */
static void many_shards(void **state)
{
    (void)state;
    enum { S = 70 };
    float sd[S], d[S];
    int64_t si[S], id[S];
    for (int s = 0; s < S; s++) sd[s] = (float)(S - s), si[s] = 0;
    int64_t off[S];
    for (int s = 0; s < S; s++) off[s] = s;
    assert_int_equal(ae_index_merge_results(sd, si, S, 1, 1, off, S, d, id), AE_OK);
    for (int i = 0; i < S; i++) assert_int_equal(id[i], S - 1 - i);
    ae_test_alloc_fail_at(1);
    assert_int_equal(ae_index_merge_results(sd, si, S, 1, 1, off, S, d, id), AE_ERR_NOMEM);
    ae_test_alloc_fail_at(0);
}

static void set_error_reports_a_component(void **state)
{
    (void)state;
    assert_int_equal(ae_set_error(AE_ERR_IO, "ae_mpi_example: the peer went away"), AE_ERR_IO);
    assert_string_equal(ae_last_error(), "ae_mpi_example: the peer went away");
    assert_int_equal(ae_set_error(AE_ERR_STATE, NULL), AE_ERR_STATE);
    assert_string_equal(ae_last_error(), "");
    char long_msg[2000];
    memset(long_msg, 'x', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    ae_set_error(AE_ERR_IO, long_msg);
    assert_int_equal(strlen(ae_last_error()), 255);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(shards_equal_one_index, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(ties_and_gaps, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(many_shards, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(set_error_reports_a_component, ae_test_alloc_teardown),
    };
    return cmocka_run_group_tests(tests, ae_test_group_setup, ae_test_group_teardown);
}
