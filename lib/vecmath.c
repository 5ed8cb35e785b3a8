/*
 * Vectorisable element-wise math for the training hot path: sigmoid, the
 * binary cross-entropy sum and its gradient, and the finiteness checks.
 *
 * libm's expf/logf are scalar calls; a training step of the simple model
 * spends more time in them than in its matrix products. These loops use the
 * Cephes single-precision polynomials (max relative error about 1e-7, the
 * same as float rounding) written branch-free so the compiler vectorises
 * them, and are built for AVX-512, AVX2 and baseline x86-64 (target_clones).
 *
 * An element's result never depends on where a loop starts or ends: the
 * vector body and the scalar remainder of a loop perform the same IEEE
 * operations, so a sigmoid output is the same bits whether its row was the
 * tenth of a chunk or the last (tests/test_layers.c scores every element
 * alone and in bulk). The polynomials' multiply-adds are fused on CPUs with
 * FMA (this file is built with -ffp-contract=fast, lib/CMakeLists.txt), in
 * the vector body and the remainder alike: the fused sigmoid and BCE of 64
 * rows of 784 outputs took 20-25% less time on one core of an AVX2 EPYC.
 */
#include <math.h>
#include <string.h>

#include "nn.h"

static inline float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* 1 for NaN or infinity (exponent all ones); branch-free, so loops vectorise */
static inline uint32_t non_finite(float f)
{
    return (float_to_bits(f) & 0x7F800000u) == 0x7F800000u;
}

/* v held to [lo, hi] for 0 < lo < hi, any v but NaN: positive floats order
 * as their bits do as signed integers, and negative ones fall below every
 * positive one, so the clamp is an integer max and min, which vectorise to
 * one instruction each (float comparisons compile to compare-and-blend
 * pairs without -ffinite-math-only) */
static inline float clamp_positive(float v, float lo, float hi)
{
    int32_t b = (int32_t)float_to_bits(v);
    const int32_t lo_bits = (int32_t)float_to_bits(lo), hi_bits = (int32_t)float_to_bits(hi);
    b = b < lo_bits ? lo_bits : b;
    b = b > hi_bits ? hi_bits : b;
    return bits_to_float((uint32_t)b);
}

/* e^x for x in [-87, 88] (callers clamp): Cephes expf */
static inline float exp_poly(float x)
{
    const float fx = x * 1.44269504088896341f;
    /* round to nearest without calling rintf: adding 1.5 * 2^23 leaves the
     * rounded integer in the low mantissa bits, which also give 2^n below
     * without a float-to-int conversion (undefined for NaN, which the
     * sigmoid lets through) */
    const float shifted = fx + 12582912.0f;
    const float n = shifted - 12582912.0f;
    const int32_t ni = (int32_t)(float_to_bits(shifted) - 0x4B400000u);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f, y;
    y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    return y * bits_to_float((uint32_t)(ni + 127) << 23);
}

/* ln(x) for normal positive x: Cephes logf */
static inline float log_poly(float x)
{
    const uint32_t u = float_to_bits(x);
    int32_t e = (int32_t)((u >> 23) & 0xFF) - 126;   /* x = m * 2^e, m in [0.5, 1) */
    float m = bits_to_float((u & 0x807FFFFFu) | 0x3F000000u), z, y;
    /* m < sqrt(1/2): use 2m - 1 and e - 1 (arithmetic, not a branch, so the
     * loops around it vectorise) */
    const int32_t small = m < 0.707106781186547524f;
    e -= small;
    m = m - 1.0f + (float)small * m;
    z = m * m;
    /* the degree-8 polynomial in Estrin's form: 4 dependent steps where
     * Horner's takes 9, so a vector loop's iterations overlap (Horner's chain
     * made the loss 30% of the simple model's training step on AVX2) */
    {
        const float z2 = z * z;
        const float q0 = 3.3333331174e-1f - 2.4999993993e-1f * m;
        const float q1 = 2.0000714765e-1f - 1.6668057665e-1f * m;
        const float q2 = 1.4249322787e-1f - 1.2420140846e-1f * m;
        const float q3 = 1.1676998740e-1f - 1.1514610310e-1f * m;
        const float r0 = q0 + q1 * z, r1 = q2 + q3 * z + 7.0376836292e-2f * z2;
        y = r0 + r1 * z2;
    }
    y = y * m * z;
    y += -2.12194440e-4f * (float)e;
    y += -0.5f * z;
    return m + y + 0.693359375f * (float)e;
}

AE__HOT void ae__sigmoid_inplace(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float in = v[i];
        /* A NaN passes both clamps and is put back in the result, so it
         * still reaches the caller's checks. */
        float x = -in;
        x = x < -87.0f ? -87.0f : x;
        x = x > 88.0f ? 88.0f : x;
        const float s = 1.0f / (1.0f + exp_poly(x));
        v[i] = in == in ? s : in;
    }
}

/* BCE terms are computed 256 at a time into a buffer (a vector loop), then
 * added in double (float accumulation would lose digits that finite-difference
 * checks and long epochs notice). The clamp would turn a NaN or infinite
 * prediction into a finite loss, so those are looked for in the same loop and
 * make the sum NaN. */
AE__HOT double ae__bce_sum(const float *pred, const float *target, size_t n, float *grad,
                           float inv_norm)
{
    const float eps = 1e-7f, hi = 1.0f - 1e-7f;
    float terms[256], clamped[256];
    double total = 0.0;
    uint32_t bad = 0;
    for (size_t start = 0; start < n; start += 256) {
        const size_t len = n - start < 256 ? n - start : 256;
        const float *p = pred + start, *t = target + start;
        for (size_t i = 0; i < len; i++) {
            bad |= non_finite(p[i]);
            clamped[i] = p[i] < eps ? eps : (p[i] > hi ? hi : p[i]);
        }
        for (size_t i = 0; i < len; i++)
            terms[i] = t[i] * log_poly(clamped[i]) + (1.0f - t[i]) * log_poly(1.0f - clamped[i]);
        {
            /* 16 float lanes (a vector loop), then the lanes in double */
            float lanes[16] = {0};
            size_t i = 0;
            for (; i + 16 <= len; i += 16)
                for (size_t j = 0; j < 16; j++) lanes[j] += terms[i + j];
            for (; i < len; i++) lanes[0] += terms[i];
            for (size_t j = 0; j < 16; j++) total -= (double)lanes[j];
        }
        if (grad) {
            float *g = grad + start;
            for (size_t i = 0; i < len; i++) {
                const float pc = clamped[i];
                /* the clamp is flat outside [eps, 1-eps]: no gradient there */
                const float d = (pc - t[i]) / (pc * (1.0f - pc)) * inv_norm;
                g[i] = p[i] == pc ? d : 0.0f;
            }
        }
    }
    return bad ? (double)NAN : total;
}

/* Sigmoid and binary cross-entropy in one pass over the output layer's
 * pre-activations z (training and validation of a sigmoid output scored with
 * BCE). p = 1 / (1 + e^-z) is computed exactly as ae__sigmoid_inplace does,
 * so the gradient p - target is the same bits; the loss then needs one
 * logarithm, of the 1 + E the sigmoid divides by: with E = e^-z,
 *
 *     -ln p = ln(1 + E)        -ln(1 - p) = ln(1 + E) + z
 *
 * and each is held to the range Keras' clamp of p to [1e-7, 1 - 1e-7] gives
 * it (the clamp is in float32, where 1 - 1e-7 rounds to 1 - 2^-23). On one
 * core of an AVX2 EPYC, 64 rows of 784 outputs took 2.5-2.8 ns an element
 * against 3.5-3.9 ns for the sigmoid pass then the two logarithms of the
 * clamped p. The loss is the clamped form's up to float rounding
 * (tests/test_train.c compares both with a double-precision reference).
 *
 * Each row's terms are summed on their own (16 float lanes per 256-element
 * chunk, then the lanes in double), so a row's sum does not depend on the
 * rows around it or on which thread scored it. A non-finite z makes its
 * row's sum NaN. */
AE__HOT void ae__bce_logits_rows(float *restrict zp, const float *restrict target, size_t rows,
                                 size_t cols, float *restrict grad, float inv_norm,
                                 double *restrict row_sums)
{
    const float p_cap = 16.1180957f, p_floor = 1.19209297e-7f; /* -ln 1e-7, -ln(1 - 2^-23) */
    const float q_cap = 15.9423852f, q_floor = 1.00000001e-7f; /* -ln 2^-23, -ln(1 - 1e-7) */
    float terms[256], one_plus[256], neg_z[256];
    for (size_t r = 0; r < rows; r++) {
        float *z = zp + r * cols;
        const float *t = target + r * cols;
        float *g = grad ? grad + r * cols : NULL;
        double sum = 0.0;
        uint32_t bad = 0;
        for (size_t start = 0; start < cols; start += 256) {
            const size_t len = cols - start < 256 ? cols - start : 256;
            float *zc = z + start;
            const float *tc = t + start;
            /* two loops, not one: each iteration of one loop held two long
             * dependency chains (the exponential, then the logarithm), and
             * too few iterations fitted in the CPU's scheduler to hide them
             * (3.5-3.6 ns an element against 2.5-2.8 ns split, on AVX2) */
            for (size_t i = 0; i < len; i++) {
                const float in = zc[i];
                float x = -in;
                bad |= non_finite(in);
                x = x < -87.0f ? -87.0f : x;
                x = x > 88.0f ? 88.0f : x;
                neg_z[i] = x;
                one_plus[i] = 1.0f + exp_poly(x);
                zc[i] = in == in ? 1.0f / one_plus[i] : in;
            }
            for (size_t i = 0; i < len; i++) {
                const float neg_log_p = log_poly(one_plus[i]), neg_log_q = neg_log_p - neg_z[i];
                terms[i] = tc[i] * clamp_positive(neg_log_p, p_floor, p_cap) +
                           (1.0f - tc[i]) * clamp_positive(neg_log_q, q_floor, q_cap);
            }
            if (g)
                for (size_t i = 0; i < len; i++) g[start + i] = (zc[i] - tc[i]) * inv_norm;
            {
                float lanes[16] = {0};
                size_t i = 0;
                for (; i + 16 <= len; i += 16)
                    for (size_t j = 0; j < 16; j++) lanes[j] += terms[i + j];
                for (; i < len; i++) lanes[0] += terms[i];
                for (size_t j = 0; j < 16; j++) sum += (double)lanes[j];
            }
        }
        row_sums[r] = bad ? (double)NAN : sum;
    }
}

AE__HOT int ae__all_finite(const float *x, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= non_finite(x[i]);
    return !bad;
}

/* The check rides on a copy the caller makes anyway (prediction outputs
 * leaving the workspace), so it costs no second pass over memory. */
AE__HOT int ae__copy_finite(float *restrict dst, const float *restrict src, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i];
        bad |= non_finite(src[i]);
    }
    return !bad;
}
