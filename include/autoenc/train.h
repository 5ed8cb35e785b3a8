/*
 * libautoenc: training.
 *
 * One call, ae_fit(), trains a model on an in-memory dataset the way Keras'
 * model.fit does: mini-batches, per-epoch shuffling from a seed, a validation
 * split taken as the LAST fraction of the rows before any shuffling, early
 * stopping on the validation loss with best-weight restore, a per-epoch
 * history, and a progress callback that can stop training cleanly.
 *
 * Settings live in an opaque ae_train_config set through
 * ae_train_config_set_int/_double with keys from enum ae_train_param
 * (zstd-style: no public struct, bounds queryable, keys append-only).
 *
 * Threading: ae_fit needs exclusive use of the model; a config and a history
 * are used by one thread at a time. ae_model_evaluate and ae_loss_value are
 * safe concurrently on const models.
 */
#ifndef AUTOENC_TRAIN_H
#define AUTOENC_TRAIN_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Loss functions. Values are pinned. */
enum ae_loss_kind {
    /** Binary cross-entropy, mean over all outputs. Predictions are clamped
     *  to [1e-7, 1 - 1e-7] as Keras does; when the model's last layer is a
     *  sigmoid, training uses the exact logit gradient (y - t), as Keras and
     *  PyTorch do for a sigmoid output. */
    AE_LOSS_BCE = 1,
    AE_LOSS_MSE = 2 /**< mean squared error, mean over all outputs */
};

/** Optimisers (Keras semantics). Values are pinned. */
enum ae_optimizer_kind {
    AE_OPT_NADAM = 1, /**< Nadam with momentum decay 0.004 (Keras, PyTorch NAdam) */
    AE_OPT_ADAM = 2,  /**< Adam */
    AE_OPT_SGD = 3    /**< SGD with optional (heavy-ball) momentum */
};

/** Keys of training settings: defaults and bounds in ae_train_param_bounds(). Pinned. */
enum ae_train_param {
    AE_TRAIN_OPTIMIZER = 1,        /**< int, ae_optimizer_kind; default NADAM */
    AE_TRAIN_LOSS = 2,             /**< int, ae_loss_kind; default BCE */
    AE_TRAIN_EPOCHS = 3,           /**< int, maximum epochs; default 10 */
    AE_TRAIN_BATCH_SIZE = 4,       /**< int, rows per step; default 32 */
    AE_TRAIN_SHUFFLE = 5,          /**< int 0/1, reshuffle training rows every epoch; default 1 */
    AE_TRAIN_SEED = 6,             /**< int, seed of the shuffling stream; default 0 */
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
     *  (gradient sums are added in another order). While any ae_fit runs,
     *  OpenBLAS' process-wide thread count is 1 (its threads would only
     *  compete with these): the first of concurrent fits saves the program's
     *  count and sets 1, the last to return restores it, unless the program
     *  set another count than 1 meanwhile, which is kept. See
     *  docs/threading.md. */
    AE_TRAIN_THREADS = 17
};

/** Progress events passed to the callback. */
enum ae_train_event {
    AE_EVENT_BATCH_END = 1, /**< after each optimiser step */
    AE_EVENT_EPOCH_END = 2  /**< after each epoch (history holds the epoch already) */
};

/** Fields of a history entry (ae_history_get). */
enum ae_history_field {
    AE_HIST_TRAIN_LOSS = 1,        /**< mean training loss over the epoch's batches */
    AE_HIST_VAL_LOSS = 2,          /**< validation loss after the epoch (NaN without validation) */
    AE_HIST_SECONDS = 3,           /**< wall-clock seconds of the epoch (training steps only) */
    AE_HIST_IMAGES_PER_SECOND = 4  /**< training rows per second in the epoch */
};

/** Opaque training configuration. */
typedef struct ae_train_config ae_train_config;
/** Opaque per-epoch training history. */
typedef struct ae_history ae_history;

/**
 * Progress callback. @p event is an ae_train_event; @p epoch counts from 0;
 * @p step / @p steps are the batch within the epoch; @p loss is the batch
 * loss (BATCH_END) or the epoch's training loss (EPOCH_END). Return 0 to go
 * on, non-zero to stop: ae_fit then returns AE_STOPPED with the history and
 * weights as they are (after best-weight restore if configured).
 */
typedef int (*ae_progress_fn)(int event, size_t epoch, size_t step, size_t steps, double loss,
                              const ae_history *history, void *user);

/** New configuration with the defaults listed in enum ae_train_param. */
AE_API ae_status ae_train_config_create(ae_train_config **out);
/** Frees a configuration. NULL is accepted. */
AE_API void ae_train_config_free(ae_train_config *cfg);
/** Sets an integer-valued (or any) key; AE_ERR_RANGE outside its bounds. */
AE_API ae_status ae_train_config_set_int(ae_train_config *cfg, int key, int64_t value);
/** Sets a key from a double; integer keys must get whole numbers. */
AE_API ae_status ae_train_config_set_double(ae_train_config *cfg, int key, double value);
/** Reads any key as a double. */
AE_API ae_status ae_train_config_get(const ae_train_config *cfg, int key, double *value);
/** Inclusive bounds of a key, and whether it takes whole numbers only. */
AE_API ae_status ae_train_param_bounds(int key, double *lo, double *hi, int *is_integer);
/** Sets (or clears, with NULL) the progress callback. */
AE_API ae_status ae_train_config_set_callback(ae_train_config *cfg, ae_progress_fn fn,
                                              void *user);

/** New empty history. */
AE_API ae_status ae_history_create(ae_history **out);
/** Frees a history. NULL is accepted. */
AE_API void ae_history_free(ae_history *h);
/** Number of completed epochs recorded. */
AE_API size_t ae_history_epochs(const ae_history *h);
/** One field of epoch @p epoch (from 0). */
AE_API ae_status ae_history_get(const ae_history *h, size_t epoch, int field, double *value);
/** Epoch (from 0) with the best monitored loss; AE_ERR_STATE if none. */
AE_API ae_status ae_history_best_epoch(const ae_history *h, size_t *epoch);
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
AE_API ae_status ae_fit(ae_model *model, const ae_train_config *cfg, const float *x,
                        const float *y, size_t n, ae_history *history);

/**
 * Mean loss of the model's predictions on @p n rows (y NULL: targets = x).
 * AE_ERR_NUMERIC if @p x or @p y hold NaN or infinity, or if the predictions
 * overflow to NaN or infinity (the BCE clamp does not hide them).
 */
AE_API ae_status ae_model_evaluate(const ae_model *model, int loss, const float *x,
                                   const float *y, size_t n, double *value);

/**
 * Mean loss of @p count predictions against targets (BCE clamped as Keras).
 * AE_ERR_NUMERIC if a prediction or target is NaN or infinite (for BCE too:
 * the clamp applies to finite predictions only) or the loss overflows.
 */
AE_API ae_status ae_loss_value(int loss, const float *pred, const float *target, size_t count,
                               double *value);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_TRAIN_H */
