/* autoenc encode: the codes of --data rows, one row per data row, as a .npy file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Rows per encode call: a progress update every few milliseconds for the
 * largest reference model, and a chunk is ~12 MB of 28x28 input. */
#define CHUNK 4096

int cli_cmd_encode(int argc, char **argv)
{
    cli_list data = {0};
    const char *model_path = NULL, *out = NULL, *labels_out = NULL;
    int64_t threads = 0, per_category = 0;
    int invert = 0, quiet = 0, json = 0, rc;
    const cli_opt opts[] = {
        {"model", 0, CLI_OPT_STRING, &model_path, 0, 0, "FILE.aem",
         "a model (or encoder) file written by autoenc train or ae_model_save", NULL},
        {"data", 0, CLI_OPT_LIST, &data, 0, 0, "PATH",
         "rows to encode: FILE.npy, a category folder, a PNG folder or FILE.png (repeatable)",
         NULL},
        {"out", 0, CLI_OPT_STRING, &out, 0, 0, "CODES.npy",
         "the codes: float32, one row of code-size values per data row", NULL},
        {"labels-out", 0, CLI_OPT_STRING, &labels_out, 0, 0, "LABELS.npy",
         "also write each row's category number (float32), for index build --labels", NULL},
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
        "encode",
        "autoenc encode --model FILE.aem --data PATH [--data PATH...] --out CODES.npy [OPTIONS]",
        "Runs the model's encoder (its layers up to the code layer) on every row of --data\n"
        "and writes the flattened codes. Row i of CODES.npy is row i of the data, in the order\n"
        "`man autoenc` describes (files as given, a category folder's files by name): index\n"
        "build and search --data count rows the same way.",
        NULL};
    ae_model *m = NULL;
    ae_encoder *enc = NULL;
    cli_data d;
    cli_input in;
    cli_data_opts dopts;
    cli_progress progress;
    float *codes = NULL, *labels = NULL;
    size_t code_size;
    double t0;
    ae_status st;
    char buf1[32], buf2[32];

    memset(&d, 0, sizeof d);
    rc = cli_parse(opts, &help, argc, argv, NULL);
    if (rc != CLI_EXIT_OK) {
        cli_list_free(&data);
        return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    }
    cli_quiet = quiet;
    if (!model_path) rc = cli_missing("encode", "--model FILE.aem");
    else if (!data.n) rc = cli_missing("encode", "--data PATH");
    else if (!out) rc = cli_missing("encode", "--out CODES.npy");
    if (rc != CLI_EXIT_OK) goto done;

    if ((rc = cli_load_model(&m, model_path)) != CLI_EXIT_OK) goto done;
    if ((st = ae_encoder_create(&enc, m)) != AE_OK) {
        rc = cli_lib_error(st, "%s has no encoder", model_path);
        goto done;
    }
    if ((st = ae_encoder_set_threads(enc, (int)threads)) != AE_OK) {
        rc = cli_lib_error(st, "--threads");
        goto done;
    }
    cli_input_of_model(&in, m);
    dopts.per_category = (size_t)per_category;
    dopts.invert = invert;
    t0 = cli_now();
    if ((rc = cli_data_load(&d, &data, &dopts, &in)) != CLI_EXIT_OK) goto done;
    cli_data_png_hint(&d, invert);
    code_size = ae_encoder_code_size(enc);
    if (code_size > SIZE_MAX / sizeof *codes / d.n ||
        !(codes = malloc(d.n * code_size * sizeof *codes))) {
        rc = cli_nomem("codes");
        goto done;
    }
    cli_progress_start(&progress);
    for (size_t first = 0; first < d.n; first += CHUNK) {
        size_t n = d.n - first < CHUNK ? d.n - first : CHUNK;
        char bar[40];
        st = ae_encoder_encode(enc, d.rows + first * d.width, n, codes + first * code_size,
                               n * code_size);
        if (st != AE_OK) {
            cli_progress_clear(&progress);
            rc = cli_lib_error(st, "encoding rows %zu..%zu", first, first + n - 1);
            goto done;
        }
        cli_progress_show(&progress, first + n == d.n, "encoding %s %s/%s rows",
                          cli_bar(bar, sizeof bar, first + n, d.n, 20),
                          cli_count(buf1, sizeof buf1, first + n), cli_count(buf2, sizeof buf2, d.n));
    }
    cli_progress_clear(&progress);
    {
        size_t dims[2] = {d.n, code_size};
        if ((st = ae_npy_save_f32(out, codes, 2, dims)) != AE_OK) {
            rc = cli_lib_error(st, "cannot write %s", out);
            goto done;
        }
    }
    if (labels_out) {
        size_t dims[1] = {d.n};
        labels = malloc(d.n * sizeof *labels);
        if (!labels) {
            rc = cli_nomem("labels");
            goto done;
        }
        for (size_t i = 0; i < d.n; i++) labels[i] = (float)d.labels[i];
        if ((st = ae_npy_save_f32(labels_out, labels, 1, dims)) != AE_OK) {
            rc = cli_lib_error(st, "cannot write %s", labels_out);
            goto done;
        }
    }
    if (json) {
        printf("{\"type\": \"encode\", \"codes\": ");
        cli_json_str(stdout, out);
        printf(", \"labels\": ");
        cli_json_str(stdout, labels_out);
        printf(", \"rows\": %zu, \"code_size\": %zu, \"categories\": %zu, \"seconds\": %.3f}\n",
               d.n, code_size, d.n_names, cli_now() - t0);
    } else if (!quiet) {
        printf("encoded %s row%s into codes of %zu values: %s", cli_count(buf1, sizeof buf1, d.n),
               d.n == 1 ? "" : "s", code_size, out);
        if (labels_out) printf(", labels of %zu categories: %s", d.n_names, labels_out);
        printf(" (%.2f s)\n", cli_now() - t0);
    }
    rc = CLI_EXIT_OK;
done:
    free(codes);
    free(labels);
    cli_data_free(&d);
    ae_encoder_free(enc);
    ae_model_free(m);
    cli_list_free(&data);
    return rc;
}
