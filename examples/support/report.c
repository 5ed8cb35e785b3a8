/* The training examples' report: Keras-like epoch lines, the history CSV, the
 * plan and outcome of a fit, and the JSON last line. */
#include <math.h>
#include <stdio.h>

#include "ex_support.h"

int ex_epoch_log_open(ex_epoch_log *log, const char *dir, const char *name)
{
    static const char *const columns[] = {"epoch", "loss", "val_loss", "seconds",
                                          "images_per_second"};
    char path[1024];
    log->csv = NULL;
    if (ex_pathf(path, sizeof path, "%s/%s_history.csv", dir, name) != EX_OK) return EX_ERR;
    return ex_csv_open(&log->csv, path, columns, 5);
}

int ex_epoch_log_close(ex_epoch_log *log)
{
    int rc = ex_csv_close(log->csv);
    log->csv = NULL;
    return rc;
}

int ex_print_epoch(ae_train_event event, size_t epoch, size_t step, size_t steps, double loss,
                   const ae_model *model, const ae_history *h, void *user)
{
    ex_epoch_log *log = user;
    double val, secs, ips;
    (void)step;
    (void)model;
    if (event != AE_EVENT_EPOCH_END) return 0;
    ae_history_get(&val, h, epoch, AE_HIST_VAL_LOSS);
    ae_history_get(&secs, h, epoch, AE_HIST_SECONDS);
    ae_history_get(&ips, h, epoch, AE_HIST_IMAGES_PER_SECOND);
    printf("Epoch %zu: %zu/%zu steps - %.2fs - %.0f img/s - loss: %.4f - val_loss: %.4f\n",
           epoch + 1, steps, steps, secs, ips, loss, val);
    fflush(stdout);
    if (log && log->csv)
        ex_csv_rowf(log->csv, "%zu,%.6f,%.6f,%.4f,%.1f", epoch + 1, loss, val, secs, ips);
    return 0;
}

void ex_print_fit_plan(const ae_train_config *cfg, size_t n)
{
    int64_t epochs = 0, batch = 0, patience = 0;
    double split = 0;
    size_t n_train;
    ae_train_config_get_int(&epochs, cfg, AE_TRAIN_EPOCHS);
    ae_train_config_get_int(&batch, cfg, AE_TRAIN_BATCH_SIZE);
    ae_train_config_get_int(&patience, cfg, AE_TRAIN_PATIENCE);
    ae_train_config_get_double(&split, cfg, AE_TRAIN_VALIDATION_SPLIT);
    /* the rows ae_train_fit trains on: the validation rows are the rest, at the end */
    n_train = (size_t)floor((double)n * (1.0 - split));
    printf("training on %zu drawings, validating on the last %zu, batch %lld, up to %lld epochs, "
           "early stopping patience %lld\n", n_train, n - n_train, (long long)batch,
           (long long)epochs, (long long)patience);
}

void ex_print_fit_outcome(const ae_history *h)
{
    size_t best = 0;
    ae_history_best_epoch(&best, h);
    printf("%s after %zu epochs; weights of epoch %zu kept\n",
           ae_history_stopped_early(h) ? "early stopping" : "epoch cap reached",
           ae_history_epochs(h), best + 1);
}

void ex_print_fit_json(const char *name, const ae_history *h, double test_bce)
{
    ex_print_fit_json_extra(name, h, test_bce, NULL);
}

void ex_print_fit_json_extra(const char *name, const ae_history *h, double test_bce,
                             const char *extra)
{
    const size_t epochs = ae_history_epochs(h);
    size_t best = 0;
    double seconds = 0, images_per_second = 0;
    ae_history_best_epoch(&best, h);
    for (size_t e = 0; e < epochs; e++) {
        double s, ips;
        ae_history_get(&s, h, e, AE_HIST_SECONDS);
        ae_history_get(&ips, h, e, AE_HIST_IMAGES_PER_SECOND);
        seconds += s;
        images_per_second += ips;
    }
    printf("{\"example\": \"%s\", \"epochs\": %zu, \"best_epoch\": %zu, \"test_bce\": %.4f, "
           "\"seconds_per_epoch\": %.3f, \"images_per_second\": %.0f%s%s}\n",
           name, epochs, best + 1, test_bce, seconds / (double)epochs,
           images_per_second / (double)epochs, extra && *extra ? ", " : "", extra ? extra : "");
}
