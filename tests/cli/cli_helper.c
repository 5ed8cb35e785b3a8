/*
 * Helper of the autoenc command's tests (tests/cmake/cli.cmake,
 * tests/cli/cli_test.sh): makes input files the command must read, and
 * computes with libautoenc directly what the command must answer.
 *
 *   cli_helper png IN.npy ROW OUT.png MODE SCALE
 *       row ROW of a uint8 (N, 784) file as a (28 SCALE)-pixel square PNG,
 *       each pixel repeated SCALE x SCALE times. MODE: gray (the value as
 *       grey: light ink on black), rgb-dark (255 - value in R, G and B: dark
 *       ink on white), rgba (white everywhere, the value as alpha).
 *   cli_helper pixels OUT.png W H R,G,B,A...
 *       a W x H RGBA PNG of the given pixels, row by row.
 *   cli_helper f32 IN.npy OUT.npy [nan]
 *       the rows of IN.npy as float32 in [0, 1], shape (N, 28, 28); with
 *       "nan", value 5 of row 1 is NaN.
 *   cli_helper values FILE.npy ROW TOL V1 V2 ...
 *       row ROW of FILE.npy holds V1 V2 ... (within TOL); prints the row.
 *   cli_helper same A.npy ROW_A B.npy ROW_B TOL
 *       row ROW_A of A.npy equals row ROW_B of B.npy within TOL.
 *   cli_helper reference MODEL.aem DATA.npy... -- QUERY.npy ROW K
 *       the K nearest rows of the concatenated DATA files to row ROW of
 *       QUERY.npy, by the model's codes, through an exact brute-force index
 *       built here; compared with the "ID DISTANCE" lines on stdin (what
 *       autoenc search printed). Exit 0 when they agree.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include <autoenc/autoenc.h>

static int fail(const char *what)
{
    fprintf(stderr, "cli_helper: %s: %s\n", what, ae_last_error());
    return 1;
}

static int write_png(const char *path, int w, int h, png_uint_32 format, const unsigned char *px)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = format;
    if (!png_image_write_to_file(&img, path, 0, px, 0, NULL)) {
        fprintf(stderr, "cli_helper: %s: %s\n", path, img.message);
        return 1;
    }
    return 0;
}

static int cmd_png(char **argv)
{
    ae_tensor *t;
    size_t row = strtoul(argv[1], NULL, 10);
    int scale = atoi(argv[4]), side = 28 * scale, channels;
    const char *mode = argv[3];
    png_uint_32 format;
    unsigned char *px;
    const float *v;
    int rc;
    if (ae_npy_load(&t, argv[0], 1.0f) != AE_OK) return fail(argv[0]);
    if (row >= ae_tensor_dim(t, 0) || ae_tensor_size(t) / ae_tensor_dim(t, 0) != 784 || scale < 1) {
        ae_tensor_free(t);
        fprintf(stderr, "cli_helper: bad row or scale\n");
        return 1;
    }
    if (strcmp(mode, "gray") == 0) format = PNG_FORMAT_GRAY, channels = 1;
    else if (strcmp(mode, "rgb-dark") == 0) format = PNG_FORMAT_RGB, channels = 3;
    else if (strcmp(mode, "rgba") == 0) format = PNG_FORMAT_RGBA, channels = 4;
    else {
        ae_tensor_free(t);
        fprintf(stderr, "cli_helper: unknown mode %s\n", mode);
        return 1;
    }
    v = ae_tensor_data_const(t) + row * 784;
    px = malloc((size_t)side * (size_t)side * (size_t)channels);
    if (!px) return 1;
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            unsigned char g = (unsigned char)v[(y / scale) * 28 + x / scale];
            unsigned char *p = px + ((size_t)y * (size_t)side + (size_t)x) * (size_t)channels;
            if (channels == 1) p[0] = g;
            else if (channels == 3) p[0] = p[1] = p[2] = (unsigned char)(255 - g);
            else p[0] = p[1] = p[2] = 255, p[3] = g;
        }
    rc = write_png(argv[2], side, side, format, px);
    free(px);
    ae_tensor_free(t);
    return rc;
}

static int cmd_pixels(int argc, char **argv)
{
    int w = atoi(argv[1]), h = atoi(argv[2]), rc;
    unsigned char *px;
    if (w < 1 || h < 1 || argc != 3 + w * h) {
        fprintf(stderr, "cli_helper: pixels needs W*H values R,G,B,A\n");
        return 1;
    }
    px = malloc((size_t)w * (size_t)h * 4);
    if (!px) return 1;
    for (int i = 0; i < w * h; i++) {
        unsigned r, g, b, a;
        if (sscanf(argv[3 + i], "%u,%u,%u,%u", &r, &g, &b, &a) != 4) {
            fprintf(stderr, "cli_helper: bad pixel %s\n", argv[3 + i]);
            free(px);
            return 1;
        }
        px[4 * i] = (unsigned char)r;
        px[4 * i + 1] = (unsigned char)g;
        px[4 * i + 2] = (unsigned char)b;
        px[4 * i + 3] = (unsigned char)a;
    }
    rc = write_png(argv[0], w, h, PNG_FORMAT_RGBA, px);
    free(px);
    return rc;
}

static int cmd_f32(int argc, char **argv)
{
    ae_tensor *t;
    size_t dims[3];
    float *v;
    ae_status st;
    if (ae_npy_load(&t, argv[0], AE_NPY_U8_UNIT) != AE_OK) return fail(argv[0]);
    dims[0] = ae_tensor_dim(t, 0);
    dims[1] = dims[2] = 28;
    v = ae_tensor_data(t);
    if (argc > 2 && strcmp(argv[2], "nan") == 0 && dims[0] > 1) v[784 + 5] = NAN;
    st = ae_npy_save_f32(argv[1], v, 3, dims);
    ae_tensor_free(t);
    return st == AE_OK ? 0 : fail(argv[1]);
}

static int load_row(float **out, size_t *width, const char *path, size_t row)
{
    ae_tensor *t;
    size_t n;
    *out = NULL;
    if (ae_npy_load(&t, path, AE_NPY_U8_UNIT) != AE_OK) return fail(path);
    n = ae_tensor_dim(t, 0);
    *width = ae_tensor_size(t) / n;
    if (row >= n || !(*out = malloc(*width * sizeof **out))) {
        fprintf(stderr, "cli_helper: %s has no row %zu\n", path, row);
        ae_tensor_free(t);
        return 1;
    }
    memcpy(*out, ae_tensor_data_const(t) + row * *width, *width * sizeof **out);
    ae_tensor_free(t);
    return 0;
}

static int cmd_values(int argc, char **argv)
{
    float *v;
    size_t w;
    double tol = atof(argv[2]);
    int rc = 0;
    if (load_row(&v, &w, argv[0], strtoul(argv[1], NULL, 10))) return 1;
    printf("%s row %s:", argv[0], argv[1]);
    for (size_t i = 0; i < w; i++) printf(" %.6f", (double)v[i]);
    printf("\n");
    if ((size_t)(argc - 3) != w) {
        fprintf(stderr, "cli_helper: the row has %zu values, %d expected\n", w, argc - 3);
        rc = 1;
    }
    for (size_t i = 0; i < w && rc == 0; i++)
        if (!(fabs((double)v[i] - atof(argv[3 + i])) <= tol)) {
            fprintf(stderr, "cli_helper: value %zu is %.6f, expected %s\n", i, (double)v[i],
                    argv[3 + i]);
            rc = 1;
        }
    free(v);
    return rc;
}

static int cmd_same(char **argv)
{
    float *a, *b;
    size_t wa, wb;
    double tol = atof(argv[4]), worst = 0;
    int rc;
    if (load_row(&a, &wa, argv[0], strtoul(argv[1], NULL, 10))) return 1;
    if (load_row(&b, &wb, argv[2], strtoul(argv[3], NULL, 10))) {
        free(a);
        return 1;
    }
    for (size_t i = 0; i < wa && wa == wb; i++)
        if (!(fabs((double)a[i] - (double)b[i]) <= worst)) worst = fabs((double)a[i] - (double)b[i]);
    rc = wa == wb && worst <= tol ? 0 : 1;
    printf("%zu and %zu values, largest difference %g (tolerance %g)\n", wa, wb, worst, tol);
    free(a);
    free(b);
    return rc;
}

/* ---- the library's answer to a search, from scratch --------------------------- */

static int cmd_reference(int argc, char **argv)
{
    int sep = 1;
    ae_encoder *enc = NULL;
    ae_index *idx = NULL;
    float *rows = NULL, *codes = NULL, query[784], qcode[4096], dist[256];
    int64_t ids[256], got_id[256];
    double got_dist[256];
    size_t n = 0, k, row, code_size, n_got = 0;
    int rc = 1;
    while (sep < argc && strcmp(argv[sep], "--") != 0) sep++;
    if (sep < 2 || sep + 4 != argc) {
        fprintf(stderr, "cli_helper: reference MODEL DATA... -- QUERY.npy ROW K\n");
        return 1;
    }
    row = strtoul(argv[sep + 2], NULL, 10);
    k = strtoul(argv[sep + 3], NULL, 10);
    if (k < 1 || k > 256) return 1;
    if (ae_encoder_load(&enc, argv[0]) != AE_OK) return fail(argv[0]);
    code_size = ae_encoder_code_size(enc);
    if (code_size > 4096 || ae_encoder_input_size(enc) != 784) goto done;
    /* the data rows in argument order, rows in file order */
    for (int i = 1; i < sep; i++) {
        ae_tensor *t;
        size_t r;
        float *grown;
        if (ae_npy_load(&t, argv[i], AE_NPY_U8_UNIT) != AE_OK) {
            fail(argv[i]);
            goto done;
        }
        r = ae_tensor_dim(t, 0);
        grown = realloc(rows, (n + r) * 784 * sizeof *rows);
        if (!grown) {
            ae_tensor_free(t);
            goto done;
        }
        rows = grown;
        memcpy(rows + n * 784, ae_tensor_data_const(t), r * 784 * sizeof *rows);
        n += r;
        ae_tensor_free(t);
    }
    codes = malloc(n * code_size * sizeof *codes);
    if (!codes || ae_encoder_encode(enc, rows, n, codes, n * code_size) != AE_OK ||
        ae_npy_read_rows(argv[sep + 1], row, 1, AE_NPY_U8_UNIT, query, 784) != AE_OK ||
        ae_encoder_encode(enc, query, 1, qcode, code_size) != AE_OK ||
        ae_index_create(&idx, AE_INDEX_BRUTE, AE_INDEX_L2, code_size) != AE_OK ||
        ae_index_build(idx, codes, n, NULL, NULL) != AE_OK ||
        ae_index_search(idx, qcode, 1, k, 0, dist, ids) != AE_OK) {
        fail("reference search");
        goto done;
    }
    while (n_got < 256 && scanf("%lld %lf", (long long *)&got_id[n_got], &got_dist[n_got]) == 2)
        n_got++;
    if (n_got != k) {
        fprintf(stderr, "cli_helper: autoenc gave %zu neighbours, expected %zu\n", n_got, k);
        goto done;
    }
    rc = 0;
    for (size_t i = 0; i < k; i++) {
        /* codes are computed in other batches by autoenc (chunks of rows), which
         * can change the last bits: distances agree to 1e-4, and an id may only
         * differ where the library has another neighbour at that distance */
        int tie = 0;
        double tol = 1e-4 * (1.0 + fabs((double)dist[i]));
        for (size_t j = 0; j < k; j++)
            if (ids[j] == got_id[i] && fabs((double)dist[j] - got_dist[i]) <= tol) tie = 1;
        printf("%2zu  library %6lld %.6f   autoenc %6lld %.6f%s\n", i + 1, (long long)ids[i],
               (double)dist[i], (long long)got_id[i], got_dist[i],
               got_id[i] == ids[i] ? "" : tie ? "  (tie)" : "  MISMATCH");
        if (fabs((double)dist[i] - got_dist[i]) > tol || (got_id[i] != ids[i] && !tie)) rc = 1;
    }
done:
    free(rows);
    free(codes);
    ae_index_free(idx);
    ae_encoder_free(enc);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 7 && strcmp(argv[1], "png") == 0) return cmd_png(argv + 2);
    if (argc >= 5 && strcmp(argv[1], "pixels") == 0) return cmd_pixels(argc - 2, argv + 2);
    if (argc >= 4 && strcmp(argv[1], "f32") == 0) return cmd_f32(argc - 2, argv + 2);
    if (argc >= 6 && strcmp(argv[1], "values") == 0) return cmd_values(argc - 2, argv + 2);
    if (argc == 7 && strcmp(argv[1], "same") == 0) return cmd_same(argv + 2);
    if (argc >= 7 && strcmp(argv[1], "reference") == 0) return cmd_reference(argc - 2, argv + 2);
    fprintf(stderr, "usage: cli_helper png|pixels|f32|values|same|reference ... (see the source)\n");
    return 2;
}
