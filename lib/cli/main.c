/* autoenc: the command-line tool's entry point, messages and exit codes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_quiet;

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout); /* keep the order of results and messages on a shared terminal */
    fputs("autoenc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_note(const char *fmt, ...)
{
    va_list ap;
    if (cli_quiet) return;
    fflush(stdout);
    fputs("autoenc: note: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_exit_for(ae_status st)
{
    switch (st) {
    case AE_OK:
    case AE_STOPPED: return CLI_EXIT_OK;
    case AE_ERR_INVALID_ARG:
    case AE_ERR_RANGE: return CLI_EXIT_USAGE;
    case AE_ERR_IO:
    case AE_ERR_FORMAT:
    case AE_ERR_VERSION:
    case AE_ERR_CHECKSUM:
    case AE_ERR_STATE: return CLI_EXIT_FILE;
    case AE_ERR_NUMERIC: return CLI_EXIT_NUMERIC;
    case AE_ERR_SHAPE: return CLI_EXIT_MISMATCH;
    default: return CLI_EXIT_SOFTWARE;
    }
}

int cli_lib_error(ae_status st, const char *fmt, ...)
{
    va_list ap;
    const char *msg = ae_last_error();
    fflush(stdout);
    fputs("autoenc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", msg && *msg ? msg : ae_status_string(st));
    return cli_exit_for(st);
}

int cli_nomem(const char *what)
{
    cli_error("out of memory (%s)", what);
    return CLI_EXIT_SOFTWARE;
}

int cli_load_model(ae_model **out, const char *path)
{
    ae_status st = ae_model_load(out, path);
    if (st != AE_OK) return cli_lib_error(st, "cannot use model %s", path);
    return CLI_EXIT_OK;
}

static const char USAGE[] =
    "usage: autoenc COMMAND [OPTIONS]\n"
    "\n"
    "Train autoencoders on your own images, encode them, index the codes and\n"
    "find nearest neighbours, with libautoenc.\n"
    "\n"
    "commands:\n"
    "  train         train a model (a preset or a spec of layers) on .npy files or PNG images\n"
    "  encode        write the codes of data rows to a .npy file\n"
    "  index build   build a nearest-neighbour index over codes\n"
    "  index add     add codes to a saved index\n"
    "  index delete  remove codes from a saved index by id\n"
    "  search        find the nearest neighbours of images, .npy rows or index ids\n"
    "  info          what a model, index, .npy or PNG file holds\n"
    "  reconstruct   draw originals above their reconstructions\n"
    "  help COMMAND  the options of a command (as COMMAND --help)\n"
    "\n"
    "`autoenc COMMAND --help` lists a command's options; `man autoenc` has the\n"
    "data formats, the model spec grammar and the exit codes.\n"
    "Not available yet: `train --resume` (the library keeps no training state).\n";

static int dispatch(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "train") == 0) return cli_cmd_train(argc, argv);
    if (strcmp(cmd, "encode") == 0) return cli_cmd_encode(argc, argv);
    if (strcmp(cmd, "index") == 0) return cli_cmd_index(argc, argv);
    if (strcmp(cmd, "search") == 0) return cli_cmd_search(argc, argv);
    if (strcmp(cmd, "info") == 0) return cli_cmd_info(argc, argv);
    if (strcmp(cmd, "reconstruct") == 0) return cli_cmd_reconstruct(argc, argv);
    cli_error("unknown command '%s' (commands: train, encode, index build, search, info, "
              "reconstruct; see autoenc --help)", cmd);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    int rc;
    if (argc < 2) {
        fputs(USAGE, stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, stdout);
        rc = CLI_EXIT_OK;
    } else if (strcmp(argv[1], "--version") == 0) {
        printf("autoenc %s (libautoenc %s, model format %d)\n", AE_VERSION_STRING, ae_version(),
               AE_MODEL_FORMAT_VERSION);
        rc = CLI_EXIT_OK;
    } else if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            fputs(USAGE, stdout);
            rc = CLI_EXIT_OK;
        } else {
            /* "help index" shows "index build"'s options (its notes name add and delete) */
            char help[] = "--help", build[] = "build";
            char *sub[4];
            int n = 0;
            sub[n++] = argv[2];
            if (strcmp(argv[2], "index") == 0) sub[n++] = build;
            sub[n++] = help;
            sub[n] = NULL;
            rc = dispatch(argv[2], n, sub);
        }
    } else if (argv[1][0] == '-') {
        cli_error("'%s' is not a command; the options come after it (see autoenc --help)",
                  argv[1]);
        rc = CLI_EXIT_USAGE;
    } else {
        rc = dispatch(argv[1], argc - 1, argv + 1);
    }
    /* a result that could not be written (full disk, closed pipe) is a failure */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "autoenc: cannot write the results to standard output\n");
        if (rc == CLI_EXIT_OK) rc = CLI_EXIT_FILE;
    }
    return rc;
}
