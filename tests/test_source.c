/* Data sources: every built-in source trains to exactly the weights of
 * ae_train_fit on the same rows (float32 in memory, uint8 scaled by 1/255 in
 * memory and from .npy files, one or several, and through the background
 * batch reader), an explicit validation source equals the validation split,
 * custom sources with targets, failures of a source, a source run
 * continued through a training state, and the block shuffle's order and
 * its whole-block reads of .npy files. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn.h"
#include "test_support.h"

#define N 230
#define W 24

static ae_model *model(size_t in, size_t out, uint64_t seed)
{
    ae_builder *b;
    ae_model *m;
    size_t dims[1];
    dims[0] = in;
    assert_int_equal(ae_builder_create(&b, 1, dims), AE_OK);
    assert_int_equal(ae_builder_dense(b, 8, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, out, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, seed), AE_OK);
    ae_builder_free(b);
    return m;
}

static ae_train_config *config(double split)
{
    ae_train_config *c;
    assert_int_equal(ae_train_config_create(&c), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 3), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 16), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, 5), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, split), AE_OK);
    return c;
}

/* the block shuffle of the tests (AE_TRAIN_SHUFFLE_BLOCK) */
#define BLOCK 7  /* rows per block: 184 training rows = 26 blocks and one of 2 rows */
#define WINDOW 3 /* blocks per window */

static void set_block_shuffle(ae_train_config *c, int64_t block, int64_t window)
{
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_BLOCK, block), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_WINDOW, window), AE_OK);
}

/* ae_train_fit on x (and y) from a fresh model: the reference weights. */
static ae_model *reference(const ae_train_config *c, const float *x, const float *y, size_t out)
{
    ae_model *m = model(W, out, 9);
    assert_int_equal(ae_train_fit(m, c, x, y, N, NULL), AE_OK);
    return m;
}

/* ae_train_fit_source from a fresh model must give ref's weights. */
static void expect_same(const ae_model *ref, const ae_train_config *c, const ae_source *train,
                        const ae_source *val)
{
    ae_model *m = model(W, ae_model_output_size(ref), 9);
    assert_int_equal(ae_train_fit_source(m, c, NULL, train, val, NULL), AE_OK);
    assert_memory_equal(m->params, ref->params, m->n_params * sizeof(float));
    ae_model_free(m);
}

static float *scaled(const uint8_t *u, size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)u[i] * AE_NPY_U8_UNIT;
    return x;
}

/* u's N rows as two uint8 .npy files named a and b, the first 100 rows
 * (shape (100, W)) then the rest (rank2 dims d2), their paths left in paths;
 * the files opened as one source. */
static ae_source *open_split_u8(const char *paths[2], const char *a, const char *b,
                                const uint8_t *u, size_t rank2, const size_t *d2)
{
    const size_t d1[2] = {100, W};
    ae_source *s;
    paths[0] = ae_test_path(a);
    paths[1] = ae_test_path(b);
    assert_int_equal(ae_test_write_npy_u8(paths[0], 2, d1, u), 0);
    assert_int_equal(ae_test_write_npy_u8(paths[1], rank2, d2, u + 100 * W), 0);
    assert_int_equal(ae_source_open_npy(&s, paths, 2), AE_OK);
    return s;
}

static void test_builtin_sources_match_fit(void **unused)
{
    uint8_t *u = ae_test_bytes(N * W, 1);
    float *x = scaled(u, N * W);
    ae_train_config *c = config(0.2);
    ae_model *ref = reference(c, x, NULL, W);
    ae_source *s;
    const char *paths[2];
    size_t d2[3] = {N - 100, 4, W / 4};
    (void)unused;
    /* float32 in memory: the gathering path of ae_train_fit itself */
    assert_int_equal(ae_source_from_floats(&s, x, NULL, N, W, 0), AE_OK);
    assert_int_equal(ae_source_rows(s), N);
    assert_int_equal(ae_source_row_size(s), W);
    assert_int_equal(ae_source_target_size(s), 0);
    expect_same(ref, c, s, NULL);
    ae_source_free(s);
    /* uint8 in memory, scaled on the fly, read by the background thread */
    assert_int_equal(ae_source_from_u8(&s, u, N, W), AE_OK);
    expect_same(ref, c, s, NULL);
    ae_source_free(s);
    /* the same bytes as two uint8 .npy files of different shapes */
    s = open_split_u8(paths, "a.npy", "b.npy", u, 3, d2);
    assert_int_equal(ae_source_rows(s), N);
    assert_int_equal(ae_source_row_size(s), W);
    expect_same(ref, c, s, NULL);
    ae_source_free(s);
    /* float32 .npy */
    {
        size_t d[2] = {N, W};
        assert_int_equal(ae_npy_save_f32(paths[0], x, 2, d), AE_OK);
        assert_int_equal(ae_source_open_npy(&s, paths, 1), AE_OK);
        expect_same(ref, c, s, NULL);
        ae_source_free(s);
    }
    ae_model_free(ref);
    ae_train_config_free(c);
    free(x);
    free(u);
}

/* Training rows and validation rows as two sources == the split; this goes
 * through the background reader for in-memory floats too. */
static void test_validation_source(void **unused)
{
    float *x = ae_test_rows(N, W, 2);
    ae_train_config *c = config(0.2), *c0 = config(0);
    ae_model *ref = reference(c, x, NULL, W);
    const size_t n_train = (size_t)floor(N * 0.8);
    ae_source *t, *v;
    ae_history *h;
    double vl;
    (void)unused;
    assert_int_equal(ae_source_from_floats(&t, x, NULL, n_train, W, 0), AE_OK);
    assert_int_equal(ae_source_from_floats(&v, x + n_train * W, NULL, N - n_train, W, 0), AE_OK);
    expect_same(ref, c0, t, v);
    /* a split beside a validation source is refused */
    assert_int_equal(ae_train_fit_source(ref, c, NULL, t, v, NULL), AE_ERR_INVALID_ARG);
    /* the history's validation loss is that of the validation rows */
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_config_set_int(c0, AE_TRAIN_EPOCHS, 1), AE_OK);
    assert_int_equal(ae_train_fit_source(ref, c0, NULL, t, v, h), AE_OK);
    assert_int_equal(ae_history_get(&vl, h, 0, AE_HIST_VAL_LOSS), AE_OK);
    {
        double want;
        assert_int_equal(ae_model_evaluate(&want, ref, AE_LOSS_BCE, x + n_train * W, NULL,
                                           N - n_train), AE_OK);
        if (!(fabs(vl - want) <= 1e-9 * fabs(want))) fail_msg("val loss %.17g, evaluate %.17g", vl, want);
    }
    ae_history_free(h);
    ae_source_free(t);
    ae_source_free(v);
    ae_model_free(ref);
    ae_train_config_free(c);
    ae_train_config_free(c0);
    free(x);
}

/* ---- custom sources ------------------------------------------------------------------ */
typedef struct custom {
    const float *x, *y;
    size_t calls;
    int fail_at, nan_at; /* fail / write a NaN at this call (0: never) */
    int closed;
} custom;

static int custom_fill(void *user, const size_t *rows, size_t n, float *x, float *y)
{
    custom *c = user;
    c->calls++;
    for (size_t i = 0; i < n; i++) {
        memcpy(x + i * W, c->x + rows[i] * W, W * sizeof(float));
        memcpy(y + i * 4, c->y + rows[i] * 4, 4 * sizeof(float));
    }
    if (c->nan_at && (int)c->calls == c->nan_at) x[0] = NAN;
    return c->fail_at && (int)c->calls == c->fail_at;
}

static void custom_close(void *user) { ((custom *)user)->closed++; }

static void test_custom_source_with_targets(void **unused)
{
    float *x = ae_test_rows(N, W, 3), *y = ae_test_rows(N, 4, 4);
    ae_train_config *c = config(0.25);
    ae_model *ref = reference(c, x, y, 4), *m = model(W, 4, 9);
    custom cu = {x, y, 0, 0, 0, 0};
    ae_source *s;
    float buf[2 * W], ybuf[2 * 4];
    size_t rows[2] = {3, N - 1};
    (void)unused;
    assert_int_equal(ae_source_create(&s, N, W, 4, custom_fill, custom_close, &cu), AE_OK);
    expect_same(ref, c, s, NULL);
    assert_true(cu.calls > 0);
    /* a row read by hand */
    assert_int_equal(ae_source_read(s, rows, 2, buf, 2 * W, ybuf, 8), AE_OK);
    assert_memory_equal(buf + W, x + (N - 1) * W, W * sizeof(float));
    assert_memory_equal(ybuf, y + 3 * 4, 4 * sizeof(float));
    rows[1] = N;
    assert_int_equal(ae_source_read(s, rows, 2, buf, 2 * W, ybuf, 8), AE_ERR_RANGE);
    assert_int_equal(ae_source_read(s, rows, 2, buf, W, ybuf, 8), AE_ERR_SHAPE);
    /* failures: a read error, a NaN, a model of the wrong shape */
    cu.calls = 0;
    cu.fail_at = 4;
    assert_int_equal(ae_train_fit_source(m, c, NULL, s, NULL, NULL), AE_ERR_IO);
    assert_non_null(strstr(ae_last_error(), "ae_train_fit_source: reading the training source"));
    cu.calls = 0;
    cu.fail_at = 0;
    cu.nan_at = 2;
    assert_int_equal(ae_train_fit_source(m, c, NULL, s, NULL, NULL), AE_ERR_NUMERIC);
    ae_model_free(m);
    m = model(W, W, 9);
    assert_int_equal(ae_train_fit_source(m, c, NULL, s, NULL, NULL), AE_ERR_SHAPE);
    ae_source_free(s);
    assert_int_equal(cu.closed, 1);
    ae_model_free(m);
    ae_model_free(ref);
    ae_train_config_free(c);
    free(x);
    free(y);
}

/* With a training state: two calls equal one, and checkpoints resume. */
static void test_source_with_state(void **unused)
{
    uint8_t *u = ae_test_bytes(N * W, 5);
    ae_train_config *c = config(0.2);
    ae_model *a = model(W, W, 9), *b = model(W, W, 9);
    ae_train_state *sa, *sb;
    ae_source *s;
    (void)unused;
    assert_int_equal(ae_source_from_u8(&s, u, N, W), AE_OK);
    assert_int_equal(ae_train_state_create(&sa), AE_OK);
    assert_int_equal(ae_train_state_create(&sb), AE_OK);
    assert_int_equal(ae_train_fit_source(a, c, sa, s, NULL, NULL), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 1), AE_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ae_train_fit_source(b, c, sb, s, NULL, NULL), AE_OK);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_int_equal(ae_train_state_epoch(sb), 3);
    ae_train_state_free(sa);
    ae_train_state_free(sb);
    ae_source_free(s);
    ae_model_free(a);
    ae_model_free(b);
    ae_train_config_free(c);
    free(u);
}

static int stop_mid_epoch(ae_train_event ev, size_t epoch, size_t step, size_t steps,
                          double loss, const ae_model *m, const ae_history *h, void *user)
{
    (void)steps; (void)loss; (void)m; (void)h; (void)user;
    return ev == AE_EVENT_BATCH_END && epoch == 1 && step == 3;
}

/* A .npy source run stopped mid-epoch, checkpointed, loaded and finished
 * equals the run never stopped: the background reader restarts at the
 * checkpoint's step. With the row shuffle and with the block shuffle. */
static void checkpoint_resume(int64_t block, int64_t window)
{
    uint8_t *u = ae_test_bytes(N * W, 7);
    ae_train_config *c = config(0.2);
    ae_model *ref = model(W, W, 9), *m = model(W, W, 9), *m2 = NULL;
    ae_train_state *sr, *s, *s2 = NULL;
    ae_source *src;
    const char *path = ae_test_path("src.npy"), *ckpt = ae_test_path("src.aeckpt");
    size_t dims[2] = {N, W};
    set_block_shuffle(c, block, window);
    assert_int_equal(ae_test_write_npy_u8(path, 2, dims, u), 0);
    assert_int_equal(ae_source_open_npy(&src, &path, 1), AE_OK);
    assert_int_equal(ae_train_state_create(&sr), AE_OK);
    assert_int_equal(ae_train_fit_source(ref, c, sr, src, NULL, NULL), AE_OK);
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_config_set_callback(c, stop_mid_epoch, NULL), AE_OK);
    assert_int_equal(ae_train_fit_source(m, c, s, src, NULL, NULL), AE_STOPPED);
    assert_int_equal(ae_train_state_save(s, m, ckpt), AE_OK);
    assert_int_equal(ae_train_state_load(&s2, &m2, ckpt), AE_OK);
    assert_int_equal(ae_train_state_step(s2), 3);
    assert_int_equal(ae_train_config_set_callback(c, NULL, NULL), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 2), AE_OK);
    /* the loaded state knows its run's shuffle: another one is refused */
    set_block_shuffle(c, block ? 0 : BLOCK, window);
    assert_int_equal(ae_train_fit_source(m2, c, s2, src, NULL, NULL), AE_ERR_STATE);
    if (block) {
        set_block_shuffle(c, block, window + 1);
        assert_int_equal(ae_train_fit_source(m2, c, s2, src, NULL, NULL), AE_ERR_STATE);
    }
    set_block_shuffle(c, block, window);
    assert_int_equal(ae_train_fit_source(m2, c, s2, src, NULL, NULL), AE_OK);
    assert_memory_equal(m2->params, ref->params, ref->n_params * sizeof(float));
    ae_train_state_free(sr);
    ae_train_state_free(s);
    ae_train_state_free(s2);
    ae_source_free(src);
    ae_model_free(ref);
    ae_model_free(m);
    ae_model_free(m2);
    ae_train_config_free(c);
    free(u);
}

/* ---- block shuffle (AE_TRAIN_SHUFFLE_BLOCK) ------------------------------------- */

/* Every row number a custom source is asked for, in order. */
typedef struct row_log {
    size_t *rows, n, cap;
} row_log;

static int logging_fill(void *user, const size_t *rows, size_t n, float *x, float *y)
{
    row_log *l = user;
    (void)y;
    for (size_t i = 0; i < n; i++) {
        if (l->n < l->cap) l->rows[l->n++] = rows[i];
        for (size_t k = 0; k < W; k++) x[i * W + k] = (float)((rows[i] + k) % 5) * 0.2f;
    }
    return 0;
}

/* The rows of one training epoch, order[0..n): every row exactly once, and
 * the rows of each window of WINDOW blocks (in the order's sequence of
 * windows) make up exactly WINDOW whole blocks, the last window what is
 * left. Returns how many rows sit at their own position. */
static size_t check_block_order(const size_t *order, size_t n)
{
    const size_t blocks = (n + BLOCK - 1) / BLOCK;
    size_t *count = calloc(blocks, sizeof *count), pos = 0, left = blocks, in_place = 0;
    while (pos < n) {
        const size_t want = left < WINDOW ? left : WINDOW;
        size_t distinct = 0, owed = 0; /* rows of the window's blocks not seen yet */
        do {
            const size_t b = order[pos] / BLOCK;
            const size_t size = b == blocks - 1 ? n - b * BLOCK : BLOCK;
            assert_true(order[pos] < n);
            in_place += order[pos] == pos;
            pos++;
            if (count[b]++ == 0) {
                distinct++;
                owed += size;
                assert_true(distinct <= want); /* a row from another window's block */
            }
            assert_true(count[b] <= size); /* a block's row twice, or in two windows */
            owed--;
        } while (distinct < want || owed > 0);
        left -= want;
    }
    assert_int_equal(left, 0);
    free(count);
    return in_place;
}

/* The order a fit asks a source for: a permutation of the training rows
 * with the documented block and window structure, a new one every epoch,
 * the same for the same seed; the validation rows stay the last ones, in
 * order, after each epoch's training rows. */
static void test_block_shuffle_order(void **unused)
{
    const size_t n_train = 184, n_val = N - n_train, epochs = 3;
    row_log log[2];
    ae_train_config *c = config(0.2);
    (void)unused;
    set_block_shuffle(c, BLOCK, WINDOW);
    for (int run = 0; run < 2; run++) {
        ae_source *s;
        ae_model *m = model(W, W, 9);
        log[run].cap = epochs * N;
        log[run].n = 0;
        log[run].rows = malloc(log[run].cap * sizeof(size_t));
        assert_int_equal(ae_source_create(&s, N, W, 0, logging_fill, NULL, &log[run]), AE_OK);
        assert_int_equal(ae_train_fit_source(m, c, NULL, s, NULL, NULL), AE_OK);
        assert_int_equal(log[run].n, epochs * N);
        ae_source_free(s);
        ae_model_free(m);
    }
    assert_memory_equal(log[0].rows, log[1].rows, epochs * N * sizeof(size_t));
    for (size_t e = 0; e < epochs; e++) {
        const size_t *order = log[0].rows + e * N;
        /* shuffled inside the windows: few rows keep their place */
        assert_true(check_block_order(order, n_train) < n_train / 4);
        for (size_t i = 0; i < n_val; i++) assert_int_equal(order[n_train + i], n_train + i);
        if (e) assert_memory_not_equal(order, order - N, n_train * sizeof(size_t));
    }
    /* a window of every block shuffles all rows together: still whole blocks */
    set_block_shuffle(c, BLOCK, 1000);
    {
        ae_source *s;
        ae_model *m = model(W, W, 9);
        size_t *order;
        log[0].n = 0;
        assert_int_equal(ae_source_create(&s, N, W, 0, logging_fill, NULL, &log[0]), AE_OK);
        assert_int_equal(ae_train_fit_source(m, c, NULL, s, NULL, NULL), AE_OK);
        order = malloc(n_train * sizeof *order);
        memcpy(order, log[0].rows, n_train * sizeof *order);
        for (size_t i = 0; i < n_train; i++) { /* a permutation */
            size_t j = order[i];
            assert_true(j < n_train);
            while (order[j] != j) {
                size_t t = order[j];
                order[j] = j;
                j = t;
                assert_true(j < n_train);
            }
        }
        free(order);
        ae_source_free(s);
        ae_model_free(m);
    }
    free(log[0].rows);
    free(log[1].rows);
    ae_train_config_free(c);
}

/* The block shuffle is a property of the fit, not of the source: floats
 * through ae_train_fit, uint8 in memory and .npy files read by whole blocks
 * (two uint8 files cut inside a block; a uint8 file next to a float32 one,
 * whose rows are four times wider) train to the same weights, which are not
 * those of the row shuffle. */
static void test_block_shuffle_sources_match(void **unused)
{
    uint8_t *u = ae_test_bytes(N * W, 8);
    float *x = scaled(u, N * W);
    ae_train_config *c = config(0.2);
    ae_model *rows_ref = reference(c, x, NULL, W), *ref;
    ae_source *s;
    const char *paths[2];
    size_t d2[2] = {N - 100, W};
    (void)unused;
    set_block_shuffle(c, BLOCK, WINDOW);
    ref = reference(c, x, NULL, W);
    assert_memory_not_equal(ref->params, rows_ref->params, ref->n_params * sizeof(float));
    assert_int_equal(ae_source_from_u8(&s, u, N, W), AE_OK);
    expect_same(ref, c, s, NULL);
    ae_source_free(s);
    s = open_split_u8(paths, "blk_a.npy", "blk_b.npy", u, 2, d2);
    expect_same(ref, c, s, NULL);
    ae_source_free(s);
    assert_int_equal(ae_npy_save_f32(paths[1], x + 100 * W, 2, d2), AE_OK);
    assert_int_equal(ae_source_open_npy(&s, paths, 2), AE_OK);
    expect_same(ref, c, s, NULL);
    /* blocks larger than the source: one block, one window */
    set_block_shuffle(c, 1000, 1);
    ae_model_free(ref);
    ref = reference(c, x, NULL, W);
    expect_same(ref, c, s, NULL);
    ae_source_free(s);
    ae_model_free(ref);
    ae_model_free(rows_ref);
    ae_train_config_free(c);
    free(x);
    free(u);
}

static void test_source_checkpoint_resume(void **unused)
{
    (void)unused;
    checkpoint_resume(0, 8);
    checkpoint_resume(BLOCK, WINDOW);
}

static void test_npy_errors(void **unused)
{
    uint8_t *u = ae_test_bytes(10 * W, 6);
    ae_source *s = (ae_source *)1;
    const char *paths[2];
    size_t d1[2] = {10, W}, d2[2] = {5, W * 2};
    (void)unused;
    paths[0] = ae_test_path("e1.npy");
    paths[1] = ae_test_path("e2.npy");
    assert_int_equal(ae_test_write_npy_u8(paths[0], 2, d1, u), 0);
    assert_int_equal(ae_test_write_npy_u8(paths[1], 2, d2, u), 0);
    assert_int_equal(ae_source_open_npy(&s, paths, 2), AE_ERR_SHAPE);
    assert_null(s);
    paths[1] = ae_test_path("missing.npy");
    assert_int_equal(ae_source_open_npy(&s, paths, 2), AE_ERR_IO);
    assert_int_equal(ae_test_write_file(paths[1], "not npy", 7), 0);
    assert_int_equal(ae_source_open_npy(&s, paths, 2), AE_ERR_FORMAT);
    assert_int_equal(ae_source_open_npy(&s, paths, 0), AE_ERR_INVALID_ARG);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_sources_match_fit),
        cmocka_unit_test(test_validation_source),
        cmocka_unit_test(test_custom_source_with_targets),
        cmocka_unit_test(test_source_with_state),
        cmocka_unit_test(test_source_checkpoint_resume),
        cmocka_unit_test(test_block_shuffle_order),
        cmocka_unit_test(test_block_shuffle_sources_match),
        cmocka_unit_test(test_npy_errors),
    };
    return cmocka_run_group_tests(tests, ae_test_group_setup, ae_test_group_teardown);
}
