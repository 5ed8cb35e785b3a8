/*
 * libautoenc: data sources for training.
 *
 * An ae_source hands the training loop the rows it asks for, by row index,
 * so a fit never needs the whole data set in memory (ae_train_fit_source in
 * train.h). Built in:
 *  - ae_source_from_floats: float32 rows in memory (ae_train_fit's path);
 *  - ae_source_from_u8: uint8 rows in memory, scaled by 1/255 on the fly
 *    (a quarter of the memory of float32 rows);
 *  - ae_source_open_npy: one or several .npy files (uint8 or float32), read
 *    with pread when a batch needs them (row by row, or by blocks under
 *    AE_TRAIN_SHUFFLE_BLOCK), never loaded whole;
 * and any other through ae_source_create and a fill callback.
 *
 * Rows are numbered 0 .. rows - 1; several .npy files are concatenated in
 * the order given. A source may carry targets (a second row of target_size
 * floats per row); without them the targets are the inputs (an autoencoder).
 *
 * Threading: a fit calls the fill function from one thread at a time, but not
 * necessarily the caller's: the next batch is prepared on a background
 * thread while the current step runs. A source must not be used by two
 * fits at once; ae_source_read is for one thread at a time too.
 */
#ifndef AUTOENC_SOURCE_H
#define AUTOENC_SOURCE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque data source. */
typedef struct ae_source ae_source;

/**
 * Fill callback of a custom source: writes rows @p rows[0 .. n) into @p x
 * (n * row_size floats, row after row, in the order given) and, when the
 * source has targets, their targets into @p y (n * target_size floats;
 * NULL for a source without targets). Every value must be finite. Return
 * 0, or non-zero for a failure (the fit then fails with AE_ERR_IO).
 */
typedef int (*ae_source_fill_fn)(void *user, const size_t *rows, size_t n, float *x, float *y);
/** Called once by ae_source_free for a custom source (may be NULL). */
typedef void (*ae_source_close_fn)(void *user);

/**
 * A custom source of @p rows rows of @p row_size floats, and of
 * @p target_size target floats per row (0: no targets).
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL out or fill, zero rows or
 *         row_size) or AE_ERR_NOMEM.
 */
AE_API ae_status ae_source_create(ae_source **out, size_t rows, size_t row_size,
                                  size_t target_size, ae_source_fill_fn fill,
                                  ae_source_close_fn close, void *user);

/**
 * In-memory float32 rows, borrowed (they must outlive the source):
 * @p x holds rows * row_size floats, @p y rows * target_size target floats
 * or is NULL (with target_size 0) for no targets.
 * @return AE_OK, AE_ERR_INVALID_ARG or AE_ERR_NOMEM.
 */
AE_API ae_status ae_source_from_floats(ae_source **out, const float *x, const float *y,
                                       size_t rows, size_t row_size, size_t target_size);

/**
 * In-memory uint8 rows (rows * row_size bytes, borrowed), read as
 * x * (1/255) (AE_NPY_U8_UNIT, as ae_npy_load and ae_dataset_load scale).
 * @return AE_OK, AE_ERR_INVALID_ARG or AE_ERR_NOMEM.
 */
AE_API ae_status ae_source_from_u8(ae_source **out, const uint8_t *x, size_t rows,
                                   size_t row_size);

/**
 * The rows of @p n_paths .npy files (uint8, scaled by 1/255, or float32),
 * concatenated in the order given; every file must have the same row width
 * (values per row). Only the headers are read here; rows are read with
 * pread when a batch needs them, so memory does not grow with the files:
 * one row per call, or under the block shuffle (AE_TRAIN_SHUFFLE_BLOCK) a
 * whole block per call into the fit's window of blocks.
 * float32 values are checked when read (a fit fails with AE_ERR_NUMERIC).
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_IO, AE_ERR_FORMAT (as
 *         ae_npy_info), AE_ERR_SHAPE (row widths differ) or AE_ERR_NOMEM.
 */
AE_API ae_status ae_source_open_npy(ae_source **out, const char *const *paths, size_t n_paths);

/** Frees a source (closing its files or calling its close callback). NULL is accepted. */
AE_API void ae_source_free(ae_source *src);
/** Number of rows (0 for NULL). */
AE_API size_t ae_source_rows(const ae_source *src);
/** Floats per input row (0 for NULL). */
AE_API size_t ae_source_row_size(const ae_source *src);
/** Target floats per row; 0 when the targets are the inputs. */
AE_API size_t ae_source_target_size(const ae_source *src);

/**
 * Reads rows @p rows[0 .. n) into @p x (capacity @p x_len floats, at least
 * n * row_size) and, for a source with targets, @p y (capacity @p y_len; may
 * be NULL otherwise).
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_RANGE (a row index out of range),
 *         AE_ERR_SHAPE (a buffer too small) or AE_ERR_IO (the fill failed).
 */
AE_API ae_status ae_source_read(const ae_source *src, const size_t *rows, size_t n, float *x,
                                size_t x_len, float *y, size_t y_len);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_SOURCE_H */
