/* Exact ball-tree backend: scikit-learn's BallTree (binary tree stored as an
 * array, node i has children 2i+1 and 2i+2; a node is split at the median of
 * its dimension of largest spread; each node keeps its centroid and radius).
 *
 * Unlike scikit-learn, rows are physically reordered in tree order at build
 * (leaves are contiguous blocks of memory), and the exactness of float
 * arithmetic is handled explicitly: pruning uses lower bounds widened by the
 * float error of the distance kernel, the search keeps a few candidates more
 * than k, and the candidates are ranked again in double precision; if the
 * error bound cannot prove that no other row could rank among the k best (only
 * with exact ties at the boundary), the search is repeated with more
 * candidates. Results equal a double-precision brute force. */
#define _POSIX_C_SOURCE 200809L /* pthread_rwlock_t (index_impl.h) */
#include <math.h>
#include <string.h>

#include "index_impl.h"

/* Complete binary tree in arrays: node i has children 2i+1 and 2i+2. */
typedef struct balltree {
    size_t n, dim;          /* rows in the tree (the overflow follows), floats per row */
    uint32_t levels;
    size_t nodes;           /* 2^levels - 1 */
    uint32_t *start, *end;  /* internal row range of each node */
    float *centroids;       /* nodes x dim, aligned */
    float *radii;           /* upper bounds of each node's radius */
    uint32_t *perm;         /* internal row -> input row; the identity past the tree */
    size_t pcap;            /* entries allocated in perm */
    int borrowed;           /* centroids and radii point into a mapped file */
} balltree;

/* Rows added after the build wait in an overflow block past the tree,
 * searched by a scan, until they exceed this share of the tree: then the
 * facade rebuilds the tree over every row. */
static size_t overflow_limit(size_t tree_rows)
{
    return tree_rows / 4 > 256 ? tree_rows / 4 : 256;
}

/* Tree depth for n points and a leaf size (scikit-learn's rule:
 * 1 + floor(log2(max(1, (n - 1) / leaf_size)))). */
static uint32_t tree_levels(size_t n, size_t leaf_size)
{
    uint64_t m = n > 0 ? (uint64_t)n - 1 : 0;
    uint32_t j = 0;
    if (leaf_size == 0 || m < leaf_size) return 1;
    while (j < 40 && ((uint64_t)leaf_size << (j + 1)) <= m) j++;
    return j + 1;
}

static void balltree_free(ae_index *idx)
{
    balltree *t = idx->state;
    if (!t) return;
    ae__free(t->start, t->nodes * sizeof(uint32_t));
    ae__free(t->end, t->nodes * sizeof(uint32_t));
    if (t->centroids && !t->borrowed)
        ae__free_aligned(t->centroids, t->nodes * t->dim * sizeof(float));
    if (!t->borrowed) ae__free(t->radii, t->nodes * sizeof(float));
    ae__free(t->perm, t->pcap * sizeof(uint32_t));
    ae__free(t, sizeof *t);
    idx->state = NULL;
    idx->perm = NULL;
}

/* Creates the state for a tree of the given depth over the first n rows
 * (the rest are overflow): node ranges filled in (they are derived, never
 * stored), perm allocated, and centroids and radii too unless borrowed. */
static ae_status tree_alloc(ae_index *idx, uint32_t levels, size_t n, int borrowed)
{
    size_t nodes = ((size_t)1 << levels) - 1, d = idx->sdim;
    balltree *t = ae__calloc(1, sizeof *t);
    uint32_t *s, *e;
    if (!t) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the ball tree");
    idx->state = t;
    t->n = n;
    t->dim = d;
    t->levels = levels;
    t->nodes = nodes;
    t->start = s = ae__malloc(nodes * sizeof(uint32_t));
    t->end = e = ae__malloc(nodes * sizeof(uint32_t));
    t->perm = ae__malloc(idx->cap * sizeof(uint32_t));
    t->pcap = idx->cap;
    t->borrowed = borrowed;
    if (!borrowed) {
        t->centroids = ae__malloc_aligned(nodes * d * sizeof(float));
        t->radii = ae__malloc(nodes * sizeof(float));
    }
    if (!s || !e || !t->perm || (!borrowed && (!t->centroids || !t->radii)))
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for a ball tree of %zu nodes",
                        nodes);
    idx->perm = t->perm;
    s[0] = 0;
    e[0] = (uint32_t)n;
    for (size_t i = 0; 2 * i + 2 < nodes; i++) {
        uint32_t mid = (uint32_t)(((uint64_t)s[i] + e[i]) / 2);
        s[2 * i + 1] = s[i];
        e[2 * i + 1] = mid;
        s[2 * i + 2] = mid;
        e[2 * i + 2] = e[i];
    }
    return AE_OK;
}

/* Reorders key/row[lo, hi) so that position kth holds the value it would have
 * in sorted order, smaller-or-equal values before it, greater-or-equal after
 * (three-way quickselect, median-of-three pivots). */
static void select_kth(float *key, uint32_t *row, size_t lo, size_t hi, size_t kth)
{
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, lt = lo, i = lo, gt = hi;
        float a = key[lo], b = key[mid], c = key[hi - 1], p;
        p = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        while (i < gt) {
            if (key[i] < p) {
                float tk = key[i]; uint32_t tr = row[i];
                key[i] = key[lt]; row[i] = row[lt];
                key[lt] = tk; row[lt] = tr;
                lt++, i++;
            } else if (key[i] > p) {
                float tk = key[i]; uint32_t tr = row[i];
                gt--;
                key[i] = key[gt]; row[i] = row[gt];
                key[gt] = tk; row[gt] = tr;
            } else {
                i++;
            }
        }
        if (kth < lt) hi = lt;
        else if (kth >= gt) lo = gt;
        else return;
    }
}

static ae_status balltree_build(ae_index *idx)
{
    size_t n = idx->n, d = idx->sdim, nodes;
    float *key = NULL, *mn = NULL, *mx = NULL, *data2 = NULL;
    double *acc = NULL;
    balltree *t;
    ae_status st;

    st = tree_alloc(idx, tree_levels(n, (size_t)idx->params[AE_INDEX_LEAF_SIZE]), n, 0);
    if (st != AE_OK) return st;
    t = idx->state;
    nodes = t->nodes;
    key = ae__malloc(n * sizeof(float));
    mn = ae__malloc(d * sizeof(float));
    mx = ae__malloc(d * sizeof(float));
    acc = ae__malloc(d * sizeof(double));
    data2 = ae__malloc_aligned(idx->cap * d * sizeof(float));
    if (!key || !mn || !mx || !acc || !data2) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the ball tree");
        goto done;
    }
    for (size_t i = 0; i < n; i++) t->perm[i] = (uint32_t)i;

    /* split every internal node at its median along its widest dimension */
    for (size_t i = 0; 2 * i + 2 < nodes; i++) {
        size_t s = t->start[i], e = t->end[i], best = 0;
        float spread = -1.0f;
        for (size_t j = 0; j < d; j++) mn[j] = mx[j] = idx->data[(size_t)t->perm[s] * d + j];
        for (size_t r = s + 1; r < e; r++) {
            const float *x = idx->data + (size_t)t->perm[r] * d;
            for (size_t j = 0; j < d; j++) {
                mn[j] = x[j] < mn[j] ? x[j] : mn[j];
                mx[j] = x[j] > mx[j] ? x[j] : mx[j];
            }
        }
        for (size_t j = 0; j < d; j++)
            if (mx[j] - mn[j] > spread) spread = mx[j] - mn[j], best = j;
        for (size_t r = s; r < e; r++) key[r] = idx->data[(size_t)t->perm[r] * d + best];
        select_kth(key, t->perm, s, e, t->start[2 * i + 2]);
    }

    /* rows in tree order, so every node is one contiguous block */
    for (size_t r = 0; r < n; r++)
        memcpy(data2 + r * d, idx->data + (size_t)t->perm[r] * d, d * sizeof(float));
    ae__free_aligned(idx->data, idx->cap * d * sizeof(float));
    idx->data = data2;
    data2 = NULL;

    /* centroid (mean) and a radius that bounds every member's true distance */
    for (size_t i = 0; i < nodes; i++) {
        size_t s = t->start[i], e = t->end[i];
        float *c = t->centroids + i * d;
        double rad = 0.0;
        float rf;
        memset(acc, 0, d * sizeof(double));
        for (size_t r = s; r < e; r++) {
            const float *x = idx->data + r * d;
            for (size_t j = 0; j < d; j++) acc[j] += x[j];
        }
        for (size_t j = 0; j < d; j++) c[j] = (float)(acc[j] / (double)(e - s));
        for (size_t r = s; r < e; r++) {
            double q = ae__l2sq_d(idx->data + r * d, c, d);
            if (q > rad) rad = q;
        }
        rad = sqrt(rad) * (1.0 + 1e-12);
        rf = (float)rad;
        if ((double)rf < rad) rf = nextafterf(rf, INFINITY);
        t->radii[i] = rf;
    }
    st = AE_OK;
done:
    ae__free(key, n * sizeof(float));
    ae__free(mn, d * sizeof(float));
    ae__free(mx, d * sizeof(float));
    ae__free(acc, d * sizeof(double));
    if (data2) ae__free_aligned(data2, idx->cap * d * sizeof(float));
    return st;
}

/* ---- search ------------------------------------------------------------------------ */
typedef struct bt_query {
    const ae_index *idx;
    const ae__sel *sel;
    const balltree *t;
    const float *data; /* the rows, in tree order */
    const float *q;
    ae__nb *heap;
    size_t len, cap;
    double rel1; /* 1 + relative error of the float kernel */
} bt_query;

/* Lower bound of the true squared distance from q to any point of node i. */
static inline double node_lb(const bt_query *c, size_t i)
{
    const balltree *t = c->t;
    float df = ae__l2sq(c->q, t->centroids + i * t->dim, t->dim);
    double lb = sqrt((double)df / c->rel1) - (double)t->radii[i];
    return lb > 0.0 ? lb * lb : 0.0;
}

AE__HOT static void bt_visit(bt_query *c, size_t i, double lb)
{
    const balltree *t = c->t;
    /* prune: every point inside is at least lb away, and a point whose float
     * distance reaches the heap's worst can never be needed (see the header) */
    if (c->len == c->cap && lb * c->rel1 >= (double)c->heap[0].d) return;
    if (2 * i + 1 >= t->nodes) {
        size_t d = t->dim, e = t->end[i];
        const float *q = c->q;
        for (size_t r = t->start[i]; r < e; r++) {
            ae__nb v = {ae__l2sq(q, c->data + r * d, d), (uint32_t)r};
            if (c->sel && !ae__sel_ok(c->idx, c->sel, (uint32_t)r)) continue;
            ae__topk_offer(c->heap, &c->len, c->cap, v);
        }
    } else {
        double l1 = node_lb(c, 2 * i + 1), l2 = node_lb(c, 2 * i + 2);
        if (l1 <= l2) {
            bt_visit(c, 2 * i + 1, l1);
            bt_visit(c, 2 * i + 2, l2);
        } else {
            bt_visit(c, 2 * i + 2, l2);
            bt_visit(c, 2 * i + 1, l1);
        }
    }
}

/* The overflow rows, scanned (they are few: see overflow_limit). */
static void scan_overflow(bt_query *c, size_t n)
{
    size_t d = c->t->dim;
    for (size_t r = c->t->n; r < n; r++) {
        ae__nb v;
        if (c->sel && !ae__sel_ok(c->idx, c->sel, (uint32_t)r)) continue;
        v.d = ae__l2sq(c->q, c->data + r * d, d);
        v.r = (uint32_t)r;
        ae__topk_offer(c->heap, &c->len, c->cap, v);
    }
}

static ae_status balltree_search(const ae_index *idx, const float *q, size_t nq, size_t k,
                                 size_t ef, const ae__sel *sel, float *dist, int64_t *ids)
{
    size_t n = idx->n, d = idx->sdim;
    size_t cap0 = k + (k < 16 ? 8 : k / 2), cap;
    ae__nb *heap;
    ae__res *res;
    bt_query c;

    (void)ef;
    if (cap0 > n) cap0 = n;
    cap = cap0;
    heap = ae__malloc(cap * sizeof *heap);
    res = ae__malloc(cap * sizeof *res);
    if (!heap || !res) {
        ae__free(heap, cap * sizeof *heap);
        ae__free(res, cap * sizeof *res);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    }
    c.idx = idx;
    c.sel = sel;
    c.t = idx->state;
    c.data = idx->data;
    c.rel1 = 1.0 + ae__l2sq_relerr(d);
    for (size_t i = 0; i < nq; i++) {
        size_t want = cap0, nf = k;
        c.q = q + i * d;
        for (;;) {
            c.heap = heap;
            c.len = 0;
            c.cap = want;
            scan_overflow(&c, n);
            bt_visit(&c, 0, node_lb(&c, 0));
            ae__idx_rank(idx, c.q, heap, c.len, res);
            if (c.len < k) { /* the filter allows fewer than k rows: all found */
                nf = c.len;
                break;
            }
            /* rows never offered or dropped have float distance >= heap top,
             * so a true distance >= top / rel1 */
            if (c.len < want || want == n ||
                (double)heap[0].d / c.rel1 - 1e-30 > res[k - 1].d * (1.0 + 1e-12))
                break;
            want = want * 4 < n ? want * 4 : n;
            if (want > cap) {
                ae__nb *h2 = ae__realloc(heap, cap * sizeof *heap, want * sizeof *heap);
                ae__res *r2;
                if (!h2) { /* no memory to widen: finish with an exact scan */
                    nf = ae__idx_exact_scan(idx, c.q, k, sel, res);
                    break;
                }
                heap = h2;
                r2 = ae__realloc(res, cap * sizeof *res, want * sizeof *res);
                if (!r2) {
                    /* shrink bookkeeping back: heap is larger than res now */
                    ae__free(heap, want * sizeof *heap);
                    ae__free(res, cap * sizeof *res);
                    return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
                }
                res = r2;
                cap = want;
            }
        }
        ae__idx_emit(idx, c.q, res, nf, k, dist ? dist + i * k : NULL, ids + i * k);
    }
    ae__free(heap, cap * sizeof *heap);
    ae__free(res, cap * sizeof *res);
    return AE_OK;
}

/* ---- files: the section body is
 *   u32 levels, u32 T, u32 perm[n], f32 centroids[nodes][d'], f32 radii[nodes]
 * with T the rows in the tree (0: all n; the rest are overflow) and d' the
 * stored dimension (docs/formats-index.md) */
static size_t balltree_file_bytes(const ae_index *idx)
{
    const balltree *t = idx->state;
    return 8 + idx->n * 4 + t->nodes * (t->dim + 1) * 4;
}

/* New rows join the overflow (the identity part of perm). */
static ae_status balltree_add(ae_index *idx, size_t from, int *covered, int *rebuild)
{
    balltree *t = idx->state;
    *covered = 0;
    *rebuild = 0;
    if (t->pcap < idx->cap) {
        uint32_t *p = ae__realloc(t->perm, t->pcap * sizeof(uint32_t),
                                  idx->cap * sizeof(uint32_t));
        if (!p) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the ball tree");
        t->perm = p;
        t->pcap = idx->cap;
        idx->perm = p;
    }
    for (size_t r = from; r < idx->n; r++) t->perm[r] = (uint32_t)r;
    *rebuild = idx->n - t->n > overflow_limit(t->n);
    return AE_OK;
}

static int balltree_pending(const ae_index *idx)
{
    const balltree *t = idx->state;
    return t && idx->n > t->n;
}

static void balltree_save(const ae_index *idx, ae__writer *w)
{
    const balltree *t = idx->state;
    ae__writer_u32(w, t->levels);
    ae__writer_u32(w, t->n == idx->n ? 0u : (uint32_t)t->n);
    ae__writer_write(w, t->perm, idx->n * 4);
    ae__writer_f32s(w, t->centroids, t->nodes * t->dim);
    ae__writer_f32s(w, t->radii, t->nodes);
}

/* Borrowed (a mapped file): the centroids and radii stay in the file; the
 * permutation is copied, since it is checked anyway. */
static ae_status balltree_load(ae_index *idx, const ae__index_src *src)
{
    const unsigned char *body = src->body;
    const char *path = src->path;
    size_t n = idx->n, d = idx->sdim, nodes, len = src->len;
    ae__reader rd = {body, len, 0, 0};
    uint32_t levels, tn;
    size_t tree;
    unsigned char *seen;
    balltree *t;
    int ok = 1;
    ae_status st;

    if (ae__reader_u32(&rd, &levels) || ae__reader_u32(&rd, &tn)) goto inconsistent;
    tree = tn ? tn : n;
    if (tree > n || levels != tree_levels(tree, (size_t)idx->params[AE_INDEX_LEAF_SIZE]))
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has an inconsistent ball tree", path);
    /* levels <= 41 (tree_levels), so nodes * (d + 1) * 4 cannot overflow */
    nodes = ((size_t)1 << levels) - 1;
    if (len != 8 + n * 4 + nodes * (d + 1) * 4) goto inconsistent;
    if ((st = tree_alloc(idx, levels, tree, src->borrow)) != AE_OK) return st;
    t = idx->state;
    ae__reader_bytes(&rd, t->perm, n * 4);
    if (src->borrow) { /* 4-byte aligned in format 4; read-only */
        t->centroids = (float *)(uintptr_t)(body + rd.pos);
        t->radii = t->centroids + nodes * d;
    } else {
        ae__reader_f32s(&rd, t->centroids, nodes * d);
        ae__reader_f32s(&rd, t->radii, nodes);
    }
    /* perm must permute the tree's rows and leave the overflow in place */
    seen = ae__calloc(tree, 1);
    if (!seen) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; ok && i < tree; i++) {
        if (t->perm[i] >= tree || seen[t->perm[i]]) ok = 0;
        else seen[t->perm[i]] = 1;
    }
    for (size_t i = tree; ok && i < n; i++) ok = t->perm[i] == i;
    ae__free(seen, tree);
    if (!ok) return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a bad permutation", path);
    /* the nodes only steer the search (any values keep it in bounds) */
    if (!src->full) return AE_OK;
    if (!ae__all_finite(t->centroids, nodes * d) || !ae__all_finite(t->radii, nodes))
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has non-finite tree nodes", path);
    for (size_t i = 0; i < nodes; i++)
        if (t->radii[i] < 0.0f)
            return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a negative radius", path);
    return AE_OK;
inconsistent:
    return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a ball-tree section of the wrong size "
                    "(%zu bytes)", path, len);
}

static size_t balltree_memory_bytes(const ae_index *idx)
{
    const balltree *t = idx->state;
    if (!t) return 0;
    return sizeof *t + t->pcap * sizeof(uint32_t) +
           t->nodes * (2 * sizeof(uint32_t) +
                       (t->borrowed ? 0 : (t->dim + 1) * sizeof(float)));
}

const ae__index_ops ae__index_ops_balltree = {
    .backend = AE_INDEX_BALLTREE,
    .name = "balltree",
    .params = 1u << AE_INDEX_LEAF_SIZE,
    .file_section = 16u,
    .build = balltree_build,
    .search = balltree_search,
    .add = balltree_add,
    .pending = balltree_pending,
    .file_bytes = balltree_file_bytes,
    .save = balltree_save,
    .load = balltree_load,
    .free_state = balltree_free,
    .memory_bytes = balltree_memory_bytes,
};
