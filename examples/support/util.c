/* Directories, paths, a monotonic timer and loading the examples' data. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
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

int ex_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir ? dir : ".", name ? name : "");
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "error: path %s/%s is too long\n", dir ? dir : ".", name ? name : "");
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

int ex_load_dataset(ae_dataset **out, const ex_args *a, int verbose)
{
    double t0 = ex_now();
    ae_status st;
    *out = NULL;
    if (!a->data_dir) {
        fprintf(stderr, "error: no data folder: pass --data DIR or set AUTOENC_DATA\n");
        return EX_ERR;
    }
    st = ae_dataset_load(out, a->data_dir, a->per_category, AE_DATASET_DEFAULT_TEST_FRACTION,
                         a->seed);
    if (st != AE_OK) {
        fprintf(stderr, "error: loading %s: %s (%s)\n", a->data_dir, ae_last_error(),
                ae_status_string(st));
        return EX_ERR;
    }
    if (verbose) {
        size_t ntr, nte;
        ae_dataset_train(NULL, NULL, &ntr, *out);
        ae_dataset_test(NULL, NULL, &nte, *out);
        printf("data: %s, %zu categories, first %zu per category\n", a->data_dir,
               ae_dataset_num_categories(*out), a->per_category);
        for (size_t c = 0; c < ae_dataset_num_categories(*out); c++) {
            size_t tr, te;
            ae_dataset_category_counts(&tr, &te, *out, c);
            printf("  %-14s train %6zu  test %5zu\n", ae_dataset_category_name(*out, c), tr, te);
        }
        printf("  %-14s train %6zu  test %5zu  (loaded in %.2f s)\n", "total", ntr, nte,
               ex_now() - t0);
    }
    return EX_OK;
}
