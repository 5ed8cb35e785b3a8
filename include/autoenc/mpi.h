/*
 * libautoenc_mpi: data-parallel training and sharded search over MPI.
 *
 * An optional component, a library of its own (libautoenc_mpi, pkg-config
 * `autoenc_mpi`, CMake target autoenc::autoenc_mpi; built with
 * -DAE_BUILD_MPI=ON), so the core library keeps no MPI dependency. It is
 * built only on libautoenc's public API: the training reduction hooks of
 * train.h (ae_train_config_set_reduce) and ae_index_merge_results of index.h,
 * which NCCL or Gloo users can plug their own transport into the same way.
 *
 * A data-parallel run, every rank the same program (examples/distributed_train.c):
 *
 *     MPI_Init(&argc, &argv);
 *     ae_mpi_create(&ctx, MPI_COMM_WORLD);
 *     ae_mpi_shard(&first, &rows, ctx, n);          // this rank's rows
 *     ... load rows [first, first + rows) ...
 *     ae_preset_build(&m, AE_PRESET_SIMPLE, seed);
 *     ae_mpi_broadcast_model(ctx, m, 0);            // rank 0's weights everywhere
 *     ae_mpi_attach(ctx, cfg);                      // gradients averaged per step
 *     st = ae_train_fit(m, cfg, x, NULL, rows, h);  // on every rank
 *     if (ae_mpi_rank(ctx) == 0) ae_model_save(m, "model.aem");
 *
 * Semantics: every step each rank computes the mean gradient of its own
 * batch (AE_TRAIN_BATCH rows of its shard); one fused MPI_Allreduce per step
 * (the whole flat gradient plus one status float) averages them, so with
 * equal batches R ranks x batch b step like one process with batch R * b
 * over the same rows (tests/mpi: within 1e-5 relative). Every rank needs the
 * same number of steps per epoch: give each the same row count
 * (ae_mpi_shard does). The epoch's training and validation losses are
 * summed over the ranks before they are used, so early stopping and the
 * history agree on every rank. Each rank shuffles its own shard with the
 * fit seed. Only rank 0 should write files (model, checkpoints).
 *
 * Failures: a rank whose gradient is not finite makes every rank's fit fail
 * in the same step (the status float of the fused allreduce). A rank that
 * fails elsewhere, or dies, leaves the others waiting in a collective: they
 * give up after the timeout (ae_mpi_set_timeout, default 300 s) with
 * AE_ERR_IO instead of hanging, the context is then unusable
 * (AE_ERR_STATE), and the program should end the job with MPI_Abort (the
 * library never aborts). Check setup steps (loading data, building the
 * model) on every rank with ae_mpi_agree before training, so a rank that
 * cannot start stops all of them at once.
 *
 * Threading: a context is used by one thread at a time, and by one fit at a
 * time. MPI must be initialised (any thread level) before ae_mpi_create and
 * finalised after ae_mpi_free.
 */
#ifndef AUTOENC_MPI_H
#define AUTOENC_MPI_H

/* Only MPI's C interface is used: skip the deprecated C++ bindings, which
 * Open MPI's and MPICH's mpi.h otherwise pull into C++ programs (and which
 * warn under -Wextra). */
#ifndef OMPI_SKIP_MPICXX
/** Open MPI: leave out the C++ bindings. */
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
/** MPICH: leave out the C++ bindings. */
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include "common.h"
#include "index.h"
#include "model.h"
#include "train.h"

/** Declares a function exported by libautoenc_mpi. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define AE_MPI_API __attribute__((visibility("default")))
#else
#define AE_MPI_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque MPI context: a duplicate of a communicator, buffers, timings. */
typedef struct ae_mpi ae_mpi;

/**
 * New context over a duplicate of @p comm (MPI_Comm_dup: its traffic never
 * mixes with the program's own). Collective: every rank of @p comm calls it.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL out, MPI not initialised, or
 *         MPI_COMM_NULL), AE_ERR_IO (an MPI call failed) or AE_ERR_NOMEM.
 */
AE_MPI_API ae_status ae_mpi_create(ae_mpi **out, MPI_Comm comm);
/** Frees a context (collective: MPI_Comm_free). NULL is accepted. */
AE_MPI_API void ae_mpi_free(ae_mpi *ctx);
/** This process's rank in the context's communicator (-1 for NULL). */
AE_MPI_API int ae_mpi_rank(const ae_mpi *ctx);
/** The number of ranks (0 for NULL). */
AE_MPI_API int ae_mpi_size(const ae_mpi *ctx);
/** Message of the last failed call on @p ctx; "" if none. Never NULL. */
AE_MPI_API const char *ae_mpi_errmsg(const ae_mpi *ctx);

/**
 * How long a collective of the context waits for the other ranks before it
 * fails with AE_ERR_IO (the context is then unusable). @p seconds in
 * [0.001, 1e6]; default 300.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL) or AE_ERR_RANGE.
 */
AE_MPI_API ae_status ae_mpi_set_timeout(ae_mpi *ctx, double seconds);

/**
 * This rank's shard of @p n rows: @p count = n / size rows starting at
 * @p offset = rank * count. Every rank gets the same count, as training
 * needs; the last n % size rows are left out.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL) or AE_ERR_RANGE (n < size).
 */
AE_MPI_API ae_status ae_mpi_shard(size_t *offset, size_t *count, const ae_mpi *ctx, size_t n);

/**
 * Every rank learns every rank's status: @p all receives the first error
 * of the lowest rank that has one, else AE_OK. Collective; for setup steps,
 * so that a rank that cannot start stops every rank together.
 * @return AE_OK (the exchange worked; read @p all), AE_ERR_INVALID_ARG or
 *         AE_ERR_IO (timeout or MPI failure).
 */
AE_MPI_API ae_status ae_mpi_agree(ae_status *all, ae_mpi *ctx, ae_status local);

/**
 * Copies the parameters of @p model on rank @p root to the model of every
 * other rank (one MPI_Bcast of the flat parameters). The models must have the
 * same layers (checked by a parameter-count exchange). Collective.
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_RANGE (bad root), AE_ERR_SHAPE
 *         (models differ), AE_ERR_NUMERIC (non-finite root weights),
 *         AE_ERR_NOMEM or AE_ERR_IO.
 */
AE_MPI_API ae_status ae_mpi_broadcast_model(ae_mpi *ctx, ae_model *model, int root);

/**
 * Installs the context's reduction hooks in @p cfg (ae_train_config_set_reduce):
 * fits with @p cfg then average their gradients over the ranks every step,
 * sum their loss statistics every epoch, and, for models with batch
 * normalisation, sum every batch-norm layer's batch sums in every step
 * (synchronised batch norm: R ranks with batch b train as one process with
 * batch R b, and the moving statistics stay equal on every rank). The
 * context must outlive those fits.
 * @return AE_OK, AE_ERR_INVALID_ARG or AE_ERR_STATE (unusable context).
 */
AE_MPI_API ae_status ae_mpi_attach(ae_mpi *ctx, ae_train_config *cfg);

/**
 * Time the context spent in its reductions since creation: @p seconds
 * (wall clock, waiting included), @p calls and the @p bytes each rank sent
 * into them. Any out pointer may be NULL.
 * @return AE_OK or AE_ERR_INVALID_ARG (NULL ctx).
 */
AE_MPI_API ae_status ae_mpi_reduce_stats(double *seconds, size_t *calls, size_t *bytes,
                                         const ae_mpi *ctx);

/**
 * Sharded k-NN search: every rank searches its own @p shard (an index over
 * its rows, ids local to it, made global by adding @p id_offset) with the
 * same @p nq queries; the shards' results are gathered and merged
 * (ae_index_merge_results), so every rank receives the neighbours one index
 * over all ranks' rows would give (exact backends: exactly). Collective.
 * @param distances nq x k floats (may be NULL)
 * @param ids       nq x k global ids
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_RANGE (k larger than a shard),
 *         a search error of any rank (the same status on every rank),
 *         AE_ERR_NOMEM or AE_ERR_IO.
 */
AE_MPI_API ae_status ae_mpi_index_search(ae_mpi *ctx, const ae_index *shard, int64_t id_offset,
                                         const float *queries, size_t nq, size_t k,
                                         size_t ef_search, float *distances, int64_t *ids);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_MPI_H */
