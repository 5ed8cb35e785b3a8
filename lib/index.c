/* Nearest-neighbour index, the facade: life cycle, parameters, input checks,
 * the rows, ids and labels every backend shares, accessors, and the file
 * format (docs/formats-index.md). The backends (index_brute.c,
 * index_balltree.c, index_hnsw.c) are reached only through their
 * ae__index_ops tables. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index_impl.h"

/* ---- parameters ------------------------------------------------------------ */
typedef struct param_info {
    const char *name;
    int64_t lo, hi, def;
} param_info;

/* Which backend uses which key is in each backend's ops->params. */
static const param_info g_params[AE__INDEX_NPARAMS] = {
    {NULL, 0, 0, 0},
    {"AE_INDEX_LEAF_SIZE", 1, 1 << 20, 40},
    {"AE_INDEX_HNSW_M", 2, 256, 16},
    {"AE_INDEX_HNSW_EF_CONSTRUCTION", 1, AE__INDEX_MAX_EF, 200},
    {"AE_INDEX_HNSW_EF_SEARCH", 1, AE__INDEX_MAX_EF, 64},
    {"AE_INDEX_SEED", 0, INT64_MAX, 42},
};

/* Indexed by ae_index_backend. */
static const ae__index_ops *const g_backends[] = {
    NULL,
    &ae__index_ops_brute,
    &ae__index_ops_balltree,
    &ae__index_ops_hnsw,
};
#define N_BACKENDS (sizeof g_backends / sizeof g_backends[0])

static int uses_key(const ae__index_ops *ops, int key) { return (ops->params >> key) & 1u; }

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
    if (!valid_key((int)key)) return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown key %d", (int)key);
    *type = AE_VALUE_INT;
    return AE_OK;
}

const char *ae_index_param_name(ae_index_param key)
{
    return valid_key((int)key) ? g_params[key].name : NULL;
}

static ae_status check_key(const ae_index *idx, int key, char *msg)
{
    if (!valid_key(key)) return ae__fail(msg, AE_ERR_INVALID_ARG, "unknown key %d", key);
    if (!uses_key(idx->ops, key))
        return ae__fail(msg, AE_ERR_INVALID_ARG, "%s is not used by the %s backend",
                        g_params[key].name, idx->ops->name);
    return AE_OK;
}

ae_status ae_index_set_int(ae_index *idx, ae_index_param key, int64_t value)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if ((st = check_key(idx, (int)key, idx->msg)) != AE_OK) return st;
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
    if ((st = check_key(idx, (int)key, NULL)) != AE_OK) return st;
    *value = idx->params[key];
    return AE_OK;
}

/* ---- life cycle ------------------------------------------------------------ */
static ae_index *index_new(int backend, int metric, size_t dim)
{
    ae_index *idx = ae__calloc(1, sizeof *idx);
    if (!idx) return NULL;
    idx->ops = g_backends[backend];
    idx->metric = (ae_index_metric)metric;
    idx->dim = dim;
    for (int k = 1; k < AE__INDEX_NPARAMS; k++) idx->params[k] = g_params[k].def;
    return idx;
}

static ae_status check_kind(int backend, int metric, size_t dim)
{
    if (backend < 1 || (size_t)backend >= N_BACKENDS)
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
    if ((st = check_kind((int)backend, (int)metric, dim)) != AE_OK) return st;
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
    idx->ops->free_state(idx);
    if (idx->data) ae__free_aligned(idx->data, n * d * sizeof(float));
    ae__free(idx->ids, n * sizeof(int64_t));
    ae__free(idx->labels, n * sizeof(int32_t));
    ae__free(idx->by_id, n * sizeof(uint32_t));
    idx->data = NULL;
    idx->ids = NULL;
    idx->labels = NULL;
    idx->by_id = NULL;
    idx->perm = NULL;
    idx->state = NULL;
    idx->n = 0;
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
static ae_status make_by_id(ae_index *idx, char *msg, const char *path)
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

/* Computes max_norm of idx->data. A row too large is AE_ERR_NUMERIC, or
 * AE_ERR_FORMAT naming the file when loading from path. */
static ae_status finish_norms(ae_index *idx, char *msg, const char *path)
{
    size_t n = idx->n, d = idx->dim;
    double mx = 0.0;
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
    }
    idx->max_norm = (float)sqrt(mx) * (1.0f + 1e-6f);
    return AE_OK;
}

/* Normalises rows for the cosine metric; a zero row is an error. */
static ae_status normalise_rows(float *x, size_t n, size_t d, char *msg,
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
    if ((st = make_by_id(idx, idx->msg, NULL)) != AE_OK) goto fail;
    if (idx->metric == AE_INDEX_COSINE &&
        (st = normalise_rows(idx->data, n, d, idx->msg, "row")) != AE_OK)
        goto fail;
    if ((st = finish_norms(idx, idx->msg, NULL)) != AE_OK) goto fail;

    if ((st = idx->ops->build(idx)) != AE_OK) {
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
        if ((st = normalise_rows(qcopy, nq, d, NULL, "query")) != AE_OK) {
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
    st = idx->ops->search(idx, q, nq, k, ef_search, distances, ids);
    if (qcopy) ae__free(qcopy, nd * sizeof(float));
    return st;
}

/* ---- accessors ------------------------------------------------------------------ */
size_t ae_index_count(const ae_index *idx) { return idx && idx->built ? idx->n : 0; }
size_t ae_index_dim(const ae_index *idx) { return idx ? idx->dim : 0; }
ae_index_backend ae_index_backend_of(const ae_index *idx)
{
    return idx ? idx->ops->backend : (ae_index_backend)0;
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
    return b + idx->ops->memory_bytes(idx);
}

/* ---- file format (docs/formats-index.md) ----------------------------------------- */
static const unsigned char g_magic[8] = {0x89, 'A', 'E', 'I', 'D', 'X', '\r', '\n'};
#define FORMAT_VERSION 2u
#define FLAG_LABELS 1u
#define V1_HEADER 88u  /* version 1: fixed header; all five parameters, payload size at 80 */
#define V2_HEADER 52u  /* version 2: fixed header; the parameter pairs follow */
#define V2_PAIR 12u    /* u32 key, i64 value */
#define V2_SECTION 16u /* u32 tag, u32 reserved, u64 size */
enum { SECTION_CODES = 1, SECTION_IDS = 2, SECTION_LABELS = 3 };

static void write_section(ae__writer *w, uint32_t tag, size_t size)
{
    ae__writer_u32(w, tag);
    ae__writer_u32(w, 0);
    ae__writer_u64(w, size);
}

ae_status ae_index_save(const ae_index *idx, const char *path)
{
    AE__ENTER();
    const ae__index_ops *ops;
    ae__writer w;
    ae_status st;
    size_t n, d, body, total;
    uint32_t npairs = 0;
    if (!idx || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built) return ae__fail(NULL, AE_ERR_STATE, "the index is not built");
    ops = idx->ops;
    n = idx->n;
    d = idx->dim;
    body = ops->file_section ? ops->file_bytes(idx) : 0;
    for (int k = 1; k < AE__INDEX_NPARAMS; k++) npairs += (uint32_t)uses_key(ops, k);
    total = V2_HEADER + npairs * V2_PAIR + V2_SECTION + n * d * 4 + V2_SECTION + n * 8 +
            (idx->labels ? V2_SECTION + n * 4 : 0) + (ops->file_section ? V2_SECTION + body : 0) +
            4;

    if ((st = ae__writer_open(&w, path, NULL)) != AE_OK) return st;
    ae__writer_write(&w, g_magic, 8);
    ae__writer_u32(&w, FORMAT_VERSION);
    ae__writer_u32(&w, (uint32_t)ops->backend);
    ae__writer_u32(&w, (uint32_t)idx->metric);
    ae__writer_u32(&w, idx->labels ? FLAG_LABELS : 0u);
    ae__writer_u64(&w, d);
    ae__writer_u64(&w, n);
    ae__writer_u64(&w, total);
    ae__writer_u32(&w, npairs);
    for (int k = 1; k < AE__INDEX_NPARAMS; k++)
        if (uses_key(ops, k)) {
            ae__writer_u32(&w, (uint32_t)k);
            ae__writer_u64(&w, (uint64_t)idx->params[k]);
        }
    write_section(&w, SECTION_CODES, n * d * 4);
    ae__writer_f32s(&w, idx->data, n * d);
    write_section(&w, SECTION_IDS, n * 8);
    ae__writer_write(&w, idx->ids, n * 8);
    if (idx->labels) {
        write_section(&w, SECTION_LABELS, n * 4);
        ae__writer_write(&w, idx->labels, n * 4);
    }
    if (ops->file_section) {
        write_section(&w, ops->file_section, body);
        ops->save(idx, &w);
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

/* Where the sections of a checked file are; labels is NULL when absent,
 * body the backend's section (body_len bytes, possibly none). */
typedef struct file_parts {
    const unsigned char *codes, *ids, *labels, *body;
    size_t body_len;
} file_parts;

static ae_status inconsistent(const char *path, size_t len)
{
    return ae__fail(NULL, AE_ERR_FORMAT,
                    "'%s' is inconsistent: its sections do not add up to its %zu "
                    "bytes", path, len);
}

static ae_status check_param(ae_index *idx, uint32_t key, int64_t v, const char *path)
{
    if (v < g_params[key].lo || v > g_params[key].hi)
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has %s = %lld, out of range",
                        path, g_params[key].name, (long long)v);
    idx->params[key] = v;
    return AE_OK;
}

/* Version 1: the five parameters at 40, then codes, ids, labels and the
 * backend's body, their sizes implied by n, d and the flags. */
static ae_status parse_v1(ae_index *idx, const unsigned char *buf, size_t len, size_t n,
                          const char *path, file_parts *fp)
{
    size_t payload = len - V1_HEADER - 4, d = idx->dim, need = 0, b;
    int has_labels = (rd_u32(buf + 20) & FLAG_LABELS) != 0;
    ae_status st;
    for (uint32_t k = 1; k < AE__INDEX_NPARAMS; k++)
        if ((st = check_param(idx, k, (int64_t)rd_u64(buf + 40 + 8 * (size_t)(k - 1)), path)) !=
            AE_OK)
            return st;
    /* codes, ids and labels within the payload, with overflow checks */
    if (ae__mul_size(n, d * 4, &b) != 0 || b > payload) return inconsistent(path, len);
    need = b;
    if (n > (payload - need) / 8) return inconsistent(path, len);
    need += n * 8;
    if (has_labels) {
        if (n > (payload - need) / 4) return inconsistent(path, len);
        need += n * 4;
    }
    fp->codes = buf + V1_HEADER;
    fp->ids = fp->codes + n * d * 4;
    fp->labels = has_labels ? fp->ids + n * 8 : NULL;
    fp->body = buf + V1_HEADER + need;
    fp->body_len = payload - need;
    if (!idx->ops->file_section && fp->body_len != 0) return inconsistent(path, len);
    return AE_OK;
}

/* Version 2: the parameter pairs at 52, then tagged sections. */
static ae_status parse_v2(ae_index *idx, const unsigned char *buf, size_t len, size_t n,
                          const char *path, file_parts *fp)
{
    const ae__index_ops *ops = idx->ops;
    size_t d = idx->dim, end = len - 4, pos = V2_HEADER;
    uint32_t npairs = rd_u32(buf + 48), prev = 0, want[4];
    int has_labels = (rd_u32(buf + 20) & FLAG_LABELS) != 0, nwant = 0;
    ae_status st;

    if (npairs > (end - V2_HEADER) / V2_PAIR)
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' claims %u parameters", path, npairs);
    for (uint32_t i = 0; i < npairs; i++, pos += V2_PAIR) {
        uint32_t key = rd_u32(buf + pos);
        if (key <= prev)
            return ae__fail(NULL, AE_ERR_FORMAT,
                            "'%s' has parameter key %u after key %u (keys ascend from 1)",
                            path, key, prev);
        prev = key;
        if (key >= AE__INDEX_NPARAMS)
            return ae__fail(NULL, AE_ERR_VERSION,
                            "'%s' has parameter key %u, unknown to this library (written by "
                            "a newer one?)", path, key);
        if (!uses_key(ops, (int)key))
            return ae__fail(NULL, AE_ERR_FORMAT,
                            "'%s' has %s, which the %s backend does not use", path,
                            g_params[key].name, ops->name);
        if ((st = check_param(idx, key, (int64_t)rd_u64(buf + pos + 4), path)) != AE_OK) return st;
    }

    want[nwant++] = SECTION_CODES;
    want[nwant++] = SECTION_IDS;
    if (has_labels) want[nwant++] = SECTION_LABELS;
    if (ops->file_section) want[nwant++] = ops->file_section;
    memset(fp, 0, sizeof *fp);
    for (int i = 0; i < nwant; i++) {
        uint32_t tag;
        uint64_t size;
        size_t elem = 0, b;
        const unsigned char *p;
        if (end - pos < V2_SECTION) return inconsistent(path, len);
        tag = rd_u32(buf + pos);
        size = rd_u64(buf + pos + 8);
        if (tag != want[i] || rd_u32(buf + pos + 4) != 0)
            return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has section %u where %u belongs",
                            path, tag, want[i]);
        pos += V2_SECTION;
        if (size > end - pos) return inconsistent(path, len);
        p = buf + pos;
        switch (tag) {
        case SECTION_CODES: elem = d * 4; fp->codes = p; break;
        case SECTION_IDS: elem = 8; fp->ids = p; break;
        case SECTION_LABELS: elem = 4; fp->labels = p; break;
        default: fp->body = p; fp->body_len = (size_t)size; break;
        }
        if (elem && (ae__mul_size(n, elem, &b) != 0 || b != size))
            return inconsistent(path, len);
        pos += (size_t)size;
    }
    if (pos != end) return inconsistent(path, len);
    return AE_OK;
}

/* The shared fields from the sections, then the backend's body. */
static ae_status load_parts(ae_index *idx, size_t n, const file_parts *fp, const char *path)
{
    size_t d = idx->dim;
    ae__reader rd = {fp->codes, n * d * 4, 0, 0};
    ae_status st;

    idx->n = n;
    idx->data = ae__malloc_aligned(n * d * 4);
    idx->ids = ae__malloc(n * 8);
    if (fp->labels) idx->labels = ae__malloc(n * 4);
    if (!idx->data || !idx->ids || (fp->labels && !idx->labels))
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu x %zu codes", n, d);
    ae__reader_f32s(&rd, idx->data, n * d);
    memcpy(idx->ids, fp->ids, n * 8);
    if (fp->labels) memcpy(idx->labels, fp->labels, n * 4);
    if (!ae__all_finite(idx->data, n * d))
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' holds NaN or infinite codes", path);
    if ((st = make_by_id(idx, NULL, path)) != AE_OK) return st;
    if ((st = finish_norms(idx, NULL, path)) != AE_OK) return st;
    if ((st = idx->ops->load(idx, fp->body, fp->body_len, path)) != AE_OK) return st;
    idx->built = 1;
    return AE_OK;
}

ae_status ae_index_load(ae_index **out, const char *path)
{
    AE__ENTER();
    unsigned char *buf = NULL;
    size_t len = 0, d, n, header;
    uint32_t version, backend, metric, flags, crc;
    uint64_t declared;
    file_parts fp;
    ae_index *idx;
    ae_status st;

    if (!out || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if ((st = ae__read_file(path, SIZE_MAX / 2, &buf, &len, NULL)) != AE_OK) return st;
    if (len < 12 || memcmp(buf, g_magic, 8) != 0) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' is not a libautoenc index file%s",
                      path, len < 12 ? " (too short)" : "");
        goto done;
    }
    version = rd_u32(buf + 8);
    if (version == 0 || version > FORMAT_VERSION) {
        st = ae__fail(NULL, version ? AE_ERR_VERSION : AE_ERR_FORMAT,
                      "'%s' has format version %u; this library reads versions 1 to %u",
                      path, version, FORMAT_VERSION);
        goto done;
    }
    header = version == 1 ? V1_HEADER : V2_HEADER;
    if (len < header + 4) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' is truncated (%zu bytes)", path, len);
        goto done;
    }
    /* version 1 records the payload size, version 2 the file size */
    declared = version == 1 ? rd_u64(buf + 80) : rd_u64(buf + 40);
    if (declared != (version == 1 ? len - V1_HEADER - 4 : len)) {
        st = ae__fail(NULL, AE_ERR_FORMAT,
                      "'%s' is truncated or has trailing bytes (%zu bytes, header says %llu)", path, len,
                      (unsigned long long)(version == 1 ? declared + V1_HEADER + 4 : declared));
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
    if ((st = check_kind((int)backend, (int)metric, d)) != AE_OK ||
        (flags & ~FLAG_LABELS) != 0) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a bad header (backend %u, metric %u, "
                      "dimension %zu, flags %#x)", path, backend, metric, d, flags);
        goto done;
    }
    n = (size_t)rd_u64(buf + 32);
    if (n == 0 || n > AE__INDEX_MAX_N || rd_u64(buf + 32) > AE__INDEX_MAX_N) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' claims %llu codes", path,
                      (unsigned long long)rd_u64(buf + 32));
        goto done;
    }
    idx = index_new((int)backend, (int)metric, d);
    if (!idx) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = version == 1 ? parse_v1(idx, buf, len, n, path, &fp)
                      : parse_v2(idx, buf, len, n, path, &fp);
    if (st == AE_OK) st = load_parts(idx, n, &fp, path);
    if (st != AE_OK) {
        ae_index_free(idx);
        goto done;
    }
    *out = idx;
done:
    ae__free(buf, len);
    return st;
}
