/* libautoenc: train module (placeholder, being written). */
#ifndef AUTOENC_TRAIN_H
#define AUTOENC_TRAIN_H
#include "common.h"
#endif /* AUTOENC_TRAIN_H */
