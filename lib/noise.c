/*
 * Training-only layers: dropout (inverted: kept values are scaled by
 * 1 / (1 - rate), so inference is the identity), Gaussian noise (optionally
 * clipped to [0, 1], as the denoising example of Chollet's tutorial clips its
 * noisy images) and masking noise (each value zeroed with a probability);
 * and the sampling layer of variational autoencoders, which draws the same
 * way in training and passes its mean through in inference.
 *
 * The random numbers are a hash of (the pass key, the row's index in the
 * batch, the element's index in the row), not a stream: backward recomputes
 * the mask forward drew instead of storing it, and a row's noise does not
 * depend on which thread runs it or where that thread's share starts. The
 * pass key mixes the fit seed, the step and the layer index (model.c).
 */
#include <math.h>

#include "nn.h"

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t ae__noise_key(uint64_t seed, uint64_t step, uint64_t layer)
{
    return mix64(mix64(mix64(seed) ^ step) ^ layer);
}

/* uniform in [0, 1) for element e of row r, stream s (0 or 1) */
static double uniform(uint64_t key, size_t row, size_t e, unsigned s)
{
    uint64_t h = mix64(key ^ mix64(((uint64_t)row << 1 | s) * 0xD1B54A32D192ED03ull + e));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* standard normal by Box-Muller */
static float normal(uint64_t key, size_t row, size_t e)
{
    const double u1 = 1.0 - uniform(key, row, e, 0); /* (0, 1] */
    const double u2 = uniform(key, row, e, 1);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Is element e of row r kept (dropout, masking noise)? */
static int kept(const ae_layer *L, const ae__pass *p, size_t r, size_t e)
{
    return uniform(p->key, p->row0 + r, e, 0) >= L->rate;
}

void ae__noise_forward(const ae_layer *L, const float *x, float *y, size_t n, const ae__pass *p)
{
    const size_t size = ae__shape_size(&L->in);
    if (!p || !p->training) {
        if (y != x)
            for (size_t i = 0; i < n * size; i++) y[i] = x[i];
        return;
    }
    for (size_t r = 0; r < n; r++) {
        const float *xr = x + r * size;
        float *yr = y + r * size;
        switch (L->kind) {
        case AE_LAYER_DROPOUT: {
            const float scale = (float)(1.0 / (1.0 - L->rate));
            for (size_t e = 0; e < size; e++) yr[e] = kept(L, p, r, e) ? xr[e] * scale : 0.0f;
            break;
        }
        case AE_LAYER_MASKING_NOISE:
            for (size_t e = 0; e < size; e++) yr[e] = kept(L, p, r, e) ? xr[e] : 0.0f;
            break;
        default: /* Gaussian */
            for (size_t e = 0; e < size; e++) {
                float v = xr[e] + (float)L->rate * normal(p->key, p->row0 + r, e);
                if (L->clip) v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                yr[e] = v;
            }
            break;
        }
    }
}

/* dx from dy: the same mask (recomputed), or for clipped noise zero where
 * the output was clipped (y at 0 or 1). */
void ae__noise_backward(const ae_layer *L, const float *y, const float *dy, float *dx, size_t n,
                        const ae__pass *p)
{
    const size_t size = ae__shape_size(&L->in);
    if (!dx) return;
    if (!p || !p->training) {
        if (dx != dy)
            for (size_t i = 0; i < n * size; i++) dx[i] = dy[i];
        return;
    }
    for (size_t r = 0; r < n; r++) {
        const float *gr = dy + r * size, *yr = y + r * size;
        float *dr = dx + r * size;
        switch (L->kind) {
        case AE_LAYER_DROPOUT: {
            const float scale = (float)(1.0 / (1.0 - L->rate));
            for (size_t e = 0; e < size; e++) dr[e] = kept(L, p, r, e) ? gr[e] * scale : 0.0f;
            break;
        }
        case AE_LAYER_MASKING_NOISE:
            for (size_t e = 0; e < size; e++) dr[e] = kept(L, p, r, e) ? gr[e] : 0.0f;
            break;
        default:
            for (size_t e = 0; e < size; e++)
                dr[e] = L->clip && (yr[e] <= 0.0f || yr[e] >= 1.0f) ? 0.0f : gr[e];
            break;
        }
    }
}

/* ---- sampling (variational autoencoders) ---------------------------------------------
 * Keras' VAE example: z = z_mean + exp(0.5 z_log_var) eps. eps is element e
 * of row r's standard normal draw, as a Gaussian noise layer's, so backward
 * recomputes it and a row's draw does not depend on its thread. */

void ae__sampling_forward(const ae_layer *L, const float *x, float *y, size_t n, const ae__pass *p)
{
    const size_t z = ae__shape_size(&L->out);
    for (size_t r = 0; r < n; r++) {
        const float *mean = x + r * 2 * z, *log_var = mean + z;
        float *yr = y + r * z;
        if (!p || !p->training) {
            for (size_t e = 0; e < z; e++) yr[e] = mean[e];
            continue;
        }
        for (size_t e = 0; e < z; e++)
            yr[e] = mean[e] + expf(0.5f * log_var[e]) * normal(p->key, p->row0 + r, e);
    }
}

/* d mean = dz, d log_var = dz exp(log_var / 2) eps / 2 (training; 0 in
 * inference), plus the KL term's w * mean and w (exp(log_var) - 1) / 2, with
 * w the KL weight over the batch's rows. */
void ae__sampling_backward(const ae_layer *L, const float *x, const float *dy, float *dx, size_t n,
                           const ae__pass *p)
{
    const size_t z = ae__shape_size(&L->out);
    const int training = p && p->training;
    const double w = L->kl_weight / (double)(p && p->batch_rows ? p->batch_rows : n);
    if (!dx) return;
    for (size_t r = 0; r < n; r++) {
        const float *mean = x + r * 2 * z, *log_var = mean + z, *g = dy + r * z;
        float *dmean = dx + r * 2 * z, *dlv = dmean + z;
        for (size_t e = 0; e < z; e++) {
            const double kl_mean = w * mean[e], kl_lv = 0.5 * w * expm1((double)log_var[e]);
            const double sample = training ? 0.5 * (double)g[e] * exp(0.5 * (double)log_var[e]) *
                                                 (double)normal(p->key, p->row0 + r, e)
                                           : 0.0;
            dmean[e] = (float)((double)g[e] + kl_mean);
            dlv[e] = (float)(sample + kl_lv);
        }
    }
}
