/* Tutorial section 2: the deep autoencoder, 784-128-64-32-64-128-784.
 * Trains on QuickDraw-10 with the tutorial's recipe and writes its pictures;
 * see examples/support/train_example.c for the steps. */
#include "ex_train.h"

int main(int argc, char **argv)
{
    static const ex_train_spec spec = {
        "deep_autoencoder",
        "Tutorial section 2: the deep autoencoder, 784-128-64-32-64-128-784",
        AE_PRESET_DEEP,
        64,
        0,
    };
    return ex_run_training_example(&spec, argc, argv);
}
