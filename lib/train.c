/* Training: configuration, history, the fit loop and evaluation. */
#include <math.h>
#include <string.h>
#include <time.h>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define AE__HAVE_MXCSR 1
#endif

#include "source_impl.h"
#include "train_state.h"

/* ---- configuration ------------------------------------------------------------- */

#define AE__N_KEYS 23 /* keys 1..22 */

/* Every key has one type. Integer keys keep an exact int64_t, so a seed
 * above 2^53 is not rounded; real keys a double. */
typedef struct param_spec {
    const char *name;
    ae_value_type type;
    int64_t ilo, ihi, idef;
    double dlo, dhi, ddef;
} param_spec;

#define INT_KEY(k, lo, hi, def) [k] = {#k, AE_VALUE_INT, lo, hi, def, 0, 0, 0}
#define REAL_KEY(k, lo, hi, def) [k] = {#k, AE_VALUE_DOUBLE, 0, 0, 0, lo, hi, def}
static const param_spec specs[AE__N_KEYS] = {
    INT_KEY(AE_TRAIN_OPTIMIZER, AE_OPT_NADAM, AE_OPT_SGD, AE_OPT_NADAM),
    INT_KEY(AE_TRAIN_LOSS, AE_LOSS_BCE, AE_LOSS_MSE, AE_LOSS_BCE),
    INT_KEY(AE_TRAIN_EPOCHS, 1, 1000000, 10),
    INT_KEY(AE_TRAIN_BATCH_SIZE, 1, 65536, 32),
    INT_KEY(AE_TRAIN_SHUFFLE, 0, 1, 1),
    INT_KEY(AE_TRAIN_SEED, 0, INT64_MAX, 0),
    REAL_KEY(AE_TRAIN_LEARNING_RATE, 1e-12, 10, 1e-3),
    REAL_KEY(AE_TRAIN_BETA1, 0, 0.999999, 0.9),
    REAL_KEY(AE_TRAIN_BETA2, 0, 0.999999999, 0.999),
    REAL_KEY(AE_TRAIN_EPSILON, 1e-30, 1, 1e-7),
    REAL_KEY(AE_TRAIN_MOMENTUM, 0, 0.999999, 0),
    REAL_KEY(AE_TRAIN_MOMENTUM_DECAY, 0, 1, 0.004),
    REAL_KEY(AE_TRAIN_VALIDATION_SPLIT, 0, 0.99, 0),
    INT_KEY(AE_TRAIN_PATIENCE, 0, 1000000, 0),
    REAL_KEY(AE_TRAIN_MIN_DELTA, 0, 1e6, 0),
    INT_KEY(AE_TRAIN_RESTORE_BEST, 0, 1, 1),
    INT_KEY(AE_TRAIN_THREADS, 0, AE__MAX_THREADS, 0),
    INT_KEY(AE_TRAIN_CHECKPOINT_STEPS, 0, INT64_MAX, 0),
    REAL_KEY(AE_TRAIN_L2, 0, 100, 0),
    REAL_KEY(AE_TRAIN_WEIGHT_DECAY, 0, 100, 0),
    INT_KEY(AE_TRAIN_SHUFFLE_BLOCK, 0, (int64_t)1 << 30, 0),
    INT_KEY(AE_TRAIN_SHUFFLE_WINDOW, 1, 65536, 8),
};
#undef INT_KEY
#undef REAL_KEY

struct ae_train_config {
    int64_t iv[AE__N_KEYS]; /* integer keys */
    double dv[AE__N_KEYS];  /* real keys */
    ae_progress_fn callback;
    void *user;
    ae_grad_reduce_fn grad_reduce; /* ae_train_config_set_reduce */
    ae_stat_reduce_fn stat_reduce;
    void *reduce_user;
};

/* The spec of @p key if it exists and has @p type (0: any), else fails. */
static const param_spec *key_spec(ae_train_param key, ae_value_type type)
{
    const param_spec *sp;
    if ((int)key < 1 || (int)key >= AE__N_KEYS) {
        ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown training key %d", (int)key);
        return NULL;
    }
    sp = &specs[key];
    if (type && sp->type != type) {
        ae__fail(NULL, AE_ERR_INVALID_ARG, "%s takes %s: use the _%s functions", sp->name,
                 sp->type == AE_VALUE_INT ? "an integer" : "a real number",
                 sp->type == AE_VALUE_INT ? "int" : "double");
        return NULL;
    }
    return sp;
}

ae_status ae_train_config_create(ae_train_config **out)
{
    AE__ENTER();
    ae_train_config *c;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    c = ae__calloc(1, sizeof *c);
    *out = c;
    if (!c) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    for (int k = 1; k < AE__N_KEYS; k++) {
        c->iv[k] = specs[k].idef;
        c->dv[k] = specs[k].ddef;
    }
    return AE_OK;
}

void ae_train_config_free(ae_train_config *cfg)
{
    if (cfg) ae__free(cfg, sizeof *cfg);
}

const char *ae_train_param_name(ae_train_param key)
{
    return (int)key >= 1 && (int)key < AE__N_KEYS ? specs[key].name : NULL;
}

ae_status ae_train_param_type(ae_value_type *type, ae_train_param key)
{
    AE__ENTER();
    const param_spec *sp;
    if (!type) return ae__fail(NULL, AE_ERR_INVALID_ARG, "type is NULL");
    if (!(sp = key_spec(key, 0))) return AE_ERR_INVALID_ARG;
    *type = sp->type;
    return AE_OK;
}

ae_status ae_train_param_int_bounds(int64_t *lo, int64_t *hi, ae_train_param key)
{
    AE__ENTER();
    const param_spec *sp = key_spec(key, AE_VALUE_INT);
    if (!sp) return AE_ERR_INVALID_ARG;
    if (lo) *lo = sp->ilo;
    if (hi) *hi = sp->ihi;
    return AE_OK;
}

ae_status ae_train_param_double_bounds(double *lo, double *hi, ae_train_param key)
{
    AE__ENTER();
    const param_spec *sp = key_spec(key, AE_VALUE_DOUBLE);
    if (!sp) return AE_ERR_INVALID_ARG;
    if (lo) *lo = sp->dlo;
    if (hi) *hi = sp->dhi;
    return AE_OK;
}

ae_status ae_train_config_set_int(ae_train_config *cfg, ae_train_param key, int64_t value)
{
    AE__ENTER();
    const param_spec *sp;
    if (!cfg) return ae__fail(NULL, AE_ERR_INVALID_ARG, "training config is NULL");
    if (!(sp = key_spec(key, AE_VALUE_INT))) return AE_ERR_INVALID_ARG;
    if (value < sp->ilo || value > sp->ihi)
        return ae__fail(NULL, AE_ERR_RANGE, "%s = %lld is outside [%lld, %lld]", sp->name,
                        (long long)value, (long long)sp->ilo, (long long)sp->ihi);
    cfg->iv[key] = value;
    return AE_OK;
}

ae_status ae_train_config_set_double(ae_train_config *cfg, ae_train_param key, double value)
{
    AE__ENTER();
    const param_spec *sp;
    if (!cfg) return ae__fail(NULL, AE_ERR_INVALID_ARG, "training config is NULL");
    if (!(sp = key_spec(key, AE_VALUE_DOUBLE))) return AE_ERR_INVALID_ARG;
    if (!(value >= sp->dlo && value <= sp->dhi))
        return ae__fail(NULL, AE_ERR_RANGE, "%s = %g is outside [%g, %g]", sp->name, value,
                        sp->dlo, sp->dhi);
    cfg->dv[key] = value;
    return AE_OK;
}

ae_status ae_train_config_get_int(int64_t *value, const ae_train_config *cfg, ae_train_param key)
{
    AE__ENTER();
    if (!cfg || !value) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!key_spec(key, AE_VALUE_INT)) return AE_ERR_INVALID_ARG;
    *value = cfg->iv[key];
    return AE_OK;
}

ae_status ae_train_config_get_double(double *value, const ae_train_config *cfg,
                                     ae_train_param key)
{
    AE__ENTER();
    if (!cfg || !value) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!key_spec(key, AE_VALUE_DOUBLE)) return AE_ERR_INVALID_ARG;
    *value = cfg->dv[key];
    return AE_OK;
}

ae_status ae_train_config_set_callback(ae_train_config *cfg, ae_progress_fn fn, void *user)
{
    AE__ENTER();
    if (!cfg) return ae__fail(NULL, AE_ERR_INVALID_ARG, "training config is NULL");
    cfg->callback = fn;
    cfg->user = fn ? user : NULL;
    return AE_OK;
}

ae_status ae_train_config_set_reduce(ae_train_config *cfg, ae_grad_reduce_fn grads,
                                     ae_stat_reduce_fn stats, void *user)
{
    AE__ENTER();
    if (!cfg) return ae__fail(NULL, AE_ERR_INVALID_ARG, "training config is NULL");
    cfg->grad_reduce = grads;
    cfg->stat_reduce = stats;
    cfg->reduce_user = grads || stats ? user : NULL;
    return AE_OK;
}

/* ---- history --------------------------------------------------------------------- */

typedef struct epoch_rec {
    double train_loss, val_loss, seconds, images_per_second;
} epoch_rec;

struct ae_history {
    epoch_rec *e;
    size_t n, cap;
    int has_best, stopped_early;
    size_t best;
};

ae_status ae_history_create(ae_history **out)
{
    AE__ENTER();
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = ae__calloc(1, sizeof **out);
    return *out ? AE_OK : ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
}

void ae_history_free(ae_history *h)
{
    if (!h) return;
    ae__free(h->e, h->cap * sizeof *h->e);
    ae__free(h, sizeof *h);
}

size_t ae_history_epochs(const ae_history *h) { return h ? h->n : 0; }
int ae_history_stopped_early(const ae_history *h) { return h ? h->stopped_early : 0; }

ae_status ae_history_get(double *value, const ae_history *h, size_t epoch, ae_history_field field)
{
    AE__ENTER();
    const epoch_rec *r;
    if (!h || !value) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (epoch >= h->n) return ae__fail(NULL, AE_ERR_RANGE, "epoch %zu of %zu", epoch, h->n);
    r = &h->e[epoch];
    switch (field) {
    case AE_HIST_TRAIN_LOSS: *value = r->train_loss; break;
    case AE_HIST_VAL_LOSS: *value = r->val_loss; break;
    case AE_HIST_SECONDS: *value = r->seconds; break;
    case AE_HIST_IMAGES_PER_SECOND: *value = r->images_per_second; break;
    default: return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown field %d", (int)field);
    }
    return AE_OK;
}

ae_status ae_history_best_epoch(size_t *epoch, const ae_history *h)
{
    AE__ENTER();
    if (!h || !epoch) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!h->has_best) return ae__fail(NULL, AE_ERR_STATE, "the history has no epochs");
    *epoch = h->best;
    return AE_OK;
}

/* Reserves room for every epoch up front so fit never fails mid-way on it. */
static ae_status history_reserve(ae_history *h, size_t epochs)
{
    h->n = 0;
    h->has_best = h->stopped_early = 0;
    if (epochs <= h->cap) return AE_OK;
    ae__free(h->e, h->cap * sizeof *h->e);
    h->cap = 0;
    h->e = ae__calloc(epochs, sizeof *h->e);
    if (!h->e) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the training history");
    h->cap = epochs;
    return AE_OK;
}

/* ---- evaluation ----------------------------------------------------------------------- */

static int sigmoid_output(const ae_model *m)
{
    return m->layers[m->n_layers - 1].activation == AE_ACT_SIGMOID;
}

/* Summed loss over n rows using ws (forward only), in batches of ws->batch;
 * layer penalties count, each row's in the units of the loss of its out
 * elements (ae__layer_penalty). */
static double loss_sum(const ae_model *m, ae__workspace *ws, int loss, const float *x,
                       const float *y, size_t n)
{
    const size_t in = ae_model_input_size(m), out = ae_model_output_size(m);
    double sum = 0;
    for (size_t done = 0; done < n; done += ws->batch) {
        size_t rows = n - done < ws->batch ? n - done : ws->batch;
        sum += ae__model_loss_ws(m, ws, loss, x + done * in, y + done * out, rows);
    }
    return sum;
}

/* Are parameters of L subject to AE_TRAIN_L2 and AE_TRAIN_WEIGHT_DECAY? Its
 * kernel [*a, *b) clipped to [lo, hi), if not empty. */
static int decayed_range(const ae_layer *L, size_t lo, size_t hi, size_t *a, size_t *b)
{
    if (L->kind != AE_LAYER_DENSE && L->kind != AE_LAYER_CONV2D &&
        L->kind != AE_LAYER_CONV2D_TRANSPOSE)
        return 0;
    *a = L->param_offset > lo ? L->param_offset : lo;
    *b = L->param_offset + L->n_kernel < hi ? L->param_offset + L->n_kernel : hi;
    return *a < *b;
}

/* sum w^2 over the decayed kernels' parameters in [lo, hi) */
static double kernel_sq_sum(const ae_model *m, size_t lo, size_t hi)
{
    double sum = 0;
    size_t a, b;
    for (size_t i = 0; i < m->n_layers; i++)
        if (decayed_range(&m->layers[i], lo, hi, &a, &b))
            for (size_t k = a; k < b; k++) sum += (double)m->params[k] * m->params[k];
    return sum;
}

/* Mean loss over n rows using ws. */
static double mean_loss(const ae_model *m, ae__workspace *ws, int loss, const float *x,
                        const float *y, size_t n)
{
    return loss_sum(m, ws, loss, x, y, n) / ((double)n * (double)ae_model_output_size(m));
}

static ae_status check_rows(char *msg, const ae_model *m, const float *x, const float *y,
                            size_t n, const char *fn)
{
    if (!m || !x) return ae__fail(msg, AE_ERR_INVALID_ARG, "NULL argument");
    if (n == 0) return ae__fail(msg, AE_ERR_INVALID_ARG, "no rows (n = 0)");
    if (!y && ae_model_input_size(m) != ae_model_output_size(m))
        return ae__fail(msg, AE_ERR_SHAPE,
                        "targets omitted but the model maps %zu inputs to %zu outputs",
                        ae_model_input_size(m), ae_model_output_size(m));
    if (!ae__all_finite(x, n * ae_model_input_size(m)))
        return ae__fail(msg, AE_ERR_NUMERIC, "inputs contain NaN or infinity");
    if (y && !ae__all_finite(y, n * ae_model_output_size(m)))
        return ae__fail(msg, AE_ERR_NUMERIC, "targets contain NaN or infinity");
    return AE_OK;
}

ae_status ae_model_evaluate(double *value, const ae_model *m, ae_loss loss, const float *x,
                            const float *y, size_t n)
{
    AE__ENTER();
    ae__workspace *ws;
    ae_status st;
    if (!value) return ae__fail(NULL, AE_ERR_INVALID_ARG, "value is NULL");
    if (loss != AE_LOSS_BCE && loss != AE_LOSS_MSE)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown loss %d", (int)loss);
    if ((st = check_rows(NULL, m, x, y, n, "ae_model_evaluate")) != AE_OK) return st;
    if ((st = ae__workspace_create(m, n < 256 ? n : 256, 0, &ws)) != AE_OK)
        return st;
    *value = mean_loss(m, ws, loss, x, y ? y : x, n);
    ae__workspace_free(ws);
    /* inputs and targets are finite (check_rows): the predictions overflowed */
    if (!isfinite(*value))
        return ae__fail(NULL, AE_ERR_NUMERIC,
                        "the loss is not finite (the predictions overflowed to NaN or infinity)");
    return AE_OK;
}

/* ---- fit ---------------------------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Everything a fit needs, reserved before the first step. The optimiser and
 * the best weights live in the training state (train_state.h), which
 * ae_train_fit keeps for one call and ae_train_fit_state across calls. */
typedef struct fit_state {
    ae__workspace *ws;       /* training workspace, batch rows */
    ae__optimizer *opt;      /* the state's */
    float *grads;            /* n_params */
    float *epoch_start;      /* snapshot of the weights and statistics (snapshot_take) */
    float *xb, *yb, *dout;   /* gathered batch inputs/targets, output gradient */
    float *xb_next, *yb_next; /* a source's next batch, filled in the background */
    size_t *order;           /* training row order */
    size_t *val_rows;        /* a source's validation row numbers, batch of them */
    size_t n_train, batch, n_params, n_stats, in, out;
    int self_targets;        /* an autoencoder: the targets are the inputs */
    ae_grad_reduce_fn reduce; /* gradient hook, or NULL */
    void *reduce_user;
    int reduce_failed;       /* the hook failed in the last step */
    int sync_failed;         /* the statistics hook failed in the last step (batch norm) */
} fit_state;

static void fit_state_free(fit_state *s)
{
    size_t pbytes = (s->n_params ? s->n_params : 1) * sizeof(float);
    size_t sbytes = (s->n_params + s->n_stats ? s->n_params + s->n_stats : 1) * sizeof(float);
    ae__workspace_free(s->ws);
    ae__free_aligned(s->grads, pbytes);
    ae__free_aligned(s->epoch_start, sbytes);
    ae__free_aligned(s->xb, s->batch * s->in * sizeof(float));
    ae__free_aligned(s->yb, s->batch * s->out * sizeof(float));
    ae__free_aligned(s->dout, s->batch * s->out * sizeof(float));
    ae__free_aligned(s->xb_next, s->batch * s->in * sizeof(float));
    ae__free_aligned(s->yb_next, s->batch * s->out * sizeof(float));
    ae__free(s->order, s->n_train * sizeof *s->order);
    ae__free(s->val_rows, s->batch * sizeof *s->val_rows);
}

static ae_status fit_state_init(fit_state *s, const ae_model *m, const ae_train_config *c,
                                size_t n_train, int from_source)
{
    size_t pbytes;
    ae_status st;
    memset(s, 0, sizeof *s);
    s->n_train = n_train;
    s->batch = (size_t)c->iv[AE_TRAIN_BATCH_SIZE] < n_train ? (size_t)c->iv[AE_TRAIN_BATCH_SIZE] : n_train;
    s->n_params = m->n_params;
    s->n_stats = m->n_stats;
    s->in = ae_model_input_size(m);
    s->out = ae_model_output_size(m);
    s->reduce = c->grad_reduce;
    s->reduce_user = c->reduce_user;
    pbytes = (s->n_params ? s->n_params : 1) * sizeof(float);
    if ((st = ae__workspace_create(m, s->batch, 1, &s->ws)) != AE_OK) return st;
    s->ws->noise_seed = (uint64_t)c->iv[AE_TRAIN_SEED]; /* dropout and noise layers */
    if (m->n_stats && c->stat_reduce) { /* batch statistics of the global batch */
        s->ws->sync = c->stat_reduce;
        s->ws->sync_user = c->reduce_user;
        s->ws->sync_failed = &s->sync_failed;
    }
    s->grads = ae__malloc_aligned(pbytes);
    s->epoch_start = ae__malloc_aligned(
        (s->n_params + s->n_stats ? s->n_params + s->n_stats : 1) * sizeof(float));
    s->xb = ae__malloc_aligned(s->batch * s->in * sizeof(float));
    s->yb = ae__malloc_aligned(s->batch * s->out * sizeof(float));
    s->dout = ae__malloc_aligned(s->batch * s->out * sizeof(float));
    s->order = ae__malloc(n_train * sizeof *s->order);
    if (!s->grads || !s->epoch_start || !s->xb || !s->yb || !s->dout || !s->order)
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory reserving training buffers");
    if (from_source) {
        s->xb_next = ae__malloc_aligned(s->batch * s->in * sizeof(float));
        s->yb_next = ae__malloc_aligned(s->batch * s->out * sizeof(float));
        s->val_rows = ae__malloc(s->batch * sizeof *s->val_rows);
        if (!s->xb_next || !s->yb_next || !s->val_rows)
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory reserving training buffers");
    }
    for (size_t i = 0; i < n_train; i++) s->order[i] = i;
    return AE_OK;
}

/* One training step, run by every thread of the workspace's pool: each
 * thread gathers, forwards, scores and backpropagates its share of the
 * batch's rows with no synchronisation; after one barrier the threads sum the
 * gradient buffers over disjoint parameter ranges and check them; after a
 * second, each applies the optimiser to its range.
 *
 * Why rows, not features: a split of dense chains by features (each thread
 * owning slices of every layer's weights, gradients and optimiser moments,
 * only activations crossing the cores, at two barriers a step) was built
 * and measured on the simple model, 2 threads on 2 AVX2 cores, 8
 * interleaved runs of 3 epochs: fastest epoch 0.188 s against the row
 * split's 0.167 s, median 0.283 s against 0.233 s. Timed phase by phase
 * against its own one-thread run, each thread's products took 0.51-0.61 of
 * the one-thread time, but the loss 0.64, the gather 0.69 and the gradient
 * check with the optimiser 0.85: the phases bound by memory slow down when
 * both cores run, however the parameters are split. Prefetching the next
 * batch's rows and writing the loss gradient over the outputs gained
 * nothing either (20 interleaved pairs: 1.01 times the time). */
typedef struct step_job {
    ae_model *m;
    fit_state *s;
    const float *x, *y;
    size_t first, rows;
    int loss, logits;
    double l2, decay;                /* AE_TRAIN_L2; 1 - lr * AE_TRAIN_WEIGHT_DECAY */
    double partial[AE__MAX_THREADS]; /* each thread's rows' penalties (ws->row_loss: losses) */
    double l2_sum[AE__MAX_THREADS];  /* each thread's sum w^2 (AE_TRAIN_L2) */
    int bad[AE__MAX_THREADS];        /* a thread's gradient range held NaN/inf */
} step_job;

/* Denormal floats are 10-100x slower on x86; a trained network's small
 * gradients and optimiser moments drift into that range after an epoch or
 * two. During a step the thread flushes them to zero (FTZ/DAZ, as PyTorch's
 * set_flush_denormal does) and restores the caller's mode afterwards. */
static unsigned flush_denormals_begin(void)
{
#ifdef AE__HAVE_MXCSR
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
#else
    return 0;
#endif
}

static void flush_denormals_end(unsigned old)
{
#ifdef AE__HAVE_MXCSR
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

static void step_task_body(step_job *j, int t, int nt);

/* dst[lo, hi) = the sum of every thread's gradient buffer over [lo, hi), in
 * thread order (g0 is thread 0's, nt > 1). dst may be one of the buffers:
 * each block is summed in acc before it is written. Returns whether the sum
 * is finite, checked on each block while it is in acc, not in a second pass
 * over dst. */
static int sum_grads(const ae__workspace *ws, const float *g0, float *dst, size_t lo, size_t hi,
                     int nt)
{
    float acc[256];
    int finite = 1;
    for (size_t b = lo; b < hi; b += 256) {
        const size_t len = hi - b < 256 ? hi - b : 256;
        const float *g1 = ws->thread_grads[1] + b;
        for (size_t i = 0; i < len; i++) acc[i] = g0[b + i] + g1[i];
        for (int k = 2; k < nt; k++) {
            const float *gk = ws->thread_grads[k] + b;
            for (size_t i = 0; i < len; i++) acc[i] += gk[i];
        }
        finite &= ae__all_finite(acc, len);
        memcpy(dst + b, acc, len * sizeof *acc);
    }
    return finite;
}

/* The batch's summed loss: its rows' losses in row order, so the sum is the
 * same bits whichever threads scored them, then each thread's penalties. */
static double step_loss(const step_job *j, int nt)
{
    const double *row_loss = j->s->ws->row_loss;
    double total = 0;
    for (size_t r = 0; r < j->rows; r++) total += row_loss[r];
    for (int k = 0; k < nt; k++) total += j->partial[k];
    return total;
}

static void step_task(void *ctx, int t, int nt)
{
    unsigned mode = flush_denormals_begin();
    step_task_body(ctx, t, nt);
    flush_denormals_end(mode);
}

static void step_task_body(step_job *j, int t, int nt)
{
    fit_state *s = j->s;
    ae__workspace *ws = s->ws;
    const ae_model *m = j->m;
    float *g = t == 0 ? s->grads : ws->thread_grads[t];
    /* where the summed gradient of this thread's parameter range goes: its
     * own buffer, so the caller's buffer, which thread 0 fills in the next
     * step, never has its cache lines written by another core (the hook
     * needs the whole sum in one buffer) */
    float *sum = s->reduce ? s->grads : g;
    const float *targets = s->self_targets ? s->xb : s->yb; /* an autoencoder's targets are its inputs */
    size_t lo, hi, plo, phi;
    double total;
    int summed_finite = 0;
    ae__split(j->rows, t, nt, &lo, &hi);
    for (size_t r = lo; j->x && r < hi; r++) { /* in-memory rows; a source's are filled */
        size_t row = s->order[j->first + r];
        memcpy(s->xb + r * s->in, j->x + row * s->in, s->in * sizeof(float));
        if (j->y != j->x) memcpy(s->yb + r * s->out, j->y + row * s->out, s->out * sizeof(float));
    }
    j->partial[t] = 0;
    /* batch statistics (m->syncs) need every thread in both passes */
    if (lo < hi || m->syncs) {
        double mine = 0;
        ae__forward_rows(m, ws, s->xb, lo, hi, t, j->logits);
        ae__loss_rows(j->loss, ws->acts[m->n_layers - 1] + lo * s->out, targets + lo * s->out,
                      hi - lo, s->out, s->dout + lo * s->out, j->rows * s->out, j->logits,
                      ws->row_loss + lo);
        /* the loss sum is divided by rows * out: a row's penalty counts once */
        if (lo < hi) j->partial[t] = ae__penalty_rows(m, ws, s->xb, lo, hi) * (double)s->out;
        for (size_t r = lo; r < hi; r++) mine += ws->row_loss[r];
        if (isfinite(mine + j->partial[t]) || m->syncs)
            ae__backward_rows(m, ws, s->xb, s->dout, j->logits, g, lo, hi, t);
    } else {
        memset(g, 0, s->n_params * sizeof *g);
    }
    if (j->l2 > 0) { /* the weights before this step's update, over this thread's range */
        ae__split(s->n_params, t, nt, &plo, &phi);
        j->l2_sum[t] = kernel_sq_sum(m, plo, phi);
    }
    ae__pool_barrier(ws->pool);
    total = step_loss(j, nt);
    ae__split(s->n_params, t, nt, &plo, &phi);
    if (isfinite(total)) {
        if (nt > 1) summed_finite = sum_grads(ws, s->grads, sum, plo, phi, nt);
    } else if (s->reduce) {
        /* the hook (an allreduce) must see every step of every process:
         * hand it NaN, so that the other processes fail this step too */
        for (size_t i = plo; i < phi; i++) s->grads[i] = NAN;
    } else {
        return; /* every thread sees the same total */
    }
    if (s->sync_failed) return; /* the step's batch statistics are not the global ones */
    if (s->reduce) {
        /* the whole gradient is summed: hand it to the hook (on the calling
         * thread, thread 0), then go on with what it left */
        ae__pool_barrier(ws->pool);
        if (t == 0) s->reduce_failed = s->reduce(s->grads, s->n_params, s->reduce_user) != 0;
        ae__pool_barrier(ws->pool);
        if (s->reduce_failed) return;
    }
    if (j->l2 > 0) { /* d(l2 sum w^2)/dw, after the hook: every process adds its own */
        const float c = (float)(2.0 * j->l2);
        size_t a, b;
        for (size_t i = 0; i < m->n_layers; i++)
            if (decayed_range(&m->layers[i], plo, phi, &a, &b))
                for (size_t k = a; k < b; k++) sum[k] += c * j->m->params[k];
    }
    /* the sum's own check holds unless the hook or the L2 term changed it.
     * No barrier before the update: a thread whose range is finite updates
     * it even when another's is not, because a non-finite step fails the
     * fit, which restores the weights from its snapshot and marks the state
     * failed (it can be neither saved nor resumed), so what the step wrote
     * is never seen, and a barrier here would cost every step one more
     * hand-off between the cores. */
    j->bad[t] = summed_finite && !s->reduce && !(j->l2 > 0) ? 0 : !ae__all_finite(sum + plo, phi - plo);
    if (j->bad[t]) return;
    if (j->decay != 1.0) { /* AdamW: p *= 1 - lr wd, then the update */
        const float d = (float)j->decay;
        size_t a, b;
        for (size_t i = 0; i < m->n_layers; i++)
            if (decayed_range(&m->layers[i], plo, phi, &a, &b))
                for (size_t k = a; k < b; k++) j->m->params[k] *= d;
    }
    ae__optim_apply(s->opt, j->m->params, sum, plo, phi);
}

/* One optimiser step on rows order[first .. first+rows). Returns the batch's
 * summed loss, or NaN when the loss or a gradient is not finite (then the
 * threads whose gradient range was finite have updated it: the caller
 * restores a snapshot and fails the fit). */
static double train_step(ae_model *m, fit_state *s, int loss, const float *x, const float *y,
                         size_t first, size_t rows, double l2, double weight_decay)
{
    step_job j;
    double total = 0;
    j.m = m;
    j.s = s;
    j.x = x;
    j.y = y;
    j.first = first;
    j.rows = rows;
    j.loss = loss;
    j.logits = loss == AE_LOSS_BCE && sigmoid_output(m);
    j.l2 = l2;
    j.decay = 1.0 - s->opt->lr * weight_decay;
    memset(j.bad, 0, sizeof j.bad);
    memset(j.l2_sum, 0, sizeof j.l2_sum);
    s->reduce_failed = s->sync_failed = 0;
    s->ws->batch_rows = rows; /* penalty gradients: of the batch's mean */
    ae__optim_begin_step(s->opt);
    ae__pool_run(s->ws->pool, step_task, &j);
    if (s->reduce_failed || s->sync_failed) return NAN;
    total = step_loss(&j, s->ws->n_threads);
    for (int k = 0; k < s->ws->n_threads; k++)
        if (j.bad[k]) return NAN;
    if (l2 > 0) { /* the batch's mean loss gains l2 sum w^2 */
        double sq = 0;
        for (int k = 0; k < s->ws->n_threads; k++) sq += j.l2_sum[k];
        total += l2 * sq * (double)rows * (double)s->out;
    }
    return isfinite(total) ? total : NAN;
}

/* The epoch's row order of AE_TRAIN_SHUFFLE_BLOCK > 0 (docs/guide.md,
 * "Block shuffle"): the n rows cut into blocks of `block` rows (the last
 * may be short), the blocks in an order drawn from rng, then the rows of
 * every `window` consecutive blocks of that order shuffled together. Built
 * in place: the block permutation fills order[0..blocks), then is expanded
 * from the back, where every block's rows land at or after its own entry. */
static void block_shuffle(ae__rng *rng, size_t *order, size_t n, size_t block, size_t window)
{
    const size_t blocks = (n + block - 1) / block, last = blocks - 1;
    const size_t short_by = blocks * block - n; /* rows missing from the last block */
    size_t short_at = 0, pos = n;
    for (size_t b = 0; b < blocks; b++) order[b] = b;
    ae__shuffle(rng, order, blocks);
    for (size_t i = 0; i < blocks; i++)
        if (order[i] == last) short_at = i;
    for (size_t i = blocks; i-- > 0;) {
        const size_t b = order[i], len = b == last ? block - short_by : block;
        pos -= len;
        for (size_t k = len; k-- > 0;) order[pos + k] = b * block + k;
    }
    for (size_t w = 0; w < blocks; w += window) {
        const size_t end = w + window < blocks ? w + window : blocks;
        const size_t from = w * block - (w > short_at ? short_by : 0);
        const size_t to = end * block - (end > short_at ? short_by : 0);
        ae__shuffle(rng, order + from, to - from);
    }
}

/* Checks that a state bound by an earlier fit belongs to this run. */
static ae_status check_state_run(char *msg, const ae_train_state *ts, const ae_train_config *c,
                                 size_t shuffle_block, size_t shuffle_window, size_t batch,
                                 size_t n_train, size_t n_val, const ae_model *m)
{
    const char *what = NULL;
    if (ts->failed) return ae__fail(msg, AE_ERR_STATE, "the state's earlier fit failed");
    if (!ts->bound) return AE_OK;
    if (ts->n_params != m->n_params || ts->n_stats != m->n_stats) what = "parameter count";
    else if (ts->optimizer != (int)c->iv[AE_TRAIN_OPTIMIZER]) what = "AE_TRAIN_OPTIMIZER";
    else if (ts->batch != batch) what = "AE_TRAIN_BATCH_SIZE";
    else if (ts->shuffle != (c->iv[AE_TRAIN_SHUFFLE] != 0)) what = "AE_TRAIN_SHUFFLE";
    else if (ts->seed != (uint64_t)c->iv[AE_TRAIN_SEED]) what = "AE_TRAIN_SEED";
    else if (ts->shuffle_block != shuffle_block) what = "AE_TRAIN_SHUFFLE_BLOCK";
    else if (shuffle_block && ts->shuffle_window != shuffle_window) what = "AE_TRAIN_SHUFFLE_WINDOW";
    else if (ts->n_train != n_train || ts->n_val != n_val) what = "training or validation row count";
    if (what)
        return ae__fail(msg, AE_ERR_STATE, "the training state belongs to a run with another %s",
                        what);
    return AE_OK;
}

/* The rows of a fit: in memory (x, y; y == x for an autoencoder), or the
 * training source and an optional validation source. */
typedef struct fit_data {
    const float *x, *y;
    size_t n;
    const ae_source *train, *val;
} fit_data;

/* A source's shapes against the model's. */
static ae_status check_source(char *msg, const ae_model *m, const ae_source *src, const char *what)
{
    const size_t in = ae_model_input_size(m), out = ae_model_output_size(m);
    const size_t ts = ae_source_target_size(src);
    if (ae_source_row_size(src) != in)
        return ae__fail(msg, AE_ERR_SHAPE, "the %s source's rows hold %zu values, the model "
                        "takes %zu", what, ae_source_row_size(src), in);
    if (ts ? ts != out : in != out)
        return ae__fail(msg, AE_ERR_SHAPE, "the %s source's targets hold %zu values, the model "
                        "gives %zu", what, ts ? ts : in, out);
    return AE_OK;
}

/* Checks a fit's rows; turns an in-memory float source into arrays (the
 * step gathers those itself, as ae_train_fit does) and sets *n, the rows of
 * the training source (validation split included). */
static ae_status check_data(char *msg, const ae_model *m, fit_data *d)
{
    ae_status st;
    if (!d->train) {
        if ((st = check_rows(msg, m, d->x, d->y, d->n, NULL)) != AE_OK) return st;
        if (!d->y) d->y = d->x;
        return AE_OK;
    }
    if ((st = check_source(msg, m, d->train, "training")) != AE_OK) return st;
    if (d->val && (st = check_source(msg, m, d->val, "validation")) != AE_OK) return st;
    d->n = ae_source_rows(d->train);
    if (!d->val && (d->x = ae__source_floats(d->train, &d->y)) != NULL) {
        if ((st = check_rows(msg, m, d->x, d->y, d->n, NULL)) != AE_OK) return st;
        if (!d->y) d->y = d->x;
        d->train = NULL;
    }
    return AE_OK;
}

/* Validation loss sum over a source's rows [first, first + n), filled in
 * batches into the step buffers. */
static ae_status source_loss_sum(double *sum, const ae_model *m, fit_state *s, int loss,
                                 const ae_source *src, size_t first, size_t n)
{
    ae_status st;
    *sum = 0;
    for (size_t done = 0; done < n; done += s->batch) {
        const size_t rows = n - done < s->batch ? n - done : s->batch;
        for (size_t i = 0; i < rows; i++) s->val_rows[i] = first + done + i;
        if ((st = ae__source_fill(src, s->val_rows, rows, s->xb, s->self_targets ? NULL : s->yb)) != AE_OK)
            return st;
        *sum += ae__model_loss_ws(m, s->ws, loss, s->xb, s->self_targets ? s->xb : s->yb, rows);
    }
    return AE_OK;
}

/* Batches a file source is asked to read ahead (ae__source_hint): 16
 * batches of hints took a cold 4 GB file from 3.7k to 16k images/s for the
 * simple model on 2 threads (tests/bench/bench_source.c ooc --cold). */
#define READ_AHEAD_BATCHES 16

/* Hands batch `step` of the epoch to the background reader (into the next
 * buffers). The read-ahead hint: at the first batch of a call's epoch, the
 * READ_AHEAD_BATCHES batches after it; later, the one batch that enters
 * that window, so every row is hinted once. */
static void prefetch_batch(ae__prefetch *pf, fit_state *s, size_t step, int window)
{
    const size_t first = step * s->batch;
    const size_t rows = s->n_train - first < s->batch ? s->n_train - first : s->batch;
    size_t hint = window ? first + s->batch : first + READ_AHEAD_BATCHES * s->batch;
    size_t n_hint = hint < s->n_train ? s->n_train - hint : 0;
    const size_t cap = (window ? READ_AHEAD_BATCHES : 1) * s->batch;
    if (n_hint > cap) n_hint = cap;
    ae__prefetch_submit(pf, s->order + first, rows, s->xb_next, s->self_targets ? NULL : s->yb_next,
                        n_hint ? s->order + hint : NULL, n_hint);
}

static ae_status source_fail(char *msg, ae_status st, size_t epoch, const char *what)
{
    return st == AE_ERR_NUMERIC
               ? ae__fail(msg, st, "the %s source gave NaN or infinity (epoch %zu)", what, epoch)
               : ae__fail(msg, AE_ERR_IO, "reading the %s source failed (epoch %zu)", what, epoch);
}

/* The fit loop shared by ae_train_fit (persist = 0: a state of its own for
 * one call, the row order shuffled further every epoch as in 0.1) and
 * ae_train_fit_state / ae_train_fit_source (persist = 1: the caller's state,
 * every epoch shuffles the identity order from the RNG saved at its start,
 * so that a checkpoint can replay it). The block shuffle starts from the
 * identity order in both. */
static ae_status fit_run(ae_model *m, const ae_train_config *c, ae_train_state *ts, int persist,
                         fit_data d, ae_history *hist)
{
    fit_state s;
    ae__prefetch *pf = NULL;
    ae_status st = AE_OK;
    size_t n, n_train, n_val, epochs, patience, batch, ckpt_steps, shuffle_block, shuffle_window;
    int loss, threads, stopped_early = 0, run_failed = 0;
    double min_delta;
    const float *x, *y;
    if (!m) return ae__fail(NULL, AE_ERR_INVALID_ARG, "model is NULL");
    if (!c) return ae__fail(m->msg, AE_ERR_INVALID_ARG, "config is NULL");
    if (!ts) return ae__fail(m->msg, AE_ERR_INVALID_ARG, "training state is NULL");
    if (d.val && c->dv[AE_TRAIN_VALIDATION_SPLIT] > 0)
        return ae__fail(m->msg, AE_ERR_INVALID_ARG, "a validation source and "
                        "AE_TRAIN_VALIDATION_SPLIT > 0 exclude each other");
    if ((st = check_data(m->msg, m, &d)) != AE_OK) return st;
    x = d.x;
    y = d.y;
    n = d.n;
    /* Keras: validation = the last rows, split before any shuffling */
    n_train = (size_t)floor((double)n * (1.0 - c->dv[AE_TRAIN_VALIDATION_SPLIT]));
    n_val = d.val ? ae_source_rows(d.val) : n - n_train;
    if (n_train == 0)
        return ae__fail(m->msg, AE_ERR_RANGE, "the validation split leaves no training rows");
    if (c->dv[AE_TRAIN_VALIDATION_SPLIT] > 0 && n_val == 0)
        return ae__fail(m->msg, AE_ERR_RANGE, "%zu rows are too few for a validation split", n);
    loss = (int)c->iv[AE_TRAIN_LOSS];
    epochs = (size_t)c->iv[AE_TRAIN_EPOCHS];
    patience = (size_t)c->iv[AE_TRAIN_PATIENCE];
    min_delta = c->dv[AE_TRAIN_MIN_DELTA];
    ckpt_steps = persist && ts->ckpt_path ? (size_t)c->iv[AE_TRAIN_CHECKPOINT_STEPS] : 0;
    /* the block shuffle is on only with shuffling; without, rows keep their order */
    shuffle_block = c->iv[AE_TRAIN_SHUFFLE] != 0 ? (size_t)c->iv[AE_TRAIN_SHUFFLE_BLOCK] : 0;
    shuffle_window = (size_t)c->iv[AE_TRAIN_SHUFFLE_WINDOW];
    batch = (size_t)c->iv[AE_TRAIN_BATCH_SIZE] < n_train ? (size_t)c->iv[AE_TRAIN_BATCH_SIZE] : n_train;
    if ((st = check_state_run(m->msg, ts, c, shuffle_block, shuffle_window, batch, n_train,
                              n_val, m)) != AE_OK)
        return st;
    if (hist && (st = history_reserve(hist, epochs)) != AE_OK) {
        ae__keep_msg(m->msg);
        return st;
    }
    if ((st = fit_state_init(&s, m, c, n_train, d.train != NULL)) != AE_OK ||
        (d.train && (st = ae__prefetch_start(&pf, d.train, shuffle_block, shuffle_window)) != AE_OK) ||
        (!ts->bound &&
         (st = ae__train_state_bind(ts, (int)c->iv[AE_TRAIN_OPTIMIZER],
                                    c->iv[AE_TRAIN_SHUFFLE] != 0, (uint64_t)c->iv[AE_TRAIN_SEED],
                                    shuffle_block, shuffle_block ? shuffle_window : 0,
                                    batch, n_train, n_val, m->n_params, m->n_stats)) != AE_OK)) {
        ae__prefetch_stop(pf);
        fit_state_free(&s);
        ae__keep_msg(m->msg);
        return st;
    }
    s.opt = &ts->opt;
    s.self_targets = d.train ? ae_source_target_size(d.train) == 0 : y == x;
    /* the hyper-parameters of this call (a schedule may change them between calls) */
    ts->opt.lr = c->dv[AE_TRAIN_LEARNING_RATE];
    ts->opt.beta1 = c->dv[AE_TRAIN_BETA1];
    ts->opt.beta2 = c->dv[AE_TRAIN_BETA2];
    ts->opt.eps = c->dv[AE_TRAIN_EPSILON];
    ts->opt.momentum = c->dv[AE_TRAIN_MOMENTUM];
    ts->opt.momentum_decay = c->dv[AE_TRAIN_MOMENTUM_DECAY];
    /* batches are split by samples over our own threads; BLAS runs inside
     * each share single-threaded so the two never compete for cores (the
     * section is process-wide: see ae__blas_single_begin) */
    threads = c->iv[AE_TRAIN_THREADS] > 0 ? (int)c->iv[AE_TRAIN_THREADS] : ae__default_threads();
    if (threads > AE__MAX_THREADS) threads = AE__MAX_THREADS;
    if ((size_t)threads > s.batch) threads = (int)s.batch; /* a thread needs a row */
    if ((st = ae__workspace_set_threads(m, s.ws, threads)) != AE_OK) {
        ae__prefetch_stop(pf);
        fit_state_free(&s);
        ae__keep_msg(m->msg);
        return st;
    }
    ae__blas_single_begin();

    for (size_t e = 0; e < epochs; e++) {
        const size_t steps = (n_train + s.batch - 1) / s.batch, epoch = (size_t)ts->epoch;
        double t0 = now_seconds(), sum = ts->epoch_loss_sum, train_loss, val_loss = NAN;
        double monitored, seconds, stats[4];
        ae__rng rng = ts->rng; /* the RNG at the epoch's start: a resumed epoch replays its shuffle */
        int stop = 0;
        ae__snapshot_take(s.epoch_start, m);
        if (shuffle_block) {
            block_shuffle(&rng, s.order, n_train, shuffle_block, shuffle_window);
        } else {
            if (persist)
                for (size_t i = 0; i < n_train; i++) s.order[i] = i;
            if (c->iv[AE_TRAIN_SHUFFLE] != 0) ae__shuffle(&rng, s.order, n_train);
        }
        if (pf && ts->step < steps)
            prefetch_batch(pf, &s, (size_t)ts->step, 1);
        for (size_t step = (size_t)ts->step; step < steps; step++) {
            size_t first = step * s.batch, rows = n_train - first < s.batch ? n_train - first : s.batch;
            double batch_sum;
            s.ws->noise_step = epoch * steps + step; /* fresh dropout/noise draws */
            if (pf) {
                /* this step's rows were filled in the background; start the next's */
                float *swap;
                if ((st = ae__prefetch_wait(pf)) != AE_OK) {
                    st = source_fail(m->msg, st, epoch, "training");
                    goto done;
                }
                swap = s.xb, s.xb = s.xb_next, s.xb_next = swap;
                swap = s.yb, s.yb = s.yb_next, s.yb_next = swap;
                if (step + 1 < steps) prefetch_batch(pf, &s, step + 1, 0);
            }
            batch_sum = train_step(m, &s, loss, x, y, first, rows, c->dv[AE_TRAIN_L2],
                                   c->dv[AE_TRAIN_WEIGHT_DECAY]);
            if (isnan(batch_sum)) {
                ae__snapshot_restore(m, ts->has_best && c->iv[AE_TRAIN_RESTORE_BEST] != 0 ? ts->best : s.epoch_start);
                st = s.reduce_failed || s.sync_failed
                         ? ae__fail(m->msg, AE_ERR_IO, "the %s reduction callback failed "
                                    "at epoch %zu, step %zu; weights restored to the last good "
                                    "state", s.sync_failed ? "statistics" : "gradient", epoch,
                                    step)
                         : ae__fail(m->msg, AE_ERR_NUMERIC,
                                    "loss or gradient became NaN/inf at epoch %zu, step %zu; "
                                    "weights restored to the last good state", epoch, step);
                run_failed = 1;
                goto done;
            }
            sum += batch_sum;
            ts->step = step + 1;
            ts->epoch_loss_sum = sum;
            if (ckpt_steps && ts->opt.t % ckpt_steps == 0 && step + 1 < steps &&
                (st = ae__train_state_write(ts, m, ts->ckpt_path)) != AE_OK) {
                ae__keep_msg(m->msg);
                goto done;
            }
            if (c->callback &&
                c->callback(AE_EVENT_BATCH_END, epoch, step + 1, steps,
                            batch_sum / ((double)rows * (double)s.out), m, hist, c->user)) {
                st = AE_STOPPED;
                goto done;
            }
        }
        seconds = now_seconds() - t0;
        stats[0] = sum;
        stats[1] = (double)n_train * (double)s.out;
        if (!n_val) stats[2] = 0;
        else if (!d.train && !d.val) stats[2] = loss_sum(m, s.ws, loss, x + n_train * s.in, y + n_train * s.out, n_val);
        else if ((st = source_loss_sum(&stats[2], m, &s, loss, d.val ? d.val : d.train,
                                       d.val ? 0 : n_train, n_val)) != AE_OK) {
            st = source_fail(m->msg, st, epoch, "validation");
            goto done;
        }
        stats[3] = (double)n_val * (double)s.out;
        if (n_val && c->dv[AE_TRAIN_L2] > 0) /* Keras' val_loss includes kernel regularisers */
            stats[2] += c->dv[AE_TRAIN_L2] * kernel_sq_sum(m, 0, m->n_params) * stats[3];
        if (c->stat_reduce && c->stat_reduce(stats, 4, c->reduce_user) != 0) {
            st = ae__fail(m->msg, AE_ERR_IO, "the statistics reduction callback failed at "
                          "epoch %zu", epoch);
            run_failed = 1;
            goto done;
        }
        train_loss = stats[0] / stats[1];
        if (n_val) val_loss = stats[2] / stats[3];
        monitored = n_val ? val_loss : train_loss;
        if (!isfinite(monitored)) {
            ae__snapshot_restore(m, ts->has_best && c->iv[AE_TRAIN_RESTORE_BEST] != 0 ? ts->best : s.epoch_start);
            st = ae__fail(m->msg, AE_ERR_NUMERIC, "validation loss is not finite at epoch %zu", epoch);
            run_failed = 1;
            goto done;
        }
        /* Keras EarlyStopping: an improvement must beat the best by min_delta */
        if (!ts->has_best || monitored < ts->best_loss - min_delta) {
            ts->best_loss = monitored;
            ts->has_best = 1;
            ts->wait = 0;
            ae__snapshot_take(ts->best, m);
            if (hist) { hist->best = hist->n; hist->has_best = 1; }
        } else {
            ts->wait++;
        }
        if (hist) {
            epoch_rec *r = &hist->e[hist->n++];
            r->train_loss = train_loss;
            r->val_loss = val_loss;
            r->seconds = seconds;
            r->images_per_second = seconds > 0 ? (double)n_train / seconds : 0;
        }
        ts->epoch++;
        ts->step = 0;
        ts->epoch_loss_sum = 0;
        ts->rng = rng;
        if (persist && ts->ckpt_path && (st = ae__train_state_write(ts, m, ts->ckpt_path)) != AE_OK) {
            ae__keep_msg(m->msg);
            goto done;
        }
        if (patience && ts->wait >= patience) {
            if (hist) hist->stopped_early = 1;
            stopped_early = stop = 1;
        }
        if (c->callback &&
            c->callback(AE_EVENT_EPOCH_END, epoch, steps, steps, train_loss, m, hist, c->user)) {
            st = AE_STOPPED;
            stop = 1;
        }
        if (stop) break;
    }
done:
    /* keep the best epoch's weights when monitoring, as EarlyStopping(restore_best_weights);
     * a persistent run only when it stopped early (otherwise it is paused) */
    if (ts->has_best && patience && c->iv[AE_TRAIN_RESTORE_BEST] != 0 &&
        (persist ? stopped_early && st == AE_OK : st == AE_OK || st == AE_STOPPED))
        ae__snapshot_restore(m, ts->best);
    if (run_failed) ts->failed = 1;
    ae__prefetch_stop(pf);
    ae__blas_single_end();
    fit_state_free(&s);
    return st;
}

ae_status ae_train_fit(ae_model *m, const ae_train_config *c, const float *x, const float *y,
                       size_t n, ae_history *hist)
{
    AE__ENTER();
    ae_train_state ts;
    ae_status st;
    fit_data d = {x, y, n, NULL, NULL};
    memset(&ts, 0, sizeof ts);
    st = fit_run(m, c, &ts, 0, d, hist);
    ae__train_state_release(&ts);
    return st;
}

ae_status ae_train_fit_state(ae_model *m, const ae_train_config *c, ae_train_state *state,
                             const float *x, const float *y, size_t n, ae_history *hist)
{
    AE__ENTER();
    fit_data d = {x, y, n, NULL, NULL};
    return fit_run(m, c, state, 1, d, hist);
}

ae_status ae_train_fit_source(ae_model *m, const ae_train_config *c, ae_train_state *state,
                              const ae_source *train, const ae_source *validation,
                              ae_history *hist)
{
    AE__ENTER();
    fit_data d = {NULL, NULL, 0, train, validation};
    ae_train_state own;
    ae_status st;
    if (!train) return ae__fail(m ? m->msg : NULL, AE_ERR_INVALID_ARG, "training source is NULL");
    if (state) return fit_run(m, c, state, 1, d, hist);
    memset(&own, 0, sizeof own);
    st = fit_run(m, c, &own, 0, d, hist);
    ae__train_state_release(&own);
    return st;
}
