/*
 * libautoenc: umbrella header. Includes every public module.
 * See docs/guide.md for an introduction.
 */
#ifndef AUTOENC_AUTOENC_H
#define AUTOENC_AUTOENC_H

#include "common.h"
#include "version.h"
#include "tensor.h"
#include "layer.h"
#include "model.h"
#include "loss.h"
#include "builder.h"
#include "preset.h"
#include "source.h"
#include "train.h"
#include "encoder.h"
#include "npy.h"
#include "dataset.h"
#include "index.h"

#endif /* AUTOENC_AUTOENC_H */
