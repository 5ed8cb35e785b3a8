/* libautoenc: io module (placeholder, being written). */
#ifndef AUTOENC_IO_H
#define AUTOENC_IO_H
#include "common.h"
#endif /* AUTOENC_IO_H */
