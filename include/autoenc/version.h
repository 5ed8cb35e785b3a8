/*
 * libautoenc: library version. The build reads the version from this file,
 * so it has one source. The file formats have versions of their own.
 */
#ifndef AUTOENC_VERSION_H
#define AUTOENC_VERSION_H

#include "common.h"

#define AE_VERSION_MAJOR 0 /**< incremented on an ABI break */
#define AE_VERSION_MINOR 2 /**< incremented when functions are added */
#define AE_VERSION_PATCH 0 /**< incremented for fixes */
/** major * 10000 + minor * 100 + patch */
#define AE_VERSION_NUMBER (AE_VERSION_MAJOR * 10000 + AE_VERSION_MINOR * 100 + AE_VERSION_PATCH)
#define AE_VERSION_STRING "0.2.0" /**< the same version as text */

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the library actually linked, as "major.minor.patch". */
AE_API const char *ae_version(void);
/** Version of the library actually linked, as AE_VERSION_NUMBER computes it. */
AE_API unsigned ae_version_number(void);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_VERSION_H */
