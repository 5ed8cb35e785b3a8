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
 * added left to right, each term a fused multiply-add (one rounding) on
 * CPUs with FMA, a product and a sum (two) on those without, whichever tile
 * below computes it: every output goes through a vector tile, the last
 * units % width columns too (tail_tile), never through a scalar loop the
 * compiler might contract differently (this file alone is compiled with
 * -ffp-contract=fast; lib/CMakeLists.txt). A row's outputs therefore depend
 * only on that row and the weights, never on the batch, its neighbours,
 * where a thread's share starts or the thread count. Vector lanes are
 * independent outputs, so the vector width the running CPU gets
 * (target_clones: AVX-512 or AVX2, both with FMA) does not change the order
 * either; a CPU without FMA (the baseline clone) gets other last bits.
 * Against separate multiplies and adds the fused form took 15-18% less of
 * the deep model's training time in this product (perf record, 1 thread,
 * AVX2 EPYC).
 *
 * Speed: a tile of rows x 2 vectors of outputs keeps its accumulators in
 * registers; each step loads two vectors of W and one input per row. The tile
 * is sized for the registers of the instruction set that runs (dense_vec.inc):
 * a tile of 16-float vectors compiled for AVX2 needs 32 vector registers where
 * AVX2 has 16, and spilling them made this product 77% of the simple model's
 * training time on an AVX2-only EPYC (4.8 s an epoch; perf record).
 * tests/bench/bench_train.c (encode) measures it against the OpenBLAS version
 * on the reference encoders.
 *
 * Why zero inputs are not skipped: drawings are mostly background (70% of
 * QuickDraw-10's pixels are 0), and a skipped term only adds +-0, so the
 * products could skip them with every output's bits unchanged. Both were
 * built and measured (one AVX2 core, 32 rows of 784 clock drawings, 34%
 * nonzero), with a bit mask per input (weight gradient) or per row
 * (forward) and groups of inputs or rows walking the union of their masks
 * with 8-12 accumulators:
 *   - weight gradient, 32 units: 12.7 us against these tiles' 17.8; 128
 *     units: 40 against 72. Training did not follow: 16 interleaved pairs
 *     of the simple model (2 threads, 3 epochs) gave a paired time ratio of
 *     1.004, 8 pairs of the deep one 1.000 (the saving is 2-4% of a step,
 *     inside this machine's noise);
 *   - forward, 128 units: 58-69 us against 88-91 in a quiet spell, level or
 *     slower in a busy one (each skipping group of 2 rows reads more of W
 *     from L2 than a tile of 6 rows does); the deep encoder, 10 interleaved
 *     runs: median 0.155 s against 0.138.
 * A skip per input step inside these tiles took 2-3x as long (the branches
 * mispredict). Not worth the second code path.
 */
#include <string.h>

#include "nn.h"

/* The vectors never cross a call boundary (always inlined), so GCC's note
 * about their by-value ABI is noise. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define AE_DV 16
#define AE_DROWS 8
#include "dense_vec.inc"
#undef AE_DROWS
#undef AE_DV
#define AE_DV 8
#define AE_DROWS 6
#include "dense_vec.inc"
#undef AE_DROWS
#undef AE_DV

AE__HOT void ae__dense_forward_tiled(const float *x, size_t n, size_t k, const float *w,
                                    size_t units, const float *bias, float *y, int wide)
{
    if (wide)
        product16(x, n, k, k, 1, w, units, bias, y);
    else
        product8(x, n, k, k, 1, w, units, bias, y);
}

void ae__dense_forward(const float *x, size_t n, size_t k, const float *w, size_t units,
                       const float *bias, float *y)
{
    ae__dense_forward_tiled(x, n, k, w, units, bias, y, AE__CPU_HAS_AVX512());
}

/* The weight gradient of dense_grad.c: the same tiles, A = x^T. */
AE__HOT void ae__dense_grad_weights_tiled(const float *x, size_t n, size_t in, const float *dy,
                                          size_t units, float *gk, int wide)
{
    /* gW = A dy with A (in, n) the transpose of x: A's (i, r) is x[r * in + i] */
    if (wide)
        product16(x, in, n, 1, in, dy, units, NULL, gk);
    else
        product8(x, in, n, 1, in, dy, units, NULL, gk);
}

void ae__dense_grad_weights(const float *x, size_t n, size_t in, const float *dy, size_t units,
                            float *gk)
{
    ae__dense_grad_weights_tiled(x, n, in, dy, units, gk, AE__CPU_HAS_AVX512());
}
