/*
 * Data-parallel training and sharded search over MPI (libautoenc_mpi):
 *
 *     mpirun -np 2 ./distributed_train --data quickdraw10 [--model simple|deep|conv]
 *     mpirun --hostfile hosts -np 8 ./distributed_train --data /shared/quickdraw10
 *
 * Every rank loads QuickDraw-10 with the same seed (so the same split),
 * keeps its shard of the training drawings (ae_mpi_shard), gets rank 0's
 * initial weights (ae_mpi_broadcast_model) and trains with the tutorial's
 * recipe, its gradients averaged over the ranks every step (ae_mpi_attach):
 * with R ranks and --batch B per rank, each step sees R x B drawings. Rank 0
 * saves the model. Then every rank encodes its shard, indexes it, and the
 * held-out drawings are searched across all shards (ae_mpi_index_search);
 * rank 0 checks that the neighbours equal one index over every shard's
 * codes, and reports precision@10. Writes --out/distributed_train.aem; the
 * last line printed (rank 0) is a JSON object of the figures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoenc/mpi.h"
#include "ex_support.h"

#define NAME "distributed_train"
#define K 10

static int parse_preset(const char *name, ae_preset *out)
{
    if (ae_preset_from_name(out, name) == AE_OK) return EX_OK;
    fprintf(stderr, "error: --model must be simple, deep or conv, not '%s'\n", name);
    return EX_ERR;
}

/* Agrees on a setup step's status across the ranks: every rank stops when
 * any failed (the failing rank printed why). */
static int all_ok(ae_mpi *ctx, ae_status local, const char *what)
{
    ae_status all = AE_ERR_IO;
    if (ae_mpi_agree(&all, ctx, local) != AE_OK) {
        fprintf(stderr, "error: rank %d: %s: %s\n", ae_mpi_rank(ctx), what, ae_mpi_errmsg(ctx));
        return 0;
    }
    if (all != AE_OK && local == AE_OK && ae_mpi_rank(ctx) == 0)
        fprintf(stderr, "error: %s failed on another rank (%s)\n", what, ae_status_string(all));
    return all == AE_OK;
}

int main(int argc, char **argv)
{
    ex_args a;
    ex_fit_args fit;
    const char *model_name = "simple";
    /* --model, then the training examples' --batch (per rank), --patience,
     * --min-delta and --threads (per rank) */
    ex_option extra[6] = {{"model", EX_OPT_STRING, &model_name, 0, 0, "NAME", "simple, deep or conv"}};
    ae_mpi *ctx = NULL;
    ae_preset preset;
    ae_dataset *ds = NULL;
    ae_model *m = NULL;
    ae_encoder *enc = NULL;
    ae_index *shard_idx = NULL, *whole = NULL;
    ae_train_config *cfg = NULL;
    ae_history *h = NULL;
    const float *train, *test;
    const int32_t *train_labels, *test_labels;
    size_t n_train, n_test, first, rows, code, nq;
    float *codes = NULL, *all_codes = NULL, *d = NULL, *td = NULL;
    int64_t *ids = NULL, *tids = NULL;
    double t0, fit_s, reduce_s, p10 = 0, test_bce = 0;
    size_t reduce_calls, reduce_bytes, epochs_run;
    ae_status st;
    int rank, size, rc = 1, same = 0;

    MPI_Init(&argc, &argv);
    ex_args_defaults(&a);
    a.epochs = 60;
    ex_fit_args_init(&fit, 32);
    fit.threads = 1;
    memcpy(extra + 1, fit.options, sizeof fit.options);
    if (ae_mpi_create(&ctx, MPI_COMM_WORLD) != AE_OK) {
        fprintf(stderr, "error: %s\n", ae_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    rank = ae_mpi_rank(ctx);
    size = ae_mpi_size(ctx);
    /* only rank 0 prints --help and option errors; every rank parses */
    rc = ex_args_parse(&a, extra, argc, argv,
                       "Data-parallel training and sharded search over MPI (mpirun -np R)", 1);
    if (rc != EX_OK || parse_preset(model_name, &preset) != EX_OK) {
        ae_mpi_free(ctx);
        MPI_Finalize();
        return rc == EX_HELP ? 0 : 2;
    }
    rc = 1;

    /* the data, the same split on every rank; this rank's shard of it */
    t0 = ex_now();
    st = ae_dataset_load(&ds, a.data_dir, a.per_category, AE_DATASET_DEFAULT_TEST_FRACTION,
                         a.seed);
    if (st != AE_OK) fprintf(stderr, "error: rank %d: loading the data: %s\n", rank, ae_last_error());
    if (!all_ok(ctx, st, "loading the data")) goto done;
    ae_dataset_train(&train, &train_labels, &n_train, ds);
    ae_dataset_test(&test, &test_labels, &n_test, ds);
    if (ex_failed(ae_mpi_shard(&first, &rows, ctx, n_train), "sharding")) goto done;
    if (rank == 0)
        printf("%d ranks: %zu training drawings each (rows [rank x %zu, +%zu)), loaded in %.2f s\n",
               size, rows, rows, rows, ex_now() - t0);

    /* the model, rank 0's initial weights everywhere */
    st = ae_preset_build(&m, preset, a.seed + (uint64_t)rank);
    if (!all_ok(ctx, st, "building the model")) goto done;
    if (ex_failed(ae_mpi_broadcast_model(ctx, m, 0), "broadcasting the weights")) goto done;

    /* the tutorial's recipe; gradients averaged over the ranks every step,
     * losses summed, so early stopping decides alike on every rank */
    st = ex_tutorial_config(&cfg, a.epochs, a.seed, &fit, NULL);
    /* epoch lines from rank 0 only */
    if (st == AE_OK && rank != 0) st = ae_train_config_set_callback(cfg, NULL, NULL);
    if (st == AE_OK) st = ae_mpi_attach(ctx, cfg);
    if (st == AE_OK) st = ae_history_create(&h);
    if (ex_failed(st, "training settings")) goto done;
    if (rank == 0)
        printf("training %s: batch %ld per rank (%ld per step), %ld thread(s) per rank\n",
               model_name, fit.batch, fit.batch * size, fit.threads);
    t0 = ex_now();
    st = ae_train_fit(m, cfg, train + first * 784, NULL, rows, h);
    fit_s = ex_now() - t0;
    if (st != AE_OK) {
        /* the others stopped in the same step or give up after the timeout */
        fprintf(stderr, "error: rank %d: training: %s (%s)\n", rank, ae_last_error(),
                ae_mpi_errmsg(ctx));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    epochs_run = ae_history_epochs(h);
    ae_mpi_reduce_stats(&reduce_s, &reduce_calls, &reduce_bytes, ctx);
    if (rank == 0) {
        char path[1024];
        ex_print_fit_outcome(h);
        printf("%zu epochs in %.2f s (%.0f drawings/s over all ranks); rank 0 spent %.2f s in "
               "%zu reductions (%.3f ms per step, %.1f KB each)\n",
               epochs_run, fit_s, (double)epochs_run * (double)rows * size / fit_s, reduce_s,
               reduce_calls, 1e3 * reduce_s / (double)(reduce_calls ? reduce_calls : 1),
               reduce_calls ? reduce_bytes / 1024.0 / (double)reduce_calls : 0);
        st = ae_model_evaluate(&test_bce, m, AE_LOSS_BCE, test, test, n_test);
        if (ex_failed(st, "evaluating")) MPI_Abort(MPI_COMM_WORLD, 1);
        printf("test binary cross-entropy: %.4f\n", test_bce);
        /* only rank 0 writes files */
        if (ex_mkdir_p(a.out_dir) != EX_OK ||
            ex_pathf(path, sizeof path, "%s/%s.aem", a.out_dir, NAME) != EX_OK ||
            ex_failed(ae_model_save(m, path), "saving the model"))
            MPI_Abort(MPI_COMM_WORLD, 1);
        printf("saved the model to %s\n", path);
    }

    /* sharded search: each rank indexes the codes of its shard; the
     * held-out drawings are searched across all shards */
    st = ae_encoder_create(&enc, m);
    if (ex_failed(st, "encoder")) goto done;
    code = ae_encoder_code_size(enc);
    nq = n_test;
    codes = malloc(rows * code * sizeof *codes);
    all_codes = malloc(n_train * code * sizeof *all_codes);
    d = malloc(nq * K * sizeof *d);
    td = malloc(nq * K * sizeof *td);
    ids = malloc(nq * K * sizeof *ids);
    tids = malloc(nq * K * sizeof *tids);
    st = codes && all_codes && d && td && ids && tids ? AE_OK : AE_ERR_NOMEM;
    if (st == AE_OK) st = ae_encoder_encode(enc, train + first * 784, rows, codes, rows * code);
    if (st == AE_OK) st = ae_index_create(&shard_idx, AE_INDEX_BALLTREE, AE_INDEX_L2, code);
    if (st == AE_OK) st = ae_index_build(shard_idx, codes, rows, NULL, NULL);
    if (!all_ok(ctx, st, "indexing the shard")) goto done;
    {
        float *queries = malloc(nq * code * sizeof *queries);
        st = queries ? ae_encoder_encode(enc, test, nq, queries, nq * code) : AE_ERR_NOMEM;
        if (!all_ok(ctx, st, "encoding the queries")) {
            free(queries);
            goto done;
        }
        t0 = ex_now();
        st = ae_mpi_index_search(ctx, shard_idx, (int64_t)first, queries, nq, K, 0, d, ids);
        if (ex_failed(st, "sharded search")) {
            free(queries);
            goto done;
        }
        if (rank == 0) {
            size_t hits = 0;
            printf("sharded search: %zu queries over %d shards in %.2f s\n", nq, size, ex_now() - t0);
            /* the same search on one index over every shard's codes */
            st = ae_encoder_encode(enc, train, rows * (size_t)size, all_codes, n_train * code);
            if (st == AE_OK) st = ae_index_create(&whole, AE_INDEX_BRUTE, AE_INDEX_L2, code);
            if (st == AE_OK) st = ae_index_build(whole, all_codes, rows * (size_t)size, NULL, NULL);
            if (st == AE_OK) st = ae_index_search(whole, queries, nq, K, 0, td, tids);
            if (ex_failed(st, "single index")) MPI_Abort(MPI_COMM_WORLD, 1);
            same = memcmp(ids, tids, nq * K * sizeof *ids) == 0;
            printf("the same neighbours as one index over all %zu codes: %s\n", rows * (size_t)size,
                   same ? "yes" : "NO");
            for (size_t i = 0; i < nq * K; i++) hits += train_labels[ids[i]] == test_labels[i / K];
            p10 = (double)hits / (double)(nq * K);
            printf("precision@10 of the held-out drawings: %.4f\n", p10);
        }
        free(queries);
    }
    if (rank == 0)
        printf("{\"example\": \"%s\", \"ranks\": %d, \"model\": \"%s\", \"batch_per_rank\": %ld, "
               "\"epochs\": %zu, \"fit_seconds\": %.2f, \"test_bce\": %.4f, "
               "\"reduce_ms_per_step\": %.3f, \"sharded_equals_single\": %s, "
               "\"precision_at_10\": %.4f}\n",
               NAME, size, model_name, fit.batch, epochs_run, fit_s, test_bce,
               1e3 * reduce_s / (double)(reduce_calls ? reduce_calls : 1), same ? "true" : "false",
               p10);
    rc = rank == 0 && !same ? 1 : 0;
done:
    free(codes);
    free(all_codes);
    free(d);
    free(td);
    free(ids);
    free(tids);
    ae_index_free(shard_idx);
    ae_index_free(whole);
    ae_encoder_free(enc);
    ae_history_free(h);
    ae_train_config_free(cfg);
    ae_model_free(m);
    ae_dataset_free(ds);
    ae_mpi_free(ctx);
    MPI_Finalize();
    return rc;
}
