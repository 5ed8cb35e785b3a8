/*
 * Batch normalisation over the last axis (C channels), Keras'
 * BatchNormalization semantics: training passes normalise with the batch's
 * mean and biased variance and move the moving statistics toward them
 * (moving = momentum moving + (1 - momentum) batch); inference normalises
 * with the moving statistics, so a row's output depends on that row alone.
 *
 * A batch split over threads (ae__workspace_set_threads) must see the whole
 * batch's statistics, so training passes reduce across threads (ae__pass):
 * each thread sums its rows per channel in double, the partial sums meet
 * after a barrier, and each thread totals a share of the channels in thread
 * order (the result depends on the thread count, not on timing). Under
 * data-parallel training over processes the totals are then summed across
 * the processes too (the statistics reduction hook, ae_stat_reduce_fn), so
 * the statistics are those of the global batch (synchronised batch norm). The mean
 * and the variance are two reductions (sum of x, then of (x - mean)^2)
 * rather than one of x and x^2: the one-pass form loses the variance of
 * pixels near 1 to cancellation.
 */
#include <math.h>
#include <string.h>

#include "nn.h"

#define BLOCK 64 /* channels whose coefficients a loop keeps on the stack */

/* rows of C channels in n samples */
static size_t bn_rows(const ae_layer *L, size_t n) { return n * (ae__shape_size(&L->in) / L->units); }

static void barrier(const ae__pass *p) { ae__pool_barrier(p->pool); }

/* After a barrier, sums slots [off, off + width) and the row count (slot
 * 2C) over every thread into the totals slot, each thread a share of the
 * range; then a barrier, after which every thread reads the totals. With a
 * process hook, the totals from off through the count are then summed
 * across processes (one call, by thread 0) before that last barrier. */
static void reduce(const ae__pass *p, size_t C, size_t off, size_t width)
{
    double *tot = p->red + (size_t)p->nt * p->red_stride;
    size_t lo, hi;
    barrier(p);
    ae__split(width, p->t, p->nt, &lo, &hi);
    for (size_t c = off + lo; c < off + hi; c++) {
        double s = 0;
        for (int k = 0; k < p->nt; k++) s += p->red[(size_t)k * p->red_stride + c];
        tot[c] = s;
    }
    if (p->t == 0) {
        double s = 0;
        for (int k = 0; k < p->nt; k++) s += p->red[(size_t)k * p->red_stride + 2 * C];
        tot[2 * C] = s;
    }
    if (p->sync) {
        barrier(p);
        if (p->t == 0 && !*p->sync_failed &&
            p->sync(tot + off, 2 * C + 1 - off, p->sync_user) != 0)
            *p->sync_failed = 1;
    }
    barrier(p);
}

static void normalise(const ae_layer *L, const float *x, float *y, size_t rows, const float *mean,
                      const float *inv)
{
    const size_t C = L->units;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < C; c++)
            y[r * C + c] = L->kernel[c] * ((x[r * C + c] - mean[c]) * inv[c]) + L->bias[c];
}

void ae__bn_forward(const ae_layer *L, const float *x, float *y, size_t n, const ae__pass *p)
{
    const size_t C = L->units, rows = bn_rows(L, n);
    float *mean, *inv;
    double *mine, *tot, count;
    size_t lo, hi;
    if (!p || !p->training) {
        /* inference: y = x a + b per channel, in blocks of channels so the
         * coefficients stay on the stack and the rows are walked in order */
        for (size_t c0 = 0; c0 < C; c0 += BLOCK) {
            const size_t cn = C - c0 < BLOCK ? C - c0 : BLOCK;
            float a[BLOCK], b[BLOCK];
            for (size_t c = 0; c < cn; c++) {
                const float s = 1.0f / sqrtf(L->moving_var[c0 + c] + (float)L->epsilon);
                a[c] = L->kernel[c0 + c] * s;
                b[c] = L->bias[c0 + c] - L->moving_mean[c0 + c] * a[c];
            }
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < cn; c++) y[r * C + c0 + c] = x[r * C + c0 + c] * a[c] + b[c];
        }
        return;
    }
    mean = p->bn_state + L->stats_offset;
    inv = mean + C;
    mine = p->red + (size_t)p->t * p->red_stride;
    tot = p->red + (size_t)p->nt * p->red_stride;
    /* mean (the variance slots join as zeros: a process hook sums every
     * slot from 0 through the count) */
    for (size_t c = 0; c < 2 * C; c++) mine[c] = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < C; c++) mine[c] += x[r * C + c];
    mine[2 * C] = (double)rows;
    reduce(p, C, 0, p->sync ? 2 * C : C);
    count = tot[2 * C] > 0 ? tot[2 * C] : 1;
    ae__split(C, p->t, p->nt, &lo, &hi);
    for (size_t c = lo; c < hi; c++) mean[c] = (float)(tot[c] / count);
    barrier(p);
    /* variance about the mean every thread now reads */
    for (size_t c = 0; c < C; c++) mine[C + c] = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < C; c++) {
            const double d = (double)x[r * C + c] - mean[c];
            mine[C + c] += d * d;
        }
    reduce(p, C, C, C);
    for (size_t c = lo; c < hi; c++) {
        const double var = tot[C + c] / count;
        inv[c] = (float)(1.0 / sqrt(var + L->epsilon));
        L->moving_mean[c] = (float)(L->momentum * L->moving_mean[c] + (1 - L->momentum) * mean[c]);
        L->moving_var[c] = (float)(L->momentum * L->moving_var[c] + (1 - L->momentum) * var);
    }
    barrier(p);
    normalise(L, x, y, rows, mean, inv);
}

/* Training: with xh = (x - mean) inv over the batch's N rows,
 *   dbeta = sum dy, dgamma = sum dy xh,
 *   dx = gamma inv / N (N dy - dbeta - xh dgamma).
 * gk/gb receive this thread's rows' share (the caller sums the threads'
 * parameter gradients); dx needs the totals, hence the reduction.
 * Inference: dx = dy gamma / sqrt(moving var + eps). */
void ae__bn_backward(const ae_layer *L, const float *x, const float *dy, float *dx, float *gk,
                     float *gb, size_t n, const ae__pass *p)
{
    const size_t C = L->units, rows = bn_rows(L, n);
    const double *tot;
    const float *mean, *inv;
    double *mine, N;
    if (!p || !p->training) {
        for (size_t c = 0; c < C; c++) {
            const float s = 1.0f / sqrtf(L->moving_var[c] + (float)L->epsilon);
            double sdy = 0, sdyx = 0;
            for (size_t r = 0; r < rows; r++) {
                const float d = dy[r * C + c];
                sdy += d;
                sdyx += (double)d * ((x[r * C + c] - L->moving_mean[c]) * s);
                if (dx) dx[r * C + c] = d * L->kernel[c] * s;
            }
            gb[c] = (float)sdy;
            gk[c] = (float)sdyx;
        }
        return;
    }
    mean = p->bn_state + L->stats_offset;
    inv = mean + C;
    mine = p->red + (size_t)p->t * p->red_stride;
    /* this thread's sums of dy and dy xh, rows in order */
    for (size_t c = 0; c < 2 * C; c++) mine[c] = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < C; c++) {
            const float d = dy[r * C + c];
            mine[c] += d;
            mine[C + c] += (double)d * ((x[r * C + c] - mean[c]) * inv[c]);
        }
    for (size_t c = 0; c < C; c++) {
        gb[c] = (float)mine[c];
        gk[c] = (float)mine[C + c];
    }
    mine[2 * C] = (double)rows;
    reduce(p, C, 0, 2 * C);
    if (!dx) return;
    tot = p->red + (size_t)p->nt * p->red_stride;
    N = tot[2 * C] > 0 ? tot[2 * C] : 1;
    /* dx = k (N dy - sum dy - xh sum dy xh) with k = gamma inv / N and
     * xh = (x - mean) inv, as dy A + x K + B per channel */
    for (size_t c0 = 0; c0 < C; c0 += BLOCK) {
        const size_t cn = C - c0 < BLOCK ? C - c0 : BLOCK;
        float A[BLOCK], K[BLOCK], B[BLOCK];
        for (size_t c = 0; c < cn; c++) {
            const size_t cc = c0 + c;
            const double k = L->kernel[cc] * (double)inv[cc] / N;
            const double kx = -k * tot[C + cc] * inv[cc];
            A[c] = (float)(k * N);
            K[c] = (float)kx;
            B[c] = (float)(-k * tot[cc] - kx * mean[cc]);
        }
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cn; c++)
                dx[r * C + c0 + c] = dy[r * C + c0 + c] * A[c] + x[r * C + c0 + c] * K[c] + B[c];
    }
}
