/* Training states and checkpoint files.
 *
 * Layout (little-endian; docs/formats.md, "Checkpoint files"):
 *   magic "AECKPT\0\0" (8) | u32 format version | u32 flags (0, or 1: block shuffle)
 *   u64 model file length M | M bytes: a complete model file (its own CRC)
 *   state record (144 bytes): u32 optimizer | u32 shuffle | u64 seed
 *     | u64 batch | u64 training rows | u64 validation rows | u64 parameters P
 *     | u64 epoch | u64 step | f64 epoch loss sum | u64 rng[4]
 *     | u64 optimiser steps | f64 Nadam momentum product | u32 has best
 *     | u32 statistics S | u64 wait | f64 best loss
 *   with flag 1 only: u64 shuffle block | u64 shuffle window
 *   f32 first moments[P] | f32 second moments[P]
 *   | f32 best weights[P] and best statistics[S] if has best
 *   u32 CRC-32 of every byte before it */
#include <math.h>
#include <string.h>

#include "train_state.h"

static const char ckpt_magic[8] = {'A', 'E', 'C', 'K', 'P', 'T', '\0', '\0'};
#define CKPT_HEADER_BYTES 24 /* magic, version, flags, model length */
#define CKPT_STATE_BYTES 144
/* Flag of a block-shuffled run: AE_TRAIN_SHUFFLE_BLOCK and _WINDOW follow
 * the state record (CKPT_BLOCK_BYTES). Runs without it write flags 0 and
 * the layout of the first files; a reader that knows no flags refuses the
 * file instead of replaying another order. */
#define CKPT_FLAG_BLOCK_SHUFFLE 1u
#define CKPT_BLOCK_BYTES 16
#define CKPT_MAX_FILE ((uint64_t)1 << 36) /* 64 GiB: a model file's 4 GiB and 3 copies of P */

ae_status ae_train_state_create(ae_train_state **out)
{
    AE__ENTER();
    ae_train_state *s;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = s = ae__calloc(1, sizeof *s);
    if (!s) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    return AE_OK;
}

void ae__train_state_release(ae_train_state *s)
{
    size_t bytes = (s->n_params + s->n_stats ? s->n_params + s->n_stats : 1) * sizeof(float);
    if (s->bound) ae__optim_free(&s->opt);
    ae__free_aligned(s->best, bytes);
    s->best = NULL;
    s->bound = 0;
}

void ae_train_state_free(ae_train_state *s)
{
    if (!s) return;
    ae__train_state_release(s);
    ae__free(s->ckpt_path, s->ckpt_cap);
    ae__free(s, sizeof *s);
}

ae_status ae__train_state_bind(ae_train_state *s, int optimizer, int shuffle, uint64_t seed,
                               uint64_t shuffle_block, uint64_t shuffle_window, uint64_t batch, uint64_t n_train, uint64_t n_val,
                               size_t n_params, size_t n_stats)
{
    ae_status st;
    /* the hyper-parameters are set by every fit (ae__optim_init only
     * reserves and zeroes the moments here) */
    if ((st = ae__optim_init(&s->opt, optimizer, 0, 0, 0, 0, 0, 0, n_params)) != AE_OK)
        return st;
    s->best = ae__malloc_aligned((n_params + n_stats ? n_params + n_stats : 1) * sizeof(float));
    if (!s->best) {
        ae__optim_free(&s->opt);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the training state");
    }
    s->bound = 1;
    s->failed = 0;
    s->optimizer = optimizer;
    s->shuffle = shuffle;
    s->seed = seed;
    s->shuffle_block = shuffle_block;
    s->shuffle_window = shuffle_window;
    s->batch = batch;
    s->n_train = n_train;
    s->n_val = n_val;
    s->n_params = n_params;
    s->n_stats = n_stats;
    s->epoch = s->step = 0;
    s->epoch_loss_sum = 0;
    ae__rng_seed(&s->rng, seed);
    s->has_best = 0;
    s->wait = 0;
    s->best_loss = INFINITY;
    return AE_OK;
}

ae_status ae_train_state_set_checkpoint(ae_train_state *s, const char *path)
{
    AE__ENTER();
    char *copy = NULL;
    size_t cap = 0;
    if (!s) return ae__fail(NULL, AE_ERR_INVALID_ARG, "state is NULL");
    if (path) {
        if (!*path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "empty checkpoint path");
        cap = strlen(path) + 1;
        if (!(copy = ae__malloc(cap))) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        memcpy(copy, path, cap);
    }
    ae__free(s->ckpt_path, s->ckpt_cap);
    s->ckpt_path = copy;
    s->ckpt_cap = cap;
    return AE_OK;
}

size_t ae_train_state_epoch(const ae_train_state *s) { return s ? (size_t)s->epoch : 0; }
size_t ae_train_state_step(const ae_train_state *s) { return s ? (size_t)s->step : 0; }

void ae__snapshot_take(float *dst, const ae_model *m)
{
    memcpy(dst, m->params, m->n_params * sizeof(float));
    if (m->n_stats) memcpy(dst + m->n_params, m->stats, m->n_stats * sizeof(float));
}

void ae__snapshot_restore(ae_model *m, const float *src)
{
    memcpy(m->params, src, m->n_params * sizeof(float));
    if (m->n_stats) memcpy(m->stats, src + m->n_params, m->n_stats * sizeof(float));
}

ae_status ae_train_state_restore_best(const ae_train_state *s, ae_model *m)
{
    AE__ENTER();
    if (!s || !m) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!s->bound || !s->has_best)
        return ae__fail(m->msg, AE_ERR_STATE, "the run has no best epoch yet");
    if (s->n_params != m->n_params)
        return ae__fail(m->msg, AE_ERR_SHAPE, "the state holds %llu parameters, the model %zu",
                        (unsigned long long)s->n_params, m->n_params);
    if (s->n_stats != m->n_stats)
        return ae__fail(m->msg, AE_ERR_SHAPE, "the state holds %llu statistics, the model %zu",
                        (unsigned long long)s->n_stats, m->n_stats);
    ae__snapshot_restore(m, s->best);
    return AE_OK;
}

/* The CRC-32 of A followed by B from crc(A), crc(B) and B's length: CRC-32
 * is affine in the register and the data, so crc(A.B) = crc(A.0^n) ^ crc(B)
 * ^ crc(0^n) for n zero bytes. Lets a checkpoint's CRC cover the embedded
 * model file, whose own CRC is computed while writing it. */
static uint32_t crc_concat(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    static const unsigned char zeros[4096];
    uint32_t a0 = crc_a, z = 0;
    while (len_b) {
        size_t n = len_b < sizeof zeros ? (size_t)len_b : sizeof zeros;
        a0 = ae__crc32(a0, zeros, n);
        z = ae__crc32(z, zeros, n);
        len_b -= n;
    }
    return a0 ^ crc_b ^ z;
}


ae_status ae__train_state_write(const ae_train_state *s, const ae_model *m, const char *path)
{
    ae__writer w;
    ae_status st;
    uint32_t outer, model_crc;
    const uint64_t model_len = ae__model_file_bytes(m);
    if (!ae__all_finite(m->params, m->n_params))
        return ae__fail(NULL, AE_ERR_NUMERIC, "the weights contain NaN or infinity");
    if (s->n_stats > UINT32_MAX)
        return ae__fail(NULL, AE_ERR_SHAPE, "%llu running statistics do not fit a checkpoint",
                        (unsigned long long)s->n_stats);
    if ((st = ae__writer_open(&w, path, NULL)) != AE_OK) return st;
    ae__writer_write(&w, ckpt_magic, sizeof ckpt_magic);
    ae__writer_u32(&w, AE_CHECKPOINT_FORMAT_VERSION);
    ae__writer_u32(&w, s->shuffle_block ? CKPT_FLAG_BLOCK_SHUFFLE : 0);
    ae__writer_u64(&w, model_len);
    /* the model file with its own CRC, then the running CRC of the whole */
    outer = w.crc;
    w.crc = 0;
    ae__model_write_body(&w, m);
    model_crc = w.crc;
    w.crc = crc_concat(outer, model_crc, model_len - 4);
    ae__writer_u32(&w, model_crc);
    ae__writer_u32(&w, (uint32_t)s->optimizer);
    ae__writer_u32(&w, (uint32_t)s->shuffle);
    ae__writer_u64(&w, s->seed);
    ae__writer_u64(&w, s->batch);
    ae__writer_u64(&w, s->n_train);
    ae__writer_u64(&w, s->n_val);
    ae__writer_u64(&w, s->n_params);
    ae__writer_u64(&w, s->epoch);
    ae__writer_u64(&w, s->step);
    ae__writer_f64(&w, s->epoch_loss_sum);
    for (int i = 0; i < 4; i++) ae__writer_u64(&w, s->rng.s[i]);
    ae__writer_u64(&w, s->opt.t);
    ae__writer_f64(&w, s->opt.mu_product);
    ae__writer_u32(&w, (uint32_t)s->has_best);
    ae__writer_u32(&w, (uint32_t)s->n_stats);
    ae__writer_u64(&w, s->wait);
    ae__writer_f64(&w, s->has_best ? s->best_loss : 0.0);
    if (s->shuffle_block) {
        ae__writer_u64(&w, s->shuffle_block);
        ae__writer_u64(&w, s->shuffle_window);
    }
    ae__writer_f32s(&w, s->opt.m, s->n_params);
    ae__writer_f32s(&w, s->opt.v, s->n_params);
    if (s->has_best) ae__writer_f32s(&w, s->best, s->n_params + s->n_stats);
    ae__writer_u32(&w, w.crc);
    return ae__writer_commit(&w, path, NULL);
}

ae_status ae_train_state_save(const ae_train_state *s, const ae_model *m, const char *path)
{
    AE__ENTER();
    if (!s || !m || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!s->bound || s->failed)
        return ae__fail(NULL, AE_ERR_STATE, s->failed ? "the state's fit failed"
                                                      : "the state has not been used by a fit");
    if (s->n_params != m->n_params || s->n_stats != m->n_stats)
        return ae__fail(NULL, AE_ERR_SHAPE, "the state holds %llu parameters and %llu "
                        "statistics, the model %zu and %zu", (unsigned long long)s->n_params,
                        (unsigned long long)s->n_stats, m->n_params, m->n_stats);
    return ae__train_state_write(s, m, path);
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static double get_f64(const unsigned char *p)
{
    double v;
    memcpy(&v, p, 8);
    return v;
}

/* Parses the state record at p (CKPT_STATE_BYTES, the block shuffle's
 * CKPT_BLOCK_BYTES with that flag, then the arrays) into a fresh state for
 * model m; the file's length was checked. */
static ae_status parse_state(ae_train_state *s, const unsigned char *p, int block_flag,
                             const ae_model *m, const char *path)
{
    const uint32_t optimizer = get_u32(p), shuffle = get_u32(p + 4), has_best = get_u32(p + 120);
    const uint64_t batch = get_u64(p + 16), n_train = get_u64(p + 24), n_val = get_u64(p + 32);
    const uint64_t epoch = get_u64(p + 48), step = get_u64(p + 56);
    const size_t np = m->n_params;
    const unsigned char *arrays = p + CKPT_STATE_BYTES + (block_flag ? CKPT_BLOCK_BYTES : 0);
    const uint64_t shuffle_block = block_flag ? get_u64(p + CKPT_STATE_BYTES) : 0;
    const uint64_t shuffle_window = block_flag ? get_u64(p + CKPT_STATE_BYTES + 8) : 0;
    ae_status st;
    int rng_zero = 1;
    if (optimizer < AE_OPT_NADAM || optimizer > AE_OPT_SGD || shuffle > 1 || has_best > 1)
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "bad optimizer, shuffle or flag field");
    /* the bounds of AE_TRAIN_SHUFFLE_BLOCK and _WINDOW (train.c); a block
     * shuffle is recorded only for a shuffled run */
    if (block_flag && (shuffle != 1 || shuffle_block == 0 || shuffle_block > ((uint64_t)1 << 30) ||
                       shuffle_window == 0 || shuffle_window > 65536))
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "bad block shuffle fields");
    if (batch == 0 || batch > 65536 || n_train == 0 || n_train > SIZE_MAX / 2 ||
        n_val > SIZE_MAX / 2 || batch > n_train || step >= (n_train + batch - 1) / batch ||
        epoch > ((uint64_t)1 << 40))
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "implausible batch, rows or position");
    for (int i = 0; i < 4; i++) rng_zero &= get_u64(p + 72 + 8 * i) == 0;
    if (rng_zero) return ae__file_fail(NULL, path, AE_ERR_FORMAT, "zero RNG state");
    if (!isfinite(get_f64(p + 64)) || !(get_f64(p + 112) > 0 && get_f64(p + 112) <= 1) ||
        (has_best && !isfinite(get_f64(p + 136))))
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "non-finite or invalid loss fields");
    if ((st = ae__train_state_bind(s, (int)optimizer, (int)shuffle, get_u64(p + 8), shuffle_block,
                                   shuffle_window, batch, n_train, n_val, np, m->n_stats)) != AE_OK)
        return st;
    s->epoch = epoch;
    s->step = step;
    s->epoch_loss_sum = get_f64(p + 64);
    for (int i = 0; i < 4; i++) s->rng.s[i] = get_u64(p + 72 + 8 * i);
    s->opt.t = get_u64(p + 104);
    s->opt.mu_product = get_f64(p + 112);
    s->has_best = (int)has_best;
    s->wait = get_u64(p + 128);
    s->best_loss = has_best ? get_f64(p + 136) : INFINITY;
    if (!ae__copy_finite(s->opt.m, (const float *)(const void *)arrays, np) ||
        !ae__copy_finite(s->opt.v, (const float *)(const void *)(arrays + 4 * np), np) ||
        (has_best && !ae__copy_finite(s->best, (const float *)(const void *)(arrays + 8 * np),
                                      np + m->n_stats)))
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "optimiser moments or best weights "
                             "contain NaN or infinity");
    return AE_OK;
}

ae_status ae_train_state_load(ae_train_state **out, ae_model **model, const char *path)
{
    AE__ENTER();
    unsigned char *data = NULL;
    size_t len = 0;
    uint32_t version, flags;
    uint64_t model_len, np, ns, want, record;
    const unsigned char *rec;
    ae_train_state *s = NULL;
    ae_model *m = NULL;
    ae_status st;
    if (out) *out = NULL;
    if (model) *model = NULL;
    if (!out || !model || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if ((st = ae__read_file(path, (size_t)(CKPT_MAX_FILE < SIZE_MAX ? CKPT_MAX_FILE : SIZE_MAX),
                            &data, &len, NULL)) != AE_OK)
        return st;
    if (len < CKPT_HEADER_BYTES) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated: %zu bytes is too short for a "
                           "checkpoint", len);
        goto done;
    }
    if (memcmp(data, ckpt_magic, 8) != 0) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "not a libautoenc checkpoint (bad magic)");
        goto done;
    }
    version = get_u32(data + 8);
    if (version != AE_CHECKPOINT_FORMAT_VERSION) {
        st = ae__file_fail(NULL, path,
                           version > AE_CHECKPOINT_FORMAT_VERSION ? AE_ERR_VERSION : AE_ERR_FORMAT,
                           "checkpoint format version %u; this library reads version %d",
                           version, AE_CHECKPOINT_FORMAT_VERSION);
        goto done;
    }
    flags = get_u32(data + 12);
    if (flags & ~CKPT_FLAG_BLOCK_SHUFFLE) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "unknown flags 0x%x", flags);
        goto done;
    }
    record = CKPT_STATE_BYTES + (flags & CKPT_FLAG_BLOCK_SHUFFLE ? CKPT_BLOCK_BYTES : 0);
    /* the length the header and the state record imply, before the CRC, so
     * that a truncated file is AE_ERR_FORMAT as for the other loaders */
    model_len = get_u64(data + 16);
    if (model_len > len || len - model_len < CKPT_HEADER_BYTES + record + 4) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated: %zu bytes do not hold the "
                           "model and the state record", len);
        goto done;
    }
    rec = data + CKPT_HEADER_BYTES + model_len;
    np = get_u64(rec + 40);
    ns = get_u32(rec + 124);
    if (np > (UINT64_MAX / 16) ||
        (want = CKPT_HEADER_BYTES + model_len + record +
                4 * np * (get_u32(rec + 120) ? 3 : 2) + (get_u32(rec + 120) ? 4 * ns : 0) + 4) !=
            len) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "%zu bytes, the header implies another "
                           "length", len);
        goto done;
    }
    if (get_u32(data + len - 4) != ae__crc32(0, data, len - 4)) {
        st = ae__file_fail(NULL, path, AE_ERR_CHECKSUM, "corrupt (checksum mismatch)");
        goto done;
    }
    if ((st = ae__model_parse_file(data + CKPT_HEADER_BYTES, (size_t)model_len, path, &m)) !=
        AE_OK)
        goto done;
    if (np != m->n_params || ns != m->n_stats) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "the state holds %llu parameters and %llu "
                           "statistics, the model %zu and %zu", (unsigned long long)np,
                           (unsigned long long)ns, m->n_params, m->n_stats);
        goto done;
    }
    if (!(s = ae__calloc(1, sizeof *s))) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = parse_state(s, rec, (flags & CKPT_FLAG_BLOCK_SHUFFLE) != 0, m, path);
done:
    ae__free(data, len);
    if (st != AE_OK) {
        ae_train_state_free(s);
        ae_model_free(m);
        return st;
    }
    *out = s;
    *model = m;
    return AE_OK;
}
