/* numpy .npy files: a strict reader (uint8 / float32, C order) and an atomic
 * float32 writer. Format reference:
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 *
 *   bytes 0-5   "\x93NUMPY"
 *   bytes 6-7   major, minor version (1.0, 2.0 or 3.0)
 *   then        header length: u16 LE (1.0) or u32 LE (2.0, 3.0)
 *   then        the header: a Python dict literal with exactly the keys
 *               'descr', 'fortran_order' and 'shape', padded with spaces and
 *               terminated by '\n' (3.0 only allows UTF-8 in it; we accept
 *               ASCII only anyway)
 *   then        the data, product(shape) elements, nothing after it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "internal.h"
#include "source_impl.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER 65536u /* numpy's own reader refuses more than 10000 */
#define NPY_CHUNK 16384       /* bytes read per fread when converting */

typedef struct npy_hdr {
    int dtype;                         /* AE_NPY_U8 / AE_NPY_F32 */
    int rank;
    size_t dims[AE_TENSOR_MAX_RANK];
    size_t esize;                      /* bytes per element */
    size_t rows;                       /* dims[0] */
    size_t row_elems;                  /* product of dims[1..] (1 for rank 1) */
    size_t row_bytes;
    uint64_t data_offset;
} npy_hdr;

/* ---- header dict parser --------------------------------------------------- */
typedef struct parser {
    const char *s;
    size_t n, pos;
    const char *path; /* for messages */
} parser;

static ae_status perr(const parser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static ae_status perr(const parser *p, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ae__file_fail(NULL, p->path, AE_ERR_FORMAT, "%s", buf);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')) p->pos++;
}

static int peek(parser *p) { return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1; }

/* A quoted Python string without escapes ('abc' or "abc") into out. */
static ae_status parse_string(parser *p, char *out, size_t cap, const char *what)
{
    int q = peek(p);
    size_t len = 0;
    if (q != '\'' && q != '"')
        return perr(p, "malformed header: expected a quoted %s at byte %zu", what, p->pos);
    p->pos++;
    for (;;) {
        int c = peek(p);
        if (c < 0 || c == '\n')
            return perr(p, "malformed header: unterminated string at byte %zu", p->pos);
        p->pos++;
        if (c == q) break;
        if (c == '\\' || c < 0x20 || c > 0x7e)
            return perr(p, "malformed header: unexpected character in a string at byte %zu",
                        p->pos - 1);
        if (len + 1 >= cap)
            return perr(p, "malformed header: %s too long at byte %zu", what, p->pos - 1);
        out[len++] = (char)c;
    }
    out[len] = '\0';
    return AE_OK;
}

static int match_word(parser *p, const char *w)
{
    size_t n = strlen(w);
    int next;
    if (p->n - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) return 0;
    next = p->pos + n < p->n ? (unsigned char)p->s[p->pos + n] : -1;
    if ((next >= 'A' && next <= 'Z') || (next >= 'a' && next <= 'z') ||
        (next >= '0' && next <= '9') || next == '_')
        return 0;
    p->pos += n;
    return 1;
}

static ae_status parse_uint(parser *p, size_t *v)
{
    size_t x = 0, start = p->pos;
    int c = peek(p);
    if (c < '0' || c > '9')
        return perr(p, "malformed header: expected a dimension at byte %zu", p->pos);
    if (c == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return perr(p, "malformed header: leading zero in a dimension at byte %zu", p->pos);
    while ((c = peek(p)) >= '0' && c <= '9') {
        if (x > (SIZE_MAX - (size_t)(c - '0')) / 10)
            return perr(p, "shape dimension at byte %zu is too large", start);
        x = x * 10 + (size_t)(c - '0');
        p->pos++;
    }
    if (peek(p) == 'L') p->pos++; /* written by Python 2's numpy: (10L, 784L) */
    *v = x;
    return AE_OK;
}

/* '(' [int (',' int)* [',']] ')' ; a one-element tuple needs its comma. */
static ae_status parse_shape(parser *p, int *rank, size_t *dims)
{
    int n = 0, comma_after_last = 0;
    ae_status st;
    if (peek(p) != '(')
        return perr(p, "malformed header: 'shape' must be a tuple (byte %zu)", p->pos);
    p->pos++;
    skip_ws(p);
    while (peek(p) != ')') {
        size_t v = 0;
        if ((st = parse_uint(p, &v)) != AE_OK) return st;
        if (n == AE_TENSOR_MAX_RANK)
            return perr(p, "arrays of more than %d dimensions are not supported",
                        AE_TENSOR_MAX_RANK);
        dims[n++] = v;
        skip_ws(p);
        comma_after_last = 0;
        if (peek(p) == ',') {
            p->pos++;
            comma_after_last = 1;
            skip_ws(p);
        } else if (peek(p) != ')') {
            return perr(p, "malformed header: expected ',' or ')' in 'shape' at byte %zu",
                        p->pos);
        }
    }
    p->pos++;
    if (n == 1 && !comma_after_last)
        return perr(p, "malformed header: 'shape' is not a tuple (a 1-tuple needs a comma)");
    *rank = n;
    return AE_OK;
}

static ae_status parse_header(parser *p, char *descr, size_t descr_cap, int *fortran,
                              int *rank, size_t *dims)
{
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    ae_status st;
    /* the header must end in '\n', with only spaces between the dict and it */
    if (p->n == 0 || p->s[p->n - 1] != '\n')
        return perr(p, "malformed header: it does not end with a newline");
    p->n--;
    for (size_t i = 0; i < p->n; i++)
        if (p->s[i] == '\n' || p->s[i] == '\0')
            return perr(p, "malformed header: unexpected %s at byte %zu",
                        p->s[i] ? "newline" : "NUL byte", i);
    skip_ws(p);
    if (peek(p) != '{') return perr(p, "malformed header: it is not a dict literal");
    p->pos++;
    skip_ws(p);
    while (peek(p) != '}') {
        char key[32];
        if ((st = parse_string(p, key, sizeof key, "key")) != AE_OK) return st;
        skip_ws(p);
        if (peek(p) != ':')
            return perr(p, "malformed header: expected ':' after '%s' at byte %zu", key, p->pos);
        p->pos++;
        skip_ws(p);
        if (strcmp(key, "descr") == 0) {
            if (have_descr++) return perr(p, "malformed header: duplicate key 'descr'");
            if (peek(p) == '[')
                return perr(p, "structured dtypes (a 'descr' list) are not supported");
            if ((st = parse_string(p, descr, descr_cap, "'descr'")) != AE_OK) return st;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_fortran++) return perr(p, "malformed header: duplicate key 'fortran_order'");
            if (match_word(p, "True")) *fortran = 1;
            else if (match_word(p, "False")) *fortran = 0;
            else
                return perr(p, "malformed header: 'fortran_order' must be True or False "
                               "(byte %zu)", p->pos);
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++) return perr(p, "malformed header: duplicate key 'shape'");
            if ((st = parse_shape(p, rank, dims)) != AE_OK) return st;
        } else {
            return perr(p, "malformed header: unexpected key '%s'", key);
        }
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
            skip_ws(p);
        } else if (peek(p) != '}') {
            return perr(p, "malformed header: expected ',' or '}' at byte %zu", p->pos);
        }
    }
    p->pos++;
    while (p->pos < p->n && p->s[p->pos] == ' ') p->pos++;
    if (p->pos != p->n)
        return perr(p, "malformed header: unexpected text after the dict at byte %zu", p->pos);
    if (!have_descr) return perr(p, "malformed header: no 'descr' key");
    if (!have_fortran) return perr(p, "malformed header: no 'fortran_order' key");
    if (!have_shape) return perr(p, "malformed header: no 'shape' key");
    return AE_OK;
}

/* ---- opening a file --------------------------------------------------------- */
static ae_status read_exact(FILE *f, void *buf, size_t n, const char *path, const char *what)
{
    if (fread(buf, 1, n, f) != n) {
        if (ferror(f))
            return ae__file_fail(NULL, path, AE_ERR_IO, "read error: %s", strerror(errno));
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated %s", what);
    }
    return AE_OK;
}

/* Opens path, parses and validates the header against the file length and
 * leaves the stream positioned at the first data byte. */
static ae_status npy_open(const char *path, FILE **fp, npy_hdr *h)
{
    unsigned char pre[12];
    char *hdr = NULL, descr[32];
    size_t prefix, hlen = 0, total = 1, data_bytes;
    uint64_t file_len;
    void *vf;
    int major, fortran = 0;
    FILE *f;
    ae_status st;
    parser p;

    *fp = NULL;
    memset(h, 0, sizeof *h);
    if ((st = ae__file_open(path, &vf, &file_len, NULL)) != AE_OK) return st;
    f = vf;
    if (file_len < 10) {
        fclose(f);
        return ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated: %llu bytes is too short for a "
                             ".npy file", (unsigned long long)file_len);
    }
    if ((st = read_exact(f, pre, 8, path, "preamble")) != AE_OK) goto fail;
    if (memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "not a .npy file (bad magic)");
        goto fail;
    }
    major = pre[6];
    if ((major != 1 && major != 2 && major != 3) || pre[7] != 0) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "unsupported .npy format version %d.%d",
                           pre[6], pre[7]);
        goto fail;
    }
    if (major == 1) {
        if ((st = read_exact(f, pre + 8, 2, path, "header length")) != AE_OK) goto fail;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        prefix = 10;
    } else {
        if ((st = read_exact(f, pre + 8, 4, path, "header length")) != AE_OK) goto fail;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
               (size_t)pre[11] << 24;
        prefix = 12;
    }
    if (hlen == 0 || hlen > NPY_MAX_HEADER) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "header length %zu is %s", hlen,
                           hlen ? "larger than the 65536 bytes allowed" : "zero");
        goto fail;
    }
    if ((uint64_t)file_len < (uint64_t)prefix + hlen) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "truncated header (%zu bytes announced, %llu "
                           "in the file)", hlen, (unsigned long long)(file_len - prefix));
        goto fail;
    }
    hdr = ae__malloc(hlen);
    if (!hdr) {
        st = ae__file_fail(NULL, path, AE_ERR_NOMEM, "out of memory for the header");
        goto fail;
    }
    if ((st = read_exact(f, hdr, hlen, path, "header")) != AE_OK) goto fail;

    p.s = hdr;
    p.n = hlen;
    p.pos = 0;
    p.path = path;
    if ((st = parse_header(&p, descr, sizeof descr, &fortran, &h->rank, h->dims)) != AE_OK)
        goto fail;

    if (strcmp(descr, "|u1") == 0 || strcmp(descr, "<u1") == 0) {
        h->dtype = AE_NPY_U8;
        h->esize = 1;
    } else if (strcmp(descr, "<f4") == 0) {
        h->dtype = AE_NPY_F32;
        h->esize = 4;
    } else {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "dtype '%s' is not supported (%s)", descr,
                           descr[0] == '>' ? "big-endian data; only little-endian '<f4' float32 "
                                             "and '|u1' uint8 are read"
                                           : "only uint8 '|u1' and float32 '<f4' are read");
        goto fail;
    }
    if (fortran) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "fortran_order arrays are not supported");
        goto fail;
    }
    if (h->rank == 0) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "0-d (scalar) arrays are not supported");
        goto fail;
    }
    for (int i = 0; i < h->rank; i++) {
        if (h->dims[i] == 0) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "empty arrays (dimension %d is 0) are "
                               "not supported", i);
            goto fail;
        }
        if (ae__mul_size(total, h->dims[i], &total) != 0) {
            st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "shape is too large (element count "
                               "overflows)");
            goto fail;
        }
    }
    if (ae__mul_size(total, h->esize, &data_bytes) != 0 || total > SIZE_MAX / sizeof(float)) {
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "shape is too large (byte count overflows)");
        goto fail;
    }
    h->data_offset = (uint64_t)prefix + hlen;
    if ((uint64_t)file_len - h->data_offset != (uint64_t)data_bytes) {
        uint64_t have = (uint64_t)file_len - h->data_offset;
        st = ae__file_fail(NULL, path, AE_ERR_FORMAT, "%s: the shape needs %zu data bytes, the file "
                           "has %llu",
                           have < data_bytes ? "truncated data" : "shape/length mismatch",
                           data_bytes, (unsigned long long)have);
        goto fail;
    }
    h->rows = h->dims[0];
    h->row_elems = h->rows ? total / h->rows : 0;
    h->row_bytes = h->row_elems * h->esize;
    ae__free(hdr, hlen);
    *fp = f;
    return AE_OK;
fail:
    ae__free(hdr, hlen);
    fclose(f);
    return st;
}

/* Reads n_rows rows starting at first_row of an opened file into dst. */
static ae_status npy_read(FILE *f, const npy_hdr *h, const char *path, size_t first_row,
                          size_t n_rows, float u8_scale, float *dst)
{
    size_t count = n_rows * h->row_elems; /* fits: bounded by the validated total */
    uint64_t off = h->data_offset + (uint64_t)first_row * h->row_bytes;
    if (fseeko(f, (off_t)off, SEEK_SET) != 0)
        return ae__file_fail(NULL, path, AE_ERR_IO, "seek failed: %s", strerror(errno));
    if (h->dtype == AE_NPY_F32) {
        /* little-endian host (fileio.c refuses to build elsewhere) */
        return read_exact(f, dst, count * sizeof(float), path, "data");
    }
    {
        unsigned char buf[NPY_CHUNK];
        size_t done = 0;
        while (done < count) {
            size_t n = count - done < NPY_CHUNK ? count - done : NPY_CHUNK;
            ae_status st = read_exact(f, buf, n, path, "data");
            if (st != AE_OK) return st;
            for (size_t i = 0; i < n; i++) dst[done + i] = (float)buf[i] * u8_scale;
            done += n;
        }
    }
    return AE_OK;
}

/* ---- public ------------------------------------------------------------------ */
ae_status ae_npy_info(ae_npy_dtype *dtype, int *rank, size_t *dims, const char *path)
{
    AE__ENTER();
    FILE *f;
    npy_hdr h;
    ae_status st = npy_open(path, &f, &h);
    if (st != AE_OK) return st;
    fclose(f);
    if (dtype) *dtype = h.dtype;
    if (rank) *rank = h.rank;
    if (dims)
        for (int i = 0; i < AE_TENSOR_MAX_RANK; i++) dims[i] = i < h.rank ? h.dims[i] : 0;
    return AE_OK;
}

static ae_status check_scale(float s)
{
    if (!isfinite(s))
        return ae__fail(NULL, AE_ERR_RANGE, "u8_scale must be finite");
    return AE_OK;
}

ae_status ae_npy_load_rows(ae_tensor **out, const char *path, size_t max_rows, float u8_scale)
{
    AE__ENTER();
    FILE *f;
    npy_hdr h;
    ae_tensor *t = NULL;
    size_t dims[AE_TENSOR_MAX_RANK], n;
    ae_status st;
    if (!out) return ae__fail(NULL, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if ((st = check_scale(u8_scale)) != AE_OK) return st;
    if ((st = npy_open(path, &f, &h)) != AE_OK) return st;
    n = (max_rows == 0 || max_rows > h.rows) ? h.rows : max_rows;
    memcpy(dims, h.dims, sizeof dims);
    dims[0] = n;
    if ((st = AE__NESTED(ae_tensor_create(&t, h.rank, dims))) != AE_OK) {
        fclose(f);
        return st == AE_ERR_NOMEM
                   ? ae__file_fail(NULL, path, st, "out of memory for %zu x %zu floats", n,
                                   h.row_elems)
                   : st;
    }
    st = npy_read(f, &h, path, 0, n, u8_scale, ae_tensor_data(t));
    fclose(f);
    if (st != AE_OK) {
        ae_tensor_free(t);
        return st;
    }
    *out = t;
    return AE_OK;
}

ae_status ae_npy_load(ae_tensor **out, const char *path, float u8_scale)
{
    AE__ENTER();
    return AE__NESTED(ae_npy_load_rows(out, path, 0, u8_scale));
}

ae_status ae_npy_read_rows(const char *path, size_t first_row, size_t n_rows, float u8_scale,
                           float *dst, size_t dst_len)
{
    AE__ENTER();
    FILE *f;
    npy_hdr h;
    ae_status st;
    if (!dst && n_rows)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "dst is NULL");
    if ((st = check_scale(u8_scale)) != AE_OK) return st;
    if ((st = npy_open(path, &f, &h)) != AE_OK) return st;
    if (first_row > h.rows || n_rows > h.rows - first_row) {
        fclose(f);
        return ae__file_fail(NULL, path, AE_ERR_RANGE, "rows %zu..%zu requested, the file has %zu",
                             first_row, first_row + n_rows, h.rows);
    }
    if (n_rows * h.row_elems > dst_len) {
        fclose(f);
        return ae__file_fail(NULL, path, AE_ERR_RANGE, "%zu rows of %zu values do not fit in %zu "
                             "floats", n_rows, h.row_elems, dst_len);
    }
    st = n_rows ? npy_read(f, &h, path, first_row, n_rows, u8_scale, dst) : AE_OK;
    fclose(f);
    return st;
}

ae_status ae_npy_save_f32(const char *path, const float *data, int rank, const size_t *dims)
{
    AE__ENTER();
    char hdr[256];
    size_t total = 1, len, pad, prefix;
    int pos;
    ae__writer w;
    ae_status st;
    unsigned char pre[12];

    if (!path || !data || !dims)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "NULL argument");
    if (rank < 1 || rank > AE_TENSOR_MAX_RANK)
        return ae__fail(NULL, AE_ERR_INVALID_ARG, "rank %d is not 1..%d", rank,
                        AE_TENSOR_MAX_RANK);
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0)
            return ae__fail(NULL, AE_ERR_INVALID_ARG, "dimension %d is 0", i);
        if (ae__mul_size(total, dims[i], &total) != 0 || total > SIZE_MAX / sizeof(float))
            return ae__fail(NULL, AE_ERR_RANGE, "shape too large");
    }
    /* at most 4 dims of 20 digits: always fits in hdr */
    len = 0;
    pos = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    if (pos < 0) return ae__fail(NULL, AE_ERR_INTERNAL, "npy header formatting failed");
    len = (size_t)pos;
    for (int i = 0; i < rank && len < sizeof hdr; i++) {
        pos = snprintf(hdr + len, sizeof hdr - len, "%zu%s", dims[i],
                       (i + 1 < rank) ? ", " : (rank == 1 ? "," : ""));
        if (pos < 0) return ae__fail(NULL, AE_ERR_INTERNAL, "npy header formatting failed");
        len += (size_t)pos;
    }
    if (len < sizeof hdr) {
        pos = snprintf(hdr + len, sizeof hdr - len, "), }");
        if (pos < 0) return ae__fail(NULL, AE_ERR_INTERNAL, "npy header formatting failed");
        len += (size_t)pos;
    }
    /* version 1.0 unless the header does not fit its u16 length (never with
     * four dimensions, kept for completeness); pad to a multiple of 64 */
    prefix = len + 1 + 10 > 65535 ? 12 : 10;
    pad = (64 - (prefix + len + 1) % 64) % 64;
    if (len >= sizeof hdr || pad + 1 > sizeof hdr - len)
        return ae__fail(NULL, AE_ERR_INTERNAL, "npy header overflow");
    memset(hdr + len, ' ', pad);
    len += pad;
    hdr[len++] = '\n';

    memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
    pre[6] = prefix == 10 ? 1 : 2;
    pre[7] = 0;
    pre[8] = (unsigned char)(len & 0xFF);
    pre[9] = (unsigned char)(len >> 8 & 0xFF);
    pre[10] = (unsigned char)(len >> 16 & 0xFF);
    pre[11] = (unsigned char)(len >> 24 & 0xFF);

    if ((st = ae__writer_open(&w, path, NULL)) != AE_OK) return st;
    ae__writer_write(&w, pre, prefix);
    ae__writer_write(&w, hdr, len);
    ae__writer_f32s(&w, data, total);
    return ae__writer_commit(&w, path, NULL);
}

ae_status ae__npy_layout_of(const char *path, ae__npy_layout *out)
{
    FILE *f;
    npy_hdr h;
    ae_status st = npy_open(path, &f, &h);
    if (st != AE_OK) return st;
    fclose(f);
    out->dtype = h.dtype;
    out->rows = h.rows;
    out->row_elems = h.row_elems;
    out->row_bytes = h.row_bytes;
    out->data_offset = h.data_offset;
    return AE_OK;
}
