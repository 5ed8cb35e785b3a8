/* The one file that talks to CBLAS, so a different BLAS is a one-file change.
 * It also owns the library's only use of OpenBLAS' process-wide thread count. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include <cblas.h>

#include "internal.h"

/* OpenBLAS extensions; declared here so other CBLAS headers still compile. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

void ae__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
               size_t ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

/* OpenBLAS keeps one thread count for the whole process. Each call saving
 * the count, setting 1 and restoring it on its own raced: two concurrent fits
 * could each save the other's 1, and the host was left at 1 thread (measured
 * in 13 of 20 runs), while a restore in the middle of another fit switched
 * its GEMMs to several threads and changed its result bits. So the sections
 * nest through one count under one lock: the first to enter saves the host's
 * count and sets 1, the last to leave puts the saved count back. */
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_sections; /* single-threaded sections open in the process */
static int blas_saved;    /* the host's count when the first one opened */

void ae__blas_single_begin(void)
{
    pthread_mutex_lock(&blas_lock);
    if (blas_sections++ == 0) {
        blas_saved = openblas_get_num_threads();
        if (blas_saved != 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_lock);
}

void ae__blas_single_end(void)
{
    pthread_mutex_lock(&blas_lock);
    /* the host may have set a count of its own while the sections were
     * open: that one stays (only the 1 set here is undone) */
    if (--blas_sections == 0 && blas_saved != 1 && openblas_get_num_threads() == 1)
        openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_lock);
}
