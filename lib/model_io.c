/* Model files: architecture + weights, versioned and checksummed.
 *
 * Layout (little-endian; docs/formats.md):
 *   magic "AEMODEL\0" (8) | u32 format version | u32 flags (0)
 *   u32 input rank | u64 input dims[3]
 *   u32 layer count | u32 has_code | u64 code layer
 *   per layer: u32 kind | u32 activation | u32 padding | u64 units | u64 kernel
 *              | u32 output rank | u64 output dims[3]
 *   u64 parameter count | f32 parameters[count]
 *   u32 CRC-32 of every byte before it
 * The architecture is replayed through the builder on load, so a file can only
 * describe models the builder accepts. */
#include <string.h>

#include "nn.h"

static const char model_magic[8] = {'A', 'E', 'M', 'O', 'D', 'E', 'L', '\0'};
#define MAX_MODEL_FILE ((size_t)1 << 32) /* 4 GiB: far above any model here */
#define LAYER_RECORD_BYTES (4 * 3 + 8 * 2 + 4 + 8 * 3)

ae_status ae_model_save(const ae_model *m, const char *path)
{
    ae__writer w;
    ae_status st;
    if (!m || !path) return ae__fail(NULL, AE_ERR_INVALID_ARG, "ae_model_save: NULL argument");
    if (!ae__all_finite(m->params, m->n_params))
        return ae__fail(NULL, AE_ERR_NUMERIC, "ae_model_save: the weights contain NaN or infinity");
    if ((st = ae__writer_open(&w, path, NULL)) != AE_OK) return st;
    ae__writer_write(&w, model_magic, sizeof model_magic);
    ae__writer_u32(&w, AE_MODEL_FORMAT_VERSION);
    ae__writer_u32(&w, 0);
    ae__writer_u32(&w, (uint32_t)m->input.rank);
    for (int i = 0; i < 3; i++) ae__writer_u64(&w, m->input.d[i]);
    ae__writer_u32(&w, (uint32_t)m->n_layers);
    ae__writer_u32(&w, (uint32_t)m->has_code);
    ae__writer_u64(&w, m->code_layer);
    for (size_t i = 0; i < m->n_layers; i++) {
        const ae_layer *L = &m->layers[i];
        ae__writer_u32(&w, (uint32_t)L->kind);
        ae__writer_u32(&w, (uint32_t)L->activation);
        ae__writer_u32(&w, (uint32_t)L->padding);
        ae__writer_u64(&w, L->units);
        ae__writer_u64(&w, L->ksize);
        ae__writer_u32(&w, (uint32_t)L->out.rank);
        for (int k = 0; k < 3; k++) ae__writer_u64(&w, L->out.d[k]);
    }
    ae__writer_u64(&w, m->n_params);
    ae__writer_f32s(&w, m->params, m->n_params);
    ae__writer_u32(&w, w.crc);
    return ae__writer_commit(&w, path, NULL);
}

/* Replays one stored layer record through the builder. */
static ae_status replay_layer(ae_builder *b, uint32_t kind, uint32_t act, uint32_t pad,
                              uint64_t units, uint64_t ksize, const ae__shape *out)
{
    size_t dims[3] = {out->d[0], out->d[1], out->d[2]};
    switch (kind) {
    case AE_LAYER_DENSE: return ae_builder_dense(b, (size_t)units, (int)act);
    case AE_LAYER_CONV2D: return ae_builder_conv2d(b, (size_t)units, (size_t)ksize, (int)pad, (int)act);
    case AE_LAYER_MAXPOOL2D: return ae_builder_maxpool2d(b, (int)pad);
    case AE_LAYER_UPSAMPLE2D: return ae_builder_upsample2d(b);
    case AE_LAYER_ACTIVATION: return ae_builder_activation(b, (int)act);
    case AE_LAYER_FLATTEN: return ae_builder_flatten(b);
    case AE_LAYER_RESHAPE: return ae_builder_reshape(b, out->rank, dims);
    default: return ae__fail(NULL, AE_ERR_FORMAT, "unknown layer kind %u", kind);
    }
}

static ae_status parse_model(const unsigned char *data, size_t len, const char *path,
                             ae_model **out)
{
    ae__reader r = {data, len - 4, 0, 0}; /* the CRC is checked separately */
    uint32_t version, flags, rank, n_layers, has_code, lk, la, lp, lrank;
    uint64_t dims[3], code_layer, units, ksize, n_params;
    ae__shape out_shape, stored[256];
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
    if (r.failed) return ae__fail(NULL, AE_ERR_FORMAT, "'%s': truncated header", path);
    if (flags != 0) return ae__fail(NULL, AE_ERR_FORMAT, "'%s': unknown flags 0x%x", path, flags);
    if (n_layers == 0 || n_layers > 256 || (uint64_t)n_layers * LAYER_RECORD_BYTES > len)
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s': implausible layer count %u", path, n_layers);
    if (has_code > 1 || (has_code && code_layer >= n_layers))
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s': bad code layer", path);
    for (int i = 0; i < 3; i++) {
        if (dims[i] == 0 || dims[i] > ((uint64_t)1 << 31))
            return ae__fail(NULL, AE_ERR_FORMAT, "'%s': bad input shape", path);
        in_dims[i] = (size_t)dims[i];
    }
    if ((st = ae_builder_create(&b, (int)rank, in_dims)) != AE_OK)
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s': bad input shape: %s", path, ae_last_error());
    for (uint32_t i = 0; i < n_layers; i++) {
        ae__reader_u32(&r, &lk);
        ae__reader_u32(&r, &la);
        ae__reader_u32(&r, &lp);
        ae__reader_u64(&r, &units);
        ae__reader_u64(&r, &ksize);
        ae__reader_u32(&r, &lrank);
        for (int k = 0; k < 3; k++) ae__reader_u64(&r, &dims[k]);
        if (r.failed) { st = ae__fail(NULL, AE_ERR_FORMAT, "'%s': truncated layer %u", path, i); goto fail; }
        out_shape.rank = (int)lrank;
        for (int k = 0; k < 3; k++) out_shape.d[k] = dims[k] > SIZE_MAX ? 0 : (size_t)dims[k];
        if (units > SIZE_MAX || ksize > SIZE_MAX ||
            replay_layer(b, lk, la, lp, units, ksize, &out_shape) != AE_OK) {
            st = ae__fail(NULL, AE_ERR_FORMAT, "'%s': layer %u is invalid: %s", path, i, ae_last_error());
            goto fail;
        }
        if (lrank != 1 && lrank != 3) {
            st = ae__fail(NULL, AE_ERR_FORMAT, "'%s': layer %u has output rank %u", path, i, lrank);
            goto fail;
        }
        stored[i] = out_shape;
        if (has_code && code_layer == i) ae_builder_mark_code(b);
    }
    if ((st = ae_builder_build(b, 0, &m)) != AE_OK) goto fail;
    /* the stored output shapes must be the ones the builder inferred */
    for (uint32_t i = 0; i < n_layers; i++) {
        if (!ae__shape_equal(&m->layers[i].out, &stored[i])) {
            st = ae__fail(NULL, AE_ERR_FORMAT, "'%s': layer %u's stored shape disagrees with its "
                          "architecture", path, i);
            goto fail;
        }
    }
    ae__reader_u64(&r, &n_params);
    if (r.failed || n_params != m->n_params) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s': the file holds %llu parameters, its architecture %zu",
                      path, (unsigned long long)n_params, m->n_params);
        goto fail;
    }
    if (ae__reader_f32s(&r, m->params, m->n_params) != 0) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s': truncated weights", path);
        goto fail;
    }
    if (r.pos != r.len) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s': %zu unexpected bytes after the weights", path, r.len - r.pos);
        goto fail;
    }
    if (!ae__all_finite(m->params, m->n_params)) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s': weights contain NaN or infinity", path);
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

ae_status ae_model_load(ae_model **out, const char *path)
{
    unsigned char *data;
    size_t len;
    uint32_t version, stored_crc;
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "ae_model_load: out is NULL");
    *out = NULL;
    if ((st = ae__read_file(path, MAX_MODEL_FILE, &data, &len, NULL)) != AE_OK) return st;
    if (len < 8 + 4 + 4) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' is too short (%zu bytes) to be a model file", path, len);
    } else if (memcmp(data, model_magic, 8) != 0) {
        st = ae__fail(NULL, AE_ERR_FORMAT, "'%s' is not a libautoenc model file (bad magic)", path);
    } else if (memcpy(&version, data + 8, 4), version != AE_MODEL_FORMAT_VERSION) {
        st = ae__fail(NULL, version > AE_MODEL_FORMAT_VERSION ? AE_ERR_VERSION : AE_ERR_FORMAT,
                      "'%s' has model format version %u; this library reads version %d", path,
                      version, AE_MODEL_FORMAT_VERSION);
    } else if (memcpy(&stored_crc, data + len - 4, 4), stored_crc != ae__crc32(0, data, len - 4)) {
        st = ae__fail(NULL, AE_ERR_CHECKSUM, "'%s' is corrupt or truncated (checksum mismatch)", path);
    } else {
        st = parse_model(data, len, path, out);
    }
    ae__free(data, len);
    return st;
}
