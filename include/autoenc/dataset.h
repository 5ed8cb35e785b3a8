/* libautoenc: dataset module (placeholder, being written). */
#ifndef AUTOENC_DATASET_H
#define AUTOENC_DATASET_H
#include "common.h"
#endif /* AUTOENC_DATASET_H */
