/*
 * autoenc: models from --model: a preset name, or a spec of layers such as
 *
 *     input 28x28x1; conv 16 3 same relu; pool same; code; up; conv 1 3 same sigmoid
 *
 * (docs/autoenc.1, MODEL SPECS, has the grammar). Each statement becomes a
 * builder call as it is read, so an impossible layer is reported at its own
 * statement with the builder's reason.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_WORDS 8
#define MAX_DIM ((size_t)1 << 24)
#define MAX_SPEC_BYTES ((size_t)1 << 20)

typedef struct token {
    const char *s;
    size_t len;
} token;

typedef struct spec_ctx {
    const char *text;   /* the whole spec */
    const char *origin; /* file name for @FILE specs, NULL for --model text */
    ae_builder *b;
    int have_input, have_code;
    size_t layers;
    token last_layer;   /* first word of the last statement that added a layer */
} spec_ctx;

/* "autoenc: model spec, column 17: <message>", then the line and a caret
 * under the token. */
static int spec_error(const spec_ctx *c, token t, const char *fmt, ...) CLI_PRINTF(3, 4);
static int spec_error(const spec_ctx *c, token t, const char *fmt, ...)
{
    const char *line = t.s, *end;
    size_t line_no = 1, col;
    va_list ap;
    while (line > c->text && line[-1] != '\n') line--;
    for (const char *p = c->text; p < line; p++) line_no += *p == '\n';
    col = (size_t)(t.s - line) + 1;
    end = strchr(line, '\n');
    if (!end) end = line + strlen(line);
    fflush(stdout);
    if (c->origin) fprintf(stderr, "autoenc: %s:%zu:%zu: ", c->origin, line_no, col);
    else fprintf(stderr, "autoenc: model spec, column %zu: ", col);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  %.*s\n  ", (int)(end - line), line);
    for (size_t i = 1; i < col; i++) fputc(line[i - 1] == '\t' ? '\t' : ' ', stderr);
    fputc('^', stderr);
    for (size_t i = 1; i < t.len; i++) fputc('~', stderr);
    fputc('\n', stderr);
    return CLI_EXIT_USAGE;
}

static int is_word(token t, const char *w) { return strlen(w) == t.len && !strncmp(t.s, w, t.len); }

static int parse_size(token t, size_t *out)
{
    size_t v = 0;
    if (!t.len) return 0;
    for (size_t i = 0; i < t.len; i++) {
        if (t.s[i] < '0' || t.s[i] > '9') return 0;
        v = v * 10 + (size_t)(t.s[i] - '0');
        if (v > MAX_DIM) return 0;
    }
    *out = v;
    return v > 0;
}

/* "784", "28x28" (one channel) or "28x28x1" */
static int parse_shape(token t, int *rank, size_t dims[3])
{
    size_t start = 0;
    int n = 0;
    for (size_t i = 0; i <= t.len; i++) {
        if (i < t.len && t.s[i] != 'x') continue;
        if (n == 3) return 0;
        {
            token part = {t.s + start, i - start};
            if (!parse_size(part, &dims[n++])) return 0;
        }
        start = i + 1;
    }
    if (n == 2) dims[n++] = 1;
    if (n != 1 && n != 3) return 0;
    *rank = n;
    return 1;
}

#define ACT_WORDS "linear, relu, sigmoid, tanh, softplus, leaky_relu[=ALPHA], elu[=ALPHA]"

/* A finite real number, the whole token. */
static int parse_real(token t, double *out)
{
    char buf[64], *end;
    double v;
    if (!t.len || t.len >= sizeof buf) return 0;
    memcpy(buf, t.s, t.len);
    buf[t.len] = '\0';
    errno = 0;
    v = strtod(buf, &end);
    if (*end || errno || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* An activation word; leaky_relu and elu may carry "=ALPHA" (*alpha, else
 * NaN: the builder's default). */
static int parse_act(token t, ae_activation *a, double *alpha)
{
    static const struct { const char *name; ae_activation act; int has_alpha; } acts[] = {
        {"linear", AE_ACT_LINEAR, 0},   {"relu", AE_ACT_RELU, 0},
        {"sigmoid", AE_ACT_SIGMOID, 0}, {"tanh", AE_ACT_TANH, 0},
        {"softplus", AE_ACT_SOFTPLUS, 0}, {"leaky_relu", AE_ACT_LEAKY_RELU, 1},
        {"elu", AE_ACT_ELU, 1},
    };
    *alpha = NAN;
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        size_t len = strlen(acts[i].name);
        if (t.len < len || strncmp(t.s, acts[i].name, len) != 0) continue;
        if (t.len == len) {
            *a = acts[i].act;
            return 1;
        }
        if (acts[i].has_alpha && t.s[len] == '=') {
            token v = {t.s + len + 1, t.len - len - 1};
            if (!parse_real(v, alpha)) return 0;
            *a = acts[i].act;
            return 1;
        }
    }
    return 0;
}

/* "stride=N" */
static int parse_stride(token t, size_t *stride)
{
    token v = {t.s + 7, t.len - 7};
    return t.len > 7 && !strncmp(t.s, "stride=", 7) && parse_size(v, stride);
}

static int parse_pad(token t, ae_padding *p)
{
    if (is_word(t, "same")) *p = AE_PAD_SAME;
    else if (is_word(t, "valid")) *p = AE_PAD_VALID;
    else return 0;
    return 1;
}

static int builder_error(const spec_ctx *c, token t, ae_status st)
{
    const char *why = c->b ? ae_builder_errmsg(c->b) : "", *colon;
    if (!why || !*why) why = ae_last_error();
    if (st == AE_ERR_NOMEM) return cli_nomem("model");
    /* the caret names the statement: the library's "<function>: " prefix adds nothing */
    if (why && strncmp(why, "ae_", 3) == 0 && (colon = strstr(why, ": ")) != NULL) why = colon + 2;
    return spec_error(c, t, "%.*s: %s", (int)t.len, t.s, why && *why ? why : ae_status_string(st));
}

/* Optional words after a layer's numbers, in any order, each at most once:
 * a stride (stride=N, when stride is not NULL), a padding (when pad is not
 * NULL) and an activation (when act is not NULL; *alpha as parse_act). */
static int layer_options(const spec_ctx *c, const token *w, int n, int first, size_t *stride,
                         ae_padding *pad, ae_activation *act, double *alpha)
{
    int seen_stride = 0, seen_pad = 0, seen_act = 0;
    char expected[160] = "";
    if (stride) strcat(expected, "a stride (stride=N)");
    if (pad) strcat(expected, *expected ? ", a padding (same, valid)" : "a padding (same, valid)");
    if (act) strcat(expected, *expected ? " or an activation (" ACT_WORDS ")"
                                        : "an activation (" ACT_WORDS ")");
    for (int i = first; i < n; i++) {
        if (stride && !seen_stride && parse_stride(w[i], stride)) seen_stride = 1;
        else if (pad && !seen_pad && parse_pad(w[i], pad)) seen_pad = 1;
        else if (act && !seen_act && parse_act(w[i], act, alpha)) seen_act = 1;
        else
            return spec_error(c, w[i], "'%.*s' is not %s, or is given twice", (int)w[i].len,
                              w[i].s, expected);
    }
    return CLI_EXIT_OK;
}

static int need_args(const spec_ctx *c, const token *w, int n, int min, int max, const char *usage)
{
    if (n - 1 < min) {
        token at = {w[n - 1].s + w[n - 1].len, 1};
        return spec_error(c, at, "%.*s needs more: %s", (int)w[0].len, w[0].s, usage);
    }
    if (n - 1 > max)
        return spec_error(c, w[max + 1], "'%.*s' is one word too many: %s", (int)w[max + 1].len,
                          w[max + 1].s, usage);
    return CLI_EXIT_OK;
}

/* One statement of n words. */
static int statement(spec_ctx *c, const token *w, int n)
{
    ae_status st = AE_OK;
    int rc;
    size_t a, k, dims[3], stride = 1;
    int rank;
    ae_activation act = AE_ACT_LINEAR;
    ae_padding pad = AE_PAD_VALID;
    double alpha = NAN, r1, r2;

    if (is_word(w[0], "input")) {
        if (c->have_input) return spec_error(c, w[0], "a second 'input': the spec has one, first");
        if ((rc = need_args(c, w, n, 1, 1, "input SHAPE (784, 28x28 or 28x28x1)"))) return rc;
        if (!parse_shape(w[1], &rank, dims))
            return spec_error(c, w[1], "'%.*s' is not a shape (784, 28x28 or 28x28x1)",
                              (int)w[1].len, w[1].s);
        if ((st = ae_builder_create(&c->b, rank, dims)) != AE_OK) return builder_error(c, w[1], st);
        c->have_input = 1;
        return CLI_EXIT_OK;
    }
    if (!c->have_input)
        return spec_error(c, w[0], "the spec starts with 'input SHAPE' (e.g. input 28x28x1), "
                          "not '%.*s'", (int)w[0].len, w[0].s);
    if (is_word(w[0], "code")) {
        if ((rc = need_args(c, w, n, 0, 0, "code (marks the layer before it)"))) return rc;
        if (c->have_code) return spec_error(c, w[0], "a second 'code': a model has one bottleneck");
        if (!c->layers) return spec_error(c, w[0], "'code' marks the layer before it, and there is none");
        if ((st = ae_builder_mark_code(c->b)) != AE_OK) return builder_error(c, w[0], st);
        c->have_code = 1;
        return CLI_EXIT_OK;
    }
    if (is_word(w[0], "dense")) {
        if ((rc = need_args(c, w, n, 1, 2, "dense UNITS [ACTIVATION]"))) return rc;
        if (!parse_size(w[1], &a))
            return spec_error(c, w[1], "'%.*s' is not a number of units (1 to %zu)",
                              (int)w[1].len, w[1].s, MAX_DIM);
        if ((rc = layer_options(c, w, n, 2, NULL, NULL, &act, &alpha))) return rc;
        st = ae_builder_dense(c->b, a, act);
    } else if (is_word(w[0], "conv") || is_word(w[0], "conv2d") || is_word(w[0], "convt") ||
               is_word(w[0], "conv2d_transpose")) {
        int transposed = is_word(w[0], "convt") || is_word(w[0], "conv2d_transpose");
        if ((rc = need_args(c, w, n, 2, 5, transposed ? "convt FILTERS KERNEL [stride=N] "
                                                        "[same|valid] [ACTIVATION]"
                                                      : "conv FILTERS KERNEL [stride=N] "
                                                        "[same|valid] [ACTIVATION]")))
            return rc;
        if (!parse_size(w[1], &a))
            return spec_error(c, w[1], "'%.*s' is not a number of filters", (int)w[1].len, w[1].s);
        if (!parse_size(w[2], &k))
            return spec_error(c, w[2], "'%.*s' is not a kernel size", (int)w[2].len, w[2].s);
        if ((rc = layer_options(c, w, n, 3, &stride, &pad, &act, &alpha))) return rc;
        st = transposed ? ae_builder_conv2d_transpose(c->b, a, k, stride, pad, act)
                        : ae_builder_conv2d_ex(c->b, a, k, stride, pad, act);
    } else if (is_word(w[0], "pool") || is_word(w[0], "maxpool") ||
               is_word(w[0], "max_pooling2d")) {
        if ((rc = need_args(c, w, n, 0, 1, "pool [same|valid]"))) return rc;
        if ((rc = layer_options(c, w, n, 1, NULL, &pad, NULL, NULL))) return rc;
        st = ae_builder_maxpool2d(c->b, pad);
    } else if (is_word(w[0], "up") || is_word(w[0], "upsample") ||
               is_word(w[0], "up_sampling2d")) {
        if ((rc = need_args(c, w, n, 0, 0, "up"))) return rc;
        st = ae_builder_upsample2d(c->b);
    } else if (is_word(w[0], "act") || is_word(w[0], "activation")) {
        if ((rc = need_args(c, w, n, 1, 1, "act ACTIVATION"))) return rc;
        if (!parse_act(w[1], &act, &alpha))
            return spec_error(c, w[1], "'%.*s' is not an activation (" ACT_WORDS ")",
                              (int)w[1].len, w[1].s);
        st = ae_builder_activation(c->b, act);
    } else if (is_word(w[0], "bn") || is_word(w[0], "batchnorm") ||
               is_word(w[0], "batch_normalization")) {
        if ((rc = need_args(c, w, n, 0, 2, "bn [MOMENTUM [EPSILON]] (defaults 0.99 1e-3)")))
            return rc;
        r1 = 0.99;
        r2 = 1e-3;
        if (n > 1 && !parse_real(w[1], &r1))
            return spec_error(c, w[1], "'%.*s' is not a momentum (0 to 1)", (int)w[1].len, w[1].s);
        if (n > 2 && !parse_real(w[2], &r2))
            return spec_error(c, w[2], "'%.*s' is not an epsilon", (int)w[2].len, w[2].s);
        st = ae_builder_batchnorm(c->b, r1, r2);
    } else if (is_word(w[0], "dropout")) {
        if ((rc = need_args(c, w, n, 1, 1, "dropout RATE"))) return rc;
        if (!parse_real(w[1], &r1))
            return spec_error(c, w[1], "'%.*s' is not a rate (0 to 1)", (int)w[1].len, w[1].s);
        st = ae_builder_dropout(c->b, r1);
    } else if (is_word(w[0], "noise") || is_word(w[0], "gaussian_noise")) {
        if ((rc = need_args(c, w, n, 1, 2, "noise STDDEV [clip]"))) return rc;
        if (!parse_real(w[1], &r1))
            return spec_error(c, w[1], "'%.*s' is not a standard deviation", (int)w[1].len,
                              w[1].s);
        if (n > 2 && !is_word(w[2], "clip"))
            return spec_error(c, w[2], "'%.*s': only 'clip' (to [0, 1]) may follow the standard "
                              "deviation", (int)w[2].len, w[2].s);
        st = ae_builder_gaussian_noise(c->b, r1, n > 2);
    } else if (is_word(w[0], "mask") || is_word(w[0], "masking_noise")) {
        if ((rc = need_args(c, w, n, 1, 1, "mask PROBABILITY"))) return rc;
        if (!parse_real(w[1], &r1))
            return spec_error(c, w[1], "'%.*s' is not a probability (0 to 1)", (int)w[1].len,
                              w[1].s);
        st = ae_builder_masking_noise(c->b, r1);
    } else if (is_word(w[0], "activity") || is_word(w[0], "activity_regularization")) {
        if ((rc = need_args(c, w, n, 1, 2, "activity L1 [L2] (penalties per code value)")))
            return rc;
        r2 = 0;
        if (!parse_real(w[1], &r1))
            return spec_error(c, w[1], "'%.*s' is not an L1 weight (0 or more)", (int)w[1].len,
                              w[1].s);
        if (n > 2 && !parse_real(w[2], &r2))
            return spec_error(c, w[2], "'%.*s' is not an L2 weight (0 or more)", (int)w[2].len,
                              w[2].s);
        st = ae_builder_activity_regularization(c->b, r1, r2);
    } else if (is_word(w[0], "sampling")) {
        if ((rc = need_args(c, w, n, 1, 1, "sampling KL_WEIGHT (after a dense layer of 2z "
                            "units: z means, z log-variances)")))
            return rc;
        if (!parse_real(w[1], &r1))
            return spec_error(c, w[1], "'%.*s' is not a KL weight (0 or more)", (int)w[1].len,
                              w[1].s);
        st = ae_builder_sampling(c->b, r1);
    } else if (is_word(w[0], "flatten")) {
        if ((rc = need_args(c, w, n, 0, 0, "flatten"))) return rc;
        st = ae_builder_flatten(c->b);
    } else if (is_word(w[0], "reshape")) {
        if ((rc = need_args(c, w, n, 1, 1, "reshape SHAPE (784 or 28x28x1)"))) return rc;
        if (!parse_shape(w[1], &rank, dims))
            return spec_error(c, w[1], "'%.*s' is not a shape (784, 28x28 or 28x28x1)",
                              (int)w[1].len, w[1].s);
        st = ae_builder_reshape(c->b, rank, dims);
    } else {
        return spec_error(c, w[0], "unknown layer '%.*s' (input, dense, conv, convt, pool, up, "
                          "act, bn, dropout, noise, mask, activity, sampling, flatten, reshape, code)", (int)w[0].len,
                          w[0].s);
    }
    if (st == AE_OK && !isnan(alpha)) st = ae_builder_activation_param(c->b, alpha);
    if (st != AE_OK) return builder_error(c, w[0], st);
    c->layers++;
    c->last_layer = w[0];
    return CLI_EXIT_OK;
}

static int parse_spec(ae_model **out, spec_ctx *c, uint64_t seed)
{
    const char *p = c->text;
    token words[MAX_WORDS + 1];
    int n = 0, rc = CLI_EXIT_OK;
    ae_status st;
    for (;;) {
        /* a statement ends at ';', a newline, a comment or the end */
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (*p == '#')
            while (*p && *p != '\n') p++;
        if (!*p || *p == ';' || *p == '\n') {
            if (n && (rc = statement(c, words, n)) != CLI_EXIT_OK) return rc;
            n = 0;
            if (!*p) break;
            p++;
            continue;
        }
        {
            token t = {p, 0};
            while (p[t.len] && !strchr(" \t\r\n;#", p[t.len])) t.len++;
            if (n == MAX_WORDS)
                return spec_error(c, t, "'%.*s': too many words in one statement (a ';' missing?)",
                                  (int)t.len, t.s);
            words[n++] = t;
            p += t.len;
        }
    }
    if (!c->have_input) {
        token t = {c->text, 1};
        return spec_error(c, t, "an empty spec: it starts with 'input SHAPE' (e.g. input 28x28x1)");
    }
    if (!c->layers) {
        token t = {c->text + strlen(c->text), 1};
        return spec_error(c, t, "no layers after 'input'");
    }
    if (!c->have_code)
        return spec_error(c, c->last_layer, "no 'code': write 'code' after the bottleneck layer");
    if ((st = ae_builder_build(out, c->b, seed)) != AE_OK)
        return builder_error(c, c->last_layer, st);
    if (ae_model_output_size(*out) != ae_model_input_size(*out)) {
        size_t o = ae_model_output_size(*out), i = ae_model_input_size(*out);
        ae_model_free(*out);
        *out = NULL;
        return spec_error(c, c->last_layer, "the last layer gives %zu values per row but the "
                          "input has %zu: an autoencoder reproduces its input", o, i);
    }
    return CLI_EXIT_OK;
}

static int read_spec_file(const char *path, char **text)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    char *buf;
    *text = NULL;
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return CLI_EXIT_FILE;
    }
    buf = malloc(MAX_SPEC_BYTES + 1);
    if (!buf) {
        fclose(f);
        return cli_nomem(path);
    }
    n = fread(buf, 1, MAX_SPEC_BYTES + 1, f);
    if (ferror(f) || n > MAX_SPEC_BYTES || memchr(buf, '\0', n)) {
        cli_error("%s: %s", path, ferror(f) ? "cannot be read" :
                  n > MAX_SPEC_BYTES ? "too long for a model spec (1 MB at most)" :
                  "not a text file");
        fclose(f);
        free(buf);
        return CLI_EXIT_FILE;
    }
    fclose(f);
    buf[n] = '\0';
    *text = buf;
    return CLI_EXIT_OK;
}

int cli_model_from_arg(ae_model **out, const char *arg, uint64_t seed)
{
    ae_preset preset;
    spec_ctx c;
    char *file_text = NULL;
    int rc;
    *out = NULL;
    if (ae_preset_from_name(&preset, arg) == AE_OK) {
        ae_status st = ae_preset_build(out, preset, seed);
        return st == AE_OK ? CLI_EXIT_OK : cli_lib_error(st, "building preset %s", arg);
    }
    memset(&c, 0, sizeof c);
    if (arg[0] == '@') {
        if ((rc = read_spec_file(arg + 1, &file_text)) != CLI_EXIT_OK) return rc;
        c.text = file_text;
        c.origin = arg + 1;
    } else if (!strpbrk(arg, " ;\n")) {
        /* one word: a mistyped preset rather than a one-word spec */
        cli_error("--model '%s' is not a preset (simple, deep, conv), a spec of layers "
                  "(\"input 784; dense 32 relu; code; dense 784 sigmoid\") or @FILE", arg);
        return CLI_EXIT_USAGE;
    } else {
        c.text = arg;
    }
    rc = parse_spec(out, &c, seed);
    ae_builder_free(c.b);
    free(file_text);
    return rc;
}

/* ---- the spec of an existing model (autoenc info) ------------------------------
 * What the public accessors give: a batch norm's momentum and epsilon and a
 * Gaussian noise layer's clipping are not among them, so 'bn' and 'noise S'
 * show without them. */

const char *cli_shape_text(char *buf, size_t cap, int rank, const size_t *dims)
{
    if (rank == 3) snprintf(buf, cap, "%zux%zux%zu", dims[0], dims[1], dims[2]);
    else snprintf(buf, cap, "%zu", dims[0]);
    return buf;
}

const char *cli_activation_name(ae_activation a)
{
    switch (a) {
    case AE_ACT_RELU: return "relu";
    case AE_ACT_SIGMOID: return "sigmoid";
    case AE_ACT_TANH: return "tanh";
    case AE_ACT_LEAKY_RELU: return "leaky_relu";
    case AE_ACT_ELU: return "elu";
    case AE_ACT_SOFTPLUS: return "softplus";
    default: return "linear";
    }
}

/* The shortest decimal text that reads back as v (0.3, not
 * 0.29999999999999999), or as the float v when the model keeps a float
 * (activation alphas): specs that info prints rebuild the same model. */
static const char *real_text_of(char out[32], double v, int as_float)
{
    for (int digits = 6; digits < 17; digits++) {
        double back;
        snprintf(out, 32, "%.*g", digits, v);
        back = strtod(out, NULL);
        if (as_float ? (float)back == (float)v : back == v) return out;
    }
    snprintf(out, 32, "%.17g", v);
    return out;
}

static const char *real_text(char out[32], double v) { return real_text_of(out, v, 0); }

/* The activation as a spec word: leaky_relu=0.2 when alpha is not the default */
static const char *act_word(char *buf, size_t cap, const ae_layer *L)
{
    ae_activation a = ae_layer_activation(L);
    double alpha = ae_layer_activation_param(L);
    char r[32];
    if ((a == AE_ACT_LEAKY_RELU && alpha != 0.3) || (a == AE_ACT_ELU && alpha != 1.0))
        snprintf(buf, cap, "%s=%s", cli_activation_name(a), real_text_of(r, alpha, 1));
    else
        snprintf(buf, cap, "%s", cli_activation_name(a));
    return buf;
}

static void append(char *buf, size_t cap, const char *fmt, ...) CLI_PRINTF(3, 4);
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    if (len + 1 >= cap) return;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

void cli_spec_of_model(char *buf, size_t cap, const ae_model *m)
{
    size_t in[3] = {0, 0, 0}, code = (size_t)-1;
    int rank = ae_model_input_rank(m);
    char shape[64];
    if (!cap) return;
    buf[0] = '\0';
    for (int i = 0; i < rank; i++) in[i] = ae_model_input_dim(m, i);
    if (ae_model_code_layer(&code, m) != AE_OK) code = (size_t)-1;
    append(buf, cap, "input %s", cli_shape_text(shape, sizeof shape, rank, in));
    for (size_t i = 0; i < ae_model_layer_count(m); i++) {
        const ae_layer *L = ae_model_layer(m, i);
        size_t out[3], stride = ae_layer_stride(L);
        char act[48], stride_word[32] = "", r[32], r2[32];
        int out_rank = ae_layer_output_rank(L);
        for (int a = 0; a < 3; a++) out[a] = ae_layer_output_dim(L, a);
        if (stride > 1) snprintf(stride_word, sizeof stride_word, " stride=%zu", stride);
        switch (ae_layer_kind_of(L)) {
        case AE_LAYER_DENSE:
            append(buf, cap, "; dense %zu %s", out[0], act_word(act, sizeof act, L));
            break;
        case AE_LAYER_CONV2D:
        case AE_LAYER_CONV2D_TRANSPOSE: {
            /* kernel side from the weight count: k * k * in_channels * filters */
            const float *w;
            size_t count = 0, k;
            int transposed = ae_layer_kind_of(L) == AE_LAYER_CONV2D_TRANSPOSE;
            ae_layer_param(&w, &count, L, AE_PARAM_KERNEL);
            k = (size_t)llround(sqrt((double)count / (double)(in[2] * out[2])));
            /* SAME gives ceil(in / stride) (conv) or in * stride (transposed) */
            append(buf, cap, "; %s %zu %zu%s %s %s", transposed ? "convt" : "conv", out[2], k,
                   stride_word,
                   out[0] == (transposed ? in[0] * stride : (in[0] + stride - 1) / stride)
                       ? "same" : "valid",
                   act_word(act, sizeof act, L));
            break;
        }
        case AE_LAYER_BATCHNORM: {
            double momentum = 0.99, epsilon = 1e-3;
            ae_layer_batchnorm(&momentum, &epsilon, L);
            if (momentum == 0.99 && epsilon == 1e-3) append(buf, cap, "; bn");
            else append(buf, cap, "; bn %s %s", real_text(r, momentum), real_text(r2, epsilon));
            break;
        }
        case AE_LAYER_DROPOUT:
            append(buf, cap, "; dropout %s", real_text(r, ae_layer_noise_param(L)));
            break;
        case AE_LAYER_GAUSSIAN_NOISE:
            append(buf, cap, "; noise %s%s", real_text(r, ae_layer_noise_param(L)),
                   ae_layer_noise_clipped(L) ? " clip" : "");
            break;
        case AE_LAYER_MASKING_NOISE:
            append(buf, cap, "; mask %s", real_text(r, ae_layer_noise_param(L)));
            break;
        case AE_LAYER_ACTIVITY_REGULARIZATION: {
            double l1 = 0, l2 = 0;
            ae_layer_activity_regularization(&l1, &l2, L);
            append(buf, cap, "; activity %s %s", real_text(r, l1), real_text(r2, l2));
            break;
        }
        case AE_LAYER_SAMPLING: {
            double kl_weight = 0;
            ae_layer_sampling(&kl_weight, L);
            append(buf, cap, "; sampling %s", real_text(r, kl_weight));
            break;
        }
        case AE_LAYER_MAXPOOL2D:
            append(buf, cap, "; pool %s", out[0] == (in[0] + 1) / 2 ? "same" : "valid");
            break;
        case AE_LAYER_UPSAMPLE2D: append(buf, cap, "; up"); break;
        case AE_LAYER_ACTIVATION:
            append(buf, cap, "; act %s", act_word(act, sizeof act, L));
            break;
        case AE_LAYER_FLATTEN: append(buf, cap, "; flatten"); break;
        case AE_LAYER_RESHAPE:
            append(buf, cap, "; reshape %s", cli_shape_text(shape, sizeof shape, out_rank, out));
            break;
        default: append(buf, cap, "; ?"); break;
        }
        if (i == code) append(buf, cap, "; code");
        memcpy(in, out, sizeof in);
    }
}
