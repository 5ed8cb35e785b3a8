/* libautoenc: index module (placeholder, being written). */
#ifndef AUTOENC_INDEX_H
#define AUTOENC_INDEX_H
#include "common.h"
#endif /* AUTOENC_INDEX_H */
