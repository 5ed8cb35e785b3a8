/* Model files: architecture + weights, versioned and checksummed.
 *
 * Layout of version 2 (little-endian; docs/formats.md):
 *   magic "AEMODEL\0" (8) | u32 format version | u32 flags (0)
 *   u32 input rank | u64 input dims[3]
 *   u32 layer count | u32 has_code | u64 code layer
 *   per layer (88 bytes): u32 kind | u32 activation | u32 padding | u64 units
 *              | u64 kernel | u32 output rank | u64 output dims[3]
 *              | u64 stride | f64 activation parameter | f64 option 1 | f64 option 2
 *   u64 parameter count | f32 parameters[count]
 *   u64 statistics count | f32 statistics[count]
 *   u32 CRC-32 of every byte before it
 * Version 1 (0.1.0) has 56-byte records (no stride and options) and no
 * statistics; it is still read. The architecture is replayed through the
 * builder on load, so a file can only describe models the builder accepts. */
#include <string.h>

#include "nn.h"

static const char model_magic[8] = {'A', 'E', 'M', 'O', 'D', 'E', 'L', '\0'};
#define MAX_MODEL_FILE ((size_t)1 << 32) /* 4 GiB: far above any model here */
#define LAYER_COUNT_AT (8 + 4 * 3 + 8 * 3) /* after magic, version, flags, input shape: 44 */
#define HEADER_BYTES (LAYER_COUNT_AT + 4 * 2 + 8) /* up to the layer records: 60 */
#define LAYER_RECORD_V1 (4 * 3 + 8 * 2 + 4 + 8 * 3) /* 56 */
#define LAYER_RECORD_V2 (LAYER_RECORD_V1 + 8 * 4)     /* 88 */

/* The two options of a record: batch norm momentum and epsilon; dropout
 * rate; Gaussian noise stddev and clip (0 or 1); masking probability;
 * activity regularisation l1 and l2; sampling KL weight. */
static void layer_options(const ae_layer *L, double *o1, double *o2)
{
    *o1 = *o2 = 0.0;
    if (L->kind == AE_LAYER_BATCHNORM) {
        *o1 = L->momentum;
        *o2 = L->epsilon;
    } else if (L->kind == AE_LAYER_DROPOUT || L->kind == AE_LAYER_MASKING_NOISE) {
        *o1 = L->rate;
    } else if (L->kind == AE_LAYER_GAUSSIAN_NOISE) {
        *o1 = L->rate;
        *o2 = L->clip;
    } else if (L->kind == AE_LAYER_ACTIVITY_REGULARIZATION) {
        *o1 = L->l1;
        *o2 = L->l2;
    } else if (L->kind == AE_LAYER_SAMPLING) {
        *o1 = L->kl_weight;
    }
}

/* Everything of a model file but its final CRC (shared with checkpoints,
 * which embed a model file: lib/train_state.c). */
uint64_t ae__model_file_bytes(const ae_model *m)
{
    return HEADER_BYTES + (uint64_t)m->n_layers * LAYER_RECORD_V2 + 8 + 4 * (uint64_t)m->n_params +
           8 + 4 * (uint64_t)m->n_stats + 4;
}

void ae__model_write_body(ae__writer *w, const ae_model *m)
{
    ae__writer_write(w, model_magic, sizeof model_magic);
    ae__writer_u32(w, AE_MODEL_FORMAT_VERSION);
    ae__writer_u32(w, 0);
    ae__writer_u32(w, (uint32_t)m->input.rank);
    for (int i = 0; i < 3; i++) ae__writer_u64(w, m->input.d[i]);
    ae__writer_u32(w, (uint32_t)m->n_layers);
    ae__writer_u32(w, (uint32_t)m->has_code);
    ae__writer_u64(w, m->code_layer);
    for (size_t i = 0; i < m->n_layers; i++) {
        const ae_layer *L = &m->layers[i];
        ae__writer_u32(w, (uint32_t)L->kind);
        ae__writer_u32(w, (uint32_t)L->activation);
        ae__writer_u32(w, (uint32_t)L->padding);
        ae__writer_u64(w, L->units);
        ae__writer_u64(w, L->ksize);
        double o1, o2;
        ae__writer_u32(w, (uint32_t)L->out.rank);
        for (int k = 0; k < 3; k++) ae__writer_u64(w, L->out.d[k]);
        layer_options(L, &o1, &o2);
        ae__writer_u64(w, L->stride ? L->stride : 1);
        ae__writer_f64(w, (double)L->alpha);
        ae__writer_f64(w, o1);
        ae__writer_f64(w, o2);
    }
    ae__writer_u64(w, m->n_params);
    ae__writer_f32s(w, m->params, m->n_params);
    ae__writer_u64(w, m->n_stats);
    ae__writer_f32s(w, m->stats, m->n_stats);
}

ae_status ae_model_save(const ae_model *m, const char *path)
{
    AE__ENTER();
    ae__writer w;
    ae_status st;
    if (!m || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (!ae__all_finite(m->params, m->n_params) || !ae__all_finite(m->stats, m->n_stats))
        return ae__fail(NULL, AE_ERR_NUMERIC, "the weights contain NaN or infinity");
    if ((st = ae__writer_open(&w, path, NULL)) != AE_OK) return st;
    ae__model_write_body(&w, m);
    ae__writer_u32(&w, w.crc);
    return ae__writer_commit(&w, path, NULL);
}

/* Largest per-sample layer output a model file may describe: the builder's
 * own limit on input shapes (2^31 floats). Without it a few hundred bytes
 * could describe a model whose first predict allocates terabytes. */
#define MAX_LAYER_FLOATS ((uint64_t)1 << 31)

/* The parameter count of a stored architecture, derived from the layer
 * records themselves (the builder's rules: dense in*units+units,
 * conv k*k*cin*filters+filters), so that it can be checked against the
 * file's length BEFORE ae_builder_build allocates and initialises that many
 * weights. `prev` is the previous layer's output shape; the function also
 * infers this layer's output shape into *next (as the builder does). Returns
 * -1 on overflow or an unknown kind. Only a pre-check: the builder still
 * validates every layer and the shapes are compared again after the build. */
static int infer_layer(const ae__shape *prev, uint32_t kind, uint32_t pad, uint64_t units,
                       uint64_t ksize, uint64_t stride, const ae__shape *stored, ae__shape *next,
                       uint64_t *params, uint64_t *stats)
{
    uint64_t in = prev->rank == 1 ? prev->d[0] : (uint64_t)prev->d[0] * prev->d[1] * prev->d[2];
    size_t lead;
    *next = *prev;
    *params = *stats = 0;
    switch (kind) {
    case AE_LAYER_DENSE:
        if (prev->rank != 1 || units == 0 || units > ((uint64_t)1 << 24) ||
            in > (UINT64_MAX / 4) / units)
            return -1;
        next->rank = 1;
        next->d[0] = (size_t)units;
        next->d[1] = next->d[2] = 1;
        *params = in * units + units;
        return 0;
    case AE_LAYER_CONV2D:
    case AE_LAYER_CONV2D_TRANSPOSE:
        if (prev->rank != 3 || units == 0 || units > 65536 || ksize == 0 || ksize > 64 ||
            stride == 0 || stride > 64 || prev->d[0] > (1u << 15) || prev->d[1] > (1u << 15))
            return -1;
        next->d[2] = (size_t)units;
        for (int a = 0; a < 2; a++) {
            next->d[a] = kind == AE_LAYER_CONV2D
                             ? ae__conv_axis(prev->d[a], (size_t)ksize, (size_t)stride, (int)pad, &lead)
                             : ae__convt_axis(prev->d[a], (size_t)ksize, (size_t)stride, (int)pad, &lead);
            if (next->d[a] == 0) return -1;
        }
        *params = ksize * ksize * (uint64_t)prev->d[2] * units + units;
        return 0;
    case AE_LAYER_BATCHNORM: {
        const uint64_t c = prev->rank == 1 ? prev->d[0] : prev->d[2];
        *params = 2 * c;
        *stats = 2 * c;
        return 0;
    }
    case AE_LAYER_DROPOUT:
    case AE_LAYER_GAUSSIAN_NOISE:
    case AE_LAYER_MASKING_NOISE:
    case AE_LAYER_ACTIVITY_REGULARIZATION: return 0;
    case AE_LAYER_SAMPLING:
        if (prev->rank != 1 || in % 2 != 0) return -1;
        next->d[0] = (size_t)(in / 2);
        return 0;
    case AE_LAYER_MAXPOOL2D:
        if (prev->rank != 3) return -1;
        next->d[0] = pad == AE_PAD_VALID ? prev->d[0] / 2 : (prev->d[0] + 1) / 2;
        next->d[1] = pad == AE_PAD_VALID ? prev->d[1] / 2 : (prev->d[1] + 1) / 2;
        return 0;
    case AE_LAYER_UPSAMPLE2D:
        if (prev->rank != 3) return -1;
        next->d[0] = prev->d[0] * 2;
        next->d[1] = prev->d[1] * 2;
        return 0;
    case AE_LAYER_ACTIVATION: return 0;
    case AE_LAYER_FLATTEN:
        next->rank = 1;
        next->d[0] = (size_t)in;
        next->d[1] = next->d[2] = 1;
        return 0;
    case AE_LAYER_RESHAPE: *next = *stored; return 0;
    default: return -1;
    }
}

/* Builder failures while replaying a file are format errors, except running
 * out of memory, which must stay AE_ERR_NOMEM: the file may be fine. */
static ae_status replay_status(ae_status st)
{
    return st == AE_ERR_NOMEM ? AE_ERR_NOMEM : AE_ERR_FORMAT;
}

/* Replays one stored layer record through the builder. */
/* One stored layer record (the version-2 fields take their version-1
 * meaning in version-1 files: stride 1, default activation parameter). */
typedef struct record {
    uint32_t kind, act, pad;
    uint64_t units, ksize, stride;
    double alpha, o1, o2;
    ae__shape out;
} record;

static ae_status replay_kind(ae_builder *b, const record *r)
{
    size_t dims[3] = {r->out.d[0], r->out.d[1], r->out.d[2]};
    const size_t units = (size_t)r->units, k = (size_t)r->ksize, s = (size_t)r->stride;
    const ae_padding pad = (ae_padding)r->pad;
    const ae_activation act = (ae_activation)r->act;
    switch (r->kind) {
    case AE_LAYER_DENSE: return AE__NESTED(ae_builder_dense(b, units, act));
    case AE_LAYER_CONV2D: return AE__NESTED(ae_builder_conv2d_ex(b, units, k, s, pad, act));
    case AE_LAYER_CONV2D_TRANSPOSE:
        return AE__NESTED(ae_builder_conv2d_transpose(b, units, k, s, pad, act));
    case AE_LAYER_MAXPOOL2D: return AE__NESTED(ae_builder_maxpool2d(b, pad));
    case AE_LAYER_UPSAMPLE2D: return AE__NESTED(ae_builder_upsample2d(b));
    case AE_LAYER_ACTIVATION: return AE__NESTED(ae_builder_activation(b, act));
    case AE_LAYER_FLATTEN: return AE__NESTED(ae_builder_flatten(b));
    case AE_LAYER_RESHAPE: return AE__NESTED(ae_builder_reshape(b, r->out.rank, dims));
    case AE_LAYER_BATCHNORM: return AE__NESTED(ae_builder_batchnorm(b, r->o1, r->o2));
    case AE_LAYER_DROPOUT: return AE__NESTED(ae_builder_dropout(b, r->o1));
    case AE_LAYER_GAUSSIAN_NOISE:
        return AE__NESTED(ae_builder_gaussian_noise(b, r->o1, r->o2 == 0.0 ? 0 : r->o2 == 1.0 ? 1 : 2));
    case AE_LAYER_MASKING_NOISE: return AE__NESTED(ae_builder_masking_noise(b, r->o1));
    case AE_LAYER_ACTIVITY_REGULARIZATION:
        return AE__NESTED(ae_builder_activity_regularization(b, r->o1, r->o2));
    case AE_LAYER_SAMPLING: return AE__NESTED(ae_builder_sampling(b, r->o1));
    default: return ae__fail(NULL, AE_ERR_FORMAT, "unknown layer kind %u", r->kind);
    }
}

/* Replays one stored layer record through the builder. */
static ae_status replay_layer(ae_builder *b, const record *r, uint32_t version)
{
    ae_status st;
    if (version == 1 && (r->kind > AE_LAYER_RESHAPE || r->act > AE_ACT_SIGMOID))
        return ae__fail(NULL, AE_ERR_FORMAT, "kind %u / activation %u is not in version 1",
                        r->kind, r->act);
    if ((st = replay_kind(b, r)) != AE_OK) return st;
    if (version >= 2 && (r->act == AE_ACT_LEAKY_RELU || r->act == AE_ACT_ELU))
        st = AE__NESTED(ae_builder_activation_param(b, r->alpha));
    return st;
}

static ae_status parse_model(const unsigned char *data, size_t len, const char *path,
                             ae_model **out)
{
    ae__reader r = {data, len - 4, 0, 0}; /* the CRC is checked separately */
    uint32_t version, flags, rank, n_layers, has_code, lrank;
    uint64_t dims[3], code_layer, n_params, n_stats = 0;
    ae__shape stored[256], prev, next;
    uint64_t want_params = 0, want_stats = 0, layer_params, layer_stats;
    record rec;
    ae_builder *b = NULL;
    ae_model *m = NULL;
    size_t in_dims[3];
    ae_status st;
    char magic[8];

    ae__reader_bytes(&r, magic, 8);
    ae__reader_u32(&r, &version);
    ae__reader_u32(&r, &flags);
    ae__reader_u32(&r, &rank);
    for (int i = 0; i < 3; i++) ae__reader_u64(&r, &dims[i]);
    ae__reader_u32(&r, &n_layers);
    ae__reader_u32(&r, &has_code);
    ae__reader_u64(&r, &code_layer);
    if (r.failed) return ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated header");
    if (flags != 0) return ae__file_fail(NULL, path, AE_ERR_FORMAT, "unknown flags 0x%x", flags);
    if (n_layers == 0 || n_layers > 256 || (uint64_t)n_layers * LAYER_RECORD_V1 > len)
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "implausible layer count %u",
                             n_layers);
    if (has_code > 1 || (has_code && code_layer >= n_layers))
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "bad code layer");
    for (int i = 0; i < 3; i++) {
        if (dims[i] == 0 || dims[i] > ((uint64_t)1 << 31))
            return ae__file_fail(NULL, path, AE_ERR_FORMAT, "bad input shape");
        in_dims[i] = (size_t)dims[i];
    }
    if ((st = AE__NESTED(ae_builder_create(&b, (int)rank, in_dims))) != AE_OK)
        return ae__file_fail(NULL, path, replay_status(st), "bad input shape: %s",
                             ae__last_error_text());
    prev.rank = (int)rank;
    for (int k = 0; k < 3; k++) prev.d[k] = rank == 1 && k > 0 ? 1 : in_dims[k];
    for (uint32_t i = 0; i < n_layers; i++) {
        memset(&rec, 0, sizeof rec);
        rec.stride = 1;
        ae__reader_u32(&r, &rec.kind);
        ae__reader_u32(&r, &rec.act);
        ae__reader_u32(&r, &rec.pad);
        ae__reader_u64(&r, &rec.units);
        ae__reader_u64(&r, &rec.ksize);
        ae__reader_u32(&r, &lrank);
        for (int k = 0; k < 3; k++) ae__reader_u64(&r, &dims[k]);
        if (version >= 2) {
            ae__reader_u64(&r, &rec.stride);
            ae__reader_f64(&r, &rec.alpha);
            ae__reader_f64(&r, &rec.o1);
            ae__reader_f64(&r, &rec.o2);
        }
        if (r.failed) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated layer %u", i);
            goto fail;
        }
        rec.out.rank = (int)lrank;
        for (int k = 0; k < 3; k++) rec.out.d[k] = dims[k] > SIZE_MAX ? 0 : (size_t)dims[k];
        if (rec.units > SIZE_MAX || rec.ksize > SIZE_MAX || rec.stride > 64 ||
            (st = replay_layer(b, &rec, version)) != AE_OK) {
            st = ae__file_fail(NULL, path, replay_status(st), "layer %u is invalid: %s", i,
                               ae__last_error_text());
            goto fail;
        }
        if (lrank != 1 && lrank != 3) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "layer %u has output rank %u", i,
                               lrank);
            goto fail;
        }
        /* check the stored shape and count the parameters before anything
         * is allocated for them (see infer_layer) */
        if (infer_layer(&prev, rec.kind, rec.pad, rec.units, rec.ksize, rec.stride, &rec.out,
                        &next, &layer_params, &layer_stats) != 0 ||
            !ae__shape_equal(&next, &rec.out) || ae__shape_size(&next) == 0 ||
            ae__shape_size(&next) > MAX_LAYER_FLOATS ||
            layer_params > UINT64_MAX / 8 - want_params ||
            layer_stats > UINT64_MAX / 8 - want_stats) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "layer %u's stored shape disagrees "
                               "with its architecture or is too large", i);
            goto fail;
        }
        want_params += layer_params;
        want_stats += layer_stats;
        prev = next;
        stored[i] = rec.out;
        if (has_code && code_layer == i) (void)AE__NESTED(ae_builder_mark_code(b));
    }
    /* the weights (and in version 2 the statistics) must be exactly what is
     * left of the file (u64 count, then the floats, each): checked before
     * ae_builder_build allocates them */
    {
        const uint64_t counts = version >= 2 ? 16 : 8, floats = want_params + want_stats;
        if (r.failed || r.len - r.pos < counts || (r.len - r.pos - counts) / 4 != floats ||
            (r.len - r.pos - counts) % 4 != 0) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "its architecture needs %llu "
                               "parameters and %llu statistics, which do not match the file's "
                               "length", (unsigned long long)want_params,
                               (unsigned long long)want_stats);
            goto fail;
        }
    }
    if ((st = AE__NESTED(ae_builder_build(&m, b, 0))) != AE_OK) {
        st = ae__file_fail(NULL, path, replay_status(st), "its architecture does not build: %s",
                           ae__last_error_text());
        goto fail;
    }
    /* the stored output shapes must be the ones the builder inferred */
    for (uint32_t i = 0; i < n_layers; i++) {
        if (!ae__shape_equal(&m->layers[i].out, &stored[i])) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "layer %u's stored shape disagrees "
                               "with its architecture", i);
            goto fail;
        }
    }
    ae__reader_u64(&r, &n_params);
    if (r.failed || n_params != m->n_params) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "the file holds %llu parameters, its "
                           "architecture %zu", (unsigned long long)n_params, m->n_params);
        goto fail;
    }
    if (ae__reader_f32s(&r, m->params, m->n_params) != 0) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated weights");
        goto fail;
    }
    if (version >= 2) {
        ae__reader_u64(&r, &n_stats);
        if (r.failed || n_stats != m->n_stats) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "the file holds %llu statistics, its "
                               "architecture %zu", (unsigned long long)n_stats, m->n_stats);
            goto fail;
        }
        if (ae__reader_f32s(&r, m->stats, m->n_stats) != 0) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated statistics");
            goto fail;
        }
    }
    if (r.pos != r.len) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "%zu unexpected bytes after the weights",
                           r.len - r.pos);
        goto fail;
    }
    if (!ae__all_finite(m->params, m->n_params) || !ae__all_finite(m->stats, m->n_stats)) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "weights contain NaN or infinity");
        goto fail;
    }
    for (size_t i = 0; i < m->n_layers; i++)
        for (size_t c = 0; c < m->layers[i].n_stats / 2; c++)
            if (m->layers[i].moving_var[c] < 0.0f) {
                st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "layer %zu has a negative "
                                   "moving variance", i);
                goto fail;
            }
    ae_builder_free(b);
    *out = m;
    return AE_OK;
fail:
    ae_builder_free(b);
    ae_model_free(m);
    return st;
}

/* The file length the header implies: the header, L layer records, the
 * parameter count P, P floats and the checksum. Checked before the CRC so
 * that a truncated file (or one with bytes appended) is AE_ERR_FORMAT, as
 * for every other loader, rather than a checksum mismatch. Returns 0 when
 * the file is too short to hold the L records and P, or on overflow. */
static uint64_t implied_length(const unsigned char *data, size_t len, uint32_t version)
{
    uint32_t n_layers;
    uint64_t at, n_params, n_stats;
    if (len < HEADER_BYTES) return 0;
    memcpy(&n_layers, data + LAYER_COUNT_AT, 4);
    at = HEADER_BYTES + (uint64_t)n_layers * (version == 1 ? LAYER_RECORD_V1 : LAYER_RECORD_V2);
    if (at + 8 > len) return 0;
    memcpy(&n_params, data + at, 8);
    if (n_params > (UINT64_MAX - at - 12) / 4) return 0;
    at += 8 + 4 * n_params;
    if (version == 1) return at + 4;
    /* version 2: the statistics count and statistics follow (at may be far
     * beyond len here: compare without adding to it) */
    if (at > len || len - at < 8) return 0;
    memcpy(&n_stats, data + at, 8);
    if (n_stats > (UINT64_MAX - at - 12) / 4) return 0;
    return at + 8 + 4 * n_stats + 4;
}

ae_status ae__model_parse_file(const unsigned char *data, size_t len, const char *path,
                               ae_model **out)
{
    uint32_t version, stored_crc;
    uint64_t want;
    if (len < 8 + 4 + 4)
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated: %zu bytes is too short for "
                             "a model file", len);
    if (memcmp(data, model_magic, 8) != 0)
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "not a libautoenc model file (bad magic)");
    if (memcpy(&version, data + 8, 4), version < 1 || version > AE_MODEL_FORMAT_VERSION)
        return ae__file_fail(NULL, path,
                             version > AE_MODEL_FORMAT_VERSION ? AE_ERR_VERSION : AE_ERR_FORMAT,
                             "model format version %u; this library reads versions 1 to %d",
                             version, AE_MODEL_FORMAT_VERSION);
    if ((want = implied_length(data, len, version)) == 0)
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated: %zu bytes do not hold the "
                             "header and layer records", len);
    if (want != len)
        return want < len ? ae__file_fail(NULL, path, AE_ERR_FORMAT, "%llu unexpected bytes "
                                          "after the checksum", (unsigned long long)(len - want))
                          : ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated: %zu bytes, its "
                                          "header implies %llu", len, (unsigned long long)want);
    if (memcpy(&stored_crc, data + len - 4, 4), stored_crc != ae__crc32(0, data, len - 4))
        return ae__file_fail(NULL, path, AE_ERR_CHECKSUM, "corrupt (checksum mismatch)");
    return parse_model(data, len, path, out);
}

ae_status ae_model_load(ae_model **out, const char *path)
{
    AE__ENTER();
    unsigned char *data;
    size_t len;
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "path is NULL");
    if ((st = ae__read_file(path, MAX_MODEL_FILE, &data, &len, NULL)) != AE_OK) return st;
    st = ae__model_parse_file(data, len, path, out);
    ae__free(data, len);
    return st;
}
