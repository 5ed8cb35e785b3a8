/* Tests of the nearest-neighbour index (include/autoenc/index.h).
 *
 * Every library allocation goes through the checking allocator of
 * tests/support, installed before the first test, so each test can check
 * that nothing leaks (also on error paths) and that every block is freed
 * with the size it was allocated with; it can also fail the N-th allocation. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "autoenc/index.h"
#include "internal.h"
#include "test_support.h"

/* ---- data and the reference --------------------------------------------------- */
/* One stream through the whole program (seeded in main): each test's data
 * follows the previous test's. */
static ae_test_rng g_rng;
static double urand(void)
{
    return ae_test_rng_uniform(&g_rng);
}

static float *rand_matrix(size_t n, size_t d, double lo, double hi)
{
    float *x = malloc(n * d * sizeof(float) + 1);
    ae_test_fill(&g_rng, x, n * d, lo, hi);
    return x;
}

/* integer coordinates in [0, levels): many exact ties and duplicates */
static float *grid_matrix(size_t n, size_t d, int levels)
{
    float *x = malloc(n * d * sizeof(float) + 1);
    for (size_t i = 0; i < n * d; i++) x[i] = (float)(int)(urand() * levels);
    return x;
}

/* Distinct shuffled ids with negatives and gaps, so ties by id differ from ties by row. */
static int64_t *rand_ids(size_t n)
{
    int64_t *ids = malloc(n * sizeof(int64_t) + 1);
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i * 7 - 1000;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(urand() * (double)i);
        int64_t t = ids[i - 1];
        ids[i - 1] = ids[j];
        ids[j] = t;
    }
    return ids;
}

typedef struct ref_pair {
    double d;
    int64_t id;
} ref_pair;

static int cmp_ref(const void *a, const void *b)
{
    const ref_pair *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Naive double-precision k nearest (cosine 0: L2, 1: cosine, 2: inner
 * product reported as -q.x), ties by smaller id. */
static void reference(const float *x, size_t n, size_t d, const int64_t *ids, const float *q,
                      size_t k, int cosine, double *rd, int64_t *rid)
{
    ref_pair *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        double s = 0, qq = 0, xx = 0, dot = 0;
        for (size_t j = 0; j < d; j++) {
            double t = (double)q[j] - (double)x[i * d + j];
            s += t * t;
            qq += (double)q[j] * q[j];
            xx += (double)x[i * d + j] * x[i * d + j];
            dot += (double)q[j] * x[i * d + j];
        }
        p[i].d = cosine == 2 ? -dot : cosine ? 1.0 - dot / (sqrt(qq) * sqrt(xx)) : sqrt(s);
        p[i].id = ids ? ids[i] : (int64_t)i;
    }
    qsort(p, n, sizeof *p, cmp_ref);
    for (size_t i = 0; i < k; i++) {
        rd[i] = p[i].d;
        rid[i] = p[i].id;
    }
    free(p);
}

static ae_index *make_index(ae_index_backend b, ae_index_metric m, size_t d, const float *x,
                            size_t n, const int64_t *ids, const int32_t *labels, int64_t leaf)
{
    ae_index *idx = NULL;
    assert_int_equal(ae_index_create(&idx, b, m, d), AE_OK);
    if (b == AE_INDEX_BALLTREE && leaf > 0)
        assert_int_equal(ae_index_set_int(idx, AE_INDEX_LEAF_SIZE, leaf), AE_OK);
    if (b == AE_INDEX_HNSW) {
        assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_M, 12), AE_OK);
        assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_EF_CONSTRUCTION, 100), AE_OK);
    }
    assert_int_equal(ae_index_build(idx, x, n, ids, labels), AE_OK);
    return idx;
}

/* Checks an exact backend against the reference for every k in ks. */
static void check_exact(ae_index_backend b, size_t n, size_t d, size_t nq, int grid,
                        int64_t leaf, int use_ids)
{
    float *x = grid ? grid_matrix(n, d, grid) : rand_matrix(n, d, -1.0, 1.0);
    float *q = grid ? grid_matrix(nq, d, grid) : rand_matrix(nq, d, -1.2, 1.2);
    int64_t *ids = use_ids ? rand_ids(n) : NULL;
    size_t ks[] = {1, 2, 3, 10, n / 2, n - 1, n};
    ae_index *idx;
    if (grid && nq > 2) memcpy(q, x, d * sizeof(float)); /* a query equal to a point */
    idx = make_index(b, AE_INDEX_L2, d, x, n, ids, NULL, leaf);
    assert_int_equal(ae_index_count(idx), n);
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        size_t k = ks[ki];
        float *dist;
        int64_t *got, *rid;
        double *rd;
        if (k == 0 || k > n) continue;
        dist = malloc(nq * k * sizeof(float));
        got = malloc(nq * k * sizeof(int64_t));
        rid = malloc(k * sizeof(int64_t));
        rd = malloc(k * sizeof(double));
        assert_int_equal(ae_index_search(idx, q, nq, k, 0, dist, got), AE_OK);
        for (size_t i = 0; i < nq; i++) {
            reference(x, n, d, ids, q + i * d, k, 0, rd, rid);
            for (size_t j = 0; j < k; j++) {
                if (got[i * k + j] != rid[j])
                    fail_msg("backend %d n=%zu d=%zu k=%zu query %zu rank %zu: id %lld, "
                             "expected %lld (dist %.9g vs %.9g)",
                             (int)b, n, d, k, i, j, (long long)got[i * k + j],
                             (long long)rid[j], (double)dist[i * k + j], rd[j]);
                assert_true(fabs(dist[i * k + j] - rd[j]) <= 1e-6 * (1.0 + rd[j]));
            }
        }
        free(dist);
        free(got);
        free(rid);
        free(rd);
    }
    ae_index_free(idx);
    free(x);
    free(q);
    free(ids);
}

static void test_exact_random(void **state)
{
    static const size_t dims[] = {1, 2, 3, 7, 16, 17, 33, 64, 130};
    static const size_t sizes[] = {1, 2, 5, 39, 41, 200};
    (void)state;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_BALLTREE; b++)
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
                check_exact((ae_index_backend)b, sizes[si], dims[di], 4, 0, 0, (si + di) % 2);
}

static void test_exact_leaf_sizes(void **state)
{
    static const int64_t leaves[] = {1, 2, 3, 40, 100};
    (void)state;
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        check_exact(AE_INDEX_BALLTREE, 300, 5, 6, 0, leaves[i], 1);
        check_exact(AE_INDEX_BALLTREE, 97, 12, 3, 0, leaves[i], 0);
    }
}

/* several query and data blocks of the brute-force GEMM path */
static void test_exact_blocks(void **state)
{
    (void)state;
    check_exact(AE_INDEX_BRUTE, 2100, 9, 300, 0, 0, 1);
    check_exact(AE_INDEX_BALLTREE, 2100, 9, 40, 0, 0, 1);
}

/* Integer grids: exact ties and duplicate points everywhere. */
static void test_exact_ties(void **state)
{
    (void)state;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_BALLTREE; b++) {
        check_exact((ae_index_backend)b, 300, 2, 20, 3, 4, 1);
        check_exact((ae_index_backend)b, 250, 3, 20, 2, 0, 1);
        check_exact((ae_index_backend)b, 64, 1, 10, 4, 2, 0);
        check_exact((ae_index_backend)b, 120, 20, 8, 2, 3, 1);
    }
}

/* All points identical: the k smallest ids win. */
static void test_all_duplicates(void **state)
{
    float x[50 * 3];
    int64_t ids[50], got[10];
    float dist[10], q[3] = {0.5f, 0.5f, 0.5f};
    (void)state;
    for (size_t i = 0; i < 50; i++) {
        ids[i] = 100 - (int64_t)i;
        for (int j = 0; j < 3; j++) x[i * 3 + j] = 1.0f;
    }
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        ae_index *idx = make_index((ae_index_backend)b, AE_INDEX_L2, 3, x, 50, ids, NULL, 4);
        assert_int_equal(ae_index_search(idx, q, 1, 10, 0, dist, got), AE_OK);
        for (int j = 0; j < 10; j++) {
            if (b != AE_INDEX_HNSW) assert_int_equal(got[j], 51 + j);
            assert_float_equal(dist[j], sqrtf(0.75f), 1e-6);
        }
        ae_index_free(idx);
    }
}

/* Clustered data: HNSW recall@10 above a floor; small n is exact. */
static void test_hnsw_recall(void **state)
{
    const size_t n = 3000, d = 24, nq = 150, k = 10, nc = 30;
    float *centres = rand_matrix(nc, d, -1.0, 1.0), *x = malloc(n * d * sizeof(float));
    float *q = malloc(nq * d * sizeof(float)), dist[10];
    int64_t got[10], rid[10];
    double rd[10];
    size_t hits = 0, hits_ef = 0, hits_k = 0;
    ae_index *idx;
    (void)state;
    ae_test_clusters(&g_rng, x, NULL, n, d, centres, nc, 1.0);
    ae_test_clusters(&g_rng, q, NULL, nq, d, centres, nc, 1.0);
    idx = make_index(AE_INDEX_HNSW, AE_INDEX_L2, d, x, n, NULL, NULL, 0);
    for (size_t i = 0; i < nq; i++) {
        reference(x, n, d, NULL, q + i * d, k, 0, rd, rid);
        assert_int_equal(ae_index_search(idx, q + i * d, 1, k, 0, dist, got), AE_OK);
        for (size_t j = 0; j < k; j++) {
            for (size_t l = 0; l < k; l++) hits += got[j] == rid[l];
            if (j > 0) assert_true(dist[j - 1] <= dist[j]);
        }
        assert_int_equal(ae_index_search(idx, q + i * d, 1, k, k, dist, got), AE_OK);
        for (size_t j = 0; j < k; j++)
            for (size_t l = 0; l < k; l++) hits_k += got[j] == rid[l];
        assert_int_equal(ae_index_search(idx, q + i * d, 1, k, 200, dist, got), AE_OK);
        for (size_t j = 0; j < k; j++)
            for (size_t l = 0; l < k; l++) hits_ef += got[j] == rid[l];
    }
    print_message("hnsw recall@10: %.4f (ef 10), %.4f (ef 64), %.4f (ef 200)\n",
                  (double)hits_k / (nq * k), (double)hits / (nq * k), (double)hits_ef / (nq * k));
    assert_true((double)hits_k / (double)(nq * k) >= 0.80);
    assert_true((double)hits / (double)(nq * k) >= 0.95);
    assert_true(hits_ef >= hits);
    ae_index_free(idx);
    free(centres);
    free(x);
    free(q);
}

static void test_hnsw_small_exact(void **state)
{
    static const size_t sizes[] = {1, 2, 3, 10, 40};
    (void)state;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si], d = 6, k = n;
        float *x = rand_matrix(n, d, 0, 1), *q = rand_matrix(3, d, 0, 1);
        float *dist = malloc(3 * k * sizeof(float));
        int64_t *got = malloc(3 * k * sizeof(int64_t)), *rid = malloc(k * sizeof(int64_t));
        double *rd = malloc(k * sizeof(double));
        ae_index *idx = make_index(AE_INDEX_HNSW, AE_INDEX_L2, d, x, n, NULL, NULL, 0);
        assert_int_equal(ae_index_search(idx, q, 3, k, 64, dist, got), AE_OK);
        for (size_t i = 0; i < 3; i++) {
            reference(x, n, d, NULL, q + i * d, k, 0, rd, rid);
            for (size_t j = 0; j < k; j++) assert_int_equal(got[i * k + j], rid[j]);
        }
        ae_index_free(idx);
        free(x);
        free(q);
        free(dist);
        free(got);
        free(rid);
        free(rd);
    }
}

static void test_cosine(void **state)
{
    const size_t n = 400, d = 10, nq = 12, k = 8;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1, 1), dist[12 * 8];
    int64_t got[12 * 8], rid[8];
    double rd[8];
    float zero[10] = {0};
    (void)state;
    for (size_t i = 0; i < n; i++) x[i * d] *= (float)(1 + i % 5); /* varied norms */
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        ae_index *idx = make_index((ae_index_backend)b, AE_INDEX_COSINE, d, x, n, NULL, NULL, 0);
        assert_int_equal(ae_index_metric_of(idx), AE_INDEX_COSINE);
        assert_int_equal(ae_index_search(idx, q, nq, k, 200, dist, got), AE_OK);
        for (size_t i = 0; i < nq; i++) {
            reference(x, n, d, NULL, q + i * d, k, 1, rd, rid);
            for (size_t j = 0; j < k; j++) {
                /* the neighbour's true cosine distance matches the reference at this rank */
                double qq = 0, xx = 0, dot = 0;
                const float *xr = x + (size_t)got[i * k + j] * d, *qr = q + i * d;
                for (size_t l = 0; l < d; l++) {
                    qq += (double)qr[l] * qr[l];
                    xx += (double)xr[l] * xr[l];
                    dot += (double)qr[l] * xr[l];
                }
                assert_true(fabs(1.0 - dot / sqrt(qq * xx) - rd[j]) < 1e-5);
                assert_true(fabs(dist[i * k + j] - rd[j]) < 1e-5);
                if (b != AE_INDEX_HNSW && j + 1 < k && rd[j + 1] - rd[j] > 1e-5 &&
                    (j == 0 || rd[j] - rd[j - 1] > 1e-5))
                    assert_int_equal(got[i * k + j], rid[j]);
            }
        }
        /* zero vectors have no direction */
        assert_int_equal(ae_index_search(idx, zero, 1, 1, 0, dist, got), AE_ERR_NUMERIC);
        ae_index_free(idx);
        {
            ae_index *z;
            float xz[3 * 10];
            memcpy(xz, x, sizeof xz);
            memset(xz + 10, 0, 10 * sizeof(float));
            assert_int_equal(ae_index_create(&z, (ae_index_backend)b, AE_INDEX_COSINE, d), AE_OK);
            assert_int_equal(ae_index_build(z, xz, 3, NULL, NULL), AE_ERR_NUMERIC);
            assert_non_null(strstr(ae_index_errmsg(z), "zero"));
            assert_int_equal(ae_index_count(z), 0);
            ae_index_free(z);
        }
    }
    free(x);
    free(q);
}


/* ---- a living store: add, remove, filter, inner product -------------------------------- */
static int metric_kind(ae_index_metric m)
{
    return m == AE_INDEX_INNER_PRODUCT ? 2 : m == AE_INDEX_COSINE ? 1 : 0;
}

/* Checks every query's results against the reference over the rows r with
 * allow[r] (NULL: all); exact: ids must match the reference's, else only
 * recall is counted (returned as hits). Slots past the allowed count must be
 * padded with id -1. */
static size_t check_subset(const ae_index *idx, const float *x, size_t n, size_t d,
                           const int64_t *ids, const unsigned char *allow, const float *q,
                           size_t nq, size_t k, const float *dist, const int64_t *got, int exact)
{
    float *xs = malloc(n * d * sizeof(float) + 1);
    int64_t *is = malloc(n * sizeof(int64_t) + 1), *rid = malloc(k * sizeof(int64_t));
    double *rd = malloc(k * sizeof(double));
    size_t ns = 0, hits = 0, kk;
    int kind = metric_kind(ae_index_metric_of(idx));
    for (size_t r = 0; r < n; r++)
        if (!allow || allow[r]) {
            memcpy(xs + ns * d, x + r * d, d * sizeof(float));
            is[ns++] = ids ? ids[r] : (int64_t)r;
        }
    kk = k < ns ? k : ns;
    for (size_t i = 0; i < nq; i++) {
        if (kk) reference(xs, ns, d, is, q + i * d, kk, kind, rd, rid);
        for (size_t j = 0; j < k; j++) {
            int64_t g = got[i * k + j];
            if (j >= kk) {
                assert_int_equal(g, -1);
                if (dist) assert_true(isinf(dist[i * k + j]));
                continue;
            }
            if (exact) {
                if (g != rid[j])
                    fail_msg("query %zu rank %zu: id %lld, expected %lld", i, j, (long long)g,
                             (long long)rid[j]);
                if (dist)
                    assert_true(fabs(dist[i * k + j] - rd[j]) <= 1e-5 * (1.0 + fabs(rd[j])));
            }
            for (size_t l = 0; l < kk; l++) hits += g == rid[l];
            /* never a row outside the subset */
            {
                size_t r = 0;
                while (r < ns && is[r] != g) r++;
                assert_true(r < ns);
            }
        }
    }
    free(xs);
    free(is);
    free(rid);
    free(rd);
    return hits;
}

static void search_all(const ae_index *idx, const float *q, size_t nq, size_t k, size_t ef,
                       float **dist, int64_t **got)
{
    *dist = malloc(nq * k * sizeof(float));
    *got = malloc(nq * k * sizeof(int64_t));
    assert_int_equal(ae_index_search(idx, q, nq, k, ef, *dist, *got), AE_OK);
}

/* Adding rows in batches after a build answers exactly as building at once
 * (exact backends, every metric), also into an index that was only created,
 * and through the ball tree's overflow and its rebuild. */
static void test_add_equals_build(void **state)
{
    /* under valgrind still past the ball tree's overflow limit (256 rows) */
    const size_t n = getenv("AE_TEST_SMALL") ? 800 : 1500, d = 9, nq = 15, k = 6;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1.1, 1.1);
    int64_t *ids = rand_ids(n);
    int32_t *labels = malloc(n * sizeof(int32_t));
    (void)state;
    for (size_t i = 0; i < n; i++) {
        labels[i] = (int32_t)(i % 5);
        x[i * d] *= (float)(1 + (i * 7) % 4); /* growing norms: M of the inner product grows */
    }
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_BALLTREE; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_INNER_PRODUCT; m++) {
            ae_index *all = make_index((ae_index_backend)b, (ae_index_metric)m, d, x, n, ids,
                                       labels, 8);
            ae_index *inc;
            float *d1, *d2;
            int64_t *i1, *i2;
            int32_t lab;
            assert_int_equal(ae_index_create(&inc, (ae_index_backend)b, (ae_index_metric)m, d),
                             AE_OK);
            if (b == AE_INDEX_BALLTREE)
                assert_int_equal(ae_index_set_int(inc, AE_INDEX_LEAF_SIZE, 8), AE_OK);
            /* the first add builds; batches of 97 then pass the overflow limit */
            for (size_t at = 0; at < n;) {
                size_t m_ = at == 0 ? 400 : (n - at < 97 ? n - at : 97);
                assert_int_equal(ae_index_add(inc, x + at * d, m_, ids + at, labels + at), AE_OK);
                at += m_;
                assert_int_equal(ae_index_count(inc), at);
            }
            search_all(all, q, nq, k, 0, &d1, &i1);
            search_all(inc, q, nq, k, 0, &d2, &i2);
            assert_memory_equal(i1, i2, nq * k * sizeof(int64_t));
            assert_memory_equal(d1, d2, nq * k * sizeof(float));
            check_subset(inc, x, n, d, ids, NULL, q, nq, k, d2, i2, 1);
            for (size_t r = 0; r < n; r += 101) {
                int64_t id;
                assert_int_equal(ae_index_id_at(&id, inc, r), AE_OK);
                assert_int_equal(id, ids[r]);
                assert_int_equal(ae_index_label(&lab, inc, ids[r]), AE_OK);
                assert_int_equal(lab, labels[r]);
            }
            /* folding the overflow in changes nothing */
            assert_int_equal(ae_index_compact(inc), AE_OK);
            free(d2);
            free(i2);
            search_all(inc, q, nq, k, 0, &d2, &i2);
            assert_memory_equal(i1, i2, nq * k * sizeof(int64_t));
            free(d1);
            free(i1);
            free(d2);
            free(i2);
            ae_index_free(all);
            ae_index_free(inc);
        }
    free(x);
    free(q);
    free(ids);
    free(labels);
}

/* A failed add changes nothing: duplicates, NaN, labels that do not fit. */
static void test_add_invalid(void **state)
{
    const size_t n = 200, d = 5, nq = 4, k = 5;
    float *x = rand_matrix(n + 10, d, -1, 1), *q = rand_matrix(nq, d, -1, 1);
    int64_t ids[10];
    int32_t labels[10] = {0};
    (void)state;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        ae_index *idx = make_index((ae_index_backend)b, AE_INDEX_L2, d, x, n, NULL, NULL, 4);
        float *d1, *d2, bad[5];
        int64_t *i1, *i2;
        search_all(idx, q, nq, k, 0, &d1, &i1);
        for (int i = 0; i < 10; i++) ids[i] = 1000 + i;
        ids[7] = 13; /* already in the index */
        assert_int_equal(ae_index_add(idx, x + n * d, 10, ids, NULL), AE_ERR_INVALID_ARG);
        assert_non_null(strstr(ae_index_errmsg(idx), "13"));
        ids[7] = 1003; /* twice in the batch */
        assert_int_equal(ae_index_add(idx, x + n * d, 10, ids, NULL), AE_ERR_INVALID_ARG);
        ids[7] = 1007;
        assert_int_equal(ae_index_add(idx, x + n * d, 10, ids, labels), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_add(idx, x + n * d, 10, NULL, NULL), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_add(idx, x + n * d, 0, ids, NULL), AE_ERR_INVALID_ARG);
        memcpy(bad, x, sizeof bad);
        bad[2] = NAN;
        assert_int_equal(ae_index_add(idx, bad, 1, ids, NULL), AE_ERR_NUMERIC);
        assert_int_equal(ae_index_count(idx), n);
        search_all(idx, q, nq, k, 0, &d2, &i2);
        assert_memory_equal(i1, i2, nq * k * sizeof(int64_t));
        /* and the same batch goes in once corrected */
        assert_int_equal(ae_index_add(idx, x + n * d, 10, ids, NULL), AE_OK);
        assert_int_equal(ae_index_count(idx), n + 10);
        free(d1);
        free(i1);
        free(d2);
        free(i2);
        ae_index_free(idx);
    }
    free(x);
    free(q);
}

/* Removed ids never come back; the exact backends answer as a brute force
 * over the remaining rows, before and after compaction; a removed id may be
 * added again. */
static void test_remove_exact(void **state)
{
    const size_t n = 900, d = 7, nq = 20, k = 8, nrm = 270;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1, 1);
    int64_t *ids = rand_ids(n), gone[270];
    int32_t *labels = malloc(n * sizeof(int32_t));
    unsigned char *alive = malloc(n);
    (void)state;
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)i;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_INNER_PRODUCT; m++) {
            ae_index *idx = make_index((ae_index_backend)b, (ae_index_metric)m, d, x, n, ids,
                                       labels, 6);
            float *dist;
            int64_t *got, id, unknown = 999999;
            int32_t lab;
            int exact = b != AE_INDEX_HNSW;
            size_t hits;
            memset(alive, 1, n);
            for (size_t i = 0; i < nrm; i++) {
                size_t r = (i * 37 + 11) % n; /* 37 is prime to 900: distinct rows */
                gone[i] = ids[r];
                alive[r] = 0;
            }
            assert_int_equal(ae_index_remove(idx, &unknown, 1), AE_ERR_RANGE);
            {
                int64_t twice[2] = {gone[0], gone[0]};
                assert_int_equal(ae_index_remove(idx, twice, 2), AE_ERR_INVALID_ARG);
            }
            assert_int_equal(ae_index_count(idx), n);
            assert_int_equal(ae_index_remove(idx, gone, nrm), AE_OK);
            assert_int_equal(ae_index_count(idx), n - nrm);
            assert_int_equal(ae_index_remove(idx, gone, 1), AE_ERR_RANGE);
            assert_int_equal(ae_index_label(&lab, idx, gone[3]), AE_ERR_RANGE);
            for (size_t r = 0; r < n; r += 13) {
                assert_int_equal(ae_index_id_at(&id, idx, r), alive[r] ? AE_OK : AE_ERR_RANGE);
                if (alive[r]) assert_int_equal(id, ids[r]);
            }
            search_all(idx, q, nq, k, 200, &dist, &got);
            hits = check_subset(idx, x, n, d, ids, alive, q, nq, k, dist, got, exact);
            if (!exact) assert_true((double)hits / (double)(nq * k) >= 0.95);
            free(dist);
            free(got);
            /* every live row may still be asked for */
            dist = malloc((n - nrm) * sizeof(float));
            got = malloc((n - nrm) * sizeof(int64_t));
            assert_int_equal(ae_index_search(idx, q, 1, n - nrm, 0, dist, got), AE_OK);
            assert_int_equal(ae_index_search(idx, q, 1, n - nrm + 1, 0, dist, got),
                             AE_ERR_RANGE);
            free(dist);
            free(got);
            assert_int_equal(ae_index_compact(idx), AE_OK);
            assert_int_equal(ae_index_count(idx), n - nrm);
            assert_int_equal(ae_index_id_at(&id, idx, n - nrm - 1), AE_OK);
            assert_int_equal(ae_index_id_at(&id, idx, n - nrm), AE_ERR_RANGE);
            search_all(idx, q, nq, k, 200, &dist, &got);
            hits = check_subset(idx, x, n, d, ids, alive, q, nq, k, dist, got, exact);
            if (!exact) assert_true((double)hits / (double)(nq * k) >= 0.95);
            free(dist);
            free(got);
            /* a removed id comes back with a new code */
            assert_int_equal(ae_index_add(idx, x + 11 * d, 1, &gone[0], &labels[11]), AE_OK);
            assert_int_equal(ae_index_label(&lab, idx, gone[0]), AE_OK);
            assert_int_equal(lab, labels[11]);
            ae_index_free(idx);
        }
    free(x);
    free(q);
    free(ids);
    free(labels);
    free(alive);
}

/* HNSW: after removing 30% of the rows, recall@10 stays within 0.01 of a
 * fresh build over the remaining rows. */
static void test_hnsw_remove_recall(void **state)
{
    const size_t n = 3000, d = 24, nq = 150, k = 10, nc = 30;
    int vg = getenv("AE_TEST_SMALL") != NULL;
    size_t nn = vg ? 1000 : n, nrm = nn * 3 / 10, nl = 0;
    float *centres = rand_matrix(nc, d, -1.0, 1.0), *x = malloc(n * d * sizeof(float));
    float *q = malloc(nq * d * sizeof(float)), *xl = malloc(n * d * sizeof(float)), *dist;
    int64_t *gone = malloc(n * sizeof(int64_t)), *il = malloc(n * sizeof(int64_t)), *got;
    unsigned char *alive = malloc(n);
    ae_index *idx, *fresh;
    size_t h1, h2;
    (void)state;
    ae_test_clusters(&g_rng, x, NULL, nn, d, centres, nc, 1.0);
    ae_test_clusters(&g_rng, q, NULL, nq, d, centres, nc, 1.0);
    memset(alive, 1, nn);
    for (size_t i = 0; i < nrm; i++) {
        size_t r = (i * 7919 + 3) % nn;
        while (!alive[r]) r = (r + 1) % nn;
        alive[r] = 0;
        gone[i] = (int64_t)r;
    }
    for (size_t r = 0; r < nn; r++)
        if (alive[r]) {
            memcpy(xl + nl * d, x + r * d, d * sizeof(float));
            il[nl++] = (int64_t)r;
        }
    idx = make_index(AE_INDEX_HNSW, AE_INDEX_L2, d, x, nn, NULL, NULL, 0);
    fresh = make_index(AE_INDEX_HNSW, AE_INDEX_L2, d, xl, nl, il, NULL, 0);
    assert_int_equal(ae_index_remove(idx, gone, nrm), AE_OK);
    search_all(idx, q, nq, k, 0, &dist, &got);
    h1 = check_subset(idx, x, nn, d, NULL, alive, q, nq, k, dist, got, 0);
    free(dist);
    free(got);
    search_all(fresh, q, nq, k, 0, &dist, &got);
    h2 = check_subset(fresh, x, nn, d, NULL, alive, q, nq, k, dist, got, 0);
    free(dist);
    free(got);
    print_message("hnsw recall@10 after removing 30%%: %.4f; fresh build: %.4f (ef 64)\n",
                  (double)h1 / (double)(nq * k), (double)h2 / (double)(nq * k));
    assert_true((double)h1 / (double)(nq * k) >= (double)h2 / (double)(nq * k) - 0.01);
    /* and where recall is not saturated: the narrowest beam, ef = k */
    search_all(idx, q, nq, k, k, &dist, &got);
    h1 = check_subset(idx, x, nn, d, NULL, alive, q, nq, k, dist, got, 0);
    free(dist);
    free(got);
    search_all(fresh, q, nq, k, k, &dist, &got);
    h2 = check_subset(fresh, x, nn, d, NULL, alive, q, nq, k, dist, got, 0);
    free(dist);
    free(got);
    print_message("hnsw recall@10 after removing 30%%: %.4f; fresh build: %.4f (ef 10)\n",
                  (double)h1 / (double)(nq * k), (double)h2 / (double)(nq * k));
    assert_true((double)h1 / (double)(nq * k) >= (double)h2 / (double)(nq * k) - 0.01);
    ae_index_free(idx);
    ae_index_free(fresh);
    free(centres);
    free(x);
    free(q);
    free(xl);
    free(gone);
    free(il);
    free(alive);
}

/* HNSW: codes added after a build are found as well as built ones. */
static void test_hnsw_add_recall(void **state)
{
    const size_t n = getenv("AE_TEST_SMALL") ? 800 : 2000, d = 16, nq = 100, k = 10, nc = 20;
    float *centres = rand_matrix(nc, d, -1.0, 1.0), *x = malloc(n * d * sizeof(float));
    float *q = malloc(nq * d * sizeof(float)), *dist;
    int64_t *ids = malloc(n * sizeof(int64_t)), *got;
    ae_index *idx;
    size_t hits;
    (void)state;
    ae_test_clusters(&g_rng, x, NULL, n, d, centres, nc, 1.0);
    ae_test_clusters(&g_rng, q, NULL, nq, d, centres, nc, 1.0);
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i;
    idx = make_index(AE_INDEX_HNSW, AE_INDEX_L2, d, x, n / 4, NULL, NULL, 0);
    for (size_t at = n / 4; at < n; at += 250)
        assert_int_equal(ae_index_add(idx, x + at * d, n - at < 250 ? n - at : 250, ids + at,
                                      NULL),
                         AE_OK);
    assert_int_equal(ae_index_count(idx), n);
    search_all(idx, q, nq, k, 0, &dist, &got);
    hits = check_subset(idx, x, n, d, NULL, NULL, q, nq, k, dist, got, 0);
    print_message("hnsw recall@10 with 75%% of the codes added: %.4f\n",
                  (double)hits / (double)(nq * k));
    assert_true((double)hits / (double)(nq * k) >= 0.95);
    free(dist);
    free(got);
    ae_index_free(idx);
    free(centres);
    free(x);
    free(q);
    free(ids);
}

static int keep_mod10(int64_t id, void *user)
{
    (void)user;
    return ((id % 10) + 10) % 10 == 3;
}

typedef struct keep_list {
    const int64_t *ids;
    size_t n;
} keep_list;

static int keep_listed(int64_t id, void *user)
{
    const keep_list *l = user;
    for (size_t i = 0; i < l->n; i++)
        if (l->ids[i] == id) return 1;
    return 0;
}

/* Filtered search: the exact backends equal a brute force over the allowed
 * rows, HNSW finds them with high recall, and fewer allowed rows than k
 * leave padded slots, on removed rows too. */
static void test_filtered(void **state)
{
    const size_t n = 1200, d = 8, nq = 25, k = 10;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1, 1);
    int64_t *ids = rand_ids(n);
    unsigned char *allow = malloc(n);
    (void)state;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_INNER_PRODUCT; m++) {
            ae_index *idx = make_index((ae_index_backend)b, (ae_index_metric)m, d, x, n, ids,
                                       NULL, 10);
            float *dist = malloc(nq * k * sizeof(float));
            int64_t *got = malloc(nq * k * sizeof(int64_t)), few[3];
            keep_list kl = {few, 3};
            int exact = b != AE_INDEX_HNSW;
            size_t hits;
            for (size_t r = 0; r < n; r++) allow[r] = (unsigned char)keep_mod10(ids[r], NULL);
            assert_int_equal(ae_index_search_filtered(idx, q, nq, k, 0, keep_mod10, NULL, dist,
                                                      got),
                             AE_OK);
            hits = check_subset(idx, x, n, d, ids, allow, q, nq, k, dist, got, exact);
            if (!exact) assert_true((double)hits / (double)(nq * k) >= 0.95);
            /* three allowed rows, one of them removed: two results, then padding */
            few[0] = ids[5];
            few[1] = ids[500];
            few[2] = ids[1000];
            memset(allow, 0, n);
            allow[5] = allow[1000] = 1;
            assert_int_equal(ae_index_remove(idx, &ids[500], 1), AE_OK);
            assert_int_equal(ae_index_search_filtered(idx, q, nq, k, 0, keep_listed, &kl, dist,
                                                      got),
                             AE_OK);
            check_subset(idx, x, n, d, ids, allow, q, nq, k, dist, got, 1);
            /* no filter is a plain search */
            assert_int_equal(ae_index_search_filtered(idx, q, 2, k, 0, NULL, NULL, NULL, got),
                             AE_OK);
            free(dist);
            free(got);
            ae_index_free(idx);
        }
    free(x);
    free(q);
    free(ids);
    free(allow);
}

/* Inner product: the exact backends rank by -q.x exactly on random data
 * (no near ties), HNSW with high recall. */
static void test_inner_product(void **state)
{
    const size_t n = 800, d = 12, nq = 20, k = 7;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1, 1);
    (void)state;
    for (size_t i = 0; i < n; i++) x[i * d + 1] *= (float)(1 + i % 6); /* varied norms */
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        ae_index *idx = make_index((ae_index_backend)b, AE_INDEX_INNER_PRODUCT, d, x, n, NULL,
                                   NULL, 5);
        float *dist;
        int64_t *got;
        size_t hits;
        assert_int_equal(ae_index_metric_of(idx), AE_INDEX_INNER_PRODUCT);
        search_all(idx, q, nq, k, 100, &dist, &got);
        hits = check_subset(idx, x, n, d, NULL, NULL, q, nq, k, dist, got, b != AE_INDEX_HNSW);
        assert_true((double)hits / (double)(nq * k) >= 0.9);
        for (size_t i = 0; i < nq; i++)
            for (size_t j = 1; j < k; j++) assert_true(dist[i * k + j - 1] <= dist[i * k + j]);
        free(dist);
        free(got);
        ae_index_free(idx);
    }
    free(x);
    free(q);
}

/* ---- caller storage: save to a callback, load from memory ------------------------------ */
typedef struct mem_sink {
    unsigned char *b;
    size_t len, cap, fail_after; /* fail_after 0: never */
} mem_sink;

static int sink_write(const void *data, size_t n, void *user)
{
    mem_sink *m = user;
    if (m->fail_after && m->len + n > m->fail_after) return -1;
    if (m->len + n > m->cap) {
        m->cap = 2 * (m->len + n);
        m->b = realloc(m->b, m->cap);
    }
    memcpy(m->b + m->len, data, n);
    m->len += n;
    return 0;
}

static void test_save_to_memory(void **state)
{
    const size_t n = 300, d = 6, nq = 5, k = 4;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1, 1);
    int64_t *ids = rand_ids(n);
    (void)state;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_INNER_PRODUCT; m++) {
            ae_index *idx = make_index((ae_index_backend)b, (ae_index_metric)m, d, x, n - 40, ids,
                                       NULL, 5),
                     *l = NULL;
            mem_sink ms = {NULL, 0, 0, 0};
            unsigned char *file;
            size_t flen;
            float d1[5 * 4], d2[5 * 4];
            int64_t i1[5 * 4], i2[5 * 4];
            assert_int_equal(ae_index_add(idx, x + (n - 40) * d, 40, ids + n - 40, NULL), AE_OK);
            assert_int_equal(ae_index_remove(idx, ids + 3, 10), AE_OK);
            assert_int_equal(ae_index_save(idx, ae_test_path("mem.aeidx")), AE_OK);
            assert_int_equal(ae_index_save_to(idx, sink_write, &ms), AE_OK);
            file = ae_test_read_file(ae_test_path("mem.aeidx"), &flen);
            assert_int_equal(ms.len, flen);
            assert_memory_equal(ms.b, file, flen);
            assert_int_equal(ae_index_load_memory(&l, ms.b, ms.len), AE_OK);
            assert_int_equal(ae_index_count(l), n - 10);
            assert_int_equal(ae_index_search(idx, q, nq, k, 0, d1, i1), AE_OK);
            assert_int_equal(ae_index_search(l, q, nq, k, 0, d2, i2), AE_OK);
            assert_memory_equal(i1, i2, sizeof i1);
            assert_memory_equal(d1, d2, sizeof d1);
            ae_index_free(l);
            /* a short or damaged buffer is refused as a file would be */
            l = (ae_index *)1;
            assert_int_equal(ae_index_load_memory(&l, ms.b, ms.len - 1), AE_ERR_FORMAT);
            assert_null(l);
            assert_non_null(strstr(ae_last_error(), "<memory>"));
            ms.b[ms.len / 2] ^= 1;
            assert_int_equal(ae_index_load_memory(&l, ms.b, ms.len), AE_ERR_CHECKSUM);
            /* a callback that fails stops the save */
            ms.len = 0;
            ms.fail_after = 100;
            assert_int_equal(ae_index_save_to(idx, sink_write, &ms), AE_ERR_IO);
            assert_true(ms.len <= 100);
            free(ms.b);
            free(file);
            ae_index_free(idx);
        }
    unlink(ae_test_path("mem.aeidx"));
    free(x);
    free(q);
    free(ids);
}

/* ---- save / load --------------------------------------------------------------------- */

static void test_save_load(void **state)
{
    const size_t n = 500, d = 13, nq = 20, k = 7;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1, 1);
    int64_t *ids = rand_ids(n);
    int32_t *labels = malloc(n * sizeof(int32_t));
    (void)state;
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i % 7) - 3;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_COSINE; m++)
            for (int with = 0; with < 2; with++) {
                float d1[20 * 7], d2[20 * 7];
                int64_t i1[20 * 7], i2[20 * 7], v1, v2;
                ae_index *a = make_index((ae_index_backend)b, (ae_index_metric)m, d, x, n,
                                         with ? ids : NULL, with ? labels : NULL, 9),
                         *l = NULL;
                const char *path = ae_test_path("roundtrip.aeidx");
                assert_int_equal(ae_index_save(a, path), AE_OK);
                assert_int_equal(ae_index_load(&l, path), AE_OK);
                assert_int_equal(ae_index_count(l), n);
                assert_int_equal(ae_index_dim(l), d);
                assert_int_equal(ae_index_check_dim(l, d), AE_OK);
                assert_int_equal(ae_index_backend_of(l), b);
                assert_int_equal(ae_index_metric_of(l), m);
                assert_int_equal(ae_index_has_labels(l), with);
                assert_int_equal(ae_index_memory_bytes(l), ae_index_memory_bytes(a));
                for (int key = AE_INDEX_LEAF_SIZE; key <= AE_INDEX_SEED; key++) {
                    ae_status s1 = ae_index_get_int(&v1, a,
                                                    (ae_index_param)key);
                    assert_int_equal(s1,
                                     ae_index_get_int(&v2, l, (ae_index_param)key));
                    if (s1 == AE_OK) assert_int_equal(v1, v2);
                }
                assert_int_equal(ae_index_search(a, q, nq, k, 0, d1, i1), AE_OK);
                assert_int_equal(ae_index_search(l, q, nq, k, 0, d2, i2), AE_OK);
                assert_memory_equal(i1, i2, sizeof i1);
                assert_memory_equal(d1, d2, sizeof d1);
                for (size_t r = 0; r < n; r += 37) {
                    int64_t id;
                    int32_t lab;
                    assert_int_equal(ae_index_id_at(&id, l, r), AE_OK);
                    assert_int_equal(id, with ? ids[r] : (int64_t)r);
                    if (with) {
                        assert_int_equal(ae_index_label(&lab, l, id), AE_OK);
                        assert_int_equal(lab, labels[r]);
                        assert_int_equal(ae_index_label_at(&lab, l, r), AE_OK);
                        assert_int_equal(lab, labels[r]);
                    }
                }
                /* the file stands alone; saving the loaded index gives the same bytes */
                ae_index_free(a);
                assert_int_equal(ae_index_save(l, ae_test_path("again.aeidx")), AE_OK);
                assert_true(ae_test_files_equal(path, ae_test_path("again.aeidx")));
                ae_index_free(l);
            }
    unlink(ae_test_path("roundtrip.aeidx"));
    unlink(ae_test_path("again.aeidx"));
    free(x);
    free(q);
    free(ids);
    free(labels);
}

static ae_status load_bytes(const unsigned char *b, size_t len)
{
    ae_index *l = (ae_index *)1;
    ae_status st;
    assert_int_equal(ae_test_write_file(ae_test_path("bad.aeidx"), b, len), 0);
    st = ae_index_load(&l, ae_test_path("bad.aeidx"));
    if (st == AE_OK) ae_index_free(l);
    else {
        assert_null(l);
        assert_true(strlen(ae_last_error()) > 0);
    }
    assert_int_equal(ae_test_alloc_live_blocks(), 0);
    return st;
}

/* Maps bytes through a file with the given check; checks the failure
 * contract, and that an index accepted by the bounds check answers a
 * search without reading outside the file (ASan and valgrind runs). */
static ae_status map_bytes(const unsigned char *b, size_t len, ae_index_check check)
{
    ae_index *l = (ae_index *)1;
    ae_status st;
    assert_int_equal(ae_test_write_file(ae_test_path("bad.aeidx"), b, len), 0);
    st = ae_index_map(&l, ae_test_path("bad.aeidx"), check);
    if (st == AE_OK) {
        float q[8] = {0.5f, -0.25f, 0.125f, 1.0f, -1.0f, 0.0f, 0.75f, 0.3f}, dist[3];
        int64_t ids[3];
        size_t k = ae_index_count(l) < 3 ? ae_index_count(l) : 3;
        ae_status s2;
        assert_true(ae_index_dim(l) <= 8);
        s2 = ae_index_search(l, q, 1, k, 0, dist, ids);
        /* a corrupt code may be NaN or huge: NUMERIC is not an error here */
        assert_true(s2 == AE_OK || s2 == AE_ERR_NUMERIC);
        ae_index_free(l);
    } else {
        assert_null(l);
        assert_true(strlen(ae_last_error()) > 0);
    }
    assert_int_equal(ae_test_alloc_live_blocks(), 0);
    return st;
}

/* ae_index_map on damaged files: with the full check exactly the statuses
 * of ae_index_load; with the bounds check no CRC, so a flipped byte may be
 * accepted, but then every search stays in bounds. Then the other failure
 * paths: missing file, directory, empty file, bad arguments, a misaligned
 * buffer, and the read-only contract. */
static void test_map_failures(void **state)
{
    const size_t n = 61, d = 5; /* n odd: the HNSW levels are padded */
    float *x = rand_matrix(n, d, -1, 1);
    int32_t labels[61];
    (void)state;
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)i;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        ae_index *a = make_index((ae_index_backend)b, AE_INDEX_L2, d, x, n, NULL, labels, 4), *m;
        int64_t gone = 3, newid = 1000, v;
        size_t len, step = getenv("AE_TEST_VALGRIND") ? 13 : 3;
        unsigned char *f, *g;
        assert_int_equal(ae_index_remove(a, &gone, 1), AE_OK); /* a removed-rows section */
        assert_int_equal(ae_index_save(a, ae_test_path("good.aeidx")), AE_OK);
        ae_index_free(a); /* map_bytes and load_bytes count every live block */
        f = ae_test_read_file(ae_test_path("good.aeidx"), &len);
        assert_non_null(f);
        g = malloc(len);
        assert_int_equal(map_bytes(f, len, AE_INDEX_CHECK_FULL), AE_OK);
        assert_int_equal(map_bytes(f, len, AE_INDEX_CHECK_BOUNDS), AE_OK);
        for (size_t cut = 0; cut < len; cut += cut < 120 ? 1 : step) {
            assert_int_equal(map_bytes(f, cut ? cut : 1, AE_INDEX_CHECK_FULL), AE_ERR_FORMAT);
            assert_int_equal(map_bytes(f, cut ? cut : 1, AE_INDEX_CHECK_BOUNDS), AE_ERR_FORMAT);
        }
        for (size_t off = 0; off < len - 4; off += off < 120 ? 1 : step) {
            memcpy(g, f, len);
            g[off] ^= 0x5A;
            assert_int_equal(map_bytes(g, len, AE_INDEX_CHECK_FULL), load_bytes(g, len));
            (void)map_bytes(g, len, AE_INDEX_CHECK_BOUNDS);
            /* the same damage with a good checksum: the structure checks alone */
            ae_test_fix_crc32(g, len);
            (void)map_bytes(g, len, AE_INDEX_CHECK_BOUNDS);
            g[off] ^= 0xFF; /* another value at the same place */
            ae_test_fix_crc32(g, len);
            (void)map_bytes(g, len, AE_INDEX_CHECK_BOUNDS);
        }
        /* read-only: every change refused, the index unchanged */
        assert_int_equal(ae_test_write_file(ae_test_path("good.aeidx"), f, len), 0);
        assert_int_equal(ae_index_load(&a, ae_test_path("good.aeidx")), AE_OK);
        assert_int_equal(ae_index_map(&m, ae_test_path("good.aeidx"), AE_INDEX_CHECK_BOUNDS),
                         AE_OK);
        assert_true(ae_index_is_mapped(m));
        assert_false(ae_index_is_mapped(a));
        assert_int_equal(ae_index_add(m, x, 1, &newid, labels), AE_ERR_STATE);
        assert_non_null(strstr(ae_index_errmsg(m), "read-only"));
        assert_int_equal(ae_index_remove(m, &newid, 1), AE_ERR_STATE);
        assert_int_equal(ae_index_compact(m), AE_ERR_STATE);
        assert_int_equal(ae_index_build(m, x, n, NULL, NULL), AE_ERR_STATE);
        assert_int_equal(ae_index_set_int(m, b == AE_INDEX_BALLTREE ? AE_INDEX_LEAF_SIZE
                                              : b == AE_INDEX_HNSW ? AE_INDEX_HNSW_M
                                                                   : (ae_index_param)0,
                                          4),
                         b == AE_INDEX_BRUTE ? AE_ERR_INVALID_ARG : AE_ERR_STATE);
        assert_int_equal(ae_index_count(m), n - 1);
        assert_int_equal(ae_index_id_at(&v, m, 3), AE_ERR_RANGE); /* removed */
        assert_int_equal(ae_index_id_at(&v, m, 4), AE_OK);
        assert_int_equal(v, 4);
        assert_true(ae_index_memory_bytes(m) < ae_index_memory_bytes(a));
        /* the file replaced under the mapping (save renames): still answers */
        assert_int_equal(ae_index_save(a, ae_test_path("good.aeidx")), AE_OK);
        assert_int_equal(ae_index_label(&labels[0], m, 7), AE_OK);
        assert_int_equal(labels[0], 7);
        labels[0] = 0;
        ae_index_free(m);
        /* a buffer: needs 8-byte alignment */
        memcpy(g, f, len);
        assert_int_equal(ae_index_map_memory(&m, g, len, AE_INDEX_CHECK_FULL), AE_OK);
        ae_index_free(m);
        {
            unsigned char *h = malloc(len + 8);
            memcpy(h + 4, f, len);
            m = (ae_index *)1;
            assert_int_equal(ae_index_map_memory(&m, h + 4, len, AE_INDEX_CHECK_FULL),
                             AE_ERR_INVALID_ARG);
            assert_null(m);
            free(h);
        }
        free(f);
        free(g);
        ae_index_free(a);
    }
    {
        ae_index *m = (ae_index *)1;
        assert_int_equal(ae_index_map(&m, ae_test_path("no-such.aeidx"), AE_INDEX_CHECK_FULL),
                         AE_ERR_IO);
        assert_null(m);
        assert_int_equal(ae_index_map(&m, ae_test_path("%s", ""), AE_INDEX_CHECK_BOUNDS), AE_ERR_IO);
        assert_non_null(strstr(ae_last_error(), "ae_index_map"));
        assert_int_equal(ae_test_write_file(ae_test_path("empty.aeidx"), "", 0), 0);
        assert_int_equal(ae_index_map(&m, ae_test_path("empty.aeidx"), AE_INDEX_CHECK_FULL),
                         AE_ERR_FORMAT);
        assert_int_equal(ae_index_map(&m, ae_test_path("good.aeidx"), (ae_index_check)0),
                         AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_map(NULL, ae_test_path("good.aeidx"), AE_INDEX_CHECK_FULL),
                         AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_map(&m, NULL, AE_INDEX_CHECK_FULL), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_map_memory(&m, NULL, 10, AE_INDEX_CHECK_FULL),
                         AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_is_mapped(NULL), 0);
    }
    free(x);
}

static void test_corrupt_files(void **state)
{
    const size_t n = 60, d = 5;
    float *x = rand_matrix(n, d, -1, 1);
    int32_t labels[60];
    (void)state;
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)i;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        ae_index *a = make_index((ae_index_backend)b, AE_INDEX_L2, d, x, n, NULL, labels, 4);
        size_t len;
        unsigned char *f, *g;
        uint32_t npairs;
        size_t codes, ids, labels_end; /* offsets (docs/formats-index.md, version 2) */
        assert_int_equal(ae_index_save(a, ae_test_path("good.aeidx")), AE_OK);
        ae_index_free(a);
        f = ae_test_read_file(ae_test_path("good.aeidx"), &len);
        assert_non_null(f);
        g = malloc(len);
        memcpy(&npairs, f + 48, 4);
        codes = 52 + 12 * (size_t)npairs + 16; /* after the pairs and a section header */
        ids = codes + n * d * 4 + 16;
        labels_end = ids + n * 8 + 16 + n * 4;
        assert_int_equal(load_bytes(f, len), AE_OK);
        /* truncated anywhere (every offset): AE_ERR_FORMAT */
        for (size_t cut = 0; cut < len; cut += cut < 120 ? 1 : 7)
            assert_int_equal(load_bytes(f, cut), AE_ERR_FORMAT);
        /* a trailing byte */
        memcpy(g, f, len);
        {
            unsigned char *h = malloc(len + 1);
            memcpy(h, f, len);
            h[len] = 0;
            assert_int_equal(load_bytes(h, len + 1), AE_ERR_FORMAT);
            free(h);
        }
        /* a flipped byte: magic -> FORMAT, version -> VERSION/FORMAT, file
         * size -> FORMAT, anything else -> CHECKSUM */
        for (size_t off = 0; off < len; off += off < 100 ? 1 : 5) {
            ae_status st;
            memcpy(g, f, len);
            g[off] ^= 0x5A;
            st = load_bytes(g, len);
            if (off < 8) assert_int_equal(st, AE_ERR_FORMAT);
            else if (off < 12) assert_true(st == AE_ERR_VERSION || st == AE_ERR_FORMAT);
            else if (off >= 40 && off < 48) assert_int_equal(st, AE_ERR_FORMAT);
            else assert_int_equal(st, AE_ERR_CHECKSUM);
        }
        /* wrong magic */
        memcpy(g, f, len);
        memcpy(g, "NOTANIDX", 8);
        assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        /* future version, even with a good checksum */
        memcpy(g, f, len);
        g[8] = 5;
        ae_test_fix_crc32(g, len);
        assert_int_equal(load_bytes(g, len), AE_ERR_VERSION);
        /* consistent checksum but nonsense fields: AE_ERR_FORMAT */
        memcpy(g, f, len);
        g[12] = 9; /* backend */
        ae_test_fix_crc32(g, len);
        assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        memcpy(g, f, len);
        g[32] = 61; /* n: sections no longer add up */
        ae_test_fix_crc32(g, len);
        assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        memcpy(g, f, len);
        memset(g + 32, 0xFF, 8); /* huge n */
        ae_test_fix_crc32(g, len);
        assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        memcpy(g, f, len);
        memset(g + 24, 0xFF, 8); /* huge dim */
        ae_test_fix_crc32(g, len);
        assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        memcpy(g, f, len);
        {
            float nan = NAN; /* a NaN code */
            memcpy(g + codes, &nan, 4);
        }
        ae_test_fix_crc32(g, len);
        assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        memcpy(g, f, len);
        memcpy(g + ids + 8, g + ids, 8); /* duplicate id */
        ae_test_fix_crc32(g, len);
        assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        if (b == AE_INDEX_HNSW) {
            /* a link past the end of the graph */
            size_t links0 = labels_end + 16 + 8 + n;
            uint32_t bad = 1000;
            memcpy(g, f, len);
            memcpy(g + links0 + 4, &bad, 4);
            ae_test_fix_crc32(g, len);
            assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        }
        if (b == AE_INDEX_BALLTREE) {
            /* perm not a permutation */
            size_t perm = labels_end + 16 + 8;
            memcpy(g, f, len);
            memcpy(g + perm, g + perm + 4, 4);
            ae_test_fix_crc32(g, len);
            assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        }
        free(f);
        free(g);
    }
    unlink(ae_test_path("good.aeidx"));
    unlink(ae_test_path("bad.aeidx"));
    free(x);
}

/* ---- argument checks -------------------------------------------------------------------- */
static void test_invalid_args(void **state)
{
    float x[4 * 3] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, q[3] = {0}, dist[8];
    int64_t got[8], dup[4] = {1, 2, 3, 2}, v;
    int32_t lab;
    ae_index *idx = NULL;
    (void)state;
    assert_int_equal(ae_index_create(NULL, AE_INDEX_BRUTE, AE_INDEX_L2, 3), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_index_create(&idx, (ae_index_backend)0, AE_INDEX_L2, 3), AE_ERR_INVALID_ARG);
    assert_null(idx);
    assert_non_null(strstr(ae_last_error(), "backend"));
    assert_int_equal(ae_index_create(&idx, AE_INDEX_BRUTE, (ae_index_metric)7, 3), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_index_create(&idx, AE_INDEX_BRUTE, AE_INDEX_L2, 0), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_index_create(&idx, AE_INDEX_BRUTE, AE_INDEX_L2, (size_t)1 << 30), AE_ERR_RANGE);
    ae_index_free(NULL);
    assert_int_equal(ae_index_count(NULL), 0);
    assert_int_equal(ae_index_dim(NULL), 0);
    assert_string_equal(ae_index_errmsg(NULL), "");

    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        assert_int_equal(ae_index_create(&idx, (ae_index_backend)b, AE_INDEX_L2, 3), AE_OK);
        assert_string_equal(ae_index_errmsg(idx), "");
        assert_int_equal(ae_index_count(idx), 0);
        assert_int_equal(ae_index_search(idx, q, 1, 1, 0, dist, got), AE_ERR_STATE);
        assert_int_equal(ae_index_save(idx, ae_test_path("x.aeidx")), AE_ERR_STATE);
        assert_int_equal(ae_index_label(&lab, idx, 0), AE_ERR_STATE);
        assert_int_equal(ae_index_id_at(&v, idx, 0), AE_ERR_STATE);
        /* parameters */
        assert_int_equal(ae_index_set_int(NULL, AE_INDEX_LEAF_SIZE, 3), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_set_int(idx, (ae_index_param)99, 3), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_set_int(idx, b == AE_INDEX_BALLTREE ? AE_INDEX_HNSW_M
                                                                        : AE_INDEX_LEAF_SIZE, 8),
                         AE_ERR_INVALID_ARG);
        assert_non_null(strstr(ae_index_errmsg(idx), "not used by"));
        if (b == AE_INDEX_BALLTREE) {
            assert_int_equal(ae_index_set_int(idx, AE_INDEX_LEAF_SIZE, 0), AE_ERR_RANGE);
            assert_non_null(strstr(ae_index_errmsg(idx), "AE_INDEX_LEAF_SIZE"));
        }
        if (b == AE_INDEX_HNSW) {
            assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_M, 1), AE_ERR_RANGE);
            assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_EF_SEARCH, 70000), AE_ERR_RANGE);
            assert_int_equal(ae_index_set_int(idx, AE_INDEX_SEED, -1), AE_ERR_RANGE);
        }
        /* build */
        assert_int_equal(ae_index_build(NULL, x, 4, NULL, NULL), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_build(idx, NULL, 4, NULL, NULL), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_build(idx, x, 0, NULL, NULL), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_build(idx, x, 4, dup, NULL), AE_ERR_INVALID_ARG);
        assert_non_null(strstr(ae_index_errmsg(idx), "id 2"));
        x[5] = NAN;
        assert_int_equal(ae_index_build(idx, x, 4, NULL, NULL), AE_ERR_NUMERIC);
        assert_non_null(strstr(ae_index_errmsg(idx), "NaN"));
        x[5] = INFINITY;
        assert_int_equal(ae_index_build(idx, x, 4, NULL, NULL), AE_ERR_NUMERIC);
        x[5] = 3e19f; /* finite, but its square overflows float */
        assert_int_equal(ae_index_build(idx, x, 4, NULL, NULL), AE_ERR_NUMERIC);
        x[5] = 0;
        assert_int_equal(ae_index_count(idx), 0);
        assert_int_equal(ae_index_build(idx, x, 4, NULL, NULL), AE_OK);
        assert_int_equal(ae_index_build(idx, x, 4, NULL, NULL), AE_ERR_STATE);
        assert_int_equal(ae_index_set_int(idx, AE_INDEX_SEED, 1),
                         b == AE_INDEX_HNSW ? AE_ERR_STATE : AE_ERR_INVALID_ARG);
        /* search */
        assert_int_equal(ae_index_search(NULL, q, 1, 1, 0, dist, got), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_search(idx, NULL, 1, 1, 0, dist, got), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_search(idx, q, 1, 1, 0, dist, NULL), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_search(idx, q, 1, 0, 0, dist, got), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_search(idx, q, 1, 5, 0, dist, got), AE_ERR_RANGE);
        assert_non_null(strstr(ae_last_error(), "k = 5"));
        assert_int_equal(ae_index_search(idx, q, 1, 1, 100000, dist, got), AE_ERR_RANGE);
        assert_int_equal(ae_index_search(idx, q, 0, 1, 0, dist, got), AE_OK);
        q[1] = NAN;
        assert_int_equal(ae_index_search(idx, q, 1, 1, 0, dist, got), AE_ERR_NUMERIC);
        assert_non_null(strstr(ae_last_error(), "NaN"));
        q[1] = 0;
        assert_int_equal(ae_index_search(idx, q, 1, 4, 0, NULL, got), AE_OK); /* no distances */
        assert_int_equal(got[0], 0);
        /* dimension checks, labels, rows */
        assert_int_equal(ae_index_check_dim(idx, 3), AE_OK);
        assert_int_equal(ae_index_check_dim(idx, 4), AE_ERR_SHAPE);
        assert_non_null(strstr(ae_last_error(), "3 dimensions but 4"));
        assert_int_equal(ae_index_check_dim(NULL, 4), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_label(&lab, idx, 0), AE_ERR_STATE);
        assert_int_equal(ae_index_label_at(&lab, idx, 0), AE_ERR_STATE);
        assert_int_equal(ae_index_id_at(&v, idx, 4), AE_ERR_RANGE);
        assert_int_equal(ae_index_id_at(&v, idx, 3), AE_OK);
        assert_int_equal(v, 3);
        assert_int_equal(ae_index_save(idx, NULL), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_index_save(idx, "/nonexistent-dir/x.aeidx"), AE_ERR_IO);
        assert_true(ae_index_memory_bytes(idx) > 12 * sizeof(float));
        ae_index_free(idx);
        idx = NULL;
    }
    assert_int_equal(ae_index_load(NULL, "x"), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_index_load(&idx, NULL), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_index_load(&idx, ae_test_path("does-not-exist")), AE_ERR_IO);
    assert_null(idx);
}

static void test_params_and_labels(void **state)
{
    int64_t lo, hi, v;
    float x[6 * 2] = {0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0};
    int64_t ids[6] = {50, 40, 30, 20, 10, 0};
    int32_t labels[6] = {5, 4, 3, 2, 1, 0}, lab;
    ae_index *idx;
    (void)state;
    assert_int_equal(ae_index_param_int_bounds(&lo, &hi, AE_INDEX_LEAF_SIZE),
                     AE_OK);
    assert_int_equal(lo, 1);
    assert_true(hi >= 1000);
    assert_int_equal(ae_index_param_int_bounds(&lo, NULL, AE_INDEX_HNSW_M),
                     AE_OK);
    assert_int_equal(lo, 2);
    assert_int_equal(ae_index_param_int_bounds(&lo, &hi, (ae_index_param)0),
                     AE_ERR_INVALID_ARG);
    assert_int_equal(ae_index_create(&idx, AE_INDEX_HNSW, AE_INDEX_L2, 2), AE_OK);
    assert_int_equal(ae_index_get_int(&v, idx, AE_INDEX_HNSW_M), AE_OK);
    assert_int_equal(v, 16);
    assert_int_equal(ae_index_get_int(&v, idx, AE_INDEX_HNSW_EF_SEARCH),
                     AE_OK);
    assert_int_equal(v, 64);
    assert_int_equal(ae_index_get_int(&v, idx, AE_INDEX_LEAF_SIZE),
                     AE_ERR_INVALID_ARG);
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_M, 4), AE_OK);
    assert_int_equal(ae_index_get_int(&v, idx, AE_INDEX_HNSW_M), AE_OK);
    assert_int_equal(v, 4);
    assert_int_equal(ae_index_build(idx, x, 6, ids, labels), AE_OK);
    assert_int_equal(ae_index_has_labels(idx), 1);
    assert_int_equal(ae_index_label(&lab, idx, 30), AE_OK);
    assert_int_equal(lab, 3);
    assert_int_equal(ae_index_label(&lab, idx, 0), AE_OK);
    assert_int_equal(lab, 0);
    assert_int_equal(ae_index_label(&lab, idx, 31), AE_ERR_RANGE);
    assert_int_equal(ae_index_label(&lab, idx, -5), AE_ERR_RANGE);
    assert_int_equal(ae_index_label_at(&lab, idx, 1), AE_OK);
    assert_int_equal(lab, 4);
    assert_int_equal(ae_index_backend_of(idx), AE_INDEX_HNSW);
    ae_index_free(idx);
}

/* AE_INDEX_THREADS: bounds, name, default; a setting of the handle, so it
 * may change after the build (unlike the graph's keys) and is not saved. */
static void test_threads_key(void **state)
{
    int64_t lo, hi, v;
    ae_value_type type;
    float x[8 * 2] = {0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0};
    int64_t more_ids[2] = {100, 101};
    ae_index *idx, *brute, *loaded;
    (void)state;
    assert_int_equal(ae_index_param_int_bounds(&lo, &hi, AE_INDEX_THREADS), AE_OK);
    assert_int_equal(lo, 1);
    assert_int_equal(hi, 64);
    assert_string_equal(ae_index_param_name(AE_INDEX_THREADS), "AE_INDEX_THREADS");
    assert_null(ae_index_param_name((ae_index_param)(AE_INDEX_THREADS + 1)));
    assert_int_equal(ae_index_param_type(&type, AE_INDEX_THREADS), AE_OK);
    assert_int_equal(type, AE_VALUE_INT);
    assert_int_equal(ae_index_create(&brute, AE_INDEX_BRUTE, AE_INDEX_L2, 2), AE_OK);
    assert_int_equal(ae_index_set_int(brute, AE_INDEX_THREADS, 2), AE_ERR_INVALID_ARG);
    ae_index_free(brute);
    assert_int_equal(ae_index_create(&idx, AE_INDEX_HNSW, AE_INDEX_L2, 2), AE_OK);
    assert_int_equal(ae_index_get_int(&v, idx, AE_INDEX_THREADS), AE_OK);
    assert_int_equal(v, 1);
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_THREADS, 0), AE_ERR_RANGE);
    assert_non_null(strstr(ae_index_errmsg(idx), "AE_INDEX_THREADS"));
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_THREADS, 65), AE_ERR_RANGE);
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_THREADS, 4), AE_OK);
    /* more threads than rows to insert: each row still inserted once */
    assert_int_equal(ae_index_build(idx, x, 6, NULL, NULL), AE_OK);
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_M, 4), AE_ERR_STATE);
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_THREADS, 2), AE_OK);
    assert_int_equal(ae_index_get_int(&v, idx, AE_INDEX_THREADS), AE_OK);
    assert_int_equal(v, 2);
    assert_int_equal(ae_index_add(idx, x + 12, 2, more_ids, NULL), AE_OK);
    assert_int_equal(ae_index_count(idx), 8);
    assert_int_equal(ae_index_save(idx, ae_test_path("threads.aeidx")), AE_OK);
    assert_int_equal(ae_index_load(&loaded, ae_test_path("threads.aeidx")), AE_OK);
    assert_int_equal(ae_index_get_int(&v, loaded, AE_INDEX_THREADS), AE_OK);
    assert_int_equal(v, 1);
    ae_index_free(loaded);
    ae_index_free(idx);
}

/* Recall@k at ef = k (the default ef finds every neighbour of these small
 * sets, which would hide a worse graph) of an HNSW index over x (n x d) for
 * queries q, checked against brute force (results must be valid codes); how
 * many codes are found as their own nearest neighbour at the default ef; and
 * that every code is at ef 200: a node no walk of the graph reaches never is
 * (every ef-10 miss of builds without the reconnect pass was such a node). */
static double hnsw_recall_and_self(const ae_index *idx, const float *x, size_t n, size_t d,
                                   const float *q, size_t nq, size_t k, size_t *self)
{
    float *dist;
    int64_t *got;
    size_t hits;
    search_all(idx, q, nq, k, k, &dist, &got);
    hits = check_subset(idx, x, n, d, NULL, NULL, q, nq, k, dist, got, 0);
    free(dist);
    free(got);
    search_all(idx, x, n, 1, 0, &dist, &got);
    *self = 0;
    for (size_t i = 0; i < n; i++) *self += got[i] == (int64_t)i;
    free(dist);
    free(got);
    search_all(idx, x, n, 1, 200, &dist, &got);
    for (size_t i = 0; i < n; i++) assert_int_equal(got[i], (int64_t)i);
    free(dist);
    free(got);
    return (double)hits / (double)(nq * k);
}

/* How far the recall of two builds may differ: each is a fraction of the
 * same slots of different graphs, so allow three binomial standard errors
 * (0.025 for 600 slots at 0.955, where a 3-thread build under TSan read
 * 0.0100 below the one-thread build), and at least 0.01. */
static double recall_tolerance(double recall, size_t slots)
{
    double t = 3.0 * sqrt(recall * (1.0 - recall) / (double)slots);
    return t > 0.01 ? t : 0.01;
}

/* HNSW built on 2 and 3 threads (AE_INDEX_THREADS; 3 exceeds the test
 * machines' cores, so threads are descheduled while they hold a node lock)
 * and grown by threaded adds: the recall of the one-thread build, and every
 * code found by a search for itself. Also in the tsan pass ("threads"). */
static void test_hnsw_threaded_build(void **state)
{
    const int small = getenv("AE_TEST_SMALL") != NULL;
    const size_t n = small ? 1200 : 4000, d = 16, nq = small ? 60 : 200, k = 10, nc = 20;
    const int64_t threads[3] = {1, 2, 3};
    float *centres = rand_matrix(nc, d, -1.0, 1.0), *x = malloc(n * d * sizeof(float));
    float *q = malloc(nq * d * sizeof(float));
    int64_t *ids = malloc(n * sizeof(int64_t));
    double rec[3], rec_add;
    size_t self;
    ae_index *idx;
    (void)state;
    ae_test_clusters(&g_rng, x, NULL, n, d, centres, nc, 1.0);
    ae_test_clusters(&g_rng, q, NULL, nq, d, centres, nc, 1.0);
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i;
    for (int t = 0; t < 3; t++) {
        assert_int_equal(ae_index_create(&idx, AE_INDEX_HNSW, AE_INDEX_L2, d), AE_OK);
        assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_M, 12), AE_OK);
        assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_EF_CONSTRUCTION, 100), AE_OK);
        assert_int_equal(ae_index_set_int(idx, AE_INDEX_THREADS, threads[t]), AE_OK);
        assert_int_equal(ae_index_build(idx, x, n, NULL, NULL), AE_OK);
        assert_int_equal(ae_index_count(idx), n);
        rec[t] = hnsw_recall_and_self(idx, x, n, d, q, nq, k, &self);
        print_message("hnsw %d thread(s): recall@10 %.4f (ef 10), %zu of %zu codes find "
                      "themselves\n",
                      (int)threads[t], rec[t], self, n);
        for (size_t r = 0; r < n; r += 1 + n / 97) { /* no row lost */
            int64_t id;
            assert_int_equal(ae_index_id_at(&id, idx, r), AE_OK);
            assert_int_equal(id, (int64_t)r);
        }
        /* at ef 10, one thread: all (this set and seed); more: the order of
         * insertion varies the graph. With the reconnect pass none of 400
         * threaded builds of 1,200 codes and 45 of 4,000 (2 and 3 threads)
         * missed one; without it 12 of 300 three-thread builds of 1,200
         * missed 1 to 15 */
        assert_true(self >= (t == 0 ? n : n - n / 500));
        ae_index_free(idx);
    }
    assert_true(rec[0] >= 0.85);
    assert_true(fabs(rec[1] - rec[0]) <= recall_tolerance(rec[0], nq * k));
    assert_true(fabs(rec[2] - rec[0]) <= recall_tolerance(rec[0], nq * k));
    /* a quarter built, the rest added on 2 threads in batches */
    assert_int_equal(ae_index_create(&idx, AE_INDEX_HNSW, AE_INDEX_L2, d), AE_OK);
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_M, 12), AE_OK);
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_EF_CONSTRUCTION, 100), AE_OK);
    assert_int_equal(ae_index_set_int(idx, AE_INDEX_THREADS, 2), AE_OK);
    assert_int_equal(ae_index_build(idx, x, n / 4, NULL, NULL), AE_OK);
    for (size_t at = n / 4; at < n; at += n / 4) {
        size_t m = n - at < n / 4 ? n - at : n / 4;
        assert_int_equal(ae_index_add(idx, x + at * d, m, ids + at, NULL), AE_OK);
    }
    assert_int_equal(ae_index_count(idx), n);
    rec_add = hnsw_recall_and_self(idx, x, n, d, q, nq, k, &self);
    print_message("hnsw 2 threads, 75%% added: recall@10 %.4f (ef 10), %zu of %zu codes find "
                  "themselves\n", rec_add, self, n);
    assert_true(self >= n - n / 500);
    assert_true(rec_add >= rec[0] - 0.02);
    ae_index_free(idx);
    free(centres);
    free(x);
    free(q);
    free(ids);
}

/* Allocation failures anywhere in build, search, save and load: a clean
 * AE_ERR_NOMEM (or AE_ERR_IO for the file layer), never a leak or crash. */
static void test_alloc_failures(void **state)
{
    const size_t n = 120, d = 6;
    float *x = rand_matrix(n, d, -1, 1), q[2 * 6], dist[2 * 5];
    int64_t got[2 * 5];
    int32_t labels[120];
    (void)state;
    memcpy(q, x, sizeof q);
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)i;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_INNER_PRODUCT; m++) {
            ae_index *idx = make_index((ae_index_backend)b, (ae_index_metric)m, d, x, n, NULL,
                                       labels, 4);
            long base = ae_test_alloc_live_blocks();
            assert_int_equal(ae_index_save(idx, ae_test_path("nomem.aeidx")), AE_OK);
            /* build; HNSW also on 2 threads (locks, pool, per-thread scratch) */
            for (long k = 1, threads = 1; threads <= (b == AE_INDEX_HNSW ? 2 : 1); k++) {
                ae_index *t;
                ae_status st;
                ae_test_alloc_fail_at(0);
                assert_int_equal(ae_index_create(&t, (ae_index_backend)b, (ae_index_metric)m, d),
                                 AE_OK);
                if (threads > 1)
                    assert_int_equal(ae_index_set_int(t, AE_INDEX_THREADS, threads), AE_OK);
                ae_test_alloc_fail_at(k);
                st = ae_index_build(t, x, n, NULL, labels);
                ae_test_alloc_fail_at(0);
                ae_index_free(t);
                assert_int_equal(ae_test_alloc_live_blocks(), base);
                if (st == AE_OK) {
                    threads++;
                    k = 0;
                    continue;
                }
                assert_int_equal(st, AE_ERR_NOMEM);
            }
            for (long k = 1;; k++) { /* search */
                ae_status st;
                ae_test_alloc_fail_at(k);
                st = ae_index_search(idx, q, 2, 5, 0, dist, got);
                ae_test_alloc_fail_at(0);
                assert_int_equal(ae_test_alloc_live_blocks(), base);
                if (st == AE_OK) break;
                assert_int_equal(st, AE_ERR_NOMEM);
            }
            for (long k = 1;; k++) { /* load */
                ae_index *t = NULL;
                ae_status st;
                ae_test_alloc_fail_at(k);
                st = ae_index_load(&t, ae_test_path("nomem.aeidx"));
                ae_test_alloc_fail_at(0);
                if (st == AE_OK) {
                    ae_index_free(t);
                    break;
                }
                assert_int_equal(st, AE_ERR_NOMEM);
                assert_null(t);
            }
            for (long k = 1;; k++) { /* add (atomic), remove, compact */
                ae_index *t = NULL;
                ae_status st;
                int64_t nid[3] = {1000, 1001, 1002}, rid[2] = {4, 9};
                size_t cnt;
                assert_int_equal(ae_index_load(&t, ae_test_path("nomem.aeidx")), AE_OK);
                if (b == AE_INDEX_HNSW && k % 2 == 0) /* every other trial threaded */
                    assert_int_equal(ae_index_set_int(t, AE_INDEX_THREADS, 2), AE_OK);
                assert_int_equal(ae_index_remove(t, rid, 2), AE_OK);
                cnt = ae_index_count(t);
                ae_test_alloc_fail_at(k);
                st = ae_index_add(t, x + 20 * d, 3, nid, labels);
                ae_test_alloc_fail_at(0);
                if (st != AE_OK) {
                    assert_int_equal(st, AE_ERR_NOMEM);
                    assert_int_equal(ae_index_count(t), cnt);
                    assert_int_equal(ae_index_search(t, q, 2, 5, 0, dist, got), AE_OK);
                    for (int j = 0; j < 10; j++) assert_true(got[j] < 1000);
                } else {
                    assert_int_equal(ae_index_count(t), cnt + 3);
                }
                ae_test_alloc_fail_at(k);
                st = ae_index_compact(t);
                ae_test_alloc_fail_at(0);
                assert_true(st == AE_OK || st == AE_ERR_NOMEM);
                assert_int_equal(ae_index_search(t, q, 2, 5, 0, dist, got), AE_OK);
                ae_index_free(t);
                assert_int_equal(ae_test_alloc_live_blocks(), base);
                if (k > 60) break;
            }
            for (long k = 1;; k++) { /* save */
                ae_status st;
                ae_test_alloc_fail_at(k);
                st = ae_index_save(idx, ae_test_path("nomem2.aeidx"));
                ae_test_alloc_fail_at(0);
                if (st == AE_OK) break;
                assert_true(st == AE_ERR_NOMEM || st == AE_ERR_IO);
            }
            ae_index_free(idx);
        }
    unlink(ae_test_path("nomem.aeidx"));
    unlink(ae_test_path("nomem2.aeidx"));
    free(x);
}

/* ---- concurrency -------------------------------------------------------------------------- */
typedef struct thread_job {
    const ae_index *idx;
    const float *q;
    size_t nq, k, per_call;
    float *dist;
    int64_t *ids;
    ae_status st;
} thread_job;

static void *search_thread(void *arg)
{
    thread_job *j = arg;
    j->st = AE_OK;
    for (int rep = 0; rep < 3 && j->st == AE_OK; rep++)
        for (size_t i = 0; i < j->nq && j->st == AE_OK; i += j->per_call) {
            size_t m = j->nq - i < j->per_call ? j->nq - i : j->per_call;
            j->st = ae_index_search(j->idx, j->q + i * ae_index_dim(j->idx), m, j->k,
                                    (i % 3) * 40, /* ef varies per call */
                                    j->dist + i * j->k, j->ids + i * j->k);
        }
    return NULL;
}

static void test_threads(void **state)
{
    const size_t n = 1500, d = 16, nq = 200, k = 5;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1, 1);
    (void)state;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        ae_index *idx = make_index((ae_index_backend)b, AE_INDEX_L2, d, x, n, NULL, NULL, 0);
        float *sd = malloc(nq * k * sizeof(float));
        int64_t *si = malloc(nq * k * sizeof(int64_t));
        thread_job jobs[4];
        pthread_t th[4];
        /* serial answers, with the same per-call ef as the threads */
        for (size_t i = 0; i < nq; i += 7) {
            size_t m = nq - i < 7 ? nq - i : 7;
            assert_int_equal(ae_index_search(idx, q + i * d, m, k, (i % 3) * 40, sd + i * k,
                                             si + i * k),
                             AE_OK);
        }
        /* the built index, then the same saved and mapped (bounds check: the
         * searches check the layer-0 links as they go) */
        assert_int_equal(ae_index_save(idx, ae_test_path("threads.aeidx")), AE_OK);
        for (int mapped = 0; mapped < 2; mapped++) {
            ae_index *s = idx;
            if (mapped)
                assert_int_equal(ae_index_map(&s, ae_test_path("threads.aeidx"),
                                              AE_INDEX_CHECK_BOUNDS),
                                 AE_OK);
            for (int t = 0; t < 4; t++) {
                jobs[t] = (thread_job){s, q, nq, k, 7, malloc(nq * k * sizeof(float)),
                                       malloc(nq * k * sizeof(int64_t)), AE_OK};
                assert_int_equal(pthread_create(&th[t], NULL, search_thread, &jobs[t]), 0);
            }
            for (int t = 0; t < 4; t++) {
                pthread_join(th[t], NULL);
                assert_int_equal(jobs[t].st, AE_OK);
                assert_memory_equal(jobs[t].ids, si, nq * k * sizeof(int64_t));
                assert_memory_equal(jobs[t].dist, sd, nq * k * sizeof(float));
                free(jobs[t].dist);
                free(jobs[t].ids);
            }
            if (mapped) ae_index_free(s);
        }
        unlink(ae_test_path("threads.aeidx"));
        ae_index_free(idx);
        free(sd);
        free(si);
    }
    free(x);
    free(q);
}


/* Readers searching (plain and filtered) while a writer adds, removes and
 * compacts the same index: every call succeeds, results stay sorted and
 * hold k live codes, and an id removed before a search began never shows
 * up in it. Under TSan (the `threads` label) this is the data-race check of
 * the reader-writer lock. */
#define MIXED_BASE 100000
#define MIXED_BATCH 16

typedef struct mixed_job {
    ae_index *idx;
    const float *q;
    size_t nq, d;
    atomic_llong *removed_below; /* added ids below this are removed */
    atomic_int *stop;
    ae_status st;
    int bad;
    atomic_long searches;
    atomic_int done; /* the reader has left its loop */
} mixed_job;

static int keep_even(int64_t id, void *user)
{
    (void)user;
    return id % 2 == 0;
}

static void *mixed_reader(void *arg)
{
    mixed_job *j = arg;
    const size_t k = 5;
    float dist[5];
    int64_t got[5];
    size_t i = 0;
    while (!atomic_load(j->stop) && j->st == AE_OK && !j->bad) {
        long long lo = atomic_load(j->removed_below);
        int filtered = (i & 1) != 0;
        const float *q = j->q + (i % j->nq) * j->d;
        j->st = filtered ? ae_index_search_filtered(j->idx, q, 1, k, 0, keep_even, NULL, dist, got)
                         : ae_index_search(j->idx, q, 1, k, 0, dist, got);
        for (size_t r = 0; r < k && j->st == AE_OK; r++) {
            if (got[r] < 0 || (got[r] >= MIXED_BASE && got[r] < lo)) j->bad = 1;
            if (filtered && got[r] % 2 != 0) j->bad = 1;
            if (r > 0 && dist[r - 1] > dist[r]) j->bad = 1;
        }
        (void)ae_index_count(j->idx);
        i++;
        atomic_fetch_add(&j->searches, 1);
    }
    atomic_store(&j->done, 1);
    return NULL;
}

/* Waits until every reader has made one more search (so writes and searches
 * really interleave, whatever the scheduler). */
static void mixed_wait_readers(mixed_job *jobs, int nj)
{
    long seen[3];
    for (int t = 0; t < nj; t++) seen[t] = atomic_load(&jobs[t].searches);
    for (int t = 0; t < nj; t++)
        while (atomic_load(&jobs[t].searches) == seen[t] && !atomic_load(&jobs[t].done))
            sched_yield();
}

static void test_threads_mixed(void **state)
{
    const size_t n = 400, d = 8, nq = 50, batches = 24;
    float *x = rand_matrix(n, d, -1, 1), *q = rand_matrix(nq, d, -1, 1);
    float *xa = rand_matrix(batches * MIXED_BATCH, d, -1, 1);
    (void)state;
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++) {
        ae_index *idx = make_index((ae_index_backend)b, AE_INDEX_L2, d, x, n, NULL, NULL, 8);
        atomic_llong removed_below = MIXED_BASE;
        atomic_int stop = 0;
        mixed_job jobs[3];
        pthread_t th[3];
        long total = 0;
        for (int t = 0; t < 3; t++) {
            jobs[t] = (mixed_job){idx, q, nq, d, &removed_below, &stop, AE_OK, 0, 0, 0};
            atomic_init(&jobs[t].searches, 0);
            atomic_init(&jobs[t].done, 0);
            assert_int_equal(pthread_create(&th[t], NULL, mixed_reader, &jobs[t]), 0);
        }
        for (size_t bt = 0; bt < batches; bt++) {
            int64_t ids[MIXED_BATCH];
            mixed_wait_readers(jobs, 3);
            for (int i = 0; i < MIXED_BATCH; i++)
                ids[i] = MIXED_BASE + (int64_t)(bt * MIXED_BATCH) + i;
            assert_int_equal(ae_index_add(idx, xa + bt * MIXED_BATCH * d, MIXED_BATCH, ids, NULL),
                             AE_OK);
            if (bt >= 2) {
                for (int i = 0; i < MIXED_BATCH; i++) ids[i] -= 2 * MIXED_BATCH;
                assert_int_equal(ae_index_remove(idx, ids, MIXED_BATCH), AE_OK);
                atomic_store(&removed_below, MIXED_BASE + (long long)((bt - 1) * MIXED_BATCH));
            }
            if (bt % 8 == 7) assert_int_equal(ae_index_compact(idx), AE_OK);
        }
        atomic_store(&stop, 1);
        for (int t = 0; t < 3; t++) {
            pthread_join(th[t], NULL);
            assert_int_equal(jobs[t].st, AE_OK);
            assert_int_equal(jobs[t].bad, 0);
            total += atomic_load(&jobs[t].searches);
        }
        assert_int_equal(ae_index_count(idx), n + 2 * MIXED_BATCH);
        print_message("backend %d: %ld searches beside %zu adds and removes\n", b, total,
                      batches);
        ae_index_free(idx);
    }
    free(x);
    free(q);
    free(xa);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test_teardown(test_exact_random, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_exact_leaf_sizes, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_exact_blocks, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_exact_ties, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_all_duplicates, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_hnsw_recall, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_hnsw_small_exact, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_cosine, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_add_equals_build, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_add_invalid, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_remove_exact, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_hnsw_remove_recall, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_hnsw_add_recall, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_filtered, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_inner_product, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_save_to_memory, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_save_load, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_corrupt_files, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_map_failures, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_invalid_args, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_params_and_labels, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_threads_key, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_hnsw_threaded_build, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_alloc_failures, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_threads, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_threads_mixed, ae_test_alloc_teardown),
    };
    const struct CMUnitTest threads_only[] = {
        cmocka_unit_test_teardown(test_hnsw_threaded_build, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_threads, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_threads_mixed, ae_test_alloc_teardown),
    };
    int rc;
    ae_test_rng_seed(&g_rng, 12345);
    /* tmpfs when there is one: the atomic writer fsyncs every save */
    if (!ae_test_tmpdir_create("ae-test-index-", AE_TEST_SHM)) return 1;
    if (ae_test_alloc_install() != 0) return 1;
    /* "threads" runs only the concurrency tests (the TSan target) */
    if (argc > 1 && strcmp(argv[1], "threads") == 0)
        rc = cmocka_run_group_tests_name("index_threads", threads_only, NULL, NULL);
    else
        rc = cmocka_run_group_tests_name("index", all, NULL, NULL);
    ae_test_alloc_uninstall();
    if (ae_test_tmpdir_remove() != 0) return 1;
    return rc;
}
