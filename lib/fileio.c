/* Atomic file writes (temp file + fsync + rename) and bounds-checked reads,
 * shared by the model, index and data formats. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Formats are little-endian on disk; this library targets little-endian hosts
 * and refuses to build elsewhere rather than write wrong files. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libautoenc file formats need a little-endian host"
#endif

ae_status ae__writer_open(ae__writer *w, const char *path, char *msg)
{
    int fd;
    size_t n;
    memset(w, 0, sizeof *w);
    if (!path || !*path) return ae__fail(msg, AE_ERR_INVALID_ARG, "empty file path");
    n = strlen(path) + sizeof ".tmp-XXXXXX";
    w->tmp_path = ae__malloc(n);
    if (!w->tmp_path) return ae__fail(msg, AE_ERR_NOMEM, "out of memory for a file name");
    w->tmp_cap = n;
    snprintf(w->tmp_path, n, "%s.tmp-XXXXXX", path);
    fd = mkstemp(w->tmp_path);
    if (fd < 0) {
        int e = errno;
        ae__free(w->tmp_path, w->tmp_cap);
        w->tmp_path = NULL;
        return ae__fail(msg, AE_ERR_IO, "cannot create a temporary file beside '%s': %s", path,
                        strerror(e));
    }
    w->file = fdopen(fd, "wb");
    if (!w->file) {
        int e = errno;
        close(fd);
        unlink(w->tmp_path);
        ae__free(w->tmp_path, w->tmp_cap);
        w->tmp_path = NULL;
        return ae__fail(msg, AE_ERR_IO, "cannot open '%s': %s", path, strerror(e));
    }
    return AE_OK;
}

ae_status ae__writer_write(ae__writer *w, const void *data, size_t n)
{
    if (w->failed || !w->file) return AE_ERR_IO;
    if (n == 0) return AE_OK;
    if (fwrite(data, 1, n, (FILE *)w->file) != n) {
        w->failed = 1;
        return AE_ERR_IO;
    }
    w->crc = ae__crc32(w->crc, data, n);
    return AE_OK;
}

ae_status ae__writer_u32(ae__writer *w, uint32_t v) { return ae__writer_write(w, &v, 4); }
ae_status ae__writer_u64(ae__writer *w, uint64_t v) { return ae__writer_write(w, &v, 8); }
ae_status ae__writer_f32s(ae__writer *w, const float *v, size_t n)
{
    size_t bytes;
    if (ae__mul_size(n, sizeof(float), &bytes) != 0) return AE_ERR_RANGE;
    return ae__writer_write(w, v, bytes);
}

void ae__writer_abort(ae__writer *w)
{
    if (w->file) fclose((FILE *)w->file);
    w->file = NULL;
    if (w->tmp_path) {
        unlink(w->tmp_path);
        ae__free(w->tmp_path, w->tmp_cap);
    }
    w->tmp_path = NULL;
}

ae_status ae__writer_commit(ae__writer *w, const char *path, char *msg)
{
    FILE *f = w->file;
    int ok;
    if (!f || w->failed) {
        ae__writer_abort(w);
        return ae__fail(msg, AE_ERR_IO, "writing '%s' failed; the old file is untouched", path);
    }
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    w->file = NULL;
    if (!ok || rename(w->tmp_path, path) != 0) {
        int e = errno;
        ae__writer_abort(w);
        return ae__fail(msg, AE_ERR_IO, "cannot write '%s': %s; the old file is untouched", path,
                        strerror(e));
    }
    ae__free(w->tmp_path, w->tmp_cap);
    w->tmp_path = NULL;
    return AE_OK;
}

ae_status ae__read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len,
                        char *msg)
{
    FILE *f;
    long end;
    unsigned char *buf;
    *data = NULL;
    *len = 0;
    if (!path) return ae__fail(msg, AE_ERR_INVALID_ARG, "NULL file path");
    f = fopen(path, "rb");
    if (!f) return ae__fail(msg, AE_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    {
        struct stat info;
        if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) {
            fclose(f);
            return ae__fail(msg, AE_ERR_IO, "'%s' is not a regular file", path);
        }
    }
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return ae__fail(msg, AE_ERR_IO, "cannot size '%s' (not a regular file?)", path);
    }
    if ((unsigned long)end > max_bytes) {
        fclose(f);
        return ae__fail(msg, AE_ERR_FORMAT, "'%s' is %ld bytes, more than the %zu allowed", path,
                        end, max_bytes);
    }
    if (end == 0) {
        fclose(f);
        return ae__fail(msg, AE_ERR_FORMAT, "'%s' is empty", path);
    }
    buf = ae__malloc((size_t)end);
    if (!buf) {
        fclose(f);
        return ae__fail(msg, AE_ERR_NOMEM, "out of memory reading '%s' (%ld bytes)", path, end);
    }
    if (fread(buf, 1, (size_t)end, f) != (size_t)end) {
        fclose(f);
        ae__free(buf, (size_t)end);
        return ae__fail(msg, AE_ERR_IO, "cannot read '%s'", path);
    }
    fclose(f);
    *data = buf;
    *len = (size_t)end;
    return AE_OK;
}

int ae__reader_bytes(ae__reader *r, void *out, size_t n)
{
    if (r->failed || n > r->len - r->pos) {
        r->failed = 1;
        return -1;
    }
    if (out) memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

int ae__reader_u32(ae__reader *r, uint32_t *v) { return ae__reader_bytes(r, v, 4); }
int ae__reader_u64(ae__reader *r, uint64_t *v) { return ae__reader_bytes(r, v, 8); }
int ae__reader_f32s(ae__reader *r, float *v, size_t n)
{
    size_t bytes;
    if (ae__mul_size(n, sizeof(float), &bytes) != 0) {
        r->failed = 1;
        return -1;
    }
    return ae__reader_bytes(r, v, bytes);
}
