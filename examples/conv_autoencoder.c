/* Tutorial section 3: the convolutional autoencoder, 28x28x1 -> code 4x4x8 -> 28x28x1.
 * Trains on QuickDraw-10 with the tutorial's recipe and writes its pictures;
 * see examples/support/train_example.c for the steps. */
#include "ex_train.h"

int main(int argc, char **argv)
{
    static const ex_train_spec spec = {
        "conv_autoencoder",
        "Tutorial section 3: the convolutional autoencoder, 28x28x1 -> code 4x4x8 -> 28x28x1",
        AE_PRESET_CONV,
        32,
        1,
    };
    return ex_run_training_example(&spec, argc, argv);
}
