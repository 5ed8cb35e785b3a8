/*
 * libautoenc: loss functions.
 *
 * The losses training minimises (train.h) and evaluation reports
 * (ae_model_evaluate in model.h), and a function that computes one over
 * caller arrays.
 *
 * Threading: ae_loss_value keeps no state and is safe from any thread.
 */
#ifndef AUTOENC_LOSS_H
#define AUTOENC_LOSS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Loss functions. Values are pinned (they are stored in training files). */
typedef enum ae_loss {
    /** Binary cross-entropy, mean over all outputs. Predictions are clamped
     *  to [1e-7, 1 - 1e-7] as Keras does; when the model's last layer is a
     *  sigmoid, training uses the exact logit gradient (y - t), as Keras and
     *  PyTorch do for a sigmoid output. */
    AE_LOSS_BCE = 1,
    AE_LOSS_MSE = 2 /**< mean squared error, mean over all outputs */
} ae_loss;

/**
 * Mean loss of @p count predictions against targets, into @p value.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL argument, count 0, unknown loss) or
 *         AE_ERR_NUMERIC (a prediction, a target or the loss is NaN or
 *         infinite).
 */
AE_API ae_status ae_loss_value(double *value, ae_loss loss, const float *pred,
                               const float *target, size_t count);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_LOSS_H */
