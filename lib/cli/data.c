/*
 * autoenc: data rows from --data arguments (.npy files, category folders,
 * PNG images), in an order that is a pure function of the arguments.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void cli_data_free(cli_data *d)
{
    free(d->rows);
    free(d->labels);
    free(d->row_file);
    free(d->row_in_file);
    for (size_t i = 0; i < d->n_names; i++) free(d->names[i]);
    for (size_t i = 0; i < d->n_files; i++) free(d->files[i]);
    free(d->names);
    free(d->files);
    memset(d, 0, sizeof *d);
}

/* Room for @p extra more rows. */
static int grow_rows(cli_data *d, size_t extra, const char *path)
{
    size_t n = d->n + extra;
    void *p;
    if (extra > SIZE_MAX / 2 || n > SIZE_MAX / sizeof(float) / (d->width ? d->width : 1)) {
        cli_error("%s: too many rows", path);
        return CLI_EXIT_MISMATCH;
    }
    if (!(p = realloc(d->rows, n * d->width * sizeof(float)))) return cli_nomem(path);
    d->rows = p;
    if (!(p = realloc(d->labels, n * sizeof *d->labels))) return cli_nomem(path);
    d->labels = p;
    if (!(p = realloc(d->row_file, n * sizeof *d->row_file))) return cli_nomem(path);
    d->row_file = p;
    if (!(p = realloc(d->row_in_file, n * sizeof *d->row_in_file))) return cli_nomem(path);
    d->row_in_file = p;
    return CLI_EXIT_OK;
}

/* The label of category @p name: the same name always gets the same label,
 * so clock.npy in two folders is one category. */
static int label_for(cli_data *d, const char *name, int32_t *label)
{
    char **grown, *copy;
    for (size_t i = 0; i < d->n_names; i++)
        if (strcmp(d->names[i], name) == 0) {
            *label = (int32_t)i;
            return CLI_EXIT_OK;
        }
    if (d->n_names >= INT32_MAX) return cli_nomem("categories");
    if (!(grown = realloc(d->names, (d->n_names + 1) * sizeof *grown))) return cli_nomem(name);
    d->names = grown;
    if (!(copy = dup_str(name))) return cli_nomem(name);
    d->names[d->n_names] = copy;
    *label = (int32_t)d->n_names++;
    return CLI_EXIT_OK;
}

static int add_file(cli_data *d, const char *path, uint32_t *index)
{
    char **grown, *copy;
    if (d->n_files >= UINT32_MAX) return cli_nomem("files");
    if (!(grown = realloc(d->files, (d->n_files + 1) * sizeof *grown))) return cli_nomem(path);
    d->files = grown;
    if (!(copy = dup_str(path))) return cli_nomem(path);
    d->files[d->n_files] = copy;
    *index = (uint32_t)d->n_files++;
    return CLI_EXIT_OK;
}

/* "smiley_face" of ".../smiley_face.npy", shown as "smiley face" (as
 * ae_dataset_category_name shows a category folder's files). */
static void stem_name(char *buf, size_t cap, const char *path)
{
    const char *base = strrchr(path, '/'), *dot;
    size_t len;
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (len >= cap) len = cap - 1;
    memcpy(buf, base, len);
    buf[len] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '_') *p = ' ';
}

/* @p src into @p buf, cut to fit: a category name only labels output */
static void copy_name(char *buf, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(buf, src, n);
    buf[n] = '\0';
}

/* The name of the folder holding @p path (its last component for a folder). */
static void folder_name(char *buf, size_t cap, const char *path, int is_dir)
{
    char tmp[PATH_MAX], *real, *slash;
    size_t len = strlen(path);
    if (len >= sizeof tmp) len = sizeof tmp - 1;
    memcpy(tmp, path, len);
    tmp[len] = '\0';
    if (!is_dir) {
        slash = strrchr(tmp, '/');
        if (slash) *slash = '\0';
        else snprintf(tmp, sizeof tmp, ".");
        if (!*tmp) snprintf(tmp, sizeof tmp, "/");
    }
    real = realpath(tmp, NULL);
    if (real) {
        len = strlen(real);
        while (len > 1 && real[len - 1] == '/') real[--len] = '\0';
        slash = strrchr(real, '/');
        copy_name(buf, cap, slash && slash[1] ? slash + 1 : real);
        free(real);
    } else {
        copy_name(buf, cap, tmp);
    }
}

static int check_finite(const cli_data *d, size_t first, const char *path)
{
    for (size_t r = first; r < d->n; r++)
        for (size_t j = 0; j < d->width; j++)
            if (!isfinite(d->rows[r * d->width + j])) {
                cli_error("%s: row %zu holds NaN or infinity", path, d->row_in_file[r]);
                return CLI_EXIT_NUMERIC;
            }
    return CLI_EXIT_OK;
}

static int width_mismatch(const char *path, size_t have, const cli_input *in, const char *shape)
{
    const char *s = have == 1 ? "" : "s";
    if (in->h)
        cli_error("%s: rows of %zu value%s%s, but the model takes %zux%zu images (%zu values)",
                  path, have, s, shape, in->h, in->w, in->width);
    else
        cli_error("%s: rows of %zu value%s%s, but the model takes rows of %zu values", path,
                  have, s, shape, in->width);
    return CLI_EXIT_MISMATCH;
}

static int load_npy(cli_data *d, const char *path, const cli_data_opts *o, const cli_input *in)
{
    ae_npy_dtype dtype;
    int rank, rc;
    size_t dims[AE_TENSOR_MAX_RANK], width = 1, rows, first = d->n;
    ae_tensor *t = NULL;
    ae_status st;
    char name[256], shape[96];
    int32_t label;
    uint32_t file;

    if ((st = ae_npy_info(&dtype, &rank, dims, path)) != AE_OK)
        return cli_lib_error(st, "cannot read %s", path);
    for (int i = 1; i < rank; i++) width *= dims[i];
    if (width != in->width) {
        int n = snprintf(shape, sizeof shape, " (shape (%zu", dims[0]);
        for (int i = 1; i < rank && n > 0 && (size_t)n < sizeof shape; i++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, ", %zu", dims[i]);
        if (n > 0 && (size_t)n < sizeof shape) snprintf(shape + n, sizeof shape - (size_t)n, "))");
        return width_mismatch(path, width, in, shape);
    }
    if ((st = ae_npy_load_rows(&t, path, o->per_category, AE_NPY_U8_UNIT)) != AE_OK)
        return cli_lib_error(st, "cannot read %s", path);
    rows = ae_tensor_dim(t, 0);
    stem_name(name, sizeof name, path);
    if ((rc = grow_rows(d, rows, path)) != CLI_EXIT_OK || (rc = label_for(d, name, &label)) ||
        (rc = add_file(d, path, &file))) {
        ae_tensor_free(t);
        return rc;
    }
    memcpy(d->rows + d->n * d->width, ae_tensor_data_const(t), rows * width * sizeof(float));
    ae_tensor_free(t);
    for (size_t i = 0; i < rows; i++) {
        d->labels[d->n + i] = label;
        d->row_file[d->n + i] = file;
        d->row_in_file[d->n + i] = i;
    }
    d->n += rows;
    return check_finite(d, first, path);
}

/* A category folder through ae_dataset_load (no test split), its rows put
 * back in file order: categories by file name, rows as in each file. */
static int load_category_folder(cli_data *d, const char *dir, const cli_data_opts *o,
                                const cli_input *in)
{
    ae_dataset *ds = NULL;
    ae_status st = ae_dataset_load(&ds, dir, o->per_category, 0.0, 0);
    const float *rows;
    const int32_t *labels;
    const size_t *src;
    size_t count, cats, *offset = NULL, start = d->n;
    int32_t *label_of = NULL;
    uint32_t *file_of = NULL;
    int rc = CLI_EXIT_OK;

    if (st != AE_OK) return cli_lib_error(st, "cannot load the category folder %s", dir);
    if (ae_dataset_row_width(ds) != in->width) {
        rc = width_mismatch(dir, ae_dataset_row_width(ds), in, "");
        goto done;
    }
    ae_dataset_train(&rows, &labels, &count, ds);
    ae_dataset_sources(&src, NULL, ds);
    cats = ae_dataset_num_categories(ds);
    offset = malloc((cats + 1) * sizeof *offset);
    label_of = malloc(cats * sizeof *label_of);
    file_of = malloc(cats * sizeof *file_of);
    if (!offset || !label_of || !file_of) {
        rc = cli_nomem(dir);
        goto done;
    }
    offset[0] = 0;
    for (size_t c = 0; c < cats && rc == CLI_EXIT_OK; c++) {
        const char *name = ae_dataset_category_name(ds, c);
        char path[PATH_MAX], base[256];
        struct stat sb;
        size_t n_train;
        ae_dataset_category_counts(&n_train, NULL, ds, c);
        offset[c + 1] = offset[c] + n_train;
        /* the file behind the name: underscores are shown as spaces */
        snprintf(base, sizeof base, "%s", name);
        for (char *p = base; *p; p++)
            if (*p == ' ') *p = '_';
        snprintf(path, sizeof path, "%s/%s.npy", dir, base);
        if (stat(path, &sb) != 0) snprintf(path, sizeof path, "%s/%s.npy", dir, name);
        if ((rc = label_for(d, name, &label_of[c])) == CLI_EXIT_OK)
            rc = add_file(d, path, &file_of[c]);
    }
    if (rc == CLI_EXIT_OK) rc = grow_rows(d, count, dir);
    if (rc != CLI_EXIT_OK) goto done;
    for (size_t i = 0; i < count; i++) {
        size_t c = (size_t)labels[i], to = start + offset[c] + src[i];
        memcpy(d->rows + to * d->width, rows + i * d->width, d->width * sizeof(float));
        d->labels[to] = label_of[c];
        d->row_file[to] = file_of[c];
        d->row_in_file[to] = src[i];
    }
    d->n += count;
done:
    free(offset);
    free(label_of);
    free(file_of);
    ae_dataset_free(ds);
    return rc;
}

static int load_png(cli_data *d, const char *path, const char *category,
                    const cli_data_opts *o, const cli_input *in)
{
    int rc;
    int32_t label;
    uint32_t file;
    double mean = 0;
    if ((rc = grow_rows(d, 1, path)) != CLI_EXIT_OK) return rc;
    if ((rc = cli_image_load(path, in, o->invert, d->rows + d->n * d->width, &mean)) !=
        CLI_EXIT_OK)
        return rc;
    if ((rc = label_for(d, category, &label)) || (rc = add_file(d, path, &file))) return rc;
    d->labels[d->n] = label;
    d->row_file[d->n] = file;
    d->row_in_file[d->n] = 0;
    d->n++;
    d->png_mean += mean;
    d->from_png++;
    return CLI_EXIT_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The directory's regular files ending in @p ext whose names do not start
 * with '.', sorted in byte order. */
static int list_dir(const char *dir, int (*want)(const char *), char ***out, size_t *n_out)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    int rc = CLI_EXIT_OK;
    *out = NULL;
    *n_out = 0;
    if (!dp) {
        cli_error("%s: %s", dir, strerror(errno));
        return CLI_EXIT_FILE;
    }
    while ((e = readdir(dp)) != NULL) {
        char path[PATH_MAX];
        struct stat sb;
        char **grown;
        if (e->d_name[0] == '.' || !want(e->d_name)) continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (!(grown = realloc(names, (n + 1) * sizeof *grown)) || !(grown[n] = dup_str(path))) {
            if (grown) names = grown;
            rc = cli_nomem(dir);
            break;
        }
        names = grown;
        n++;
    }
    closedir(dp);
    if (rc != CLI_EXIT_OK) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return rc;
    }
    if (n) qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    *n_out = n;
    return CLI_EXIT_OK;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int load_dir(cli_data *d, const char *dir, const cli_data_opts *o, const cli_input *in)
{
    char **files;
    size_t n;
    char category[256];
    int rc = list_dir(dir, cli_is_npy, &files, &n);
    if (rc != CLI_EXIT_OK) return rc;
    free_list(files, n);
    if (n) return load_category_folder(d, dir, o, in);
    if ((rc = list_dir(dir, cli_is_png, &files, &n)) != CLI_EXIT_OK) return rc;
    if (!n) {
        cli_error("%s: the folder holds no .npy files and no .png images", dir);
        return CLI_EXIT_FILE;
    }
    folder_name(category, sizeof category, dir, 1);
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) rc = load_png(d, files[i], category, o, in);
    free_list(files, n);
    return rc;
}

int cli_data_load(cli_data *d, const cli_list *paths, const cli_data_opts *o,
                  const cli_input *in)
{
    int rc = CLI_EXIT_OK;
    memset(d, 0, sizeof *d);
    d->width = in->width;
    for (size_t i = 0; i < paths->n && rc == CLI_EXIT_OK; i++) {
        const char *p = paths->items[i];
        struct stat sb;
        if (stat(p, &sb) != 0) {
            cli_error("%s: %s", p, strerror(errno));
            rc = CLI_EXIT_FILE;
        } else if (S_ISDIR(sb.st_mode)) {
            rc = load_dir(d, p, o, in);
        } else if (cli_is_npy(p)) {
            rc = load_npy(d, p, o, in);
        } else if (cli_is_png(p)) {
            char category[256];
            folder_name(category, sizeof category, p, 0);
            rc = load_png(d, p, category, o, in);
        } else {
            cli_error("%s: not a .npy file, a .png image or a folder of them", p);
            rc = CLI_EXIT_FILE;
        }
    }
    if (rc == CLI_EXIT_OK && d->n == 0) {
        cli_error("no data rows in the --data arguments");
        rc = CLI_EXIT_FILE;
    }
    if (rc != CLI_EXIT_OK) cli_data_free(d);
    else if (d->from_png) d->png_mean /= d->from_png;
    return rc;
}

const char *cli_data_source(char *buf, size_t cap, const cli_data *d, size_t row)
{
    const char *file = d->files[d->row_file[row]];
    if (cli_is_npy(file)) snprintf(buf, cap, "%s:%zu", file, d->row_in_file[row]);
    else snprintf(buf, cap, "%s", file);
    return buf;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int cli_data_shuffle(cli_data *d, uint64_t seed)
{
    float *tmp = malloc(d->width * sizeof *tmp);
    uint64_t s = seed;
    if (!tmp) return cli_nomem("shuffling");
    for (size_t i = d->n; i > 1; i--) {
        size_t j = (size_t)(splitmix64(&s) % i), k = i - 1;
        int32_t l;
        uint32_t f;
        size_t r;
        if (j == k) continue;
        memcpy(tmp, d->rows + k * d->width, d->width * sizeof *tmp);
        memcpy(d->rows + k * d->width, d->rows + j * d->width, d->width * sizeof *tmp);
        memcpy(d->rows + j * d->width, tmp, d->width * sizeof *tmp);
        l = d->labels[k], d->labels[k] = d->labels[j], d->labels[j] = l;
        f = d->row_file[k], d->row_file[k] = d->row_file[j], d->row_file[j] = f;
        r = d->row_in_file[k], d->row_in_file[k] = d->row_in_file[j], d->row_in_file[j] = r;
    }
    free(tmp);
    return CLI_EXIT_OK;
}

void cli_data_png_hint(const cli_data *d, int invert)
{
    /* drawings are mostly background: a picture that is mostly "ink" was
     * almost certainly read with the wrong ink colour */
    if (!d->from_png || d->png_mean <= 0.5) return;
    if (invert)
        cli_note("the PNG images read as mostly ink (mean %.2f, 1 = ink): if they show light "
                 "ink on a dark background, leave out --invert", d->png_mean);
    else
        cli_note("the PNG images read as mostly ink (mean %.2f, 1 = ink): if they show dark "
                 "ink on a light background, pass --invert", d->png_mean);
}
