/* The training examples' pictures, as the tutorial draws them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_support.h"

/* Saves the grid as DIR/NAME_SUFFIX.png, frees it and says so. */
static int save_and_free(ex_grid *g, const char *dir, const char *name, const char *suffix)
{
    char path[1024];
    int rc = ex_pathf(path, sizeof path, "%s/%s_%s.png", dir, name, suffix);
    if (rc == EX_OK) rc = ex_grid_save_png(g, path);
    ex_grid_free(g);
    if (rc == EX_OK) printf("wrote %s\n", path);
    return rc;
}

int ex_save_reconstructions_png(const char *dir, const char *name, const ae_dataset *ds,
                                const float *test, const int32_t *labels, size_t n,
                                const float *recon)
{
    const size_t cats = ae_dataset_num_categories(ds), per = 2;
    ex_grid *g;
    char title[128];
    int col = 0;
    if (ex_grid_create(&g, (int)(cats * per), 2, 28, 28, 3, 1) != EX_OK) return EX_ERR;
    snprintf(title, sizeof title, "%s: originals (top) and reconstructions (bottom)", name);
    ex_grid_set_title(g, title);
    for (size_t c = 0; c < cats; c++) {
        size_t found = 0;
        for (size_t i = 0; i < n && found < per; i++) {
            if ((size_t)labels[i] != c) continue;
            ex_grid_put(g, col, 0, test + i * 784, 28, 28, 0, 1, ae_dataset_category_name(ds, c));
            ex_grid_put(g, col, 1, recon + i * 784, 28, 28, 0, 1, "reconstructed");
            col++;
            found++;
        }
    }
    return save_and_free(g, dir, name, "reconstructions");
}

int ex_save_code_png(const char *dir, const char *name, const float *drawing,
                     const char *category, const float *code, const char *code_shape,
                     int code_w, int code_h, const float *recon)
{
    ex_grid *g;
    char title[128], label[32];
    if (ex_grid_create(&g, 3, 1, 28, 28, 3, 1) != EX_OK) return EX_ERR;
    snprintf(title, sizeof title, "code of one drawing (%s drawn as %dx%d)", code_shape, code_h,
             code_w);
    snprintf(label, sizeof label, "code %dx%d", code_h, code_w);
    ex_grid_set_title(g, title);
    ex_grid_put(g, 0, 0, drawing, 28, 28, 0, 1, category);
    /* lo >= hi: the code's own range, since codes are not confined to [0, 1] */
    ex_grid_put(g, 1, 0, code, code_w, code_h, 0, 0, label);
    ex_grid_put(g, 2, 0, recon, 28, 28, 0, 1, "reconstructed");
    return save_and_free(g, dir, name, "code");
}

/* ---- scatter plots of 2-D codes ---------------------------------------------------- */
#define SC_PLOT 480   /* side of the square plot area */
#define SC_MARGIN 16
#define SC_TITLE 24   /* title band */
#define SC_LEGEND 140 /* legend column */

/* matplotlib's tab10 colours, for categories in order */
static const unsigned char SC_COLOURS[10][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The 0.5% and 99.5% quantiles of coordinate k of n points, widened by 5%. */
static int central_range(const float *xy, size_t n, int k, double *lo, double *hi)
{
    float *v = malloc(n * sizeof *v);
    double pad;
    if (!v) return EX_ERR;
    for (size_t i = 0; i < n; i++) v[i] = xy[2 * i + (size_t)k];
    qsort(v, n, sizeof *v, cmp_float);
    *lo = v[(size_t)((double)(n - 1) * 0.005)];
    *hi = v[(size_t)((double)(n - 1) * 0.995)];
    free(v);
    if (*hi <= *lo) *hi = *lo + 1.0;
    pad = 0.05 * (*hi - *lo);
    *lo -= pad;
    *hi += pad;
    return EX_OK;
}

static void put_rgb(unsigned char *rgb, int w, int h, int x, int y, const unsigned char *c)
{
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    memcpy(rgb + 3 * ((size_t)y * (size_t)w + (size_t)x), c, 3);
}

int ex_save_scatter_png(const char *dir, const char *name, const char *suffix,
                        const ae_dataset *ds, const float *xy, const int32_t *labels, size_t n)
{
    const int w = SC_MARGIN * 3 + SC_PLOT + SC_LEGEND, h = SC_TITLE + SC_PLOT + 2 * SC_MARGIN;
    const int x0 = SC_MARGIN, y0 = SC_TITLE + SC_MARGIN; /* top-left of the plot */
    const size_t cats = ae_dataset_num_categories(ds);
    static const unsigned char grey[3] = {200, 200, 200}, black[3] = {0, 0, 0};
    unsigned char *rgb = NULL, *ink = NULL;
    double xlo, xhi, ylo, yhi;
    char path[1024], title[160];
    int rc = EX_ERR;
    if (n == 0 || central_range(xy, n, 0, &xlo, &xhi) != EX_OK ||
        central_range(xy, n, 1, &ylo, &yhi) != EX_OK)
        goto done;
    rgb = malloc((size_t)w * (size_t)h * 3);
    ink = calloc((size_t)w * (size_t)h, 1); /* text, drawn black at the end */
    if (!rgb || !ink) {
        fprintf(stderr, "error: out of memory for a %dx%d scatter plot\n", w, h);
        goto done;
    }
    memset(rgb, 255, (size_t)w * (size_t)h * 3);
    /* the axes through 0, then the frame */
    for (int i = 0; i < SC_PLOT; i++) {
        const int ax = x0 + (int)((0.0 - xlo) / (xhi - xlo) * (SC_PLOT - 1));
        const int ay = y0 + SC_PLOT - 1 - (int)((0.0 - ylo) / (yhi - ylo) * (SC_PLOT - 1));
        if (ax > x0 && ax < x0 + SC_PLOT - 1) put_rgb(rgb, w, h, ax, y0 + i, grey);
        if (ay > y0 && ay < y0 + SC_PLOT - 1) put_rgb(rgb, w, h, x0 + i, ay, grey);
        put_rgb(rgb, w, h, x0 + i, y0, black);
        put_rgb(rgb, w, h, x0 + i, y0 + SC_PLOT - 1, black);
        put_rgb(rgb, w, h, x0, y0 + i, black);
        put_rgb(rgb, w, h, x0 + SC_PLOT - 1, y0 + i, black);
    }
    /* the points: 3x3 dots, y upwards; points outside the range on the frame */
    for (size_t i = 0; i < n; i++) {
        double fx = (xy[2 * i] - xlo) / (xhi - xlo), fy = (xy[2 * i + 1] - ylo) / (yhi - ylo);
        const unsigned char *c = SC_COLOURS[(size_t)labels[i] % 10];
        int px, py;
        fx = fx < 0 ? 0 : fx > 1 ? 1 : fx;
        fy = fy < 0 ? 0 : fy > 1 ? 1 : fy;
        px = x0 + 1 + (int)(fx * (SC_PLOT - 3));
        py = y0 + SC_PLOT - 2 - (int)(fy * (SC_PLOT - 3));
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) put_rgb(rgb, w, h, px + dx, py + dy, c);
    }
    /* legend: a colour square and the category's name per line */
    for (size_t k = 0; k < cats; k++) {
        const int lx = x0 + SC_PLOT + SC_MARGIN, ly = y0 + 4 + (int)k * 16;
        for (int dy = 0; dy < 9; dy++)
            for (int dx = 0; dx < 9; dx++) put_rgb(rgb, w, h, lx + dx, ly + dy, SC_COLOURS[k % 10]);
        ex_draw_text(ink, w, h, lx + 14, ly + 1, ae_dataset_category_name(ds, k), 1, 1);
    }
    snprintf(title, sizeof title, "%s: x %.2f..%.2f, y %.2f..%.2f (%zu points)", name, xlo, xhi,
             ylo, yhi, n);
    ex_draw_text(ink, w, h, x0, 8, title, 1, 1);
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
        if (ink[i]) memset(rgb + 3 * i, 0, 3);
    rc = ex_pathf(path, sizeof path, "%s/%s_%s.png", dir, name, suffix);
    if (rc == EX_OK) rc = ex_png_write_rgb(path, w, h, rgb);
    if (rc == EX_OK) printf("wrote %s\n", path);
done:
    free(rgb);
    free(ink);
    return rc;
}
