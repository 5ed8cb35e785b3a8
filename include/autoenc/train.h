/*
 * libautoenc: training.
 *
 * One call, ae_train_fit(), trains a model on an in-memory dataset the way Keras'
 * model.fit does: mini-batches, per-epoch shuffling from a seed, a validation
 * split taken as the LAST fraction of the rows before any shuffling, early
 * stopping on the validation loss with best-weight restore, a per-epoch
 * history, and a progress callback that can stop training cleanly.
 *
 * Settings live in an opaque ae_train_config (zstd-style: no public struct,
 * keys append-only). Every key has one value type (ae_train_param_type):
 * integer keys are set and read with ae_train_config_set_int/_get_int and
 * stored exactly as int64_t, real keys with _set_double/_get_double; using
 * the other type's function is AE_ERR_INVALID_ARG. Bounds are queryable
 * (ae_train_param_int_bounds, ae_train_param_double_bounds).
 *
 * Threading: ae_train_fit needs exclusive use of the model; a config and a
 * history are used by one thread at a time. OpenBLAS' process-wide thread
 * count: see AE_TRAIN_THREADS.
 */
#ifndef AUTOENC_TRAIN_H
#define AUTOENC_TRAIN_H

#include "common.h"
#include "loss.h"
#include "model.h"
#include "source.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Optimisers (Keras semantics). Values are pinned. */
typedef enum ae_optimizer {
    AE_OPT_NADAM = 1, /**< Nadam with momentum decay 0.004 (Keras, PyTorch NAdam) */
    AE_OPT_ADAM = 2,  /**< Adam */
    AE_OPT_SGD = 3    /**< SGD with optional (heavy-ball) momentum */
} ae_optimizer;

/** Keys of training settings: type, defaults and bounds below and from the bounds functions. Pinned. */
typedef enum ae_train_param {
    AE_TRAIN_OPTIMIZER = 1,        /**< int, an ae_optimizer; default NADAM */
    AE_TRAIN_LOSS = 2,             /**< int, an ae_loss; default BCE */
    AE_TRAIN_EPOCHS = 3,           /**< int, maximum epochs; default 10 */
    AE_TRAIN_BATCH_SIZE = 4,       /**< int, rows per step; default 32 */
    AE_TRAIN_SHUFFLE = 5,          /**< int 0/1, reshuffle training rows every epoch; default 1 */
    AE_TRAIN_SEED = 6,             /**< int, seed of the shuffling stream, any int64 >= 0 (exact); default 0 */
    AE_TRAIN_LEARNING_RATE = 7,    /**< double; default 1e-3 */
    AE_TRAIN_BETA1 = 8,            /**< double, Adam/Nadam; default 0.9 */
    AE_TRAIN_BETA2 = 9,            /**< double, Adam/Nadam; default 0.999 */
    AE_TRAIN_EPSILON = 10,         /**< double, Adam/Nadam; default 1e-7 */
    AE_TRAIN_MOMENTUM = 11,        /**< double, SGD; default 0 */
    AE_TRAIN_MOMENTUM_DECAY = 12,  /**< double, Nadam; default 0.004 */
    AE_TRAIN_VALIDATION_SPLIT = 13,/**< double in [0, 1): last fraction of rows; default 0 */
    AE_TRAIN_PATIENCE = 14,        /**< int, early-stopping patience; 0 = off (default) */
    AE_TRAIN_MIN_DELTA = 15,       /**< double, smallest improvement that counts; default 0 */
    AE_TRAIN_RESTORE_BEST = 16,    /**< int 0/1, end with the best epoch's weights; default 1 */
    /** int, threads for fit: every batch is split by samples over this many
     *  threads; 0 (default) = one per online core. Results are deterministic
     *  for a given seed and thread count, also while other fits or predicts
     *  run in the process, but differ in the last bits across thread counts
     *  (gradient sums are added in another order). While any ae_train_fit runs,
     *  OpenBLAS' process-wide thread count is 1 (its threads would only
     *  compete with these): the first of concurrent fits saves the program's
     *  count and sets 1, the last to return restores it, unless the program
     *  set another count than 1 meanwhile, which is kept. See
     *  docs/threading.md. */
    AE_TRAIN_THREADS = 17,
    /** int >= 0: when the fit has a training state with a checkpoint path
     *  (ae_train_state_set_checkpoint), also write a checkpoint after every
     *  this many optimiser steps (counted over the whole run); 0 (default):
     *  at epoch ends only. */
    AE_TRAIN_CHECKPOINT_STEPS = 18,
    /** double >= 0 (at most 100), coupled L2 weight penalty, Keras'
     *  kernel_regularizer=l2(lambda) on every dense, conv2d and transposed
     *  conv2d layer: lambda * sum w^2 over their kernels (not biases, not
     *  batch-norm parameters) is added to each step's loss, so its gradient
     *  2 lambda w goes through the optimiser (and its moments) with the data
     *  gradient. The training and validation losses of the history include
     *  the term, as Keras' loss and val_loss do; ae_model_evaluate, which
     *  has no configuration, does not. Its gradient is added after a
     *  gradient reduction hook (ae_train_config_set_reduce): every process
     *  adds it from the same weights. Like the other real keys it is read by
     *  every fit call and not kept in a training state. Default 0: off. */
    AE_TRAIN_L2 = 19,
    /** double >= 0 (at most 100), decoupled weight decay, PyTorch AdamW's
     *  weight_decay: before each optimiser update the same kernels are
     *  shrunk, w -= lr * weight_decay * w, outside the gradient and the
     *  moments (Adam: AdamW; Nadam: NAdam with decoupled weight decay; SGD:
     *  plain decay). PyTorch's AdamW default is 0.01 but it decays every
     *  parameter; here biases and batch-norm parameters are left alone.
     *  Read by every fit call (not kept in a training state, as the
     *  learning rate). Default 0: off. */
    AE_TRAIN_WEIGHT_DECAY = 20,
    /** int >= 0, rows per block of the block shuffle; 0 (default): every
     *  epoch shuffles the training rows one by one. B > 0: the training rows
     *  are cut into blocks of B consecutive rows (the last block may be
     *  shorter), the order of the blocks is a permutation drawn from the
     *  seed's shuffling stream, then the rows of every run of
     *  AE_TRAIN_SHUFFLE_WINDOW consecutive blocks of that order are shuffled
     *  together; every epoch starts again from the rows' own order. A .npy
     *  source (ae_source_open_npy) then reads whole blocks with one read
     *  each and keeps one window of blocks in memory (W * B rows of the
     *  file), instead of one read per row, which is what makes training
     *  from a file on disk fast (docs/guide.md, "Block shuffle"). Without
     *  AE_TRAIN_SHUFFLE the rows keep their order. Kept in a training
     *  state with the seed. */
    AE_TRAIN_SHUFFLE_BLOCK = 21,
    /** int >= 1, blocks whose rows are shuffled together by the block
     *  shuffle (AE_TRAIN_SHUFFLE_BLOCK); default 8; unused while the block
     *  size is 0. Kept in a training state with the seed. */
    AE_TRAIN_SHUFFLE_WINDOW = 22
} ae_train_param;

/** Progress events passed to the callback. */
typedef enum ae_train_event {
    AE_EVENT_BATCH_END = 1, /**< after each optimiser step */
    AE_EVENT_EPOCH_END = 2  /**< after each epoch (history holds the epoch already) */
} ae_train_event;

/** Fields of a history entry (ae_history_get). */
typedef enum ae_history_field {
    AE_HIST_TRAIN_LOSS = 1,        /**< mean training loss over the epoch's batches */
    AE_HIST_VAL_LOSS = 2,          /**< validation loss after the epoch (NaN without validation) */
    AE_HIST_SECONDS = 3,           /**< wall-clock seconds of the epoch (training steps only) */
    AE_HIST_IMAGES_PER_SECOND = 4  /**< training rows per second in the epoch */
} ae_history_field;

/** Opaque training configuration. */
typedef struct ae_train_config ae_train_config;
/** Opaque per-epoch training history. */
typedef struct ae_history ae_history;
/** Opaque training state: what continues a training run exactly (see ae_train_state_create). */
typedef struct ae_train_state ae_train_state;

/** Format version of checkpoint files written by ae_train_state_save (docs/formats.md). */
#define AE_CHECKPOINT_FORMAT_VERSION 1

/**
 * Progress callback, called on the thread that called ae_train_fit.
 *  - @p event: AE_EVENT_BATCH_END after each optimiser step, AE_EVENT_EPOCH_END
 *    after each epoch's validation and early-stopping bookkeeping (the
 *    history already holds the epoch).
 *  - @p epoch counts from 0. At BATCH_END, @p step is the number of steps
 *    done in this epoch (1..steps) and @p steps the epoch's step count
 *    (ceil(training rows / batch size)); at EPOCH_END both equal steps.
 *  - @p loss: the batch's loss at BATCH_END, the epoch's mean training loss
 *    at EPOCH_END.
 *  - @p model: the model being trained, read-only: the callback may save it
 *    (ae_model_save), predict with it, copy it (ae_model_clone) or extract an
 *    encoder from it, and the weights it sees are those after the last step.
 *    It must not modify, train or free it.
 *  - Return 0 to go on, non-zero to stop: ae_train_fit then returns
 *    AE_STOPPED (not an error) with the history and weights as they are
 *    (after best-weight restore if configured).
 */
typedef int (*ae_progress_fn)(ae_train_event event, size_t epoch, size_t step, size_t steps,
                              double loss, const ae_model *model, const ae_history *history,
                              void *user);

/** New configuration with the defaults listed in enum ae_train_param. */
AE_API ae_status ae_train_config_create(ae_train_config **out);
/** Frees a configuration. NULL is accepted. */
AE_API void ae_train_config_free(ae_train_config *cfg);
/**
 * Sets integer key @p key (exact 64-bit value).
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL, unknown key, a real-valued key) or
 *         AE_ERR_RANGE (outside ae_train_param_int_bounds).
 */
AE_API ae_status ae_train_config_set_int(ae_train_config *cfg, ae_train_param key,
                                         int64_t value);
/**
 * Sets real-valued key @p key.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL, unknown key, an integer key) or
 *         AE_ERR_RANGE (NaN or outside ae_train_param_double_bounds).
 */
AE_API ae_status ae_train_config_set_double(ae_train_config *cfg, ae_train_param key,
                                            double value);
/** Reads integer key @p key into @p value (AE_ERR_INVALID_ARG for a real key). */
AE_API ae_status ae_train_config_get_int(int64_t *value, const ae_train_config *cfg,
                                         ae_train_param key);
/** Reads real-valued key @p key into @p value (AE_ERR_INVALID_ARG for an integer key). */
AE_API ae_status ae_train_config_get_double(double *value, const ae_train_config *cfg,
                                            ae_train_param key);
/** Value type of @p key (AE_ERR_INVALID_ARG for an unknown key). */
AE_API ae_status ae_train_param_type(ae_value_type *type, ae_train_param key);
/** Inclusive bounds of integer key @p key (either pointer may be NULL). */
AE_API ae_status ae_train_param_int_bounds(int64_t *lo, int64_t *hi, ae_train_param key);
/** Inclusive bounds of real-valued key @p key (either pointer may be NULL). */
AE_API ae_status ae_train_param_double_bounds(double *lo, double *hi, ae_train_param key);
/** Static name of a key, as spelled in this header ("AE_TRAIN_EPOCHS"); NULL if unknown. */
AE_API const char *ae_train_param_name(ae_train_param key);
/** Sets (or clears, with NULL) the progress callback and its user pointer. */
AE_API ae_status ae_train_config_set_callback(ae_train_config *cfg, ae_progress_fn fn,
                                              void *user);

/** New empty history. */
AE_API ae_status ae_history_create(ae_history **out);
/** Frees a history. NULL is accepted. */
AE_API void ae_history_free(ae_history *h);
/** Number of completed epochs recorded. */
AE_API size_t ae_history_epochs(const ae_history *h);
/** One field of epoch @p epoch (from 0), into @p value. */
AE_API ae_status ae_history_get(double *value, const ae_history *h, size_t epoch,
                                ae_history_field field);
/** Epoch (from 0) with the best monitored loss, into @p epoch; AE_ERR_STATE if none. */
AE_API ae_status ae_history_best_epoch(size_t *epoch, const ae_history *h);
/** Non-zero if the last fit ended by early stopping. */
AE_API int ae_history_stopped_early(const ae_history *h);

/**
 * Trains @p model on @p n rows. @p x holds n * input_size floats; @p y holds
 * n * output_size target floats, or is NULL to use @p x (an autoencoder).
 * The validation rows are the last floor(n * split) rows (Keras: taken before
 * shuffling). @p history (may be NULL) is cleared and then receives one entry
 * per epoch. All buffers are reserved once before the first step, so
 * AE_ERR_NOMEM shows up before any training.
 *
 * Returns AE_OK, AE_STOPPED (callback), or an error; AE_ERR_NUMERIC when a
 * loss or gradient becomes NaN/inf, after restoring the weights from the
 * start of that epoch (or the best epoch, if restore-best is on and one
 * exists).
 */
AE_API ae_status ae_train_fit(ae_model *model, const ae_train_config *cfg, const float *x,
                              const float *y, size_t n, ae_history *history);

/* ---- training state, checkpoints and exact resume --------------------------------- */

/**
 * New, empty training state. A state is what makes one training run out of
 * several fit calls (ae_train_fit_state, ae_train_fit_source): the
 * optimiser's moments and step count, the completed epochs and the steps done
 * in the current one with its running loss, the shuffling RNG, and the
 * early-stopping bookkeeping (best loss, best weights, epochs without
 * improvement). The first fit binds it to its model's parameter count, the
 * optimiser, batch size, seed, shuffle flag and row counts; a later fit with
 * other values of these is AE_ERR_STATE (the learning rate and the other
 * real-valued keys may change between calls).
 *
 * A run continued through a state is bit-identical to the same run done in
 * one call: two fits of one epoch each equal one fit of two epochs, and a
 * checkpoint (ae_train_state_save, AE_TRAIN_CHECKPOINT_STEPS) loaded after a
 * crash, even one mid-epoch, continues to the same weights as a run that was
 * never interrupted (same seed and thread count).
 *
 * Threading: a state is used by one fit at a time.
 */
AE_API ae_status ae_train_state_create(ae_train_state **out);
/** Frees a training state. NULL is accepted. */
AE_API void ae_train_state_free(ae_train_state *state);
/**
 * Sets (or clears, with NULL) the checkpoint file of @p state: fits with this
 * state then save a checkpoint there (as ae_train_state_save, atomically) at
 * every epoch end, and every AE_TRAIN_CHECKPOINT_STEPS steps when that key is
 * set. A failed checkpoint write ends the fit with its error.
 */
AE_API ae_status ae_train_state_set_checkpoint(ae_train_state *state, const char *path);
/** Completed epochs of the run (0 for NULL or a new state). */
AE_API size_t ae_train_state_epoch(const ae_train_state *state);
/** Optimiser steps done in the current, unfinished epoch (0 at an epoch boundary). */
AE_API size_t ae_train_state_step(const ae_train_state *state);
/**
 * Writes a checkpoint: @p model (as a complete model file) and @p state,
 * versioned and checksummed (docs/formats.md), atomically. @p state must have
 * been used by a fit of @p model (or loaded), else AE_ERR_STATE.
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_STATE, AE_ERR_SHAPE (another
 *         parameter count), AE_ERR_NUMERIC (non-finite weights) or AE_ERR_IO.
 */
AE_API ae_status ae_train_state_save(const ae_train_state *state, const ae_model *model,
                                     const char *path);
/**
 * Loads a checkpoint written by ae_train_state_save (or by a fit) into a new
 * state and a new model with the weights of that moment: continue the run
 * with ae_train_fit_state(model, cfg, state, ...) and the same settings and
 * rows. Both outs are set to NULL on failure.
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_IO, AE_ERR_FORMAT, AE_ERR_VERSION,
 *         AE_ERR_CHECKSUM or AE_ERR_NOMEM.
 */
AE_API ae_status ae_train_state_load(ae_train_state **state, ae_model **model, const char *path);
/**
 * Copies the best epoch's weights recorded by early stopping into @p model
 * (a fit with a state keeps the last weights when it ends by running out of
 * epochs: see ae_train_fit_state).
 * @return AE_OK, AE_ERR_INVALID_ARG, AE_ERR_STATE (no best epoch yet) or
 *         AE_ERR_SHAPE (another parameter count).
 */
AE_API ae_status ae_train_state_restore_best(const ae_train_state *state, ae_model *model);

/**
 * ae_train_fit continued through a training state: runs AE_TRAIN_EPOCHS
 * epochs more (finishing an epoch left unfinished by a checkpoint or by a
 * callback's stop counts as one of them). Differences from ae_train_fit:
 *  - every epoch shuffles the training rows afresh (identity order shuffled
 *    by the run's RNG, seeded once from AE_TRAIN_SEED), so a checkpoint needs
 *    no permutation; results therefore differ from ae_train_fit's after the
 *    first epoch;
 *  - the callback's epoch is the run's epoch, and the history receives this
 *    call's completed epochs;
 *  - a call that runs out of epochs keeps the last weights (the run is
 *    paused, not over); early stopping still restores the best weights if
 *    AE_TRAIN_RESTORE_BEST is on; a callback's stop leaves the last weights
 *    and the state at that step, so the next call continues there;
 *  - after an error the state is unusable (AE_ERR_STATE).
 */
AE_API ae_status ae_train_fit_state(ae_model *model, const ae_train_config *cfg,
                                    ae_train_state *state, const float *x, const float *y,
                                    size_t n, ae_history *history);

/**
 * Trains @p model on the rows of a data source (source.h), so the rows
 * need not be in memory. @p train provides the training rows; the
 * validation rows are either its last floor(rows * AE_TRAIN_VALIDATION_SPLIT)
 * rows (Keras: taken before shuffling) or, when @p validation is not NULL,
 * all rows of that source (the split must then be 0). Shuffling draws a
 * permutation of all training rows from the seed, as ae_train_fit does;
 * each batch's rows are read through the source, the next batch on a
 * background thread while the current step runs (the results do not depend
 * on that timing).
 *
 * @p state may be NULL: the fit then behaves as ae_train_fit on the same rows
 * (an in-memory float source gives bit-identical weights, a uint8 source the
 * weights of its rows scaled by 1/255 as floats); with a state it continues
 * the run as ae_train_fit_state does (checkpoints included).
 *
 * @return as ae_train_fit, and AE_ERR_SHAPE for a source whose row or target
 *         size does not fit the model, AE_ERR_IO when a source's read fails,
 *         AE_ERR_NUMERIC when it gives NaN or infinity.
 */
AE_API ae_status ae_train_fit_source(ae_model *model, const ae_train_config *cfg,
                                     ae_train_state *state, const ae_source *train,
                                     const ae_source *validation, ae_history *history);

/* ---- reduction hooks (data-parallel training) ------------------------------------ */

/**
 * Gradient reduction, called once per optimiser step on the fit's calling
 * thread, after the batch's gradient is complete and before the optimiser
 * uses it: @p grads holds @p count floats (the model's parameter count, in
 * the layout of the parameters) that the callback may change in place, e.g.
 * average over processes with MPI_Allreduce. Return 0 to go on, non-zero for
 * a failure: the fit then fails with AE_ERR_IO. A step whose loss is not
 * finite still calls it, with every gradient NaN (so an average makes every
 * process fail that step with AE_ERR_NUMERIC); a gradient left non-finite
 * by the hook fails the fit with AE_ERR_NUMERIC.
 */
typedef int (*ae_grad_reduce_fn)(float *grads, size_t count, void *user);
/**
 * Statistics reduction: @p values holds @p count doubles to reduce by
 * summing across processes, in place. Called on the fit's calling thread
 * - at every epoch end before validation results are used, with 4 values:
 *   training loss sum, training element count, validation loss sum,
 *   validation element count (0 without validation); the fit computes its
 *   mean losses from the reduced values, so early stopping decides alike
 *   everywhere;
 * - for a model with batch normalisation, in every training step: each
 *   batch-norm layer's per-channel sums (with C channels: 2 C + 1 values in
 *   forward, C + 1 for the variance, 2 C + 1 in backward), so that its batch
 *   statistics are those of the global batch over every process
 *   (synchronised batch norm: R processes with batch b train as one with
 *   batch R b) and the moving statistics stay equal on every process.
 * Every process makes the same calls in the same order. Return non-zero for
 * a failure (the fit fails with AE_ERR_IO).
 */
typedef int (*ae_stat_reduce_fn)(double *values, size_t count, void *user);
/**
 * Sets (or clears, with NULL) the reduction hooks, which share @p user.
 * The gradient hook makes every step synchronise its threads once more.
 */
AE_API ae_status ae_train_config_set_reduce(ae_train_config *cfg, ae_grad_reduce_fn grads,
                                            ae_stat_reduce_fn stats, void *user);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_TRAIN_H */
