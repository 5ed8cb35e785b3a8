/* Small CSV writer (RFC 4180 quoting) for the examples' result tables. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_support.h"

struct ex_csv {
    FILE *f;
    char *path;
    int ncols;
    int failed;
};

static void put_field(ex_csv *c, const char *s)
{
    if (!s) s = "";
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', c->f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', c->f);
            fputc(*s, c->f);
        }
        fputc('"', c->f);
    } else {
        fputs(s, c->f);
    }
}

int ex_csv_row(ex_csv *c, const char *const *fields, int n)
{
    if (!c || n != c->ncols) {
        fprintf(stderr, "error: %s: a row of %d fields, the header has %d\n",
                c ? c->path : "csv", n, c ? c->ncols : 0);
        if (c) c->failed = 1;
        return EX_ERR;
    }
    for (int i = 0; i < n; i++) {
        if (i) fputc(',', c->f);
        put_field(c, fields[i]);
    }
    fputc('\n', c->f);
    if (ferror(c->f)) c->failed = 1;
    return c->failed ? EX_ERR : EX_OK;
}

int ex_csv_open(ex_csv **out, const char *path, const char *const *columns, int n)
{
    ex_csv *c;
    *out = NULL;
    if (!path || !columns || n < 1) {
        fprintf(stderr, "error: ex_csv_open: bad arguments\n");
        return EX_ERR;
    }
    c = calloc(1, sizeof *c);
    if (!c || !(c->path = malloc(strlen(path) + 1))) {
        free(c);
        fprintf(stderr, "error: out of memory opening %s\n", path);
        return EX_ERR;
    }
    strcpy(c->path, path);
    c->f = fopen(path, "w");
    if (!c->f) {
        perror(path);
        free(c->path);
        free(c);
        return EX_ERR;
    }
    c->ncols = n;
    *out = c;
    return ex_csv_row(c, columns, n);
}

/* fields of a formatted line: commas outside double quotes, plus one */
static int count_fields(const char *s)
{
    int n = 1, q = 0;
    for (; *s; s++) {
        if (*s == '"') q = !q;
        else if (*s == ',' && !q) n++;
    }
    return n;
}

int ex_csv_rowf(ex_csv *c, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    int len;
    va_start(ap, fmt);
    len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof buf) {
        fprintf(stderr, "error: %s: row longer than %zu bytes\n", c->path, sizeof buf - 1);
        c->failed = 1;
        return EX_ERR;
    }
    if (count_fields(buf) != c->ncols) {
        fprintf(stderr, "error: %s: a row of %d fields, the header has %d\n", c->path,
                count_fields(buf), c->ncols);
        c->failed = 1;
        return EX_ERR;
    }
    fputs(buf, c->f);
    fputc('\n', c->f);
    if (ferror(c->f)) c->failed = 1;
    return c->failed ? EX_ERR : EX_OK;
}

int ex_csv_close(ex_csv *c)
{
    int rc = EX_OK;
    if (!c) return EX_OK;
    if (fclose(c->f) != 0 || c->failed) {
        fprintf(stderr, "error: writing %s failed\n", c->path);
        rc = EX_ERR;
    }
    free(c->path);
    free(c);
    return rc;
}
