/* Atomic file writes (temp file + fsync + rename), the checks every loader
 * makes before reading a file, and bounds-checked reads, shared by the model,
 * index and data formats. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Formats are little-endian on disk; this library targets little-endian hosts
 * and refuses to build elsewhere rather than write wrong files. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libautoenc file formats need a little-endian host"
#endif

ae_status ae__file_fail(char *msg, const char *path, ae_status status, const char *fmt, ...)
{
    char what[AE__MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ae__fail(msg, status, "'%s': %s", path, what);
}

/* What a non-regular file is, for messages. */
static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "a special file";
}

/* ---- writing ------------------------------------------------------------------
 * The temporary file is created with open(O_CREAT | O_EXCL) rather than
 * mkstemp: mkstemp always creates mode 0600, which would survive the rename
 * and leave saved files unreadable to other accounts. Asking open for 0666
 * lets the kernel apply the process umask (or the directory's default ACL)
 * exactly as for fopen(path, "w"), without reading the umask: umask(2) can
 * only be read by setting it, which would race with other threads creating
 * files. */
#define TMP_SUFFIX ".tmp-"
#define TMP_RANDOM 6      /* random characters after the suffix */
#define TMP_ATTEMPTS 100  /* names tried before giving up (EEXIST each time) */

static void random_name(char *out, ae__rng *r)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < TMP_RANDOM; i++) out[i] = chars[ae__rng_below(r, sizeof chars - 1)];
    out[TMP_RANDOM] = '\0';
}

/* Seed for temporary names: no global state. Two writers seeding alike (same
 * nanosecond, process and stack address) cannot both create one name:
 * O_EXCL makes the second try another. */
static uint64_t name_seed(const void *w)
{
    struct timespec ts = {0, 0};
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 40 ^
           (uint64_t)(uintptr_t)w;
}

/* The write bits a save requires of an existing target. faccessat checks
 * what open(O_WRONLY) would (owner, group, other bits, ACLs) for the
 * effective ids; a process that bypasses permission checks (root) passes it
 * for any file, so a target without a single write bit (0444, 0555) is
 * refused for every caller: those bits are then the only sign that the file
 * is meant to be kept. */
static int target_read_only(const char *path, mode_t mode)
{
    if ((mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0) return 1;
    return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0 && (errno == EACCES || errno == EPERM);
}

ae_status ae__writer_open(ae__writer *w, const char *path, char *msg)
{
    struct stat target;
    size_t n, base;
    ae__rng rng;
    int fd = -1, e = 0;
    memset(w, 0, sizeof *w);
    if (!path || !*path) return ae__fail(msg, AE_ERR_INVALID_ARG, "empty file path");
    if (stat(path, &target) == 0) {
        if (!S_ISREG(target.st_mode))
            return ae__file_fail(msg, path, AE_ERR_IO, "exists and is %s; only a regular file is "
                                 "replaced", file_kind(target.st_mode));
        if (target_read_only(path, target.st_mode))
            return ae__file_fail(msg, path, AE_ERR_IO, "read-only (mode %04o); a save does not "
                                 "replace it", (unsigned)(target.st_mode & 07777));
        w->replace = 1;
        w->mode = (unsigned)(target.st_mode & (S_IRWXU | S_IRWXG | S_IRWXO));
    }
    base = strlen(path) + sizeof TMP_SUFFIX - 1;
    n = base + TMP_RANDOM + 1;
    w->tmp_path = ae__malloc(n);
    if (!w->tmp_path)
        return ae__file_fail(msg, path, AE_ERR_NOMEM, "out of memory for a file name");
    w->tmp_cap = n;
    memcpy(w->tmp_path, path, base - (sizeof TMP_SUFFIX - 1));
    memcpy(w->tmp_path + base - (sizeof TMP_SUFFIX - 1), TMP_SUFFIX, sizeof TMP_SUFFIX - 1);
    ae__rng_seed(&rng, name_seed(w));
    for (int attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
        random_name(w->tmp_path + base, &rng);
        /* a replacement is written owner-only and given the target's mode at
         * commit, so its half-written contents are never more visible than
         * the old file's were */
        fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, w->replace ? 0600 : 0666);
        if (fd >= 0 || (e = errno) != EEXIST) break;
    }
    if (fd < 0) {
        ae__free(w->tmp_path, w->tmp_cap);
        w->tmp_path = NULL;
        return ae__file_fail(msg, path, AE_ERR_IO, "cannot create a temporary file beside it: %s",
                             strerror(e));
    }
    w->file = fdopen(fd, "wb");
    if (!w->file) {
        e = errno;
        close(fd);
        unlink(w->tmp_path);
        ae__free(w->tmp_path, w->tmp_cap);
        w->tmp_path = NULL;
        return ae__file_fail(msg, path, AE_ERR_IO, "cannot open: %s", strerror(e));
    }
    return AE_OK;
}

ae_status ae__writer_write(ae__writer *w, const void *data, size_t n)
{
    if (w->failed || (!w->file && !w->sink)) return AE_ERR_IO;
    if (n == 0) return AE_OK;
    if (w->sink ? w->sink(data, n, w->sink_user) != 0
                : fwrite(data, 1, n, (FILE *)w->file) != n) {
        w->failed = 1;
        return AE_ERR_IO;
    }
    w->crc = ae__crc32(w->crc, data, n);
    return AE_OK;
}

ae_status ae__writer_u32(ae__writer *w, uint32_t v) { return ae__writer_write(w, &v, 4); }
ae_status ae__writer_u64(ae__writer *w, uint64_t v) { return ae__writer_write(w, &v, 8); }

ae_status ae__writer_f64(ae__writer *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return ae__writer_u64(w, u);
}
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
        return ae__file_fail(msg, path, AE_ERR_IO, "writing failed; the old file is untouched");
    }
    /* The replaced file's permission bits. A failure is ignored: it only
     * happens where modes are not stored (FAT, some network mounts), and the
     * file then keeps the owner-only mode it was created with. */
    if (w->replace) (void)fchmod(fileno(f), (mode_t)w->mode);
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    w->file = NULL;
    if (!ok || rename(w->tmp_path, path) != 0) {
        int e = errno;
        ae__writer_abort(w);
        return ae__file_fail(msg, path, AE_ERR_IO, "cannot write: %s; the old file is untouched",
                             strerror(e));
    }
    ae__free(w->tmp_path, w->tmp_cap);
    w->tmp_path = NULL;
    return AE_OK;
}

/* ---- reading ------------------------------------------------------------------- */
ae_status ae__file_open(const char *path, void **out, uint64_t *size, char *msg)
{
    struct stat info;
    FILE *f;
    int fd;
    *out = NULL;
    *size = 0;
    if (!path) return ae__fail(msg, AE_ERR_INVALID_ARG, "NULL file path");
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused
     * below like every other non-regular file */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return ae__file_fail(msg, path, AE_ERR_IO, "cannot open: %s", strerror(errno));
    if (fstat(fd, &info) != 0) {
        int e = errno;
        close(fd);
        return ae__file_fail(msg, path, AE_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        return ae__file_fail(msg, path, AE_ERR_IO, "not a regular file (%s)",
                             file_kind(info.st_mode));
    }
    if (info.st_size <= 0) {
        close(fd);
        return ae__file_fail(msg, path, AE_ERR_FORMAT, "the file is empty");
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* no effect on regular files */
    f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return ae__file_fail(msg, path, AE_ERR_IO, "cannot open: %s", strerror(e));
    }
    *out = f;
    *size = (uint64_t)info.st_size;
    return AE_OK;
}

ae_status ae__read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len,
                        char *msg)
{
    void *fp;
    FILE *f;
    uint64_t size;
    unsigned char *buf;
    ae_status st;
    *data = NULL;
    *len = 0;
    if ((st = ae__file_open(path, &fp, &size, msg)) != AE_OK) return st;
    f = fp;
    if (size > max_bytes) {
        fclose(f);
        return ae__file_fail(msg, path, AE_ERR_FORMAT, "%llu bytes, more than the %zu allowed",
                             (unsigned long long)size, max_bytes);
    }
    buf = ae__malloc((size_t)size);
    if (!buf) {
        fclose(f);
        return ae__file_fail(msg, path, AE_ERR_NOMEM, "out of memory for %llu bytes",
                             (unsigned long long)size);
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        int e = ferror(f) ? errno : 0;
        fclose(f);
        ae__free(buf, (size_t)size);
        return ae__file_fail(msg, path, AE_ERR_IO, "%s%s", e ? "read error: " : "the file shrank "
                             "while being read", e ? strerror(e) : "");
    }
    fclose(f);
    *data = buf;
    *len = (size_t)size;
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

int ae__reader_f64(ae__reader *r, double *v)
{
    uint64_t u = 0;
    int ok = ae__reader_u64(r, &u);
    memcpy(v, &u, 8);
    return ok;
}
int ae__reader_f32s(ae__reader *r, float *v, size_t n)
{
    size_t bytes;
    if (ae__mul_size(n, sizeof(float), &bytes) != 0) {
        r->failed = 1;
        return -1;
    }
    return ae__reader_bytes(r, v, bytes);
}
