/* libFuzzer harness: the model-file loader (ae_model_load). An accepted
 * model predicts one row, gives an encoder that encodes it (when it has a
 * code layer), and survives a save/load round trip unchanged. */
#include "fuzz_common.h"

/* predict only models whose largest layer is small enough to stay fast */
#define MAX_LAYER_FLOATS ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed = fuzz_fix_crc(data, size);
    const char *path = fuzz_write_input("model", fixed, size);
    ae_model *m = NULL, *m2 = NULL;
    size_t in, out, biggest = 0, code;
    ae_status st;
    free(fixed);
    st = ae_model_load(&m, path);
    fuzz_check_load_status(st);
    if (st != AE_OK) {
        if (m) abort();
        return 0;
    }
    in = ae_model_input_size(m);
    out = ae_model_output_size(m);
    if (in == 0 || out == 0 || ae_model_layer_count(m) == 0) abort();
    biggest = in;
    for (size_t i = 0; i < ae_model_layer_count(m); i++) {
        size_t o = ae_layer_output_size(ae_model_layer(m, i));
        if (o > biggest) biggest = o;
    }
    if (ae_model_set_threads(m, 1) != AE_OK) abort();
    if (biggest <= MAX_LAYER_FLOATS) {
        float *x = calloc(in, sizeof(float)), *y = malloc(out * sizeof(float));
        if (!x || !y) abort();
        for (size_t i = 0; i < in; i++) x[i] = (float)(i % 7) * 0.125f;
        st = ae_model_predict(m, x, 1, y, out);
        if (st != AE_OK && st != AE_ERR_NOMEM && st != AE_ERR_NUMERIC) abort();
        if (ae_model_code_layer(&code, m) == AE_OK) {
            ae_encoder *e = NULL;
            st = ae_encoder_create(&e, m);
            if (st == AE_OK) {
                size_t cs = ae_encoder_code_size(e);
                float *c = malloc(cs * sizeof(float));
                if (!c) abort();
                st = ae_encoder_encode(e, x, 1, c, cs);
                if (st != AE_OK && st != AE_ERR_NOMEM && st != AE_ERR_NUMERIC) abort();
                free(c);
                ae_encoder_free(e);
            } else if (st != AE_ERR_NOMEM) {
                abort();
            }
        }
        free(x);
        free(y);
    }
    /* round trip: the saved file loads back to the same parameters */
    if (ae_model_save(m, g_fuzz_out) != AE_OK) abort();
    if (ae_model_load(&m2, g_fuzz_out) != AE_OK) abort();
    if (ae_model_param_count(m2) != ae_model_param_count(m) ||
        ae_model_layer_count(m2) != ae_model_layer_count(m))
        abort();
    ae_model_free(m2);
    ae_model_free(m);
    return 0;
}
