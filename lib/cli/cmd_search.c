/*
 * autoenc search: encodes each query (a PNG image, a .npy row, every row of
 * a .npy, or the data row behind an index id), finds its k nearest codes in
 * the index, prints them, and draws the queries beside their neighbours.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A strip of more queries than this would be too tall to look at. */
#define MAX_DRAWN_QUERIES 100

typedef struct query {
    char text[PATH_MAX + 32]; /* as the user can type it again */
    long data_row;            /* the --data row it is, -1 if unknown */
} query;

typedef struct search_ctx {
    const ae_index *idx;
    const cli_data *d; /* NULL without --data */
    size_t *first_row; /* first data row of each data file */
    size_t *file_rows; /* rows of each data file */
    char **real;       /* realpath of each data file (NULL if none) */
    query *q;
    float *pixels;     /* one input row per query */
    size_t nq, cap, width;
} search_ctx;

static int add_query(search_ctx *s, const char *text, long data_row, float **row)
{
    if (s->nq == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        query *q = realloc(s->q, cap * sizeof *q);
        float *p;
        if (!q) return cli_nomem("queries");
        s->q = q;
        if (cap > SIZE_MAX / sizeof *p / s->width ||
            !(p = realloc(s->pixels, cap * s->width * sizeof *p)))
            return cli_nomem("queries");
        s->pixels = p;
        s->cap = cap;
    }
    snprintf(s->q[s->nq].text, sizeof s->q[s->nq].text, "%s", text);
    s->q[s->nq].data_row = data_row;
    *row = s->pixels + s->nq * s->width;
    s->nq++;
    return CLI_EXIT_OK;
}

/* The --data file that @p path names (same file after resolving links), or -1. */
static long data_file_of(const search_ctx *s, const char *path)
{
    char *real;
    long found = -1;
    if (!s->d || !(real = realpath(path, NULL))) return -1;
    for (size_t f = 0; f < s->d->n_files && found < 0; f++)
        if (s->real[f] && strcmp(s->real[f], real) == 0) found = (long)f;
    free(real);
    return found;
}

/* The build-input row holding index id @p id: ids are row numbers for
 * indexes autoenc builds, any ids for others. */
static long row_of_id(const ae_index *idx, int64_t id)
{
    int64_t got;
    size_t n = ae_index_count(idx);
    if (id >= 0 && (uint64_t)id < n && ae_index_id_at(&got, idx, (size_t)id) == AE_OK && got == id)
        return (long)id;
    for (size_t r = 0; r < n; r++)
        if (ae_index_id_at(&got, idx, r) == AE_OK && got == id) return (long)r;
    return -1;
}

static int npy_rows(const char *path, size_t width, size_t *rows)
{
    ae_npy_dtype dtype;
    int rank;
    size_t dims[AE_TENSOR_MAX_RANK], w = 1;
    ae_status st = ae_npy_info(&dtype, &rank, dims, path);
    if (st != AE_OK) return cli_lib_error(st, "query %s", path);
    for (int i = 1; i < rank; i++) w *= dims[i];
    if (w != width) {
        cli_error("query %s: rows of %zu values, but the model takes rows of %zu", path, w, width);
        return CLI_EXIT_MISMATCH;
    }
    *rows = dims[0];
    return CLI_EXIT_OK;
}

static int parse_query(search_ctx *s, const char *arg, const cli_input *in, int invert)
{
    float *row;
    int rc;
    const char *colon = strrchr(arg, ':');
    char path[PATH_MAX];
    long f;
    if (strncmp(arg, "id:", 3) == 0) {
        char *end;
        long long id;
        long r;
        errno = 0;
        id = strtoll(arg + 3, &end, 10);
        if (!arg[3] || *end || errno) {
            cli_error("query '%s': an index id is id:N with a whole number N", arg);
            return CLI_EXIT_USAGE;
        }
        if (!s->d) {
            cli_error("query '%s': an index id needs --data, the data the index was built from",
                      arg);
            return CLI_EXIT_USAGE;
        }
        if ((r = row_of_id(s->idx, (int64_t)id)) < 0) {
            cli_error("query '%s': no code in the index has id %lld", arg, id);
            return CLI_EXIT_USAGE;
        }
        if ((rc = add_query(s, arg, r, &row)) != CLI_EXIT_OK) return rc;
        memcpy(row, s->d->rows + (size_t)r * s->width, s->width * sizeof *row);
        return CLI_EXIT_OK;
    }
    if (cli_is_png(arg)) {
        if ((rc = add_query(s, arg, -1, &row)) != CLI_EXIT_OK) return rc;
        if ((rc = cli_image_load(arg, in, invert, row, NULL)) != CLI_EXIT_OK) return rc;
        if ((f = data_file_of(s, arg)) >= 0) s->q[s->nq - 1].data_row = (long)s->first_row[f];
        return CLI_EXIT_OK;
    }
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
        (size_t)(colon - arg) < sizeof path) {
        size_t rows = 0, r;
        ae_status st;
        memcpy(path, arg, (size_t)(colon - arg));
        path[colon - arg] = '\0';
        if (cli_is_npy(path)) {
            errno = 0;
            r = (size_t)strtoull(colon + 1, NULL, 10);
            if ((rc = npy_rows(path, s->width, &rows)) != CLI_EXIT_OK) return rc;
            if (errno || r >= rows) {
                cli_error("query '%s': %s has %zu rows (0 to %zu)", arg, path, rows, rows - 1);
                return CLI_EXIT_USAGE;
            }
            if ((rc = add_query(s, arg, -1, &row)) != CLI_EXIT_OK) return rc;
            if ((st = ae_npy_read_rows(path, r, 1, AE_NPY_U8_UNIT, row, s->width)) != AE_OK)
                return cli_lib_error(st, "query %s", arg);
            if ((f = data_file_of(s, path)) >= 0 && r < s->file_rows[f])
                s->q[s->nq - 1].data_row = (long)(s->first_row[f] + r);
            return CLI_EXIT_OK;
        }
    }
    if (cli_is_npy(arg)) { /* every row of the file */
        size_t rows = 0;
        ae_tensor *t = NULL;
        ae_status st;
        if ((rc = npy_rows(arg, s->width, &rows)) != CLI_EXIT_OK) return rc;
        if ((st = ae_npy_load(&t, arg, AE_NPY_U8_UNIT)) != AE_OK)
            return cli_lib_error(st, "query %s", arg);
        f = data_file_of(s, arg);
        for (size_t r = 0; r < rows; r++) {
            char text[PATH_MAX + 32];
            snprintf(text, sizeof text, "%s:%zu", arg, r);
            if ((rc = add_query(s, text, -1, &row)) != CLI_EXIT_OK) {
                ae_tensor_free(t);
                return rc;
            }
            memcpy(row, ae_tensor_data_const(t) + r * s->width, s->width * sizeof *row);
            if (f >= 0 && r < s->file_rows[f]) s->q[s->nq - 1].data_row = (long)(s->first_row[f] + r);
        }
        ae_tensor_free(t);
        return CLI_EXIT_OK;
    }
    cli_error("query '%s' is not FILE.png, FILE.npy:ROW, FILE.npy or id:N", arg);
    return CLI_EXIT_USAGE;
}

/* The category of a neighbour: from --data, else the index's label number. */
static const char *neighbour_category(char *buf, size_t cap, const search_ctx *s, long row,
                                      int64_t id, int32_t *label, int *has_label)
{
    *has_label = 0;
    if (s->d && row >= 0) {
        *label = s->d->labels[row];
        *has_label = 1;
        return s->d->names[*label];
    }
    if (ae_index_has_labels(s->idx) && ae_index_label(label, s->idx, id) == AE_OK) {
        *has_label = 1;
        snprintf(buf, cap, "label %d", (int)*label);
        return buf;
    }
    return NULL;
}

static int draw_strip(const char *png, const search_ctx *s, const int64_t *ids,
                      const float *dists, size_t k, const cli_input *in, const char *model_path)
{
    size_t rows = s->nq < MAX_DRAWN_QUERIES ? s->nq : MAX_DRAWN_QUERIES, cols = k + 1;
    cli_cell *cells = calloc(rows * cols, sizeof *cells);
    char (*labels)[48] = calloc(rows * cols, sizeof *labels);
    char title[256];
    const char *base = strrchr(model_path, '/');
    int rc;
    if (!cells || !labels) {
        free(cells);
        free(labels);
        return cli_nomem(png);
    }
    if (s->nq > rows) cli_note("%s shows the first %zu of %zu queries", png, rows, s->nq);
    for (size_t q = 0; q < rows; q++) {
        const char *qname = strrchr(s->q[q].text, '/');
        qname = qname ? qname + 1 : s->q[q].text;
        if (s->q[q].data_row >= 0)
            snprintf(labels[q * cols], sizeof labels[0], "query\n%.40s",
                     s->d->names[s->d->labels[s->q[q].data_row]]);
        else
            snprintf(labels[q * cols], sizeof labels[0], "query\n%.40s", qname);
        cells[q * cols].pixels = s->pixels + q * s->width;
        cells[q * cols].label = labels[q * cols];
        for (size_t i = 0; i < k; i++) {
            long r = row_of_id(s->idx, ids[q * k + i]);
            char *l = labels[q * cols + 1 + i];
            snprintf(l, sizeof labels[0], "%.24s\nd=%.3f", r >= 0 ? s->d->names[s->d->labels[r]] : "?",
                     (double)dists[q * k + i]);
            cells[q * cols + 1 + i].pixels = r >= 0 ? s->d->rows + (size_t)r * s->width : NULL;
            cells[q * cols + 1 + i].label = l;
        }
    }
    snprintf(title, sizeof title, "%s and %s %zu nearest neighbours (%s)",
             rows > 1 ? "queries" : "query", rows > 1 ? "their" : "its", k,
             base ? base + 1 : model_path);
    rc = cli_draw_grid(png, title, cells, (int)cols, (int)rows, in->h, in->w);
    free(cells);
    free(labels);
    return rc;
}

static void print_results(const search_ctx *s, const int64_t *ids, const float *dists, size_t k,
                          int json)
{
    for (size_t q = 0; q < s->nq; q++) {
        const char *qcat = s->q[q].data_row >= 0 ? s->d->names[s->d->labels[s->q[q].data_row]] : NULL;
        if (json) {
            printf("{\"type\": \"search\", \"query\": ");
            cli_json_str(stdout, s->q[q].text);
            printf(", \"query_category\": ");
            cli_json_str(stdout, qcat);
            printf(", \"neighbours\": [");
        } else {
            printf("%squery %s", q ? "\n" : "", s->q[q].text);
            if (qcat) printf(" (%s)", qcat);
            printf("\n  rank %10s  %10s  %-14s  %s\n", "id", "distance", "category",
                   s->d ? "source" : "");
        }
        for (size_t i = 0; i < k; i++) {
            int64_t id = ids[q * k + i];
            long row = s->d ? row_of_id(s->idx, id) : -1;
            int32_t label = 0;
            int has_label;
            char catbuf[32], src[PATH_MAX + 32];
            const char *cat = neighbour_category(catbuf, sizeof catbuf, s, row, id, &label, &has_label);
            const char *source = row >= 0 ? cli_data_source(src, sizeof src, s->d, (size_t)row) : NULL;
            if (json) {
                printf("%s{\"rank\": %zu, \"id\": %lld, \"distance\": ", i ? ", " : "", i + 1,
                       (long long)id);
                cli_json_num(stdout, dists[q * k + i]);
                if (has_label) printf(", \"label\": %d", (int)label);
                else printf(", \"label\": null");
                printf(", \"category\": ");
                cli_json_str(stdout, s->d ? cat : NULL);
                printf(", \"source\": ");
                cli_json_str(stdout, source);
                printf("}");
            } else {
                printf("  %4zu %10lld  %10.4f  %-14s  %s\n", i + 1, (long long)id,
                       (double)dists[q * k + i], cat ? cat : "-", source ? source : "");
            }
        }
        if (json) printf("]}\n");
    }
}

int cli_cmd_search(int argc, char **argv)
{
    cli_list data = {0}, queries = {0};
    const char *model_path = NULL, *index_path = NULL, *png = NULL;
    int64_t k = 10, ef = 0, per_category = 0, threads = 0;
    int invert = 0, quiet = 0, json = 0, rc;
    const cli_opt opts[] = {
        {"model", 0, CLI_OPT_STRING, &model_path, 0, 0, "FILE.aem",
         "the model whose codes the index holds", NULL},
        {"index", 0, CLI_OPT_STRING, &index_path, 0, 0, "INDEX.aei",
         "an index from autoenc index build", NULL},
        {"data", 0, CLI_OPT_LIST, &data, 0, 0, "PATH",
         "the data the codes came from (as given to encode): categories, sources, pictures, id:N",
         NULL},
        {"k", 'k', CLI_OPT_INT, &k, 1, 1e9, "N", "neighbours per query", NULL},
        {"ef", 0, CLI_OPT_INT, &ef, 0, 65536, "N",
         "hnsw: candidate list of this search (0 = the index's --ef-search)", NULL},
        {"png", 0, CLI_OPT_STRING, &png, 0, 0, "STRIP.png",
         "draw each query beside its neighbours (needs --data)", NULL},
        {"per-category", 0, CLI_OPT_INT, &per_category, 0, 1e15, "N",
         "use the first N rows of each --data .npy file, as encode did (0 = all)", NULL},
        {"invert", 0, CLI_OPT_FLAG, &invert, 0, 0, NULL,
         "PNG input shows dark ink on a light background", NULL},
        {"threads", 0, CLI_OPT_INT, &threads, 0, 64, "N", "compute threads (0 = one per core)",
         NULL},
        {"quiet", 'q', CLI_OPT_FLAG, &quiet, 0, 0, NULL, "no notes", NULL},
        {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL,
         "one JSON object per query on stdout instead of the table", NULL},
        {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cli_cmd_help help = {
        "search",
        "autoenc search --model FILE.aem --index INDEX.aei [--data PATH...] [-k N] "
        "[--png STRIP.png] [--json] QUERY...",
        "Finds the k nearest indexed codes of each QUERY, nearest first (ties: smaller id).\n"
        "A QUERY is FILE.png (an image, read as for training), FILE.npy:ROW (one row),\n"
        "FILE.npy (every row), or id:N (the --data row behind index id N).",
        NULL};
    ae_model *m = NULL;
    ae_encoder *enc = NULL;
    ae_index *idx = NULL;
    cli_data d;
    cli_input in;
    cli_data_opts dopts;
    search_ctx s;
    float *codes = NULL, *dists = NULL;
    int64_t *ids = NULL;
    size_t code_size;
    ae_status st;

    memset(&d, 0, sizeof d);
    memset(&s, 0, sizeof s);
    rc = cli_parse(opts, &help, argc, argv, &queries);
    if (rc != CLI_EXIT_OK) goto done;
    cli_quiet = quiet;
    if (!model_path) rc = cli_missing("search", "--model FILE.aem");
    else if (!index_path) rc = cli_missing("search", "--index INDEX.aei");
    else if (!queries.n) rc = cli_missing("search", "a QUERY");
    else if (png && !data.n) {
        cli_error("search: --png needs --data: the neighbours' pictures come from the data");
        rc = CLI_EXIT_USAGE;
    }
    if (rc != CLI_EXIT_OK) goto done;

    if ((rc = cli_load_model(&m, model_path)) != CLI_EXIT_OK) goto done;
    if ((st = ae_encoder_create(&enc, m)) != AE_OK ||
        (st = ae_encoder_set_threads(enc, (int)threads)) != AE_OK) {
        rc = cli_lib_error(st, "%s", model_path);
        goto done;
    }
    code_size = ae_encoder_code_size(enc);
    /* mapped, not copied: the checks of ae_index_load, and only the pages
     * the queries touch become resident */
    if ((st = ae_index_map(&idx, index_path, AE_INDEX_CHECK_FULL)) != AE_OK) {
        rc = cli_lib_error(st, "cannot use index %s", index_path);
        goto done;
    }
    if ((st = ae_index_check_dim(idx, code_size)) != AE_OK) {
        rc = cli_lib_error(st, "index %s does not hold codes of model %s", index_path, model_path);
        goto done;
    }
    if ((size_t)k > ae_index_count(idx)) {
        cli_error("search: -k %lld is more than the %zu codes in %s", (long long)k,
                  ae_index_count(idx), index_path);
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    cli_input_of_model(&in, m);
    if (png && !in.h) {
        cli_error("search: --png: the model's rows (%zu values) are not images", in.width);
        rc = CLI_EXIT_MISMATCH;
        goto done;
    }
    s.idx = idx;
    s.width = in.width;
    if (data.n) {
        dopts.per_category = (size_t)per_category;
        dopts.invert = invert;
        if ((rc = cli_data_load(&d, &data, &dopts, &in)) != CLI_EXIT_OK) goto done;
        if (d.n != ae_index_count(idx)) {
            cli_error("search: --data has %zu rows but %s holds %zu codes: pass the --data "
                      "(and --per-category) that encode used", d.n, index_path,
                      ae_index_count(idx));
            rc = CLI_EXIT_MISMATCH;
            goto done;
        }
        s.d = &d;
        s.first_row = calloc(d.n_files, sizeof *s.first_row);
        s.file_rows = calloc(d.n_files, sizeof *s.file_rows);
        s.real = calloc(d.n_files, sizeof *s.real);
        if (!s.first_row || !s.file_rows || !s.real) {
            rc = cli_nomem("data files");
            goto done;
        }
        for (size_t r = d.n; r-- > 0;) {
            s.first_row[d.row_file[r]] = r;
            s.file_rows[d.row_file[r]]++;
        }
        for (size_t f = 0; f < d.n_files; f++) s.real[f] = realpath(d.files[f], NULL);
    }
    for (size_t i = 0; i < queries.n; i++)
        if ((rc = parse_query(&s, queries.items[i], &in, invert)) != CLI_EXIT_OK) goto done;

    if (s.nq > SIZE_MAX / sizeof *ids / (size_t)k || s.nq > SIZE_MAX / sizeof *codes / code_size ||
        !(codes = malloc(s.nq * code_size * sizeof *codes)) ||
        !(dists = malloc(s.nq * (size_t)k * sizeof *dists)) ||
        !(ids = malloc(s.nq * (size_t)k * sizeof *ids))) {
        rc = cli_nomem("search results");
        goto done;
    }
    if ((st = ae_encoder_encode(enc, s.pixels, s.nq, codes, s.nq * code_size)) != AE_OK) {
        rc = cli_lib_error(st, "encoding the queries");
        goto done;
    }
    if ((st = ae_index_search(idx, codes, s.nq, (size_t)k, (size_t)ef, dists, ids)) != AE_OK) {
        rc = cli_lib_error(st, "searching %s", index_path);
        goto done;
    }
    print_results(&s, ids, dists, (size_t)k, json);
    if (png) {
        if ((rc = draw_strip(png, &s, ids, dists, (size_t)k, &in, model_path)) != CLI_EXIT_OK)
            goto done;
        if (!json && !quiet) printf("\nwrote %s\n", png);
    }
    rc = CLI_EXIT_OK;
done:
    if (s.real)
        for (size_t f = 0; f < d.n_files; f++) free(s.real[f]);
    free(s.real);
    free(s.first_row);
    free(s.file_rows);
    free(s.q);
    free(s.pixels);
    free(codes);
    free(dists);
    free(ids);
    cli_data_free(&d);
    ae_index_free(idx);
    ae_encoder_free(enc);
    ae_model_free(m);
    cli_list_free(&data);
    cli_list_free(&queries);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
}
