/* docs/conventions.md, the checkable parts: every fallible public function
 * reports its failures as "<its own name>: <text>", also when the failing
 * code is shared with other entry points, and names keys by name. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"

/* Runs a failing call and checks the message names the function called. */
#define EXPECT_FAIL(call, name)                                                              \
    do {                                                                                     \
        ae_status st_ = (call);                                                              \
        if (!ae_is_error(st_) || strncmp(ae_last_error(), name ": ", strlen(name) + 2) != 0) \
            fail_msg("%s: status %d, message '%s'", #call, (int)st_, ae_last_error());       \
    } while (0)

static const char *missing_path(void) { return "/nonexistent-dir-of-libautoenc-tests/file"; }

static void test_every_function_names_itself(void **state)
{
    ae_model *m = NULL, *out = NULL;
    ae_encoder *enc_out = NULL; /* failing constructors set their out-pointer to NULL */
    ae_index *idx_out = NULL;
    ae_builder *b = NULL;
    ae_encoder *enc = NULL;
    ae_index *idx = NULL;
    ae_tensor *t = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    ae_dataset *ds = NULL;
    size_t dims[4] = {0}, sz = 0;
    const float *cp = NULL;
    float x[784 * 2], y[784 * 2];
    double v = 0;
    int64_t iv = 0;
    int32_t lab = 0;
    ae_value_type vt;
    ae_preset preset;
    ae_npy_dtype dtype;
    int rank = 0;
    (void)state;
    memset(x, 0, sizeof x);

    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 1), AE_OK);
    assert_int_equal(ae_builder_create(&b, 1, (size_t[]){4}), AE_OK);
    assert_int_equal(ae_encoder_create(&enc, m), AE_OK);
    assert_int_equal(ae_index_create(&idx, AE_INDEX_BRUTE, AE_INDEX_L2, 4), AE_OK);
    assert_int_equal(ae_train_config_create(&cfg), AE_OK);
    assert_int_equal(ae_history_create(&h), AE_OK);

    /* common.h: the allocator cannot change while allocations are alive */
    EXPECT_FAIL(ae_set_allocator(NULL, NULL), "ae_set_allocator");
    /* tensor.h */
    EXPECT_FAIL(ae_tensor_create(&t, 0, dims), "ae_tensor_create");
    EXPECT_FAIL(ae_tensor_from_data(&t, NULL, 1, (size_t[]){1}), "ae_tensor_from_data");
    EXPECT_FAIL(ae_tensor_wrap(&t, NULL, 1, (size_t[]){1}), "ae_tensor_wrap");
    EXPECT_FAIL(ae_tensor_reshape(NULL, 1, (size_t[]){1}), "ae_tensor_reshape");
    /* layer.h */
    EXPECT_FAIL(ae_layer_param(&cp, &sz, NULL, AE_PARAM_KERNEL), "ae_layer_param");
    EXPECT_FAIL(ae_layer_activity_regularization(NULL, NULL, NULL), "ae_layer_activity_regularization");
    EXPECT_FAIL(ae_layer_batchnorm(NULL, NULL, NULL), "ae_layer_batchnorm");
    EXPECT_FAIL(ae_layer_sampling(NULL, NULL), "ae_layer_sampling");
    /* builder.h */
    EXPECT_FAIL(ae_builder_create(NULL, 1, (size_t[]){4}), "ae_builder_create");
    EXPECT_FAIL(ae_builder_dense(b, 0, AE_ACT_RELU), "ae_builder_dense");
    EXPECT_FAIL(ae_builder_conv2d(b, 4, 3, AE_PAD_SAME, AE_ACT_RELU), "ae_builder_conv2d");
    EXPECT_FAIL(ae_builder_maxpool2d(b, AE_PAD_SAME), "ae_builder_maxpool2d");
    EXPECT_FAIL(ae_builder_upsample2d(b), "ae_builder_upsample2d");
    EXPECT_FAIL(ae_builder_activation(b, (ae_activation)99), "ae_builder_activation");
    EXPECT_FAIL(ae_builder_activation_param(NULL, 0.1), "ae_builder_activation_param");
    EXPECT_FAIL(ae_builder_conv2d_ex(b, 4, 3, 2, AE_PAD_SAME, AE_ACT_RELU), "ae_builder_conv2d_ex");
    EXPECT_FAIL(ae_builder_conv2d_transpose(b, 4, 3, 2, AE_PAD_SAME, AE_ACT_RELU),
                "ae_builder_conv2d_transpose");
    EXPECT_FAIL(ae_builder_batchnorm(b, 2.0, 1e-3), "ae_builder_batchnorm");
    EXPECT_FAIL(ae_builder_dropout(b, 1.0), "ae_builder_dropout");
    EXPECT_FAIL(ae_builder_gaussian_noise(b, -1.0, 0), "ae_builder_gaussian_noise");
    EXPECT_FAIL(ae_builder_masking_noise(b, 1.0), "ae_builder_masking_noise");
    EXPECT_FAIL(ae_builder_activity_regularization(b, -1.0, 0), "ae_builder_activity_regularization");
    EXPECT_FAIL(ae_builder_sampling(b, -1.0), "ae_builder_sampling");
    EXPECT_FAIL(ae_builder_flatten(NULL), "ae_builder_flatten");
    EXPECT_FAIL(ae_builder_reshape(b, 1, (size_t[]){5}), "ae_builder_reshape");
    EXPECT_FAIL(ae_builder_mark_code(b), "ae_builder_mark_code");
    EXPECT_FAIL(ae_builder_build(&out, b, 1), "ae_builder_build");
    /* preset.h */
    EXPECT_FAIL(ae_preset_build(&out, (ae_preset)99, 1), "ae_preset_build");
    EXPECT_FAIL(ae_preset_from_name(&preset, "no such preset"), "ae_preset_from_name");
    /* model.h */
    EXPECT_FAIL(ae_model_clone(NULL, m), "ae_model_clone");
    EXPECT_FAIL(ae_model_code_layer(NULL, m), "ae_model_code_layer");
    EXPECT_FAIL(ae_model_predict(m, x, 2, y, 10), "ae_model_predict");
    EXPECT_FAIL(ae_model_decode(m, x, 0, y, 10), "ae_model_decode");
    EXPECT_FAIL(ae_model_forward(m, NULL, NULL), "ae_model_forward");
    EXPECT_FAIL(ae_model_set_threads(m, -1), "ae_model_set_threads");
    EXPECT_FAIL(ae_model_set_param(m, 0, (ae_param_kind)7, x, 1), "ae_model_set_param");
    EXPECT_FAIL(ae_model_summary(NULL, NULL, 0, NULL), "ae_model_summary");
    EXPECT_FAIL(ae_model_evaluate(&v, m, (ae_loss)9, x, NULL, 1), "ae_model_evaluate");
    EXPECT_FAIL(ae_model_save(m, missing_path()), "ae_model_save");
    EXPECT_FAIL(ae_model_load(&out, missing_path()), "ae_model_load");
    /* loss.h */
    EXPECT_FAIL(ae_loss_value(&v, (ae_loss)9, x, x, 4), "ae_loss_value");
    /* train.h */
    EXPECT_FAIL(ae_train_config_create(NULL), "ae_train_config_create");
    EXPECT_FAIL(ae_train_config_set_int(cfg, AE_TRAIN_EPOCHS, 0), "ae_train_config_set_int");
    EXPECT_FAIL(ae_train_config_set_double(cfg, AE_TRAIN_BETA1, 2.0), "ae_train_config_set_double");
    EXPECT_FAIL(ae_train_config_get_int(&iv, cfg, AE_TRAIN_BETA1), "ae_train_config_get_int");
    EXPECT_FAIL(ae_train_config_get_double(&v, cfg, AE_TRAIN_EPOCHS), "ae_train_config_get_double");
    EXPECT_FAIL(ae_train_param_type(&vt, (ae_train_param)0), "ae_train_param_type");
    EXPECT_FAIL(ae_train_param_int_bounds(NULL, NULL, AE_TRAIN_BETA1), "ae_train_param_int_bounds");
    EXPECT_FAIL(ae_train_param_double_bounds(NULL, NULL, AE_TRAIN_SEED),
                "ae_train_param_double_bounds");
    EXPECT_FAIL(ae_train_config_set_callback(NULL, NULL, NULL), "ae_train_config_set_callback");
    EXPECT_FAIL(ae_history_create(NULL), "ae_history_create");
    EXPECT_FAIL(ae_history_get(&v, h, 0, AE_HIST_TRAIN_LOSS), "ae_history_get");
    EXPECT_FAIL(ae_history_best_epoch(&sz, h), "ae_history_best_epoch");
    EXPECT_FAIL(ae_train_fit(m, cfg, x, NULL, 0, NULL), "ae_train_fit");
    EXPECT_FAIL(ae_train_fit_state(m, cfg, NULL, x, NULL, 2, NULL), "ae_train_fit_state");
    EXPECT_FAIL(ae_train_fit_state(m, cfg, NULL, x, NULL, 0, NULL), "ae_train_fit_state");
    EXPECT_FAIL(ae_train_config_set_reduce(NULL, NULL, NULL, NULL), "ae_train_config_set_reduce");
    EXPECT_FAIL(ae_train_state_create(NULL), "ae_train_state_create");
    EXPECT_FAIL(ae_train_fit_source(m, cfg, NULL, NULL, NULL, NULL), "ae_train_fit_source");
    /* source.h */
    EXPECT_FAIL(ae_source_create(NULL, 1, 1, 0, NULL, NULL, NULL), "ae_source_create");
    EXPECT_FAIL(ae_source_from_floats(NULL, x, NULL, 1, 1, 0), "ae_source_from_floats");
    EXPECT_FAIL(ae_source_from_u8(NULL, NULL, 1, 1), "ae_source_from_u8");
    EXPECT_FAIL(ae_source_open_npy(NULL, NULL, 0), "ae_source_open_npy");
    {
        const char *np[1];
        ae_source *src = NULL;
        size_t r0 = 5;
        np[0] = missing_path();
        EXPECT_FAIL(ae_source_open_npy(&src, np, 1), "ae_source_open_npy");
        assert_int_equal(ae_source_from_floats(&src, x, NULL, 2, 784, 0), AE_OK);
        EXPECT_FAIL(ae_source_read(src, &r0, 1, y, 784, NULL, 0), "ae_source_read");
        ae_source_free(src);
        /* rows of another width than the model's */
        assert_int_equal(ae_source_from_floats(&src, x, NULL, 4, 392, 0), AE_OK);
        EXPECT_FAIL(ae_train_fit_source(m, cfg, NULL, src, NULL, NULL), "ae_train_fit_source");
        ae_source_free(src);
    }
    EXPECT_FAIL(ae_train_state_set_checkpoint(NULL, "x"), "ae_train_state_set_checkpoint");
    EXPECT_FAIL(ae_train_state_save(NULL, m, "x"), "ae_train_state_save");
    EXPECT_FAIL(ae_train_state_load(NULL, NULL, missing_path()), "ae_train_state_load");
    {
        ae_train_state *ts = NULL;
        ae_model *tm = NULL;
        EXPECT_FAIL(ae_train_state_load(&ts, &tm, missing_path()), "ae_train_state_load");
        assert_int_equal(ae_train_state_create(&ts), AE_OK);
        EXPECT_FAIL(ae_train_state_save(ts, m, missing_path()), "ae_train_state_save");
        EXPECT_FAIL(ae_train_state_restore_best(ts, m), "ae_train_state_restore_best");
        ae_train_state_free(ts);
    }
    /* encoder.h */
    EXPECT_FAIL(ae_encoder_create(NULL, m), "ae_encoder_create");
    EXPECT_FAIL(ae_encoder_set_threads(enc, -1), "ae_encoder_set_threads");
    EXPECT_FAIL(ae_encoder_encode(enc, x, 2, y, 3), "ae_encoder_encode");
    EXPECT_FAIL(ae_encoder_save(enc, missing_path()), "ae_encoder_save");
    EXPECT_FAIL(ae_encoder_load(&enc_out, missing_path()), "ae_encoder_load");
    /* npy.h */
    EXPECT_FAIL(ae_npy_info(&dtype, &rank, dims, missing_path()), "ae_npy_info");
    EXPECT_FAIL(ae_npy_load(&t, missing_path(), 1.0f), "ae_npy_load");
    EXPECT_FAIL(ae_npy_load_rows(&t, missing_path(), 1, 1.0f), "ae_npy_load_rows");
    EXPECT_FAIL(ae_npy_read_rows(missing_path(), 0, 1, 1.0f, y, 784), "ae_npy_read_rows");
    EXPECT_FAIL(ae_npy_save_f32(missing_path(), x, 1, (size_t[]){4}), "ae_npy_save_f32");
    /* dataset.h */
    EXPECT_FAIL(ae_dataset_load(&ds, missing_path(), 0, 0.1, 1), "ae_dataset_load");
    EXPECT_FAIL(ae_dataset_category_counts(&sz, &sz, NULL, 0), "ae_dataset_category_counts");
    EXPECT_FAIL(ae_dataset_row_shape(&rank, dims, NULL), "ae_dataset_row_shape");
    EXPECT_FAIL(ae_dataset_train(&cp, NULL, &sz, NULL), "ae_dataset_train");
    EXPECT_FAIL(ae_dataset_test(&cp, NULL, &sz, NULL), "ae_dataset_test");
    EXPECT_FAIL(ae_dataset_sources(NULL, NULL, NULL), "ae_dataset_sources");
    /* index.h */
    EXPECT_FAIL(ae_index_create(&idx_out, (ae_index_backend)9, AE_INDEX_L2, 4), "ae_index_create");
    EXPECT_FAIL(ae_index_set_int(idx, AE_INDEX_HNSW_M, 8), "ae_index_set_int");
    EXPECT_FAIL(ae_index_get_int(&iv, idx, AE_INDEX_HNSW_M), "ae_index_get_int");
    EXPECT_FAIL(ae_index_param_type(&vt, (ae_index_param)0), "ae_index_param_type");
    EXPECT_FAIL(ae_index_param_int_bounds(NULL, NULL, (ae_index_param)0),
                "ae_index_param_int_bounds");
    EXPECT_FAIL(ae_index_search(idx, x, 1, 1, 0, NULL, &iv), "ae_index_search");
    EXPECT_FAIL(ae_index_merge_results(NULL, &iv, 1, 1, 1, NULL, 1, x, &iv), "ae_index_merge_results");
    EXPECT_FAIL(ae_index_check_dim(idx, 5), "ae_index_check_dim");
    EXPECT_FAIL(ae_index_label(&lab, idx, 0), "ae_index_label");
    EXPECT_FAIL(ae_index_id_at(&iv, idx, 0), "ae_index_id_at");
    EXPECT_FAIL(ae_index_label_at(&lab, idx, 0), "ae_index_label_at");
    EXPECT_FAIL(ae_index_save(idx, missing_path()), "ae_index_save");
    EXPECT_FAIL(ae_index_load(&idx_out, missing_path()), "ae_index_load");
    EXPECT_FAIL(ae_index_build(idx, x, 0, NULL, NULL), "ae_index_build");
    EXPECT_FAIL(ae_index_add(idx, x, 1, NULL, NULL), "ae_index_add");
    EXPECT_FAIL(ae_index_remove(idx, &iv, 1), "ae_index_remove");
    EXPECT_FAIL(ae_index_compact(idx), "ae_index_compact");
    EXPECT_FAIL(ae_index_search_filtered(idx, x, 1, 1, 0, NULL, NULL, NULL, &iv),
                "ae_index_search_filtered");
    EXPECT_FAIL(ae_index_save_to(idx, NULL, NULL), "ae_index_save_to");
    EXPECT_FAIL(ae_index_load_memory(&idx_out, x, 3), "ae_index_load_memory");
    EXPECT_FAIL(ae_index_map(&idx_out, missing_path(), AE_INDEX_CHECK_FULL), "ae_index_map");
    EXPECT_FAIL(ae_index_map_memory(&idx_out, x, 3, AE_INDEX_CHECK_BOUNDS),
                "ae_index_map_memory");

    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_index_free(idx);
    ae_encoder_free(enc);
    ae_builder_free(b);
    ae_model_free(m);
}

/* Shared code reports the entry point: encoding runs the model's predict,
 * a preset runs the builder, set_param reads the layer's parameters. */
static void test_shared_code_names_the_entry_point(void **state)
{
    ae_model *m;
    ae_encoder *enc;
    float x[784], codes[32];
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 1), AE_OK);
    assert_int_equal(ae_encoder_create(&enc, m), AE_OK);
    for (int i = 0; i < 784; i++) x[i] = 0.5f;
    x[17] = NAN;
    assert_int_equal(ae_encoder_encode(enc, x, 1, codes, 32), AE_ERR_NUMERIC);
    assert_true(strncmp(ae_last_error(), "ae_encoder_encode: ", 19) == 0);
    assert_null(strstr(ae_last_error(), "ae_model_predict"));
    assert_int_equal(ae_model_set_param(m, 0, (ae_param_kind)5, x, 1), AE_ERR_INVALID_ARG);
    assert_true(strncmp(ae_last_error(), "ae_model_set_param: ", 20) == 0);
    assert_null(strstr(ae_last_error(), "ae_layer_param"));
    assert_string_equal(ae_model_errmsg(m), ae_last_error());
    assert_int_equal(ae_encoder_set_threads(enc, 1000), AE_ERR_RANGE);
    assert_true(strncmp(ae_last_error(), "ae_encoder_set_threads: ", 24) == 0);
    assert_null(strstr(ae_last_error(), "ae_model_set_threads"));
    ae_encoder_free(enc);
    ae_model_free(m);
}

/* A size whose computation overflows is reported as an overflow, not as
 * the wrapped product. */
static void test_overflow_is_not_printed_wrapped(void **state)
{
    ae_model *m;
    float x[784], y[784];
    char wrapped[32];
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 1), AE_OK);
    memset(x, 0, sizeof x);
    assert_int_equal(ae_model_predict(m, x, SIZE_MAX / 2, y, 784), AE_ERR_RANGE);
    snprintf(wrapped, sizeof wrapped, "%zu", (SIZE_MAX / 2) * (size_t)784);
    assert_null(strstr(ae_last_error(), wrapped));
    assert_non_null(strstr(ae_last_error(), "overflow"));
    ae_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_function_names_itself),
        cmocka_unit_test(test_shared_code_names_the_entry_point),
        cmocka_unit_test(test_overflow_is_not_printed_wrapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
