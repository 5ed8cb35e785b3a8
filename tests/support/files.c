/* File helpers of the tests (test_support.h). Each failure says on stderr
 * what failed and why; the caller asserts on the returned status. */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw, truncate */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h" /* ae__crc32: the checksum the file formats use */
#include "test_support.h"

static char g_tmpdir[512];

static int failed(const char *what, const char *path)
{
    fprintf(stderr, "ae_test: %s %s: %s\n", what, path, strerror(errno));
    return -1;
}

const char *ae_test_tmpdir_create(const char *prefix, ae_test_where where)
{
    const char *base = getenv("TMPDIR");
    int n;
    if (!base || !*base) base = "/tmp";
    if (where == AE_TEST_SHM && access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    if (where == AE_TEST_CWD) base = ".";
    n = snprintf(g_tmpdir, sizeof g_tmpdir, "%s/%sXXXXXX", base, prefix);
    if (n < 0 || (size_t)n >= sizeof g_tmpdir || !mkdtemp(g_tmpdir)) {
        failed("cannot make a temporary folder in", base);
        g_tmpdir[0] = '\0';
        return NULL;
    }
    return g_tmpdir;
}

const char *ae_test_tmpdir(void)
{
    return g_tmpdir;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : failed("cannot remove", path);
}

int ae_test_tmpdir_remove(void)
{
    int rc;
    if (!g_tmpdir[0]) return 0;
    rc = nftw(g_tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
    g_tmpdir[0] = '\0';
    return rc;
}

int ae_test_group_setup(void **state)
{
    (void)state;
    if (!ae_test_tmpdir_create("ae_test_", AE_TEST_TMP)) return -1;
    return ae_test_alloc_install();
}

int ae_test_group_teardown(void **state)
{
    int rc = ae_test_alloc_teardown(state);
    ae_test_alloc_uninstall();
    return ae_test_tmpdir_remove() == 0 ? rc : -1;
}

const char *ae_test_path(const char *fmt, ...)
{
    static _Thread_local char buf[8][1024];
    static _Thread_local unsigned slot;
    char *b = buf[slot++ % 8];
    int n = snprintf(b, sizeof buf[0], "%s/", g_tmpdir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, sizeof buf[0] - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

static int write_mode(const char *path, const void *data, size_t n, const char *mode)
{
    FILE *f = fopen(path, mode);
    int ok;
    if (!f) return failed("cannot open", path);
    ok = (n == 0 || fwrite(data, 1, n, f) == n);
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : failed("cannot write", path);
}

int ae_test_write_file(const char *path, const void *data, size_t n)
{
    return write_mode(path, data, n, "wb");
}

int ae_test_append_file(const char *path, const void *data, size_t n)
{
    return write_mode(path, data, n, "ab");
}

unsigned char *ae_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n = -1;
    unsigned char *b = NULL;
    *len = 0;
    if (!f) {
        failed("cannot open", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)n + 1)) != NULL && fread(b, 1, (size_t)n, f) == (size_t)n) {
        b[n] = 0;
        *len = (size_t)n;
    } else {
        failed("cannot read", path);
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

long ae_test_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int ae_test_patch_file(const char *path, size_t offset, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    int ok;
    if (!f) return failed("cannot open", path);
    ok = fseek(f, (long)offset, SEEK_SET) == 0 && fwrite(bytes, 1, n, f) == n;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : failed("cannot patch", path);
}

int ae_test_truncate_file(const char *path, size_t len)
{
    return truncate(path, (off_t)len) == 0 ? 0 : failed("cannot truncate", path);
}

int ae_test_files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

int ae_test_find_names(const char *dir, const char *part, char (*names)[256], int cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return failed("cannot list", dir);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, part)) {
            if (names && n < cap) snprintf(names[n], sizeof names[n], "%s", e->d_name);
            n++;
        }
    closedir(d);
    return n;
}

void ae_test_fix_crc32(unsigned char *buf, size_t len)
{
    uint32_t crc = ae__crc32(0, buf, len - 4);
    memcpy(buf + len - 4, &crc, 4); /* little-endian, as the formats store it */
}

int ae_test_write_npy(const char *path, int major, const char *dict, size_t align,
                      const void *data, size_t len)
{
    size_t prefix = major == 1 ? 10 : 12, dl = strlen(dict), hl = dl + 1, total;
    unsigned char *buf;
    int rc;
    if (align) hl += (align - (prefix + hl) % align) % align;
    total = prefix + hl + len;
    buf = malloc(total);
    if (!buf) return failed("out of memory for", path);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++) buf[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + prefix, dict, dl);
    memset(buf + prefix + dl, ' ', hl - dl - 1);
    buf[prefix + hl - 1] = '\n';
    if (len) memcpy(buf + prefix + hl, data, len);
    rc = ae_test_write_file(path, buf, total);
    free(buf);
    return rc;
}

int ae_test_write_npy_u8(const char *path, int rank, const size_t *dims,
                         const unsigned char *data)
{
    char dict[256];
    size_t n = 1;
    int pos = snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < rank; i++) {
        pos += snprintf(dict + pos, sizeof dict - (size_t)pos, i ? ", %zu" : "%zu", dims[i]);
        n *= dims[i];
    }
    snprintf(dict + pos, sizeof dict - (size_t)pos, rank == 1 ? ",), }" : "), }");
    return ae_test_write_npy(path, 1, dict, 64, data, n);
}
