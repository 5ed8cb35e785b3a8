/*
 * libautoenc internals shared between source files. Never installed, never
 * exported: every name here starts with ae__ (or is a struct body) and the
 * shared library hides it (visibility hidden + version script).
 */
#ifndef AUTOENC_INTERNAL_H
#define AUTOENC_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "autoenc/autoenc.h"
#include "compiler.h"

/* ---- memory: every allocation goes through the allocator hook ---------- */
void *ae__malloc(size_t n);               /* NULL on failure or n == 0 */
void *ae__calloc(size_t count, size_t n); /* zeroed; NULL on overflow too */
void *ae__realloc(void *p, size_t old_n, size_t new_n);
void ae__free(void *p, size_t n);         /* n: the size given at allocation */
/* 64-byte aligned blocks for SIMD-friendly float buffers; free with
 * ae__free_aligned(p, n) where n is the size requested. */
void *ae__malloc_aligned(size_t n);
void ae__free_aligned(void *p, size_t n);
/* a * b with overflow check: returns 0 and sets *out, or -1 on overflow */
int ae__mul_size(size_t a, size_t b, size_t *out);

/* ---- errors ---------------------------------------------------------------
 * Every message reads "<function>: <text>", where <function> is the public
 * function the caller called, so internal helpers shared by several entry
 * points never name one. Each public function that can fail starts with
 * AE__ENTER(), which records its __func__ for the calling thread; ae__fail
 * formats "<recorded name>: <fmt...>" into the thread-local last-error buffer
 * and, if handle_msg is non-NULL, into that handle's buffer of AE__MSG_CAP
 * bytes too, and returns status so callers can write `return ae__fail(...)`.
 * A public function that calls another public one (model loading goes
 * through the builder) wraps the call in AE__NESTED(...): the inner
 * AE__ENTER is then ignored and its failures carry the outer name. Worker
 * threads of the pool never call ae__fail; they return statuses. */
#define AE__MSG_CAP 256
void ae__api_enter(const char *name);
void ae__nest_push(void);
ae_status ae__nest_pop(ae_status status);
#define AE__ENTER() ae__api_enter(__func__)
#define AE__NESTED(call) (ae__nest_push(), ae__nest_pop(call))
/* The last message without its "<function>: " prefix, for wrapping it. */
const char *ae__last_error_text(void);
ae_status ae__fail(char *handle_msg, ae_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Copies the thread-local message into a handle's buffer (after a callee
 * already called ae__fail without the handle). */
void ae__keep_msg(char *handle_msg);

/* ---- deterministic random numbers (explicit state, no global RNG) ------ */
typedef struct ae__rng {
    uint64_t s[4]; /* xoshiro256** state */
} ae__rng;
void ae__rng_seed(ae__rng *r, uint64_t seed);
uint64_t ae__rng_next(ae__rng *r);
double ae__rng_uniform(ae__rng *r);            /* [0, 1) */
size_t ae__rng_below(ae__rng *r, size_t n);    /* [0, n), unbiased */
void ae__shuffle(ae__rng *r, size_t *v, size_t n); /* Fisher-Yates */

/* ---- checksums for file formats ------------------------------------------ */
uint32_t ae__crc32(uint32_t crc, const void *data, size_t n); /* start with 0 */

/* ---- numeric checks -------------------------------------------------------- */
int ae__all_finite(const float *x, size_t n); /* 1 if no NaN/inf */
/* dst = src (n floats, not overlapping); 1 if no NaN/inf was copied */
int ae__copy_finite(float *restrict dst, const float *restrict src, size_t n);


/* ---- BLAS: blas.c is the only file that calls cblas_* --------------------
 * Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C,
 * op(A) is M x K, op(B) is K x N, C is M x N. */
void ae__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
               size_t ldc);
/* A section whose GEMMs run on the calling thread only: our own threads
 * already split the work, and OpenBLAS' threads nested inside them only
 * contend. OpenBLAS' thread count is process-wide, so sections nest through
 * one lock-protected count: the first begin saves the host's count and sets
 * 1, the last end restores the saved count, unless the host changed it in
 * the meantime (a count other than 1 is then left alone). Every begin needs
 * its end. */
void ae__blas_single_begin(void);
void ae__blas_single_end(void);

/* ---- files: atomic writes and whole-file reads (fileio.c) -----------------
 * A writer writes to a temporary file beside the target, keeps a running
 * CRC-32 of everything written, and on commit flushes, fsyncs and renames it
 * over the target, so a crash at any moment leaves the old file intact.
 * Multi-byte values are written little-endian. A new file gets the mode
 * fopen would give it (0666 less the umask); a replaced file keeps its
 * permission bits; a read-only or non-regular target is refused with
 * AE_ERR_IO (policy in docs/reliability.md). */
typedef struct ae__writer {
    void *file;      /* FILE * */
    char *tmp_path;  /* allocated, tmp_cap bytes */
    size_t tmp_cap;
    uint32_t crc;    /* CRC-32 of every byte written so far */
    int failed;      /* a write failed: commit will refuse */
    int replace;     /* the target exists: give the new file its mode */
    unsigned mode;   /* the target's permission bits (when replace) */
    /* Not NULL: a writer set up by its caller (zeroed, then sink set) whose
     * bytes go to sink (0 = written) instead of a file; no open, no commit. */
    int (*sink)(const void *data, size_t n, void *user);
    void *sink_user;
} ae__writer;
ae_status ae__writer_open(ae__writer *w, const char *path, char *msg);
ae_status ae__writer_write(ae__writer *w, const void *data, size_t n);
ae_status ae__writer_u32(ae__writer *w, uint32_t v);
ae_status ae__writer_u64(ae__writer *w, uint64_t v);
ae_status ae__writer_f64(ae__writer *w, double v); /* IEEE-754 binary64, little-endian */
ae_status ae__writer_f32s(ae__writer *w, const float *v, size_t n); /* little-endian */
/* Renames into place (path as given to open). On failure the target is untouched. */
ae_status ae__writer_commit(ae__writer *w, const char *path, char *msg);
void ae__writer_abort(ae__writer *w); /* closes and removes the temp file; idempotent */

/* Every file error reads "<function>: '<path>': <what>": ae__fail with the
 * path (and handle_msg, may be NULL) in front of the formatted text. */
ae_status ae__file_fail(char *handle_msg, const char *path, ae_status status, const char *fmt,
                        ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The checks every loader makes before reading, so that one cause gives one
 * status everywhere: a file that cannot be opened or is not a regular file
 * (directory, device, FIFO) is AE_ERR_IO, an empty file AE_ERR_FORMAT.
 * *f (a FILE *) is positioned at the start; *size is the file's length. */
ae_status ae__file_open(const char *path, void **f, uint64_t *size, char *msg);
/* Reads a whole file (at most max_bytes, else AE_ERR_FORMAT) into a new
 * ae__malloc block, after the checks of ae__file_open. */
ae_status ae__read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len,
                        char *msg);

/* Maps a whole regular file read-only (mapfile.c), after the checks of
 * ae__file_open (same statuses); unmap with ae__unmap_file(data, len). */
ae_status ae__map_file(const char *path, const unsigned char **data, size_t *len, char *msg);
void ae__unmap_file(const unsigned char *data, size_t len);
/* Advice on the whole pages inside [p, p + n) of a read-only file mapping:
 * release drops them from the resident set (they are read again from the
 * page cache on the next access); random turns off read-ahead, so a sparse
 * reader only maps the pages it touches. */
void ae__map_release(const unsigned char *p, size_t n);
/* For a pass over an array of items of item_bytes at base in a mapping,
 * called after item i: releases the pages read so far about every MiB, so
 * the pass never holds more than that resident. */
void ae__map_release_read(const unsigned char *base, size_t item_bytes, size_t i);
void ae__map_random(const unsigned char *p, size_t n);

/* A bounds-checked little-endian reader over a memory block. Every get fails
 * (returns -1 and sets failed) instead of reading past the end. */
typedef struct ae__reader {
    const unsigned char *p;
    size_t len, pos;
    int failed;
} ae__reader;
int ae__reader_bytes(ae__reader *r, void *out, size_t n);
int ae__reader_u32(ae__reader *r, uint32_t *v);
int ae__reader_u64(ae__reader *r, uint64_t *v);
int ae__reader_f64(ae__reader *r, double *v);
int ae__reader_f32s(ae__reader *r, float *v, size_t n);

#endif /* AUTOENC_INTERNAL_H */
