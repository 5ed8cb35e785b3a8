/*
 * The autoenc command: declarations shared by its source files.
 *
 * The command is an ordinary program on libautoenc's public API (it includes
 * <autoenc/autoenc.h> only, never lib/internal.h): what an outside program
 * can do, it does the same way. Results go to stdout (a table, or one JSON
 * object per line with --json), messages to stderr as "autoenc: ...", and
 * the progress display to stderr only when stderr is a terminal.
 *
 * Every function that can fail returns an exit code (enum cli_exit) after
 * printing one line that names the file, option or token at fault.
 */
#ifndef AE_CLI_H
#define AE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <autoenc/autoenc.h>

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* ---- exit codes (docs/autoenc.1, EXIT STATUS) -------------------------------- */

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_USAGE = 1,    /* command line: option, value, model spec, -k */
    CLI_EXIT_FILE = 2,     /* missing, unreadable, corrupt or unwritable file */
    CLI_EXIT_NUMERIC = 3,  /* NaN/inf in the data, training diverged */
    CLI_EXIT_MISMATCH = 4, /* data, model and index do not fit together */
    CLI_EXIT_SOFTWARE = 5, /* out of memory, internal error */
    CLI_EXIT_INTERRUPTED = 130
};

/** cli_parse's result when it printed --help: the command ends with 0. */
#define CLI_HELP_SHOWN (-1)

/* ---- messages (main.c) --------------------------------------------------------- */

/** Set by --quiet: no progress display, no notes. */
extern int cli_quiet;

/** "autoenc: <message>" on stderr. */
void cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/** "autoenc: note: <message>" on stderr, unless --quiet. */
void cli_note(const char *fmt, ...) CLI_PRINTF(1, 2);
/** The exit code for a library status (AE_ERR_IO -> CLI_EXIT_FILE, ...). */
int cli_exit_for(ae_status st);
/**
 * Prints "autoenc: <what>: <ae_last_error()>" and returns cli_exit_for(st).
 * The library's message names the public function and, for files, the path.
 */
int cli_lib_error(ae_status st, const char *fmt, ...) CLI_PRINTF(2, 3);
/** "autoenc: out of memory (<what>)", CLI_EXIT_SOFTWARE. */
int cli_nomem(const char *what);

/* ---- options (opts.c) ------------------------------------------------------------ */

/** Option value kinds. */
typedef enum cli_opt_type {
    CLI_OPT_FLAG,   /* int, set to 1; takes no value */
    CLI_OPT_STRING, /* const char *; given twice, the last wins */
    CLI_OPT_LIST,   /* cli_list; every occurrence appends */
    CLI_OPT_INT,    /* int64_t in [min, max] */
    CLI_OPT_DOUBLE, /* double in [min, max], finite */
    CLI_OPT_CHOICE  /* int: index into choices (a NULL-terminated list) */
} cli_opt_type;

/** A growing list of strings pointing into argv. */
typedef struct cli_list {
    const char **items;
    size_t n;
} cli_list;

/** One option: "--name VALUE", "--name=VALUE", or "-s VALUE" when short_name is set. */
typedef struct cli_opt {
    const char *name;
    char short_name;
    cli_opt_type type;
    void *target;
    double min, max;
    const char *metavar;
    const char *help;
    const char *const *choices;
} cli_opt;

/** What --help shows around the options. */
typedef struct cli_cmd_help {
    const char *name;    /* "train", "index build": for messages */
    const char *usage;   /* "autoenc train --data PATH ... --out MODEL.aem [OPTIONS]" */
    const char *summary; /* one paragraph */
    const char *notes;   /* after the options (may be NULL) */
} cli_cmd_help;

/**
 * Parses argv[1..argc-1] (argv[0] is the command's name) against @p opts
 * (ended by a NULL name). "--help"/"-h" print the help to stdout. Arguments
 * that are not options go to @p positional ("--" ends the options).
 * @return CLI_EXIT_OK, CLI_EXIT_USAGE (after a message) or CLI_HELP_SHOWN.
 */
int cli_parse(const cli_opt *opts, const cli_cmd_help *help, int argc, char **argv,
              cli_list *positional);
/** Appends to a list (CLI_EXIT_SOFTWARE when memory runs out). */
int cli_list_add(cli_list *l, const char *s);
void cli_list_free(cli_list *l);
/** "autoenc <cmd>: <option> is required (see autoenc <cmd> --help)", CLI_EXIT_USAGE. */
int cli_missing(const char *cmd, const char *what);

/* ---- output helpers (progress.c) ------------------------------------------------ */

/** Seconds on a monotonic clock. */
double cli_now(void);
/** @p n with thousands separators ("78,028") into @p buf. */
const char *cli_count(char *buf, size_t cap, size_t n);
/** @p s as a JSON string (quoted and escaped) on @p f; NULL as null. */
void cli_json_str(FILE *f, const char *s);
/** @p v as a JSON number, or null when it is NaN or infinite. */
void cli_json_num(FILE *f, double v);

/** A one-line progress display on stderr, drawn only when stderr is a terminal. */
typedef struct cli_progress {
    int on;
    double last;
    int drawn;
} cli_progress;

/** Starts a display: on when stderr is a terminal and --quiet was not given. */
void cli_progress_start(cli_progress *p);
/**
 * Redraws the line with @p fmt; at most ten times a second unless @p force.
 * The first call always draws.
 */
void cli_progress_show(cli_progress *p, int force, const char *fmt, ...) CLI_PRINTF(3, 4);
/** Erases the line (call before printing anything else to the terminal). */
void cli_progress_clear(cli_progress *p);
/** "[#######.......]" of @p width cells for done/total into @p buf. */
const char *cli_bar(char *buf, size_t cap, size_t done, size_t total, int width);
/** "1:02:03" or "2:03" for @p seconds into @p buf ("?" when unknown). */
const char *cli_duration(char *buf, size_t cap, double seconds);

/* ---- model input, images and data (data.c, image.c) ----------------------------- */

/** What a model takes per row, and whether rows can be images. */
typedef struct cli_input {
    size_t width;  /* floats per row */
    size_t h, w;   /* image size of a row (one grey channel), 0 when rows are not images */
} cli_input;

/** The input of @p m: rank 3 (h, w, 1) and rank 1 of a square size are images. */
void cli_input_of_model(cli_input *in, const ae_model *m);

/**
 * Reads a PNG as the model sees it: grey (ITU-R BT.601 luma of 8-bit sRGB
 * samples), scaled to [0, 1], inverted when @p invert (dark ink on white ->
 * 1 = ink), transparent parts as background (0), padded with background to
 * the input's aspect ratio (centred) and resized to in->h x in->w (area
 * averaging when shrinking, bilinear when enlarging, each axis separately).
 * @p dst receives in->h * in->w floats. @p mean (may be NULL) receives the
 * mean of the picture's values (1 = ink) before resizing, for the ink hint.
 */
int cli_image_load(const char *path, const cli_input *in, int invert, float *dst, double *mean);
/** A PNG's size and whether it has colour and alpha (for autoenc info). */
int cli_png_header(const char *path, size_t *w, size_t *h, int *colour, int *alpha);
/** Non-zero when @p path ends in ".png" (any case). */
int cli_is_png(const char *path);
/** Non-zero when @p path ends in ".npy". */
int cli_is_npy(const char *path);

/** Rows gathered from --data arguments, with labels and where each came from. */
typedef struct cli_data {
    float *rows;          /* n * width */
    size_t n, width;
    int32_t *labels;      /* n: category of each row */
    char **names;         /* n_names display names, by label */
    size_t n_names;
    char **files;         /* n_files source files (.npy or .png paths) */
    size_t n_files;
    uint32_t *row_file;   /* n: index into files */
    size_t *row_in_file;  /* n: row number in its .npy file (0 for a PNG) */
    int from_png;         /* some rows came from PNG files */
    double png_mean;      /* mean value (1 = ink) of those PNGs */
} cli_data;

/** How to read data. */
typedef struct cli_data_opts {
    size_t per_category; /* first N rows of each .npy file (0 = all) */
    int invert;          /* PNG: dark ink on a light background */
} cli_data_opts;

/**
 * Loads every path of @p paths in order and concatenates their rows:
 *  - FILE.npy: one category named after the file (underscores as spaces);
 *  - a directory holding .npy files: a category folder (ae_dataset_load),
 *    categories in file-name order, rows in file order;
 *  - a directory of .png files, or a FILE.png: images (cli_image_load), one
 *    category per directory or file.
 * Rows must have in->width values. Row i of the result is always the same
 * for the same arguments (no shuffling), so encode and search agree on it.
 */
int cli_data_load(cli_data *d, const cli_list *paths, const cli_data_opts *o,
                  const cli_input *in);
void cli_data_free(cli_data *d);
/** "FILE.npy:ROW" or "FILE.png" of row @p row (a valid search query). */
const char *cli_data_source(char *buf, size_t cap, const cli_data *d, size_t row);
/** Shuffles the rows (with their labels and sources) with @p seed. */
int cli_data_shuffle(cli_data *d, uint64_t seed);
/** After loading PNGs: a note when they are mostly ink, i.e. --invert looks wrong. */
void cli_data_png_hint(const cli_data *d, int invert);

/* ---- models (spec.c) ----------------------------------------------------------- */

/**
 * A new model from --model: a preset name (ae_preset_from_name), a spec of
 * layers ("input 28x28x1; conv 16 3 same relu; ..."), or @FILE holding a
 * spec. Spec errors name the line, column and token.
 */
int cli_model_from_arg(ae_model **out, const char *arg, uint64_t seed);
/** The spec that rebuilds @p m's layers, into @p buf. */
void cli_spec_of_model(char *buf, size_t cap, const ae_model *m);
/* The spec word of an activation ("relu", "leaky_relu", ...). */
const char *cli_activation_name(ae_activation a);
/** "28x28x1" or "784" for a layer's (or the input's) shape. */
const char *cli_shape_text(char *buf, size_t cap, int rank, const size_t *dims);

/* ---- the commands -------------------------------------------------------------- */

int cli_cmd_train(int argc, char **argv);
int cli_cmd_encode(int argc, char **argv);
int cli_cmd_index(int argc, char **argv);
int cli_cmd_search(int argc, char **argv);
int cli_cmd_info(int argc, char **argv);
int cli_cmd_reconstruct(int argc, char **argv);

/** Loads a model or encoder file (exit code after a message naming the file). */
int cli_load_model(ae_model **out, const char *path);

/** Draws rows as a grid PNG: @p cols x @p n_rows cells, each with a label. */
typedef struct cli_cell {
    const float *pixels; /* h * w floats in [0, 1], or NULL for a label-only cell */
    const char *label;
} cli_cell;
int cli_draw_grid(const char *path, const char *title, const cli_cell *cells, int cols,
                  int n_rows, size_t h, size_t w);

#endif /* AE_CLI_H */
