/* The training state behind ae_train_state (train_state.c: life cycle and
 * checkpoint files; train.c: the fit loop that advances it). */
#ifndef AUTOENC_TRAIN_STATE_H
#define AUTOENC_TRAIN_STATE_H

#include "nn.h"

struct ae_train_state {
    int bound;  /* a fit (or a load) fixed the run's identity below */
    int failed; /* a fit failed half-way: the state is unusable */
    /* the run's identity, checked by every later fit */
    int optimizer, shuffle;
    uint64_t seed, batch, n_train, n_val, n_params;
    /* AE_TRAIN_SHUFFLE_BLOCK and _WINDOW of a block-shuffled run; 0 and 0
     * for the row shuffle (and without shuffling) */
    uint64_t shuffle_block, shuffle_window;
    /* position: completed epochs, steps done in the current epoch and the
     * sum of their batch losses */
    uint64_t epoch, step;
    double epoch_loss_sum;
    /* the shuffling RNG as it was at the start of the current epoch, before
     * that epoch's shuffle (which is replayed from it on resume) */
    ae__rng rng;
    ae__optimizer opt; /* moments, step count, Nadam's momentum product */
    /* early stopping */
    int has_best;
    uint64_t wait;
    double best_loss;
    /* the best epoch's n_params weights, then its n_stats batch-norm running
     * statistics (a snapshot, ae__snapshot_take) */
    uint64_t n_stats;
    float *best;
    char *ckpt_path;   /* checkpoint file, or NULL */
    size_t ckpt_cap;
};

/* Binds a fresh state to a run, reserving its buffers (optimiser moments,
 * best weights). */
ae_status ae__train_state_bind(ae_train_state *s, int optimizer, int shuffle, uint64_t seed,
                               uint64_t shuffle_block, uint64_t shuffle_window, uint64_t batch, uint64_t n_train, uint64_t n_val,
                               size_t n_params, size_t n_stats);
/* A model's trainable state: its n_params weights followed by its n_stats
 * batch-norm running statistics (training changes both, so restoring the best
 * or the last good epoch restores both). dst holds n_params + n_stats floats. */
void ae__snapshot_take(float *dst, const ae_model *m);
void ae__snapshot_restore(ae_model *m, const float *src);
/* Frees the buffers of a state (not the handle). */
void ae__train_state_release(ae_train_state *s);
/* ae_train_state_save's body, for checkpoints written during a fit. */
ae_status ae__train_state_write(const ae_train_state *s, const ae_model *m, const char *path);

#endif /* AUTOENC_TRAIN_STATE_H */
