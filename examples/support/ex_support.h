/*
 * Support code shared by the libautoenc example programs (not part of the
 * library): command-line options, the examples' two kinds of picture, CSV
 * files, the Keras-style training report (epoch lines, history CSV, JSON
 * last line), directories, a monotonic timer and the data set's category
 * table. The PNG image grids (png_grid.h) live beside the autoenc command in
 * lib/cli/, which draws the same pictures. The library calls that make up
 * each tutorial section stay in the examples' main functions.
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

#include "png_grid.h" /* EX_OK, EX_ERR, image grids and PNG output (lib/cli/) */

#ifdef __cplusplus
extern "C" {
#endif

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

/**
 * The training examples' own options: --batch, --patience, --min-delta and
 * --threads. ex_fit_args_init sets the defaults (the tutorial's: batch
 * @p batch, early stopping patience 3 and min_delta 1e-4, the library's
 * thread count) and fills @p options, a table for ex_args_parse whose targets
 * point into the struct itself: initialise it where it stays, do not copy it.
 */
typedef struct ex_fit_args {
    long batch;          /**< --batch N: rows per training step */
    long patience;       /**< --patience N: epochs without improvement (0 = off) */
    double min_delta;    /**< --min-delta X: smallest val_loss improvement that counts */
    long threads;        /**< --threads N: compute threads (0 = library default) */
    ex_option options[5]; /**< the table of the four options, NULL-terminated */
} ex_fit_args;

void ex_fit_args_init(ex_fit_args *f, long batch);

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

/* ---- the examples' pictures ------------------------------------------------------ */

/**
 * Writes DIR/NAME_reconstructions.png: two test drawings per category,
 * originals on the top row and their reconstructions under them, each
 * labelled with its category. @p test and @p recon hold @p n 28x28 drawings,
 * @p labels their categories in @p ds.
 */
int ex_save_reconstructions_png(const char *dir, const char *name, const ae_dataset *ds,
                                const float *test, const int32_t *labels, size_t n,
                                const float *recon);

/**
 * Writes DIR/NAME_code.png: one 28x28 @p drawing (labelled @p category), its
 * code of shape @p code_shape (text, e.g. "4x4x8") drawn as a @p code_w x
 * @p code_h image of the same floats in row-major order, and its 28x28
 * reconstruction @p recon.
 */
int ex_save_code_png(const char *dir, const char *name, const float *drawing,
                     const char *category, const float *code, const char *code_shape,
                     int code_w, int code_h, const float *recon);

/**
 * Writes DIR/NAME_SUFFIX.png: a scatter plot of @p n points of the plane
 * (@p xy: x, y pairs), each a dot in the colour of its category (@p labels
 * in @p ds), with a legend, the axes through 0 and the plotted ranges in the
 * title. The ranges hold the central 99% of each coordinate (the rest is
 * drawn on the frame), so a few outliers do not squeeze the picture.
 */
int ex_save_scatter_png(const char *dir, const char *name, const char *suffix,
                        const ae_dataset *ds, const float *xy, const int32_t *labels, size_t n);

/* ---- the training report ---------------------------------------------------------- */

/** State of ex_print_epoch: the history CSV it appends to (NULL: none). */
typedef struct ex_epoch_log {
    ex_csv *csv;
} ex_epoch_log;

/**
 * Opens DIR/NAME_history.csv (epoch, loss, val_loss, seconds,
 * images_per_second) for ex_print_epoch.
 */
int ex_epoch_log_open(ex_epoch_log *log, const char *dir, const char *name);

/** Closes the CSV (reporting a write error); a log never opened is accepted. */
int ex_epoch_log_close(ex_epoch_log *log);

/**
 * An ae_progress_fn (user: an ex_epoch_log): at each epoch's end, prints a
 * Keras-like line "Epoch 3: 1756/1756 steps - 0.14s - 394976 img/s - loss:
 * 0.2431 - val_loss: 0.2419" and appends the epoch to the log's CSV.
 * Never stops training.
 */
int ex_print_epoch(ae_train_event event, size_t epoch, size_t step, size_t steps, double loss,
                   const ae_model *model, const ae_history *h, void *user);

/**
 * The tutorial's training settings, shared by every section: Keras'
 * compile(optimizer="nadam", loss="binary_crossentropy") and
 * fit(x, x, epochs, batch_size, shuffle=True, validation_split=0.2,
 *     callbacks=[EarlyStopping(patience, min_delta, restore_best_weights=True)]),
 * with @p f's batch, patience, min_delta and threads, a shuffling seed from
 * @p seed, and ex_print_epoch on @p log as the progress callback. Creates
 * the configuration into @p out (free it with ae_train_config_free, also on
 * failure).
 */
ae_status ex_tutorial_config(ae_train_config **out, long epochs, uint64_t seed,
                             const ex_fit_args *f, ex_epoch_log *log);

/**
 * Prints what ae_train_fit is about to do with @p cfg on @p n rows: how many
 * train and validate, the batch size, the epoch cap, the patience.
 */
void ex_print_fit_plan(const ae_train_config *cfg, size_t n);

/** Prints how training ended (early stopping or the epoch cap) and the epoch it kept. */
void ex_print_fit_outcome(const ae_history *h);

/**
 * Prints the training example's last line, a JSON object: example @p name,
 * epochs run, best epoch (from 1), @p test_bce, mean seconds per epoch and
 * mean training images per second.
 */
void ex_print_fit_json(const char *name, const ae_history *h, double test_bce);

/**
 * ex_print_fit_json with more fields: @p extra (may be NULL or "") is
 * inserted before the closing brace, e.g. "\"kl_per_row\": 3.21".
 */
void ex_print_fit_json_extra(const char *name, const ae_history *h, double test_bce,
                             const char *extra);

/* ---- errors, files, time, data ------------------------------------------------------ */

/**
 * When @p st is not AE_OK, prints "error: WHAT: <ae_last_error()> (<status>)"
 * to stderr and returns 1; returns 0 for AE_OK. For `if (ex_failed(st, "...")) goto done;`.
 */
int ex_failed(ae_status st, const char *what);

/** Creates @p dir and its missing parents (like mkdir -p). */
int ex_mkdir_p(const char *dir);

/** @p dir + "/" + @p name into @p buf of @p cap bytes; EX_ERR when it does not fit. */
int ex_path(char *buf, size_t cap, const char *dir, const char *name);

/** A path from a printf format into @p buf of @p cap bytes; EX_ERR when it does not fit. */
int ex_pathf(char *buf, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** Seconds on a monotonic clock (differences are meaningful, the origin is not). */
double ex_now(void);

/**
 * Prints the data set ae_dataset_load gave from @p a's folder: one line per
 * category with its train/test counts, then the totals and the
 * @p load_seconds it took.
 */
void ex_print_dataset(const ae_dataset *ds, const ex_args *a, double load_seconds);

/* ---- principal component analysis (pca.c): image_retrieval's linear baseline ---------- */

/** Principal axes and mean of a set of rows. */
typedef struct ex_pca ex_pca;

/**
 * Fits @p components principal axes (largest variance first) to @p n rows of
 * @p dim floats: the covariance by CBLAS ssyrk, its eigenvectors by LAPACK
 * ssyevd. EX_ERR on bad sizes, out of memory or an ssyevd failure.
 */
int ex_pca_fit(ex_pca **out, const float *x, size_t n, size_t dim, size_t components);
/** Releases @p p (NULL is fine). */
void ex_pca_free(ex_pca *p);
/** The number of axes @p p keeps. */
size_t ex_pca_components(const ex_pca *p);
/** The fraction of the training rows' total variance the kept axes explain. */
double ex_pca_explained(const ex_pca *p);
/** Codes (n x components) of @p n rows: their centred values on the axes. */
int ex_pca_project(const ex_pca *p, const float *x, size_t n, float *codes);
/** Rows (n x dim) back from @p codes, clipped to the pixel range [0, 1]. */
void ex_pca_reconstruct(const ex_pca *p, const float *codes, size_t n, float *x);

#ifdef __cplusplus
}
#endif
#endif /* AE_EXAMPLE_SUPPORT_H */
