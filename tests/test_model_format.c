/*
 * docs/formats.md against the bytes ae_model_save writes.
 *
 * An independent reader: it uses only the public API (to save the models and
 * to read what they hold through their accessors) and its own little-endian
 * decoding and CRC-32, never the library's internals. It takes the layout
 * from docs/formats.md itself: the two tables of the "Model files" section
 * (file header and layer record) are parsed, their offset and size
 * expressions (such as "60 + 56L" or "4P") evaluated for the file at hand,
 * and every field is read at the offset the document gives. So a change of
 * the layout in lib/model_io.c that is not made in the document, or a wrong
 * number in the document, fails here.
 *
 * Checked for each reference model (simple, deep, conv) and one model with
 * every layer kind: magic, version, flags, input shape, layer count, code
 * layer, each record (kind, activation, padding from the shapes, units,
 * kernel side from the parameter count, output shape), the parameter count,
 * every parameter value (kernel then bias, layer by layer), the CRC-32 and
 * its position at the end of the file; and that the tables' rows follow each
 * other without gaps.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"
#include "test_support.h"

#ifndef AE_SOURCE_DIR
#error "AE_SOURCE_DIR (the repository) must be defined to find docs/formats.md"
#endif

/* ---- the document's tables -------------------------------------------------------- */
#define MAX_ROWS 32

typedef struct row {
    char offset[160], size[160]; /* expressions in L and P */
    char type[160];              /* "u32", "u64[3]", "f32[P]", "" (bytes) */
    char name[160];              /* the field name after the type */
} row;

typedef struct table {
    row rows[MAX_ROWS];
    int n;
} table;

static void trim(char *s)
{
    size_t n = strlen(s), a = 0;
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    while (s[a] && isspace((unsigned char)s[a])) a++;
    memmove(s, s + a, n - a + 1);
}

/* Splits "| a | b | c | d |" into at most max trimmed cells; returns the count. */
static int split_cells(const char *line, char cells[][160], int max)
{
    int n = 0;
    const char *p = strchr(line, '|');
    while (p && n < max) {
        const char *q = strchr(p + 1, '|');
        size_t len;
        if (!q) break;
        len = (size_t)(q - p - 1) < 159 ? (size_t)(q - p - 1) : 159;
        memcpy(cells[n], p + 1, len);
        cells[n][len] = '\0';
        trim(cells[n]);
        n++;
        p = q;
    }
    return n;
}

/* "`u32` format version" -> type "u32", name "format version"; "magic" -> "", "magic". */
static void split_field(const char *cell, row *r)
{
    const char *p = cell;
    r->type[0] = '\0';
    if (*p == '`') {
        const char *q = strchr(p + 1, '`');
        assert_non_null(q);
        snprintf(r->type, sizeof r->type, "%.*s", (int)(q - p - 1), p + 1);
        p = q + 1;
    }
    snprintf(r->name, sizeof r->name, "%s", p);
    trim(r->name);
}

/* Reads the "Model files" section of docs/formats.md and the two tables in it
 * whose header starts "| offset | size | field |": the file header first, the
 * layer record second. */
static void read_doc_tables(table *file, table *record)
{
    FILE *f = fopen(AE_SOURCE_DIR "/docs/formats.md", "r");
    char line[1024];
    int in_section = 0, which = -1;
    assert_non_null(f);
    file->n = record->n = 0;
    while (fgets(line, sizeof line, f)) {
        char cells[6][160];
        int n;
        if (strncmp(line, "## ", 3) == 0) {
            in_section = strncmp(line, "## Model files", 14) == 0;
            which = -1;
            continue;
        }
        if (!in_section) continue;
        if (line[0] != '|') { /* a table ends at the first line that is not a row */
            which = -1;
            continue;
        }
        n = split_cells(line, cells, 6);
        if (n >= 3 && strcmp(cells[0], "offset") == 0 && strcmp(cells[1], "size") == 0 &&
            strcmp(cells[2], "field") == 0) {
            which = (file->n == 0) ? 0 : 1;
            continue;
        }
        if (which < 0 || n < 3 || cells[0][0] == '-') continue; /* the |---| line */
        {
            table *t = which == 0 ? file : record;
            row *r;
            assert_true(t->n < MAX_ROWS);
            r = &t->rows[t->n++];
            snprintf(r->offset, sizeof r->offset, "%s", cells[0]);
            snprintf(r->size, sizeof r->size, "%s", cells[1]);
            split_field(cells[2], r);
        }
    }
    fclose(f);
    if (file->n == 0 || record->n == 0)
        fail_msg("docs/formats.md: no file header or layer record table in \"## Model files\"");
}

/* The statistic count S of the file being checked (0 until it is read). */
static uint64_t g_S;

/* Evaluates "60", "88 x L", "60 + 88L", "68 + 88L + 4P + 4S": a sum of terms,
 * each a number, a variable (L, P, S), or a number times a variable ("88L"
 * or "88 x L"). */
static uint64_t eval(const char *expr, uint64_t L, uint64_t P)
{
    uint64_t total = 0;
    const char *p = expr;
    for (;;) {
        uint64_t num = 1, var = 1;
        int have_num = 0, have_var = 0;
        while (*p == ' ') p++;
        if (isdigit((unsigned char)*p)) {
            num = strtoull(p, (char **)&p, 10);
            have_num = 1;
            while (*p == ' ') p++;
            if (*p == 'x' && (p[1] == ' ' || p[1] == 'L' || p[1] == 'P' || p[1] == 'S')) {
                p++;
                while (*p == ' ') p++;
            }
        }
        if (*p == 'L' || *p == 'P' || *p == 'S') {
            var = *p == 'L' ? L : *p == 'P' ? P : g_S;
            have_var = 1;
            p++;
        }
        if (!have_num && !have_var) fail_msg("docs/formats.md: cannot read '%s'", expr);
        total += num * var;
        while (*p == ' ') p++;
        if (*p == '\0') return total;
        if (*p != '+') fail_msg("docs/formats.md: cannot read '%s'", expr);
        p++;
    }
}

static const row *find(const table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].name, name) == 0) return &t->rows[i];
    fail_msg("docs/formats.md: no field '%s'", name);
    return &t->rows[0]; /* not reached: fail_msg does not return */
}

/* Bytes a field of this type takes, or 0 when the table's size alone says. */
static uint64_t type_bytes(const char *type)
{
    if (strcmp(type, "u32") == 0) return 4;
    if (strcmp(type, "u64") == 0) return 8;
    if (strcmp(type, "f64") == 0) return 8;
    if (strcmp(type, "u64[3]") == 0) return 24;
    return 0;
}

/* Each row starts where the one before ends, the first at 0; sizes agree
 * with the types. Returns where the last row ends. */
static uint64_t check_contiguous(const table *t, uint64_t L, uint64_t P)
{
    uint64_t end = 0;
    for (int i = 0; i < t->n; i++) {
        uint64_t off = eval(t->rows[i].offset, L, P), size = eval(t->rows[i].size, L, P);
        if (off != end)
            fail_msg("docs/formats.md: '%s' at %s = %llu, but the field before ends at %llu",
                     t->rows[i].name, t->rows[i].offset, (unsigned long long)off,
                     (unsigned long long)end);
        if (type_bytes(t->rows[i].type) && type_bytes(t->rows[i].type) != size)
            fail_msg("docs/formats.md: '%s' is a %s of %s bytes", t->rows[i].name,
                     t->rows[i].type, t->rows[i].size);
        end = off + size;
    }
    return end;
}

/* ---- the file, decoded independently ------------------------------------------------- */
typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static bytes slurp(const char *path)
{
    bytes b;
    b.p = ae_test_read_file(path, &b.n);
    assert_non_null(b.p);
    assert_true(b.n > 0);
    return b;
}

static uint64_t le(const bytes *b, uint64_t off, int width)
{
    uint64_t v = 0;
    if (off + (uint64_t)width > b->n)
        fail_msg("reading %d bytes at %llu past the end (%zu bytes)", width,
                 (unsigned long long)off, b->n);
    for (int i = width - 1; i >= 0; i--) v = v << 8 | b->p[off + (uint64_t)i];
    return v;
}

static double f64_of(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static float le_f32(const bytes *b, uint64_t off)
{
    uint32_t u = (uint32_t)le(b, off, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE 802.3 CRC-32, bit by bit (zlib's crc32). */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* Value of field `name` of the file header. */
static uint64_t hdr(const bytes *b, const table *t, const char *name, int elem, uint64_t L,
                    uint64_t P)
{
    const row *r = find(t, name);
    int width = strncmp(r->type, "u64", 3) == 0 ? 8 : 4;
    return le(b, eval(r->offset, L, P) + (uint64_t)elem * (uint64_t)width, width);
}

static void check_model_file(const ae_model *m, const char *path, const table *ft,
                             const table *rt)
{
    bytes b = slurp(path);
    uint64_t L, P, S, rec0, rec_size, par, crc_at, pos;
    size_t code;
    int rank = ae_model_input_rank(m);
    size_t prev[3], total_params = 0, total_stats = 0;

    /* magic and the fixed-offset fields first: L gives the rest */
    {
        const row *r = find(ft, "magic");
        assert_int_equal(eval(r->size, 0, 0), 8);
        assert_memory_equal(b.p + eval(r->offset, 0, 0), "AEMODEL\0", 8);
    }
    L = hdr(&b, ft, "layer count L", 0, 0, 0);
    P = le(&b, eval(find(ft, "parameter count P")->offset, L, 0), 8);
    g_S = 0;
    S = le(&b, eval(find(ft, "statistic count S")->offset, L, P), 8);
    g_S = S;
    assert_int_equal(check_contiguous(ft, L, P), b.n);
    assert_int_equal(hdr(&b, ft, "format version", 0, L, P), AE_MODEL_FORMAT_VERSION);
    assert_int_equal(hdr(&b, ft, "flags", 0, L, P), 0);
    assert_int_equal(hdr(&b, ft, "input rank", 0, L, P), (uint64_t)rank);
    for (int k = 0; k < 3; k++) {
        uint64_t d = hdr(&b, ft, "input dims", k, L, P);
        assert_int_equal(d, k < rank ? (uint64_t)ae_model_input_dim(m, k) : 1u);
        prev[k] = k < rank ? ae_model_input_dim(m, k) : 1;
    }
    assert_int_equal(L, ae_model_layer_count(m));
    if (ae_model_code_layer(&code, m) == AE_OK) {
        assert_int_equal(hdr(&b, ft, "has code", 0, L, P), 1);
        assert_int_equal(hdr(&b, ft, "code layer", 0, L, P), code);
    } else {
        assert_int_equal(hdr(&b, ft, "has code", 0, L, P), 0);
    }
    assert_int_equal(P, ae_model_param_count(m));

    /* layer records */
    rec0 = eval(find(ft, "layer records")->offset, L, P);
    rec_size = check_contiguous(rt, L, P);
    assert_int_equal(eval(find(ft, "layer records")->size, L, P), rec_size * L);
    for (uint64_t i = 0; i < L; i++) {
        const ae_layer *ly = ae_model_layer(m, (size_t)i);
        uint64_t at = rec0 + i * rec_size;
#define FIELD(name, elem) le(&b, at + eval(find(rt, name)->offset, L, P) + 8 * (elem), \
                             type_bytes(find(rt, name)->type) == 4 ? 4 : 8)
        uint64_t kind = FIELD("kind", 0), act = FIELD("activation", 0), pad = FIELD("padding", 0);
        uint64_t units = FIELD("units", 0), ksize = FIELD("kernel", 0);
        uint64_t orank = FIELD("output rank", 0), stride = FIELD("stride", 0);
        double alpha = f64_of(FIELD("activation parameter", 0));
        double opt1 = f64_of(FIELD("option 1", 0)), opt2 = f64_of(FIELD("option 2", 0));
        size_t out[3];
        assert_int_equal(kind, (uint64_t)ae_layer_kind_of(ly));
        assert_int_equal(act, (uint64_t)ae_layer_activation(ly));
        assert_int_equal(orank, (uint64_t)ae_layer_output_rank(ly));
        for (int k = 0; k < 3; k++) out[k] = k < (int)orank ? ae_layer_output_dim(ly, k) : 1;
        for (int k = 0; k < (int)orank; k++) assert_int_equal(FIELD("output dims", k), out[k]);
        assert_true(pad == AE_PAD_SAME || pad == AE_PAD_VALID);
        assert_int_equal(stride, ae_layer_stride(ly));
        assert_true(alpha == ae_layer_activation_param(ly));
        switch ((int)kind) {
        case AE_LAYER_DENSE:
            assert_int_equal(units, out[0]);
            assert_int_equal(ksize, 0);
            assert_int_equal(ae_layer_param_count(ly), prev[0] * units + units);
            break;
        case AE_LAYER_CONV2D:
            assert_int_equal(units, out[2]);
            assert_int_equal(ae_layer_param_count(ly), ksize * ksize * prev[2] * units + units);
            /* same: ceil(in / stride); valid: floor((in - k) / stride) + 1 */
            assert_int_equal(out[0], pad == AE_PAD_SAME ? (prev[0] + stride - 1) / stride
                                                        : (prev[0] - ksize) / stride + 1);
            break;
        case AE_LAYER_CONV2D_TRANSPOSE:
            assert_int_equal(units, out[2]);
            assert_int_equal(ae_layer_param_count(ly), ksize * ksize * prev[2] * units + units);
            /* same: in * stride; valid: in * stride + max(k - stride, 0) */
            assert_int_equal(out[0], prev[0] * stride + (pad == AE_PAD_VALID && ksize > stride
                                                             ? ksize - stride : 0));
            break;
        case AE_LAYER_BATCHNORM:
            assert_int_equal(units, out[orank == 1 ? 0 : 2]);
            assert_int_equal(ae_layer_param_count(ly), 2 * units);
            /* the models below use momentum 0.9 and epsilon 1e-3 */
            assert_true(opt1 == 0.9 && opt2 == 1e-3);
            total_stats += 2 * units;
            break;
        case AE_LAYER_DROPOUT:
        case AE_LAYER_MASKING_NOISE:
        case AE_LAYER_GAUSSIAN_NOISE:
            assert_true(opt1 == ae_layer_noise_param(ly));
            /* the Gaussian noise below is clipped */
            assert_true(opt2 == (kind == AE_LAYER_GAUSSIAN_NOISE ? 1.0 : 0.0));
            assert_int_equal(ae_layer_param_count(ly), 0);
            break;
        case AE_LAYER_ACTIVITY_REGULARIZATION: {
            double l1, l2;
            assert_int_equal(ae_layer_activity_regularization(&l1, &l2, ly), AE_OK);
            /* the model below uses l1 1e-4, l2 2.5e-3 */
            assert_true(opt1 == 1e-4 && opt2 == 2.5e-3 && l1 == opt1 && l2 == opt2);
            assert_int_equal(ae_layer_param_count(ly), 0);
            break;
        }
        case AE_LAYER_SAMPLING:
            /* 2z means and log-variances in, z out; the model below weighs KL by 0.25 */
            assert_int_equal(out[0] * 2, prev[0]);
            assert_true(opt1 == 0.25 && opt2 == 0.0);
            assert_int_equal(units, 0);
            assert_int_equal(ae_layer_param_count(ly), 0);
            break;
        case AE_LAYER_MAXPOOL2D:
            assert_int_equal(units, 0);
            assert_int_equal(out[0], pad == AE_PAD_SAME ? (prev[0] + 1) / 2 : prev[0] / 2);
            break;
        default:
            assert_int_equal(units, 0);
            assert_int_equal(ksize, 0);
            assert_int_equal(ae_layer_param_count(ly), 0);
        }
#undef FIELD
        total_params += ae_layer_param_count(ly);
        if (orank == 1) prev[0] = out[0], prev[1] = prev[2] = 1;
        else memcpy(prev, out, sizeof prev);
    }
    assert_int_equal(total_params, P);

    /* parameters: every layer's kernel then bias, in layer order */
    par = eval(find(ft, "parameters")->offset, L, P);
    assert_int_equal(eval(find(ft, "parameters")->size, L, P), 4 * P);
    pos = par;
    for (size_t i = 0; i < L; i++) {
        const ae_layer *ly = ae_model_layer(m, i);
        if (ae_layer_param_count(ly) == 0) continue;
        for (int which = AE_PARAM_KERNEL; which <= AE_PARAM_BIAS; which++) {
            const float *v;
            size_t n;
            assert_int_equal(ae_layer_param(&v, &n, ly, (ae_param_kind)which), AE_OK);
            for (size_t j = 0; j < n; j++, pos += 4) {
                float got = le_f32(&b, pos);
                if (memcmp(&got, &v[j], 4) != 0)
                    fail_msg("layer %zu %s[%zu]: the file has %g at %llu, the model %g", i,
                             which == AE_PARAM_KERNEL ? "kernel" : "bias", j, (double)got,
                             (unsigned long long)pos, (double)v[j]);
            }
        }
    }
    assert_int_equal(pos, par + 4 * P);

    /* statistics: every batch-norm layer's moving mean then variance */
    assert_int_equal(S, total_stats);
    pos = eval(find(ft, "statistics")->offset, L, P);
    assert_int_equal(eval(find(ft, "statistics")->size, L, P), 4 * S);
    for (size_t i = 0; i < L; i++) {
        const ae_layer *ly = ae_model_layer(m, i);
        if (ae_layer_kind_of(ly) != AE_LAYER_BATCHNORM) continue;
        for (int which = AE_PARAM_MOVING_MEAN; which <= AE_PARAM_MOVING_VARIANCE; which++) {
            const float *v;
            size_t n;
            assert_int_equal(ae_layer_param(&v, &n, ly, (ae_param_kind)which), AE_OK);
            for (size_t j = 0; j < n; j++, pos += 4) {
                float got = le_f32(&b, pos);
                if (memcmp(&got, &v[j], 4) != 0)
                    fail_msg("layer %zu statistic %d[%zu]: the file has %g, the model %g", i,
                             which, j, (double)got, (double)v[j]);
            }
        }
    }

    /* the checksum: the last field, over every byte before it */
    crc_at = eval(find(ft, "CRC-32")->offset, L, P);
    assert_int_equal(crc_at, pos);
    assert_int_equal(crc_at + 4, b.n);
    assert_int_equal(le(&b, crc_at, 4), crc32_bitwise(b.p, (size_t)crc_at));
    free(b.p);
}

/* ---- tests ------------------------------------------------------------------------------ */
static void save_and_check(ae_model *m, const char *name)
{
    table ft, rt;
    char path[256];
    snprintf(path, sizeof path, "%s", ae_test_path("%s.aem", name));
    read_doc_tables(&ft, &rt);
    assert_int_equal(ae_model_save(m, path), AE_OK);
    check_model_file(m, path, &ft, &rt);
    ae_model_free(m);
}

static void test_reference_models(void **state)
{
    ae_model *m;
    (void)state;
    assert_int_equal(ae_preset_build(&m, AE_PRESET_SIMPLE, 11), AE_OK);
    save_and_check(m, "simple");
    assert_int_equal(ae_preset_build(&m, AE_PRESET_DEEP, 12), AE_OK);
    save_and_check(m, "deep");
    assert_int_equal(ae_preset_build(&m, AE_PRESET_CONV, 13), AE_OK);
    save_and_check(m, "conv");
}

/* Valid convolution and pooling, flatten, activation, reshape and a model
 * without a code layer: the kinds and paddings the reference models lack. */
static void test_other_layer_kinds(void **state)
{
    ae_builder *b;
    ae_model *m;
    size_t in[3] = {7, 7, 3}, back[3] = {3, 3, 2};
    (void)state;
    assert_int_equal(ae_builder_create(&b, 3, in), AE_OK);
    assert_int_equal(ae_builder_conv2d(b, 2, 2, AE_PAD_VALID, AE_ACT_LINEAR), AE_OK); /* 6x6x2 */
    assert_int_equal(ae_builder_maxpool2d(b, AE_PAD_VALID), AE_OK);                 /* 3x3x2 */
    assert_int_equal(ae_builder_flatten(b), AE_OK);                                 /* 18 */
    assert_int_equal(ae_builder_activation(b, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_dense(b, 18, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_reshape(b, 3, back), AE_OK);
    assert_int_equal(ae_builder_upsample2d(b), AE_OK);                              /* 6x6x2 */
    assert_int_equal(ae_builder_build(&m, b, 5), AE_OK);
    ae_builder_free(b);
    save_and_check(m, "kinds");
}

/* The kinds and fields of format version 2: strided and transposed
 * convolutions, batch norm with statistics set away from their defaults,
 * dropout and noise, activity regularisation, a VAE's sampling layer (the
 * code), activation parameters. */
static void test_version2_layer_kinds(void **state)
{
    ae_builder *b;
    ae_model *m;
    size_t in[3] = {9, 7, 2};
    const float mean[3] = {0.5f, -1.0f, 2.0f}, var[3] = {0.25f, 3.0f, 1.5f};
    (void)state;
    assert_int_equal(ae_builder_create(&b, 3, in), AE_OK);
    assert_int_equal(ae_builder_gaussian_noise(b, 0.2, 1), AE_OK);
    assert_int_equal(ae_builder_masking_noise(b, 0.3), AE_OK);
    assert_int_equal(ae_builder_conv2d_ex(b, 3, 3, 2, AE_PAD_SAME, AE_ACT_LEAKY_RELU), AE_OK); /* 5x4x3 */
    assert_int_equal(ae_builder_activation_param(b, 0.15), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.9, 1e-3), AE_OK);
    assert_int_equal(ae_builder_conv2d_ex(b, 2, 2, 3, AE_PAD_VALID, AE_ACT_ELU), AE_OK); /* 2x1x2 */
    assert_int_equal(ae_builder_conv2d_transpose(b, 3, 4, 2, AE_PAD_SAME, AE_ACT_TANH), AE_OK); /* 4x2x3 */
    assert_int_equal(ae_builder_conv2d_transpose(b, 2, 3, 2, AE_PAD_VALID, AE_ACT_SOFTPLUS), AE_OK); /* 9x5x2 */
    assert_int_equal(ae_builder_flatten(b), AE_OK);
    assert_int_equal(ae_builder_dropout(b, 0.25), AE_OK);
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_activity_regularization(b, 1e-4, 2.5e-3), AE_OK);
    assert_int_equal(ae_builder_batchnorm(b, 0.9, 1e-3), AE_OK);
    assert_int_equal(ae_builder_sampling(b, 0.25), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 3, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 6), AE_OK);
    ae_builder_free(b);
    assert_int_equal(ae_model_set_param(m, 3, AE_PARAM_MOVING_MEAN, mean, 3), AE_OK);
    assert_int_equal(ae_model_set_param(m, 3, AE_PARAM_MOVING_VARIANCE, var, 3), AE_OK);
    {
        /* and it loads back predicting the same */
        ae_model *back;
        const char *path = ae_test_path("%s", "v2.aem");
        float x[9 * 7 * 2], ya[3], yb[3];
        for (int i = 0; i < 9 * 7 * 2; i++) x[i] = (float)(i % 5) / 5.0f;
        assert_int_equal(ae_model_save(m, path), AE_OK);
        assert_int_equal(ae_model_load(&back, path), AE_OK);
        assert_int_equal(ae_model_predict(m, x, 1, ya, 3), AE_OK);
        assert_int_equal(ae_model_predict(back, x, 1, yb, 3), AE_OK);
        assert_memory_equal(ya, yb, sizeof ya);
        {
            /* the KL weight came back: the same loss, which it dominates */
            double la, lb;
            assert_int_equal(ae_model_evaluate(&la, m, AE_LOSS_MSE, x, ya, 1), AE_OK);
            assert_int_equal(ae_model_evaluate(&lb, back, AE_LOSS_MSE, x, yb, 1), AE_OK);
            assert_true(la > 0.0 && la == lb);
        }
        ae_model_free(back);
    }
    save_and_check(m, "v2kinds");
}

/* ---- version 1 ------------------------------------------------------------------
 * tests/data/model-v1/conv_v1.aem holds this model (every version-1 layer
 * kind), written by the format-version-1 library (commit 29c565c)
 * with `test_model_format --write-fixtures DIR`. */
#define V1_FIXTURE AE_SOURCE_DIR "/tests/data/model-v1/conv_v1.aem"

static ae_model *v1_fixture_model(void)
{
    ae_builder *b;
    ae_model *m;
    size_t in[3] = {6, 6, 1}, back[3] = {3, 3, 2};
    assert_int_equal(ae_builder_create(&b, 3, in), AE_OK);
    assert_int_equal(ae_builder_conv2d(b, 2, 3, AE_PAD_SAME, AE_ACT_RELU), AE_OK);   /* 6x6x2 */
    assert_int_equal(ae_builder_maxpool2d(b, AE_PAD_SAME), AE_OK);                  /* 3x3x2 */
    assert_int_equal(ae_builder_flatten(b), AE_OK);                                  /* 18 */
    assert_int_equal(ae_builder_dense(b, 4, AE_ACT_LINEAR), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 18, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_reshape(b, 3, back), AE_OK);
    assert_int_equal(ae_builder_upsample2d(b), AE_OK);                               /* 6x6x2 */
    assert_int_equal(ae_builder_conv2d(b, 1, 2, AE_PAD_VALID, AE_ACT_LINEAR), AE_OK); /* 5x5x1 */
    assert_int_equal(ae_builder_activation(b, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 2026), AE_OK);
    ae_builder_free(b);
    return m;
}

static int write_fixtures(const char *dir)
{
    char p[1024];
    ae_model *m = v1_fixture_model();
    ae_status st;
    snprintf(p, sizeof p, "%s/conv_v1.aem", dir);
    st = ae_model_save(m, p);
    ae_model_free(m);
    if (st != AE_OK) {
        fprintf(stderr, "%s: %s\n", p, ae_last_error());
        return 1;
    }
    printf("wrote %s\n", p);
    return 0;
}

/* The committed version-1 file loads into the model it was written from:
 * the same layers, bit-identical weights and predictions; saved again it
 * becomes a current-version file that loads back the same; every truncation
 * is AE_ERR_FORMAT. */
static void test_version1_file_loads(void **state)
{
    ae_model *want = v1_fixture_model(), *got = NULL, *again = NULL;
    float x[36], ya[25], yb[25];
    bytes b = slurp(V1_FIXTURE);
    (void)state;
    assert_int_equal(le(&b, 8, 4), 1); /* it is a version-1 file */
    assert_int_equal(ae_model_load(&got, V1_FIXTURE), AE_OK);
    assert_int_equal(ae_model_layer_count(got), ae_model_layer_count(want));
    for (size_t i = 0; i < ae_model_layer_count(want); i++) {
        const ae_layer *a = ae_model_layer(want, i), *c = ae_model_layer(got, i);
        assert_int_equal(ae_layer_kind_of(a), ae_layer_kind_of(c));
        assert_int_equal(ae_layer_output_size(a), ae_layer_output_size(c));
        assert_int_equal(ae_layer_stride(c), 1);
        if (ae_layer_param_count(a)) {
            const float *va, *vc;
            size_t na, nc;
            assert_int_equal(ae_layer_param(&va, &na, a, AE_PARAM_KERNEL), AE_OK);
            assert_int_equal(ae_layer_param(&vc, &nc, c, AE_PARAM_KERNEL), AE_OK);
            assert_int_equal(na, nc);
            assert_memory_equal(va, vc, na * sizeof *va);
        }
    }
    for (int i = 0; i < 36; i++) x[i] = (float)((i * 7) % 11) / 10.0f;
    assert_int_equal(ae_model_predict(want, x, 1, ya, 25), AE_OK);
    assert_int_equal(ae_model_predict(got, x, 1, yb, 25), AE_OK);
    assert_memory_equal(ya, yb, sizeof ya);
    {
        const char *path = ae_test_path("%s", "resaved.aem");
        assert_int_equal(ae_model_save(got, path), AE_OK);
        assert_int_equal(ae_model_load(&again, path), AE_OK);
        assert_int_equal(ae_model_predict(again, x, 1, yb, 25), AE_OK);
        assert_memory_equal(ya, yb, sizeof ya);
        for (size_t cut = 0; cut < b.n; cut += 37) {
            ae_model *t = (ae_model *)1;
            ae_test_write_file(path, b.p, cut);
            assert_int_equal(ae_model_load(&t, path), AE_ERR_FORMAT);
            assert_null(t);
        }
    }
    free(b.p);
    ae_model_free(want);
    ae_model_free(got);
    ae_model_free(again);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-fixtures") == 0) return write_fixtures(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_version1_file_loads, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_reference_models, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_other_layer_kinds, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(test_version2_layer_kinds, ae_test_alloc_teardown),
    };
    return cmocka_run_group_tests(tests, ae_test_group_setup, ae_test_group_teardown);
}
