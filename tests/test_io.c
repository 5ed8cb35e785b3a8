/* Model files: round trips give bit-identical predictions; every corruption
 * is refused with the right status; a failed save leaves the old file. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "nn.h"
#include "test_support.h"

static void test_round_trip_bit_identical(void **state)
{
    const ae_preset presets[3] = {AE_PRESET_SIMPLE, AE_PRESET_DEEP, AE_PRESET_CONV};
    const char *path = ae_test_path("m.aem");
    (void)state;
    for (int p = 0; p < 3; p++) {
        ae_model *m, *back;
        float x[3 * 784], y1[3 * 784], y2[3 * 784];
        char s1[4096], s2[4096];
        for (int i = 0; i < 3 * 784; i++) x[i] = (float)((i * 37) % 101) / 100.0f;
        assert_int_equal(ae_preset_build(&m, presets[p], 100 + (uint64_t)p), AE_OK);
        assert_int_equal(ae_model_save(m, path), AE_OK);
        assert_int_equal(ae_model_load(&back, path), AE_OK);
        assert_int_equal(ae_model_param_count(back), ae_model_param_count(m));
        assert_memory_equal(back->params, m->params, m->n_params * sizeof(float));
        assert_int_equal(ae_model_predict(m, x, 3, y1, sizeof y1 / sizeof *y1), AE_OK);
        assert_int_equal(ae_model_predict(back, x, 3, y2, sizeof y2 / sizeof *y2), AE_OK);
        assert_memory_equal(y1, y2, sizeof y1);
        assert_int_equal(ae_model_summary(m, s1, sizeof s1, NULL), AE_OK);
        assert_int_equal(ae_model_summary(back, s2, sizeof s2, NULL), AE_OK);
        assert_string_equal(s1, s2);
        ae_model_free(m);
        ae_model_free(back);
    }
}

/* A model using every layer kind, so the loader replays them all. */
static ae_model *every_kind_model(void)
{
    ae_builder *b;
    ae_model *m;
    size_t in[3] = {6, 6, 2}, r[3] = {2, 2, 4};
    assert_int_equal(ae_builder_create(&b, 3, in), AE_OK);
    assert_int_equal(ae_builder_conv2d(b, 4, 3, AE_PAD_VALID, AE_ACT_RELU), AE_OK); /* 4x4x4 */
    assert_int_equal(ae_builder_maxpool2d(b, AE_PAD_VALID), AE_OK);                /* 2x2x4 */
    assert_int_equal(ae_builder_flatten(b), AE_OK);                                /* 16 */
    assert_int_equal(ae_builder_dense(b, 16, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_activation(b, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_reshape(b, 3, r), AE_OK);                          /* 2x2x4 */
    assert_int_equal(ae_builder_upsample2d(b), AE_OK);                             /* 4x4x4 */
    assert_int_equal(ae_builder_build(&m, b, 3), AE_OK);
    ae_builder_free(b);
    return m;
}

static void test_every_layer_kind_round_trip(void **state)
{
    ae_model *m = every_kind_model(), *back;
    const char *path = ae_test_path("kinds.aem");
    size_t code;
    (void)state;
    assert_int_equal(ae_model_save(m, path), AE_OK);
    assert_int_equal(ae_model_load(&back, path), AE_OK);
    assert_int_equal(ae_model_layer_count(back), 7);
    assert_int_equal(ae_model_code_layer(&code, back), AE_OK);
    assert_int_equal(code, 4);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(ae_layer_kind_of(ae_model_layer(back, i)), ae_layer_kind_of(ae_model_layer(m, i)));
    ae_model_free(m);
    ae_model_free(back);
}

static void expect_load_fails(const char *path, ae_status want)
{
    ae_model *m = (ae_model *)1;
    ae_status st = ae_model_load(&m, path);
    if (st != want) fail_msg("load: got %d (%s), wanted %d", st, ae_last_error(), want);
    assert_null(m);
    assert_true(strlen(ae_last_error()) > 0);
}

static void test_corrupt_files(void **state)
{
    ae_model *m;
    const char *good = ae_test_path("good.aem"), *bad = ae_test_path("bad.aem");
    unsigned char *b, *copy;
    size_t len;
    uint32_t v;
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_CONV, 5), AE_OK);
    assert_int_equal(ae_model_save(m, good), AE_OK);
    ae_model_free(m);
    b = ae_test_read_file(good, &len);
    assert_non_null(b);
    copy = malloc(len);
    /* truncated anywhere: header, layer records, weights, checksum. The
     * header implies the file's length, so this is AE_ERR_FORMAT, as from
     * every loader, never a checksum mismatch */
    for (size_t cut = 0; cut < len; cut += (cut < 600 ? 1 : 997)) {
        assert_int_equal(ae_test_write_file(bad, b, cut), 0);
        expect_load_fails(bad, AE_ERR_FORMAT);
    }
    /* one flipped bit anywhere after the version: a checksum mismatch,
     * except in the three fields that give the length (layer count L at 44,
     * parameter count P at 60 + 88 L, statistic count S after the P
     * parameters), which make it look truncated */
    {
        uint32_t n_layers;
        uint64_t n_params;
        size_t p_at, s_at;
        memcpy(&n_layers, b + 44, 4);
        p_at = 60 + 88 * (size_t)n_layers;
        memcpy(&n_params, b + p_at, 8);
        s_at = p_at + 8 + 4 * (size_t)n_params;
        for (size_t at = 12; at < len; at += 13) {
            int length_field = (at >= 44 && at < 48) || (at >= p_at && at < p_at + 8) ||
                               (at >= s_at && at < s_at + 8);
            memcpy(copy, b, len);
            copy[at] ^= 0x10;
            assert_int_equal(ae_test_write_file(bad, copy, len), 0);
            expect_load_fails(bad, length_field ? AE_ERR_FORMAT : AE_ERR_CHECKSUM);
        }
        for (int k = 0; k < 3; k++) {
            memcpy(copy, b, len);
            copy[k == 0 ? 44 : k == 1 ? p_at : s_at] ^= 0x10;
            assert_int_equal(ae_test_write_file(bad, copy, len), 0);
            expect_load_fails(bad, AE_ERR_FORMAT);
        }
    }
    assert_int_equal(ae_test_write_file(bad, b, len), 0);
    assert_int_equal(ae_test_patch_file(bad, 0, "X", 1), 0);
    expect_load_fails(bad, AE_ERR_FORMAT);
    assert_int_equal(ae_test_write_file(bad, b, len), 0);
    v = AE_MODEL_FORMAT_VERSION + 1;
    assert_int_equal(ae_test_patch_file(bad, 8, &v, 4), 0);
    expect_load_fails(bad, AE_ERR_VERSION);
    /* trailing garbage */
    assert_int_equal(ae_test_write_file(bad, b, len), 0);
    assert_int_equal(ae_test_append_file(bad, "extra", 5), 0);
    expect_load_fails(bad, AE_ERR_FORMAT);
    expect_load_fails(ae_test_path("missing.aem"), AE_ERR_IO);
    expect_load_fails(ae_test_tmpdir(), AE_ERR_IO); /* a directory */
    free(b);
    free(copy);
}

/* A well-formed file (valid checksum) that describes an impossible model. */
static void test_checksummed_but_invalid(void **state)
{
    ae_model *m;
    const char *good = ae_test_path("good2.aem"), *bad = ae_test_path("bad2.aem");
    unsigned char *b;
    size_t len;
    uint32_t kind = 99, layers = 100000;
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 5), AE_OK);
    assert_int_equal(ae_model_save(m, good), AE_OK);
    ae_model_free(m);
    b = ae_test_read_file(good, &len);
    assert_non_null(b);
    /* first layer's kind sits after magic, version, flags, rank, dims, count, has_code, code */
    memcpy(b + 8 + 4 + 4 + 4 + 24 + 4 + 4 + 8, &kind, 4);
    ae_test_fix_crc32(b, len);
    assert_int_equal(ae_test_write_file(bad, b, len), 0);
    expect_load_fails(bad, AE_ERR_FORMAT);
    free(b);
    b = ae_test_read_file(good, &len);
    assert_non_null(b);
    memcpy(b + 8 + 4 + 4 + 4 + 24, &layers, 4);
    ae_test_fix_crc32(b, len);
    assert_int_equal(ae_test_write_file(bad, b, len), 0);
    expect_load_fails(bad, AE_ERR_FORMAT);
    free(b);
}

static void test_failed_save_keeps_old_file(void **state)
{
    ae_model *a, *b, *back;
    const char *path = ae_test_path("keep.aem");
    (void)state;
    assert_int_equal(ae_preset_build(&a, AE_PRESET_SIMPLE, 1), AE_OK);
    assert_int_equal(ae_preset_build(&b, AE_PRESET_SIMPLE, 2), AE_OK);
    assert_int_equal(ae_model_save(a, path), AE_OK);
    /* NaN weights are refused before anything is written */
    b->params[3] = NAN;
    assert_int_equal(ae_model_save(b, path), AE_ERR_NUMERIC);
    assert_int_equal(ae_model_load(&back, path), AE_OK);
    assert_memory_equal(back->params, a->params, a->n_params * sizeof(float));
    ae_model_free(back);
    assert_int_equal(ae_model_save(a, ae_test_path("no/such/dir/m.aem")), AE_ERR_IO);
    assert_int_equal(ae_model_save(NULL, path), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_model_load(NULL, path), AE_ERR_INVALID_ARG);
    /* no temporary files are left behind */
    assert_int_equal(ae_test_find_names(ae_test_tmpdir(), "tmp", NULL, 0), 0);
    ae_model_free(a);
    ae_model_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bit_identical),
        cmocka_unit_test(test_every_layer_kind_round_trip),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_checksummed_but_invalid),
        cmocka_unit_test(test_failed_save_keeps_old_file),
    };
    return cmocka_run_group_tests(tests, ae_test_group_setup, ae_test_group_teardown);
}
