/* Tutorial section 1: the simple autoencoder, 784 -> Dense(32, relu) -> Dense(784, sigmoid).
 * Trains on QuickDraw-10 with the tutorial's recipe and writes its pictures;
 * see examples/support/train_example.c for the steps. */
#include "ex_train.h"

int main(int argc, char **argv)
{
    static const ex_train_spec spec = {
        "simple_autoencoder",
        "Tutorial section 1: the simple autoencoder, 784 -> Dense(32, relu) -> Dense(784, sigmoid)",
        AE_PRESET_SIMPLE,
        64,
        0,
    };
    return ex_run_training_example(&spec, argc, argv);
}
