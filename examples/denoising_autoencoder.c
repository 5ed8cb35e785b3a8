/*
 * The blog's denoising autoencoder ("Building Autoencoders in Keras",
 * Chollet), on QuickDraw-10: a convolutional autoencoder that learns to map
 * noisy drawings to clean ones.
 *
 * The blog adds Gaussian noise (noise_factor 0.5, clipped to [0, 1]) to the
 * inputs and trains towards the clean images. Here the noise is a layer,
 * GaussianNoise(0.5, clip to [0, 1]) before the first convolution: it
 * perturbs every training batch afresh (drawn from the fit seed) while the
 * targets stay the clean inputs, and it is the identity when predicting. The
 * held-out drawings are corrupted once, with the same noise, and the model
 * restores them; test BCE against the clean drawings is reported for the
 * noisy inputs and for the restored ones. The model follows the blog's
 * (conv 3x3 relu, max-pool, conv, max-pool: a 7x7 code; conv, up-sample,
 * conv, up-sample, conv 1 sigmoid) with --filters filters (the blog's 32;
 * default 16, 4x cheaper here). Writes denoising_autoencoder.aem,
 * denoising_autoencoder_history.csv and denoising_autoencoder.png (noisy /
 * denoised / clean rows) into --out; the last line printed is a JSON object.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_support.h"

#define NAME "denoising_autoencoder"
#define SHOWN 10 /* drawings in the picture, one per category where possible */

/* The blog's corruption of the test set: x + noise_factor * N(0, 1),
 * clipped to [0, 1] (Box-Muller from a seeded xorshift, so a seed gives the
 * same noisy set in every run). */
static void corrupt(const float *x, float *noisy, size_t n, double stddev, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i += 2) {
        double u1, u2, r;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        u1 = ((double)(s >> 11) + 1.0) / 9007199254740993.0;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        u2 = (double)(s >> 11) / 9007199254740992.0;
        r = sqrt(-2.0 * log(u1));
        for (size_t k = 0; k < 2 && i + k < n; k++) {
            double z = r * (k == 0 ? cos(6.283185307179586 * u2) : sin(6.283185307179586 * u2));
            double v = x[i + k] + stddev * z;
            noisy[i + k] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
        }
    }
}

static int draw(const ae_dataset *ds, const float *noisy, const float *restored, const float *clean,
                const int32_t *labels, size_t n, const char *dir)
{
    ex_grid *g;
    char path[1024];
    int col = 0, rc;
    if (ex_grid_create(&g, SHOWN, 3, 28, 28, 3, 2) != EX_OK) return EX_ERR;
    ex_grid_set_title(g, "noisy input (top), denoised (middle), clean original (bottom)");
    for (size_t c = 0; c < ae_dataset_num_categories(ds) && col < SHOWN; c++) {
        size_t i = 0;
        while (i < n && (size_t)labels[i] != c) i++;
        if (i == n) continue;
        ex_grid_put(g, col, 0, noisy + i * 784, 28, 28, 0, 1, ae_dataset_category_name(ds, c));
        ex_grid_put(g, col, 1, restored + i * 784, 28, 28, 0, 1, NULL);
        ex_grid_put(g, col, 2, clean + i * 784, 28, 28, 0, 1, NULL);
        col++;
    }
    rc = ex_path(path, sizeof path, dir, NAME ".png");
    if (rc == EX_OK) rc = ex_grid_save_png(g, path);
    ex_grid_free(g);
    if (rc == EX_OK) printf("wrote %s\n", path);
    return rc;
}

int main(int argc, char **argv)
{
    static const size_t input_shape[3] = {28, 28, 1};
    ex_args a;
    ex_fit_args fit;
    ex_epoch_log log = {NULL};
    long filters = 16;
    double noise = 0.5;
    ex_option extra[7] = {
        {"filters", EX_OPT_INT, &filters, 1, 256, "N", "filters of every convolution (the blog: 32)"},
        {"noise", EX_OPT_DOUBLE, &noise, 0, 2, "X", "stddev of the Gaussian noise (the blog: 0.5)"},
    };
    ae_dataset *ds = NULL;
    ae_builder *b = NULL;
    ae_model *m = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    const float *train, *test;
    const int32_t *test_labels;
    size_t n_train, n_test, f;
    float *noisy = NULL, *restored = NULL;
    char path[1024];
    double t0, noisy_bce, restored_bce;
    ae_status st;
    int rc;

    ex_args_defaults(&a);
    a.epochs = 10; /* the blog trains 100; 10 with early stopping keeps examples/run.sh short */
    ex_fit_args_init(&fit, 128);
    memcpy(extra + 2, fit.options, sizeof fit.options);
    rc = ex_args_parse(&a, extra, argc, argv,
                       "The blog's denoising autoencoder: noisy drawings in, clean drawings out", 1);
    if (rc != EX_OK) return rc == EX_HELP ? 0 : 2;
    if (ex_mkdir_p(a.out_dir) != EX_OK) return 1;
    rc = 1;
    f = (size_t)filters;

    t0 = ex_now();
    st = ae_dataset_load(&ds, a.data_dir, a.per_category, AE_DATASET_DEFAULT_TEST_FRACTION,
                         a.seed);
    if (ex_failed(st, "loading the data")) goto done;
    ex_print_dataset(ds, &a, ex_now() - t0);
    ae_dataset_train(&train, NULL, &n_train, ds);
    ae_dataset_test(&test, &test_labels, &n_test, ds);

    /* GaussianNoise(noise, clipped) -> the blog's conv autoencoder */
    st = ae_builder_create(&b, 3, input_shape);
    if (st == AE_OK) st = ae_builder_gaussian_noise(b, noise, 1);
    if (st == AE_OK) st = ae_builder_conv2d(b, f, 3, AE_PAD_SAME, AE_ACT_RELU);
    if (st == AE_OK) st = ae_builder_maxpool2d(b, AE_PAD_SAME);
    if (st == AE_OK) st = ae_builder_conv2d(b, f, 3, AE_PAD_SAME, AE_ACT_RELU);
    if (st == AE_OK) st = ae_builder_maxpool2d(b, AE_PAD_SAME);
    if (st == AE_OK) st = ae_builder_mark_code(b);
    if (st == AE_OK) st = ae_builder_conv2d(b, f, 3, AE_PAD_SAME, AE_ACT_RELU);
    if (st == AE_OK) st = ae_builder_upsample2d(b);
    if (st == AE_OK) st = ae_builder_conv2d(b, f, 3, AE_PAD_SAME, AE_ACT_RELU);
    if (st == AE_OK) st = ae_builder_upsample2d(b);
    if (st == AE_OK) st = ae_builder_conv2d(b, 1, 3, AE_PAD_SAME, AE_ACT_SIGMOID);
    if (st == AE_OK) st = ae_builder_build(&m, b, a.seed);
    if (ex_failed(st, "building the model")) goto done;
    {
        char summary[8192];
        ae_model_summary(m, summary, sizeof summary, NULL);
        fputs(summary, stdout);
    }

    /* fit(x, x): the noise layer corrupts the inputs, the targets stay clean */
    st = ex_tutorial_config(&cfg, a.epochs, a.seed, &fit, &log);
    if (st == AE_OK) st = ae_history_create(&h);
    if (ex_failed(st, "training settings")) goto done;
    if (ex_epoch_log_open(&log, a.out_dir, NAME) != EX_OK) goto done;
    ex_print_fit_plan(cfg, n_train);
    st = ae_train_fit(m, cfg, train, NULL, n_train, h);
    if (ex_epoch_log_close(&log) != EX_OK || ex_failed(st, "training")) goto done;
    ex_print_fit_outcome(h);

    /* the held-out drawings, corrupted once; the model restores them */
    noisy = malloc(n_test * 784 * sizeof *noisy);
    restored = malloc(n_test * 784 * sizeof *restored);
    if (!noisy || !restored) {
        fprintf(stderr, "error: out of memory for %zu test drawings\n", n_test);
        goto done;
    }
    corrupt(test, noisy, n_test * 784, noise, a.seed + 1);
    st = ae_model_predict(m, noisy, n_test, restored, n_test * 784);
    if (st == AE_OK) st = ae_loss_value(&noisy_bce, AE_LOSS_BCE, noisy, test, n_test * 784);
    if (st == AE_OK) st = ae_loss_value(&restored_bce, AE_LOSS_BCE, restored, test, n_test * 784);
    if (ex_failed(st, "denoising the test drawings")) goto done;
    printf("test BCE against the clean drawings: noisy inputs %.4f, denoised %.4f (%zu drawings)\n",
           noisy_bce, restored_bce, n_test);

    if (ex_pathf(path, sizeof path, "%s/%s.aem", a.out_dir, NAME) != EX_OK ||
        ex_failed(ae_model_save(m, path), "saving the model"))
        goto done;
    printf("saved the model to %s\n", path);
    if (draw(ds, noisy, restored, test, test_labels, n_test, a.out_dir) != EX_OK) goto done;
    ex_print_fit_json(NAME, h, restored_bce);
    rc = 0;
done:
    ex_epoch_log_close(&log);
    free(noisy);
    free(restored);
    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_model_free(m);
    ae_builder_free(b);
    ae_dataset_free(ds);
    return rc;
}
