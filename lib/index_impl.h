/*
 * Private to the index module: the facade (index.c) and the backends
 * (index_brute.c, index_balltree.c, index_hnsw.c). The shared struct body,
 * the backend ops table, distance kernels and small heaps.
 */
#ifndef AUTOENC_INDEX_IMPL_H
#define AUTOENC_INDEX_IMPL_H

#include <float.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "internal.h"

#define AE__INDEX_NPARAMS 7      /* keys 1..6, slot 0 unused */
#define AE__INDEX_MAX_DIM ((size_t)1 << 20)
#define AE__INDEX_MAX_N ((size_t)UINT32_MAX - 1)
#define AE__INDEX_MAX_EF 65536

/* Rows of the id hash per slot: at most half full. */
#define AE__INDEX_HASH_LOAD 2

typedef struct ae__index_ops ae__index_ops;

/* The backend section of a file being loaded (ae_index_load) or mapped
 * (ae_index_map). */
typedef struct ae__index_src {
    const unsigned char *body; /* the section body (4-byte aligned when borrow) */
    size_t len;
    const char *path;  /* names the file in messages */
    uint32_t version;  /* the file's format version */
    /* 1: keep pointers into body (read-only bytes that outlive the index)
     * for the large arrays instead of copying them */
    int borrow;
    /* 1: check every value (ae_index_load); 0: only what keeps a search
     * within bounds (AE_INDEX_CHECK_BOUNDS: counts, offsets, row numbers) */
    int full;
    /* 1: body is in a file mapping: a full check may release the pages it
     * read (ae__map_release_read); never for a caller's buffer */
    int release;
} ae__index_src;

/* What every backend shares; the facade (index.c) owns all of it except
 * state, which belongs to the backend.
 *
 * Rows: "input rows" number the codes in the order they were given (build,
 * then every ae_index_add), 0..n-1; ids, labels and dead are indexed by
 * input row. data is indexed by "internal row", which is the input row
 * except in the ball tree (perm). Removed rows stay until ae_index_compact
 * (dead[row] = 1), skipped by every search. */
struct ae_index {
    const ae__index_ops *ops; /* the backend */
    ae_index_metric metric;
    size_t dim;  /* floats per code, as the caller sees it */
    size_t sdim; /* floats per stored row: dim, or dim + 1 under the inner
                    product (the augmenting coordinate, see ip_m) */
    int built;
    int64_t params[AE__INDEX_NPARAMS];

    size_t n;        /* rows stored, removed ones included */
    size_t cap;      /* rows allocated in data, ids, labels and dead */
    size_t ndead;    /* removed rows awaiting ae_index_compact */
    float *data;     /* cap x sdim, 64-byte aligned, in internal row order;
                        normalised under cosine, augmented under inner product */
    float max_norm;  /* largest L2 norm of a stored row (for error bounds) */
    float ip_m;      /* inner product: every stored row x' = (x, sqrt(M^2 - |x|^2))
                        has norm M = ip_m, so |q' - x'|^2 = |q|^2 + M^2 - 2 q.x
                        with q' = (q, 0): L2 order is inner-product order */
    int64_t *ids;    /* per input row */
    int32_t *labels; /* per input row, or NULL */
    uint8_t *dead;   /* per input row, 1 = removed; NULL until a removal */
    uint32_t *hslot; /* id -> input row + 1 (0: empty), linear probing */
    size_t hcap;     /* slots in hslot, a power of two, or 0 */
    /* internal row -> input row, NULL for the identity; owned by the
     * backend state (only the ball tree reorders rows) */
    const uint32_t *perm;
    void *state; /* the backend's own struct, NULL until built or loaded */
    /* A mapped index (ae_index_map, ae_index_map_memory): data points into
     * these bytes, and so may the backend's state; they are read-only, so
     * every call that changes the index is refused. map_len > 0: a file
     * mapping, unmapped by ae_index_free; 0: the caller's buffer. */
    const unsigned char *map;
    size_t map_len;
    int readonly;      /* opened by ae_index_map or ae_index_map_memory */
    int data_borrowed; /* data points into map (not freed) */

    pthread_rwlock_t lock; /* read: search and const calls; write: changes */
    pthread_mutex_t gate;  /* held by a waiting writer: readers queue behind it */
    char msg[AE__MSG_CAP];
};

/* A search's row selection: the caller's filter and the removed rows. A
 * search with neither passes a NULL ae__sel, and the backends keep their
 * unfiltered paths. */
typedef struct ae__sel {
    ae_index_filter_fn keep; /* NULL: every live row */
    void *user;
    const uint8_t *dead; /* per input row, or NULL */
} ae__sel;

/* Whether internal row r may appear in the results of a search with sel. */
static inline int ae__sel_ok(const ae_index *idx, const ae__sel *sel, uint32_t r)
{
    uint32_t in;
    if (!sel) return 1;
    in = idx->perm ? idx->perm[r] : r;
    if (sel->dead && sel->dead[in]) return 0;
    return !sel->keep || sel->keep(idx->ids[in], sel->user) != 0;
}

/* A backend, in the manner of libgit2's git_odb_backend: the facade checks
 * every argument and owns the shared fields, then calls these. A backend's
 * state is private to its file. */
struct ae__index_ops {
    ae_index_backend backend;
    const char *name;     /* for messages */
    unsigned params;      /* bit (1 << key) for each ae_index_param it uses */
    uint32_t file_section; /* tag of its section in an index file; 0: none */
    /* Called with data (input order, normalised under cosine), n, ids,
     * labels, dead, the id hash and max_norm set. Sets idx->state; may reorder the rows
     * of idx->data and set idx->perm. On failure whatever it set is released
     * by free_state. */
    ae_status (*build)(ae_index *idx);
    /* Queries are checked, normalised and augmented (sdim floats each),
     * 1 <= k <= live rows, ef >= 1 (the facade resolves ef_search = 0).
     * sel: NULL, or the rows allowed in the results (fewer than k may match:
     * the rest of a query's results are padded by ae__idx_emit). Read-only:
     * safe from many threads at once. */
    ae_status (*search)(const ae_index *idx, const float *q, size_t nq, size_t k, size_t ef,
                        const ae__sel *sel, float *dist, int64_t *ids);
    /* Rows [from, n) were appended (data, ids, labels set; the arrays hold
     * cap rows). On success the state covers all n rows. On failure
     * *covered says whether the state covers the new rows anyway (they are
     * then removed by the facade) or is as it was before the call.
     * *rebuild asks the facade for a rebuild (ball tree overflow). */
    ae_status (*add)(ae_index *idx, size_t from, int *covered, int *rebuild);
    /* Whether rows wait outside the backend's main structure (the ball
     * tree's overflow), which ae_index_compact folds in; NULL: never. */
    int (*pending)(const ae_index *idx);
    /* The bytes of its section body, and the writer of exactly that many;
     * both NULL when file_section is 0. */
    size_t (*file_bytes)(const ae_index *idx);
    void (*save)(const ae_index *idx, ae__writer *w);
    /* The section body of a file, with the shared fields already loaded as
     * for build. Every size is checked against src->len before the
     * allocation it guards; a bad body is AE_ERR_FORMAT naming src->path; on
     * failure free_state releases the rest. */
    ae_status (*load)(ae_index *idx, const struct ae__index_src *src);
    /* Frees idx->state and what it owns (NULL state allowed); clears
     * idx->state and idx->perm. */
    void (*free_state)(ae_index *idx);
    /* Bytes held by idx->state (0 when NULL). */
    size_t (*memory_bytes)(const ae_index *idx);
};

extern const ae__index_ops ae__index_ops_brute;
extern const ae__index_ops ae__index_ops_balltree;
extern const ae__index_ops ae__index_ops_hnsw;

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

/* Squared L2 distance in double, summed in order: the reference the exact
 * backends rank their final candidates by. */
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

/* A final result: squared distance (exact, in double, from the exact
 * backends; HNSW's float distance as found) and caller id. */
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
/* Exact k nearest by a double-precision scan of every row allowed by sel
 * (the fallback that makes the exact backends exact whatever the rounding).
 * res holds k; returns the number found (k unless sel leaves fewer). */
size_t ae__idx_exact_scan(const ae_index *idx, const float *q, size_t k, const ae__sel *sel,
                          ae__res *res);
/* Writes the nf <= k results of query q (stored form) to the outputs,
 * distances converted to the metric; slots nf..k-1 get id -1 and distance
 * +infinity. Under the inner product it reorders res[0..nf) by the exact
 * -q.x. */
void ae__idx_emit(const ae_index *idx, const float *q, ae__res *res, size_t nf, size_t k,
                  float *dist, int64_t *ids);
/* res[0..nc) = cand sorted by (float distance, id), no re-ranking (HNSW). */
void ae__idx_order(const ae_index *idx, const ae__nb *cand, size_t nc, ae__res *res);

#endif /* AUTOENC_INDEX_IMPL_H */
