/* Test data (test_support.h): one generator, so a seed names the same rows
 * in every suite and on every platform. xoshiro256** seeded through
 * splitmix64, the algorithm of the library's own generator (ae__rng), kept
 * as a separate copy: the suites that used ae__rng keep the very data their
 * finite-difference checks were tuned on (those checks fail on most other
 * seeds), and a change in the library's generator cannot silently change
 * what a test checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void ae_test_rng_seed(ae_test_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

double ae_test_rng_uniform(ae_test_rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return (double)(result >> 11) * 0x1.0p-53;
}

/* In float, as the suites computed it before they shared this. */
void ae_test_fill(ae_test_rng *r, float *x, size_t n, double lo, double hi)
{
    const float l = (float)lo, h = (float)hi;
    for (size_t i = 0; i < n; i++) x[i] = l + (h - l) * (float)ae_test_rng_uniform(r);
}

static void *checked_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "ae_test: out of memory for %zu bytes of test data\n", n);
        abort();
    }
    return p;
}

float *ae_test_rows_range(size_t n, size_t d, uint64_t seed, double lo, double hi)
{
    float *x = checked_malloc(n * d * sizeof *x);
    ae_test_rng r;
    ae_test_rng_seed(&r, seed);
    ae_test_fill(&r, x, n * d, lo, hi);
    return x;
}

float *ae_test_rows(size_t n, size_t d, uint64_t seed)
{
    return ae_test_rows_range(n, d, seed, 0.0, 1.0);
}

unsigned char *ae_test_bytes(size_t n, uint64_t seed)
{
    unsigned char *b = checked_malloc(n);
    ae_test_rng r;
    ae_test_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(ae_test_rng_uniform(&r) * 256.0);
    return b;
}

void ae_test_clusters(ae_test_rng *r, float *x, int32_t *labels, size_t n, size_t d,
                      const float *centres, size_t k, double spread)
{
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)(ae_test_rng_uniform(r) * (double)k);
        if (labels) labels[i] = (int32_t)c;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] =
                centres[c * d + j] + (float)(spread * (2.0 * ae_test_rng_uniform(r) - 1.0));
    }
}

void ae_test_draw(unsigned char img[784], ae_test_shape shape, ae_test_rng *r)
{
    double cx = 9 + 10 * ae_test_rng_uniform(r), cy = 9 + 10 * ae_test_rng_uniform(r);
    double rad = 4 + 5 * ae_test_rng_uniform(r);
    memset(img, 0, 784);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double dx = x - cx, dy = y - cy, dist = sqrt(dx * dx + dy * dy);
            int ink;
            if (shape == AE_TEST_RING) ink = fabs(dist - rad) < 1.2;
            else if (shape == AE_TEST_CROSS) ink = (fabs(dx) < 1.2 || fabs(dy) < 1.2) && dist < rad;
            else /* the outline of a box 3 rad wide and rad high */
                ink = fabs(dy) < rad / 2 && fabs(dx) < 1.5 * rad &&
                      (fabs(fabs(dy) - rad / 2) < 1.2 || fabs(fabs(dx) - 1.5 * rad) < 1.2);
            img[y * 28 + x] = ink ? 255 : 0;
        }
}
