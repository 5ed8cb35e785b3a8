/* Encoders: the layers up to the code, with copied weights, giving the same
 * codes as the model's own code layer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn.h"


static void test_code_sizes_and_values(void **state)
{
    const ae_preset presets[3] = {AE_PRESET_SIMPLE, AE_PRESET_DEEP, AE_PRESET_CONV};
    const size_t code_sizes[3] = {32, 32, 128};
    (void)state;
    for (int p = 0; p < 3; p++) {
        ae_model *m;
        ae_encoder *e;
        ae__workspace *ws;
        size_t code;
        const size_t n = 5;
        float x[5 * 784], codes[5 * 128];
        for (size_t i = 0; i < n * 784; i++) x[i] = (float)((i * 13) % 17) / 16.0f;
        assert_int_equal(ae_preset_build(&m, presets[p], 4), AE_OK);
        assert_int_equal(ae_encoder_create(&e, m), AE_OK);
        assert_int_equal(ae_encoder_code_size(e), code_sizes[p]);
        assert_int_equal(ae_encoder_input_size(e), 784);
        assert_int_equal(ae_encoder_encode(e, x, n, codes, sizeof codes / sizeof *codes), AE_OK);
        /* the same numbers as the full model's code-layer activations */
        assert_int_equal(ae_model_code_layer(&code, m), AE_OK);
        assert_int_equal(ae__workspace_create(m, n, 1, &ws), AE_OK);
        ae__model_forward_ws(m, ws, x, n);
        assert_memory_equal(codes, ws->acts[code], n * code_sizes[p] * sizeof(float));
        ae__workspace_free(ws);
        /* the encoder owns a copy: changing or freeing the model leaves it alone */
        m->params[0] += 1.0f;
        ae_model_free(m);
        {
            float again[5 * 128];
            assert_int_equal(ae_encoder_encode(e, x, n, again, sizeof again / sizeof *again), AE_OK);
            assert_memory_equal(codes, again, n * code_sizes[p] * sizeof(float));
        }
        ae_encoder_free(e);
    }
}

static void test_conv_code_shape(void **state)
{
    ae_model *m;
    ae_encoder *e;
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_CONV, 1), AE_OK);
    assert_int_equal(ae_encoder_create(&e, m), AE_OK);
    assert_int_equal(ae_encoder_code_rank(e), 3);
    assert_int_equal(ae_encoder_code_dim(e, 0), 4);
    assert_int_equal(ae_encoder_code_dim(e, 1), 4);
    assert_int_equal(ae_encoder_code_dim(e, 2), 8);
    assert_int_equal(ae_model_layer_count(ae_encoder_model(e)), 6);
    ae_encoder_free(e);
    ae_model_free(m);
}

static void test_errors(void **state)
{
    ae_builder *b;
    ae_model *m;
    ae_encoder *e = (ae_encoder *)1;
    size_t in[1] = {4};
    float x[4] = {0}, c[2];
    (void)state;
    assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(b, 2, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
    assert_int_equal(ae_encoder_create(&e, m), AE_ERR_STATE);
    assert_null(e);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    ae_model_free(m);
    assert_int_equal(ae_builder_build(&m, b, 1), AE_OK);
    assert_int_equal(ae_encoder_create(&e, m), AE_OK);
    assert_int_equal(ae_encoder_encode(e, x, 1, c, 1), AE_ERR_SHAPE);
    assert_int_equal(ae_encoder_encode(e, x, 1, c, 2), AE_OK);
    assert_int_equal(ae_encoder_encode(NULL, x, 1, c, 2), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_encoder_create(NULL, m), AE_ERR_INVALID_ARG);
    ae_encoder_free(e);
    ae_encoder_free(NULL);
    ae_model_free(m);
    ae_builder_free(b);
}

/* Codes that overflow to infinity (finite inputs, enormous finite weights)
 * are an error, not AE_OK with infinite codes. */
static void test_overflowing_codes(void **state)
{
    const size_t n = 100;
    ae_model *m;
    ae_encoder *e;
    float *x = malloc(n * 784 * sizeof *x), *codes = malloc(n * 32 * sizeof *codes);
    float *huge = malloc(784 * 32 * sizeof *huge);
    (void)state;
    for (size_t i = 0; i < n * 784; i++) x[i] = (float)(i % 5) / 5.0f;
    for (size_t i = 0; i < 784 * 32; i++) huge[i] = 3e38f;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 2), AE_OK);
    assert_int_equal(ae_model_set_param(m, 0, AE_PARAM_KERNEL, huge, 784 * 32), AE_OK);
    assert_int_equal(ae_encoder_create(&e, m), AE_OK);
    assert_int_equal(ae_encoder_encode(e, x, n, codes, n * 32), AE_ERR_NUMERIC);
    assert_non_null(strstr(ae_last_error(), "ae_encoder_encode"));
    ae_encoder_free(e);
    ae_model_free(m);
    free(x);
    free(codes);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_sizes_and_values),
        cmocka_unit_test(test_conv_code_shape),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_overflowing_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
