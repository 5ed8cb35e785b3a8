/*
 * The library's own thread pool (lib/parallel.c) under concurrency, for the
 * ThreadSanitizer pass (tests/run.sh tsan: ctest -L threads):
 *   - ae_fit with AE_TRAIN_THREADS = 2 (batches split over the pool);
 *   - ae_model_predict and ae_encoder_encode with 3 threads;
 *   - several application threads predicting on one const model at once,
 *     each call with its own internal pool.
 * Results are also checked: 2-thread training is deterministic for a seed,
 * and threaded predictions equal the 1-thread ones up to BLAS rounding.
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

static float *rand_rows(size_t n, size_t d, uint32_t seed)
{
    float *x = malloc(n * d * sizeof *x);
    uint32_t s = seed * 2654435761u + 1;
    assert_non_null(x);
    for (size_t i = 0; i < n * d; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
    return x;
}

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
    assert_int_equal(ae_builder_build(b, seed, &m), AE_OK);
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
    assert_int_equal(ae_fit(m, c, x, NULL, n, NULL), AE_OK);
    ae_train_config_free(c);
}

static void test_fit_two_threads(void **state)
{
    const size_t n = 80, d = 144;
    float *x = rand_rows(n, d, 1), *ya = malloc(n * d * 4), *yb = malloc(n * d * 4);
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
    float *x = rand_rows(n, d, 2), *ref = malloc(n * d * 4), *ref_codes = malloc(n * 16 * 4);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_two_threads),
        cmocka_unit_test(test_predict_three_threads),
    };
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
