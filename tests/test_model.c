/* Models: the reference architectures' shapes and parameter counts, the
 * summary, whole-model gradient checks, and every error path of the builder
 * and model calls. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn.h"
#include "test_support.h"


static void expect_shape(const ae_layer *L, int rank, size_t a, size_t b, size_t c)
{
    assert_int_equal(ae_layer_output_rank(L), rank);
    assert_int_equal(ae_layer_output_dim(L, 0), a);
    if (rank == 3) {
        assert_int_equal(ae_layer_output_dim(L, 1), b);
        assert_int_equal(ae_layer_output_dim(L, 2), c);
    }
}

static void test_simple_model(void **state)
{
    ae_model *m;
    size_t code;
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 1), AE_OK);
    assert_int_equal(ae_model_param_count(m), 50992);
    assert_int_equal(ae_model_layer_count(m), 2);
    expect_shape(ae_model_layer(m, 0), 1, 32, 0, 0);
    expect_shape(ae_model_layer(m, 1), 1, 784, 0, 0);
    assert_int_equal(ae_layer_param_count(ae_model_layer(m, 0)), 25120);
    assert_int_equal(ae_layer_param_count(ae_model_layer(m, 1)), 25872);
    assert_int_equal(ae_model_code_layer(&code, m), AE_OK);
    assert_int_equal(code, 0);
    assert_string_equal(ae_layer_name(ae_model_layer(m, 1)), "dense_1");
    ae_model_free(m);
}

static void test_deep_model(void **state)
{
    static const size_t widths[6] = {128, 64, 32, 64, 128, 784};
    ae_model *m;
    size_t code;
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_DEEP, 1), AE_OK);
    assert_int_equal(ae_model_param_count(m), 222384);
    assert_int_equal(ae_model_layer_count(m), 6);
    for (size_t i = 0; i < 6; i++) expect_shape(ae_model_layer(m, i), 1, widths[i], 0, 0);
    assert_int_equal(ae_model_code_layer(&code, m), AE_OK);
    assert_int_equal(code, 2);
    assert_int_equal(ae_layer_activation(ae_model_layer(m, 5)), AE_ACT_SIGMOID);
    ae_model_free(m);
}

static void test_conv_model(void **state)
{
    /* Keras' summary of the tutorial's convolutional autoencoder */
    static const size_t shapes[13][3] = {
        {28, 28, 16}, {14, 14, 16}, {14, 14, 8}, {7, 7, 8}, {7, 7, 8}, {4, 4, 8}, {4, 4, 8},
        {8, 8, 8},    {8, 8, 8},    {16, 16, 8}, {14, 14, 16}, {28, 28, 16}, {28, 28, 1}};
    static const size_t params[13] = {160, 0, 1160, 0, 584, 0, 584, 0, 584, 0, 1168, 0, 145};
    ae_model *m;
    size_t code;
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_CONV, 1), AE_OK);
    assert_int_equal(ae_model_param_count(m), 4385);
    assert_int_equal(ae_model_layer_count(m), 13);
    for (size_t i = 0; i < 13; i++) {
        expect_shape(ae_model_layer(m, i), 3, shapes[i][0], shapes[i][1], shapes[i][2]);
        assert_int_equal(ae_layer_param_count(ae_model_layer(m, i)), params[i]);
    }
    assert_int_equal(ae_model_code_layer(&code, m), AE_OK);
    assert_int_equal(code, 5);
    assert_int_equal(ae_layer_output_size(ae_model_layer(m, code)), 128);
    assert_int_equal(ae_model_input_size(m), 784);
    assert_int_equal(ae_model_output_size(m), 784);
    ae_model_free(m);
}

/* predict works for any batch size and its outputs are in (0, 1). */
static void test_predict_any_batch(void **state)
{
    const ae_preset presets[3] = {AE_PRESET_SIMPLE, AE_PRESET_DEEP, AE_PRESET_CONV};
    (void)state;
    for (int p = 0; p < 3; p++) {
        ae_model *m;
        const size_t n = 300;
        float *x = malloc(n * 784 * sizeof *x), *y = malloc(n * 784 * sizeof *y);
        ae_test_rng r;
        ae_test_rng_seed(&r, 3);
        ae_test_fill(&r, x, n * 784, 0.0, 1.0);
        assert_int_equal(ae_preset_build(&m, presets[p], 9), AE_OK);
        assert_int_equal(ae_model_predict(m, x, n, y, n * 784), AE_OK);
        for (size_t i = 0; i < n * 784; i++) assert_true(y[i] > 0.0f && y[i] < 1.0f);
        assert_int_equal(ae_model_set_threads(m, 3), AE_OK);
        assert_int_equal(ae_model_get_threads(m), 3);
        assert_int_equal(ae_model_set_threads(m, 65), AE_ERR_RANGE);
        ae_model_free(m);
        free(x);
        free(y);
    }
}

/* Runs n rows through predict (enc NULL) or encode, `batch` rows per call. */
static void run_in_batches(const ae_model *m, const ae_encoder *enc, const float *x, size_t n,
                           size_t batch, float *out)
{
    const size_t in = ae_model_input_size(m);
    const size_t width = enc ? ae_encoder_code_size(enc) : ae_model_output_size(m);
    for (size_t done = 0; done < n; done += batch) {
        const size_t rows = n - done < batch ? n - done : batch;
        if (enc)
            assert_int_equal(ae_encoder_encode(enc, x + done * in, rows, out + done * width,
                                               rows * width), AE_OK);
        else
            assert_int_equal(ae_model_predict(m, x + done * in, rows, out + done * width,
                                              rows * width), AE_OK);
    }
}

/* Outputs and codes are bit-identical whatever the thread count and however
 * the rows are batched: each row goes through the same operations in the same
 * order wherever a thread's share or a call's batch starts and ends. 200 rows
 * make 3 threads take 67, 67 and 66 rows. */
static void test_predict_bit_identical(void **state)
{
    /* conv_bn8: strided and transposed convolutions, batch norm in inference */
    const ae_preset presets[4] = {AE_PRESET_SIMPLE, AE_PRESET_DEEP, AE_PRESET_CONV,
                                  AE_PRESET_CONV_BN8};
    static const size_t batches[3] = {1, 7, 64};
    const int n_presets = getenv("AE_TEST_SMALL") ? 3 : 4; /* conv_bn8 is slow there */
    (void)state;
    for (int p = 0; p < n_presets; p++) {
        const size_t n = 200;
        ae_model *m;
        ae_encoder *e;
        size_t out, code;
        float *x = malloc(n * 784 * sizeof *x);
        ae__rng r;
        ae__rng_seed(&r, 17);
        for (size_t i = 0; i < n * 784; i++) x[i] = (float)ae__rng_uniform(&r);
        assert_int_equal(ae_preset_build(&m, presets[p], 21), AE_OK);
        assert_int_equal(ae_model_set_threads(m, 1), AE_OK);
        assert_int_equal(ae_encoder_create(&e, m), AE_OK);
        out = ae_model_output_size(m);
        code = ae_encoder_code_size(e);
        for (int what = 0; what < 2; what++) { /* predict, then encode */
            const ae_encoder *enc = what ? e : NULL;
            const size_t width = what ? code : out;
            float *ref = malloc(n * width * sizeof *ref), *got = malloc(n * width * sizeof *got);
            run_in_batches(m, enc, x, n, n, ref);
            for (int t = 2; t <= 3; t++) {
                assert_int_equal(ae_model_set_threads(m, t), AE_OK);
                assert_int_equal(ae_encoder_set_threads(e, t), AE_OK);
                memset(got, 0, n * width * sizeof *got);
                run_in_batches(m, enc, x, n, n, got);
                if (memcmp(ref, got, n * width * sizeof *got) != 0)
                    fail_msg("model %d, %s with %d threads differs from 1 thread", p,
                             what ? "encode" : "predict", t);
            }
            assert_int_equal(ae_model_set_threads(m, 1), AE_OK);
            assert_int_equal(ae_encoder_set_threads(e, 1), AE_OK);
            for (int b = 0; b < 3; b++) {
                memset(got, 0, n * width * sizeof *got);
                run_in_batches(m, enc, x, n, batches[b], got);
                if (memcmp(ref, got, n * width * sizeof *got) != 0)
                    fail_msg("model %d, %s in batches of %zu differs from one call", p,
                             what ? "encode" : "predict", batches[b]);
            }
            free(ref);
            free(got);
        }
        ae_encoder_free(e);
        ae_model_free(m);
        free(x);
    }
}

static void test_same_seed_same_weights(void **state)
{
    ae_model *a, *b, *c;
    (void)state;
    assert_int_equal(ae_preset_build(&a, AE_PRESET_DEEP, 5), AE_OK);
    assert_int_equal(ae_preset_build(&b, AE_PRESET_DEEP, 5), AE_OK);
    assert_int_equal(ae_preset_build(&c, AE_PRESET_DEEP, 6), AE_OK);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_memory_not_equal(a->params, c->params, a->n_params * sizeof(float));
    /* Glorot-uniform bound of the first kernel: sqrt(6 / (784 + 128)), biases zero */
    for (size_t i = 0; i < 784 * 128; i++) assert_true(fabsf(a->params[i]) <= sqrtf(6.0f / 912.0f));
    for (size_t i = 784 * 128; i < 784 * 128 + 128; i++) assert_true(a->params[i] == 0.0f);
    ae_model_free(a);
    ae_model_free(b);
    ae_model_free(c);
}

static void test_summary(void **state)
{
    ae_model *m;
    char buf[4096], tiny[16];
    size_t need;
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_CONV, 1), AE_OK);
    assert_int_equal(ae_model_summary(m, buf, sizeof buf, &need), AE_OK);
    assert_true(strstr(buf, "Total params: 4,385") != NULL);
    assert_true(strstr(buf, "max_pooling2d_2 (MaxPooling2D)  (None, 4, 4, 8)") != NULL);
    assert_true(strstr(buf, "<- code") != NULL);
    assert_int_equal(need, strlen(buf) + 1);
    assert_int_equal(ae_model_summary(m, tiny, sizeof tiny, &need), AE_ERR_RANGE);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    ae_model_free(m);
}

/* ae_model_decode runs the layers after the code: decoding the encoder's
 * codes reproduces predict bit for bit, on any thread count and in any
 * grouping; a VAE's summary names its sampling layer; the errors. */
static void test_decode(void **state)
{
    const size_t n = 200; /* 3 threads of at least 64 rows */
    float *x = ae_test_rows(n, 784, 4), *y = malloc(n * 784 * 4), *d = malloc(n * 784 * 4);
    float codes[200 * 32];
    ae_model *m, *last, *none;
    ae_encoder *e;
    ae_builder *b;
    char buf[4096];
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_DEEP, 3), AE_OK);
    assert_int_equal(ae_encoder_create(&e, m), AE_OK);
    assert_int_equal(ae_encoder_encode(e, x, n, codes, n * 32), AE_OK);
    assert_int_equal(ae_model_predict(m, x, n, y, n * 784), AE_OK);
    assert_int_equal(ae_model_set_threads(m, 3), AE_OK);
    assert_int_equal(ae_model_decode(m, codes, n, d, n * 784), AE_OK);
    assert_memory_equal(d, y, n * 784 * 4);
    assert_int_equal(ae_model_set_threads(m, 1), AE_OK);
    assert_int_equal(ae_model_decode(m, codes + 7 * 32, 1, d, 784), AE_OK);
    assert_memory_equal(d, y + 7 * 784, 784 * 4);
    /* errors */
    assert_int_equal(ae_model_decode(NULL, codes, 1, d, 784), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_model_decode(m, NULL, 1, d, 784), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_model_decode(m, codes, 1, NULL, 784), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_model_decode(m, codes, 0, d, 784), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_model_decode(m, codes, 2, d, 2 * 784 - 1), AE_ERR_SHAPE);
    assert_non_null(strstr(ae_last_error(), "ae_model_decode"));
    assert_int_equal(ae_model_decode(m, codes, SIZE_MAX / 2, d, 784), AE_ERR_RANGE);
    codes[33] = NAN;
    assert_int_equal(ae_model_decode(m, codes, 2, d, 2 * 784), AE_ERR_NUMERIC);
    codes[33] = INFINITY;
    assert_int_equal(ae_model_decode(m, codes, 2, d, 2 * 784), AE_ERR_NUMERIC);
    assert_int_equal(ae_model_decode(m, codes, 1, d, 784), AE_OK); /* row 0 is fine */
    assert_int_equal(ae_builder_create(&b, 1, (size_t[]){8}), AE_OK);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_build(&none, b, 1), AE_OK);
    assert_int_equal(ae_builder_sampling(b, 1.0 / 8), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_build(&last, b, 1), AE_OK);
    assert_int_equal(ae_model_decode(none, codes, 1, d, 784), AE_ERR_STATE);
    assert_int_equal(ae_model_decode(last, codes, 1, d, 784), AE_ERR_STATE);
    assert_int_equal(ae_model_summary(last, buf, sizeof buf, NULL), AE_OK);
    assert_non_null(strstr(buf, "sampling (Sampling)"));
    assert_non_null(strstr(buf, "(None, 2)"));
    ae_builder_free(b);
    ae_model_free(none);
    ae_model_free(last);
    ae_encoder_free(e);
    ae_model_free(m);
    free(x); free(y); free(d);
}

/* dL/dy of the mean loss over count outputs p, as training hands it to the
 * last layer: for BCE after the sigmoid, with respect to the sigmoid's input
 * (p - t) / count (the fused logits path); for MSE, the plain chain. */
static void output_gradient(int loss, const float *p, const float *t, size_t count, float *dout)
{
    const float inv = 1.0f / (float)count;
    if (loss == AE_LOSS_BCE)
        for (size_t i = 0; i < count; i++) dout[i] = (p[i] - t[i]) * inv;
    else
        ae__loss_sum(loss, p, t, count, dout, count);
}

/* Whole-model check: loss gradient with respect to sampled parameters vs
 * central differences, for MSE (plain chain) and BCE (fused logits path). */
/* The forward pass of a check: inference, or (training) a training pass
 * whose draws are fixed by the workspace's seed and step. */
static const float *check_forward(const ae_model *m, ae__workspace *ws, const float *x, size_t n,
                                  int training)
{
    if (!training) return ae__model_forward_ws(m, ws, x, n);
    ae__forward_rows(m, ws, x, 0, n, 0, 0);
    return ws->acts[m->n_layers - 1];
}

/* The loss in double precision, computed here independently of the library:
 * finite differences of tiny parameter steps need every digit. Layers'
 * penalties (activity regularisation, a VAE's KL term) add their mean per
 * row. */
static double model_loss(const ae_model *m, ae__workspace *ws, int loss, const float *x, size_t n,
                         int training)
{
    size_t out = ae_model_output_size(m);
    const float *p = check_forward(m, ws, x, n, training);
    double sum = 0;
    for (size_t i = 0; i < n * out; i++) {
        double q = p[i], t = x[i];
        if (loss == AE_LOSS_BCE) {
            q = q < 1e-7 ? 1e-7 : (q > 1 - 1e-7 ? 1 - 1e-7 : q);
            sum -= t * log(q) + (1 - t) * log(1 - q);
        } else {
            sum += (q - t) * (q - t);
        }
    }
    return sum / (double)(n * out) + ae__penalty_rows(m, ws, x, 0, n) / (double)n;
}

static void check_model_gradient(ae_model *m, int loss, size_t samples, int training)
{
    const size_t n = 4, in = ae_model_input_size(m), out = ae_model_output_size(m);
    ae__workspace *ws;
    float *x = malloc(n * in * sizeof *x), *dout = malloc(n * out * sizeof *dout);
    float *g = malloc(m->n_params * sizeof *g);
    const float eps = 2e-3f;
    ae_test_rng r;
    size_t kinks = 0;
    ae_test_rng_seed(&r, 17);
    ae_test_fill(&r, x, n * in, 0.0, 1.0);
    for (size_t i = 0; i < m->n_layers; i++) /* non-zero biases: visible bias gradients */
        for (size_t j = 0; j < m->layers[i].n_bias; j++)
            m->layers[i].bias[j] = 0.1f * (float)(ae_test_rng_uniform(&r) - 0.3);
    assert_int_equal(ae__workspace_create(m, n, 1, &ws), AE_OK);
    ws->noise_seed = 5;
    ws->noise_step = 3;
    {
        const float *p = check_forward(m, ws, x, n, training);
        output_gradient(loss, p, x, n * out, dout);
        if (training) {
            ws->batch_rows = n;
            ae__backward_rows(m, ws, x, dout, loss == AE_LOSS_BCE, g, 0, n, 0);
        } else {
            ae__model_backward_ws(m, ws, x, dout, loss == AE_LOSS_BCE, g, n);
        }
    }
    for (size_t s = 0; s < samples; s++) {
        size_t i = s < m->n_params ? (s * 7919) % m->n_params : 0;
        float keep = m->params[i];
        double mid = model_loss(m, ws, loss, x, n, training), up, down, left, right, num;
        m->params[i] = keep + eps; up = model_loss(m, ws, loss, x, n, training);
        m->params[i] = keep - eps; down = model_loss(m, ws, loss, x, n, training);
        m->params[i] = keep;
        left = (mid - down) / eps;
        right = (up - mid) / eps;
        num = (up - down) / (2 * eps);
        if (fabs(left - right) > 1e-4 + 5e-2 * fabs(num)) { kinks++; continue; }
        if (fabs(g[i] - num) > 2e-5 + 3e-2 * fabs(num))
            fail_msg("param %zu: analytic %.8g vs numeric %.8g", i, (double)g[i], num);
    }
    assert_true(kinks * 10 <= samples);
    ae__workspace_free(ws);
    free(x);
    free(dout);
    free(g);
}

static void test_model_gradients(void **state)
{
    const ae_preset presets[3] = {AE_PRESET_SIMPLE, AE_PRESET_DEEP, AE_PRESET_CONV};
    /* under valgrind every forward pass is ~50x slower: sample fewer parameters */
    const size_t samples = getenv("AE_TEST_SMALL") ? 24 : 200;
    (void)state;
    for (int p = 0; p < 3; p++) {
        for (int loss = AE_LOSS_BCE; loss <= AE_LOSS_MSE; loss++) {
            ae_model *m;
            assert_int_equal(ae_preset_build(&m, presets[p], 21), AE_OK);
            check_model_gradient(m, loss, samples, 0);
            ae_model_free(m);
        }
    }
    /* a VAE: the KL term through the encoder, in inference and in training
     * passes (the draws fixed by the workspace's seed and step); training
     * weighs KL lightly so the sampled path's gradient is not drowned by it */
    for (int training = 0; training <= 1; training++) {
        for (int loss = AE_LOSS_BCE; loss <= AE_LOSS_MSE; loss++) {
            ae_builder *b;
            ae_model *m;
            assert_int_equal(ae_builder_create(&b, 1, (size_t[]){784}), AE_OK);
            assert_int_equal(ae_builder_dense(b, 16, AE_ACT_RELU), AE_OK);
            assert_int_equal(ae_builder_dense(b, 6, AE_ACT_LINEAR), AE_OK);
            assert_int_equal(ae_builder_sampling(b, training ? 1e-3 : 0.5), AE_OK);
            assert_int_equal(ae_builder_mark_code(b), AE_OK);
            assert_int_equal(ae_builder_dense(b, 16, AE_ACT_RELU), AE_OK);
            assert_int_equal(ae_builder_dense(b, 784, AE_ACT_SIGMOID), AE_OK);
            assert_int_equal(ae_builder_build(&m, b, 22), AE_OK);
            ae_builder_free(b);
            print_message("model gradient check: VAE, %s, %s pass\n",
                          loss == AE_LOSS_BCE ? "BCE" : "MSE", training ? "training" : "inference");
            check_model_gradient(m, loss, samples, training);
            ae_model_free(m);
        }
    }
}

/* A sparse autoencoder (an activity regulariser on the code): the gradient
 * of the loss with the penalty, the library's against central differences,
 * in training and inference passes. The code is sigmoid, so no code value
 * sits within a step of 0, where |a| has its kink: with tanh, one unit of
 * one row did, and its 12 kernel weights (10% of the samples) were kinks.
 * test_layers checks the penalty's gradient on negative values and at 0. */
static void test_penalty_model_gradients(void **state)
{
    const size_t samples = getenv("AE_TEST_SMALL") ? 24 : 120, in[1] = {12};
    (void)state;
    for (int loss = AE_LOSS_BCE; loss <= AE_LOSS_MSE; loss++) {
        ae_builder *b;
        ae_model *m;
        assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
        assert_int_equal(ae_builder_dense(b, 5, AE_ACT_SIGMOID), AE_OK);
        assert_int_equal(ae_builder_mark_code(b), AE_OK);
        assert_int_equal(ae_builder_activity_regularization(b, 0.05, 0.03), AE_OK);
        assert_int_equal(ae_builder_dense(b, 12, AE_ACT_SIGMOID), AE_OK);
        assert_int_equal(ae_builder_build(&m, b, 3), AE_OK);
        for (int training = 0; training <= 1; training++)
            check_model_gradient(m, loss, samples, training);
        ae_model_free(m);
        ae_builder_free(b);
    }
}

/* Splitting a batch over threads gives the same outputs (bit for bit) and (up
 * to the order of the gradient sums) the same gradients as one thread, and
 * the same loss (bit for bit: rows are scored alone, then summed in order),
 * BCE through the fused logits path and MSE. */
static void test_threaded_passes_match(void **state)
{
    const ae_preset presets[3] = {AE_PRESET_SIMPLE, AE_PRESET_DEEP, AE_PRESET_CONV};
    (void)state;
    for (int p = 0; p < 3; p++) {
        const size_t n = 7; /* does not divide evenly; 3 threads, one share smaller */
        ae_model *m;
        ae__workspace *one, *many;
        float *x = malloc(n * 784 * sizeof *x), *d1 = malloc(n * 784 * sizeof *d1);
        float *d3 = malloc(n * 784 * sizeof *d3), *g1, *g3;
        const float *y1, *y3;
        ae_test_rng r;
        ae_test_rng_seed(&r, 31);
        ae_test_fill(&r, x, n * 784, 0.0, 1.0);
        assert_int_equal(ae_preset_build(&m, presets[p], 8), AE_OK);
        g1 = malloc(m->n_params * sizeof *g1);
        g3 = malloc(m->n_params * sizeof *g3);
        assert_int_equal(ae__workspace_create(m, n, 1, &one), AE_OK);
        assert_int_equal(ae__workspace_create(m, n, 1, &many), AE_OK);
        assert_int_equal(ae__workspace_set_threads(m, many, 3), AE_OK);
        for (int loss = AE_LOSS_BCE; loss <= AE_LOSS_MSE; loss++) {
            const double l1 = ae__model_loss_ws(m, one, loss, x, x, n);
            assert_true(isfinite(l1) && l1 == ae__model_loss_ws(m, many, loss, x, x, n));
        }
        y1 = ae__model_forward_ws(m, one, x, n);
        y3 = ae__model_forward_ws(m, many, x, n);
        assert_memory_equal(y1, y3, n * 784 * sizeof *y1);
        output_gradient(AE_LOSS_BCE, y1, x, n * 784, d1);
        memcpy(d3, d1, n * 784 * sizeof *d3);
        ae__model_backward_ws(m, one, x, d1, 1, g1, n);
        ae__model_backward_ws(m, many, x, d3, 1, g3, n);
        for (size_t i = 0; i < m->n_params; i++)
            if (fabsf(g1[i] - g3[i]) > 1e-6f + 1e-4f * fabsf(g1[i]))
                fail_msg("model %d param %zu: %g vs %g", p, i, (double)g1[i], (double)g3[i]);
        ae__workspace_free(one);
        ae__workspace_free(many);
        ae_model_free(m);
        free(x); free(d1); free(d3); free(g1); free(g3);
    }
}

/* A training pass as fit runs it: every thread forwards and backpropagates
 * its share of the rows, then the gradients are summed. */
typedef struct bn_job {
    const ae_model *m;
    ae__workspace *ws;
    const float *x;
    float *dout, *grads;
    size_t n;
} bn_job;

static void bn_task(void *ctx, int t, int nt)
{
    bn_job *j = ctx;
    const size_t out = ae_model_output_size(j->m);
    float *g = t == 0 ? j->grads : j->ws->thread_grads[t];
    size_t lo, hi;
    ae__split(j->n, t, nt, &lo, &hi);
    ae__forward_rows(j->m, j->ws, j->x, lo, hi, t, 0);
    /* dL/dy = y: the loss sum(y^2)/2 */
    memcpy(j->dout + lo * out, j->ws->acts[j->m->n_layers - 1] + lo * out,
           (hi - lo) * out * sizeof *j->dout);
    ae__backward_rows(j->m, j->ws, j->x, j->dout, 0, g, lo, hi, t);
    ae__pool_barrier(j->ws->pool);
    ae__reduce_grads(j->ws, j->grads, t, nt);
}

/* Batch norm under data-parallel threads normalises with the statistics of
 * the whole batch: outputs, gradients and moving statistics of a training
 * pass on 3 threads (7 rows: uneven shares; 2 rows: a thread without rows)
 * match one thread's. */
static void test_batchnorm_threads_see_whole_batch(void **state)
{
    size_t dims[3] = {4, 4, 2};
    const size_t sizes[2] = {7, 2};
    ae_builder *b;
    ae_model *base;
    (void)state;
    assert_int_equal(ae_builder_create(&b, 3, dims), AE_OK);
    assert_int_equal(ae_builder_conv2d(b, 3, 3, AE_PAD_SAME, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.9, 1e-3), AE_OK);
    assert_int_equal(ae_builder_activation(b, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_flatten(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 5, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.9, 1e-3), AE_OK);
    assert_int_equal(ae_builder_dense(b, 3, AE_ACT_TANH), AE_OK);
    assert_int_equal(ae_builder_build(&base, b, 4), AE_OK);
    ae_builder_free(b);
    for (int k = 0; k < 2; k++) {
        const size_t n = sizes[k], in = 32, out = 3;
        ae_model *m1, *m3;
        ae__workspace *one, *many;
        float x[7 * 32], d1[7 * 3], d3[7 * 3], *g1, *g3;
        ae_test_rng r;
        bn_job j;
        ae_test_rng_seed(&r, 3);
        ae_test_fill(&r, x, n * in, -1.0, 1.0);
        assert_int_equal(ae_model_clone(&m1, base), AE_OK);
        assert_int_equal(ae_model_clone(&m3, base), AE_OK);
        g1 = malloc(m1->n_params * sizeof *g1);
        g3 = malloc(m1->n_params * sizeof *g3);
        assert_int_equal(ae__workspace_create(m1, n, 1, &one), AE_OK);
        assert_int_equal(ae__workspace_create(m3, n, 1, &many), AE_OK);
        assert_int_equal(ae__workspace_set_threads(m3, many, 3), AE_OK);
        j = (bn_job){m1, one, x, d1, g1, n};
        ae__pool_run(one->pool, bn_task, &j);
        j = (bn_job){m3, many, x, d3, g3, n};
        ae__pool_run(many->pool, bn_task, &j);
        for (size_t i = 0; i < n * out; i++)
            if (fabsf(d1[i] - d3[i]) > 1e-5f) fail_msg("output %zu: %g vs %g", i, d1[i], d3[i]);
        for (size_t i = 0; i < m1->n_params; i++)
            if (fabsf(g1[i] - g3[i]) > 1e-5f + 1e-4f * fabsf(g1[i]))
                fail_msg("%zu rows, param %zu: %g vs %g", n, i, (double)g1[i], (double)g3[i]);
        for (size_t i = 0; i < m1->n_stats; i++)
            if (fabsf(m1->stats[i] - m3->stats[i]) > 1e-6f)
                fail_msg("statistic %zu: %g vs %g", i, m1->stats[i], m3->stats[i]);
        assert_true(m1->stats[0] != 0.0f); /* the moving mean moved */
        ae__workspace_free(one);
        ae__workspace_free(many);
        ae_model_free(m1);
        ae_model_free(m3);
        free(g1); free(g3);
    }
    ae_model_free(base);
}

/* fit trains a batch-norm model on 2 threads, also through a last batch of
 * one row (one thread without rows still meets the other at the batch
 * statistics), and moves the moving statistics that predict then uses. */
static void test_batchnorm_fit(void **state)
{
    size_t dims[1] = {8};
    const size_t n = 25; /* batches of 4, the last of 1 */
    float x[25 * 8], y[25 * 8], mean0;
    ae_builder *b;
    ae_model *m;
    ae_train_config *cfg;
    ae_test_rng r;
    (void)state;
    ae_test_rng_seed(&r, 5);
    ae_test_fill(&r, x, n * 8, 0.0, 1.0);
    assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.99, 1e-3), AE_OK);
    assert_int_equal(ae_builder_activation(b, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_dense(b, 8, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 2), AE_OK);
    ae_builder_free(b);
    mean0 = m->layers[1].moving_mean[0];
    assert_int_equal(ae_train_config_create(&cfg), AE_OK);
    assert_int_equal(ae_train_config_set_int(cfg, AE_TRAIN_BATCH_SIZE, 4), AE_OK);
    assert_int_equal(ae_train_config_set_int(cfg, AE_TRAIN_EPOCHS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_int(cfg, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_fit(m, cfg, x, NULL, n, NULL), AE_OK);
    assert_true(m->layers[1].moving_mean[0] != mean0);
    assert_int_equal(ae_model_predict(m, x, n, y, n * 8), AE_OK);
    ae_train_config_free(cfg);
    ae_model_free(m);
}

/* Dropout and noise draw from the fit seed: two fits from the same weights
 * and seed end with the same weights, another seed with others. */
static void test_noise_fit_follows_seed(void **state)
{
    size_t dims[1] = {8};
    const size_t n = 24;
    float x[24 * 8];
    ae_builder *b;
    ae_model *base, *m[3];
    ae_test_rng r;
    (void)state;
    ae_test_rng_seed(&r, 6);
    ae_test_fill(&r, x, n * 8, 0.0, 1.0);
    assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
    assert_int_equal(ae_builder_gaussian_noise(b, 0.3, 1), AE_OK);
    assert_int_equal(ae_builder_masking_noise(b, 0.2), AE_OK);
    assert_int_equal(ae_builder_dense(b, 6, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_dropout(b, 0.25), AE_OK);
    assert_int_equal(ae_builder_dense(b, 8, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&base, b, 2), AE_OK);
    ae_builder_free(b);
    for (int k = 0; k < 3; k++) {
        ae_train_config *cfg;
        assert_int_equal(ae_model_clone(&m[k], base), AE_OK);
        assert_int_equal(ae_train_config_create(&cfg), AE_OK);
        assert_int_equal(ae_train_config_set_int(cfg, AE_TRAIN_BATCH_SIZE, 8), AE_OK);
        assert_int_equal(ae_train_config_set_int(cfg, AE_TRAIN_EPOCHS, 2), AE_OK);
        assert_int_equal(ae_train_config_set_int(cfg, AE_TRAIN_THREADS, 1), AE_OK);
        assert_int_equal(ae_train_config_set_int(cfg, AE_TRAIN_SEED, k == 2 ? 8 : 7), AE_OK);
        assert_int_equal(ae_train_fit(m[k], cfg, x, NULL, n, NULL), AE_OK);
        ae_train_config_free(cfg);
    }
    assert_memory_equal(m[0]->params, m[1]->params, base->n_params * sizeof(float));
    assert_true(memcmp(m[0]->params, m[2]->params, base->n_params * sizeof(float)) != 0);
    for (int k = 0; k < 3; k++) ae_model_free(m[k]);
    ae_model_free(base);
}

/* The conv-BN presets: issue 11's recipe, the parameter counts its table
 * gives (118k for width 8, 269k for width 16), a 32-float code. */
static void test_conv_bn_presets(void **state)
{
    static const size_t trainable[2] = {118337, 268641}, stats[2] = {160, 320};
    (void)state;
    for (int k = 0; k < 2; k++) {
        const size_t w = k ? 16 : 8;
        ae_preset p;
        ae_model *m;
        size_t code;
        char summary[8192];
        assert_int_equal(ae_preset_from_name(&p, k ? "conv_bn16" : "conv_bn8"), AE_OK);
        assert_int_equal(p, k ? AE_PRESET_CONV_BN16 : AE_PRESET_CONV_BN8);
        assert_int_equal(ae_preset_build(&m, p, 1), AE_OK);
        assert_int_equal(ae_model_param_count(m), trainable[k]);
        assert_int_equal(m->n_stats, stats[k]);
        assert_int_equal(ae_model_layer_count(m), 20);
        assert_int_equal(ae_model_code_layer(&code, m), AE_OK);
        assert_int_equal(code, 10);
        assert_int_equal(ae_layer_output_size(ae_model_layer(m, code)), 32);
        expect_shape(ae_model_layer(m, 3), 3, 14, 14, 2 * w);
        expect_shape(ae_model_layer(m, 6), 3, 7, 7, 4 * w);
        expect_shape(ae_model_layer(m, 13), 3, 14, 14, 2 * w);
        expect_shape(ae_model_layer(m, 16), 3, 28, 28, w);
        expect_shape(ae_model_layer(m, 19), 3, 28, 28, 1);
        assert_int_equal(ae_layer_kind_of(ae_model_layer(m, 1)), AE_LAYER_BATCHNORM);
        assert_int_equal(ae_layer_kind_of(ae_model_layer(m, 13)), AE_LAYER_CONV2D_TRANSPOSE);
        assert_int_equal(ae_model_summary(m, summary, sizeof summary, NULL), AE_OK);
        assert_non_null(strstr(summary, k ? "Non-trainable params: 320" : "Non-trainable params: 160"));
        ae_model_free(m);
    }
}

static void test_builder_errors(void **state)
{
    ae_builder *b;
    ae_model *m = (ae_model *)1;
    size_t img[3] = {5, 5, 1}, flat[1] = {10}, bad[3] = {0, 5, 1}, r2[2] = {2, 5};
    (void)state;
    assert_int_equal(ae_builder_create(NULL, 1, flat), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_builder_create(&b, 2, r2), AE_ERR_SHAPE);
    assert_null(b);
    assert_int_equal(ae_builder_create(&b, 3, bad), AE_ERR_SHAPE);
    assert_true(strstr(ae_last_error(), "zero") != NULL);
    assert_int_equal(ae_builder_create(&b, 3, img), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 1), AE_ERR_STATE);
    assert_null(m);
    assert_int_equal(ae_builder_mark_code(b), AE_ERR_STATE);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_RELU), AE_ERR_SHAPE);
    assert_true(strstr(ae_builder_errmsg(b), "flatten") != NULL);
    assert_int_equal(ae_builder_conv2d(b, 0, 3, AE_PAD_SAME, AE_ACT_RELU), AE_ERR_RANGE);
    assert_int_equal(ae_builder_conv2d(b, 4, 3, 7, AE_ACT_RELU), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_builder_conv2d(b, 4, 3, AE_PAD_SAME, 9), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_builder_conv2d(b, 4, 7, AE_PAD_VALID, AE_ACT_RELU), AE_ERR_SHAPE);
    assert_int_equal(ae_builder_maxpool2d(b, 3), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_builder_layer_count(b), 0);
    assert_int_equal(ae_builder_maxpool2d(b, AE_PAD_VALID), AE_OK); /* 2x2 */
    assert_int_equal(ae_builder_maxpool2d(b, AE_PAD_VALID), AE_OK); /* 1x1 */
    assert_int_equal(ae_builder_maxpool2d(b, AE_PAD_VALID), AE_ERR_SHAPE);
    assert_int_equal(ae_builder_maxpool2d(b, AE_PAD_SAME), AE_OK);  /* 1x1 stays */
    {
        size_t six[1] = {6};
        assert_int_equal(ae_builder_reshape(b, 1, six), AE_ERR_SHAPE);
    }
    assert_int_equal(ae_builder_flatten(b), AE_OK);
    assert_int_equal(ae_builder_upsample2d(b), AE_ERR_SHAPE);
    assert_int_equal(ae_builder_dense(b, 0, AE_ACT_RELU), AE_ERR_RANGE);
    assert_int_equal(ae_builder_layer_count(b), 4);
    ae_builder_free(b);
    ae_builder_free(NULL);
    assert_int_equal(ae_builder_dense(NULL, 3, 0), AE_ERR_INVALID_ARG);
    (void)flat;
}

static void test_model_errors(void **state)
{
    ae_model *m;
    float x[784] = {0}, y[784];
    const float *data;
    size_t count;
    (void)state;
    assert_int_equal(ae_preset_build(NULL, AE_PRESET_SIMPLE, 1),
                     AE_ERR_INVALID_ARG);
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 1), AE_OK);
    assert_int_equal(ae_model_predict(m, x, 1, y, 783), AE_ERR_SHAPE);
    assert_true(strstr(ae_last_error(), "784") != NULL);
    assert_int_equal(ae_model_predict(m, x, 0, y, 784), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_model_predict(m, NULL, 1, y, 784), AE_ERR_INVALID_ARG);
    x[5] = NAN;
    assert_int_equal(ae_model_predict(m, x, 1, y, 784), AE_ERR_NUMERIC);
    x[5] = 0;
    assert_int_equal(ae_model_set_param(m, 7, AE_PARAM_KERNEL, x, 1), AE_ERR_RANGE);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_BIAS, x, 31), AE_ERR_SHAPE);
    assert_true(strstr(ae_model_errmsg(m), "32") != NULL);
    x[0] = INFINITY;
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_BIAS, x, 32), AE_ERR_NUMERIC);
    assert_int_equal(ae_layer_param(&data, &count, ae_model_layer(m, 0), 5),
                     AE_ERR_INVALID_ARG);
    assert_int_equal(ae_layer_param(&data, &count, ae_model_layer(m, 0), AE_PARAM_KERNEL),
                     AE_OK);
    assert_int_equal(count, 784 * 32);
    assert_null(ae_model_layer(m, 2));
    ae_model_free(m);
    ae_model_free(NULL);
    assert_string_equal(ae_status_string(AE_ERR_NOMEM), "out of memory");
    assert_true(ae_is_error(AE_ERR_SHAPE));
    assert_false(ae_is_error(AE_STOPPED));
}

/* Finite inputs with finite but enormous weights overflow: predict reports it
 * instead of returning NaN or infinity with AE_OK, with 1 and 3 threads. */
static void test_overflowing_outputs(void **state)
{
    const size_t n = 200;
    ae_model *m;
    float *x = malloc(n * 784 * sizeof *x), *y = malloc(n * 784 * sizeof *y);
    float *huge = malloc(784 * 32 * sizeof *huge);
    (void)state;
    for (size_t i = 0; i < n * 784; i++) x[i] = (float)(i % 7) / 7.0f;
    for (size_t i = 0; i < 784 * 32; i++) huge[i] = 3e38f;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 2), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, huge, 784 * 32), AE_OK);
    for (int t = 1; t <= 3; t += 2) {
        assert_int_equal(ae_model_set_threads(m, t), AE_OK);
        assert_int_equal(ae_model_predict(m, x, n, y, n * 784), AE_ERR_NUMERIC);
        assert_non_null(strstr(ae_last_error(), "ae_model_predict"));
    }
    /* the rows that do not overflow still predict (all-zero input: 0 * 3e38) */
    memset(x, 0, 784 * sizeof *x);
    assert_int_equal(ae_model_predict(m, x, 1, y, 784), AE_OK);
    ae_model_free(m);
    free(x);
    free(y);
    free(huge);
}

static void test_tensor(void **state)
{
    ae_tensor *t, *w;
    size_t d[4] = {2, 28, 28, 1}, flat[2] = {2, 784}, bad[2] = {3, 784};
    float buf[6] = {1, 2, 3, 4, 5, 6};
    size_t d6[2] = {2, 3};
    ae_model *m;
    ae_tensor *y;
    (void)state;
    assert_int_equal(ae_tensor_create(&t, 4, d), AE_OK);
    assert_int_equal(ae_tensor_rank(t), 4);
    assert_int_equal(ae_tensor_size(t), 2 * 784);
    assert_int_equal(ae_tensor_reshape(t, 2, flat), AE_OK);
    assert_int_equal(ae_tensor_dim(t, 1), 784);
    assert_int_equal(ae_tensor_reshape(t, 2, bad), AE_ERR_SHAPE);
    assert_int_equal(ae_tensor_create(&w, 5, d), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_tensor_wrap(&w, buf, 2, d6), AE_OK);
    assert_ptr_equal(ae_tensor_data(w), buf);
    ae_tensor_free(w);
    assert_int_equal(ae_tensor_from_data(&w, buf, 2, d6), AE_OK);
    assert_ptr_not_equal(ae_tensor_data(w), buf);
    assert_float_equal(ae_tensor_data_const(w)[5], 6, 0);
    ae_tensor_free(w);
    /* forward through tensors: (2, 28, 28, 1) in, (2, 784) out */
    assert_int_equal(ae_preset_build(&m, AE_PRESET_CONV, 2), AE_OK);
    assert_int_equal(ae_tensor_reshape(t, 4, d), AE_OK);
    assert_int_equal(ae_tensor_create(&y, 2, flat), AE_OK);
    assert_int_equal(ae_model_forward(m, t, y), AE_OK);
    assert_true(ae_tensor_data(y)[100] > 0 && ae_tensor_data(y)[100] < 1);
    ae_model_free(m);
    ae_tensor_free(y);
    ae_tensor_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_model),     cmocka_unit_test(test_deep_model),
        cmocka_unit_test(test_conv_model),       cmocka_unit_test(test_predict_any_batch),
        cmocka_unit_test(test_predict_bit_identical),
        cmocka_unit_test(test_same_seed_same_weights), cmocka_unit_test(test_summary),
        cmocka_unit_test(test_model_gradients), cmocka_unit_test(test_penalty_model_gradients),  cmocka_unit_test(test_threaded_passes_match),
        cmocka_unit_test(test_batchnorm_threads_see_whole_batch),
        cmocka_unit_test(test_batchnorm_fit),
        cmocka_unit_test(test_noise_fit_follows_seed),
        cmocka_unit_test(test_conv_bn_presets),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_model_errors),     cmocka_unit_test(test_overflowing_outputs),
        cmocka_unit_test(test_tensor),
        cmocka_unit_test(test_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
