/*
 * Training that meets NaN/inf in a LATER epoch stops with AE_ERR_NUMERIC and
 * keeps the last good weights, also when only one thread's share of the
 * gradient turns non-finite (tests/test_train.c covers a NaN present from
 * the start and an overflow in the first epoch). The progress callback
 * poisons the caller's training rows after epoch 0 (ae_train_fit reads them again
 * every epoch), so epoch 1 meets infinity:
 *   - restore-best off: the weights are the ones at the end of epoch 0;
 *   - restore-best on with validation: the weights of the best epoch (0).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"
#include "nn.h"

typedef struct poison {
    ae_model *m;
    float *x;
    size_t n_x;
    float *snapshot; /* weights at the end of epoch 0 */
    int epochs;
} poison;

static int poison_after_epoch0(ae_train_event event, size_t epoch, size_t step, size_t steps, double loss,
                               const ae_model *model, const ae_history *h, void *user)
{
    (void)model;
    poison *p = user;
    (void)step, (void)steps, (void)loss, (void)h;
    if (event == AE_EVENT_EPOCH_END) {
        p->epochs++;
        if (epoch == 0) {
            memcpy(p->snapshot, p->m->params, p->m->n_params * sizeof(float));
            for (size_t i = 0; i < p->n_x; i += 3) p->x[i] = INFINITY;
        }
    }
    return 0;
}

enum { ROWS = 40, WIDTH = 12 };

/* A 12-4-12 autoencoder and 40 rows of deterministic inputs (*x, freed by
 * the caller). */
static ae_model *small_model(float **x)
{
    ae_builder *b;
    ae_model *m;
    size_t in[1] = {WIDTH};
    *x = malloc(ROWS * WIDTH * sizeof **x);
    for (size_t i = 0; i < ROWS * WIDTH; i++) (*x)[i] = (float)((i * 7919) % 101) / 101.0f;
    assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_dense(b, WIDTH, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 3), AE_OK);
    ae_builder_free(b);
    return m;
}

static void run(int restore_best, double split)
{
    const size_t n = ROWS, d = WIDTH;
    ae_train_config *c;
    ae_history *h;
    poison p = {0};
    float *x;
    p.m = small_model(&x);
    p.x = x;
    p.n_x = (size_t)((double)n * (1.0 - split)) * d; /* training rows only */
    p.snapshot = malloc(p.m->n_params * sizeof(float));
    assert_int_equal(ae_train_config_create(&c), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 4), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 8), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 1), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_RESTORE_BEST, restore_best), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, split), AE_OK);
    assert_int_equal(ae_train_config_set_callback(c, poison_after_epoch0, &p), AE_OK);
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_fit(p.m, c, x, NULL, n, h), AE_ERR_NUMERIC);
    assert_true(ae_model_errmsg(p.m)[0] != '\0');
    assert_int_equal(p.epochs, 1); /* epoch 1 never completed */
    assert_int_equal(ae_history_epochs(h), 1);
    /* the last good weights, all finite */
    assert_memory_equal(p.snapshot, p.m->params, p.m->n_params * sizeof(float));
    for (size_t i = 0; i < p.m->n_params; i++) assert_true(isfinite(p.m->params[i]));
    ae_history_free(h);
    ae_train_config_free(c);
    ae_model_free(p.m);
    free(p.snapshot);
    free(x);
}

static void test_inf_in_epoch1_no_restore(void **state)
{
    (void)state;
    run(0, 0.0);
}

static void test_inf_in_epoch1_restore_best(void **state)
{
    (void)state;
    run(1, 0.25);
}

/* The reduction hook writes NaN into the last parameter's gradient from the
 * first step of epoch 1 on: on 2 threads only the second thread's range of
 * parameters is non-finite, and the first updates its own without waiting
 * for the other's check. The failed fit still leaves the weights of the end
 * of epoch 0, and its state can be neither saved nor resumed. */
typedef struct nan_hook {
    size_t calls, from_call;
} nan_hook;

static int nan_in_last_gradient(float *grads, size_t count, void *user)
{
    nan_hook *h = user;
    if (++h->calls > h->from_call) grads[count - 1] = NAN;
    return 0;
}

static void test_nan_gradient_in_one_thread_range(void **state)
{
    nan_hook hook = {0, 5}; /* 40 rows in batches of 8: epoch 0 is 5 steps */
    poison p = {0};         /* n_x 0: only the snapshot at the end of epoch 0 */
    ae_model *m;
    ae_train_config *c;
    ae_train_state *ts;
    float *x;
    (void)state;
    p.m = m = small_model(&x);
    p.snapshot = malloc(m->n_params * sizeof(float));
    assert_int_equal(ae_train_config_create(&c), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 3), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 8), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_callback(c, poison_after_epoch0, &p), AE_OK);
    assert_int_equal(ae_train_config_set_reduce(c, nan_in_last_gradient, NULL, &hook), AE_OK);
    assert_int_equal(ae_train_state_create(&ts), AE_OK);
    assert_int_equal(ae_train_fit_state(m, c, ts, x, NULL, ROWS, NULL), AE_ERR_NUMERIC);
    assert_int_equal(hook.calls, 6); /* the first step of epoch 1 failed */
    assert_memory_equal(p.snapshot, m->params, m->n_params * sizeof(float));
    assert_int_equal(ae_train_state_save(ts, m, "never_written.aes"), AE_ERR_STATE);
    assert_int_equal(ae_train_fit_state(m, c, ts, x, NULL, ROWS, NULL), AE_ERR_STATE);
    ae_train_state_free(ts);
    ae_train_config_free(c);
    ae_model_free(m);
    free(p.snapshot);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inf_in_epoch1_no_restore),
        cmocka_unit_test(test_inf_in_epoch1_restore_best),
        cmocka_unit_test(test_nan_gradient_in_one_thread_range),
    };
    return cmocka_run_group_tests_name("train_numeric", tests, NULL, NULL);
}
