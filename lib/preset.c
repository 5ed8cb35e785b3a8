/* The reference tutorial's models (preset.h). */
#include <string.h>

#include "internal.h"

/* Each preset is a list of steps run through the public builder calls, so the
 * presets exercise exactly the path a user takes; AE__NESTED keeps the name
 * ae_preset_build in their messages. */

typedef struct preset_step {
    ae_layer_kind kind;
    size_t units; /* dense units / conv filters */
    ae_padding padding;
    ae_activation activation;
    int is_code;
} preset_step;

static ae_status build_steps(ae_model **out, uint64_t seed, int rank, const size_t *dims,
                             const preset_step *steps, size_t n_steps)
{
    ae_builder *b;
    ae_status st = AE__NESTED(ae_builder_create(&b, rank, dims));
    for (size_t i = 0; i < n_steps && st == AE_OK; i++) {
        const preset_step *s = &steps[i];
        switch (s->kind) {
        case AE_LAYER_DENSE: st = AE__NESTED(ae_builder_dense(b, s->units, s->activation)); break;
        case AE_LAYER_CONV2D:
            st = AE__NESTED(ae_builder_conv2d(b, s->units, 3, s->padding, s->activation));
            break;
        case AE_LAYER_MAXPOOL2D: st = AE__NESTED(ae_builder_maxpool2d(b, s->padding)); break;
        case AE_LAYER_UPSAMPLE2D: st = AE__NESTED(ae_builder_upsample2d(b)); break;
        default: st = ae__fail(NULL, AE_ERR_INTERNAL, "bad preset step"); break;
        }
        if (st == AE_OK && s->is_code) st = AE__NESTED(ae_builder_mark_code(b));
    }
    if (st == AE_OK) st = AE__NESTED(ae_builder_build(out, b, seed));
    ae_builder_free(b);
    return st;
}

#define N_STEPS(a) (sizeof(a) / sizeof((a)[0]))
static const size_t flat_input[1] = {784};
static const size_t image_input[3] = {28, 28, 1};

static ae_status build_simple(ae_model **out, uint64_t seed)
{
    static const preset_step steps[] = {
        {AE_LAYER_DENSE, 32, AE_PAD_SAME, AE_ACT_RELU, 1},
        {AE_LAYER_DENSE, 784, AE_PAD_SAME, AE_ACT_SIGMOID, 0},
    };
    return build_steps(out, seed, 1, flat_input, steps, N_STEPS(steps));
}

static ae_status build_deep(ae_model **out, uint64_t seed)
{
    static const preset_step steps[] = {
        {AE_LAYER_DENSE, 128, AE_PAD_SAME, AE_ACT_RELU, 0},  {AE_LAYER_DENSE, 64, AE_PAD_SAME, AE_ACT_RELU, 0},
        {AE_LAYER_DENSE, 32, AE_PAD_SAME, AE_ACT_RELU, 1},   {AE_LAYER_DENSE, 64, AE_PAD_SAME, AE_ACT_RELU, 0},
        {AE_LAYER_DENSE, 128, AE_PAD_SAME, AE_ACT_RELU, 0},  {AE_LAYER_DENSE, 784, AE_PAD_SAME, AE_ACT_SIGMOID, 0},
    };
    return build_steps(out, seed, 1, flat_input, steps, N_STEPS(steps));
}

static ae_status build_conv(ae_model **out, uint64_t seed)
{
    static const preset_step steps[] = {
        {AE_LAYER_CONV2D, 16, AE_PAD_SAME, AE_ACT_RELU, 0},   /* 28x28x16 */
        {AE_LAYER_MAXPOOL2D, 0, AE_PAD_SAME, AE_ACT_LINEAR, 0},           /* 14x14x16 */
        {AE_LAYER_CONV2D, 8, AE_PAD_SAME, AE_ACT_RELU, 0},    /* 14x14x8 */
        {AE_LAYER_MAXPOOL2D, 0, AE_PAD_SAME, AE_ACT_LINEAR, 0},           /* 7x7x8 */
        {AE_LAYER_CONV2D, 8, AE_PAD_SAME, AE_ACT_RELU, 0},    /* 7x7x8 */
        {AE_LAYER_MAXPOOL2D, 0, AE_PAD_SAME, AE_ACT_LINEAR, 1},           /* 4x4x8: the code */
        {AE_LAYER_CONV2D, 8, AE_PAD_SAME, AE_ACT_RELU, 0},    /* 4x4x8 */
        {AE_LAYER_UPSAMPLE2D, 0, AE_PAD_SAME, AE_ACT_LINEAR, 0},                    /* 8x8x8 */
        {AE_LAYER_CONV2D, 8, AE_PAD_SAME, AE_ACT_RELU, 0},    /* 8x8x8 */
        {AE_LAYER_UPSAMPLE2D, 0, AE_PAD_SAME, AE_ACT_LINEAR, 0},                    /* 16x16x8 */
        {AE_LAYER_CONV2D, 16, AE_PAD_VALID, AE_ACT_RELU, 0},  /* 14x14x16 */
        {AE_LAYER_UPSAMPLE2D, 0, AE_PAD_SAME, AE_ACT_LINEAR, 0},                    /* 28x28x16 */
        {AE_LAYER_CONV2D, 1, AE_PAD_SAME, AE_ACT_SIGMOID, 0}, /* 28x28x1 */
    };
    return build_steps(out, seed, 3, image_input, steps, N_STEPS(steps));
}

/* The conv-BN family of issue 11's table (a PyTorch reference reached
 * precision@10 0.807 / 0.819 with widths 8 / 16 on QuickDraw-10): strided
 * convolutions down to 7x7x4w, a linear 32-float code, transposed
 * convolutions back up; every hidden convolution linear, then batch norm,
 * then relu. */
static ae_status build_conv_bn(ae_model **out, uint64_t seed, size_t w)
{
    const size_t grid[3] = {7, 7, 4 * w};
    ae_builder *b;
    ae_status st = AE__NESTED(ae_builder_create(&b, 3, image_input));
#define STEP(call) do { if (st == AE_OK) st = AE__NESTED(call); } while (0)
#define BN_RELU() do { STEP(ae_builder_batchnorm(b, 0.99, 1e-3)); \
                       STEP(ae_builder_activation(b, AE_ACT_RELU)); } while (0)
    STEP(ae_builder_conv2d_ex(b, w, 3, 1, AE_PAD_SAME, AE_ACT_LINEAR));         /* 28x28xw */
    BN_RELU();
    STEP(ae_builder_conv2d_ex(b, 2 * w, 3, 2, AE_PAD_SAME, AE_ACT_LINEAR));     /* 14x14x2w */
    BN_RELU();
    STEP(ae_builder_conv2d_ex(b, 4 * w, 3, 2, AE_PAD_SAME, AE_ACT_LINEAR));     /* 7x7x4w */
    BN_RELU();
    STEP(ae_builder_flatten(b));
    STEP(ae_builder_dense(b, 32, AE_ACT_LINEAR));
    STEP(ae_builder_mark_code(b));
    STEP(ae_builder_dense(b, 4 * w * 7 * 7, AE_ACT_RELU));
    STEP(ae_builder_reshape(b, 3, grid));
    STEP(ae_builder_conv2d_transpose(b, 2 * w, 4, 2, AE_PAD_SAME, AE_ACT_LINEAR)); /* 14x14x2w */
    BN_RELU();
    STEP(ae_builder_conv2d_transpose(b, w, 4, 2, AE_PAD_SAME, AE_ACT_LINEAR));     /* 28x28xw */
    BN_RELU();
    STEP(ae_builder_conv2d_ex(b, 1, 3, 1, AE_PAD_SAME, AE_ACT_SIGMOID));
    STEP(ae_builder_build(out, b, seed));
#undef BN_RELU
#undef STEP
    ae_builder_free(b);
    return st;
}

static ae_status build_conv_bn8(ae_model **out, uint64_t seed) { return build_conv_bn(out, seed, 8); }
static ae_status build_conv_bn16(ae_model **out, uint64_t seed) { return build_conv_bn(out, seed, 16); }

typedef struct preset_entry {
    const char *name;
    ae_status (*build)(ae_model **out, uint64_t seed);
} preset_entry;

static const preset_entry presets[] = {
    [AE_PRESET_SIMPLE] = {"simple", build_simple},
    [AE_PRESET_DEEP] = {"deep", build_deep},
    [AE_PRESET_CONV] = {"conv", build_conv},
    [AE_PRESET_CONV_BN8] = {"conv_bn8", build_conv_bn8},
    [AE_PRESET_CONV_BN16] = {"conv_bn16", build_conv_bn16},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

static const preset_entry *find_preset(ae_preset preset)
{
    if ((int)preset <= 0 || (size_t)preset >= N_PRESETS || !presets[preset].name) return NULL;
    return &presets[preset];
}

ae_status ae_preset_build(ae_model **out, ae_preset preset, uint64_t seed)
{
    AE__ENTER();
    const preset_entry *e = find_preset(preset);
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!e) return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown preset %d", (int)preset);
    return e->build(out, seed);
}

const char *ae_preset_name(ae_preset preset)
{
    const preset_entry *e = find_preset(preset);
    return e ? e->name : NULL;
}

ae_status ae_preset_from_name(ae_preset *out, const char *name)
{
    AE__ENTER();
    if (!out || !name) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    for (size_t i = 1; i < N_PRESETS; i++) {
        if (presets[i].name && strcmp(presets[i].name, name) == 0) {
            *out = (ae_preset)i;
            return AE_OK;
        }
    }
    return ae__fail(NULL, AE_ERR_INVALID_ARG,
                    "no preset is called '%s' (simple, deep, conv, conv_bn8, conv_bn16)", name);
}
