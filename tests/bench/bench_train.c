/* Training / encoding benchmark, libautoenc side (tests/bench/run_bench_train.sh
 * drives it next to tests/bench/bench_train.py, the PyTorch side).
 *
 *   bench_train gemm   [--size N] [--threads LIST] [--reps R]
 *       float32 GEMM rate of OpenBLAS (cblas_sgemm N^3, default 2048) at each
 *       thread count: the machine's peak, measured in the same run.
 *   bench_train flops
 *       FLOPs per image of the reference models, counted from their
 *       layers: 2 * MACs forward, x3 for forward + backward; and 2 * MACs of
 *       the encoder (inference).
 *   bench_train export --data DIR --out WORKDIR [--seed S]
 *       ae_dataset_load(DIR, 10000, 0.10, S) and writes its training rows to
 *       WORKDIR/train.npy and its test rows to WORKDIR/test.npy (float32), so
 *       the PyTorch side trains on exactly the same rows in the same order.
 *   bench_train train --data DIR --model M --threads T --epochs E [--seed S]
 *       ae_train_fit with the tutorial's recipe (Nadam 1e-3, 0.9/0.999, eps 1e-7,
 *       momentum decay 0.004, BCE, batch 64 (simple, deep), 32 (conv) or
 *       128 (conv_bn8, issue 11's retrieval recipe), shuffle, validation
 *       split 0.2 = the last 20% of the rows, no early stopping) and
 *       AE_TRAIN_THREADS = T.
 *   bench_train encode --out WORKDIR --model M [--threads LIST] [--reps R]
 *       all drawings (WORKDIR/train.npy + test.npy from `export`, i.e. every
 *       row of the data set) through the model's encoder (fresh weights) with
 *       one ae_encoder_encode call, the encoder (ae_encoder_set_threads) and
 *       OpenBLAS set to each thread count; best of R calls after a warm-up.
 *   bench_train predict --out WORKDIR --model M [--threads LIST] [--reps R]
 *       the same through the whole model (ae_model_predict): the cost of
 *       the decoder and of checking every output for NaN/inf.
 *
 * Every measurement is one JSON object per line on stdout (the driver parses
 * them); progress goes to stderr. Peak memory is getrusage's ru_maxrss of
 * this process, so the driver runs every configuration in its own process.
 * Models: simple, deep, conv (the tutorial's) and conv_bn8 (the
 * retrieval-grade conv + batch norm + transposed conv model), all through
 * ae_preset_build. Batch norm trains on batch statistics; validation (the
 * history's val loss) and encoding run it in inference (moving averages). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "autoenc/autoenc.h"

/* OpenBLAS extension (the bench links OpenBLAS through the library). */
void openblas_set_num_threads(int num_threads);

#define PER_CATEGORY 10000
#define TEST_FRACTION 0.10
#define VALIDATION_SPLIT 0.2

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double maxrss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- options -------------------------------------------------------------------------- */

typedef struct opts {
    const char *data, *out, *model, *threads;
    long size, reps, epochs;
    uint64_t seed;
} opts;

static int parse(opts *o, int argc, char **argv)
{
    o->data = getenv("AUTOENC_DATA");
    o->out = ".";
    o->model = "simple";
    o->threads = "1,2";
    o->size = 2048;
    o->reps = 3;
    o->epochs = 3;
    o->seed = 42;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_train: %s needs a value\n", k);
            return -1;
        }
        if (!strcmp(k, "--data")) o->data = v;
        else if (!strcmp(k, "--out")) o->out = v;
        else if (!strcmp(k, "--model")) o->model = v;
        else if (!strcmp(k, "--threads")) o->threads = v;
        else if (!strcmp(k, "--size")) o->size = atol(v);
        else if (!strcmp(k, "--reps")) o->reps = atol(v);
        else if (!strcmp(k, "--epochs")) o->epochs = atol(v);
        else if (!strcmp(k, "--seed")) o->seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "bench_train: unknown option %s\n", k);
            return -1;
        }
        i++;
    }
    if (o->size < 64 || o->reps < 1 || o->epochs < 1) {
        fprintf(stderr, "bench_train: bad --size/--reps/--epochs\n");
        return -1;
    }
    return 0;
}

/* "1,2" -> {1, 2}; returns the count. */
static int thread_list(const char *s, int *t, int cap)
{
    int n = 0;
    while (*s && n < cap) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 64) return -1;
        t[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

/* ---- models ----------------------------------------------------------------------------- */

typedef struct model_spec {
    const char *name;
    ae_preset preset;
    long batch;
} model_spec;

static const model_spec MODELS[] = {
    {"simple", AE_PRESET_SIMPLE, 64},
    {"deep", AE_PRESET_DEEP, 64},
    {"conv", AE_PRESET_CONV, 32},
    {"conv_bn8", AE_PRESET_CONV_BN8, 128},
};

static const model_spec *find_model(const char *name)
{
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        if (!strcmp(MODELS[i].name, name)) return &MODELS[i];
    fprintf(stderr, "bench_train: unknown model '%s' (simple, deep, conv, conv_bn8)\n", name);
    return NULL;
}

/* Multiply-accumulates per sample of layers [0, n_layers): a dense or conv
 * layer's bias has one value per output channel (its last output dimension),
 * its kernel the rest, and each output value costs kernel / channels MACs.
 * A transposed convolution (stride s) scatters each of its h*w input pixels
 * through the whole kernel: (output pixels / s^2) * kernel MACs, counting the
 * taps that 'same' cropping drops, as a GEMM + col2im computes them. Batch
 * norm and activations are not counted (a few FLOPs per value). */
static double model_macs(const ae_model *m, size_t n_layers)
{
    double macs = 0;
    for (size_t i = 0; i < n_layers; i++) {
        const ae_layer *l = ae_model_layer(m, i);
        int kind = ae_layer_kind_of(l);
        if (kind == AE_LAYER_DENSE || kind == AE_LAYER_CONV2D) {
            size_t channels = ae_layer_output_dim(l, ae_layer_output_rank(l) - 1);
            size_t kernel = ae_layer_param_count(l) - channels;
            macs += (double)ae_layer_output_size(l) * (double)(kernel / channels);
        } else if (kind == AE_LAYER_CONV2D_TRANSPOSE) {
            size_t channels = ae_layer_output_dim(l, ae_layer_output_rank(l) - 1);
            size_t kernel = ae_layer_param_count(l) - channels, s = ae_layer_stride(l);
            macs += (double)(ae_layer_output_size(l) / channels / (s * s)) * (double)kernel;
        }
    }
    return macs;
}

static int cmd_flops(const opts *o)
{
    (void)o;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        ae_model *m;
        size_t code;
        double all, enc;
        if (ae_preset_build(&m, MODELS[i].preset, 1) != AE_OK || ae_model_code_layer(&code, m) != AE_OK) {
            fprintf(stderr, "bench_train: building %s: %s\n", MODELS[i].name, ae_last_error());
            return 1;
        }
        all = model_macs(m, ae_model_layer_count(m));
        enc = model_macs(m, code + 1);
        printf("{\"kind\": \"flops\", \"model\": \"%s\", \"params\": %zu, \"macs_forward\": %.0f, "
               "\"train_flops_per_image\": %.0f, \"encode_flops_per_image\": %.0f, "
               "\"batch\": %ld}\n",
               MODELS[i].name, ae_model_param_count(m), all, 6.0 * all, 2.0 * enc, MODELS[i].batch);
        ae_model_free(m);
    }
    return 0;
}

/* ---- GEMM peak ------------------------------------------------------------------------------ */

static int cmd_gemm(const opts *o)
{
    const size_t n = (size_t)o->size;
    int t[8], nt = thread_list(o->threads, t, 8);
    float *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b), *c = malloc(n * n * sizeof *c);
    uint32_t s = 12345;
    if (nt < 1 || !a || !b || !c) {
        fprintf(stderr, "bench_train gemm: bad --threads or out of memory\n");
        free(a), free(b), free(c);
        return 1;
    }
    for (size_t i = 0; i < n * n; i++) {
        s = s * 1664525u + 1013904223u;
        a[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
        s = s * 1664525u + 1013904223u;
        b[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    for (int k = 0; k < nt; k++) {
        double best = INFINITY, flops = 2.0 * (double)n * (double)n * (double)n;
        openblas_set_num_threads(t[k]);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a,
                    (int)n, b, (int)n, 0.0f, c, (int)n); /* warm-up */
        for (long r = 0; r < o->reps; r++) {
            double t0 = now(), dt;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f,
                        a, (int)n, b, (int)n, 0.0f, c, (int)n);
            dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("{\"kind\": \"gemm\", \"threads\": %d, \"size\": %zu, \"seconds\": %.4f, "
               "\"gflops\": %.2f}\n", t[k], n, best, flops / best * 1e-9);
        fflush(stdout);
    }
    free(a), free(b), free(c);
    return 0;
}

/* ---- data -------------------------------------------------------------------------------------- */

static ae_dataset *load(const opts *o)
{
    ae_dataset *ds = NULL;
    double t0 = now();
    if (!o->data) {
        fprintf(stderr, "bench_train: no data folder (--data DIR or AUTOENC_DATA)\n");
        return NULL;
    }
    if (ae_dataset_load(&ds, o->data, PER_CATEGORY, TEST_FRACTION, o->seed) != AE_OK) {
        fprintf(stderr, "bench_train: loading %s: %s\n", o->data, ae_last_error());
        return NULL;
    }
    fprintf(stderr, "bench_train: loaded %s in %.2f s\n", o->data, now() - t0);
    return ds;
}

static int cmd_export(const opts *o)
{
    ae_dataset *ds = load(o);
    const float *train, *test;
    size_t n_train, n_test, dims[2], width;
    char path[4096];
    int rc = 1;
    if (!ds) return 1;
    width = ae_dataset_row_width(ds);
    ae_dataset_train(&train, NULL, &n_train, ds);
    ae_dataset_test(&test, NULL, &n_test, ds);
    dims[1] = width;
    dims[0] = n_train;
    snprintf(path, sizeof path, "%s/train.npy", o->out);
    if (ae_npy_save_f32(path, train, 2, dims) != AE_OK) goto fail;
    dims[0] = n_test;
    snprintf(path, sizeof path, "%s/test.npy", o->out);
    if (ae_npy_save_f32(path, test, 2, dims) != AE_OK) goto fail;
    {
        size_t fit = (size_t)floor((double)n_train * (1.0 - VALIDATION_SPLIT));
        printf("{\"kind\": \"export\", \"train_rows\": %zu, \"test_rows\": %zu, \"width\": %zu, "
               "\"fit_rows\": %zu, \"val_rows\": %zu, \"categories\": %zu, \"seed\": %llu}\n",
               n_train, n_test, width, fit, n_train - fit, ae_dataset_num_categories(ds),
               (unsigned long long)o->seed);
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "bench_train: writing %s: %s\n", path, ae_last_error());
    ae_dataset_free(ds);
    return rc;
}

/* ---- training ---------------------------------------------------------------------------------- */

typedef struct progress {
    const char *model;
    int threads;
} progress;

static int on_epoch(ae_train_event event, size_t epoch, size_t step, size_t steps, double loss,
                    const ae_model *model, const ae_history *h, void *user)
{
    (void)model;
    const progress *p = user;
    double val, secs, ips;
    (void)step;
    if (event != AE_EVENT_EPOCH_END) return 0;
    ae_history_get(&val, h, epoch, AE_HIST_VAL_LOSS);
    ae_history_get(&secs, h, epoch, AE_HIST_SECONDS);
    ae_history_get(&ips, h, epoch, AE_HIST_IMAGES_PER_SECOND);
    fprintf(stderr, "  libautoenc %s T=%d epoch %zu: %zu steps %.2f s %.0f img/s loss %.5f val %.5f\n",
            p->model, p->threads, epoch + 1, steps, secs, ips, loss, val);
    return 0;
}

static int cmd_train(const opts *o)
{
    const model_spec *spec = find_model(o->model);
    ae_dataset *ds;
    ae_model *m = NULL;
    ae_train_config *c = NULL;
    ae_history *h = NULL;
    const float *train;
    size_t n_train, epochs;
    ae_status st = AE_OK;
    progress prog;
    int threads = atoi(o->threads), rc = 1;
    if (!spec) return 1;
    if (threads < 1) {
        fprintf(stderr, "bench_train train: --threads takes one count >= 1\n");
        return 1;
    }
    if (!(ds = load(o))) return 1;
    ae_dataset_train(&train, NULL, &n_train, ds);
    prog.model = spec->name;
    prog.threads = threads;
    if (ae_preset_build(&m, spec->preset, o->seed) != AE_OK || ae_train_config_create(&c) != AE_OK ||
        ae_history_create(&h) != AE_OK) {
        fprintf(stderr, "bench_train: %s\n", ae_last_error());
        goto done;
    }
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_OPTIMIZER, AE_OPT_NADAM);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_LOSS, AE_LOSS_BCE);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_EPOCHS, o->epochs);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, spec->batch);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_SHUFFLE, 1);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_SEED, (int64_t)(o->seed & 0xFFFFFFFFFFFFull));
    if (st == AE_OK) st = ae_train_config_set_double(c, AE_TRAIN_LEARNING_RATE, 1e-3);
    if (st == AE_OK) st = ae_train_config_set_double(c, AE_TRAIN_BETA1, 0.9);
    if (st == AE_OK) st = ae_train_config_set_double(c, AE_TRAIN_BETA2, 0.999);
    if (st == AE_OK) st = ae_train_config_set_double(c, AE_TRAIN_EPSILON, 1e-7);
    if (st == AE_OK) st = ae_train_config_set_double(c, AE_TRAIN_MOMENTUM_DECAY, 0.004);
    if (st == AE_OK) st = ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, VALIDATION_SPLIT);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_PATIENCE, 0);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_THREADS, threads);
    if (st == AE_OK) st = ae_train_config_set_callback(c, on_epoch, &prog);
    if (st != AE_OK) {
        fprintf(stderr, "bench_train: training settings: %s\n", ae_last_error());
        goto done;
    }
    if ((st = ae_train_fit(m, c, train, NULL, n_train, h)) != AE_OK) {
        fprintf(stderr, "bench_train: ae_train_fit: %s (%s)\n", ae_model_errmsg(m), ae_status_string(st));
        goto done;
    }
    epochs = ae_history_epochs(h);
    printf("{\"kind\": \"train\", \"side\": \"libautoenc\", \"model\": \"%s\", \"threads\": %d, "
           "\"batch\": %ld, \"fit_rows\": %zu, \"seconds\": [",
           spec->name, threads, spec->batch, (size_t)floor((double)n_train * (1.0 - VALIDATION_SPLIT)));
    for (size_t e = 0; e < epochs; e++) {
        double v;
        ae_history_get(&v, h, e, AE_HIST_SECONDS);
        printf("%s%.4f", e ? ", " : "", v);
    }
    printf("], \"train_loss\": [");
    for (size_t e = 0; e < epochs; e++) {
        double v;
        ae_history_get(&v, h, e, AE_HIST_TRAIN_LOSS);
        printf("%s%.6f", e ? ", " : "", v);
    }
    printf("], \"val_bce\": [");
    for (size_t e = 0; e < epochs; e++) {
        double v;
        ae_history_get(&v, h, e, AE_HIST_VAL_LOSS);
        printf("%s%.6f", e ? ", " : "", v);
    }
    printf("], \"maxrss_mb\": %.1f}\n", maxrss_mb());
    rc = 0;
done:
    ae_history_free(h);
    ae_train_config_free(c);
    ae_model_free(m);
    ae_dataset_free(ds);
    return rc;
}

/* ---- encoding ----------------------------------------------------------------------------------- */

/* The rows to encode: WORKDIR/train.npy then WORKDIR/test.npy (both written
 * by `export` from ae_dataset_load), read straight into one buffer so the
 * process holds the drawings once, as the PyTorch side does. */
static float *load_all_rows(const opts *o, size_t *n, size_t *width)
{
    static const char *names[2] = {"train.npy", "test.npy"};
    char path[2][4096];
    size_t rows[2], w = 0;
    float *x;
    for (int f = 0; f < 2; f++) {
        size_t dims[8] = {0};
        int rank = 0;
        snprintf(path[f], sizeof path[f], "%s/%s", o->out, names[f]);
        if (ae_npy_info(NULL, &rank, dims, path[f]) != AE_OK || rank != 2 || (f && dims[1] != w)) {
            fprintf(stderr, "bench_train: %s: %s (run `bench_train export` first)\n", path[f],
                    ae_last_error());
            return NULL;
        }
        rows[f] = dims[0];
        w = dims[1];
    }
    *n = rows[0] + rows[1];
    *width = w;
    x = malloc(*n * w * sizeof *x);
    if (!x) return NULL;
    if (ae_npy_read_rows(path[0], 0, rows[0], 1.0f, x, rows[0] * w) != AE_OK ||
        ae_npy_read_rows(path[1], 0, rows[1], 1.0f, x + rows[0] * w, rows[1] * w) != AE_OK) {
        fprintf(stderr, "bench_train: reading the rows: %s\n", ae_last_error());
        free(x);
        return NULL;
    }
    return x;
}

/* n rows through the encoder (enc) or, with enc NULL, the whole model m */
static ae_status infer(const ae_model *m, const ae_encoder *enc, const float *x, size_t n,
                       float *out, size_t out_len)
{
    return enc ? ae_encoder_encode(enc, x, n, out, out_len) : ae_model_predict(m, x, n, out, out_len);
}

/* `encode` (whole_model 0) and `predict` (whole_model 1) */
static int cmd_infer(const opts *o, int whole_model)
{
    const char *kind = whole_model ? "predict" : "encode";
    const model_spec *spec = find_model(o->model);
    ae_model *m = NULL;
    ae_encoder *enc = NULL;
    float *x = NULL, *codes = NULL;
    size_t n = 0, width = 0, code;
    int t[8], nt = thread_list(o->threads, t, 8), rc = 1;
    if (!spec) return 1;
    if (nt < 1) {
        fprintf(stderr, "bench_train %s: bad --threads\n", kind);
        return 1;
    }
    if (!(x = load_all_rows(o, &n, &width))) return 1;
    if (ae_preset_build(&m, spec->preset, o->seed) != AE_OK || ae_encoder_create(&enc, m) != AE_OK) {
        fprintf(stderr, "bench_train: %s\n", ae_last_error());
        goto done;
    }
    if (ae_encoder_input_size(enc) != width) {
        fprintf(stderr, "bench_train: rows of %zu values, the encoder takes %zu\n", width,
                ae_encoder_input_size(enc));
        goto done;
    }
    code = whole_model ? ae_model_output_size(m) : ae_encoder_code_size(enc);
    if (!(codes = malloc(n * code * sizeof *codes))) {
        fprintf(stderr, "bench_train: out of memory\n");
        goto done;
    }
    for (int k = 0; k < nt; k++) {
        const ae_encoder *e = whole_model ? NULL : enc;
        double s[64], best = INFINITY, med;
        long reps = o->reps < 64 ? o->reps : 64;
        openblas_set_num_threads(t[k]);
        if (ae_encoder_set_threads(enc, t[k]) != AE_OK || ae_model_set_threads(m, t[k]) != AE_OK)
            goto fail;
        /* warm-up on the first 4096 rows */
        if (infer(m, e, x, n < 4096 ? n : 4096, codes, n * code) != AE_OK) goto fail;
        for (long r = 0; r < reps; r++) {
            double t0 = now();
            if (infer(m, e, x, n, codes, n * code) != AE_OK) goto fail;
            s[r] = now() - t0;
            if (s[r] < best) best = s[r];
        }
        med = median(s, (size_t)reps);
        fprintf(stderr, "  libautoenc %s %s T=%d: best %.3f s (%.0f img/s)\n", kind, spec->name,
                t[k], best, (double)n / best);
        printf("{\"kind\": \"%s\", \"side\": \"libautoenc\", \"model\": \"%s\", "
               "\"threads\": %d, \"chunk\": 0, \"rows\": %zu, \"code\": %zu, \"best_seconds\": %.4f, "
               "\"median_seconds\": %.4f, \"images_per_second\": %.1f, \"maxrss_mb\": %.1f}\n",
               kind, spec->name, t[k], n, code, best, med, (double)n / best, maxrss_mb());
        fflush(stdout);
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_train: %s: %s\n", kind, ae_last_error());
done:
    free(x);
    free(codes);
    ae_encoder_free(enc);
    ae_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    const char *cmd = argc > 1 ? argv[1] : "";
    if (parse(&o, argc, argv) != 0) return 2;
    if (!strcmp(cmd, "gemm")) return cmd_gemm(&o);
    if (!strcmp(cmd, "flops")) return cmd_flops(&o);
    if (!strcmp(cmd, "export")) return cmd_export(&o);
    if (!strcmp(cmd, "train")) return cmd_train(&o);
    if (!strcmp(cmd, "encode")) return cmd_infer(&o, 0);
    if (!strcmp(cmd, "predict")) return cmd_infer(&o, 1);
    fprintf(stderr,
            "usage: bench_train gemm|flops|export|train|encode|predict [--data DIR] [--out DIR] "
            "[--model simple|deep|conv|conv_bn8] [--threads LIST] [--epochs E] [--reps R] [--size N] "
            "[--seed S]\n");
    return 2;
}
