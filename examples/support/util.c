/* Error lines, directories, paths, a monotonic timer and the data set's category table. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ex_support.h"

int ex_mkdir_p(const char *dir)
{
    char buf[4096];
    size_t n;
    struct stat sb;
    if (!dir || !*dir || (n = strlen(dir)) >= sizeof buf) {
        fprintf(stderr, "error: bad directory name\n");
        return EX_ERR;
    }
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        if (buf[i - 1] == '/') continue; /* "a//b" */
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "error: cannot create %s: %s\n", buf, strerror(errno));
            return EX_ERR;
        }
        buf[i] = dir[i];
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "error: %s exists and is not a directory\n", dir);
        return EX_ERR;
    }
    return EX_OK;
}

int ex_failed(ae_status st, const char *what)
{
    if (st == AE_OK) return 0;
    fprintf(stderr, "error: %s: %s (%s)\n", what, ae_last_error(), ae_status_string(st));
    return 1;
}

int ex_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir ? dir : ".", name ? name : "");
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "error: path %s/%s is too long\n", dir ? dir : ".", name ? name : "");
        return EX_ERR;
    }
    return EX_OK;
}

int ex_pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "error: a path (%s) is longer than %zu bytes\n", fmt, cap - 1);
        return EX_ERR;
    }
    return EX_OK;
}

double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ex_print_dataset(const ae_dataset *ds, const ex_args *a, double load_seconds)
{
    size_t n_train, n_test;
    ae_dataset_train(NULL, NULL, &n_train, ds);
    ae_dataset_test(NULL, NULL, &n_test, ds);
    printf("data: %s, %zu categories, first %zu per category\n", a->data_dir,
           ae_dataset_num_categories(ds), a->per_category);
    for (size_t c = 0; c < ae_dataset_num_categories(ds); c++) {
        size_t tr, te;
        ae_dataset_category_counts(&tr, &te, ds, c);
        printf("  %-14s train %6zu  test %5zu\n", ae_dataset_category_name(ds, c), tr, te);
    }
    printf("  %-14s train %6zu  test %5zu  (loaded in %.2f s)\n", "total", n_train, n_test,
           load_seconds);
}
