/* Data sources for training (include/autoenc/source.h) and the background
 * batch filler of the fit loop.
 *
 * .npy files are read with pread, one call per row, into a small scratch
 * buffer: the page cache holds what the disk gave, the process only one
 * batch. Measured on a shared 2-core VM, random 784-byte rows of a cached
 * 4 GB uint8 file: 5.6-6.9 us per row through pread, 2.1 us through a
 * mapping with MADV_RANDOM, but the mapping's peak RSS reached 3.8 GB after
 * 2 M rows (touched file pages count in the resident set until dropped with
 * madvise) and a file truncated under a mapping kills the process with
 * SIGBUS instead of failing a read. With pread, training from that file
 * peaked at 46 MB RSS (tests/bench/bench_source.c ooc).
 *
 * With the block shuffle (AE_TRAIN_SHUFFLE_BLOCK) the batch reader instead
 * reads whole blocks of rows with one pread each into a window of blocks
 * (block_cache below): a window's rows are all drawn before the next
 * window's, so every block is read once per epoch. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "source_impl.h"

enum { SRC_CUSTOM = 1, SRC_FLOATS, SRC_U8, SRC_NPY };

typedef struct npy_part {
    int fd, dtype;
    size_t first, rows, row_bytes; /* first: its first row in the source */
    uint64_t data_offset;
} npy_part;

struct ae_source {
    int kind;
    size_t rows, row_size, target_size;
    const float *fx, *fy;   /* SRC_FLOATS */
    const uint8_t *u8;      /* SRC_U8 */
    npy_part *parts;        /* SRC_NPY */
    size_t n_parts;
    unsigned char *scratch; /* one row's bytes (SRC_NPY) */
    size_t scratch_cap;
    ae_source_fill_fn fill; /* SRC_CUSTOM */
    ae_source_close_fn close;
    void *user;
};

static ae_status new_source(ae_source **out, int kind, size_t rows, size_t row_size,
                            size_t target_size)
{
    ae_source *s;
    size_t total;
    if (rows == 0 || row_size == 0)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "a source needs rows (%zu) and a row size (%zu)",
                        rows, row_size);
    if (ae__mul_size(rows, row_size, &total) != 0 || ae__mul_size(total, sizeof(float), &total) != 0)
        return ae__fail(NULL, AE_ERR_RANGE, "%zu rows of %zu values overflow", rows, row_size);
    if (!(s = ae__calloc(1, sizeof *s))) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    s->kind = kind;
    s->rows = rows;
    s->row_size = row_size;
    s->target_size = target_size;
    *out = s;
    return AE_OK;
}

ae_status ae_source_create(ae_source **out, size_t rows, size_t row_size, size_t target_size,
                           ae_source_fill_fn fill, ae_source_close_fn close, void *user)
{
    AE__ENTER();
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!fill) return ae__fail(NULL, AE_ERR_INVALID_ARG, "fill callback is NULL");
    if ((st = new_source(out, SRC_CUSTOM, rows, row_size, target_size)) != AE_OK) return st;
    (*out)->fill = fill;
    (*out)->close = close;
    (*out)->user = user;
    return AE_OK;
}

ae_status ae_source_from_floats(ae_source **out, const float *x, const float *y, size_t rows,
                                size_t row_size, size_t target_size)
{
    AE__ENTER();
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!x) return ae__fail(NULL, AE_ERR_INVALID_ARG, "rows are NULL");
    if ((y == NULL) != (target_size == 0))
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "targets need both a pointer and a size");
    if ((st = new_source(out, SRC_FLOATS, rows, row_size, target_size)) != AE_OK) return st;
    (*out)->fx = x;
    (*out)->fy = y;
    return AE_OK;
}

ae_status ae_source_from_u8(ae_source **out, const uint8_t *x, size_t rows, size_t row_size)
{
    AE__ENTER();
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!x) return ae__fail(NULL, AE_ERR_INVALID_ARG, "rows are NULL");
    if ((st = new_source(out, SRC_U8, rows, row_size, 0)) != AE_OK) return st;
    (*out)->u8 = x;
    return AE_OK;
}

void ae_source_free(ae_source *s)
{
    if (!s) return;
    if (s->kind == SRC_CUSTOM && s->close) s->close(s->user);
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i].fd >= 0) close(s->parts[i].fd);
    ae__free(s->parts, s->n_parts * sizeof *s->parts);
    ae__free(s->scratch, s->scratch_cap);
    ae__free(s, sizeof *s);
}

ae_status ae_source_open_npy(ae_source **out, const char *const *paths, size_t n_paths)
{
    AE__ENTER();
    ae_source *s = NULL;
    npy_part *parts;
    size_t rows = 0, width = 0, scratch = 0;
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!paths || n_paths == 0) return ae__fail(NULL, AE_ERR_INVALID_ARG, "no files");
    if (!(parts = ae__calloc(n_paths, sizeof *parts))) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_paths; i++) parts[i].fd = -1;
    for (size_t i = 0; i < n_paths; i++) {
        ae__npy_layout L;
        if (!paths[i]) {
            st = ae__fail(NULL, AE_ERR_INVALID_ARG, "path %zu is NULL", i);
            goto fail;
        }
        if ((st = ae__npy_layout_of(paths[i], &L)) != AE_OK) goto fail;
        if (i > 0 && L.row_elems != width) {
            st = ae__file_fail(NULL, paths[i], AE_ERR_SHAPE, "rows of %zu values, the first "
                               "file's have %zu", L.row_elems, width);
            goto fail;
        }
        width = L.row_elems;
        if ((parts[i].fd = open(paths[i], O_RDONLY)) < 0) {
            st = ae__file_fail(NULL, paths[i], AE_ERR_IO, "cannot open: %s", strerror(errno));
            goto fail;
        }
        parts[i].dtype = L.dtype;
        parts[i].first = rows;
        parts[i].rows = L.rows;
        parts[i].row_bytes = L.row_bytes;
        parts[i].data_offset = L.data_offset;
        if (L.row_bytes > scratch) scratch = L.row_bytes;
        if (L.rows > SIZE_MAX / 2 - rows) {
            st = ae__fail(NULL, AE_ERR_RANGE, "too many rows");
            goto fail;
        }
        rows += L.rows;
    }
    if ((st = new_source(&s, SRC_NPY, rows, width, 0)) != AE_OK) goto fail;
    s->parts = parts;
    s->n_parts = n_paths;
    if (!(s->scratch = ae__malloc(scratch))) {
        ae_source_free(s);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    }
    s->scratch_cap = scratch;
    *out = s;
    return AE_OK;
fail:
    for (size_t i = 0; i < n_paths; i++)
        if (parts[i].fd >= 0) close(parts[i].fd);
    ae__free(parts, n_paths * sizeof *parts);
    return st;
}

size_t ae_source_rows(const ae_source *s) { return s ? s->rows : 0; }
size_t ae_source_row_size(const ae_source *s) { return s ? s->row_size : 0; }
size_t ae_source_target_size(const ae_source *s) { return s ? s->target_size : 0; }

const float *ae__source_floats(const ae_source *s, const float **y)
{
    if (s->kind != SRC_FLOATS) return NULL;
    *y = s->fy;
    return s->fx;
}

/* The part holding row r (binary search over the parts' first rows). */
static const npy_part *part_of(const ae_source *s, size_t r)
{
    size_t lo = 0, hi = s->n_parts;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->parts[mid].first <= r) lo = mid;
        else hi = mid;
    }
    return &s->parts[lo];
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

void ae__source_hint(const ae_source *s, const size_t *rows, size_t n)
{
    if (s->kind != SRC_NPY) return;
    for (size_t i = 0; i < n; i++) {
        const npy_part *p = part_of(s, rows[i]);
        const uint64_t off = p->data_offset + (uint64_t)(rows[i] - p->first) * p->row_bytes;
        (void)posix_fadvise(p->fd, (off_t)off, (off_t)p->row_bytes, POSIX_FADV_WILLNEED);
    }
}

/* One row's bytes of part p (read from the file) into w floats. */
static ae_status npy_row_floats(const npy_part *p, const unsigned char *bytes, float *dst, size_t w)
{
    if (p->dtype == AE_NPY_F32) {
        memcpy(dst, bytes, w * sizeof(float)); /* little-endian host (fileio.c) */
        return ae__all_finite(dst, w) ? AE_OK : AE_ERR_NUMERIC;
    }
    for (size_t k = 0; k < w; k++) dst[k] = (float)bytes[k] * AE_NPY_U8_UNIT;
    return AE_OK;
}

ae_status ae__source_fill(const ae_source *s, const size_t *rows, size_t n, float *x, float *y)
{
    const size_t w = s->row_size;
    switch (s->kind) {
    case SRC_FLOATS:
        for (size_t i = 0; i < n; i++) {
            memcpy(x + i * w, s->fx + rows[i] * w, w * sizeof(float));
            if (y) memcpy(y + i * s->target_size, s->fy + rows[i] * s->target_size,
                          s->target_size * sizeof(float));
        }
        return AE_OK;
    case SRC_U8:
        for (size_t i = 0; i < n; i++) {
            const uint8_t *r = s->u8 + rows[i] * w;
            for (size_t k = 0; k < w; k++) x[i * w + k] = (float)r[k] * AE_NPY_U8_UNIT;
        }
        return AE_OK;
    case SRC_NPY:
        for (size_t i = 0; i < n; i++) {
            const npy_part *p = part_of(s, rows[i]);
            const uint64_t off = p->data_offset + (uint64_t)(rows[i] - p->first) * p->row_bytes;
            float *dst = x + i * w;
            ae_status st;
            if (p->dtype == AE_NPY_F32) {
                /* little-endian host (fileio.c refuses to build elsewhere) */
                if (pread_all(p->fd, dst, p->row_bytes, off) != 0) return AE_ERR_IO;
                if (!ae__all_finite(dst, w)) return AE_ERR_NUMERIC;
            } else {
                if (pread_all(p->fd, s->scratch, p->row_bytes, off) != 0) return AE_ERR_IO;
                if ((st = npy_row_floats(p, s->scratch, dst, w)) != AE_OK) return st;
            }
        }
        return AE_OK;
    default:
        if (s->fill(s->user, rows, n, x, s->target_size ? y : NULL) != 0) return AE_ERR_IO;
        if (!ae__all_finite(x, n * w) || (s->target_size && !ae__all_finite(y, n * s->target_size)))
            return AE_ERR_NUMERIC;
        return AE_OK;
    }
}

ae_status ae_source_read(const ae_source *s, const size_t *rows, size_t n, float *x,
                         size_t x_len, float *y, size_t y_len)
{
    AE__ENTER();
    ae_status st;
    if (!s || !rows || !x || (s->target_size && !y))
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (x_len / s->row_size < n || (s->target_size && y_len / s->target_size < n))
        return ae__fail(NULL, AE_ERR_SHAPE, "buffers too small for %zu rows", n);
    for (size_t i = 0; i < n; i++)
        if (rows[i] >= s->rows)
            return ae__fail(NULL, AE_ERR_RANGE, "row %zu of a source of %zu rows", rows[i], s->rows);
    st = ae__source_fill(s, rows, n, x, s->target_size ? y : NULL);
    if (st == AE_ERR_NUMERIC) return ae__fail(NULL, st, "the rows contain NaN or infinity");
    if (st != AE_OK) return ae__fail(NULL, st, "reading the rows failed");
    return AE_OK;
}

/* ---- window of blocks (block shuffle) ---------------------------------------------- */

/* Whole blocks of block_rows rows of a .npy source (block b: rows
 * [b * block_rows, (b + 1) * block_rows), cut at the source's end), each
 * row at `stride` bytes (the widest part's row). Blocks are replaced oldest
 * first: the block shuffle draws all rows of a window of `slots` blocks
 * before any of the next window, so a block is never needed again once
 * `slots` newer ones came, and each is read once per epoch. `hinted` is a
 * ring of the blocks last handed to the kernel (ae__source_hint's job at
 * block granularity), so that a block is hinted once. */
typedef struct block_cache {
    size_t block_rows, slot_rows, slots, stride;
    size_t next, last;     /* the slot replaced next; the slot of the last row */
    size_t *ids;           /* block held by each slot, SIZE_MAX: none */
    size_t *hinted;        /* slots entries, SIZE_MAX: none */
    size_t next_hint;
    unsigned char *data;   /* slots * slot_rows * stride bytes */
} block_cache;

static void block_cache_free(block_cache *c)
{
    ae__free(c->ids, c->slots * sizeof *c->ids);
    ae__free(c->hinted, c->slots * sizeof *c->hinted);
    ae__free(c->data, c->slots * c->slot_rows * c->stride);
    memset(c, 0, sizeof *c);
}

/* A window of `window` blocks of block_rows rows of s; AE_ERR_NOMEM when it
 * does not fit in memory (or in size_t). */
static ae_status block_cache_init(block_cache *c, const ae_source *s, size_t block_rows,
                                  size_t window)
{
    const size_t blocks = s->rows / block_rows + (s->rows % block_rows != 0);
    size_t bytes;
    memset(c, 0, sizeof *c);
    c->block_rows = block_rows;
    c->slot_rows = block_rows < s->rows ? block_rows : s->rows;
    c->slots = window < blocks ? window : blocks;
    c->stride = s->scratch_cap;
    if (ae__mul_size(c->slots, c->slot_rows, &bytes) != 0 ||
        ae__mul_size(bytes, c->stride, &bytes) != 0) {
        memset(c, 0, sizeof *c);
        return AE_ERR_NOMEM;
    }
    c->ids = ae__malloc(c->slots * sizeof *c->ids);
    c->hinted = ae__malloc(c->slots * sizeof *c->hinted);
    c->data = ae__malloc(bytes);
    if (!c->ids || !c->hinted || !c->data) {
        block_cache_free(c);
        return AE_ERR_NOMEM;
    }
    for (size_t i = 0; i < c->slots; i++) c->ids[i] = c->hinted[i] = SIZE_MAX;
    return AE_OK;
}

/* Rows [first, end) of block b, cut at the source's end. */
static void block_span(const ae_source *s, const block_cache *c, size_t b, size_t *first,
                       size_t *end)
{
    *first = b * c->block_rows;
    *end = s->rows - *first < c->block_rows ? s->rows : *first + c->block_rows;
}

/* The run of rows from r (before end) that lies in one file part: its part,
 * its length and the file offset of row r. */
static size_t part_segment(const ae_source *s, size_t r, size_t end, const npy_part **part,
                           uint64_t *off)
{
    const npy_part *p = part_of(s, r);
    *part = p;
    *off = p->data_offset + (uint64_t)(r - p->first) * p->row_bytes;
    return (p->first + p->rows < end ? p->first + p->rows : end) - r;
}

/* Reads block b into slot `slot`: one pread per file part it covers. */
static ae_status block_load(const ae_source *s, block_cache *c, size_t slot, size_t b)
{
    unsigned char *base = c->data + slot * c->slot_rows * c->stride;
    size_t first, end;
    block_span(s, c, b, &first, &end);
    c->ids[slot] = SIZE_MAX;
    for (size_t r = first; r < end;) {
        const npy_part *p;
        uint64_t off;
        const size_t seg = part_segment(s, r, end, &p, &off);
        unsigned char *dst = base + (r - first) * c->stride;
        if (pread_all(p->fd, dst, seg * p->row_bytes, off) != 0) return AE_ERR_IO;
        if (p->row_bytes < c->stride) /* narrower rows (uint8 next to float32 parts): spread */
            for (size_t k = seg; k-- > 1;) memmove(dst + k * c->stride, dst + k * p->row_bytes, p->row_bytes);
        r += seg;
    }
    c->ids[slot] = b;
    return AE_OK;
}

/* ae__source_fill of a .npy source through the window of blocks. */
static ae_status block_fill(const ae_source *s, block_cache *c, const size_t *rows, size_t n,
                            float *x)
{
    const size_t w = s->row_size;
    for (size_t i = 0; i < n; i++) {
        const size_t b = rows[i] / c->block_rows;
        size_t slot = c->last;
        ae_status st;
        if (c->ids[slot] != b) {
            for (slot = 0; slot < c->slots && c->ids[slot] != b; slot++) {}
            if (slot == c->slots) {
                slot = c->next;
                c->next = (c->next + 1) % c->slots;
                if ((st = block_load(s, c, slot, b)) != AE_OK) return st;
            }
            c->last = slot;
        }
        st = npy_row_floats(part_of(s, rows[i]),
                            c->data + (slot * c->slot_rows + rows[i] - b * c->block_rows) * c->stride,
                            x + i * w, w);
        if (st != AE_OK) return st;
    }
    return AE_OK;
}

/* ae__source_hint by whole blocks: each block not held and not hinted
 * lately, once. */
static void block_hint(const ae_source *s, block_cache *c, const size_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const size_t b = rows[i] / c->block_rows;
        size_t k, first, end;
        for (k = 0; k < c->slots && c->ids[k] != b && c->hinted[k] != b; k++) {}
        if (k < c->slots) continue;
        c->hinted[c->next_hint] = b;
        c->next_hint = (c->next_hint + 1) % c->slots;
        block_span(s, c, b, &first, &end);
        for (size_t r = first; r < end;) {
            const npy_part *p;
            uint64_t off;
            const size_t seg = part_segment(s, r, end, &p, &off);
            (void)posix_fadvise(p->fd, (off_t)off, (off_t)(seg * p->row_bytes), POSIX_FADV_WILLNEED);
            r += seg;
        }
    }
}

/* ---- background batch filler ------------------------------------------------------ */

struct ae__prefetch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const ae_source *src;
    const size_t *rows, *next;
    size_t n, n_next;
    float *x, *y;
    int pending, done, quit;
    int hint;  /* hint the next rows: the first job, and every job once one was slow */
    int cold;  /* two jobs in a row averaged above SLOW_READ_NS per row */
    int slow;  /* the last job did */
    ae_status status;
    block_cache cache; /* a .npy source under the block shuffle; else slots == 0 */
};

/* Per row, a read from the page cache took 2-7 us here and one from a cold
 * file about 270 us; two jobs in a row above this come from the disk (one
 * alone may be a thread preempted on a busy machine), and hinting the next
 * batches lets the kernel fetch their rows in parallel (tests/bench/
 * bench_source.c ooc --cold). Below it the hints would only add a system
 * call per row. */
#define SLOW_READ_NS 100000.0

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *prefetch_main(void *arg)
{
    ae__prefetch *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        ae_status st;
        while (!p->pending && !p->quit) pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit) break;
        pthread_mutex_unlock(&p->mu);
        {
            double t0;
            if (p->hint && p->n_next) {
                if (p->cache.slots) block_hint(p->src, &p->cache, p->next, p->n_next);
                else ae__source_hint(p->src, p->next, p->n_next);
            }
            t0 = seconds_now();
            st = p->cache.slots ? block_fill(p->src, &p->cache, p->rows, p->n, p->x)
                                : ae__source_fill(p->src, p->rows, p->n, p->x, p->y);
            /* once cold, always: the hints make the reads fast, and a gap
             * in them would leave batches unhinted */
            {
                const int slow = p->n && (seconds_now() - t0) * 1e9 / (double)p->n > SLOW_READ_NS;
                p->cold |= slow && p->slow;
                p->slow = slow;
            }
            p->hint = p->cold;
        }
        pthread_mutex_lock(&p->mu);
        p->status = st;
        p->pending = 0;
        p->done = 1;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ae_status ae__prefetch_start(ae__prefetch **out, const ae_source *src, size_t block_rows,
                             size_t window)
{
    ae__prefetch *p = ae__calloc(1, sizeof *p);
    *out = NULL;
    if (!p) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the batch reader");
    if (block_rows && src->kind == SRC_NPY &&
        block_cache_init(&p->cache, src, block_rows, window) != AE_OK) {
        block_cache_free(&p->cache);
        ae__free(p, sizeof *p);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the batch reader's window of "
                        "%zu blocks of %zu rows", window, block_rows);
    }
    p->src = src;
    p->hint = 1; /* the first window of hints, before any read was timed */
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        block_cache_free(&p->cache);
        ae__free(p, sizeof *p);
        return ae__fail(NULL, AE_ERR_NOMEM, "cannot create the batch reader's lock");
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        block_cache_free(&p->cache);
        ae__free(p, sizeof *p);
        return ae__fail(NULL, AE_ERR_NOMEM, "cannot create the batch reader's condition");
    }
    if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        block_cache_free(&p->cache);
        ae__free(p, sizeof *p);
        return ae__fail(NULL, AE_ERR_NOMEM, "cannot start the batch reader thread");
    }
    *out = p;
    return AE_OK;
}

void ae__prefetch_submit(ae__prefetch *p, const size_t *rows, size_t n, float *x, float *y,
                         const size_t *next, size_t n_next)
{
    pthread_mutex_lock(&p->mu);
    p->rows = rows;
    p->n = n;
    p->next = next;
    p->n_next = n_next;
    p->x = x;
    p->y = y;
    p->done = 0;
    p->pending = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

ae_status ae__prefetch_wait(ae__prefetch *p)
{
    ae_status st;
    pthread_mutex_lock(&p->mu);
    while (p->pending) pthread_cond_wait(&p->cv, &p->mu);
    st = p->done ? p->status : AE_OK;
    p->done = 0;
    pthread_mutex_unlock(&p->mu);
    return st;
}

void ae__prefetch_stop(ae__prefetch *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    while (p->pending) pthread_cond_wait(&p->cv, &p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    block_cache_free(&p->cache);
    ae__free(p, sizeof *p);
}
