/* libFuzzer harness: the .npy reader (ae_npy_info, ae_npy_load,
 * ae_npy_load_rows, ae_npy_read_rows) on arbitrary bytes. An accepted file
 * is read back a few ways and the results are compared. */
#include <math.h>

#include "fuzz_common.h"

#define MAX_FLOATS ((size_t)1 << 24) /* skip work on huge (but valid) arrays */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input("npy", data, size);
    ae_npy_dtype dtype = AE_NPY_U8;
    int rank = 0;
    size_t dims[AE_TENSOR_MAX_RANK], total = 1, row;
    ae_tensor *t = NULL, *head = NULL;
    ae_status st = ae_npy_info(&dtype, &rank, dims, path);
    fuzz_check_load_status(st);
    st = ae_npy_load(&t, path, AE_NPY_U8_UNIT);
    fuzz_check_load_status(st);
    if (st != AE_OK) {
        if (t) abort(); /* out is NULL on failure */
        return 0;
    }
    if (rank < 1 || rank > AE_TENSOR_MAX_RANK || (dtype != AE_NPY_U8 && dtype != AE_NPY_F32))
        abort(); /* ae_npy_load accepted what ae_npy_info refused? */
    for (int i = 0; i < rank; i++) total *= dims[i];
    if (ae_tensor_size(t) != total) abort();
    row = total / dims[0];
    /* the first rows again, through the other two readers */
    if (total <= MAX_FLOATS) {
        size_t n = dims[0] < 3 ? dims[0] : 3;
        float *buf = malloc(n * row * sizeof(float));
        const float *all = ae_tensor_data_const(t);
        if (!buf) abort();
        if (ae_npy_read_rows(path, 0, n, AE_NPY_U8_UNIT, buf, n * row) != AE_OK) abort();
        if (memcmp(buf, all, n * row * sizeof(float)) != 0) {
            /* NaN payloads compare unequal with == but equal with memcmp */
            abort();
        }
        if (ae_npy_load_rows(&head, path, n, AE_NPY_U8_UNIT) != AE_OK) abort();
        if (ae_tensor_size(head) != n * row ||
            memcmp(ae_tensor_data_const(head), all, n * row * sizeof(float)) != 0)
            abort();
        ae_tensor_free(head);
        /* reading past the end is refused */
        if (ae_npy_read_rows(path, dims[0], 1, 1.0f, buf, n * row) != AE_ERR_RANGE) abort();
        free(buf);
    }
    ae_tensor_free(t);
    return 0;
}
