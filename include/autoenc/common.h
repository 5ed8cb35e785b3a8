/*
 * libautoenc: common definitions shared by every module.
 *
 * Status codes, the export macro, error messages and the allocator hook.
 *
 * Error rules (every module):
 *  - Every fallible call returns an ae_status: AE_OK (0) on success, a negative
 *    value on error, and a positive non-error value where a call stopped early
 *    on request (AE_STOPPED).
 *  - After a failure, ae_last_error() gives a human-readable message for the
 *    calling thread, "<function>: <what went wrong>", where <function> is the
 *    public function the caller called. Handles that are modified by a call
 *    also keep the message of their own last failure (ae_model_errmsg(), ...).
 *  - docs/conventions.md has the naming and argument-order rules.
 *  - The library never aborts, exits or prints.
 *
 * Threading: no global state except the allocator hook. A mutable handle is
 * used by one thread at a time; calls taking a const handle are safe to make
 * concurrently from several threads.
 */
#ifndef AUTOENC_COMMON_H
#define AUTOENC_COMMON_H

#include <stddef.h>
#include <stdint.h>

/** @cond AE_INTERNAL */
#if defined(AE_STATIC)
/* static library: nothing is exported, so a program that links libautoenc.a
 * into its own shared library does not re-export ae_* */
#  define AE_API
#elif defined(_WIN32)
#  if defined(AE_BUILDING_LIBRARY)
#    define AE_API __declspec(dllexport)
#  else
#    define AE_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define AE_API __attribute__((visibility("default")))
#else
#  define AE_API
#endif
/** @endcond */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Status returned by every fallible call. Values are pinned forever: new codes
 * are appended, retired ones stay reserved.
 */
typedef enum ae_status {
    AE_OK = 0,                /**< success */
    AE_STOPPED = 1,           /**< not an error: a callback asked to stop */
    AE_ERR_INVALID_ARG = -1,  /**< NULL pointer, zero size, unknown enum value */
    AE_ERR_NOMEM = -2,        /**< an allocation failed */
    AE_ERR_SHAPE = -3,        /**< shapes do not fit together */
    AE_ERR_RANGE = -4,        /**< a parameter is outside its bounds */
    AE_ERR_IO = -5,           /**< a file could not be opened, read or written */
    AE_ERR_FORMAT = -6,       /**< a file is truncated, corrupt or not of the expected kind */
    AE_ERR_VERSION = -7,      /**< a file was written by an unsupported format version */
    AE_ERR_CHECKSUM = -8,     /**< a file's checksum does not match its contents */
    AE_ERR_NUMERIC = -9,      /**< NaN or infinity in inputs, outputs or the loss */
    AE_ERR_STATE = -10,       /**< the call is not allowed in the current state */
    AE_ERR_UNSUPPORTED = -11, /**< a valid request this build cannot serve */
    AE_ERR_INTERNAL = -12     /**< a bug in libautoenc: please report it */
} ae_status;

/**
 * Value type of a configuration key (training keys, index keys). Integer keys
 * are stored exactly as int64_t, real keys as double. Values are pinned.
 */
typedef enum ae_value_type {
    AE_VALUE_INT = 1,   /**< set and read with the _int functions */
    AE_VALUE_DOUBLE = 2 /**< set and read with the _double functions */
} ae_value_type;

/** Static English text for a status code (never NULL). */
AE_API const char *ae_status_string(ae_status status);

/** Non-zero when @p status is an error (negative). */
AE_API int ae_is_error(ae_status status);

/**
 * Message describing the last failure on the calling thread (empty string if
 * none). The pointer stays valid until the next failing call on this thread.
 */
AE_API const char *ae_last_error(void);

/**
 * Allocator hook, Lua style. Called as:
 *  - fn(ud, NULL, 0, n)        allocate n bytes (return NULL on failure);
 *  - fn(ud, p, old, n)         resize p from old to n bytes;
 *  - fn(ud, p, old, 0)         free p (return value ignored).
 * Returned blocks must be aligned for any object type (like malloc).
 */
typedef void *(*ae_alloc_fn)(void *ud, void *ptr, size_t old_size, size_t new_size);

/**
 * Replace the allocator used for every library allocation. Allowed only while
 * no library allocation is alive (typically before the first call); otherwise
 * returns AE_ERR_STATE. Pass fn = NULL to restore the default (libc).
 */
AE_API ae_status ae_set_allocator(ae_alloc_fn fn, void *ud);

/** The current allocator and its user pointer (the default reports NULL fn). */
AE_API void ae_get_allocator(ae_alloc_fn *fn, void **ud);

/**
 * Sets the calling thread's ae_last_error() to @p message (copied, truncated
 * to 255 bytes; NULL counts as "") and returns @p status. For components built
 * on libautoenc (libautoenc_mpi) and callbacks that report their failures
 * the library's way; by the convention of docs/conventions.md the message
 * starts with the name of the function the caller called, "ae_mpi_x: ...".
 */
AE_API ae_status ae_set_error(ae_status status, const char *message);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_COMMON_H */
