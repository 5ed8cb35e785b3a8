/* libFuzzer harness: the checkpoint loader (ae_train_state_load). Both
 * CRCs (the embedded model file's and the checkpoint's) are recomputed so
 * mutations reach the parsers. An accepted checkpoint saves again and loads
 * back to the same position and parameters. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed = malloc(size ? size : 1);
    const char *path;
    ae_train_state *s = NULL, *s2 = NULL;
    ae_model *m = NULL, *m2 = NULL;
    uint64_t model_len = 0;
    ae_status st;
    if (!fixed) abort();
    memcpy(fixed, data, size);
    if (size >= 24) memcpy(&model_len, fixed + 16, 8);
    if (model_len >= 16 && model_len <= size - 24) {
        uint8_t *inner = fuzz_fix_crc(fixed + 24, (size_t)model_len);
        memcpy(fixed + 24, inner, (size_t)model_len);
        free(inner);
    }
    {
        uint8_t *outer = fuzz_fix_crc(fixed, size);
        free(fixed);
        fixed = outer;
    }
    path = fuzz_write_input("checkpoint", fixed, size);
    free(fixed);
    st = ae_train_state_load(&s, &m, path);
    fuzz_check_load_status(st);
    if (st != AE_OK) {
        if (s || m) abort();
        return 0;
    }
    if (ae_train_state_save(s, m, g_fuzz_out) != AE_OK) abort();
    if (ae_train_state_load(&s2, &m2, g_fuzz_out) != AE_OK) abort();
    if (ae_train_state_epoch(s2) != ae_train_state_epoch(s) ||
        ae_train_state_step(s2) != ae_train_state_step(s) ||
        ae_model_param_count(m2) != ae_model_param_count(m))
        abort();
    ae_train_state_free(s2);
    ae_model_free(m2);
    ae_train_state_free(s);
    ae_model_free(m);
    return 0;
}
