/*
 * Grey image grids with 5x7 text labels, written as PNG (libpng): the
 * pictures of the example programs and of the autoenc command (query strips,
 * originals above reconstructions). Not part of libautoenc: a small static
 * helper library (ae_png_grid) that both link.
 *
 * Every fallible function returns EX_OK (0) on success or EX_ERR (-1) after
 * printing a one-line reason to stderr; nothing here exits. Use one grid per
 * thread.
 */
#ifndef AE_PNG_GRID_H
#define AE_PNG_GRID_H

#ifdef __cplusplus
extern "C" {
#endif

#define EX_OK 0     /**< success */
#define EX_ERR (-1) /**< failure; a reason was printed to stderr */

/** A grid of grey tiles with up to two lines of text under each, saved as PNG. */
typedef struct ex_grid ex_grid;

/**
 * New grid of @p cols x @p rows cells. Each cell shows an image of up to
 * @p cell_w x @p cell_h source pixels magnified @p scale times, above
 * @p label_lines lines of 5x7 text (0..4). A title line above the grid is
 * added by ex_grid_set_title. Background: white; images are drawn dark on
 * light (value hi = black) unless ex_grid_set_invert(g, 1).
 */
int ex_grid_create(ex_grid **out, int cols, int rows, int cell_w, int cell_h, int scale,
                   int label_lines);
void ex_grid_free(ex_grid *g);

/** Text above the grid (copied; NULL removes it). */
int ex_grid_set_title(ex_grid *g, const char *title);

/** 0 (default): high values dark, like ink on paper; 1: high values light. */
void ex_grid_set_invert(ex_grid *g, int invert);

/**
 * Draws a @p w x @p h image (row-major floats) into cell (@p col, @p row),
 * magnified by the largest integer factor that fits the cell (at least the
 * grid's scale for images no larger than a cell) and centred. Values are
 * mapped linearly from [@p lo, @p hi] to the grey range and clipped; when
 * lo >= hi the image's own minimum and maximum are used (a constant image is
 * drawn mid-grey). @p label (may be NULL) is drawn under it; '\n' starts the
 * next label line; text wider than the cell is cut.
 */
int ex_grid_put(ex_grid *g, int col, int row, const float *img, int w, int h, float lo, float hi,
                const char *label);

/** Label only (e.g. an empty cell with a note). */
int ex_grid_label(ex_grid *g, int col, int row, const char *label);

/** Writes the grid as an 8-bit grey PNG (creates or replaces @p path). */
int ex_grid_save_png(const ex_grid *g, const char *path);

/** Size of the picture in pixels. */
void ex_grid_size(const ex_grid *g, int *width, int *height);

/** Writes an 8-bit grey PNG of @p w x @p h bytes (row-major, 0 = black). */
int ex_png_write_gray(const char *path, int w, int h, const unsigned char *pixels);

/** Writes an 8-bit RGB PNG of @p w x @p h pixels, 3 bytes each (row-major R, G, B). */
int ex_png_write_rgb(const char *path, int w, int h, const unsigned char *pixels);

/**
 * Draws @p text with the built-in 5x7 font (a-z, A-Z drawn as a-z, 0-9,
 * space and . - _ : ( ) = / , + % ! ' ?; anything else as '?') into a grey
 * buffer of @p w x @p h bytes at (@p x, @p y) (top-left), each font pixel
 * @p size x @p size, in grey @p ink, clipped to the buffer. Characters are 6
 * pixels apart at size 1. Returns the x after the text.
 */
int ex_draw_text(unsigned char *pix, int w, int h, int x, int y, const char *text, int size,
                 unsigned char ink);

/** Width in pixels of @p text at font size 1 (6 per character, minus the last gap). */
int ex_text_width(const char *text);

#ifdef __cplusplus
}
#endif
#endif /* AE_PNG_GRID_H */
