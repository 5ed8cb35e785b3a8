/*
 * libautoenc: building models.
 *
 * A builder collects layers in order from an input shape, infers every
 * layer's output shape as it goes (an impossible layer is refused with
 * AE_ERR_SHAPE and not added), and builds a model with freshly initialised
 * weights (Keras' defaults: Glorot-uniform kernels, zero biases) drawn from an
 * explicit seed, so builds are reproducible.
 *
 *     ae_builder *b; ae_model *m;
 *     size_t in[] = {784};
 *     ae_builder_create(&b, 1, in);
 *     ae_builder_dense(b, 32, AE_ACT_RELU);
 *     ae_builder_mark_code(b);               // the bottleneck
 *     ae_builder_dense(b, 784, AE_ACT_SIGMOID);
 *     ae_builder_build(&m, b, 42);
 *     ae_builder_free(b);
 *
 * The reference tutorial's models are one call each: see preset.h.
 *
 * Threading: a builder is used by one thread at a time.
 */
#ifndef AUTOENC_BUILDER_H
#define AUTOENC_BUILDER_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque builder handle. */
typedef struct ae_builder ae_builder;

/**
 * New builder for inputs of the given per-sample shape: rank 1 (features) or
 * rank 3 (height, width, channels).
 */
AE_API ae_status ae_builder_create(ae_builder **out, int rank, const size_t *input_dims);
/** Frees the builder (models already built are independent). NULL is accepted. */
AE_API void ae_builder_free(ae_builder *b);
/** Message of the builder's last failure ("" if none). */
AE_API const char *ae_builder_errmsg(const ae_builder *b);

/** Dense layer on a rank-1 input (flatten images first). */
AE_API ae_status ae_builder_dense(ae_builder *b, size_t units, ae_activation activation);
/** Convolution on a rank-3 input: @p filters outputs, odd or even k x k kernel, stride 1. */
AE_API ae_status ae_builder_conv2d(ae_builder *b, size_t filters, size_t kernel,
                                   ae_padding padding, ae_activation activation);
/**
 * Convolution with a stride, Keras' Conv2D(filters, kernel, strides=stride,
 * padding): AE_PAD_SAME gives ceil(in / stride) outputs per axis, padded with
 * zeros split as TensorFlow does (the odd one at the bottom/right); VALID
 * gives floor((in - kernel) / stride) + 1.
 * @param b builder
 * @param filters output channels, 1..65536
 * @param kernel window side, 1..64
 * @param stride 1..64
 * @param padding AE_PAD_SAME or AE_PAD_VALID
 * @param activation fused activation
 * @return AE_OK; AE_ERR_SHAPE if the window does not fit, AE_ERR_RANGE or
 *         AE_ERR_INVALID_ARG for bad arguments
 */
AE_API ae_status ae_builder_conv2d_ex(ae_builder *b, size_t filters, size_t kernel, size_t stride,
                                      ae_padding padding, ae_activation activation);
/**
 * Transposed convolution, Keras' Conv2DTranspose(filters, kernel,
 * strides=stride, padding): AE_PAD_SAME gives in * stride outputs per axis,
 * VALID in * stride + max(kernel - stride, 0). The weights are laid out
 * (kernel, kernel, filters, in_channels) as in Keras.
 * @param b builder
 * @param filters output channels, 1..65536
 * @param kernel window side, 1..64
 * @param stride 1..64
 * @param padding AE_PAD_SAME or AE_PAD_VALID
 * @param activation fused activation
 * @return AE_OK; AE_ERR_RANGE or AE_ERR_INVALID_ARG for bad arguments
 */
AE_API ae_status ae_builder_conv2d_transpose(ae_builder *b, size_t filters, size_t kernel,
                                             size_t stride, ae_padding padding,
                                             ae_activation activation);
/**
 * Batch normalisation, Keras' BatchNormalization(momentum, epsilon) over the
 * last axis (the features of a rank-1 input, the channels of an image):
 * y = gamma (x - mean) / sqrt(var + epsilon) + beta. Training passes (fit)
 * use the batch's mean and (biased) variance, over every thread's rows, and
 * update moving = momentum moving + (1 - momentum) batch; inference
 * (predict, encode, evaluate, validation) uses the moving statistics. gamma
 * starts at 1, beta and the moving mean at 0, the moving variance at 1.
 * Keras' defaults are momentum 0.99, epsilon 1e-3.
 * @param b builder
 * @param momentum 0..1
 * @param epsilon 1e-12..1
 * @return AE_OK; AE_ERR_RANGE for a bad momentum or epsilon
 */
AE_API ae_status ae_builder_batchnorm(ae_builder *b, double momentum, double epsilon);
/**
 * Inverted dropout (Keras' Dropout(rate)): in training passes each value is
 * zeroed with probability @p rate and the others scaled by 1 / (1 - rate);
 * inference passes leave the data unchanged. The draws come from the fit
 * seed (AE_TRAIN_SEED), the step and the layer: the same for a seed whatever
 * the thread count.
 * @param b builder
 * @param rate 0 <= rate < 1
 * @return AE_OK; AE_ERR_RANGE for a bad rate
 */
AE_API ae_status ae_builder_dropout(ae_builder *b, double rate);
/**
 * Additive Gaussian noise for denoising autoencoders (Keras' GaussianNoise):
 * training passes add stddev * N(0, 1) to every value and, if @p clip is
 * non-zero, clip the result to [0, 1] (as the denoising example of Keras'
 * autoencoder tutorial clips its noisy images); inference passes leave the
 * data unchanged. Trained with an autoencoder's own inputs as targets, the
 * model learns to map corrupted inputs to clean ones. Draws as for dropout.
 * @param b builder
 * @param stddev 0..1e6
 * @param clip 0 or 1
 * @return AE_OK; AE_ERR_RANGE for a bad stddev
 */
AE_API ae_status ae_builder_gaussian_noise(ae_builder *b, double stddev, int clip);
/**
 * Masking noise for denoising autoencoders: training passes set each value
 * to 0 with probability @p probability (no rescaling, unlike dropout);
 * inference passes leave the data unchanged. Draws as for dropout.
 * @param b builder
 * @param probability 0 <= probability < 1
 * @return AE_OK; AE_ERR_RANGE for a bad probability
 */
AE_API ae_status ae_builder_masking_noise(ae_builder *b, double probability);
/**
 * Activity regularisation, Keras' ActivityRegularization(l1, l2): the
 * identity on the values, which adds l1 * sum|a| + l2 * sum a^2 over each
 * row's values a to that row's loss, so the loss the fit minimises and
 * reports is the data loss (the mean over the output elements of a row,
 * averaged over the rows) plus this penalty averaged over the rows, as
 * tf.keras divides activity regularisation by the batch size. Placed right
 * after a layer it acts as that layer's activity_regularizer: a sparse
 * autoencoder adds it after the code layer, as Keras'
 * Dense(32, activity_regularizer=l1(1e-4)). The penalty counts in training
 * (loss, gradients), in the validation loss and in ae_model_evaluate, not in
 * predict or encode (where the layer is the identity). The gradient of
 * |a| at a = 0 is 0.
 * @param b builder
 * @param l1 L1 coefficient, 0..1e6
 * @param l2 L2 coefficient, 0..1e6
 * @return AE_OK; AE_ERR_RANGE for a bad coefficient
 */
AE_API ae_status ae_builder_activity_regularization(ae_builder *b, double l1, double l2);
/**
 * Sampling layer of a variational autoencoder (the reparameterisation of
 * Keras' VAE example). Its input is a rank-1 output of 2z floats, the z
 * means then the z log-variances (normally a linear dense layer of 2z
 * units); its output is z floats. Training passes (fit) output
 * z = mean + exp(0.5 * log_var) * eps with eps ~ N(0, 1), drawn from the fit
 * seed as the noise layers draw (the same whatever the thread count);
 * inference passes (predict, encode, decode, evaluate, validation) output
 * the mean, so mark this layer as the code (ae_builder_mark_code) and the
 * encoder of the model returns the means.
 *
 * The layer adds kl_weight * KL to the loss of each row, where
 * KL = -0.5 * sum(1 + log_var - mean^2 - exp(log_var)) over the z pairs is
 * the divergence of N(mean, exp(log_var)) from N(0, 1). The model's loss is
 * a mean over output elements, so the objective of Keras' example and of
 * "Building Autoencoders in Keras" (D * BCE + KL for D outputs, e.g.
 * 784 * BCE + KL on 28x28 images) is kl_weight = 1 / D: the loss is then
 * that objective divided by D. The KL term is part of the training loss,
 * the validation loss and ae_model_evaluate (as in Keras' val_loss).
 * @param b builder
 * @param kl_weight 0..1e6 (0: a plain autoencoder with noisy codes)
 * @return AE_OK; AE_ERR_SHAPE if the input is not rank 1 of an even size,
 *         AE_ERR_RANGE for a bad weight
 */
AE_API ae_status ae_builder_sampling(ae_builder *b, double kl_weight);
/** 2x2 max pooling with stride 2; AE_PAD_SAME rounds up (7 -> 4), VALID down (7 -> 3). */
AE_API ae_status ae_builder_maxpool2d(ae_builder *b, ae_padding padding);
/** Nearest-neighbour upsampling by 2 in height and width. */
AE_API ae_status ae_builder_upsample2d(ae_builder *b);
/** Stand-alone element-wise activation. */
AE_API ae_status ae_builder_activation(ae_builder *b, ae_activation activation);
/**
 * Sets the parameter (alpha) of the activation of the most recently added
 * layer: the negative slope of AE_ACT_LEAKY_RELU (default 0.3, as Keras'
 * LeakyReLU layer) or the negative-branch scale of AE_ACT_ELU (default 1.0).
 * @param b builder
 * @param alpha finite, 0..1000
 * @return AE_OK; AE_ERR_STATE if the last layer's activation has no
 *         parameter (or no layer was added), AE_ERR_RANGE for a bad alpha
 */
AE_API ae_status ae_builder_activation_param(ae_builder *b, double alpha);
/** (h, w, c) -> (h*w*c), in NHWC order. */
AE_API ae_status ae_builder_flatten(ae_builder *b);
/** Reshape to rank 1 or 3 with the same number of floats per sample. */
AE_API ae_status ae_builder_reshape(ae_builder *b, int rank, const size_t *dims);
/**
 * Marks the most recently added layer as the code (bottleneck): encoders
 * extracted from the model stop after it. At most one layer is marked; a
 * later call moves the mark.
 */
AE_API ae_status ae_builder_mark_code(ae_builder *b);
/** Number of layers added so far. */
AE_API size_t ae_builder_layer_count(const ae_builder *b);

/**
 * Builds a model into @p out with initial weights from @p seed. The builder
 * stays usable (build again for another model with the same layers).
 */
AE_API ae_status ae_builder_build(ae_model **out, ae_builder *b, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_BUILDER_H */
