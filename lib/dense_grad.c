/*
 * The matrix products of a dense layer's backward pass:
 *
 *     gW (in, units) = x^T (in, n) dy (n, units)    weight gradient
 *     dx (n, in)     = dy (n, units) W^T (units, in)  input gradient
 *
 * Why not BLAS: the training step's products are small (a thread's share of
 * a batch of 64 is 32 rows), and OpenBLAS spent a quarter of its time on
 * them packing its operands and clearing the output (sgemm_beta,
 * sgemm_*copy in perf record of the simple model on 2 AVX2 cores), and
 * picked its kernels, so the gradient's last bits, from OPENBLAS_CORETYPE.
 *
 * This file is compiled with -ffp-contract=fast (lib/CMakeLists.txt): the
 * multiply-adds fuse on CPUs with FMA. Unlike the forward pass (dense.c),
 * nothing here must be the same bits for a row alone and in a batch: a
 * gradient is a sum over the batch's rows anyway. Each output is still one
 * fixed sum whatever the vector width, so the AVX-512 and AVX2 clones agree:
 *
 *   - gW[i][u] adds x[r][i] dy[r][u] over the rows r in order, with the
 *     tiles of dense_vec.inc reading x by columns (in dense.c);
 *   - dx[r][i] adds dy[r][u] W[i][u] in 8 partial sums (u mod 8) over the
 *     first units - units % 8 columns, combined pairwise ((0+4)+(2+6)) +
 *     ((1+5)+(3+7)), then the remaining columns in order.
 */
#include <string.h>

#include "nn.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* gW is the forward product's tiles reading x by columns: it lives in
 * dense.c, beside them (ae__dense_grad_weights). */

typedef float gvf8 __attribute__((vector_size(8 * sizeof(float))));

AE__ALWAYS_INLINE gvf8 gload(const float *p)
{
    gvf8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* by pointer: a 32-byte vector passed by value draws GCC's -Wpsabi note in
 * builds that do not inline (-O0), which the pragma above does not silence */
AE__ALWAYS_INLINE float hsum8(const gvf8 *v)
{
    return (((*v)[0] + (*v)[4]) + ((*v)[2] + (*v)[6])) + (((*v)[1] + (*v)[5]) + ((*v)[3] + (*v)[7]));
}

/* rows (1..3) rows of dy against cols (1..4) rows of W: 12 accumulators,
 * three inputs and a weight vector fill AVX2's 16 registers */
AE__ALWAYS_INLINE void dot_tile(const float *restrict dy, size_t units, const float *restrict w,
                                float *restrict dx, size_t in, const size_t rows,
                                const size_t cols)
{
    gvf8 acc[3][4];
    const size_t body = units - units % 8;
#pragma GCC unroll 3
    for (size_t r = 0; r < rows; r++)
#pragma GCC unroll 4
        for (size_t c = 0; c < cols; c++) acc[r][c] = (gvf8){0};
    for (size_t u = 0; u < body; u += 8) {
        gvf8 a[3];
#pragma GCC unroll 3
        for (size_t r = 0; r < rows; r++) a[r] = gload(dy + r * units + u);
#pragma GCC unroll 4
        for (size_t c = 0; c < cols; c++) {
            const gvf8 wv = gload(w + c * units + u);
#pragma GCC unroll 3
            for (size_t r = 0; r < rows; r++) acc[r][c] += a[r] * wv;
        }
    }
#pragma GCC unroll 3
    for (size_t r = 0; r < rows; r++)
#pragma GCC unroll 4
        for (size_t c = 0; c < cols; c++) {
            float s = hsum8(&acc[r][c]);
            for (size_t u = body; u < units; u++) s += dy[r * units + u] * w[c * units + u];
            dx[r * in + c] = s;
        }
}

AE__ALWAYS_INLINE void dot_rows(const float *dy, size_t units, const float *w, float *dx,
                                size_t in, const size_t rows)
{
    size_t c = 0;
    for (; c + 4 <= in; c += 4) dot_tile(dy, units, w + c * units, dx + c, in, rows, 4);
    for (; c < in; c++) dot_tile(dy, units, w + c * units, dx + c, in, rows, 1);
}

AE__HOT void ae__dense_grad_input(const float *dy, size_t n, size_t units, const float *w,
                                  size_t in, float *dx)
{
    size_t r = 0;
    for (; r + 3 <= n; r += 3) dot_rows(dy + r * units, units, w, dx + r * in, in, 3);
    for (; r < n; r++) dot_rows(dy + r * units, units, w, dx + r * in, in, 1);
}
