/* Optimisers over one contiguous parameter buffer, following Keras' update
 * rules (tf.keras.optimizers, 2.11+), which PyTorch's NAdam/Adam match. */
#include <math.h>
#include <string.h>

#include "nn.h"

ae_status ae__optim_init(ae__optimizer *o, int kind, double lr, double beta1, double beta2,
                         double eps, double momentum, double momentum_decay, size_t n)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = lr;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->momentum = momentum;
    o->momentum_decay = momentum_decay;
    o->n = n;
    o->mu_product = 1.0;
    o->m = ae__malloc_aligned((n ? n : 1) * sizeof(float));
    o->v = ae__malloc_aligned((n ? n : 1) * sizeof(float));
    if (!o->m || !o->v) {
        ae__optim_free(o);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for optimiser state (%zu parameters)", n);
    }
    memset(o->m, 0, (n ? n : 1) * sizeof(float));
    memset(o->v, 0, (n ? n : 1) * sizeof(float));
    return AE_OK;
}

void ae__optim_free(ae__optimizer *o)
{
    size_t bytes = (o->n ? o->n : 1) * sizeof(float);
    ae__free_aligned(o->m, bytes);
    ae__free_aligned(o->v, bytes);
    o->m = o->v = NULL;
}

/* Step coefficients, computed once per step (they depend on t only). */
void ae__optim_begin_step(ae__optimizer *o)
{
    const double t = (double)(++o->t);
    if (o->kind == AE_OPT_ADAM) {
        /* Keras: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t) */
        o->c_m = o->lr * sqrt(1.0 - pow(o->beta2, t)) / (1.0 - pow(o->beta1, t));
    } else if (o->kind == AE_OPT_NADAM) {
        /* Nadam (Dozat; Keras and PyTorch NAdam):
         *   mu_t  = b1 (1 - 0.5 * 0.96^(t * decay)),  mu_{t+1} likewise
         *   m_hat = mu_{t+1} m / (1 - prod_{i<=t+1} mu_i) + (1 - mu_t) g / (1 - prod_{i<=t} mu_i)
         *   v_hat = v / (1 - b2^t)
         *   w    -= lr m_hat / (sqrt(v_hat) + eps) */
        const double mu_t = o->beta1 * (1.0 - 0.5 * pow(0.96, t * o->momentum_decay));
        const double mu_next = o->beta1 * (1.0 - 0.5 * pow(0.96, (t + 1.0) * o->momentum_decay));
        const double prod_t = o->mu_product * mu_t, prod_next = prod_t * mu_next;
        o->c_m = mu_next / (1.0 - prod_next);
        o->c_g = (1.0 - mu_t) / (1.0 - prod_t);
        o->c_v = 1.0 / (1.0 - pow(o->beta2, t));
        o->mu_product = prod_t;
    }
}

/* The update of parameters [lo, hi) with this step's coefficients; ranges
 * may be applied by different threads. */
AE__HOT void ae__optim_apply(const ae__optimizer *o, float *restrict w, const float *restrict g,
                             size_t lo, size_t hi)
{
    float *restrict m = o->m, *restrict v = o->v;
    if (o->kind == AE_OPT_SGD) {
        /* Keras: velocity = momentum * velocity - lr * g; w += velocity */
        const float mom = (float)o->momentum, lr = (float)o->lr;
        for (size_t i = lo; i < hi; i++) {
            m[i] = mom * m[i] - lr * g[i];
            w[i] += m[i];
        }
    } else if (o->kind == AE_OPT_ADAM) {
        const float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
        const float alpha = (float)o->c_m;
        for (size_t i = lo; i < hi; i++) {
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            w[i] -= alpha * m[i] / (sqrtf(v[i]) + eps);
        }
    } else {
        const float cm = (float)o->c_m, cg = (float)o->c_g, inv_bc2 = (float)o->c_v;
        const float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
        const float lr = (float)o->lr;
        for (size_t i = lo; i < hi; i++) {
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            w[i] -= lr * (cm * m[i] + cg * g[i]) / (sqrtf(v[i] * inv_bc2) + eps);
        }
    }
}

void ae__optim_step(ae__optimizer *o, float *w, const float *g)
{
    ae__optim_begin_step(o);
    ae__optim_apply(o, w, g, 0, o->n);
}
