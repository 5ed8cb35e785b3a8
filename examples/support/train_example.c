/* The shared body of the simple, deep and convolutional autoencoder examples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_train.h"

/* Per-epoch progress lines, as Keras prints them, and the history CSV. */
typedef struct progress {
    ex_csv *csv;
    size_t train_rows;
} progress;

static int on_progress(ae_train_event event, size_t epoch, size_t step, size_t steps, double loss,
                       const ae_model *model, const ae_history *h, void *user)
{
    (void)model;
    progress *p = user;
    double val, secs, ips;
    (void)step;
    if (event != AE_EVENT_EPOCH_END) return 0;
    ae_history_get(&val, h, epoch, AE_HIST_VAL_LOSS);
    ae_history_get(&secs, h, epoch, AE_HIST_SECONDS);
    ae_history_get(&ips, h, epoch, AE_HIST_IMAGES_PER_SECOND);
    printf("Epoch %zu: %zu/%zu steps - %.2fs - %.0f img/s - loss: %.4f - val_loss: %.4f\n",
           epoch + 1, steps, steps, secs, ips, loss, val);
    fflush(stdout);
    if (p->csv) ex_csv_rowf(p->csv, "%zu,%.6f,%.6f,%.4f,%.1f", epoch + 1, loss, val, secs, ips);
    return 0;
}

/* Two test drawings per category: originals on the top row, reconstructions
 * under them, each labelled with its category. */
static int draw_reconstructions(const ex_train_spec *spec, const ae_dataset *ds,
                                const float *test, const int32_t *labels, size_t n_test,
                                const float *recon, const char *out_dir)
{
    const size_t cats = ae_dataset_num_categories(ds), per = 2;
    ex_grid *g;
    char path[1024], title[128];
    int col = 0, rc;
    if (ex_grid_create(&g, (int)(cats * per), 2, 28, 28, 3, 1) != EX_OK) return EX_ERR;
    snprintf(title, sizeof title, "%s: originals (top) and reconstructions (bottom)", spec->name);
    ex_grid_set_title(g, title);
    for (size_t c = 0; c < cats; c++) {
        size_t found = 0;
        for (size_t i = 0; i < n_test && found < per; i++) {
            if ((size_t)labels[i] != c) continue;
            ex_grid_put(g, col, 0, test + i * 784, 28, 28, 0, 1, ae_dataset_category_name(ds, c));
            ex_grid_put(g, col, 1, recon + i * 784, 28, 28, 0, 1, "reconstructed");
            col++;
            found++;
        }
    }
    snprintf(path, sizeof path, "%s/%s_reconstructions.png", out_dir, spec->name);
    rc = ex_grid_save_png(g, path);
    ex_grid_free(g);
    if (rc == EX_OK) printf("wrote %s\n", path);
    return rc;
}

/* The tutorial's picture of a code: the first test drawing, its 4x4x8 code
 * laid out as an 8x16 image (the same 128 floats, row-major), and its
 * reconstruction. */
static int draw_code(const ex_train_spec *spec, const ae_model *m, const float *drawing,
                     const float *recon, const char *category, const char *out_dir)
{
    ae_encoder *enc;
    float code[128];
    ex_grid *g;
    char path[1024];
    int rc;
    if (ae_encoder_create(&enc, m) != AE_OK || ae_encoder_code_size(enc) != 128) {
        fprintf(stderr, "error: cannot extract a 128-float encoder: %s\n", ae_last_error());
        ae_encoder_free(enc);
        return EX_ERR;
    }
    rc = ae_encoder_encode(enc, drawing, 1, code, 128) == AE_OK ? EX_OK : EX_ERR;
    ae_encoder_free(enc);
    if (rc != EX_OK) return rc;
    if (ex_grid_create(&g, 3, 1, 28, 28, 3, 1) != EX_OK) return EX_ERR;
    ex_grid_set_title(g, "code of one drawing (4x4x8 drawn as 8x16)");
    ex_grid_put(g, 0, 0, drawing, 28, 28, 0, 1, category);
    ex_grid_put(g, 1, 0, code, 16, 8, 0, 0, "code 8x16");
    ex_grid_put(g, 2, 0, recon, 28, 28, 0, 1, "reconstructed");
    snprintf(path, sizeof path, "%s/%s_code.png", out_dir, spec->name);
    rc = ex_grid_save_png(g, path);
    ex_grid_free(g);
    if (rc == EX_OK) printf("wrote %s\n", path);
    return rc;
}

static ae_status configure(ae_train_config *c, const ex_args *a, long batch, long patience,
                           double min_delta, long threads)
{
    ae_status st = AE_OK;
    /* the tutorial's recipe: Nadam, binary cross-entropy, shuffle, 20% validation */
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_OPTIMIZER, AE_OPT_NADAM);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_LOSS, AE_LOSS_BCE);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_EPOCHS, a->epochs);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, batch);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_SHUFFLE, 1);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_SEED, (int64_t)(a->seed & 0xFFFFFFFFFFFFull));
    if (st == AE_OK) st = ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0.2);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_PATIENCE, patience);
    if (st == AE_OK) st = ae_train_config_set_double(c, AE_TRAIN_MIN_DELTA, min_delta);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_RESTORE_BEST, 1);
    if (st == AE_OK) st = ae_train_config_set_int(c, AE_TRAIN_THREADS, threads);
    return st;
}

int ex_run_training_example(const ex_train_spec *spec, int argc, char **argv)
{
    ex_args a;
    long batch = spec->batch_size, patience = 3, threads = 0;
    double min_delta = 1e-4;
    const ex_option extra[] = {
        {"batch", EX_OPT_INT, &batch, 1, 65536, "N", "rows per training step"},
        {"patience", EX_OPT_INT, &patience, 0, 1000, "N",
         "early stopping: epochs without improvement (0 = off)"},
        {"min-delta", EX_OPT_DOUBLE, &min_delta, 0, 1, "X", "smallest val_loss improvement"},
        {"threads", EX_OPT_INT, &threads, 0, 64, "N", "compute threads (0 = library default)"},
        {NULL, EX_OPT_INT, NULL, 0, 0, NULL, NULL},
    };
    ae_dataset *ds = NULL;
    ae_model *m = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    const float *train, *test;
    const int32_t *test_labels;
    float *recon = NULL;
    size_t n_train, n_test, epochs_run, best = 0;
    char path[1024], summary[8192];
    progress prog = {NULL, 0};
    const char *columns[] = {"epoch", "loss", "val_loss", "seconds", "images_per_second"};
    double test_bce, secs_total = 0, ips_total = 0;
    ae_status st;
    int rc;

    ex_args_defaults(&a);
    a.epochs = 60; /* a cap: early stopping normally ends training first */
    rc = ex_args_parse(&a, extra, argc, argv, spec->summary, 1);
    if (rc != EX_OK) return rc == EX_HELP ? 0 : 2;
    if (ex_mkdir_p(a.out_dir) != EX_OK) return 1;
    if (ex_load_dataset(&ds, &a, 1) != EX_OK) return 1;
    ae_dataset_train(&train, NULL, &n_train, ds);
    ae_dataset_test(&test, &test_labels, &n_test, ds);

    rc = 1;
    if ((st = ae_preset_build(&m, spec->preset, a.seed)) != AE_OK) {
        fprintf(stderr, "error: building the model: %s\n", ae_last_error());
        goto done;
    }
    ae_model_summary(m, summary, sizeof summary, NULL);
    fputs(summary, stdout);

    if (ae_train_config_create(&cfg) != AE_OK || ae_history_create(&h) != AE_OK ||
        configure(cfg, &a, batch, patience, min_delta, threads) != AE_OK) {
        fprintf(stderr, "error: training settings: %s\n", ae_last_error());
        goto done;
    }
    if (ex_path(path, sizeof path, a.out_dir, spec->name) != EX_OK) goto done;
    strncat(path, "_history.csv", sizeof path - strlen(path) - 1);
    if (ex_csv_open(&prog.csv, path, columns, 5) != EX_OK) goto done;
    ae_train_config_set_callback(cfg, on_progress, &prog);
    printf("training on %zu drawings, validating on the last %zu, batch %ld, up to %ld epochs, "
           "early stopping patience %ld\n", (size_t)floor(n_train * 0.8),
           n_train - (size_t)floor(n_train * 0.8), batch, a.epochs, patience);
    st = ae_train_fit(m, cfg, train, NULL, n_train, h);
    if (ex_csv_close(prog.csv) != EX_OK) goto done;
    prog.csv = NULL;
    if (st != AE_OK) {
        fprintf(stderr, "error: training: %s (%s)\n", ae_model_errmsg(m), ae_status_string(st));
        goto done;
    }
    epochs_run = ae_history_epochs(h);
    ae_history_best_epoch(&best, h);
    for (size_t e = 0; e < epochs_run; e++) {
        double s, ips;
        ae_history_get(&s, h, e, AE_HIST_SECONDS);
        ae_history_get(&ips, h, e, AE_HIST_IMAGES_PER_SECOND);
        secs_total += s;
        ips_total += ips;
    }
    printf("%s after %zu epochs; weights of epoch %zu kept\n",
           ae_history_stopped_early(h) ? "early stopping" : "epoch cap reached", epochs_run, best + 1);

    /* predict: the tutorial prints the reconstructions' shape */
    recon = malloc(n_test * 784 * sizeof *recon);
    if (!recon || ae_model_predict(m, test, n_test, recon, n_test * 784) != AE_OK) {
        fprintf(stderr, "error: predict: %s\n", ae_last_error());
        goto done;
    }
    printf("predict: (%zu, %zu)\n", n_test, ae_model_output_size(m));
    if (ae_loss_value(&test_bce, AE_LOSS_BCE, recon, test, n_test * 784) != AE_OK) goto done;
    printf("test binary cross-entropy: %.4f (%zu held-out drawings)\n", test_bce, n_test);

    if (ex_path(path, sizeof path, a.out_dir, spec->name) != EX_OK) goto done;
    strncat(path, ".aem", sizeof path - strlen(path) - 1);
    if ((st = ae_model_save(m, path)) != AE_OK) {
        fprintf(stderr, "error: saving %s: %s\n", path, ae_last_error());
        goto done;
    }
    printf("saved the model to %s\n", path);
    if (draw_reconstructions(spec, ds, test, test_labels, n_test, recon, a.out_dir) != EX_OK)
        goto done;
    if (spec->draw_code &&
        draw_code(spec, m, test, recon, ae_dataset_category_name(ds, (size_t)test_labels[0]),
                  a.out_dir) != EX_OK)
        goto done;
    printf("{\"example\": \"%s\", \"epochs\": %zu, \"best_epoch\": %zu, \"test_bce\": %.4f, "
           "\"seconds_per_epoch\": %.3f, \"images_per_second\": %.0f}\n",
           spec->name, epochs_run, best + 1, test_bce, secs_total / (double)epochs_run,
           ips_total / (double)epochs_run);
    rc = 0;
done:
    if (prog.csv) ex_csv_close(prog.csv);
    free(recon);
    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_model_free(m);
    ae_dataset_free(ds);
    return rc;
}
