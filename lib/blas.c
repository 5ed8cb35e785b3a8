/* The one file that talks to CBLAS, so a different BLAS is a one-file change. */
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

int ae__blas_set_threads(int n)
{
    int old = openblas_get_num_threads();
    if (n > 0) openblas_set_num_threads(n);
    return old;
}

int ae__blas_get_threads(void) { return openblas_get_num_threads(); }
