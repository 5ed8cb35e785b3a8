/*
 * The blog's variational autoencoder ("Building Autoencoders in Keras",
 * Chollet, and Keras' VAE example), on QuickDraw-10, with a 2-D latent space.
 *
 * Encoder: dense 784-256 relu, then a linear dense layer of 4 floats, the
 * means and log-variances of the two latent coordinates, then a sampling
 * layer (ae_builder_sampling): training draws z = mean + exp(log_var / 2) eps
 * from the fit seed, inference passes the mean, so the encoder's codes are
 * the means. Decoder: dense 2-256 relu, dense 784 sigmoid. The loss is the
 * blog's 784 * BCE + KL, divided by 784: BCE + KL / 784 (kl_weight 1/784).
 *
 * Reports the test BCE of the reconstructions from the means and the mean KL
 * per test drawing; draws the test drawings' codes in the plane coloured by
 * category (variational_autoencoder_latent.png) and a 15x15 grid of drawings
 * decoded (ae_model_decode) from the points of the plane at
 * norm.ppf(linspace(0.05, 0.95, 15)) on both axes, as the blog does
 * (variational_autoencoder_grid.png; y grows upwards, as in the scatter
 * plot). Also writes variational_autoencoder.aem and the history CSV into
 * --out; the last line printed is a JSON object.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_support.h"

#define NAME "variational_autoencoder"
#define GRID 15 /* the blog's 15x15 grid of decoded drawings */

/* The standard normal quantile function (scipy's norm.ppf), by Acklam's
 * rational approximation: relative error below 1.2e-9 on (0, 1). */
static double normal_quantile(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                                2.445134137142996e+00, 3.754408661907416e+00};
    const double low = 0.02425;
    double q, r;
    if (p < low) { /* lower tail */
        q = sqrt(-2.0 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    if (p > 1.0 - low) /* upper tail, by symmetry */
        return -normal_quantile(1.0 - p);
    q = p - 0.5;
    r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

/* The blog's manifold: drawings decoded from a 15x15 grid of latent points. */
static int draw_grid(const ae_model *m, const char *dir)
{
    float codes[GRID * GRID * 2], *drawings = malloc(GRID * GRID * 784 * sizeof(float));
    double at[GRID];
    ex_grid *g = NULL;
    char path[1024], title[128];
    int rc = EX_ERR;
    if (!drawings) {
        fprintf(stderr, "error: out of memory for the decoded grid\n");
        return EX_ERR;
    }
    for (int i = 0; i < GRID; i++) at[i] = normal_quantile(0.05 + 0.9 * i / (GRID - 1));
    for (int row = 0; row < GRID; row++)
        for (int col = 0; col < GRID; col++) {
            codes[2 * (row * GRID + col)] = (float)at[col];
            codes[2 * (row * GRID + col) + 1] = (float)at[GRID - 1 - row]; /* y up */
        }
    if (ex_failed(ae_model_decode(m, codes, GRID * GRID, drawings, GRID * GRID * 784),
                  "decoding the latent grid"))
        goto done;
    if (ex_grid_create(&g, GRID, GRID, 28, 28, 1, 0) != EX_OK) goto done;
    snprintf(title, sizeof title, "decoded from x, y = norm.ppf(linspace(0.05, 0.95, %d)): %.2f..%.2f",
             GRID, at[0], at[GRID - 1]);
    ex_grid_set_title(g, title);
    for (int i = 0; i < GRID * GRID; i++)
        ex_grid_put(g, i % GRID, i / GRID, drawings + (size_t)i * 784, 28, 28, 0, 1, NULL);
    rc = ex_path(path, sizeof path, dir, NAME "_grid.png");
    if (rc == EX_OK) rc = ex_grid_save_png(g, path);
    if (rc == EX_OK) printf("wrote %s\n", path);
done:
    ex_grid_free(g);
    free(drawings);
    return rc;
}

int main(int argc, char **argv)
{
    static const size_t input_shape[1] = {784};
    ex_args a;
    ex_fit_args fit;
    ex_epoch_log log = {NULL};
    long hidden = 256;
    double kl_weight = 1.0 / 784;
    ex_option extra[7] = {
        {"hidden", EX_OPT_INT, &hidden, 1, 4096, "N", "units of the hidden layers (the blog: 256)"},
        {"kl-weight", EX_OPT_DOUBLE, &kl_weight, 1e-6, 100, "X",
         "weight of the KL term against the mean BCE (the blog's objective: 1/784)"},
    };
    ae_dataset *ds = NULL;
    ae_builder *b = NULL;
    ae_model *m = NULL;
    ae_encoder *enc = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    const float *train, *test;
    const int32_t *test_labels;
    size_t n_train, n_test;
    float *means = NULL, *recon = NULL;
    char path[1024], json[160];
    double t0, bce, loss, seconds = 0;
    ae_status st;
    int rc;

    ex_args_defaults(&a);
    a.epochs = 15; /* the blog trains 50; 15 (4.7 s each on 2 shared cores) keep run.sh short */
    ex_fit_args_init(&fit, 128);
    memcpy(extra + 2, fit.options, sizeof fit.options);
    rc = ex_args_parse(&a, extra, argc, argv,
                       "The blog's variational autoencoder: a 2-D latent plane of drawings", 1);
    if (rc != EX_OK) return rc == EX_HELP ? 0 : 2;
    if (ex_mkdir_p(a.out_dir) != EX_OK) return 1;
    rc = 1;

    t0 = ex_now();
    st = ae_dataset_load(&ds, a.data_dir, a.per_category, AE_DATASET_DEFAULT_TEST_FRACTION,
                         a.seed);
    if (ex_failed(st, "loading the data")) goto done;
    ex_print_dataset(ds, &a, ex_now() - t0);
    ae_dataset_train(&train, NULL, &n_train, ds);
    ae_dataset_test(&test, &test_labels, &n_test, ds);

    /* x -> h -> (z_mean, z_log_var) -> z [code] -> h -> x' */
    st = ae_builder_create(&b, 1, input_shape);
    if (st == AE_OK) st = ae_builder_dense(b, (size_t)hidden, AE_ACT_RELU);
    if (st == AE_OK) st = ae_builder_dense(b, 4, AE_ACT_LINEAR);
    if (st == AE_OK) st = ae_builder_sampling(b, kl_weight);
    if (st == AE_OK) st = ae_builder_mark_code(b);
    if (st == AE_OK) st = ae_builder_dense(b, (size_t)hidden, AE_ACT_RELU);
    if (st == AE_OK) st = ae_builder_dense(b, 784, AE_ACT_SIGMOID);
    if (st == AE_OK) st = ae_builder_build(&m, b, a.seed);
    if (ex_failed(st, "building the model")) goto done;
    {
        char summary[8192];
        ae_model_summary(m, summary, sizeof summary, NULL);
        fputs(summary, stdout);
    }

    /* fit(x, x): the reported losses are BCE + kl_weight * KL */
    st = ex_tutorial_config(&cfg, a.epochs, a.seed, &fit, &log);
    if (st == AE_OK) st = ae_history_create(&h);
    if (ex_failed(st, "training settings")) goto done;
    if (ex_epoch_log_open(&log, a.out_dir, NAME) != EX_OK) goto done;
    ex_print_fit_plan(cfg, n_train);
    st = ae_train_fit(m, cfg, train, NULL, n_train, h);
    if (ex_epoch_log_close(&log) != EX_OK || ex_failed(st, "training")) goto done;
    ex_print_fit_outcome(h);
    for (size_t e = 0; e < ae_history_epochs(h); e++) {
        double s = 0;
        ae_history_get(&s, h, e, AE_HIST_SECONDS);
        seconds += s;
    }

    /* the test drawings: codes (the means), reconstructions from them, and
     * the KL term, which evaluate adds to the BCE */
    means = malloc(n_test * 2 * sizeof *means);
    recon = malloc(n_test * 784 * sizeof *recon);
    if (!means || !recon) {
        fprintf(stderr, "error: out of memory for %zu test drawings\n", n_test);
        goto done;
    }
    st = ae_encoder_create(&enc, m);
    if (st == AE_OK) st = ae_encoder_encode(enc, test, n_test, means, n_test * 2);
    if (st == AE_OK) st = ae_model_decode(m, means, n_test, recon, n_test * 784);
    if (st == AE_OK) st = ae_loss_value(&bce, AE_LOSS_BCE, recon, test, n_test * 784);
    if (st == AE_OK) st = ae_model_evaluate(&loss, m, AE_LOSS_BCE, test, NULL, n_test);
    if (ex_failed(st, "scoring the test drawings")) goto done;
    printf("test: BCE %.4f (reconstructions from the means), KL %.3f per drawing, loss %.4f "
           "(%zu drawings)\n", bce, (loss - bce) / kl_weight, loss, n_test);

    if (ex_pathf(path, sizeof path, "%s/%s.aem", a.out_dir, NAME) != EX_OK ||
        ex_failed(ae_model_save(m, path), "saving the model"))
        goto done;
    printf("saved the model to %s\n", path);
    if (ex_save_scatter_png(a.out_dir, NAME, "latent", ds, means, test_labels, n_test) != EX_OK ||
        draw_grid(m, a.out_dir) != EX_OK)
        goto done;
    snprintf(json, sizeof json, "\"kl_per_row\": %.3f, \"kl_weight\": %.6g, \"seconds\": %.1f",
             (loss - bce) / kl_weight, kl_weight, seconds);
    ex_print_fit_json_extra(NAME, h, bce, json);
    rc = 0;
done:
    ex_epoch_log_close(&log);
    free(means);
    free(recon);
    ae_encoder_free(enc);
    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_model_free(m);
    ae_builder_free(b);
    ae_dataset_free(ds);
    return rc;
}
