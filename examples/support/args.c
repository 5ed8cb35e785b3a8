/* Table-driven command-line options for the examples. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_support.h"

void ex_args_defaults(ex_args *a)
{
    const char *env = getenv("AUTOENC_DATA");
    a->data_dir = (env && *env) ? env : NULL;
    a->epochs = 10;
    a->seed = 42;
    a->out_dir = "out";
    a->per_category = 10000;
}

void ex_fit_args_init(ex_fit_args *f, long batch)
{
    const ex_option t[5] = {
        {"batch", EX_OPT_INT, &f->batch, 1, 65536, "N", "rows per training step"},
        {"patience", EX_OPT_INT, &f->patience, 0, 1000, "N",
         "early stopping: epochs without improvement (0 = off)"},
        {"min-delta", EX_OPT_DOUBLE, &f->min_delta, 0, 1, "X", "smallest val_loss improvement"},
        {"threads", EX_OPT_INT, &f->threads, 0, 64, "N", "compute threads (0 = library default)"},
        {NULL, EX_OPT_INT, NULL, 0, 0, NULL, NULL},
    };
    f->batch = batch;
    f->patience = 3;
    f->min_delta = 1e-4;
    f->threads = 0;
    memcpy(f->options, t, sizeof t);
}

/* The common options as a table pointing into *a. */
static void common_table(ex_args *a, ex_option t[6])
{
    const ex_option c[6] = {
        {"data", EX_OPT_STRING, &a->data_dir, 1, 0, "DIR",
         "folder of <category>.npy files; $AUTOENC_DATA when not given"},
        {"epochs", EX_OPT_INT, &a->epochs, 1, 1e6, "N", "training epochs"},
        {"seed", EX_OPT_U64, &a->seed, 1, 0, "S", "seed of the split, the shuffles and the weights"},
        {"out", EX_OPT_STRING, &a->out_dir, 1, 0, "DIR", "folder for the pictures and CSV files"},
        {"per-category", EX_OPT_SIZE, &a->per_category, 0, 1e12, "N",
         "use the first N drawings of each category (0 = all)"},
        {NULL, EX_OPT_FLAG, NULL, 0, 0, NULL, NULL},
    };
    memcpy(t, c, sizeof c);
}

static void show_default(const ex_option *o)
{
    switch (o->type) {
    case EX_OPT_INT: printf(" (default %ld)", *(const long *)o->target); break;
    case EX_OPT_SIZE: printf(" (default %zu)", *(const size_t *)o->target); break;
    case EX_OPT_U64:
        printf(" (default %llu)", (unsigned long long)*(const uint64_t *)o->target);
        break;
    case EX_OPT_DOUBLE: printf(" (default %g)", *(const double *)o->target); break;
    case EX_OPT_STRING: {
        const char *s = *(const char *const *)o->target;
        if (s) printf(" (default %s)", s);
        break;
    }
    case EX_OPT_FLAG: break;
    }
}

static void usage_table(const ex_option *t)
{
    for (; t && t->name; t++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", t->name, t->type == EX_OPT_FLAG ? "" : " ",
                 t->type == EX_OPT_FLAG ? "" : (t->metavar ? t->metavar : "VALUE"));
        printf("  %-22s %s", left, t->help ? t->help : "");
        show_default(t);
        printf("\n");
    }
}

void ex_args_usage(const ex_args *a, const ex_option *extra, const char *prog,
                   const char *summary)
{
    ex_option common[6];
    common_table((ex_args *)a, common);
    if (summary) printf("%s\n\n", summary);
    printf("usage: %s [options]\n\noptions:\n", prog ? prog : "example");
    usage_table(common);
    usage_table(extra);
    printf("  %-22s %s\n", "--help", "show this text");
}

static const ex_option *find(const ex_option *t, const char *name, size_t len)
{
    for (; t && t->name; t++)
        if (strlen(t->name) == len && strncmp(t->name, name, len) == 0) return t;
    return NULL;
}

static int bad_value(const ex_option *o, const char *v, const char *why)
{
    fprintf(stderr, "error: --%s %s: %s\n", o->name, v, why);
    return EX_ERR;
}

static int set_value(const ex_option *o, const char *v)
{
    char *end;
    int has_bounds = o->min <= o->max;
    errno = 0;
    switch (o->type) {
    case EX_OPT_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno) return bad_value(o, v, "not an integer");
        if (has_bounds && (x < o->min || x > o->max)) {
            fprintf(stderr, "error: --%s %s: must be between %.0f and %.0f\n", o->name, v,
                    o->min, o->max);
            return EX_ERR;
        }
        *(long *)o->target = x;
        return EX_OK;
    }
    case EX_OPT_SIZE: {
        unsigned long long x;
        if (*v == '-') return bad_value(o, v, "must not be negative");
        x = strtoull(v, &end, 10);
        if (!*v || *end || errno || x > SIZE_MAX) return bad_value(o, v, "not a count");
        if (has_bounds && ((double)x < o->min || (double)x > o->max)) {
            fprintf(stderr, "error: --%s %s: must be between %.0f and %.0f\n", o->name, v,
                    o->min, o->max);
            return EX_ERR;
        }
        *(size_t *)o->target = (size_t)x;
        return EX_OK;
    }
    case EX_OPT_U64: {
        unsigned long long x;
        if (*v == '-') return bad_value(o, v, "must not be negative");
        x = strtoull(v, &end, 0);
        if (!*v || *end || errno) return bad_value(o, v, "not an unsigned integer");
        *(uint64_t *)o->target = (uint64_t)x;
        return EX_OK;
    }
    case EX_OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) return bad_value(o, v, "not a number");
        if (has_bounds && (x < o->min || x > o->max)) {
            fprintf(stderr, "error: --%s %s: must be between %g and %g\n", o->name, v, o->min,
                    o->max);
            return EX_ERR;
        }
        *(double *)o->target = x;
        return EX_OK;
    }
    case EX_OPT_STRING:
        if (!*v) return bad_value(o, "\"\"", "must not be empty");
        *(const char **)o->target = v;
        return EX_OK;
    case EX_OPT_FLAG:
        break;
    }
    return bad_value(o, v, "internal error: unknown option type");
}

int ex_args_parse(ex_args *a, const ex_option *extra, int argc, char **argv, const char *summary,
                  int need_data)
{
    ex_option common[6];
    const char *prog = argc > 0 && argv[0] ? argv[0] : "example";
    common_table(a, common);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *name, *eq, *value = NULL;
        const ex_option *o;
        size_t len;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            ex_args_usage(a, extra, prog, summary);
            return EX_HELP;
        }
        if (strncmp(arg, "--", 2) != 0 || !arg[2]) {
            fprintf(stderr, "error: unexpected argument '%s' (see %s --help)\n", arg, prog);
            return EX_ERR;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        o = find(common, name, len);
        if (!o) o = find(extra, name, len);
        if (!o) {
            fprintf(stderr, "error: unknown option '--%.*s' (see %s --help)\n", (int)len, name,
                    prog);
            return EX_ERR;
        }
        if (o->type == EX_OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "error: --%s takes no value\n", o->name);
                return EX_ERR;
            }
            *(int *)o->target = 1;
            continue;
        }
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "error: --%s needs a value (%s)\n", o->name,
                    o->metavar ? o->metavar : "VALUE");
            return EX_ERR;
        }
        if (set_value(o, value) != EX_OK) return EX_ERR;
    }
    if (need_data && !a->data_dir) {
        fprintf(stderr, "error: no data folder: pass --data DIR or set AUTOENC_DATA (fetch the "
                        "files with cmake -DDEST=DIR -P cmake/fetch_quickdraw.cmake)\n");
        return EX_ERR;
    }
    return EX_OK;
}

ae_status ex_tutorial_config(ae_train_config **out, long epochs, uint64_t seed,
                             const ex_fit_args *f, ex_epoch_log *log)
{
    ae_train_config *cfg;
    ae_status st = ae_train_config_create(out);
    if (st != AE_OK) return st;
    cfg = *out;
    st = ae_train_config_set_int(cfg, AE_TRAIN_OPTIMIZER, AE_OPT_NADAM);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_LOSS, AE_LOSS_BCE);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_EPOCHS, epochs);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_BATCH_SIZE, f->batch);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_SHUFFLE, 1);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_SEED, (int64_t)(seed & INT64_MAX));
    if (st == AE_OK) st = ae_train_config_set_double(cfg, AE_TRAIN_VALIDATION_SPLIT, 0.2);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_PATIENCE, f->patience);
    if (st == AE_OK) st = ae_train_config_set_double(cfg, AE_TRAIN_MIN_DELTA, f->min_delta);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_RESTORE_BEST, 1);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_THREADS, f->threads);
    if (st == AE_OK) st = ae_train_config_set_callback(cfg, ex_print_epoch, log);
    return st;
}
