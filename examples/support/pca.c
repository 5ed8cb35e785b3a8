/*
 * Principal component analysis, the linear baseline image_retrieval compares
 * the autoencoder's codes with: the covariance of the training rows by
 * CBLAS's ssyrk, its eigenvectors by LAPACK's ssyevd (both from OpenBLAS,
 * which the library already links, so the examples gain no dependency).
 *
 * The covariance is accumulated over blocks of centred rows, so no centred
 * copy of the whole training set (220 MB for QuickDraw-10) is made; a
 * 784 x 784 ssyevd takes about 0.2 s here, the ssyrk over 70k rows about
 * 0.5 s on 2 cores.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "ex_support.h"

/* LAPACK's Fortran entry point. OpenBLAS exports it; Debian ships no
 * lapacke.h for it, and gfortran's ABI adds the lengths of the two
 * character arguments at the end. */
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
             float *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);

#define PCA_BLOCK_ROWS 2048 /* rows centred at once: 6.4 MB at 784 floats */

struct ex_pca {
    size_t dim, components;
    float *mean;       /* dim */
    float *axes;       /* components x dim, largest variance first */
    double explained;  /* fraction of the total variance the axes keep */
};

void ex_pca_free(ex_pca *p)
{
    if (!p) return;
    free(p->mean);
    free(p->axes);
    free(p);
}

size_t ex_pca_components(const ex_pca *p) { return p->components; }
double ex_pca_explained(const ex_pca *p) { return p->explained; }

/* Column means in double: 70k rows of [0, 1] values would lose digits in
 * float. */
static void column_means(const float *x, size_t n, size_t dim, float *mean)
{
    double *sum = calloc(dim, sizeof *sum);
    if (!sum) {
        memset(mean, 0, dim * sizeof *mean);
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++) sum[j] += x[i * dim + j];
    for (size_t j = 0; j < dim; j++) mean[j] = (float)(sum[j] / (double)n);
    free(sum);
}

int ex_pca_fit(ex_pca **out, const float *x, size_t n, size_t dim, size_t components)
{
    ex_pca *p = NULL;
    float *cov = NULL, *block = NULL, *eig = NULL, *work = NULL, wq = 0;
    int *iwork = NULL, info = 0, nd = (int)dim, lwork = -1, liwork = -1, iwq = 0;
    double total = 0, kept = 0;
    int rc = EX_ERR;

    *out = NULL;
    if (n < 2 || dim == 0 || components == 0 || components > dim || dim > 65536) return EX_ERR;
    p = calloc(1, sizeof *p);
    if (!p) return EX_ERR;
    p->dim = dim;
    p->components = components;
    p->mean = malloc(dim * sizeof *p->mean);
    p->axes = malloc(components * dim * sizeof *p->axes);
    cov = calloc(dim * dim, sizeof *cov);
    block = malloc((size_t)PCA_BLOCK_ROWS * dim * sizeof *block);
    eig = malloc(dim * sizeof *eig);
    if (!p->mean || !p->axes || !cov || !block || !eig) goto done;

    column_means(x, n, dim, p->mean);
    for (size_t r0 = 0; r0 < n; r0 += PCA_BLOCK_ROWS) {
        size_t rows = n - r0 < PCA_BLOCK_ROWS ? n - r0 : PCA_BLOCK_ROWS;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < dim; j++) block[i * dim + j] = x[(r0 + i) * dim + j] - p->mean[j];
        /* upper triangle, row-major = LAPACK's lower triangle column-major */
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim, (int)rows,
                    1.0f / (float)(n - 1), block, (int)dim, 1.0f, cov, (int)dim);
    }

    ssyevd_("V", "L", &nd, cov, &nd, eig, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info != 0) goto done;
    lwork = (int)wq;
    liwork = iwq;
    work = malloc((size_t)lwork * sizeof *work);
    iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) goto done;
    ssyevd_("V", "L", &nd, cov, &nd, eig, work, &lwork, iwork, &liwork, &info, 1, 1);
    if (info != 0) goto done;

    /* eigenvalues ascend; eigenvector j is column j of the column-major
     * result, i.e. dim contiguous floats at cov + j * dim */
    for (size_t j = 0; j < dim; j++) total += eig[j] > 0 ? eig[j] : 0;
    for (size_t c = 0; c < components; c++) {
        size_t j = dim - 1 - c;
        memcpy(p->axes + c * dim, cov + j * dim, dim * sizeof *p->axes);
        kept += eig[j] > 0 ? eig[j] : 0;
    }
    p->explained = total > 0 ? kept / total : 0;
    *out = p;
    p = NULL;
    rc = EX_OK;
done:
    ex_pca_free(p);
    free(cov);
    free(block);
    free(eig);
    free(work);
    free(iwork);
    return rc;
}

int ex_pca_project(const ex_pca *p, const float *x, size_t n, float *codes)
{
    float *block = malloc((size_t)PCA_BLOCK_ROWS * p->dim * sizeof *block);
    if (!block) return EX_ERR;
    for (size_t r0 = 0; r0 < n; r0 += PCA_BLOCK_ROWS) {
        size_t rows = n - r0 < PCA_BLOCK_ROWS ? n - r0 : PCA_BLOCK_ROWS;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < p->dim; j++)
                block[i * p->dim + j] = x[(r0 + i) * p->dim + j] - p->mean[j];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)p->components,
                    (int)p->dim, 1.0f, block, (int)p->dim, p->axes, (int)p->dim, 0.0f,
                    codes + r0 * p->components, (int)p->components);
    }
    free(block);
    return EX_OK;
}

void ex_pca_reconstruct(const ex_pca *p, const float *codes, size_t n, float *x)
{
    for (size_t i = 0; i < n; i++) memcpy(x + i * p->dim, p->mean, p->dim * sizeof *x);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)p->dim,
                (int)p->components, 1.0f, codes, (int)p->components, p->axes, (int)p->dim, 1.0f,
                x, (int)p->dim);
    /* pixels are intensities in [0, 1]: a linear reconstruction overshoots */
    for (size_t i = 0; i < n * p->dim; i++) x[i] = fminf(1.0f, fmaxf(0.0f, x[i]));
}
