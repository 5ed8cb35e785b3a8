/*
 * Tutorial section 4: information retrieval with the convolutional encoder.
 *
 * Loads the model conv_autoencoder saved (training it first if absent),
 * flattens the encoder's 4x4x8 codes of the training split, indexes them
 * (ball tree by default, as the tutorial), and queries every held-out test
 * drawing: a clock must find clocks. Reports precision@1/10/100, mAP@100 and
 * per-category precision@10 for the codes and, in the same run, for raw
 * pixels; draws the neighbours of a few queries.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_train.h"

#define METRIC_K 100 /* deepest rank any metric looks at */

typedef struct retrieval_scores {
    double p1, p10, p100, map100;
    double per_category_p10[64];
    double query_seconds;
} retrieval_scores;

/* Scores ranked neighbour labels (nq x METRIC_K) against query labels.
 * mAP@100: per query, the mean of precision@i over the ranks i <= 100 that
 * hold a drawing of the query's category (0 when none does). */
static void score(const int32_t *nbr_labels, const int32_t *query_labels, size_t nq,
                  size_t n_cat, retrieval_scores *s)
{
    size_t count[64] = {0};
    double hits10[64] = {0};
    s->p1 = s->p10 = s->p100 = s->map100 = 0;
    for (size_t q = 0; q < nq; q++) {
        const int32_t *r = nbr_labels + q * METRIC_K;
        size_t hits = 0;
        double ap = 0;
        for (size_t i = 0; i < METRIC_K; i++) {
            if (r[i] == query_labels[q]) {
                hits++;
                ap += (double)hits / (double)(i + 1);
            }
            if (i == 0) s->p1 += (double)hits;
            if (i == 9) {
                s->p10 += hits / 10.0;
                hits10[query_labels[q]] += hits / 10.0;
            }
        }
        s->p100 += hits / (double)METRIC_K;
        s->map100 += hits ? ap / (double)hits : 0;
        count[query_labels[q]]++;
    }
    s->p1 /= (double)nq;
    s->p10 /= (double)nq;
    s->p100 /= (double)nq;
    s->map100 /= (double)nq;
    for (size_t c = 0; c < n_cat; c++) s->per_category_p10[c] = count[c] ? hits10[c] / (double)count[c] : 0;
}

static int parse_backend(const char *name, ae_index_backend *out)
{
    if (strcmp(name, "balltree") == 0) *out = AE_INDEX_BALLTREE;
    else if (strcmp(name, "brute") == 0) *out = AE_INDEX_BRUTE;
    else if (strcmp(name, "hnsw") == 0) *out = AE_INDEX_HNSW;
    else {
        fprintf(stderr, "error: --backend must be balltree, brute or hnsw, not '%s'\n", name);
        return EX_ERR;
    }
    return EX_OK;
}

/* Builds an index over rows and queries it with every query row: nbr_ids and
 * dists get nq x METRIC_K entries. */
static int index_and_query(ae_index_backend backend, size_t dim, const float *rows, size_t n,
                           const int32_t *labels, const float *queries, size_t nq, long leaf_size,
                           int64_t *nbr_ids, float *dists, double *build_s, double *query_s,
                           ae_index **keep)
{
    ae_index *idx;
    double t0;
    ae_status st = ae_index_create(&idx, backend, AE_INDEX_L2, dim);
    if (st == AE_OK && backend == AE_INDEX_BALLTREE)
        st = ae_index_set_int(idx, AE_INDEX_LEAF_SIZE, leaf_size);
    t0 = ex_now();
    if (st == AE_OK) st = ae_index_build(idx, rows, n, NULL, labels);
    *build_s = ex_now() - t0;
    t0 = ex_now();
    if (st == AE_OK) st = ae_index_search(idx, queries, nq, METRIC_K, METRIC_K, dists, nbr_ids);
    *query_s = ex_now() - t0;
    if (st != AE_OK) {
        fprintf(stderr, "error: index: %s (%s)\n", ae_last_error(), ae_status_string(st));
        ae_index_free(idx);
        return EX_ERR;
    }
    if (keep) *keep = idx;
    else ae_index_free(idx);
    return EX_OK;
}

/* The query drawing, then its k neighbours labelled with category and distance. */
static int draw_neighbours(const ae_dataset *ds, const float *train, const int32_t *train_labels,
                           const float *query, int32_t query_label, const int64_t *ids,
                           const float *dists, size_t k, const char *path)
{
    ex_grid *g;
    char label[64];
    int rc;
    if (ex_grid_create(&g, (int)k + 1, 1, 28, 28, 3, 2) != EX_OK) return EX_ERR;
    snprintf(label, sizeof label, "query\n%s", ae_dataset_category_name(ds, (size_t)query_label));
    ex_grid_put(g, 0, 0, query, 28, 28, 0, 1, label);
    for (size_t i = 0; i < k; i++) {
        snprintf(label, sizeof label, "%s\nd=%.3f",
                 ae_dataset_category_name(ds, (size_t)train_labels[ids[i]]), dists[i]);
        ex_grid_put(g, (int)i + 1, 0, train + (size_t)ids[i] * 784, 28, 28, 0, 1, label);
    }
    ex_grid_set_title(g, "query and its nearest neighbours (conv codes)");
    rc = ex_grid_save_png(g, path);
    ex_grid_free(g);
    if (rc == EX_OK) printf("wrote %s\n", path);
    return rc;
}

static void print_scores(const char *what, const retrieval_scores *s, const ae_dataset *ds)
{
    printf("%-22s precision@1 %.4f  @10 %.4f  @100 %.4f  mAP@100 %.4f\n", what, s->p1, s->p10,
           s->p100, s->map100);
    printf("%-22s precision@10 per category:", "");
    for (size_t c = 0; c < ae_dataset_num_categories(ds); c++)
        printf(" %s %.3f%s", ae_dataset_category_name(ds, c), s->per_category_p10[c],
               c + 1 < ae_dataset_num_categories(ds) ? "," : "\n");
}

/* Trains the conv model with the conv_autoencoder example's own code. */
static int train_conv_model(const ex_args *a)
{
    static const ex_train_spec conv = {"conv_autoencoder", "", AE_PRESET_CONV, 32, 1};
    char epochs[32], seed[32], per[32];
    char *argv[12];
    snprintf(epochs, sizeof epochs, "%ld", a->epochs);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->seed);
    snprintf(per, sizeof per, "%zu", a->per_category);
    argv[0] = "conv_autoencoder";
    argv[1] = "--data"; argv[2] = (char *)a->data_dir;
    argv[3] = "--out"; argv[4] = (char *)a->out_dir;
    argv[5] = "--epochs"; argv[6] = epochs;
    argv[7] = "--seed"; argv[8] = seed;
    argv[9] = "--per-category"; argv[10] = per;
    argv[11] = NULL;
    return ex_run_training_example(&conv, 11, argv) == 0 ? EX_OK : EX_ERR;
}

int main(int argc, char **argv)
{
    ex_args a;
    const char *backend_name = "balltree", *model_path = NULL, *export_dir = NULL;
    long k = 10, leaf_size = 40, shown = 3;
    const ex_option extra[] = {
        {"backend", EX_OPT_STRING, &backend_name, 0, 0, "NAME", "balltree, brute or hnsw"},
        {"k", EX_OPT_INT, &k, 1, METRIC_K, "N", "neighbours shown per query"},
        {"leaf-size", EX_OPT_INT, &leaf_size, 1, 1 << 20, "N", "ball tree leaf size"},
        {"model", EX_OPT_STRING, &model_path, 0, 0, "FILE",
         "conv model (default OUT/conv_autoencoder.aem, trained if absent)"},
        {"show", EX_OPT_INT, &shown, 0, 10, "N", "queries to print and draw (a clock first)"},
        {"export-codes", EX_OPT_STRING, &export_dir, 0, 0, "DIR",
         "also write the codes as DIR/train_codes.npy and DIR/test_codes.npy (float32)"},
        {NULL, EX_OPT_INT, NULL, 0, 0, NULL, NULL},
    };
    ae_index_backend backend;
    ae_dataset *ds = NULL;
    ae_model *m = NULL;
    ae_encoder *enc = NULL;
    ae_index *idx = NULL;
    const float *train, *test;
    const int32_t *train_labels, *test_labels;
    size_t n_train, n_test, n_cat, code;
    float *train_codes = NULL, *test_codes = NULL, *dists = NULL;
    int64_t *nbr = NULL;
    int32_t *nbr_labels = NULL;
    char path[1024];
    retrieval_scores codes_s, pixels_s;
    double build_s, query_s, pix_build_s, pix_query_s, t0, encode_s;
    int rc;

    ex_args_defaults(&a);
    a.epochs = 60;
    rc = ex_args_parse(&a, extra, argc, argv,
                       "Tutorial section 4: image retrieval with the convolutional encoder's codes", 1);
    if (rc != EX_OK) return rc == EX_HELP ? 0 : 2;
    if (parse_backend(backend_name, &backend) != EX_OK) return 2;
    if (ex_mkdir_p(a.out_dir) != EX_OK) return 1;
    if (!model_path) {
        if (ex_path(path, sizeof path, a.out_dir, "conv_autoencoder.aem") != EX_OK) return 1;
        model_path = path;
    }
    if (ae_model_load(&m, model_path) != AE_OK) {
        printf("no usable model at %s (%s): training the convolutional autoencoder first\n",
               model_path, ae_last_error());
        if (train_conv_model(&a) != EX_OK || ae_model_load(&m, model_path) != AE_OK) {
            fprintf(stderr, "error: loading %s: %s\n", model_path, ae_last_error());
            return 1;
        }
    }
    printf("model: %s (%zu parameters)\n", model_path, ae_model_param_count(m));
    rc = 1;
    if (ex_load_dataset(&ds, &a, 1) != EX_OK) goto done;
    ae_dataset_train(&train, &train_labels, &n_train, ds);
    ae_dataset_test(&test, &test_labels, &n_test, ds);
    n_cat = ae_dataset_num_categories(ds);
    if (n_cat > 64 || n_train < METRIC_K) {
        fprintf(stderr, "error: need at most 64 categories and at least %d training drawings\n", METRIC_K);
        goto done;
    }

    /* encode: the code layer's 4x4x8 output, flattened (NHWC order) */
    if (ae_encoder_create(&enc, m) != AE_OK) {
        fprintf(stderr, "error: encoder: %s\n", ae_last_error());
        goto done;
    }
    code = ae_encoder_code_size(enc);
    train_codes = malloc(n_train * code * sizeof *train_codes);
    test_codes = malloc(n_test * code * sizeof *test_codes);
    nbr = malloc(n_test * METRIC_K * sizeof *nbr);
    nbr_labels = malloc(n_test * METRIC_K * sizeof *nbr_labels);
    dists = malloc(n_test * METRIC_K * sizeof *dists);
    if (!train_codes || !test_codes || !nbr || !nbr_labels || !dists) goto done;
    t0 = ex_now();
    if (ae_encoder_encode(enc, train, n_train, train_codes, n_train * code) != AE_OK ||
        ae_encoder_encode(enc, test, n_test, test_codes, n_test * code) != AE_OK) {
        fprintf(stderr, "error: encode: %s\n", ae_last_error());
        goto done;
    }
    encode_s = ex_now() - t0;
    printf("encoded %zu + %zu drawings into %zu-float codes (%zux%zux%zu flattened) in %.2f s\n",
           n_train, n_test, code, ae_encoder_code_dim(enc, 0), ae_encoder_code_dim(enc, 1),
           ae_encoder_code_dim(enc, 2), encode_s);

    if (export_dir) {
        char p1[1024], p2[1024];
        size_t d1[2] = {n_train, code}, d2[2] = {n_test, code};
        if (ex_mkdir_p(export_dir) != EX_OK || ex_path(p1, sizeof p1, export_dir, "train_codes.npy") != EX_OK ||
            ex_path(p2, sizeof p2, export_dir, "test_codes.npy") != EX_OK ||
            ae_npy_save_f32(p1, train_codes, 2, d1) != AE_OK || ae_npy_save_f32(p2, test_codes, 2, d2) != AE_OK) {
            fprintf(stderr, "error: exporting codes: %s\n", ae_last_error());
            goto done;
        }
        printf("wrote %s and %s\n", p1, p2);
    }

    /* the codes: the chosen backend, every held-out drawing as a query */
    if (index_and_query(backend, code, train_codes, n_train, train_labels, test_codes, n_test,
                        leaf_size, nbr, dists, &build_s, &query_s, &idx) != EX_OK)
        goto done;
    printf("%s index over %zu codes: built in %.2f s, %zu queries (k = %d) in %.2f s "
           "(%.3f ms per query)\n", backend_name, n_train, build_s, n_test, METRIC_K, query_s,
           1e3 * query_s / (double)n_test);
    for (size_t i = 0; i < n_test * METRIC_K; i++) nbr_labels[i] = train_labels[nbr[i]];
    score(nbr_labels, test_labels, n_test, n_cat, &codes_s);

    /* a few queries as the tutorial shows them: a clock first */
    for (long s = 0, q = -1; s < shown; s++) {
        size_t want = 0;
        for (size_t c = 0; c < n_cat; c++)
            if (strcmp(ae_dataset_category_name(ds, c), "clock") == 0) want = c;
        if (s > 0) want = (want + (size_t)s * 3) % n_cat;
        for (q = 0; q < (long)n_test && (size_t)test_labels[q] != want; q++) {}
        if (q == (long)n_test) continue;
        printf("\nquery %ld (%s): the %ld nearest training drawings\n  indices:   ", q,
               ae_dataset_category_name(ds, want), k);
        for (long i = 0; i < k; i++) printf(" %6lld", (long long)nbr[(size_t)q * METRIC_K + (size_t)i]);
        printf("\n  distances: ");
        for (long i = 0; i < k; i++) printf(" %6.3f", dists[(size_t)q * METRIC_K + (size_t)i]);
        printf("\n  categories:");
        for (long i = 0; i < k; i++)
            printf(" %s%s", ae_dataset_category_name(ds, (size_t)nbr_labels[(size_t)q * METRIC_K + (size_t)i]),
                   i + 1 < k ? "," : "\n");
        {
            char name[64], png[1024];
            snprintf(name, sizeof name, "retrieval_%s_%ld.png", ae_dataset_category_name(ds, want), q);
            for (char *p = name; *p; p++) if (*p == ' ') *p = '_';
            if (ex_path(png, sizeof png, a.out_dir, name) != EX_OK ||
                draw_neighbours(ds, train, train_labels, test + (size_t)q * 784, test_labels[q],
                                nbr + (size_t)q * METRIC_K, dists + (size_t)q * METRIC_K,
                                (size_t)k, png) != EX_OK)
                goto done;
        }
    }

    /* raw pixels in the same run (exact brute force: same neighbours as a ball tree) */
    if (index_and_query(AE_INDEX_BRUTE, 784, train, n_train, train_labels, test, n_test, leaf_size,
                        nbr, dists, &pix_build_s, &pix_query_s, NULL) != EX_OK)
        goto done;
    for (size_t i = 0; i < n_test * METRIC_K; i++) nbr_labels[i] = train_labels[nbr[i]];
    score(nbr_labels, test_labels, n_test, n_cat, &pixels_s);

    printf("\nretrieval quality over %zu held-out queries (%zu indexed):\n", n_test, n_train);
    print_scores("conv codes (128-d)", &codes_s, ds);
    print_scores("raw pixels (784-d)", &pixels_s, ds);
    printf("{\"example\": \"image_retrieval\", \"backend\": \"%s\", \"indexed\": %zu, \"queries\": %zu, "
           "\"codes\": {\"precision_at_1\": %.4f, \"precision_at_10\": %.4f, \"precision_at_100\": %.4f, "
           "\"map_at_100\": %.4f}, \"pixels\": {\"precision_at_1\": %.4f, \"precision_at_10\": %.4f, "
           "\"precision_at_100\": %.4f, \"map_at_100\": %.4f}, \"build_seconds\": %.3f, "
           "\"query_ms\": %.4f}\n",
           backend_name, n_train, n_test, codes_s.p1, codes_s.p10, codes_s.p100, codes_s.map100,
           pixels_s.p1, pixels_s.p10, pixels_s.p100, pixels_s.map100, build_s,
           1e3 * query_s / (double)n_test);
    rc = 0;
done:
    free(train_codes);
    free(test_codes);
    free(nbr);
    free(nbr_labels);
    free(dists);
    ae_index_free(idx);
    ae_encoder_free(enc);
    ae_model_free(m);
    ae_dataset_free(ds);
    return rc;
}
