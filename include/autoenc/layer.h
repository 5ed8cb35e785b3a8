/*
 * libautoenc: layers, as seen from outside a model.
 *
 * Layers are added with the builder (builder.h) and owned by the model; a
 * const ae_layer pointer from ae_model_layer() is borrowed and valid as long
 * as the model. Shapes are per sample (no batch axis): dense layers have rank
 * 1 (units), image layers rank 3 (height, width, channels) in NHWC order.
 *
 * Weight layouts (for ae_layer_param):
 *  - dense:  kernel (in, units) row-major, bias (units) (as Keras);
 *  - conv2d: kernel (kh, kw, in_channels, filters) row-major, bias (filters)
 *            (as Keras' HWIO layout);
 *  - conv2d_transpose: kernel (kh, kw, filters, in_channels) row-major, bias
 *            (filters) (as Keras' Conv2DTranspose);
 *  - batch normalisation over C channels (the features of a rank-1 input,
 *            the last axis of an image): kernel gamma (C), bias beta (C),
 *            and the non-trainable moving mean (C) and variance (C).
 *
 * A sampling layer (ae_builder_sampling) has no parameters: its input is
 * 2z floats, z means then z log-variances, its output z floats.
 */
#ifndef AUTOENC_LAYER_H
#define AUTOENC_LAYER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque layer handle (owned by its model). */
typedef struct ae_layer ae_layer;

/** Kinds of layer. Values are pinned. */
typedef enum ae_layer_kind {
    AE_LAYER_DENSE = 1,      /**< fully connected, optional fused activation */
    AE_LAYER_CONV2D = 2,     /**< k x k convolution, any stride, same or valid padding */
    AE_LAYER_MAXPOOL2D = 3,  /**< 2x2 max pooling, stride 2, same or valid rounding */
    AE_LAYER_UPSAMPLE2D = 4, /**< nearest-neighbour upsampling by 2 */
    AE_LAYER_ACTIVATION = 5, /**< element-wise activation */
    AE_LAYER_FLATTEN = 6,    /**< (h, w, c) -> (h*w*c) */
    AE_LAYER_RESHAPE = 7,    /**< any shape -> any shape of the same size */
    AE_LAYER_CONV2D_TRANSPOSE = 8, /**< transposed k x k convolution (Keras Conv2DTranspose) */
    AE_LAYER_BATCHNORM = 9,        /**< batch normalisation over features or channels */
    AE_LAYER_DROPOUT = 10,         /**< inverted dropout, training only */
    AE_LAYER_GAUSSIAN_NOISE = 11,  /**< additive Gaussian noise, training only */
    AE_LAYER_MASKING_NOISE = 12,   /**< values zeroed at random, training only */
    AE_LAYER_ACTIVITY_REGULARIZATION = 13, /**< identity that adds an L1/L2 penalty on its values to the loss */
    AE_LAYER_SAMPLING = 14         /**< VAE reparameterisation (mean, log-variance) -> z */
} ae_layer_kind;

/** Activation functions. Values are pinned. */
typedef enum ae_activation {
    AE_ACT_LINEAR = 0,  /**< identity */
    AE_ACT_RELU = 1,    /**< max(0, x) */
    AE_ACT_SIGMOID = 2,    /**< 1 / (1 + exp(-x)) */
    AE_ACT_TANH = 3,       /**< tanh(x) */
    AE_ACT_LEAKY_RELU = 4, /**< x for x > 0, alpha x otherwise (alpha 0.3 unless set) */
    AE_ACT_ELU = 5,        /**< x for x > 0, alpha (exp(x) - 1) otherwise (alpha 1 unless set) */
    AE_ACT_SOFTPLUS = 6    /**< log(1 + exp(x)) */
} ae_activation;

/** Padding of convolutions and rounding of pooling. Values are pinned. */
typedef enum ae_padding {
    AE_PAD_SAME = 0,  /**< output size ceil(in / stride); zero padding */
    AE_PAD_VALID = 1  /**< only full windows: conv in - k + 1, pool floor(in / 2) */
} ae_padding;

/** Which parameter array of a layer (ae_layer_param). Values are pinned. */
typedef enum ae_param_kind {
    AE_PARAM_KERNEL = 0, /**< weights (batch norm: gamma) */
    AE_PARAM_BIAS = 1,   /**< biases (batch norm: beta) */
    AE_PARAM_MOVING_MEAN = 2,     /**< batch norm: moving mean (not trained) */
    AE_PARAM_MOVING_VARIANCE = 3  /**< batch norm: moving variance (not trained) */
} ae_param_kind;

/** Kind of the layer (an ae_layer_kind value). */
AE_API ae_layer_kind ae_layer_kind_of(const ae_layer *layer);
/** Static lower-case name of a kind ("dense", "conv2d", ...), "unknown" otherwise. */
AE_API const char *ae_layer_kind_name(ae_layer_kind kind);
/** Name unique within its model, as Keras names them ("dense", "dense_1", ...). */
AE_API const char *ae_layer_name(const ae_layer *layer);
/** Activation applied by the layer (AE_ACT_LINEAR for none). */
AE_API ae_activation ae_layer_activation(const ae_layer *layer);
/**
 * Parameter (alpha) of the layer's activation: the slope of leaky ReLU for
 * negative inputs, the scale of ELU's negative branch; 0 for the other
 * activations. Set with ae_builder_activation_param().
 */
AE_API double ae_layer_activation_param(const ae_layer *layer);
/** Rank of the per-sample output shape (1 or 3). */
AE_API int ae_layer_output_rank(const ae_layer *layer);
/** Per-sample output dimension @p axis (0 if out of range). */
AE_API size_t ae_layer_output_dim(const ae_layer *layer, int axis);
/**
 * Rate of a dropout layer, standard deviation of a Gaussian noise layer,
 * probability of a masking noise layer; 0 for other layers.
 */
AE_API double ae_layer_noise_param(const ae_layer *layer);
/**
 * Coefficients of an activity regularisation layer
 * (ae_builder_activity_regularization): @p l1 and @p l2 receive them.
 * @param l1 receives the L1 coefficient (may be NULL)
 * @param l2 receives the L2 coefficient (may be NULL)
 * @param layer the layer
 * @return AE_OK; AE_ERR_INVALID_ARG for a NULL layer or another kind of layer
 */
AE_API ae_status ae_layer_activity_regularization(double *l1, double *l2, const ae_layer *layer);
/**
 * Options of a batch normalisation layer (ae_builder_batchnorm).
 * @param momentum receives the moving averages' momentum (may be NULL)
 * @param epsilon receives the variance epsilon (may be NULL)
 * @param layer the layer
 * @return AE_OK; AE_ERR_INVALID_ARG for a NULL layer or another kind of layer
 */
AE_API ae_status ae_layer_batchnorm(double *momentum, double *epsilon, const ae_layer *layer);
/**
 * Weight of the KL term of a sampling layer (ae_builder_sampling).
 * @param kl_weight receives the weight (may be NULL)
 * @param layer the layer
 * @return AE_OK; AE_ERR_INVALID_ARG for a NULL layer or another kind of layer
 */
AE_API ae_status ae_layer_sampling(double *kl_weight, const ae_layer *layer);
/**
 * 1 if the layer is a Gaussian noise layer whose output is clipped to
 * [0, 1] (ae_builder_gaussian_noise with clip set), else 0 (also for NULL).
 */
AE_API int ae_layer_noise_clipped(const ae_layer *layer);
/** Stride of a convolution or transposed convolution (1 for other layers, 0 for NULL). */
AE_API size_t ae_layer_stride(const ae_layer *layer);
/** Floats per sample in the output. */
AE_API size_t ae_layer_output_size(const ae_layer *layer);
/** Trainable parameters of the layer (0 for parameterless layers; a batch
 * norm's moving statistics are not counted). */
AE_API size_t ae_layer_param_count(const ae_layer *layer);
/**
 * Borrowed read-only view of a parameter array (layouts above): @p data
 * receives the pointer, @p count the number of floats. Returns
 * AE_ERR_INVALID_ARG for a layer without that parameter. Valid until the
 * model is trained, loaded into, or freed.
 */
AE_API ae_status ae_layer_param(const float **data, size_t *count, const ae_layer *layer,
                                ae_param_kind which);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_LAYER_H */
