/* Index benchmark: build time, memory, single-query latency, batch throughput
 * and recall@k of each backend on a file of codes and a file of queries.
 *
 *   bench_index CODES QUERIES [options]
 *     CODES, QUERIES   float32 .npy files of shape (n, d) (C order), or raw
 *                      float32 files when --dim D is given
 *     --k K            neighbours per query (10)
 *     --backends LIST  comma list of brute,balltree,hnsw (all)
 *     --leaf N         ball tree leaf size (40)
 *     --M N --efc N    HNSW build parameters (16, 200)
 *     --ef LIST        HNSW ef_search values to sweep (16,32,48,64,96,128,192,256)
 *     --single N       queries timed one by one for exact backends (1000;
 *                      HNSW always times every query)
 *     --threads N      OpenBLAS threads for the batch GEMM (default: its own)
 *     --cpu-time       time with the calling thread's CPU time instead of the
 *                      wall clock: on a shared machine it leaves out the time
 *                      other processes hold the core (it misses BLAS worker
 *                      threads, so use it with --threads 1)
 *     --json           one JSON object per measurement on stdout, no table
 *     --store          instead: the living-store measurements (JSON lines):
 *                      HNSW insert throughput (build on the first 1,000 codes,
 *                      ae_index_add of the rest in batches of 1,000, one
 *                      thread) and filtered search keeping 10% of the ids
 *                      (id % 10 == 0): brute force's exact filtered search
 *                      (the truth, timed one query per call) against HNSW's
 *                      over the --ef sweep (recall@k and queries/s)
 *     --mmap FILE      instead: memory-mapped open (ae_index_map). Builds an
 *                      HNSW index of CODES (--M, --efc) once, saves it to FILE
 *                      (put it outside the repository; deleted at the end),
 *                      then runs each variant in a fresh process of its own
 *                      (this program again, --mmap-child), so each peak RSS
 *                      is that variant's alone: ae_index_load,
 *                      ae_index_map with AE_INDEX_CHECK_FULL and with
 *                      AE_INDEX_CHECK_BOUNDS. Each opens FILE (timed; the page
 *                      cache is warm, since FILE was just written), runs the
 *                      first --single queries (1000) one per call at the
 *                      default ef, and reports its peak RSS (VmHWM) before
 *                      and after. --reps R (3) rounds, the variants
 *                      interleaved, best open time kept. Prints a table with
 *                      the ratios (issue 13's bar: mapped open under 10 ms
 *                      plus the checksum pass, peak RSS well under the loaded
 *                      index's).
 *     --build-threads T
 *                      instead: HNSW build time (--M, --efc) on one thread
 *                      against T threads (AE_INDEX_THREADS), --reps R (3)
 *                      builds of each, interleaved (1, T, 1, T, ...) so a
 *                      change in the machine's load hits both alike; wall
 *                      clock. Prints each build's seconds and recall@k at
 *                      the default ef (64) against brute force (and the
 *                      CPU seconds of all the process's threads: more CPU
 *                      than one thread's is the threads' overhead, less
 *                      than threads x wall is time other processes took
 *                      the cores), then the
 *                      min and median of each and the ratio of the medians
 *                      (issue 13's bar: >= 1.7 at T = 2, recall the same).
 *
 * Recall is measured against the brute-force backend, which is exact (it
 * equals a double-precision scan, ties broken by id). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autoenc/index.h"

static clockid_t g_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(g_clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * 4; /* 4 KiB pages */
}

/* Minimal .npy reader: little-endian float32, C order, 1-D or 2-D. */
static float *read_npy(const char *path, size_t *n, size_t *d)
{
    FILE *f = fopen(path, "rb");
    unsigned char pre[10];
    char *hdr = NULL, *p;
    size_t hlen, count;
    float *x = NULL;
    if (!f) goto fail;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) goto fail;
    if (pre[6] == 1) hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    else {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) goto fail;
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)b[0] << 16) | ((size_t)b[1] << 24);
    }
    hdr = calloc(1, hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) goto fail;
    if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True")) {
        fprintf(stderr, "%s: need little-endian float32 in C order\n", path);
        goto fail;
    }
    p = strstr(hdr, "'shape': (");
    if (!p) goto fail;
    p += 10;
    *n = strtoull(p, &p, 10);
    *d = 1;
    if (*p == ',') {
        while (*p == ',' || *p == ' ') p++;
        if (*p != ')') *d = strtoull(p, &p, 10);
    }
    count = *n * *d;
    x = malloc(count * sizeof(float) + 1);
    if (!x || fread(x, sizeof(float), count, f) != count) goto fail;
    fclose(f);
    free(hdr);
    return x;
fail:
    fprintf(stderr, "cannot read %s as a float32 .npy file\n", path);
    if (f) fclose(f);
    free(hdr);
    free(x);
    return NULL;
}

static float *read_raw(const char *path, size_t dim, size_t *n)
{
    FILE *f = fopen(path, "rb");
    long end;
    float *x;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    end = ftell(f);
    fseek(f, 0, SEEK_SET);
    *n = (size_t)end / (dim * sizeof(float));
    x = malloc(*n * dim * sizeof(float) + 1);
    if (!x || fread(x, sizeof(float) * dim, *n, f) != *n) {
        fclose(f);
        free(x);
        return NULL;
    }
    fclose(f);
    return x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double recall(const int64_t *got, const int64_t *truth, size_t nq, size_t k)
{
    size_t hits = 0;
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < k; j++)
            for (size_t l = 0; l < k; l++)
                if (got[i * k + j] == truth[i * k + l]) {
                    hits++;
                    break;
                }
    return (double)hits / (double)(nq * k);
}

typedef struct single_stats {
    double p50_ms, p99_ms, mean_ms, qps;
    size_t count;
} single_stats;

/* Times queries one call each; results go to ids (nq x k). */
static int time_single(const ae_index *idx, const float *q, size_t nq, size_t d, size_t k,
                       size_t ef, float *dist, int64_t *ids, single_stats *s)
{
    double *lat = malloc(nq * sizeof(double)), total = 0;
    for (size_t i = 0; i < nq; i++) {
        double t0 = now();
        ae_status st = ae_index_search(idx, q + i * d, 1, k, ef, dist + i * k, ids + i * k);
        lat[i] = now() - t0;
        if (st != AE_OK) {
            fprintf(stderr, "search failed: %s\n", ae_last_error());
            free(lat);
            return -1;
        }
        total += lat[i];
    }
    qsort(lat, nq, sizeof *lat, cmp_double);
    s->count = nq;
    s->p50_ms = 1e3 * lat[nq / 2];
    s->p99_ms = 1e3 * lat[(size_t)((double)(nq - 1) * 0.99)];
    s->mean_ms = 1e3 * total / (double)nq;
    s->qps = (double)nq / total;
    free(lat);
    return 0;
}

static int g_json;

static void report(const char *backend, const char *param, double build_s, long rss_delta_kb,
                   size_t index_bytes, const single_stats *s, double batch_qps, double rec)
{
    if (g_json) {
        printf("{\"lib\": \"libautoenc\", \"backend\": \"%s\", \"param\": \"%s\", "
               "\"build_s\": %.4f, \"rss_delta_mb\": %.2f, \"index_mb\": %.2f, "
               "\"single_n\": %zu, \"p50_ms\": %.4f, \"p99_ms\": %.4f, \"mean_ms\": %.4f, "
               "\"single_qps\": %.2f, \"batch_qps\": %.2f, \"recall\": %.5f}\n",
               backend, param, build_s, (double)rss_delta_kb / 1024.0,
               (double)index_bytes / 1048576.0, s->count, s->p50_ms, s->p99_ms, s->mean_ms,
               s->qps, batch_qps, rec);
    } else {
        printf("%-9s %-10s %8.3f %9.1f %9.1f %9.4f %9.4f %10.1f %10.1f %8.4f\n", backend, param,
               build_s, (double)rss_delta_kb / 1024.0, (double)index_bytes / 1048576.0,
               s->p50_ms, s->p99_ms, s->qps, batch_qps, rec);
    }
    fflush(stdout);
}

static int keep_tenth(int64_t id, void *user)
{
    (void)user;
    return id % 10 == 0;
}

/* Filtered searches one query per call; returns queries/s or -1. */
static double filtered_single(const ae_index *idx, const float *q, size_t nq, size_t d, size_t k,
                              size_t ef, float *dist, int64_t *ids)
{
    double t0 = now();
    for (size_t i = 0; i < nq; i++)
        if (ae_index_search_filtered(idx, q + i * d, 1, k, ef, keep_tenth, NULL, dist + i * k,
                                     ids + i * k) != AE_OK) {
            fprintf(stderr, "filtered search failed: %s\n", ae_last_error());
            return -1;
        }
    return (double)nq / (now() - t0);
}

/* The --store measurements (see the comment at the top). */
static int bench_store(const float *x, size_t n, size_t d, const float *q, size_t nq, size_t k,
                       long m, long efc, const char *ef_list)
{
    const size_t n0 = n < 2000 ? n / 2 : 1000, batch = 1000;
    int64_t *all_ids = malloc(n * sizeof(int64_t)), *truth = malloc(nq * k * sizeof(int64_t));
    int64_t *ids = malloc(nq * k * sizeof(int64_t));
    float *dist = malloc(nq * k * sizeof(float));
    ae_index *h, *b;
    double t0, ins_s, brute_qps;
    char list[256], *tok, *save = NULL;
    for (size_t i = 0; i < n; i++) all_ids[i] = (int64_t)i;
    if (ae_index_create(&h, AE_INDEX_HNSW, AE_INDEX_L2, d) != AE_OK) return 1;
    ae_index_set_int(h, AE_INDEX_HNSW_M, m);
    ae_index_set_int(h, AE_INDEX_HNSW_EF_CONSTRUCTION, efc);
    if (ae_index_build(h, x, n0, all_ids, NULL) != AE_OK) return 1;
    t0 = now();
    for (size_t at = n0; at < n; at += batch) {
        size_t c = n - at < batch ? n - at : batch;
        if (ae_index_add(h, x + at * d, c, all_ids + at, NULL) != AE_OK) {
            fprintf(stderr, "add failed: %s\n", ae_index_errmsg(h));
            return 1;
        }
    }
    ins_s = now() - t0;
    printf("{\"lib\": \"libautoenc\", \"backend\": \"hnsw\", \"param\": \"insert\", "
           "\"first\": %zu, \"inserted\": %zu, \"insert_s\": %.4f, \"inserts_per_s\": %.2f}\n",
           n0, n - n0, ins_s, (double)(n - n0) / ins_s);
    fflush(stdout);

    if (ae_index_create(&b, AE_INDEX_BRUTE, AE_INDEX_L2, d) != AE_OK ||
        ae_index_build(b, x, n, all_ids, NULL) != AE_OK)
        return 1;
    brute_qps = filtered_single(b, q, nq, d, k, 0, dist, truth);
    if (brute_qps < 0) return 1;
    printf("{\"lib\": \"libautoenc\", \"backend\": \"brute\", \"param\": \"filter10\", "
           "\"single_qps\": %.2f, \"recall\": 1.0}\n", brute_qps);
    fflush(stdout);
    snprintf(list, sizeof list, "%s", ef_list);
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t ef = strtoull(tok, NULL, 10);
        double qps = filtered_single(h, q, nq, d, k, ef, dist, ids);
        if (qps < 0) return 1;
        printf("{\"lib\": \"libautoenc\", \"backend\": \"hnsw\", \"param\": "
               "\"filter10 ef=%zu\", \"single_qps\": %.2f, \"recall\": %.5f, "
               "\"ratio_vs_brute\": %.3f}\n", ef, qps, recall(ids, truth, nq, k), qps / brute_qps);
        fflush(stdout);
    }
    ae_index_free(h);
    ae_index_free(b);
    free(all_ids);
    free(truth);
    free(ids);
    free(dist);
    return 0;
}

/* ---- --mmap ---------------------------------------------------------------------- */
/* A "Key:   123 kB" line of /proc/self/status, in KiB (-1 if absent). */
static long status_kb(const char *key)
{
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl)) {
            v = strtol(line + kl, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static const char *const g_variants[] = {"load", "map full", "map bounds"};

/* --mmap-child VARIANT FILE QUERIES K NQ: one variant, in a process of its
 * own. Prints: open_ms hwm_before_kb hwm_open_kb hwm_after_kb rss_anon_kb
 * rss_file_kb us_per_query idsum (RSS split at the end: private heap vs
 * pages of the mapped file, which the kernel may drop and other processes
 * share). */
static int mmap_child(char **argv)
{
    int variant = atoi(argv[2]);
    const char *file = argv[3];
    size_t k = strtoull(argv[5], NULL, 10), nq = strtoull(argv[6], NULL, 10), nall, d;
    float *q = read_npy(argv[4], &nall, &d), dist[256];
    int64_t ids[256];
    unsigned long long idsum = 0;
    ae_index *idx = NULL;
    ae_status st;
    long hwm0, hwm1;
    double t0, t1, t2;
    if (!q || k == 0 || k > 256) return 1;
    if (nq > nall) nq = nall;
    hwm0 = status_kb("VmHWM:");
    t0 = now();
    st = variant == 0 ? ae_index_load(&idx, file)
                      : ae_index_map(&idx, file, variant == 1 ? AE_INDEX_CHECK_FULL
                                                              : AE_INDEX_CHECK_BOUNDS);
    t1 = now();
    if (st != AE_OK) {
        fprintf(stderr, "%s: %s\n", g_variants[variant], ae_last_error());
        return 1;
    }
    hwm1 = status_kb("VmHWM:");
    for (size_t i = 0; i < nq; i++) {
        if (ae_index_search(idx, q + i * d, 1, k, 0, dist, ids) != AE_OK) return 1;
        for (size_t j = 0; j < k; j++) idsum = idsum * 1000003u + (unsigned long long)ids[j];
    }
    t2 = now();
    printf("%.4f %ld %ld %ld %ld %ld %.3f %llu\n", (t1 - t0) * 1e3, hwm0, hwm1,
           status_kb("VmHWM:"), status_kb("RssAnon:"), status_kb("RssFile:"),
           (t2 - t1) * 1e6 / (double)nq, idsum);
    ae_index_free(idx);
    free(q);
    return 0;
}

static int bench_mmap(const float *x, size_t n, size_t d, const char *queries_path, size_t nq,
                      size_t k, long m, long efc, const char *file, int reps)
{
    enum { NV = 3 };
    char self[4096], cmd[8192];
    double best[NV], us[NV], t0, build_s;
    long hwm0[NV], hwmo[NV], hwm[NV], anon[NV], file_kb[NV];
    unsigned long long sums[NV];
    ssize_t sl;
    ae_index *idx;
    FILE *f;
    long bytes;
    if (ae_index_create(&idx, AE_INDEX_HNSW, AE_INDEX_L2, d) != AE_OK ||
        ae_index_set_int(idx, AE_INDEX_HNSW_M, m) != AE_OK ||
        ae_index_set_int(idx, AE_INDEX_HNSW_EF_CONSTRUCTION, efc) != AE_OK)
        return 1;
    t0 = now();
    if (ae_index_build(idx, x, n, NULL, NULL) != AE_OK) return 1;
    build_s = now() - t0;
    if (ae_index_save(idx, file) != AE_OK) {
        fprintf(stderr, "%s\n", ae_last_error());
        return 1;
    }
    ae_index_free(idx);
    f = fopen(file, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) return 1;
    bytes = ftell(f);
    fclose(f);
    sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return 1;
    self[sl] = '\0';
    for (int v = 0; v < NV; v++) best[v] = 1e30;
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < NV; v++) {
            double ms, u;
            long h0, ho, h1, an, fi;
            unsigned long long sum;
            snprintf(cmd, sizeof cmd, "'%s' --mmap-child %d '%s' '%s' %zu %zu", self, v, file,
                     queries_path, k, nq);
            f = popen(cmd, "r");
            if (!f || fscanf(f, "%lf %ld %ld %ld %ld %ld %lf %llu", &ms, &h0, &ho, &h1, &an, &fi,
                             &u, &sum) != 8) {
                fprintf(stderr, "variant %s failed\n", g_variants[v]);
                if (f) pclose(f);
                unlink(file);
                return 1;
            }
            pclose(f);
            if (ms < best[v]) best[v] = ms;
            hwm0[v] = h0;
            hwmo[v] = ho;
            hwm[v] = h1;
            anon[v] = an;
            file_kb[v] = fi;
            us[v] = u;
            sums[v] = sum;
        }
    unlink(file);
    printf("# HNSW M %ld, ef_construction %ld: %zu codes x %zu dims, built in %.1f s, file "
           "%.1f MB (deleted)\n", m, efc, n, d, build_s, (double)bytes / 1048576.0);
    printf("# each variant in a fresh process; open = best of %d (warm page cache); then the "
           "first %zu queries one per call (k %zu, default ef)\n", reps, nq, k);
    printf("%-11s %9s %8s %10s %10s %10s %10s %10s %9s %8s\n", "variant", "open_ms", "x_bounds",
           "peak_MB", "open_MB", "own_MB", "anon_MB", "file_MB", "us/query", "same_ids");
    for (int v = 0; v < NV; v++)
        printf("%-11s %9.3f %8.1f %10.1f %10.1f %10.1f %10.1f %10.1f %9.1f %8s\n",
               g_variants[v], best[v], best[v] / best[2], hwm[v] / 1024.0,
               (hwmo[v] - hwm0[v]) / 1024.0, (hwm[v] - hwm0[v]) / 1024.0, anon[v] / 1024.0,
               file_kb[v] / 1024.0, us[v], sums[v] == sums[0] ? "yes" : "NO");
    printf("# peak = the process's peak RSS after the queries; open = its growth during the "
           "open; own = its growth from before the open to after the queries (this variant's "
           "share); anon/file = RSS at the end in private memory / pages of the file (page "
           "cache: shared, reclaimable)\n");
    printf("# ratios: open load/map bounds %.1fx, map full/map bounds %.1fx (checksum pass and "
           "full checks: %.2f ms); own peak RSS load/map bounds %.1fx, load/map full %.1fx\n",
           best[0] / best[2], best[1] / best[2], best[1] - best[2],
           (double)(hwm[0] - hwm0[0]) / (double)(hwm[2] - hwm0[2]),
           (double)(hwm[0] - hwm0[0]) / (double)(hwm[1] - hwm0[1]));
    return sums[0] == sums[1] && sums[0] == sums[2] ? 0 : 1;
}

/* CPU seconds of every thread of the process. */
static double process_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int bench_build_threads(const float *x, size_t n, size_t d, const float *q, size_t nq,
                               size_t k, long m, long efc, int nthreads, int reps)
{
    int64_t *truth = malloc(nq * k * sizeof(int64_t)), *ids = malloc(nq * k * sizeof(int64_t));
    double *secs[2], *rec[2], med[2], mn[2], rmean[2];
    int counts[2] = {1, nthreads};
    ae_index *idx;
    if (!truth || !ids) return 1;
    for (int c = 0; c < 2; c++) {
        secs[c] = malloc((size_t)reps * sizeof(double));
        rec[c] = malloc((size_t)reps * sizeof(double));
        if (!secs[c] || !rec[c]) return 1;
    }
    if (ae_index_create(&idx, AE_INDEX_BRUTE, AE_INDEX_L2, d) != AE_OK ||
        ae_index_build(idx, x, n, NULL, NULL) != AE_OK ||
        ae_index_search(idx, q, nq, k, 0, NULL, truth) != AE_OK) {
        fprintf(stderr, "truth: %s\n", ae_last_error());
        return 1;
    }
    ae_index_free(idx);
    printf("# HNSW build, M %ld, ef_construction %ld: %zu codes x %zu dims; recall@%zu of %zu "
           "queries at ef 64\n", m, efc, n, d, k, nq);
    printf("%-4s %-8s %9s %9s %9s\n", "run", "threads", "build_s", "cpu_s", "recall");
    for (int r = 0; r < reps; r++)
        for (int c = 0; c < 2; c++) {
            double t0, c0, cpu;
            if (ae_index_create(&idx, AE_INDEX_HNSW, AE_INDEX_L2, d) != AE_OK ||
                ae_index_set_int(idx, AE_INDEX_HNSW_M, m) != AE_OK ||
                ae_index_set_int(idx, AE_INDEX_HNSW_EF_CONSTRUCTION, efc) != AE_OK ||
                ae_index_set_int(idx, AE_INDEX_THREADS, counts[c]) != AE_OK) {
                fprintf(stderr, "%s\n", ae_last_error());
                return 1;
            }
            c0 = process_cpu();
            t0 = now();
            if (ae_index_build(idx, x, n, NULL, NULL) != AE_OK) {
                fprintf(stderr, "build failed: %s\n", ae_index_errmsg(idx));
                return 1;
            }
            secs[c][r] = now() - t0;
            cpu = process_cpu() - c0;
            if (ae_index_search(idx, q, nq, k, 64, NULL, ids) != AE_OK) {
                fprintf(stderr, "search failed: %s\n", ae_last_error());
                return 1;
            }
            rec[c][r] = recall(ids, truth, nq, k);
            ae_index_free(idx);
            printf("%-4d %-8d %9.3f %9.3f %9.4f\n", r + 1, counts[c], secs[c][r], cpu, rec[c][r]);
            fflush(stdout);
        }
    for (int c = 0; c < 2; c++) {
        rmean[c] = 0;
        for (int r = 0; r < reps; r++) rmean[c] += rec[c][r] / reps;
        qsort(secs[c], (size_t)reps, sizeof(double), cmp_double);
        mn[c] = secs[c][0];
        med[c] = reps % 2 ? secs[c][reps / 2] : 0.5 * (secs[c][reps / 2 - 1] + secs[c][reps / 2]);
        printf("# %d thread(s): build min %.3f s, median %.3f s; mean recall %.4f\n", counts[c],
               mn[c], med[c], rmean[c]);
    }
    printf("# speed-up %d threads over 1: median %.2fx, min %.2fx; recall difference %+.4f\n",
           nthreads, med[0] / med[1], mn[0] / mn[1], rmean[1] - rmean[0]);
    for (int c = 0; c < 2; c++) {
        free(secs[c]);
        free(rec[c]);
    }
    free(truth);
    free(ids);
    return 0;
}

/* OpenBLAS extension (the bench links OpenBLAS through the static library). */
void openblas_set_num_threads(int num_threads);

int main(int argc, char **argv)
{
    const char *codes_path = NULL, *queries_path = NULL, *backends = "brute,balltree,hnsw";
    const char *ef_list = "16,32,48,64,96,128,192,256";
    size_t k = 10, dim = 0, n = 0, d = 0, nq = 0, dq = 0, single = 1000;
    long leaf = 40, m = 16, efc = 200;
    int threads = 0, store = 0, reps = 3, build_threads = 0;
    const char *mmap_file = NULL;
    float *x, *q, *dist;
    int64_t *truth, *ids;

    if (argc == 7 && !strcmp(argv[1], "--mmap-child")) return mmap_child(argv);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) g_json = 1;
        else if (!strcmp(a, "--k") && v) k = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--dim") && v) dim = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--backends") && v) backends = v, i++;
        else if (!strcmp(a, "--leaf") && v) leaf = strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--M") && v) m = strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--efc") && v) efc = strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--ef") && v) ef_list = v, i++;
        else if (!strcmp(a, "--single") && v) single = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--threads") && v) threads = atoi(v), i++;
        else if (!strcmp(a, "--cpu-time")) g_clock = CLOCK_THREAD_CPUTIME_ID;
        else if (!strcmp(a, "--store")) store = 1;
        else if (!strcmp(a, "--mmap") && v) mmap_file = v, i++;
        else if (!strcmp(a, "--reps") && v) reps = atoi(v), i++;
        else if (!strcmp(a, "--build-threads") && v) build_threads = atoi(v), i++;
        else if (a[0] != '-' && !codes_path) codes_path = a;
        else if (a[0] != '-' && !queries_path) queries_path = a;
        else {
            fprintf(stderr, "usage: %s CODES QUERIES [--k K] [--dim D] [--backends LIST] "
                            "[--leaf N] [--M N] [--efc N] [--ef LIST] [--single N] "
                            "[--threads N] [--cpu-time] [--json] [--store] [--mmap FILE "
                            "[--reps R]] [--build-threads T [--reps R]]\n", argv[0]);
            return 2;
        }
    }
    if (!codes_path || !queries_path) {
        fprintf(stderr, "need CODES and QUERIES files (see the comment in bench_index.c)\n");
        return 2;
    }
    if (dim) {
        x = read_raw(codes_path, dim, &n);
        q = read_raw(queries_path, dim, &nq);
        d = dq = dim;
    } else {
        x = read_npy(codes_path, &n, &d);
        q = read_npy(queries_path, &nq, &dq);
    }
    if (!x || !q || d != dq || n == 0 || nq == 0 || k > n) {
        fprintf(stderr, "bad inputs (codes %zu x %zu, queries %zu x %zu, k %zu)\n", n, d, nq, dq,
                k);
        return 1;
    }
    if (threads > 0) openblas_set_num_threads(threads);
    if (store) return bench_store(x, n, d, q, nq, k, m, efc, ef_list);
    if (build_threads > 0) {
        if (g_clock != CLOCK_MONOTONIC) {
            fprintf(stderr, "--build-threads times the wall clock (no --cpu-time)\n");
            return 2;
        }
        return bench_build_threads(x, n, d, q, nq, k, m, efc, build_threads,
                                   reps > 0 ? reps : 1);
    }
    if (mmap_file) {
        if (dim) {
            fprintf(stderr, "--mmap needs .npy files\n");
            return 2;
        }
        free(q);
        return bench_mmap(x, n, d, queries_path, single < nq ? single : nq, k, m, efc,
                          mmap_file, reps > 0 ? reps : 1);
    }
    if (single > nq) single = nq;
    dist = malloc(nq * k * sizeof(float));
    truth = malloc(nq * k * sizeof(int64_t));
    ids = malloc(nq * k * sizeof(int64_t));
    if (!g_json) {
        printf("# %zu codes x %zu dims, %zu queries, k = %zu\n", n, d, nq, k);
        printf("%-9s %-10s %8s %9s %9s %9s %9s %10s %10s %8s\n", "backend", "param", "build_s",
               "rss_MB", "index_MB", "p50_ms", "p99_ms", "single/s", "batch/s", "recall");
    }

    /* brute force first: it is the ground truth */
    for (int pass = 0; pass < 3; pass++) {
        static const char *names[] = {"brute", "balltree", "hnsw"};
        static const ae_index_backend kinds[] = {AE_INDEX_BRUTE, AE_INDEX_BALLTREE, AE_INDEX_HNSW};
        ae_index *idx;
        long rss0;
        double t0, build_s, batch_qps;
        single_stats s;
        if (pass > 0 && !strstr(backends, names[pass])) continue;
        if (ae_index_create(&idx, kinds[pass], AE_INDEX_L2, d) != AE_OK) return 1;
        if (kinds[pass] == AE_INDEX_BALLTREE) ae_index_set_int(idx, AE_INDEX_LEAF_SIZE, leaf);
        if (kinds[pass] == AE_INDEX_HNSW) {
            ae_index_set_int(idx, AE_INDEX_HNSW_M, m);
            ae_index_set_int(idx, AE_INDEX_HNSW_EF_CONSTRUCTION, efc);
        }
        rss0 = rss_kb();
        t0 = now();
        if (ae_index_build(idx, x, n, NULL, NULL) != AE_OK) {
            fprintf(stderr, "build failed: %s\n", ae_index_errmsg(idx));
            return 1;
        }
        build_s = now() - t0;
        rss0 = rss_kb() - rss0;

        if (kinds[pass] != AE_INDEX_HNSW) {
            batch_qps = 0;
            for (int rep = 0; rep < 3; rep++) { /* best of 3: the machine may be shared */
                double dt;
                t0 = now();
                if (ae_index_search(idx, q, nq, k, 0, dist,
                                    kinds[pass] == AE_INDEX_BRUTE ? truth : ids) != AE_OK) {
                    fprintf(stderr, "batch search failed: %s\n", ae_last_error());
                    return 1;
                }
                dt = now() - t0;
                if ((double)nq / dt > batch_qps) batch_qps = (double)nq / dt;
                if (kinds[pass] == AE_INDEX_BALLTREE) break; /* slow; once is enough */
            }
            if (kinds[pass] == AE_INDEX_BRUTE) memcpy(ids, truth, nq * k * sizeof(int64_t));
            if (pass == 0 && !strstr(backends, "brute")) { ae_index_free(idx); continue; }
            {
                int64_t *sids = malloc(single * k * sizeof(int64_t));
                if (time_single(idx, q, single, d, k, 0, dist, sids, &s) != 0) return 1;
                if (memcmp(sids, ids, single * k * sizeof(int64_t)) != 0)
                    fprintf(stderr, "warning: %s single and batch results differ\n", names[pass]);
                free(sids);
            }
            char param[32];
            snprintf(param, sizeof param, kinds[pass] == AE_INDEX_BALLTREE ? "leaf=%ld" : "-",
                     leaf);
            report(names[pass], param, build_s, rss0,
                   ae_index_memory_bytes(idx), &s, batch_qps, recall(ids, truth, nq, k));
        } else {
            char list[256], *tok, *save = NULL;
            snprintf(list, sizeof list, "%s", ef_list);
            for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                size_t ef = strtoull(tok, NULL, 10);
                char param[32];
                batch_qps = 0;
                for (int rep = 0; rep < 3; rep++) {
                    double dt;
                    t0 = now();
                    if (ae_index_search(idx, q, nq, k, ef, dist, ids) != AE_OK) return 1;
                    dt = now() - t0;
                    if ((double)nq / dt > batch_qps) batch_qps = (double)nq / dt;
                }
                if (time_single(idx, q, nq, d, k, ef, dist, ids, &s) != 0) return 1;
                snprintf(param, sizeof param, "ef=%zu", ef);
                report(names[pass], param, build_s, rss0, ae_index_memory_bytes(idx), &s,
                       batch_qps, recall(ids, truth, nq, k));
            }
        }
        ae_index_free(idx);
    }
    free(x);
    free(q);
    free(dist);
    free(truth);
    free(ids);
    return 0;
}
