/*
 * Tutorial section 2: the deep autoencoder, 784-128-64-32-64-128-784.
 *
 * Section 1's cells with a deeper model: load QuickDraw-10; build the model
 * (here with the one-call preset; sections 1 and 3 spell out the builder
 * calls a preset makes); compile it (Nadam, binary cross-entropy) and fit it
 * (batch 64, shuffled, the last 20% of the training drawings for validation,
 * early stopping on val_loss with the best weights restored); predict the
 * held-out drawings; save the model; draw originals above their
 * reconstructions. Writes deep_autoencoder.aem, deep_autoencoder_history.csv
 * and deep_autoencoder_reconstructions.png into --out; the last line printed
 * is a JSON object of the figures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ex_support.h"

#define NAME "deep_autoencoder"

int main(int argc, char **argv)
{
    ex_args a;
    ex_fit_args fit;
    ex_epoch_log log = {NULL};
    ae_dataset *ds = NULL;
    ae_model *m = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    const float *train, *test;
    const int32_t *test_labels;
    size_t n_train, n_test;
    float *recon = NULL;
    char summary[8192], path[1024];
    double t0, test_bce;
    ae_status st;
    int rc;

    /* --data --out --epochs --seed --per-category, and --batch --patience
     * --min-delta --threads defaulting to the tutorial's values */
    ex_args_defaults(&a);
    a.epochs = 60; /* a cap: early stopping normally ends training first */
    ex_fit_args_init(&fit, 64);
    rc = ex_args_parse(&a, fit.options, argc, argv,
                       "Tutorial section 2: the deep autoencoder, 784-128-64-32-64-128-784", 1);
    if (rc != EX_OK) return rc == EX_HELP ? 0 : 2;
    if (ex_mkdir_p(a.out_dir) != EX_OK) return 1;
    rc = 1;

    /* the data: each category's first --per-category drawings as 784 floats
     * in [0, 1], a seeded 10% of every category held out for testing */
    t0 = ex_now();
    st = ae_dataset_load(&ds, a.data_dir, a.per_category, AE_DATASET_DEFAULT_TEST_FRACTION,
                         a.seed);
    if (ex_failed(st, "loading the data")) goto done;
    ex_print_dataset(ds, &a, ex_now() - t0);
    ae_dataset_train(&train, NULL, &n_train, ds);
    ae_dataset_test(&test, &test_labels, &n_test, ds);

    /* the model: Input(784) -> Dense(128, relu) -> Dense(64, relu) -> Dense(32, relu), the
     * code -> Dense(64, relu) -> Dense(128, relu) -> Dense(784, sigmoid), as the preset */
    st = ae_preset_build(&m, AE_PRESET_DEEP, a.seed);
    if (ex_failed(st, "building the model")) goto done;
    ae_model_summary(m, summary, sizeof summary, NULL);
    fputs(summary, stdout);

    /* compile(optimizer="nadam", loss="binary_crossentropy"), then
     * fit(x, x, epochs, batch_size=64, shuffle=True, validation_split=0.2,
     *     callbacks=[EarlyStopping(patience=3, min_delta=1e-4, restore_best_weights=True)]) */
    st = ex_tutorial_config(&cfg, a.epochs, a.seed, &fit, &log);
    if (st == AE_OK) st = ae_history_create(&h);
    if (ex_failed(st, "training settings")) goto done;
    if (ex_epoch_log_open(&log, a.out_dir, NAME) != EX_OK) goto done;
    ex_print_fit_plan(cfg, n_train);
    st = ae_train_fit(m, cfg, train, NULL, n_train, h); /* y = NULL: the targets are the inputs */
    if (ex_epoch_log_close(&log) != EX_OK || ex_failed(st, "training")) goto done;
    ex_print_fit_outcome(h);

    /* predict the held-out drawings (the tutorial prints the shape) and score them */
    recon = malloc(n_test * 784 * sizeof *recon);
    if (!recon) {
        fprintf(stderr, "error: out of memory for %zu reconstructions\n", n_test);
        goto done;
    }
    st = ae_model_predict(m, test, n_test, recon, n_test * 784);
    if (st == AE_OK) st = ae_loss_value(&test_bce, AE_LOSS_BCE, recon, test, n_test * 784);
    if (ex_failed(st, "predict")) goto done;
    printf("predict: (%zu, %zu)\n", n_test, ae_model_output_size(m));
    printf("test binary cross-entropy: %.4f (%zu held-out drawings)\n", test_bce, n_test);

    if (ex_pathf(path, sizeof path, "%s/%s.aem", a.out_dir, NAME) != EX_OK ||
        ex_failed(ae_model_save(m, path), "saving the model"))
        goto done;
    printf("saved the model to %s\n", path);

    if (ex_save_reconstructions_png(a.out_dir, NAME, ds, test, test_labels, n_test, recon) != EX_OK)
        goto done;
    ex_print_fit_json(NAME, h, test_bce);
    rc = 0;
done:
    ex_epoch_log_close(&log);
    free(recon);
    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_model_free(m);
    ae_dataset_free(ds);
    return rc;
}
