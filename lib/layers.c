/*
 * Layer kernels: forward and backward passes of dense, conv2d, max-pool,
 * upsampling, activation and reshape layers, on batches in NHWC order.
 * Forward products go through dense.c (a fixed summation order per output);
 * backward products through GEMM (blas.c). Convolutions too wide for the
 * direct kernels (conv.c) use im2col; the column buffer is the caller's
 * workspace so nothing is allocated here.
 */
#include <math.h>
#include <string.h>

#include "nn.h"

/* ---- activations ------------------------------------------------------------ */

/* alpha: the leaky relu slope or the elu scale (ae_layer.alpha) */
static void activation_forward(int act, float alpha, float *y, size_t count)
{
    switch (act) {
    case AE_ACT_RELU:
        for (size_t i = 0; i < count; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case AE_ACT_SIGMOID: ae__sigmoid_inplace(y, count); break;
    case AE_ACT_TANH:
        for (size_t i = 0; i < count; i++) y[i] = tanhf(y[i]);
        break;
    case AE_ACT_LEAKY_RELU:
        for (size_t i = 0; i < count; i++) y[i] = y[i] > 0.0f ? y[i] : alpha * y[i];
        break;
    case AE_ACT_ELU:
        for (size_t i = 0; i < count; i++) y[i] = y[i] > 0.0f ? y[i] : alpha * expm1f(y[i]);
        break;
    case AE_ACT_SOFTPLUS:
        /* log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow for large |z| */
        for (size_t i = 0; i < count; i++) {
            const float z = y[i];
            y[i] = (z > 0.0f ? z : 0.0f) + log1pf(expf(-fabsf(z)));
        }
        break;
    default: break; /* linear */
    }
}

/* dy (dL/dy) becomes dL/dz in place, using the activation's output y. The
 * derivatives are written in terms of y so that forward need not keep z:
 * tanh' = 1 - y^2; elu' = y + alpha where y <= 0 (y = alpha (e^z - 1));
 * softplus' = sigmoid(z) = 1 - e^-y; leaky relu and elu keep the sign of z
 * in y for alpha >= 0 (the builder's range). */
static void activation_backward(int act, float alpha, const float *y, float *dy, size_t count)
{
    switch (act) {
    case AE_ACT_RELU:
        for (size_t i = 0; i < count; i++) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case AE_ACT_SIGMOID:
        for (size_t i = 0; i < count; i++) dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case AE_ACT_TANH:
        for (size_t i = 0; i < count; i++) dy[i] *= 1.0f - y[i] * y[i];
        break;
    case AE_ACT_LEAKY_RELU:
        for (size_t i = 0; i < count; i++) dy[i] = y[i] > 0.0f ? dy[i] : alpha * dy[i];
        break;
    case AE_ACT_ELU:
        for (size_t i = 0; i < count; i++) dy[i] = y[i] > 0.0f ? dy[i] : (y[i] + alpha) * dy[i];
        break;
    case AE_ACT_SOFTPLUS:
        for (size_t i = 0; i < count; i++) dy[i] *= -expm1f(-y[i]);
        break;
    default: break;
    }
}

/* gb (cols) = column sums of dz (rows, cols) */
static void column_sums(const float *dz, float *gb, size_t rows, size_t cols)
{
    memset(gb, 0, cols * sizeof *gb);
    for (size_t r = 0; r < rows; r++) {
        const float *row = dz + r * cols;
        for (size_t c = 0; c < cols; c++) gb[c] += row[c];
    }
}

/* ---- im2col / col2im ------------------------------------------------------------
 * Geometry of a convolution from an (ih, iw, cin) image to (oh, ow, .) with a
 * k x k window moved by `stride`, whose first window starts pad rows/columns
 * before the image. A conv2d layer is such a convolution from its input to
 * its output; a transposed conv2d is one from its OUTPUT to its input (its
 * forward pass is that convolution's input gradient), so both share these
 * routines.
 * cols: (n * oh * ow, k * k * cin); column order (ky, kx, ci) matches the
 * kernel layout (kh, kw, cin, cout) read as a (k*k*cin, cout) matrix. */
typedef struct col_geom {
    size_t ih, iw, cin, oh, ow, k, stride, pt, pl;
} col_geom;

static col_geom geom_of(const ae_layer *L)
{
    const ae__shape *a = L->kind == AE_LAYER_CONV2D_TRANSPOSE ? &L->out : &L->in;
    const ae__shape *z = L->kind == AE_LAYER_CONV2D_TRANSPOSE ? &L->in : &L->out;
    col_geom g = {a->d[0], a->d[1], a->d[2], z->d[0], z->d[1], L->ksize,
                  L->stride ? L->stride : 1, L->pad_top, L->pad_left};
    return g;
}

/* One pixel's channels: constant-size copies for the channel counts of the
 * reference models inline into a few vector moves, where a libc memcpy
 * call per pixel cost 10% of a conv_bn8 training profile. */
static inline void copy_pixel(float *restrict dst, const float *restrict src, size_t c)
{
    switch (c) {
    case 1: dst[0] = src[0]; break;
    case 8: memcpy(dst, src, 8 * sizeof *dst); break;
    case 16: memcpy(dst, src, 16 * sizeof *dst); break;
    case 32: memcpy(dst, src, 32 * sizeof *dst); break;
    default: memcpy(dst, src, c * sizeof *dst); break;
    }
}

static void im2col(const col_geom *g, const float *x, float *cols, size_t n)
{
    const size_t ih = g->ih, iw = g->iw, cin = g->cin, oh = g->oh, ow = g->ow, k = g->k;
    const size_t row_len = k * k * cin;
    for (size_t b = 0; b < n; b++) {
        const float *xb = x + b * ih * iw * cin;
        for (size_t oy = 0; oy < oh; oy++) {
            for (size_t ox = 0; ox < ow; ox++) {
                float *row = cols + ((b * oh + oy) * ow + ox) * row_len;
                for (size_t ky = 0; ky < k; ky++) {
                    /* unsigned wrap makes out-of-range rows compare >= ih */
                    size_t iy = oy * g->stride + ky - g->pt;
                    for (size_t kx = 0; kx < k; kx++, row += cin) {
                        size_t ix = ox * g->stride + kx - g->pl;
                        if (iy < ih && ix < iw)
                            copy_pixel(row, xb + (iy * iw + ix) * cin, cin);
                        else
                            memset(row, 0, cin * sizeof *row);
                    }
                }
            }
        }
    }
}

/* dx = the columns added back onto the image, each sample's in a fixed
 * order (the transposed convolution's forward pass relies on it) */
static void col2im(const col_geom *g, const float *cols, float *dx, size_t n)
{
    const size_t ih = g->ih, iw = g->iw, cin = g->cin, oh = g->oh, ow = g->ow, k = g->k;
    const size_t row_len = k * k * cin;
    memset(dx, 0, n * ih * iw * cin * sizeof *dx);
    for (size_t b = 0; b < n; b++) {
        float *db = dx + b * ih * iw * cin;
        for (size_t oy = 0; oy < oh; oy++) {
            for (size_t ox = 0; ox < ow; ox++) {
                const float *row = cols + ((b * oh + oy) * ow + ox) * row_len;
                for (size_t ky = 0; ky < k; ky++) {
                    size_t iy = oy * g->stride + ky - g->pt;
                    for (size_t kx = 0; kx < k; kx++, row += cin) {
                        size_t ix = ox * g->stride + kx - g->pl;
                        if (iy < ih && ix < iw) {
                            float *dst = db + (iy * iw + ix) * cin;
                            for (size_t c = 0; c < cin; c++) dst[c] += row[c];
                        }
                    }
                }
            }
        }
    }
}

/* ---- transposed convolution ---------------------------------------------------------
 * Kernel (k, k, filters, in_channels) as Keras' Conv2DTranspose, i.e. the
 * kernel (k, k, cin, cout) of the convolution from this layer's output back
 * to its input. Forward: cols (n*ih*iw, k*k*filters) = x (n*ih*iw, cin) . W^T,
 * through ae__dense_forward (a fixed summation order per row, no BLAS), then
 * col2im adds the columns onto the output in a fixed order, then the bias.
 * Scratch: [cols | W^T (cin, k*k*filters) | zeros (k*k*filters)]. */

static size_t convt_cols(const ae_layer *L, size_t n)
{
    return n * L->in.d[0] * L->in.d[1] * L->ksize * L->ksize * L->units;
}

static void convt_forward(const ae_layer *L, const float *x, float *y, size_t n, float *ws)
{
    const col_geom g = geom_of(L);
    const size_t kdim = L->ksize * L->ksize * L->units, cin = L->in.d[2];
    const size_t px = L->out.d[0] * L->out.d[1];
    float *cols = ws, *wt = ws + convt_cols(L, n), *zero = wt + cin * kdim;
    for (size_t r = 0; r < kdim; r++)
        for (size_t c = 0; c < cin; c++) wt[c * kdim + r] = L->kernel[r * cin + c];
    memset(zero, 0, kdim * sizeof *zero);
    ae__dense_forward(x, n * L->in.d[0] * L->in.d[1], cin, wt, kdim, zero, cols);
    col2im(&g, cols, y, n);
    for (size_t p = 0; p < n * px; p++)
        for (size_t c = 0; c < L->units; c++) y[p * L->units + c] += L->bias[c];
}

/* dcols = im2col(dz); gW (k*k*filters, cin) = dcols^T x; dx = dcols W */
static void convt_backward(const ae_layer *L, const float *x, const float *dz, float *dx,
                           float *gk, float *gb, size_t n, float *ws)
{
    const col_geom g = geom_of(L);
    const size_t kdim = L->ksize * L->ksize * L->units, cin = L->in.d[2];
    const size_t in_rows = n * L->in.d[0] * L->in.d[1];
    im2col(&g, dz, ws, n);
    ae__sgemm(1, 0, kdim, cin, in_rows, 1.0f, ws, kdim, x, cin, 0.0f, gk, cin);
    column_sums(dz, gb, n * L->out.d[0] * L->out.d[1], L->units);
    if (dx) ae__sgemm(0, 0, in_rows, cin, kdim, 1.0f, ws, kdim, L->kernel, cin, 0.0f, dx, cin);
}

/* ---- max pooling 2x2, stride 2 --------------------------------------------------
 * Windows start at 2*o (TF's same padding puts the extra row/column at the
 * end for a 2x2 pool) and are clipped to the input. Channels are innermost
 * (NHWC), so each window is up to four contiguous channel vectors. The first
 * maximum in row-major window order wins, in both passes, so backward routes
 * each gradient to the element forward picked. */

/* Pointers to the (up to 4) input pixels of window (oy, ox); returns count. */
static int pool_window(const ae_layer *L, const float *xb, size_t oy, size_t ox,
                       const float *win[4], size_t at[4])
{
    const size_t ih = L->in.d[0], iw = L->in.d[1], c = L->in.d[2];
    int n = 0;
    for (size_t dy = 0; dy < 2; dy++) {
        size_t iy = 2 * oy + dy;
        if (iy >= ih) break;
        for (size_t dx = 0; dx < 2; dx++) {
            size_t ix = 2 * ox + dx;
            if (ix >= iw) break;
            at[n] = (iy * iw + ix) * c;
            win[n] = xb + at[n];
            n++;
        }
    }
    return n;
}

static void maxpool_forward(const ae_layer *L, const float *x, float *y, size_t n)
{
    const size_t in_px = L->in.d[0] * L->in.d[1], c = L->in.d[2];
    const size_t oh = L->out.d[0], ow = L->out.d[1];
    for (size_t b = 0; b < n; b++) {
        const float *xb = x + b * in_px * c;
        float *yb = y + b * oh * ow * c;
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                const float *win[4] = {NULL, NULL, NULL, NULL};
                size_t at[4] = {0, 0, 0, 0};
                int cnt = pool_window(L, xb, oy, ox, win, at);
                float *out = yb + (oy * ow + ox) * c;
                memcpy(out, win[0], c * sizeof *out);
                for (int p = 1; p < cnt; p++)
                    for (size_t ch = 0; ch < c; ch++) out[ch] = win[p][ch] > out[ch] ? win[p][ch] : out[ch];
            }
    }
}

/* Gradient routing of one full 2x2 window over c channels: each channel's
 * gradient goes to the first window element holding the maximum (as forward
 * picked it). r is the gradient not yet routed: selects, no branches, so the
 * loop vectorises. */
static void route_window4(const float *restrict w0, const float *restrict w1,
                          const float *restrict w2, const float *restrict w3, float *restrict d0,
                          float *restrict d1, float *restrict d2, float *restrict d3,
                          const float *restrict g, size_t c)
{
    for (size_t ch = 0; ch < c; ch++) {
        const float m01 = w1[ch] > w0[ch] ? w1[ch] : w0[ch];
        const float m23 = w3[ch] > w2[ch] ? w3[ch] : w2[ch];
        const float m = m23 > m01 ? m23 : m01;
        float r = g[ch];
        d0[ch] = w0[ch] == m ? r : 0.0f;
        r = w0[ch] == m ? 0.0f : r;
        d1[ch] = w1[ch] == m ? r : 0.0f;
        r = w1[ch] == m ? 0.0f : r;
        d2[ch] = w2[ch] == m ? r : 0.0f;
        r = w2[ch] == m ? 0.0f : r;
        d3[ch] = r;
    }
}

static void maxpool_backward(const ae_layer *L, const float *x, const float *dy, float *dx,
                             size_t n)
{
    const size_t in_px = L->in.d[0] * L->in.d[1], c = L->in.d[2];
    const size_t oh = L->out.d[0], ow = L->out.d[1];
    memset(dx, 0, n * in_px * c * sizeof *dx);
    for (size_t b = 0; b < n; b++) {
        const float *xb = x + b * in_px * c;
        const float *dyb = dy + b * oh * ow * c;
        float *dxb = dx + b * in_px * c;
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                const float *win[4] = {NULL, NULL, NULL, NULL};
                size_t at[4] = {0, 0, 0, 0};
                int cnt = pool_window(L, xb, oy, ox, win, at);
                const float *g = dyb + (oy * ow + ox) * c;
                if (cnt == 4) {
                    /* full window (all but the clipped edge): a vector loop;
                     * each window pixel is written by this window only */
                    route_window4(win[0], win[1], win[2], win[3], dxb + at[0], dxb + at[1],
                                  dxb + at[2], dxb + at[3], g, c);
                    continue;
                }
                for (size_t ch = 0; ch < c; ch++) {
                    int best = 0;
                    for (int p = 1; p < cnt; p++) best = win[p][ch] > win[best][ch] ? p : best;
                    dxb[at[best] + ch] += g[ch];
                }
            }
    }
}

/* ---- nearest upsampling x2 ---------------------------------------------------------- */

static void upsample_forward(const ae_layer *L, const float *x, float *y, size_t n)
{
    const size_t ih = L->in.d[0], iw = L->in.d[1], c = L->in.d[2];
    const size_t ow = 2 * iw;
    for (size_t b = 0; b < n; b++) {
        const float *xb = x + b * ih * iw * c;
        float *yb = y + b * 4 * ih * iw * c;
        for (size_t iy = 0; iy < ih; iy++) {
            float *row0 = yb + (2 * iy) * ow * c;
            for (size_t ix = 0; ix < iw; ix++) {
                const float *src = xb + (iy * iw + ix) * c;
                memcpy(row0 + (2 * ix) * c, src, c * sizeof *src);
                memcpy(row0 + (2 * ix + 1) * c, src, c * sizeof *src);
            }
            memcpy(row0 + ow * c, row0, ow * c * sizeof *row0);
        }
    }
}

static void upsample_backward(const ae_layer *L, const float *dy, float *dx, size_t n)
{
    const size_t ih = L->in.d[0], iw = L->in.d[1], c = L->in.d[2];
    const size_t ow = 2 * iw;
    for (size_t b = 0; b < n; b++) {
        const float *db = dy + b * 4 * ih * iw * c;
        float *dxb = dx + b * ih * iw * c;
        for (size_t iy = 0; iy < ih; iy++)
            for (size_t ix = 0; ix < iw; ix++)
                for (size_t ch = 0; ch < c; ch++) {
                    const float *p = db + ((2 * iy) * ow + 2 * ix) * c + ch;
                    dxb[(iy * iw + ix) * c + ch] = p[0] + p[c] + p[ow * c] + p[ow * c + c];
                }
    }
}

/* ---- activity regularisation --------------------------------------------------------
 * The identity, with the penalty l1 * sum|a| + l2 * sum a^2 per row (in
 * double: it is added to loss sums kept in double). Backward adds the
 * penalty's gradient with respect to the mean over the step's batch_rows
 * rows, l1 sign(a) + 2 l2 a over batch_rows (sign(0) = 0, as the gradient
 * TensorFlow gives |a| at 0). */

static double activity_penalty(const ae_layer *L, const float *x, size_t count)
{
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < count; i++) {
        const double a = x[i];
        s1 += fabs(a);
        s2 += a * a;
    }
    return L->l1 * s1 + L->l2 * s2;
}

static void activity_backward(const ae_layer *L, const float *x, const float *dy, float *dx,
                              size_t n, size_t count, const ae__pass *p)
{
    const double rows = (double)(p && p->batch_rows ? p->batch_rows : n);
    if (!dx) return;
    {
        const float c1 = (float)(L->l1 / rows);
        const float c2 = (float)(2.0 * L->l2 / rows);
        for (size_t i = 0; i < count; i++) {
            const float a = x[i];
            const float sign = a > 0.0f ? 1.0f : a < 0.0f ? -1.0f : 0.0f;
            dx[i] = dy[i] + c1 * sign + c2 * a;
        }
    }
}

/* ---- dispatch ------------------------------------------------------------------------ */

size_t ae__layer_ws_floats(const ae_layer *L, size_t n)
{
    if (L->kind == AE_LAYER_CONV2D_TRANSPOSE) {
        const size_t kdim = L->ksize * L->ksize * L->units;
        return convt_cols(L, n) + L->in.d[2] * kdim + kdim;
    }
    if (L->kind != AE_LAYER_CONV2D) return 0;
    if (ae__conv_direct_ok(L)) /* the transposed kernel */
        return L->ksize * L->ksize * L->in.d[2] * L->units;
    return n * L->out.d[0] * L->out.d[1] * L->ksize * L->ksize * L->in.d[2]; /* im2col */
}

void ae__layer_forward(const ae_layer *L, const float *x, float *y, size_t n, float *ws)
{
    ae__layer_forward_pass(L, x, y, n, ws, NULL);
}

void ae__layer_backward(const ae_layer *L, const float *x, const float *y, float *dy,
                        int dy_is_preact, float *dx, float *gk, float *gb, size_t n, float *ws)
{
    ae__layer_backward_pass(L, x, y, dy, dy_is_preact, dx, gk, gb, n, ws, NULL);
}

void ae__layer_forward_pass(const ae_layer *L, const float *x, float *y, size_t n, float *ws,
                            const ae__pass *p)
{
    const size_t in = ae__shape_size(&L->in), out = ae__shape_size(&L->out);
    switch (L->kind) {
    case AE_LAYER_DENSE: /* y (n, units) = x (n, in) . W (in, units) + b */
        ae__dense_forward(x, n, in, L->kernel, L->units, L->bias, y);
        break;
    case AE_LAYER_CONV2D: { /* y (n*oh*ow, cout) = cols (n*oh*ow, k*k*cin) . W + b */
        const size_t rows = n * L->out.d[0] * L->out.d[1];
        const size_t kdim = L->ksize * L->ksize * L->in.d[2];
        if (ae__conv_direct_ok(L)) {
            const int relu = L->activation == AE_ACT_RELU;
            ae__conv_forward(L, x, y, 0, n, relu);
            if (relu) return; /* applied in the kernel */
            break;
        }
        {
            const col_geom g = geom_of(L);
            im2col(&g, x, ws, n);
        }
        ae__dense_forward(ws, rows, kdim, L->kernel, L->units, L->bias, y);
        break;
    }
    case AE_LAYER_CONV2D_TRANSPOSE: convt_forward(L, x, y, n, ws); break;
    case AE_LAYER_BATCHNORM: ae__bn_forward(L, x, y, n, p); break;
    case AE_LAYER_DROPOUT:
    case AE_LAYER_GAUSSIAN_NOISE:
    case AE_LAYER_MASKING_NOISE: ae__noise_forward(L, x, y, n, p); break;
    case AE_LAYER_SAMPLING: ae__sampling_forward(L, x, y, n, p); break;
    case AE_LAYER_MAXPOOL2D: maxpool_forward(L, x, y, n); break;
    case AE_LAYER_UPSAMPLE2D: upsample_forward(L, x, y, n); break;
    default: /* activation, flatten, reshape, activity regularisation: the data is unchanged */
        if (y != x) memcpy(y, x, n * in * sizeof *y);
        break;
    }
    if (!p || !p->skip_activation) activation_forward(L->activation, L->alpha, y, n * out);
}

void ae__layer_backward_pass(const ae_layer *L, const float *x, const float *y, float *dy,
                             int dy_is_preact, float *dx, float *gk, float *gb, size_t n,
                             float *ws, const ae__pass *p)
{
    const size_t in = ae__shape_size(&L->in), out = ae__shape_size(&L->out);
    if (!dy_is_preact) activation_backward(L->activation, L->alpha, y, dy, n * out);
    switch (L->kind) {
    case AE_LAYER_DENSE:
        /* gW (in, units) = x^T dz; gb = sum dz; dx (n, in) = dz W^T */
        ae__dense_grad_weights(x, n, in, dy, L->units, gk);
        column_sums(dy, gb, n, L->units);
        if (dx) ae__dense_grad_input(dy, n, L->units, L->kernel, in, dx);
        break;
    case AE_LAYER_CONV2D: {
        const size_t rows = n * L->out.d[0] * L->out.d[1];
        const size_t kdim = L->ksize * L->ksize * L->in.d[2];
        if (ae__conv_direct_ok(L)) {
            memset(gk, 0, L->n_kernel * sizeof *gk);
            memset(gb, 0, L->n_bias * sizeof *gb);
            ae__conv_grad_params(L, x, dy, gk, gb, 0, n);
            if (dx) {
                ae__conv_transpose_kernel(L, ws);
                ae__conv_grad_input(L, dy, ws, dx, 0, n);
            }
            break;
        }
        /* gW (kdim, cout) = cols^T dz, then the same buffer takes dcols = dz W^T */
        const col_geom g = geom_of(L);
        im2col(&g, x, ws, n);
        ae__sgemm(1, 0, kdim, L->units, rows, 1.0f, ws, kdim, dy, L->units, 0.0f, gk, L->units);
        column_sums(dy, gb, rows, L->units);
        if (dx) {
            ae__sgemm(0, 1, rows, kdim, L->units, 1.0f, dy, L->units, L->kernel, L->units, 0.0f,
                      ws, kdim);
            col2im(&g, ws, dx, n);
        }
        break;
    }
    case AE_LAYER_CONV2D_TRANSPOSE: convt_backward(L, x, dy, dx, gk, gb, n, ws); break;
    case AE_LAYER_BATCHNORM: ae__bn_backward(L, x, dy, dx, gk, gb, n, p); break;
    case AE_LAYER_DROPOUT:
    case AE_LAYER_GAUSSIAN_NOISE:
    case AE_LAYER_MASKING_NOISE: ae__noise_backward(L, y, dy, dx, n, p); break;
    case AE_LAYER_ACTIVITY_REGULARIZATION: activity_backward(L, x, dy, dx, n, n * in, p); break;
    case AE_LAYER_SAMPLING: ae__sampling_backward(L, x, dy, dx, n, p); break;
    case AE_LAYER_MAXPOOL2D:
        if (dx) maxpool_backward(L, x, dy, dx, n);
        break;
    case AE_LAYER_UPSAMPLE2D:
        if (dx) upsample_backward(L, dy, dx, n);
        break;
    default:
        if (dx && dx != dy) memcpy(dx, dy, n * in * sizeof *dx);
        break;
    }
}

double ae__layer_penalty(const ae_layer *L, const float *x, const float *y, size_t n)
{
    (void)y;
    switch (L->kind) {
    case AE_LAYER_ACTIVITY_REGULARIZATION:
        return activity_penalty(L, x, n * ae__shape_size(&L->in));
    case AE_LAYER_SAMPLING: {
        /* KL(N(mean, exp(log_var)) || N(0, 1)) per row, Keras' VAE example:
         * -0.5 sum(1 + log_var - mean^2 - exp(log_var)), with 1 - exp(lv)
         * as -expm1(lv): no cancellation near lv = 0, where training drives it */
        const size_t z = ae__shape_size(&L->out);
        double kl = 0;
        for (size_t r = 0; r < n; r++) {
            const float *mean = x + r * 2 * z, *log_var = mean + z;
            for (size_t e = 0; e < z; e++) {
                const double m = mean[e], lv = log_var[e];
                kl += 0.5 * (m * m + expm1(lv) - lv);
            }
        }
        return L->kl_weight * kl;
    }
    default: return 0.0;
    }
}

void ae__layer_init(ae_layer *L, ae__rng *rng)
{
    double fan_in, fan_out, limit;
    if (L->n_kernel == 0) return;
    if (L->kind == AE_LAYER_BATCHNORM) { /* gamma 1, beta 0 */
        for (size_t i = 0; i < L->n_kernel; i++) L->kernel[i] = 1.0f;
        memset(L->bias, 0, L->n_bias * sizeof *L->bias);
        return;
    }
    if (L->kind == AE_LAYER_DENSE) {
        fan_in = (double)ae__shape_size(&L->in);
        fan_out = (double)L->units;
    } else { /* conv2d and its transpose: receptive field times channels (the sum
              * is the same either way round) */
        fan_in = (double)(L->ksize * L->ksize * L->in.d[2]);
        fan_out = (double)(L->ksize * L->ksize * L->units);
    }
    limit = sqrt(6.0 / (fan_in + fan_out));
    for (size_t i = 0; i < L->n_kernel; i++)
        L->kernel[i] = (float)((2.0 * ae__rng_uniform(rng) - 1.0) * limit);
    memset(L->bias, 0, L->n_bias * sizeof *L->bias);
}
