/* Train the simple autoencoder on n drawings, index their codes, query one. */
#include <stdio.h>
#include <autoenc/autoenc.h>

int train_and_search(const float *x, size_t n, const float *query)
{
    ae_model *m = NULL; ae_train_config *cfg = NULL; ae_encoder *enc = NULL;
    ae_index *idx = NULL; float codes[1000 * 32], q[32], dist[5]; int64_t ids[5];
    ae_status st = n <= 1000 ? AE_OK : AE_ERR_RANGE;
    if (st == AE_OK) st = ae_preset_build(&m, AE_PRESET_SIMPLE, 42); /* 784-32-784 */
    if (st == AE_OK) st = ae_train_config_create(&cfg);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_EPOCHS, 20);
    if (st == AE_OK) st = ae_train_config_set_int(cfg, AE_TRAIN_BATCH_SIZE, 64);
    if (st == AE_OK) st = ae_train_fit(m, cfg, x, NULL, n, NULL);         /* targets = inputs */
    if (st == AE_OK) st = ae_encoder_create(&enc, m);              /* layers up to the code */
    if (st == AE_OK) st = ae_encoder_encode(enc, x, n, codes, n * 32);
    if (st == AE_OK) st = ae_encoder_encode(enc, query, 1, q, 32);
    if (st == AE_OK) st = ae_index_create(&idx, AE_INDEX_BALLTREE, AE_INDEX_L2, 32);
    if (st == AE_OK) st = ae_index_build(idx, codes, n, NULL, NULL);
    if (st == AE_OK) st = ae_index_search(idx, q, 1, 5, 0, dist, ids);
    if (st == AE_OK)
        for (int i = 0; i < 5; i++) printf("#%d: drawing %lld at %.3f\n", i + 1, (long long)ids[i], dist[i]);
    else
        fprintf(stderr, "libautoenc: %s (%s)\n", ae_last_error(), ae_status_string(st));
    ae_index_free(idx); ae_encoder_free(enc); ae_train_config_free(cfg); ae_model_free(m);
    return st == AE_OK ? 0 : 1;
}

int main(void)
{
    static float x[300 * 784];
    for (size_t i = 0; i < 300 * 784; i++) x[i] = (float)((i * 2654435761u >> 7) % 100 < 12);
    return train_and_search(x, 300, x + 17 * 784);
}
