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
    AE_TRAIN_THREADS = 17
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

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_TRAIN_H */
