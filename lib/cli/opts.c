/* autoenc: command-line options of the subcommands, and their --help. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_list_add(cli_list *l, const char *s)
{
    const char **grown = realloc((void *)l->items, (l->n + 1) * sizeof *grown);
    if (!grown) return cli_nomem("command line");
    grown[l->n++] = s;
    l->items = grown;
    return CLI_EXIT_OK;
}

void cli_list_free(cli_list *l)
{
    free((void *)l->items);
    l->items = NULL;
    l->n = 0;
}

int cli_missing(const char *cmd, const char *what)
{
    cli_error("%s: %s is required (see autoenc %s --help)", cmd, what, cmd);
    return CLI_EXIT_USAGE;
}

static const char *const *choice_list(const cli_opt *o) { return o->choices; }

/* " [default: X]" of an option, into buf */
static void default_text(char *buf, size_t cap, const cli_opt *o)
{
    buf[0] = '\0';
    switch (o->type) {
    case CLI_OPT_INT: {
        /* a value outside the range stands for "not given": the help says what then */
        int64_t v = *(int64_t *)o->target;
        if ((double)v >= o->min && (double)v <= o->max)
            snprintf(buf, cap, " [default: %lld]", (long long)v);
        break;
    }
    case CLI_OPT_DOUBLE: snprintf(buf, cap, " [default: %g]", *(double *)o->target); break;
    case CLI_OPT_CHOICE:
        snprintf(buf, cap, " [default: %s]", choice_list(o)[*(int *)o->target]);
        break;
    case CLI_OPT_STRING:
        if (*(const char **)o->target)
            snprintf(buf, cap, " [default: %s]", *(const char **)o->target);
        break;
    default: break;
    }
}

#define HELP_INDENT 29 /* column of the descriptions */
#define HELP_WIDTH 79

/* @p text word-wrapped from column HELP_INDENT (the cursor is there already) */
static void print_wrapped(const char *text)
{
    int col = HELP_INDENT;
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > HELP_INDENT && col + 1 + (int)word > HELP_WIDTH) {
            printf("\n%*s", HELP_INDENT, "");
            col = HELP_INDENT;
        } else if (col > HELP_INDENT) {
            putchar(' ');
            col++;
        }
        printf("%.*s", (int)word, text);
        col += (int)word;
        text += word;
        while (*text == ' ') text++;
    }
    putchar('\n');
}

static void print_help(const cli_opt *opts, const cli_cmd_help *h)
{
    printf("usage: %s\n\n%s\n\noptions:\n", h->usage, h->summary);
    for (const cli_opt *o = opts; o->name; o++) {
        char left[64], text[512], dflt[96];
        int n;
        size_t len;
        if (o->short_name)
            n = snprintf(left, sizeof left, "-%c, --%s", o->short_name, o->name);
        else
            n = snprintf(left, sizeof left, "--%s", o->name);
        if (o->type != CLI_OPT_FLAG && n > 0 && (size_t)n < sizeof left)
            snprintf(left + n, sizeof left - (size_t)n, " %s", o->metavar ? o->metavar : "X");
        snprintf(text, sizeof text, "%s", o->help);
        if (o->type == CLI_OPT_CHOICE)
            for (const char *const *c = choice_list(o); *c; c++) {
                len = strlen(text);
                snprintf(text + len, sizeof text - len, "%s%s", c == choice_list(o) ? ": " : "|", *c);
            }
        default_text(dflt, sizeof dflt, o);
        len = strlen(text);
        snprintf(text + len, sizeof text - len, "%s", dflt);
        printf("  %-*s", HELP_INDENT - 3, left);
        putchar(' ');
        print_wrapped(text);
    }
    printf("  %-*s %s\n", HELP_INDENT - 3, "-h, --help", "this help");
    if (h->notes) printf("\n%s\n", h->notes);
}

static int bad_value(const cli_cmd_help *h, const cli_opt *o, const char *value, const char *why)
{
    cli_error("%s: --%s: '%s' %s", h->name, o->name, value, why);
    return CLI_EXIT_USAGE;
}

static int set_value(const cli_opt *o, const cli_cmd_help *h, const char *v)
{
    char *end;
    char range[96];
    switch (o->type) {
    case CLI_OPT_STRING:
        if (!*v) return bad_value(h, o, v, "is empty");
        *(const char **)o->target = v;
        return CLI_EXIT_OK;
    case CLI_OPT_LIST:
        if (!*v) return bad_value(h, o, v, "is empty");
        return cli_list_add(o->target, v);
    case CLI_OPT_INT: {
        long long x;
        errno = 0;
        x = strtoll(v, &end, 10);
        if (!*v || *end || errno == ERANGE) return bad_value(h, o, v, "is not a whole number");
        if ((double)x < o->min || (double)x > o->max) {
            snprintf(range, sizeof range, "is out of range (%.0f to %.0f)", o->min, o->max);
            return bad_value(h, o, v, range);
        }
        *(int64_t *)o->target = (int64_t)x;
        return CLI_EXIT_OK;
    }
    case CLI_OPT_DOUBLE: {
        double x;
        errno = 0;
        x = strtod(v, &end);
        if (!*v || *end || errno == ERANGE || !isfinite(x))
            return bad_value(h, o, v, "is not a finite number");
        if (x < o->min || x > o->max) {
            snprintf(range, sizeof range, "is out of range (%g to %g)", o->min, o->max);
            return bad_value(h, o, v, range);
        }
        *(double *)o->target = x;
        return CLI_EXIT_OK;
    }
    case CLI_OPT_CHOICE:
        for (int i = 0; choice_list(o)[i]; i++)
            if (strcmp(choice_list(o)[i], v) == 0) {
                *(int *)o->target = i;
                return CLI_EXIT_OK;
            }
        {
            char list[128] = "is not one of";
            for (const char *const *c = choice_list(o); *c; c++) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, " %s", *c);
            }
            return bad_value(h, o, v, list);
        }
    case CLI_OPT_FLAG: break;
    }
    return CLI_EXIT_SOFTWARE;
}

static const cli_opt *find_long(const cli_opt *opts, const char *name, size_t len)
{
    for (const cli_opt *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c)
{
    for (const cli_opt *o = opts; o->name; o++)
        if (o->short_name && o->short_name == c) return o;
    return NULL;
}

int cli_parse(const cli_opt *opts, const cli_cmd_help *help, int argc, char **argv,
              cli_list *positional)
{
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = NULL;
        const cli_opt *o;
        int rc;
        if (only_positional || a[0] != '-' || strcmp(a, "-") == 0) {
            if (!positional) {
                cli_error("%s: unexpected argument '%s' (see autoenc %s --help)", help->name, a,
                          help->name);
                return CLI_EXIT_USAGE;
            }
            if ((rc = cli_list_add(positional, a)) != CLI_EXIT_OK) return rc;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(opts, help);
            return CLI_HELP_SHOWN;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            o = find_long(opts, a + 2, len);
            if (eq) value = eq + 1;
        } else {
            o = find_short(opts, a[1]);
            if (o && a[2]) value = a + 2;
        }
        if (!o) {
            cli_error("%s: unknown option '%s' (see autoenc %s --help)", help->name, a,
                      help->name);
            return CLI_EXIT_USAGE;
        }
        if (o->type == CLI_OPT_FLAG) {
            if (value) {
                cli_error("%s: --%s takes no value", help->name, o->name);
                return CLI_EXIT_USAGE;
            }
            *(int *)o->target = 1;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) {
                cli_error("%s: --%s needs a value (%s)", help->name, o->name,
                          o->metavar ? o->metavar : "X");
                return CLI_EXIT_USAGE;
            }
            value = argv[++i];
        }
        if ((rc = set_value(o, help, value)) != CLI_EXIT_OK) return rc;
    }
    return CLI_EXIT_OK;
}
