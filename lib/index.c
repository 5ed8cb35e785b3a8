/* Nearest-neighbour index: life cycle, parameters, input checks, search
 * dispatch, accessors, and the file format (docs/formats-index.md). The
 * backends live in index_brute.c, index_balltree.c and index_hnsw.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index_impl.h"

/* ---- parameters ------------------------------------------------------------ */
typedef struct param_info {
    const char *name;
    int64_t lo, hi, def;
    unsigned backends; /* bit (1 << backend) for each backend using it */
} param_info;

#define BIT(b) (1u << (b))
static const param_info g_params[AE__INDEX_NPARAMS] = {
    {NULL, 0, 0, 0, 0},
    {"AE_INDEX_LEAF_SIZE", 1, 1 << 20, 40, BIT(AE_INDEX_BALLTREE)},
    {"AE_INDEX_HNSW_M", 2, 256, 16, BIT(AE_INDEX_HNSW)},
    {"AE_INDEX_HNSW_EF_CONSTRUCTION", 1, AE__INDEX_MAX_EF, 200, BIT(AE_INDEX_HNSW)},
    {"AE_INDEX_HNSW_EF_SEARCH", 1, AE__INDEX_MAX_EF, 64, BIT(AE_INDEX_HNSW)},
    {"AE_INDEX_SEED", 0, INT64_MAX, 42, BIT(AE_INDEX_HNSW)},
};

static const char *backend_name(int b)
{
    switch (b) {
    case AE_INDEX_BRUTE: return "brute";
    case AE_INDEX_BALLTREE: return "balltree";
    case AE_INDEX_HNSW: return "hnsw";
    default: return "unknown";
    }
}

static int valid_key(int key) { return key >= 1 && key < AE__INDEX_NPARAMS; }

ae_status ae_index_param_int_bounds(int64_t *lo, int64_t *hi, ae_index_param key)
{
    AE__ENTER();
    if (!valid_key((int)key))
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown key %d",
                        (int)key);
    if (lo) *lo = g_params[key].lo;
    if (hi) *hi = g_params[key].hi;
    return AE_OK;
}

ae_status ae_index_param_type(ae_value_type *type, ae_index_param key)
{
    AE__ENTER();
    if (!type) return ae__fail(NULL, AE_ERR_INVALID_ARG, "type is NULL");
    if (!valid_key((int)key))
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown key %d", (int)key);
    *type = AE_VALUE_INT;
    return AE_OK;
}

const char *ae_index_param_name(ae_index_param key)
{
    return valid_key((int)key) ? g_params[key].name : NULL;
}

static ae_status check_key(const ae_index *idx, int key, char *msg, const char *fn)
{
    if (!valid_key(key)) return ae__fail(msg, AE_ERR_INVALID_ARG, "unknown key %d", key);
    if (!(g_params[key].backends & BIT(idx->backend)))
        return ae__fail(msg, AE_ERR_INVALID_ARG, "%s is not used by the %s backend",
                        g_params[key].name, backend_name(idx->backend));
    return AE_OK;
}

ae_status ae_index_set_int(ae_index *idx, ae_index_param key, int64_t value)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if ((st = check_key(idx, (int)key, idx->msg, "ae_index_set_int")) != AE_OK) return st;
    if (idx->built)
        return ae__fail(idx->msg, AE_ERR_STATE,
                        "the index is built; parameters are fixed");
    if (value < g_params[key].lo || value > g_params[key].hi)
        return ae__fail(idx->msg, AE_ERR_RANGE,
                        "%s = %lld is outside [%lld, %lld]",
                        g_params[key].name, (long long)value, (long long)g_params[key].lo,
                        (long long)g_params[key].hi);
    idx->params[key] = value;
    return AE_OK;
}

ae_status ae_index_get_int(int64_t *value, const ae_index *idx, ae_index_param key)
{
    AE__ENTER();
    ae_status st;
    if (!idx || !value)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if ((st = check_key(idx, (int)key, NULL, "ae_index_get_int")) != AE_OK) return st;
    *value = idx->params[key];
    return AE_OK;
}

/* ---- life cycle ------------------------------------------------------------ */
static ae_index *index_new(int backend, int metric, size_t dim)
{
    ae_index *idx = ae__calloc(1, sizeof *idx);
    if (!idx) return NULL;
    idx->backend = (ae_index_backend)backend;
    idx->metric = (ae_index_metric)metric;
    idx->dim = dim;
    for (int k = 1; k < AE__INDEX_NPARAMS; k++) idx->params[k] = g_params[k].def;
    return idx;
}

static ae_status check_kind(int backend, int metric, size_t dim, const char *fn)
{
    if (backend < AE_INDEX_BRUTE || backend > AE_INDEX_HNSW)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown backend %d", backend);
    if (metric != AE_INDEX_L2 && metric != AE_INDEX_COSINE)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown metric %d", metric);
    if (dim == 0) return ae__fail(NULL, AE_ERR_INVALID_ARG, "dimension 0");
    if (dim > AE__INDEX_MAX_DIM)
        return ae__fail(NULL, AE_ERR_RANGE, "dimension %zu exceeds %zu", dim,
                        AE__INDEX_MAX_DIM);
    return AE_OK;
}

ae_status ae_index_create(ae_index **out, ae_index_backend backend, ae_index_metric metric,
                          size_t dim)
{
    AE__ENTER();
    ae_status st;
    ae_index *idx;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL out");
    *out = NULL;
    if ((st = check_kind((int)backend, (int)metric, dim, "ae_index_create")) != AE_OK) return st;
    idx = index_new((int)backend, (int)metric, dim);
    if (!idx) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    *out = idx;
    return AE_OK;
}

/* Frees everything built (sizes are derived from the fields) and returns the
 * index to the empty state; parameters are kept. */
static void index_release(ae_index *idx)
{
    size_t n = idx->n, d = idx->dim;
    if (idx->data) ae__free_aligned(idx->data, n * d * sizeof(float));
    ae__free(idx->norms, n * sizeof(float));
    ae__free(idx->ids, n * sizeof(int64_t));
    ae__free(idx->labels, n * sizeof(int32_t));
    ae__free(idx->by_id, n * sizeof(uint32_t));
    ae__free(idx->perm, n * sizeof(uint32_t));
    ae__free(idx->bt_start, idx->bt_nodes * sizeof(uint32_t));
    ae__free(idx->bt_end, idx->bt_nodes * sizeof(uint32_t));
    if (idx->bt_centroids) ae__free_aligned(idx->bt_centroids, idx->bt_nodes * d * sizeof(float));
    ae__free(idx->bt_radii, idx->bt_nodes * sizeof(float));
    ae__free(idx->h_levels, n);
    ae__free(idx->h_links0, n * (1 + (size_t)idx->h_m0) * sizeof(uint32_t));
    ae__free(idx->h_upper_off, n * sizeof(uint64_t));
    ae__free(idx->h_upper, idx->h_upper_len * sizeof(uint32_t));
    idx->data = idx->norms = idx->bt_centroids = idx->bt_radii = NULL;
    idx->ids = NULL;
    idx->labels = NULL;
    idx->by_id = idx->perm = idx->bt_start = idx->bt_end = idx->h_links0 = idx->h_upper = NULL;
    idx->h_levels = NULL;
    idx->h_upper_off = NULL;
    idx->n = idx->bt_nodes = idx->h_upper_len = 0;
    idx->bt_levels = idx->h_m = idx->h_m0 = idx->h_max_level = idx->h_entry = 0;
    idx->max_norm = 0.0f;
    idx->built = 0;
}

void ae_index_free(ae_index *idx)
{
    if (!idx) return;
    index_release(idx);
    ae__free(idx, sizeof *idx);
}

/* ---- build -------------------------------------------------------------------- */
typedef struct id_row {
    int64_t id;
    uint32_t row;
} id_row;

static int cmp_id_row(const void *a, const void *b)
{
    const id_row *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Sorts input rows by id into idx->by_id; fails on duplicates (with
 * AE_ERR_FORMAT naming the file when loading from path, else
 * AE_ERR_INVALID_ARG). */
static ae_status make_by_id(ae_index *idx, char *msg, const char *fn, const char *path)
{
    size_t n = idx->n;
    id_row *t = ae__malloc(n * sizeof *t);
    if (!t) return ae__fail(msg, AE_ERR_NOMEM, "out of memory");
    idx->by_id = ae__malloc(n * sizeof(uint32_t));
    if (!idx->by_id) {
        ae__free(t, n * sizeof *t);
        return ae__fail(msg, AE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        t[i].id = idx->ids[i];
        t[i].row = (uint32_t)i;
    }
    qsort(t, n, sizeof *t, cmp_id_row);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && t[i].id == t[i - 1].id) {
            long long dup = (long long)t[i].id;
            ae__free(t, n * sizeof *t);
            return path ? ae__file_fail(msg, path, AE_ERR_FORMAT, "id %lld appears more than once",
                                        dup)
                        : ae__fail(msg, AE_ERR_INVALID_ARG, "id %lld appears more than once", dup);
        }
        idx->by_id[i] = t[i].row;
    }
    ae__free(t, n * sizeof *t);
    return AE_OK;
}

/* Squared norms must stay below FLT_MAX / 4 so no distance overflows. */
#define AE__MAX_SQNORM ((double)FLT_MAX / 4.0)

/* Computes max_norm (and norms for brute force) of idx->data. A row too
 * large is AE_ERR_NUMERIC, or AE_ERR_FORMAT naming the file when loading
 * from path. */
static ae_status finish_norms(ae_index *idx, char *msg, const char *fn, const char *path)
{
    size_t n = idx->n, d = idx->dim;
    double mx = 0.0;
    if (idx->backend == AE_INDEX_BRUTE) {
        idx->norms = ae__malloc(n * sizeof(float));
        if (!idx->norms) return ae__fail(msg, AE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const float *x = idx->data + i * d;
        double s = 0.0;
        for (size_t j = 0; j < d; j++) s += (double)x[j] * x[j];
        if (s > AE__MAX_SQNORM)
            return path ? ae__file_fail(msg, path, AE_ERR_FORMAT, "row %zu has squared norm %g, "
                                        "too large for float distances", i, s)
                        : ae__fail(msg, AE_ERR_NUMERIC,
                                   "row %zu has squared norm %g, too large for float distances",
                                   i, s);
        if (s > mx) mx = s;
        if (idx->norms) idx->norms[i] = ae__dot(x, x, d);
    }
    idx->max_norm = (float)sqrt(mx) * (1.0f + 1e-6f);
    return AE_OK;
}

/* Normalises rows for the cosine metric; a zero row is an error. */
static ae_status normalise_rows(float *x, size_t n, size_t d, char *msg, const char *fn,
                                const char *what)
{
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * d;
        double s = 0.0;
        for (size_t j = 0; j < d; j++) s += (double)r[j] * r[j];
        if (!(s > 0.0) || !isfinite(s))
            return ae__fail(msg, AE_ERR_NUMERIC,
                            "%s %zu has %s norm; the cosine metric needs a direction",
                            what, i, s > 0.0 ? "an infinite" : "zero");
        s = 1.0 / sqrt(s);
        for (size_t j = 0; j < d; j++) r[j] = (float)(r[j] * s);
    }
    return AE_OK;
}

ae_status ae_index_build(ae_index *idx, const float *x, size_t n, const int64_t *ids,
                         const int32_t *labels)
{
    AE__ENTER();
    static const char fn[] = "ae_index_build";
    size_t d, nd;
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    d = idx->dim;
    if (idx->built)
        return ae__fail(idx->msg, AE_ERR_STATE, "the index is already built");
    if (!x) return ae__fail(idx->msg, AE_ERR_INVALID_ARG, "NULL data");
    if (n == 0) return ae__fail(idx->msg, AE_ERR_INVALID_ARG, "no rows (n = 0)");
    if (n > AE__INDEX_MAX_N || ae__mul_size(n, d, &nd) != 0 || nd > SIZE_MAX / 8)
        return ae__fail(idx->msg, AE_ERR_RANGE, "%zu rows is more than the index holds",
                        n);
    if (!ae__all_finite(x, nd))
        return ae__fail(idx->msg, AE_ERR_NUMERIC, "the data contains NaN or infinity");

    idx->n = n;
    idx->data = ae__malloc_aligned(nd * sizeof(float));
    idx->ids = ae__malloc(n * sizeof(int64_t));
    if (labels) idx->labels = ae__malloc(n * sizeof(int32_t));
    if (!idx->data || !idx->ids || (labels && !idx->labels)) {
        st = ae__fail(idx->msg, AE_ERR_NOMEM, "out of memory for %zu x %zu codes", n, d);
        goto fail;
    }
    memcpy(idx->data, x, nd * sizeof(float));
    if (ids) memcpy(idx->ids, ids, n * sizeof(int64_t));
    else
        for (size_t i = 0; i < n; i++) idx->ids[i] = (int64_t)i;
    if (labels) memcpy(idx->labels, labels, n * sizeof(int32_t));
    if ((st = make_by_id(idx, idx->msg, fn, NULL)) != AE_OK) goto fail;
    if (idx->metric == AE_INDEX_COSINE &&
        (st = normalise_rows(idx->data, n, d, idx->msg, fn, "row")) != AE_OK)
        goto fail;
    if ((st = finish_norms(idx, idx->msg, fn, NULL)) != AE_OK) goto fail;

    switch (idx->backend) {
    case AE_INDEX_BRUTE: st = ae__brute_build(idx); break;
    case AE_INDEX_BALLTREE: st = ae__balltree_build(idx); break;
    case AE_INDEX_HNSW: st = ae__hnsw_build(idx); break;
    default: st = ae__fail(NULL, AE_ERR_INTERNAL, "bad backend"); break;
    }
    if (st != AE_OK) {
        ae__keep_msg(idx->msg);
        goto fail;
    }
    idx->built = 1;
    return AE_OK;
fail:
    index_release(idx);
    return st;
}

/* ---- search --------------------------------------------------------------------- */
static int cmp_res(const void *a, const void *b)
{
    const ae__res *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static inline int64_t row_id(const ae_index *idx, uint32_t r)
{
    return idx->ids[idx->perm ? idx->perm[r] : r];
}

/* The approximate backend's results as they are (float distances), ordered
 * by (distance, id) with an insertion sort: nc is ef-sized and small, and a
 * double-precision re-rank would buy exactness an approximate search does not
 * promise, at a measurable share of its query time. */
void ae__idx_order(const ae_index *idx, const ae__nb *cand, size_t nc, ae__res *res)
{
    for (size_t i = 0; i < nc; i++) {
        ae__res v = {cand[i].d, row_id(idx, cand[i].r), cand[i].r};
        size_t j = i;
        while (j > 0 && (res[j - 1].d > v.d || (res[j - 1].d == v.d && res[j - 1].id > v.id))) {
            res[j] = res[j - 1];
            j--;
        }
        res[j] = v;
    }
}

void ae__idx_rank(const ae_index *idx, const float *q, const ae__nb *cand, size_t nc,
                  ae__res *res)
{
    size_t d = idx->dim;
    for (size_t i = 0; i < nc; i++) {
        uint32_t r = cand[i].r;
        res[i].d = ae__l2sq_d(q, idx->data + (size_t)r * d, d);
        res[i].id = row_id(idx, r);
        res[i].r = r;
    }
    qsort(res, nc, sizeof *res, cmp_res);
}

static inline int res_less(const ae__res *a, const ae__res *b)
{
    return a->d < b->d || (a->d == b->d && a->id < b->id);
}

void ae__idx_exact_scan(const ae_index *idx, const float *q, size_t k, ae__res *res)
{
    size_t d = idx->dim, len = 0;
    /* res as a max-heap of (d, id) */
    for (size_t r = 0; r < idx->n; r++) {
        ae__res v = {ae__l2sq_d(q, idx->data + r * d, d), row_id(idx, (uint32_t)r),
                     (uint32_t)r};
        size_t i;
        if (len < k) {
            i = len++;
            while (i > 0 && res_less(&res[(i - 1) / 2], &v)) {
                res[i] = res[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            res[i] = v;
        } else if (res_less(&v, &res[0])) {
            i = 0;
            for (;;) {
                size_t c = 2 * i + 1;
                if (c >= len) break;
                if (c + 1 < len && res_less(&res[c], &res[c + 1])) c++;
                if (!res_less(&v, &res[c])) break;
                res[i] = res[c];
                i = c;
            }
            res[i] = v;
        }
    }
    qsort(res, len, sizeof *res, cmp_res);
}

void ae__idx_emit(const ae_index *idx, const ae__res *res, size_t k, float *dist, int64_t *ids)
{
    for (size_t i = 0; i < k; i++) {
        if (dist) {
            double v = idx->metric == AE_INDEX_COSINE ? 0.5 * res[i].d : sqrt(res[i].d);
            if (idx->metric == AE_INDEX_COSINE && v > 2.0) v = 2.0;
            dist[i] = (float)v;
        }
        ids[i] = res[i].id;
    }
}

ae_status ae_index_search(const ae_index *idx, const float *queries, size_t nq, size_t k,
                          size_t ef_search, float *distances, int64_t *ids)
{
    AE__ENTER();
    static const char fn[] = "ae_index_search";
    size_t d, nd;
    const float *q = queries;
    float *qcopy = NULL;
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if (!idx->built) return ae__fail(NULL, AE_ERR_STATE, "the index is not built");
    if (k == 0) return ae__fail(NULL, AE_ERR_INVALID_ARG, "k = 0");
    if (k > idx->n)
        return ae__fail(NULL, AE_ERR_RANGE, "k = %zu but the index holds %zu codes", k,
                        idx->n);
    if (ef_search > AE__INDEX_MAX_EF)
        return ae__fail(NULL, AE_ERR_RANGE, "ef_search = %zu exceeds %d", ef_search,
                        AE__INDEX_MAX_EF);
    if (nq == 0) return AE_OK;
    if (!queries || !ids)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL %s", queries ? "ids" : "queries");
    d = idx->dim;
    if (ae__mul_size(nq, d, &nd) != 0 || nd > SIZE_MAX / 8 ||
        ae__mul_size(nq, k, &(size_t){0}) != 0)
        return ae__fail(NULL, AE_ERR_RANGE, "%zu queries is too many", nq);
    if (!ae__all_finite(queries, nd))
        return ae__fail(NULL, AE_ERR_NUMERIC, "the queries contain NaN or infinity");
    if (idx->metric == AE_INDEX_COSINE) {
        qcopy = ae__malloc(nd * sizeof(float));
        if (!qcopy) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        memcpy(qcopy, queries, nd * sizeof(float));
        if ((st = normalise_rows(qcopy, nq, d, NULL, fn, "query")) != AE_OK) {
            ae__free(qcopy, nd * sizeof(float));
            return st;
        }
        q = qcopy;
    } else {
        for (size_t i = 0; i < nq; i++) {
            const float *r = queries + i * d;
            double s = 0.0;
            for (size_t j = 0; j < d; j++) s += (double)r[j] * r[j];
            if (s > AE__MAX_SQNORM)
                return ae__fail(NULL, AE_ERR_NUMERIC,
                                "query %zu has squared norm %g, too large for float "
                                "distances", i, s);
        }
    }
    if (ef_search == 0) ef_search = (size_t)idx->params[AE_INDEX_HNSW_EF_SEARCH];
    switch (idx->backend) {
    case AE_INDEX_BRUTE: st = ae__brute_search(idx, q, nq, k, distances, ids); break;
    case AE_INDEX_BALLTREE: st = ae__balltree_search(idx, q, nq, k, distances, ids); break;
    case AE_INDEX_HNSW: st = ae__hnsw_search(idx, q, nq, k, ef_search, distances, ids); break;
    default: st = ae__fail(NULL, AE_ERR_INTERNAL, "bad backend"); break;
    }
    if (qcopy) ae__free(qcopy, nd * sizeof(float));
    return st;
}

/* ---- accessors ------------------------------------------------------------------ */
size_t ae_index_count(const ae_index *idx) { return idx && idx->built ? idx->n : 0; }
size_t ae_index_dim(const ae_index *idx) { return idx ? idx->dim : 0; }
ae_index_backend ae_index_backend_of(const ae_index *idx)
{
    return idx ? idx->backend : (ae_index_backend)0;
}
ae_index_metric ae_index_metric_of(const ae_index *idx)
{
    return idx ? idx->metric : (ae_index_metric)0;
}
int ae_index_has_labels(const ae_index *idx) { return idx && idx->built && idx->labels; }
const char *ae_index_errmsg(const ae_index *idx) { return idx ? idx->msg : ""; }

ae_status ae_index_check_dim(const ae_index *idx, size_t expected_dim)
{
    AE__ENTER();
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if (idx->dim != expected_dim)
        return ae__fail(NULL, AE_ERR_SHAPE,
                        "index codes have %zu dimensions but %zu were expected", idx->dim,
                        expected_dim);
    return AE_OK;
}

ae_status ae_index_id_at(int64_t *id, const ae_index *idx, size_t row)
{
    AE__ENTER();
    if (!idx || !id) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built) return ae__fail(NULL, AE_ERR_STATE, "the index is not built");
    if (row >= idx->n)
        return ae__fail(NULL, AE_ERR_RANGE, "row %zu but the index holds %zu",
                        row, idx->n);
    *id = idx->ids[row];
    return AE_OK;
}

ae_status ae_index_label_at(int32_t *label, const ae_index *idx, size_t row)
{
    AE__ENTER();
    if (!idx || !label)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built || !idx->labels)
        return ae__fail(NULL, AE_ERR_STATE, "the index has no labels%s",
                        idx->built ? "" : " (not built)");
    if (row >= idx->n)
        return ae__fail(NULL, AE_ERR_RANGE, "row %zu but the index holds %zu",
                        row, idx->n);
    *label = idx->labels[row];
    return AE_OK;
}

ae_status ae_index_label(int32_t *label, const ae_index *idx, int64_t id)
{
    AE__ENTER();
    size_t lo = 0, hi;
    if (!idx || !label) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built || !idx->labels)
        return ae__fail(NULL, AE_ERR_STATE, "the index has no labels%s",
                        idx->built ? "" : " (not built)");
    hi = idx->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->ids[idx->by_id[mid]] < id) lo = mid + 1;
        else hi = mid;
    }
    if (lo == idx->n || idx->ids[idx->by_id[lo]] != id)
        return ae__fail(NULL, AE_ERR_RANGE, "no code has id %lld",
                        (long long)id);
    *label = idx->labels[idx->by_id[lo]];
    return AE_OK;
}

size_t ae_index_memory_bytes(const ae_index *idx)
{
    size_t n, d, b;
    if (!idx) return 0;
    n = idx->n;
    d = idx->dim;
    b = sizeof *idx;
    if (!idx->built) return b;
    b += n * d * sizeof(float) + n * (sizeof(int64_t) + sizeof(uint32_t));
    if (idx->labels) b += n * sizeof(int32_t);
    if (idx->norms) b += n * sizeof(float);
    if (idx->perm) b += n * sizeof(uint32_t);
    b += idx->bt_nodes * (2 * sizeof(uint32_t) + (d + 1) * sizeof(float));
    if (idx->h_links0)
        b += n * (1 + sizeof(uint64_t) + (1 + (size_t)idx->h_m0) * sizeof(uint32_t)) +
             idx->h_upper_len * sizeof(uint32_t);
    return b;
}

/* ---- file format (docs/formats-index.md) ----------------------------------------- */
static const unsigned char g_magic[8] = {0x89, 'A', 'E', 'I', 'D', 'X', '\r', '\n'};
#define AE__INDEX_FORMAT_VERSION 1u
#define AE__INDEX_HEADER_BYTES 88u
#define AE__INDEX_FLAG_LABELS 1u

ae_status ae_index_save(const ae_index *idx, const char *path)
{
    AE__ENTER();
    ae__writer w;
    ae_status st;
    size_t n, d, payload;
    if (!idx || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built) return ae__fail(NULL, AE_ERR_STATE, "the index is not built");
    n = idx->n;
    d = idx->dim;
    payload = n * d * 4 + n * 8 + (idx->labels ? n * 4 : 0);
    if (idx->backend == AE_INDEX_BALLTREE) payload += 8 + n * 4 + idx->bt_nodes * (d + 1) * 4;
    if (idx->backend == AE_INDEX_HNSW)
        payload += 8 + n + n * (1 + (size_t)idx->h_m0) * 4 + idx->h_upper_len * 4;

    if ((st = ae__writer_open(&w, path, NULL)) != AE_OK) return st;
    ae__writer_write(&w, g_magic, 8);
    ae__writer_u32(&w, AE__INDEX_FORMAT_VERSION);
    ae__writer_u32(&w, (uint32_t)idx->backend);
    ae__writer_u32(&w, (uint32_t)idx->metric);
    ae__writer_u32(&w, idx->labels ? AE__INDEX_FLAG_LABELS : 0u);
    ae__writer_u64(&w, d);
    ae__writer_u64(&w, n);
    for (int k = 1; k < AE__INDEX_NPARAMS; k++) ae__writer_u64(&w, (uint64_t)idx->params[k]);
    ae__writer_u64(&w, payload);
    ae__writer_f32s(&w, idx->data, n * d);
    ae__writer_write(&w, idx->ids, n * 8);
    if (idx->labels) ae__writer_write(&w, idx->labels, n * 4);
    if (idx->backend == AE_INDEX_BALLTREE) {
        ae__writer_u32(&w, idx->bt_levels);
        ae__writer_u32(&w, 0);
        ae__writer_write(&w, idx->perm, n * 4);
        ae__writer_f32s(&w, idx->bt_centroids, idx->bt_nodes * d);
        ae__writer_f32s(&w, idx->bt_radii, idx->bt_nodes);
    } else if (idx->backend == AE_INDEX_HNSW) {
        ae__writer_u32(&w, idx->h_max_level);
        ae__writer_u32(&w, idx->h_entry);
        ae__writer_write(&w, idx->h_levels, n);
        ae__writer_write(&w, idx->h_links0, n * (1 + (size_t)idx->h_m0) * 4);
        ae__writer_write(&w, idx->h_upper, idx->h_upper_len * 4);
    }
    ae__writer_u32(&w, w.crc);
    return ae__writer_commit(&w, path, NULL);
}

static uint32_t rd_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t rd_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Adds count * size to *total; fails on overflow or when beyond limit. */
static int add_size(size_t *total, size_t count, size_t size, size_t limit)
{
    size_t b;
    if (ae__mul_size(count, size, &b) != 0 || b > limit || *total > limit - b) return -1;
    *total += b;
    return 0;
}

/* Parses the bytes of a checked file into idx; every size was validated
 * against the file length before the allocation it guards. */
static ae_status load_body(ae_index *idx, const unsigned char *buf, size_t len,
                           const char *path)
{
    static const char fn[] = "ae_index_load";
    const unsigned char *p = buf + AE__INDEX_HEADER_BYTES;
    size_t payload = len - AE__INDEX_HEADER_BYTES - 4;
    size_t n = (size_t)rd_u64(buf + 32), d = idx->dim, need = 0;
    int has_labels = (rd_u32(buf + 20) & AE__INDEX_FLAG_LABELS) != 0;
    ae__reader rd = {p, payload, 0, 0};
    ae_status st;

    if (n == 0 || n > AE__INDEX_MAX_N)
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' claims %zu codes", path, n);
    /* fixed-size sections, checked before anything is allocated */
    if (add_size(&need, n, d * 4, payload) || add_size(&need, n, 8, payload) ||
        (has_labels && add_size(&need, n, 4, payload)))
        goto truncated;
    if (idx->backend == AE_INDEX_BRUTE && need != payload) goto truncated;

    idx->n = n;
    idx->data = ae__malloc_aligned(n * d * 4);
    idx->ids = ae__malloc(n * 8);
    if (has_labels) idx->labels = ae__malloc(n * 4);
    if (!idx->data || !idx->ids || (has_labels && !idx->labels))
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu x %zu codes", n, d);
    ae__reader_f32s(&rd, idx->data, n * d);
    ae__reader_bytes(&rd, idx->ids, n * 8);
    if (has_labels) ae__reader_bytes(&rd, idx->labels, n * 4);
    if (!ae__all_finite(idx->data, n * d))
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' holds NaN or infinite codes", path);
    if ((st = make_by_id(idx, NULL, fn, path)) != AE_OK) return st;
    if ((st = finish_norms(idx, NULL, fn, path)) != AE_OK) return st;

    if (idx->backend == AE_INDEX_BALLTREE) {
        uint32_t levels, zero;
        size_t nodes;
        if (ae__reader_u32(&rd, &levels) || ae__reader_u32(&rd, &zero)) goto truncated;
        if (zero != 0 || levels != ae__balltree_levels(n, (size_t)idx->params[AE_INDEX_LEAF_SIZE]))
            return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has an inconsistent ball tree",
                            path);
        nodes = ((size_t)1 << levels) - 1;
        if (add_size(&need, 8 + (size_t)n * 4, 1, payload) ||
            add_size(&need, nodes, (d + 1) * 4, payload) || need != payload)
            goto truncated;
        idx->bt_levels = levels;
        if ((st = ae__balltree_ranges(idx)) != AE_OK) return st;
        idx->perm = ae__malloc(n * 4);
        idx->bt_centroids = ae__malloc_aligned(nodes * d * 4);
        idx->bt_radii = ae__malloc(nodes * 4);
        if (!idx->perm || !idx->bt_centroids || !idx->bt_radii)
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        ae__reader_bytes(&rd, idx->perm, n * 4);
        ae__reader_f32s(&rd, idx->bt_centroids, nodes * d);
        ae__reader_f32s(&rd, idx->bt_radii, nodes);
        /* perm must be a permutation */
        {
            unsigned char *seen = ae__calloc(n, 1);
            int ok = 1;
            if (!seen) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
            for (size_t i = 0; ok && i < n; i++) {
                if (idx->perm[i] >= n || seen[idx->perm[i]]) ok = 0;
                else seen[idx->perm[i]] = 1;
            }
            ae__free(seen, n);
            if (!ok) return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a bad permutation", path);
        }
        if (!ae__all_finite(idx->bt_centroids, nodes * d) || !ae__all_finite(idx->bt_radii, nodes))
            return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has non-finite tree nodes", path);
        for (size_t i = 0; i < nodes; i++)
            if (idx->bt_radii[i] < 0.0f)
                return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a negative radius", path);
    } else if (idx->backend == AE_INDEX_HNSW) {
        uint32_t max_level, entry, m = (uint32_t)idx->params[AE_INDEX_HNSW_M], m0 = 2 * m;
        size_t upper = 0;
        const unsigned char *lv;
        if (ae__reader_u32(&rd, &max_level) || ae__reader_u32(&rd, &entry)) goto truncated;
        if (add_size(&need, 8 + n, 1, payload) || add_size(&need, n, (1 + (size_t)m0) * 4, payload))
            goto truncated;
        lv = p + rd.pos; /* the levels, read in place to size the upper layers */
        for (size_t i = 0; i < n; i++) {
            if (lv[i] > AE__HNSW_MAX_LEVEL || lv[i] > max_level)
                return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a bad HNSW level", path);
            upper += lv[i];
        }
        if (max_level > AE__HNSW_MAX_LEVEL || entry >= n || lv[entry] != max_level)
            return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a bad HNSW entry point", path);
        if (add_size(&need, upper, (1 + (size_t)m) * 4, payload) || need != payload)
            goto truncated;
        idx->h_m = m;
        idx->h_m0 = m0;
        idx->h_max_level = max_level;
        idx->h_entry = entry;
        idx->h_upper_len = upper * (1 + (size_t)m);
        idx->h_levels = ae__malloc(n);
        idx->h_links0 = ae__malloc(n * (1 + (size_t)m0) * 4);
        idx->h_upper_off = ae__malloc(n * 8);
        idx->h_upper = idx->h_upper_len ? ae__malloc(idx->h_upper_len * 4) : NULL;
        if (!idx->h_levels || !idx->h_links0 || !idx->h_upper_off ||
            (idx->h_upper_len && !idx->h_upper))
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        ae__reader_bytes(&rd, idx->h_levels, n);
        ae__reader_bytes(&rd, idx->h_links0, n * (1 + (size_t)m0) * 4);
        ae__reader_bytes(&rd, idx->h_upper, idx->h_upper_len * 4);
        upper = 0;
        for (size_t i = 0; i < n; i++) {
            idx->h_upper_off[i] = upper;
            upper += (size_t)idx->h_levels[i] * (1 + m);
        }
        for (size_t i = 0; i < n; i++) {
            for (uint32_t l = 0; l <= idx->h_levels[i]; l++) {
                const uint32_t *lk = l == 0 ? idx->h_links0 + i * (1 + (size_t)m0)
                                            : idx->h_upper + idx->h_upper_off[i] +
                                                  (size_t)(l - 1) * (1 + m);
                uint32_t cnt = lk[0], cap = l == 0 ? m0 : m;
                if (cnt > cap) goto bad_graph;
                for (uint32_t j = 1; j <= cnt; j++)
                    if (lk[j] >= n || idx->h_levels[lk[j]] < l) goto bad_graph;
            }
        }
    }
    if (rd.failed || rd.pos != payload) goto truncated;
    idx->built = 1;
    return AE_OK;
bad_graph:
    return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a corrupt HNSW graph", path);
truncated:
    return ae__fail(NULL, AE_ERR_FORMAT,
                    "'%s' is inconsistent: its sections do not add up to its %zu bytes",
                    path, len);
}

ae_status ae_index_load(ae_index **out, const char *path)
{
    AE__ENTER();
    static const char fn[] = "ae_index_load";
    unsigned char *buf = NULL;
    size_t len = 0, d;
    uint32_t version, backend, metric, flags, crc;
    ae_index *idx;
    ae_status st;

    if (!out || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if ((st = ae__read_file(path, SIZE_MAX / 2, &buf, &len, NULL)) != AE_OK) return st;
    if (len < AE__INDEX_HEADER_BYTES + 4 || memcmp(buf, g_magic, 8) != 0) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' is not a libautoenc index file%s",
                      path, len < AE__INDEX_HEADER_BYTES + 4 ? " (too short)" : "");
        goto done;
    }
    version = rd_u32(buf + 8);
    if (version == 0 || version > AE__INDEX_FORMAT_VERSION) {
        st = ae__fail(NULL, version ? AE_ERR_VERSION : AE_ERR_FORMAT,
                      "'%s' has format version %u; this library reads version %u", path,
                      version, AE__INDEX_FORMAT_VERSION);
        goto done;
    }
    if (rd_u64(buf + 80) != len - AE__INDEX_HEADER_BYTES - 4) {
        st = ae__fail(NULL, AE_ERR_FORMAT,
                      "'%s' is truncated or has trailing bytes (%zu bytes, header says %llu)", path, len, (unsigned long long)rd_u64(buf + 80) + AE__INDEX_HEADER_BYTES + 4);
        goto done;
    }
    crc = rd_u32(buf + len - 4);
    if (ae__crc32(0, buf, len - 4) != crc) {
        st = ae__fail(NULL, AE_ERR_CHECKSUM, "'%s' is corrupt (checksum mismatch)", path);
        goto done;
    }
    backend = rd_u32(buf + 12);
    metric = rd_u32(buf + 16);
    flags = rd_u32(buf + 20);
    d = (size_t)rd_u64(buf + 24);
    if ((st = check_kind((int)backend, (int)metric, d, fn)) != AE_OK ||
        (flags & ~AE__INDEX_FLAG_LABELS) != 0) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a bad header (backend %u, metric %u, "
                      "dimension %zu, flags %#x)", path, backend, metric, d, flags);
        goto done;
    }
    idx = index_new((int)backend, (int)metric, d);
    if (!idx) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 1; k < AE__INDEX_NPARAMS; k++) {
        int64_t v = (int64_t)rd_u64(buf + 40 + 8 * (size_t)(k - 1));
        if (v < g_params[k].lo || v > g_params[k].hi) {
            st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' has %s = %lld, out of range", path,
                          g_params[k].name, (long long)v);
            ae_index_free(idx);
            goto done;
        }
        idx->params[k] = v;
    }
    st = load_body(idx, buf, len, path);
    if (st != AE_OK) {
        ae_index_free(idx);
        goto done;
    }
    *out = idx;
done:
    ae__free(buf, len);
    return st;
}
