/*
 * libautoenc: numpy .npy files.
 *
 * A reader and a writer for numpy's .npy files (format versions 1.0, 2.0 and
 * 3.0). The reader accepts little-endian C-order arrays of uint8 ('|u1' or
 * '<u1') or float32 ('<f4') of rank 1 to AE_TENSOR_MAX_RANK and returns
 * float32; anything else (other dtypes, big-endian data, fortran_order
 * arrays, zero-sized dimensions, a file whose length does not match its
 * shape, a malformed header) is refused with AE_ERR_FORMAT and a message
 * naming the file. Sizes are checked against the file length, with overflow
 * checks, before anything is allocated. The writer writes float32 arrays
 * atomically (a temporary file renamed into place).
 *
 * In an array of rank r the first dimension counts rows and a row is the
 * product of the other dimensions (a 1-D array has rows of one value), so
 * (N, 784), (N, 1, 784) and (N, 28, 28) all are N rows of 784 values.
 *
 * Memory: ae_npy_load* return tensors the caller frees with ae_tensor_free;
 * ae_npy_read_rows writes to a caller buffer.
 *
 * Threading: these functions keep no state and may be called concurrently
 * (on different output files for ae_npy_save_f32).
 */
#ifndef AUTOENC_NPY_H
#define AUTOENC_NPY_H

#include "common.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Element types of .npy files the reader understands. Values are pinned. */
typedef enum ae_npy_dtype {
    AE_NPY_U8 = 1, /**< unsigned 8-bit integers, descr '|u1' or '<u1' */
    AE_NPY_F32 = 2 /**< little-endian IEEE float32, descr '<f4' */
} ae_npy_dtype;

/** Scale that maps uint8 pixels 0..255 onto [0, 1] (pass as @p u8_scale). */
#define AE_NPY_U8_UNIT (1.0f / 255.0f)

/**
 * Reads only the header of a .npy file and checks that the file length
 * matches it.
 *
 * @param dtype  receives AE_NPY_U8 or AE_NPY_F32 (may be NULL).
 * @param rank   receives the rank, 1..AE_TENSOR_MAX_RANK (may be NULL).
 * @param dims   receives @p rank dimensions (may be NULL; otherwise room for
 *               AE_TENSOR_MAX_RANK values; unused entries are set to 0).
 * @param path   the file.
 * @return AE_OK; AE_ERR_INVALID_ARG for a NULL path; AE_ERR_IO when the file
 *         cannot be opened or read; AE_ERR_FORMAT for anything the reader
 *         does not accept.
 */
AE_API ae_status ae_npy_info(ae_npy_dtype *dtype, int *rank, size_t *dims, const char *path);

/**
 * Loads a whole .npy file as a new float32 tensor of the file's shape.
 *
 * @param out       receives the tensor (NULL on failure); free it with
 *                  ae_tensor_free.
 * @param path      the file.
 * @param u8_scale  uint8 values v become v * u8_scale (1.0f keeps 0..255,
 *                  AE_NPY_U8_UNIT gives [0, 1]); must be finite. float32
 *                  files are returned unchanged and ignore it.
 * @return AE_OK, or the errors of ae_npy_info, AE_ERR_RANGE for a non-finite
 *         scale, AE_ERR_NOMEM.
 */
AE_API ae_status ae_npy_load(ae_tensor **out, const char *path, float u8_scale);

/**
 * Like ae_npy_load but keeps only the first @p max_rows rows (0 = all): the
 * tensor's first dimension is min(rows in the file, max_rows). Only those
 * rows are read from the file; the whole file is still validated against
 * its header.
 */
AE_API ae_status ae_npy_load_rows(ae_tensor **out, const char *path, size_t max_rows,
                                  float u8_scale);

/**
 * Reads rows @p first_row .. @p first_row + @p n_rows - 1 of a .npy file into
 * a caller buffer, converted to float32 as ae_npy_load does.
 *
 * @param dst      receives n_rows * (values per row) floats.
 * @param dst_len  capacity of @p dst in floats; too small gives AE_ERR_RANGE.
 * @return AE_OK; AE_ERR_RANGE when the rows are not all in the file or do
 *         not fit in @p dst; the errors of ae_npy_info otherwise.
 */
AE_API ae_status ae_npy_read_rows(const char *path, size_t first_row, size_t n_rows,
                                  float u8_scale, float *dst, size_t dst_len);

/**
 * Writes a float32 array as a .npy file (format 1.0, '<f4', C order; format
 * 2.0 only when the header would not fit in 1.0). The file is written to a
 * temporary name beside @p path and renamed into place, so a failure leaves
 * an existing file untouched. A new file gets the mode fopen would give it
 * (0666 less the umask); a replaced file keeps its permission bits. A
 * read-only target (no write bit, or a file the caller may not write) or one
 * that is not a regular file is not replaced: AE_ERR_IO, and it stays as it
 * was (docs/reliability.md).
 *
 * @param path  the file to create or replace.
 * @param data  product(dims) floats, row-major.
 * @param rank  1..AE_TENSOR_MAX_RANK.
 * @param dims  @p rank dimensions, each > 0.
 * @return AE_OK; AE_ERR_INVALID_ARG for NULL arguments or a bad rank or a zero
 *         dimension; AE_ERR_RANGE when the size overflows; AE_ERR_IO.
 */
AE_API ae_status ae_npy_save_f32(const char *path, const float *data, int rank,
                                 const size_t *dims);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_NPY_H */
