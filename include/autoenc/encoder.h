/* libautoenc: encoder module (placeholder, being written). */
#ifndef AUTOENC_ENCODER_H
#define AUTOENC_ENCODER_H
#include "common.h"
#endif /* AUTOENC_ENCODER_H */
