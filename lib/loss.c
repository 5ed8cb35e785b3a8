/* Losses and their gradients: binary cross-entropy (clamped as Keras) and
 * mean squared error. */
#include <math.h>

#include "nn.h"


double ae__loss_sum(int loss, const float *pred, const float *target, size_t count, float *grad,
                    size_t norm)
{
    const float inv = 1.0f / (float)norm;
    double sum = 0.0;
    if (loss == AE_LOSS_BCE) {
        sum = ae__bce_sum(pred, target, count, grad, inv);
    } else { /* AE_LOSS_MSE */
        for (size_t i = 0; i < count; i++) {
            float d = pred[i] - target[i];
            sum += (double)d * d;
            if (grad) grad[i] = 2.0f * d * inv;
        }
    }
    return sum;
}

void ae__loss_rows(int loss, float *out, const float *target, size_t rows, size_t cols,
                   float *grad, size_t norm, int sigmoid_logits, double *row_sums)
{
    if (loss == AE_LOSS_BCE && sigmoid_logits) {
        ae__bce_logits_rows(out, target, rows, cols, grad, 1.0f / (float)norm, row_sums);
        return;
    }
    for (size_t r = 0; r < rows; r++)
        row_sums[r] = ae__loss_sum(loss, out + r * cols, target + r * cols, cols,
                                   grad ? grad + r * cols : NULL, norm);
}

ae_status ae_loss_value(double *value, ae_loss loss, const float *pred, const float *target,
                        size_t count)
{
    AE__ENTER();
    if (!pred || !target || !value || count == 0)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument or count 0");
    if (loss != AE_LOSS_BCE && loss != AE_LOSS_MSE)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "unknown loss %d", (int)loss);
    *value = ae__loss_sum(loss, pred, target, count, NULL, count) / (double)count;
    if (!isfinite(*value))
        return ae__fail(NULL, AE_ERR_NUMERIC, "the loss is not finite (NaN or infinity in the "
                        "predictions or targets, or an overflow)");
    return AE_OK;
}
