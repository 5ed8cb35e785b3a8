/*
 * libautoenc: labelled data sets.
 *
 * An ae_dataset is a labelled data set made of a folder of "<category>.npy"
 * files (one category per file, e.g. Google's Quick, Draw! numpy_bitmap
 * files, read with npy.h), with a seeded, stratified train/test split.
 *
 * Memory: rows and labels are borrowed from the dataset.
 *
 * Threading: an ae_dataset is immutable once ae_dataset_load has returned:
 * every accessor takes a const handle and may be called from several threads
 * at once; only ae_dataset_free must not race with other calls on the same
 * dataset.
 */
#ifndef AUTOENC_DATASET_H
#define AUTOENC_DATASET_H

#include "common.h"
#include "npy.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- labelled data sets ----------------------------------------------------- */

/** Opaque, immutable labelled data set with a train/test split. */
typedef struct ae_dataset ae_dataset;

/** The test fraction the examples use: 10% of every category. */
#define AE_DATASET_DEFAULT_TEST_FRACTION 0.10

/**
 * Loads every "<category>.npy" file of directory @p dir as one labelled data
 * set and splits it into a training set and a test set.
 *
 * Categories: the regular files whose names end in ".npy" (names starting
 * with '.' are skipped), sorted by name in byte order; label i is the i-th
 * file, so labels are stable for a given set of files. The category name is
 * the file name without ".npy", with underscores shown as spaces
 * ("smiley_face.npy" is "smiley face").
 *
 * Rows: every file must hold uint8 or float32 arrays (see ae_npy_info) with
 * the same number of values per row (the row width, 784 for 28x28 images).
 * uint8 values are scaled by 1/255 onto [0, 1]; float32 values are taken as
 * they are and must be finite. Of each file the FIRST @p per_category rows
 * are used (0 = all rows), so a cap on a large file reads only its beginning.
 *
 * Split (stratified): a category of n rows gives
 * t = floor(n * test_fraction + 0.5) rows to the test set, adjusted to at
 * least 1 and at most n - 1 when n >= 2 and test_fraction > 0; a category of
 * one row goes to the training set. Which rows are held out is drawn at
 * random from the seed.
 *
 * Order: the training rows are shuffled across categories with the seed (so
 * any contiguous part, e.g. the last 20% taken as validation data, mixes all
 * categories); the test rows are grouped by label in ascending order and, in
 * a category, in the order of the file. Both orders are a pure function of
 * the files, @p per_category, @p test_fraction and @p seed.
 *
 * @param out            receives the data set (NULL on failure).
 * @param dir            the directory.
 * @param per_category   row cap per category, 0 for no cap.
 * @param test_fraction  in [0, 1); AE_DATASET_DEFAULT_TEST_FRACTION is 0.10.
 *                       0 puts every row in the training set.
 * @param seed           seed of the split and the shuffle.
 * @return AE_OK; AE_ERR_INVALID_ARG for NULL arguments; AE_ERR_RANGE for a
 *         test_fraction outside [0, 1) (or NaN); AE_ERR_IO when the directory
 *         or a file cannot be read or holds no .npy file; AE_ERR_FORMAT for a
 *         file the reader refuses; AE_ERR_SHAPE when row widths differ;
 *         AE_ERR_NUMERIC for a non-finite float32 value; AE_ERR_NOMEM.
 *         ae_last_error() has the details.
 */
AE_API ae_status ae_dataset_load(ae_dataset **out, const char *dir, size_t per_category,
                                 double test_fraction, uint64_t seed);

/** Frees the data set; every pointer borrowed from it becomes invalid. NULL is accepted. */
AE_API void ae_dataset_free(ae_dataset *ds);

/** Number of categories (labels are 0 .. count - 1); 0 for NULL. */
AE_API size_t ae_dataset_num_categories(const ae_dataset *ds);

/**
 * Display name of category @p label ("smiley face"), NULL when out of
 * range. Borrowed: valid until ae_dataset_free.
 */
AE_API const char *ae_dataset_category_name(const ae_dataset *ds, size_t label);

/**
 * Number of rows of category @p label in the training and the test set
 * (either pointer may be NULL).
 * @return AE_OK, AE_ERR_INVALID_ARG for NULL @p ds, AE_ERR_RANGE for a bad label.
 */
AE_API ae_status ae_dataset_category_counts(size_t *train, size_t *test, const ae_dataset *ds,
                                            size_t label);

/** Values per row (the product of the per-row shape), 0 for NULL. */
AE_API size_t ae_dataset_row_width(const ae_dataset *ds);

/**
 * Per-row shape: the file shape without its first dimension ((28, 28) for
 * (N, 28, 28) files, (784) for (N, 784), (1) for 1-D files). When the files
 * disagree (e.g. (N, 784) beside (N, 28, 28)) it is the flat (row_width).
 *
 * @param rank  receives the rank, 1..AE_TENSOR_MAX_RANK - 1.
 * @param dims  room for AE_TENSOR_MAX_RANK values; unused ones are set to 0.
 */
AE_API ae_status ae_dataset_row_shape(int *rank, size_t *dims, const ae_dataset *ds);

/**
 * The training set, borrowed (valid until ae_dataset_free). Any out pointer
 * may be NULL.
 *
 * @param rows    receives count * row_width floats, row-major.
 * @param labels  receives count labels (0 .. num_categories - 1).
 * @param count   receives the number of rows.
 */
AE_API ae_status ae_dataset_train(const float **rows, const int32_t **labels, size_t *count,
                                  const ae_dataset *ds);

/**
 * The test set, borrowed like ae_dataset_train. When test_fraction was 0 the
 * count is 0 and the row and label pointers are NULL.
 */
AE_API ae_status ae_dataset_test(const float **rows, const int32_t **labels, size_t *count,
                                 const ae_dataset *ds);

/**
 * Where each row came from: its row number in its category's file (the file
 * is given by the label). Borrowed arrays of count values, matching
 * ae_dataset_train and ae_dataset_test; either pointer may be NULL.
 */
AE_API ae_status ae_dataset_sources(const size_t **train_src, const size_t **test_src,
                                    const ae_dataset *ds);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_DATASET_H */
