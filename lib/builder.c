/* The builder: layers added in order with shape inference, then a model with
 * Keras-default initial weights; and the tutorial's three reference models. */
#include <stdio.h>
#include <string.h>

#include "nn.h"

#define AE__MAX_LAYERS 256

struct ae_builder {
    ae__shape input, cur;
    ae_layer *layers;
    size_t n_layers, cap;
    int has_code;
    size_t code_layer;
    char msg[AE__MSG_CAP];
};

static int valid_activation(int a) { return a >= AE_ACT_LINEAR && a <= AE_ACT_SOFTPLUS; }

/* Keras' defaults: LeakyReLU layer 0.3, ELU 1.0 */
static float default_alpha(int act)
{
    return act == AE_ACT_LEAKY_RELU ? 0.3f : act == AE_ACT_ELU ? 1.0f : 0.0f;
}

static ae_status check_dims(char *msg, int rank, const size_t *dims,
                            ae__shape *out)
{
    size_t total = 1;
    if (rank != 1 && rank != 3)
        return ae__fail(msg, AE_ERR_SHAPE, "rank must be 1 (features) or 3 (h, w, c), not %d", rank);
    if (!dims) return ae__fail(msg, AE_ERR_INVALID_ARG, "dims is NULL");
    out->rank = rank;
    out->d[0] = out->d[1] = out->d[2] = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0) return ae__fail(msg, AE_ERR_SHAPE, "dimension %d is zero", i);
        if (ae__mul_size(total, dims[i], &total) != 0 || total > ((size_t)1 << 31))
            return ae__fail(msg, AE_ERR_RANGE, "shape too large");
        out->d[i] = dims[i];
    }
    return AE_OK;
}

ae_status ae_builder_create(ae_builder **out, int rank, const size_t *input_dims)
{
    AE__ENTER();
    ae_builder *b;
    ae__shape s;
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if ((st = check_dims(NULL, rank, input_dims, &s)) != AE_OK) return st;
    b = ae__calloc(1, sizeof *b);
    if (!b) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    b->input = b->cur = s;
    *out = b;
    return AE_OK;
}

void ae_builder_free(ae_builder *b)
{
    if (!b) return;
    ae__free(b->layers, b->cap * sizeof *b->layers);
    ae__free(b, sizeof *b);
}

const char *ae_builder_errmsg(const ae_builder *b) { return b ? b->msg : ""; }
size_t ae_builder_layer_count(const ae_builder *b) { return b ? b->n_layers : 0; }

/* Appends L (its kind, options and output shape filled by the caller). */
static ae_status push(ae_builder *b, ae_layer *L)
{
    if (b->n_layers == AE__MAX_LAYERS)
        return ae__fail(b->msg, AE_ERR_RANGE, "a model has at most %d layers", AE__MAX_LAYERS);
    if (b->n_layers == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        ae_layer *grown = ae__realloc(b->layers, b->cap * sizeof *grown, cap * sizeof *grown);
        if (!grown) return ae__fail(b->msg, AE_ERR_NOMEM, "out of memory adding a layer");
        b->layers = grown;
        b->cap = cap;
    }
    L->in = b->cur;
    L->alpha = default_alpha(L->activation);
    if (L->stride == 0) L->stride = 1;
    b->layers[b->n_layers++] = *L;
    b->cur = L->out;
    return AE_OK;
}

static ae_status need_image(ae_builder *b)
{
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (b->cur.rank != 3)
        return ae__fail(b->msg, AE_ERR_SHAPE,
                        "needs an image input (h, w, c); the previous output has rank 1");
    return AE_OK;
}

ae_status ae_builder_dense(ae_builder *b, size_t units, ae_activation activation)
{
    AE__ENTER();
    ae_layer L = {0};
    size_t in;
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (b->cur.rank != 1)
        return ae__fail(b->msg, AE_ERR_SHAPE,
                        "needs a rank-1 input; flatten the (%zu, %zu, %zu) "
                        "image first", b->cur.d[0], b->cur.d[1], b->cur.d[2]);
    if (units == 0 || units > ((size_t)1 << 24))
        return ae__fail(b->msg, AE_ERR_RANGE, "units must be 1..2^24, not %zu",
                        units);
    if (!valid_activation(activation))
        return ae__fail(b->msg, AE_ERR_INVALID_ARG, "unknown activation %d",
                        activation);
    in = b->cur.d[0];
    if (in > ((size_t)1 << 40) / units)
        return ae__fail(b->msg, AE_ERR_RANGE, "%zu x %zu weights is too many",
                        in, units);
    L.kind = AE_LAYER_DENSE;
    L.activation = activation;
    L.units = units;
    L.out.rank = 1;
    L.out.d[0] = units;
    L.out.d[1] = L.out.d[2] = 1;
    L.n_kernel = in * units;
    L.n_bias = units;
    return push(b, &L);
}

/* Output side and leading padding of a convolution along one axis, as
 * TensorFlow computes them: same -> ceil(in / s) outputs, the padding
 * max((out - 1) s + k - in, 0) split with the odd one at the end; valid ->
 * floor((in - k) / s) + 1 outputs (0 when the window does not fit). */
size_t ae__conv_axis(size_t in, size_t k, size_t s, int padding, size_t *pad_lead)
{
    size_t out, total;
    *pad_lead = 0;
    if (padding == AE_PAD_VALID) return in < k ? 0 : (in - k) / s + 1;
    out = (in + s - 1) / s;
    total = (out - 1) * s + k > in ? (out - 1) * s + k - in : 0;
    *pad_lead = total / 2;
    return out;
}

/* Keras' Conv2DTranspose sizes: same -> in s; valid -> in s + max(k - s, 0).
 * The leading padding is that of the convolution from the output back to
 * the input, whose input gradient this layer computes. */
size_t ae__convt_axis(size_t in, size_t k, size_t s, int padding, size_t *pad_lead)
{
    size_t out = in * s + (padding == AE_PAD_VALID && k > s ? k - s : 0);
    size_t total = (in - 1) * s + k > out ? (in - 1) * s + k - out : 0;
    *pad_lead = total / 2;
    return out;
}

/* conv2d (transpose 0) or conv2d_transpose (1), for the public functions */
static ae_status add_conv(ae_builder *b, int transpose, size_t filters, size_t kernel,
                          size_t stride, ae_padding padding, ae_activation activation)
{
    ae_layer L = {0};
    ae_status st;
    size_t total;
    if ((st = need_image(b)) != AE_OK) return st;
    if (filters == 0 || filters > 65536 || kernel == 0 || kernel > 64 || stride == 0 ||
        stride > 64)
        return ae__fail(b->msg, AE_ERR_RANGE,
                        "filters must be 1..65536, kernel 1..64 and stride 1..64 (got %zu, %zu, "
                        "%zu)", filters, kernel, stride);
    if (padding != AE_PAD_SAME && padding != AE_PAD_VALID)
        return ae__fail(b->msg, AE_ERR_INVALID_ARG, "unknown padding %d",
                        padding);
    if (!valid_activation(activation))
        return ae__fail(b->msg, AE_ERR_INVALID_ARG, "unknown activation %d",
                        activation);
    L.kind = transpose ? AE_LAYER_CONV2D_TRANSPOSE : AE_LAYER_CONV2D;
    L.activation = activation;
    L.padding = padding;
    L.units = filters;
    L.ksize = kernel;
    L.stride = stride;
    L.out.rank = 3;
    L.out.d[2] = filters;
    if (transpose) {
        if (b->cur.d[0] > (1u << 15) || b->cur.d[1] > (1u << 15))
            return ae__fail(b->msg, AE_ERR_RANGE, "input too large");
        L.out.d[0] = ae__convt_axis(b->cur.d[0], kernel, stride, padding, &L.pad_top);
        L.out.d[1] = ae__convt_axis(b->cur.d[1], kernel, stride, padding, &L.pad_left);
    } else {
        L.out.d[0] = ae__conv_axis(b->cur.d[0], kernel, stride, padding, &L.pad_top);
        L.out.d[1] = ae__conv_axis(b->cur.d[1], kernel, stride, padding, &L.pad_left);
        if (L.out.d[0] == 0 || L.out.d[1] == 0)
            return ae__fail(b->msg, AE_ERR_SHAPE,
                            "a valid %zux%zu convolution does not fit a "
                            "%zux%zu input", kernel, kernel, b->cur.d[0], b->cur.d[1]);
    }
    if (ae__mul_size(L.out.d[0] * L.out.d[1], filters, &total) != 0 || total > ((size_t)1 << 31))
        return ae__fail(b->msg, AE_ERR_RANGE, "output too large");
    L.n_kernel = kernel * kernel * b->cur.d[2] * filters;
    L.n_bias = filters;
    return push(b, &L);
}

ae_status ae_builder_conv2d(ae_builder *b, size_t filters, size_t kernel, ae_padding padding,
                            ae_activation activation)
{
    AE__ENTER();
    return add_conv(b, 0, filters, kernel, 1, padding, activation);
}

ae_status ae_builder_conv2d_ex(ae_builder *b, size_t filters, size_t kernel, size_t stride,
                               ae_padding padding, ae_activation activation)
{
    AE__ENTER();
    return add_conv(b, 0, filters, kernel, stride, padding, activation);
}

ae_status ae_builder_conv2d_transpose(ae_builder *b, size_t filters, size_t kernel, size_t stride,
                                      ae_padding padding, ae_activation activation)
{
    AE__ENTER();
    return add_conv(b, 1, filters, kernel, stride, padding, activation);
}

ae_status ae_builder_batchnorm(ae_builder *b, double momentum, double epsilon)
{
    AE__ENTER();
    ae_layer L = {0};
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (!(momentum >= 0.0 && momentum <= 1.0) || !(epsilon >= 1e-12 && epsilon <= 1.0))
        return ae__fail(b->msg, AE_ERR_RANGE,
                        "momentum must be 0..1 and epsilon 1e-12..1 (got %g, %g)", momentum,
                        epsilon);
    L.kind = AE_LAYER_BATCHNORM;
    L.out = b->cur;
    L.units = b->cur.rank == 1 ? b->cur.d[0] : b->cur.d[2];
    L.momentum = momentum;
    L.epsilon = epsilon;
    L.n_kernel = L.n_bias = L.units;
    L.n_stats = 2 * L.units; /* moving mean, moving variance */
    return push(b, &L);
}

/* dropout and noise layers: the shape passes through unchanged */
static ae_status add_noise(ae_builder *b, int kind, double rate, int clip)
{
    ae_layer L = {0};
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (kind == AE_LAYER_GAUSSIAN_NOISE ? !(rate >= 0.0 && rate <= 1e6)
                                        : !(rate >= 0.0 && rate < 1.0))
        return ae__fail(b->msg, AE_ERR_RANGE, "%g is out of range (%s)", rate,
                        kind == AE_LAYER_GAUSSIAN_NOISE ? "0..1e6" : "0 <= p < 1");
    if (clip != 0 && clip != 1)
        return ae__fail(b->msg, AE_ERR_INVALID_ARG, "clip must be 0 or 1, not %d", clip);
    L.kind = kind;
    L.out = b->cur;
    L.rate = rate;
    L.clip = clip;
    return push(b, &L);
}

ae_status ae_builder_dropout(ae_builder *b, double rate)
{
    AE__ENTER();
    return add_noise(b, AE_LAYER_DROPOUT, rate, 0);
}

ae_status ae_builder_gaussian_noise(ae_builder *b, double stddev, int clip)
{
    AE__ENTER();
    return add_noise(b, AE_LAYER_GAUSSIAN_NOISE, stddev, clip);
}

ae_status ae_builder_masking_noise(ae_builder *b, double probability)
{
    AE__ENTER();
    return add_noise(b, AE_LAYER_MASKING_NOISE, probability, 0);
}

ae_status ae_builder_activity_regularization(ae_builder *b, double l1, double l2)
{
    AE__ENTER();
    ae_layer L = {0};
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (!(l1 >= 0.0 && l1 <= 1e6) || !(l2 >= 0.0 && l2 <= 1e6))
        return ae__fail(b->msg, AE_ERR_RANGE, "l1 = %g, l2 = %g: each must be in 0..1e6", l1, l2);
    L.kind = AE_LAYER_ACTIVITY_REGULARIZATION;
    L.out = b->cur;
    L.l1 = l1;
    L.l2 = l2;
    return push(b, &L);
}

ae_status ae_builder_sampling(ae_builder *b, double kl_weight)
{
    AE__ENTER();
    ae_layer L = {0};
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (b->cur.rank != 1 || b->cur.d[0] % 2 != 0)
        return ae__fail(b->msg, AE_ERR_SHAPE,
                        "needs a rank-1 input of 2z floats (z means, then z log-variances)");
    if (!(kl_weight >= 0.0 && kl_weight <= 1e6))
        return ae__fail(b->msg, AE_ERR_RANGE, "kl_weight must be 0..1e6, not %g", kl_weight);
    L.kind = AE_LAYER_SAMPLING;
    L.out = b->cur;
    L.out.d[0] = b->cur.d[0] / 2;
    L.kl_weight = kl_weight;
    return push(b, &L);
}

ae_status ae_builder_maxpool2d(ae_builder *b, ae_padding padding)
{
    AE__ENTER();
    ae_layer L = {0};
    ae_status st;
    if ((st = need_image(b)) != AE_OK) return st;
    if (padding != AE_PAD_SAME && padding != AE_PAD_VALID)
        return ae__fail(b->msg, AE_ERR_INVALID_ARG, "unknown padding %d",
                        padding);
    if (padding == AE_PAD_VALID && (b->cur.d[0] < 2 || b->cur.d[1] < 2))
        return ae__fail(b->msg, AE_ERR_SHAPE,
                        "a valid 2x2 pool does not fit a %zux%zu input",
                        b->cur.d[0], b->cur.d[1]);
    L.kind = AE_LAYER_MAXPOOL2D;
    L.padding = padding;
    L.out.rank = 3;
    L.out.d[0] = padding == AE_PAD_SAME ? (b->cur.d[0] + 1) / 2 : b->cur.d[0] / 2;
    L.out.d[1] = padding == AE_PAD_SAME ? (b->cur.d[1] + 1) / 2 : b->cur.d[1] / 2;
    L.out.d[2] = b->cur.d[2];
    return push(b, &L);
}

ae_status ae_builder_upsample2d(ae_builder *b)
{
    AE__ENTER();
    ae_layer L = {0};
    ae_status st;
    if ((st = need_image(b)) != AE_OK) return st;
    if (b->cur.d[0] > (1u << 15) || b->cur.d[1] > (1u << 15))
        return ae__fail(b->msg, AE_ERR_RANGE, "input too large");
    L.kind = AE_LAYER_UPSAMPLE2D;
    L.out = b->cur;
    L.out.d[0] *= 2;
    L.out.d[1] *= 2;
    return push(b, &L);
}

ae_status ae_builder_activation(ae_builder *b, ae_activation activation)
{
    AE__ENTER();
    ae_layer L = {0};
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (!valid_activation(activation))
        return ae__fail(b->msg, AE_ERR_INVALID_ARG, "unknown activation %d",
                        activation);
    L.kind = AE_LAYER_ACTIVATION;
    L.activation = activation;
    L.out = b->cur;
    return push(b, &L);
}

ae_status ae_builder_activation_param(ae_builder *b, double alpha)
{
    AE__ENTER();
    ae_layer *L;
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (b->n_layers == 0) return ae__fail(b->msg, AE_ERR_STATE, "no layer added yet");
    L = &b->layers[b->n_layers - 1];
    if (L->activation != AE_ACT_LEAKY_RELU && L->activation != AE_ACT_ELU)
        return ae__fail(b->msg, AE_ERR_STATE,
                        "the last layer's activation (%d) takes no parameter; only leaky relu "
                        "and elu do", L->activation);
    if (!(alpha >= 0.0 && alpha <= 1000.0))
        return ae__fail(b->msg, AE_ERR_RANGE, "alpha must be 0..1000, not %g", alpha);
    L->alpha = (float)alpha;
    return AE_OK;
}

ae_status ae_builder_flatten(ae_builder *b)
{
    AE__ENTER();
    ae_layer L = {0};
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    L.kind = AE_LAYER_FLATTEN;
    L.out.rank = 1;
    L.out.d[0] = ae__shape_size(&b->cur);
    L.out.d[1] = L.out.d[2] = 1;
    return push(b, &L);
}

ae_status ae_builder_reshape(ae_builder *b, int rank, const size_t *dims)
{
    AE__ENTER();
    ae_layer L = {0};
    ae_status st;
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if ((st = check_dims(b->msg, rank, dims, &L.out)) != AE_OK) return st;
    if (ae__shape_size(&L.out) != ae__shape_size(&b->cur))
        return ae__fail(b->msg, AE_ERR_SHAPE,
                        "%zu floats per sample cannot become %zu",
                        ae__shape_size(&b->cur), ae__shape_size(&L.out));
    L.kind = AE_LAYER_RESHAPE;
    return push(b, &L);
}

ae_status ae_builder_mark_code(ae_builder *b)
{
    AE__ENTER();
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (b->n_layers == 0)
        return ae__fail(b->msg, AE_ERR_STATE, "no layer added yet");
    b->has_code = 1;
    b->code_layer = b->n_layers - 1;
    return AE_OK;
}

ae_status ae_builder_build(ae_model **out, ae_builder *b, uint64_t seed)
{
    AE__ENTER();
    ae_model *m;
    ae__rng rng;
    ae_status st;
    if (!out) return ae__fail(b ? b->msg : NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!b) return ae__fail(NULL, AE_ERR_INVALID_ARG, "builder is NULL");
    if (b->n_layers == 0)
        return ae__fail(b->msg, AE_ERR_STATE, "the builder has no layers");
    st = ae__model_alloc(&b->input, b->layers, b->n_layers, b->has_code, b->code_layer, &m);
    if (st != AE_OK) {
        ae__keep_msg(b->msg);
        return st;
    }
    ae__rng_seed(&rng, seed);
    for (size_t i = 0; i < m->n_layers; i++) ae__layer_init(&m->layers[i], &rng);
    *out = m;
    return AE_OK;
}
