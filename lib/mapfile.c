/* Read-only file mappings for the loaders that search a file in place
 * (ae_index_map): mmap, fstat and madvise only, so the core library still
 * needs nothing beyond libc. madvise's MADV_DONTNEED and MADV_RANDOM are not
 * in POSIX (posix_madvise's POSIX_MADV_DONTNEED is a no-op in glibc), hence
 * _DEFAULT_SOURCE; where they are missing the advice is skipped, which only
 * costs resident memory. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

ae_status ae__map_file(const char *path, const unsigned char **data, size_t *len, char *msg)
{
    struct stat info;
    void *p;
    int fd;
    *data = NULL;
    *len = 0;
    if (!path) return ae__fail(msg, AE_ERR_INVALID_ARG, "NULL file path");
    /* O_NONBLOCK: a FIFO must not block the open; it is refused below */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return ae__file_fail(msg, path, AE_ERR_IO, "cannot open: %s", strerror(errno));
    if (fstat(fd, &info) != 0) {
        int e = errno;
        close(fd);
        return ae__file_fail(msg, path, AE_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        return ae__file_fail(msg, path, AE_ERR_IO, "not a regular file");
    }
    if (info.st_size <= 0) {
        close(fd);
        return ae__file_fail(msg, path, AE_ERR_FORMAT, "the file is empty");
    }
    if ((uint64_t)info.st_size > SIZE_MAX / 2) {
        close(fd);
        return ae__file_fail(msg, path, AE_ERR_FORMAT, "%llu bytes is too large",
                             (unsigned long long)info.st_size);
    }
    p = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd); /* the mapping keeps the file */
    if (p == MAP_FAILED)
        return ae__file_fail(msg, path, AE_ERR_IO, "cannot map: %s", strerror(errno));
    *data = p;
    *len = (size_t)info.st_size;
    return AE_OK;
}

void ae__unmap_file(const unsigned char *data, size_t len)
{
    if (data && len) (void)munmap((void *)(uintptr_t)data, len);
}

/* The whole pages inside [p, p + n). */
static int inner_pages(const unsigned char *p, size_t n, uintptr_t *a, uintptr_t *b)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t pg = ps > 0 ? (uintptr_t)ps : 4096u;
    *a = ((uintptr_t)p + pg - 1) & ~(pg - 1);
    *b = ((uintptr_t)p + n) & ~(pg - 1);
    return *b > *a;
}

void ae__map_release(const unsigned char *p, size_t n)
{
#ifdef MADV_DONTNEED
    uintptr_t a, b;
    /* on a read-only file mapping this only drops the page-table entries:
     * the pages stay in the page cache and fault back in on the next read */
    if (inner_pages(p, n, &a, &b)) (void)madvise((void *)a, b - a, MADV_DONTNEED);
#else
    (void)p;
    (void)n;
#endif
}

void ae__map_release_read(const unsigned char *base, size_t item_bytes, size_t i)
{
    size_t per = ((size_t)1 << 20) / item_bytes + 1; /* items per release, about 1 MiB */
    if ((i + 1) % per == 0) ae__map_release(base + (i + 1 - per) * item_bytes, per * item_bytes);
}

void ae__map_random(const unsigned char *p, size_t n)
{
#ifdef MADV_RANDOM
    uintptr_t a, b;
    if (inner_pages(p, n, &a, &b)) (void)madvise((void *)a, b - a, MADV_RANDOM);
#else
    (void)p;
    (void)n;
#endif
}
