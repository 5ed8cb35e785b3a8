/* Data sources (source.c) as the training loop (train.c) uses them. */
#ifndef AUTOENC_SOURCE_IMPL_H
#define AUTOENC_SOURCE_IMPL_H

#include "internal.h"

/* Rows rows[0..n) into x (and y for a source with targets): AE_OK,
 * AE_ERR_IO (a read or the callback failed) or AE_ERR_NUMERIC (a float32
 * value read is not finite). Sets no message: it runs on worker threads. */
ae_status ae__source_fill(const ae_source *s, const size_t *rows, size_t n, float *x, float *y);
/* Asks the kernel to start reading rows rows[0..n) of a file source
 * (posix_fadvise WILLNEED: the reads run in parallel, in the background);
 * nothing for other sources. */
void ae__source_hint(const ae_source *s, const size_t *rows, size_t n);
/* The rows of an in-memory float32 source (and its targets, NULL without),
 * which the training step gathers itself; NULL for any other source. */
const float *ae__source_floats(const ae_source *s, const float **y);

/* A background thread that fills one batch while the caller computes:
 * submit hands it a job (the buffers belong to the thread until wait
 * returns), wait returns the job's status. One job at a time. next/n_next
 * (may be NULL/0) are rows of batches to come: at the first job, and at
 * every job once one was slow (its rows came from the disk, not the page
 * cache), the thread first asks the kernel to fetch those (ae__source_hint).
 * block_rows > 0 (AE_TRAIN_SHUFFLE_BLOCK, with `window` blocks per window):
 * a .npy source is read by whole blocks into a window of them the thread
 * reserves at start (AE_ERR_NOMEM if it cannot); other sources as before. */
typedef struct ae__prefetch ae__prefetch;
ae_status ae__prefetch_start(ae__prefetch **out, const ae_source *src, size_t block_rows,
                             size_t window);
void ae__prefetch_submit(ae__prefetch *p, const size_t *rows, size_t n, float *x, float *y,
                         const size_t *next, size_t n_next);
ae_status ae__prefetch_wait(ae__prefetch *p);
void ae__prefetch_stop(ae__prefetch *p); /* waits for a pending job; NULL accepted */

/* The layout of a .npy file after the checks of ae_npy_info (npy.c). */
typedef struct ae__npy_layout {
    int dtype;            /* AE_NPY_U8 / AE_NPY_F32 */
    size_t rows, row_elems, row_bytes;
    uint64_t data_offset; /* where row 0 starts */
} ae__npy_layout;
ae_status ae__npy_layout_of(const char *path, ae__npy_layout *out);

#endif /* AUTOENC_SOURCE_IMPL_H */
