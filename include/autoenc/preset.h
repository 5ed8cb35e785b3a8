/*
 * libautoenc: the reference tutorial's models, one call each.
 *
 * A preset is a fixed recipe of builder calls (builder.h): the model it builds
 * is an ordinary model, with layer names, shapes and parameter counts those of
 * the Keras tutorial it reproduces.
 *
 *     ae_model *m;
 *     ae_preset_build(&m, AE_PRESET_CONV, 42);
 *
 * Threading: every function here is safe to call from any thread.
 */
#ifndef AUTOENC_PRESET_H
#define AUTOENC_PRESET_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Preset models. Values are pinned; new presets are appended. */
typedef enum ae_preset {
    /** "simple": 784 -> Dense(32, relu) [code] -> Dense(784, sigmoid):
     *  50,992 parameters. */
    AE_PRESET_SIMPLE = 1,
    /** "deep": 784-128-64-32[code]-64-128-784 (relu, sigmoid out):
     *  222,384 parameters. */
    AE_PRESET_DEEP = 2,
    /** "conv": 28x28x1 -> Conv16 -> Pool -> Conv8 -> Pool -> Conv8 -> Pool
     *  [code 4x4x8] -> Conv8 -> Up -> Conv8 -> Up -> Conv16(valid) -> Up ->
     *  Conv1(sigmoid): 4,385 parameters. All convolutions 3x3, relu, same
     *  padding unless noted. */
    AE_PRESET_CONV = 3,
    /** "conv_bn8": a retrieval-grade model with a 32-float code, width w = 8:
     *  28x28x1 -> Conv3x3(w) -> BN -> ReLU -> Conv3x3 stride 2 (2w) -> BN ->
     *  ReLU -> Conv3x3 stride 2 (4w) -> BN -> ReLU -> Flatten -> Dense(32)
     *  [code, linear] -> Dense(4w*7*7, relu) -> Reshape(7, 7, 4w) ->
     *  ConvTranspose4x4 stride 2 (2w) -> BN -> ReLU -> ConvTranspose4x4
     *  stride 2 (w) -> BN -> ReLU -> Conv3x3(1, sigmoid); same padding, batch
     *  norm momentum 0.99, epsilon 1e-3: 118,337 trainable parameters (and
     *  160 moving statistics). */
    AE_PRESET_CONV_BN8 = 4,
    /** "conv_bn16": AE_PRESET_CONV_BN8 with w = 16: 268,641 trainable
     *  parameters (and 320 moving statistics). */
    AE_PRESET_CONV_BN16 = 5
} ae_preset;

/**
 * Builds preset @p preset into @p out with initial weights from @p seed (as
 * ae_builder_build).
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL out, unknown preset) or AE_ERR_NOMEM.
 */
AE_API ae_status ae_preset_build(ae_model **out, ae_preset preset, uint64_t seed);

/** Static lower-case name of a preset ("simple", "deep", "conv", "conv_bn8",
 * "conv_bn16"), NULL if unknown. */
AE_API const char *ae_preset_name(ae_preset preset);

/**
 * The preset called @p name (as ae_preset_name gives it).
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL argument or no preset has that name).
 */
AE_API ae_status ae_preset_from_name(ae_preset *out, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_PRESET_H */
