/* autoenc train: a preset or a spec of layers, trained on --data, saved to --out;
 * with --checkpoint/--resume through a training state and checkpoint files. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const OPTIMIZERS[] = {"nadam", "adam", "sgd", NULL};
static const ae_optimizer OPTIMIZER_VALUES[] = {AE_OPT_NADAM, AE_OPT_ADAM, AE_OPT_SGD};
static const char *const LOSSES[] = {"bce", "mse", NULL};
static const ae_loss LOSS_VALUES[] = {AE_LOSS_BCE, AE_LOSS_MSE};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct train_ctx {
    cli_progress progress;
    int64_t epochs, batch;
    size_t train_rows;
    double epoch_start;
    int json;
} train_ctx;

static int on_progress(ae_train_event event, size_t epoch, size_t step, size_t steps, double loss,
                       const ae_model *model, const ae_history *h, void *user)
{
    train_ctx *c = user;
    double now = cli_now(), elapsed = now - c->epoch_start;
    (void)model;
    if (event == AE_EVENT_BATCH_END) {
        size_t rows = (size_t)c->batch * step;
        char bar[40], eta[32], rate[32];
        if (rows > c->train_rows) rows = c->train_rows;
        cli_progress_show(&c->progress, step == 1 || step == steps,
                          "epoch %zu/%lld %s %zu/%zu  loss %.4f  %s img/s  ETA %s", epoch + 1,
                          (long long)c->epochs, cli_bar(bar, sizeof bar, step, steps, 20), step,
                          steps, loss,
                          cli_count(rate, sizeof rate, elapsed > 0 ? (size_t)(rows / elapsed) : 0),
                          cli_duration(eta, sizeof eta, elapsed / (double)step * (double)(steps - step)));
    } else {
        /* the history holds this run's epochs; epoch counts from the
         * checkpoint's start when resuming */
        const size_t last = ae_history_epochs(h) - 1;
        double val, secs, ips;
        ae_history_get(&val, h, last, AE_HIST_VAL_LOSS);
        ae_history_get(&secs, h, last, AE_HIST_SECONDS);
        ae_history_get(&ips, h, last, AE_HIST_IMAGES_PER_SECOND);
        cli_progress_clear(&c->progress);
        if (c->json) {
            printf("{\"type\": \"epoch\", \"epoch\": %zu, \"epochs\": %lld, \"loss\": ", epoch + 1,
                   (long long)c->epochs);
            cli_json_num(stdout, loss);
            printf(", \"val_loss\": ");
            cli_json_num(stdout, val);
            printf(", \"seconds\": %.3f, \"images_per_second\": %.0f}\n", secs, ips);
        } else if (!cli_quiet) {
            char rate[32];
            printf("epoch %zu/%lld: loss %.4f", epoch + 1, (long long)c->epochs, loss);
            if (isfinite(val)) printf(", val_loss %.4f", val);
            printf(", %.2f s, %s img/s\n", secs, cli_count(rate, sizeof rate, (size_t)ips));
        }
        fflush(stdout);
        c->epoch_start = cli_now();
    }
    return interrupted ? 1 : 0;
}

static ae_status configure(ae_train_config *cfg, int optimizer, int loss, int64_t epochs,
                           int64_t batch, int64_t seed, double lr, double split,
                           int64_t patience, double min_delta, int64_t threads)
{
    ae_status st = ae_train_config_set_int(cfg, AE_TRAIN_OPTIMIZER, OPTIMIZER_VALUES[optimizer]);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_LOSS, LOSS_VALUES[loss]);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_EPOCHS, epochs);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_BATCH_SIZE, batch);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_SHUFFLE, 1);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_SEED, seed);
    if (st == AE_OK) st = ae_train_config_set_double(cfg, AE_TRAIN_LEARNING_RATE, lr);
    if (st == AE_OK) st = ae_train_config_set_double(cfg, AE_TRAIN_VALIDATION_SPLIT, split);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_PATIENCE, patience);
    if (st == AE_OK) st = ae_train_config_set_double(cfg, AE_TRAIN_MIN_DELTA, min_delta);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_RESTORE_BEST, 1);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_THREADS, threads);
    return st;
}

int cli_cmd_train(int argc, char **argv)
{
    cli_list data = {0};
    const char *model_arg = NULL, *out = NULL, *ckpt = NULL, *resume = NULL;
    int64_t epochs = 10, batch = 32, patience = 0, threads = 0, seed = 42, per_category = 0;
    int64_t ckpt_steps = 0;
    double lr = 1e-3, split = 0.2, min_delta = 0;
    int optimizer = 0, loss = 0, invert = 0, quiet = 0, json = 0, rc;
    const cli_opt opts[] = {
        {"data", 0, CLI_OPT_LIST, &data, 0, 0, "PATH",
         "training data: FILE.npy, a category folder, a PNG folder or FILE.png (repeatable)", NULL},
        {"model", 0, CLI_OPT_STRING, &model_arg, 0, 0, "MODEL",
         "a preset (simple, deep, conv), a spec of layers in quotes, or @FILE holding a spec",
         NULL},
        {"out", 0, CLI_OPT_STRING, &out, 0, 0, "FILE.aem", "where the trained model goes", NULL},
        {"epochs", 0, CLI_OPT_INT, &epochs, 1, 1000000, "N", "epochs (at most)", NULL},
        {"batch", 0, CLI_OPT_INT, &batch, 1, 65536, "N", "rows per training step", NULL},
        {"lr", 0, CLI_OPT_DOUBLE, &lr, 1e-12, 10, "RATE", "learning rate", NULL},
        {"optimizer", 0, CLI_OPT_CHOICE, &optimizer, 0, 0, "NAME", "optimiser", OPTIMIZERS},
        {"loss", 0, CLI_OPT_CHOICE, &loss, 0, 0, "NAME",
         "binary cross-entropy (values in [0, 1]) or mean squared error", LOSSES},
        {"validation-split", 0, CLI_OPT_DOUBLE, &split, 0, 0.99, "F",
         "fraction of the (shuffled) rows held out to validate", NULL},
        {"patience", 0, CLI_OPT_INT, &patience, 0, 1000000, "N",
         "stop after N epochs without a better val_loss, keep the best (0 = never)", NULL},
        {"min-delta", 0, CLI_OPT_DOUBLE, &min_delta, 0, 1e6, "X",
         "smallest val_loss improvement that counts", NULL},
        {"threads", 0, CLI_OPT_INT, &threads, 0, 64, "N", "compute threads (0 = one per core)",
         NULL},
        {"seed", 0, CLI_OPT_INT, &seed, 0, 9007199254740991.0, "N",
         "seed of the initial weights and the shuffles", NULL},
        {"per-category", 0, CLI_OPT_INT, &per_category, 0, 1e15, "N",
         "use the first N rows of each .npy file (0 = all)", NULL},
        {"checkpoint", 0, CLI_OPT_STRING, &ckpt, 0, 0, "FILE.aeckpt",
         "write a checkpoint (model and training state) there after every epoch", NULL},
        {"checkpoint-steps", 0, CLI_OPT_INT, &ckpt_steps, 0, 1e15, "N",
         "also write the checkpoint every N steps (0 = at epoch ends only)", NULL},
        {"resume", 0, CLI_OPT_STRING, &resume, 0, 0, "FILE.aeckpt",
         "continue the run of that checkpoint (same --data and settings; --epochs is the total)",
         NULL},
        {"invert", 0, CLI_OPT_FLAG, &invert, 0, 0, NULL,
         "PNG input shows dark ink on a light background", NULL},
        {"quiet", 'q', CLI_OPT_FLAG, &quiet, 0, 0, NULL, "no progress display, no epoch lines",
         NULL},
        {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL,
         "one JSON object per epoch and one for the result, on stdout", NULL},
        {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cli_cmd_help help = {
        "train",
        "autoenc train --data PATH [--data PATH...] --model MODEL --out FILE.aem [OPTIONS]",
        "Trains an autoencoder on the rows of --data (pixels in [0, 1]; uint8 .npy files and\n"
        "PNG images are scaled by 1/255) and saves it. The rows are shuffled once with --seed\n"
        "and the last --validation-split of them validate. With --patience, training stops\n"
        "when val_loss stops improving and the best epoch's weights are saved; without it,\n"
        "every epoch runs and the last epoch's weights are saved.",
        "With --checkpoint, every epoch (and every --checkpoint-steps steps) saves the model\n"
        "and the training state (optimiser, position, shuffling, early stopping) to a\n"
        "checkpoint; --resume continues such a run exactly where the checkpoint was written,\n"
        "to the weights an uninterrupted run would have reached (same data, settings, seed\n"
        "and --threads), and keeps writing the checkpoint (to --checkpoint, else the resumed\n"
        "file). A run with a checkpoint shuffles its rows afresh every epoch, so its results\n"
        "differ from a run without one after the first epoch.\n"
        "Ctrl-C stops training after the current step; --out is not written then, but a\n"
        "checkpoint is, when there is one.\n"
        "Model specs, data formats and exit codes: man autoenc."};
    ae_model *m = NULL;
    ae_train_state *state = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    cli_data d;
    cli_input in;
    cli_data_opts dopts;
    train_ctx ctx;
    struct sigaction sa, old_int, old_term;
    size_t n_train, best = 0, kept, epochs_run;
    double t0, val = NAN, final_loss = NAN;
    ae_status st;
    char buf1[32], buf2[32], buf3[32];

    memset(&d, 0, sizeof d);
    rc = cli_parse(opts, &help, argc, argv, NULL);
    if (rc != CLI_EXIT_OK) {
        cli_list_free(&data);
        return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    }
    cli_quiet = quiet;
    if (!data.n) rc = cli_missing("train", "--data PATH");
    else if (!model_arg && !resume) rc = cli_missing("train", "--model MODEL");
    else if (!out) rc = cli_missing("train", "--out FILE.aem");
    if (rc != CLI_EXIT_OK) goto done;

    if (resume) {
        if ((st = ae_train_state_load(&state, &m, resume)) != AE_OK) {
            rc = cli_lib_error(st, "cannot resume from %s", resume);
            goto done;
        }
        if ((int64_t)ae_train_state_epoch(state) >= epochs) {
            cli_error("%s already holds %zu epochs; --epochs %lld asks for no more", resume,
                      ae_train_state_epoch(state), (long long)epochs);
            rc = CLI_EXIT_USAGE;
            goto done;
        }
        if (!ckpt) ckpt = resume;
        if (model_arg) cli_note("--model is ignored: the model comes from %s", resume);
    } else if ((rc = cli_model_from_arg(&m, model_arg, (uint64_t)seed)) != CLI_EXIT_OK) {
        goto done;
    }
    if (ckpt && !state && (st = ae_train_state_create(&state)) != AE_OK) {
        rc = cli_lib_error(st, "training setup");
        goto done;
    }
    if (ckpt && (st = ae_train_state_set_checkpoint(state, ckpt)) != AE_OK) {
        rc = cli_lib_error(st, "checkpoint %s", ckpt);
        goto done;
    }
    cli_input_of_model(&in, m);
    dopts.per_category = (size_t)per_category;
    dopts.invert = invert;
    if ((rc = cli_data_load(&d, &data, &dopts, &in)) != CLI_EXIT_OK) goto done;
    cli_data_png_hint(&d, invert);
    /* one shuffle before the split, so the validation rows mix every input */
    if ((rc = cli_data_shuffle(&d, (uint64_t)seed)) != CLI_EXIT_OK) goto done;
    if (LOSS_VALUES[loss] == AE_LOSS_BCE) {
        size_t bad = 0;
        for (size_t i = 0; i < d.n * d.width; i++) bad += d.rows[i] < 0.0f || d.rows[i] > 1.0f;
        if (bad)
            cli_note("%zu values lie outside [0, 1], where binary cross-entropy means nothing: "
                     "scale the data or pass --loss mse", bad);
    }

    if ((st = ae_train_config_create(&cfg)) != AE_OK || (st = ae_history_create(&h)) != AE_OK) {
        rc = cli_lib_error(st, "training setup");
        goto done;
    }
    if ((st = configure(cfg, optimizer, loss, epochs, batch, seed, lr, split, patience,
                        min_delta, threads)) != AE_OK) {
        rc = cli_lib_error(st, "training settings");
        goto done;
    }
    if (state) {
        /* --epochs is the run's total: a resumed run does what is left */
        st = ae_train_config_set_int(cfg, AE_TRAIN_EPOCHS, epochs - (int64_t)ae_train_state_epoch(state));
        if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_CHECKPOINT_STEPS, ckpt_steps);
        if (st != AE_OK) {
            rc = cli_lib_error(st, "training settings");
            goto done;
        }
    }
    n_train = (size_t)floor((double)d.n * (1.0 - split));
    memset(&ctx, 0, sizeof ctx);
    cli_progress_start(&ctx.progress);
    ctx.epochs = epochs;
    ctx.batch = batch;
    ctx.train_rows = n_train;
    ctx.json = json;
    ae_train_config_set_callback(cfg, on_progress, &ctx);
    if (!json && !quiet)
        printf("training %s (%s parameters) on %s rows, validating on %s, batch %lld, "
               "up to %lld epochs\n",
               resume ? resume
               : ae_preset_from_name(&(ae_preset){0}, model_arg) == AE_OK ? model_arg : "a spec",
               cli_count(buf1, sizeof buf1, ae_model_param_count(m)),
               cli_count(buf2, sizeof buf2, n_train), cli_count(buf3, sizeof buf3, d.n - n_train),
               (long long)batch, (long long)epochs);
    fflush(stdout);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    t0 = cli_now();
    ctx.epoch_start = t0;
    st = state ? ae_train_fit_state(m, cfg, state, d.rows, NULL, d.n, h)
               : ae_train_fit(m, cfg, d.rows, NULL, d.n, h);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    cli_progress_clear(&ctx.progress);
    if (st == AE_STOPPED && state) {
        /* the state stopped after a whole step: the checkpoint resumes there */
        ae_status cs = ae_train_state_save(state, m, ckpt);
        if (cs == AE_OK)
            cli_error("interrupted: %s was not written; %s holds the run (epoch %zu, step %zu): "
                      "continue with --resume %s", out, ckpt, ae_train_state_epoch(state) + 1,
                      ae_train_state_step(state), ckpt);
        else
            cli_lib_error(cs, "interrupted, and the checkpoint %s could not be written", ckpt);
        rc = CLI_EXIT_INTERRUPTED;
        goto done;
    }
    if (st == AE_STOPPED) {
        cli_error("interrupted: %s was not written", out);
        rc = CLI_EXIT_INTERRUPTED;
        goto done;
    }
    if (st != AE_OK) {
        rc = cli_lib_error(st, "training stopped, %s was not written", out);
        if (st == AE_ERR_NUMERIC)
            cli_note("the loss became NaN or infinite: a smaller --lr often helps");
        goto done;
    }
    /* a run with a state keeps its last weights when its epochs run out
     * (it could go on); the saved model is the best epoch's, as without one */
    if (state && patience > 0 && !ae_history_stopped_early(h))
        (void)ae_train_state_restore_best(state, m);
    if ((st = ae_model_save(m, out)) != AE_OK) {
        rc = cli_lib_error(st, "cannot write %s", out);
        goto done;
    }
    epochs_run = ae_history_epochs(h);
    ae_history_best_epoch(&best, h);
    /* the library restores the best weights only when it monitors (patience > 0) */
    kept = patience > 0 ? best : epochs_run - 1;
    ae_history_get(&val, h, kept, AE_HIST_VAL_LOSS);
    ae_history_get(&final_loss, h, kept, AE_HIST_TRAIN_LOSS);
    if (json) {
        printf("{\"type\": \"train\", \"model\": ");
        cli_json_str(stdout, out);
        printf(", \"parameters\": %zu, \"rows\": %zu, \"train_rows\": %zu, "
               "\"validation_rows\": %zu, \"epochs_run\": %zu, \"kept_epoch\": %zu, "
               "\"best_epoch\": %zu, \"stopped_early\": %s, \"loss\": ",
               ae_model_param_count(m), d.n, n_train, d.n - n_train, epochs_run, kept + 1, best + 1,
               ae_history_stopped_early(h) ? "true" : "false");
        cli_json_num(stdout, final_loss);
        printf(", \"val_loss\": ");
        cli_json_num(stdout, val);
        printf(", \"seconds\": %.3f}\n", cli_now() - t0);
    } else if (!quiet) {
        printf("saved %s: weights of epoch %zu of %zu%s", out, kept + 1, epochs_run,
               ae_history_stopped_early(h) ? " (early stopping)" : "");
        if (isfinite(val)) printf(", val_loss %.4f", val);
        printf(", %.1f s\n", cli_now() - t0);
    }
    rc = CLI_EXIT_OK;
done:
    cli_data_free(&d);
    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_train_state_free(state);
    ae_model_free(m);
    cli_list_free(&data);
    return rc;
}
