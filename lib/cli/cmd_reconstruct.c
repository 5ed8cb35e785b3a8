/* autoenc reconstruct: originals above their reconstructions, and the loss over all rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CHUNK 4096 /* rows per evaluate call, for the progress line */

/* Mean of @p loss over every row, chunk by chunk (weighted by rows). */
static int mean_loss(double *out, const ae_model *m, ae_loss loss, const cli_data *d,
                     cli_progress *p, const char *what)
{
    double sum = 0;
    for (size_t first = 0; first < d->n; first += CHUNK) {
        size_t n = d->n - first < CHUNK ? d->n - first : CHUNK;
        double v;
        char bar[40];
        ae_status st = ae_model_evaluate(&v, m, loss, d->rows + first * d->width, NULL, n);
        if (st != AE_OK) {
            cli_progress_clear(p);
            return cli_lib_error(st, "%s of rows %zu..%zu", what, first, first + n - 1);
        }
        sum += v * (double)n;
        cli_progress_show(p, first + n == d->n, "%s %s", what,
                          cli_bar(bar, sizeof bar, first + n, d->n, 20));
    }
    *out = sum / (double)d->n;
    return CLI_EXIT_OK;
}

int cli_cmd_reconstruct(int argc, char **argv)
{
    cli_list data = {0};
    const char *model_path = NULL, *png = NULL;
    int64_t count = 10, per_category = 0, threads = 0;
    int invert = 0, quiet = 0, json = 0, rc;
    const cli_opt opts[] = {
        {"model", 0, CLI_OPT_STRING, &model_path, 0, 0, "FILE.aem", "a trained model", NULL},
        {"data", 0, CLI_OPT_LIST, &data, 0, 0, "PATH",
         "rows to reconstruct: FILE.npy, a category folder, a PNG folder or FILE.png "
         "(repeatable)", NULL},
        {"png", 0, CLI_OPT_STRING, &png, 0, 0, "OUT.png",
         "the picture: originals above reconstructions", NULL},
        {"count", 'n', CLI_OPT_INT, &count, 1, 1000, "N",
         "rows drawn, spread evenly over the data", NULL},
        {"per-category", 0, CLI_OPT_INT, &per_category, 0, 1e15, "N",
         "use the first N rows of each .npy file (0 = all)", NULL},
        {"invert", 0, CLI_OPT_FLAG, &invert, 0, 0, NULL,
         "PNG input shows dark ink on a light background", NULL},
        {"threads", 0, CLI_OPT_INT, &threads, 0, 64, "N", "compute threads (0 = one per core)",
         NULL},
        {"quiet", 'q', CLI_OPT_FLAG, &quiet, 0, 0, NULL, "no progress display, no summary", NULL},
        {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "the result as one JSON object on stdout",
         NULL},
        {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cli_cmd_help help = {
        "reconstruct",
        "autoenc reconstruct --model FILE.aem --data PATH [--data PATH...] --png OUT.png "
        "[OPTIONS]",
        "Draws --count rows of the data (spread evenly, so a category folder shows its\n"
        "categories in turn) above the model's reconstructions, as the tutorial's figures,\n"
        "and reports the mean binary cross-entropy and squared error over all the rows.",
        NULL};
    ae_model *m = NULL;
    cli_data d;
    cli_input in;
    cli_data_opts dopts;
    cli_progress progress;
    cli_cell *cells = NULL;
    char (*labels)[48] = NULL;
    float *recon = NULL, *orig = NULL;
    double bce = 0, mse = 0;
    size_t shown;
    ae_status st;
    char buf[32], title[256];

    memset(&d, 0, sizeof d);
    rc = cli_parse(opts, &help, argc, argv, NULL);
    if (rc != CLI_EXIT_OK) {
        cli_list_free(&data);
        return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    }
    cli_quiet = quiet;
    if (!model_path) rc = cli_missing("reconstruct", "--model FILE.aem");
    else if (!data.n) rc = cli_missing("reconstruct", "--data PATH");
    else if (!png) rc = cli_missing("reconstruct", "--png OUT.png");
    if (rc != CLI_EXIT_OK) goto done;

    if ((rc = cli_load_model(&m, model_path)) != CLI_EXIT_OK) goto done;
    if ((st = ae_model_set_threads(m, (int)threads)) != AE_OK) {
        rc = cli_lib_error(st, "--threads");
        goto done;
    }
    cli_input_of_model(&in, m);
    if (ae_model_output_size(m) != in.width || !in.h) {
        cli_error("%s: a model whose rows are %zu-value %s and whose outputs have %zu values "
                  "cannot be drawn as reconstructions", model_path, in.width,
                  in.h ? "images" : "vectors (not images)", ae_model_output_size(m));
        rc = CLI_EXIT_MISMATCH;
        goto done;
    }
    dopts.per_category = (size_t)per_category;
    dopts.invert = invert;
    if ((rc = cli_data_load(&d, &data, &dopts, &in)) != CLI_EXIT_OK) goto done;
    cli_data_png_hint(&d, invert);
    shown = (size_t)count < d.n ? (size_t)count : d.n;
    orig = malloc(shown * d.width * sizeof *orig);
    recon = malloc(shown * d.width * sizeof *recon);
    cells = calloc(2 * shown, sizeof *cells);
    labels = calloc(2 * shown, sizeof *labels);
    if (!orig || !recon || !cells || !labels) {
        rc = cli_nomem("reconstructions");
        goto done;
    }
    for (size_t i = 0; i < shown; i++) {
        size_t row = i * d.n / shown;
        memcpy(orig + i * d.width, d.rows + row * d.width, d.width * sizeof *orig);
        snprintf(labels[i], sizeof labels[0], "%.24s\nrow %zu", d.names[d.labels[row]],
                 d.row_in_file[row]);
        snprintf(labels[shown + i], sizeof labels[0], "reconstructed");
        cells[i].pixels = orig + i * d.width;
        cells[i].label = labels[i];
        cells[shown + i].pixels = recon + i * d.width;
        cells[shown + i].label = labels[shown + i];
    }
    if ((st = ae_model_predict(m, orig, shown, recon, shown * d.width)) != AE_OK) {
        rc = cli_lib_error(st, "reconstructing");
        goto done;
    }
    cli_progress_start(&progress);
    if ((rc = mean_loss(&bce, m, AE_LOSS_BCE, &d, &progress, "binary cross-entropy")) ||
        (rc = mean_loss(&mse, m, AE_LOSS_MSE, &d, &progress, "squared error")))
        goto done;
    cli_progress_clear(&progress);
    {
        const char *base = strrchr(model_path, '/');
        snprintf(title, sizeof title, "originals (top) and reconstructions (bottom): %s",
                 base ? base + 1 : model_path);
    }
    if ((rc = cli_draw_grid(png, title, cells, (int)shown, 2, in.h, in.w)) != CLI_EXIT_OK)
        goto done;
    if (json) {
        printf("{\"type\": \"reconstruct\", \"png\": ");
        cli_json_str(stdout, png);
        printf(", \"drawn\": %zu, \"rows\": %zu, \"bce\": ", shown, d.n);
        cli_json_num(stdout, bce);
        printf(", \"mse\": ");
        cli_json_num(stdout, mse);
        printf("}\n");
    } else if (!quiet) {
        printf("drew %zu of %s row%s above their reconstructions: %s\n", shown,
               cli_count(buf, sizeof buf, d.n), d.n == 1 ? "" : "s", png);
        printf("over all rows: binary cross-entropy %.4f, mean squared error %.5f\n", bce, mse);
    }
    rc = CLI_EXIT_OK;
done:
    free(orig);
    free(recon);
    free(cells);
    free(labels);
    cli_data_free(&d);
    ae_model_free(m);
    cli_list_free(&data);
    return rc;
}
