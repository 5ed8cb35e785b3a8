/*
 * The library's own thread pool (lib/parallel.c) under concurrency, for the
 * ThreadSanitizer pass (tests/run.sh tsan: ctest -L threads):
 *   - ae_train_fit with AE_TRAIN_THREADS = 2 (batches split over the pool);
 *   - ae_model_predict and ae_encoder_encode with 3 threads;
 *   - several application threads predicting on one const model at once,
 *     each call with its own internal pool;
 *   - concurrent fits and predicts on several application threads, which
 *     must leave the host's OpenBLAS thread count as the host set it and
 *     give each fit the weights of a fit run alone.
 * Results are also checked: 2-thread training is deterministic for a seed,
 * and threaded predictions and codes equal the 1-thread ones bit for bit.
 * Also a plain unit test (label unit) in the other passes.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"
#include "test_support.h"

/* OpenBLAS extensions (the tests link OpenBLAS through the static library). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static ae_model *small_conv(uint64_t seed)
{
    ae_builder *b;
    ae_model *m;
    size_t in[3] = {12, 12, 1};
    assert_int_equal(ae_builder_create(&b, 3, in), AE_OK);
    assert_int_equal(ae_builder_conv2d(b, 4, 3, AE_PAD_SAME, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_maxpool2d(b, AE_PAD_SAME), AE_OK);
    assert_int_equal(ae_builder_flatten(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 16, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 144, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, seed), AE_OK);
    ae_builder_free(b);
    return m;
}

static void fit2(ae_model *m, const float *x, size_t n)
{
    ae_train_config *c;
    assert_int_equal(ae_train_config_create(&c), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 16), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, 3), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0.2), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, NULL, n, NULL), AE_OK);
    ae_train_config_free(c);
}

static void test_fit_two_threads(void **state)
{
    const size_t n = 80, d = 144;
    float *x = ae_test_rows(n, d, 1), *ya = malloc(n * d * 4), *yb = malloc(n * d * 4);
    ae_model *a = small_conv(5), *b = small_conv(5);
    (void)state;
    fit2(a, x, n);
    fit2(b, x, n);
    /* same seed, same thread count: same weights, same outputs */
    assert_int_equal(ae_model_set_threads(a, 1), AE_OK);
    assert_int_equal(ae_model_set_threads(b, 1), AE_OK);
    assert_int_equal(ae_model_predict(a, x, n, ya, n * d), AE_OK);
    assert_int_equal(ae_model_predict(b, x, n, yb, n * d), AE_OK);
    assert_memory_equal(ya, yb, n * d * 4);
    ae_model_free(a);
    ae_model_free(b);
    free(x);
    free(ya);
    free(yb);
}

/* Batch norm (statistics across the fit's threads at barriers), dropout,
 * noise and a VAE's sampling layer with its KL term: two fits on 2 threads with the same seed agree bit for bit (here
 * also the ThreadSanitizer pass sees the cross-thread reduction). 70 rows
 * with a 20% split leave 56 training rows: three batches of 16, then 8;
 * predict on 2 threads and on 1 agree (inference is row-independent). */
static ae_model *small_bn(uint64_t seed)
{
    ae_builder *b;
    ae_model *m;
    size_t in[3] = {12, 12, 1};
    assert_int_equal(ae_builder_create(&b, 3, in), AE_OK);
    assert_int_equal(ae_builder_masking_noise(b, 0.2), AE_OK);
    assert_int_equal(ae_builder_conv2d_ex(b, 4, 3, 2, AE_PAD_SAME, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.9, 1e-3), AE_OK);
    assert_int_equal(ae_builder_activation(b, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_flatten(b), AE_OK);
    assert_int_equal(ae_builder_dropout(b, 0.1), AE_OK);
    assert_int_equal(ae_builder_dense(b, 16, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.9, 1e-3), AE_OK);
    assert_int_equal(ae_builder_sampling(b, 1.0 / 144), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 144, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, seed), AE_OK);
    ae_builder_free(b);
    return m;
}

static void test_fit_batchnorm_two_threads(void **state)
{
    const size_t n = 70, d = 144;
    float *x = ae_test_rows(n, d, 2), *ya = malloc(n * d * 4), *yb = malloc(n * d * 4);
    ae_model *a = small_bn(5), *b = small_bn(5);
    (void)state;
    fit2(a, x, n);
    fit2(b, x, n);
    assert_int_equal(ae_model_set_threads(a, 2), AE_OK);
    assert_int_equal(ae_model_set_threads(b, 1), AE_OK);
    assert_int_equal(ae_model_predict(a, x, n, ya, n * d), AE_OK);
    assert_int_equal(ae_model_predict(b, x, n, yb, n * d), AE_OK);
    assert_memory_equal(ya, yb, n * d * 4);
    ae_model_free(a);
    ae_model_free(b);
    free(x);
    free(ya);
    free(yb);
}

typedef struct job {
    const ae_model *m;
    const ae_encoder *e;
    const float *x;
    size_t n;
    float *y, *codes;
    ae_status st;
} job;

static void *predict_thread(void *arg)
{
    job *j = arg;
    j->st = ae_model_predict(j->m, j->x, j->n, j->y, j->n * ae_model_output_size(j->m));
    if (j->st == AE_OK)
        j->st = ae_encoder_encode(j->e, j->x, j->n, j->codes, j->n * ae_encoder_code_size(j->e));
    return NULL;
}

static void test_predict_three_threads(void **state)
{
    const size_t n = 300, d = 144;
    float *x = ae_test_rows(n, d, 2), *ref = malloc(n * d * 4), *ref_codes = malloc(n * 16 * 4);
    ae_model *m = small_conv(7);
    ae_encoder *e;
    job jobs[3];
    pthread_t th[3];
    (void)state;
    assert_int_equal(ae_model_set_threads(m, 1), AE_OK);
    assert_int_equal(ae_model_predict(m, x, n, ref, n * d), AE_OK);
    assert_int_equal(ae_encoder_create(&e, m), AE_OK);
    assert_int_equal(ae_encoder_encode(e, x, n, ref_codes, n * 16), AE_OK);
    assert_int_equal(ae_model_set_threads(m, 3), AE_OK);
    assert_int_equal(ae_encoder_set_threads(e, 3), AE_OK);
    /* three application threads, each call splitting over 3 pool threads */
    for (int t = 0; t < 3; t++) {
        jobs[t] = (job){m, e, x, n, malloc(n * d * 4), malloc(n * 16 * 4), AE_ERR_INTERNAL};
        assert_int_equal(pthread_create(&th[t], NULL, predict_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 3; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(jobs[t].st, AE_OK);
        assert_memory_equal(jobs[t].y, ref, n * d * sizeof *ref);
        assert_memory_equal(jobs[t].codes, ref_codes, n * 16 * sizeof *ref_codes);
        free(jobs[t].y);
        free(jobs[t].codes);
    }
    ae_encoder_free(e);
    ae_model_free(m);
    free(x);
    free(ref);
    free(ref_codes);
}

/* ---- OpenBLAS' process-wide thread count under concurrent calls ---------------- */

/* One epoch of the simple model on n rows, batches of 64 split over 2 threads:
 * its backward GEMMs (784 x 32 x 32) are large enough for OpenBLAS to split
 * them over its own threads if the count were not 1 during the fit. */
static ae_status fit_simple(ae_model *m, const float *x, size_t n)
{
    ae_train_config *c;
    ae_status st;
    if (ae_train_config_create(&c) != AE_OK) return AE_ERR_NOMEM;
    ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 1);
    ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 64);
    ae_train_config_set_int(c, AE_TRAIN_THREADS, 2);
    ae_train_config_set_int(c, AE_TRAIN_SEED, 11);
    st = ae_train_fit(m, c, x, NULL, n, NULL);
    ae_train_config_free(c);
    return st;
}

static void assert_same_weights(const ae_model *a, const ae_model *b, int round)
{
    assert_int_equal(ae_model_layer_count(a), ae_model_layer_count(b));
    for (size_t i = 0; i < ae_model_layer_count(a); i++) {
        const ae_layer *la = ae_model_layer(a, i), *lb = ae_model_layer(b, i);
        for (int which = AE_PARAM_KERNEL; which <= AE_PARAM_BIAS; which++) {
            const float *pa, *pb;
            size_t na, nb;
            if (ae_layer_param_count(la) == 0) continue;
            assert_int_equal(ae_layer_param(&pa, &na, la, which), AE_OK);
            assert_int_equal(ae_layer_param(&pb, &nb, lb, which), AE_OK);
            assert_int_equal(na, nb);
            if (memcmp(pa, pb, na * sizeof *pa) != 0)
                fail_msg("round %d: layer %zu's weights differ from the fit run alone", round, i);
        }
    }
}

typedef struct fit_job {
    ae_model *m;
    const float *x;
    size_t n;
    ae_status st;
} fit_job;

static void *fit_thread(void *arg)
{
    fit_job *j = arg;
    j->st = fit_simple(j->m, j->x, j->n);
    return NULL;
}

typedef struct predict_job {
    const ae_model *m;
    const float *x;
    size_t n;
    float *y;
    ae_status st;
} predict_job;

static void *predict_loop(void *arg)
{
    predict_job *j = arg;
    j->st = AE_OK;
    for (int r = 0; r < 8 && j->st == AE_OK; r++)
        j->st = ae_model_predict(j->m, j->x, j->n, j->y, j->n * ae_model_output_size(j->m));
    return NULL;
}

/* The host sets OpenBLAS to 2 threads; two fits and two threaded predicts run
 * at once, several rounds. Afterwards the count is still 2, and every fit
 * has the weights of the same fit run alone. */
static void test_host_blas_threads_kept(void **state)
{
    enum { ROUNDS = 10, FITS = 2, PREDICTS = 2 };
    const size_t n = 256;
    const int host_before = openblas_get_num_threads();
    float *x = ae_test_rows(n, 784, 9);
    ae_model *solo, *shared;
    (void)state;
    openblas_set_num_threads(2);
    if (openblas_get_num_threads() != 2) {
        openblas_set_num_threads(host_before);
        free(x);
        skip(); /* an OpenBLAS built for one thread */
    }
    assert_int_equal(ae_preset_build(&solo, AE_PRESET_SIMPLE, 4), AE_OK);
    assert_int_equal(fit_simple(solo, x, n), AE_OK);
    assert_int_equal(openblas_get_num_threads(), 2);
    assert_int_equal(ae_preset_build(&shared, AE_PRESET_SIMPLE, 5), AE_OK);
    assert_int_equal(ae_model_set_threads(shared, 2), AE_OK);
    for (int round = 0; round < ROUNDS; round++) {
        fit_job fits[FITS];
        predict_job preds[PREDICTS];
        pthread_t th[FITS + PREDICTS];
        for (int i = 0; i < FITS; i++) {
            fits[i] = (fit_job){NULL, x, n, AE_ERR_INTERNAL};
            assert_int_equal(ae_preset_build(&fits[i].m, AE_PRESET_SIMPLE, 4), AE_OK);
        }
        for (int i = 0; i < PREDICTS; i++)
            preds[i] = (predict_job){shared, x, n, malloc(n * 784 * sizeof(float)), AE_ERR_INTERNAL};
        for (int i = 0; i < FITS + PREDICTS; i++) {
            int rc = i < FITS ? pthread_create(&th[i], NULL, fit_thread, &fits[i])
                              : pthread_create(&th[i], NULL, predict_loop, &preds[i - FITS]);
            assert_int_equal(rc, 0);
        }
        for (int i = 0; i < FITS + PREDICTS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
        if (openblas_get_num_threads() != 2)
            fail_msg("round %d: the host's OpenBLAS thread count is %d, it set 2", round,
                     openblas_get_num_threads());
        for (int i = 0; i < FITS; i++) {
            assert_int_equal(fits[i].st, AE_OK);
            assert_same_weights(solo, fits[i].m, round);
            ae_model_free(fits[i].m);
        }
        for (int i = 0; i < PREDICTS; i++) {
            assert_int_equal(preds[i].st, AE_OK);
            free(preds[i].y);
        }
    }
    ae_model_free(shared);
    ae_model_free(solo);
    openblas_set_num_threads(host_before);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_two_threads),
        cmocka_unit_test(test_fit_batchnorm_two_threads),
        cmocka_unit_test(test_predict_three_threads),
        cmocka_unit_test(test_host_blas_threads_kept),
    };
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
