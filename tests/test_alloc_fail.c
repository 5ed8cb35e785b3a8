/*
 * Allocation-failure injection through the allocator hook (ae_set_allocator).
 *
 * For every scenario (build models, train, save, load, build indexes, query,
 * .npy and data-set loading, encoders) the hook fails the 1st, 2nd, ..., k-th
 * allocation in turn until the scenario completes without a failure. Every
 * trial must:
 *   - return AE_ERR_NOMEM (saving may also say AE_ERR_IO: documented);
 *   - leave the handles it was given usable and unchanged (a failed ae_train_fit
 *     keeps the weights it started with; a failed save keeps the old file);
 *   - leak nothing: the checking allocator (tests/support) keeps the live
 *     blocks, whose count and bytes must be back at the level they had before
 *     the trial (zero once the scenario's own handles are freed), and every
 *     block must be freed or resized with the size it was allocated with.
 * The number of failure points exercised per scenario is printed at the end.
 * AE_TEST_SMALL=1 (the asan and valgrind passes) does not change the workload: it is
 * small enough as it is.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"
#include "nn.h"
#include "test_support.h"

/* ---- scenario bookkeeping -------------------------------------------------------- */
typedef struct tally {
    const char *name;
    long points; /* failure points exercised (trials that failed an allocation) */
} tally;
static tally g_tally[64];
static int g_n_tally;
static long g_total_points;

static void record(const char *name, long points)
{
    if (g_n_tally < (int)(sizeof g_tally / sizeof g_tally[0]))
        g_tally[g_n_tally++] = (tally){name, points};
    g_total_points += points;
}

/* A scenario step: does its work on ctx, returns a status; anything it
 * creates it must free before returning (or hand to ctx for the check). */
typedef ae_status (*step_fn)(void *ctx);
/* Called after each trial: checks ctx's handles are still what they were. */
typedef void (*check_fn)(void *ctx, ae_status st);

#define MAX_TRIALS 200000L

/* Fails allocation 1, 2, ... of fn until it succeeds. Live bytes must be back
 * to their level before each trial; returns the number of failure points. */
static long run_scenario(const char *name, step_fn fn, check_fn check, void *ctx,
                         int io_allowed)
{
    long k, points = 0;
    long base_blocks = ae_test_alloc_live_blocks(), base_bytes = ae_test_alloc_live_bytes();
    for (k = 1; k < MAX_TRIALS; k++) {
        ae_status st;
        long failed;
        ae_test_alloc_fail_at(k);
        st = fn(ctx);
        failed = ae_test_alloc_failed();
        ae_test_alloc_fail_at(0);
        if (check) check(ctx, st);
        if (ae_test_alloc_live_blocks() != base_blocks ||
            ae_test_alloc_live_bytes() != base_bytes) {
            print_error("%s: trial %ld (status %d) leaked %ld blocks, %ld bytes\n", name, k, st,
                        ae_test_alloc_live_blocks() - base_blocks,
                        ae_test_alloc_live_bytes() - base_bytes);
            fail();
        }
        if (ae_test_alloc_bad_frees() != 0) {
            print_error("%s: trial %ld freed or resized a block with the wrong size\n", name, k);
            ae_test_alloc_check(); /* reports, and clears the count */
            fail();
        }
        if (!failed) {
            /* no allocation was failed: the scenario ran to completion */
            if (st != AE_OK) {
                print_error("%s: trial %ld failed no allocation but returned %d (%s)\n", name,
                            k, st, ae_last_error());
                fail();
            }
            break;
        }
        points++;
        if (st == AE_OK) {
            /* a failure the library recovered from (e.g. a fallback path) is
             * fine as long as nothing leaked */
            continue;
        }
        if (!(st == AE_ERR_NOMEM || (io_allowed && st == AE_ERR_IO))) {
            print_error("%s: failing allocation %ld gave status %d (%s): %s\n", name, k, st,
                        ae_status_string(st), ae_last_error());
            fail();
        }
    }
    assert_true(k < MAX_TRIALS);
    record(name, points);
    return points;
}

/* ---- helpers ----------------------------------------------------------------------- */
/* A small dense autoencoder built through the builder. */
static ae_status build_dense(ae_model **out, size_t in, uint64_t seed)
{
    ae_builder *b = NULL;
    size_t dims[1] = {in};
    ae_status st;
    *out = NULL;
    if ((st = ae_builder_create(&b, 1, dims)) != AE_OK) return st;
    if ((st = ae_builder_dense(b, 12, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_dense(b, 6, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_mark_code(b)) == AE_OK &&
        (st = ae_builder_dense(b, 12, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_dense(b, in, AE_ACT_SIGMOID)) == AE_OK)
        st = ae_builder_build(out, b, seed);
    ae_builder_free(b);
    return st;
}

/* A small convolutional autoencoder (8x8x1) through the builder. */
static ae_status build_conv(ae_model **out, uint64_t seed)
{
    ae_builder *b = NULL;
    size_t dims[3] = {8, 8, 1}, img[3] = {4, 4, 2};
    ae_status st;
    *out = NULL;
    if ((st = ae_builder_create(&b, 3, dims)) != AE_OK) return st;
    if ((st = ae_builder_conv2d(b, 4, 3, AE_PAD_SAME, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_maxpool2d(b, AE_PAD_SAME)) == AE_OK &&
        (st = ae_builder_conv2d(b, 2, 3, AE_PAD_SAME, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_flatten(b)) == AE_OK &&
        (st = ae_builder_dense(b, 8, AE_ACT_LINEAR)) == AE_OK &&
        (st = ae_builder_mark_code(b)) == AE_OK &&
        (st = ae_builder_dense(b, 32, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_reshape(b, 3, img)) == AE_OK &&
        (st = ae_builder_upsample2d(b)) == AE_OK &&
        (st = ae_builder_conv2d(b, 1, 3, AE_PAD_SAME, AE_ACT_SIGMOID)) == AE_OK &&
        (st = ae_builder_activation(b, AE_ACT_SIGMOID)) == AE_OK)
        st = ae_builder_build(out, b, seed);
    ae_builder_free(b);
    return st;
}

static int teardown(void **state)
{
    if (ae_test_group_teardown(state) != 0) return -1;
    printf("[ alloc-fail ] failure points exercised per scenario:\n");
    for (int i = 0; i < g_n_tally; i++)
        printf("[ alloc-fail ]   %-34s %6ld\n", g_tally[i].name, g_tally[i].points);
    printf("[ alloc-fail ]   %-34s %6ld\n", "TOTAL", g_total_points);
    return 0;
}

/* ---- scenarios: building models --------------------------------------------------- */
static ae_status s_build_dense(void *ctx)
{
    ae_model *m;
    ae_status st = build_dense(&m, 16, 1);
    (void)ctx;
    if (st == AE_OK) assert_int_equal(ae_model_param_count(m), 16 * 12 + 12 + 12 * 6 + 6 + 6 * 12 + 12 + 12 * 16 + 16);
    else assert_null(m);
    ae_model_free(m);
    return st;
}

static ae_status s_build_conv(void *ctx)
{
    ae_model *m;
    ae_status st = build_conv(&m, 1);
    (void)ctx;
    if (st != AE_OK) assert_null(m);
    ae_model_free(m);
    return st;
}

static ae_status s_preset(void *ctx)
{
    ae_model *m;
    ae_status st = ae_preset_build(&m, *(const ae_preset *)ctx, 3);
    if (st != AE_OK) assert_null(m);
    ae_model_free(m);
    return st;
}

static ae_status s_clone(void *ctx)
{
    ae_model *c = NULL;
    ae_status st = ae_model_clone(&c, ctx);
    if (st == AE_OK) assert_memory_equal(c->params, ((ae_model *)ctx)->params, c->n_params * 4);
    else assert_null(c);
    ae_model_free(c);
    return st;
}

/* strided and transposed convolutions with batch norm (statistics buffers) */
static ae_status build_bn(ae_model **out, uint64_t seed)
{
    ae_builder *b = NULL;
    size_t dims[3] = {8, 8, 1};
    ae_status st;
    *out = NULL;
    if ((st = ae_builder_create(&b, 3, dims)) != AE_OK) return st;
    if ((st = ae_builder_conv2d_ex(b, 4, 3, 2, AE_PAD_SAME, AE_ACT_LINEAR)) == AE_OK &&
        (st = ae_builder_batchnorm(b, 0.99, 1e-3)) == AE_OK &&
        (st = ae_builder_activation(b, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_flatten(b)) == AE_OK &&
        (st = ae_builder_dense(b, 8, AE_ACT_LINEAR)) == AE_OK &&
        (st = ae_builder_mark_code(b)) == AE_OK &&
        (st = ae_builder_dense(b, 32, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_reshape(b, 3, (size_t[]){4, 4, 2})) == AE_OK &&
        (st = ae_builder_conv2d_transpose(b, 1, 4, 2, AE_PAD_SAME, AE_ACT_SIGMOID)) == AE_OK)
        st = ae_builder_build(out, b, seed);
    ae_builder_free(b);
    return st;
}

/* a variational autoencoder: its evaluation keeps every layer's output */
static ae_status build_vae(ae_model **out, uint64_t seed)
{
    ae_builder *b = NULL;
    ae_status st;
    *out = NULL;
    if ((st = ae_builder_create(&b, 1, (size_t[]){16})) != AE_OK) return st;
    if ((st = ae_builder_dense(b, 8, AE_ACT_RELU)) == AE_OK &&
        (st = ae_builder_dense(b, 4, AE_ACT_LINEAR)) == AE_OK &&
        (st = ae_builder_sampling(b, 1.0 / 16)) == AE_OK &&
        (st = ae_builder_mark_code(b)) == AE_OK &&
        (st = ae_builder_dense(b, 16, AE_ACT_SIGMOID)) == AE_OK)
        st = ae_builder_build(out, b, seed);
    ae_builder_free(b);
    return st;
}

static ae_status s_build_bn(void *ctx)
{
    ae_model *m = NULL;
    ae_status st;
    (void)ctx;
    st = build_bn(&m, 3);
    if (st != AE_OK) assert_null(m);
    ae_model_free(m);
    return st;
}

static void test_build_models(void **state)
{
    ae_preset p;
    ae_model *m;
    (void)state;
    run_scenario("builder: dense autoencoder", s_build_dense, NULL, NULL, 0);
    run_scenario("builder: conv autoencoder", s_build_conv, NULL, NULL, 0);
    run_scenario("builder: strided, transposed, batch norm", s_build_bn, NULL, NULL, 0);
    p = AE_PRESET_SIMPLE;
    run_scenario("preset: simple", s_preset, NULL, &p, 0);
    p = AE_PRESET_DEEP;
    run_scenario("preset: deep", s_preset, NULL, &p, 0);
    p = AE_PRESET_CONV;
    run_scenario("preset: conv", s_preset, NULL, &p, 0);
    assert_int_equal(ae_preset_build(&m, AE_PRESET_CONV, 5), AE_OK);
    run_scenario("model: clone (conv)", s_clone, NULL, m, 0);
    ae_model_free(m);
}

/* ---- scenarios: training ------------------------------------------------------------ */
typedef struct fit_ctx {
    ae_model *m;
    ae_train_config *cfg;
    const float *x;
    size_t n;
    float *before; /* the weights before each trial */
    int fitted;    /* ae_train_fit was called in this trial */
} fit_ctx;

static ae_status s_fit(void *ctx)
{
    fit_ctx *c = ctx;
    ae_history *h = NULL;
    ae_status st;
    memcpy(c->before, c->m->params, c->m->n_params * sizeof(float));
    c->fitted = 0;
    /* the history is created and freed in the trial: it owns what it grows */
    if ((st = ae_history_create(&h)) != AE_OK) {
        assert_null(h);
        return st;
    }
    c->m->msg[0] = '\0';
    c->fitted = 1;
    st = ae_train_fit(c->m, c->cfg, c->x, NULL, c->n, h);
    if (st == AE_OK) assert_int_equal(ae_history_epochs(h), 1);
    ae_history_free(h);
    return st;
}

static void check_fit(void *ctx, ae_status st)
{
    fit_ctx *c = ctx;
    if (st != AE_OK) {
        /* a failed fit leaves the weights as they were (NOMEM comes before
         * the first step: buffers are reserved up front) */
        assert_memory_equal(c->before, c->m->params, c->m->n_params * sizeof(float));
        if (c->fitted) assert_true(c->m->msg[0] != '\0');
    }
}

static void fit_scenario(const char *name, ae_model *m, size_t in, int threads, size_t n)
{
    fit_ctx c = {m, NULL, NULL, n, NULL, 0};
    float *x = ae_test_rows(n, in, 9), *out = malloc(n * ae_model_output_size(m) * sizeof(float));
    c.x = x;
    c.before = malloc(m->n_params * sizeof(float));
    assert_int_equal(ae_train_config_create(&c.cfg), AE_OK);
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_EPOCHS, 1), AE_OK);
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_BATCH_SIZE, 4), AE_OK);
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_THREADS, threads), AE_OK);
    assert_int_equal(ae_train_config_set_double(c.cfg, AE_TRAIN_VALIDATION_SPLIT, 0.25), AE_OK);
    run_scenario(name, s_fit, check_fit, &c, 0);
    /* the model is still usable after all those failures */
    assert_int_equal(ae_model_predict(m, x, n, out, n * ae_model_output_size(m)), AE_OK);
    ae_train_config_free(c.cfg);
    free(c.before);
    free(out);
    free(x);
}

static void test_train(void **state)
{
    ae_model *m;
    (void)state;
    assert_int_equal(build_dense(&m, 16, 2), AE_OK);
    fit_scenario("fit: dense, 1 thread", m, 16, 1, 12);
    fit_scenario("fit: dense, 2 threads", m, 16, 2, 12);
    ae_model_free(m);
    assert_int_equal(build_conv(&m, 2), AE_OK);
    fit_scenario("fit: conv, 1 thread", m, 64, 1, 12);
    fit_scenario("fit: conv, 2 threads", m, 64, 2, 12);
    ae_model_free(m);
    assert_int_equal(build_bn(&m, 2), AE_OK);
    run_scenario("model: clone (batch norm)", s_clone, NULL, m, 0);
    fit_scenario("fit: batch norm, 2 threads", m, 64, 2, 12);
    ae_model_free(m);
    assert_int_equal(build_vae(&m, 2), AE_OK);
    fit_scenario("fit: VAE, 2 threads", m, 16, 2, 12);
    ae_model_free(m);
}

/* ---- scenarios: training states and checkpoints ---------------------------------------- */
/* A fresh state with a checkpoint path, one epoch (checkpoints every 2
 * steps and at the end), then the checkpoint loaded back. */
static ae_status s_fit_state(void *ctx)
{
    fit_ctx *c = ctx;
    ae_train_state *s = NULL, *s2 = NULL;
    ae_model *m2 = NULL;
    ae_status st;
    if ((st = ae_train_state_create(&s)) != AE_OK) {
        assert_null(s);
        return st;
    }
    if ((st = ae_train_state_set_checkpoint(s, ae_test_path("run.aeckpt"))) == AE_OK &&
        (st = ae_train_fit_state(c->m, c->cfg, s, c->x, NULL, c->n, NULL)) == AE_OK &&
        (st = ae_train_state_load(&s2, &m2, ae_test_path("run.aeckpt"))) == AE_OK) {
        assert_int_equal(ae_train_state_epoch(s2), 1);
        assert_memory_equal(m2->params, c->m->params, c->m->n_params * sizeof(float));
    } else {
        assert_null(s2);
        assert_null(m2);
    }
    memcpy(c->m->params, c->before, c->m->n_params * sizeof(float));
    ae_train_state_free(s);
    ae_train_state_free(s2);
    ae_model_free(m2);
    return st;
}

/* Two uint8 .npy files as one source, one epoch with the background reader. */
static ae_status s_fit_npy(void *ctx)
{
    fit_ctx *c = ctx;
    ae_source *src = NULL;
    const char *paths[2];
    ae_status st;
    paths[0] = ae_test_path("s1.npy");
    paths[1] = ae_test_path("s2.npy");
    if ((st = ae_source_open_npy(&src, paths, 2)) != AE_OK) {
        assert_null(src);
        return st;
    }
    st = ae_train_fit_source(c->m, c->cfg, NULL, src, NULL, NULL);
    memcpy(c->m->params, c->before, c->m->n_params * sizeof(float));
    ae_source_free(src);
    return st;
}

static void test_train_state(void **state)
{
    ae_model *m;
    fit_ctx c = {NULL, NULL, NULL, 12, NULL, 0};
    (void)state;
    assert_int_equal(build_dense(&m, 16, 4), AE_OK);
    c.m = m;
    c.x = ae_test_rows(c.n, 16, 9);
    c.before = malloc(m->n_params * sizeof(float));
    memcpy(c.before, m->params, m->n_params * sizeof(float));
    assert_int_equal(ae_train_config_create(&c.cfg), AE_OK);
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_EPOCHS, 1), AE_OK);
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_BATCH_SIZE, 4), AE_OK);
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_CHECKPOINT_STEPS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_double(c.cfg, AE_TRAIN_VALIDATION_SPLIT, 0.25), AE_OK);
    {
        unsigned char *u = ae_test_bytes(12 * 16, 3);
        size_t d1[2] = {5, 16}, d2[2] = {7, 16};
        assert_int_equal(ae_test_write_npy_u8(ae_test_path("s1.npy"), 2, d1, u), 0);
        assert_int_equal(ae_test_write_npy_u8(ae_test_path("s2.npy"), 2, d2, u + 5 * 16), 0);
        free(u);
    }
    run_scenario("train state: fit, checkpoint, load", s_fit_state, NULL, &c, 1);
    run_scenario("source: open .npy files, fit", s_fit_npy, NULL, &c, 0);
    /* the block shuffle: the reader's window of blocks, the checkpoint's block fields */
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_SHUFFLE_BLOCK, 3), AE_OK);
    assert_int_equal(ae_train_config_set_int(c.cfg, AE_TRAIN_SHUFFLE_WINDOW, 2), AE_OK);
    run_scenario("train state, block shuffle: fit, checkpoint, load", s_fit_state, NULL, &c, 1);
    run_scenario("source, block shuffle: open .npy files, fit", s_fit_npy, NULL, &c, 0);
    unlink(ae_test_path("run.aeckpt"));
    unlink(ae_test_path("s1.npy"));
    unlink(ae_test_path("s2.npy"));
    ae_train_config_free(c.cfg);
    free(c.before);
    free((void *)c.x);
    ae_model_free(m);
}

/* ---- scenarios: predict and encoders ---------------------------------------------------- */
typedef struct pred_ctx {
    ae_model *m;
    ae_encoder *enc;
    const float *x;
    size_t n;
    float *y;
} pred_ctx;

static ae_status s_predict(void *ctx)
{
    pred_ctx *c = ctx;
    return ae_model_predict(c->m, c->x, c->n, c->y, c->n * ae_model_output_size(c->m));
}

static ae_status s_encoder(void *ctx)
{
    pred_ctx *c = ctx;
    ae_encoder *e = NULL;
    ae_status st = ae_encoder_create(&e, c->m);
    if (st != AE_OK) {
        assert_null(e);
        return st;
    }
    st = ae_encoder_set_threads(e, 2);
    if (st == AE_OK)
        st = ae_encoder_encode(e, c->x, c->n, c->y, c->n * ae_encoder_code_size(e));
    ae_encoder_free(e);
    return st;
}

static ae_status s_encode(void *ctx)
{
    pred_ctx *c = ctx;
    return ae_encoder_encode(c->enc, c->x, c->n, c->y, c->n * ae_encoder_code_size(c->enc));
}

static ae_status s_decode(void *ctx)
{
    pred_ctx *c = ctx; /* x: codes */
    return ae_model_decode(c->m, c->x, c->n, c->y, c->n * ae_model_output_size(c->m));
}

static ae_status s_evaluate(void *ctx)
{
    pred_ctx *c = ctx;
    double v;
    return ae_model_evaluate(&v, c->m, AE_LOSS_BCE, c->x, NULL, c->n);
}

static void test_predict_encode(void **state)
{
    pred_ctx c;
    (void)state;
    assert_int_equal(ae_preset_build(&c.m, AE_PRESET_CONV, 4), AE_OK);
    c.n = 70;
    c.x = ae_test_rows(c.n, 784, 3);
    c.y = malloc(c.n * 784 * sizeof(float));
    assert_int_equal(ae_model_set_threads(c.m, 1), AE_OK);
    run_scenario("predict: conv, 1 thread", s_predict, NULL, &c, 0);
    assert_int_equal(ae_model_set_threads(c.m, 3), AE_OK);
    run_scenario("predict: conv, 3 threads", s_predict, NULL, &c, 0);
    run_scenario("encoder: create + encode", s_encoder, NULL, &c, 0);
    assert_int_equal(ae_encoder_create(&c.enc, c.m), AE_OK);
    run_scenario("encoder: encode (3 threads)", s_encode, NULL, &c, 0);
    ae_encoder_free(c.enc);
    {
        /* decode the codes of the rows just encoded */
        const float *x = c.x;
        float *codes = malloc(c.n * 128 * sizeof *codes);
        memcpy(codes, c.y, c.n * 128 * sizeof *codes);
        c.x = codes;
        run_scenario("model: decode (3 threads)", s_decode, NULL, &c, 0);
        c.x = x;
        free(codes);
    }
    ae_model_free(c.m);
    assert_int_equal(build_vae(&c.m, 4), AE_OK);
    run_scenario("model: evaluate (VAE)", s_evaluate, NULL, &c, 0);
    ae_model_free(c.m);
    free((void *)c.x);
    free(c.y);
}

/* ---- scenarios: model files ---------------------------------------------------------------- */
/* Temporary files of the atomic writer left in the folder. */
static int count_tmp_files(void)
{
    return ae_test_find_names(ae_test_tmpdir(), ".tmp-", NULL, 0);
}

static ae_status s_model_save(void *ctx)
{
    ae_status st = ae_model_save(ctx, ae_test_path("m.aemodel"));
    /* a failed save leaves the old file as it was and no temp file */
    assert_true(ae_test_files_equal(ae_test_path("m.aemodel"), ae_test_path("m.ref")));
    assert_int_equal(count_tmp_files(), 0);
    return st;
}

static ae_status s_model_load(void *ctx)
{
    ae_model *m = NULL;
    ae_status st = ae_model_load(&m, ae_test_path("m.ref"));
    if (st == AE_OK) {
        assert_int_equal(m->n_params, ((ae_model *)ctx)->n_params);
        assert_memory_equal(m->params, ((ae_model *)ctx)->params, m->n_params * 4);
    } else {
        assert_null(m);
    }
    ae_model_free(m);
    return st;
}

static void test_model_files(void **state)
{
    ae_model *m;
    (void)state;
    assert_int_equal(build_conv(&m, 6), AE_OK);
    assert_int_equal(ae_model_save(m, ae_test_path("m.ref")), AE_OK);
    assert_int_equal(ae_model_save(m, ae_test_path("m.aemodel")), AE_OK);
    run_scenario("model: save", s_model_save, NULL, m, 1);
    run_scenario("model: load (conv)", s_model_load, NULL, m, 0);
    ae_model_free(m);
    assert_int_equal(ae_preset_build(&m, AE_PRESET_DEEP, 6), AE_OK);
    assert_int_equal(ae_model_save(m, ae_test_path("m.ref")), AE_OK);
    run_scenario("model: load (deep)", s_model_load, NULL, m, 0);
    ae_model_free(m);
    unlink(ae_test_path("m.ref"));
    unlink(ae_test_path("m.aemodel"));
}

/* ---- scenarios: indexes -------------------------------------------------------------------- */
typedef struct idx_ctx {
    int backend, metric;
    const float *x, *q;
    size_t n, d;
    const int32_t *labels;
    ae_index *idx;
    float dist[3 * 4];
    int64_t ids[3 * 4];
} idx_ctx;

static ae_status s_index_build(void *ctx)
{
    idx_ctx *c = ctx;
    ae_index *idx = NULL;
    ae_status st = ae_index_create(&idx, c->backend, c->metric, c->d);
    if (st != AE_OK) {
        assert_null(idx);
        return st;
    }
    if (c->backend == AE_INDEX_BALLTREE) ae_index_set_int(idx, AE_INDEX_LEAF_SIZE, 5);
    if (c->backend == AE_INDEX_HNSW) ae_index_set_int(idx, AE_INDEX_HNSW_M, 4);
    st = ae_index_build(idx, c->x, c->n, NULL, c->labels);
    if (st != AE_OK) {
        /* a failed build leaves the index empty and retryable */
        assert_int_equal(ae_index_count(idx), 0);
        assert_true(ae_index_errmsg(idx)[0] != '\0');
        ae_test_alloc_fail_at(0);
        assert_int_equal(ae_index_build(idx, c->x, c->n, NULL, c->labels), AE_OK);
    }
    ae_index_free(idx);
    return st;
}

static ae_status s_index_search(void *ctx)
{
    idx_ctx *c = ctx;
    return ae_index_search(c->idx, c->q, 3, 4, 0, c->dist, c->ids);
}

static ae_status s_index_save(void *ctx)
{
    idx_ctx *c = ctx;
    ae_status st = ae_index_save(c->idx, ae_test_path("i.aeidx"));
    assert_true(ae_test_files_equal(ae_test_path("i.aeidx"), ae_test_path("i.ref")));
    assert_int_equal(count_tmp_files(), 0);
    return st;
}

static ae_status s_index_load(void *ctx)
{
    idx_ctx *c = ctx;
    ae_index *idx = NULL;
    ae_status st = ae_index_load(&idx, ae_test_path("i.ref"));
    if (st == AE_OK) {
        float dist[12];
        int64_t ids[12];
        ae_test_alloc_fail_at(0);
        assert_int_equal(ae_index_search(idx, c->q, 3, 4, 0, dist, ids), AE_OK);
        assert_memory_equal(ids, c->ids, sizeof ids);
    } else {
        assert_null(idx);
    }
    ae_index_free(idx);
    return st;
}

/* The heap parts of a mapped index (ids, id table, levels, norms...), with
 * each check, then a search of it. */
static ae_status s_index_map(void *ctx)
{
    idx_ctx *c = ctx;
    ae_status st = AE_OK;
    for (int check = AE_INDEX_CHECK_FULL; check <= AE_INDEX_CHECK_BOUNDS && st == AE_OK;
         check++) {
        ae_index *idx = NULL;
        st = ae_index_map(&idx, ae_test_path("i.ref"), (ae_index_check)check);
        if (st == AE_OK) {
            float dist[12];
            int64_t ids[12];
            st = ae_index_search(idx, c->q, 3, 4, 0, dist, ids);
            if (st == AE_OK) assert_memory_equal(ids, c->ids, sizeof ids);
        } else {
            assert_null(idx);
        }
        ae_index_free(idx);
    }
    return st;
}

static int keep_even_id(int64_t id, void *user)
{
    (void)user;
    return id % 2 == 0;
}

static int sink_discard(const void *data, size_t n, void *user)
{
    (void)data;
    *(size_t *)user += n;
    return 0;
}

/* The living store on a loaded index: add (the ball tree past its overflow
 * limit: a rebuild), remove, filtered search, compact, save to a callback.
 * Each step is atomic, so after a failed one the index still answers. */
static ae_status s_index_live(void *ctx)
{
    idx_ctx *c = ctx;
    ae_index *idx = NULL;
    int64_t ids[300], gone[5] = {1, 3, 1000, 1002, 1299};
    size_t bytes = 0;
    float *more = ae_test_rows(300, c->d, 13);
    ae_status st = ae_index_load(&idx, ae_test_path("i.ref"));
    for (int i = 0; i < 300; i++) ids[i] = 1000 + i;
    if (st == AE_OK) st = ae_index_add(idx, more, 300, ids, c->labels ? c->labels : NULL);
    if (st == AE_OK) st = ae_index_remove(idx, gone, 5);
    if (st == AE_OK)
        st = ae_index_search_filtered(idx, c->q, 3, 4, 0, keep_even_id, NULL, c->dist, c->ids);
    if (st == AE_OK) st = ae_index_compact(idx);
    if (st == AE_OK) st = ae_index_save_to(idx, sink_discard, &bytes);
    if (idx) {
        float dist[12];
        int64_t got[12];
        ae_test_alloc_fail_at(0);
        assert_int_equal(ae_index_search(idx, c->q, 3, 4, 0, dist, got), AE_OK);
    }
    ae_index_free(idx);
    free(more);
    return st;
}

static void test_indexes(void **state)
{
    static const char *names[4][3][4] = {
        {{0}},
        {{"index: build brute/l2", "index: search brute/l2", "index: save brute/l2",
          "index: load brute/l2"},
         {"index: build brute/cos", "index: search brute/cos", "index: save brute/cos",
          "index: load brute/cos"}},
        {{"index: build balltree/l2", "index: search balltree/l2", "index: save balltree/l2",
          "index: load balltree/l2"},
         {"index: build balltree/cos", "index: search balltree/cos",
          "index: save balltree/cos", "index: load balltree/cos"}},
        {{"index: build hnsw/l2", "index: search hnsw/l2", "index: save hnsw/l2",
          "index: load hnsw/l2"},
         {"index: build hnsw/cos", "index: search hnsw/cos", "index: save hnsw/cos",
          "index: load hnsw/cos"}},
    };
    const size_t n = 80, d = 5;
    float *x = ae_test_rows(n, d, 11), *q = ae_test_rows(3, d, 12);
    int32_t labels[80];
    (void)state;
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i % 7);
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_COSINE; m++) {
            idx_ctx c = {b, m, x, q, n, d, labels, NULL, {0}, {0}};
            run_scenario(names[b][m - 1][0], s_index_build, NULL, &c, 0);
            assert_int_equal(ae_index_create(&c.idx, b, m, d), AE_OK);
            if (b == AE_INDEX_BALLTREE) ae_index_set_int(c.idx, AE_INDEX_LEAF_SIZE, 5);
            if (b == AE_INDEX_HNSW) ae_index_set_int(c.idx, AE_INDEX_HNSW_M, 4);
            assert_int_equal(ae_index_build(c.idx, x, n, NULL, labels), AE_OK);
            run_scenario(names[b][m - 1][1], s_index_search, NULL, &c, 0);
            assert_int_equal(ae_index_save(c.idx, ae_test_path("i.ref")), AE_OK);
            assert_int_equal(ae_index_save(c.idx, ae_test_path("i.aeidx")), AE_OK);
            run_scenario(names[b][m - 1][2], s_index_save, NULL, &c, 1);
            run_scenario(names[b][m - 1][3], s_index_load, NULL, &c, 0);
            run_scenario("index: map (both checks) and search", s_index_map, NULL, &c, 0);
            {
                int32_t labels300[300];
                for (int i = 0; i < 300; i++) labels300[i] = i % 5;
                c.labels = labels300;
                run_scenario("index: add, remove, filter, compact, save_to", s_index_live, NULL,
                             &c, 0);
                c.labels = labels;
            }
            ae_index_free(c.idx);
        }
    unlink(ae_test_path("i.ref"));
    unlink(ae_test_path("i.aeidx"));
    free(x);
    free(q);
}

/* ---- scenarios: .npy files and data sets ------------------------------------------------- */
/* A uint8 .npy file of rows x cols random pixels. */
static void write_u8_npy(const char *path, size_t rows, size_t cols, uint64_t seed)
{
    size_t dims[2] = {rows, cols};
    unsigned char *pixels = ae_test_bytes(rows * cols, seed);
    assert_int_equal(ae_test_write_npy_u8(path, 2, dims, pixels), 0);
    free(pixels);
}

static ae_status s_npy_load(void *ctx)
{
    ae_tensor *t = NULL;
    ae_status st = ae_npy_load(&t, ctx, AE_NPY_U8_UNIT);
    if (st != AE_OK) assert_null(t);
    ae_tensor_free(t);
    if (st == AE_OK) {
        st = ae_npy_load_rows(&t, ctx, 3, 1.0f);
        if (st != AE_OK) assert_null(t);
        ae_tensor_free(t);
    }
    return st;
}

static ae_status s_npy_info_rows(void *ctx)
{
    ae_npy_dtype dtype;
    int rank;
    size_t dims[AE_TENSOR_MAX_RANK];
    float dst[4 * 6];
    ae_status st = ae_npy_info(&dtype, &rank, dims, ctx);
    if (st == AE_OK) st = ae_npy_read_rows(ctx, 2, 4, 1.0f, dst, 24);
    return st;
}

static ae_status s_npy_save(void *ctx)
{
    static const float data[30] = {1.0f, 2.0f, 3.0f};
    size_t dims[2] = {5, 6};
    (void)ctx;
    return ae_npy_save_f32(ae_test_path("out.npy"), data, 2, dims);
}

static ae_status s_dataset(void *ctx)
{
    ae_dataset *ds = NULL;
    ae_status st = ae_dataset_load(&ds, ctx, 0, 0.2, 7);
    if (st == AE_OK) {
        const float *rows;
        size_t count;
        assert_int_equal(ae_dataset_num_categories(ds), 3);
        assert_int_equal(ae_dataset_train(&rows, NULL, &count, ds), AE_OK);
        assert_true(count > 0);
    } else {
        assert_null(ds);
    }
    ae_dataset_free(ds);
    return st;
}

static void test_npy_and_dataset(void **state)
{
    char dsdir[512];
    size_t dims[2] = {9, 6};
    float *f = ae_test_rows(9, 6, 5);
    (void)state;
    write_u8_npy(ae_test_path("u8.npy"), 10, 6, 1);
    assert_int_equal(ae_npy_save_f32(ae_test_path("f32.npy"), f, 2, dims), AE_OK);
    run_scenario("npy: load u8", s_npy_load, NULL, (void *)ae_test_path("u8.npy"), 0);
    run_scenario("npy: load f32", s_npy_load, NULL, (void *)ae_test_path("f32.npy"), 0);
    run_scenario("npy: info + read_rows", s_npy_info_rows, NULL, (void *)ae_test_path("u8.npy"), 0);
    run_scenario("npy: save f32", s_npy_save, NULL, NULL, 1);
    snprintf(dsdir, sizeof dsdir, "%s", ae_test_path("ds"));
    assert_int_equal(mkdir(dsdir, 0700), 0);
    write_u8_npy(ae_test_path("ds/cat.npy"), 12, 6, 2);
    write_u8_npy(ae_test_path("ds/dog.npy"), 7, 6, 3);
    assert_int_equal(ae_npy_save_f32(ae_test_path("ds/smiley_face.npy"), f, 2, dims), AE_OK);
    run_scenario("dataset: load (3 categories)", s_dataset, NULL, dsdir, 0);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_build_models, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_train, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_train_state, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_predict_encode, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_model_files, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_indexes, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_npy_and_dataset, ae_test_alloc_teardown),
    };
    return cmocka_run_group_tests_name("alloc_fail", tests, ae_test_group_setup, teardown);
}
