/*
 * libautoenc: saving and loading models.
 *
 * A model file holds the architecture and the weights in one versioned,
 * checksummed binary file (layout in docs/formats.md). Saving writes a
 * temporary file beside the target, flushes it to disk and renames it over
 * the target, so a crash never leaves a half-written model; loading checks
 * the magic, the format version, the CRC-32 and every size before using
 * anything, and refuses a truncated or corrupt file with AE_ERR_FORMAT,
 * AE_ERR_CHECKSUM or AE_ERR_VERSION. A loaded model predicts bit-identical
 * outputs to the saved one.
 *
 * Threading: saving reads a const model and may run concurrently with other
 * const calls on it.
 */
#ifndef AUTOENC_IO_H
#define AUTOENC_IO_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Format version written by this library (model files). */
#define AE_MODEL_FORMAT_VERSION 1

/** Writes @p model to @p path atomically (temp file + fsync + rename). */
AE_API ae_status ae_model_save(const ae_model *model, const char *path);
/** Loads a model saved by ae_model_save into a new handle. */
AE_API ae_status ae_model_load(ae_model **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_IO_H */
