/*
 * Old-consumer ABI test (tests/cmake/abi.cmake, ctest `abi_old_consumer`,
 * label `abi`): this program is compiled against the snapshot of the 0.1.0
 * public headers in tests/abi/0.1.0/include/ -- never against include/ -- and
 * is linked to and run with the newly built libautoenc.so. It stands for an
 * application built against the 0.1.0 release: if a later library changes a
 * signature, a pinned enum value or a behaviour 0.1.0 documented, this
 * program breaks.
 *
 * It uses a cross-section of the API and checks results: version, status
 * codes, the allocator hook (which also proves every allocation is freed),
 * the builder, the three reference models, predict, a tiny fit with a
 * history and a stopping callback, evaluate, an encoder, .npy files, a
 * dataset, brute-force, ball-tree and HNSW indexes with search, and
 * model/index save and load in the work directory given as argv[1].
 *
 * Do not update this file or the snapshot for a new release: add a new
 * snapshot directory (tests/abi/<version>/) beside it instead.
 */
#define _POSIX_C_SOURCE 200809L
#include <autoenc/autoenc.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define IN 16   /* features per row of the tiny model */
#define CODE 4  /* code size of the tiny model */
#define ROWS 64 /* training rows */
#define K 3     /* neighbours per query */
#define NQ 8    /* queries */

static int failures;

#define CHECK(cond) check((cond), #cond, __LINE__)

static int check(int ok, const char *what, int line)
{
    if (!ok) {
        fprintf(stderr, "old_consumer.c:%d: FAIL: %s (last error: %s)\n", line, what,
                ae_last_error());
        failures++;
    }
    return ok;
}

/* ---- allocator hook: counts live blocks ------------------------------------ */
static long g_live;
static long g_calls;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    long *calls = (long *)ud;
    (void)old_size;
    (*calls)++;
    if (new_size == 0) {
        if (ptr) g_live--;
        free(ptr);
        return NULL;
    }
    if (!ptr) {
        void *p = malloc(new_size);
        if (p) g_live++;
        return p;
    }
    return realloc(ptr, new_size);
}

/* ---- training callback: stops after the second epoch ------------------------ */
struct cb_state {
    int epoch_ends;
    int batch_ends;
};

static int stop_after_two(ae_train_event event, size_t epoch, size_t step, size_t steps, double loss,
                          const ae_model *model, const ae_history *history, void *user)
{
    (void)model;
    struct cb_state *s = (struct cb_state *)user;
    (void)step;
    (void)steps;
    (void)loss;
    if (event == AE_EVENT_BATCH_END) s->batch_ends++;
    if (event == AE_EVENT_EPOCH_END) {
        s->epoch_ends++;
        if (ae_history_epochs(history) != epoch + 1) s->epoch_ends += 1000; /* flag */
        return epoch >= 1; /* stop at the end of epoch 1 (the second) */
    }
    return 0;
}

static void path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "old_consumer: path too long: %s/%s\n", dir, name);
        exit(1);
    }
}

/* Row r of the tiny data set: a bump of width 4 at position r % 13 on a
 * faint ramp, all values in (0, 1) and every row different. */
static void make_rows(float *x)
{
    size_t r, j;
    for (r = 0; r < ROWS; r++)
        for (j = 0; j < IN; j++) {
            size_t c = r % 13;
            float v = 0.05f + 0.01f * (float)((r * 7 + j) % 5);
            if (j >= c && j < c + 4) v = 0.9f - 0.002f * (float)r;
            x[r * IN + j] = v;
        }
}

static void test_version_and_status(void)
{
    const char *v = ae_version();
    unsigned major = 0;
    CHECK(v != NULL && sscanf(v, "%u.", &major) == 1);
    /* same major (the SONAME), never older than the headers we were built with */
    CHECK(major == AE_VERSION_MAJOR);
    CHECK(ae_version_number() / 10000u == AE_VERSION_MAJOR);
    CHECK(ae_version_number() >= AE_VERSION_NUMBER);
    /* pinned status values and their text */
    CHECK(AE_OK == 0 && AE_STOPPED == 1 && AE_ERR_SHAPE == -3 && AE_ERR_INTERNAL == -12);
    CHECK(!ae_is_error(AE_OK) && !ae_is_error(AE_STOPPED) && ae_is_error(AE_ERR_IO));
    CHECK(ae_status_string(AE_ERR_NOMEM) != NULL && ae_status_string(AE_ERR_NOMEM)[0] != '\0');
    CHECK(ae_status_string(-12345) != NULL);
}

static void test_builder_and_presets(void)
{
    ae_builder *b = NULL;
    ae_model *m = NULL;
    size_t in1[1] = {IN};
    size_t idx = 99;
    char summary[4096];
    size_t needed = 0;
    static float x[784], y[784];
    size_t i;

    CHECK(ae_builder_create(&b, 1, in1) == AE_OK);
    CHECK(ae_builder_dense(b, CODE, AE_ACT_RELU) == AE_OK);
    CHECK(ae_builder_mark_code(b) == AE_OK);
    CHECK(ae_builder_dense(b, IN, AE_ACT_SIGMOID) == AE_OK);
    /* a convolution on a rank-1 input is refused with AE_ERR_SHAPE, not added */
    CHECK(ae_builder_conv2d(b, 8, 3, AE_PAD_SAME, AE_ACT_RELU) == AE_ERR_SHAPE);
    CHECK(ae_builder_errmsg(b)[0] != '\0');
    CHECK(ae_builder_layer_count(b) == 2);
    CHECK(ae_builder_build(&m, b, 7) == AE_OK);
    ae_builder_free(b);
    if (!m) return;
    CHECK(ae_model_layer_count(m) == 2);
    CHECK(ae_model_param_count(m) == (IN * CODE + CODE) + (CODE * IN + IN));
    CHECK(ae_model_input_size(m) == IN && ae_model_output_size(m) == IN);
    CHECK(ae_model_code_layer(&idx, m) == AE_OK && idx == 0);
    CHECK(ae_layer_kind_of(ae_model_layer(m, 0)) == AE_LAYER_DENSE);
    CHECK(strcmp(ae_layer_kind_name(AE_LAYER_CONV2D), "conv2d") == 0);
    CHECK(ae_layer_activation(ae_model_layer(m, 1)) == AE_ACT_SIGMOID);
    CHECK(ae_model_summary(m, summary, sizeof summary, &needed) == AE_OK);
    CHECK(needed > 1 && strlen(summary) + 1 == needed);
    ae_model_free(m);
    m = NULL;

    /* the reference models, by their documented parameter counts */
    CHECK(ae_preset_build(&m, AE_PRESET_SIMPLE, 42) == AE_OK && ae_model_param_count(m) == 50992);
    ae_model_free(m);
    m = NULL;
    CHECK(ae_preset_build(&m, AE_PRESET_DEEP, 42) == AE_OK && ae_model_param_count(m) == 222384);
    ae_model_free(m);
    m = NULL;
    CHECK(ae_preset_build(&m, AE_PRESET_CONV, 42) == AE_OK && ae_model_param_count(m) == 4385);
    if (m) {
        CHECK(ae_model_input_rank(m) == 3 && ae_model_input_dim(m, 0) == 28);
        CHECK(ae_model_set_threads(m, 1) == AE_OK && ae_model_get_threads(m) == 1);
        for (i = 0; i < 784; i++) x[i] = (float)(i % 28 == i / 28);
        CHECK(ae_model_predict(m, x, 1, y, 784) == AE_OK);
        for (i = 0; i < 784; i++)
            if (!(y[i] > 0.0f && y[i] < 1.0f)) break;
        CHECK(i == 784); /* sigmoid output */
        CHECK(ae_is_error(ae_model_predict(m, x, 1, y, 783))); /* short buffer */
    }
    ae_model_free(m);
}

/* Trains the tiny model, then encoder, indexes, files. */
static void test_train_encode_search_files(const char *dir)
{
    static float x[ROWS * IN], y[ROWS * IN], y2[ROWS * IN], codes[ROWS * CODE];
    static float dist[NQ * K], dist2[NQ * K];
    static int64_t ids[NQ * K], ids2[NQ * K];
    static int32_t labels[ROWS];
    ae_builder *b = NULL;
    ae_model *m = NULL, *loaded = NULL, *missing = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    ae_encoder *enc = NULL;
    ae_index *brute = NULL, *tree = NULL, *hnsw = NULL, *reloaded = NULL;
    struct cb_state cb = {0, 0};
    size_t in1[1] = {IN};
    double first = 0, last = 0, before = 0, after = 0;
    int64_t lo = 0, hi = 0, v = 0;
    size_t i, best = 0;
    char path[1024];
    int32_t lab = -1;

    make_rows(x);
    for (i = 0; i < ROWS; i++) labels[i] = (int32_t)(i % 3);

    CHECK(ae_builder_create(&b, 1, in1) == AE_OK);
    CHECK(ae_builder_dense(b, CODE, AE_ACT_SIGMOID) == AE_OK);
    CHECK(ae_builder_mark_code(b) == AE_OK);
    CHECK(ae_builder_dense(b, IN, AE_ACT_SIGMOID) == AE_OK);
    CHECK(ae_builder_build(&m, b, 3) == AE_OK);
    ae_builder_free(b);
    if (!m) return;

    /* ---- a tiny fit ---- */
    CHECK(ae_train_param_int_bounds(&lo, &hi, AE_TRAIN_BATCH_SIZE) == AE_OK);
    CHECK(lo >= 1 && hi >= 64);
    CHECK(ae_train_config_create(&cfg) == AE_OK);
    CHECK(ae_train_config_get_int(&v, cfg, AE_TRAIN_EPOCHS) == AE_OK && v == 10); /* default */
    CHECK(ae_train_config_set_int(cfg, AE_TRAIN_OPTIMIZER, AE_OPT_ADAM) == AE_OK);
    CHECK(ae_train_config_set_int(cfg, AE_TRAIN_LOSS, AE_LOSS_BCE) == AE_OK);
    CHECK(ae_train_config_set_int(cfg, AE_TRAIN_EPOCHS, 40) == AE_OK);
    CHECK(ae_train_config_set_int(cfg, AE_TRAIN_BATCH_SIZE, 16) == AE_OK);
    CHECK(ae_train_config_set_int(cfg, AE_TRAIN_SEED, 11) == AE_OK);
    CHECK(ae_train_config_set_int(cfg, AE_TRAIN_THREADS, 1) == AE_OK);
    CHECK(ae_train_config_set_double(cfg, AE_TRAIN_LEARNING_RATE, 0.02) == AE_OK);
    CHECK(ae_train_config_set_double(cfg, AE_TRAIN_VALIDATION_SPLIT, 0.25) == AE_OK);
    CHECK(ae_train_config_set_int(cfg, AE_TRAIN_BATCH_SIZE, 0) == AE_ERR_RANGE);
    CHECK(ae_history_create(&h) == AE_OK);
    CHECK(ae_model_evaluate(&before, m, AE_LOSS_BCE, x, NULL, ROWS) == AE_OK);
    CHECK(ae_train_fit(m, cfg, x, NULL, ROWS, h) == AE_OK);
    CHECK(ae_history_epochs(h) == 40);
    CHECK(ae_history_get(&first, h, 0, AE_HIST_TRAIN_LOSS) == AE_OK);
    CHECK(ae_history_get(&last, h, 39, AE_HIST_TRAIN_LOSS) == AE_OK);
    CHECK(isfinite(first) && isfinite(last) && last < first);
    CHECK(ae_history_get(&last, h, 39, AE_HIST_VAL_LOSS) == AE_OK && isfinite(last));
    CHECK(ae_history_best_epoch(&best, h) == AE_OK && best < 40);
    CHECK(ae_model_evaluate(&after, m, AE_LOSS_BCE, x, NULL, ROWS) == AE_OK);
    CHECK(after < before);

    /* a callback that stops: AE_STOPPED, not an error, two epochs recorded */
    CHECK(ae_train_config_set_callback(cfg, stop_after_two, &cb) == AE_OK);
    CHECK(ae_train_fit(m, cfg, x, NULL, ROWS, h) == AE_STOPPED);
    CHECK(ae_history_epochs(h) == 2 && cb.epoch_ends == 2 && cb.batch_ends > 0);

    /* ---- predict, encoder ---- */
    CHECK(ae_model_predict(m, x, ROWS, y, ROWS * IN) == AE_OK);
    CHECK(ae_encoder_create(&enc, m) == AE_OK);
    if (enc) {
        CHECK(ae_encoder_input_size(enc) == IN && ae_encoder_code_size(enc) == CODE);
        CHECK(ae_encoder_code_rank(enc) == 1 && ae_encoder_code_dim(enc, 0) == CODE);
        CHECK(ae_model_layer_count(ae_encoder_model(enc)) == 1);
        CHECK(ae_encoder_set_threads(enc, 1) == AE_OK);
        CHECK(ae_encoder_encode(enc, x, ROWS, codes, ROWS * CODE) == AE_OK);
        CHECK(ae_encoder_encode(enc, x, ROWS, codes, ROWS * CODE - 1) != AE_OK);
    }

    /* ---- indexes: three backends agree on exact neighbours' distances ---- */
    CHECK(ae_index_create(&brute, AE_INDEX_BRUTE, AE_INDEX_L2, CODE) == AE_OK);
    CHECK(ae_index_build(brute, codes, ROWS, NULL, labels) == AE_OK);
    CHECK(ae_index_count(brute) == ROWS && ae_index_dim(brute) == CODE);
    CHECK(ae_index_search(brute, codes, NQ, K, 0, dist, ids) == AE_OK);
    for (i = 0; i < NQ; i++) {
        CHECK(dist[i * K] < 1e-3f);                  /* a query finds itself ... */
        CHECK(dist[i * K] <= dist[i * K + 1] && dist[i * K + 1] <= dist[i * K + 2]);
    }
    CHECK(ae_index_label(&lab, brute, ids[0]) == AE_OK && lab == labels[ids[0]]);
    CHECK(ae_index_check_dim(brute, CODE + 1) == AE_ERR_SHAPE);

    CHECK(ae_index_create(&tree, AE_INDEX_BALLTREE, AE_INDEX_L2, CODE) == AE_OK);
    CHECK(ae_index_set_int(tree, AE_INDEX_LEAF_SIZE, 4) == AE_OK);
    CHECK(ae_index_build(tree, codes, ROWS, NULL, NULL) == AE_OK);
    CHECK(ae_index_search(tree, codes, NQ, K, 0, dist2, ids2) == AE_OK);
    for (i = 0; i < NQ * K; i++) CHECK(fabsf(dist[i] - dist2[i]) <= 1e-4f);

    CHECK(ae_index_create(&hnsw, AE_INDEX_HNSW, AE_INDEX_L2, CODE) == AE_OK);
    CHECK(ae_index_set_int(hnsw, AE_INDEX_HNSW_M, 8) == AE_OK);
    CHECK(ae_index_set_int(hnsw, AE_INDEX_SEED, 5) == AE_OK);
    CHECK(ae_index_build(hnsw, codes, ROWS, NULL, NULL) == AE_OK);
    CHECK(ae_index_backend_of(hnsw) == AE_INDEX_HNSW && ae_index_metric_of(hnsw) == AE_INDEX_L2);
    /* ef_search >= ROWS visits everything: as exact as brute force */
    CHECK(ae_index_search(hnsw, codes, NQ, K, ROWS, dist2, ids2) == AE_OK);
    for (i = 0; i < NQ * K; i++) CHECK(fabsf(dist[i] - dist2[i]) <= 1e-4f);

    /* ---- files: model and index round trips in the work directory ---- */
    path_join(path, sizeof path, dir, "old_consumer.aem");
    CHECK(ae_model_save(m, path) == AE_OK);
    CHECK(ae_model_load(&loaded, path) == AE_OK);
    if (loaded) {
        CHECK(ae_model_predict(loaded, x, ROWS, y2, ROWS * IN) == AE_OK);
        CHECK(memcmp(y, y2, sizeof y) == 0); /* bit-identical, as io.h promises */
    }
    path_join(path, sizeof path, dir, "old_consumer.aei");
    CHECK(ae_index_save(brute, path) == AE_OK);
    CHECK(ae_index_load(&reloaded, path) == AE_OK);
    if (reloaded) {
        CHECK(ae_index_search(reloaded, codes, NQ, K, 0, dist2, ids2) == AE_OK);
        CHECK(memcmp(dist, dist2, sizeof dist) == 0 && memcmp(ids, ids2, sizeof ids) == 0);
        CHECK(ae_index_has_labels(reloaded));
    }
    path_join(path, sizeof path, dir, "does-not-exist.aem");
    remove(path);
    CHECK(ae_model_load(&missing, path) == AE_ERR_IO && missing == NULL);

    ae_index_free(reloaded);
    ae_index_free(hnsw);
    ae_index_free(tree);
    ae_index_free(brute);
    ae_encoder_free(enc);
    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_model_free(loaded);
    ae_model_free(m);
}

/* .npy files, tensors and a two-category data set. */
static void test_npy_and_dataset(const char *dir)
{
    static float a[20 * 6], b[10 * 6];
    size_t dims[2] = {20, 6}, got[4] = {0};
    ae_npy_dtype dtype = AE_NPY_U8;
    int rank = 0;
    ae_tensor *t = NULL;
    ae_dataset *ds = NULL;
    const float *rows = NULL;
    const int32_t *labels = NULL;
    size_t n_train = 0, n_test = 0, i;
    char sub[1024], path[1024];

    for (i = 0; i < 20 * 6; i++) a[i] = (float)i / 120.0f;
    for (i = 0; i < 10 * 6; i++) b[i] = 1.0f - (float)i / 60.0f;
    path_join(sub, sizeof sub, dir, "old_consumer_data");
    mkdir(sub, 0777);
    path_join(path, sizeof path, sub, "alpha.npy");
    CHECK(ae_npy_save_f32(path, a, 2, dims) == AE_OK);
    CHECK(ae_npy_info(&dtype, &rank, got, path) == AE_OK);
    CHECK(dtype == AE_NPY_F32 && rank == 2 && got[0] == 20 && got[1] == 6);
    CHECK(ae_npy_load(&t, path, AE_NPY_U8_UNIT) == AE_OK);
    if (t) {
        CHECK(ae_tensor_rank(t) == 2 && ae_tensor_dim(t, 1) == 6 && ae_tensor_size(t) == 120);
        CHECK(memcmp(ae_tensor_data_const(t), a, sizeof a) == 0);
    }
    ae_tensor_free(t);
    dims[0] = 10;
    path_join(path, sizeof path, sub, "beta_gamma.npy");
    CHECK(ae_npy_save_f32(path, b, 2, dims) == AE_OK);

    CHECK(ae_dataset_load(&ds, sub, 0, 0.2, 9) == AE_OK);
    if (!ds) return;
    CHECK(ae_dataset_num_categories(ds) == 2 && ae_dataset_row_width(ds) == 6);
    CHECK(strcmp(ae_dataset_category_name(ds, 1), "beta gamma") == 0);
    CHECK(ae_dataset_train(&rows, &labels, &n_train, ds) == AE_OK);
    CHECK(ae_dataset_test(NULL, NULL, &n_test, ds) == AE_OK);
    CHECK(n_train + n_test == 30 && n_test == 4 + 2);
    for (i = 0; i < n_train; i++) CHECK(labels[i] == 0 || labels[i] == 1);
    ae_dataset_free(ds);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    ae_alloc_fn fn = NULL;
    void *ud = NULL;

    /* Route every library allocation through a counting hook: at the end,
     * restoring the default must succeed, i.e. nothing is left allocated. */
    CHECK(ae_set_allocator(counting_alloc, &g_calls) == AE_OK);
    ae_get_allocator(&fn, &ud);
    CHECK(fn == counting_alloc && ud == &g_calls);

    test_version_and_status();
    test_builder_and_presets();
    test_train_encode_search_files(dir);
    test_npy_and_dataset(dir);

    CHECK(g_calls > 0 && g_live == 0);
    CHECK(ae_set_allocator(NULL, NULL) == AE_OK);

    if (failures) {
        fprintf(stderr, "old_consumer: %d failure(s) against libautoenc %s\n", failures,
                ae_version());
        return 1;
    }
    printf("old_consumer: built with the %s headers, runs against libautoenc %s: ok\n",
           AE_VERSION_STRING, ae_version());
    return 0;
}
