/* Training states: a run continued over several fits equals one fit, a
 * checkpoint (saved mid-epoch or at an epoch end) resumes to bit-identical
 * weights, checkpoint files follow docs/formats.md (read here with the
 * documented offsets only) and their loader refuses damaged files, and the
 * reduction hooks see the whole gradient and the epoch statistics. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "train_state.h"
#include "test_support.h"

static const size_t N_ROWS = 240, WIDTH = 16;

static ae_model *small_model(uint64_t seed)
{
    ae_builder *b;
    ae_model *m;
    size_t in[1] = {WIDTH};
    assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(b, 8, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, WIDTH, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, seed), AE_OK);
    ae_builder_free(b);
    return m;
}

/* 2 threads, a validation split and early stopping that never triggers, so
 * every piece of the state is in use. */
static ae_train_config *config(int epochs)
{
    ae_train_config *c;
    assert_int_equal(ae_train_config_create(&c), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, epochs), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 16), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, 7), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_PATIENCE, 100), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0.2), AE_OK);
    return c;
}

static void assert_same_weights(const ae_model *a, const ae_model *b)
{
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
}

/* One 3-epoch fit == three 1-epoch fits == 1 + 2, with the same state. */
static void test_calls_continue_one_run(void **unused)
{
    float *x = ae_test_rows(N_ROWS, WIDTH, 1);
    ae_model *a = small_model(3), *b = small_model(3), *d = small_model(3);
    ae_train_config *c3 = config(3), *c1 = config(1), *c2 = config(2);
    ae_train_state *sa, *sb, *sd;
    ae_history *h;
    (void)unused;
    assert_int_equal(ae_history_create(&h), AE_OK);
    assert_int_equal(ae_train_state_create(&sa), AE_OK);
    assert_int_equal(ae_train_state_create(&sb), AE_OK);
    assert_int_equal(ae_train_state_create(&sd), AE_OK);
    assert_int_equal(ae_train_fit_state(a, c3, sa, x, NULL, N_ROWS, NULL), AE_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ae_train_fit_state(b, c1, sb, x, NULL, N_ROWS, h), AE_OK);
        assert_int_equal(ae_history_epochs(h), 1);
        assert_int_equal(ae_train_state_epoch(sb), (size_t)i + 1);
    }
    assert_int_equal(ae_train_fit_state(d, c1, sd, x, NULL, N_ROWS, NULL), AE_OK);
    assert_int_equal(ae_train_fit_state(d, c2, sd, x, NULL, N_ROWS, NULL), AE_OK);
    assert_same_weights(a, b);
    assert_same_weights(a, d);
    assert_int_equal(ae_train_state_epoch(sa), 3);
    assert_int_equal(ae_train_state_step(sa), 0);
    /* without a state, two calls restart the optimiser and differ */
    ae_model_free(b);
    b = small_model(3);
    assert_int_equal(ae_train_fit(b, c2, x, NULL, N_ROWS, NULL), AE_OK);
    assert_int_equal(ae_train_fit(b, c1, x, NULL, N_ROWS, NULL), AE_OK);
    assert_memory_not_equal(a->params, b->params, a->n_params * sizeof(float));
    ae_train_state_free(sa);
    ae_train_state_free(sb);
    ae_train_state_free(sd);
    ae_history_free(h);
    ae_model_free(a);
    ae_model_free(b);
    ae_model_free(d);
    ae_train_config_free(c1);
    ae_train_config_free(c2);
    ae_train_config_free(c3);
    free(x);
}

/* The first epoch of a fresh state is ae_train_fit's first epoch. */
static void test_first_epoch_matches_fit(void **unused)
{
    float *x = ae_test_rows(N_ROWS, WIDTH, 2);
    ae_model *a = small_model(4), *b = small_model(4);
    ae_train_config *c = config(1);
    ae_train_state *s;
    (void)unused;
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_fit(a, c, x, NULL, N_ROWS, NULL), AE_OK);
    assert_int_equal(ae_train_fit_state(b, c, s, x, NULL, N_ROWS, NULL), AE_OK);
    assert_same_weights(a, b);
    ae_train_state_free(s);
    ae_model_free(a);
    ae_model_free(b);
    ae_train_config_free(c);
    free(x);
}

static int stop_at(ae_train_event ev, size_t epoch, size_t step, size_t steps, double loss,
                   const ae_model *m, const ae_history *h, void *user)
{
    const size_t *at = user; /* {epoch, step} */
    (void)steps; (void)loss; (void)m; (void)h;
    return ev == AE_EVENT_BATCH_END && epoch == at[0] && step == at[1];
}

/* Stop mid-epoch, save, load into a new model and state, finish: the same
 * weights as a run never stopped; the automatic checkpoints of
 * AE_TRAIN_CHECKPOINT_STEPS resume alike. */
static void test_checkpoint_resumes_exactly(void **unused)
{
    float *x = ae_test_rows(N_ROWS, WIDTH, 3);
    ae_model *ref = small_model(5), *m = small_model(5), *m2 = NULL;
    ae_train_config *c = config(3);
    ae_train_state *s, *s2 = NULL;
    size_t at[2] = {1, 5};
    const char *ckpt = ae_test_path("run.aeckpt"), *auto_ckpt = ae_test_path("auto.aeckpt");
    (void)unused;
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_state_save(s, m, ckpt), AE_ERR_STATE); /* not bound yet */
    {
        ae_train_state *sr;
        assert_int_equal(ae_train_state_create(&sr), AE_OK);
        assert_int_equal(ae_train_fit_state(ref, c, sr, x, NULL, N_ROWS, NULL), AE_OK);
        ae_train_state_free(sr);
    }
    assert_int_equal(ae_train_config_set_callback(c, stop_at, at), AE_OK);
    assert_int_equal(ae_train_fit_state(m, c, s, x, NULL, N_ROWS, NULL), AE_STOPPED);
    assert_int_equal(ae_train_state_epoch(s), 1);
    assert_int_equal(ae_train_state_step(s), 5);
    assert_int_equal(ae_train_state_save(s, m, ckpt), AE_OK);
    ae_train_state_free(s);
    ae_model_free(m);
    assert_int_equal(ae_train_state_load(&s2, &m2, ckpt), AE_OK);
    assert_int_equal(ae_train_state_epoch(s2), 1);
    assert_int_equal(ae_train_state_step(s2), 5);
    assert_int_equal(ae_train_config_set_callback(c, NULL, NULL), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 2), AE_OK);
    assert_int_equal(ae_train_fit_state(m2, c, s2, x, NULL, N_ROWS, NULL), AE_OK);
    assert_same_weights(ref, m2);
    ae_train_state_free(s2);
    ae_model_free(m2);

    /* a checkpoint every 4 steps: stop after step 7 of epoch 2 (the last
     * checkpoint is then from the run's step 12 + 12 + 4 = 28, epoch 2 step 4) */
    m = small_model(5);
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_state_set_checkpoint(s, auto_ckpt), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_CHECKPOINT_STEPS, 4), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 3), AE_OK);
    at[0] = 2;
    at[1] = 7;
    assert_int_equal(ae_train_config_set_callback(c, stop_at, at), AE_OK);
    assert_int_equal(ae_train_fit_state(m, c, s, x, NULL, N_ROWS, NULL), AE_STOPPED);
    ae_train_state_free(s);
    ae_model_free(m);
    assert_int_equal(ae_train_state_load(&s2, &m2, auto_ckpt), AE_OK);
    assert_int_equal(ae_train_state_epoch(s2), 2);
    assert_int_equal(ae_train_state_step(s2), 4);
    assert_int_equal(ae_train_config_set_callback(c, NULL, NULL), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 1), AE_OK);
    assert_int_equal(ae_train_fit_state(m2, c, s2, x, NULL, N_ROWS, NULL), AE_OK);
    assert_same_weights(ref, m2);
    /* another run's settings are refused */
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 8), AE_OK);
    assert_int_equal(ae_train_fit_state(m2, c, s2, x, NULL, N_ROWS, NULL), AE_ERR_STATE);
    assert_non_null(strstr(ae_last_error(), "AE_TRAIN_BATCH_SIZE"));
    ae_train_state_free(s2);
    ae_model_free(m2);
    ae_model_free(ref);
    ae_train_config_free(c);
    free(x);
}

/* ---- the file format, read with docs/formats.md's offsets only ------------------- */

static uint32_t u32_at(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t u64_at(const unsigned char *p) { return (uint64_t)u32_at(p) | (uint64_t)u32_at(p + 4) << 32; }
static double f64_at(const unsigned char *p)
{
    uint64_t u = u64_at(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void test_format_independent_reader(void **unused)
{
    float *x = ae_test_rows(N_ROWS, WIDTH, 4);
    ae_model *m = small_model(6), *embedded = NULL;
    ae_train_config *c = config(2);
    ae_train_state *s;
    const char *path = ae_test_path("fmt.aeckpt"), *mpath = ae_test_path("fmt.aemodel");
    unsigned char *f, *crc_copy;
    size_t len, P, B;
    uint64_t M;
    (void)unused;
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_fit_state(m, c, s, x, NULL, N_ROWS, NULL), AE_OK);
    assert_int_equal(ae_train_state_save(s, m, path), AE_OK);
    f = ae_test_read_file(path, &len);
    assert_non_null(f);
    P = m->n_params;
    assert_memory_equal(f, "AECKPT\0\0", 8);
    assert_int_equal(u32_at(f + 8), AE_CHECKPOINT_FORMAT_VERSION);
    assert_int_equal(u32_at(f + 12), 0);
    M = u64_at(f + 16);
    /* the embedded model is a model file: the same bytes ae_model_save writes */
    assert_int_equal(ae_model_save(m, mpath), AE_OK);
    assert_int_equal(ae_test_file_size(mpath), (long)M);
    {
        size_t mlen;
        unsigned char *mf = ae_test_read_file(mpath, &mlen);
        assert_memory_equal(mf, f + 24, mlen);
        free(mf);
    }
    assert_int_equal(ae_model_load(&embedded, mpath), AE_OK);
    B = 24 + (size_t)M;
    assert_int_equal(u32_at(f + B), AE_OPT_NADAM);
    assert_int_equal(u32_at(f + B + 4), 1);           /* shuffle */
    assert_int_equal(u64_at(f + B + 8), 7);           /* seed */
    assert_int_equal(u64_at(f + B + 16), 16);         /* batch */
    assert_int_equal(u64_at(f + B + 24), 192);        /* training rows: 240 - 48 */
    assert_int_equal(u64_at(f + B + 32), 48);
    assert_int_equal(u64_at(f + B + 40), P);
    assert_int_equal(u64_at(f + B + 48), 2);          /* epochs done */
    assert_int_equal(u64_at(f + B + 56), 0);          /* step */
    assert_true(f64_at(f + B + 64) == 0.0);
    assert_int_equal(u64_at(f + B + 104), 24);        /* optimiser steps: 2 x 12 */
    assert_true(f64_at(f + B + 112) > 0 && f64_at(f + B + 112) < 1);
    assert_int_equal(u32_at(f + B + 120), 1);         /* has best */
    assert_int_equal(u32_at(f + B + 124), 0);         /* statistics: no batch norm */
    assert_int_equal(u64_at(f + B + 128), 0);         /* wait: the last epoch was the best */
    assert_true(isfinite(f64_at(f + B + 136)));
    assert_int_equal(len, B + 144 + 12 * P + 4);
    /* the best weights (the last epoch's) are the model's */
    assert_memory_equal(f + B + 144 + 8 * P, m->params, 4 * P);
    assert_memory_equal(f + B + 144, s->opt.m, 4 * P);
    crc_copy = malloc(len);
    memcpy(crc_copy, f, len);
    ae_test_fix_crc32(crc_copy, len);
    assert_memory_equal(crc_copy, f, len);
    free(crc_copy);
    free(f);
    ae_model_free(embedded);
    ae_train_state_free(s);
    ae_model_free(m);
    ae_train_config_free(c);
    free(x);
}

static ae_status load_status(const char *path)
{
    ae_train_state *s = (ae_train_state *)1;
    ae_model *m = (ae_model *)1;
    ae_status st = ae_train_state_load(&s, &m, path);
    if (st != AE_OK) {
        assert_null(s);
        assert_null(m);
    }
    ae_train_state_free(s);
    ae_model_free(m);
    return st;
}

/* A block-shuffled run's checkpoint: flag 1, the block size and the window
 * after the state record, the arrays 16 bytes later; a run without the block
 * shuffle keeps flags 0 (test_format_independent_reader). The loader refuses
 * other flags and block fields outside the keys' bounds. */
static void test_format_block_shuffle(void **unused)
{
    float *x = ae_test_rows(N_ROWS, WIDTH, 4);
    ae_model *m = small_model(6);
    ae_train_config *c = config(2);
    ae_train_state *s;
    const char *path = ae_test_path("blk.aeckpt"), *bad = ae_test_path("blk_bad.aeckpt");
    unsigned char *f;
    size_t len, P, B;
    (void)unused;
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_BLOCK, 10), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_WINDOW, 4), AE_OK);
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_fit_state(m, c, s, x, NULL, N_ROWS, NULL), AE_OK);
    assert_int_equal(ae_train_state_save(s, m, path), AE_OK);
    f = ae_test_read_file(path, &len);
    assert_non_null(f);
    P = m->n_params;
    assert_int_equal(u32_at(f + 8), AE_CHECKPOINT_FORMAT_VERSION);
    assert_int_equal(u32_at(f + 12), 1);
    B = 24 + (size_t)u64_at(f + 16);
    assert_int_equal(u32_at(f + B + 4), 1);   /* shuffle */
    assert_int_equal(u64_at(f + B + 144), 10); /* block */
    assert_int_equal(u64_at(f + B + 152), 4);  /* window */
    assert_int_equal(u32_at(f + B + 120), 1);  /* has best */
    assert_int_equal(len, B + 160 + 12 * P + 4);
    assert_memory_equal(f + B + 160, s->opt.m, 4 * P);
    assert_memory_equal(f + B + 160 + 8 * P, m->params, 4 * P);
    assert_int_equal(load_status(path), AE_OK);
    /* window 0; block above 2^30; flag 2 (each with the CRC fixed) */
    f[B + 152] = 0;
    ae_test_fix_crc32(f, len);
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    assert_int_equal(load_status(bad), AE_ERR_FORMAT);
    f[B + 152] = 4;
    f[B + 144 + 4] = 0x40;
    ae_test_fix_crc32(f, len);
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    assert_int_equal(load_status(bad), AE_ERR_FORMAT);
    f[B + 144 + 4] = 0;
    f[12] = 3;
    ae_test_fix_crc32(f, len);
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    assert_int_equal(load_status(bad), AE_ERR_FORMAT);
    f[12] = 1;
    ae_test_fix_crc32(f, len);
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    assert_int_equal(load_status(bad), AE_OK);
    free(f);
    ae_train_state_free(s);
    ae_model_free(m);
    ae_train_config_free(c);
    free(x);
}

static void test_loader_refuses_damage(void **unused)
{
    float *x = ae_test_rows(N_ROWS, WIDTH, 5);
    ae_model *m = small_model(7);
    ae_train_config *c = config(1);
    ae_train_state *s;
    const char *good = ae_test_path("good.aeckpt"), *bad = ae_test_path("bad.aeckpt");
    unsigned char *f;
    size_t len;
    uint32_t v;
    (void)unused;
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_fit_state(m, c, s, x, NULL, N_ROWS, NULL), AE_OK);
    assert_int_equal(ae_train_state_save(s, m, good), AE_OK);
    f = ae_test_read_file(good, &len);
    assert_int_equal(load_status(good), AE_OK);
    assert_int_equal(load_status(ae_test_path("missing")), AE_ERR_IO);
    /* truncated, one byte too many */
    assert_int_equal(ae_test_write_file(bad, f, len - 1), 0);
    assert_int_equal(load_status(bad), AE_ERR_FORMAT);
    assert_int_equal(ae_test_write_file(bad, f, 20), 0);
    assert_int_equal(load_status(bad), AE_ERR_FORMAT);
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    assert_int_equal(ae_test_append_file(bad, "x", 1), 0);
    assert_int_equal(load_status(bad), AE_ERR_FORMAT);
    /* a flipped weight byte: checksum */
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    f[len - 10] ^= 0x40;
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    assert_int_equal(load_status(bad), AE_ERR_CHECKSUM);
    f[len - 10] ^= 0x40;
    /* a newer version; a model of the wrong magic inside (CRC fixed) */
    v = AE_CHECKPOINT_FORMAT_VERSION + 1;
    memcpy(f + 8, &v, 4);
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    assert_int_equal(load_status(bad), AE_ERR_VERSION);
    v = AE_CHECKPOINT_FORMAT_VERSION;
    memcpy(f + 8, &v, 4);
    f[24] = 'X';
    ae_test_fix_crc32(f, len);
    assert_int_equal(ae_test_write_file(bad, f, len), 0);
    assert_int_equal(load_status(bad), AE_ERR_FORMAT);
    /* not a checkpoint at all: a model file */
    assert_int_equal(ae_model_save(m, bad), AE_OK);
    assert_int_equal(load_status(bad), AE_ERR_FORMAT);
    free(f);
    ae_train_state_free(s);
    ae_model_free(m);
    ae_train_config_free(c);
    free(x);
}

/* ---- reduction hooks -------------------------------------------------------------- */

typedef struct hook_log {
    size_t n_params, grad_calls, stat_calls, bad_counts, nan_calls;
    float scale;
    int fail_at; /* fail the grad hook at this call (0: never) */
} hook_log;

static int grad_hook(float *g, size_t count, void *user)
{
    hook_log *l = user;
    l->grad_calls++;
    if (count != l->n_params) l->bad_counts++;
    if (isnan(g[0]) && isnan(g[count - 1])) l->nan_calls++;
    for (size_t i = 0; i < count; i++) g[i] *= l->scale;
    return l->fail_at && (int)l->grad_calls == l->fail_at;
}

static int stat_hook(double *v, size_t count, void *user)
{
    hook_log *l = user;
    l->stat_calls++;
    if (count != 4) l->bad_counts++;
    /* a second, identical "process": sums and counts double, means stay */
    for (size_t i = 0; i < count; i++) v[i] *= 2;
    return 0;
}

/* Statistics hook of a model with batch normalisation (C = 4 channels):
 * every step sends the layer's sums (2C + 1, C + 1, then 2C + 1 in
 * backward), every epoch end the 4 loss values. */
typedef struct bn_hook_log {
    size_t calls, epoch_calls, forward_calls, variance_calls, bad_counts;
    int fail_at; /* fail at this call (0: never) */
} bn_hook_log;

static int bn_stat_hook(double *v, size_t count, void *user)
{
    bn_hook_log *l = user;
    l->calls++;
    if (count == 4) l->epoch_calls++;
    else if (count == 9) l->forward_calls++; /* forward and backward sums */
    else if (count == 5) l->variance_calls++;
    else l->bad_counts++;
    /* a second, identical process: every sum and count doubles, so the
     * statistics (exact in binary) and the weights stay as they are */
    for (size_t i = 0; i < count; i++) v[i] *= 2;
    return l->fail_at && (int)l->calls == l->fail_at;
}

static int identity_grad_hook(float *g, size_t count, void *user)
{
    (void)g, (void)count, (void)user;
    return 0;
}

static void test_batch_statistics_hook(void **unused)
{
    float *x = ae_test_rows(N_ROWS, WIDTH, 9);
    ae_model *a, *b;
    ae_builder *bld;
    ae_train_config *c = config(2);
    bn_hook_log log = {0};
    size_t in[1] = {WIDTH};
    (void)unused;
    assert_int_equal(ae_builder_create(&bld, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(bld, 4, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_batchnorm(bld, 0.9, 1e-3), AE_OK);
    assert_int_equal(ae_builder_activation(bld, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_mark_code(bld), AE_OK);
    assert_int_equal(ae_builder_dense(bld, WIDTH, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&a, bld, 3), AE_OK);
    assert_int_equal(ae_builder_build(&b, bld, 3), AE_OK);
    ae_builder_free(bld);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_fit(a, c, x, NULL, N_ROWS, NULL), AE_OK);
    assert_int_equal(ae_train_config_set_reduce(c, identity_grad_hook, bn_stat_hook, &log), AE_OK);
    assert_int_equal(ae_train_fit(b, c, x, NULL, N_ROWS, NULL), AE_OK);
    assert_same_weights(a, b);
    assert_memory_equal(a->stats, b->stats, a->n_stats * sizeof(float));
    assert_int_equal(log.bad_counts, 0);
    assert_int_equal(log.epoch_calls, 2);
    assert_int_equal(log.forward_calls, 2 * 2 * 12); /* 2 epochs of 12 steps, forward + backward */
    assert_int_equal(log.variance_calls, 2 * 12);
    /* a failing call in a step fails the fit with AE_ERR_IO, weights restored */
    log.calls = 0;
    log.fail_at = 5;
    assert_int_equal(ae_train_fit(b, c, x, NULL, N_ROWS, NULL), AE_ERR_IO);
    assert_non_null(strstr(ae_last_error(), "ae_train_fit: the statistics reduction callback failed"));
    assert_int_equal(log.calls, 5); /* no call after the failure */
    ae_model_free(a);
    ae_model_free(b);
    ae_train_config_free(c);
    free(x);
}

static void test_reduction_hooks(void **unused)
{
    float *x = ae_test_rows(N_ROWS, WIDTH, 6);
    ae_model *a = small_model(8), *b = small_model(8), *z = small_model(8), *z0;
    ae_train_config *c = config(2);
    ae_history *ha, *hb;
    ae_train_state *s;
    hook_log log = {0};
    (void)unused;
    assert_int_equal(ae_history_create(&ha), AE_OK);
    assert_int_equal(ae_history_create(&hb), AE_OK);
    assert_int_equal(ae_train_fit(a, c, x, NULL, N_ROWS, ha), AE_OK);
    /* identity hooks: the same run, and the hooks saw every step */
    log.n_params = b->n_params;
    log.scale = 1.0f;
    assert_int_equal(ae_train_config_set_reduce(c, grad_hook, stat_hook, &log), AE_OK);
    assert_int_equal(ae_train_fit(b, c, x, NULL, N_ROWS, hb), AE_OK);
    assert_same_weights(a, b);
    assert_int_equal(log.grad_calls, 2 * 12);
    assert_int_equal(log.stat_calls, 2);
    assert_int_equal(log.bad_counts, 0);
    for (size_t e = 0; e < 2; e++) {
        double va, vb;
        assert_int_equal(ae_history_get(&va, ha, e, AE_HIST_VAL_LOSS), AE_OK);
        assert_int_equal(ae_history_get(&vb, hb, e, AE_HIST_VAL_LOSS), AE_OK);
        assert_true(va == vb);
    }
    /* zeroed gradients under plain SGD: the weights do not move */
    assert_int_equal(ae_model_clone(&z0, z), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_OPTIMIZER, AE_OPT_SGD), AE_OK);
    log.scale = 0.0f;
    assert_int_equal(ae_train_fit(z, c, x, NULL, N_ROWS, NULL), AE_OK);
    assert_same_weights(z, z0);
    /* a failing hook fails the fit with AE_ERR_IO and spoils the state */
    log.scale = 1.0f;
    log.grad_calls = 0;
    log.fail_at = 3;
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_fit_state(z, c, s, x, NULL, N_ROWS, NULL), AE_ERR_IO);
    assert_non_null(strstr(ae_last_error(), "ae_train_fit_state: the gradient reduction"));
    assert_int_equal(ae_train_fit_state(z, c, s, x, NULL, N_ROWS, NULL), AE_ERR_STATE);
    ae_train_state_free(s);
    /* a loss that overflows still reaches the hook, as NaN gradients (a
     * linear output and huge inputs: the predictions overflow to infinity) */
    {
        float *big = ae_test_rows(N_ROWS, WIDTH, 7);
        ae_builder *bld;
        ae_model *lin;
        size_t in[1] = {WIDTH};
        for (size_t i = 0; i < WIDTH; i++) big[i] = 3e38f;
        assert_int_equal(ae_builder_create(&bld, 1, in), AE_OK);
        assert_int_equal(ae_builder_dense(bld, WIDTH, AE_ACT_LINEAR), AE_OK);
        assert_int_equal(ae_builder_build(&lin, bld, 1), AE_OK);
        ae_builder_free(bld);
        log.fail_at = 0;
        log.grad_calls = 0;
        log.nan_calls = 0;
        log.n_params = lin->n_params;
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_LOSS, AE_LOSS_MSE), AE_OK);
        assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0), AE_OK);
        assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE, 0), AE_OK);
        assert_int_equal(ae_train_fit(lin, c, big, NULL, N_ROWS, NULL), AE_ERR_NUMERIC);
        assert_int_equal(log.grad_calls, 1);
        assert_int_equal(log.nan_calls, 1);
        ae_model_free(lin);
        free(big);
    }
    ae_history_free(ha);
    ae_history_free(hb);
    ae_model_free(a);
    ae_model_free(b);
    ae_model_free(z);
    ae_model_free(z0);
    ae_train_config_free(c);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_continue_one_run),
        cmocka_unit_test(test_first_epoch_matches_fit),
        cmocka_unit_test(test_checkpoint_resumes_exactly),
        cmocka_unit_test(test_format_independent_reader),
        cmocka_unit_test(test_loader_refuses_damage),
        cmocka_unit_test(test_format_block_shuffle),
        cmocka_unit_test(test_reduction_hooks),
        cmocka_unit_test(test_batch_statistics_hook),
    };
    return cmocka_run_group_tests(tests, ae_test_group_setup, ae_test_group_teardown);
}
