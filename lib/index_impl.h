/*
 * Private to the index module (index.c, index_brute.c, index_balltree.c,
 * index_hnsw.c): the struct body, distance kernels and small heaps.
 */
#ifndef AUTOENC_INDEX_IMPL_H
#define AUTOENC_INDEX_IMPL_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Hot functions are compiled once per instruction set and picked at load
 * time (GCC function multi-versioning through ifunc), so a generic x86-64
 * build still uses AVX2/AVX-512 where the CPU has them. The distance kernels
 * below are static inline and get inlined into every clone. Off under
 * ThreadSanitizer: its instrumented ifunc resolvers run before the TSan
 * runtime is up and crash at load time. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__) && !defined(AE_NO_TARGET_CLONES)
#define AE__HOT __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define AE__HOT
#endif

#if defined(__GNUC__)
#define AE__PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define AE__LIKELY(x) __builtin_expect(!!(x), 1)
#define AE__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define AE__PREFETCH(p) ((void)0)
#define AE__LIKELY(x) (x)
#define AE__UNLIKELY(x) (x)
#endif

#define AE__INDEX_NPARAMS 6      /* keys 1..5, slot 0 unused */
#define AE__INDEX_MAX_DIM ((size_t)1 << 20)
#define AE__INDEX_MAX_N ((size_t)UINT32_MAX - 1)
#define AE__INDEX_MAX_EF 65536
#define AE__HNSW_MAX_LEVEL 48

struct ae_index {
    ae_index_backend backend;
    ae_index_metric metric;
    size_t dim;
    int built;
    int64_t params[AE__INDEX_NPARAMS];

    size_t n;
    float *data;     /* n x dim, 64-byte aligned, in internal row order;
                        normalised under cosine */
    float *norms;    /* brute force: squared norm of each internal row */
    float max_norm;  /* largest L2 norm of a row (for error bounds) */
    int64_t *ids;    /* per input row */
    int32_t *labels; /* per input row, or NULL */
    uint32_t *by_id; /* input rows sorted by id (label lookup) */
    uint32_t *perm;  /* internal row -> input row; NULL means identity */

    /* ball tree: complete binary tree in an array, children 2i+1 and 2i+2 */
    uint32_t bt_levels;
    size_t bt_nodes;
    uint32_t *bt_start, *bt_end; /* internal row range of each node */
    float *bt_centroids;         /* bt_nodes x dim, aligned */
    float *bt_radii;             /* upper bounds of each node's radius */

    /* HNSW */
    uint32_t h_m, h_m0;     /* max links on upper layers / layer 0 */
    uint32_t h_max_level, h_entry;
    uint8_t *h_levels;      /* top layer of each node */
    uint32_t *h_links0;     /* n x (1 + m0): count then links */
    uint64_t *h_upper_off;  /* n: offset into h_upper of layer 1 (levels>0) */
    uint32_t *h_upper;      /* per node, per layer 1..level: count + m links */
    size_t h_upper_len;     /* u32 entries in h_upper */

    char msg[AE__MSG_CAP];
};

/* A (distance, row) pair; heaps order by distance then row. */
typedef struct ae__nb {
    float d;
    uint32_t r;
} ae__nb;

static inline int ae__nb_less(ae__nb a, ae__nb b)
{
    return a.d < b.d || (a.d == b.d && a.r < b.r);
}

/* Max-heap (largest on top) of at most cap entries. */
static inline void ae__maxheap_push(ae__nb *h, size_t *len, ae__nb v)
{
    size_t i = (*len)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ae__nb_less(h[p], v)) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static inline void ae__maxheap_sift_down(ae__nb *h, size_t len, size_t i, ae__nb v)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len) break;
        if (c + 1 < len && ae__nb_less(h[c], h[c + 1])) c++;
        if (!ae__nb_less(v, h[c])) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

/* Replace the top of a full max-heap with v (v must be less than the top). */
static inline void ae__maxheap_replace(ae__nb *h, size_t len, ae__nb v)
{
    ae__maxheap_sift_down(h, len, 0, v);
}

static inline void ae__maxheap_pop(ae__nb *h, size_t *len)
{
    size_t n = --(*len);
    if (n > 0) ae__maxheap_sift_down(h, n, 0, h[n]);
}

/* Offer v to a max-heap holding up to cap entries. */
static inline void ae__topk_offer(ae__nb *h, size_t *len, size_t cap, ae__nb v)
{
    if (*len < cap) ae__maxheap_push(h, len, v);
    else if (ae__nb_less(v, h[0])) ae__maxheap_replace(h, *len, v);
}

/* Min-heap (smallest on top). */
static inline void ae__minheap_push(ae__nb *h, size_t *len, ae__nb v)
{
    size_t i = (*len)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ae__nb_less(v, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static inline void ae__minheap_pop(ae__nb *h, size_t *len)
{
    size_t n = --(*len), i = 0;
    ae__nb v;
    if (n == 0) return;
    v = h[n];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ae__nb_less(h[c + 1], h[c])) c++;
        if (!ae__nb_less(h[c], v)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

/* Squared L2 distance in float, 32 independent partial sums (two AVX-512 or
 * four AVX2 registers, so the adds do not wait on each other) that the
 * compiler vectorises without reassociating (no -ffast-math needed). The
 * relative error is below (d + 2) * FLT_EPSILON / 2 of the exact value. */
static inline float ae__fold32(float *acc)
{
    for (int j = 0; j < 16; j++) acc[j] += acc[j + 16];
    for (int j = 0; j < 8; j++) acc[j] += acc[j + 8];
    for (int j = 0; j < 4; j++) acc[j] += acc[j + 4];
    return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

static inline float ae__l2sq(const float *restrict a, const float *restrict b, size_t d)
{
    float acc[32] = {0};
    float s = 0.0f;
    size_t i = 0;
    for (; i + 32 <= d; i += 32)
        for (int j = 0; j < 32; j++) {
            float t = a[i + j] - b[i + j];
            acc[j] += t * t;
        }
    for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; j++) {
            float t = a[i + j] - b[i + j];
            acc[j] += t * t;
        }
    for (; i < d; i++) {
        float t = a[i] - b[i];
        s += t * t;
    }
    return s + ae__fold32(acc);
}

static inline float ae__dot(const float *restrict a, const float *restrict b, size_t d)
{
    float acc[32] = {0};
    float s = 0.0f;
    size_t i = 0;
    for (; i + 32 <= d; i += 32)
        for (int j = 0; j < 32; j++) acc[j] += a[i + j] * b[i + j];
    for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    for (; i < d; i++) s += a[i] * b[i];
    return s + ae__fold32(acc);
}

/* Squared L2 distance in double, summed in order: the reference used to rank
 * the final candidates of every backend. */
static inline double ae__l2sq_d(const float *a, const float *b, size_t d)
{
    double s = 0.0;
    for (size_t i = 0; i < d; i++) {
        double t = (double)a[i] - (double)b[i];
        s += t * t;
    }
    return s;
}

/* Relative error factor of ae__l2sq (with margin), for exactness checks. */
static inline double ae__l2sq_relerr(size_t d) { return (double)(d + 4) * (double)FLT_EPSILON; }

/* A final result: exact (double) squared distance and caller id. */
typedef struct ae__res {
    double d;
    int64_t id;
    uint32_t r; /* internal row */
} ae__res;

/* ---- shared helpers (index.c) ---------------------------------------------- */
/* Ranks cand[0..nc) (internal rows) by exact double distance to q, then id;
 * leaves the best min(k, nc) first in res (res holds nc entries). */
void ae__idx_rank(const ae_index *idx, const float *q, const ae__nb *cand, size_t nc,
                  ae__res *res);
/* Exact k nearest by a double-precision scan of every row (the fallback that
 * makes the exact backends exact whatever the rounding). res holds k. */
void ae__idx_exact_scan(const ae_index *idx, const float *q, size_t k, ae__res *res);
/* Writes k results (distances converted to the metric) to the outputs. */
void ae__idx_emit(const ae_index *idx, const ae__res *res, size_t k, float *dist, int64_t *ids);
/* res[0..nc) = cand sorted by (float distance, id), no re-ranking (HNSW). */
void ae__idx_order(const ae_index *idx, const ae__nb *cand, size_t nc, ae__res *res);

/* ---- backends ----------------------------------------------------------------
 * build: idx->data/n/ids are set (data in input order, normalised under
 * cosine); may permute data and set perm. search: queries are already
 * checked and normalised; k <= n. */
ae_status ae__brute_build(ae_index *idx);
ae_status ae__brute_search(const ae_index *idx, const float *q, size_t nq, size_t k,
                           float *dist, int64_t *ids);
ae_status ae__balltree_build(ae_index *idx);
ae_status ae__balltree_search(const ae_index *idx, const float *q, size_t nq, size_t k,
                              float *dist, int64_t *ids);
/* Tree depth for n points and a leaf size (scikit-learn's rule:
 * 1 + floor(log2(max(1, (n - 1) / leaf_size)))). */
uint32_t ae__balltree_levels(size_t n, size_t leaf_size);
/* Allocates and fills bt_start/bt_end (and bt_nodes) from bt_levels and n. */
ae_status ae__balltree_ranges(ae_index *idx);
ae_status ae__hnsw_build(ae_index *idx);
ae_status ae__hnsw_search(const ae_index *idx, const float *q, size_t nq, size_t k, size_t ef,
                          float *dist, int64_t *ids);

#endif /* AUTOENC_INDEX_IMPL_H */
