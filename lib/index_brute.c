/* Exact brute-force backend.
 *
 * Squared distances are ||q||^2 - 2 q.x + ||x||^2 with the row norms
 * precomputed at build. A batch is cut into blocks of BQ queries x BX rows;
 * each block is one GEMM (ae__sgemm) into a tile that stays in L2, then every
 * query keeps its best candidates in a small max-heap. The GEMM form loses
 * precision to cancellation, so each query keeps a few more candidates than
 * asked, ranks them again in double precision, and checks with a rigorous
 * float error bound that no point left out could have ranked among the k
 * best; when the check fails (exact ties at the boundary, tiny gaps) the query
 * falls back to an exact double scan. Results therefore equal a
 * double-precision brute force, ties broken by the smaller id. */
#define _POSIX_C_SOURCE 200809L /* pthread_rwlock_t (index_impl.h) */
#include <math.h>
#include <string.h>

#include "index_impl.h"

#define BQ 512 /* queries per block */
#define BX 1024 /* rows per block: the tile is BQ x BX floats = 2 MiB */

typedef struct brute {
    size_t cap;   /* rows allocated in norms */
    float *norms; /* squared norm of each row, as ae__dot computes it */
} brute;

static void brute_free(ae_index *idx)
{
    brute *b = idx->state;
    if (!b) return;
    ae__free(b->norms, b->cap * sizeof(float));
    ae__free(b, sizeof *b);
    idx->state = NULL;
}

/* The state is only the row norms, so loading a file is building. */
static ae_status make_norms(ae_index *idx)
{
    size_t n = idx->n, d = idx->sdim, c = idx->cap;
    brute *b = ae__calloc(1, sizeof *b);
    if (!b) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    idx->state = b;
    b->norms = ae__malloc(c * sizeof(float));
    if (!b->norms)
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu row norms", n);
    b->cap = c;
    for (size_t i = 0; i < n; i++) b->norms[i] = ae__dot(idx->data + i * d, idx->data + i * d, d);
    return AE_OK;
}

static ae_status brute_build(ae_index *idx) { return make_norms(idx); }

/* Appends the norms of the new rows; under the inner product an add may have
 * changed every row's extra coordinate, so all norms are computed again then
 * (O(n d), the cost of the append itself). */
static ae_status brute_add(ae_index *idx, size_t from, int *covered, int *rebuild)
{
    brute *b = idx->state;
    size_t d = idx->sdim;
    *covered = 0;
    *rebuild = 0;
    if (b->cap < idx->cap) {
        float *p = ae__realloc(b->norms, b->cap * sizeof(float), idx->cap * sizeof(float));
        if (!p) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for row norms");
        b->norms = p;
        b->cap = idx->cap;
    }
    if (idx->metric == AE_INDEX_INNER_PRODUCT) from = 0;
    for (size_t i = from; i < idx->n; i++)
        b->norms[i] = ae__dot(idx->data + i * d, idx->data + i * d, d);
    return AE_OK;
}

/* Extra candidates kept per query beyond k, so the exactness check rarely fails. */
static size_t extra_for(size_t k) { return k < 16 ? 8 : k / 2; }

/* Turns one tile row of dot products into shifted distances t = ||x||^2 - 2 q.x
 * and offers those below the heap's worst to the heap. Chunks of 64: a
 * vectorised pass computes t and counts values under the threshold, and only
 * chunks with a hit (rare once the heap is full) are scanned one by one. */
#define CHUNK 64
AE__HOT static void select_row(const ae_index *idx, const ae__sel *sel,
                               const float *restrict dots, const float *restrict xn, size_t w,
                               uint32_t base, ae__nb *restrict h, size_t *len, size_t cap)
{
    float thr = *len == cap ? h[0].d : INFINITY;
    float t[CHUNK];
    for (size_t j = 0; j < w; j += CHUNK) {
        size_t m = w - j < CHUNK ? w - j : CHUNK;
        int hits = 0;
        for (size_t u = 0; u < m; u++) {
            float v = xn[j + u] - 2.0f * dots[j + u];
            t[u] = v;
            hits += v < thr;
        }
        if (AE__UNLIKELY(hits)) {
            for (size_t u = 0; u < m; u++) {
                if (t[u] < thr && ae__sel_ok(idx, sel, base + (uint32_t)(j + u))) {
                    ae__nb v = {t[u], base + (uint32_t)(j + u)};
                    ae__topk_offer(h, len, cap, v);
                    if (*len == cap) thr = h[0].d;
                }
            }
        }
    }
}

static ae_status brute_search(const ae_index *idx, const float *q, size_t nq, size_t k,
                              size_t ef, const ae__sel *sel, float *dist, int64_t *ids)
{
    const brute *b = idx->state;
    size_t n = idx->n, d = idx->sdim;
    size_t cap = k + extra_for(k), bq = nq < BQ ? nq : BQ, bx = n < BX ? n : BX;
    size_t tile_bytes, heap_bytes, res_bytes;
    float *tile, *qn;
    ae__nb *heaps;
    size_t *hlen;
    ae__res *res;
    const double rel = ae__l2sq_relerr(d);
    ae_status st = AE_OK;

    (void)ef;
    if (cap > n) cap = n;
    tile_bytes = bq * bx * sizeof(float);
    heap_bytes = bq * cap * sizeof(ae__nb);
    res_bytes = cap * sizeof(ae__res);
    tile = ae__malloc_aligned(tile_bytes);
    heaps = ae__malloc(heap_bytes);
    hlen = ae__malloc(bq * sizeof(size_t));
    qn = ae__malloc(bq * sizeof(float));
    res = ae__malloc(res_bytes);
    if (!tile || !heaps || !hlen || !qn || !res) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu queries", nq);
        goto done;
    }

    for (size_t q0 = 0; q0 < nq; q0 += BQ) {
        size_t m = nq - q0 < BQ ? nq - q0 : BQ;
        const float *qb = q + q0 * d;
        for (size_t i = 0; i < m; i++) {
            hlen[i] = 0;
            qn[i] = ae__dot(qb + i * d, qb + i * d, d);
        }
        for (size_t x0 = 0; x0 < n; x0 += BX) {
            size_t w = n - x0 < BX ? n - x0 : BX;
            ae__sgemm(0, 1, m, w, d, 1.0f, qb, d, idx->data + x0 * d, d, 0.0f, tile, w);
            for (size_t i = 0; i < m; i++)
                select_row(idx, sel, tile + i * w, b->norms + x0, w, (uint32_t)x0,
                           heaps + i * cap, &hlen[i], cap);
        }
        for (size_t i = 0; i < m; i++) {
            const float *qi = qb + i * d;
            ae__nb *h = heaps + i * cap;
            size_t len = hlen[i], out = (q0 + i) * k, nf = len < k ? len : k;
            ae__idx_rank(idx, qi, h, len, res);
            /* a heap that is not full was offered every allowed row */
            if (len == cap && len < n) {
                /* every row left out has float distance >= T, so a true
                 * distance >= T - bound; exact if that beats the k-th */
                double nq_ = sqrt((double)qn[i]) + (double)idx->max_norm;
                double bound = rel * nq_ * nq_ + 1e-30;
                double t = (double)h[0].d + (double)qn[i];
                if (!(t - bound > res[k - 1].d * (1.0 + 1e-12)))
                    nf = ae__idx_exact_scan(idx, qi, k, sel, res);
            }
            ae__idx_emit(idx, qi, res, nf, k, dist ? dist + out : NULL, ids + out);
        }
    }
done:
    if (tile) ae__free_aligned(tile, tile_bytes);
    ae__free(heaps, heap_bytes);
    ae__free(hlen, bq * sizeof(size_t));
    ae__free(qn, bq * sizeof(float));
    ae__free(res, res_bytes);
    return st;
}

static ae_status brute_load(ae_index *idx, const ae__index_src *src)
{
    if (src->len != 0)
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has %zu stray bytes", src->path, src->len);
    return make_norms(idx);
}

static size_t brute_memory_bytes(const ae_index *idx)
{
    const brute *b = idx->state;
    return b ? sizeof *b + b->cap * sizeof(float) : 0;
}

const ae__index_ops ae__index_ops_brute = {
    .backend = AE_INDEX_BRUTE,
    .name = "brute",
    .params = 0u,
    .file_section = 0u,
    .build = brute_build,
    .search = brute_search,
    .add = brute_add,
    .pending = NULL,
    .file_bytes = NULL, /* no file section */
    .save = NULL,
    .load = brute_load,
    .free_state = brute_free,
    .memory_bytes = brute_memory_bytes,
};
