/*
 * libautoenc: models.
 *
 * A model is a sequence of layers with their weights: build one with
 * builder.h or preset.h, load one with ae_model_load, train it with train.h. Inputs and outputs are float rows: a batch
 * of n samples is n * ae_model_input_size() floats, row-major, images in NHWC
 * order (for 28x28x1 drawings that is simply n rows of 784 pixels).
 *
 * Threading: calls on a const ae_model (predict, evaluate, introspection) are
 * safe concurrently from several threads; training or loading into a model
 * needs exclusive use.
 */
#ifndef AUTOENC_MODEL_H
#define AUTOENC_MODEL_H

#include "common.h"
#include "layer.h"
#include "loss.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque model handle. */
typedef struct ae_model ae_model;

/** Frees the model and its layers. NULL is accepted. */
AE_API void ae_model_free(ae_model *m);
/** Independent deep copy (weights included) into @p out. */
AE_API ae_status ae_model_clone(ae_model **out, const ae_model *m);
/** Message of the last failure of a call that modified this model ("" if none). */
AE_API const char *ae_model_errmsg(const ae_model *m);

/** Number of layers. */
AE_API size_t ae_model_layer_count(const ae_model *m);
/** Borrowed layer @p i (NULL if out of range), valid as long as the model. */
AE_API const ae_layer *ae_model_layer(const ae_model *m, size_t i);
/** Total trainable parameters. */
AE_API size_t ae_model_param_count(const ae_model *m);
/** Rank of the per-sample input shape (1 or 3). */
AE_API int ae_model_input_rank(const ae_model *m);
/** Per-sample input dimension @p axis. */
AE_API size_t ae_model_input_dim(const ae_model *m, int axis);
/** Floats per input sample. */
AE_API size_t ae_model_input_size(const ae_model *m);
/** Floats per output sample. */
AE_API size_t ae_model_output_size(const ae_model *m);
/** Index of the code (bottleneck) layer into @p index; AE_ERR_STATE if none was marked. */
AE_API ae_status ae_model_code_layer(size_t *index, const ae_model *m);

/**
 * Runs the model on @p n samples @p x (n * input_size floats) and writes
 * n * output_size floats to @p y, whose capacity in floats is @p y_len.
 * Any n works; the work is done in internal batches. NaN or infinity in
 * @p x gives AE_ERR_NUMERIC, and so do outputs that overflow to NaN or
 * infinity from finite inputs (weights too large for them); @p y is then
 * partly written. Each output row is bit-identical whatever the thread count
 * and however the rows are split into calls (see ae_model_set_threads).
 */
AE_API ae_status ae_model_predict(const ae_model *m, const float *x, size_t n, float *y,
                                  size_t y_len);
/**
 * Decodes @p n codes: runs the layers after the code layer (the decoder
 * half of an autoencoder) in inference mode on @p codes, n rows of the code
 * layer's output size (ae_encoder_code_size of an encoder of @p m), and
 * writes n * ae_model_output_size(m) floats to @p y. ae_model_decode of
 * ae_encoder_encode's codes equals ae_model_predict of the inputs (for a
 * variational autoencoder: the reconstruction from the means); any code,
 * e.g. a point of a VAE's latent plane, can be decoded. Threads and
 * reproducibility as ae_model_predict.
 * @param m model with a code layer that is not its last layer
 * @param codes n rows of code-size floats
 * @param n rows, at least 1
 * @param y output buffer
 * @param y_len floats @p y holds, at least n * output size
 * @return AE_OK; AE_ERR_INVALID_ARG (NULL argument, n = 0), AE_ERR_STATE
 *         (no code layer, or the code layer is the last one), AE_ERR_SHAPE
 *         (@p y too small), AE_ERR_RANGE (n * output size overflows) or
 *         AE_ERR_NUMERIC (NaN or infinity in the codes or the outputs)
 */
AE_API ae_status ae_model_decode(const ae_model *m, const float *codes, size_t n, float *y,
                                 size_t y_len);
/**
 * Tensor form of predict: @p x is (N, input dims...) or (N, input_size);
 * @p y must hold N * output_size floats and keeps its own shape.
 */
AE_API ae_status ae_model_forward(const ae_model *m, const ae_tensor *x, ae_tensor *y);

/**
 * Threads used by ae_model_predict, ae_model_forward and encoders later
 * created from this model: large batches are split by rows over this many
 * threads. 0 (the default) means one per online core; 1 keeps all work on
 * the calling thread (what an embedder running its own thread pool wants).
 * Range 0..64.
 *
 * Reproducibility: a row's outputs are the same bits whatever this setting
 * and however rows are grouped into calls (one call of 1000 rows or 1000
 * calls of one), and while other threads predict or train: every output is
 * summed in one fixed order by the library's own kernels, built without
 * fused multiply-adds. Not promised: equal bits from another build of the
 * library, another compiler or another CPU family.
 *
 * Inference never calls BLAS, so it neither uses nor changes OpenBLAS'
 * process-wide thread count (only ae_train_fit does; see train.h
 * AE_TRAIN_THREADS and docs/threading.md).
 */
AE_API ae_status ae_model_set_threads(ae_model *m, int n_threads);
/** The thread setting of ae_model_set_threads (0 = one per core). */
AE_API int ae_model_get_threads(const ae_model *m);

/**
 * Replaces a parameter array of layer @p layer (layouts in layer.h) with
 * @p count floats, which must all be finite (a batch norm's moving variance
 * also not negative: AE_ERR_RANGE).
 */
AE_API ae_status ae_model_set_param(ae_model *m, size_t layer, ae_param_kind which,
                                    const float *data, size_t count);

/**
 * Writes a Keras-style summary table (layer, output shape, parameters, code
 * mark, totals) into @p buf of @p cap bytes, always NUL-terminated when cap >
 * 0. @p needed (may be NULL) receives the full length plus one; a short
 * buffer gets a truncated table and AE_ERR_RANGE.
 */
AE_API ae_status ae_model_summary(const ae_model *m, char *buf, size_t cap, size_t *needed);

/**
 * Mean loss of the model's predictions on @p n rows @p x against targets
 * @p y (NULL: targets = x, an autoencoder), into @p value, plus the mean
 * per row of the penalties layers add (a sampling layer's weighted KL term,
 * ae_builder_sampling), as the loss a fit reports.
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_SHAPE (a model whose output size
 *         differs from its input size with y NULL) or AE_ERR_NUMERIC (NaN or
 *         infinity in the inputs, the predictions or the loss).
 */
AE_API ae_status ae_model_evaluate(double *value, const ae_model *m, ae_loss loss,
                                   const float *x, const float *y, size_t n);

/* ---- files ----------------------------------------------------------------- */

/** Format version written by ae_model_save (model files, docs/formats.md). */
#define AE_MODEL_FORMAT_VERSION 2

/**
 * Writes @p m to @p path: architecture and weights in one versioned,
 * checksummed file (docs/formats.md). The file is written to a temporary
 * name beside @p path, flushed to disk and renamed over it, so a crash never
 * leaves a half-written model (docs/reliability.md). Safe concurrently with
 * other const calls on the model.
 * A new file gets the mode fopen would give it (0666 less the umask); a
 * replaced file keeps its permission bits. A read-only target (no write bit,
 * or a file the caller may not write) or one that is not a regular file is
 * not replaced: AE_ERR_IO, and it stays as it was (make it writable first).
 * @return AE_OK, AE_ERR_INVALID_ARG or AE_ERR_IO.
 */
AE_API ae_status ae_model_save(const ae_model *m, const char *path);

/**
 * Loads a model saved by ae_model_save (or an encoder saved by
 * ae_encoder_save) into a new handle @p out. The magic, the format version,
 * the CRC-32 and every size are checked before anything is used. A loaded
 * model predicts bit-identical outputs to the saved one.
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_IO (cannot be read, not a regular
 *         file), AE_ERR_FORMAT (not a model file, truncated or inconsistent),
 *         AE_ERR_VERSION (a newer format version), AE_ERR_CHECKSUM or
 *         AE_ERR_NOMEM.
 */
AE_API ae_status ae_model_load(ae_model **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_MODEL_H */
