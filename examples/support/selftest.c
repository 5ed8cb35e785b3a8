/* Self-test of the example support code: options, font, grids, PNG, CSV, paths.
 * usage: ae_example_support_selftest OUTDIR   (exit status 0 = pass) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "ex_support.h"

static int failures;
#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                         \
        }                                                                       \
    } while (0)

static int parse(ex_args *a, const ex_option *extra, int argc, const char **argv)
{
    return ex_args_parse(a, extra, argc, (char **)argv, "selftest", 0);
}

static void test_args(void)
{
    ex_args a;
    long k = 10;
    double lr = 0.001;
    const char *index = "hnsw";
    int verbose = 0;
    const ex_option extra[] = {
        {"k", EX_OPT_INT, &k, 1, 100, "K", "neighbours"},
        {"lr", EX_OPT_DOUBLE, &lr, 0, 1, "RATE", "learning rate"},
        {"index", EX_OPT_STRING, &index, 1, 0, "KIND", "brute, balltree or hnsw"},
        {"verbose", EX_OPT_FLAG, &verbose, 0, 0, NULL, "more output"},
        {NULL, EX_OPT_FLAG, NULL, 0, 0, NULL, NULL},
    };
    const char *ok[] = {"prog", "--data", "/d", "--epochs=3", "--seed", "0x10", "--out", "o",
                        "--per-category", "0", "--k", "5", "--lr=0.5", "--index", "brute",
                        "--verbose"};
    const char *bad1[] = {"prog", "--epochs", "0"};
    const char *bad2[] = {"prog", "--k", "5x"};
    const char *bad3[] = {"prog", "--nope"};
    const char *bad4[] = {"prog", "--k"};
    const char *bad5[] = {"prog", "stray"};
    const char *bad6[] = {"prog", "--per-category", "-1"};
    const char *bad7[] = {"prog", "--verbose=1"};
    const char *bad8[] = {"prog", "--lr", "nan"};

    ex_args_defaults(&a);
    CHECK(a.epochs == 10 && a.seed == 42 && a.per_category == 10000);
    CHECK(strcmp(a.out_dir, "out") == 0);
    CHECK(parse(&a, extra, (int)(sizeof ok / sizeof ok[0]), ok) == EX_OK);
    CHECK(strcmp(a.data_dir, "/d") == 0);
    CHECK(a.epochs == 3);
    CHECK(a.seed == 16);
    CHECK(strcmp(a.out_dir, "o") == 0);
    CHECK(a.per_category == 0);
    CHECK(k == 5);
    CHECK(lr == 0.5);
    CHECK(strcmp(index, "brute") == 0);
    CHECK(verbose == 1);
    fprintf(stderr, "(the next 8 error lines are expected)\n");
    CHECK(parse(&a, extra, 3, bad1) == EX_ERR);
    CHECK(parse(&a, extra, 3, bad2) == EX_ERR);
    CHECK(parse(&a, extra, 2, bad3) == EX_ERR);
    CHECK(parse(&a, extra, 2, bad4) == EX_ERR);
    CHECK(parse(&a, extra, 2, bad5) == EX_ERR);
    CHECK(parse(&a, extra, 3, bad6) == EX_ERR);
    CHECK(parse(&a, extra, 2, bad7) == EX_ERR);
    CHECK(parse(&a, extra, 3, bad8) == EX_ERR);
    CHECK(a.epochs == 3 && k == 5); /* failed parses left the values alone */
    {
        ex_args b;
        const char *none[] = {"prog"};
        ex_args_defaults(&b);
        b.data_dir = NULL;
        CHECK(ex_args_parse(&b, NULL, 1, (char **)none, "x", 1) == EX_ERR);
        CHECK(ex_args_parse(&b, NULL, 1, (char **)none, "x", 0) == EX_OK);
    }
}

/* The training examples' options: defaults, parsing, bounds. */
static void test_fit_args(void)
{
    ex_args a;
    ex_fit_args fit;
    const char *ok[] = {"prog", "--batch", "16", "--min-delta=0.01", "--patience", "0",
                        "--threads", "2", "--epochs", "5"};
    const char *bad[] = {"prog", "--batch", "0"};
    ex_args_defaults(&a);
    ex_fit_args_init(&fit, 64);
    CHECK(fit.batch == 64 && fit.patience == 3 && fit.min_delta == 1e-4 && fit.threads == 0);
    CHECK(parse(&a, fit.options, (int)(sizeof ok / sizeof ok[0]), ok) == EX_OK);
    CHECK(fit.batch == 16 && fit.patience == 0 && fit.min_delta == 0.01 && fit.threads == 2);
    CHECK(a.epochs == 5);
    fprintf(stderr, "(the next error line is expected)\n");
    CHECK(parse(&a, fit.options, 3, bad) == EX_ERR);
    CHECK(fit.batch == 16);
}

/* Reads an 8-bit grey PNG back. */
static unsigned char *read_png(const char *path, int *w, int *h)
{
    png_image img;
    unsigned char *buf;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    img.format = PNG_FORMAT_GRAY;
    buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        free(buf);
        png_image_free(&img);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

static void test_font(void)
{
    /* every promised character has its own glyph (not the '?' fallback) */
    const char *chars = "abcdefghijklmnopqrstuvwxyz0123456789.-_:()=/";
    unsigned char q[7 * 6], c[7 * 6];
    memset(q, 0, sizeof q);
    ex_draw_text(q, 6, 7, 0, 0, "?", 1, 255);
    for (const char *p = chars; *p; p++) {
        char s[2] = {*p, 0};
        int ink = 0;
        memset(c, 0, sizeof c);
        CHECK(ex_draw_text(c, 6, 7, 0, 0, s, 1, 255) == 6);
        for (size_t i = 0; i < sizeof c; i++) ink += c[i] != 0;
        CHECK(ink > 0);
        CHECK(memcmp(c, q, sizeof c) != 0);
    }
    /* space draws nothing; upper case looks like lower case */
    memset(c, 0, sizeof c);
    ex_draw_text(c, 6, 7, 0, 0, " ", 1, 255);
    for (size_t i = 0; i < sizeof c; i++) CHECK(c[i] == 0);
    {
        unsigned char u[7 * 6] = {0};
        memset(c, 0, sizeof c);
        ex_draw_text(c, 6, 7, 0, 0, "k", 1, 255);
        ex_draw_text(u, 6, 7, 0, 0, "K", 1, 255);
        CHECK(memcmp(c, u, sizeof c) == 0);
    }
    CHECK(ex_text_width("abc") == 17);
    CHECK(ex_text_width("") == 0);
}

static void test_grid(const char *dir)
{
    ex_grid *g;
    float img[28 * 28], code[8 * 16];
    char path[512];
    int w, h, pw, ph;
    unsigned char *pix;
    for (int i = 0; i < 28 * 28; i++) img[i] = (i % 28) < 14 ? 0.0f : 1.0f;
    for (int i = 0; i < 8 * 16; i++) code[i] = (float)i - 50.0f;
    CHECK(ex_grid_create(&g, 3, 2, 28, 28, 3, 2) == EX_OK);
    if (!g) return;
    CHECK(ex_grid_set_title(g, "originals (top) and reconstructions: 3 x 2") == EX_OK);
    CHECK(ex_grid_put(g, 0, 0, img, 28, 28, 0.0f, 1.0f, "smiley face\nd=0.25") == EX_OK);
    CHECK(ex_grid_put(g, 1, 0, code, 16, 8, 0.0f, 0.0f, "code 8x16") == EX_OK);
    CHECK(ex_grid_label(g, 2, 1, "(empty) = / _ : -") == EX_OK);
    fprintf(stderr, "(the next 2 error lines are expected)\n");
    CHECK(ex_grid_put(g, 3, 0, img, 28, 28, 0.0f, 1.0f, NULL) == EX_ERR);
    CHECK(ex_grid_put(g, 0, 0, img, 100, 28, 0.0f, 1.0f, NULL) == EX_ERR);
    ex_grid_size(g, &w, &h);
    CHECK(ex_mkdir_p(dir) == EX_OK);
    CHECK(ex_path(path, sizeof path, dir, "grid.png") == EX_OK);
    CHECK(ex_grid_save_png(g, path) == EX_OK);
    pix = read_png(path, &pw, &ph);
    CHECK(pix != NULL);
    if (pix) {
        int title_h = 9 + 8, x0 = 4, y0 = title_h + 4;
        CHECK(pw == w && ph == h);
        CHECK(w == 3 * (84 + 8));
        CHECK(h == title_h + 2 * (84 + 18 + 8));
        /* left half of the first image is 0 (white paper), right half 1 (black ink) */
        CHECK(pix[(size_t)(y0 + 40) * (size_t)pw + (size_t)(x0 + 10)] == 255);
        CHECK(pix[(size_t)(y0 + 40) * (size_t)pw + (size_t)(x0 + 70)] == 0);
        /* the code (16x8) is magnified x5 = 80x40 and spans the full grey range */
        {
            int cx = 92 + 4 + 2, cy = y0 + 22;
            CHECK(pix[(size_t)cy * (size_t)pw + (size_t)cx] == 255);      /* min: white */
            CHECK(pix[(size_t)(cy + 39) * (size_t)pw + (size_t)(cx + 79)] == 0); /* max */
        }
        /* some ink in the label area under the first image */
        {
            int ink = 0;
            for (int y = y0 + 86; y < y0 + 86 + 18; y++)
                for (int x = x0; x < x0 + 84; x++) ink += pix[(size_t)y * (size_t)pw + (size_t)x] == 0;
            CHECK(ink > 20);
        }
        free(pix);
    }
    ex_grid_free(g);
    ex_grid_free(NULL);
}

static void test_csv(const char *dir)
{
    ex_csv *c;
    char path[512], buf[256];
    const char *cols[] = {"epoch", "name", "loss"};
    const char *row[] = {"1", "say \"hi\", ok", "0.5"};
    FILE *f;
    size_t n;
    CHECK(ex_path(path, sizeof path, dir, "t.csv") == EX_OK);
    CHECK(ex_csv_open(&c, path, cols, 3) == EX_OK);
    CHECK(ex_csv_row(c, row, 3) == EX_OK);
    CHECK(ex_csv_rowf(c, "%d,%s,%.3f", 2, "cat", 0.25) == EX_OK);
    fprintf(stderr, "(the next 2 error lines are expected)\n");
    CHECK(ex_csv_rowf(c, "%d,%s", 3, "dog") == EX_ERR);
    CHECK(ex_csv_close(c) == EX_ERR); /* the bad row is remembered */
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    CHECK(strcmp(buf, "epoch,name,loss\n1,\"say \"\"hi\"\", ok\",0.5\n2,cat,0.250\n") == 0);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "support_selftest_out";
    double t0 = ex_now();
    char sub[512];
    test_args();
    test_fit_args();
    test_font();
    test_grid(dir);
    test_csv(dir);
    CHECK(ex_path(sub, sizeof sub, dir, "a/b//c/") == EX_OK);
    CHECK(ex_mkdir_p(sub) == EX_OK);
    CHECK(ex_mkdir_p(sub) == EX_OK);
    CHECK(ex_now() >= t0);
    {
        char tiny[4], path[32];
        fprintf(stderr, "(the next 2 error lines are expected)\n");
        CHECK(ex_path(tiny, sizeof tiny, "abc", "def") == EX_ERR);
        CHECK(ex_pathf(tiny, sizeof tiny, "%s/%s.aem", "out", "m") == EX_ERR);
        CHECK(ex_pathf(path, sizeof path, "%s/%s.aem", "out", "m") == EX_OK);
        CHECK(strcmp(path, "out/m.aem") == 0);
    }
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("example support self-test: all checks passed\n");
    return failures ? 1 : 0;
}
