/* Training: optimiser steps against PyTorch's numbers, validation split,
 * shuffling determinism, early stopping with best-weight restore, callbacks,
 * NaN handling, configuration bounds, and a short real run that learns. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn.h"
#include "test_support.h"

/* ---- optimisers ------------------------------------------------------------------ */

static const float w0[3] = {0.5f, -0.3f, 2.0f};
static const float grads[3][3] = {{0.1f, -0.2f, 0.3f}, {-0.05f, 0.4f, 0.01f}, {0.2f, 0.2f, -0.1f}};

/* Three steps from w0 with the gradients above; expected values printed by
 * torch 1.13 (NAdam momentum_decay 0.004, Adam, SGD momentum 0.9) in float64.
 * NAdam's numbers come from torch's foreach path (foreach=True), which
 * follows Dozat's and Keras' formula; 1.13's single-tensor path multiplies
 * mu into the next product twice, a torch bug fixed in later releases. */
static void run_optimizer(int kind, double lr, double momentum, const double want[3][3])
{
    ae__optimizer o;
    float w[3];
    memcpy(w, w0, sizeof w);
    assert_int_equal(ae__optim_init(&o, kind, lr, 0.9, 0.999, 1e-7, momentum, 0.004, 3), AE_OK);
    for (int s = 0; s < 3; s++) {
        ae__optim_step(&o, w, grads[s]);
        for (int i = 0; i < 3; i++)
            if (fabs(w[i] - want[s][i]) > 2e-6)
                fail_msg("kind %d step %d w[%d] = %.9f, want %.9f", kind, s, i, w[i], want[s][i]);
    }
    ae__optim_free(&o);
}

static void test_nadam_matches_torch(void **state)
{
    static const double want[3][3] = {
        {0.49894354926511597, -0.29894354873689083, 1.9989435485608158},
        {0.49935465847580074, -0.2998501059461345, 1.9988456818889329},
        {0.4983565571173765, -0.30034395434705535, 1.9991379087282233}};
    (void)state;
    run_optimizer(AE_OPT_NADAM, 1e-3, 0, want);
}

static void test_adam_matches_torch(void **state)
{
    static const double want[3][3] = {
        {0.499000000999999, -0.29900000049999975, 1.9990000003333332},
        {0.49873366429728144, -0.2993661039112809, 1.9983055115402797},
        {0.4980755531943701, -0.29988534454391574, 1.9979983326888473}};
    (void)state;
    run_optimizer(AE_OPT_ADAM, 1e-3, 0, want);
}

static void test_sgd_momentum_matches_torch(void **state)
{
    static const double want[3][3] = {
        {0.49, -0.28, 1.97}, {0.486, -0.302, 1.942}, {0.4624, -0.3418, 1.9268}};
    (void)state;
    run_optimizer(AE_OPT_SGD, 0.1, 0.9, want);
}

/* ---- helpers ------------------------------------------------------------------------ */

static ae_model *small_model(uint64_t seed)
{
    ae_builder *b;
    ae_model *m;
    size_t in[1] = {16};
    assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 16, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, seed), AE_OK);
    ae_builder_free(b);
    return m;
}

static ae_train_config *config(int epochs, int batch, double split)
{
    ae_train_config *c;
    assert_int_equal(ae_train_config_create(&c), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, epochs), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, batch), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, split), AE_OK);
    return c;
}

/* ---- fit -------------------------------------------------------------------------------- */

/* The validation rows are the last floor-complement rows, before shuffling:
 * the recorded val loss equals evaluate() on exactly those rows. */
static void test_validation_split_rows(void **state)
{
    const size_t n = 103;
    float *x = ae_test_rows(n, 16, 1);
    ae_model *m = small_model(1);
    ae_train_config *c = config(2, 8, 0.2);
    ae_history *h;
    double recorded, direct;
    const size_t n_train = 82; /* floor(103 * 0.8) */
    (void)state;
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, NULL, n, h), AE_OK);
    assert_int_equal(ae_history_epochs(h), 2);
    assert_int_equal(ae_history_get(&recorded, h, 1, AE_HIST_VAL_LOSS), AE_OK);
    assert_int_equal(ae_model_evaluate(&direct, m, AE_LOSS_BCE, x + n_train * 16, NULL, n - n_train),
                     AE_OK);
    assert_float_equal(recorded, direct, 1e-6);
    assert_int_equal(ae_model_evaluate(&direct, m, AE_LOSS_BCE, x + (n_train - 1) * 16, NULL, n - n_train),
                     AE_OK);
    assert_true(fabs(recorded - direct) > 1e-7);
    ae_history_free(h);
    ae_train_config_free(c);
    ae_model_free(m);
    free(x);
}

static void test_shuffle_determinism(void **state)
{
    const size_t n = 200;
    float *x = ae_test_rows(n, 16, 2);
    ae_model *a = small_model(3), *b = small_model(3), *d = small_model(3);
    ae_train_config *c = config(3, 16, 0.1);
    (void)state;
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, 42), AE_OK);
    assert_int_equal(ae_train_fit(a, c, x, NULL, n, NULL), AE_OK);
    assert_int_equal(ae_train_fit(b, c, x, NULL, n, NULL), AE_OK);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, 43), AE_OK);
    assert_int_equal(ae_train_fit(d, c, x, NULL, n, NULL), AE_OK);
    assert_memory_not_equal(a->params, d->params, a->n_params * sizeof(float));
    /* without shuffling the seed does not matter */
    ae_model_free(a); ae_model_free(b); ae_model_free(d);
    a = small_model(3); b = small_model(3);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE, 0), AE_OK);
    assert_int_equal(ae_train_fit(a, c, x, NULL, n, NULL), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, 44), AE_OK);
    assert_int_equal(ae_train_fit(b, c, x, NULL, n, NULL), AE_OK);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    ae_model_free(a); ae_model_free(b);
    ae_train_config_free(c);
    free(x);
}

/* The small model with batch normalisation after its code: training moves
 * the running statistics, which restoring an epoch must restore too. */
static ae_model *small_bn_model(uint64_t seed)
{
    ae_builder *b;
    ae_model *m;
    size_t in[1] = {16};
    assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.5, 1e-3), AE_OK);
    assert_int_equal(ae_builder_activation(b, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 16, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, seed), AE_OK);
    ae_builder_free(b);
    return m;
}

/* Training targets 0 and validation targets 1 (MSE): validation gets worse
 * every epoch, so early stopping ends after patience + 1 epochs and restores
 * the first epoch's weights (and running statistics: the validation loss
 * evaluated afterwards, in inference mode, is the first epoch's). */
static void check_early_stopping_restores_best(ae_model *m)
{
    const size_t n = 100, n_train = 80;
    float *x = ae_test_rows(n, 16, 4), *y = calloc(n * 16, sizeof *y);
    ae_train_config *c = config(50, 10, 0.2);
    ae_history *h;
    size_t best;
    double first_val, now;
    for (size_t i = n_train * 16; i < n * 16; i++) y[i] = 1.0f;
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_LOSS, AE_LOSS_MSE), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_PATIENCE, 3), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_LEARNING_RATE, 0.01), AE_OK);
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, y, n, h), AE_OK);
    assert_true(ae_history_stopped_early(h));
    assert_int_equal(ae_history_epochs(h), 4);
    assert_int_equal(ae_history_best_epoch(&best, h), AE_OK);
    assert_int_equal(best, 0);
    assert_int_equal(ae_history_get(&first_val, h, 0, AE_HIST_VAL_LOSS),
                     AE_OK);
    assert_int_equal(ae_model_evaluate(&now, m, AE_LOSS_MSE, x + n_train * 16, y + n_train * 16, n - n_train),
                     AE_OK);
    assert_float_equal(now, first_val, 1e-7);
    ae_history_free(h);
    ae_train_config_free(c);
    ae_model_free(m);
    free(x);
    free(y);
}

static void test_early_stopping_restores_best(void **state)
{
    (void)state;
    check_early_stopping_restores_best(small_model(5));
}

static void test_early_stopping_restores_batchnorm_statistics(void **state)
{
    (void)state;
    check_early_stopping_restores_best(small_bn_model(5));
}

typedef struct stop_after {
    int epochs_seen, batches_seen, stop_at_epoch;
} stop_after;

static int stopper(ae_train_event event, size_t epoch, size_t step, size_t steps, double loss,
                   const ae_model *model, const ae_history *h, void *user)
{
    (void)model;
    stop_after *s = user;
    (void)step; (void)steps;
    assert_true(isfinite(loss));
    if (event == AE_EVENT_BATCH_END) s->batches_seen++;
    if (event == AE_EVENT_EPOCH_END) {
        s->epochs_seen++;
        assert_int_equal(ae_history_epochs(h), epoch + 1);
        return (int)epoch + 1 == s->stop_at_epoch;
    }
    return 0;
}

static void test_callback_stops(void **state)
{
    float *x = ae_test_rows(64, 16, 6);
    ae_model *m = small_model(6);
    ae_train_config *c = config(10, 16, 0);
    ae_history *h;
    stop_after s = {0, 0, 2};
    (void)state;
    assert_int_equal(ae_train_config_set_callback(c, stopper, &s), AE_OK);
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, NULL, 64, h), AE_STOPPED);
    assert_false(ae_is_error(AE_STOPPED));
    assert_int_equal(s.epochs_seen, 2);
    assert_int_equal(s.batches_seen, 8);
    assert_int_equal(ae_history_epochs(h), 2);
    ae_history_free(h);
    ae_train_config_free(c);
    ae_model_free(m);
    free(x);
}

static void test_nan_and_divergence(void **state)
{
    float *x = ae_test_rows(64, 16, 7);
    ae_model *m = small_model(7);
    ae_train_config *c = config(3, 16, 0);
    float *before = malloc(m->n_params * sizeof *before);
    (void)state;
    x[100] = NAN;
    assert_int_equal(ae_train_fit(m, c, x, NULL, 64, NULL), AE_ERR_NUMERIC);
    assert_true(strstr(ae_model_errmsg(m), "NaN") != NULL);
    /* finite but enormous inputs overflow the forward pass: training stops
     * and the weights are the ones from before the bad step */
    for (size_t i = 0; i < 64 * 16; i++) x[i] = 3e38f;
    memcpy(before, m->params, m->n_params * sizeof *before);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_LOSS, AE_LOSS_MSE), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, NULL, 64, NULL), AE_ERR_NUMERIC);
    assert_memory_equal(before, m->params, m->n_params * sizeof *before);
    free(before);
    ae_train_config_free(c);
    ae_model_free(m);
    free(x);
}

/* Threads split each batch: the same seed and thread count give identical
 * weights; other thread counts agree to float rounding. NaN detection works
 * on every thread. */
static void test_threaded_fit(void **state)
{
    const size_t n = 203;
    float *x = ae_test_rows(n, 16, 12);
    ae_model *one = small_model(13), *three = small_model(13), *again = small_model(13);
    ae_train_config *c = config(3, 20, 0.1);
    (void)state;
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, 5), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 1), AE_OK);
    assert_int_equal(ae_train_fit(one, c, x, NULL, n, NULL), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 3), AE_OK);
    assert_int_equal(ae_train_fit(three, c, x, NULL, n, NULL), AE_OK);
    assert_int_equal(ae_train_fit(again, c, x, NULL, n, NULL), AE_OK);
    assert_memory_equal(three->params, again->params, three->n_params * sizeof(float));
    for (size_t i = 0; i < one->n_params; i++)
        assert_float_equal(one->params[i], three->params[i], 1e-4);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 65), AE_ERR_RANGE);
    x[5 * 16 + 3] = INFINITY;
    assert_int_equal(ae_train_fit(one, c, x, NULL, n, NULL), AE_ERR_NUMERIC);
    for (size_t i = 0; i < n * 16; i++) x[i] = 3e38f; /* overflow inside the threads */
    memcpy(again->params, three->params, three->n_params * sizeof(float));
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_LOSS, AE_LOSS_MSE), AE_OK);
    assert_int_equal(ae_train_fit(three, c, x, NULL, n, NULL), AE_ERR_NUMERIC);
    assert_memory_equal(three->params, again->params, three->n_params * sizeof(float));
    ae_train_config_free(c);
    ae_model_free(one);
    ae_model_free(three);
    ae_model_free(again);
    free(x);
}

static void test_config_bounds_and_errors(void **state)
{
    ae_train_config *c;
    double v, lo, hi;
    int64_t iv, ilo, ihi;
    ae_value_type type;
    ae_model *m = small_model(8);
    float x[16 * 4] = {0};
    (void)state;
    assert_int_equal(ae_train_config_create(&c), AE_OK);
    assert_int_equal(ae_train_config_get_int(&iv, c, AE_TRAIN_OPTIMIZER), AE_OK);
    assert_int_equal(iv, AE_OPT_NADAM);
    assert_int_equal(ae_train_config_get_double(&v, c, AE_TRAIN_EPSILON), AE_OK);
    assert_float_equal(v, 1e-7, 1e-12);
    assert_int_equal(ae_train_param_type(&type, AE_TRAIN_VALIDATION_SPLIT), AE_OK);
    assert_int_equal(type, AE_VALUE_DOUBLE);
    assert_int_equal(ae_train_param_double_bounds(&lo, &hi, AE_TRAIN_VALIDATION_SPLIT), AE_OK);
    assert_true(lo == 0 && hi < 1);
    assert_int_equal(ae_train_param_type(&type, AE_TRAIN_SEED), AE_OK);
    assert_int_equal(type, AE_VALUE_INT);
    assert_int_equal(ae_train_param_int_bounds(&ilo, &ihi, AE_TRAIN_SEED), AE_OK);
    assert_true(ilo == 0 && ihi == INT64_MAX);
    /* integer keys are exact: a seed above 2^53 is not rounded */
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, INT64_MAX - 2), AE_OK);
    assert_int_equal(ae_train_config_get_int(&iv, c, AE_TRAIN_SEED), AE_OK);
    assert_true(iv == INT64_MAX - 2);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, (int64_t)9007199254740993LL), AE_OK);
    assert_int_equal(ae_train_config_get_int(&iv, c, AE_TRAIN_SEED), AE_OK);
    assert_true(iv == (int64_t)9007199254740993LL);
    /* each key has one type: the other type's functions refuse it */
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_BATCH_SIZE, 3.0), AE_ERR_INVALID_ARG);
    assert_non_null(strstr(ae_last_error(), "AE_TRAIN_BATCH_SIZE"));
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_LEARNING_RATE, 1), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_train_config_get_double(&v, c, AE_TRAIN_EPOCHS), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_train_config_get_int(&iv, c, AE_TRAIN_BETA1), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_train_param_int_bounds(&ilo, &ihi, AE_TRAIN_BETA1), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_train_param_double_bounds(&lo, &hi, AE_TRAIN_EPOCHS), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 0), AE_ERR_RANGE);
    /* keys are named in messages, and the function named is the one called */
    assert_string_equal(ae_last_error(),
                        "ae_train_config_set_int: AE_TRAIN_BATCH_SIZE = 0 is outside [1, 65536]");
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 1.0), AE_ERR_RANGE);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_LEARNING_RATE, NAN), AE_ERR_RANGE);
    assert_int_equal(ae_train_config_set_int(c, (ae_train_param)999, 1), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_OPTIMIZER, 7), AE_ERR_RANGE);
    assert_int_equal(ae_train_param_int_bounds(NULL, NULL, (ae_train_param)0), AE_ERR_INVALID_ARG);
    assert_string_equal(ae_train_param_name(AE_TRAIN_EPOCHS), "AE_TRAIN_EPOCHS");
    assert_null(ae_train_param_name((ae_train_param)0));
    assert_int_equal(ae_train_fit(m, NULL, x, NULL, 4, NULL), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_train_fit(m, c, x, NULL, 0, NULL), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0.5), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, NULL, 1, NULL), AE_ERR_RANGE); /* 0 training rows */
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0.1), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, NULL, 4, NULL), AE_OK); /* floor(3.6) = 3 train, 1 validation */
    assert_int_equal(ae_model_evaluate(&v, m, 5, x, NULL, 4),
                     AE_ERR_INVALID_ARG);
    assert_int_equal(ae_loss_value(&v, AE_LOSS_BCE, x, x, 0),
                     AE_ERR_INVALID_ARG);
    ae_train_config_free(c);
    ae_train_config_free(NULL);
    ae_history_free(NULL);
    ae_model_free(m);
}

static void test_loss_values(void **state)
{
    const float p[4] = {0.9f, 0.2f, 0.0f, 1.0f}, t[4] = {1, 0, 0, 1};
    double v;
    (void)state;
    assert_int_equal(ae_loss_value(&v, AE_LOSS_BCE, p, t, 4), AE_OK);
    /* -(log .9 + log .8 + log(1 - 1e-7) + log(1 - 1e-7)) / 4: the clamp keeps it finite */
    assert_float_equal(v, -(log(0.9) + log(0.8) + 2 * log(1 - 1e-7)) / 4, 1e-6);
    assert_int_equal(ae_loss_value(&v, AE_LOSS_MSE, p, t, 4), AE_OK);
    assert_float_equal(v, (0.01 + 0.04) / 4, 1e-7);
    /* a non-finite prediction is an error for both losses: BCE's clamp must
     * not turn NaN or infinity into a finite loss */
    for (int loss = AE_LOSS_BCE; loss <= AE_LOSS_MSE; loss++) {
        const float bad[3] = {NAN, INFINITY, -INFINITY};
        for (int b = 0; b < 3; b++) {
            float q[4] = {0.9f, 0.2f, 0.0f, 1.0f};
            q[b + 1] = bad[b];
            v = 0;
            if (ae_loss_value(&v, loss, q, t, 4) != AE_ERR_NUMERIC)
                fail_msg("loss %d, prediction %g: loss %g, not AE_ERR_NUMERIC", loss,
                         (double)bad[b], v);
            if (ae_loss_value(&v, loss, p, q, 4) != AE_ERR_NUMERIC) /* as a target */
                fail_msg("loss %d, target %g: loss %g, not AE_ERR_NUMERIC", loss, (double)bad[b], v);
        }
    }
}

/* ae_model_evaluate on finite inputs whose predictions overflow to NaN
 * (enormous finite weights) reports AE_ERR_NUMERIC for both losses. */
static void test_evaluate_overflow(void **state)
{
    const size_t n = 40;
    ae_model *m;
    float *x = ae_test_rows(n, 784, 3), *huge = malloc(784 * 32 * sizeof *huge);
    double v;
    (void)state;
    for (size_t i = 0; i < 784 * 32; i++) huge[i] = 3e38f;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 4), AE_OK);
    assert_int_equal(ae_model_evaluate(&v, m, AE_LOSS_BCE, x, NULL, n), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, huge, 784 * 32), AE_OK);
    for (int loss = AE_LOSS_BCE; loss <= AE_LOSS_MSE; loss++) {
        v = 0;
        if (ae_model_evaluate(&v, m, loss, x, NULL, n) != AE_ERR_NUMERIC)
            fail_msg("loss %d: evaluate gave %g, not AE_ERR_NUMERIC", loss, v);
        assert_non_null(strstr(ae_last_error(), "ae_model_evaluate"));
    }
    ae_model_free(m);
    free(x);
    free(huge);
}

/* The vectorised BCE sum matches a double-precision libm reference over the
 * whole clamped range. */
static void test_bce_matches_reference(void **state)
{
    enum { N = 5000 };
    float p[N], t[N], g[N];
    double want = 0, got;
    (void)state;
    for (int i = 0; i < N; i++) {
        p[i] = (float)i / (N - 1); /* 0 .. 1, both clamped ends included */
        t[i] = (float)((i * 7) % 11) / 10.0f;
        {
            /* the clamp happens in float32, as in Keras: 1 - 1e-7 rounds to 1 - 2^-23 */
            float pc = p[i] < 1e-7f ? 1e-7f : (p[i] > 1.0f - 1e-7f ? 1.0f - 1e-7f : p[i]);
            want -= t[i] * log((double)pc) + (1 - t[i]) * log((double)(1.0f - pc));
        }
    }
    got = ae__loss_sum(AE_LOSS_BCE, p, t, N, g, N);
    assert_float_equal(got, want, 1e-5 * want);
    /* gradient at an interior point: (p - t) / (p (1 - p)) / N */
    assert_float_equal(g[2500], (p[2500] - t[2500]) / (p[2500] * (1 - p[2500])) / N, 1e-9);
    assert_float_equal(g[0], 0.0f, 0); /* clamped: flat */
}

/* The fused sigmoid + BCE of a sigmoid output layer (ae__loss_rows with
 * logits): the outputs are the sigmoid's bits, the gradient (p - t) / norm,
 * each row's loss matches the clamped BCE of the double-precision sigmoid
 * (pre-activations from -30 to 30: both clamped ends included), a row's sum
 * is the same scored alone or with other rows, and a NaN or infinite
 * pre-activation makes its row's loss NaN. */
static void test_bce_logits_rows(void **state)
{
    enum { ROWS = 6, COLS = 300 };
    static float z[ROWS * COLS], p[ROWS * COLS], want_p[ROWS * COLS], t[ROWS * COLS];
    static float g[ROWS * COLS];
    double sums[ROWS], alone;
    (void)state;
    for (int i = 0; i < ROWS * COLS; i++) {
        z[i] = -30.0f + 60.0f * (float)i / (ROWS * COLS - 1);
        t[i] = (float)((i * 7) % 11) / 10.0f;
    }
    memcpy(p, z, sizeof p);
    memcpy(want_p, z, sizeof want_p);
    ae__sigmoid_inplace(want_p, ROWS * COLS);
    ae__loss_rows(AE_LOSS_BCE, p, t, ROWS, COLS, g, ROWS * COLS, 1, sums);
    assert_memory_equal(p, want_p, sizeof p);
    for (int i = 0; i < ROWS * COLS; i++)
        assert_true(g[i] == (want_p[i] - t[i]) * (1.0f / (float)(ROWS * COLS)));
    for (int r = 0; r < ROWS; r++) {
        double want = 0;
        for (int c = 0; c < COLS; c++) {
            const int i = r * COLS + c;
            /* Keras' clamp in float32: 1 - 1e-7 rounds to 1 - 2^-23 */
            double q = 1.0 / (1.0 + exp(-(double)z[i]));
            q = q < 1e-7f ? 1e-7f : (q > 1.0f - 1e-7f ? 1.0f - 1e-7f : q);
            want -= t[i] * log(q) + (1 - t[i]) * log(1 - q);
        }
        assert_float_equal(sums[r], want, 2e-6 * want);
    }
    memcpy(p, z + 3 * COLS, COLS * sizeof *p);
    ae__loss_rows(AE_LOSS_BCE, p, t + 3 * COLS, 1, COLS, NULL, 1, 1, &alone);
    assert_true(alone == sums[3]);
    memcpy(p, z, sizeof p);
    p[COLS + 5] = NAN;
    p[4 * COLS] = -INFINITY;
    ae__loss_rows(AE_LOSS_BCE, p, t, ROWS, COLS, NULL, 1, 1, sums);
    assert_true(isnan(sums[1]) && isnan(sums[4]));
    assert_true(isfinite(sums[0]) && isfinite(sums[2]) && isfinite(sums[5]));
}

/* A few hundred generated 28x28 "drawings" (rings of random centre and
 * radius): a short run of the simple autoencoder lowers the loss a lot. */
static void test_real_training_learns(void **state)
{
    const size_t n = 400;
    float *x = malloc(n * 784 * sizeof *x);
    unsigned char img[784];
    ae_test_rng r;
    ae_model *m;
    ae_train_config *c = config(8, 32, 0.2);
    ae_history *h;
    double first, last, before;
    (void)state;
    ae_test_rng_seed(&r, 9);
    for (size_t i = 0; i < n; i++) {
        ae_test_draw(img, AE_TEST_RING, &r);
        for (size_t j = 0; j < 784; j++) x[i * 784 + j] = img[j] / 255.0f;
    }
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 1), AE_OK);
    assert_int_equal(ae_model_evaluate(&before, m, AE_LOSS_BCE, x, NULL, n),
                     AE_OK);
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, NULL, n, h), AE_OK);
    assert_int_equal(ae_history_get(&first, h, 0, AE_HIST_TRAIN_LOSS), AE_OK);
    assert_int_equal(ae_history_get(&last, h, 7, AE_HIST_VAL_LOSS), AE_OK);
    print_message("BCE before %.4f, first epoch %.4f, last val %.4f\n", before, first, last);
    assert_true(before > 0.6);
    assert_true(last < 0.5 * before);
    assert_true(last < first);
    ae_history_free(h);
    ae_train_config_free(c);
    ae_model_free(m);
    free(x);
}

/* ---- regularisation ----------------------------------------------------------------- */

static ae_model *sparse_model(uint64_t seed, double l1, double l2)
{
    ae_builder *b;
    ae_model *m;
    size_t in[1] = {16};
    assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_activity_regularization(b, l1, l2), AE_OK);
    assert_int_equal(ae_builder_dense(b, 16, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, seed), AE_OK);
    ae_builder_free(b);
    return m;
}

/* An activity regulariser adds its mean penalty per row to ae_model_evaluate
 * and to the fit's training and validation losses (on two threads), Keras'
 * loss and val_loss: checked against the same weights without the layer
 * plus the penalty of the codes, worked out here. */
static void test_activity_penalty_in_losses(void **state)
{
    enum { N = 40, NV = 8 };
    const double l1 = 0.01, l2 = 0.005;
    float *x = malloc(N * 16 * sizeof *x), codes[N * 4];
    ae_model *sparse = sparse_model(8, l1, l2), *plain = small_model(8);
    ae_encoder *enc;
    ae_train_config *c = config(1, 8, (double)NV / N);
    ae_history *h;
    double with, without, pen = 0, tr_pen = 0, val_pen = 0, tr_plain, val_plain, loss;
    ae_test_rng r;
    (void)state;
    ae_test_rng_seed(&r, 4);
    ae_test_fill(&r, x, N * 16, 0.0, 1.0);
    /* the layer has no weights: the same seed gives the same weights */
    assert_int_equal(ae_model_param_count(sparse), ae_model_param_count(plain));
    assert_memory_equal(sparse->params, plain->params, plain->n_params * sizeof(float));
    assert_int_equal(ae_encoder_create(&enc, plain), AE_OK);
    assert_int_equal(ae_encoder_encode(enc, x, N, codes, N * 4), AE_OK);
    for (size_t i = 0; i < N; i++) {
        double row = 0;
        for (size_t k = 0; k < 4; k++) row += l1 * fabs(codes[i * 4 + k]) + l2 * codes[i * 4 + k] * codes[i * 4 + k];
        pen += row;
        if (i < N - NV) tr_pen += row;
        else val_pen += row;
    }
    assert_true(pen > 0);
    assert_int_equal(ae_model_evaluate(&with, sparse, AE_LOSS_BCE, x, NULL, N), AE_OK);
    assert_int_equal(ae_model_evaluate(&without, plain, AE_LOSS_BCE, x, NULL, N), AE_OK);
    assert_float_equal(with, without + pen / N, 1e-6);
    /* a step too small to move the weights: the epoch's losses are those of the start */
    assert_int_equal(ae_model_evaluate(&tr_plain, plain, AE_LOSS_BCE, x, NULL, N - NV), AE_OK);
    assert_int_equal(ae_model_evaluate(&val_plain, plain, AE_LOSS_BCE, x + (N - NV) * 16, NULL, NV),
                     AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_OPTIMIZER, AE_OPT_SGD), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_LEARNING_RATE, 1e-12), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_fit(sparse, c, x, NULL, N, h), AE_OK);
    assert_int_equal(ae_history_get(&loss, h, 0, AE_HIST_TRAIN_LOSS), AE_OK);
    assert_float_equal(loss, tr_plain + tr_pen / (N - NV), 1e-6);
    assert_int_equal(ae_history_get(&loss, h, 0, AE_HIST_VAL_LOSS), AE_OK);
    assert_float_equal(loss, val_plain + val_pen / NV, 1e-6);
    { /* a validation source is scored the same way */
        ae_source *tr, *va;
        assert_int_equal(ae_source_from_floats(&tr, x, NULL, N - NV, 16, 0), AE_OK);
        assert_int_equal(ae_source_from_floats(&va, x + (N - NV) * 16, NULL, NV, 16, 0), AE_OK);
        assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0), AE_OK);
        assert_int_equal(ae_train_fit_source(sparse, c, NULL, tr, va, h), AE_OK);
        assert_int_equal(ae_history_get(&loss, h, 0, AE_HIST_VAL_LOSS), AE_OK);
        assert_float_equal(loss, val_plain + val_pen / NV, 1e-6);
        ae_source_free(tr);
        ae_source_free(va);
    }
    ae_history_free(h);
    ae_encoder_free(enc);
    ae_train_config_free(c);
    ae_model_free(sparse);
    ae_model_free(plain);
    free(x);
}

/* One step of a 2 -> 2 linear autoencoder on 3 rows (MSE), worked here:
 * the gradient of the mean loss, then AdamW (decay, then Keras' Adam update
 * of the decayed weights; biases not decayed) or SGD with the coupled L2
 * gradient 2 lambda w on the kernel, whose loss also gains lambda sum w^2. */
static void test_weight_decay_and_l2_by_hand(void **state)
{
    static const float x[6] = {0.2f, 0.9f, -0.4f, 0.5f, 1.0f, -0.3f};
    const double lr_adam = 0.01, wd = 0.5, lr_sgd = 0.1, lambda = 0.3;
    size_t in[1] = {2};
    (void)state;
    for (int adamw = 1; adamw >= 0; adamw--) {
        ae_builder *b;
        ae_model *m;
        ae_train_config *c = config(1, 3, 0);
        ae_history *h;
        double w[4], bias[2], g[6] = {0}, data = 0, sq = 0, loss;
        assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
        assert_int_equal(ae_builder_dense(b, 2, AE_ACT_LINEAR), AE_OK);
        assert_int_equal(ae_builder_build(&m, b, 5), AE_OK);
        m->layers[0].bias[0] = 0.1f; /* non-zero: an undecayed bias shows */
        m->layers[0].bias[1] = -0.2f;
        for (int i = 0; i < 4; i++) w[i] = m->layers[0].kernel[i], sq += w[i] * w[i];
        for (int i = 0; i < 2; i++) bias[i] = m->layers[0].bias[i];
        for (int row = 0; row < 3; row++)
            for (int u = 0; u < 2; u++) {
                const double pred = x[2 * row] * w[u] + x[2 * row + 1] * w[2 + u] + bias[u];
                const double d = 2.0 * (pred - x[2 * row + u]) / 6.0;
                data += (pred - x[2 * row + u]) * (pred - x[2 * row + u]) / 6.0;
                g[u] += x[2 * row] * d; /* W (in, units) row-major */
                g[2 + u] += x[2 * row + 1] * d;
                g[4 + u] += d;
            }
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_LOSS, AE_LOSS_MSE), AE_OK);
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE, 0), AE_OK);
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 1), AE_OK);
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_OPTIMIZER, adamw ? AE_OPT_ADAM : AE_OPT_SGD),
                         AE_OK);
        assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_LEARNING_RATE, adamw ? lr_adam : lr_sgd),
                         AE_OK);
        assert_int_equal(ae_train_config_set_double(c, adamw ? AE_TRAIN_WEIGHT_DECAY : AE_TRAIN_L2,
                                                    adamw ? wd : lambda), AE_OK);
        assert_int_equal(ae_history_create(&h), AE_OK);
        assert_int_equal(ae_train_fit(m, c, x, NULL, 3, h), AE_OK);
        assert_int_equal(ae_history_get(&loss, h, 0, AE_HIST_TRAIN_LOSS), AE_OK);
        assert_float_equal(loss, adamw ? data : data + lambda * sq, 1e-6);
        for (int i = 0; i < 6; i++) {
            const int kernel = i < 4;
            const double p0 = kernel ? w[i] : bias[i - 4];
            double want;
            if (adamw) { /* m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1 */
                const double mo = 0.1 * g[i], v = 0.001 * g[i] * g[i];
                const double alpha = lr_adam * sqrt(0.001) / 0.1;
                want = p0 * (kernel ? 1.0 - lr_adam * wd : 1.0) - alpha * mo / (sqrt(v) + 1e-7);
            } else {
                want = p0 - lr_sgd * (g[i] + (kernel ? 2.0 * lambda * p0 : 0.0));
            }
            const float got = i < 4 ? m->layers[0].kernel[i] : m->layers[0].bias[i - 4];
            if (fabs(got - want) > 1e-6)
                fail_msg("%s parameter %d: %.8f, want %.8f", adamw ? "AdamW" : "SGD + L2", i,
                         (double)got, want);
        }
        ae_history_free(h);
        ae_train_config_free(c);
        ae_model_free(m);
        ae_builder_free(b);
    }
}

static double kernel_norm2(const ae_model *m)
{
    double s = 0;
    for (size_t l = 0; l < m->n_layers; l++)
        for (size_t i = 0; i < m->layers[l].n_kernel; i++)
            s += (double)m->layers[l].kernel[i] * m->layers[l].kernel[i];
    return s;
}

/* Weight decay and L2 at 0 (their defaults) train exactly as without them;
 * either, when on, ends with smaller kernels than the same fit without. */
static void test_weight_decay_shrinks(void **state)
{
    enum { N = 64 };
    float *x = malloc(N * 16 * sizeof *x);
    ae_test_rng r;
    double norm[3];
    ae_model *ref = small_model(8);
    ae_train_config *c = config(5, 8, 0);
    (void)state;
    ae_test_rng_seed(&r, 6);
    ae_test_fill(&r, x, N * 16, 0.0, 1.0);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_LEARNING_RATE, 1e-2), AE_OK);
    assert_int_equal(ae_train_fit(ref, c, x, NULL, N, NULL), AE_OK);
    norm[0] = kernel_norm2(ref);
    for (int k = 0; k < 2; k++) {
        ae_model *m = small_model(8);
        const ae_train_param key = k ? AE_TRAIN_L2 : AE_TRAIN_WEIGHT_DECAY;
        assert_int_equal(ae_train_config_set_double(c, key, 0.0), AE_OK);
        assert_int_equal(ae_train_fit(m, c, x, NULL, N, NULL), AE_OK);
        assert_memory_equal(m->params, ref->params, m->n_params * sizeof(float));
        ae_model_free(m);
        m = small_model(8);
        assert_int_equal(ae_train_config_set_double(c, key, k ? 0.05 : 1.0), AE_OK);
        assert_int_equal(ae_train_fit(m, c, x, NULL, N, NULL), AE_OK);
        norm[1 + k] = kernel_norm2(m);
        assert_int_equal(ae_train_config_set_double(c, key, 0.0), AE_OK);
        ae_model_free(m);
    }
    print_message("kernel sum w^2: %.4f plain, %.4f weight decay 1.0, %.4f L2 0.05\n", norm[0],
                  norm[1], norm[2]);
    assert_true(norm[1] < 0.9 * norm[0]);
    assert_true(norm[2] < 0.9 * norm[0]);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_WEIGHT_DECAY, -1), AE_ERR_RANGE);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_L2, 101), AE_ERR_RANGE);
    assert_string_equal(ae_train_param_name(AE_TRAIN_WEIGHT_DECAY), "AE_TRAIN_WEIGHT_DECAY");
    ae_train_config_free(c);
    ae_model_free(ref);
    free(x);
}

/* The block shuffle's keys: defaults, bounds and names. Without
 * AE_TRAIN_SHUFFLE a block size changes nothing; with it, every epoch of
 * ae_train_fit starts from the rows' own order as a training state's epochs
 * do, so the two calls train alike (the row shuffle of ae_train_fit goes on
 * from the last epoch's order instead). */
static void test_block_shuffle_keys(void **state)
{
    enum { N = 100 };
    float *x = ae_test_rows(N, 16, 12);
    ae_train_config *c = config(3, 8, 0.2);
    ae_model *a = small_model(8), *b = small_model(8);
    ae_train_state *ts;
    int64_t v, lo, hi;
    (void)state;
    assert_int_equal(ae_train_config_get_int(&v, c, AE_TRAIN_SHUFFLE_BLOCK), AE_OK);
    assert_int_equal(v, 0);
    assert_int_equal(ae_train_config_get_int(&v, c, AE_TRAIN_SHUFFLE_WINDOW), AE_OK);
    assert_int_equal(v, 8);
    assert_int_equal(ae_train_param_int_bounds(&lo, &hi, AE_TRAIN_SHUFFLE_BLOCK), AE_OK);
    assert_true(lo == 0 && hi == (int64_t)1 << 30);
    assert_int_equal(ae_train_param_int_bounds(&lo, &hi, AE_TRAIN_SHUFFLE_WINDOW), AE_OK);
    assert_true(lo == 1 && hi == 65536);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_BLOCK, -1), AE_ERR_RANGE);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_WINDOW, 0), AE_ERR_RANGE);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_SHUFFLE_BLOCK, 4.0), AE_ERR_INVALID_ARG);
    assert_string_equal(ae_train_param_name(AE_TRAIN_SHUFFLE_BLOCK), "AE_TRAIN_SHUFFLE_BLOCK");
    assert_string_equal(ae_train_param_name(AE_TRAIN_SHUFFLE_WINDOW), "AE_TRAIN_SHUFFLE_WINDOW");
    assert_null(ae_train_param_name((ae_train_param)23));
    /* no shuffling: the block size is unused */
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE, 0), AE_OK);
    assert_int_equal(ae_train_fit(a, c, x, NULL, N, NULL), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_BLOCK, 5), AE_OK);
    assert_int_equal(ae_train_fit(b, c, x, NULL, N, NULL), AE_OK);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    ae_model_free(a);
    ae_model_free(b);
    /* shuffled by blocks: ae_train_fit equals a training state's run */
    a = small_model(8);
    b = small_model(8);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE, 1), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_WINDOW, 3), AE_OK);
    assert_int_equal(ae_train_fit(a, c, x, NULL, N, NULL), AE_OK);
    assert_int_equal(ae_train_state_create(&ts), AE_OK);
    assert_int_equal(ae_train_fit_state(b, c, ts, x, NULL, N, NULL), AE_OK);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    ae_train_state_free(ts);
    ae_model_free(a);
    ae_model_free(b);
    ae_train_config_free(c);
    free(x);
}

/* ---- variational autoencoders ------------------------------------------------------ */

/* 16 -> dense 6 relu -> dense 4 (2 means, 2 log-variances) -> sampling
 * [code] -> dense 16 sigmoid. lv_bias: the log-variance biases, with their
 * kernel columns zeroed when set (-30: exp(lv / 2) eps ~ 3e-7 eps, so a
 * training pass predicts what inference does and only the KL term tells the
 * losses apart). */
static ae_model *small_vae(uint64_t seed, double kl_weight, int pin_log_var)
{
    ae_builder *b;
    ae_model *m;
    size_t in[1] = {16};
    assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(b, 6, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_sampling(b, kl_weight), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 16, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, seed), AE_OK);
    ae_builder_free(b);
    if (pin_log_var) {
        ae_layer *L = &m->layers[1];
        for (size_t i = 0; i < 6; i++) L->kernel[i * 4 + 2] = L->kernel[i * 4 + 3] = 0.0f;
        L->bias[2] = L->bias[3] = -30.0f;
    }
    return m;
}

/* The mean KL per row by hand: the dense layer's (mean, log_var) rows. */
static double mean_kl(const ae_model *m, const float *x, size_t n)
{
    float h[6], ml[4], ws[1];
    double kl = 0;
    for (size_t r = 0; r < n; r++) {
        ae__layer_forward(&m->layers[0], x + r * 16, h, 1, ws);
        ae__layer_forward(&m->layers[1], h, ml, 1, ws);
        for (int e = 0; e < 2; e++)
            kl += -0.5 * (1.0 + ml[2 + e] - (double)ml[e] * ml[e] - exp((double)ml[2 + e]));
    }
    return kl / (double)n;
}

typedef struct first_loss {
    double loss;
    int seen;
} first_loss;

static int record_first(ae_train_event event, size_t epoch, size_t step, size_t steps,
                        double loss, const ae_model *model, const ae_history *h, void *user)
{
    first_loss *f = user;
    (void)epoch; (void)step; (void)steps; (void)model; (void)h;
    if (event == AE_EVENT_BATCH_END && !f->seen++) f->loss = loss;
    return 0;
}

/* The KL term is in every loss: evaluate = BCE of the reconstruction from
 * the means + kl_weight * mean KL per row; the first batch's training loss
 * equals evaluate before the step (log-variances pinned, so the draws do not
 * move the predictions); the recorded validation loss equals evaluate on
 * the validation rows; the encoder returns the means and decoding them
 * reproduces predict bit for bit. */
static void test_vae_losses(void **state)
{
    const size_t n = 40, n_train = 32;
    const double w = 0.05;
    float *x = ae_test_rows(n, 16, 3), y[40 * 16], codes[40 * 2], dec[40 * 16];
    ae_model *m = small_vae(4, w, 1);
    ae_train_config *c = config(1, 32, 0.2);
    ae_history *h;
    ae_encoder *e;
    first_loss f = {0, 0};
    double bce, value, kl, recorded;
    (void)state;
    assert_int_equal(ae_model_predict(m, x, n_train, y, sizeof y / sizeof *y), AE_OK);
    assert_int_equal(ae_loss_value(&bce, AE_LOSS_BCE, y, x, n_train * 16), AE_OK);
    kl = mean_kl(m, x, n_train);
    assert_true(kl > 20.0); /* 0.5 (29 + mean^2) per pinned pair */
    assert_int_equal(ae_model_evaluate(&value, m, AE_LOSS_BCE, x, NULL, n_train), AE_OK);
    assert_float_equal(value, bce + w * kl, 1e-6 * value);
    assert_int_equal(ae_train_config_set_callback(c, record_first, &f), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE, 0), AE_OK);
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_fit(m, c, x, NULL, n, h), AE_OK);
    assert_int_equal(f.seen, 1);
    assert_float_equal(f.loss, value, 1e-5 * value);
    assert_int_equal(ae_history_get(&recorded, h, 0, AE_HIST_VAL_LOSS), AE_OK);
    assert_int_equal(ae_model_evaluate(&value, m, AE_LOSS_BCE, x + n_train * 16, NULL, n - n_train),
                     AE_OK);
    assert_float_equal(recorded, value, 1e-6 * value);
    assert_true(value > w * mean_kl(m, x + n_train * 16, n - n_train));
    /* the encoder's codes are the means */
    assert_int_equal(ae_encoder_create(&e, m), AE_OK);
    assert_int_equal(ae_encoder_code_size(e), 2);
    assert_int_equal(ae_encoder_encode(e, x, n, codes, n * 2), AE_OK);
    for (size_t r = 0; r < n; r++) {
        float hid[6], ml[4], ws[1];
        ae__layer_forward(&m->layers[0], x + r * 16, hid, 1, ws);
        ae__layer_forward(&m->layers[1], hid, ml, 1, ws);
        assert_memory_equal(codes + 2 * r, ml, 2 * sizeof(float));
    }
    assert_int_equal(ae_model_decode(m, codes, n, dec, n * 16), AE_OK);
    assert_int_equal(ae_model_predict(m, x, n, y, n * 16), AE_OK);
    assert_memory_equal(dec, y, n * 16 * sizeof(float));
    ae_encoder_free(e);
    ae_history_free(h);
    ae_train_config_free(c);
    ae_model_free(m);
    free(x);
}

/* Training samples: with free log-variances the fit's draws follow its
 * seed (same seed, same weights; another seed, others). The KL gradient is
 * per row of the whole batch: one step on 2 threads lands within float
 * rounding of one on 1 thread (a thread dividing by its own share would
 * double it). A VAE learns: the loss falls and the KL term stays finite. */
static void test_vae_fit(void **state)
{
    const size_t n = 64;
    float *x = ae_test_rows(n, 16, 5);
    ae_model *m[4];
    ae_history *h;
    double first, last;
    (void)state;
    for (int k = 0; k < 4; k++) {
        ae_train_config *c = config(1, 64, 0);
        m[k] = small_vae(8, 0.5, 0);
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, k == 1 ? 12 : 11), AE_OK);
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, k == 3 ? 2 : 1), AE_OK);
        /* SGD: Adam's first step, lr * sign(g), would hide a scaled term */
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_OPTIMIZER, AE_OPT_SGD), AE_OK);
        assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_LEARNING_RATE, 0.5), AE_OK);
        assert_int_equal(ae_train_fit(m[k], c, x, NULL, n, NULL), AE_OK);
        ae_train_config_free(c);
    }
    assert_memory_equal(m[0]->params, m[2]->params, m[0]->n_params * sizeof(float));
    assert_true(memcmp(m[0]->params, m[1]->params, m[0]->n_params * sizeof(float)) != 0);
    for (size_t i = 0; i < m[0]->n_params; i++)
        assert_float_equal(m[0]->params[i], m[3]->params[i], 1e-5);
    for (int k = 0; k < 4; k++) ae_model_free(m[k]);
    {
        ae_model *v = small_vae(9, 0.05, 0);
        ae_train_config *c = config(30, 16, 0);
        assert_int_equal(ae_history_create(&h), AE_OK);
        assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_LEARNING_RATE, 0.01), AE_OK);
        assert_int_equal(ae_train_fit(v, c, x, NULL, n, h), AE_OK);
        assert_int_equal(ae_history_get(&first, h, 0, AE_HIST_TRAIN_LOSS), AE_OK);
        assert_int_equal(ae_history_get(&last, h, 29, AE_HIST_TRAIN_LOSS), AE_OK);
        assert_true(last < first);
        assert_true(isfinite(mean_kl(v, x, n)));
        ae_train_config_free(c);
        ae_history_free(h);
        ae_model_free(v);
    }
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nadam_matches_torch),
        cmocka_unit_test(test_adam_matches_torch),
        cmocka_unit_test(test_sgd_momentum_matches_torch),
        cmocka_unit_test(test_validation_split_rows),
        cmocka_unit_test(test_shuffle_determinism),
        cmocka_unit_test(test_early_stopping_restores_best),
        cmocka_unit_test(test_early_stopping_restores_batchnorm_statistics),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_nan_and_divergence),
        cmocka_unit_test(test_threaded_fit),
        cmocka_unit_test(test_config_bounds_and_errors),
        cmocka_unit_test(test_loss_values),
        cmocka_unit_test(test_evaluate_overflow),
        cmocka_unit_test(test_bce_matches_reference),
        cmocka_unit_test(test_bce_logits_rows),
        cmocka_unit_test(test_real_training_learns),
        cmocka_unit_test(test_activity_penalty_in_losses),
        cmocka_unit_test(test_weight_decay_and_l2_by_hand),
        cmocka_unit_test(test_weight_decay_shrinks),
        cmocka_unit_test(test_block_shuffle_keys),
        cmocka_unit_test(test_vae_losses),
        cmocka_unit_test(test_vae_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
