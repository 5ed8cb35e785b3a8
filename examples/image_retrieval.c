/*
 * Tutorial section 4: information retrieval with the convolutional encoder.
 *
 * The notebook's cells in order: take the trained convolutional autoencoder
 * (the file conv_autoencoder saved in --out, or --model FILE; with neither,
 * train the tutorial's conv model first with section 3's recipe and save it
 * there), extract its encoder and flatten the 4x4x8 codes of every drawing,
 * index the training codes in a ball tree (--backend brute or hnsw for the
 * other indexes) and ask for the k = 10 nearest neighbours of held-out
 * drawings: a clock must find clocks. Every held-out drawing is a query;
 * precision@1/10/100, mAP@100 and per-category precision@10 are reported for
 * the codes and, in the same run, for raw pixels and for PCA with as many
 * components as the code has floats (--pca N to choose, 0 for none), with
 * the test BCE of the autoencoder's and PCA's reconstructions. --preset
 * conv_bn8 or conv_bn16 trains (and by default saves as
 * OUT/<preset>_autoencoder.aem) a retrieval-grade conv-BN model with a
 * 32-float code instead of the tutorial's, with issue 11's recipe (batch 128,
 * otherwise the tutorial's). Draws the neighbours of
 * --show queries (a clock first) into --out/retrieval_<category>_<query>.png;
 * the last line printed is a JSON object of the figures.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_support.h"

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

/* PCA fitted on the training rows: codes of both sets and the test BCE of
 * its reconstructions. */
typedef struct pca_result {
    float *train_codes, *test_codes;
    double explained, test_bce;
} pca_result;

static int pca_baseline(pca_result *r, size_t components, const float *train, size_t n_train,
                        const float *test, size_t n_test)
{
    ex_pca *p = NULL;
    float *recon = NULL;
    double t0 = ex_now();
    int rc = EX_ERR;
    r->train_codes = malloc(n_train * components * sizeof *r->train_codes);
    r->test_codes = malloc(n_test * components * sizeof *r->test_codes);
    recon = malloc(n_test * 784 * sizeof *recon);
    if (!r->train_codes || !r->test_codes || !recon) {
        fprintf(stderr, "error: out of memory for the PCA baseline\n");
        goto done;
    }
    if (ex_pca_fit(&p, train, n_train, 784, components) != EX_OK ||
        ex_pca_project(p, train, n_train, r->train_codes) != EX_OK ||
        ex_pca_project(p, test, n_test, r->test_codes) != EX_OK) {
        fprintf(stderr, "error: PCA with %zu components failed\n", components);
        goto done;
    }
    ex_pca_reconstruct(p, r->test_codes, n_test, recon);
    r->explained = ex_pca_explained(p);
    if (ex_failed(ae_loss_value(&r->test_bce, AE_LOSS_BCE, recon, test, n_test * 784),
                  "PCA reconstruction loss"))
        goto done;
    printf("PCA-%zu fitted on %zu drawings in %.2f s: %.1f%% of the variance\n", components,
           n_train, ex_now() - t0, 100 * r->explained);
    rc = EX_OK;
done:
    ex_pca_free(p);
    free(recon);
    return rc;
}

/* Another trained model (--compare FILE) in the same run: its codes searched
 * exactly (brute force: the ball tree's neighbours) and its test BCE. */
typedef struct compared_model {
    size_t code, params;
    double test_bce;
    retrieval_scores s;
} compared_model;

static int compare_model(compared_model *r, const char *path, const ae_dataset *ds,
                         int64_t *nbr, float *dists, int32_t *nbr_labels)
{
    const float *train, *test;
    const int32_t *train_labels, *test_labels;
    size_t n_train, n_test;
    ae_model *m = NULL;
    ae_encoder *enc = NULL;
    float *train_codes = NULL, *test_codes = NULL;
    double build_s, query_s;
    ae_status st;
    int rc = EX_ERR;
    ae_dataset_train(&train, &train_labels, &n_train, ds);
    ae_dataset_test(&test, &test_labels, &n_test, ds);
    st = ae_model_load(&m, path);
    if (st == AE_OK) st = ae_encoder_create(&enc, m);
    if (ex_failed(st, "loading the --compare model")) goto done;
    r->code = ae_encoder_code_size(enc);
    r->params = ae_model_param_count(m);
    train_codes = malloc(n_train * r->code * sizeof *train_codes);
    test_codes = malloc(n_test * r->code * sizeof *test_codes);
    if (!train_codes || !test_codes) {
        fprintf(stderr, "error: out of memory for the --compare model's codes\n");
        goto done;
    }
    st = ae_encoder_encode(enc, train, n_train, train_codes, n_train * r->code);
    if (st == AE_OK) st = ae_encoder_encode(enc, test, n_test, test_codes, n_test * r->code);
    if (st == AE_OK) st = ae_model_evaluate(&r->test_bce, m, AE_LOSS_BCE, test, test, n_test);
    if (ex_failed(st, "the --compare model")) goto done;
    if (index_and_query(AE_INDEX_BRUTE, r->code, train_codes, n_train, train_labels, test_codes,
                        n_test, 40, nbr, dists, &build_s, &query_s, NULL) != EX_OK)
        goto done;
    for (size_t i = 0; i < n_test * METRIC_K; i++) nbr_labels[i] = train_labels[nbr[i]];
    score(nbr_labels, test_labels, n_test, ae_dataset_num_categories(ds), &r->s);
    printf("--compare %s: %zu parameters, %zu-float codes\n", path, r->params, r->code);
    rc = EX_OK;
done:
    free(train_codes);
    free(test_codes);
    ae_encoder_free(enc);
    ae_model_free(m);
    return rc;
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

/* Section 3 again when no trained model is at hand: the tutorial's conv model
 * (the preset of the 13 layers conv_autoencoder builds one by one), compiled
 * and fitted with conv_autoencoder's recipe and defaults (batch 32, early
 * stopping patience 3, min_delta 1e-4), so a seed gives the same model in
 * both programs; or another preset with the same recipe at batch 128 (the
 * conv-BN models' batch size in issue 11's reference runs). Saves it to
 * model_path and writes the epochs to OUT/<preset>_autoencoder_history.csv
 * (conv_autoencoder's file for the tutorial's model). */
static int train_preset_model(ae_model **out, double *seconds, size_t *epochs, const ex_args *a,
                              ae_preset preset, const float *train, size_t n_train,
                              const char *model_path)
{
    char log_name[64];
    double t0;
    ex_fit_args fit;
    ex_epoch_log log = {NULL};
    ae_model *m = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    ae_status st;
    int rc = EX_ERR;

    st = ae_preset_build(&m, preset, a->seed);
    if (ex_failed(st, "building the model")) goto done;
    ex_fit_args_init(&fit, preset == AE_PRESET_CONV ? 32 : 128);
    snprintf(log_name, sizeof log_name, "%s_autoencoder", ae_preset_name(preset));
    st = ex_tutorial_config(&cfg, a->epochs, a->seed, &fit, &log);
    if (st == AE_OK) st = ae_history_create(&h);
    if (ex_failed(st, "training settings")) goto done;
    if (ex_epoch_log_open(&log, a->out_dir, log_name) != EX_OK) goto done;
    ex_print_fit_plan(cfg, n_train);
    t0 = ex_now();
    st = ae_train_fit(m, cfg, train, NULL, n_train, h);
    *seconds = ex_now() - t0;
    *epochs = ae_history_epochs(h);
    if (ex_epoch_log_close(&log) != EX_OK || ex_failed(st, "training")) goto done;
    ex_print_fit_outcome(h);
    if (ex_failed(ae_model_save(m, model_path), "saving the model")) goto done;
    printf("saved the model to %s\n", model_path);
    *out = m;
    m = NULL;
    rc = EX_OK;
done:
    ex_epoch_log_close(&log);
    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_model_free(m);
    return rc;
}

/* Prints query q's k nearest neighbours (indices, distances, categories) and
 * draws them into OUT/retrieval_<category>_<q>.png. */
static int show_query(const ex_args *a, const ae_dataset *ds, size_t q, size_t k,
                      const int64_t *nbr, const float *dists)
{
    const float *train, *test;
    const int32_t *train_labels, *test_labels;
    const char *category;
    char name[64], png[1024];
    ae_dataset_train(&train, &train_labels, NULL, ds);
    ae_dataset_test(&test, &test_labels, NULL, ds);
    category = ae_dataset_category_name(ds, (size_t)test_labels[q]);
    printf("\nquery %zu (%s): the %zu nearest training drawings\n  indices:   ", q, category, k);
    for (size_t i = 0; i < k; i++) printf(" %6lld", (long long)nbr[i]);
    printf("\n  distances: ");
    for (size_t i = 0; i < k; i++) printf(" %6.3f", dists[i]);
    printf("\n  categories:");
    for (size_t i = 0; i < k; i++)
        printf(" %s%s", ae_dataset_category_name(ds, (size_t)train_labels[nbr[i]]),
               i + 1 < k ? "," : "\n");
    snprintf(name, sizeof name, "retrieval_%s_%zu.png", category, q);
    for (char *p = name; *p; p++)
        if (*p == ' ') *p = '_';
    if (ex_path(png, sizeof png, a->out_dir, name) != EX_OK) return EX_ERR;
    return draw_neighbours(ds, train, train_labels, test + q * 784, test_labels[q], nbr, dists, k,
                           png);
}

int main(int argc, char **argv)
{
    ex_args a;
    const char *backend_name = "balltree", *model_path = NULL, *export_dir = NULL;
    const char *preset_name = "conv", *compare_path = NULL;
    long k = 10, leaf_size = 40, shown = 3, pca_components = -1;
    const ex_option extra[] = {
        {"backend", EX_OPT_STRING, &backend_name, 0, 0, "NAME", "balltree, brute or hnsw"},
        {"k", EX_OPT_INT, &k, 1, METRIC_K, "N", "neighbours shown per query"},
        {"leaf-size", EX_OPT_INT, &leaf_size, 1, 1 << 20, "N", "ball tree leaf size"},
        {"model", EX_OPT_STRING, &model_path, 0, 0, "FILE",
         "trained model to load (default OUT/conv_autoencoder.aem, trained and saved there "
         "if absent)"},
        {"preset", EX_OPT_STRING, &preset_name, 0, 0, "NAME",
         "model to train when none is at hand: conv (the tutorial's, default), or the "
         "retrieval-grade conv_bn8 / conv_bn16 (32-float codes)"},
        {"compare", EX_OPT_STRING, &compare_path, 0, 0, "FILE",
         "another trained model (e.g. OUT/conv_autoencoder.aem) scored in the same run"},
        {"show", EX_OPT_INT, &shown, 0, 10, "N", "queries to print and draw (a clock first)"},
        {"pca", EX_OPT_INT, &pca_components, -1, 784, "N",
         "PCA baseline with N components (default -1: the code size; 0: none)"},
        {"export-codes", EX_OPT_STRING, &export_dir, 0, 0, "DIR",
         "also write the codes as DIR/train_codes.npy and DIR/test_codes.npy (float32)"},
        {NULL, EX_OPT_INT, NULL, 0, 0, NULL, NULL},
    };
    ae_index_backend backend;
    ae_preset preset;
    ae_dataset *ds = NULL;
    ae_model *m = NULL;
    ae_encoder *enc = NULL;
    ae_index *idx = NULL;
    const float *train, *test;
    const int32_t *train_labels, *test_labels;
    size_t n_train, n_test, n_cat, code, clock = 0;
    float *train_codes = NULL, *test_codes = NULL, *dists = NULL;
    int64_t *nbr = NULL;
    int32_t *nbr_labels = NULL;
    char default_model[1024], what[64];
    retrieval_scores codes_s, pixels_s, pca_s;
    double build_s, query_s, pix_build_s, pix_query_s, t0, encode_s, model_bce = 0;
    double train_s = -1; /* when this run trained the model */
    size_t trained_epochs = 0;
    pca_result pca = {0};
    compared_model other = {0};
    ae_status st;
    int rc, model_given;

    ex_args_defaults(&a);
    a.epochs = 60; /* when it trains the model: conv_autoencoder's cap */
    rc = ex_args_parse(&a, extra, argc, argv,
                       "Tutorial section 4: image retrieval with the convolutional encoder's codes", 1);
    if (rc != EX_OK) return rc == EX_HELP ? 0 : 2;
    if (parse_backend(backend_name, &backend) != EX_OK) return 2;
    if (ae_preset_from_name(&preset, preset_name) != AE_OK) {
        fprintf(stderr, "error: --preset '%s': not a preset (conv, conv_bn8, conv_bn16, ...)\n",
                preset_name);
        return 2;
    }
    if (ex_mkdir_p(a.out_dir) != EX_OK) return 1;
    rc = 1;

    /* the trained autoencoder: --model FILE must load; the default file is
     * trained and saved first when it is missing or unusable */
    model_given = model_path != NULL;
    if (!model_given) {
        if (ex_pathf(default_model, sizeof default_model, "%s/%s_autoencoder.aem", a.out_dir,
                     ae_preset_name(preset)) != EX_OK)
            return 1;
        model_path = default_model;
    }
    st = ae_model_load(&m, model_path);
    if (model_given && ex_failed(st, "loading the model")) return 1;
    if (st == AE_OK)
        printf("model: %s (%zu parameters)\n", model_path, ae_model_param_count(m));
    else
        printf("no usable model at %s (%s): training the %s autoencoder first\n",
               model_path, ae_last_error(), ae_preset_name(preset));

    /* the data: the same split as the training examples (same --seed, --per-category) */
    t0 = ex_now();
    st = ae_dataset_load(&ds, a.data_dir, a.per_category, AE_DATASET_DEFAULT_TEST_FRACTION,
                         a.seed);
    if (ex_failed(st, "loading the data")) goto done;
    ex_print_dataset(ds, &a, ex_now() - t0);
    ae_dataset_train(&train, &train_labels, &n_train, ds);
    ae_dataset_test(&test, &test_labels, &n_test, ds);
    n_cat = ae_dataset_num_categories(ds);
    if (n_cat > 64 || n_train < METRIC_K) {
        fprintf(stderr, "error: need at most 64 categories and at least %d training drawings\n", METRIC_K);
        goto done;
    }
    if (!m) {
        if (train_preset_model(&m, &train_s, &trained_epochs, &a, preset, train, n_train, model_path) != EX_OK)
            goto done;
        printf("model: %s (%zu parameters)\n", model_path, ae_model_param_count(m));
    }

    /* encode: the encoder is the model up to the code layer; its 4x4x8 output
     * is flattened to 128 floats (NHWC order) per drawing */
    st = ae_encoder_create(&enc, m);
    if (ex_failed(st, "encoder")) goto done;
    code = ae_encoder_code_size(enc);
    train_codes = malloc(n_train * code * sizeof *train_codes);
    test_codes = malloc(n_test * code * sizeof *test_codes);
    nbr = malloc(n_test * METRIC_K * sizeof *nbr);
    nbr_labels = malloc(n_test * METRIC_K * sizeof *nbr_labels);
    dists = malloc(n_test * METRIC_K * sizeof *dists);
    if (!train_codes || !test_codes || !nbr || !nbr_labels || !dists) {
        fprintf(stderr, "error: out of memory for the codes and neighbours\n");
        goto done;
    }
    t0 = ex_now();
    st = ae_encoder_encode(enc, train, n_train, train_codes, n_train * code);
    if (st == AE_OK) st = ae_encoder_encode(enc, test, n_test, test_codes, n_test * code);
    if (ex_failed(st, "encode")) goto done;
    encode_s = ex_now() - t0;
    printf("encoded %zu + %zu drawings into %zu-float codes (%zux%zux%zu flattened) in %.2f s\n",
           n_train, n_test, code, ae_encoder_code_dim(enc, 0), ae_encoder_code_dim(enc, 1),
           ae_encoder_code_dim(enc, 2), encode_s);

    if (export_dir) {
        char p1[1024], p2[1024];
        size_t d1[2] = {n_train, code}, d2[2] = {n_test, code};
        if (ex_mkdir_p(export_dir) != EX_OK ||
            ex_path(p1, sizeof p1, export_dir, "train_codes.npy") != EX_OK ||
            ex_path(p2, sizeof p2, export_dir, "test_codes.npy") != EX_OK)
            goto done;
        st = ae_npy_save_f32(p1, train_codes, 2, d1);
        if (st == AE_OK) st = ae_npy_save_f32(p2, test_codes, 2, d2);
        if (ex_failed(st, "exporting codes")) goto done;
        printf("wrote %s and %s\n", p1, p2);
    }

    /* the codes in the chosen index, every held-out drawing as a query */
    if (index_and_query(backend, code, train_codes, n_train, train_labels, test_codes, n_test,
                        leaf_size, nbr, dists, &build_s, &query_s, &idx) != EX_OK)
        goto done;
    printf("%s index over %zu codes: built in %.2f s, %zu queries (k = %d) in %.2f s "
           "(%.3f ms per query)\n", backend_name, n_train, build_s, n_test, METRIC_K, query_s,
           1e3 * query_s / (double)n_test);
    for (size_t i = 0; i < n_test * METRIC_K; i++) nbr_labels[i] = train_labels[nbr[i]];
    score(nbr_labels, test_labels, n_test, n_cat, &codes_s);

    /* a few queries as the tutorial shows them: the first clock, then the
     * first drawing of every third category after it */
    for (size_t c = 0; c < n_cat; c++)
        if (strcmp(ae_dataset_category_name(ds, c), "clock") == 0) clock = c;
    for (long s = 0; s < shown; s++) {
        size_t want = (clock + (size_t)s * 3) % n_cat, q = 0;
        while (q < n_test && (size_t)test_labels[q] != want) q++;
        if (q == n_test) continue;
        if (show_query(&a, ds, q, (size_t)k, nbr + q * METRIC_K, dists + q * METRIC_K) != EX_OK)
            goto done;
    }

    /* raw pixels in the same run (exact brute force: same neighbours as a ball tree) */
    if (index_and_query(AE_INDEX_BRUTE, 784, train, n_train, train_labels, test, n_test, leaf_size,
                        nbr, dists, &pix_build_s, &pix_query_s, NULL) != EX_OK)
        goto done;
    for (size_t i = 0; i < n_test * METRIC_K; i++) nbr_labels[i] = train_labels[nbr[i]];
    score(nbr_labels, test_labels, n_test, n_cat, &pixels_s);

    /* the linear baseline with the same code size, and both reconstructions' BCE */
    st = ae_model_evaluate(&model_bce, m, AE_LOSS_BCE, test, test, n_test);
    if (ex_failed(st, "evaluating the model")) goto done;
    if (pca_components < 0) pca_components = (long)(code < 784 ? code : 784);
    if (pca_components > 0) {
        if (pca_baseline(&pca, (size_t)pca_components, train, n_train, test, n_test) != EX_OK)
            goto done;
        if (index_and_query(AE_INDEX_BRUTE, (size_t)pca_components, pca.train_codes, n_train,
                            train_labels, pca.test_codes, n_test, leaf_size, nbr, dists,
                            &pix_build_s, &pix_query_s, NULL) != EX_OK)
            goto done;
        for (size_t i = 0; i < n_test * METRIC_K; i++) nbr_labels[i] = train_labels[nbr[i]];
        score(nbr_labels, test_labels, n_test, n_cat, &pca_s);
    }

    if (compare_path && compare_model(&other, compare_path, ds, nbr, dists, nbr_labels) != EX_OK)
        goto done;

    printf("\nretrieval quality over %zu held-out queries (%zu indexed):\n", n_test, n_train);
    snprintf(what, sizeof what, "model codes (%zu-d)", code);
    print_scores(what, &codes_s, ds);
    if (compare_path) {
        snprintf(what, sizeof what, "--compare (%zu-d)", other.code);
        print_scores(what, &other.s, ds);
    }
    print_scores("raw pixels (784-d)", &pixels_s, ds);
    if (pca_components > 0) {
        snprintf(what, sizeof what, "PCA-%ld codes", pca_components);
        print_scores(what, &pca_s, ds);
    }
    printf("\n| representation | floats | test BCE | precision@10 |\n|---|---|---|---|\n");
    printf("| autoencoder (%zu parameters) | %zu | %.4f | %.4f |\n", ae_model_param_count(m), code,
           model_bce, codes_s.p10);
    if (compare_path)
        printf("| %s (%zu parameters) | %zu | %.4f | %.4f |\n", compare_path, other.params,
               other.code, other.test_bce, other.s.p10);
    if (pca_components > 0)
        printf("| PCA-%ld (%.1f%% of the variance) | %ld | %.4f | %.4f |\n", pca_components,
               100 * pca.explained, pca_components, pca.test_bce, pca_s.p10);
    printf("| raw pixels | 784 | - | %.4f |\n\n", pixels_s.p10);
    printf("{\"example\": \"image_retrieval\", \"backend\": \"%s\", \"indexed\": %zu, \"queries\": %zu, "
           "\"code_floats\": %zu, \"test_bce\": %.4f, "
           "\"codes\": {\"precision_at_1\": %.4f, \"precision_at_10\": %.4f, \"precision_at_100\": %.4f, "
           "\"map_at_100\": %.4f}, \"pixels\": {\"precision_at_1\": %.4f, \"precision_at_10\": %.4f, "
           "\"precision_at_100\": %.4f, \"map_at_100\": %.4f}, ",
           backend_name, n_train, n_test, code, model_bce, codes_s.p1, codes_s.p10, codes_s.p100,
           codes_s.map100, pixels_s.p1, pixels_s.p10, pixels_s.p100, pixels_s.map100);
    if (pca_components > 0)
        printf("\"pca\": {\"components\": %ld, \"test_bce\": %.4f, \"precision_at_1\": %.4f, "
               "\"precision_at_10\": %.4f, \"precision_at_100\": %.4f, \"map_at_100\": %.4f}, ",
               pca_components, pca.test_bce, pca_s.p1, pca_s.p10, pca_s.p100, pca_s.map100);
    if (compare_path)
        printf("\"compare\": {\"code_floats\": %zu, \"test_bce\": %.4f, \"precision_at_1\": %.4f, "
               "\"precision_at_10\": %.4f, \"precision_at_100\": %.4f, \"map_at_100\": %.4f}, ",
               other.code, other.test_bce, other.s.p1, other.s.p10, other.s.p100, other.s.map100);
    if (train_s >= 0)
        printf("\"trained\": {\"preset\": \"%s\", \"epochs\": %zu, \"seconds\": %.1f}, ",
               ae_preset_name(preset), trained_epochs, train_s);
    printf("\"build_seconds\": %.3f, \"query_ms\": %.4f}\n", build_s,
           1e3 * query_s / (double)n_test);
    rc = 0;
done:
    free(pca.train_codes);
    free(pca.test_codes);
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
