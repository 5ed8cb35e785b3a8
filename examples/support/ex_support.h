/*
 * Support code shared by the libautoenc example programs (not part of the
 * library): command-line options, PNG image grids with text labels, CSV
 * files, directories, a monotonic timer, loading the QuickDraw data.
 *
 * Every fallible function returns an int status: EX_OK (0) on success,
 * EX_ERR (-1) on failure after printing a one-line reason to stderr. Nothing
 * here exits the program. Not thread-safe beyond what each object says: use
 * one grid / CSV writer per thread.
 */
#ifndef AE_EXAMPLE_SUPPORT_H
#define AE_EXAMPLE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include <autoenc/autoenc.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EX_OK 0     /**< success */
#define EX_ERR (-1) /**< failure; a reason was printed to stderr */
#define EX_HELP 1   /**< ex_args_parse printed --help: the program should end with 0 */

/* ---- command-line options ------------------------------------------------- */

/** Kinds of option values. */
typedef enum ex_opt_type {
    EX_OPT_INT,    /**< target: long; accepts [min, max] */
    EX_OPT_SIZE,   /**< target: size_t; accepts [min, max] */
    EX_OPT_U64,    /**< target: uint64_t; min/max not checked */
    EX_OPT_DOUBLE, /**< target: double; accepts [min, max] */
    EX_OPT_STRING, /**< target: const char * (points into argv or the environment) */
    EX_OPT_FLAG    /**< target: int, set to 1 when the option is present (no value) */
} ex_opt_type;

/**
 * One option, "--name VALUE" or "--name=VALUE". Tables end with an entry
 * whose name is NULL. The target already holds the default when parsing
 * starts; --help shows it.
 */
typedef struct ex_option {
    const char *name;    /**< without the leading "--" */
    ex_opt_type type;
    void *target;        /**< see ex_opt_type */
    double min, max;     /**< bounds for INT/SIZE/DOUBLE (ignored when min > max) */
    const char *metavar; /**< shown in --help ("N", "DIR", ...) */
    const char *help;    /**< one line */
} ex_option;

/** The options every example shares. */
typedef struct ex_args {
    const char *data_dir; /**< --data DIR, default $AUTOENC_DATA (NULL when unset) */
    long epochs;          /**< --epochs N, default 10 */
    uint64_t seed;        /**< --seed S, default 42 */
    const char *out_dir;  /**< --out DIR, default "out" */
    size_t per_category;  /**< --per-category N, default 10000 (0 = all) */
} ex_args;

/** Fills @p a with the defaults above. Change a field afterwards to change its default. */
void ex_args_defaults(ex_args *a);

/**
 * Parses argv against the common options and the example's @p extra table
 * (may be NULL). @p summary is the first line of --help. When @p need_data is
 * non-zero, a missing --data (and $AUTOENC_DATA) is an error.
 *
 * @return EX_OK, EX_HELP after printing the help to stdout, EX_ERR after
 *         printing what was wrong and a hint to stderr.
 */
int ex_args_parse(ex_args *a, const ex_option *extra, int argc, char **argv, const char *summary,
                  int need_data);

/** Prints the options (the help text) to stdout. */
void ex_args_usage(const ex_args *a, const ex_option *extra, const char *prog,
                   const char *summary);

/* ---- image grids ----------------------------------------------------------- */

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

/* ---- CSV ----------------------------------------------------------------------- */

typedef struct ex_csv ex_csv;

/** Creates @p path (replacing it) and writes the header row of @p n names. */
int ex_csv_open(ex_csv **out, const char *path, const char *const *columns, int n);

/**
 * One row of @p n fields (must be the header's count); fields holding a
 * comma, a quote or a newline are quoted RFC 4180 style.
 */
int ex_csv_row(ex_csv *c, const char *const *fields, int n);

/**
 * One row from a printf format, e.g. ex_csv_rowf(c, "%d,%s,%.6f", epoch, name,
 * loss). The caller is responsible for quoting; the field count is checked
 * against the header (commas outside quotes, plus one).
 */
int ex_csv_rowf(ex_csv *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** Flushes and closes; reports a write error that happened on any row. NULL is accepted. */
int ex_csv_close(ex_csv *c);

/* ---- files, time, data ---------------------------------------------------------- */

/** Creates @p dir and its missing parents (like mkdir -p). */
int ex_mkdir_p(const char *dir);

/** @p dir + "/" + @p name into @p buf of @p cap bytes; EX_ERR when it does not fit. */
int ex_path(char *buf, size_t cap, const char *dir, const char *name);

/** Seconds on a monotonic clock (differences are meaningful, the origin is not). */
double ex_now(void);

/**
 * Loads the data set of @p a (data_dir, per_category, seed) with a 10%
 * stratified test split and, if @p verbose, prints one line per category
 * (train/test counts) and the load time.
 */
int ex_load_dataset(ae_dataset **out, const ex_args *a, int verbose);

#ifdef __cplusplus
}
#endif
#endif /* AE_EXAMPLE_SUPPORT_H */
