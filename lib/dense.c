/*
 * The matrix product of every forward pass: y (n, units) = x (n, k) W (k, units) + b,
 * for dense layers and for the im2col form of convolutions too wide for the
 * direct kernels (conv.c).
 *
 * Why not BLAS: OpenBLAS picks kernels and blocking from the matrix sizes and
 * its own thread count, so the same row came out different in its last bits
 * when it was predicted alone, in a batch of 7 or 64, or in another thread's
 * share of the rows (measured with OpenBLAS 0.3.21 on the simple model: 1
 * thread against 2 changed 141,539 of 200,704 outputs, by up to 4.8e-7).
 * Here every output is computed as
 *
 *     b[j] + x[0] W[0][j] + x[1] W[1][j] + ... + x[k-1] W[k-1][j]
 *
 * added left to right, each product and each sum rounded once to float (the
 * library is built with -ffp-contract=off, so no multiply-add is fused),
 * whichever tile below computes it. A row's outputs therefore depend only on
 * that row and the weights, never on the batch, its neighbours, where a
 * thread's share starts or the thread count. Vector lanes are independent
 * outputs, so the vector width the running CPU gets (target_clones) does not
 * change the order either.
 *
 * Speed: tiles of 8 rows x 32 outputs keep 16 vector accumulators in
 * registers; each step loads two vectors of W and 8 inputs for 16 multiplies
 * and 16 adds. tests/bench/bench_train.c (encode) measures it against the
 * OpenBLAS version on the reference encoders.
 */
#include <string.h>

#include "nn.h"

/* The vectors never cross a call boundary (always inlined), so GCC's note
 * about their by-value ABI is noise. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define LANES 16  /* floats per vector */
#define TILE_ROWS 8

typedef float vf __attribute__((vector_size(LANES * sizeof(float))));

AE__ALWAYS_INLINE vf vload(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A macro: vectors passed by value trip GCC's ABI notes. */
#define VSTORE(p, v) do { vf vtmp_ = (v); memcpy((p), &vtmp_, sizeof vtmp_); } while (0)

/* rows (1..TILE_ROWS) x nv (1 or 2) vectors of outputs; both are constants
 * where it is inlined, so the accumulators become registers. */
AE__ALWAYS_INLINE void tile(const float *restrict x, size_t k, const float *restrict w, size_t units,
                    const float *restrict bias, float *restrict y, const size_t rows,
                    const size_t nv)
{
    vf acc[TILE_ROWS][2];
#pragma GCC unroll 8
    for (size_t r = 0; r < rows; r++)
#pragma GCC unroll 2
        for (size_t c = 0; c < nv; c++) acc[r][c] = vload(bias + c * LANES);
    for (size_t i = 0; i < k; i++) {
        vf wv[2];
#pragma GCC unroll 2
        for (size_t c = 0; c < nv; c++) wv[c] = vload(w + i * units + c * LANES);
#pragma GCC unroll 8
        for (size_t r = 0; r < rows; r++) {
            const float xv = x[r * k + i];
#pragma GCC unroll 2
            for (size_t c = 0; c < nv; c++) acc[r][c] += xv * wv[c];
        }
    }
#pragma GCC unroll 8
    for (size_t r = 0; r < rows; r++)
#pragma GCC unroll 2
        for (size_t c = 0; c < nv; c++) VSTORE(y + r * units + c * LANES, acc[r][c]);
}

/* Rows [0, rows) of x (at most TILE_ROWS) through every column of W. */
AE__ALWAYS_INLINE void row_block(const float *restrict x, size_t k, const float *restrict w,
                         size_t units, const float *restrict bias, float *restrict y,
                         const size_t rows)
{
    size_t j = 0;
    for (; j + 2 * LANES <= units; j += 2 * LANES)
        tile(x, k, w + j, units, bias + j, y + j, rows, 2);
    for (; j + LANES <= units; j += LANES) tile(x, k, w + j, units, bias + j, y + j, rows, 1);
    /* the last units % 16 columns one by one, in the same order */
    for (; j < units; j++)
        for (size_t r = 0; r < rows; r++) {
            float acc = bias[j];
            for (size_t i = 0; i < k; i++) acc += x[r * k + i] * w[i * units + j];
            y[r * units + j] = acc;
        }
}

AE__HOT void ae__dense_forward(const float *x, size_t n, size_t k, const float *w, size_t units,
                              const float *bias, float *y)
{
    size_t r = 0;
    for (; r + TILE_ROWS <= n; r += TILE_ROWS)
        row_block(x + r * k, k, w, units, bias, y + r * units, TILE_ROWS);
    for (; r < n; r++) row_block(x + r * k, k, w, units, bias, y + r * units, 1);
}
