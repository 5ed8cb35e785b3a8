/*
 * Shared by the fuzz harnesses (fuzz_npy.c, fuzz_model.c, fuzz_index.c).
 *
 * The loaders take file paths, so each input is written to a private temp
 * file (in /dev/shm when it exists: no disk traffic) which is rewritten per
 * input and removed at exit. The harnesses are plain C: built with clang
 * -fsanitize=fuzzer,address,undefined they are libFuzzer targets; built with
 * replay_main.c by any compiler they replay files (the regression tests).
 */
#ifndef AE_FUZZ_COMMON_H
#define AE_FUZZ_COMMON_H

#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autoenc/autoenc.h"
#include "internal.h" /* ae__crc32 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_fuzz_path[128], g_fuzz_out[160];

static void fuzz_cleanup(void)
{
    if (g_fuzz_path[0]) unlink(g_fuzz_path);
    if (g_fuzz_out[0]) unlink(g_fuzz_out);
}

/* Writes the input to this process's temp file; returns its path. */
static const char *fuzz_write_input(const char *tag, const uint8_t *data, size_t size)
{
    FILE *f;
    if (!g_fuzz_path[0]) {
        const char *tmp = getenv("TMPDIR");
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp";
        snprintf(g_fuzz_path, sizeof g_fuzz_path, "%s/ae_fuzz_%s_%ld", dir, tag, (long)getpid());
        snprintf(g_fuzz_out, sizeof g_fuzz_out, "%s.out", g_fuzz_path);
        atexit(fuzz_cleanup);
    }
    f = fopen(g_fuzz_path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return g_fuzz_path;
}

/* Model and index files end in a CRC-32 of every byte before it. Random
 * mutations almost never keep it right, so the harnesses recompute it and
 * the fuzzer explores the parser behind it (the checksum check itself is
 * covered by the unit tests). Returns a malloc'ed copy. */
static inline uint8_t *fuzz_fix_crc(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) abort();
    if (size) memcpy(copy, data, size);
    if (size >= 8) {
        uint32_t crc = ae__crc32(0, copy, size - 4);
        memcpy(copy + size - 4, &crc, 4); /* little-endian host */
    }
    return copy;
}

/* A status the loaders may return for a bad file. Anything else (above all
 * AE_ERR_INTERNAL or AE_ERR_INVALID_ARG) is a bug: abort so the fuzzer
 * reports it. */
static void fuzz_check_load_status(ae_status st)
{
    switch (st) {
    case AE_OK:
    case AE_ERR_FORMAT:
    case AE_ERR_VERSION:
    case AE_ERR_CHECKSUM:
    case AE_ERR_NOMEM:
    case AE_ERR_IO:
        return;
    default:
        fprintf(stderr, "unexpected load status %d (%s): %s\n", st, ae_status_string(st),
                ae_last_error());
        abort();
    }
}

#endif /* AE_FUZZ_COMMON_H */
