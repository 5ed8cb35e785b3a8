/* Layer kernels: finite-difference checks of every backward pass (input and
 * parameter gradients), and forward results worked out by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn.h"
#include "test_support.h"

/* A one-layer model on the given input shape, built through the public builder. */
typedef ae_status (*add_fn)(ae_builder *b);

static ae_model *one_layer(int rank, const size_t *dims, add_fn add)
{
    ae_builder *b;
    ae_model *m = NULL;
    assert_int_equal(ae_builder_create(&b, rank, dims), AE_OK);
    assert_int_equal(add(b), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 7), AE_OK);
    ae_builder_free(b);
    return m;
}

/* L = sum(y * r) + the layer's penalty per row of the batch (p->batch_rows,
 * or the n rows): dL/dy = r, and backward adds the penalty's gradient. Forward
 * in double-checked float, central differences. */
static double probe_loss(const ae_layer *L, const float *x, const float *r, size_t n, float *y,
                         float *ws, const ae__pass *p)
{
    double s = 0;
    size_t out = ae__shape_size(&L->out);
    ae__layer_forward_pass(L, x, y, n, ws, p);
    for (size_t i = 0; i < n * out; i++) s += (double)y[i] * r[i];
    return s + ae__layer_penalty(L, x, y, n) / (double)(p && p->batch_rows ? p->batch_rows : n);
}

static void check_close(double analytic, double numeric, const char *what, size_t i)
{
    double tol = 2e-3 + 2e-2 * fabs(numeric);
    if (fabs(analytic - numeric) > tol)
        fail_msg("%s[%zu]: analytic %.6g vs numeric %.6g", what, i, analytic, numeric);
}

/* Compares one analytic derivative with central differences of *v. Where the
 * left and right one-sided differences disagree, the function is not smooth
 * there (relu kink, max switch): the analytic value must then equal one of
 * the one-sided derivatives, and the point is counted. */
static void check_one(const ae_layer *L, const float *x, const float *r, size_t n, float *y,
                      float *ws, const ae__pass *p, float *v, double analytic, float eps,
                      const char *what, size_t i, size_t *kinks)
{
    float keep = *v;
    double up, down, mid, left, right;
    mid = probe_loss(L, x, r, n, y, ws, p);
    *v = keep + eps; up = probe_loss(L, x, r, n, y, ws, p);
    *v = keep - eps; down = probe_loss(L, x, r, n, y, ws, p);
    *v = keep;
    left = (mid - down) / eps;
    right = (up - mid) / eps;
    if (fabs(left - right) > 5e-3 + 5e-2 * fabs(left)) {
        /* at a kink the analytic derivative is one of the one-sided ones */
        double tl = 5e-3 + 2e-2 * fabs(left), tr = 5e-3 + 2e-2 * fabs(right);
        if (fabs(analytic - left) > tl && fabs(analytic - right) > tr)
            fail_msg("%s[%zu] at a kink: analytic %.6g matches neither side (%.6g, %.6g)", what, i,
                     analytic, left, right);
        (*kinks)++;
        return;
    }
    check_close(analytic, (up - down) / (2 * eps), what, i);
}

/* p: the pass mode (NULL: inference, one thread) */
static void gradient_check_pass(const ae_model *m, size_t n, const ae__pass *p)
{
    const ae_layer *L = &m->layers[0];
    size_t in = ae__shape_size(&L->in), out = ae__shape_size(&L->out);
    size_t wsn = ae__layer_ws_floats(L, n) + 1;
    float *x = malloc(n * in * sizeof *x), *y = malloc(n * out * sizeof *y);
    float *r = malloc(n * out * sizeof *r), *dy = malloc(n * out * sizeof *dy);
    float *dx = malloc(n * in * sizeof *dx), *ws = malloc(wsn * sizeof *ws);
    float *g = calloc(m->n_params + 1, sizeof *g);
    const float eps = 1e-3f;
    size_t kinks = 0;
    ae_test_rng rng;
    ae_test_rng_seed(&rng, 11);
    ae_test_fill(&rng, x, n * in, -1.0, 1.0);
    ae_test_rng_seed(&rng, 12);
    ae_test_fill(&rng, r, n * out, -1.0, 1.0);
    ae__layer_forward_pass(L, x, y, n, ws, p);
    memcpy(dy, r, n * out * sizeof *dy);
    ae__layer_backward_pass(L, x, y, dy, 0, dx, g, g + L->n_kernel, n, ws, p);
    for (size_t i = 0; i < n * in; i++) { /* input gradient */
        check_one(L, x, r, n, y, ws, p, &x[i], dx[i], eps, "dx", i, &kinks);
    }
    for (size_t i = 0; i < L->n_kernel + L->n_bias; i++) { /* parameter gradients */
        check_one(L, x, r, n, y, ws, p, m->params + L->param_offset + i, g[L->param_offset + i],
                  eps, "dparam", i, &kinks);
    }
    /* a relu kink or pooling switch inside +-eps is rare; many means a bug */
    /* kinks are checked one-sidedly above; this cap only catches a
     * non-smooth forward pass (a bug) masquerading as many kinks */
    if (kinks * 4 > n * in + L->n_kernel + L->n_bias) fail_msg("%zu kinks of %zu", kinks, n * in + L->n_kernel + L->n_bias);
    free(x); free(y); free(r); free(dy); free(dx); free(ws); free(g);
}

static void gradient_check(const ae_model *m, size_t n) { gradient_check_pass(m, n, NULL); }

/* Random non-zero biases so relu kinks and bias gradients are exercised. */
static void randomise_bias(ae_model *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        ae_test_rng r;
        ae_test_rng_seed(&r, 5);
        ae_test_fill(&r, m->layers[i].bias, m->layers[i].n_bias, -0.3, 0.3);
    }
}

static ae_status add_dense_relu(ae_builder *b) { return ae_builder_dense(b, 5, AE_ACT_RELU); }
static ae_status add_dense_sigmoid(ae_builder *b) { return ae_builder_dense(b, 4, AE_ACT_SIGMOID); }
static ae_status add_dense_linear(ae_builder *b) { return ae_builder_dense(b, 3, AE_ACT_LINEAR); }
static ae_status add_conv_same(ae_builder *b) { return ae_builder_conv2d(b, 4, 3, AE_PAD_SAME, AE_ACT_RELU); }
static ae_status add_conv_valid(ae_builder *b) { return ae_builder_conv2d(b, 3, 3, AE_PAD_VALID, AE_ACT_SIGMOID); }
static ae_status add_conv_even(ae_builder *b) { return ae_builder_conv2d(b, 2, 2, AE_PAD_SAME, AE_ACT_LINEAR); }
/* more than 64 filters: the im2col + GEMM path instead of the direct kernels */
static ae_status add_conv_wide(ae_builder *b) { return ae_builder_conv2d(b, 66, 3, AE_PAD_SAME, AE_ACT_RELU); }
static ae_status add_conv_16_8(ae_builder *b) { return ae_builder_conv2d(b, 8, 3, AE_PAD_SAME, AE_ACT_RELU); }
static ae_status add_conv_16_1(ae_builder *b) { return ae_builder_conv2d(b, 1, 3, AE_PAD_SAME, AE_ACT_SIGMOID); }
static ae_status add_conv_1_8(ae_builder *b) { return ae_builder_conv2d(b, 8, 3, AE_PAD_VALID, AE_ACT_RELU); }
static ae_status add_pool_same(ae_builder *b) { return ae_builder_maxpool2d(b, AE_PAD_SAME); }
static ae_status add_pool_valid(ae_builder *b) { return ae_builder_maxpool2d(b, AE_PAD_VALID); }
static ae_status add_up(ae_builder *b) { return ae_builder_upsample2d(b); }
static ae_status add_relu(ae_builder *b) { return ae_builder_activation(b, AE_ACT_RELU); }
static ae_status add_sigmoid(ae_builder *b) { return ae_builder_activation(b, AE_ACT_SIGMOID); }
static ae_status add_flatten(ae_builder *b) { return ae_builder_flatten(b); }
static ae_status add_dense_tanh(ae_builder *b) { return ae_builder_dense(b, 4, AE_ACT_TANH); }
static ae_status add_leaky(ae_builder *b) { return ae_builder_activation(b, AE_ACT_LEAKY_RELU); }
static ae_status add_leaky_02(ae_builder *b)
{
    ae_status st = ae_builder_dense(b, 5, AE_ACT_LEAKY_RELU);
    return st == AE_OK ? ae_builder_activation_param(b, 0.2) : st;
}
static ae_status add_elu(ae_builder *b) { return ae_builder_activation(b, AE_ACT_ELU); }
static ae_status add_conv_elu_05(ae_builder *b)
{
    ae_status st = ae_builder_conv2d(b, 3, 3, AE_PAD_SAME, AE_ACT_ELU);
    return st == AE_OK ? ae_builder_activation_param(b, 0.5) : st;
}
static ae_status add_conv_s2_same(ae_builder *b) { return ae_builder_conv2d_ex(b, 3, 3, 2, AE_PAD_SAME, AE_ACT_LINEAR); }
static ae_status add_conv_s2_valid(ae_builder *b) { return ae_builder_conv2d_ex(b, 2, 3, 2, AE_PAD_VALID, AE_ACT_TANH); }
static ae_status add_conv_s3_even(ae_builder *b) { return ae_builder_conv2d_ex(b, 2, 2, 3, AE_PAD_SAME, AE_ACT_RELU); }
static ae_status add_conv_s1_ex(ae_builder *b) { return ae_builder_conv2d_ex(b, 8, 3, 1, AE_PAD_SAME, AE_ACT_RELU); }
static ae_status add_convt_k4s2_same(ae_builder *b) { return ae_builder_conv2d_transpose(b, 3, 4, 2, AE_PAD_SAME, AE_ACT_LINEAR); }
static ae_status add_convt_k3s2_same(ae_builder *b) { return ae_builder_conv2d_transpose(b, 2, 3, 2, AE_PAD_SAME, AE_ACT_SIGMOID); }
static ae_status add_convt_k3s2_valid(ae_builder *b) { return ae_builder_conv2d_transpose(b, 2, 3, 2, AE_PAD_VALID, AE_ACT_LINEAR); }
static ae_status add_convt_k2s3_valid(ae_builder *b) { return ae_builder_conv2d_transpose(b, 2, 2, 3, AE_PAD_VALID, AE_ACT_ELU); }
static ae_status add_convt_k3s1_same(ae_builder *b) { return ae_builder_conv2d_transpose(b, 4, 3, 1, AE_PAD_SAME, AE_ACT_RELU); }
static ae_status add_softplus(ae_builder *b) { return ae_builder_activation(b, AE_ACT_SOFTPLUS); }
static ae_status add_conv_softplus(ae_builder *b) { return ae_builder_conv2d(b, 8, 3, AE_PAD_SAME, AE_ACT_SOFTPLUS); }
static ae_status add_reshape(ae_builder *b)
{
    size_t d[3] = {3, 5, 2};
    return ae_builder_reshape(b, 3, d);
}

typedef struct case_def {
    const char *name;
    int rank;
    size_t dims[3];
    add_fn add;
} case_def;

static const case_def cases[] = {
    {"dense relu", 1, {7}, add_dense_relu},
    {"dense sigmoid", 1, {6}, add_dense_sigmoid},
    {"dense linear", 1, {4}, add_dense_linear},
    {"conv same 5x4x2", 3, {5, 4, 2}, add_conv_same},
    {"conv valid 6x5x3", 3, {6, 5, 3}, add_conv_valid},
    {"conv even kernel 4x3x1", 3, {4, 3, 1}, add_conv_even},
    {"conv wide im2col 3x3x2", 3, {3, 3, 2}, add_conv_wide},
    {"conv 16->8 instance 4x4x16", 3, {4, 4, 16}, add_conv_16_8},
    {"conv 16->1 instance 5x3x16", 3, {5, 3, 16}, add_conv_16_1},
    {"conv 1->8 instance 7x6x1", 3, {7, 6, 1}, add_conv_1_8},
    {"maxpool same 7x5x2", 3, {7, 5, 2}, add_pool_same},
    {"maxpool valid 7x5x2", 3, {7, 5, 2}, add_pool_valid},
    {"upsample 3x2x2", 3, {3, 2, 2}, add_up},
    {"relu", 1, {9}, add_relu},
    {"sigmoid", 3, {2, 3, 2}, add_sigmoid},
    {"flatten", 3, {2, 3, 2}, add_flatten},
    {"reshape", 1, {30}, add_reshape},
    {"dense tanh", 1, {6}, add_dense_tanh},
    {"leaky relu", 1, {9}, add_leaky},
    {"dense leaky relu alpha 0.2", 1, {5}, add_leaky_02},
    {"elu", 3, {2, 3, 2}, add_elu},
    {"conv elu alpha 0.5 4x4x2", 3, {4, 4, 2}, add_conv_elu_05},
    {"softplus", 1, {9}, add_softplus},
    {"conv softplus 3x3x1", 3, {3, 3, 1}, add_conv_softplus},
    {"conv stride 2 same 5x4x2", 3, {5, 4, 2}, add_conv_s2_same},
    {"conv stride 2 valid 7x6x2", 3, {7, 6, 2}, add_conv_s2_valid},
    {"conv stride 3 even kernel 7x5x1", 3, {7, 5, 1}, add_conv_s3_even},
    {"conv_ex stride 1 direct 4x3x2", 3, {4, 3, 2}, add_conv_s1_ex},
    {"conv transpose k4 s2 same 3x2x2", 3, {3, 2, 2}, add_convt_k4s2_same},
    {"conv transpose k3 s2 same 2x3x3", 3, {2, 3, 3}, add_convt_k3s2_same},
    {"conv transpose k3 s2 valid 3x2x1", 3, {3, 2, 1}, add_convt_k3s2_valid},
    {"conv transpose k2 s3 valid 2x2x2", 3, {2, 2, 2}, add_convt_k2s3_valid},
    {"conv transpose k3 s1 same 3x3x2", 3, {3, 3, 2}, add_convt_k3s1_same},
};

static void test_every_layer_gradient(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ae_model *m = one_layer(cases[c].rank, cases[c].dims, cases[c].add);
        randomise_bias(m);
        print_message("gradient check: %s\n", cases[c].name);
        gradient_check(m, 3);
        ae_model_free(m);
    }
}

/* 3x3 input, one 2x2 valid filter: worked by hand. */
static void test_conv_by_hand(void **state)
{
    size_t dims[3] = {3, 3, 1};
    ae_builder *b;
    ae_model *m;
    /* kernel (kh, kw, cin, cout) = (2, 2, 1, 1) */
    const float kernel[4] = {1, 2, 3, 4}, bias[1] = {0.5f};
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float y[4];
    (void)state;
    assert_int_equal(ae_builder_create(&b, 3, dims), AE_OK);
    assert_int_equal(ae_builder_conv2d(b, 1, 2, AE_PAD_VALID, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, kernel, 4), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_BIAS, bias, 1), AE_OK);
    assert_int_equal(ae_model_predict(m, x, 1, y, 4), AE_OK);
    /* top-left: 1*1 + 2*2 + 4*3 + 5*4 = 37, + 0.5 */
    assert_float_equal(y[0], 37.5f, 1e-5);
    assert_float_equal(y[1], 2 * 1 + 3 * 2 + 5 * 3 + 6 * 4 + 0.5f, 1e-5);
    assert_float_equal(y[2], 4 * 1 + 5 * 2 + 7 * 3 + 8 * 4 + 0.5f, 1e-5);
    assert_float_equal(y[3], 5 * 1 + 6 * 2 + 8 * 3 + 9 * 4 + 0.5f, 1e-5);
    ae_model_free(m);
    ae_builder_free(b);
}

/* same padding, 3x3 kernel of ones on a 2x2 image of ones: every output sees
 * all four pixels (zero padding elsewhere). Two channels in, sums them. */
static void test_conv_same_padding_by_hand(void **state)
{
    size_t dims[3] = {2, 2, 2};
    ae_builder *b;
    ae_model *m;
    float kernel[18], x[8] = {1, 10, 1, 10, 1, 10, 1, 10}, y[4];
    (void)state;
    for (int i = 0; i < 18; i++) kernel[i] = 1.0f;
    assert_int_equal(ae_builder_create(&b, 3, dims), AE_OK);
    assert_int_equal(ae_builder_conv2d(b, 1, 3, AE_PAD_SAME, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, kernel, 18), AE_OK);
    assert_int_equal(ae_model_predict(m, x, 1, y, 4), AE_OK);
    for (int i = 0; i < 4; i++) assert_float_equal(y[i], 44.0f, 1e-5);
    ae_model_free(m);
    ae_builder_free(b);
}

/* Dense: y = x W + b with W (in, units) row-major, then relu. */
static void test_dense_by_hand(void **state)
{
    size_t dims[1] = {2};
    ae_builder *b;
    ae_model *m;
    const float w[6] = {1, -1, 2, 3, 0.5f, -4}, bias[3] = {0.1f, 0.2f, 0.3f};
    const float x[2] = {2, 1};
    float y[3];
    (void)state;
    assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
    assert_int_equal(ae_builder_dense(b, 3, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, w, 6), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_BIAS, bias, 3), AE_OK);
    assert_int_equal(ae_model_predict(m, x, 1, y, 3), AE_OK);
    assert_float_equal(y[0], 2 * 1 + 1 * 3 + 0.1f, 1e-5);
    assert_float_equal(y[1], 0.0f, 1e-6); /* 2*-1 + 0.5 + 0.2 < 0 */
    assert_float_equal(y[2], 0.3f, 1e-6); /* 2*2 + 1*-4 + 0.3 */
    ae_model_free(m);
    ae_builder_free(b);
}

/* 2x2 pooling: same rounds 3 up to 2 (last window clipped), valid down to 1. */
static void test_pool_and_upsample_by_hand(void **state)
{
    size_t dims[3] = {3, 3, 1};
    const float x[9] = {1, 5, 2, 3, 4, 9, 8, 0, 7};
    float y[4];
    ae_model *m;
    (void)state;
    m = one_layer(3, dims, add_pool_same);
    assert_int_equal(ae_layer_output_dim(ae_model_layer(m, 0), 0), 2);
    assert_int_equal(ae_model_predict(m, x, 1, y, 4), AE_OK);
    assert_float_equal(y[0], 5, 0); assert_float_equal(y[1], 9, 0);
    assert_float_equal(y[2], 8, 0); assert_float_equal(y[3], 7, 0);
    ae_model_free(m);
    m = one_layer(3, dims, add_pool_valid);
    assert_int_equal(ae_layer_output_dim(ae_model_layer(m, 0), 0), 1);
    assert_int_equal(ae_model_predict(m, x, 1, y, 1), AE_OK);
    assert_float_equal(y[0], 5, 0);
    ae_model_free(m);
    {
        size_t d2[3] = {1, 2, 1};
        const float u[2] = {3, 4};
        float v[8];
        const float want[8] = {3, 3, 4, 4, 3, 3, 4, 4};
        m = one_layer(3, d2, add_up);
        assert_int_equal(ae_model_predict(m, u, 1, v, 8), AE_OK);
        assert_memory_equal(v, want, sizeof want);
        ae_model_free(m);
    }
}

/* The new activations' values at a few points, against libm in double, and
 * their parameters (defaults and ae_builder_activation_param's checks). */
static void test_activations_by_hand(void **state)
{
    static const int acts[4] = {AE_ACT_TANH, AE_ACT_LEAKY_RELU, AE_ACT_ELU, AE_ACT_SOFTPLUS};
    static const double alpha[4] = {0, 0.3, 1.0, 0};
    const float x[6] = {-30.0f, -2.0f, -0.5f, 0.0f, 0.75f, 40.0f};
    size_t dims[1] = {6};
    float y[6];
    (void)state;
    for (int a = 0; a < 4; a++) {
        ae_builder *b;
        ae_model *m;
        assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
        assert_int_equal(ae_builder_activation(b, (ae_activation)acts[a]), AE_OK);
        assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
        assert_float_equal(ae_layer_activation_param(ae_model_layer(m, 0)), alpha[a], 1e-7);
        assert_int_equal(ae_model_predict(m, x, 1, y, 6), AE_OK);
        for (int i = 0; i < 6; i++) {
            double v = x[i], want;
            switch (acts[a]) {
            case AE_ACT_TANH: want = tanh(v); break;
            case AE_ACT_LEAKY_RELU: want = v > 0 ? v : 0.3 * v; break;
            case AE_ACT_ELU: want = v > 0 ? v : expm1(v); break;
            default: want = log1p(exp(v)); break;
            }
            if (fabs(y[i] - want) > 1e-6 + 1e-6 * fabs(want))
                fail_msg("activation %d at %g: %.9g, want %.9g", acts[a], v, y[i], want);
        }
        ae_model_free(m);
        ae_builder_free(b);
    }
    {
        ae_builder *b;
        assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
        assert_int_equal(ae_builder_activation_param(b, 0.1), AE_ERR_STATE); /* no layer */
        assert_int_equal(ae_builder_dense(b, 3, AE_ACT_RELU), AE_OK);
        assert_int_equal(ae_builder_activation_param(b, 0.1), AE_ERR_STATE); /* relu: none */
        assert_int_equal(ae_builder_dense(b, 3, AE_ACT_ELU), AE_OK);
        assert_int_equal(ae_builder_activation_param(b, -1.0), AE_ERR_RANGE);
        assert_int_equal(ae_builder_activation_param(b, NAN), AE_ERR_RANGE);
        assert_int_equal(ae_builder_activation_param(b, 2.5), AE_OK);
        assert_int_equal(ae_builder_activation(b, (ae_activation)7), AE_ERR_INVALID_ARG);
        ae_builder_free(b);
    }
}

/* Output sizes by Keras' rules (Conv2D strides; Conv2DTranspose, no output
 * padding), and values against PyTorch (conv2d / conv_transpose2d on the
 * same numbers, cropped or padded as TensorFlow does). */
static void test_strided_and_transposed_by_hand(void **state)
{
    static const struct {
        int transpose;
        size_t in, k, s;
        ae_padding pad;
        size_t out;
    } shapes[] = {
        {0, 28, 3, 2, AE_PAD_SAME, 14}, {0, 7, 3, 2, AE_PAD_SAME, 4},
        {0, 7, 3, 2, AE_PAD_VALID, 3},  {0, 8, 3, 3, AE_PAD_VALID, 2},
        {0, 5, 1, 2, AE_PAD_SAME, 3},   {1, 7, 4, 2, AE_PAD_SAME, 14},
        {1, 7, 4, 2, AE_PAD_VALID, 16}, {1, 3, 2, 3, AE_PAD_VALID, 9},
        {1, 3, 3, 1, AE_PAD_VALID, 5},  {1, 5, 3, 2, AE_PAD_SAME, 10},
    };
    float w[9], y[16];
    ae_builder *b;
    ae_model *m;
    (void)state;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        size_t d[3] = {shapes[i].in, shapes[i].in + 1, 2};
        assert_int_equal(ae_builder_create(&b, 3, d), AE_OK);
        if (shapes[i].transpose)
            assert_int_equal(ae_builder_conv2d_transpose(b, 3, shapes[i].k, shapes[i].s,
                                                         shapes[i].pad, AE_ACT_LINEAR), AE_OK);
        else
            assert_int_equal(ae_builder_conv2d_ex(b, 3, shapes[i].k, shapes[i].s, shapes[i].pad,
                                                  AE_ACT_LINEAR), AE_OK);
        assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
        assert_int_equal(ae_layer_output_dim(ae_model_layer(m, 0), 0), shapes[i].out);
        assert_int_equal(ae_layer_stride(ae_model_layer(m, 0)), shapes[i].s);
        ae_model_free(m);
        ae_builder_free(b);
    }
    for (int i = 0; i < 9; i++) w[i] = (float)(i + 1);
    { /* conv 3x3 stride 2 same on 4x4 (1..16): TF pads 0 above, 1 below */
        size_t d[3] = {4, 4, 1};
        float x[16];
        const float want[4] = {348, 252, 274, 175};
        for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);
        assert_int_equal(ae_builder_create(&b, 3, d), AE_OK);
        assert_int_equal(ae_builder_conv2d_ex(b, 1, 3, 2, AE_PAD_SAME, AE_ACT_LINEAR), AE_OK);
        assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
        assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, w, 9), AE_OK);
        assert_int_equal(ae_model_predict(m, x, 1, y, 4), AE_OK);
        assert_memory_equal(y, want, sizeof want);
        ae_model_free(m);
        ae_builder_free(b);
    }
    { /* transposed 3x3 stride 2 same on 2x2 (1..4): 4x4, the full 5x5 cropped at the end */
        size_t d[3] = {2, 2, 1};
        const float x[4] = {1, 2, 3, 4};
        const float want[16] = {1, 2, 5, 4, 4, 5, 14, 10, 10, 14, 36, 24, 12, 15, 34, 20};
        assert_int_equal(ae_builder_create(&b, 3, d), AE_OK);
        assert_int_equal(ae_builder_conv2d_transpose(b, 1, 3, 2, AE_PAD_SAME, AE_ACT_LINEAR), AE_OK);
        assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
        assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, w, 9), AE_OK);
        assert_int_equal(ae_model_predict(m, x, 1, y, 16), AE_OK);
        assert_memory_equal(y, want, sizeof want);
        ae_model_free(m);
        ae_builder_free(b);
    }
    { /* bad arguments */
        size_t d[3] = {4, 4, 1};
        assert_int_equal(ae_builder_create(&b, 3, d), AE_OK);
        assert_int_equal(ae_builder_conv2d_ex(b, 1, 3, 0, AE_PAD_SAME, AE_ACT_LINEAR), AE_ERR_RANGE);
        assert_int_equal(ae_builder_conv2d_ex(b, 1, 5, 2, AE_PAD_VALID, AE_ACT_LINEAR), AE_ERR_SHAPE);
        assert_int_equal(ae_builder_conv2d_transpose(b, 1, 3, 65, AE_PAD_SAME, AE_ACT_LINEAR), AE_ERR_RANGE);
        assert_int_equal(ae_builder_conv2d_transpose(b, 1, 3, 2, (ae_padding)5, AE_ACT_LINEAR), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_builder_layer_count(b), 0);
        ae_builder_free(b);
    }
}

static ae_status add_bn(ae_builder *b) { return ae_builder_batchnorm(b, 0.99, 1e-3); }

/* gamma, beta and the moving statistics away from their initial values */
static void randomise_bn(ae_model *m)
{
    ae_layer *L = &m->layers[0];
    ae_test_rng r;
    ae_test_rng_seed(&r, 9);
    ae_test_fill(&r, L->kernel, L->units, 0.5, 1.5);
    ae_test_fill(&r, L->bias, L->units, -0.3, 0.3);
    ae_test_fill(&r, L->moving_mean, L->units, -0.2, 0.2);
    ae_test_fill(&r, L->moving_var, L->units, 0.3, 1.2);
}

/* One-thread training pass over a model's batch statistics. */
typedef struct train_pass {
    ae__pass p;
    double red[2 * (2 * 64 + 1)];
    float state[2 * 64];
} train_pass;

static void train_pass_init(train_pass *tp, const ae_model *m)
{
    memset(tp, 0, sizeof *tp);
    assert_true(m->n_stats <= 2 * 64);
    tp->p.training = 1;
    tp->p.nt = 1;
    tp->p.red = tp->red;
    tp->p.red_stride = 2 * 64 + 1;
    tp->p.bn_state = tp->state;
}

/* Batch norm over dense features and conv channels: gradients by finite
 * differences in inference mode (moving statistics) and in training mode
 * (the batch's statistics, which depend on every row). */
static void test_batchnorm_gradients(void **state)
{
    static const case_def bn_cases[] = {
        {"batchnorm features", 1, {5}, add_bn},
        {"batchnorm channels 3x2x3", 3, {3, 2, 3}, add_bn},
    };
    (void)state;
    for (size_t c = 0; c < 2; c++) {
        ae_model *m = one_layer(bn_cases[c].rank, bn_cases[c].dims, bn_cases[c].add);
        train_pass tp;
        assert_int_equal(ae_model_param_count(m), 2 * m->layers[0].units);
        randomise_bn(m);
        print_message("gradient check: %s, inference\n", bn_cases[c].name);
        gradient_check(m, 3);
        train_pass_init(&tp, m);
        print_message("gradient check: %s, training\n", bn_cases[c].name);
        gradient_check_pass(m, 4, &tp.p);
        ae_model_free(m);
    }
}

/* Training normalises with the batch's mean and biased variance (worked by
 * hand) and moves the moving statistics by (1 - momentum); inference uses
 * them. */
static void test_batchnorm_by_hand(void **state)
{
    size_t dims[1] = {2};
    const float x[6] = {1, 10, 2, 20, 3, 60}; /* feature 0: 1,2,3; feature 1: 10,20,60 */
    const float gamma[2] = {2, 1}, beta[2] = {0.5f, 0};
    const float *mm, *mv;
    size_t cnt;
    float y[6], ws[1];
    ae_builder *b;
    ae_model *m;
    train_pass tp;
    (void)state;
    assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.9, 1e-3), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 1.5, 1e-3), AE_ERR_RANGE);
    assert_int_equal(ae_builder_batchnorm(b, 0.9, 0.0), AE_ERR_RANGE);
    assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
    assert_string_equal(ae_layer_name(ae_model_layer(m, 0)), "batch_normalization");
    {
        double momentum = 0, epsilon = 0;
        assert_int_equal(ae_layer_batchnorm(&momentum, &epsilon, ae_model_layer(m, 0)), AE_OK);
        assert_true(momentum == 0.9 && epsilon == 1e-3);
        assert_int_equal(ae_layer_sampling(NULL, ae_model_layer(m, 0)), AE_ERR_INVALID_ARG);
    }
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, gamma, 2), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_BIAS, beta, 2), AE_OK);
    train_pass_init(&tp, m);
    ae__layer_forward_pass(&m->layers[0], x, y, 3, ws, &tp.p);
    { /* feature 0: mean 2, var 2/3; feature 1: mean 30, var 1400/3 */
        const double s0 = 1 / sqrt(2.0 / 3 + 1e-3), s1 = 1 / sqrt(1400.0 / 3 + 1e-3);
        assert_float_equal(y[0], 2 * (1 - 2) * s0 + 0.5, 1e-5);
        assert_float_equal(y[2], 0.5, 1e-6);
        assert_float_equal(y[4], 2 * (3 - 2) * s0 + 0.5, 1e-5);
        assert_float_equal(y[1], (10 - 30) * s1, 1e-5);
        assert_float_equal(y[5], (60 - 30) * s1, 1e-5);
    }
    assert_int_equal(ae_layer_param(&mm, &cnt, ae_model_layer(m, 0), AE_PARAM_MOVING_MEAN), AE_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(ae_layer_param(&mv, &cnt, ae_model_layer(m, 0), AE_PARAM_MOVING_VARIANCE), AE_OK);
    assert_float_equal(mm[0], 0.1 * 2, 1e-6);
    assert_float_equal(mm[1], 0.1 * 30, 1e-5);
    assert_float_equal(mv[0], 0.9 + 0.1 * 2.0 / 3, 1e-6);
    assert_float_equal(mv[1], 0.9 + 0.1 * 1400.0 / 3, 1e-4);
    { /* inference: the moving statistics, set by hand */
        const float mean[2] = {1, 10}, var[2] = {4, 0.25f}, neg[2] = {1, -1};
        float out[2];
        assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_MOVING_MEAN, mean, 2), AE_OK);
        assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_MOVING_VARIANCE, var, 2), AE_OK);
        assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_MOVING_VARIANCE, neg, 2), AE_ERR_RANGE);
        assert_int_equal(ae_model_predict(m, x, 1, out, 2), AE_OK);
        assert_float_equal(out[0], 0.5, 1e-6);
        assert_float_equal(out[1], 0.0, 1e-6);
    }
    ae_model_free(m);
    ae_builder_free(b);
}

static ae_status add_dropout(ae_builder *b) { return ae_builder_dropout(b, 0.3); }
static ae_status add_gauss(ae_builder *b) { return ae_builder_gaussian_noise(b, 0.5, 0); }
static ae_status add_gauss_clip(ae_builder *b) { return ae_builder_gaussian_noise(b, 0.5, 1); }
static ae_status add_masking(ae_builder *b) { return ae_builder_masking_noise(b, 0.5); }
static ae_status add_noise_one(ae_builder *b) { return ae_builder_gaussian_noise(b, 1.0, 0); }

/* Dropout and noise: finite-difference checks of training passes (the same
 * draws in forward and backward), identity in inference, the draws' rates
 * and moments, and draws that follow the batch row, not the call. */
static void test_dropout_and_noise(void **state)
{
    static const case_def noise_cases[] = {
        {"dropout 0.3", 1, {9}, add_dropout},
        {"gaussian noise 0.5", 3, {2, 3, 2}, add_gauss},
        {"gaussian noise 0.5 clipped", 1, {9}, add_gauss_clip},
        {"masking noise 0.5", 1, {9}, add_masking},
    };
    enum { N = 200, D = 50 };
    float *x = malloc(N * D * sizeof *x), *y = malloc(N * D * sizeof *y);
    float *y2 = malloc(N * D * sizeof *y2);
    (void)state;
    for (size_t c = 0; c < 4; c++) {
        ae_model *m = one_layer(noise_cases[c].rank, noise_cases[c].dims, noise_cases[c].add);
        train_pass tp;
        train_pass_init(&tp, m);
        tp.p.key = ae__noise_key(1, 2, 0);
        print_message("gradient check: %s, training\n", noise_cases[c].name);
        gradient_check_pass(m, 3, &tp.p);
        gradient_check(m, 3);
        ae_model_free(m);
    }
    for (int kind = 0; kind < 3; kind++) {
        size_t dims[1] = {D};
        ae_model *m = one_layer(1, dims, kind == 0 ? add_dropout : kind == 1 ? add_gauss : add_masking);
        train_pass tp;
        double zeros = 0, sum = 0, sq = 0, scaled = 0;
        float ws[1];
        for (size_t i = 0; i < N * D; i++) x[i] = 0.25f + 0.5f * (float)(i % 7) / 7.0f;
        train_pass_init(&tp, m);
        tp.p.key = ae__noise_key(42, 0, 0);
        ae__layer_forward_pass(&m->layers[0], x, y, N, ws, &tp.p);
        for (size_t i = 0; i < N * D; i++) {
            const double d = (double)y[i] - x[i];
            zeros += y[i] == 0.0f;
            scaled += y[i] != 0.0f && fabs(y[i] - x[i] / 0.7) < 1e-6;
            sum += d;
            sq += d * d;
        }
        if (kind == 0) { /* 30% dropped, the rest scaled by 1 / 0.7 */
            assert_true(fabs(zeros / (N * D) - 0.3) < 0.02);
            assert_true(zeros + scaled == N * D);
        } else if (kind == 1) { /* mean 0, stddev 0.5 */
            assert_true(fabs(sum / (N * D)) < 0.02);
            assert_true(fabs(sqrt(sq / (N * D)) - 0.5) < 0.02);
        } else {
            assert_true(fabs(zeros / (N * D) - 0.5) < 0.02);
        }
        /* rows 5.. drawn again from row0 = 5 are the same */
        tp.p.row0 = 5;
        ae__layer_forward_pass(&m->layers[0], x + 5 * D, y2, N - 5, ws, &tp.p);
        assert_memory_equal(y2, y + 5 * D, (N - 5) * D * sizeof *y);
        /* another key, other draws; inference: the identity */
        tp.p.row0 = 0;
        tp.p.key = ae__noise_key(43, 0, 0);
        ae__layer_forward_pass(&m->layers[0], x, y2, N, ws, &tp.p);
        assert_true(memcmp(y, y2, N * D * sizeof *y) != 0);
        assert_int_equal(ae_model_predict(m, x, N, y2, N * D), AE_OK);
        assert_memory_equal(y2, x, N * D * sizeof *x);
        ae_model_free(m);
    }
    {
        ae_builder *b;
        size_t dims[1] = {4};
        assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
        assert_int_equal(ae_builder_dropout(b, 1.0), AE_ERR_RANGE);
        assert_int_equal(ae_builder_masking_noise(b, -0.1), AE_ERR_RANGE);
        assert_int_equal(ae_builder_gaussian_noise(b, 0.1, 2), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_builder_gaussian_noise(b, 0.1, 1), AE_OK);
        assert_float_equal(ae_layer_noise_param(NULL), 0.0, 0);
        assert_int_equal(ae_builder_gaussian_noise(b, 0.2, 0), AE_OK);
        {
            ae_model *m;
            assert_int_equal(ae_builder_dense(b, 4, AE_ACT_SIGMOID), AE_OK);
            assert_int_equal(ae_builder_mark_code(b), AE_OK);
            assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
            assert_int_equal(ae_layer_noise_clipped(ae_model_layer(m, 0)), 1);
            assert_int_equal(ae_layer_noise_clipped(ae_model_layer(m, 1)), 0);
            assert_int_equal(ae_layer_noise_clipped(ae_model_layer(m, 2)), 0);
            assert_int_equal(ae_layer_noise_clipped(NULL), 0);
            ae_model_free(m);
        }
        ae_builder_free(b);
    }
    free(x); free(y); free(y2);
}

static ae_status add_activity(ae_builder *b) { return ae_builder_activity_regularization(b, 0.3, 0.2); }
static ae_status add_activity_l1(ae_builder *b) { return ae_builder_activity_regularization(b, 0.5, 0); }

/* Activity regularisation: the identity; its penalty l1 sum|a| + l2 sum a^2
 * worked by hand; finite-difference checks of its gradient over the batch's
 * rows (features and an image), none without batch rows (inference). */
static void test_activity_regularization(void **state)
{
    static const case_def ar_cases[] = {
        {"activity regularization l1 0.3 l2 0.2", 1, {7}, add_activity},
        {"activity regularization l1 0.5, image 2x3x2", 3, {2, 3, 2}, add_activity_l1},
    };
    const float x[6] = {1.0f, -2.0f, 0.0f, 0.5f, -0.25f, 3.0f};
    float y[6], dy[6], dx[6], ws[1];
    double l1, l2;
    char buf[2048];
    size_t dims[1] = {3};
    ae_builder *b;
    ae_model *m;
    train_pass tp;
    (void)state;
    for (size_t c = 0; c < 2; c++) {
        m = one_layer(ar_cases[c].rank, ar_cases[c].dims, ar_cases[c].add);
        train_pass_init(&tp, m);
        tp.p.batch_rows = 3;
        print_message("gradient check: %s, training\n", ar_cases[c].name);
        gradient_check_pass(m, 3, &tp.p);
        /* a thread's share of a larger batch: the gradient of the batch's mean */
        tp.p.batch_rows = 8;
        gradient_check_pass(m, 3, &tp.p);
        gradient_check(m, 3); /* no batch rows: the mean over the 3 rows passed */
        ae_model_free(m);
    }
    assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
    assert_int_equal(ae_builder_activity_regularization(b, -1e-3, 0), AE_ERR_RANGE);
    assert_int_equal(ae_builder_activity_regularization(b, 0, NAN), AE_ERR_RANGE);
    assert_int_equal(ae_builder_activity_regularization(b, 0.1, 0.01), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
    assert_string_equal(ae_layer_name(ae_model_layer(m, 0)), "activity_regularization");
    assert_int_equal(ae_layer_kind_of(ae_model_layer(m, 0)), AE_LAYER_ACTIVITY_REGULARIZATION);
    assert_int_equal(ae_layer_param_count(ae_model_layer(m, 0)), 0);
    assert_int_equal(ae_layer_activity_regularization(&l1, &l2, ae_model_layer(m, 0)), AE_OK);
    assert_true(l1 == 0.1 && l2 == 0.01);
    assert_int_equal(ae_layer_activity_regularization(&l1, NULL, NULL), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_model_summary(m, buf, sizeof buf, NULL), AE_OK);
    assert_non_null(strstr(buf, "activity_regularization (ActivityRegularization)"));
    assert_non_null(strstr(buf, "l1=0.1 l2=0.01"));
    /* rows (1, -2, 0) and (0.5, -0.25, 3): sum|a| = 6.75, sum a^2 = 14.3125 */
    ae__layer_forward(&m->layers[0], x, y, 2, ws);
    assert_memory_equal(y, x, sizeof x);
    assert_float_equal(ae__layer_penalty(&m->layers[0], x, y, 2), 0.1 * 6.75 + 0.01 * 14.3125, 1e-12);
    /* backward over a batch of 4 rows: dy + (l1 sign(a) + 2 l2 a) / 4, sign(0) = 0 */
    train_pass_init(&tp, m);
    tp.p.batch_rows = 4;
    for (int i = 0; i < 6; i++) dy[i] = 0.5f;
    ae__layer_backward_pass(&m->layers[0], x, y, dy, 0, dx, NULL, NULL, 2, ws, &tp.p);
    for (int i = 0; i < 6; i++) {
        const double sign = x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0;
        assert_float_equal(dx[i], 0.5 + (0.1 * sign + 0.02 * x[i]) / 4, 1e-6);
    }
    ae_model_free(m);
    ae_builder_free(b);
}

static ae_status add_sampling(ae_builder *b) { return ae_builder_sampling(b, 0.7); }
static ae_status add_sampling_code(ae_builder *b)
{
    ae_status st = ae_builder_sampling(b, 1.0 / 784);
    return st == AE_OK ? ae_builder_mark_code(b) : st;
}

/* The sampling layer of a VAE: finite differences of training passes (eps
 * fixed by the key, as forward and backward draw it) and inference passes,
 * both with the weighted KL term, divided by the pass's or the batch's
 * rows; the KL term and the draws by hand; the builder's checks. */
static void test_sampling(void **state)
{
    size_t dims[1] = {6};
    ae_model *m = one_layer(1, dims, add_sampling);
    const ae_layer *L = &m->layers[0];
    train_pass tp;
    (void)state;
    assert_int_equal(ae_layer_output_size(L), 3);
    assert_int_equal(ae_layer_param_count(L), 0);
    assert_string_equal(ae_layer_kind_name(AE_LAYER_SAMPLING), "sampling");
    {
        double kl = 0;
        assert_int_equal(ae_layer_sampling(&kl, L), AE_OK);
        assert_true(kl == 0.7);
        assert_int_equal(ae_layer_sampling(&kl, NULL), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_layer_batchnorm(NULL, NULL, L), AE_ERR_INVALID_ARG);
    }
    train_pass_init(&tp, m);
    tp.p.key = ae__noise_key(1, 2, 0);
    print_message("gradient check: sampling, training\n");
    gradient_check_pass(m, 3, &tp.p);
    tp.p.batch_rows = 8; /* a thread's 3 rows of a batch of 8 */
    print_message("gradient check: sampling, training, 3 rows of 8\n");
    gradient_check_pass(m, 3, &tp.p);
    print_message("gradient check: sampling, inference\n");
    gradient_check(m, 3);
    {
        /* by hand: row 0 mean (0.5, -1, 0), log_var (0, ln 4, -1) */
        const float x[12] = {0.5f, -1.0f, 0.0f, 0.0f, 1.3862944f, -1.0f,
                             0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        float y[6], y2[6], ws[1];
        const double kl0 = 0.5 * ((0.25 + 0 - 0) + (1 + 3 - 1.3862944) + (0 + exp(-1.0) - 1 + 1));
        assert_true(fabs(ae__layer_penalty(L, x, y, 1) - 0.7 * kl0) < 1e-6);
        /* a standard normal posterior costs nothing */
        assert_true(ae__layer_penalty(L, x + 6, y, 1) == 0.0);
        ae__layer_forward_pass(L, x, y, 2, ws, NULL); /* inference: the mean */
        assert_true(y[0] == 0.5f && y[1] == -1.0f && y[2] == 0.0f && y[3] == 0.0f);
        /* training: mean + exp(log_var / 2) eps, eps the Gaussian noise's draw */
        ae__layer_forward_pass(L, x, y, 2, ws, &tp.p);
        {
            size_t gdims[1] = {3};
            ae_model *g = one_layer(1, gdims, add_noise_one);
            const float zero[6] = {0};
            ae__layer_forward_pass(&g->layers[0], zero, y2, 2, ws, &tp.p);
            for (int e = 0; e < 3; e++) {
                assert_true(fabs(y[e] - (x[e] + expf(0.5f * x[3 + e]) * y2[e])) < 1e-6);
                assert_true(fabs(y[3 + e] - y2[3 + e]) < 1e-6); /* mean 0, log_var 0 */
            }
            ae_model_free(g);
        }
    }
    ae_model_free(m);
    {
        ae_builder *b;
        size_t odd[1] = {5}, img[3] = {2, 2, 2};
        assert_int_equal(ae_builder_create(&b, 1, odd), AE_OK);
        assert_int_equal(ae_builder_sampling(b, 1.0), AE_ERR_SHAPE);
        ae_builder_free(b);
        assert_int_equal(ae_builder_create(&b, 3, img), AE_OK);
        assert_int_equal(ae_builder_sampling(b, 1.0), AE_ERR_SHAPE);
        ae_builder_free(b);
        assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
        assert_int_equal(ae_builder_sampling(b, -1.0), AE_ERR_RANGE);
        assert_int_equal(ae_builder_sampling(b, NAN), AE_ERR_RANGE);
        assert_int_equal(ae_builder_sampling(NULL, 1.0), AE_ERR_INVALID_ARG);
        assert_int_equal(ae_builder_layer_count(b), 0);
        assert_int_equal(add_sampling_code(b), AE_OK);
        ae_builder_free(b);
    }
}

/* The vectorised sigmoid agrees with libm's to float rounding, and an
 * element's bits do not depend on where the loop starts or ends: every
 * element scored alone (the scalar remainder) and in runs starting at 0 and
 * at 3 (vector bodies, then remainders) gives the same bits. */
static void test_fast_sigmoid(void **state)
{
    float v[4001], alone, shifted[4001];
    (void)state;
    for (int i = 0; i <= 4000; i++) v[i] = -100.0f + 0.05f * (float)i;
    memcpy(shifted, v, sizeof v);
    ae__sigmoid_inplace(v, 4001);
    ae__sigmoid_inplace(shifted + 3, 4001 - 3);
    for (int i = 0; i <= 4000; i++) {
        double x = (double)(-100.0f + 0.05f * (float)i), want = 1.0 / (1.0 + exp(-x));
        if (fabs(v[i] - want) > 2e-7 + 1e-6 * want) fail_msg("sigmoid(%g) = %.9g, want %.9g", x, v[i], want);
        alone = (float)x;
        ae__sigmoid_inplace(&alone, 1);
        if (memcmp(&alone, &v[i], sizeof alone) != 0 || (i >= 3 && memcmp(&shifted[i], &v[i], sizeof alone) != 0))
            fail_msg("sigmoid(%g): %.9g in bulk, %.9g alone, %.9g from offset 3", x, v[i], alone, shifted[i]);
    }
}

/* The backward products of a dense layer (dense_grad.c) for x (n, k), W (k,
 * units) and a random dy: the weight gradient's two tilings give the same
 * bits, and both products agree with double-precision sums. */
static void check_dense_grads(ae_test_rng *r, const float *x, size_t n, size_t k, const float *w,
                              size_t units)
{
    float *dy = malloc(n * units * sizeof *dy), *g8 = malloc(k * units * sizeof *g8);
    float *g16 = malloc(k * units * sizeof *g16), *dx = malloc(n * k * sizeof *dx);
    assert_non_null(dy); assert_non_null(g8); assert_non_null(g16); assert_non_null(dx);
    ae_test_fill(r, dy, n * units, -1, 1);
    ae__dense_grad_weights_tiled(x, n, k, dy, units, g8, 0);
    ae__dense_grad_weights_tiled(x, n, k, dy, units, g16, 1);
    assert_memory_equal(g8, g16, k * units * sizeof *g8);
    ae__dense_grad_input(dy, n, units, w, k, dx);
    for (size_t i = 0; i < k; i++)
        for (size_t u = 0; u < units; u++) {
            double want = 0;
            for (size_t row = 0; row < n; row++) want += (double)x[row * k + i] * dy[row * units + u];
            assert_float_equal(g8[i * units + u], want, 1e-5 * (1 + fabs(want)));
        }
    for (size_t row = 0; row < n; row++)
        for (size_t i = 0; i < k; i++) {
            double want = 0;
            for (size_t u = 0; u < units; u++) want += (double)dy[row * units + u] * w[i * units + u];
            assert_float_equal(dx[row * k + i], want, 1e-5 * (1 + fabs(want)));
        }
    free(dy); free(g8); free(g16); free(dx);
}

/* The dense product's two tilings (16-float vectors for AVX-512, 8-float
 * ones otherwise) give the same bits, on any shape: both run here whatever
 * the CPU, one of them slowly. The backward products too (check_dense_grads). */
static void test_dense_tilings_agree(void **state)
{
    /* n, k, units: rows narrower than a vector (3), tails of 4 and 7 columns */
    const size_t shapes[][3] = {{1, 1, 1},   {7, 19, 15}, {13, 32, 37}, {6, 5, 16},
                                {9, 33, 784}, {3, 9, 3},   {4, 6, 20}};
    ae_test_rng r;
    (void)state;
    ae_test_rng_seed(&r, 11);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t n = shapes[s][0], k = shapes[s][1], units = shapes[s][2];
        float *x = malloc(n * k * sizeof *x), *w = malloc(k * units * sizeof *w);
        float *bias = malloc(units * sizeof *bias), *y8 = malloc(n * units * sizeof *y8);
        float *y16 = malloc(n * units * sizeof *y16);
        assert_non_null(x); assert_non_null(w); assert_non_null(bias);
        assert_non_null(y8); assert_non_null(y16);
        ae_test_fill(&r, x, n * k, -1, 1);
        ae_test_fill(&r, w, k * units, -1, 1);
        ae_test_fill(&r, bias, units, -1, 1);
        ae__dense_forward_tiled(x, n, k, w, units, bias, y8, 0);
        ae__dense_forward_tiled(x, n, k, w, units, bias, y16, 1);
        assert_memory_equal(y8, y16, n * units * sizeof *y8);
        check_dense_grads(&r, x, n, k, w, units);
        free(x); free(w); free(bias); free(y8); free(y16);
    }
}

/* The 16-channel convolution kernels in both forms (one 16-float vector, or
 * a pair of 8-float ones) give the same bits, forward and parameter
 * gradients: 16 filters over 1 and 8 channels, and 1 filter over 16. */
static void test_conv_kernel_forms_agree(void **state)
{
    const size_t layer_shapes[][2] = {{1, 16}, {8, 16}, {16, 1}}; /* cin, cout */
    const size_t h = 6, w = 5, n = 3;
    ae_test_rng r;
    (void)state;
    ae_test_rng_seed(&r, 12);
    for (size_t c = 0; c < sizeof layer_shapes / sizeof layer_shapes[0]; c++) {
        const size_t cin = layer_shapes[c][0], cout = layer_shapes[c][1], nk = 3 * 3 * cin * cout;
        size_t dims[3] = {h, w, cin};
        ae_builder *b;
        ae_model *m;
        const ae_layer *L;
        float *x = malloc(n * h * w * cin * sizeof *x), *kernel = malloc(nk * sizeof *kernel);
        float *bias = malloc(cout * sizeof *bias), *dz = malloc(n * h * w * cout * sizeof *dz);
        float *y[2], *gk[2], gb[2][16];
        assert_non_null(x); assert_non_null(kernel); assert_non_null(bias); assert_non_null(dz);
        assert_int_equal(ae_builder_create(&b, 3, dims), AE_OK);
        assert_int_equal(ae_builder_conv2d(b, cout, 3, AE_PAD_SAME, AE_ACT_RELU), AE_OK);
        assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
        ae_test_fill(&r, kernel, nk, -1, 1);
        ae_test_fill(&r, bias, cout, -0.5, 0.5);
        ae_test_fill(&r, x, n * h * w * cin, 0, 1);
        ae_test_fill(&r, dz, n * h * w * cout, -1, 1);
        assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, kernel, nk), AE_OK);
        assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_BIAS, bias, cout), AE_OK);
        L = ae_model_layer(m, 0);
        assert_non_null(L);
        for (int wide = 0; wide < 2; wide++) {
            y[wide] = malloc(n * h * w * cout * sizeof *y[wide]);
            gk[wide] = calloc(nk, sizeof *gk[wide]);
            assert_non_null(y[wide]); assert_non_null(gk[wide]);
            memset(gb[wide], 0, sizeof gb[wide]);
            ae__conv_forward_form(L, x, y[wide], 0, n, 1, wide);
            ae__conv_grad_params_form(L, x, dz, gk[wide], gb[wide], 0, n, wide);
        }
        assert_memory_equal(y[0], y[1], n * h * w * cout * sizeof *y[0]);
        assert_memory_equal(gk[0], gk[1], nk * sizeof *gk[0]);
        assert_memory_equal(gb[0], gb[1], cout * sizeof gb[0][0]);
        for (int wide = 0; wide < 2; wide++) {
            free(y[wide]);
            free(gk[wide]);
        }
        free(x); free(kernel); free(bias); free(dz);
        ae_model_free(m);
        ae_builder_free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_layer_gradient),
        cmocka_unit_test(test_conv_by_hand),
        cmocka_unit_test(test_conv_same_padding_by_hand),
        cmocka_unit_test(test_dense_by_hand),
        cmocka_unit_test(test_pool_and_upsample_by_hand),
        cmocka_unit_test(test_fast_sigmoid),
        cmocka_unit_test(test_dense_tilings_agree),
        cmocka_unit_test(test_conv_kernel_forms_agree),
        cmocka_unit_test(test_activations_by_hand),
        cmocka_unit_test(test_strided_and_transposed_by_hand),
        cmocka_unit_test(test_batchnorm_gradients),
        cmocka_unit_test(test_batchnorm_by_hand),
        cmocka_unit_test(test_dropout_and_noise),
        cmocka_unit_test(test_activity_regularization),
        cmocka_unit_test(test_sampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
