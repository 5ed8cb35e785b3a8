/* Nearest-neighbour index, the facade: life cycle, parameters, input checks,
 * the rows, ids and labels every backend shares, accessors, and the file
 * format (docs/formats-index.md). The backends (index_brute.c,
 * index_balltree.c, index_hnsw.c) are reached only through their
 * ae__index_ops tables. */
#define _POSIX_C_SOURCE 200809L /* pthread_rwlock_t (index_impl.h) */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "index_impl.h"

/* ---- parameters ------------------------------------------------------------ */
typedef struct param_info {
    const char *name;
    int64_t lo, hi, def;
    /* 1: a property of the built structure, saved in files and fixed once
     * built; 0: a setting of the handle (AE_INDEX_THREADS), never saved,
     * settable at any time */
    int structural;
} param_info;

/* Which backend uses which key is in each backend's ops->params. */
static const param_info g_params[AE__INDEX_NPARAMS] = {
    {NULL, 0, 0, 0, 0},
    {"AE_INDEX_LEAF_SIZE", 1, 1 << 20, 40, 1},
    {"AE_INDEX_HNSW_M", 2, 256, 16, 1},
    {"AE_INDEX_HNSW_EF_CONSTRUCTION", 1, AE__INDEX_MAX_EF, 200, 1},
    {"AE_INDEX_HNSW_EF_SEARCH", 1, AE__INDEX_MAX_EF, 64, 1},
    {"AE_INDEX_SEED", 0, INT64_MAX, 42, 1},
    {"AE_INDEX_THREADS", 1, AE__MAX_THREADS, 1, 0},
};

/* Whether key goes into an index file (for ops's backend). */
static int saved_key(const ae__index_ops *ops, int key)
{
    return ((ops->params >> key) & 1u) && g_params[key].structural;
}

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

/* A mapped index is read-only (index.h, ae_index_map). */
static ae_status check_writable(ae_index *idx)
{
    if (!idx->readonly) return AE_OK;
    return ae__fail(idx->msg, AE_ERR_STATE,
                    "the index is mapped read-only (ae_index_map); ae_index_load gives one "
                    "that can change");
}

static ae_status check_key(const ae_index *idx, int key, char *msg)
{
    if (!valid_key(key)) return ae__fail(msg, AE_ERR_INVALID_ARG, "unknown key %d", key);
    if (!uses_key(idx->ops, key))
        return ae__fail(msg, AE_ERR_INVALID_ARG, "%s is not used by the %s backend",
                        g_params[key].name, idx->ops->name);
    return AE_OK;
}

static ae_status set_int_locked(ae_index *idx, ae_index_param key, int64_t value)
{
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if ((st = check_key(idx, (int)key, idx->msg)) != AE_OK) return st;
    if ((st = check_writable(idx)) != AE_OK) return st;
    if (idx->built && g_params[key].structural)
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

static ae_status get_int_locked(int64_t *value, const ae_index *idx, ae_index_param key)
{
    ae_status st;
    if (!idx || !value)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if ((st = check_key(idx, (int)key, NULL)) != AE_OK) return st;
    *value = idx->params[key];
    return AE_OK;
}

/* ---- life cycle ------------------------------------------------------------ */
/* The handle's reader-writer lock: searches and other const calls read,
 * calls that change the index write (index.h, "Threading"). glibc's rwlock
 * prefers readers, so a stream of searches would starve a writer forever
 * (measured: an add never returned beside three searching threads); a writer
 * therefore holds the gate mutex while it waits, and a reader passes the gate
 * before it locks, so new readers queue behind a waiting writer. The casts
 * drop the const of const calls: the lock is the one mutable part of a const
 * handle. */
static void index_rdlock(const ae_index *idx)
{
    ae_index *m = (ae_index *)idx;
    (void)pthread_mutex_lock(&m->gate);
    (void)pthread_mutex_unlock(&m->gate);
    (void)pthread_rwlock_rdlock(&m->lock);
}
static void index_wrlock(ae_index *idx)
{
    (void)pthread_mutex_lock(&idx->gate);
    (void)pthread_rwlock_wrlock(&idx->lock);
    (void)pthread_mutex_unlock(&idx->gate);
}
static void index_unlock(const ae_index *idx)
{
    (void)pthread_rwlock_unlock((pthread_rwlock_t *)&idx->lock);
}

static ae_index *index_new(int backend, int metric, size_t dim)
{
    ae_index *idx = ae__calloc(1, sizeof *idx);
    if (!idx) return NULL;
    if (pthread_rwlock_init(&idx->lock, NULL) != 0) {
        ae__free(idx, sizeof *idx);
        return NULL;
    }
    if (pthread_mutex_init(&idx->gate, NULL) != 0) {
        pthread_rwlock_destroy(&idx->lock);
        ae__free(idx, sizeof *idx);
        return NULL;
    }
    idx->ops = g_backends[backend];
    idx->metric = (ae_index_metric)metric;
    idx->dim = dim;
    idx->sdim = metric == AE_INDEX_INNER_PRODUCT ? dim + 1 : dim;
    for (int k = 1; k < AE__INDEX_NPARAMS; k++) idx->params[k] = g_params[k].def;
    return idx;
}

static int valid_metric(int metric)
{
    return metric == AE_INDEX_L2 || metric == AE_INDEX_COSINE ||
           metric == AE_INDEX_INNER_PRODUCT;
}

static ae_status check_kind(int backend, int metric, size_t dim)
{
    if (backend < 1 || (size_t)backend >= N_BACKENDS)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown backend %d", backend);
    if (!valid_metric(metric))
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

/* Frees the row arrays (sizes derived from the fields). */
static void free_rows(ae_index *idx)
{
    size_t c = idx->cap;
    if (idx->data && !idx->data_borrowed)
        ae__free_aligned(idx->data, c * idx->sdim * sizeof(float));
    idx->data_borrowed = 0;
    ae__free(idx->ids, c * sizeof(int64_t));
    ae__free(idx->labels, c * sizeof(int32_t));
    ae__free(idx->dead, c);
    ae__free(idx->hslot, idx->hcap * sizeof(uint32_t));
    idx->data = NULL;
    idx->ids = NULL;
    idx->labels = NULL;
    idx->dead = NULL;
    idx->hslot = NULL;
    idx->hcap = 0;
    idx->cap = 0;
}

/* Frees everything built and returns the index to the empty state;
 * parameters are kept. */
static void index_release(ae_index *idx)
{
    idx->ops->free_state(idx);
    free_rows(idx);
    idx->perm = NULL;
    idx->state = NULL;
    idx->n = 0;
    idx->ndead = 0;
    idx->max_norm = 0.0f;
    idx->ip_m = 0.0f;
    idx->built = 0;
}

void ae_index_free(ae_index *idx)
{
    if (!idx) return;
    index_release(idx);
    ae__unmap_file(idx->map, idx->map_len);
    pthread_rwlock_destroy(&idx->lock);
    pthread_mutex_destroy(&idx->gate);
    ae__free(idx, sizeof *idx);
}

/* ---- ids: open addressing with linear probing, id -> input row ------------------ */
static inline size_t hash_home(int64_t id, size_t mask)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

/* Input row of the live code with this id, or SIZE_MAX. */
static size_t hash_find(const ae_index *idx, int64_t id)
{
    size_t mask = idx->hcap - 1, i;
    if (!idx->hcap) return SIZE_MAX;
    for (i = hash_home(id, mask); idx->hslot[i]; i = (i + 1) & mask)
        if (idx->ids[idx->hslot[i] - 1] == id) return idx->hslot[i] - 1;
    return SIZE_MAX;
}

/* Inserts row under its id into a table with room; returns the row already
 * holding the id, or SIZE_MAX when it was inserted. */
static size_t hash_put(uint32_t *slot, size_t hcap, const int64_t *ids, uint32_t row)
{
    size_t mask = hcap - 1, i;
    for (i = hash_home(ids[row], mask); slot[i]; i = (i + 1) & mask)
        if (ids[slot[i] - 1] == ids[row]) return slot[i] - 1;
    slot[i] = row + 1;
    return SIZE_MAX;
}

/* Deletes id from the table (backward-shift deletion keeps every probe
 * sequence unbroken). */
static void hash_del(ae_index *idx, int64_t id)
{
    size_t mask = idx->hcap - 1, i = hash_home(id, mask), j;
    while (idx->hslot[i] && idx->ids[idx->hslot[i] - 1] != id) i = (i + 1) & mask;
    if (!idx->hslot[i]) return;
    for (j = (i + 1) & mask; idx->hslot[j]; j = (j + 1) & mask) {
        size_t h = hash_home(idx->ids[idx->hslot[j] - 1], mask);
        /* move j into the hole at i unless its home lies cyclically in (i, j] */
        if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
            idx->hslot[i] = idx->hslot[j];
            i = j;
        }
    }
    idx->hslot[i] = 0;
}

/* A fresh table for `rows` codes (at most half full) holding every live row
 * of idx and then the rows [extra_from, extra_to) of idx->ids (not yet
 * counted in n). On success it replaces the old table; on a duplicate id
 * (*dup set) or no memory the old table stays. */
static ae_status hash_rebuild(ae_index *idx, size_t rows, size_t extra_from, size_t extra_to,
                              int64_t *dup)
{
    size_t hcap = 16, nlive = idx->n;
    uint32_t *slot;
    while (hcap < rows * AE__INDEX_HASH_LOAD) hcap *= 2;
    slot = ae__calloc(hcap, sizeof(uint32_t));
    if (!slot) return AE_ERR_NOMEM;
    for (size_t r = 0; r < nlive + (extra_to - extra_from); r++) {
        size_t row = r < nlive ? r : extra_from + (r - nlive);
        if (r < nlive && idx->dead && idx->dead[r]) continue;
        if (hash_put(slot, hcap, idx->ids, (uint32_t)row) != SIZE_MAX) {
            *dup = idx->ids[row];
            ae__free(slot, hcap * sizeof(uint32_t));
            return AE_ERR_INVALID_ARG;
        }
    }
    ae__free(idx->hslot, idx->hcap * sizeof(uint32_t));
    idx->hslot = slot;
    idx->hcap = hcap;
    return AE_OK;
}

/* The table of a freshly filled index (build, load); a duplicate is
 * AE_ERR_FORMAT naming the file when loading from path, else
 * AE_ERR_INVALID_ARG. */
static ae_status make_hash(ae_index *idx, char *msg, const char *path)
{
    int64_t dup = 0;
    ae_status st = hash_rebuild(idx, idx->n, 0, 0, &dup);
    if (st == AE_ERR_NOMEM) return ae__fail(msg, AE_ERR_NOMEM, "out of memory");
    if (st != AE_OK)
        return path ? ae__file_fail(msg, path, AE_ERR_FORMAT, "id %lld appears more than once",
                                    (long long)dup)
                    : ae__fail(msg, AE_ERR_INVALID_ARG, "id %lld appears more than once",
                               (long long)dup);
    return AE_OK;
}

/* ---- rows ------------------------------------------------------------------------ */
/* Squared norms must stay below FLT_MAX / 4 so no distance overflows. */
#define AE__MAX_SQNORM ((double)FLT_MAX / 4.0)

static double sqnorm_d(const float *x, size_t d)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++) s += (double)x[j] * x[j];
    return s;
}

/* A mapped file's full check: the pages of rows [0, i + 1) leave the
 * resident set again as the pass goes (ae__map_release_read). */
static void release_rows(const ae_index *idx, int release, size_t i)
{
    if (release) ae__map_release_read((const unsigned char *)idx->data, idx->sdim * 4, i);
}

/* Computes max_norm of the stored rows. A row too large is AE_ERR_NUMERIC,
 * or AE_ERR_FORMAT naming the file when loading from path. release: the
 * rows are a mapped file's, see release_rows. */
static ae_status finish_norms(ae_index *idx, char *msg, const char *path, int release)
{
    size_t n = idx->n, d = idx->sdim;
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s = sqnorm_d(idx->data + i * d, d);
        release_rows(idx, release, i);
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

/* Normalises rows (stride ld) for the cosine metric; a zero row is an error. */
static ae_status normalise_rows(float *x, size_t n, size_t d, size_t ld, char *msg,
                                const char *what)
{
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * ld;
        double s = sqnorm_d(r, d);
        if (!(s > 0.0) || !isfinite(s))
            return ae__fail(msg, AE_ERR_NUMERIC,
                            "%s %zu has %s norm; the cosine metric needs a direction",
                            what, i, s > 0.0 ? "an infinite" : "zero");
        s = 1.0 / sqrt(s);
        for (size_t j = 0; j < d; j++) r[j] = (float)(r[j] * s);
    }
    return AE_OK;
}

/* Largest squared norm of n caller rows of d floats (stride ld). */
static double max_sqnorm(const float *x, size_t n, size_t d, size_t ld)
{
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s = sqnorm_d(x + i * ld, d);
        if (s > mx) mx = s;
    }
    return mx;
}

/* Inner product: sets the extra coordinate of stored rows [from, to) for
 * M = ip_m (rows are in any order: the coordinate depends on the row only). */
static void augment_rows(ae_index *idx, size_t from, size_t to)
{
    size_t d = idx->dim, sd = idx->sdim;
    double mm = (double)idx->ip_m * idx->ip_m;
    for (size_t i = from; i < to; i++) {
        float *r = idx->data + i * sd;
        double t = mm - sqnorm_d(r, d);
        r[d] = (float)sqrt(t > 0.0 ? t : 0.0);
    }
}

/* M for codes whose largest squared norm is mx: the norm itself, rounded up
 * so that M^2 >= every |x|^2. */
static float ip_m_for(double mx)
{
    float m = (float)sqrt(mx);
    while ((double)m * m < mx) m = nextafterf(m, INFINITY);
    return m;
}

/* Copies n caller rows to stored rows [at, at + n) and prepares them for the
 * metric (normalised under cosine; under inner product the extra coordinate
 * is left for augment_rows). */
static ae_status store_rows(ae_index *idx, size_t at, const float *x, size_t n, char *msg)
{
    size_t d = idx->dim, sd = idx->sdim;
    float *dst = idx->data + at * sd;
    if (sd == d) memcpy(dst, x, n * d * sizeof(float));
    else
        for (size_t i = 0; i < n; i++) memcpy(dst + i * sd, x + i * d, d * sizeof(float));
    if (idx->metric == AE_INDEX_COSINE) return normalise_rows(dst, n, d, sd, msg, "row");
    return AE_OK;
}

/* Checks caller rows: finite, and squared norms within float range. */
static ae_status check_rows(const ae_index *idx, const float *x, size_t n, char *msg)
{
    size_t d = idx->dim;
    if (!ae__all_finite(x, n * d))
        return ae__fail(msg, AE_ERR_NUMERIC, "the data contains NaN or infinity");
    for (size_t i = 0; i < n; i++) {
        double s = sqnorm_d(x + i * d, d);
        /* under inner product the stored rows have norm M >= |x| */
        if (s > AE__MAX_SQNORM)
            return ae__fail(msg, AE_ERR_NUMERIC,
                            "row %zu has squared norm %g, too large for float distances", i, s);
    }
    return AE_OK;
}

/* Makes room for `need` rows in data, ids, labels and dead; on failure
 * nothing changes. */
static ae_status grow_rows(ae_index *idx, size_t need, char *msg)
{
    size_t c = idx->cap, nc, sd = idx->sdim;
    float *data;
    int64_t *ids;
    int32_t *labels = NULL;
    uint8_t *dead;
    if (need <= c) return AE_OK;
    nc = c + c / 2 > need ? c + c / 2 : need;
    if (nc > AE__INDEX_MAX_N) nc = AE__INDEX_MAX_N;
    data = ae__malloc_aligned(nc * sd * sizeof(float));
    ids = ae__malloc(nc * sizeof(int64_t));
    if (idx->labels) labels = ae__malloc(nc * sizeof(int32_t));
    dead = ae__calloc(nc, 1);
    if (!data || !ids || (idx->labels && !labels) || !dead) {
        if (data) ae__free_aligned(data, nc * sd * sizeof(float));
        ae__free(ids, nc * sizeof(int64_t));
        ae__free(labels, nc * sizeof(int32_t));
        ae__free(dead, nc);
        return ae__fail(msg, AE_ERR_NOMEM, "out of memory for %zu x %zu codes", need, idx->dim);
    }
    memcpy(data, idx->data, idx->n * sd * sizeof(float));
    memcpy(ids, idx->ids, idx->n * sizeof(int64_t));
    if (labels) memcpy(labels, idx->labels, idx->n * sizeof(int32_t));
    memcpy(dead, idx->dead, idx->n);
    ae__free_aligned(idx->data, c * sd * sizeof(float));
    ae__free(idx->ids, c * sizeof(int64_t));
    ae__free(idx->labels, c * sizeof(int32_t));
    ae__free(idx->dead, c);
    idx->data = data;
    idx->ids = ids;
    idx->labels = labels;
    idx->dead = dead;
    idx->cap = nc;
    return AE_OK;
}

/* ---- build -------------------------------------------------------------------- */
/* Fills an empty index with n rows and builds it; on failure the index is
 * empty again. */
static ae_status build_rows(ae_index *idx, const float *x, size_t n, const int64_t *ids,
                            const int32_t *labels)
{
    size_t d = idx->dim, sd = idx->sdim;
    ae_status st;
    idx->n = n;
    idx->cap = n;
    idx->data = ae__malloc_aligned(n * sd * sizeof(float));
    idx->ids = ae__malloc(n * sizeof(int64_t));
    idx->dead = ae__calloc(n, 1);
    if (labels) idx->labels = ae__malloc(n * sizeof(int32_t));
    if (!idx->data || !idx->ids || !idx->dead || (labels && !idx->labels)) {
        st = ae__fail(idx->msg, AE_ERR_NOMEM, "out of memory for %zu x %zu codes", n, d);
        goto fail;
    }
    if (ids) memcpy(idx->ids, ids, n * sizeof(int64_t));
    else
        for (size_t i = 0; i < n; i++) idx->ids[i] = (int64_t)i;
    if (labels) memcpy(idx->labels, labels, n * sizeof(int32_t));
    if ((st = make_hash(idx, idx->msg, NULL)) != AE_OK) goto fail;
    if ((st = store_rows(idx, 0, x, n, idx->msg)) != AE_OK) goto fail;
    if (idx->metric == AE_INDEX_INNER_PRODUCT) {
        idx->ip_m = ip_m_for(max_sqnorm(x, n, d, d));
        augment_rows(idx, 0, n);
    }
    if ((st = finish_norms(idx, idx->msg, NULL, 0)) != AE_OK) goto fail;

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

static ae_status check_count(ae_index *idx, size_t n, size_t have)
{
    size_t nd;
    if (n == 0) return ae__fail(idx->msg, AE_ERR_INVALID_ARG, "no rows (n = 0)");
    if (n > AE__INDEX_MAX_N - have || ae__mul_size(n + have, idx->sdim, &nd) != 0 ||
        nd > SIZE_MAX / 8)
        return ae__fail(idx->msg, AE_ERR_RANGE, "%zu rows is more than the index holds",
                        n + have);
    return AE_OK;
}

static ae_status build_locked(ae_index *idx, const float *x, size_t n, const int64_t *ids,
                             const int32_t *labels)
{
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if ((st = check_writable(idx)) != AE_OK) return st;
    if (idx->built)
        return ae__fail(idx->msg, AE_ERR_STATE, "the index is already built");
    if (!x) return ae__fail(idx->msg, AE_ERR_INVALID_ARG, "NULL data");
    if ((st = check_count(idx, n, 0)) != AE_OK) return st;
    if (!ae__all_finite(x, n * idx->dim))
        return ae__fail(idx->msg, AE_ERR_NUMERIC, "the data contains NaN or infinity");
    return build_rows(idx, x, n, ids, labels);
}

/* ---- rebuilding ------------------------------------------------------------------ */
/* Moves the built contents of src into dst (whose lock and message stay),
 * freeing what dst held. */
static void take_contents(ae_index *dst, ae_index *src)
{
    index_release(dst);
    dst->sdim = src->sdim;
    dst->n = src->n;
    dst->cap = src->cap;
    dst->ndead = src->ndead;
    dst->data = src->data;
    dst->max_norm = src->max_norm;
    dst->ip_m = src->ip_m;
    dst->ids = src->ids;
    dst->labels = src->labels;
    dst->dead = src->dead;
    dst->hslot = src->hslot;
    dst->hcap = src->hcap;
    dst->perm = src->perm;
    dst->state = src->state;
    dst->built = src->built;
    src->data = NULL;
    src->ids = NULL;
    src->labels = NULL;
    src->dead = NULL;
    src->hslot = NULL;
    src->hcap = src->cap = src->n = 0;
    src->perm = NULL;
    src->state = NULL;
    src->built = 0;
}

/* Builds the index again, in a new index that replaces idx on success (on
 * failure idx is unchanged): from its rows in input order, the removed ones
 * dropped when drop_dead (rows renumbered) or kept removed, plus m caller
 * rows x (ids, labels) appended. M of the inner product is recomputed. */
static ae_status rebuild(ae_index *idx, int drop_dead, const float *x, size_t m,
                         const int64_t *ids, const int32_t *labels)
{
    size_t n = idx->n, d = idx->dim, sd = idx->sdim, rows = 0, j = 0;
    uint32_t *inv = NULL;
    ae_index *t = index_new((int)idx->ops->backend, (int)idx->metric, d);
    ae_status st = AE_OK;
    if (!t) return ae__fail(idx->msg, AE_ERR_NOMEM, "out of memory");
    memcpy(t->params, idx->params, sizeof t->params);
    for (size_t i = 0; i < n; i++) rows += !(drop_dead && idx->dead && idx->dead[i]);
    rows += m;
    t->n = t->cap = rows;
    t->data = ae__malloc_aligned(rows * sd * sizeof(float));
    t->ids = ae__malloc(rows * sizeof(int64_t));
    if (idx->labels) t->labels = ae__malloc(rows * sizeof(int32_t));
    t->dead = ae__calloc(rows, 1);
    if (idx->perm) inv = ae__malloc(n * sizeof(uint32_t));
    if (!t->data || !t->ids || (idx->labels && !t->labels) || !t->dead || (idx->perm && !inv)) {
        st = ae__fail(idx->msg, AE_ERR_NOMEM, "out of memory for %zu x %zu codes", rows, d);
        goto done;
    }
    if (inv)
        for (size_t r = 0; r < n; r++) inv[idx->perm[r]] = (uint32_t)r;
    for (size_t i = 0; i < n; i++) {
        if (drop_dead && idx->dead && idx->dead[i]) continue;
        memcpy(t->data + j * sd, idx->data + (size_t)(inv ? inv[i] : i) * sd, sd * sizeof(float));
        t->ids[j] = idx->ids[i];
        if (t->labels) t->labels[j] = idx->labels[i];
        t->dead[j] = drop_dead ? 0 : idx->dead[i];
        j++;
    }
    t->ndead = drop_dead ? 0 : idx->ndead;
    if (m) {
        memcpy(t->ids + j, ids, m * sizeof(int64_t));
        if (t->labels) memcpy(t->labels + j, labels, m * sizeof(int32_t));
        if ((st = store_rows(t, j, x, m, idx->msg)) != AE_OK) goto done;
    }
    {
        int64_t dup = 0;
        ae_status hs = hash_rebuild(t, rows, 0, 0, &dup);
        if (hs == AE_ERR_NOMEM) st = ae__fail(idx->msg, AE_ERR_NOMEM, "out of memory");
        else if (hs != AE_OK)
            st = ae__fail(idx->msg, AE_ERR_INVALID_ARG, "id %lld appears more than once",
                          (long long)dup);
        if (st != AE_OK) goto done;
    }
    if (t->metric == AE_INDEX_INNER_PRODUCT) {
        double mx = 0.0;
        for (size_t r = 0; r < rows; r++) {
            double s = sqnorm_d(t->data + r * sd, d);
            if (s > mx) mx = s;
        }
        t->ip_m = ip_m_for(mx);
        augment_rows(t, 0, rows);
    }
    if ((st = finish_norms(t, idx->msg, NULL, 0)) != AE_OK) goto done;
    if ((st = t->ops->build(t)) != AE_OK) {
        ae__keep_msg(idx->msg);
        goto done;
    }
    t->built = 1;
    take_contents(idx, t);
done:
    ae__free(inv, n * sizeof(uint32_t));
    ae_index_free(t);
    return st;
}

/* ---- add, remove, compact -------------------------------------------------------- */
static ae_status add_locked(ae_index *idx, const float *x, size_t n, const int64_t *ids,
                          const int32_t *labels)
{
    size_t n0, d, sd;
    int64_t dup = 0;
    int covered = 0, want_rebuild = 0, grow_m = 0;
    double mx;
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if ((st = check_writable(idx)) != AE_OK) return st;
    if (!x || !ids) return ae__fail(idx->msg, AE_ERR_INVALID_ARG, "NULL %s", x ? "ids" : "data");
    if (!idx->built) {
        if ((st = check_count(idx, n, 0)) != AE_OK) return st;
        if (!ae__all_finite(x, n * idx->dim))
            return ae__fail(idx->msg, AE_ERR_NUMERIC, "the data contains NaN or infinity");
        return build_rows(idx, x, n, ids, labels);
    }
    n0 = idx->n;
    d = idx->dim;
    sd = idx->sdim;
    if ((st = check_count(idx, n, n0)) != AE_OK) return st;
    if (!labels != !idx->labels)
        return ae__fail(idx->msg, AE_ERR_INVALID_ARG, idx->labels
                        ? "the index has labels: give one per code"
                        : "the index has no labels: pass NULL");
    if ((st = check_rows(idx, x, n, idx->msg)) != AE_OK) return st;
    mx = idx->metric == AE_INDEX_INNER_PRODUCT ? max_sqnorm(x, n, d, d) : 0.0;
    grow_m = mx > (double)idx->ip_m * idx->ip_m;
    /* a longer code under inner product changes every stored row: the exact
     * backends are rebuilt with it (HNSW's graph stays valid, see below) */
    if (grow_m && idx->ops->backend != AE_INDEX_HNSW)
        return rebuild(idx, 0, x, n, ids, labels);

    if ((st = grow_rows(idx, n0 + n, idx->msg)) != AE_OK) return st;
    memcpy(idx->ids + n0, ids, n * sizeof(int64_t));
    if (labels) memcpy(idx->labels + n0, labels, n * sizeof(int32_t));
    memset(idx->dead + n0, 0, n);
    /* the table gets the new ids, or nothing changes: in place while it stays
     * at most half full (an add of one code costs O(1), not a rehash) */
    if ((idx->n - idx->ndead + n) * AE__INDEX_HASH_LOAD <= idx->hcap) {
        size_t i;
        for (i = n0; i < n0 + n; i++)
            if (hash_put(idx->hslot, idx->hcap, idx->ids, (uint32_t)i) != SIZE_MAX) break;
        if (i < n0 + n) {
            dup = idx->ids[i];
            for (size_t j = n0; j < i; j++) hash_del(idx, idx->ids[j]);
            st = AE_ERR_INVALID_ARG;
        }
    } else {
        st = hash_rebuild(idx, idx->n - idx->ndead + n, n0, n0 + n, &dup);
    }
    if (st == AE_ERR_NOMEM) return ae__fail(idx->msg, AE_ERR_NOMEM, "out of memory");
    if (st != AE_OK)
        return ae__fail(idx->msg, AE_ERR_INVALID_ARG, "id %lld is already in the index%s",
                        (long long)dup, " or given twice");
    if ((st = store_rows(idx, n0, x, n, idx->msg)) != AE_OK) goto undo_hash;
    if (idx->metric == AE_INDEX_INNER_PRODUCT) {
        if (grow_m) {
            /* M may only grow: every code's extra coordinate shrinks to fit.
             * Distances from a query shift by the same M^2 for every code,
             * so the graph's search order is kept. */
            idx->ip_m = ip_m_for(mx);
            augment_rows(idx, 0, n0);
        }
        augment_rows(idx, n0, n0 + n);
    }
    {
        double s = max_sqnorm(idx->data + n0 * sd, n, sd, sd);
        float mn = (float)sqrt(s) * (1.0f + 1e-6f);
        if (mn > idx->max_norm) idx->max_norm = mn;
        if (grow_m) idx->max_norm = idx->ip_m * (1.0f + 1e-6f);
    }
    idx->n = n0 + n;
    st = idx->ops->add(idx, n0, &covered, &want_rebuild);
    if (st != AE_OK) {
        if (!covered) {
            idx->n = n0;
            goto undo_hash;
        }
        /* the backend holds the rows: take them out as removed */
        for (size_t i = n0; i < n0 + n; i++) {
            hash_del(idx, idx->ids[i]);
            idx->dead[i] = 1;
        }
        idx->ndead += n;
        ae__keep_msg(idx->msg);
        return st;
    }
    if (want_rebuild) {
        /* best effort: the overflow stays searchable if this fails */
        (void)AE__NESTED(rebuild(idx, 0, NULL, 0, NULL, NULL));
    }
    return AE_OK;
undo_hash:
    for (size_t i = n0; i < n0 + n; i++) hash_del(idx, idx->ids[i]);
    return st;
}

static ae_status remove_locked(ae_index *idx, const int64_t *ids, size_t n)
{
    size_t i;
    ae_status st = AE_OK;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if ((st = check_writable(idx)) != AE_OK) return st;
    if (!ids || n == 0)
        return ae__fail(idx->msg, AE_ERR_INVALID_ARG, ids ? "no ids (n = 0)" : "NULL ids");
    if (!idx->built) return ae__fail(idx->msg, AE_ERR_STATE, "the index is not built");
    /* all or nothing: mark first (the table holds live rows only, so a row
     * already marked was named earlier in this call), then drop the ids */
    for (i = 0; i < n; i++) {
        size_t r = hash_find(idx, ids[i]);
        if (r == SIZE_MAX) {
            st = ae__fail(idx->msg, AE_ERR_RANGE, "no code has id %lld", (long long)ids[i]);
            break;
        }
        if (idx->dead[r]) {
            st = ae__fail(idx->msg, AE_ERR_INVALID_ARG, "id %lld is given twice",
                          (long long)ids[i]);
            break;
        }
        idx->dead[r] = 1;
    }
    if (st == AE_OK && idx->ndead + n >= idx->n)
        st = ae__fail(idx->msg, AE_ERR_STATE,
                      "removing %zu of the %zu codes would leave the index empty", n,
                      idx->n - idx->ndead);
    if (st != AE_OK) {
        for (size_t j = 0; j < i; j++) idx->dead[hash_find(idx, ids[j])] = 0;
        return st;
    }
    for (i = 0; i < n; i++) hash_del(idx, ids[i]);
    idx->ndead += n;
    return AE_OK;
}

static ae_status compact_locked(ae_index *idx)
{
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if ((st = check_writable(idx)) != AE_OK) return st;
    if (!idx->built) return ae__fail(idx->msg, AE_ERR_STATE, "the index is not built");
    if (idx->ndead == 0 && !(idx->ops->pending && idx->ops->pending(idx))) return AE_OK;
    return rebuild(idx, 1, NULL, 0, NULL, NULL);
}

/* ---- search --------------------------------------------------------------------- */
/* A total order even with NaN distances (last), which codes of a mapped
 * file under AE_INDEX_CHECK_BOUNDS may give: qsort needs a consistent
 * comparison to stay within the array. */
static int cmp_res(const void *a, const void *b)
{
    const ae__res *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    if (x->d != y->d) return isnan(x->d) - isnan(y->d);
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
    size_t d = idx->sdim;
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

size_t ae__idx_exact_scan(const ae_index *idx, const float *q, size_t k, const ae__sel *sel,
                          ae__res *res)
{
    size_t d = idx->sdim, len = 0;
    /* res as a max-heap of (d, id) */
    for (size_t r = 0; r < idx->n; r++) {
        ae__res v;
        size_t i;
        if (!ae__sel_ok(idx, sel, (uint32_t)r)) continue;
        v.d = ae__l2sq_d(q, idx->data + r * d, d);
        v.id = row_id(idx, (uint32_t)r);
        v.r = (uint32_t)r;
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
    return len;
}

void ae__idx_emit(const ae_index *idx, const float *q, ae__res *res, size_t nf, size_t k,
                  float *dist, int64_t *ids)
{
    if (idx->metric == AE_INDEX_INNER_PRODUCT) {
        /* report the inner product itself, in double, not the L2 proxy, and
         * order by it: the proxy's rounded extra coordinate may swap near
         * ties, and results must ascend in the distance reported */
        for (size_t i = 0; i < nf; i++) {
            const float *x = idx->data + (size_t)res[i].r * idx->sdim;
            double v = 0.0;
            for (size_t j = 0; j < idx->dim; j++) v += (double)q[j] * x[j];
            res[i].d = -v;
        }
        qsort(res, nf, sizeof *res, cmp_res);
    }
    for (size_t i = 0; i < nf; i++) {
        if (dist) {
            double v = res[i].d;
            if (idx->metric == AE_INDEX_COSINE) {
                v = 0.5 * v;
                if (v > 2.0) v = 2.0;
            } else if (idx->metric == AE_INDEX_L2) {
                v = sqrt(v);
            }
            dist[i] = (float)v;
        }
        ids[i] = res[i].id;
    }
    for (size_t i = nf; i < k; i++) {
        if (dist) dist[i] = INFINITY;
        ids[i] = -1;
    }
}

/* ae_index_search and ae_index_search_filtered. */
static ae_status search(const ae_index *idx, const float *queries, size_t nq, size_t k,
                        size_t ef_search, ae_index_filter_fn keep, void *user, float *distances,
                        int64_t *ids)
{
    size_t d, sd, nd, live;
    const float *q = queries;
    float *qcopy = NULL;
    ae__sel sel;
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    if (!idx->built) return ae__fail(NULL, AE_ERR_STATE, "the index is not built");
    live = idx->n - idx->ndead;
    if (k == 0) return ae__fail(NULL, AE_ERR_INVALID_ARG, "k = 0");
    if (k > live)
        return ae__fail(NULL, AE_ERR_RANGE, "k = %zu but the index holds %zu codes", k, live);
    if (ef_search > AE__INDEX_MAX_EF)
        return ae__fail(NULL, AE_ERR_RANGE, "ef_search = %zu exceeds %d", ef_search,
                        AE__INDEX_MAX_EF);
    if (nq == 0) return AE_OK;
    if (!queries || !ids)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL %s", queries ? "ids" : "queries");
    d = idx->dim;
    sd = idx->sdim;
    if (ae__mul_size(nq, sd, &nd) != 0 || nd > SIZE_MAX / 8 ||
        ae__mul_size(nq, k, &(size_t){0}) != 0)
        return ae__fail(NULL, AE_ERR_RANGE, "%zu queries is too many", nq);
    if (!ae__all_finite(queries, nq * d))
        return ae__fail(NULL, AE_ERR_NUMERIC, "the queries contain NaN or infinity");
    if (idx->metric != AE_INDEX_COSINE)
        for (size_t i = 0; i < nq; i++) {
            double s = sqnorm_d(queries + i * d, d);
            if (s > AE__MAX_SQNORM)
                return ae__fail(NULL, AE_ERR_NUMERIC,
                                "query %zu has squared norm %g, too large for float "
                                "distances", i, s);
        }
    if (idx->metric != AE_INDEX_L2) {
        qcopy = ae__malloc(nd * sizeof(float));
        if (!qcopy) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < nq; i++) {
            memcpy(qcopy + i * sd, queries + i * d, d * sizeof(float));
            if (sd > d) qcopy[i * sd + d] = 0.0f; /* q' = (q, 0) */
        }
        if (idx->metric == AE_INDEX_COSINE &&
            (st = normalise_rows(qcopy, nq, d, sd, NULL, "query")) != AE_OK) {
            ae__free(qcopy, nd * sizeof(float));
            return st;
        }
        q = qcopy;
    }
    if (ef_search == 0) ef_search = (size_t)idx->params[AE_INDEX_HNSW_EF_SEARCH];
    sel.keep = keep;
    sel.user = user;
    sel.dead = idx->ndead ? idx->dead : NULL;
    st = idx->ops->search(idx, q, nq, k, ef_search, keep || sel.dead ? &sel : NULL, distances,
                          ids);
    if (qcopy) ae__free(qcopy, nd * sizeof(float));
    return st;
}

/* search() under the read lock. */
static ae_status search_rd(const ae_index *idx, const float *queries, size_t nq, size_t k,
                           size_t ef_search, ae_index_filter_fn keep, void *user,
                           float *distances, int64_t *ids)
{
    ae_status st;
    if (!idx) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL index");
    index_rdlock(idx);
    st = search(idx, queries, nq, k, ef_search, keep, user, distances, ids);
    index_unlock(idx);
    return st;
}

ae_status ae_index_search(const ae_index *idx, const float *queries, size_t nq, size_t k,
                          size_t ef_search, float *distances, int64_t *ids)
{
    AE__ENTER();
    return search_rd(idx, queries, nq, k, ef_search, NULL, NULL, distances, ids);
}

ae_status ae_index_search_filtered(const ae_index *idx, const float *queries, size_t nq,
                                   size_t k, size_t ef_search, ae_index_filter_fn keep,
                                   void *user, float *distances, int64_t *ids)
{
    AE__ENTER();
    return search_rd(idx, queries, nq, k, ef_search, keep, user, distances, ids);
}

/* ---- accessors ------------------------------------------------------------------ */
size_t ae_index_count(const ae_index *idx)
{
    size_t c;
    if (!idx) return 0;
    index_rdlock(idx);
    c = idx->built ? idx->n - idx->ndead : 0;
    index_unlock(idx);
    return c;
}
size_t ae_index_dim(const ae_index *idx) { return idx ? idx->dim : 0; }
ae_index_backend ae_index_backend_of(const ae_index *idx)
{
    return idx ? idx->ops->backend : (ae_index_backend)0;
}
ae_index_metric ae_index_metric_of(const ae_index *idx)
{
    return idx ? idx->metric : (ae_index_metric)0;
}
int ae_index_has_labels(const ae_index *idx)
{
    int h;
    if (!idx) return 0;
    index_rdlock(idx);
    h = idx->built && idx->labels;
    index_unlock(idx);
    return h;
}
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

/* A row the accessors may read: stored and not removed. */
static ae_status check_row(const ae_index *idx, size_t row)
{
    if (row >= idx->n)
        return ae__fail(NULL, AE_ERR_RANGE, "row %zu but the index holds %zu", row, idx->n);
    if (idx->dead[row])
        return ae__fail(NULL, AE_ERR_RANGE, "row %zu was removed", row);
    return AE_OK;
}

static ae_status id_at_locked(int64_t *id, const ae_index *idx, size_t row)
{
    ae_status st;
    if (!idx || !id) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built) return ae__fail(NULL, AE_ERR_STATE, "the index is not built");
    if ((st = check_row(idx, row)) != AE_OK) return st;
    *id = idx->ids[row];
    return AE_OK;
}

static ae_status label_at_locked(int32_t *label, const ae_index *idx, size_t row)
{
    ae_status st;
    if (!idx || !label)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built || !idx->labels)
        return ae__fail(NULL, AE_ERR_STATE, "the index has no labels%s",
                        idx->built ? "" : " (not built)");
    if ((st = check_row(idx, row)) != AE_OK) return st;
    *label = idx->labels[row];
    return AE_OK;
}

static ae_status label_locked(int32_t *label, const ae_index *idx, int64_t id)
{
    size_t r;
    if (!idx || !label) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built || !idx->labels)
        return ae__fail(NULL, AE_ERR_STATE, "the index has no labels%s",
                        idx->built ? "" : " (not built)");
    r = hash_find(idx, id);
    if (r == SIZE_MAX)
        return ae__fail(NULL, AE_ERR_RANGE, "no code has id %lld", (long long)id);
    *label = idx->labels[r];
    return AE_OK;
}

static size_t memory_bytes(const ae_index *idx);

size_t ae_index_memory_bytes(const ae_index *idx)
{
    size_t b;
    if (!idx) return 0;
    index_rdlock(idx);
    b = memory_bytes(idx);
    index_unlock(idx);
    return b;
}

static size_t memory_bytes(const ae_index *idx)
{
    size_t c, b;
    b = sizeof *idx;
    if (!idx->built) return b;
    c = idx->cap;
    b += (idx->data_borrowed ? 0 : c * idx->sdim * sizeof(float)) + c * (sizeof(int64_t) + 1) +
         idx->hcap * sizeof(uint32_t);
    if (idx->labels) b += c * sizeof(int32_t);
    return b + idx->ops->memory_bytes(idx);
}

/* ---- file format (docs/formats-index.md) ----------------------------------------- */
static const unsigned char g_magic[8] = {0x89, 'A', 'E', 'I', 'D', 'X', '\r', '\n'};
#define FORMAT_VERSION 4u
#define FLAG_LABELS 1u
#define FLAG_REMOVED 2u /* version 3: the removed-rows section is present */
#define V1_HEADER 88u  /* version 1: fixed header; all five parameters, payload size at 80 */
#define V2_HEADER 52u  /* version 2: fixed header; the parameter pairs follow */
#define V2_PAIR 12u    /* u32 key, i64 value */
#define V2_SECTION 16u /* u32 tag, u32 reserved, u64 size */
enum { SECTION_CODES = 1, SECTION_IDS = 2, SECTION_LABELS = 3, SECTION_REMOVED = 4 };

/* Version 4: the removed flags (one byte per code) are padded with zeros to
 * a multiple of 4 bytes, so every later section stays 4-byte aligned and a
 * mapped file's floats and link lists can be read in place. */
static size_t removed_bytes(size_t n, uint32_t version)
{
    return version >= 4 ? (n + 3) & ~(size_t)3 : n;
}

static void write_section(ae__writer *w, uint32_t tag, size_t size)
{
    ae__writer_u32(w, tag);
    ae__writer_u32(w, 0);
    ae__writer_u64(w, size);
}

/* The whole file into w, CRC last; the caller opens and commits. */
static void write_index(const ae_index *idx, ae__writer *w)
{
    const ae__index_ops *ops = idx->ops;
    size_t n = idx->n, d = idx->dim, body, total;
    uint32_t npairs = 0;
    body = ops->file_section ? ops->file_bytes(idx) : 0;
    for (int k = 1; k < AE__INDEX_NPARAMS; k++) npairs += (uint32_t)saved_key(ops, k);
    total = V2_HEADER + npairs * V2_PAIR + V2_SECTION + n * d * 4 + V2_SECTION + n * 8 +
            (idx->labels ? V2_SECTION + n * 4 : 0) + (idx->ndead ? V2_SECTION + removed_bytes(n, FORMAT_VERSION) : 0) +
            (ops->file_section ? V2_SECTION + body : 0) + 4;
    ae__writer_write(w, g_magic, 8);
    ae__writer_u32(w, FORMAT_VERSION);
    ae__writer_u32(w, (uint32_t)ops->backend);
    ae__writer_u32(w, (uint32_t)idx->metric);
    ae__writer_u32(w, (idx->labels ? FLAG_LABELS : 0u) | (idx->ndead ? FLAG_REMOVED : 0u));
    ae__writer_u64(w, d);
    ae__writer_u64(w, n);
    ae__writer_u64(w, total);
    ae__writer_u32(w, npairs);
    for (int k = 1; k < AE__INDEX_NPARAMS; k++)
        if (saved_key(ops, k)) {
            ae__writer_u32(w, (uint32_t)k);
            ae__writer_u64(w, (uint64_t)idx->params[k]);
        }
    write_section(w, SECTION_CODES, n * d * 4);
    if (idx->sdim == d) ae__writer_f32s(w, idx->data, n * d);
    else
        for (size_t r = 0; r < n; r++) ae__writer_f32s(w, idx->data + r * idx->sdim, d);
    write_section(w, SECTION_IDS, n * 8);
    ae__writer_write(w, idx->ids, n * 8);
    if (idx->labels) {
        write_section(w, SECTION_LABELS, n * 4);
        ae__writer_write(w, idx->labels, n * 4);
    }
    if (idx->ndead) {
        static const unsigned char zeros[4] = {0};
        write_section(w, SECTION_REMOVED, removed_bytes(n, FORMAT_VERSION));
        ae__writer_write(w, idx->dead, n);
        ae__writer_write(w, zeros, removed_bytes(n, FORMAT_VERSION) - n);
    }
    if (ops->file_section) {
        write_section(w, ops->file_section, body);
        ops->save(idx, w);
    }
    ae__writer_u32(w, w->crc);
}

static ae_status save_locked(const ae_index *idx, const char *path)
{
    ae__writer w;
    ae_status st;
    if (!idx || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!idx->built) return ae__fail(NULL, AE_ERR_STATE, "the index is not built");
    if ((st = ae__writer_open(&w, path, NULL)) != AE_OK) return st;
    write_index(idx, &w);
    return ae__writer_commit(&w, path, NULL);
}

ae_status ae_index_save_to(const ae_index *idx, ae_index_write_fn write, void *user)
{
    AE__ENTER();
    ae__writer w;
    if (!idx || !write) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    index_rdlock(idx);
    if (!idx->built) {
        index_unlock(idx);
        return ae__fail(NULL, AE_ERR_STATE, "the index is not built");
    }
    memset(&w, 0, sizeof w);
    w.sink = write;
    w.sink_user = user;
    write_index(idx, &w);
    index_unlock(idx);
    if (w.failed) return ae__fail(NULL, AE_ERR_IO, "the write callback failed");
    return AE_OK;
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
    const unsigned char *codes, *ids, *labels, *removed, *body;
    size_t body_len;
    uint32_t version;
} file_parts;

/* How a file is read: checks, and whether the index may keep pointers into
 * the bytes (ae_index_map) and drop the pages it checked (a file mapping). */
typedef struct load_how {
    int full;    /* every check of ae_index_load; else AE_INDEX_CHECK_BOUNDS */
    int borrow;  /* the bytes outlive the index: point into them */
    int release; /* a file mapping: checked pages may leave the resident set */
} load_how;

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
    for (uint32_t k = 1; k <= AE_INDEX_SEED; k++) /* the five keys of version 1 */
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

/* Versions 2 and 3: the parameter pairs at 52, then tagged sections. */
static ae_status parse_v2(ae_index *idx, const unsigned char *buf, size_t len, size_t n,
                          const char *path, file_parts *fp)
{
    const ae__index_ops *ops = idx->ops;
    size_t d = idx->dim, end = len - 4, pos = V2_HEADER;
    uint32_t npairs = rd_u32(buf + 48), prev = 0, want[5];
    int has_labels = (rd_u32(buf + 20) & FLAG_LABELS) != 0, nwant = 0;
    int has_removed = (rd_u32(buf + 20) & FLAG_REMOVED) != 0;
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
        if (!g_params[key].structural)
            return ae__fail(NULL, AE_ERR_FORMAT,
                            "'%s' has %s, which is never saved in a file", path,
                            g_params[key].name);
        if ((st = check_param(idx, key, (int64_t)rd_u64(buf + pos + 4), path)) != AE_OK) return st;
    }

    want[nwant++] = SECTION_CODES;
    want[nwant++] = SECTION_IDS;
    if (has_labels) want[nwant++] = SECTION_LABELS;
    if (has_removed) want[nwant++] = SECTION_REMOVED;
    if (ops->file_section) want[nwant++] = ops->file_section;
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
        case SECTION_REMOVED:
            if (size != removed_bytes(n, fp->version)) return inconsistent(path, len);
            for (size_t j = n; j < (size_t)size; j++)
                if (p[j]) return inconsistent(path, len);
            fp->removed = p;
            break;
        default: fp->body = p; fp->body_len = (size_t)size; break;
        }
        if (elem && (ae__mul_size(n, elem, &b) != 0 || b != size))
            return inconsistent(path, len);
        pos += (size_t)size;
    }
    if (pos != end) return inconsistent(path, len);
    return AE_OK;
}

/* The shared fields from the sections, then the backend's body. Borrowed:
 * the codes stay in the file's bytes when they are stored as searched (not
 * under the inner product, whose rows gain a coordinate); ids, labels and
 * removed flags are always copied (ids need not be 8-byte aligned). */
static ae_status load_parts(ae_index *idx, size_t n, const file_parts *fp, const char *path,
                            const load_how *how)
{
    size_t d = idx->dim, sd = idx->sdim;
    ae__reader rd = {fp->codes, n * d * 4, 0, 0};
    ae__index_src src;
    int borrow = how->borrow && sd == d;
    ae_status st;

    idx->n = n;
    idx->cap = n;
    if (borrow) {
        idx->data = (float *)(uintptr_t)fp->codes; /* read-only: add and friends refuse */
        idx->data_borrowed = 1;
    } else {
        idx->data = ae__malloc_aligned(n * sd * 4);
    }
    idx->ids = ae__malloc(n * 8);
    idx->dead = ae__calloc(n, 1);
    if (fp->labels) idx->labels = ae__malloc(n * 4);
    if (!idx->data || !idx->ids || !idx->dead || (fp->labels && !idx->labels))
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu x %zu codes", n, d);
    if (!borrow)
        for (size_t r = 0; r < n; r++) ae__reader_f32s(&rd, idx->data + r * sd, d);
    memcpy(idx->ids, fp->ids, n * 8);
    if (fp->labels) memcpy(idx->labels, fp->labels, n * 4);
    if (how->full || !borrow)
        for (size_t r = 0; r < n; r++) {
            if (!ae__all_finite(idx->data + r * sd, d))
                return ae__fail(NULL, AE_ERR_FORMAT, "'%s' holds NaN or infinite codes", path);
            release_rows(idx, how->release && borrow, r);
        }
    if (fp->removed) {
        for (size_t r = 0; r < n; r++) {
            if (fp->removed[r] > 1)
                return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a removed flag of %u", path,
                                (unsigned)fp->removed[r]);
            idx->dead[r] = fp->removed[r];
            idx->ndead += fp->removed[r];
        }
        if (idx->ndead == 0 || idx->ndead == n)
            return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has %zu of its %zu codes removed", path,
                            idx->ndead, n);
    }
    /* distinct among the live codes: a removed id may have been added again */
    if ((st = make_hash(idx, NULL, path)) != AE_OK) return st;
    if (idx->metric == AE_INDEX_INNER_PRODUCT) {
        idx->ip_m = ip_m_for(max_sqnorm(idx->data, n, d, sd));
        augment_rows(idx, 0, n);
    }
    /* max_norm serves the brute-force error bound and add(); a borrowed
     * index never adds, and the bounds check reads no code it need not */
    if ((how->full || !borrow || idx->ops->backend == AE_INDEX_BRUTE) &&
        (st = finish_norms(idx, NULL, path, how->release && borrow)) != AE_OK)
        return st;
    src.body = fp->body;
    src.len = fp->body_len;
    src.path = path;
    src.version = fp->version;
    src.borrow = how->borrow;
    src.full = how->full;
    src.release = how->release && how->borrow;
    if ((st = idx->ops->load(idx, &src)) != AE_OK) return st;
    idx->built = 1;
    return AE_OK;
}

/* An index from the bytes of a file; path names it in messages. */
static ae_status load_buffer(ae_index **out, const unsigned char *buf, size_t len,
                             const char *path, const load_how *how_in)
{
    load_how how = *how_in;
    size_t d, n, header;
    uint32_t version, backend, metric, flags, crc;
    uint64_t declared;
    file_parts fp;
    ae_index *idx;
    ae_status st;

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
    if (version < 4) { /* unaligned sections: read into the heap, fully checked */
        how.full = 1;
        how.borrow = 0;
    }
    if (how.full) {
        uint32_t c = 0;
        const size_t chunk = (size_t)1 << 20;
        for (size_t at = 0; at < len - 4; at += chunk) {
            size_t m = len - 4 - at < chunk ? len - 4 - at : chunk;
            c = ae__crc32(c, buf + at, m);
            if (how.release) ae__map_release(buf + at, m);
        }
        crc = rd_u32(buf + len - 4);
        if (c != crc) {
            st = ae__fail(NULL, AE_ERR_CHECKSUM, "'%s' is corrupt (checksum mismatch)", path);
            goto done;
        }
    }
    backend = rd_u32(buf + 12);
    metric = rd_u32(buf + 16);
    flags = rd_u32(buf + 20);
    d = (size_t)rd_u64(buf + 24);
    if ((st = check_kind((int)backend, (int)metric, d)) != AE_OK ||
        (flags & ~(version >= 3 ? FLAG_LABELS | FLAG_REMOVED : FLAG_LABELS)) != 0 ||
        (version < 3 && metric == AE_INDEX_INNER_PRODUCT)) {
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
    memset(&fp, 0, sizeof fp);
    fp.version = version;
    st = version == 1 ? parse_v1(idx, buf, len, n, path, &fp)
                      : parse_v2(idx, buf, len, n, path, &fp);
    if (st == AE_OK) st = load_parts(idx, n, &fp, path, &how);
    if (st != AE_OK) {
        ae_index_free(idx);
        goto done;
    }
    idx->readonly = how_in->borrow;
    if (how.borrow) idx->map = buf; /* the index may point into it */
    *out = idx;
done:
    return st;
}

ae_status ae_index_load(ae_index **out, const char *path)
{
    AE__ENTER();
    unsigned char *buf = NULL;
    size_t len = 0;
    ae_status st;
    if (!out || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if ((st = ae__read_file(path, SIZE_MAX / 2, &buf, &len, NULL)) != AE_OK) return st;
    st = load_buffer(out, buf, len, path, &(load_how){1, 0, 0});
    ae__free(buf, len);
    return st;
}

ae_status ae_index_load_memory(ae_index **out, const void *data, size_t len)
{
    AE__ENTER();
    if (!out || !data) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    return load_buffer(out, data, len, "<memory>", &(load_how){1, 0, 0});
}

static ae_status check_arg(int check)
{
    if (check != AE_INDEX_CHECK_FULL && check != AE_INDEX_CHECK_BOUNDS)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown check %d", check);
    return AE_OK;
}

ae_status ae_index_map(ae_index **out, const char *path, ae_index_check check)
{
    AE__ENTER();
    const unsigned char *map;
    size_t len;
    load_how how;
    ae_status st;
    if (!out || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if ((st = check_arg((int)check)) != AE_OK) return st;
    if ((st = ae__map_file(path, &map, &len, NULL)) != AE_OK) return st;
    how.full = check == AE_INDEX_CHECK_FULL;
    how.borrow = 1;
    how.release = 1;
    st = load_buffer(out, map, len, path, &how);
    if (st != AE_OK) {
        ae__unmap_file(map, len);
        return st;
    }
    if (!(*out)->map) {
        ae__unmap_file(map, len); /* a version 1 to 3 file, read into the heap */
        return AE_OK;
    }
    (*out)->map_len = len;
    if (how.full) ae__map_release(map, len); /* the checks' pages: reread on demand */
    if ((*out)->ops->backend != AE_INDEX_BRUTE) ae__map_random(map, len);
    return AE_OK;
}

ae_status ae_index_map_memory(ae_index **out, const void *data, size_t len,
                              ae_index_check check)
{
    AE__ENTER();
    ae_status st;
    if (!out || !data) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if ((st = check_arg((int)check)) != AE_OK) return st;
    if ((uintptr_t)data % 8 != 0)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "data is not aligned to 8 bytes");
    st = load_buffer(out, data, len, "<memory>",
                     &(load_how){check == AE_INDEX_CHECK_FULL, 1, 0});
    return st;
}

int ae_index_is_mapped(const ae_index *idx) { return idx ? idx->readonly : 0; }

/* ---- the public entry points that take the handle's lock (index.h, "Threading") ---- */
ae_status ae_index_set_int(ae_index *idx, ae_index_param key, int64_t value)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return set_int_locked(idx, key, value);
    index_wrlock(idx);
    st = set_int_locked(idx, key, value);
    index_unlock(idx);
    return st;
}

ae_status ae_index_get_int(int64_t *value, const ae_index *idx, ae_index_param key)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return get_int_locked(value, idx, key);
    index_rdlock(idx);
    st = get_int_locked(value, idx, key);
    index_unlock(idx);
    return st;
}

ae_status ae_index_build(ae_index *idx, const float *x, size_t n, const int64_t *ids,
                         const int32_t *labels)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return build_locked(idx, x, n, ids, labels);
    index_wrlock(idx);
    st = build_locked(idx, x, n, ids, labels);
    index_unlock(idx);
    return st;
}

ae_status ae_index_add(ae_index *idx, const float *x, size_t n, const int64_t *ids,
                       const int32_t *labels)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return add_locked(idx, x, n, ids, labels);
    index_wrlock(idx);
    st = add_locked(idx, x, n, ids, labels);
    index_unlock(idx);
    return st;
}

ae_status ae_index_remove(ae_index *idx, const int64_t *ids, size_t n)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return remove_locked(idx, ids, n);
    index_wrlock(idx);
    st = remove_locked(idx, ids, n);
    index_unlock(idx);
    return st;
}

ae_status ae_index_compact(ae_index *idx)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return compact_locked(idx);
    index_wrlock(idx);
    st = compact_locked(idx);
    index_unlock(idx);
    return st;
}

ae_status ae_index_id_at(int64_t *id, const ae_index *idx, size_t row)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return id_at_locked(id, idx, row);
    index_rdlock(idx);
    st = id_at_locked(id, idx, row);
    index_unlock(idx);
    return st;
}

ae_status ae_index_label_at(int32_t *label, const ae_index *idx, size_t row)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return label_at_locked(label, idx, row);
    index_rdlock(idx);
    st = label_at_locked(label, idx, row);
    index_unlock(idx);
    return st;
}

ae_status ae_index_label(int32_t *label, const ae_index *idx, int64_t id)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return label_locked(label, idx, id);
    index_rdlock(idx);
    st = label_locked(label, idx, id);
    index_unlock(idx);
    return st;
}

ae_status ae_index_save(const ae_index *idx, const char *path)
{
    AE__ENTER();
    ae_status st;
    if (!idx) return save_locked(idx, path);
    index_rdlock(idx);
    st = save_locked(idx, path);
    index_unlock(idx);
    return st;
}
