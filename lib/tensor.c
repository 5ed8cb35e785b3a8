/* Tensors: float32, rank 1..4, row-major (images NHWC). */
#include <string.h>

#include "internal.h"

struct ae_tensor {
    int rank;
    size_t dims[AE_TENSOR_MAX_RANK];
    size_t size;  /* product of dims */
    float *data;
    int owned;    /* data allocated by us (size * sizeof(float) bytes) */
};

static ae_status check_shape(const char *fn, int rank, const size_t *dims, size_t *size)
{
    size_t total = 1;
    if (rank < 1 || rank > AE_TENSOR_MAX_RANK || !dims)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "rank must be 1..%d with dims given",
                        AE_TENSOR_MAX_RANK);
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0)
            return ae__fail(NULL, AE_ERR_SHAPE, "dimension %d is zero", i);
        if (ae__mul_size(total, dims[i], &total) != 0 ||
            total > SIZE_MAX / sizeof(float))
            return ae__fail(NULL, AE_ERR_RANGE, "shape too large");
    }
    *size = total;
    return AE_OK;
}

static ae_status make(ae_tensor **out, float *data, int copy_from_null_or_data, int rank,
                      const size_t *dims, const float *src, const char *fn)
{
    ae_tensor *t;
    size_t size;
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if ((st = check_shape(fn, rank, dims, &size)) != AE_OK) return st;
    t = ae__calloc(1, sizeof *t);
    if (!t) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->size = size;
    if (copy_from_null_or_data) {
        t->data = ae__calloc(size, sizeof(float));
        if (!t->data) {
            ae__free(t, sizeof *t);
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu floats", size);
        }
        t->owned = 1;
        if (src) memcpy(t->data, src, size * sizeof(float));
    } else {
        t->data = data;
    }
    *out = t;
    return AE_OK;
}

ae_status ae_tensor_create(ae_tensor **out, int rank, const size_t *dims)
{
    AE__ENTER();
    return make(out, NULL, 1, rank, dims, NULL, "ae_tensor_create");
}

ae_status ae_tensor_from_data(ae_tensor **out, const float *data, int rank, const size_t *dims)
{
    AE__ENTER();
    if (!data) {
        if (out) *out = NULL;
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "data is NULL");
    }
    return make(out, NULL, 1, rank, dims, data, "ae_tensor_from_data");
}

ae_status ae_tensor_wrap(ae_tensor **out, float *data, int rank, const size_t *dims)
{
    AE__ENTER();
    if (!data) {
        if (out) *out = NULL;
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "data is NULL");
    }
    return make(out, data, 0, rank, dims, NULL, "ae_tensor_wrap");
}

void ae_tensor_free(ae_tensor *t)
{
    if (!t) return;
    if (t->owned) ae__free(t->data, t->size * sizeof(float));
    ae__free(t, sizeof *t);
}

int ae_tensor_rank(const ae_tensor *t) { return t ? t->rank : 0; }
size_t ae_tensor_dim(const ae_tensor *t, int axis)
{
    return t && axis >= 0 && axis < t->rank ? t->dims[axis] : 0;
}
size_t ae_tensor_size(const ae_tensor *t) { return t ? t->size : 0; }
float *ae_tensor_data(ae_tensor *t) { return t ? t->data : NULL; }
const float *ae_tensor_data_const(const ae_tensor *t) { return t ? t->data : NULL; }

ae_status ae_tensor_reshape(ae_tensor *t, int rank, const size_t *dims)
{
    AE__ENTER();
    size_t size;
    ae_status st;
    if (!t) return ae__fail(NULL, AE_ERR_INVALID_ARG, "tensor is NULL");
    if ((st = check_shape("ae_tensor_reshape", rank, dims, &size)) != AE_OK) return st;
    if (size != t->size)
        return ae__fail(NULL, AE_ERR_SHAPE,
                        "%zu elements cannot become %zu", t->size, size);
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    return AE_OK;
}
