/* Data-source benchmark (not CI): the training paths side by side in one run,
 * and out-of-core training from a large uint8 .npy file.
 *
 *   bench_source ab --data DIR [--model simple] [--threads T] [--epochs E] [--rounds R]
 *       QuickDraw-10 (DIR of <category>.npy, ae_dataset_load, 10000 per
 *       category) trained E epochs (simple: batch 64, validation split 0.2)
 *       through ae_train_fit on float32 rows, ae_train_fit_source on the same
 *       rows as an in-memory float source, on the rows as uint8 (scaled on
 *       the fly) and from a uint8 .npy file of them (written to $TMPDIR or
 *       /tmp, removed after). The four run in turn, R rounds, so machine noise
 *       hits them alike; prints images/s medians and the ratios to
 *       ae_train_fit, and checks that all four end with the same weights.
 *   bench_source make --data DIR --out FILE --gb G
 *       writes a uint8 .npy of (N, 28, 28) rows: QuickDraw-10's rows tiled to
 *       about G GB (10^9 bytes), written in blocks (low memory).
 *   bench_source ooc --npy FILE [--model simple] [--threads T] [--steps S] [--rounds R] [--cold]
 *                    [--block B] [--window W]
 *       R rounds (default 3) of: S training steps (default 3000) of the
 *       simple model from the .npy file through ae_train_fit_source,
 *       shuffled over all its rows, then the same S steps on S * batch rows
 *       of it held in memory as float32 (ae_train_fit); --block B (default
 *       0: rows one by one) and --window W (default 8) set
 *       AE_TRAIN_SHUFFLE_BLOCK and _WINDOW on both sides; prints the medians of
 *       images/s of both, the median of the rounds' ratios and the peak RSS
 *       (getrusage) after the first file part. --cold first drops the file
 *       from the page cache (posix_fadvise DONTNEED; run sync first) before
 *       every file part, so its reads come from the disk.
 *
 * One JSON object per line on stdout; progress on stderr. The machine of a
 * run may be shared: compare the ratios of one run, not absolute figures. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "autoenc/autoenc.h"

typedef struct opts {
    const char *data, *out, *npy, *model;
    int threads, epochs, rounds, cold;
    long steps, block, window;
    double gb;
} opts;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double maxrss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int die(const char *what)
{
    fprintf(stderr, "bench_source: %s: %s\n", what, ae_last_error());
    return 1;
}

static ae_train_config *config(const opts *o, int epochs)
{
    ae_train_config *c = NULL;
    if (ae_train_config_create(&c) != AE_OK ||
        ae_train_config_set_int(c, AE_TRAIN_EPOCHS, epochs) != AE_OK ||
        ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 64) != AE_OK ||
        ae_train_config_set_int(c, AE_TRAIN_SEED, 1) != AE_OK ||
        ae_train_config_set_int(c, AE_TRAIN_THREADS, o->threads) != AE_OK ||
        ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_BLOCK, o->block) != AE_OK ||
        ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_WINDOW, o->window) != AE_OK) {
        ae_train_config_free(c);
        return NULL;
    }
    return c;
}

static ae_preset preset_of(const char *name)
{
    return strcmp(name, "deep") == 0 ? AE_PRESET_DEEP
           : strcmp(name, "conv") == 0 ? AE_PRESET_CONV : AE_PRESET_SIMPLE;
}

/* Writes n rows of 784 bytes as a (n, 28, 28) uint8 .npy, in blocks from
 * rows (tiled when n > n_rows). */
static int write_npy_u8(const char *path, const uint8_t *rows, size_t n_rows, size_t n)
{
    char hdr[128];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '|u1', 'fortran_order': False, 'shape': (%zu, 28, 28), }", n);
    size_t total = 10 + (size_t)len + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    if (!f) return -1;
    pre[8] = (unsigned char)((size_t)len + pad + 1);
    pre[9] = (unsigned char)(((size_t)len + pad + 1) >> 8);
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < n_rows ? n - done : n_rows;
        if (fwrite(rows, 784, k, f) != k) {
            fclose(f);
            return -1;
        }
        done += k;
    }
    return fclose(f);
}

/* QuickDraw-10's training rows as floats (u8 / 255) and as bytes. */
static int load_rows(const opts *o, ae_dataset **ds, const float **x, uint8_t **u, size_t *n)
{
    if (ae_dataset_load(ds, o->data, 10000, 0.10, 1) != AE_OK) return die("ae_dataset_load");
    ae_dataset_train(x, NULL, n, *ds);
    if (ae_dataset_row_width(*ds) != 784) {
        fprintf(stderr, "bench_source: rows of 784 values expected\n");
        return 1;
    }
    *u = malloc(*n * 784);
    for (size_t i = 0; i < *n * 784; i++) (*u)[i] = (uint8_t)lrintf((*x)[i] * 255.0f);
    return 0;
}

static int cmd_ab(const opts *o)
{
    static const char *names[4] = {"ae_train_fit", "source_floats", "source_u8", "source_npy"};
    ae_dataset *ds;
    const float *x;
    uint8_t *u;
    size_t n;
    char path[512];
    const char *tmp = getenv("TMPDIR"), *paths[1];
    ae_source *src[4] = {NULL, NULL, NULL, NULL};
    ae_train_config *c;
    double *ips[4];
    float *weights[4] = {NULL, NULL, NULL, NULL};
    int rc = 1;
    if (load_rows(o, &ds, &x, &u, &n) != 0) return 1;
    snprintf(path, sizeof path, "%s/bench_source_%d.npy", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    if (write_npy_u8(path, u, n, n) != 0) return die("writing the .npy file");
    paths[0] = path;
    if (ae_source_from_floats(&src[1], x, NULL, n, 784, 0) != AE_OK ||
        ae_source_from_u8(&src[2], u, n, 784) != AE_OK || ae_source_open_npy(&src[3], paths, 1) != AE_OK)
        return die("sources");
    if (!(c = config(o, o->epochs)) ||
        ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0.2) != AE_OK)
        return die("config");
    for (int k = 0; k < 4; k++) ips[k] = calloc((size_t)o->rounds * (size_t)o->epochs, sizeof(double));
    for (int r = 0; r < o->rounds; r++) {
        for (int k = 0; k < 4; k++) {
            ae_model *m;
            ae_history *h;
            ae_status st;
            if (ae_preset_build(&m, preset_of(o->model), 3) != AE_OK || ae_history_create(&h) != AE_OK)
                return die("model");
            st = k == 0 ? ae_train_fit(m, c, x, NULL, n, h)
                        : ae_train_fit_source(m, c, NULL, src[k], NULL, h);
            if (st != AE_OK) return die(names[k]);
            for (int e = 0; e < o->epochs; e++)
                ae_history_get(&ips[k][r * o->epochs + e], h, (size_t)e, AE_HIST_IMAGES_PER_SECOND);
            if (r == 0) {
                weights[k] = malloc(ae_model_param_count(m) * sizeof(float));
                {
                    size_t off = 0;
                    for (size_t L = 0; L < ae_model_layer_count(m); L++) {
                        const float *p;
                        size_t cnt;
                        for (int which = AE_PARAM_KERNEL; which <= AE_PARAM_BIAS; which++)
                            if (ae_layer_param(&p, &cnt, ae_model_layer(m, L), (ae_param_kind)which) == AE_OK && cnt) {
                                memcpy(weights[k] + off, p, cnt * sizeof(float));
                                off += cnt;
                            }
                    }
                }
                if (k > 0 && memcmp(weights[k], weights[0], ae_model_param_count(m) * sizeof(float)) != 0)
                    fprintf(stderr, "bench_source: %s ends with other weights than ae_train_fit\n", names[k]);
            }
            fprintf(stderr, "round %d %-14s %.0f images/s (last epoch)\n", r, names[k],
                    ips[k][r * o->epochs + o->epochs - 1]);
            ae_history_free(h);
            ae_model_free(m);
        }
    }
    {
        double med[4];
        for (int k = 0; k < 4; k++) med[k] = median(ips[k], (size_t)o->rounds * (size_t)o->epochs);
        printf("{\"kind\": \"ab\", \"model\": \"%s\", \"threads\": %d, \"rows\": %zu, \"epochs\": %d, "
               "\"rounds\": %d", o->model, o->threads, n, o->epochs, o->rounds);
        for (int k = 0; k < 4; k++)
            printf(", \"%s_ips\": %.0f, \"%s_ratio\": %.3f", names[k], med[k], names[k], med[k] / med[0]);
        printf("}\n");
    }
    rc = 0;
    for (int k = 0; k < 4; k++) {
        ae_source_free(src[k]);
        free(ips[k]);
        free(weights[k]);
    }
    unlink(path);
    ae_train_config_free(c);
    free(u);
    ae_dataset_free(ds);
    return rc;
}

static int cmd_make(const opts *o)
{
    ae_dataset *ds;
    const float *x;
    uint8_t *u;
    size_t n, rows;
    double t0 = now();
    if (load_rows(o, &ds, &x, &u, &n) != 0) return 1;
    rows = (size_t)(o->gb * 1e9 / 784);
    if (write_npy_u8(o->out, u, n, rows) != 0) return die("writing");
    printf("{\"kind\": \"make\", \"path\": \"%s\", \"rows\": %zu, \"bytes\": %.0f, \"seconds\": %.1f}\n",
           o->out, rows, (double)rows * 784, now() - t0);
    free(u);
    ae_dataset_free(ds);
    return 0;
}

typedef struct step_limit {
    long steps, done;
    double t_first; /* after the first step: excludes start-up */
} step_limit;

static int stop_after(ae_train_event ev, size_t epoch, size_t step, size_t steps, double loss,
                      const ae_model *m, const ae_history *h, void *user)
{
    step_limit *l = user;
    (void)epoch; (void)step; (void)steps; (void)loss; (void)m; (void)h;
    if (ev != AE_EVENT_BATCH_END) return 0;
    if (++l->done == 1) l->t_first = now();
    return l->done >= l->steps;
}

/* S steps of the model from src; images per second after the first step. */
static double timed_steps(const opts *o, const ae_source *src, const float *x, size_t n)
{
    ae_model *m;
    ae_train_config *c = config(o, 1);
    step_limit lim = {o->steps, 0, 0};
    ae_status st;
    double t;
    if (!c || ae_preset_build(&m, preset_of(o->model), 3) != AE_OK ||
        ae_train_config_set_callback(c, stop_after, &lim) != AE_OK) {
        die("setup");
        exit(1);
    }
    st = src ? ae_train_fit_source(m, c, NULL, src, NULL, NULL) : ae_train_fit(m, c, x, NULL, n, NULL);
    t = now();
    if (st != AE_STOPPED && st != AE_OK) {
        die("fit");
        exit(1);
    }
    ae_model_free(m);
    ae_train_config_free(c);
    return (double)(lim.done - 1) * 64.0 / (t - lim.t_first);
}

static int drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY), rc;
    if (fd < 0) return -1;
    rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return rc;
}

static int cmd_ooc(const opts *o)
{
    ae_source *src;
    const char *paths[1] = {o->npy};
    double file_ips[16], mem_ips[16], ratio[16], rss_file = 0;
    float *x = NULL;
    size_t n_mem = (size_t)o->steps * 64, rows;
    int rounds = o->rounds < 16 ? o->rounds : 16;
    if (ae_source_open_npy(&src, paths, 1) != AE_OK) return die("ae_source_open_npy");
    rows = ae_source_rows(src);
    fprintf(stderr, "ooc: %zu rows (%.2f GB), %d rounds of %ld steps, block %ld, window %ld%s\n",
            rows, (double)rows * 784 / 1e9, rounds, o->steps, o->block, o->window,
            o->cold ? " (cold cache)" : "");
    if (n_mem > rows) n_mem = rows;
    for (int r = 0; r < rounds; r++) {
        if (o->cold && drop_cache(o->npy) != 0) {
            fprintf(stderr, "bench_source: cannot drop %s from the page cache\n", o->npy);
            return 1;
        }
        file_ips[r] = timed_steps(o, src, NULL, 0);
        if (r == 0) {
            /* the peak of the file part alone, then the in-memory
             * reference: as many rows as the steps use, as floats */
            size_t *idx = malloc(n_mem * sizeof *idx);
            rss_file = maxrss_mb();
            x = malloc(n_mem * 784 * sizeof(float));
            for (size_t i = 0; i < n_mem; i++) idx[i] = i;
            if (ae_source_read(src, idx, n_mem, x, n_mem * 784, NULL, 0) != AE_OK) return die("read");
            free(idx);
        }
        mem_ips[r] = timed_steps(o, NULL, x, n_mem);
        ratio[r] = file_ips[r] / mem_ips[r];
        fprintf(stderr, "round %d: file %.0f images/s, memory %.0f, ratio %.3f\n", r, file_ips[r],
                mem_ips[r], ratio[r]);
    }
    printf("{\"kind\": \"ooc\", \"model\": \"%s\", \"threads\": %d, \"file_rows\": %zu, \"file_gb\": %.2f, "
           "\"cold\": %d, \"steps\": %ld, \"rounds\": %d, \"block\": %ld, \"window\": %ld, "
           "\"file_ips\": %.0f, \"memory_ips\": %.0f, \"ratio\": %.3f, \"maxrss_mb_file_part\": %.1f}\n",
           o->model, o->threads, rows, (double)rows * 784 / 1e9, o->cold, o->steps, rounds,
           o->block, o->window,
           median(file_ips, (size_t)rounds), median(mem_ips, (size_t)rounds),
           median(ratio, (size_t)rounds), rss_file);
    free(x);
    ae_source_free(src);
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {NULL, NULL, NULL, "simple", 2, 2, 3, 0, 3000, 0, 8, 4};
    if (argc < 2) goto usage;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--cold") == 0) { o.cold = 1; continue; }
        if (!v) goto usage;
        i++;
        if (strcmp(a, "--data") == 0) o.data = v;
        else if (strcmp(a, "--out") == 0) o.out = v;
        else if (strcmp(a, "--npy") == 0) o.npy = v;
        else if (strcmp(a, "--model") == 0) o.model = v;
        else if (strcmp(a, "--threads") == 0) o.threads = atoi(v);
        else if (strcmp(a, "--epochs") == 0) o.epochs = atoi(v);
        else if (strcmp(a, "--rounds") == 0) o.rounds = atoi(v);
        else if (strcmp(a, "--steps") == 0) o.steps = atol(v);
        else if (strcmp(a, "--block") == 0) o.block = atol(v);
        else if (strcmp(a, "--window") == 0) o.window = atol(v);
        else if (strcmp(a, "--gb") == 0) o.gb = atof(v);
        else goto usage;
    }
    if (strcmp(argv[1], "ab") == 0 && o.data) return cmd_ab(&o);
    if (strcmp(argv[1], "make") == 0 && o.data && o.out) return cmd_make(&o);
    if (strcmp(argv[1], "ooc") == 0 && o.npy) return cmd_ooc(&o);
usage:
    fprintf(stderr, "usage: bench_source ab --data DIR | make --data DIR --out FILE --gb G | "
                    "ooc --npy FILE [--cold] [--block B --window W]  [--model M --threads T --epochs E "
                    "--rounds R --steps S]\n");
    return 2;
}
