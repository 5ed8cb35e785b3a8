/*
 * The shared body of the three training examples (simple, deep, conv): one
 * tutorial section each, differing only in the model and batch size, so the
 * whole program is a table entry plus this driver.
 */
#ifndef AE_EXAMPLE_TRAIN_H
#define AE_EXAMPLE_TRAIN_H

#include "ex_support.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What one training example is. */
typedef struct ex_train_spec {
    const char *name;                          /**< "simple_autoencoder", ... (file names too) */
    const char *summary;                       /**< first line of --help */
    ae_preset preset; /**< the model */
    long batch_size;                           /**< the tutorial's batch size */
    int draw_code;                             /**< also draw one drawing's code as an image */
} ex_train_spec;

/**
 * Parses options, loads QuickDraw, builds and trains the model with the
 * tutorial's recipe (Nadam, binary cross-entropy, shuffling, 20% validation
 * split, early stopping), prints the summary, the epochs, the predict shape
 * and the test loss, writes pictures, history CSV and the model into --out,
 * and prints a JSON line of figures last. Returns the process exit code.
 */
int ex_run_training_example(const ex_train_spec *spec, int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* AE_EXAMPLE_TRAIN_H */
