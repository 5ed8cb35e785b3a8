/*
 * autoenc: PNG images in (grey conversion, aspect padding, resizing) and
 * pictures out (grids through png_grid.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <png.h>

#include "cli.h"
#include "png_grid.h"

/* Larger pictures are refused before anything is allocated for them: 2^26
 * pixels is a 8192 x 8192 scan, and its RGBA buffer is 256 MB. */
#define MAX_PNG_PIXELS ((size_t)1 << 26)

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcasecmp(s + n - k, suffix) == 0;
}

int cli_is_png(const char *path) { return ends_with(path, ".png"); }
int cli_is_npy(const char *path) { return ends_with(path, ".npy"); }

void cli_input_of_model(cli_input *in, const ae_model *m)
{
    in->width = ae_model_input_size(m);
    in->h = in->w = 0;
    if (ae_model_input_rank(m) == 3 && ae_model_input_dim(m, 2) == 1) {
        in->h = ae_model_input_dim(m, 0);
        in->w = ae_model_input_dim(m, 1);
    } else if (ae_model_input_rank(m) == 1) {
        size_t side = (size_t)llround(sqrt((double)in->width));
        if (side * side == in->width) in->h = in->w = side;
    }
}

/* Taps of a 1-D resampling from n to m samples: output i is the sum of
 * src[idx[k]] * wt[k] for k in [start[i], start[i + 1]). Shrinking averages
 * the source interval [i n/m, (i+1) n/m) (area averaging: each source sample
 * weighs by its overlap), enlarging interpolates linearly between the two
 * nearest source samples with pixel centres aligned ((i + 0.5) n/m - 0.5,
 * clamped at the edges). */
typedef struct taps {
    size_t *start, *idx;
    double *wt;
} taps;

static void taps_free(taps *t)
{
    free(t->start);
    free(t->idx);
    free(t->wt);
}

static int taps_make(taps *t, size_t n, size_t m)
{
    size_t cap = n + 2 * m + 2, k = 0;
    t->start = malloc((m + 1) * sizeof *t->start);
    t->idx = malloc(cap * sizeof *t->idx);
    t->wt = malloc(cap * sizeof *t->wt);
    if (!t->start || !t->idx || !t->wt) {
        taps_free(t);
        return cli_nomem("resizing an image");
    }
    for (size_t i = 0; i < m; i++) {
        t->start[i] = k;
        if (m < n) {
            double scale = (double)n / (double)m, lo = (double)i * scale, hi = lo + scale;
            size_t j0 = (size_t)floor(lo), j1 = (size_t)ceil(hi);
            if (j1 > n) j1 = n;
            for (size_t j = j0; j < j1; j++) {
                double a = lo > (double)j ? lo : (double)j;
                double b = hi < (double)(j + 1) ? hi : (double)(j + 1);
                if (b > a && k < cap) {
                    t->idx[k] = j;
                    t->wt[k++] = (b - a) / scale;
                }
            }
        } else if (m == n) {
            t->idx[k] = i;
            t->wt[k++] = 1.0;
        } else {
            double x = ((double)i + 0.5) * (double)n / (double)m - 0.5, f;
            size_t j0;
            if (x < 0) x = 0;
            if (x > (double)(n - 1)) x = (double)(n - 1);
            j0 = (size_t)floor(x);
            f = x - (double)j0;
            t->idx[k] = j0;
            t->wt[k++] = 1.0 - f;
            if (f > 0 && j0 + 1 < n) {
                t->idx[k] = j0 + 1;
                t->wt[k++] = f;
            }
        }
    }
    t->start[m] = k;
    return CLI_EXIT_OK;
}

/* @p src (sh x sw) resized to @p dst (dh x dw): rows first, then columns. */
static int resize(const float *src, size_t sh, size_t sw, float *dst, size_t dh, size_t dw)
{
    taps tx = {0}, ty = {0};
    float *mid;
    int rc;
    if ((rc = taps_make(&tx, sw, dw)) != CLI_EXIT_OK) return rc;
    if ((rc = taps_make(&ty, sh, dh)) != CLI_EXIT_OK) {
        taps_free(&tx);
        return rc;
    }
    mid = malloc(sh * dw * sizeof *mid);
    if (!mid) {
        taps_free(&tx);
        taps_free(&ty);
        return cli_nomem("resizing an image");
    }
    for (size_t y = 0; y < sh; y++) /* rows: sw -> dw */
        for (size_t x = 0; x < dw; x++) {
            double s = 0;
            for (size_t k = tx.start[x]; k < tx.start[x + 1]; k++)
                s += src[y * sw + tx.idx[k]] * tx.wt[k];
            mid[y * dw + x] = (float)s;
        }
    for (size_t y = 0; y < dh; y++) /* columns: sh -> dh */
        for (size_t x = 0; x < dw; x++) {
            double s = 0;
            for (size_t k = ty.start[y]; k < ty.start[y + 1]; k++)
                s += mid[ty.idx[k] * dw + x] * ty.wt[k];
            dst[y * dw + x] = (float)s;
        }
    free(mid);
    taps_free(&tx);
    taps_free(&ty);
    return CLI_EXIT_OK;
}

int cli_image_load(const char *path, const cli_input *in, int invert, float *dst, double *mean)
{
    png_image img;
    FILE *f;
    unsigned char *rgba = NULL;
    float *grey = NULL;
    size_t w, h, pw, ph, n;
    double sum = 0;
    int rc = CLI_EXIT_FILE;

    if (!in->h || !in->w) {
        cli_error("%s: this model's rows (%zu values) are not grey images, so PNG input "
                  "cannot be used", path, in->width);
        return CLI_EXIT_MISMATCH;
    }
    f = fopen(path, "rb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return CLI_EXIT_FILE;
    }
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(&img, f)) {
        cli_error("%s: not a readable PNG image (libpng: %s)", path, img.message);
        goto done;
    }
    w = img.width;
    h = img.height;
    if (w == 0 || h == 0 || w > MAX_PNG_PIXELS / h) {
        cli_error("%s: a %zux%zu image is larger than autoenc reads (%zu pixels at most)", path,
                  w, h, MAX_PNG_PIXELS);
        png_image_free(&img);
        goto done;
    }
    /* 8-bit sRGB samples with straight (not premultiplied) alpha: libpng
     * expands palettes and grey, and reduces 16-bit samples */
    img.format = PNG_FORMAT_RGBA;
    rgba = malloc(PNG_IMAGE_SIZE(img));
    /* padded to the model's aspect ratio: the longer side decides */
    pw = w;
    ph = h;
    if (w * in->h > h * in->w) ph = (w * in->h + in->w / 2) / in->w;
    else if (w * in->h < h * in->w) pw = (h * in->w + in->h / 2) / in->h;
    if (ph < h) ph = h;
    if (pw < w) pw = w;
    grey = calloc(pw * ph, sizeof *grey);
    if (!rgba || !grey) {
        png_image_free(&img);
        rc = cli_nomem(path);
        goto done;
    }
    if (!png_image_finish_read(&img, NULL, rgba, 0, NULL)) {
        cli_error("%s: cannot decode the PNG image (libpng: %s)", path, img.message);
        goto done;
    }
    n = w * h;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            const unsigned char *p = rgba + 4 * (y * w + x);
            /* ITU-R BT.601 luma on the 8-bit (gamma-encoded) samples, as PIL's
             * convert("L") and Keras' rgb_to_grayscale compute it */
            double luma = (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) / 255.0;
            double ink = invert ? 1.0 - luma : luma;
            double v = ink * (p[3] / 255.0); /* transparent = background (0) */
            grey[(y + (ph - h) / 2) * pw + x + (pw - w) / 2] = (float)v;
            sum += v;
        }
    if (mean) *mean = sum / (double)n;
    rc = resize(grey, ph, pw, dst, in->h, in->w);
done:
    fclose(f);
    free(rgba);
    free(grey);
    return rc;
}

int cli_draw_grid(const char *path, const char *title, const cli_cell *cells, int cols,
                  int n_rows, size_t h, size_t w)
{
    ex_grid *g;
    size_t side = h > w ? h : w;
    int scale = side >= 84 ? 1 : (int)(84 / side), rc = EX_OK;
    if (!h || !w || side > 1024) {
        cli_error("%s: rows of %zux%zu values cannot be drawn as pictures", path, h, w);
        return CLI_EXIT_MISMATCH;
    }
    if (ex_grid_create(&g, cols, n_rows, (int)w, (int)h, scale, 2) != EX_OK)
        return CLI_EXIT_SOFTWARE;
    if (title && ex_grid_set_title(g, title) != EX_OK) rc = EX_ERR;
    for (int r = 0; r < n_rows && rc == EX_OK; r++)
        for (int c = 0; c < cols && rc == EX_OK; c++) {
            const cli_cell *cell = &cells[(size_t)r * (size_t)cols + (size_t)c];
            if (cell->pixels)
                rc = ex_grid_put(g, c, r, cell->pixels, (int)w, (int)h, 0.0f, 1.0f, cell->label);
            else if (cell->label)
                rc = ex_grid_label(g, c, r, cell->label);
        }
    if (rc == EX_OK) rc = ex_grid_save_png(g, path);
    ex_grid_free(g);
    if (rc != EX_OK) {
        cli_error("%s: the picture was not written", path);
        return CLI_EXIT_FILE;
    }
    return CLI_EXIT_OK;
}

int cli_png_header(const char *path, size_t *w, size_t *h, int *colour, int *alpha)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        cli_error("%s: not a readable PNG image (libpng: %s)", path, img.message);
        return CLI_EXIT_FILE;
    }
    *w = img.width;
    *h = img.height;
    *colour = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
    *alpha = (img.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    png_image_free(&img);
    return CLI_EXIT_OK;
}
