/* autoenc: the terminal progress line, numbers for people, JSON for scripts. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *cli_count(char *buf, size_t cap, size_t n)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%zu", n), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

void cli_json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

void cli_progress_start(cli_progress *p)
{
    p->on = !cli_quiet && isatty(STDERR_FILENO);
    p->last = 0;
    p->drawn = 0;
}

void cli_progress_show(cli_progress *p, int force, const char *fmt, ...)
{
    va_list ap;
    double now;
    if (!p->on) return;
    now = cli_now();
    /* a redraw per training step would cost more than some steps: 10 per second is smooth */
    if (p->drawn && !force && now - p->last < 0.1) return;
    p->last = now;
    p->drawn = 1;
    fputs("\r", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\033[K", stderr); /* erase what a longer previous line left */
    fflush(stderr);
}

void cli_progress_clear(cli_progress *p)
{
    if (!p->on || !p->drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->drawn = 0;
}

const char *cli_bar(char *buf, size_t cap, size_t done, size_t total, int width)
{
    int full;
    if (cap < (size_t)width + 3) {
        if (cap) buf[0] = '\0';
        return buf;
    }
    full = total ? (int)((double)done / (double)total * width) : 0;
    if (full > width) full = width;
    buf[0] = '[';
    memset(buf + 1, '#', (size_t)full);
    memset(buf + 1 + full, '.', (size_t)(width - full));
    buf[width + 1] = ']';
    buf[width + 2] = '\0';
    return buf;
}

const char *cli_duration(char *buf, size_t cap, double seconds)
{
    long s;
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e8) {
        snprintf(buf, cap, "?");
        return buf;
    }
    s = lround(seconds);
    if (s >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
    return buf;
}
