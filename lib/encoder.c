/* Encoders: a model's layers up to the code layer, as an independent model. */
#include <string.h>

#include "nn.h"

struct ae_encoder {
    ae_model *net; /* layers 0..code of the source model, weights copied */
};

ae_status ae_encoder_create(ae_encoder **out, const ae_model *m)
{
    AE__ENTER();
    ae_encoder *e;
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!m) return ae__fail(NULL, AE_ERR_INVALID_ARG, "model is NULL");
    if (!m->has_code)
        return ae__fail(NULL, AE_ERR_STATE,
                        "the model has no code layer (ae_builder_mark_code)");
    e = ae__calloc(1, sizeof *e);
    if (!e) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    st = ae__model_alloc(&m->input, m->layers, m->code_layer + 1, 1, m->code_layer, &e->net);
    if (st != AE_OK) {
        ae__free(e, sizeof *e);
        return st;
    }
    /* layers keep their offsets, so the encoder's parameters are a prefix */
    ae__model_copy_weights(e->net, m);
    e->net->threads = m->threads;
    *out = e;
    return AE_OK;
}

void ae_encoder_free(ae_encoder *e)
{
    if (!e) return;
    ae_model_free(e->net);
    ae__free(e, sizeof *e);
}

size_t ae_encoder_input_size(const ae_encoder *e) { return e ? ae_model_input_size(e->net) : 0; }
size_t ae_encoder_code_size(const ae_encoder *e) { return e ? ae_model_output_size(e->net) : 0; }
const ae_model *ae_encoder_model(const ae_encoder *e) { return e ? e->net : NULL; }

int ae_encoder_code_rank(const ae_encoder *e)
{
    return e ? e->net->layers[e->net->n_layers - 1].out.rank : 0;
}

size_t ae_encoder_code_dim(const ae_encoder *e, int axis)
{
    return e ? ae_layer_output_dim(&e->net->layers[e->net->n_layers - 1], axis) : 0;
}

ae_status ae_encoder_set_threads(ae_encoder *e, int n_threads)
{
    AE__ENTER();
    if (!e) return ae__fail(NULL, AE_ERR_INVALID_ARG, "encoder is NULL");
    return AE__NESTED(ae_model_set_threads(e->net, n_threads));
}

int ae_encoder_get_threads(const ae_encoder *e) { return e ? e->net->threads : 0; }

ae_status ae_encoder_encode(const ae_encoder *e, const float *x, size_t n, float *codes,
                            size_t codes_len)
{
    AE__ENTER();
    if (!e) return ae__fail(NULL, AE_ERR_INVALID_ARG, "encoder is NULL");
    return AE__NESTED(ae_model_predict(e->net, x, n, codes, codes_len));
}

ae_status ae_encoder_save(const ae_encoder *e, const char *path)
{
    AE__ENTER();
    if (!e) return ae__fail(NULL, AE_ERR_INVALID_ARG, "encoder is NULL");
    return AE__NESTED(ae_model_save(e->net, path));
}

ae_status ae_encoder_load(ae_encoder **out, const char *path)
{
    AE__ENTER();
    ae_model *m;
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if ((st = AE__NESTED(ae_model_load(&m, path))) != AE_OK) return st;
    if (!m->has_code)
        st = ae__fail(NULL, AE_ERR_STATE, "'%s' holds a model without a code layer", path);
    else
        st = AE__NESTED(ae_encoder_create(out, m));
    ae_model_free(m);
    return st;
}
