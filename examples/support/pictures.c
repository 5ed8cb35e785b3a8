/* The training examples' pictures, as the tutorial draws them. */
#include <stdio.h>

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
