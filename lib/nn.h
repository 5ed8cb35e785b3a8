/*
 * Internal layout of layers, models and their workspaces, shared by
 * layers.c, builder.c, model.c, train.c, encoder.c and model_io.c.
 */
#ifndef AUTOENC_NN_H
#define AUTOENC_NN_H

#include "compiler.h"
#include "internal.h"

/* Per-sample shape: rank 1 (features) or rank 3 (height, width, channels). */
typedef struct ae__shape {
    int rank;
    size_t d[3];
} ae__shape;

size_t ae__shape_size(const ae__shape *s);
int ae__shape_equal(const ae__shape *a, const ae__shape *b);
/* "(None, 28, 28, 1)" like Keras' summary */
void ae__shape_format(const ae__shape *s, char *buf, size_t cap);

#define AE__LAYER_KINDS AE_LAYER_SAMPLING /* the largest ae_layer_kind */

struct ae_layer {
    int kind;        /* AE_LAYER_* */
    int activation;  /* AE_ACT_*, fused after the layer's own operation */
    int padding;     /* AE_PAD_* (conv2d, maxpool2d) */
    float alpha;     /* activation parameter (leaky relu slope, elu scale), else 0 */
    size_t units;    /* dense units or conv filters */
    size_t ksize;    /* conv kernel side */
    size_t stride;   /* conv / transposed conv stride (1 for every other kind) */
    size_t pad_top, pad_left; /* leading padding of same conv/pool windows */
    ae__shape in, out;
    size_t n_kernel, n_bias;  /* parameter counts */
    size_t param_offset;      /* where kernel (then bias) starts in the model buffer */
    float *kernel, *bias;     /* views into the model's parameter buffer */
    /* batch normalisation: units = channels (features of a rank-1 input);
     * kernel = gamma, bias = beta; moving mean then moving variance (units
     * each) at stats_offset in the model's statistics buffer */
    double momentum, epsilon;
    /* dropout rate, Gaussian noise stddev, masking probability; clip: the
     * Gaussian noise output is clipped to [0, 1] */
    double rate;
    int clip;
    /* activity regularisation: the L1 and L2 coefficients */
    double l1, l2;
    double kl_weight; /* sampling: weight of the KL term in the loss */
    size_t stats_offset, n_stats;
    float *moving_mean, *moving_var;
    char name[32];
};

struct ae_model {
    size_t n_layers;
    ae_layer *layers;
    ae__shape input;
    int has_code;
    size_t code_layer;
    size_t n_params;
    float *params;  /* one contiguous buffer: every layer's kernel then bias */
    size_t n_stats; /* non-trainable statistics (batch norm moving mean, variance) */
    float *stats;   /* their buffer, every batch-norm layer's mean then variance */
    int syncs;      /* a training pass needs every thread (batch statistics) */
    int threads;    /* predict/encode threads; 0 = one per core */
    char msg[AE__MSG_CAP];
};

/* Output side of a convolution (0 if a valid window does not fit) or a
 * transposed convolution along one axis, and its leading padding (builder.c;
 * TensorFlow's rules). */
size_t ae__conv_axis(size_t in, size_t k, size_t s, int padding, size_t *pad_lead);
size_t ae__convt_axis(size_t in, size_t k, size_t s, int padding, size_t *pad_lead);
/* Copies src's parameters and statistics onto dst, whose layers are a
 * prefix of src's (a clone or an encoder). */
void ae__model_copy_weights(ae_model *dst, const ae_model *src);
/* Fixes up the kernel/bias views after params moved or layers were copied. */
void ae__model_bind_params(ae_model *m);
/* New model with the given layers (copied) and zeroed parameters. */
ae_status ae__model_alloc(const ae__shape *input, const ae_layer *layers, size_t n_layers,
                          int has_code, size_t code_layer, ae_model **out);

typedef struct ae__pool ae__pool;

/* ---- how a pass runs (model.c fills it; layers.c, batchnorm.c read it) ----------
 * training: batch statistics (and moving-average updates), dropout, noise;
 * otherwise inference. Batch statistics are those of every thread's rows:
 * thread t of nt writes its partial sums to red + t * red_stride, meets the
 * others at ae__pool_barrier(pool), and the totals go through red + nt *
 * red_stride (red holds (nt + 1) * red_stride doubles, red_stride >= 2 C + 1
 * for every batch-norm layer's C). bn_state (the model's n_stats floats)
 * keeps each batch-norm layer's batch mean and 1/sqrt(var + eps) from
 * forward for backward. */
typedef struct ae__pass {
    int training;
    ae__pool *pool;
    int t, nt;
    double *red;
    size_t red_stride;
    float *bn_state;
    uint64_t key; /* this layer's noise key (ae__noise_key) */
    size_t row0;  /* batch index of the first row passed to the layer */
    /* rows of the whole batch whose mean loss backward differentiates (the
     * training step's, not this thread's share): layers with a penalty
     * (ae__layer_penalty) add its gradient divided by it to dx; 0: the
     * rows passed to the layer */
    size_t batch_rows;
    /* training only: sums the totals across processes after the thread
     * reduction (ae_stat_reduce_fn, data-parallel training), called by
     * thread 0; a failure sets *sync_failed and skips later calls */
    int (*sync)(double *values, size_t count, void *user);
    void *sync_user;
    int *sync_failed;
    /* the layer leaves its activation to the caller (the output layer of a
     * pass whose loss applies the sigmoid itself: ae__bce_logits_rows) */
    int skip_activation;
} ae__pass;

/* ---- dropout and noise layers (noise.c): training passes draw from a hash
 * of (key, batch row, element), inference is the identity */
uint64_t ae__noise_key(uint64_t seed, uint64_t step, uint64_t layer);
void ae__noise_forward(const ae_layer *L, const float *x, float *y, size_t n, const ae__pass *p);
void ae__noise_backward(const ae_layer *L, const float *y, const float *dy, float *dx, size_t n,
                        const ae__pass *p);

/* ---- sampling layer of variational autoencoders (noise.c): x holds each
 * row's z means then z log-variances; training passes output
 * mean + exp(log_var / 2) eps with eps ~ N(0, 1) drawn as the noise layers
 * draw, inference passes the mean. backward adds the KL term's gradient
 * (ae__layer_penalty) divided by p->batch_rows. */
void ae__sampling_forward(const ae_layer *L, const float *x, float *y, size_t n, const ae__pass *p);
void ae__sampling_backward(const ae_layer *L, const float *x, const float *dy, float *dx, size_t n,
                           const ae__pass *p);

/* ---- batch normalisation (batchnorm.c); p NULL or not training: inference */
void ae__bn_forward(const ae_layer *L, const float *x, float *y, size_t n, const ae__pass *p);
void ae__bn_backward(const ae_layer *L, const float *x, const float *dy, float *dx, float *gk,
                     float *gb, size_t n, const ae__pass *p);

/* ---- layer kernels (layers.c) ----------------------------------------------
 * x: (n, in) floats, y: (n, out) floats. forward applies the fused activation.
 * backward: dy is dL/dy on entry (overwritten with dL/dz, the gradient before
 * the activation) unless dy_is_preact says it already is; dx (may be NULL:
 * not needed for the first layer) receives dL/dx; gk/gb receive the parameter
 * gradients (overwritten, not accumulated). ws holds ae__layer_ws_floats(). */
size_t ae__layer_ws_floats(const ae_layer *L, size_t n);
void ae__layer_forward(const ae_layer *L, const float *x, float *y, size_t n, float *ws);
void ae__layer_backward(const ae_layer *L, const float *x, const float *y, float *dy,
                        int dy_is_preact, float *dx, float *gk, float *gb, size_t n, float *ws);
/* the same in the mode p describes (the two above: inference, one thread) */
void ae__layer_forward_pass(const ae_layer *L, const float *x, float *y, size_t n, float *ws,
                            const ae__pass *p);
void ae__layer_backward_pass(const ae_layer *L, const float *x, const float *y, float *dy,
                             int dy_is_preact, float *dx, float *gk, float *gb, size_t n,
                             float *ws, const ae__pass *p);
/* The loss a layer adds (activity regularisation; 0 for kinds without a
 * penalty), SUMMED over the n rows of its input x and output y, in the
 * units of the model's loss, which is the mean over a row's output
 * elements: a training step adds penalty * (output size) to its loss sum
 * before that sum is divided by rows * (output size), so the reported loss
 * is the data loss plus the mean penalty per row (Keras' loss, which divides
 * activity regularisation by the batch size). The penalty's gradient is
 * added by the layer's backward pass, divided by ae__pass.batch_rows.
 * Validation and ae_model_evaluate include the penalty too (Keras'
 * val_loss does). Activity regularisation: l1 * sum|x| + l2 * sum x^2; sampling: its KL term. */
double ae__layer_penalty(const ae_layer *L, const float *x, const float *y, size_t n);
/* Glorot-uniform kernel, zero bias, as Keras' defaults. */
void ae__layer_init(ae_layer *L, ae__rng *rng);



/* ---- forward matrix product (dense.c) ----------------------------------------------
 * y (n, units) = x (n, k) W (k, units) + bias, every output summed in the
 * same fixed order whatever n is, so a row's result never depends on the
 * rows computed with it (forward passes never go through BLAS). */
void ae__dense_forward(const float *x, size_t n, size_t k, const float *w, size_t units,
                       const float *bias, float *y);
/* The same with the tiling chosen by the caller (wide: 16-float vectors, for
 * AVX-512; else 8-float ones): both give the same bits, which the tests check
 * on whichever CPU runs them. */
void ae__dense_forward_tiled(const float *x, size_t n, size_t k, const float *w, size_t units,
                             const float *bias, float *y, int wide);

/* ---- backward matrix products of dense layers (dense.c, dense_grad.c) ----------
 * gk (in, units) = x^T (in, n) dy (n, units), each output summed over the
 * rows in order; fused multiply-adds where the CPU has them. */
void ae__dense_grad_weights(const float *x, size_t n, size_t in, const float *dy, size_t units,
                            float *gk);
/* The same with the tiling chosen by the caller, as ae__dense_forward_tiled:
 * both give the same bits. */
void ae__dense_grad_weights_tiled(const float *x, size_t n, size_t in, const float *dy,
                                  size_t units, float *gk, int wide);
/* dx (n, in) = dy (n, units) W^T, W (in, units) row-major. */
void ae__dense_grad_input(const float *dy, size_t n, size_t units, const float *w, size_t in,
                          float *dx);

/* ---- direct convolution kernels (conv.c), on samples [b0, b1) -----------------
 * forward applies bias and (if relu) the relu; grad_params ACCUMULATES into
 * gk (k, k, cin, cout) and gb; grad_input overwrites dx using wt, the kernel
 * transposed to (k, k, cout, cin) by ae__conv_transpose_kernel. */
int ae__conv_direct_ok(const ae_layer *L);
void ae__conv_forward(const ae_layer *L, const float *x, float *y, size_t b0, size_t b1, int relu);
void ae__conv_grad_params(const ae_layer *L, const float *x, const float *dz, float *gk,
                          float *gb, size_t b0, size_t b1);
void ae__conv_grad_input(const ae_layer *L, const float *dz, const float *wt, float *dx,
                         size_t b0, size_t b1);
/* forward and grad_params with the 16-channel kernels' form chosen by the
 * caller (wide: one 16-float vector; else a pair of 8-float ones), for the
 * tests that check both forms give the same bits */
void ae__conv_forward_form(const ae_layer *L, const float *x, float *y, size_t b0, size_t b1,
                           int relu, int wide);
void ae__conv_grad_params_form(const ae_layer *L, const float *x, const float *dz, float *gk,
                               float *gb, size_t b0, size_t b1, int wide);
void ae__conv_transpose_kernel(const ae_layer *L, float *wt);


/* ---- thread pool (parallel.c) --------------------------------------------------- */
typedef void (*ae__task_fn)(void *ctx, int thread, int n_threads);
ae_status ae__pool_create(ae__pool **out, int n_threads); /* n_threads includes the caller */
void ae__pool_free(ae__pool *p);
int ae__pool_threads(const ae__pool *p);                  /* 1 for NULL */
void ae__pool_run(ae__pool *p, ae__task_fn fn, void *ctx); /* fn on every thread, then join */
void ae__pool_barrier(ae__pool *p); /* inside a run: all threads meet here */
void ae__split(size_t n, int t, int nt, size_t *lo, size_t *hi); /* thread t's share of n */
int ae__default_threads(void);                              /* online cores, 1..AE__MAX_THREADS */

/* ---- workspaces (model.c) ---------------------------------------------------
 * Everything a forward (and, for training, backward) pass needs for batches
 * of up to `batch` samples, allocated once and reused. */
typedef struct ae__workspace {
    size_t batch;
    int training;
    float **acts;     /* acts[i]: output of layer i; inference ping-pongs two buffers */
    float *act_mem;   /* owns the activation buffers */
    size_t act_mem_floats;
    float *grad_a, *grad_b; /* gradient ping-pong buffers (training) */
    size_t grad_floats;
    size_t act_stride;  /* inference: row stride in the ping-pong buffers */
    size_t grad_stride; /* row stride in grad_a/grad_b */
    float *scratch;   /* per-layer scratch (im2col columns) */
    double *row_loss; /* each batch row's loss (ae__loss_rows) */
    size_t scratch_floats;
    size_t n_acts;
    /* batch-parallel execution (ae__workspace_set_threads): thread t > 0 has
     * its own scratch and, for training, its own parameter-gradient buffer,
     * summed into thread 0's at the end of backward */
    ae__pool *pool;
    int n_threads;
    float **thread_scratch;  /* n_threads entries; [0] is scratch */
    float **thread_grads;    /* n_threads entries; [0] unused (thread 0 writes the caller's) */
    float *thread_mem;       /* owns the extra scratch and gradient buffers */
    size_t thread_mem_floats, n_params;
    /* batch statistics across threads (ae__pass) */
    double *red;
    size_t red_doubles, red_stride;
    float *bn_state;
    size_t n_stats;
    /* dropout and noise of training passes: set before each step (train.c) */
    uint64_t noise_seed, noise_step;
    /* rows of the current training step (ae__pass.batch_rows), set before
     * each step (train.c) */
    size_t batch_rows;
    /* batch statistics across processes in training passes (ae__pass.sync) */
    int (*sync)(double *values, size_t count, void *user);
    void *sync_user;
    int *sync_failed;
} ae__workspace;

ae_status ae__workspace_create(const ae_model *m, size_t batch, int training,
                               ae__workspace **out);
void ae__workspace_free(ae__workspace *ws);
/* Runs the passes of this workspace on n_threads threads (1 = the caller
 * only), splitting every batch by samples. Results are deterministic for a
 * given thread count. */
ae_status ae__workspace_set_threads(const ae_model *m, ae__workspace *ws, int n_threads);
/* Forward of batch rows [lo, hi) of x through every layer, on thread t's
 * scratch; outputs land at the same rows of ws->acts. In a training
 * workspace this is a training pass (batch statistics, dropout); otherwise
 * inference. Rows interact only through batch statistics: when m->syncs,
 * every thread of ws's pool must call it (an empty range included), and
 * ae__backward_rows likewise. With logits the last layer's activation is not
 * applied (ae__loss_rows applies it). */
void ae__forward_rows(const ae_model *m, ae__workspace *ws, const float *x, size_t lo, size_t hi,
                      int t, int logits);
/* Backward of rows [lo, hi) after ae__forward_rows: dout (batch rows) is
 * dL/dy of the last layer (overwritten); grads (n_params) is overwritten with
 * these rows' parameter gradients. */
void ae__backward_rows(const ae_model *m, ae__workspace *ws, const float *x, float *dout,
                       int dout_is_preact, float *grads, size_t lo, size_t hi, int t);
/* Sum over layers of ae__layer_penalty for rows [lo, hi) of the last
 * forward pass on ws, whose inputs were x: when a layer has a penalty, ws
 * must keep every layer's output (a training workspace, in either mode). */
double ae__penalty_rows(const ae_model *m, const ae__workspace *ws, const float *x, size_t lo,
                        size_t hi);
/* grads += every other thread's buffer, over thread t's share of the
 * parameters (call after a barrier, from every thread). */
void ae__reduce_grads(ae__workspace *ws, float *grads, int t, int nt);
/* Inference forward pass of n <= ws->batch samples (also in a training
 * workspace: validation); returns the output (n, out_size), a view into the
 * workspace. ae__model_backward_ws backpropagates through that same
 * inference pass. */
const float *ae__model_forward_ws(const ae_model *m, ae__workspace *ws, const float *x, size_t n);
/* Inference forward pass of n <= ws->batch rows of x and their summed loss
 * against y (n rows of the output size), with the layers' penalties (as
 * ae__model_forward_penalty_ws) in the loss's units: the sum over rows, in
 * row order, of ae__loss_rows' row sums, plus out times the penalties; not
 * finite when a prediction is not. The outputs stay in ws. */
double ae__model_loss_ws(const ae_model *m, ae__workspace *ws, int loss, const float *x,
                         const float *y, size_t n);
/* Backward pass after a forward on the same ws and x. dout: dL/dy of the last
 * layer (overwritten); grads: buffer of n_params floats, same layout as
 * params, overwritten. Layer penalties' gradients are those of their mean
 * over the n rows. */
void ae__model_backward_ws(const ae_model *m, ae__workspace *ws, const float *x, float *dout,
                           int dout_is_preact, float *grads, size_t n);


/* ---- losses (loss.c) ----------------------------------------------------------
 * Returns the SUM of per-element losses over count elements, not finite when
 * a prediction or target is not (callers check the sum). If grad is not
 * NULL it receives dL/dpred of the MEAN loss over norm elements. */
double ae__loss_sum(int loss, const float *pred, const float *target, size_t count, float *grad,
                    size_t norm);
/* The loss of each of rows rows of cols outputs into row_sums (NaN for a row
 * with a non-finite prediction), a row's sum independent of the others; grad
 * (if not NULL) as ae__loss_sum's. With sigmoid_logits (BCE after a sigmoid
 * layer) out holds the last layer's pre-activations and leaves with the
 * sigmoid's outputs (ae__bce_logits_rows), and grad receives the exact
 * gradient with respect to those pre-activations, (p - target) / norm;
 * otherwise out holds the predictions and is not written. */
void ae__loss_rows(int loss, float *out, const float *target, size_t rows, size_t cols,
                   float *grad, size_t norm, int sigmoid_logits, double *row_sums);

/* ---- vectorised element-wise math (vecmath.c) */
void ae__sigmoid_inplace(float *v, size_t n);
/* BCE with the Keras clamp: returns the sum over n (NaN if a prediction is
 * NaN or infinite), fills grad (if not NULL) with dL/dpred * inv_norm. */
double ae__bce_sum(const float *pred, const float *target, size_t n, float *grad,
                   float inv_norm);
/* Sigmoid of the pre-activations zp (in place) with the BCE of each row
 * against target into row_sums and, if grad is not NULL, (p - target) *
 * inv_norm. */
void ae__bce_logits_rows(float *zp, const float *target, size_t rows, size_t cols, float *grad,
                         float inv_norm, double *row_sums);

/* ---- optimisers (optim.c): one step over the whole contiguous parameter
 * buffer, with Keras' update rules. */
typedef struct ae__optimizer {
    int kind;                 /* AE_OPT_* */
    double lr, beta1, beta2, eps, momentum, momentum_decay;
    size_t n;                 /* parameters */
    float *m, *v;             /* first/second moments (SGD uses m as velocity) */
    uint64_t t;               /* steps taken */
    double mu_product;        /* Nadam: product of momentum schedule so far */
    double c_m, c_g, c_v;     /* this step's coefficients (ae__optim_begin_step) */
} ae__optimizer;
ae_status ae__optim_init(ae__optimizer *o, int kind, double lr, double beta1, double beta2,
                         double eps, double momentum, double momentum_decay, size_t n);
void ae__optim_step(ae__optimizer *o, float *params, const float *grads); /* begin + apply all */
void ae__optim_begin_step(ae__optimizer *o);
void ae__optim_apply(const ae__optimizer *o, float *params, const float *grads, size_t lo,
                     size_t hi);
void ae__optim_free(ae__optimizer *o);

/* ---- model files (model_io.c), shared with checkpoints (train_state.c) ----
 * write_body writes every byte of a model file but the final CRC;
 * file_bytes is the length of the whole file (CRC included), which a
 * checkpoint stores before the embedded model; parse_file checks and parses
 * a whole model file held in memory (data, len) as ae_model_load does,
 * naming path in its errors. */
void ae__model_write_body(ae__writer *w, const ae_model *m);
uint64_t ae__model_file_bytes(const ae_model *m);
ae_status ae__model_parse_file(const unsigned char *data, size_t len, const char *path,
                               ae_model **out);

#endif /* AUTOENC_NN_H */
