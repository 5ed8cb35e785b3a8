/* Writes the fuzzers' seed corpora, made by the library itself:
 *   make_seeds OUTDIR  ->  OUTDIR/npy/<name>.npy, OUTDIR/model/<name>.aemodel,
 *                          OUTDIR/index/<name>.aeidx, OUTDIR/checkpoint/<name>.aeckpt
 * Small files (a few KB at most) so that mutations reach every field. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autoenc/autoenc.h"
#include "test_support.h"

static char g_out[4096];

static void check(ae_status st, const char *what)
{
    if (st != AE_OK) {
        fprintf(stderr, "make_seeds: %s: %s (%s)\n", what, ae_status_string(st), ae_last_error());
        exit(1);
    }
}

static const char *out(const char *sub, const char *name)
{
    static char p[4200];
    snprintf(p, sizeof p, "%s/%s/%s", g_out, sub, name);
    return p;
}

static void mkdir_p(const char *p)
{
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        perror(p);
        exit(1);
    }
}

static void fill(float *x, size_t n, uint64_t seed)
{
    ae_test_rng r;
    ae_test_rng_seed(&r, seed);
    ae_test_fill(&r, x, n, -0.25, 0.75);
}

/* A raw .npy file with an arbitrary header (uint8 data, or format 2.0). */
static void raw_npy(const char *name, int major, const char *dict, const void *body, size_t n)
{
    if (ae_test_write_npy(out("npy", name), major, dict, 64, body, n) != 0) exit(1);
}

static void seeds_npy(void)
{
    float x[6 * 5];
    unsigned char u[4 * 3 * 2];
    size_t d1[1] = {7}, d2[2] = {6, 5}, d3[3] = {2, 3, 5}, d4[4] = {1, 2, 3, 5};
    fill(x, 30, 1);
    for (size_t i = 0; i < sizeof u; i++) u[i] = (unsigned char)(i * 11);
    check(ae_npy_save_f32(out("npy", "f32_1d.npy"), x, 1, d1), "npy 1d");
    check(ae_npy_save_f32(out("npy", "f32_2d.npy"), x, 2, d2), "npy 2d");
    check(ae_npy_save_f32(out("npy", "f32_3d.npy"), x, 3, d3), "npy 3d");
    check(ae_npy_save_f32(out("npy", "f32_4d.npy"), x, 4, d4), "npy 4d");
    raw_npy("u8_2d.npy", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 6), }", u, 24);
    raw_npy("u8_3d_v2.npy", 2, "{'descr': '<u1', 'fortran_order': False, 'shape': (4, 3, 2), }",
            u, 24);
    raw_npy("f32_v3_py2.npy", 3, "{\"descr\": \"<f4\", \"shape\": (3L, 2L), \"fortran_order\": False}",
            x, 24);
}

static ae_model *dense_model(int with_code)
{
    ae_builder *b;
    ae_model *m;
    size_t in[1] = {6};
    check(ae_builder_create(&b, 1, in), "builder");
    check(ae_builder_dense(b, 4, AE_ACT_RELU), "dense");
    check(ae_builder_dense(b, 2, AE_ACT_LINEAR), "dense");
    if (with_code) check(ae_builder_mark_code(b), "mark");
    check(ae_builder_dense(b, 6, AE_ACT_SIGMOID), "dense");
    check(ae_builder_build(&m, b, 1), "build");
    ae_builder_free(b);
    return m;
}

static ae_model *conv_model(void)
{
    ae_builder *b;
    ae_model *m;
    size_t in[3] = {6, 6, 1}, img[3] = {2, 2, 2};
    check(ae_builder_create(&b, 3, in), "builder");
    check(ae_builder_conv2d(b, 2, 3, AE_PAD_SAME, AE_ACT_RELU), "conv");
    check(ae_builder_maxpool2d(b, AE_PAD_VALID), "pool");
    check(ae_builder_conv2d(b, 2, 2, AE_PAD_VALID, AE_ACT_LINEAR), "conv");
    check(ae_builder_maxpool2d(b, AE_PAD_SAME), "pool");
    check(ae_builder_flatten(b), "flatten");
    check(ae_builder_dense(b, 3, AE_ACT_RELU), "dense");
    check(ae_builder_mark_code(b), "mark");
    check(ae_builder_dense(b, 8, AE_ACT_RELU), "dense");
    check(ae_builder_reshape(b, 3, img), "reshape");
    check(ae_builder_upsample2d(b), "up");
    check(ae_builder_upsample2d(b), "up");
    check(ae_builder_conv2d(b, 1, 3, AE_PAD_VALID, AE_ACT_SIGMOID), "conv");
    check(ae_builder_activation(b, AE_ACT_RELU), "act");
    check(ae_builder_build(&m, b, 2), "build");
    ae_builder_free(b);
    return m;
}

/* the kinds and fields of format version 2 */
static ae_model *v2_model(void)
{
    ae_builder *b;
    ae_model *m;
    size_t in[3] = {6, 6, 1}, img[3] = {3, 3, 2};
    check(ae_builder_create(&b, 3, in), "builder");
    check(ae_builder_gaussian_noise(b, 0.1, 1), "noise");
    check(ae_builder_masking_noise(b, 0.2), "mask");
    check(ae_builder_conv2d_ex(b, 2, 3, 2, AE_PAD_SAME, AE_ACT_LEAKY_RELU), "conv");
    check(ae_builder_activation_param(b, 0.2), "alpha");
    check(ae_builder_batchnorm(b, 0.99, 1e-3), "bn");
    check(ae_builder_flatten(b), "flatten");
    check(ae_builder_dropout(b, 0.5), "dropout");
    check(ae_builder_dense(b, 6, AE_ACT_ELU), "dense");
    check(ae_builder_sampling(b, 1.0 / 18), "sampling");
    check(ae_builder_mark_code(b), "mark");
    check(ae_builder_activity_regularization(b, 1e-4, 1e-3), "activity");
    check(ae_builder_dense(b, 18, AE_ACT_TANH), "dense");
    check(ae_builder_reshape(b, 3, img), "reshape");
    check(ae_builder_conv2d_transpose(b, 1, 4, 2, AE_PAD_SAME, AE_ACT_SOFTPLUS), "convt");
    check(ae_builder_build(&m, b, 3), "build");
    ae_builder_free(b);
    return m;
}

static void seeds_model(void)
{
    ae_model *m = dense_model(1);
    check(ae_model_save(m, out("model", "dense_code.aemodel")), "save");
    ae_model_free(m);
    m = dense_model(0);
    check(ae_model_save(m, out("model", "dense_nocode.aemodel")), "save");
    ae_model_free(m);
    m = conv_model();
    check(ae_model_save(m, out("model", "conv.aemodel")), "save");
    ae_model_free(m);
    m = v2_model();
    check(ae_model_save(m, out("model", "v2_kinds.aemodel")), "save");
    ae_model_free(m);
}

static int stop_mid_epoch(ae_train_event ev, size_t epoch, size_t step, size_t steps,
                          double loss, const ae_model *m, const ae_history *h, void *user)
{
    (void)epoch; (void)steps; (void)loss; (void)m; (void)h; (void)user;
    return ev == AE_EVENT_BATCH_END && step == 2;
}

/* Checkpoints of the small dense model: after an epoch (with best weights),
 * and mid-epoch before any epoch ended (without), for Nadam and SGD; and
 * one of a block-shuffled run (flag 1, the block record). */
static void seeds_checkpoint(void)
{
    float x[12 * 6];
    ae_train_config *c;
    fill(x, sizeof x / sizeof x[0], 3);
    check(ae_train_config_create(&c), "config");
    check(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, 1), "epochs");
    check(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 3), "batch");
    check(ae_train_config_set_int(c, AE_TRAIN_THREADS, 1), "threads");
    check(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0.25), "split");
    for (int k = 0; k < 3; k++) {
        static const char *names[3] = {"nadam_epoch.aeckpt", "sgd_mid_epoch.aeckpt",
                                       "nadam_block_shuffle.aeckpt"};
        ae_model *m = dense_model(1);
        ae_train_state *s;
        ae_status st;
        check(ae_train_config_set_int(c, AE_TRAIN_OPTIMIZER, k == 1 ? AE_OPT_SGD : AE_OPT_NADAM), "opt");
        check(ae_train_config_set_callback(c, k == 1 ? stop_mid_epoch : NULL, NULL), "callback");
        check(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_BLOCK, k == 2 ? 2 : 0), "block");
        check(ae_train_state_create(&s), "state");
        st = ae_train_fit_state(m, c, s, x, NULL, 12, NULL);
        if (st != AE_OK && st != AE_STOPPED) check(st, "fit");
        check(ae_train_state_save(s, m, out("checkpoint", names[k])), "save");
        ae_train_state_free(s);
        ae_model_free(m);
    }
    ae_train_config_free(c);
}

/* Every backend and metric, with and without labels; the "live" seeds were
 * added to after the build (the ball tree's overflow) and had codes removed,
 * so the removed-rows section and the tree's T field are covered. */
static void seeds_index(void)
{
    static const char *bn[] = {"", "brute", "balltree", "hnsw"}, *mn[] = {"", "l2", "cos", "ip"};
    const size_t n = 24, d = 3;
    float x[24 * 3];
    int64_t ids[24], gone[3] = {1000 - 3 * 2, 1000 - 3 * 9, 1000 - 3 * 20};
    int32_t labels[24];
    fill(x, n * d, 3);
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int64_t)(1000 - 3 * i);
        labels[i] = (int32_t)(i % 4);
    }
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_INNER_PRODUCT; m++)
            for (int lab = 0; lab < 3; lab++) {
                ae_index *idx;
                char name[64];
                check(ae_index_create(&idx, b, m, d), "index");
                if (b == AE_INDEX_BALLTREE) check(ae_index_set_int(idx, AE_INDEX_LEAF_SIZE, 3), "leaf");
                if (b == AE_INDEX_HNSW) {
                    check(ae_index_set_int(idx, AE_INDEX_HNSW_M, 2), "m");
                    check(ae_index_set_int(idx, AE_INDEX_SEED, 5), "seed");
                }
                if (lab == 2) { /* live: 16 built, 8 added, 3 removed */
                    check(ae_index_build(idx, x, 16, ids, labels), "build");
                    check(ae_index_add(idx, x + 16 * d, n - 16, ids + 16, labels + 16), "add");
                    check(ae_index_remove(idx, gone, 3), "remove");
                } else {
                    check(ae_index_build(idx, x, n, lab ? ids : NULL, lab ? labels : NULL),
                          "build");
                }
                snprintf(name, sizeof name, "%s_%s%s.aeidx", bn[b], mn[m],
                         lab == 2 ? "_live" : lab ? "_labels" : "");
                check(ae_index_save(idx, out("index", name)), "save");
                ae_index_free(idx);
            }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OUTDIR\n");
        return 2;
    }
    snprintf(g_out, sizeof g_out, "%s", argv[1]);
    mkdir_p(g_out);
    mkdir_p(out("npy", ""));
    mkdir_p(out("model", ""));
    mkdir_p(out("index", ""));
    mkdir_p(out("checkpoint", ""));
    seeds_npy();
    seeds_model();
    seeds_index();
    seeds_checkpoint();
    printf("make_seeds: corpora written to %s/{npy,model,index,checkpoint}\n", g_out);
    return 0;
}
