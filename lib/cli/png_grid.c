/* Image grids with text labels, a 5x7 bitmap font, and PNG output (libpng). */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "png_grid.h"

/* ---- font: 5x7, one string of 35 cells per glyph ('#' = ink) ---------------- */
typedef struct glyph {
    char ch;
    const char *rows; /* 7 rows of 5 */
} glyph;

static const glyph FONT[] = {
    {' ', "..................................."},
    {'a', "...........###.....#.#####...#.####"},
    {'b', "#....#....#.##.##..##...##...#####."},
    {'c', "...........###.#....#....#...#.###."},
    {'d', "....#....#.##.##..###...##...#.####"},
    {'e', "...........###.#...#######.....###."},
    {'f', "..##..#..#.#...###...#....#....#..."},
    {'g', "...........#####...#.####....#.###."},
    {'h', "#....#....#.##.##..##...##...##...#"},
    {'i', "..#........##....#....#....#...###."},
    {'j', "...#........##....#....#.#..#..##.."},
    {'k', "#....#....#..#.#.#..##...#.#..#..#."},
    {'l', ".##....#....#....#....#....#...###."},
    {'m', "..........##.#.#.#.##.#.##...##...#"},
    {'n', "..........#.##.##..##...##...##...#"},
    {'o', "...........###.#...##...##...#.###."},
    {'p', "..........####.#...#####.#....#...."},
    {'q', "...........#####...#.####....#....#"},
    {'r', "..........#.##.##..##....#....#...."},
    {'s', "...........#####.....###.....#####."},
    {'t', ".#....#...###...#....#....#..#..##."},
    {'u', "..........#...##...##...##..##.##.#"},
    {'v', "..........#...##...##...#.#.#...#.."},
    {'w', "..........#...##...##.#.##.#.#.#.#."},
    {'x', "..........#...#.#.#...#...#.#.#...#"},
    {'y', "..........#...##...#.####....#.###."},
    {'z', "..........#####...#...#...#...#####"},
    {'0', ".###.#...##..###.#.###..##...#.###."},
    {'1', "..#...##....#....#....#....#...###."},
    {'2', ".###.#...#....#...#...#...#...#####"},
    {'3', "#####...#...#.....#.....##...#.###."},
    {'4', "...#...##..#.#.#..#.#####...#....#."},
    {'5', "######....####.....#....##...#.###."},
    {'6', "..##..#...#....####.#...##...#.###."},
    {'7', "#####....#...#...#...#....#....#..."},
    {'8', ".###.#...##...#.###.#...##...#.###."},
    {'9', ".###.#...##...#.####....#...#..##.."},
    {'.', "..........................##...##.."},
    {'-', "...............#####..............."},
    {'_', "..............................#####"},
    {':', "......##...##........##...##......."},
    {'(', "...#...#...#....#....#.....#.....#."},
    {')', ".#.....#.....#....#....#...#...#..."},
    {'=', "..........#####.....#####.........."},
    {'/', ".........#...#...#...#...#........."},
    {',', ".....................##....#...#..."},
    {'+', ".......#....#..#####..#....#......."},
    {'%', "##...##..#...#...#...#...#..##...##"},
    {'!', "..#....#....#....#....#.........#.."},
    {'\'', "..#....#...#......................."},
    {'?', ".###.#...#....#...#...#.........#.."},

};

static const glyph *find_glyph(char c)
{
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    for (size_t i = 0; i < sizeof FONT / sizeof FONT[0]; i++)
        if (FONT[i].ch == c) return &FONT[i];
    return find_glyph('?');
}

int ex_text_width(const char *text)
{
    size_t n = text ? strlen(text) : 0;
    return n ? (int)n * 6 - 1 : 0;
}

int ex_draw_text(unsigned char *pix, int w, int h, int x, int y, const char *text, int size,
                 unsigned char ink)
{
    if (size < 1) size = 1;
    for (; text && *text && *text != '\n'; text++, x += 6 * size) {
        const glyph *gl = find_glyph(*text);
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++) {
                if (gl->rows[r * 5 + c] != '#') continue;
                for (int dy = 0; dy < size; dy++)
                    for (int dx = 0; dx < size; dx++) {
                        int px = x + c * size + dx, py = y + r * size + dy;
                        if (px >= 0 && px < w && py >= 0 && py < h)
                            pix[(size_t)py * (size_t)w + (size_t)px] = ink;
                    }
            }
    }
    return x;
}

/* ---- PNG --------------------------------------------------------------------- */
/* An 8-bit PNG of `channels` bytes per pixel: 1 grey, 3 RGB. */
static int png_write(const char *path, int w, int h, const unsigned char *pixels, int channels)
{
    FILE *f;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    if (!path || w <= 0 || h <= 0 || !pixels) {
        fprintf(stderr, "error: writing a PNG: bad arguments\n");
        return EX_ERR;
    }
    rows = malloc((size_t)h * sizeof *rows);
    if (!rows) {
        fprintf(stderr, "error: out of memory writing %s\n", path);
        return EX_ERR;
    }
    for (int y = 0; y < h; y++)
        rows[y] = (png_bytep)(pixels + (size_t)y * (size_t)w * (size_t)channels);
    f = fopen(path, "wb");
    if (!f) {
        perror(path);
        free(rows);
        return EX_ERR;
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        free(rows);
        fprintf(stderr, "error: libpng could not start writing %s\n", path);
        return EX_ERR;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        free(rows);
        remove(path);
        fprintf(stderr, "error: libpng failed writing %s\n", path);
        return EX_ERR;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (fclose(f) != 0) {
        perror(path);
        remove(path);
        return EX_ERR;
    }
    return EX_OK;
}

int ex_png_write_gray(const char *path, int w, int h, const unsigned char *pixels)
{
    return png_write(path, w, h, pixels, 1);
}

int ex_png_write_rgb(const char *path, int w, int h, const unsigned char *pixels)
{
    return png_write(path, w, h, pixels, 3);
}

/* ---- grids ---------------------------------------------------------------------- */
#define PAD 4          /* pixels around every cell */
#define LINE_H 9       /* one text line: 7 + 2 */
#define BACKGROUND 255
#define TEXT_INK 0

struct ex_grid {
    int cols, rows, cell_w, cell_h, scale, label_lines, invert;
    int cell_px_w, cell_px_h; /* image area of a cell, in output pixels */
    int slot_w, slot_h;       /* a whole cell incl. labels and padding */
    int title_h;
    char *title;
    int w, h;
    unsigned char *pix;       /* without the title band; composed on save */
};

int ex_grid_create(ex_grid **out, int cols, int rows, int cell_w, int cell_h, int scale,
                   int label_lines)
{
    ex_grid *g;
    size_t n;
    *out = NULL;
    if (cols < 1 || rows < 1 || cell_w < 1 || cell_h < 1 || scale < 1 || label_lines < 0 ||
        label_lines > 4 || cols > 4096 || rows > 4096 || cell_w * scale > 4096 ||
        cell_h * scale > 4096) {
        fprintf(stderr, "error: ex_grid_create: bad grid %dx%d of %dx%d cells x%d, %d lines\n",
                cols, rows, cell_w, cell_h, scale, label_lines);
        return EX_ERR;
    }
    g = calloc(1, sizeof *g);
    if (!g) return EX_ERR;
    g->cols = cols;
    g->rows = rows;
    g->cell_w = cell_w;
    g->cell_h = cell_h;
    g->scale = scale;
    g->label_lines = label_lines;
    g->cell_px_w = cell_w * scale;
    g->cell_px_h = cell_h * scale;
    g->slot_w = g->cell_px_w + 2 * PAD;
    g->slot_h = g->cell_px_h + label_lines * LINE_H + 2 * PAD;
    g->w = cols * g->slot_w;
    g->h = rows * g->slot_h;
    n = (size_t)g->w * (size_t)g->h;
    g->pix = malloc(n);
    if (!g->pix) {
        free(g);
        fprintf(stderr, "error: out of memory for a %dx%d picture\n", cols, rows);
        return EX_ERR;
    }
    memset(g->pix, BACKGROUND, n);
    *out = g;
    return EX_OK;
}

void ex_grid_free(ex_grid *g)
{
    if (!g) return;
    free(g->title);
    free(g->pix);
    free(g);
}

int ex_grid_set_title(ex_grid *g, const char *title)
{
    free(g->title);
    g->title = NULL;
    g->title_h = 0;
    if (!title || !*title) return EX_OK;
    g->title = malloc(strlen(title) + 1);
    if (!g->title) return EX_ERR;
    strcpy(g->title, title);
    g->title_h = LINE_H + 2 * PAD;
    return EX_OK;
}

void ex_grid_set_invert(ex_grid *g, int invert) { g->invert = invert != 0; }

void ex_grid_size(const ex_grid *g, int *width, int *height)
{
    if (width) *width = g->w;
    if (height) *height = g->h + g->title_h;
}

static int check_cell(const ex_grid *g, int col, int row)
{
    if (col < 0 || col >= g->cols || row < 0 || row >= g->rows) {
        fprintf(stderr, "error: cell (%d, %d) is outside the %dx%d grid\n", col, row, g->cols,
                g->rows);
        return EX_ERR;
    }
    return EX_OK;
}

int ex_grid_label(ex_grid *g, int col, int row, const char *label)
{
    int x0, y0, line = 0;
    if (check_cell(g, col, row) != EX_OK) return EX_ERR;
    x0 = col * g->slot_w + PAD;
    y0 = row * g->slot_h + PAD + g->cell_px_h + 2;
    /* clear the label area, then draw each line clipped to the cell width */
    for (int y = y0; y < y0 + g->label_lines * LINE_H; y++)
        memset(g->pix + (size_t)y * (size_t)g->w + (size_t)x0, BACKGROUND, (size_t)g->cell_px_w);
    while (label && line < g->label_lines) {
        const char *nl = strchr(label, '\n');
        size_t len = nl ? (size_t)(nl - label) : strlen(label), fit = (size_t)(g->cell_px_w + 1) / 6;
        char buf[128];
        int tw;
        if (len > fit) len = fit;
        if (len >= sizeof buf) len = sizeof buf - 1;
        memcpy(buf, label, len);
        buf[len] = '\0';
        tw = ex_text_width(buf);
        /* centred in the cell; draw into a clip window the size of the cell */
        {
            int x = x0 + (g->cell_px_w - tw) / 2, y = y0 + line * LINE_H;
            ex_draw_text(g->pix, g->w, g->h, x, y, buf, 1, TEXT_INK);
        }
        line++;
        label = nl ? nl + 1 : NULL;
    }
    return EX_OK;
}

int ex_grid_put(ex_grid *g, int col, int row, const float *img, int w, int h, float lo, float hi,
                const char *label)
{
    int f, ox, oy;
    float range;
    if (check_cell(g, col, row) != EX_OK) return EX_ERR;
    if (!img || w < 1 || h < 1 || w > g->cell_px_w || h > g->cell_px_h) {
        fprintf(stderr, "error: a %dx%d image does not fit a %dx%d cell\n", w, h, g->cell_px_w,
                g->cell_px_h);
        return EX_ERR;
    }
    if (!(lo < hi)) { /* auto range (also when lo or hi is NaN) */
        size_t n = (size_t)w * (size_t)h;
        lo = INFINITY;
        hi = -INFINITY;
        for (size_t i = 0; i < n; i++)
            if (isfinite(img[i])) {
                if (img[i] < lo) lo = img[i];
                if (img[i] > hi) hi = img[i];
            }
    }
    range = hi - lo;
    f = g->cell_px_w / w < g->cell_px_h / h ? g->cell_px_w / w : g->cell_px_h / h;
    ox = col * g->slot_w + PAD + (g->cell_px_w - w * f) / 2;
    oy = row * g->slot_h + PAD + (g->cell_px_h - h * f) / 2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = img[(size_t)y * (size_t)w + (size_t)x], t;
            unsigned char grey;
            if (!isfinite(v)) t = 0.5f;
            else if (!(range > 0.0f)) t = 0.5f;
            else t = (v - lo) / range;
            t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
            grey = (unsigned char)lrintf(g->invert ? 255.0f * t : 255.0f * (1.0f - t));
            for (int dy = 0; dy < f; dy++)
                memset(g->pix + (size_t)(oy + y * f + dy) * (size_t)g->w + (size_t)(ox + x * f),
                       grey, (size_t)f);
        }
    /* a thin grey frame shows the image bounds on the white page */
    for (int x = ox - 1; x <= ox + w * f; x++) {
        g->pix[(size_t)(oy - 1) * (size_t)g->w + (size_t)x] = 160;
        g->pix[(size_t)(oy + h * f) * (size_t)g->w + (size_t)x] = 160;
    }
    for (int y = oy - 1; y <= oy + h * f; y++) {
        g->pix[(size_t)y * (size_t)g->w + (size_t)(ox - 1)] = 160;
        g->pix[(size_t)y * (size_t)g->w + (size_t)(ox + w * f)] = 160;
    }
    return label ? ex_grid_label(g, col, row, label) : EX_OK;
}

int ex_grid_save_png(const ex_grid *g, const char *path)
{
    int rc;
    unsigned char *all;
    size_t band;
    if (!g->title) return ex_png_write_gray(path, g->w, g->h, g->pix);
    band = (size_t)g->w * (size_t)g->title_h;
    all = malloc(band + (size_t)g->w * (size_t)g->h);
    if (!all) {
        fprintf(stderr, "error: out of memory writing %s\n", path);
        return EX_ERR;
    }
    memset(all, BACKGROUND, band);
    ex_draw_text(all, g->w, g->title_h, PAD, PAD + 1, g->title, 1, TEXT_INK);
    memcpy(all + band, g->pix, (size_t)g->w * (size_t)g->h);
    rc = ex_png_write_gray(path, g->w, g->h + g->title_h, all);
    free(all);
    return rc;
}
