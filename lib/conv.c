/*
 * Direct 2-D convolution kernels, NHWC, stride 1, any k x k kernel.
 *
 * For the 1-16 channel layers of small autoencoders, im2col + GEMM spends most
 * of its time copying (the column matrix is k*k times the input, and GEMM
 * packs it again), so these kernels compute straight from the input:
 * every output pixel keeps its cout accumulators in registers and walks the
 * k*k*cin window once. Channel counts are compile-time constants in the
 * instances below (1, 8, 16 in the reference models) so the channel loops
 * unroll into whole SIMD registers; other sizes take the generic instance.
 * Hot functions are built for AVX-512, AVX2+FMA and baseline x86-64 and the
 * best is chosen at load time (GCC/Clang target_clones), so the library
 * stays portable without -march flags.
 */
#include <stdint.h>
#include <string.h>

#include "nn.h"

/* The vector helpers are static and inlined; their by-value vector ABI never
 * crosses a call boundary, so GCC's note about it is noise. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* Geometry of one convolution, resolved once per call. */
typedef struct conv_geom {
    size_t ih, iw, cin, oh, ow, cout, k, pt, pl;
} conv_geom;

static conv_geom geom_of(const ae_layer *L)
{
    conv_geom g = {L->in.d[0], L->in.d[1], L->in.d[2], L->out.d[0], L->out.d[1],
                   L->units,   L->ksize,   L->pad_top, L->pad_left};
    return g;
}

/* ---- forward: y (n, oh, ow, cout) = act(conv(x) + b) -------------------------- */

AE__ALWAYS_INLINE void fwd_impl(const conv_geom *g, const float *restrict x,
                                const float *restrict w, const float *restrict bias,
                                float *restrict y, size_t b0, size_t b1, int relu,
                                const size_t cin, const size_t cout)
{
    enum { MAXC = 64 };
    for (size_t b = b0; b < b1; b++) {
        const float *xb = x + b * g->ih * g->iw * cin;
        float *yb = y + b * g->oh * g->ow * cout;
        for (size_t oy = 0; oy < g->oh; oy++) {
            for (size_t ox = 0; ox < g->ow; ox++) {
                float acc[MAXC];
                float *out = yb + (oy * g->ow + ox) * cout;
                if (cout == 1) {
                    /* one output channel: accumulate per input channel, sum at the end */
                    float part[MAXC] = {0};
                    for (size_t ky = 0; ky < g->k; ky++) {
                        size_t iy = oy + ky - g->pt;
                        if (iy >= g->ih) continue;
                        for (size_t kx = 0; kx < g->k; kx++) {
                            size_t ix = ox + kx - g->pl;
                            const float *xp, *wp;
                            if (ix >= g->iw) continue;
                            xp = xb + (iy * g->iw + ix) * cin;
                            wp = w + (ky * g->k + kx) * cin;
                            for (size_t ci = 0; ci < cin; ci++) part[ci] += xp[ci] * wp[ci];
                        }
                    }
                    acc[0] = bias[0];
                    for (size_t ci = 0; ci < cin; ci++) acc[0] += part[ci];
                } else {
                    for (size_t co = 0; co < cout; co++) acc[co] = bias[co];
                    for (size_t ky = 0; ky < g->k; ky++) {
                        size_t iy = oy + ky - g->pt; /* wraps above ih when outside */
                        if (iy >= g->ih) continue;
                        for (size_t kx = 0; kx < g->k; kx++) {
                            size_t ix = ox + kx - g->pl;
                            const float *xp, *wp;
                            if (ix >= g->iw) continue;
                            xp = xb + (iy * g->iw + ix) * cin;
                            wp = w + (ky * g->k + kx) * cin * cout;
                            for (size_t ci = 0; ci < cin; ci++) {
                                const float xv = xp[ci];
                                for (size_t co = 0; co < cout; co++) acc[co] += xv * wp[ci * cout + co];
                            }
                        }
                    }
                }
                if (relu)
                    for (size_t co = 0; co < cout; co++) out[co] = acc[co] > 0.0f ? acc[co] : 0.0f;
                else
                    for (size_t co = 0; co < cout; co++) out[co] = acc[co];
            }
        }
    }
}

/* ---- backward, parameters: gw (k, k, cin, cout) += x (x) dz; gb += dz ---------- */

AE__ALWAYS_INLINE void grad_w_impl(const conv_geom *g, const float *restrict x,
                                   const float *restrict dz, float *restrict gw,
                                   float *restrict gb, size_t b0, size_t b1, const size_t cin,
                                   const size_t cout)
{
    for (size_t b = b0; b < b1; b++) {
        const float *xb = x + b * g->ih * g->iw * cin;
        const float *db = dz + b * g->oh * g->ow * cout;
        for (size_t oy = 0; oy < g->oh; oy++) {
            for (size_t ox = 0; ox < g->ow; ox++) {
                const float *d = db + (oy * g->ow + ox) * cout;
                for (size_t co = 0; co < cout; co++) gb[co] += d[co];
                for (size_t ky = 0; ky < g->k; ky++) {
                    size_t iy = oy + ky - g->pt;
                    if (iy >= g->ih) continue;
                    for (size_t kx = 0; kx < g->k; kx++) {
                        size_t ix = ox + kx - g->pl;
                        const float *xp;
                        float *gp;
                        if (ix >= g->iw) continue;
                        xp = xb + (iy * g->iw + ix) * cin;
                        gp = gw + (ky * g->k + kx) * cin * cout;
                        if (cout == 1) {
                            for (size_t ci = 0; ci < cin; ci++) gp[ci] += xp[ci] * d[0];
                        } else {
                            for (size_t ci = 0; ci < cin; ci++) {
                                const float xv = xp[ci];
                                for (size_t co = 0; co < cout; co++) gp[ci * cout + co] += xv * d[co];
                            }
                        }
                    }
                }
            }
        }
    }
}

/* ---- backward, input: dx += conv^T(dz), with wt (k, k, cout, cin) --------------- */

AE__ALWAYS_INLINE void grad_x_impl(const conv_geom *g, const float *restrict dz,
                                   const float *restrict wt, float *restrict dx, size_t b0,
                                   size_t b1, const size_t cin, const size_t cout)
{
    for (size_t b = b0; b < b1; b++) {
        float *xb = dx + b * g->ih * g->iw * cin;
        const float *db = dz + b * g->oh * g->ow * cout;
        memset(xb, 0, g->ih * g->iw * cin * sizeof *xb);
        for (size_t oy = 0; oy < g->oh; oy++) {
            for (size_t ox = 0; ox < g->ow; ox++) {
                const float *d = db + (oy * g->ow + ox) * cout;
                for (size_t ky = 0; ky < g->k; ky++) {
                    size_t iy = oy + ky - g->pt;
                    if (iy >= g->ih) continue;
                    for (size_t kx = 0; kx < g->k; kx++) {
                        size_t ix = ox + kx - g->pl;
                        const float *wp;
                        float *xp;
                        if (ix >= g->iw) continue;
                        xp = xb + (iy * g->iw + ix) * cin;
                        wp = wt + (ky * g->k + kx) * cout * cin;
                        for (size_t co = 0; co < cout; co++) {
                            const float dv = d[co];
                            for (size_t ci = 0; ci < cin; ci++) xp[ci] += dv * wp[co * cin + ci];
                        }
                    }
                }
            }
        }
    }
}

/* ---- scalar instances for any channel counts ----------------------------------- */

AE__HOT static void fwd_any(const conv_geom *g, const float *x, const float *w, const float *bias,
                            float *y, size_t b0, size_t b1, int relu)
{
    fwd_impl(g, x, w, bias, y, b0, b1, relu, g->cin, g->cout);
}
AE__HOT static void gw_any(const conv_geom *g, const float *x, const float *dz, float *gw,
                           float *gb, size_t b0, size_t b1)
{
    grad_w_impl(g, x, dz, gw, gb, b0, b1, g->cin, g->cout);
}
AE__HOT static void gx_any(const conv_geom *g, const float *dz, const float *wt, float *dx,
                           size_t b0, size_t b1)
{
    grad_x_impl(g, dz, wt, dx, b0, b1, g->cin, g->cout);
}

/* ---- vector instances: 8 and 16 channels ------------------------------------------ */
#define AE_V 8
#include "conv_vec.inc"
#undef AE_V
#define AE_V 16
#include "conv_vec.inc"
#define AE_VPAIR
#include "conv_vec.inc"
#undef AE_VPAIR
#undef AE_V

typedef void (*conv_fwd_fn)(const conv_geom *, const float *, const float *, const float *,
                            float *, size_t, size_t, int);
typedef void (*conv_gw_fn)(const conv_geom *, const float *, const float *, float *, float *,
                           size_t, size_t);

/* 16-channel layers: one AVX-512 vector, or a pair of AVX2 ones (conv_vec.inc) */
static conv_fwd_fn pick_fwd(size_t cin, size_t cout, int wide)
{
    if (cout == 16) return wide ? fwd_co16 : fwd_co16p;
    if (cout == 8) return fwd_co8;
    if (cout == 1 && cin == 16) return wide ? fwd_ci16 : fwd_ci16p;
    if (cout == 1 && cin == 8) return fwd_ci8;
    return fwd_any;
}

static conv_gw_fn pick_gw(size_t cin, size_t cout, int wide)
{
    if (cout == 16) return wide ? gw_co16 : gw_co16p;
    if (cout == 8) return gw_co8;
    if (cout == 1 && cin == 16) return wide ? gw_ci16 : gw_ci16p;
    if (cout == 1 && cin == 8) return gw_ci8;
    return gw_any;
}

/* The direct kernels keep up to 64 accumulators per pixel and move by one
 * pixel; wider or strided layers use im2col + GEMM (layers.c). */
int ae__conv_direct_ok(const ae_layer *L)
{
    return L->kind == AE_LAYER_CONV2D && L->stride == 1 && L->units <= 64 && L->in.d[2] <= 64;
}

void ae__conv_forward_form(const ae_layer *L, const float *x, float *y, size_t b0, size_t b1,
                           int relu, int wide)
{
    conv_geom g = geom_of(L);
    pick_fwd(g.cin, g.cout, wide)(&g, x, L->kernel, L->bias, y, b0, b1, relu);
}

void ae__conv_forward(const ae_layer *L, const float *x, float *y, size_t b0, size_t b1, int relu)
{
    ae__conv_forward_form(L, x, y, b0, b1, relu, AE__CPU_HAS_AVX512());
}

void ae__conv_grad_params_form(const ae_layer *L, const float *x, const float *dz, float *gk,
                               float *gb, size_t b0, size_t b1, int wide)
{
    conv_geom g = geom_of(L);
    pick_gw(g.cin, g.cout, wide)(&g, x, dz, gk, gb, b0, b1);
}

void ae__conv_grad_params(const ae_layer *L, const float *x, const float *dz, float *gk,
                          float *gb, size_t b0, size_t b1)
{
    ae__conv_grad_params_form(L, x, dz, gk, gb, b0, b1, AE__CPU_HAS_AVX512());
}

/* wt: (k, k, cout, cin) transpose of the kernel, from ae__conv_transpose_kernel */
/* The input gradient is itself a convolution: of dz, padded by k-1-pad, with
 * the kernel flipped in both axes and its channel axes swapped. Written that
 * way it reuses the blocked forward kernels (four pixels per pass). */
void ae__conv_grad_input(const ae_layer *L, const float *dz, const float *wt, float *dx,
                         size_t b0, size_t b1)
{
    const conv_geom f = geom_of(L);
    const conv_geom g = {f.oh, f.ow, f.cout, f.ih, f.iw, f.cin, f.k, f.k - 1 - f.pt, f.k - 1 - f.pl};
    float zero_bias[64] = {0};
    if (g.cout == 8 || g.cout == 16)
        pick_fwd(g.cin, g.cout, AE__CPU_HAS_AVX512())(&g, dz, wt, zero_bias, dx, b0, b1, 0);
    else
        gx_any(&f, dz, wt, dx, b0, b1);
}

/* wt for ae__conv_grad_input. For 8 or 16 input channels: the flipped
 * kernel as a forward kernel (k, k, cout, cin); otherwise the plain
 * transpose (k, k, cout, cin) the scalar kernel reads. */
void ae__conv_transpose_kernel(const ae_layer *L, float *wt)
{
    const size_t k = L->ksize, kk = k * k, cin = L->in.d[2], cout = L->units;
    const int flip = cin == 8 || cin == 16;
    for (size_t p = 0; p < kk; p++) {
        const size_t q = flip ? kk - 1 - p : p; /* (ky, kx) -> (k-1-ky, k-1-kx) */
        for (size_t ci = 0; ci < cin; ci++)
            for (size_t co = 0; co < cout; co++)
                wt[(q * cout + co) * cin + ci] = L->kernel[(p * cin + ci) * cout + co];
    }
}
