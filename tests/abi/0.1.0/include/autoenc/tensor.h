/*
 * libautoenc: tensors.
 *
 * A tensor is a dense float32 array of rank 1 to AE_TENSOR_MAX_RANK, stored in
 * row-major (C) order. Images are NHWC: (batch, height, width, channels), so a
 * batch of 28x28 grey drawings is (N, 28, 28, 1) and its memory is identical
 * to the (N, 784) matrix of flattened rows.
 *
 * Ownership: ae_tensor_create and ae_tensor_from_data own their data;
 * ae_tensor_wrap borrows caller memory, which must outlive the tensor.
 * Threading: a tensor is used by one thread at a time when written; const
 * tensors can be read concurrently.
 */
#ifndef AUTOENC_TENSOR_H
#define AUTOENC_TENSOR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest rank a tensor can have. */
#define AE_TENSOR_MAX_RANK 4

/** Opaque tensor handle. */
typedef struct ae_tensor ae_tensor;

/** New zero-filled tensor of the given shape (every dim > 0). */
AE_API ae_status ae_tensor_create(ae_tensor **out, int rank, const size_t *dims);
/** New tensor holding a copy of @p data (as many floats as the shape has). */
AE_API ae_status ae_tensor_from_data(ae_tensor **out, const float *data, int rank,
                                     const size_t *dims);
/** New tensor viewing caller memory @p data without copying it. */
AE_API ae_status ae_tensor_wrap(ae_tensor **out, float *data, int rank, const size_t *dims);
/** Frees the tensor (and its data if owned). NULL is accepted. */
AE_API void ae_tensor_free(ae_tensor *t);

/** Rank (number of dimensions), 0 for NULL. */
AE_API int ae_tensor_rank(const ae_tensor *t);
/** Size of dimension @p axis, 0 if out of range. */
AE_API size_t ae_tensor_dim(const ae_tensor *t, int axis);
/** Number of elements (product of dims). */
AE_API size_t ae_tensor_size(const ae_tensor *t);
/** Writable data pointer, valid until the tensor is freed. */
AE_API float *ae_tensor_data(ae_tensor *t);
/** Read-only data pointer, valid until the tensor is freed. */
AE_API const float *ae_tensor_data_const(const ae_tensor *t);
/** Changes the shape in place; the element count must stay the same. */
AE_API ae_status ae_tensor_reshape(ae_tensor *t, int rank, const size_t *dims);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_TENSOR_H */
