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
#include <math.h>
#include <string.h>

#include "index_impl.h"

uint32_t ae__balltree_levels(size_t n, size_t leaf_size)
{
    uint64_t m = n > 0 ? (uint64_t)n - 1 : 0;
    uint32_t j = 0;
    if (leaf_size == 0 || m < leaf_size) return 1;
    while (j < 40 && ((uint64_t)leaf_size << (j + 1)) <= m) j++;
    return j + 1;
}

ae_status ae__balltree_ranges(ae_index *idx)
{
    size_t nodes = ((size_t)1 << idx->bt_levels) - 1;
    uint32_t *s = ae__malloc(nodes * sizeof(uint32_t)), *e = ae__malloc(nodes * sizeof(uint32_t));
    if (!s || !e) {
        ae__free(s, nodes * sizeof(uint32_t));
        ae__free(e, nodes * sizeof(uint32_t));
        return ae__fail(NULL, AE_ERR_NOMEM, "ball tree: out of memory for %zu nodes", nodes);
    }
    s[0] = 0;
    e[0] = (uint32_t)idx->n;
    for (size_t i = 0; 2 * i + 2 < nodes; i++) {
        uint32_t mid = (uint32_t)(((uint64_t)s[i] + e[i]) / 2);
        s[2 * i + 1] = s[i];
        e[2 * i + 1] = mid;
        s[2 * i + 2] = mid;
        e[2 * i + 2] = e[i];
    }
    idx->bt_start = s;
    idx->bt_end = e;
    idx->bt_nodes = nodes;
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

ae_status ae__balltree_build(ae_index *idx)
{
    size_t n = idx->n, d = idx->dim, nodes;
    float *key = NULL, *mn = NULL, *mx = NULL, *data2 = NULL;
    double *acc = NULL;
    ae_status st;

    idx->bt_levels = ae__balltree_levels(n, (size_t)idx->params[AE_INDEX_LEAF_SIZE]);
    if ((st = ae__balltree_ranges(idx)) != AE_OK) return st;
    nodes = idx->bt_nodes;
    idx->perm = ae__malloc(n * sizeof(uint32_t));
    idx->bt_centroids = ae__malloc_aligned(nodes * d * sizeof(float));
    idx->bt_radii = ae__malloc(nodes * sizeof(float));
    key = ae__malloc(n * sizeof(float));
    mn = ae__malloc(d * sizeof(float));
    mx = ae__malloc(d * sizeof(float));
    acc = ae__malloc(d * sizeof(double));
    data2 = ae__malloc_aligned(n * d * sizeof(float));
    if (!idx->perm || !idx->bt_centroids || !idx->bt_radii || !key || !mn || !mx || !acc ||
        !data2) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the ball tree");
        goto done;
    }
    for (size_t i = 0; i < n; i++) idx->perm[i] = (uint32_t)i;

    /* split every internal node at its median along its widest dimension */
    for (size_t i = 0; 2 * i + 2 < nodes; i++) {
        size_t s = idx->bt_start[i], e = idx->bt_end[i], best = 0;
        float spread = -1.0f;
        for (size_t j = 0; j < d; j++) mn[j] = mx[j] = idx->data[(size_t)idx->perm[s] * d + j];
        for (size_t r = s + 1; r < e; r++) {
            const float *x = idx->data + (size_t)idx->perm[r] * d;
            for (size_t j = 0; j < d; j++) {
                mn[j] = x[j] < mn[j] ? x[j] : mn[j];
                mx[j] = x[j] > mx[j] ? x[j] : mx[j];
            }
        }
        for (size_t j = 0; j < d; j++)
            if (mx[j] - mn[j] > spread) spread = mx[j] - mn[j], best = j;
        for (size_t r = s; r < e; r++) key[r] = idx->data[(size_t)idx->perm[r] * d + best];
        select_kth(key, idx->perm, s, e, idx->bt_start[2 * i + 2]);
    }

    /* rows in tree order, so every node is one contiguous block */
    for (size_t r = 0; r < n; r++)
        memcpy(data2 + r * d, idx->data + (size_t)idx->perm[r] * d, d * sizeof(float));
    ae__free_aligned(idx->data, n * d * sizeof(float));
    idx->data = data2;
    data2 = NULL;

    /* centroid (mean) and a radius that bounds every member's true distance */
    for (size_t i = 0; i < nodes; i++) {
        size_t s = idx->bt_start[i], e = idx->bt_end[i];
        float *c = idx->bt_centroids + i * d;
        double rad = 0.0;
        float rf;
        memset(acc, 0, d * sizeof(double));
        for (size_t r = s; r < e; r++) {
            const float *x = idx->data + r * d;
            for (size_t j = 0; j < d; j++) acc[j] += x[j];
        }
        for (size_t j = 0; j < d; j++) c[j] = (float)(acc[j] / (double)(e - s));
        for (size_t r = s; r < e; r++) {
            double t = ae__l2sq_d(idx->data + r * d, c, d);
            if (t > rad) rad = t;
        }
        rad = sqrt(rad) * (1.0 + 1e-12);
        rf = (float)rad;
        if ((double)rf < rad) rf = nextafterf(rf, INFINITY);
        idx->bt_radii[i] = rf;
    }
    st = AE_OK;
done:
    ae__free(key, n * sizeof(float));
    ae__free(mn, d * sizeof(float));
    ae__free(mx, d * sizeof(float));
    ae__free(acc, d * sizeof(double));
    if (data2) ae__free_aligned(data2, n * d * sizeof(float));
    return st;
}

/* ---- search ------------------------------------------------------------------------ */
typedef struct bt_query {
    const ae_index *idx;
    const float *q;
    ae__nb *heap;
    size_t len, cap;
    double rel1; /* 1 + relative error of the float kernel */
} bt_query;

/* Lower bound of the true squared distance from q to any point of node i. */
static inline double node_lb(const bt_query *c, size_t i)
{
    const ae_index *idx = c->idx;
    float df = ae__l2sq(c->q, idx->bt_centroids + i * idx->dim, idx->dim);
    double t = sqrt((double)df / c->rel1) - (double)idx->bt_radii[i];
    return t > 0.0 ? t * t : 0.0;
}

AE__HOT static void bt_visit(bt_query *c, size_t i, double lb)
{
    const ae_index *idx = c->idx;
    /* prune: every point inside is at least lb away, and a point whose float
     * distance reaches the heap's worst can never be needed (see the header) */
    if (c->len == c->cap && lb * c->rel1 >= (double)c->heap[0].d) return;
    if (2 * i + 1 >= idx->bt_nodes) {
        size_t d = idx->dim, e = idx->bt_end[i];
        const float *q = c->q;
        for (size_t r = idx->bt_start[i]; r < e; r++) {
            ae__nb v = {ae__l2sq(q, idx->data + r * d, d), (uint32_t)r};
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

ae_status ae__balltree_search(const ae_index *idx, const float *q, size_t nq, size_t k,
                              float *dist, int64_t *ids)
{
    size_t n = idx->n, d = idx->dim;
    size_t cap0 = k + (k < 16 ? 8 : k / 2), cap;
    ae__nb *heap;
    ae__res *res;
    bt_query c;

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
    c.rel1 = 1.0 + ae__l2sq_relerr(d);
    for (size_t i = 0; i < nq; i++) {
        size_t want = cap0;
        c.q = q + i * d;
        for (;;) {
            c.heap = heap;
            c.len = 0;
            c.cap = want;
            bt_visit(&c, 0, node_lb(&c, 0));
            ae__idx_rank(idx, c.q, heap, c.len, res);
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
                    ae__idx_exact_scan(idx, c.q, k, res);
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
        ae__idx_emit(idx, res, k, dist ? dist + i * k : NULL, ids + i * k);
    }
    ae__free(heap, cap * sizeof *heap);
    ae__free(res, cap * sizeof *res);
    return AE_OK;
}
