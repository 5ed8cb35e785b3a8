/* Models: layer storage, introspection, workspaces, forward/backward passes,
 * batched prediction and the Keras-style summary. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nn.h"

/* ---- shapes ------------------------------------------------------------------ */

size_t ae__shape_size(const ae__shape *s)
{
    return s->rank == 1 ? s->d[0] : s->d[0] * s->d[1] * s->d[2];
}

int ae__shape_equal(const ae__shape *a, const ae__shape *b)
{
    return a->rank == b->rank && a->d[0] == b->d[0] && (a->rank == 1 ||
           (a->d[1] == b->d[1] && a->d[2] == b->d[2]));
}

void ae__shape_format(const ae__shape *s, char *buf, size_t cap)
{
    if (s->rank == 1) snprintf(buf, cap, "(None, %zu)", s->d[0]);
    else snprintf(buf, cap, "(None, %zu, %zu, %zu)", s->d[0], s->d[1], s->d[2]);
}

/* ---- layer introspection ------------------------------------------------------- */

ae_layer_kind ae_layer_kind_of(const ae_layer *L) { return L ? (ae_layer_kind)L->kind : (ae_layer_kind)0; }

const char *ae_layer_kind_name(ae_layer_kind kind)
{
    switch (kind) {
    case AE_LAYER_DENSE: return "dense";
    case AE_LAYER_CONV2D: return "conv2d";
    case AE_LAYER_MAXPOOL2D: return "max_pooling2d";
    case AE_LAYER_UPSAMPLE2D: return "up_sampling2d";
    case AE_LAYER_ACTIVATION: return "activation";
    case AE_LAYER_FLATTEN: return "flatten";
    case AE_LAYER_RESHAPE: return "reshape";
    case AE_LAYER_CONV2D_TRANSPOSE: return "conv2d_transpose";
    case AE_LAYER_BATCHNORM: return "batch_normalization";
    case AE_LAYER_DROPOUT: return "dropout";
    case AE_LAYER_GAUSSIAN_NOISE: return "gaussian_noise";
    case AE_LAYER_MASKING_NOISE: return "masking_noise";
    case AE_LAYER_ACTIVITY_REGULARIZATION: return "activity_regularization";
    case AE_LAYER_SAMPLING: return "sampling";
    default: return "unknown";
    }
}

/* Keras' class names, for the summary */
static const char *kind_class(int kind)
{
    switch (kind) {
    case AE_LAYER_DENSE: return "Dense";
    case AE_LAYER_CONV2D: return "Conv2D";
    case AE_LAYER_MAXPOOL2D: return "MaxPooling2D";
    case AE_LAYER_UPSAMPLE2D: return "UpSampling2D";
    case AE_LAYER_ACTIVATION: return "Activation";
    case AE_LAYER_FLATTEN: return "Flatten";
    case AE_LAYER_RESHAPE: return "Reshape";
    case AE_LAYER_CONV2D_TRANSPOSE: return "Conv2DTranspose";
    case AE_LAYER_BATCHNORM: return "BatchNormalization";
    case AE_LAYER_DROPOUT: return "Dropout";
    case AE_LAYER_GAUSSIAN_NOISE: return "GaussianNoise";
    case AE_LAYER_MASKING_NOISE: return "MaskingNoise";
    case AE_LAYER_ACTIVITY_REGULARIZATION: return "ActivityRegularization";
    case AE_LAYER_SAMPLING: return "Sampling";
    default: return "?";
    }
}

const char *ae_layer_name(const ae_layer *L) { return L ? L->name : ""; }
ae_activation ae_layer_activation(const ae_layer *L) { return L ? (ae_activation)L->activation : AE_ACT_LINEAR; }
double ae_layer_activation_param(const ae_layer *L) { return L ? (double)L->alpha : 0.0; }
int ae_layer_output_rank(const ae_layer *L) { return L ? L->out.rank : 0; }
size_t ae_layer_output_dim(const ae_layer *L, int axis)
{
    return L && axis >= 0 && axis < L->out.rank ? L->out.d[axis] : 0;
}
double ae_layer_noise_param(const ae_layer *L) { return L ? L->rate : 0.0; }

/* The option getters of one layer kind: NULL or another kind is a caller's
 * mistake, reported under the getter's name. */
static ae_status layer_of_kind(const ae_layer *L, ae_layer_kind kind, const char *what)
{
    if (!L) return ae__fail(NULL, AE_ERR_INVALID_ARG, "layer is NULL");
    if (L->kind != (int)kind)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "layer '%s' is not %s", L->name, what);
    return AE_OK;
}

ae_status ae_layer_activity_regularization(double *l1, double *l2, const ae_layer *L)
{
    AE__ENTER();
    ae_status st = layer_of_kind(L, AE_LAYER_ACTIVITY_REGULARIZATION, "an activity regularisation");
    if (st != AE_OK) return st;
    if (l1) *l1 = L->l1;
    if (l2) *l2 = L->l2;
    return AE_OK;
}

ae_status ae_layer_batchnorm(double *momentum, double *epsilon, const ae_layer *L)
{
    AE__ENTER();
    ae_status st = layer_of_kind(L, AE_LAYER_BATCHNORM, "a batch normalisation");
    if (st != AE_OK) return st;
    if (momentum) *momentum = L->momentum;
    if (epsilon) *epsilon = L->epsilon;
    return AE_OK;
}

ae_status ae_layer_sampling(double *kl_weight, const ae_layer *L)
{
    AE__ENTER();
    ae_status st = layer_of_kind(L, AE_LAYER_SAMPLING, "a sampling layer");
    if (st != AE_OK) return st;
    if (kl_weight) *kl_weight = L->kl_weight;
    return AE_OK;
}

int ae_layer_noise_clipped(const ae_layer *L)
{
    return L && L->kind == AE_LAYER_GAUSSIAN_NOISE && L->clip;
}
size_t ae_layer_stride(const ae_layer *L) { return L ? (L->stride ? L->stride : 1) : 0; }
size_t ae_layer_output_size(const ae_layer *L) { return L ? ae__shape_size(&L->out) : 0; }
size_t ae_layer_param_count(const ae_layer *L) { return L ? L->n_kernel + L->n_bias : 0; }

ae_status ae_layer_param(const float **data, size_t *count, const ae_layer *L, ae_param_kind which)
{
    AE__ENTER();
    if (!L || !data || !count)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    *data = NULL;
    *count = 0;
    if (L->n_kernel == 0)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "layer '%s' has no parameters",
                        L->name);
    if (which == AE_PARAM_KERNEL) { *data = L->kernel; *count = L->n_kernel; }
    else if (which == AE_PARAM_BIAS) { *data = L->bias; *count = L->n_bias; }
    else if ((which == AE_PARAM_MOVING_MEAN || which == AE_PARAM_MOVING_VARIANCE) && !L->n_stats)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "layer '%s' has no moving statistics",
                        L->name);
    else if (which == AE_PARAM_MOVING_MEAN) { *data = L->moving_mean; *count = L->units; }
    else if (which == AE_PARAM_MOVING_VARIANCE) { *data = L->moving_var; *count = L->units; }
    else return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown parameter %d", (int)which);
    return AE_OK;
}

/* ---- model storage ------------------------------------------------------------- */

void ae__model_bind_params(ae_model *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        ae_layer *L = &m->layers[i];
        L->kernel = L->n_kernel ? m->params + L->param_offset : NULL;
        L->bias = L->n_kernel ? m->params + L->param_offset + L->n_kernel : NULL;
        L->moving_mean = L->n_stats ? m->stats + L->stats_offset : NULL;
        L->moving_var = L->n_stats ? m->stats + L->stats_offset + L->units : NULL;
    }
}

void ae__model_copy_weights(ae_model *dst, const ae_model *src)
{
    if (dst->n_params) memcpy(dst->params, src->params, dst->n_params * sizeof(float));
    if (dst->n_stats) memcpy(dst->stats, src->stats, dst->n_stats * sizeof(float));
}

ae_status ae__model_alloc(const ae__shape *input, const ae_layer *layers, size_t n_layers,
                          int has_code, size_t code_layer, ae_model **out)
{
    ae_model *m;
    size_t offset = 0, stats = 0;
    int counts[AE__LAYER_KINDS + 1] = {0};
    *out = NULL;
    m = ae__calloc(1, sizeof *m);
    if (!m) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for a model");
    m->layers = ae__calloc(n_layers, sizeof *m->layers);
    if (!m->layers) {
        ae__free(m, sizeof *m);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu layers", n_layers);
    }
    memcpy(m->layers, layers, n_layers * sizeof *layers);
    m->n_layers = n_layers;
    m->input = *input;
    m->has_code = has_code;
    m->code_layer = code_layer;
    for (size_t i = 0; i < n_layers; i++) {
        ae_layer *L = &m->layers[i];
        int k = L->kind >= 1 && L->kind <= AE__LAYER_KINDS ? L->kind : 0;
        /* Keras names: dense, dense_1, dense_2, ... */
        if (counts[k] == 0) snprintf(L->name, sizeof L->name, "%s", ae_layer_kind_name(L->kind));
        else snprintf(L->name, sizeof L->name, "%s_%d", ae_layer_kind_name(L->kind), counts[k]);
        counts[k]++;
        L->param_offset = offset;
        offset += L->n_kernel + L->n_bias;
        L->stats_offset = stats;
        stats += L->n_stats;
        if (L->kind == AE_LAYER_BATCHNORM) m->syncs = 1;
    }
    m->n_params = offset;
    m->n_stats = stats;
    if (stats) {
        m->stats = ae__malloc_aligned(stats * sizeof(float));
        if (!m->stats) {
            ae__free(m->layers, n_layers * sizeof *m->layers);
            ae__free(m, sizeof *m);
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu statistics", stats);
        }
    }
    if (offset) {
        m->params = ae__malloc_aligned(offset * sizeof(float));
        if (!m->params) {
            ae__free_aligned(m->stats, stats * sizeof(float));
            ae__free(m->layers, n_layers * sizeof *m->layers);
            ae__free(m, sizeof *m);
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu parameters", offset);
        }
        memset(m->params, 0, offset * sizeof(float));
    }
    ae__model_bind_params(m);
    for (size_t i = 0; i < n_layers; i++) { /* moving mean 0, variance 1 */
        ae_layer *L = &m->layers[i];
        for (size_t c = 0; c < L->n_stats / 2; c++) {
            L->moving_mean[c] = 0.0f;
            L->moving_var[c] = 1.0f;
        }
    }
    *out = m;
    return AE_OK;
}

void ae_model_free(ae_model *m)
{
    if (!m) return;
    ae__free_aligned(m->params, m->n_params * sizeof(float));
    ae__free_aligned(m->stats, m->n_stats * sizeof(float));
    ae__free(m->layers, m->n_layers * sizeof *m->layers);
    ae__free(m, sizeof *m);
}

ae_status ae_model_clone(ae_model **out, const ae_model *m)
{
    AE__ENTER();
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!m) return ae__fail(NULL, AE_ERR_INVALID_ARG, "model is NULL");
    st = ae__model_alloc(&m->input, m->layers, m->n_layers, m->has_code, m->code_layer, out);
    if (st == AE_OK) ae__model_copy_weights(*out, m);
    if (st == AE_OK) (*out)->threads = m->threads;
    return st;
}

const char *ae_model_errmsg(const ae_model *m) { return m ? m->msg : ""; }
size_t ae_model_layer_count(const ae_model *m) { return m ? m->n_layers : 0; }
const ae_layer *ae_model_layer(const ae_model *m, size_t i)
{
    return m && i < m->n_layers ? &m->layers[i] : NULL;
}
size_t ae_model_param_count(const ae_model *m) { return m ? m->n_params : 0; }
int ae_model_input_rank(const ae_model *m) { return m ? m->input.rank : 0; }
size_t ae_model_input_dim(const ae_model *m, int axis)
{
    return m && axis >= 0 && axis < m->input.rank ? m->input.d[axis] : 0;
}
size_t ae_model_input_size(const ae_model *m) { return m ? ae__shape_size(&m->input) : 0; }
size_t ae_model_output_size(const ae_model *m)
{
    return m ? ae__shape_size(&m->layers[m->n_layers - 1].out) : 0;
}

ae_status ae_model_code_layer(size_t *index, const ae_model *m)
{
    AE__ENTER();
    if (!m || !index) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!m->has_code)
        return ae__fail(NULL, AE_ERR_STATE, "the model has no code layer marked");
    *index = m->code_layer;
    return AE_OK;
}

ae_status ae_model_set_param(ae_model *m, size_t layer, ae_param_kind which, const float *data,
                             size_t count)
{
    AE__ENTER();
    const float *cur = NULL;
    size_t n = 0;
    ae_status st;
    if (!m || !data) return ae__fail(m ? m->msg : NULL, AE_ERR_INVALID_ARG,
                                     "NULL argument");
    if (layer >= m->n_layers)
        return ae__fail(m->msg, AE_ERR_RANGE, "layer %zu of %zu", layer,
                        m->n_layers);
    if ((st = AE__NESTED(ae_layer_param(&cur, &n, &m->layers[layer], which))) != AE_OK) {
        ae__keep_msg(m->msg);
        return st;
    }
    if (count != n)
        return ae__fail(m->msg, AE_ERR_SHAPE, "layer '%s' takes %zu values, not %zu",
                        m->layers[layer].name, n, count);
    if (!ae__all_finite(data, count))
        return ae__fail(m->msg, AE_ERR_NUMERIC, "values contain NaN or infinity");
    if (which == AE_PARAM_MOVING_VARIANCE)
        for (size_t i = 0; i < count; i++)
            if (data[i] < 0.0f)
                return ae__fail(m->msg, AE_ERR_RANGE, "variance %zu is negative", i);
    memcpy((float *)cur, data, count * sizeof *data);
    return AE_OK;
}

/* ---- workspaces ------------------------------------------------------------------ */

static void drop_threads(ae__workspace *ws)
{
    ae__pool_free(ws->pool);
    ae__free_aligned(ws->thread_mem, ws->thread_mem_floats * sizeof(float));
    if (ws->thread_scratch) ae__free(ws->thread_scratch, (size_t)ws->n_threads * sizeof(float *));
    if (ws->thread_grads) ae__free(ws->thread_grads, (size_t)ws->n_threads * sizeof(float *));
    ws->pool = NULL;
    ws->thread_mem = NULL;
    ws->thread_scratch = ws->thread_grads = NULL;
    ws->thread_mem_floats = 0;
    ws->n_threads = 1;
}

void ae__workspace_free(ae__workspace *ws)
{
    if (!ws) return;
    drop_threads(ws);
    ae__free_aligned(ws->act_mem, ws->act_mem_floats * sizeof(float));
    ae__free_aligned(ws->grad_a, ws->grad_floats * sizeof(float));
    ae__free_aligned(ws->grad_b, ws->grad_floats * sizeof(float));
    ae__free_aligned(ws->scratch, ws->scratch_floats * sizeof(float));
    ae__free(ws->row_loss, ws->batch * sizeof *ws->row_loss);
    ae__free(ws->acts, ws->n_acts * sizeof *ws->acts);
    if (ws->red) ae__free(ws->red, ws->red_doubles * sizeof *ws->red);
    if (ws->bn_state) ae__free_aligned(ws->bn_state, ws->n_stats * sizeof(float));
    ae__free(ws, sizeof *ws);
}

/* Allocates *n floats (at least one: *n is raised to 1, so the size later
 * given to ae__free_aligned matches the allocation). */
static float *alloc_floats(size_t *n)
{
    size_t bytes;
    if (*n == 0) *n = 1;
    if (ae__mul_size(*n, sizeof(float), &bytes) != 0) return NULL;
    return ae__malloc_aligned(bytes);
}

ae_status ae__workspace_create(const ae_model *m, size_t batch, int training,
                               ae__workspace **out)
{
    ae__workspace *ws;
    size_t max_out = 0, max_io = ae__shape_size(&m->input), sum_out = 0, scratch = 0;
    *out = NULL;
    for (size_t i = 0; i < m->n_layers; i++) {
        size_t o = ae__shape_size(&m->layers[i].out), s = ae__layer_ws_floats(&m->layers[i], batch);
        if (o > max_out) max_out = o;
        if (o > max_io) max_io = o;
        sum_out += o;
        if (s > scratch) scratch = s;
    }
    ws = ae__calloc(1, sizeof *ws);
    if (!ws) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for a workspace");
    ws->batch = batch;
    ws->training = training;
    ws->n_threads = 1;
    ws->n_params = m->n_params;
    ws->n_acts = m->n_layers;
    ws->acts = ae__calloc(m->n_layers, sizeof *ws->acts);
    if (m->n_stats) {
        /* batch statistics: one thread's slot plus the totals (ae__pass) */
        for (size_t i = 0; i < m->n_layers; i++)
            if (2 * m->layers[i].units + 1 > ws->red_stride && m->layers[i].n_stats)
                ws->red_stride = 2 * m->layers[i].units + 1;
        ws->red_doubles = 2 * ws->red_stride;
        ws->red = ae__calloc(ws->red_doubles, sizeof *ws->red);
        ws->n_stats = m->n_stats;
        ws->bn_state = alloc_floats(&ws->n_stats);
    }
    /* training keeps every layer's output for backward; inference ping-pongs */
    ws->act_mem_floats = batch * (training ? sum_out : 2 * max_out);
    ws->act_mem = alloc_floats(&ws->act_mem_floats);
    ws->scratch_floats = scratch;
    ws->scratch = alloc_floats(&ws->scratch_floats);
    ws->row_loss = ae__malloc(batch * sizeof *ws->row_loss);
    ws->act_stride = max_out;
    ws->grad_stride = max_io;
    if (training) {
        ws->grad_floats = batch * max_io;
        ws->grad_a = alloc_floats(&ws->grad_floats);
        ws->grad_b = alloc_floats(&ws->grad_floats);
    }
    if (!ws->acts || !ws->act_mem || !ws->scratch || !ws->row_loss || (training && (!ws->grad_a || !ws->grad_b)) ||
        (m->n_stats && (!ws->red || !ws->bn_state))) {
        ae__workspace_free(ws);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for a workspace of batch %zu", batch);
    }
    for (size_t i = 0, off = 0; i < m->n_layers; i++) {
        if (training) {
            ws->acts[i] = ws->act_mem + off;
            off += batch * ae__shape_size(&m->layers[i].out);
        } else {
            ws->acts[i] = ws->act_mem + (i % 2) * batch * max_out;
        }
    }
    *out = ws;
    return AE_OK;
}

ae_status ae__workspace_set_threads(const ae_model *m, ae__workspace *ws, int n_threads)
{
    size_t per_thread = ws->scratch_floats + (ws->training ? m->n_params : 0), total;
    ae_status st;
    drop_threads(ws);
    if (n_threads <= 1) return AE_OK;
    if (ae__mul_size(per_thread, (size_t)n_threads - 1, &total) != 0)
        return ae__fail(NULL, AE_ERR_NOMEM, "thread buffers too large");
    ws->thread_scratch = ae__calloc((size_t)n_threads, sizeof(float *));
    ws->thread_grads = ae__calloc((size_t)n_threads, sizeof(float *));
    ws->thread_mem_floats = total;
    ws->thread_mem = alloc_floats(&ws->thread_mem_floats);
    ws->n_threads = n_threads;
    if (!ws->thread_scratch || !ws->thread_grads || !ws->thread_mem) {
        drop_threads(ws);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %d threads' buffers", n_threads);
    }
    if (ws->red_stride) {
        size_t want = ((size_t)n_threads + 1) * ws->red_stride;
        double *red = ae__calloc(want, sizeof *red);
        if (!red) {
            drop_threads(ws);
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %d threads' buffers", n_threads);
        }
        ae__free(ws->red, ws->red_doubles * sizeof *ws->red);
        ws->red = red;
        ws->red_doubles = want;
    }
    ws->thread_scratch[0] = ws->scratch;
    for (int t = 1; t < n_threads; t++) {
        float *base = ws->thread_mem + (size_t)(t - 1) * per_thread;
        ws->thread_scratch[t] = base;
        ws->thread_grads[t] = ws->training ? base + ws->scratch_floats : NULL;
    }
    if ((st = ae__pool_create(&ws->pool, n_threads)) != AE_OK) {
        drop_threads(ws);
        return st;
    }
    return AE_OK;
}

/* Row stride of layer L's outputs: training keeps one buffer per layer
 * (rows packed); inference ping-pongs two buffers shared by all layers, so
 * rows sit at a fixed stride that keeps threads' rows apart. */
static size_t act_stride(const ae__workspace *ws, const ae_layer *L)
{
    return ws->training ? ae__shape_size(&L->out) : ws->act_stride;
}

static float *scratch_of(const ae__workspace *ws, int t)
{
    return t == 0 ? ws->scratch : ws->thread_scratch[t];
}

static ae__pass pass_of(const ae__workspace *ws, int training, int t)
{
    ae__pass p = {training, ws->pool, t, ws->n_threads, ws->red, ws->red_stride, ws->bn_state,
                  0, 0, ws->batch_rows, NULL, NULL, NULL, 0};
    if (training && ws->sync) {
        p.sync = ws->sync;
        p.sync_user = ws->sync_user;
        p.sync_failed = ws->sync_failed;
    }
    return p;
}

/* A thread with no rows still takes part in batch statistics (m->syncs):
 * layers are run with n = 0 only where they synchronise. penalty (may be
 * NULL) receives the rows' summed layer penalties, taken as each layer runs:
 * an inference pass overwrites a layer's input two layers later. */
static void forward_rows(const ae_model *m, ae__workspace *ws, const float *x, size_t lo,
                         size_t hi, int t, int training, int logits, double *penalty)
{
    const float *in = x + lo * ae__shape_size(&m->input);
    ae__pass p = pass_of(ws, training, t);
    p.row0 = lo;
    for (size_t i = 0; i < m->n_layers; i++) {
        const ae_layer *L = &m->layers[i];
        float *out = ws->acts[i] + lo * act_stride(ws, L);
        p.key = ae__noise_key(ws->noise_seed, ws->noise_step, i);
        p.skip_activation = logits && i == m->n_layers - 1;
        if (lo < hi || (training && L->kind == AE_LAYER_BATCHNORM))
            ae__layer_forward_pass(L, in, out, hi - lo, scratch_of(ws, t), &p);
        if (penalty && lo < hi) *penalty += ae__layer_penalty(L, in, out, hi - lo);
        in = out;
    }
}

static void backward_rows(const ae_model *m, ae__workspace *ws, const float *x, float *dout,
                          int dout_is_preact, float *grads, size_t lo, size_t hi, int t,
                          int training)
{
    float *dcur = dout + lo * ae__shape_size(&m->layers[m->n_layers - 1].out);
    ae__pass p = pass_of(ws, training, t);
    int parity = 0; /* layer gradients alternate between grad_a and grad_b */
    p.row0 = lo;
    for (size_t i = m->n_layers; i-- > 0;) {
        const ae_layer *L = &m->layers[i];
        p.key = ae__noise_key(ws->noise_seed, ws->noise_step, i);
        const size_t in_size = ae__shape_size(&L->in), out_size = ae__shape_size(&L->out);
        const float *in = i ? ws->acts[i - 1] + lo * act_stride(ws, &m->layers[i - 1])
                            : x + lo * in_size;
        /* the gradient buffers are shared by all layers: a fixed row stride
         * keeps each thread's rows apart whatever layer it has reached */
        float *dx = i == 0 ? NULL : (parity ? ws->grad_b : ws->grad_a) + lo * ws->grad_stride;
        float *gk = grads + L->param_offset, *gb = gk + L->n_kernel;
        if (lo < hi || (training && L->kind == AE_LAYER_BATCHNORM))
            ae__layer_backward_pass(L, in, ws->acts[i] + lo * out_size, dcur,
                                    dout_is_preact && i == m->n_layers - 1, dx, gk, gb, hi - lo,
                                    scratch_of(ws, t), &p);
        else
            memset(gk, 0, (L->n_kernel + L->n_bias) * sizeof *gk);
        dcur = dx;
        parity ^= 1;
    }
}

double ae__penalty_rows(const ae_model *m, const ae__workspace *ws, const float *x, size_t lo,
                        size_t hi)
{
    const float *in = x + lo * ae__shape_size(&m->input);
    double sum = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        const ae_layer *L = &m->layers[i];
        const float *out = ws->acts[i] + lo * act_stride(ws, L);
        if (lo < hi) sum += ae__layer_penalty(L, in, out, hi - lo);
        in = out;
    }
    return sum;
}

void ae__forward_rows(const ae_model *m, ae__workspace *ws, const float *x, size_t lo, size_t hi,
                      int t, int logits)
{
    forward_rows(m, ws, x, lo, hi, t, ws->training, logits, NULL);
}

void ae__backward_rows(const ae_model *m, ae__workspace *ws, const float *x, float *dout,
                       int dout_is_preact, float *grads, size_t lo, size_t hi, int t)
{
    backward_rows(m, ws, x, dout, dout_is_preact, grads, lo, hi, t, ws->training);
}

/* Inference passes: rows are independent through every layer, so each
 * thread runs its share of the batch through the whole model without
 * meeting the others. */
typedef struct pass_job {
    const ae_model *m;
    ae__workspace *ws;
    const float *x;
    float *dout;
    float *grads;
    size_t n;
    int preact;
} pass_job;

static void forward_task(void *ctx, int t, int nt)
{
    const pass_job *j = ctx;
    size_t lo, hi;
    ae__split(j->n, t, nt, &lo, &hi);
    if (lo < hi) forward_rows(j->m, j->ws, j->x, lo, hi, t, 0, 0, NULL);
}

/* Inference forward of each thread's rows, then their losses: the scoring
 * of a batch is spread over the threads as its forward pass is. */
typedef struct loss_job {
    const ae_model *m;
    ae__workspace *ws;
    const float *x, *y;
    size_t n;
    int loss, logits;
    double penalty[AE__MAX_THREADS];
} loss_job;

static void loss_task(void *ctx, int t, int nt)
{
    loss_job *j = ctx;
    const ae_layer *last = &j->m->layers[j->m->n_layers - 1];
    const size_t out = ae__shape_size(&last->out);
    size_t lo, hi;
    ae__split(j->n, t, nt, &lo, &hi);
    j->penalty[t] = 0;
    if (lo == hi) return;
    forward_rows(j->m, j->ws, j->x, lo, hi, t, 0, j->logits, &j->penalty[t]);
    ae__loss_rows(j->loss, j->ws->acts[j->m->n_layers - 1] + lo * act_stride(j->ws, last),
                  j->y + lo * out, hi - lo, out, NULL, 1, j->logits, j->ws->row_loss + lo);
}

double ae__model_loss_ws(const ae_model *m, ae__workspace *ws, int loss, const float *x,
                         const float *y, size_t n)
{
    loss_job j = {m, ws, x, y, n, loss, 0, {0}};
    double sum = 0, penalty = 0;
    j.logits = loss == AE_LOSS_BCE && m->layers[m->n_layers - 1].activation == AE_ACT_SIGMOID;
    ae__pool_run(ws->pool, loss_task, &j);
    for (size_t r = 0; r < n; r++) sum += ws->row_loss[r];
    for (int t = 0; t < ae__pool_threads(ws->pool); t++) penalty += j.penalty[t];
    return sum + penalty * (double)ae__shape_size(&m->layers[m->n_layers - 1].out);
}

/* Backward of each thread's rows into its own gradient buffer, then the
 * buffers are summed into thread 0's, each thread taking a parameter range. */
static void backward_task(void *ctx, int t, int nt)
{
    const pass_job *j = ctx;
    ae__workspace *ws = j->ws;
    float *g = t == 0 ? j->grads : ws->thread_grads[t];
    size_t lo, hi;
    ae__split(j->n, t, nt, &lo, &hi);
    if (lo < hi) backward_rows(j->m, ws, j->x, j->dout, j->preact, g, lo, hi, t, 0);
    else memset(g, 0, ws->n_params * sizeof *g);
    ae__pool_barrier(ws->pool);
    ae__reduce_grads(ws, j->grads, t, nt);
}

void ae__reduce_grads(ae__workspace *ws, float *grads, int t, int nt)
{
    size_t lo, hi;
    ae__split(ws->n_params, t, nt, &lo, &hi);
    for (int k = 1; k < nt; k++) {
        const float *src = ws->thread_grads[k];
        for (size_t i = lo; i < hi; i++) grads[i] += src[i];
    }
}

const float *ae__model_forward_ws(const ae_model *m, ae__workspace *ws, const float *x, size_t n)
{
    pass_job j = {m, ws, x, NULL, NULL, n, 0};
    ae__pool_run(ws->pool, forward_task, &j);
    return ws->acts[m->n_layers - 1];
}

void ae__model_backward_ws(const ae_model *m, ae__workspace *ws, const float *x, float *dout,
                           int dout_is_preact, float *grads, size_t n)
{
    pass_job j = {m, ws, x, dout, grads, n, dout_is_preact};
    ws->batch_rows = n;
    ae__pool_run(ws->pool, backward_task, &j);
}

/* ---- prediction ---------------------------------------------------------------------- */

/* Rows per internal batch: bounded so the workspace stays near 16 MiB. */
static size_t predict_chunk(const ae_model *m, size_t n)
{
    size_t per_sample = 0, max_out = 0, chunk;
    for (size_t i = 0; i < m->n_layers; i++) {
        size_t o = ae__shape_size(&m->layers[i].out), s = ae__layer_ws_floats(&m->layers[i], 1);
        if (o > max_out) max_out = o;
        if (s > per_sample) per_sample = s;
    }
    per_sample += 2 * max_out;
    chunk = ((size_t)4 << 20) / (per_sample ? per_sample : 1);
    if (chunk < 1) chunk = 1;
    if (chunk > 256) chunk = 256;
    return chunk < n ? chunk : n;
}

/* One thread's rows, in chunks through one inference workspace. NaN or
 * infinity in the inputs stops it with AE_ERR_NUMERIC, and so does one in the
 * outputs (finite inputs, but weights that overflow), then with *bad_output. */
static ae_status run_rows(const ae_model *m, const float *x, size_t n, float *y, int *bad_output)
{
    const size_t in_size = ae__shape_size(&m->input), out_size = ae_model_output_size(m);
    size_t chunk = predict_chunk(m, n);
    ae__workspace *ws;
    ae_status st = ae__workspace_create(m, chunk, 0, &ws);
    if (st != AE_OK) return st;
    for (size_t done = 0; done < n; done += chunk) {
        size_t rows = n - done < chunk ? n - done : chunk;
        const float *res;
        /* checked chunk by chunk, while the rows are about to be read anyway:
         * a separate pass over a large input costs a memory sweep */
        if (!ae__all_finite(x + done * in_size, rows * in_size)) {
            st = AE_ERR_NUMERIC;
            break;
        }
        res = ae__model_forward_ws(m, ws, x + done * in_size, rows);
        if (!ae__copy_finite(y + done * out_size, res, rows * out_size)) {
            *bad_output = 1;
            st = AE_ERR_NUMERIC;
            break;
        }
    }
    ae__workspace_free(ws);
    return st;
}

#define AE__ROWS_PER_THREAD 64 /* fewer rows are not worth a thread's start-up */

typedef struct run_job {
    const ae_model *m;
    const float *x;
    float *y;
    size_t n;
    ae_status st[AE__MAX_THREADS];
    int bad_output[AE__MAX_THREADS];
} run_job;

static void run_task(void *ctx, int t, int nt)
{
    run_job *j = ctx;
    const size_t in_size = ae__shape_size(&j->m->input), out_size = ae_model_output_size(j->m);
    size_t lo, hi;
    ae__split(j->n, t, nt, &lo, &hi);
    j->bad_output[t] = 0;
    j->st[t] = lo < hi ? run_rows(j->m, j->x + lo * in_size, hi - lo, j->y + lo * out_size,
                                  &j->bad_output[t])
                       : AE_OK;
}

/* Forward of n rows, split over the model's threads. */
static ae_status model_run(const ae_model *m, const float *x, size_t n, float *y)
{
    /* inference splits the rows, not each layer: every thread runs whole
     * chunks through its own workspace, with no synchronisation in between.
     * Forward passes never call BLAS (dense.c), so OpenBLAS' process-wide
     * thread count is neither read nor changed here. */
    int threads = m->threads > 0 ? m->threads : ae__default_threads();
    size_t useful = (n + AE__ROWS_PER_THREAD - 1) / AE__ROWS_PER_THREAD;
    ae__pool *pool;
    run_job job;
    ae_status st = AE_OK;
    int bad_output = 0;
    if (threads > AE__MAX_THREADS) threads = AE__MAX_THREADS;
    if ((size_t)threads > useful) threads = (int)useful;
    if (threads <= 1 || ae__pool_create(&pool, threads) != AE_OK) {
        st = run_rows(m, x, n, y, &bad_output);
    } else {
        job.m = m;
        job.x = x;
        job.y = y;
        job.n = n;
        ae__pool_run(pool, run_task, &job);
        ae__pool_free(pool);
        for (int t = 0; t < threads && st == AE_OK; t++) {
            st = job.st[t];
            bad_output = job.bad_output[t];
        }
    }
    if (st == AE_ERR_NUMERIC && bad_output)
        return ae__fail(NULL, st,
                        "the outputs overflowed to NaN or infinity from finite inputs "
                        "(weights too large for them; the output is incomplete)");
    if (st == AE_ERR_NUMERIC)
        return ae__fail(NULL, st, "inputs contain NaN or infinity (the output is incomplete)");
    if (st != AE_OK)
        return ae__fail(NULL, st, "prediction failed: %s", ae_status_string(st));
    return AE_OK;
}

ae_status ae_model_set_threads(ae_model *m, int n_threads)
{
    AE__ENTER();
    if (!m) return ae__fail(NULL, AE_ERR_INVALID_ARG, "model is NULL");
    if (n_threads < 0 || n_threads > AE__MAX_THREADS)
        return ae__fail(m->msg, AE_ERR_RANGE, "%d is outside 0..%d", n_threads,
                        AE__MAX_THREADS);
    m->threads = n_threads;
    return AE_OK;
}

int ae_model_get_threads(const ae_model *m) { return m ? m->threads : 0; }

ae_status ae_model_predict(const ae_model *m, const float *x, size_t n, float *y, size_t y_len)
{
    AE__ENTER();
    size_t need;
    if (!m || !x || !y) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (n == 0) return ae__fail(NULL, AE_ERR_INVALID_ARG, "no samples (n = 0)");
    if (ae__mul_size(n, ae_model_output_size(m), &need) != 0)
        return ae__fail(NULL, AE_ERR_RANGE, "%zu samples of %zu output floats overflow size_t", n,
                        ae_model_output_size(m));
    if (y_len < need)
        return ae__fail(NULL, AE_ERR_SHAPE, "output buffer holds %zu floats, %zu samples need %zu",
                        y_len, n, need);
    return model_run(m, x, n, y); /* checks inputs and outputs for NaN/inf as it goes */
}

ae_status ae_model_decode(const ae_model *m, const float *codes, size_t n, float *y,
                          size_t y_len)
{
    AE__ENTER();
    ae_model dec;
    size_t need;
    if (!m || !codes || !y) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!m->has_code)
        return ae__fail(NULL, AE_ERR_STATE, "the model has no code layer (ae_builder_mark_code)");
    if (m->code_layer + 1 >= m->n_layers)
        return ae__fail(NULL, AE_ERR_STATE, "the code layer is the last layer: nothing decodes");
    if (n == 0) return ae__fail(NULL, AE_ERR_INVALID_ARG, "no codes (n = 0)");
    if (ae__mul_size(n, ae_model_output_size(m), &need) != 0)
        return ae__fail(NULL, AE_ERR_RANGE, "%zu codes of %zu output floats overflow size_t", n,
                        ae_model_output_size(m));
    if (y_len < need)
        return ae__fail(NULL, AE_ERR_SHAPE, "output buffer holds %zu floats, %zu codes need %zu",
                        y_len, n, need);
    /* a view of the layers after the code: their kernels and biases already
     * point into m's parameters, and inference passes read nothing else
     * (offsets are only used by backward), so nothing is copied */
    dec = *m;
    dec.layers = m->layers + m->code_layer + 1;
    dec.n_layers = m->n_layers - m->code_layer - 1;
    dec.input = m->layers[m->code_layer].out;
    dec.has_code = 0;
    dec.code_layer = 0;
    return model_run(&dec, codes, n, y); /* checks codes and outputs for NaN/inf */
}

ae_status ae_model_forward(const ae_model *m, const ae_tensor *x, ae_tensor *y)
{
    AE__ENTER();
    size_t n, per;
    if (!m || !x || !y) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    n = ae_tensor_dim(x, 0);
    per = ae_tensor_size(x) / n;
    if (per != ae_model_input_size(m))
        return ae__fail(NULL, AE_ERR_SHAPE,
                        "input has %zu floats per sample, the model takes %zu",
                        per, ae_model_input_size(m));
    return AE__NESTED(ae_model_predict(m, ae_tensor_data_const(x), n, ae_tensor_data(y), ae_tensor_size(y)));
}

/* ---- summary ---------------------------------------------------------------------------- */

typedef struct text_out {
    char *buf;
    size_t cap, len;
} text_out;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void out_printf(text_out *t, const char *fmt, ...)
{
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(t->len < t->cap ? t->buf + t->len : NULL, t->len < t->cap ? t->cap - t->len : 0,
                  fmt, ap);
    va_end(ap);
    if (k > 0) t->len += (size_t)k;
}

/* 1234567 -> "1,234,567" */
static void with_commas(size_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < cap; i++) {
        buf[o++] = digits[i];
        if ((n - i - 1) % 3 == 0 && i != n - 1) buf[o++] = ',';
    }
    buf[o] = '\0';
}

ae_status ae_model_summary(const ae_model *m, char *buf, size_t cap, size_t *needed)
{
    AE__ENTER();
    static const char rule[] =
        "_____________________________________________________________________\n";
    static const char dbl[] =
        "=====================================================================\n";
    text_out t = {buf, cap, 0};
    char shape[64], label[64], total[32];
    if (!m || (!buf && cap)) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    ae__shape_format(&m->input, shape, sizeof shape);
    out_printf(&t, "Model: \"autoencoder\"\n%s", rule);
    out_printf(&t, " %-32s%-26s%-10s\n%s", "Layer (type)", "Output Shape", "Param #", dbl);
    out_printf(&t, " %-32s%-26s%-10d\n", "input (InputLayer)", shape, 0);
    for (size_t i = 0; i < m->n_layers; i++) {
        const ae_layer *L = &m->layers[i];
        snprintf(label, sizeof label, "%s (%s)", L->name, kind_class(L->kind));
        ae__shape_format(&L->out, shape, sizeof shape);
        /* a label too long for its column keeps one space before the shape */
        const int pad = (int)strlen(label) < 32 ? 32 - (int)strlen(label) : 1;
        out_printf(&t, "%s %s%*s%-26s%-10zu%s", rule, label, pad, "", shape,
                   L->n_kernel + L->n_bias + L->n_stats,
                   m->has_code && m->code_layer == i ? "<- code" : "");
        if (L->kind == AE_LAYER_ACTIVITY_REGULARIZATION)
            out_printf(&t, "l1=%g l2=%g", L->l1, L->l2);
        out_printf(&t, "\n");
    }
    {
        char trainable[32], fixed[32];
        with_commas(m->n_params + m->n_stats, total, sizeof total);
        with_commas(m->n_params, trainable, sizeof trainable);
        with_commas(m->n_stats, fixed, sizeof fixed);
        out_printf(&t, "%sTotal params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s",
                   dbl, total, trainable, fixed, rule);
    }
    if (needed) *needed = t.len + 1;
    if (cap && t.len >= cap)
        return ae__fail(NULL, AE_ERR_RANGE, "%zu bytes needed, %zu given",
                        t.len + 1, cap);
    return AE_OK;
}
