/* Labelled data sets from a folder of <category>.npy files, with a seeded
 * stratified train/test split (see dataset.h for the rules).
 *
 * Loading happens in three passes so that nothing large is allocated before
 * every file has been validated and the peak memory is the final arrays plus
 * one chunk: (1) list and sort the files and read their headers, (2) decide
 * the split and where every source row goes, (3) stream each file in chunks
 * and copy each row to its place. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define DS_CHUNK_BYTES ((size_t)4 << 20) /* floats read per chunk: 4 MiB */
#define DS_TEST_BIT (((size_t)-1 >> 1) + 1) /* marks a test position in `where` */

typedef struct ds_cat {
    char *file;         /* file name, allocated (strlen + 1) */
    char *name;         /* display name, allocated (strlen + 1) */
    size_t rows;        /* rows used (after the cap) */
    size_t n_train, n_test;
    ae_npy_dtype dtype;
} ds_cat;

struct ae_dataset {
    size_t n_cat;
    ds_cat *cats;
    size_t width;
    int row_rank;
    size_t row_dims[AE_TENSOR_MAX_RANK];
    size_t n_train, n_test;
    float *train_x, *test_x;     /* aligned blocks of n * width floats */
    int32_t *train_y, *test_y;
    size_t *train_src, *test_src;
};

static void free_str(char *s)
{
    if (s) ae__free(s, strlen(s) + 1);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ae__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void ae_dataset_free(ae_dataset *ds)
{
    if (!ds) return;
    for (size_t i = 0; i < ds->n_cat; i++) {
        free_str(ds->cats[i].file);
        free_str(ds->cats[i].name);
    }
    ae__free(ds->cats, ds->n_cat * sizeof *ds->cats);
    ae__free_aligned(ds->train_x, ds->n_train * ds->width * sizeof(float));
    ae__free_aligned(ds->test_x, ds->n_test * ds->width * sizeof(float));
    ae__free(ds->train_y, ds->n_train * sizeof(int32_t));
    ae__free(ds->test_y, ds->n_test * sizeof(int32_t));
    ae__free(ds->train_src, ds->n_train * sizeof(size_t));
    ae__free(ds->test_src, ds->n_test * sizeof(size_t));
    ae__free(ds, sizeof *ds);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_npy_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".npy") == 0;
}

/* dir + "/" + name into a new block of *cap bytes */
static char *join_path(const char *dir, const char *name, size_t *cap)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = ae__malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    *cap = a + b + 2;
    return p;
}

/* Lists the regular *.npy files of dir, sorted; fills ds->cats[i].file. */
static ae_status list_files(ae_dataset *ds, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    ae_status st = AE_OK;
    if (!d) return ae__file_fail(NULL, dir, AE_ERR_IO, "cannot open the directory: %s",
                                 strerror(errno));
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        size_t pcap;
        char *path;
        if (e->d_name[0] == '.' || !has_npy_suffix(e->d_name)) continue;
        path = join_path(dir, e->d_name, &pcap);
        if (!path) { st = AE_ERR_NOMEM; break; }
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            ae__free(path, pcap);
            continue;
        }
        ae__free(path, pcap);
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = ae__realloc(names, cap * sizeof *names, ncap * sizeof *names);
            if (!nn) { st = AE_ERR_NOMEM; break; }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = dup_str(e->d_name))) { st = AE_ERR_NOMEM; break; }
        n++;
    }
    closedir(d);
    if (st == AE_OK && n == 0)
        st = ae__fail(NULL, AE_ERR_IO, "no .npy files in directory '%s'", dir);
    else if (st == AE_OK && n > INT32_MAX)
        st = ae__fail(NULL, AE_ERR_RANGE, "too many .npy files in '%s'", dir);
    else if (st == AE_OK && !(ds->cats = ae__calloc(n, sizeof *ds->cats)))
        st = AE_ERR_NOMEM;
    if (st == AE_OK) {
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) ds->cats[i].file = names[i];
        ds->n_cat = n;
    } else {
        for (size_t i = 0; i < n; i++) free_str(names[i]);
        if (st == AE_ERR_NOMEM)
            st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory listing '%s'", dir);
    }
    ae__free(names, cap * sizeof *names);
    return st;
}

/* Display name: file name without ".npy", underscores as spaces. */
static char *display_name(const char *file)
{
    size_t n = strlen(file) - 4;
    char *s = ae__malloc(n + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) s[i] = file[i] == '_' ? ' ' : file[i];
    s[n] = '\0';
    return s;
}

/* Pass 1: headers, widths, the row shape and the capped row counts. */
static ae_status read_headers(ae_dataset *ds, const char *dir, size_t per_category)
{
    int shapes_agree = 1;
    for (size_t c = 0; c < ds->n_cat; c++) {
        ds_cat *k = &ds->cats[c];
        size_t dims[AE_TENSOR_MAX_RANK], width = 1, pcap;
        int rank;
        ae_status st;
        char *path = join_path(dir, k->file, &pcap);
        if (!path) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        st = AE__NESTED(ae_npy_info(&k->dtype, &rank, dims, path));
        ae__free(path, pcap);
        if (st != AE_OK) return st;
        for (int i = 1; i < rank; i++) width *= dims[i]; /* no overflow: validated */
        if (c == 0) {
            ds->width = width;
            ds->row_rank = rank > 1 ? rank - 1 : 1;
            for (int i = 0; i < AE_TENSOR_MAX_RANK; i++) ds->row_dims[i] = 0;
            if (rank > 1)
                for (int i = 1; i < rank; i++) ds->row_dims[i - 1] = dims[i];
            else
                ds->row_dims[0] = 1;
        } else if (width != ds->width) {
            return ae__fail(NULL, AE_ERR_SHAPE, "%s/%s: rows of %zu values, but %s has rows of "
                            "%zu", dir, k->file, width, ds->cats[0].file, ds->width);
        } else if (shapes_agree) {
            int r = rank > 1 ? rank - 1 : 1;
            if (r != ds->row_rank) shapes_agree = 0;
            for (int i = 0; shapes_agree && i < r && rank > 1; i++)
                if (dims[i + 1] != ds->row_dims[i]) shapes_agree = 0;
        }
        k->rows = (per_category && dims[0] > per_category) ? per_category : dims[0];
        if (!(k->name = display_name(k->file)))
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    }
    if (!shapes_agree) {
        ds->row_rank = 1;
        for (int i = 0; i < AE_TENSOR_MAX_RANK; i++) ds->row_dims[i] = 0;
        ds->row_dims[0] = ds->width;
    }
    return AE_OK;
}

static size_t test_count(size_t n, double fraction)
{
    double t;
    size_t k;
    if (fraction <= 0.0 || n < 2) return 0;
    t = floor((double)n * fraction + 0.5);
    k = t >= (double)n ? n : (size_t)t;
    if (k < 1) k = 1;
    if (k > n - 1) k = n - 1;
    return k;
}

/* Pass 3 for one category: stream the file, copy rows to their places. */
static ae_status load_category(ae_dataset *ds, const char *dir, size_t c, const size_t *where,
                               float *chunk, size_t chunk_rows)
{
    ds_cat *k = &ds->cats[c];
    size_t pcap, row_bytes = ds->width * sizeof(float);
    ae_status st = AE_OK;
    char *path = join_path(dir, k->file, &pcap);
    if (!path) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    for (size_t r0 = 0; r0 < k->rows && st == AE_OK; r0 += chunk_rows) {
        size_t n = k->rows - r0 < chunk_rows ? k->rows - r0 : chunk_rows;
        st = AE__NESTED(ae_npy_read_rows(path, r0, n, AE_NPY_U8_UNIT, chunk, chunk_rows * ds->width));
        if (st != AE_OK) break;
        if (k->dtype == AE_NPY_F32 && !ae__all_finite(chunk, n * ds->width)) {
            st = ae__fail(NULL, AE_ERR_NUMERIC, "%s: NaN or infinity in rows %zu..%zu", path,
                          r0, r0 + n - 1);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            size_t w = where[r0 + i];
            float *dst = (w & DS_TEST_BIT) ? ds->test_x + (w & ~DS_TEST_BIT) * ds->width
                                           : ds->train_x + w * ds->width;
            memcpy(dst, chunk + i * ds->width, row_bytes);
        }
    }
    ae__free(path, pcap);
    return st;
}

ae_status ae_dataset_load(ae_dataset **out, const char *dir, size_t per_category,
                          double test_fraction, uint64_t seed)
{
    AE__ENTER();
    ae_dataset *ds;
    ae_status st;
    size_t total = 0, max_rows = 0, bytes, chunk_rows, *offset = NULL, *perm = NULL,
           *where = NULL, *tmp_src = NULL, offset_bytes = 0;
    int32_t *tmp_y = NULL;
    float *chunk = NULL;
    ae__rng rng;

    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!dir) return ae__fail(NULL, AE_ERR_INVALID_ARG, "dir is NULL");
    if (!(test_fraction >= 0.0 && test_fraction < 1.0))
        return ae__fail(NULL, AE_ERR_RANGE, "test_fraction %g is not in [0, 1)",
                        test_fraction);
    ds = ae__calloc(1, sizeof *ds);
    if (!ds) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");

    /* pass 1 */
    if ((st = list_files(ds, dir)) != AE_OK) goto done;
    if ((st = read_headers(ds, dir, per_category)) != AE_OK) goto done;

    /* pass 2: counts, then which rows are held out and the training order */
    for (size_t c = 0; c < ds->n_cat; c++) {
        ds_cat *k = &ds->cats[c];
        k->n_test = test_count(k->rows, test_fraction);
        k->n_train = k->rows - k->n_test;
        ds->n_test += k->n_test;
        ds->n_train += k->n_train;
        if (k->rows > max_rows) max_rows = k->rows;
    }
    total = ds->n_train + ds->n_test;
    if (ae__mul_size(total, ds->width, &bytes) != 0 || ae__mul_size(bytes, sizeof(float), &bytes)
        != 0 || total >= DS_TEST_BIT) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "%s: %zu rows of %zu values are too many", dir, total,
                      ds->width);
        goto done;
    }
    offset_bytes = (ds->n_cat + 1) * sizeof *offset;
    offset = ae__malloc(offset_bytes);
    where = ae__malloc(total * sizeof *where);       /* per source row: destination */
    perm = ae__malloc((max_rows > ds->n_train ? max_rows : ds->n_train) * sizeof *perm);
    tmp_y = ae__malloc(ds->n_train * sizeof *tmp_y);
    tmp_src = ae__malloc(ds->n_train * sizeof *tmp_src);
    ds->train_y = ae__malloc(ds->n_train * sizeof(int32_t));
    ds->train_src = ae__malloc(ds->n_train * sizeof(size_t));
    ds->train_x = ae__malloc_aligned(ds->n_train * ds->width * sizeof(float));
    if (ds->n_test) {
        ds->test_y = ae__malloc(ds->n_test * sizeof(int32_t));
        ds->test_src = ae__malloc(ds->n_test * sizeof(size_t));
        ds->test_x = ae__malloc_aligned(ds->n_test * ds->width * sizeof(float));
    }
    if (!offset || !where || !perm || !tmp_y || !tmp_src ||
        (ds->n_train && (!ds->train_y || !ds->train_src || !ds->train_x)) ||
        (ds->n_test && (!ds->test_y || !ds->test_src || !ds->test_x))) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "%s: out of memory for %zu rows of %zu values", dir,
                      total, ds->width);
        goto done;
    }
    ae__rng_seed(&rng, seed);
    {
        size_t n_tr = 0, n_te = 0, off = 0;
        for (size_t c = 0; c < ds->n_cat; c++) {
            ds_cat *k = &ds->cats[c];
            offset[c] = off;
            /* held out: the first n_test of a random permutation; marked with
             * the test bit, then numbered in file order */
            for (size_t r = 0; r < k->rows; r++) perm[r] = r;
            ae__shuffle(&rng, perm, k->rows);
            for (size_t r = 0; r < k->rows; r++) where[off + r] = 0;
            for (size_t i = 0; i < k->n_test; i++) where[off + perm[i]] = DS_TEST_BIT;
            for (size_t r = 0; r < k->rows; r++) {
                if (where[off + r]) {
                    ds->test_y[n_te] = (int32_t)c;
                    ds->test_src[n_te] = r;
                    where[off + r] = DS_TEST_BIT | n_te++;
                } else {
                    tmp_y[n_tr] = (int32_t)c;
                    tmp_src[n_tr++] = r;
                }
            }
            off += k->rows;
        }
        offset[ds->n_cat] = off;
        /* training order: a seeded shuffle across all categories */
        for (size_t i = 0; i < ds->n_train; i++) perm[i] = i;
        ae__shuffle(&rng, perm, ds->n_train);
        for (size_t i = 0; i < ds->n_train; i++) {
            size_t j = perm[i];
            ds->train_y[i] = tmp_y[j];
            ds->train_src[i] = tmp_src[j];
            where[offset[tmp_y[j]] + tmp_src[j]] = i;
        }
    }

    /* pass 3 */
    chunk_rows = DS_CHUNK_BYTES / (ds->width * sizeof(float));
    if (chunk_rows == 0) chunk_rows = 1;
    if (chunk_rows > max_rows) chunk_rows = max_rows;
    chunk = ae__malloc(chunk_rows * ds->width * sizeof(float));
    if (!chunk) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < ds->n_cat && st == AE_OK; c++)
        st = load_category(ds, dir, c, where + offset[c], chunk, chunk_rows);

done:
    if (chunk) ae__free(chunk, chunk_rows * ds->width * sizeof(float));
    ae__free(offset, offset_bytes);
    ae__free(where, total * sizeof *where);
    ae__free(perm, (max_rows > ds->n_train ? max_rows : ds->n_train) * sizeof *perm);
    ae__free(tmp_y, ds->n_train * sizeof *tmp_y);
    ae__free(tmp_src, ds->n_train * sizeof *tmp_src);
    if (st != AE_OK) {
        ae_dataset_free(ds);
        return st;
    }
    *out = ds;
    return AE_OK;
}

/* ---- accessors ---------------------------------------------------------------- */
size_t ae_dataset_num_categories(const ae_dataset *ds) { return ds ? ds->n_cat : 0; }

const char *ae_dataset_category_name(const ae_dataset *ds, size_t label)
{
    return (ds && label < ds->n_cat) ? ds->cats[label].name : NULL;
}

ae_status ae_dataset_category_counts(size_t *train, size_t *test, const ae_dataset *ds,
                                     size_t label)
{
    AE__ENTER();
    if (!ds) return ae__fail(NULL, AE_ERR_INVALID_ARG, "ds is NULL");
    if (label >= ds->n_cat)
        return ae__fail(NULL, AE_ERR_RANGE, "label %zu, there are "
                        "%zu categories", label, ds->n_cat);
    if (train) *train = ds->cats[label].n_train;
    if (test) *test = ds->cats[label].n_test;
    return AE_OK;
}

size_t ae_dataset_row_width(const ae_dataset *ds) { return ds ? ds->width : 0; }

ae_status ae_dataset_row_shape(int *rank, size_t *dims, const ae_dataset *ds)
{
    AE__ENTER();
    if (!ds) return ae__fail(NULL, AE_ERR_INVALID_ARG, "ds is NULL");
    if (rank) *rank = ds->row_rank;
    if (dims) memcpy(dims, ds->row_dims, sizeof ds->row_dims);
    return AE_OK;
}

ae_status ae_dataset_train(const float **rows, const int32_t **labels, size_t *count,
                           const ae_dataset *ds)
{
    AE__ENTER();
    if (!ds) return ae__fail(NULL, AE_ERR_INVALID_ARG, "ds is NULL");
    if (rows) *rows = ds->train_x;
    if (labels) *labels = ds->train_y;
    if (count) *count = ds->n_train;
    return AE_OK;
}

ae_status ae_dataset_test(const float **rows, const int32_t **labels, size_t *count,
                          const ae_dataset *ds)
{
    AE__ENTER();
    if (!ds) return ae__fail(NULL, AE_ERR_INVALID_ARG, "ds is NULL");
    if (rows) *rows = ds->test_x;
    if (labels) *labels = ds->test_y;
    if (count) *count = ds->n_test;
    return AE_OK;
}

ae_status ae_dataset_sources(const size_t **train_src, const size_t **test_src,
                             const ae_dataset *ds)
{
    AE__ENTER();
    if (!ds) return ae__fail(NULL, AE_ERR_INVALID_ARG, "ds is NULL");
    if (train_src) *train_src = ds->train_src;
    if (test_src) *test_src = ds->test_src;
    return AE_OK;
}
