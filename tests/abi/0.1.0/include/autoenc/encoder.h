/*
 * libautoenc: encoders extracted from trained models.
 *
 * An encoder is the layers of a model up to and including its code
 * (bottleneck) layer, with a COPY of their trained weights: it is independent
 * of the model, which may be trained further or freed.
 *
 * Codes are written flattened, one row of ae_encoder_code_size() floats per
 * sample. Image codes keep NHWC order: for the convolutional reference model's
 * (4, 4, 8) code, element (y, x, c) is at index (y * 4 + x) * 8 + c, exactly
 * what Keras' Flatten gives for channels-last data.
 *
 * Threading: ae_encoder_encode takes a const encoder and is safe to call
 * concurrently from several threads.
 *
 * Reproducibility: a row's code is the same bits whatever the encoder's
 * thread count and however rows are grouped into calls, and equals the
 * model's own code-layer output for that row (ae_model_set_threads states
 * what is and is not promised).
 */
#ifndef AUTOENC_ENCODER_H
#define AUTOENC_ENCODER_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque encoder handle. */
typedef struct ae_encoder ae_encoder;

/**
 * New encoder from @p model's layers up to its code layer (weights copied).
 * AE_ERR_STATE if the model has no code layer marked (ae_builder_mark_code).
 */
AE_API ae_status ae_encoder_create(ae_encoder **out, const ae_model *model);
/** Frees the encoder. NULL is accepted. */
AE_API void ae_encoder_free(ae_encoder *enc);
/** Floats per input sample (784 for the reference models). */
AE_API size_t ae_encoder_input_size(const ae_encoder *enc);
/** Floats per code (32 for simple and deep, 128 for conv). */
AE_API size_t ae_encoder_code_size(const ae_encoder *enc);
/** Rank of the code's own shape before flattening (1 or 3). */
AE_API int ae_encoder_code_rank(const ae_encoder *enc);
/** Dimension @p axis of the code's shape before flattening ((4, 4, 8) for conv). */
AE_API size_t ae_encoder_code_dim(const ae_encoder *enc, int axis);
/** The encoder's layers as a read-only model (borrowed; lives as long as @p enc). */
AE_API const ae_model *ae_encoder_model(const ae_encoder *enc);

/** Threads for ae_encoder_encode, as ae_model_set_threads (copied from the model at creation). */
AE_API ae_status ae_encoder_set_threads(ae_encoder *enc, int n_threads);
/** The thread setting of ae_encoder_set_threads (0 = one per core). */
AE_API int ae_encoder_get_threads(const ae_encoder *enc);

/**
 * Encodes @p n samples @p x (n * input_size floats) into @p codes, whose
 * capacity in floats is @p codes_len (at least n * code_size).
 * AE_ERR_NUMERIC if @p x holds NaN or infinity or a code overflows to NaN or
 * infinity (finite inputs, weights too large for them); @p codes is then
 * partly written.
 */
AE_API ae_status ae_encoder_encode(const ae_encoder *enc, const float *x, size_t n, float *codes,
                                   size_t codes_len);

/**
 * Saves the encoder alone to @p path, as a model file (docs/formats.md) whose
 * last layer is the code layer, atomically as ae_model_save does. The file
 * stands alone: it can be loaded with ae_encoder_load (or ae_model_load)
 * without the model the encoder came from. The file's mode follows
 * ae_model_save: a new file gets 0666 less the umask, a replaced file keeps
 * its permission bits, and a read-only or non-regular target is not replaced
 * (AE_ERR_IO, left as it was).
 * @return AE_OK, AE_ERR_INVALID_ARG or AE_ERR_IO.
 */
AE_API ae_status ae_encoder_save(const ae_encoder *enc, const char *path);

/**
 * Loads an encoder into @p out from @p path: a file written by
 * ae_encoder_save, or a whole model's file (ae_model_save), whose layers up
 * to its code layer become the encoder.
 * @return the statuses of ae_model_load, and AE_ERR_STATE for a model file
 *         without a code layer.
 */
AE_API ae_status ae_encoder_load(ae_encoder **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_ENCODER_H */
