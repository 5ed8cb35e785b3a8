/* autoenc info: what a model, index, checkpoint, .npy or PNG file holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define SPEC_CAP 8192

static const char MODEL_MAGIC[8] = {'A', 'E', 'M', 'O', 'D', 'E', 'L', '\0'};
static const char INDEX_MAGIC[8] = {'\x89', 'A', 'E', 'I', 'D', 'X', '\r', '\n'};
static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
static const char CKPT_MAGIC[8] = {'A', 'E', 'C', 'K', 'P', 'T', '\0', '\0'};
static const char PNG_MAGIC[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};

typedef enum file_kind {
    KIND_UNKNOWN, KIND_MODEL, KIND_INDEX, KIND_NPY, KIND_PNG, KIND_CHECKPOINT
} file_kind;

/* The kind from the first bytes, and the format version of model and index
 * files (a u32 at offset 8 in both, docs/formats.md). */
static int sniff(const char *path, file_kind *kind, unsigned *version)
{
    unsigned char head[16] = {0};
    size_t n;
    struct stat sb;
    FILE *f;
    *kind = KIND_UNKNOWN;
    *version = 0;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        cli_error("%s: is a folder, not a file", path);
        return CLI_EXIT_FILE;
    }
    f = fopen(path, "rb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return CLI_EXIT_FILE;
    }
    n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (n >= 8 && memcmp(head, MODEL_MAGIC, 8) == 0) *kind = KIND_MODEL;
    else if (n >= 8 && memcmp(head, INDEX_MAGIC, 8) == 0) *kind = KIND_INDEX;
    else if (n >= 6 && memcmp(head, NPY_MAGIC, 6) == 0) *kind = KIND_NPY;
    else if (n >= 8 && memcmp(head, PNG_MAGIC, 8) == 0) *kind = KIND_PNG;
    else if (n >= 8 && memcmp(head, CKPT_MAGIC, 8) == 0) *kind = KIND_CHECKPOINT;
    if (n >= 12)
        *version = (unsigned)head[8] | (unsigned)head[9] << 8 | (unsigned)head[10] << 16 |
                   (unsigned)head[11] << 24;
    return CLI_EXIT_OK;
}

static const char *checksum_word(ae_status st)
{
    return st == AE_OK ? "ok" : st == AE_ERR_CHECKSUM ? "mismatch" : "not verified";
}

static void json_dims(int rank, const size_t *dims)
{
    putchar('[');
    for (int i = 0; i < rank; i++) printf("%s%zu", i ? ", " : "", dims[i]);
    putchar(']');
}

static int info_model(const char *path, unsigned version, int json)
{
    ae_model *m = NULL;
    ae_status st = ae_model_load(&m, path);
    size_t in[3], code = 0, code_size = 0;
    int rank, has_code;
    char shape[64], *spec, *summary;
    if (st != AE_OK) {
        if (json) {
            printf("{\"type\": \"info\", \"file\": ");
            cli_json_str(stdout, path);
            printf(", \"kind\": \"model\", \"format_version\": %u, \"checksum\": \"%s\", "
                   "\"error\": ", version, checksum_word(st));
            cli_json_str(stdout, ae_last_error());
            printf("}\n");
        } else {
            printf("%s: model file, format version %u, checksum %s\n", path, version,
                   checksum_word(st));
        }
        return cli_lib_error(st, "%s is not usable", path);
    }
    rank = ae_model_input_rank(m);
    for (int i = 0; i < rank; i++) in[i] = ae_model_input_dim(m, i);
    has_code = ae_model_code_layer(&code, m) == AE_OK;
    if (has_code) code_size = ae_layer_output_size(ae_model_layer(m, code));
    spec = malloc(SPEC_CAP);
    summary = malloc(SPEC_CAP * 4);
    if (!spec || !summary) {
        free(spec);
        free(summary);
        ae_model_free(m);
        return cli_nomem(path);
    }
    cli_spec_of_model(spec, SPEC_CAP, m);
    if (json) {
        printf("{\"type\": \"info\", \"file\": ");
        cli_json_str(stdout, path);
        printf(", \"kind\": \"model\", \"format_version\": %u, \"checksum\": \"ok\", \"input\": ",
               version);
        json_dims(rank, in);
        printf(", \"parameters\": %zu, \"layers\": [", ae_model_param_count(m));
        for (size_t i = 0; i < ae_model_layer_count(m); i++) {
            const ae_layer *L = ae_model_layer(m, i);
            size_t out[3];
            int r = ae_layer_output_rank(L);
            for (int a = 0; a < r; a++) out[a] = ae_layer_output_dim(L, a);
            printf("%s{\"name\": ", i ? ", " : "");
            cli_json_str(stdout, ae_layer_name(L));
            printf(", \"kind\": \"%s\", \"activation\": \"%s\", \"output\": ",
                   ae_layer_kind_name(ae_layer_kind_of(L)), cli_activation_name(ae_layer_activation(L)));
            json_dims(r, out);
            printf(", \"parameters\": %zu}", ae_layer_param_count(L));
        }
        printf("], \"code_layer\": ");
        if (has_code) printf("%zu, \"code_size\": %zu", code, code_size);
        else printf("null, \"code_size\": null");
        printf(", \"spec\": ");
        cli_json_str(stdout, spec);
        printf("}\n");
    } else {
        char count[32];
        printf("%s: model file, format version %u, checksum ok\n", path, version);
        printf("  input       %s (%zu values)\n", cli_shape_text(shape, sizeof shape, rank, in),
               ae_model_input_size(m));
        printf("  parameters  %s in %zu layers\n",
               cli_count(count, sizeof count, ae_model_param_count(m)), ae_model_layer_count(m));
        if (has_code) {
            const ae_layer *L = ae_model_layer(m, code);
            size_t d[3];
            int r = ae_layer_output_rank(L);
            for (int a = 0; a < r; a++) d[a] = ae_layer_output_dim(L, a);
            printf("  code        layer %zu (%s), %s = %zu values%s\n", code + 1, ae_layer_name(L),
                   cli_shape_text(shape, sizeof shape, r, d), code_size,
                   code + 1 == ae_model_layer_count(m) ? " (an encoder: it ends at its code)" : "");
        } else {
            printf("  code        none marked: encode and search cannot use this model\n");
        }
        printf("  spec        %s\n", spec);
        if (ae_model_summary(m, summary, SPEC_CAP * 4, NULL) == AE_OK) printf("%s", summary);
    }
    free(spec);
    free(summary);
    ae_model_free(m);
    return CLI_EXIT_OK;
}

static int info_index(const char *path, unsigned version, int json)
{
    static const struct {
        ae_index_param key;
        const char *name;
    } params[] = {{AE_INDEX_LEAF_SIZE, "leaf_size"},
                  {AE_INDEX_HNSW_M, "hnsw_m"},
                  {AE_INDEX_HNSW_EF_CONSTRUCTION, "ef_construction"},
                  {AE_INDEX_HNSW_EF_SEARCH, "ef_search"},
                  {AE_INDEX_SEED, "seed"}};
    ae_index *idx = NULL;
    ae_status st = ae_index_load(&idx, path);
    const char *backend, *metric;
    char count[32], mem[32];
    if (st != AE_OK) {
        if (json) {
            printf("{\"type\": \"info\", \"file\": ");
            cli_json_str(stdout, path);
            printf(", \"kind\": \"index\", \"format_version\": %u, \"checksum\": \"%s\", "
                   "\"error\": ", version, checksum_word(st));
            cli_json_str(stdout, ae_last_error());
            printf("}\n");
        } else {
            printf("%s: index file, format version %u, checksum %s\n", path, version,
                   checksum_word(st));
        }
        return cli_lib_error(st, "%s is not usable", path);
    }
    backend = ae_index_backend_of(idx) == AE_INDEX_BRUTE      ? "brute"
              : ae_index_backend_of(idx) == AE_INDEX_BALLTREE ? "balltree"
                                                               : "hnsw";
    metric = ae_index_metric_of(idx) == AE_INDEX_COSINE          ? "cosine"
             : ae_index_metric_of(idx) == AE_INDEX_INNER_PRODUCT ? "inner-product"
                                                                 : "l2";
    if (json) {
        printf("{\"type\": \"info\", \"file\": ");
        cli_json_str(stdout, path);
        printf(", \"kind\": \"index\", \"format_version\": %u, \"checksum\": \"ok\", "
               "\"backend\": \"%s\", \"metric\": \"%s\", \"count\": %zu, \"dim\": %zu, "
               "\"labels\": %s, \"memory_bytes\": %zu",
               version, backend, metric, ae_index_count(idx), ae_index_dim(idx),
               ae_index_has_labels(idx) ? "true" : "false", ae_index_memory_bytes(idx));
    } else {
        printf("%s: index file, format version %u, checksum ok\n", path, version);
        printf("  backend     %s, metric %s\n", backend, metric);
        printf("  codes       %s of %zu values, %s\n", cli_count(count, sizeof count, ae_index_count(idx)),
               ae_index_dim(idx), ae_index_has_labels(idx) ? "with labels" : "without labels");
        printf("  memory      %s bytes\n", cli_count(mem, sizeof mem, ae_index_memory_bytes(idx)));
    }
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        int64_t v;
        /* only the parameters this backend uses answer */
        if (ae_index_get_int(&v, idx, params[i].key) != AE_OK) continue;
        if (json) printf(", \"%s\": %lld", params[i].name, (long long)v);
        else printf("  %-11s %lld\n", params[i].name, (long long)v);
    }
    if (json) printf("}\n");
    ae_index_free(idx);
    return CLI_EXIT_OK;
}

static int info_npy(const char *path, int json)
{
    ae_npy_dtype dtype;
    int rank;
    size_t dims[AE_TENSOR_MAX_RANK], row = 1;
    ae_status st = ae_npy_info(&dtype, &rank, dims, path);
    if (st != AE_OK) return cli_lib_error(st, "%s is not usable", path);
    for (int i = 1; i < rank; i++) row *= dims[i];
    if (json) {
        printf("{\"type\": \"info\", \"file\": ");
        cli_json_str(stdout, path);
        printf(", \"kind\": \"npy\", \"dtype\": \"%s\", \"shape\": ",
               dtype == AE_NPY_U8 ? "uint8" : "float32");
        json_dims(rank, dims);
        printf(", \"rows\": %zu, \"row_values\": %zu}\n", dims[0], row);
    } else {
        printf("%s: .npy array of %s, shape (", path, dtype == AE_NPY_U8 ? "uint8" : "float32");
        for (int i = 0; i < rank; i++) printf("%s%zu", i ? ", " : "", dims[i]);
        printf("%s): %zu row%s of %zu value%s\n", rank == 1 ? "," : "", dims[0],
               dims[0] == 1 ? "" : "s", row, row == 1 ? "" : "s");
    }
    return CLI_EXIT_OK;
}

static int info_png(const char *path, int json)
{
    size_t w, h;
    int colour, alpha, rc = cli_png_header(path, &w, &h, &colour, &alpha);
    if (rc != CLI_EXIT_OK) return rc;
    if (json) {
        printf("{\"type\": \"info\", \"file\": ");
        cli_json_str(stdout, path);
        printf(", \"kind\": \"png\", \"width\": %zu, \"height\": %zu, \"colour\": %s, "
               "\"alpha\": %s}\n", w, h, colour ? "true" : "false", alpha ? "true" : "false");
    } else {
        printf("%s: PNG image, %zux%zu, %s%s\n", path, w, h, colour ? "colour" : "grey",
               alpha ? " with alpha" : "");
    }
    return CLI_EXIT_OK;
}

/* A training checkpoint: its position and its model. */
static int info_checkpoint(const char *path, unsigned version, int json)
{
    ae_train_state *s = NULL;
    ae_model *m = NULL;
    ae_status st = ae_train_state_load(&s, &m, path);
    char count[32];
    if (st != AE_OK) {
        if (json) {
            printf("{\"type\": \"info\", \"file\": ");
            cli_json_str(stdout, path);
            printf(", \"kind\": \"checkpoint\", \"format_version\": %u, \"checksum\": \"%s\", "
                   "\"error\": ", version, checksum_word(st));
            cli_json_str(stdout, ae_last_error());
            printf("}\n");
        } else {
            printf("%s: training checkpoint, format version %u, checksum %s\n", path, version,
                   checksum_word(st));
        }
        return cli_lib_error(st, "%s is not usable", path);
    }
    if (json) {
        printf("{\"type\": \"info\", \"file\": ");
        cli_json_str(stdout, path);
        printf(", \"kind\": \"checkpoint\", \"format_version\": %u, \"checksum\": \"ok\", "
               "\"epochs_done\": %zu, \"step\": %zu, \"parameters\": %zu, \"layers\": %zu}\n",
               version, ae_train_state_epoch(s), ae_train_state_step(s), ae_model_param_count(m),
               ae_model_layer_count(m));
    } else {
        printf("%s: training checkpoint, format version %u, checksum ok\n", path, version);
        printf("  position    %zu epochs done", ae_train_state_epoch(s));
        if (ae_train_state_step(s)) printf(", %zu steps into the next", ae_train_state_step(s));
        printf("\n  model       %s parameters in %zu layers (autoenc train --resume %s)\n",
               cli_count(count, sizeof count, ae_model_param_count(m)), ae_model_layer_count(m),
               path);
    }
    ae_train_state_free(s);
    ae_model_free(m);
    return CLI_EXIT_OK;
}

int cli_cmd_info(int argc, char **argv)
{
    cli_list files = {0};
    int json = 0, rc, worst = CLI_EXIT_OK;
    const cli_opt opts[] = {
        {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "one JSON object per file on stdout", NULL},
        {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cli_cmd_help help = {
        "info",
        "autoenc info [--json] FILE...",
        "Shows what each FILE holds: a model (format version, checksum, input, layers and\n"
        "shapes, parameters, code layer and size, the spec that rebuilds it), an index\n"
        "(format version, checksum, backend, metric, count, code size, labels, parameters),\n"
        "a training checkpoint (format version, checksum, epochs and steps done, model size),\n"
        "a .npy array (dtype, shape) or a PNG image (size, colour). A file that cannot be\n"
        "used is reported, and the exit status is that of the first such file.",
        NULL};
    rc = cli_parse(opts, &help, argc, argv, &files);
    if (rc != CLI_EXIT_OK) {
        cli_list_free(&files);
        return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    }
    if (!files.n) {
        cli_list_free(&files);
        return cli_missing("info", "a FILE");
    }
    for (size_t i = 0; i < files.n; i++) {
        file_kind kind;
        unsigned version;
        const char *path = files.items[i];
        rc = sniff(path, &kind, &version);
        if (rc == CLI_EXIT_OK) {
            switch (kind) {
            case KIND_MODEL: rc = info_model(path, version, json); break;
            case KIND_INDEX: rc = info_index(path, version, json); break;
            case KIND_NPY: rc = info_npy(path, json); break;
            case KIND_PNG: rc = info_png(path, json); break;
            case KIND_CHECKPOINT: rc = info_checkpoint(path, version, json); break;
            default:
                cli_error("%s: not a libautoenc model, index or checkpoint, a .npy array or a PNG "
                          "image", path);
                rc = CLI_EXIT_FILE;
            }
        }
        if (worst == CLI_EXIT_OK) worst = rc;
    }
    cli_list_free(&files);
    return worst;
}
