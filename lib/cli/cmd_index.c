/* autoenc index build: a nearest-neighbour index over the rows of a codes .npy file;
 * autoenc index add / delete: codes added to or removed from a saved index. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const BACKENDS[] = {"balltree", "brute", "hnsw", NULL};
static const ae_index_backend BACKEND_VALUES[] = {AE_INDEX_BALLTREE, AE_INDEX_BRUTE, AE_INDEX_HNSW};
static const char *const METRICS[] = {"l2", "cosine", "inner-product", NULL};
static const ae_index_metric METRIC_VALUES[] = {AE_INDEX_L2, AE_INDEX_COSINE,
                                                AE_INDEX_INNER_PRODUCT};

/* Labels from a .npy of whole numbers, one per code. */
static int load_labels(int32_t **out, const char *path, size_t n_codes)
{
    ae_tensor *t = NULL;
    ae_status st = ae_npy_load(&t, path, 1.0f);
    const float *v;
    size_t n;
    int32_t *labels;
    *out = NULL;
    if (st != AE_OK) return cli_lib_error(st, "cannot read the labels");
    n = ae_tensor_size(t);
    if (n != n_codes) {
        cli_error("%s holds %zu labels but the codes file has %zu rows", path, n, n_codes);
        ae_tensor_free(t);
        return CLI_EXIT_MISMATCH;
    }
    v = ae_tensor_data_const(t);
    labels = malloc(n * sizeof *labels);
    if (!labels) {
        ae_tensor_free(t);
        return cli_nomem(path);
    }
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] == floorf(v[i]) && v[i] >= -2147483648.0f && v[i] < 2147483648.0f)) {
            cli_error("%s: label %zu is %g, not a whole number that fits 32 bits", path, i,
                      (double)v[i]);
            free(labels);
            ae_tensor_free(t);
            return CLI_EXIT_FILE;
        }
        labels[i] = (int32_t)v[i];
    }
    ae_tensor_free(t);
    *out = labels;
    return CLI_EXIT_OK;
}

static int set_param(ae_index *idx, ae_index_param key, int64_t value, const char *option,
                     const char *backend)
{
    ae_status st;
    if (value < 0) return CLI_EXIT_OK; /* not given: the library's default */
    if ((st = ae_index_set_int(idx, key, value)) == AE_OK) return CLI_EXIT_OK;
    if (st == AE_ERR_INVALID_ARG) {
        cli_error("index build: %s does not apply to the %s backend", option, backend);
        return CLI_EXIT_USAGE;
    }
    return cli_lib_error(st, "index build: %s", option);
}

static int index_build(int argc, char **argv)
{
    const char *codes_path = NULL, *labels_path = NULL, *out = NULL;
    int backend = 0, metric = 0, quiet = 0, json = 0, rc;
    int64_t leaf = -1, hnsw_m = -1, ef_c = -1, ef_s = -1, seed = -1;
    const cli_opt opts[] = {
        {"codes", 0, CLI_OPT_STRING, &codes_path, 0, 0, "CODES.npy",
         "codes to index (autoenc encode --out); row i gets id i", NULL},
        {"out", 0, CLI_OPT_STRING, &out, 0, 0, "INDEX.aei", "where the index goes", NULL},
        {"backend", 0, CLI_OPT_CHOICE, &backend, 0, 0, "NAME",
         "exact ball tree, exact brute force, or approximate HNSW graph", BACKENDS},
        {"metric", 0, CLI_OPT_CHOICE, &metric, 0, 0, "NAME", "distance", METRICS},
        {"labels", 0, CLI_OPT_STRING, &labels_path, 0, 0, "LABELS.npy",
         "a category number per code (autoenc encode --labels-out)", NULL},
        {"leaf-size", 0, CLI_OPT_INT, &leaf, 1, 1048576, "N", "balltree: leaf size (default 40)",
         NULL},
        {"hnsw-m", 0, CLI_OPT_INT, &hnsw_m, 2, 256, "N", "hnsw: links per node (default 16)",
         NULL},
        {"ef-construction", 0, CLI_OPT_INT, &ef_c, 1, 65536, "N",
         "hnsw: candidate list while building (default 200)", NULL},
        {"ef-search", 0, CLI_OPT_INT, &ef_s, 1, 65536, "N",
         "hnsw: default candidate list of a search (default 64)", NULL},
        {"seed", 0, CLI_OPT_INT, &seed, 0, 9007199254740991.0, "N",
         "hnsw: seed of the graph's levels (default 42)", NULL},
        {"quiet", 'q', CLI_OPT_FLAG, &quiet, 0, 0, NULL, "no progress display, no summary", NULL},
        {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "the result as one JSON object on stdout",
         NULL},
        {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cli_cmd_help help = {
        "index build",
        "autoenc index build --codes CODES.npy --out INDEX.aei [OPTIONS]",
        "Builds a nearest-neighbour index over the rows of CODES.npy (float32 or uint8, any\n"
        "shape: a row is everything after the first axis) and saves it. Ids are row numbers.",
        "autoenc index add and index delete change a saved index."};
    ae_tensor *codes = NULL;
    int32_t *labels = NULL;
    ae_index *idx = NULL;
    cli_progress progress;
    size_t n, dim;
    double t0;
    ae_status st;
    char buf1[32];

    rc = cli_parse(opts, &help, argc, argv, NULL);
    if (rc != CLI_EXIT_OK) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    cli_quiet = quiet;
    if (!codes_path) return cli_missing("index build", "--codes CODES.npy");
    if (!out) return cli_missing("index build", "--out INDEX.aei");

    if ((st = ae_npy_load(&codes, codes_path, 1.0f)) != AE_OK)
        return cli_lib_error(st, "cannot read the codes");
    n = ae_tensor_dim(codes, 0);
    dim = ae_tensor_size(codes) / n;
    if (labels_path && (rc = load_labels(&labels, labels_path, n)) != CLI_EXIT_OK) goto done;
    if ((st = ae_index_create(&idx, BACKEND_VALUES[backend], METRIC_VALUES[metric], dim)) != AE_OK) {
        rc = cli_lib_error(st, "index build");
        goto done;
    }
    if ((rc = set_param(idx, AE_INDEX_LEAF_SIZE, leaf, "--leaf-size", BACKENDS[backend])) ||
        (rc = set_param(idx, AE_INDEX_HNSW_M, hnsw_m, "--hnsw-m", BACKENDS[backend])) ||
        (rc = set_param(idx, AE_INDEX_HNSW_EF_CONSTRUCTION, ef_c, "--ef-construction",
                        BACKENDS[backend])) ||
        (rc = set_param(idx, AE_INDEX_HNSW_EF_SEARCH, ef_s, "--ef-search", BACKENDS[backend])) ||
        (rc = set_param(idx, AE_INDEX_SEED, seed, "--seed", BACKENDS[backend])))
        goto done;

    /* the library's build takes no callback: the line says what runs until it returns */
    cli_progress_start(&progress);
    cli_progress_show(&progress, 1, "building the %s index over %s codes of %zu values...",
                      BACKENDS[backend], cli_count(buf1, sizeof buf1, n), dim);
    t0 = cli_now();
    st = ae_index_build(idx, ae_tensor_data_const(codes), n, NULL, labels);
    cli_progress_clear(&progress);
    if (st != AE_OK) {
        rc = cli_lib_error(st, "cannot index %s", codes_path);
        goto done;
    }
    if ((st = ae_index_save(idx, out)) != AE_OK) {
        rc = cli_lib_error(st, "cannot write %s", out);
        goto done;
    }
    if (json) {
        printf("{\"type\": \"index\", \"index\": ");
        cli_json_str(stdout, out);
        printf(", \"backend\": \"%s\", \"metric\": \"%s\", \"count\": %zu, \"dim\": %zu, "
               "\"labels\": %s, \"memory_bytes\": %zu, \"seconds\": %.3f}\n",
               BACKENDS[backend], METRICS[metric], n, dim, labels ? "true" : "false",
               ae_index_memory_bytes(idx), cli_now() - t0);
    } else if (!quiet) {
        printf("indexed %s code%s of %zu values (%s, %s%s) in %.2f s: %s\n",
               cli_count(buf1, sizeof buf1, n), n == 1 ? "" : "s", dim, BACKENDS[backend],
               METRICS[metric],
               labels ? ", with labels" : "", cli_now() - t0, out);
    }
    rc = CLI_EXIT_OK;
done:
    ae_index_free(idx);
    free(labels);
    ae_tensor_free(codes);
    return rc;
}

/* Saves idx to out, or back over path when out is NULL. */
static int save_index(const ae_index *idx, const char *path, const char *out)
{
    ae_status st = ae_index_save(idx, out ? out : path);
    if (st != AE_OK) return cli_lib_error(st, "cannot write %s", out ? out : path);
    return CLI_EXIT_OK;
}

static int index_add(int argc, char **argv)
{
    const char *index_path = NULL, *codes_path = NULL, *labels_path = NULL, *out = NULL;
    int quiet = 0, json = 0, rc;
    int64_t first = INT64_MIN;
    const cli_opt opts[] = {
        {"index", 0, CLI_OPT_STRING, &index_path, 0, 0, "INDEX.aei", "the index to add to", NULL},
        {"codes", 0, CLI_OPT_STRING, &codes_path, 0, 0, "CODES.npy",
         "codes to add, as for index build", NULL},
        {"first-id", 0, CLI_OPT_INT, &first, -9007199254740991.0, 9007199254740991.0, "N",
         "id of the first new code, the next ones count up (default: the index's code count, "
         "the next row number of an index built by index build)", NULL},
        {"labels", 0, CLI_OPT_STRING, &labels_path, 0, 0, "LABELS.npy",
         "a category number per code; required when the index has labels", NULL},
        {"out", 0, CLI_OPT_STRING, &out, 0, 0, "INDEX.aei",
         "where the changed index goes (default: back over --index, atomically)", NULL},
        {"quiet", 'q', CLI_OPT_FLAG, &quiet, 0, 0, NULL, "no summary", NULL},
        {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "the result as one JSON object on stdout",
         NULL},
        {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cli_cmd_help help = {
        "index add",
        "autoenc index add --index INDEX.aei --codes CODES.npy [OPTIONS]",
        "Adds the rows of CODES.npy to a saved index under consecutive ids and saves it.\n"
        "An id already in the index is an error and nothing changes.",
        NULL};
    ae_tensor *codes = NULL;
    int32_t *labels = NULL;
    int64_t *ids = NULL;
    ae_index *idx = NULL;
    size_t n, dim;
    ae_status st;
    char buf1[32];

    rc = cli_parse(opts, &help, argc, argv, NULL);
    if (rc != CLI_EXIT_OK) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    if (!index_path) return cli_missing("index add", "--index INDEX.aei");
    if (!codes_path) return cli_missing("index add", "--codes CODES.npy");
    if ((st = ae_index_load(&idx, index_path)) != AE_OK)
        return cli_lib_error(st, "cannot read the index");
    if ((st = ae_npy_load(&codes, codes_path, 1.0f)) != AE_OK) {
        rc = cli_lib_error(st, "cannot read the codes");
        goto done;
    }
    n = ae_tensor_dim(codes, 0);
    dim = ae_tensor_size(codes) / n;
    if ((st = ae_index_check_dim(idx, dim)) != AE_OK) {
        rc = cli_lib_error(st, "%s does not fit %s", codes_path, index_path);
        goto done;
    }
    if (labels_path && (rc = load_labels(&labels, labels_path, n)) != CLI_EXIT_OK) goto done;
    if (!labels != !ae_index_has_labels(idx)) {
        cli_error("index add: %s", labels ? "the index has no labels: leave out --labels"
                                          : "the index has labels: give --labels LABELS.npy");
        rc = CLI_EXIT_MISMATCH;
        goto done;
    }
    if (first == INT64_MIN) first = (int64_t)ae_index_count(idx); /* not given */
    ids = malloc(n * sizeof *ids);
    if (!ids) {
        rc = cli_nomem("ids");
        goto done;
    }
    for (size_t i = 0; i < n; i++) ids[i] = first + (int64_t)i;
    if ((st = ae_index_add(idx, ae_tensor_data_const(codes), n, ids, labels)) != AE_OK) {
        rc = cli_lib_error(st, "cannot add %s", codes_path);
        goto done;
    }
    if ((rc = save_index(idx, index_path, out)) != CLI_EXIT_OK) goto done;
    if (json)
        printf("{\"type\": \"index_add\", \"added\": %zu, \"first_id\": %lld, \"count\": %zu}\n",
               n, (long long)first, ae_index_count(idx));
    else if (!quiet)
        printf("added %s code%s (ids %lld to %lld): %zu in %s\n", cli_count(buf1, sizeof buf1, n),
               n == 1 ? "" : "s", (long long)first, (long long)(first + (int64_t)n - 1),
               ae_index_count(idx), out ? out : index_path);
done:
    ae_index_free(idx);
    free(labels);
    free(ids);
    ae_tensor_free(codes);
    return rc;
}

static int index_delete(int argc, char **argv)
{
    const char *index_path = NULL, *out = NULL;
    int quiet = 0, json = 0, compact = 0, rc;
    const cli_opt opts[] = {
        {"index", 0, CLI_OPT_STRING, &index_path, 0, 0, "INDEX.aei", "the index to change", NULL},
        {"compact", 0, CLI_OPT_FLAG, &compact, 0, 0, NULL,
         "rebuild from the codes left to reclaim the space of removed ones", NULL},
        {"out", 0, CLI_OPT_STRING, &out, 0, 0, "INDEX.aei",
         "where the changed index goes (default: back over --index, atomically)", NULL},
        {"quiet", 'q', CLI_OPT_FLAG, &quiet, 0, 0, NULL, "no summary", NULL},
        {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "the result as one JSON object on stdout",
         NULL},
        {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cli_cmd_help help = {
        "index delete",
        "autoenc index delete --index INDEX.aei [OPTIONS] ID...",
        "Removes the codes with the given ids from a saved index and saves it. They never\n"
        "appear in searches again. An unknown id is an error and nothing changes.",
        NULL};
    cli_list pos = {NULL, 0};
    int64_t *ids = NULL;
    ae_index *idx = NULL;
    ae_status st;

    rc = cli_parse(opts, &help, argc, argv, &pos);
    if (rc != CLI_EXIT_OK) {
        cli_list_free(&pos);
        return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    }
    if (!index_path) {
        cli_list_free(&pos);
        return cli_missing("index delete", "--index INDEX.aei");
    }
    if (pos.n == 0) {
        cli_list_free(&pos);
        return cli_missing("index delete", "an ID");
    }
    ids = malloc(pos.n * sizeof *ids);
    if (!ids) {
        cli_list_free(&pos);
        return cli_nomem("ids");
    }
    for (size_t i = 0; i < pos.n; i++) {
        char *end;
        long long v = strtoll(pos.items[i], &end, 10);
        if (end == pos.items[i] || *end) {
            cli_error("index delete: '%s' is not an id (a whole number)", pos.items[i]);
            rc = CLI_EXIT_USAGE;
            goto done;
        }
        ids[i] = (int64_t)v;
    }
    if ((st = ae_index_load(&idx, index_path)) != AE_OK) {
        rc = cli_lib_error(st, "cannot read the index");
        goto done;
    }
    if ((st = ae_index_remove(idx, ids, pos.n)) != AE_OK) {
        rc = cli_lib_error(st, "index delete");
        goto done;
    }
    if (compact && (st = ae_index_compact(idx)) != AE_OK) {
        rc = cli_lib_error(st, "index delete --compact");
        goto done;
    }
    if ((rc = save_index(idx, index_path, out)) != CLI_EXIT_OK) goto done;
    if (json)
        printf("{\"type\": \"index_delete\", \"removed\": %zu, \"count\": %zu, "
               "\"compacted\": %s}\n", pos.n, ae_index_count(idx), compact ? "true" : "false");
    else if (!quiet)
        printf("removed %zu code%s: %zu left in %s\n", pos.n, pos.n == 1 ? "" : "s",
               ae_index_count(idx), out ? out : index_path);
done:
    ae_index_free(idx);
    free(ids);
    cli_list_free(&pos);
    return rc;
}

int cli_cmd_index(int argc, char **argv)
{
    if (argc < 2) {
        cli_error("index: say what to do: autoenc index build --codes CODES.npy --out "
                  "INDEX.aei, index add or index delete (see autoenc index build --help)");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "build") == 0) return index_build(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        char *sub[] = {argv[0], argv[1], NULL};
        return index_build(2, sub);
    }
    if (strcmp(argv[1], "add") == 0) return index_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "delete") == 0) return index_delete(argc - 1, argv + 1);
    cli_error("index: unknown action '%s' (build, add or delete; see autoenc index build "
              "--help)", argv[1]);
    return CLI_EXIT_USAGE;
}
