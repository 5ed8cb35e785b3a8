/*
 * Support code shared by the libautoenc example programs (not part of the
 * library): command-line options, CSV files, directories, a monotonic timer,
 * loading the QuickDraw data. The PNG image grids (png_grid.h) live beside
 * the autoenc command in lib/cli/, which draws the same pictures.
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
